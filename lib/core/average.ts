/**
 * The fault-tolerant average of a round and its adjustment table (pure).
 *
 * Offsets are relative to the master (node clock minus master clock); the
 * master itself takes part with offset 0.
 *
 * Selection, as NTP's and chrony's source selection do it (Marzullo's
 * algorithm): each clock is an interval, its offset ± its error. The error
 * of a four-timestamp measurement is bounded by half its round trip: the
 * true offset lies in [t1 − T2, t4 − T3] whenever every timestamp errs in
 * the causal direction (sends stamped early, receives late), which is what
 * user-space and kernel stamps both do. The master adds a margin for what
 * the clocks did between measurement and collection (see master.ts). A
 * clock that is right contains the true offset; so the clocks that are
 * right all overlap. The selection takes the point covered by the most
 * intervals and keeps the clocks whose intervals contain it; `--tolerance`
 * stays the outer bound (a clock farther than it from the median is never
 * kept). No constant decides who agrees: the group's own round trips do.
 *
 * Quorum: the kept clocks must be a strict majority of the clocks that took
 * part. Without a majority no average can be trusted, and the group follows
 * the master (average 0): every node is brought to the master's clock, which
 * is how a group whose clocks start seconds apart gets together in one round.
 *
 * The bound it gives: a clock that is not kept does not enter the average
 * at all. A bad clock that is kept lies within its own interval of a point
 * that every kept interval covers, so with k clocks kept, f of them bad,
 * each interval's half-width at most E (the master caps every error at a
 * multiple of the round's median error, so that a member cannot widen its
 * own interval by reporting a long round trip), the average moves by at
 * most f·2E/k. With N ≥ 3f + 1 and every good clock kept (k ≥ 2f + 1),
 * that is below E: the bad clocks cannot pull the good ones by more than
 * the measurement error itself.
 *
 * adjustment(i) = average − offset(i): what node i adds to its clock. The
 * master's own adjustment is the average itself. Outliers still receive an
 * adjustment; they just do not pull the average.
 */

export interface Reading {
  node: bigint;
  offsetNs: bigint;
  /** Half-width of the clock's interval, ns (≥ 0). Absent: half the tolerance (two clocks agree within the tolerance). */
  errorNs?: bigint;
}

export interface AverageResult {
  averageNs: bigint;
  /** True if a majority agreed; false: the group follows the master. */
  quorum: boolean;
  medianNs: bigint;
  /** The point the kept intervals share, the middle of their common part (ns, relative to the master). */
  agreedNs: bigint;
  entries: { node: bigint; adjustmentNs: bigint; outlier: boolean }[];
}

/** Median of a non-empty list; the mean of the two middle values for an even count. */
export function median(values: readonly bigint[]): bigint {
  if (values.length === 0) throw new RangeError('median of nothing');
  const sorted = [...values].sort(cmp);
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
const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Marzullo's sweep: the region covered by the most intervals. Ties go to the
 * region nearest `prefer` (the median), so that equal cliques resolve the
 * same way on every run. Returns the region and the indices of the
 * intervals that contain it. Intervals are closed: touching ends agree.
 */
export function largestAgreement(intervals: readonly { lo: bigint; hi: bigint }[], prefer: bigint): { lo: bigint; hi: bigint; members: number[] } | null {
  if (intervals.length === 0) return null;
  // Starts (+1) sort before ends (-1) at the same point, so touching intervals overlap.
  const edges = intervals.flatMap((iv) => [{ at: iv.lo, d: 1 }, { at: iv.hi, d: -1 }]);
  edges.sort((a, b) => cmp(a.at, b.at) || b.d - a.d);
  let count = 0;
  let best = 0;
  let region: { lo: bigint; hi: bigint } | null = null;
  for (let i = 0; i < edges.length; i++) {
    const e = edges[i]!;
    count += e.d;
    if (e.d !== 1) continue;
    // The region starting here runs to the next edge.
    const hi = edges[i + 1]!.at;
    const candidate = { lo: e.at, hi };
    const distance = (r: { lo: bigint; hi: bigint }): bigint => (prefer < r.lo ? r.lo - prefer : prefer > r.hi ? prefer - r.hi : 0n);
    if (count > best || (count === best && region !== null && distance(candidate) < distance(region))) {
      best = count;
      region = candidate;
    }
  }
  const r = region!;
  const members = intervals.flatMap((iv, i) => (iv.lo <= r.lo && iv.hi >= r.hi ? [i] : []));
  return { ...r, members };
}

/**
 * readings must include the master with offset 0. Node ids must be unique.
 * toleranceNs is the outer bound: no clock farther than it from the median is kept.
 */
export function faultTolerantAverage(readings: readonly Reading[], toleranceNs: bigint): AverageResult {
  if (readings.length === 0) throw new RangeError('no readings');
  if (toleranceNs < 0n) throw new RangeError('negative tolerance');
  const medianNs = median(readings.map((r) => r.offsetNs));
  const candidates = readings.filter((r) => abs(r.offsetNs - medianNs) <= toleranceNs);
  const intervals = candidates.map((r) => {
    const e = r.errorNs ?? toleranceNs / 2n;
    const err = e < 0n ? 0n : e;
    return { lo: r.offsetNs - err, hi: r.offsetNs + err };
  });
  const agreement = largestAgreement(intervals, medianNs);
  const kept = agreement ? agreement.members.map((i) => candidates[i]!) : [];
  const quorum = kept.length * 2 > readings.length;
  const averageNs = quorum ? divRound(kept.reduce((s, r) => s + r.offsetNs, 0n), BigInt(kept.length)) : 0n;
  const agreedNs = agreement ? divRound(agreement.lo + agreement.hi, 2n) : medianNs;
  const keptSet = new Set(kept.map((r) => r.node));
  const entries = readings.map((r) => ({
    node: r.node,
    adjustmentNs: averageNs - r.offsetNs,
    outlier: !keptSet.has(r.node),
  }));
  return { averageNs, quorum, medianNs, agreedNs, entries };
}
