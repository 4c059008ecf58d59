/**
 * The kernel clock's control block, struct timex (adjtimex(2),
 * clock_adjtime(2)), and the pure arithmetic around it: frequency in the
 * kernel's units, the split between tick and frequency, the time value of a
 * step. No system call here: KernelClock is the interface that
 * adjtimex.ts implements with koffi and that tests fake.
 *
 * Units and signs. The kernel's freq is ppm scaled by 2^16 (65536 = 1 ppm)
 * and positive makes the clock run faster; tick is µs added per USER_HZ
 * tick (10000 at USER_HZ = 100), so one µs of tick is USER_HZ ppm, again
 * positive for faster. maxerror and esterror are µs. Everywhere in
 * lib/clock, a frequency in ppm is positive when the clock is made to run
 * faster.
 */

// modes (linux/timex.h)
export const ADJ_OFFSET = 0x0001;
export const ADJ_FREQUENCY = 0x0002;
export const ADJ_MAXERROR = 0x0004;
export const ADJ_ESTERROR = 0x0008;
export const ADJ_STATUS = 0x0010;
export const ADJ_TIMECONST = 0x0020;
export const ADJ_TAI = 0x0080;
export const ADJ_SETOFFSET = 0x0100;
export const ADJ_MICRO = 0x1000;
export const ADJ_NANO = 0x2000;
export const ADJ_TICK = 0x4000;

// status bits
export const STATUS_BITS = {
  STA_PLL: 0x0001,
  STA_PPSFREQ: 0x0002,
  STA_PPSTIME: 0x0004,
  STA_FLL: 0x0008,
  STA_INS: 0x0010,
  STA_DEL: 0x0020,
  STA_UNSYNC: 0x0040,
  STA_FREQHOLD: 0x0080,
  STA_PPSSIGNAL: 0x0100,
  STA_PPSJITTER: 0x0200,
  STA_PPSWANDER: 0x0400,
  STA_PPSERROR: 0x0800,
  STA_CLOCKERR: 0x1000,
  STA_NANO: 0x2000,
  STA_MODE: 0x4000,
  STA_CLK: 0x8000,
} as const;
export const STA_PLL = STATUS_BITS.STA_PLL;
export const STA_UNSYNC = STATUS_BITS.STA_UNSYNC;
/** Bits that say a discipline is at work in the kernel (its PLL, FLL or PPS loop). */
export const STA_DISCIPLINE = STATUS_BITS.STA_PLL | STATUS_BITS.STA_FLL | STATUS_BITS.STA_PPSFREQ | STATUS_BITS.STA_PPSTIME;

/** Return values of adjtimex (the clock state). */
export const TIME_STATES = ['TIME_OK', 'TIME_INS', 'TIME_DEL', 'TIME_OOP', 'TIME_WAIT', 'TIME_ERROR'] as const;

/** Scale of timex.freq: 65536 per ppm. */
export const FREQ_SCALE = 65536;
/** Largest |timex.freq| the kernel takes, ppm (MAXFREQ). */
export const MAX_TIMEX_FREQ_PPM = 500;
/** The kernel's maxerror ceiling: at or beyond 16 s it sets STA_UNSYNC itself. */
export const MAX_ERROR_US = 16_000_000;
/** CLOCK_REALTIME, for clock_adjtime and clock_gettime. */
export const CLOCK_REALTIME = 0;

/** What the caller sets (only the fields its modes name are read by the kernel). */
export interface TimexRequest {
  modes: number;
  offset?: number;
  freq?: number;
  maxerror?: number;
  esterror?: number;
  status?: number;
  tick?: number;
  /** ADJ_SETOFFSET: seconds and (with ADJ_NANO) nanoseconds in [0, 1e9). */
  time?: { sec: number; usec: number };
}

/** The kernel's state, as adjtimex returns it. */
export interface Timex {
  modes: number;
  offset: number;
  freq: number;
  maxerror: number;
  esterror: number;
  status: number;
  constant: number;
  precision: number;
  tolerance: number;
  time: { sec: number; usec: number };
  tick: number;
  tai: number;
}

/** The system calls the system clock needs. adjtimex.ts implements it; tests fake it. */
export interface KernelClock {
  /** clock_adjtime(CLOCK_REALTIME, tx): the clock state (0..5) and the kernel's timex after the call. Throws KernelClockError. */
  adjtime(req: TimexRequest): { state: number; timex: Timex };
  /** clock_gettime(CLOCK_REALTIME), ns since the epoch. */
  realtimeNs(): bigint;
  /** CLOCK_MONOTONIC, ns (process.hrtime.bigint()). */
  monotonicNs(): bigint;
}

