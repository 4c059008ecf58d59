/**
 * The virtual and simulated clocks: group time kept inside the process as a
 * piecewise-linear function of monotonic time. Neither touches the host clock.
 *
 * - virtual: group time = originNs + elapsed monotonic time + corrections,
 *   originNs taken from the system clock when the clock is created.
 * - simulated: the same, plus an injected starting offset (offsetNs) and an
 *   oscillator error (driftPpm), the seed's random logical clock. In the
 *   simulator the monotonic source is virtual time.
 *
 * Model. The clock keeps an anchor (mono0, group0, applied0) and, on the
 * current segment, runs at
 *
 *   rate = 1 + driftPpm·1e-6 + frequencyPpm·1e-6   (± maxSlewPpm·1e-6 while a slew runs)
 *
 *   group(m)   = group0 + (m − mono0)·(1 + drift + f) + slewed(m)
 *   slewed(m)  = sign(P)·min(|P|, (m − mono0)·maxSlew)
 *
 * where P is what is left of the current slew at the anchor. Every correct()
 * and setFrequencyPpm() first re-anchors at the current monotonic instant, so
 * the clock stays continuous across changes of rate.
 *
 * Arithmetic and rounding. Everything is exact bigint arithmetic: rates are
 * held in ppt (parts per 10^12, i.e. 1e-6 ppm; a ppm argument is rounded to
 * the nearest ppt), and the internal state is held in units of 1e-12 ns, so
 * that re-anchoring loses nothing. Rounding happens only when a value is read:
 * now() and at() round down (toward −∞, which keeps the clock monotonic);
 * appliedNs() and pendingNs() round toward zero, so while a slew runs they may
 * sum to 1 ns less than the correction asked for.
 *
 * The clock never runs backwards: the slowest possible rate is
 * 1 − 100000 ppm (drift) − 1000 ppm (frequency) − 100000 ppm (slew) ≈ 0.8.
 */
import type { Clock, CorrectionKind, Monotonic } from './clock.js';

/** Largest frequency correction, ppm; setFrequencyPpm clamps to ±this. */
export const MAX_FREQUENCY_PPM = 1000;
/** Largest |driftPpm| of a simulated clock and largest maxSlewPpm, ppm. */
export const MAX_RATE_PPM = 100_000;
export const DEFAULT_MAX_SLEW_PPM = 500;
/** Corrections larger than this (absolute) are stepped when stepping is allowed. */
export const DEFAULT_STEP_THRESHOLD_NS = 128_000_000n;

/** 1 ns in internal units (1e-12 ns); also "1" as a rate in ppt. */
const SCALE = 1_000_000_000_000n;

export interface VirtualClockOptions {
  /** Monotonic nanoseconds. Default: process.hrtime.bigint. */
  monotonic?: Monotonic;
  /** Group time at creation, ns since the Unix epoch. Default: the system clock. */
  originNs?: bigint;
  /** Slew rate, ppm, in (0, 100000]. Default 500. */
  maxSlewPpm?: number;
  /** Step threshold, ns, ≥ 0. Default 128 ms for a bare clock; the daemon and the simulator always pass the engine's --step-threshold (100 µs by default). */
  stepThresholdNs?: bigint;
}

export interface SimulatedClockOptions extends VirtualClockOptions {
  /** Starting offset, ns (positive: the clock starts ahead of originNs). Default 0. */
  offsetNs?: bigint;
  /** Oscillator error, ppm, |driftPpm| ≤ 100000 (positive: the raw clock runs fast). Default 0. */
  driftPpm?: number;
}

/** A plain snapshot for status output. */
export interface VirtualClockState {
  kind: 'virtual' | 'simulated';
  /** Frequency correction in force, ppm (positive: made to run faster). */
  frequencyPpm: number;
  /** The part of the last slew not yet run, ns (positive: still to move ahead). */
  pendingNs: bigint;
  /** Steps plus the run part of every slew, ns. Excludes the frequency correction. */
  appliedNs: bigint;
  steps: number;
  slews: number;
  maxSlewPpm: number;
  stepThresholdNs: bigint;
  /** Simulated only: the injected oscillator error, ppm. */
  driftPpm?: number;
  /** Simulated only: the injected starting offset, ns. */
  offsetNs?: bigint;
}

function ppmToPpt(ppm: number): bigint {
  return BigInt(Math.round(ppm * 1e6));
}

