/**
 * The error bound of one node (pure): how far its clock may be from the
 * group's time, at any instant, from what the node knows. docs/protocol.md,
 * "Error bound", defines the group's time (the master's clock with its own
 * adjustment applied: the round's average, carried between rounds by the
 * master's clock) and says why the bound holds; in short:
 *
 *   bound(t) = d/2 + k·max|average| + |residual(t)| + drift · (t − measured + collect)
 *
 * - d/2: a peer, half the round trip of the measurement its last
 *   correction answered: its offset's error whatever the paths' asymmetry
 *   (the true offset lies in [t1 − T2, t4 − T3]), or half its usual round
 *   trip (the median of its recent bursts' best) when that is longer: a
 *   round trip far below the usual may have been shortened by a stamp
 *   error, and its offset be off by more. The master measured nothing: 0.
 * - max|average|: the largest of the last two tables' averages (the
 *   master's own adjustments, which every ADJUST carries). The next table
 *   moves the group's time by the master's next adjustment, which nobody
 *   knows before it comes: the bound takes it to be no larger than the
 *   last ones (k = 1). A peer counts it twice (k = 2): the master's clock
 *   also moved, by at most its own last adjustment, while the peers
 *   measured it.
 * - residual: the part of this node's last correction not slewed yet (a
 *   slewing clock is off by what remains to slew).
 * - drift: the frequency's error against the master's, max(DRIFT_FLOOR_PPM,
 *   the most the frequency fit can be off when each of its points errs by
 *   up to half its round trip: discipline.ts, worstSlopeErrorPpm), over the age of
 *   the measurement that the last correction answered, plus one collection
 *   window (the round's measurements are spread over it).
 *
 * States: 'none' with why (not yet synchronized, named faulty, left out of
 * the table, cannot follow its frequency, no correction since a coarse step
 * or since a correction refused by --max-adjust);
 * 'free-running' when the group is lost (no master followed, or no
 * correction for LOST_INTERVALS intervals): the same formula, growing with
 * age only; 'synchronized' otherwise.
 */
import type { ErrorBound } from './types.js';

/**
 * The least frequency error assumed of a disciplined clock against the
 * group, ppm: chrony's maxclockerror (1 ppm), what a quartz oscillator's
 * frequency wanders by in the minutes a fit spans (temperature). The fit's
 * own worst error replaces it when larger (see boundDriftPpm).
 */
export const DRIFT_FLOOR_PPM = 1;
/** Without a correction for this many intervals, the group counts as lost ('free-running'). */
export const LOST_INTERVALS = 4n;

/** The last correction from a round, as the node applied it (Context.applyAdjustment). */
export interface BoundUpdate {
  /** Monotonic instant of the measurement the correction answers, and of its application. */
  measureMonoNs: bigint;
  applyMonoNs: bigint;
  /** The correction asked for, and what the clock had applied (appliedNs) when it was asked. */
  correctionNs: bigint;
  appliedAtNs: bigint;
  /** The round trip of the measurement it answers (a peer's own; on the master, unused). */
  delayNs: bigint;
}

export interface BoundInputs {
  role: 'master' | 'peer' | 'candidate';
  /** Context.synced, and the reasons a node cannot give a bound. */
  synced: boolean;
  namedFaulty: boolean;
  /** As master: its own selection names its clock faulty (runaway.ts): it serves the group's time, but its clock is off it. */
  ownClockFaulty?: boolean;
  leftOut: string | null;
  cannotFollow: boolean;
  /** A peer follows a master (false: its master went quiet, or it is a candidate). */
  following: boolean;
  update: BoundUpdate | null;
  /** The clock's appliedNs() now. */
  appliedNowNs: bigint;
  /** A peer's usual round trip (the median of its recent bursts' best), or null. */
  typicalDelayNs?: bigint | null;
  /** The averages of the last tables this node applied or, on the master, made. */
  averagesNs: readonly bigint[];
  /** The most the frequency fit in force can be off, ppm, or null (none yet). */
  frequencyErrorPpm: number | null;
  intervalNs: bigint;
  collectNs: bigint;
}

const abs = (x: bigint): bigint => (x < 0n ? -x : x);

/** The drift the bound grows at, ppm. */
export function boundDriftPpm(frequencyErrorPpm: number | null): number {
  const fit = frequencyErrorPpm === null || !Number.isFinite(frequencyErrorPpm) ? 0 : Math.abs(frequencyErrorPpm);
  return Math.max(DRIFT_FLOOR_PPM, fit);
}

/** What remains to slew of the last correction, ns (0 once run, or after a step). */
export function residualNs(update: BoundUpdate, appliedNowNs: bigint): bigint {
  const left = update.correctionNs - (appliedNowNs - update.appliedAtNs);
  // Run past the target can only mean a newer correction or a step: nothing of this one is left.
  return update.correctionNs >= 0n ? (left > 0n ? left : 0n) : left < 0n ? -left : 0n;
}

/** Why no bound can be given, or null. */
export function noBoundReason(i: BoundInputs): string | null {
  if (i.namedFaulty) return 'named faulty by the master';
  if (i.ownClockFaulty) return "this master's own clock is named faulty by its selection (own-clock-faulty)";
  if (i.cannotFollow) return 'cannot follow its frequency (the correction it needs is beyond the limit)';
  if (i.role !== 'master' && i.leftOut !== null) return `left out of the master's table (${i.leftOut})`;
  if (!i.synced) return 'not yet synchronized';
  if (i.update === null) return 'no correction since a coarse step or a refused correction (--max-adjust)';
  return null;
}

export function computeBound(i: BoundInputs, monoNs: bigint): ErrorBound {
  const driftPpm = boundDriftPpm(i.frequencyErrorPpm);
  const driftPpb = Math.ceil(driftPpm * 1000);
  const why = noBoundReason(i);
  if (why !== null || i.update === null) return { state: 'none', boundNs: null, asOfMonoNs: monoNs, driftPpb, why: why ?? 'no correction yet' };
  const u = i.update;
  const master = i.role === 'master';
  const averageNs = i.averagesNs.reduce((m, a) => (abs(a) > m ? abs(a) : m), 0n);
  const age = monoNs - u.measureMonoNs + i.collectNs;
  const driftNs = BigInt(Math.ceil((Number(age > 0n ? age : 0n) * driftPpb) / 1e9));
  const typical = i.typicalDelayNs ?? 0n;
  const measurementNs = master ? 0n : (abs(u.delayNs) > typical ? abs(u.delayNs) : typical) / 2n;
  const boundNs = measurementNs + (master ? averageNs : 2n * averageNs) + residualNs(u, i.appliedNowNs) + driftNs;
  const lost = i.role === 'candidate' || (i.role === 'peer' && !i.following) || monoNs - u.applyMonoNs > LOST_INTERVALS * i.intervalNs;
  if (lost) {
    const why = i.role === 'master' ? `no correction for ${LOST_INTERVALS} intervals` : i.role === 'candidate' ? 'claiming mastership: no master' : i.following ? `no correction for ${LOST_INTERVALS} intervals` : 'no master heard';
    return { state: 'free-running', boundNs, asOfMonoNs: monoNs, driftPpb, why };
  }
  return { state: 'synchronized', boundNs, asOfMonoNs: monoNs, driftPpb, why: null };
}

/** [earliest, latest] of the group's time around a reading of this clock (null without a bound). */
export function interval(groupTimeNs: bigint, b: ErrorBound): { earliestNs: bigint; latestNs: bigint } | null {
  if (b.boundNs === null) return null;
  return { earliestNs: groupTimeNs - b.boundNs, latestNs: groupTimeNs + b.boundNs };
}
