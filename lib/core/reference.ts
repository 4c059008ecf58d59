/**
 * A master whose group time follows a clock it does not average away
 * (pure). Today that clock is an external reference: the master host's
 * system clock, disciplined by another service (chrony from NTP or NTS,
 * ptp4l and phc2sys, a GPS), which berkeleyd reads and never sets
 * (`--reference system`). The same mechanism serves a boundary host
 * (`--upstream`), whose own clock follows an upper group.
 *
 * In the round (master.ts), while the reference is healthy:
 *
 *   the group's time = the reference, not the average
 *   master's adjustment = −(master clock − reference), at most
 *                          RETURN_PPM × interval per round
 *   peer i's adjustment  = master's adjustment − offset(i)
 *
 * i.e. the Berkeley table with "average" replaced by the master's distance
 * to the reference. The fault-tolerant selection still runs over the peers
 * and names the faulty ones; it just no longer moves the group's time. A
 * peer far from the master gets its whole correction at once, as in any
 * round.
 *
 * Lost: the reference reads unsynchronized (the kernel's STA_UNSYNC on that
 * host: its service says it has no source), its maximum error grew past
 * the bound (--reference-max-error: the service's own worst case, which
 * grows by 500 ppm of elapsed time since its last update on Linux while it
 * hears nothing), or it cannot be read. The group then runs on the Berkeley
 * average, from where it is: no jump. When the reference is back, the
 * master's adjustment toward it is limited to RETURN_PPM of the interval
 * per round: the group slews back together, each round within its
 * members' slew rate, never a step, whatever the distance grew to.
 */
import type { AverageResult } from './average.js';

/** One reading of the reference against this node's clock. */
export interface ReferenceSample {
  /** This node's clock minus the reference, ns, read at one instant. */
  offsetNs: bigint;
  /** The reference says it is not synchronized (STA_UNSYNC). */
  unsync: boolean;
  /** The reference's own maximum error, ns (timex.maxerror). */
  maxErrorNs: bigint;
}

/** The reference as the master reads it each round: a sample, or why none could be taken. */
export type ReferenceReader = () => ReferenceSample | { error: string };

/**
 * The largest change of the group's time toward the reference per round,
 * as a rate (ppm of the interval): half the default --max-slew (500 ppm),
 * so that every member's slew of a round is done well within the round.
 */
export const RETURN_PPM = 250n;

/**
 * The default bound on the reference's maximum error (--reference-max-error):
 * 1 s. A healthy NTP client's maxerror is its root distance (ms to tens of
 * ms) plus 500 ppm of the time since its last clock update, which reaches
 * 0.5 s between updates at chrony's longest default poll (1024 s); 100 ms
 * would call such a host lost every poll. A service that has gone silent
 * crosses 1 s within about half an hour of silence; a service that knows
 * it has lost its sources sets STA_UNSYNC at once, and that counts first.
 */
export const DEFAULT_REFERENCE_MAX_ERROR_NS = 1_000_000_000n;

export type ReferenceState = 'following' | 'returning' | 'lost';

export interface ReferenceStatus {
  state: ReferenceState;
  /** Why it is lost (null while following). */
  why: string | null;
  /** The master clock's distance to the reference at the last round, ns (null: not read). */
  offsetNs: bigint | null;
  maxErrorNs: bigint | null;
  /** Times the reference was lost. */
  losses: number;
}

/** Why a sample does not count as a reference; null when it does. */
export function referenceFault(s: ReferenceSample | { error: string }, maxErrorNs: bigint): string | null {
  if ('error' in s) return `cannot read the reference: ${s.error}`;
  if (s.unsync) return 'the reference clock is unsynchronized (the kernel reports STA_UNSYNC: its time service has lost its source)';
  if (s.maxErrorNs > maxErrorNs) return `the reference's maximum error ${s.maxErrorNs / 1000n} µs exceeds --reference-max-error ${maxErrorNs / 1000n} µs`;
  return null;
}

/** a clamped to ±limit. */
const clamp = (a: bigint, limit: bigint): bigint => (a > limit ? limit : a < -limit ? -limit : a);

export class ReferenceTracker {
  state: ReferenceState = 'following';
  why: string | null = null;
  offsetNs: bigint | null = null;
  maxErrorNs: bigint | null = null;
  losses = 0;
  /** The whole distance to the reference at the last reading (−offsetNs), before the per-round limit. */
  wantedNs = 0n;

  constructor(
    private readonly read: ReferenceReader,
    private readonly boundNs: bigint,
  ) {}

  /**
   * This round's target for the master's own adjustment (the "average" of
   * the table), or null: the reference is lost, use the Berkeley average.
   * synced: the master has synchronized (until then the distance is not
   * limited: the first rounds step). change(state, why) is called when the
   * state changes.
   */
  target(intervalNs: bigint, synced: boolean, change: (state: ReferenceState, why: string | null) => void): bigint | null {
    const s = this.read();
    const fault = referenceFault(s, this.boundNs);
    if (!('error' in s)) {
      this.offsetNs = s.offsetNs;
      this.maxErrorNs = s.maxErrorNs;
    }
    const before = this.state;
    if (fault !== null || 'error' in s) {
      this.why = fault;
      if (before !== 'lost') {
        this.state = 'lost';
        this.losses += 1;
        change('lost', fault);
      }
      return null;
    }
    const limit = (RETURN_PPM * intervalNs) / 1_000_000n;
    const wanted = -s.offsetNs;
    this.wantedNs = wanted;
    // Back from a loss (or the reference stepped): the group slews back, at most limit per round.
    this.state = wanted > limit || wanted < -limit ? 'returning' : 'following';
    this.why = null;
    if (this.state !== before) change(this.state, null);
    // Before the master's first synchronization (steps are allowed then) the group goes to the reference at once.
    return synced ? clamp(wanted, limit) : wanted;
  }

  status(): ReferenceStatus {
    return { state: this.state, why: this.why, offsetNs: this.offsetNs, maxErrorNs: this.maxErrorNs, losses: this.losses };
  }
}

/** The round's result with the group's time at targetNs instead of the average (see the top of this file). */
export function towardReference(result: AverageResult, targetNs: bigint | null): AverageResult {
  if (targetNs === null) return result;
  // Offsets are node − master; the master's own entry has offset 0, so its adjustment is the target itself.
  return {
    ...result,
    averageNs: targetNs,
    entries: result.entries.map((e) => ({ ...e, adjustmentNs: targetNs - (result.averageNs - e.adjustmentNs) })),
  };
}