/** a / SCALE rounded toward −∞. */
function floorScaled(a: bigint): bigint {
  return a >= 0n ? a / SCALE : -((-a + SCALE - 1n) / SCALE);
}

function abs(a: bigint): bigint {
  return a < 0n ? -a : a;
}

function checkRatePpm(name: string, value: unknown, min: number, max: number, minOpen: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value > max || (minOpen ? value <= min : value < min)) {
    throw new RangeError(`${name} must be a number in ${minOpen ? '(' : '['}${min}, ${max}] ppm, got ${String(value)}`);
  }
  return value;
}

function checkBigint(name: string, value: unknown): bigint {
  if (typeof value !== 'bigint') throw new TypeError(`${name} must be a bigint (ns), got ${typeof value}`);
  return value;
}

export class VirtualClock implements Clock {
  readonly kind: 'virtual' | 'simulated';
  readonly maxSlewPpm: number;
  readonly stepThresholdNs: bigint;
  private readonly source: Monotonic;
  private readonly driftPpm: number;
  private readonly offsetNs: bigint;
  private readonly driftPpt: bigint;
  private readonly maxSlewPpt: bigint;
  private freqPpt = 0n;
  // The anchor; the *Fine values are in 1e-12 ns.
  private mono0: bigint;
  private group0Fine: bigint;
  private applied0Fine = 0n;
  /** What is left of the current slew at the anchor, 1e-12 ns, signed. */
  private slewFine = 0n;
  private lastNowNs: bigint | undefined;
  private steps = 0;
  private slews = 0;

  /** Prefer createVirtualClock / createSimulatedClock. Validates opts (RangeError, TypeError). */
  constructor(kind: 'virtual' | 'simulated', opts: SimulatedClockOptions = {}) {
    if (kind !== 'virtual' && kind !== 'simulated') throw new RangeError(`unknown clock kind ${String(kind)}`);
    if (kind === 'virtual' && (opts.offsetNs !== undefined || opts.driftPpm !== undefined)) {
      throw new RangeError('offsetNs and driftPpm apply only to a simulated clock');
    }
    const monotonic = opts.monotonic ?? (() => process.hrtime.bigint());
    if (typeof monotonic !== 'function') throw new TypeError('monotonic must be a function returning bigint ns');
    this.kind = kind;
    this.source = monotonic;
    this.maxSlewPpm = checkRatePpm('maxSlewPpm', opts.maxSlewPpm ?? DEFAULT_MAX_SLEW_PPM, 0, MAX_RATE_PPM, true);
    this.driftPpm = checkRatePpm('driftPpm', opts.driftPpm ?? 0, -MAX_RATE_PPM, MAX_RATE_PPM, false);
    this.stepThresholdNs = checkBigint('stepThresholdNs', opts.stepThresholdNs ?? DEFAULT_STEP_THRESHOLD_NS);
    if (this.stepThresholdNs < 0n) throw new RangeError(`stepThresholdNs must be ≥ 0, got ${this.stepThresholdNs}`);
    this.offsetNs = checkBigint('offsetNs', opts.offsetNs ?? 0n);
    this.driftPpt = ppmToPpt(this.driftPpm);
    this.maxSlewPpt = ppmToPpt(this.maxSlewPpm);
    this.mono0 = checkBigint('monotonic()', monotonic());
    const originNs = checkBigint('originNs', opts.originNs ?? BigInt(Date.now()) * 1_000_000n);
    this.group0Fine = (originNs + this.offsetNs) * SCALE;
  }

  monotonic(): bigint {
    return this.source();
  }

  /** Group time now, ns. Never decreases between calls except after a step. */
  now(): bigint {
    let g = this.at(this.source());
    // Guard against a monotonic source that goes back: the model itself is nondecreasing.
    if (this.lastNowNs !== undefined && g < this.lastNowNs) g = this.lastNowNs;
    this.lastNowNs = g;
    return g;
  }

  /**
   * Group time at monotonic instant monoNs, ns, on the current segment. Exact
   * for instants since the last correct()/setFrequencyPpm(); earlier instants
   * are extrapolated backwards at the rate the current segment starts with
   * (including any slew in progress), not what the clock read then.
   */
  at(monoNs: bigint): bigint {
    return floorScaled(this.groupFine(monoNs - this.mono0));
  }

  /** Steps plus the run part of every slew, ns, rounded toward zero. */
  appliedNs(): bigint {
    return (this.applied0Fine + this.slewedFine(this.elapsedNow())) / SCALE;
  }

