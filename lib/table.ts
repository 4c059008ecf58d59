/**
 * The round table as people read it (pure): each node's offset from the
 * master and its adjustment, like the seed's printout made clear. Shared by
 * `berkeleyd simulate` and `berkeleyd demo`.
 */
import { formatDurationNs } from './units.js';

export interface TableRow {
  name: string;
  offsetNs: bigint;
  adjustmentNs: bigint;
  outlier: boolean;
}

export function byName(a: { name: string }, b: { name: string }): number {
  return a.name.localeCompare(b.name, 'en', { numeric: true });
}

/** Lines of the table; more than maxRows rows are summarised in one line. */
export function roundTableLines(rows: readonly TableRow[], master: string, maxRows = 16): string[] {
  const sorted = [...rows].sort(byName);
  if (sorted.length > maxRows) {
    const outliers = sorted.filter((x) => x.outlier).length;
    return [`  ${sorted.length - 1} peers reported, ${outliers} outside the tolerance`];
  }
  const lines = [`  ${'node'.padEnd(10)}${'offset'.padStart(16)}${'adjustment'.padStart(16)}`];
  for (const r of sorted) {
    const note = r.name === master ? '  master' : r.outlier ? '  outlier' : '';
    lines.push(`  ${r.name.padEnd(10)}${formatDurationNs(r.offsetNs).padStart(16)}${formatDurationNs(r.adjustmentNs).padStart(16)}${note}`);
  }
  return lines;
}

/** A duration without its + sign, for magnitudes such as spreads. */
export function magnitude(ns: bigint): string {
  return formatDurationNs(ns).replace(/^\+/, '');
}
