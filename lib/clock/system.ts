/**
 * The system clock: group time is the host's CLOCK_REALTIME, disciplined
 * the way chrony's sys_generic/sys_timex/sys_linux drivers do it.
 *
 * - Frequency: ADJ_FREQUENCY, and ADJ_TICK beyond ±500 ppm (splitFrequency).
 *   The kernel runs at base + f (+ the slew rate while a slew runs): base is
 *   the frequency the daemon started from (the state file's, else the
 *   kernel's own, never 0 unless it was 0), f is the engine's correction
 *   (setFrequencyPpm, relative to base, so the engine does not change).
 * - Slew: a temporary extra frequency of at most maxSlewPpm, for a computed
 *   duration, ended by a timer. The kernel PLL stays off (STA_PLL clear,
 *   ADJ_OFFSET never used to correct). When the timer fires late the slew
 *   has run a little past its target; what it ran is counted from the
 *   monotonic time it actually ran (appliedNs stays true) and a residual
 *   of a µs or more is slewed back.
 * - Step: ADJ_SETOFFSET | ADJ_NANO, exact to the ns.
 * - Sync state: STA_UNSYNC cleared with small maxerror/esterror while the
 *   daemon says it is synchronized (markSynchronized, every round), set
 *   again with 16 s errors when it is not or when it stops (close). The
 *   frequency stays in force after close.
 *
 * Time. Every frequency change moves CLOCK_REALTIME and CLOCK_MONOTONIC
 * together (the kernel's NTP adjustment applies to both; only
 * CLOCK_MONOTONIC_RAW is left alone); only a step moves one against the
 * other. So group time at a monotonic instant is that instant plus
 * (REALTIME − MONOTONIC), read once as a tight pair and moved by exactly
 * the steps made here: at(monoNs) is exact for any instant since the last
 * step. Every 10 s now() reads the pair again to notice a step made by
 * someone else.
 *
 * Units: ns as bigint, ppm as number, positive: the clock is moved ahead /
 * made to run faster.
 */
import type { Clock, CorrectionKind } from './clock.js';
import {
  ADJ_ESTERROR,
  ADJ_FREQUENCY,
  ADJ_MAXERROR,
  ADJ_NANO,
  ADJ_OFFSET,
  ADJ_SETOFFSET,
  ADJ_STATUS,
  ADJ_TICK,
  MAX_ERROR_US,
  STA_PLL,
  STA_UNSYNC,
  guessHz,
  kernelFrequencyPpm,
  kernelState,
  maxKernelFrequencyPpm,
  splitFrequency,
  stepTimeval,
  type KernelClock,
  type KernelState,
} from './timex.js';
import { DEFAULT_MAX_SLEW_PPM, DEFAULT_STEP_THRESHOLD_NS, MAX_FREQUENCY_PPM } from './virtual.js';

