/**
 * A clock filter across rounds (pure), for synchronized peers (peer.ts: a
 * full burst only once its frequency fit is trusted).
 *
 * A master of thousands asks each peer for one exchange a round (load.ts),
 * so a peer has no burst to pick its least-delayed sample from: whatever
 * queueing the one exchange met enters its offset, and the simulator
 * shows 1-exchange rounds 4x less precise than 12-exchange ones. A full
 * burst has the same weakness at a larger scale: now and then all twelve
 * exchanges of a burst meet a slower path (the host busy for the few ms
 * the burst takes), and on 8 daemons on loopback such a burst, 10 µs
 * round trips against 6.3, left its clock 1.7 µs off the group for a
 * round. ntpd's clock filter answers both by keeping the last eight
 * samples and using the one of least delay, aged. Here the samples are of
 * earlier rounds, so each is first carried to the instant of this round's
 * sample:
 *
 *     carried = offset_then + (what this clock applied since)
 *                           − (what the master applied since)
 *
 * (offsets are this clock minus the master's; a positive correction moves
 * a clock forward).
 *
 * The master's clock moves by its own entry each round, which is the
 * round's average (its offset is 0): the ADJUST's averageNs. A sample is
 * carried only across rounds whose ADJUST this node heard, and only within
 * one epoch. Its error bound is half its round trip plus its age at
 * CARRY_DRIFT_PPB (the frequency error it may have gathered since); the
 * sample of least bound is reported, with twice that bound as its round
 * trip, so that the master's selection sees how good it is.
 */

/** The frequency error a locked clock may still have, which runs on a carried sample: ppb. */
export const CARRY_DRIFT_PPB = 1000n;
/** Bursts of fewer samples than this choose at CARRY_DRIFT_PPB; larger ones at the frequency error the clock may have. */
export const CARRY_BELOW_SAMPLES = 4;
/** Rounds a sample is kept. */
export const CARRY_ROUNDS = 8;

/**
 * Whether a burst reports the filter's choice (a sample carried from an
 * earlier round, or its own) rather than its own best exchange: only once
 * synchronized, and a full burst only once the frequency fit is trusted
 * (frequencyErrorPpm known). In acquisition the fit's error is not known
 * (tens of ppm are usual), and a carry would put it into the offset. A
 * small burst has nothing better to report, so it carries as soon as it is
 * synchronized.
 */
export function carryApplies(synced: boolean, samples: number, frequencyErrorPpm: number | null): boolean {
  return synced && (samples < CARRY_BELOW_SAMPLES || frequencyErrorPpm !== null);
}

export interface RoundSample {
  epoch: number;
  round: number;
  offsetNs: bigint;
  delayNs: bigint;
  /** The clock's appliedNs() and the monotonic time when it was taken. */
  appliedAtNs: bigint;
  monoNs: bigint;
}

export interface Carried {
  offsetNs: bigint;
  /** Twice the error bound: what the REPORT carries as the round trip. */
  delayNs: bigint;
  /** The round the sample came from (this round's own: not carried). */
  fromRound: number;
}

export class RoundFilter {
  private kept: RoundSample[] = [];
  private epoch = -1;
  /** The master's adjustment (ADJUST averageNs) of each recent round of this epoch. */
  private readonly averages = new Map<number, bigint>();

  /** Every ADJUST of the followed master, whether or not this node is in it: the master moved by averageNs. */
  noteAdjust(epoch: number, round: number, averageNs: bigint): void {
    if (epoch !== this.epoch) this.restart(epoch);
    this.averages.set(round, averageNs);
    for (const r of this.averages.keys()) if (r < round - CARRY_ROUNDS) this.averages.delete(r);
  }

  /** Forget everything: another master, a step, a clock no longer synchronized. */
  reset(): void {
    this.restart(-1);
  }

  private restart(epoch: number): void {
    this.epoch = epoch;
    this.kept = [];
    this.averages.clear();
  }

  /**
   * This round's sample; returns it, or an earlier one carried to its instant if that one's bound is smaller.
   * A burst of fewer than CARRY_BELOW_SAMPLES samples chooses with samples aged at CARRY_DRIFT_PPB, a larger
   * one at driftPpb when larger (the frequency error the clock may have: the error bound's drift, bound.ts);
   * the round trip reported for a carried one ages it at driftPpb, so that the selection, the frequency fit
   * and the error bound see how far it may really be off.
   */
  choose(s: RoundSample, driftPpb = CARRY_DRIFT_PPB, samples = 1): Carried {
    if (s.epoch !== this.epoch) this.restart(s.epoch);
    const drift = driftPpb > CARRY_DRIFT_PPB ? driftPpb : CARRY_DRIFT_PPB;
    const chooseDrift = samples < CARRY_BELOW_SAMPLES ? CARRY_DRIFT_PPB : drift;
    let best: Carried = { offsetNs: s.offsetNs, delayNs: s.delayNs, fromRound: s.round };
    let bestBound = s.delayNs / 2n;
    for (const k of this.kept) {
      const master = this.masterAppliedSince(k.round, s.round);
      if (master === null) continue;
      const ageNs = s.monoNs - k.monoNs;
      if (ageNs < 0n) continue;
      const bound = k.delayNs / 2n + (ageNs * chooseDrift) / 1_000_000_000n;
      if (bound >= bestBound) continue;
      bestBound = bound;
      const honest = k.delayNs / 2n + (ageNs * drift) / 1_000_000_000n;
      best = { offsetNs: k.offsetNs + (s.appliedAtNs - k.appliedAtNs) - master, delayNs: 2n * honest, fromRound: k.round };
    }
    this.kept = [...this.kept.filter((k) => k.round > s.round - CARRY_ROUNDS && k.round < s.round), s];
    return best;
  }

  /** The master's adjustments of rounds from..to−1 (each applied after its round's samples), or null if one was not heard. */
  private masterAppliedSince(from: number, to: number): bigint | null {
    if (to - from > CARRY_ROUNDS || to <= from) return null;
    let sum = 0n;
    for (let r = from; r < to; r++) {
      const a = this.averages.get(r);
      if (a === undefined) return null;
      sum += a;
    }
    return sum;
  }
}
