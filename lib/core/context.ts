/**
 * What the master, peer and election machines share: the node's identity
 * and options, a read-only view of its clock, injected randomness, the
 * action list of the event being handled, drop counters, and the one place
 * where a correction is turned into clock actions (max-adjust, step or slew,
 * frequency tracking).
 */
import type { Header, Message } from '../wire/messages.js';
import { DEFAULT_DISCIPLINE, discipline, initialDiscipline, type DisciplineState } from './discipline.js';
import type { BoundUpdate } from './bound.js';
import type { NodeOptions } from './options.js';
import type { ReferenceTracker } from './reference.js';
import type { Action, Address, Destination, DropReason, Notice, TimerName } from './types.js';

/** What the engine reads of its clock (lib/clock's Clock satisfies it). */
export interface ClockReader {
  /** Group time now, ns. */
  now(): bigint;
  /** Group time at a monotonic instant of the recent past, ns. */
  at(monoNs: bigint): bigint;
  /** Total correction applied so far (steps plus the run part of slews), ns. */
  appliedNs(): bigint;
}

export interface Randomness {
  /** Uniform in [0, 1). */
  random(): number;
  /** A random 64-bit value. */
  nonce(): bigint;
}

/**
 * A node synchronizes at its INITIAL_STEP_UPDATES-th correction (like
 * chrony's `makestep <threshold> 4`). Until then a correction beyond the
 * step threshold steps: the first rounds measure from freshly started
 * processes and a master busy with everyone's first bursts, often a few
 * hundred µs off and all in the same direction, and slewing that away at
 * 500 ppm takes a second or more, when the next round can step it. Four
 * corrections are the fast start's quarter-interval rounds.
 */
export const INITIAL_STEP_UPDATES = 4;

export class Context {
  out: Action[] = [];
  readonly counters = new Map<DropReason, number>();
  /** Has this node synchronized (see INITIAL_STEP_UPDATES)? Steps are free until then, and --max-adjust does not apply. */
  synced = false;
  /** Corrections applied from rounds. */
  updates = 0;
  lastAdjustmentNs: bigint | null = null;
  /** The last correction from a round, for the error bound (bound.ts); null before one and after a coarse step. */
  lastUpdate: BoundUpdate | null = null;
  /** The last correction was beyond the step threshold (see applyAdjustment). */
  private lastWasLarge = false;
  private disc: DisciplineState = initialDiscipline();
  /** The reference this node's group follows as master (reference.ts), or null: the Berkeley average. Set by the daemon. */
  reference: ReferenceTracker | null = null;

  constructor(
    readonly opts: NodeOptions,
    readonly id: bigint,
    readonly clock: ClockReader,
    readonly rng: Randomness,
  ) {}

  header(epoch: number, round: number): Header {
    return { domain: this.opts.domain, sender: this.id, epoch, round };
  }

  send(to: Destination, msg: Message): void {
    this.out.push({ type: 'send', to, msg });
  }

  arm(timer: TimerName, afterNs: bigint): void {
    this.out.push({ type: 'arm', timer, afterNs: afterNs < 0n ? 0n : afterNs });
  }

  disarm(timer: TimerName): void {
    this.out.push({ type: 'disarm', timer });
  }

  notice(notice: Notice): void {
    this.out.push({ type: 'notice', notice });
  }

  drop(reason: DropReason, msg: Message, from: Address): void {
    this.counters.set(reason, (this.counters.get(reason) ?? 0) + 1);
    this.notice({ kind: 'dropped', reason, type: msg.type, from });
  }

  get frequencyPpm(): number {
    return this.disc.frequencyPpm;
  }

  /** The frequency this clock's own measurements call for against the group, ppm, or null while untrusted (REPORT). */
  get estimatePpm(): number | null {
    return this.disc.estimatePpm;
  }

  /** The most the frequency fit in force can be off, ppm, or null before a trusted fit (the error bound's drift). */
  get frequencyErrorPpm(): number | null {
    return this.disc.errorPpm ?? null;
  }

  /** The last correction asked for more frequency than the clock may apply. */
  get atFrequencyLimit(): boolean {
    return this.disc.atLimit;
  }

  /**
   * As master: this round's "average" from the reference (see reference.ts), or null (none, or lost: the
   * average). The reference is read now; the peers measured our clock before the last sinceNs of our own
   * correction ran, so both are stated as at their measurement: averageNs, limited per round, for the
   * table; fitNs, the whole distance, for our own frequency fit (which must see where the reference is, not
   * how fast we are allowed to go there).
   */
  referenceTarget(round: number, sinceNs: bigint): { averageNs: bigint; fitNs: bigint } | null {
    const r = this.reference;
    const target = r?.target(this.opts.intervalNs, this.synced, (state, why) => this.notice({ kind: 'reference', state, why, round })) ?? null;
    return r && target !== null ? { averageNs: target + sinceNs, fitNs: r.wantedNs + sinceNs } : null;
  }

