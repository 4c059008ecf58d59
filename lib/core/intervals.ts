/**
 * What the master's selection (average.ts) is fed each round (pure): when
 * the peers measured the master, and the margin of each clock's interval.
 */
import { median } from './average.js';

/** Sums over one sender's requests of a round. */
export interface RequestTiming {
  monoSum: bigint;
  appliedSum: bigint;
  n: bigint;
}

/**
 * When the peers measured the master, and what its clock had applied then:
 * the mean over the senders that reported of each one's mean request. One
 * value per reporter, so that requests replayed by someone else, or a
 * sender that never reported, do not move it. Null if no reporter sent a
 * request this round.
 */
export function measuredAt(timings: ReadonlyMap<bigint, RequestTiming>, reporters: Iterable<bigint>): { monoNs: bigint; appliedNs: bigint } | null {
  let mono = 0n;
  let applied = 0n;
  let n = 0n;
  for (const node of reporters) {
    const t = timings.get(node);
    if (!t || t.n === 0n) continue;
    mono += t.monoSum / t.n;
    applied += t.appliedSum / t.n;
    n += 1n;
  }
  return n === 0n ? null : { monoNs: mono / n, appliedNs: applied / n };
}

/**
 * Each clock's interval in the selection (see average.ts): half its round
 * trip, capped at ERROR_CAP times the round's median half round trip (a
 * member cannot widen its own interval by reporting a long round trip),
 * plus a margin for what the clocks did between the measurement and the
 * collection and for the group's present dispersion: MARGIN_MADS times the
 * median absolute deviation of this round's offsets from their median,
 * and at least ERROR_FLOOR_NS. The median absolute deviation is the
 * group's spread as a majority sees it: up to half the clocks can be
 * anywhere without widening it, so a liar or a runaway clock cannot make
 * room for itself. (A spread taken from the distances to the last average
 * could: bad clocks pull the average, the good clocks' distances grow, and
 * the margin grows to take the bad clocks in.) The deviation is taken
 * without the members already named faulty, and the margin uses the median
 * of the last MAD_ROUNDS rounds' deviations, so that a round in which half
 * the good members sat out cannot open it either. The master's own clock,
 * which measured nothing, gets the median half round trip plus the margin.
 * The tolerance stays the outer bound.
 */
export const ERROR_FLOOR_NS = 10_000n;
export const MARGIN_MADS = 3n;
export const MAD_ROUNDS = 5;
export const ERROR_CAP = 2n;

const absOf = (x: bigint): bigint => (x < 0n ? -x : x);

/** The selection's margin, round after round (see MARGIN_MADS). */
export class SelectionMargin {
  private readonly mads: bigint[] = [];

  /** This round's margin from its offsets (the members already named faulty left out): ns. */
  next(offsets: readonly bigint[]): bigint {
    const mid = median(offsets);
    this.mads.push(median(offsets.map((o) => absOf(o - mid))));
    if (this.mads.length > MAD_ROUNDS) this.mads.shift();
    const m = MARGIN_MADS * median(this.mads);
    return m > ERROR_FLOOR_NS ? m : ERROR_FLOOR_NS;
  }
}
