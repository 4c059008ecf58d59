/**
 * The clock interface. Only lib/clock reads or sets a clock; the protocol
 * engine (lib/core) sees a clock through ClockView and asks for corrections
 * with actions that the daemon or the simulator applies through Clock.
 *
 * Units: nanoseconds as bigint; frequencies in ppm (parts per million) as
 * number. Group time is the time the group agrees on; monotonic time is the
 * host's CLOCK_MONOTONIC (process.hrtime.bigint()) or, in the simulator,
 * virtual time.
 */

/** A source of monotonic nanoseconds. */
export type Monotonic = () => bigint;

/** What the protocol engine may read. */
export interface ClockView {
  /** Group time now. Never decreases except by a step. */
  now(): bigint;
  /**
   * Group time at monotonic instant monoNs (a receive timestamp taken a
   * moment ago). Exact for instants since the last correction.
   */
  at(monoNs: bigint): bigint;
  /**
   * Total correction applied so far, in ns: every step plus the part of
   * every slew already run. A correction of +x adds x here, in full once the
   * slew is done. The engine subtracts two readings to learn what was
   * corrected between a measurement and its answer.
   */
  appliedNs(): bigint;
  /** Frequency correction in force (positive: the clock is made to run faster). */
  frequencyPpm(): number;
}

export type CorrectionKind = 'step' | 'slew';

export interface ClockDiscipline {
  /** Largest slew rate, ppm. */
  maxSlewPpm: number;
  /** A correction larger than this (absolute) is stepped when stepping is allowed. */
  stepThresholdNs: bigint;
}

/** A clock the daemon or simulator can correct. */
export interface Clock extends ClockView {
  readonly kind: 'virtual' | 'simulated' | 'system';
  monotonic(): bigint;
  /**
   * Correct the clock by correctionNs (positive: move it ahead). Replaces
   * what is left of any earlier slew, never adds to it. Steps at once when
   * |correctionNs| > stepThresholdNs and allowStep; otherwise slews at
   * maxSlewPpm.
   */
  correct(correctionNs: bigint, allowStep: boolean): CorrectionKind;
  /** Set the frequency correction (absolute, ppm), effective from now. */
  setFrequencyPpm(ppm: number): void;
  /** The part of the last slew not yet run, ns. */
  pendingNs(): bigint;
}