  /** The part of the last slew not yet run, ns, rounded toward zero. */
  pendingNs(): bigint {
    return (this.slewFine - this.slewedFine(this.elapsedNow())) / SCALE;
  }

  frequencyPpm(): number {
    return Number(this.freqPpt) / 1e6;
  }

  /**
   * Correct by correctionNs (positive: move the clock ahead). Drops what is
   * left of the previous slew, then steps at once when |correctionNs| >
   * stepThresholdNs and allowStep, otherwise slews at maxSlewPpm.
   */
  correct(correctionNs: bigint, allowStep: boolean): CorrectionKind {
    checkBigint('correctionNs', correctionNs);
    this.reanchor();
    this.slewFine = 0n;
    if (allowStep && abs(correctionNs) > this.stepThresholdNs) {
      this.group0Fine += correctionNs * SCALE;
      this.applied0Fine += correctionNs * SCALE;
      this.lastNowNs = undefined;
      this.steps++;
      return 'step';
    }
    this.slewFine = correctionNs * SCALE;
    this.slews++;
    return 'slew';
  }

  /**
   * Set the frequency correction, ppm (absolute; positive: run faster),
   * effective from now. Clamped to ±MAX_FREQUENCY_PPM; NaN or ±Infinity is a
   * RangeError. Resolution 1e-6 ppm.
   */
  setFrequencyPpm(ppm: number): void {
    if (typeof ppm !== 'number' || !Number.isFinite(ppm)) {
      throw new RangeError(`frequency must be a finite number of ppm, got ${String(ppm)}`);
    }
    this.reanchor();
    this.freqPpt = ppmToPpt(Math.min(MAX_FREQUENCY_PPM, Math.max(-MAX_FREQUENCY_PPM, ppm)));
  }

  /**
   * Step the simulated oscillator itself by ns, as an administrator's
   * `date -s` steps a host clock: group time jumps, and appliedNs() does not
   * count it (it is no correction of ours). Simulated clocks only.
   */
  disturb(ns: bigint): void {
    if (this.kind !== 'simulated') throw new RangeError('only a simulated clock can be disturbed');
    checkBigint('ns', ns);
    this.reanchor();
    this.group0Fine += ns * SCALE;
    this.lastNowNs = undefined;
  }

  state(): VirtualClockState {
    const s: VirtualClockState = {
      kind: this.kind,
      frequencyPpm: this.frequencyPpm(),
      pendingNs: this.pendingNs(),
      appliedNs: this.appliedNs(),
      steps: this.steps,
      slews: this.slews,
      maxSlewPpm: this.maxSlewPpm,
      stepThresholdNs: this.stepThresholdNs,
    };
    if (this.kind === 'simulated') {
      s.driftPpm = this.driftPpm;
      s.offsetNs = this.offsetNs;
    }
    return s;
  }

  /** Monotonic ns since the anchor, never negative (a source that goes back reads as the anchor). */
  private elapsedNow(): bigint {
    const e = this.source() - this.mono0;
    return e > 0n ? e : 0n;
  }

  /** The run part of the current slew after e ns on this segment, 1e-12 ns (linear for e < 0). */
  private slewedFine(e: bigint): bigint {
    if (this.slewFine === 0n) return 0n;
    const run = e * this.maxSlewPpt;
    if (run >= abs(this.slewFine)) return this.slewFine;
    return this.slewFine > 0n ? run : -run;
  }

  private groupFine(e: bigint): bigint {
    return this.group0Fine + e * (SCALE + this.driftPpt + this.freqPpt) + this.slewedFine(e);
  }

  /** Move the anchor to the current monotonic instant, keeping group time continuous. */
  private reanchor(): void {
    const e = this.elapsedNow();
    const slewed = this.slewedFine(e);
    this.group0Fine = this.groupFine(e);
    this.applied0Fine += slewed;
    this.slewFine -= slewed;
    this.mono0 += e;
  }
}

/** A virtual clock (kind 'virtual'): group time kept in the process, starting from the system clock. */
export function createVirtualClock(opts: VirtualClockOptions = {}): VirtualClock {
  return new VirtualClock('virtual', opts);
}

/** A simulated clock (kind 'simulated'): a virtual clock with a starting offset and an oscillator drift. */
export function createSimulatedClock(opts: SimulatedClockOptions = {}): VirtualClock {
  return new VirtualClock('simulated', opts);
}
