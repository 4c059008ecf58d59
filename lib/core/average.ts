/**
 * The fault-tolerant average of a round and its adjustment table (pure).
 *
 * Offsets are relative to the master (node clock minus master clock); the
 * master itself takes part with offset 0. The average starts from the
 * median, keeps the clocks within `toleranceNs` of it, and averages those.
 * Quorum: the kept clocks must be a strict majority of the clocks that took
 * part. Without a majority no average can be trusted, and the group follows
 * the master (average 0): every node is brought to the master's clock, which
 * is how a group whose clocks start seconds apart gets together in one round.
 *
 * adjustment(i) = average - offset(i): what node i adds to its clock. The
 * master's own adjustment is the average itself. Outliers still receive an
 * adjustment; they just do not pull the average.
 */

export interface Reading {
  node: bigint;
  offsetNs: bigint;
}

export interface AverageResult {
  averageNs: bigint;
  /** True if a majority agreed within the tolerance; false: the group follows the master. */
  quorum: boolean;
  medianNs: bigint;
  entries: { node: bigint; adjustmentNs: bigint; outlier: boolean }[];
}

/** Median of a non-empty list; the mean of the two middle values for an even count. */
export function median(values: readonly bigint[]): bigint {
  if (values.length === 0) throw new RangeError('median of nothing');
  const sorted = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : divRound(sorted[mid - 1]! + sorted[mid]!, 2n);
}

/** a / b rounded to the nearest integer, halves away from zero. */
export function divRound(a: bigint, b: bigint): bigint {
  const q = a / b;
  const r = a % b;
  if (r === 0n) return q;
  const twice = (r < 0n ? -r : r) * 2n;
  const bAbs = b < 0n ? -b : b;
  if (twice < bAbs) return q;
  return (a < 0n) !== (b < 0n) ? q - 1n : q + 1n;
}

const abs = (x: bigint): bigint => (x < 0n ? -x : x);

/**
 * readings must include the master with offset 0. Node ids must be unique.
 */
export function faultTolerantAverage(readings: readonly Reading[], toleranceNs: bigint): AverageResult {
  if (readings.length === 0) throw new RangeError('no readings');
  if (toleranceNs < 0n) throw new RangeError('negative tolerance');
  const medianNs = median(readings.map((r) => r.offsetNs));
  const kept = readings.filter((r) => abs(r.offsetNs - medianNs) <= toleranceNs);
  const quorum = kept.length * 2 > readings.length;
  const averageNs = quorum ? divRound(kept.reduce((s, r) => s + r.offsetNs, 0n), BigInt(kept.length)) : 0n;
  const keptSet = new Set(kept.map((r) => r.node));
  const entries = readings.map((r) => ({
    node: r.node,
    adjustmentNs: averageNs - r.offsetNs,
    outlier: !keptSet.has(r.node),
  }));
  return { averageNs, quorum, medianNs, entries };
}
