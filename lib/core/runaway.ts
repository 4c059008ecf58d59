/**
 * A master whose own clock runs away (sans-IO).
 *
 * Every offset a peer reports is its clock minus the master's, measured at
 * the peer's own instant of the round: the bursts are spread over the
 * collection window. While the master's clock runs at the group's rate,
 * the instant does not matter. A master whose oscillator runs 2000 ppm off,
 * beyond what its frequency correction (±500 ppm) and --max-slew can
 * follow, runs 1500 ppm away from the group even at its limits: two peers
 * measured 20 ms apart see it 30 µs apart, each is brought to the master's
 * clock at its own instant plus the average, and the good clocks scatter
 * by the master's rate times the spread of their slots (a measured 70×
 * worse p99 on 8 real daemons). The average itself leaves the master's
 * clock out once it disagrees; the scatter comes from the instants.
 *
 * The cure is to serve, in the master's place, a clock that runs at the
 * group's rate: OwnClock judges the master's own clock by the rules that
 * name members faulty (faults.ts), and once it is named, the master serves
 * ServedTime instead of its own clock in SYNC and in its replies (T2, T3).
 * ServedTime is a line over the monotonic clock fitted to the group's time
 * as the master learns it each round: at the reporters' mean instant of
 * measurement the good clocks' average lies at (what was served then) +
 * the average offset. Its phase passes through the last such point and its
 * rate is the least-squares slope over the last SERVED_POINTS, so it has
 * no frequency limit: every offset is then taken against one clock that
 * runs with the group, which is the same as bringing every measurement to
 * one instant at the master's rate against the group. The master's own
 * clock is left out of the selection and of the common frequency, and is
 * corrected toward the group like any faulty member's (as far as it can
 * follow); its row in the table says how far off it is. It recovers after
 * RECOVER_ROUNDS rounds in a row in which its own clock agrees with the
 * group and its frequency is within the limit; it then serves its own clock
 * again, which by then lies within the selection's margin.
 *
 * A pinned master (--master) serves so and stays. An elected master steps
 * down instead (node.ts): it sends LEAVE, the next candidate takes over by
 * the rank-timed election, and it claims no mastership while its clock
 * cannot follow or the new master names it faulty.
 *
 * Points are taken from every round with a majority; the fit starts again
 * at each round in which the master's own clock was kept (its reading
 * pulled that average), so the line always has a point to start from.
 */
import { FAULTY_LIMIT_ROUNDS, FAULTY_OUTLIER_ROUNDS, RECOVER_ROUNDS } from './faults.js';
import type { FaultReason, Notice } from './types.js';

export const SERVED_POINTS = 8;

interface Point {
  monoNs: bigint;
  groupNs: bigint;
}

/** The group's time as a line over the monotonic clock: groupNs + (mono − monoNs)(1 + ratePpm / 1e6). */
export class ServedTime {
  private points: Point[] = [];
  private line: Point & { ratePpm: number } = { monoNs: 0n, groupNs: 0n, ratePpm: 0 };

  /** Points in the fit now. */
  get size(): number {
    return this.points.length;
  }

  /** The group's rate against the monotonic clock, ppm (0 before two points). */
  get ratePpm(): number {
    return this.line.ratePpm;
  }

  /** The group's time at monoNs was groupNs (a round's average, at its mean instant of measurement). */
  add(monoNs: bigint, groupNs: bigint): void {
    const last = this.points[this.points.length - 1];
    if (last && monoNs <= last.monoNs) return;
    this.points.push({ monoNs, groupNs });
    if (this.points.length > SERVED_POINTS) this.points.shift();
    this.line = { monoNs, groupNs, ratePpm: this.points.length >= 2 ? slopePpm(this.points) : this.line.ratePpm };
  }

  /** Start the fit again (the rate found so far is kept until two new points give one). */
  restart(): void {
    this.points = [];
  }

  at(monoNs: bigint): bigint {
    const dt = monoNs - this.line.monoNs;
    return this.line.groupNs + dt + BigInt(Math.round((Number(dt) * this.line.ratePpm) / 1e6));
  }
}