/** A failed system call, with its errno name (EPERM, EINVAL ...). */
export class KernelClockError extends Error {
  constructor(
    readonly call: string,
    readonly code: string,
    message: string,
  ) {
    super(`${call}: ${code}: ${message}`);
  }
}

/** ppm → timex.freq (rounded to the kernel's 2^-16 ppm). */
export function ppmToTimexFreq(ppm: number): number {
  return Math.round(ppm * FREQ_SCALE);
}

/** The USER_HZ the kernel's tick is counted in: the rate whose nominal tick lies within 10% of tick. */
export function guessHz(tick: number): number {
  for (const hz of [100, 1000, 250, 300, 1024, 128, 256, 1200]) {
    const nominal = 1e6 / hz;
    if (Math.abs(tick - nominal) <= nominal / 10) return hz;
  }
  return 100;
}

/** The kernel's frequency in ppm (positive: faster) from its freq and tick. */
export function kernelFrequencyPpm(freq: number, tick: number, hz: number): number {
  const nominal = Math.round(1e6 / hz);
  return freq / FREQ_SCALE + (tick - nominal) * hz;
}

/** The frequency range the kernel can run at, ppm: the tick's ±10% plus freq's ±500 ppm, less a margin. */
export function maxKernelFrequencyPpm(hz: number): number {
  return Math.floor((1e6 / hz / 10) * hz * 0.99);
}

/**
 * Split a frequency (ppm, positive: faster) into the kernel's tick and
 * freq, like chrony's sys_linux: within ±500 ppm the tick stays nominal and
 * freq carries it all; beyond, whole µs of tick carry the bulk (one µs of
 * tick = hz ppm) and freq the rest.
 */
export function splitFrequency(ppm: number, hz: number): { tick: number; freq: number } {
  const nominal = Math.round(1e6 / hz);
  const max = maxKernelFrequencyPpm(hz);
  const p = Math.max(-max, Math.min(max, ppm));
  if (Math.abs(p) <= MAX_TIMEX_FREQ_PPM) return { tick: nominal, freq: ppmToTimexFreq(p) };
  const delta = Math.round(p / hz);
  const rest = Math.max(-MAX_TIMEX_FREQ_PPM, Math.min(MAX_TIMEX_FREQ_PPM, p - delta * hz));
  return { tick: nominal + delta, freq: ppmToTimexFreq(rest) };
}

/**
 * The time value of ADJ_SETOFFSET|ADJ_NANO for a step of ns (positive:
 * ahead). The kernel wants 0 ≤ nanoseconds < 1e9, so a negative step
 * borrows a second: -1.5 s is {sec: -2, usec: 500000000}.
 */
export function stepTimeval(ns: bigint): { sec: number; usec: number } {
  const G = 1_000_000_000n;
  let sec = ns / G;
  let rem = ns % G;
  if (rem < 0n) {
    sec -= 1n;
    rem += G;
  }
  return { sec: Number(sec), usec: Number(rem) };
}

/** The names of the status bits set in status, in bit order. */
export function statusNames(status: number): string[] {
  return Object.entries(STATUS_BITS)
    .filter(([, bit]) => (status & bit) !== 0)
    .map(([name]) => name);
}

/** The kernel's clock state as status shows it (read without privilege). */
export interface KernelState {
  /** Frequency in force, ppm (positive: faster), tick included. */
  frequencyPpm: number;
  freq: number;
  tick: number;
  status: number;
  statusNames: string[];
  /** TIME_OK ... TIME_ERROR (TIME_ERROR: not synchronized). */
  state: string;
  synchronized: boolean;
  maxErrorUs: number;
  estErrorUs: number;
  /** The kernel PLL's outstanding offset (µs, or ns with STA_NANO). */
  offset: number;
  /** Seconds TAI − UTC. */
  tai: number;
}

export function kernelState(state: number, tx: Timex): KernelState {
  return {
    frequencyPpm: kernelFrequencyPpm(tx.freq, tx.tick, guessHz(tx.tick)),
    freq: tx.freq,
    tick: tx.tick,
    status: tx.status,
    statusNames: statusNames(tx.status),
    state: TIME_STATES[state] ?? String(state),
    synchronized: (tx.status & STA_UNSYNC) === 0 && state !== 5,
    maxErrorUs: tx.maxerror,
    estErrorUs: tx.esterror,
    offset: tx.offset,
    tai: tx.tai,
  };
}
