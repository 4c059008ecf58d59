/**
 * A peer's delay filter (like chrony's maxdelayratio), sans-IO: a burst
 * whose best round trip exceeds DELAY_RATIO times the median of the last
 * DELAY_HISTORY bursts' best round trips is not reported: its offset may be
 * off by half the excess, and skipping one round costs little once the
 * frequency is known. Each rejection in a row widens the bound by
 * DELAY_RELAX times the median, so that a node is not left to drift for
 * round after round. Rejected bursts enter the history too, so the bound
 * follows a network that really became slower.
 */
export const DELAY_HISTORY = 16;
export const DELAY_RATIO = 1.2;
export const DELAY_RELAX = 0.6;
export const DELAY_MIN_HISTORY = 4;
/**
 * The filter never rejects a burst whose best round trip is within this of
 * the median: on a fast LAN (round trips of a few µs) 1.2x the median is
 * inside the scheduling noise, and at most half the excess, 2.5 µs, could
 * enter the offset.
 */
export const DELAY_FLOOR_NS = 5_000n;

export class DelayFilter {
  /** Best round trips of the last bursts, and how many bursts in a row were rejected. */
  private readonly delays: bigint[] = [];
  private rejectedInARow = 0;

  /**
   * The median of the last bursts' best round trips (null while the history is short): the error bound takes half
   * of it when the measurement's own round trip is shorter (bound.ts): a round trip far below the usual is the one
   * a stamp error (a clock pairing preempted under load) may have shortened, and its offset may be off by more.
   */
  get typicalNs(): bigint | null {
    if (this.delays.length < DELAY_MIN_HISTORY) return null;
    return [...this.delays].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[this.delays.length >> 1]!;
  }

  /** (DELAY_RATIO + DELAY_RELAX x rejections in a row) times the median, at least the median plus DELAY_FLOOR_NS; null while the history is short. */
  bound(): bigint | null {
    const median = this.typicalNs;
    if (median === null) return null;
    const bound = BigInt(Math.round(Number(median) * (DELAY_RATIO + DELAY_RELAX * this.rejectedInARow)));
    return bound > median + DELAY_FLOOR_NS ? bound : median + DELAY_FLOOR_NS;
  }

  /**
   * A burst's best round trip, which enters the history whatever the verdict. enforce: the node is synchronized
   * (before that every burst counts). Returns the bound it exceeded if it is rejected, else null.
   */
  judge(delayNs: bigint, enforce: boolean): bigint | null {
    const bound = this.bound();
    this.delays.push(delayNs);
    if (this.delays.length > DELAY_HISTORY) this.delays.shift();
    if (enforce && bound !== null && delayNs > bound) {
      this.rejectedInARow += 1;
      return bound;
    }
    this.rejectedInARow = 0;
    return null;
  }
}