/** Least-squares slope of (group − mono) against mono, ppm. */
function slopePpm(points: readonly Point[]): number {
  const first = points[0]!;
  const xs = points.map((p) => Number(p.monoNs - first.monoNs));
  const ys = points.map((p) => Number(p.groupNs - p.monoNs - (first.groupNs - first.monoNs)));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den > 0 ? (num / den) * 1e6 : 0;
}

/** One round with a majority, as the master's own clock came out of it. */
export interface OwnRound {
  round: number;
  /** Its reading lay within the agreement (in a round where it was left out of the selection: it would have). */
  kept: boolean;
  /** Farther than twice its interval's half-width from the agreed point. */
  far: boolean;
  /** Its frequency estimate needs more than the frequency limit against the group's common frequency. */
  atLimit: boolean;
}

/** The master's verdict on its own clock (see the file's comment). */
export class OwnClock {
  /** Named faulty, and why; null when not. */
  fault: FaultReason | null = null;
  sinceRound: number | null = null;
  readonly served = new ServedTime();
  private outlierRounds = 0;
  private limitRounds = 0;
  private cleanRounds = 0;
  /** The existing 'self-outlier' notice: left out of its own average FAULTY_OUTLIER_ROUNDS rounds in a row. */
  private notKeptRounds = 0;
  private selfOutlier = false;
  /** The last round with a majority found our clock far from the agreement and left it out. */
  private lastFar = false;

  /**
   * Serve the group's time in place of our clock: while it is named faulty, and already from the first round
   * that found it far from the majority, before it can be named (FAULTY_OUTLIER_ROUNDS later). Every round it
   * is served so is a round the good clocks are not scattered by our clock's rate.
   */
  get serving(): boolean {
    return this.fault !== null || (this.lastFar && this.served.size > 0);
  }

  constructor(private readonly notice: (n: Notice) => void) {}

  /** Judge one round with a majority; the fault's change, if any, is said by notice. */
  judge(r: OwnRound): void {
    this.lastFar = !r.kept && r.far;
    this.notKeptRounds = r.kept ? 0 : this.notKeptRounds + 1;
    const outlier = this.notKeptRounds >= FAULTY_OUTLIER_ROUNDS;
    if (outlier !== this.selfOutlier) {
      this.selfOutlier = outlier;
      this.notice({ kind: 'self-outlier', outlier, round: r.round });
    }
    if (r.kept) this.outlierRounds = 0;
    else if (r.far) this.outlierRounds += 1;
    this.limitRounds = r.atLimit ? this.limitRounds + 1 : 0;
    const reason: FaultReason | null = this.limitRounds >= FAULTY_LIMIT_ROUNDS ? 'frequency-limit' : this.outlierRounds >= FAULTY_OUTLIER_ROUNDS ? 'outlier' : null;
    if (this.fault === null) {
      if (reason === null) return;
      this.fault = reason;
      this.sinceRound = r.round;
      this.cleanRounds = 0;
      this.notice({ kind: 'own-clock', fault: reason, round: r.round, ratePpm: this.served.ratePpm });
      return;
    }
    this.cleanRounds = r.kept && !r.atLimit ? this.cleanRounds + 1 : 0;
    if (this.cleanRounds >= RECOVER_ROUNDS) {
      this.fault = null;
      this.sinceRound = null;
      this.notice({ kind: 'own-clock', fault: null, round: r.round, ratePpm: this.served.ratePpm });
    } else if (reason !== null) {
      this.fault = reason;
    }
  }

  /**
   * The master follows a reference (or an upper group) again: its clock is the group's time by design, so
   * nothing judged of it while the group ran on its average stands. Says so once if it was named.
   */
  clear(round: number): void {
    this.outlierRounds = this.limitRounds = this.cleanRounds = this.notKeptRounds = 0;
    this.lastFar = false;
    if (this.selfOutlier) {
      this.selfOutlier = false;
      this.notice({ kind: 'self-outlier', outlier: false, round });
    }
    if (this.fault === null) return;
    this.fault = null;
    this.sinceRound = null;
    this.notice({ kind: 'own-clock', fault: null, round, ratePpm: this.served.ratePpm });
  }
}