/** Injected timers (tests drive slews with fakes). */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const realTimers: Timers = {
  set: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface SystemClockOptions {
  kernel: KernelClock;
  /** Largest slew rate, ppm, in (0, 100000]. Default 500. */
  maxSlewPpm?: number;
  stepThresholdNs?: bigint;
  /** Frequency to start from, ppm (positive: faster): the saved one. Default: the kernel's current frequency. */
  startFrequencyPpm?: number;
  timers?: Timers;
  /** A slew lasts at least this long (a small correction runs at a lower rate), ns. Default 200 ms. */
  minSlewNs?: bigint;
  /** A residual this small (|ns|) after a late slew end is left for the next round. Default 1000. */
  minResidualNs?: bigint;
  /** A failure inside a slew timer (the system call failed). Default: ignored. */
  onError?: (err: Error) => void;
  /** CLOCK_REALTIME was stepped by someone else by movedNs (noticed by the check every 10 s). Default: ignored. */
  onForeignStep?: (movedNs: bigint) => void;
}

export interface SystemClockState {
  kind: 'system';
  /** The engine's correction, ppm, relative to startFrequencyPpm. */
  frequencyPpm: number;
  /** The frequency the daemon started from, ppm (saved, or the kernel's at start). */
  startFrequencyPpm: number;
  /** What the kernel runs at without a slew: start + correction, ppm. */
  disciplinedFrequencyPpm: number;
  pendingNs: bigint;
  appliedNs: bigint;
  steps: number;
  slews: number;
  /** Steps of CLOCK_REALTIME noticed that this clock did not make (someone else set the clock). */
  foreignSteps: number;
  maxSlewPpm: number;
  stepThresholdNs: bigint;
  /** Did the daemon last mark the clock synchronized? */
  synchronized: boolean;
  /** The kernel's view, read now (null: the read failed). */
  kernel: KernelState | null;
}

interface Slew {
  /** Monotonic start of the current leg, ns. */
  startNs: bigint;
  /** Still to run at startNs, ns, signed. */
  targetNs: bigint;
  /** The extra frequency actually set, ppm (kernel rounding included), same sign as targetNs. */
  ratePpm: number;
  timer: unknown;
}

const abs = (a: bigint): bigint => (a < 0n ? -a : a);
/** How often now() re-reads REALTIME − MONOTONIC to notice foreign steps, ns. */
const RECHECK_NS = 10_000_000_000n;
/** A change of REALTIME − MONOTONIC beyond this is a foreign step, ns. */
const FOREIGN_STEP_NS = 1_000_000n;

/** The best of a few (MONOTONIC, REALTIME, MONOTONIC) reads: REALTIME − MONOTONIC, ns. */
export function pairedOffsetNs(kernel: KernelClock, tries = 7): bigint {
  let best: bigint | null = null;
  let width = 0n;
  for (let i = 0; i < tries; i++) {
    const m1 = kernel.monotonicNs();
    const r = kernel.realtimeNs();
    const m2 = kernel.monotonicNs();
    if (best === null || m2 - m1 < width) {
      width = m2 - m1;
      best = r - (m1 + (m2 - m1) / 2n);
    }
  }
  return best!;
}

/**
 * The plan of a slew of correctionNs at most maxSlewPpm, lasting at least
 * minSlewNs: the rate (ppm, signed) and the duration (ns). chrony's
 * sys_generic likewise slews small offsets at less than the full rate, so
 * that the timer's lateness costs less.
 */
export function planSlew(correctionNs: bigint, maxSlewPpm: number, minSlewNs: bigint): { ratePpm: number; durationNs: bigint } {
  if (correctionNs === 0n) return { ratePpm: 0, durationNs: 0n };
  const mag = Number(abs(correctionNs));
  let durationNs = (mag / maxSlewPpm) * 1e6;
  if (durationNs < Number(minSlewNs)) durationNs = Number(minSlewNs);
  const ratePpm = ((correctionNs < 0n ? -mag : mag) / durationNs) * 1e6;
  return { ratePpm, durationNs: BigInt(Math.ceil(durationNs)) };
}

export class SystemClock implements Clock {
  readonly kind = 'system' as const;
  readonly maxSlewPpm: number;
  readonly stepThresholdNs: bigint;
  readonly startFrequencyPpm: number;
  private readonly kernel: KernelClock;
  private readonly timers: Timers;
  private readonly hz: number;
  private readonly minSlewNs: bigint;
  private readonly minResidualNs: bigint;
  private readonly onError: (err: Error) => void;
  private readonly onForeignStep: (movedNs: bigint) => void;
  /** REALTIME − MONOTONIC, ns. */
  private offsetNs: bigint;
  private checkedNs: bigint;
  private freqPpm = 0;
  /** Steps plus finished slew legs, ns. */
  private applied0 = 0n;
  private slew: Slew | null = null;
  private steps = 0;
  private slews = 0;
  private foreignSteps = 0;
  private synced = false;
  private closed = false;

  /** Takes over the kernel clock: PLL off, STA_UNSYNC, the start frequency. Throws KernelClockError (EPERM without CAP_SYS_TIME). */
  constructor(opts: SystemClockOptions) {
    this.kernel = opts.kernel;
    this.timers = opts.timers ?? realTimers;
    this.maxSlewPpm = opts.maxSlewPpm ?? DEFAULT_MAX_SLEW_PPM;
    if (!(this.maxSlewPpm > 0 && this.maxSlewPpm <= 100_000)) throw new RangeError(`maxSlewPpm must be in (0, 100000] ppm, got ${this.maxSlewPpm}`);
    this.stepThresholdNs = opts.stepThresholdNs ?? DEFAULT_STEP_THRESHOLD_NS;
    this.minSlewNs = opts.minSlewNs ?? 200_000_000n;
    this.minResidualNs = opts.minResidualNs ?? 1000n;
    this.onError = opts.onError ?? (() => {});
    this.onForeignStep = opts.onForeignStep ?? (() => {});
    const { timex } = this.kernel.adjtime({ modes: 0 });
    this.hz = guessHz(timex.tick);
    const current = kernelFrequencyPpm(timex.freq, timex.tick, this.hz);
    const start = opts.startFrequencyPpm ?? current;
    if (!Number.isFinite(start)) throw new RangeError(`start frequency must be finite, got ${start}`);
    const max = maxKernelFrequencyPpm(this.hz);
    this.startFrequencyPpm = Math.max(-max, Math.min(max, start));
    if ((timex.status & STA_PLL) !== 0 || timex.offset !== 0) {
      // A PLL left running (or its offset left pending) by another discipline: zero its offset
      // while it is on, as chrony does, so that it stops moving the clock once turned off.
      this.kernel.adjtime({ modes: ADJ_OFFSET | ADJ_STATUS, status: STA_PLL | STA_UNSYNC, offset: 0 });
    }
    this.kernel.adjtime({ modes: ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR, status: STA_UNSYNC, maxerror: MAX_ERROR_US, esterror: MAX_ERROR_US });
    this.setKernelFrequency(this.startFrequencyPpm);
    this.offsetNs = pairedOffsetNs(this.kernel);
    this.checkedNs = this.kernel.monotonicNs();
  }

  monotonic(): bigint {
    return this.kernel.monotonicNs();
  }

  /** CLOCK_REALTIME now, ns. */
  now(): bigint {
    const m = this.kernel.monotonicNs();
    if (m - this.checkedNs >= RECHECK_NS) this.recheck(m);
    return m + this.offsetNs;
  }

  /** CLOCK_REALTIME at monotonic instant monoNs: exact for instants since the last step. */
  at(monoNs: bigint): bigint {
    return monoNs + this.offsetNs;
  }

  appliedNs(): bigint {
    return this.applied0 + this.runNs(this.kernel.monotonicNs());
  }

  pendingNs(): bigint {
    if (!this.slew) return 0n;
    return this.slew.targetNs - this.runNs(this.kernel.monotonicNs());
  }

  frequencyPpm(): number {
    return this.freqPpm;
  }

  /** The frequency the kernel runs at outside slews: what is saved on exit, ppm. */
  disciplinedFrequencyPpm(): number {
    return this.startFrequencyPpm + this.freqPpm;
  }

  correct(correctionNs: bigint, allowStep: boolean): CorrectionKind {
    this.checkOpen();
    const m = this.kernel.monotonicNs();
    this.endSlew(m, false);
    if (allowStep && abs(correctionNs) > this.stepThresholdNs) {
      this.kernel.adjtime({ modes: ADJ_SETOFFSET | ADJ_NANO, time: stepTimeval(correctionNs) });
      this.offsetNs += correctionNs;
      this.applied0 += correctionNs;
      this.steps++;
      return 'step';
    }
    this.slews++;
    this.startSlew(m, correctionNs);
    return 'slew';
  }

  /** The engine's frequency correction, relative to the start frequency, ppm; clamped to ±1000. */
  setFrequencyPpm(ppm: number): void {
    if (typeof ppm !== 'number' || !Number.isFinite(ppm)) throw new RangeError(`frequency must be a finite number of ppm, got ${String(ppm)}`);
    this.checkOpen();
    const m = this.kernel.monotonicNs();
    // Count the slew's leg so far at the old base; the rest runs on at the same rate over the new base.
    if (this.slew) this.reanchorSlew(m);
    this.freqPpm = Math.min(MAX_FREQUENCY_PPM, Math.max(-MAX_FREQUENCY_PPM, ppm));
    this.setKernelFrequency(this.disciplinedFrequencyPpm() + (this.slew?.ratePpm ?? 0));
  }

  /**
   * The daemon is synchronized with its group: STA_UNSYNC clear,
   * esterror and maxerror (ns, rounded up to µs) current. Call every round;
   * the kernel adds 500 µs to maxerror every second on its own.
   */
  markSynchronized(estErrorNs: bigint, maxErrorNs: bigint): void {
    this.checkOpen();
    const us = (ns: bigint): number => Math.min(MAX_ERROR_US, Number((abs(ns) + 999n) / 1000n));
    const max = us(maxErrorNs);
    if (max >= MAX_ERROR_US) return this.markUnsynchronized();
    this.kernel.adjtime({ modes: ADJ_STATUS | ADJ_ESTERROR | ADJ_MAXERROR, status: 0, esterror: Math.min(us(estErrorNs), max), maxerror: max });
    this.synced = true;
  }

  /** Not (or no longer) synchronized: STA_UNSYNC set, errors at the kernel's 16 s ceiling. */
  markUnsynchronized(): void {
    this.checkOpen();
    this.kernel.adjtime({ modes: ADJ_STATUS | ADJ_ESTERROR | ADJ_MAXERROR, status: STA_UNSYNC, esterror: MAX_ERROR_US, maxerror: MAX_ERROR_US });
    this.synced = false;
  }

  isSynchronized(): boolean {
    return this.synced;
  }

  /**
   * Stop disciplining: the running slew ends where it is, STA_UNSYNC is
   * set, the disciplined frequency stays in force. Returns it (ppm), for
   * the state file. Idempotent.
   */
  close(): number {
    if (!this.closed) {
      this.endSlew(this.kernel.monotonicNs(), false);
      this.markUnsynchronized();
      this.closed = true;
    }
    return this.disciplinedFrequencyPpm();
  }

  state(): SystemClockState {
    let kernel: KernelState | null = null;
    try {
      const r = this.kernel.adjtime({ modes: 0 });
      kernel = kernelState(r.state, r.timex);
    } catch {
      kernel = null;
    }
    return {
      kind: 'system',
      frequencyPpm: this.freqPpm,
      startFrequencyPpm: this.startFrequencyPpm,
      disciplinedFrequencyPpm: this.disciplinedFrequencyPpm(),
      pendingNs: this.pendingNs(),
      appliedNs: this.appliedNs(),
      steps: this.steps,
      slews: this.slews,
      foreignSteps: this.foreignSteps,
      maxSlewPpm: this.maxSlewPpm,
      stepThresholdNs: this.stepThresholdNs,
      synchronized: this.synced,
      kernel,
    };
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('the system clock is closed');
  }

  /** Set the kernel to ppm (tick and freq); returns what it actually runs at, ppm. */
  private setKernelFrequency(ppm: number): number {
    const { tick, freq } = splitFrequency(ppm, this.hz);
    this.kernel.adjtime({ modes: ADJ_FREQUENCY | ADJ_TICK, freq, tick });
    return kernelFrequencyPpm(freq, tick, this.hz);
  }

  /** What the current slew leg has run by monotonic m, ns (it runs until the kernel's rate is changed, also past its target). */
  private runNs(m: bigint): bigint {
    const s = this.slew;
    if (!s) return 0n;
    const e = m > s.startNs ? m - s.startNs : 0n;
    return BigInt(Math.trunc((Number(e) * s.ratePpm) / 1e6));
  }

  private startSlew(m: bigint, correctionNs: bigint): void {
    const plan = planSlew(correctionNs, this.maxSlewPpm, this.minSlewNs);
    if (plan.ratePpm === 0) return;
    const base = splitFrequency(this.disciplinedFrequencyPpm(), this.hz);
    // The rate the kernel really runs the slew at: what it was given, less the base, both after its 2^-16 ppm rounding.
    const actual = this.setKernelFrequency(this.disciplinedFrequencyPpm() + plan.ratePpm) - kernelFrequencyPpm(base.freq, base.tick, this.hz);
    const slew: Slew = { startNs: m, targetNs: correctionNs, ratePpm: actual, timer: null };
    slew.timer = this.timers.set(() => this.onSlewTimer(slew), Number(plan.durationNs) / 1e6);
    this.slew = slew;
  }

  private reanchorSlew(m: bigint): void {
    const s = this.slew!;
    const run = this.runNs(m);
    this.applied0 += run;
    s.targetNs -= run;
    s.startNs = m;
  }

  /** Ends the slew at m: counts what ran, restores the disciplined frequency; with residual, slews what is left or overshot. */
  private endSlew(m: bigint, residual: boolean): void {
    const s = this.slew;
    if (!s) return;
    this.timers.clear(s.timer);
    const run = this.runNs(m);
    this.applied0 += run;
    this.slew = null;
    const left = s.targetNs - run;
    if (residual && abs(left) >= this.minResidualNs) {
      this.startSlew(m, left);
      if (this.slew) return;
    }
    this.setKernelFrequency(this.disciplinedFrequencyPpm());
  }

  private onSlewTimer(s: Slew): void {
    if (this.slew !== s || this.closed) return;
    try {
      this.endSlew(this.kernel.monotonicNs(), true);
    } catch (err) {
      this.onError(err as Error);
    }
  }

  private recheck(m: bigint): void {
    this.checkedNs = m;
    const fresh = pairedOffsetNs(this.kernel, 3);
    if (abs(fresh - this.offsetNs) > FOREIGN_STEP_NS) {
      const moved = fresh - this.offsetNs;
      this.foreignSteps++;
      this.offsetNs = fresh;
      this.onForeignStep(moved);
    }
  }
}