  /** A newcomer's coarse step to the master's clock, from its first burst. */
  coarseStep(correctionNs: bigint): void {
    this.disc = discipline(this.disc, { adjustmentNs: correctionNs, appliedAtMeasureNs: this.clock.appliedNs(), measureMonoNs: 0n, applyMonoNs: 0n, stepped: true });
    this.out.push({ type: 'correct', correctionNs, allowStep: true });
    this.lastUpdate = null;
    this.notice({ kind: 'coarse-step', correctionNs });
  }

  /**
   * Apply this node's adjustment from round (epoch, round). delayNs is the
   * measurement's round trip (it weighs the point in the frequency fit).
   * adjustmentNs answers a measurement taken at monotonic measureMonoNs,
   * when appliedNs() read appliedAtMeasureNs; what was corrected since then
   * is subtracted, and the result replaces what is left of any earlier slew.
   * commonPpm is the group's common frequency (ADJUST commonPpb / 1000).
   * fitAdjustmentNs is what the frequency fit sees, when it differs (a
   * master following a reference: the whole distance, not this round's part).
   */
  applyAdjustment(
    epoch: number,
    round: number,
    adjustmentNs: bigint,
    appliedAtMeasureNs: bigint,
    measureMonoNs: bigint,
    monoNs: bigint,
    delayNs = 0,
    commonPpm = 0,
    fitAdjustmentNs = adjustmentNs,
  ): void {
    const correctionNs = adjustmentNs - (this.clock.appliedNs() - appliedAtMeasureNs);
    const magnitude = correctionNs < 0n ? -correctionNs : correctionNs;
    const max = this.opts.maxAdjustNs;
    if (this.synced && max !== null && magnitude > max) {
      this.notice({ kind: 'refused', round, correctionNs, maxAdjustNs: max });
      // The round says this clock is farther from the group than --max-adjust: no bound holds until one is applied.
      this.lastUpdate = null;
      return;
    }
    const allowStep = !this.synced || this.opts.stepAlways;
    const step = allowStep && magnitude > this.opts.stepThresholdNs;
    const before = this.disc.frequencyPpm;
    const wasAtLimit = this.disc.atLimit;
    // Spans of several intervals still count (missed rounds); longer gaps restart the fit.
    // What the fit sees decides whether the clock was disturbed (a reference that stepped, limited per round in the correction).
    const fitNs = fitAdjustmentNs - (this.clock.appliedNs() - appliedAtMeasureNs);
    const large = (magnitude > (fitNs < 0n ? -fitNs : fitNs) ? magnitude : fitNs < 0n ? -fitNs : fitNs) > this.opts.stepThresholdNs;
    const maxSpanNs = 4n * this.opts.intervalNs > DEFAULT_DISCIPLINE.maxSpanNs ? 4n * this.opts.intervalNs : DEFAULT_DISCIPLINE.maxSpanNs;
    this.disc = discipline(
      this.disc,
      // A step while acquiring is a correction like any other (appliedNs counts it), so the fit goes on.
      // After synchronization, a correction beyond the step threshold right after one within it, stepped
      // (--step-always) or not, means the clock was disturbed (someone stepped the host clock, or its master
      // changed): its phase history no longer describes its rate, and the fit starts again, keeping the
      // estimate it had. Large corrections in a row are a clock that runs away: the fit must see that.
      { adjustmentNs: fitAdjustmentNs, appliedAtMeasureNs, measureMonoNs, applyMonoNs: monoNs, stepped: this.synced && large && !this.lastWasLarge, delayNs, commonPpm },
      { ...DEFAULT_DISCIPLINE, maxSpanNs },
    );
    this.lastWasLarge = large;
    const after = this.disc.frequencyPpm;
    if (this.disc.atLimit !== wasAtLimit) {
      this.notice({ kind: 'cannot-follow', atLimit: this.disc.atLimit, estimatePpm: this.disc.estimatePpm ?? 0, commonPpm });
    }
    this.out.push({ type: 'correct', correctionNs, allowStep });
    this.lastUpdate = { measureMonoNs, applyMonoNs: monoNs, correctionNs, appliedAtNs: this.clock.appliedNs(), delayNs: BigInt(Math.round(delayNs)) };
    if (after !== before) this.out.push({ type: 'frequency', ppm: after });
    this.updates += 1;
    if (this.updates >= INITIAL_STEP_UPDATES) this.synced = true;
    this.lastAdjustmentNs = adjustmentNs;
    this.notice({ kind: 'corrected', epoch, round, correctionNs, adjustmentNs, step, frequencyPpm: after });
  }

  take(): Action[] {
    const out = this.out;
    this.out = [];
    return out;
  }
}
