/**
 * A fake of the kernel clock (KernelClock) and of timers, for the system
 * clock's arithmetic. It keeps timex state the way Linux does for the
 * fields berkeleyd uses, checks values the way do_adjtimex does (EINVAL for
 * a tick out of ±10% or an unnormalized ADJ_SETOFFSET, EPERM for writes
 * when unprivileged), and integrates the frequency it is set to over the
 * test's monotonic time, so a test can check what a slew really ran.
 */
import {
  ADJ_ESTERROR,
  ADJ_FREQUENCY,
  ADJ_MAXERROR,
  ADJ_NANO,
  ADJ_OFFSET,
  ADJ_SETOFFSET,
  ADJ_STATUS,
  ADJ_TICK,
  FREQ_SCALE,
  KernelClockError,
  STA_UNSYNC,
  kernelFrequencyPpm,
  type KernelClock,
  type Timex,
  type TimexRequest,
} from '../../lib/clock/timex.js';
import type { Timers } from '../../lib/clock/system.js';

export class FakeKernel implements KernelClock {
  /** The test's monotonic clock, ns. */
  mono = 1_000_000_000_000n;
  /** REALTIME − MONOTONIC, ns. */
  offset = 1_700_000_000_000_000_000n;
  freq = 0;
  tick = 10_000;
  status: number = STA_UNSYNC;
  maxerror = 16_000_000;
  esterror = 16_000_000;
  pllOffset = 0;
  privileged = true;
  /** Every request, in order. */
  readonly calls: TimexRequest[] = [];
  /** ∫ frequency dt since creation, ns: what the frequency settings moved the clock. */
  private phaseFine = 0;

  constructor(init: Partial<Pick<FakeKernel, 'freq' | 'tick' | 'status' | 'pllOffset' | 'privileged'>> = {}) {
    Object.assign(this, init);
  }

  frequencyPpm(): number {
    return kernelFrequencyPpm(this.freq, this.tick, 100);
  }

  /** Let ns of monotonic time pass at the frequency in force. */
  advance(ns: bigint): void {
    this.phaseFine += (Number(ns) * this.frequencyPpm()) / 1e6;
    this.mono += ns;
  }

  /** What the frequency settings have moved the clock so far, ns. */
  phaseNs(): number {
    return this.phaseFine;
  }

  writes(): TimexRequest[] {
    return this.calls.filter((c) => c.modes !== 0);
  }

  adjtime(req: TimexRequest): { state: number; timex: Timex } {
    this.calls.push(structuredClone(req));
    const m = req.modes;
    if (m !== 0 && !this.privileged) throw new KernelClockError('clock_adjtime', 'EPERM', 'not permitted');
    if (m & ADJ_SETOFFSET) {
      const t = req.time!;
      const limit = m & ADJ_NANO ? 1e9 : 1e6;
      if (t.usec < 0 || t.usec >= limit || !Number.isInteger(t.usec)) throw new KernelClockError('clock_adjtime', 'EINVAL', 'bad time');
      this.offset += BigInt(t.sec) * 1_000_000_000n + BigInt(m & ADJ_NANO ? t.usec : t.usec * 1000);
    }
    if (m & ADJ_TICK && (req.tick! < 9000 || req.tick! > 11000)) throw new KernelClockError('clock_adjtime', 'EINVAL', 'tick out of range');
    if (m & ADJ_STATUS) this.status = req.status!;
    if (m & ADJ_FREQUENCY) this.freq = Math.max(-500 * FREQ_SCALE, Math.min(500 * FREQ_SCALE, req.freq!));
    if (m & ADJ_MAXERROR) this.maxerror = req.maxerror!;
    if (m & ADJ_ESTERROR) this.esterror = req.esterror!;
    if (m & ADJ_OFFSET) this.pllOffset = req.offset!;
    if (m & ADJ_TICK) this.tick = req.tick!;
    const rt = this.realtimeNs();
    return {
      state: this.status & STA_UNSYNC ? 5 : 0,
      timex: {
        modes: m,
        offset: this.pllOffset,
        freq: this.freq,
        maxerror: this.maxerror,
        esterror: this.esterror,
        status: this.status,
        constant: 2,
        precision: 1,
        tolerance: 32768000,
        time: { sec: Number(rt / 1_000_000_000n), usec: Number((rt % 1_000_000_000n) / 1000n) },
        tick: this.tick,
        tai: 0,
      },
    };
  }

  realtimeNs(): bigint {
    return this.mono + this.offset;
  }

  monotonicNs(): bigint {
    return this.mono;
  }
}

/** Timers a test fires by hand. */
export class FakeTimers implements Timers {
  private next = 1;
  readonly pending = new Map<number, { fn: () => void; ms: number }>();

  set(fn: () => void, ms: number): unknown {
    const h = this.next++;
    this.pending.set(h, { fn, ms });
    return h;
  }

  clear(h: unknown): void {
    this.pending.delete(h as number);
  }

  /** The only pending timer's delay, ms (fails the test's expectation by throwing when there is not exactly one). */
  only(): { ms: number; fire: () => void } {
    if (this.pending.size !== 1) throw new Error(`${this.pending.size} timers pending, expected 1`);
    const [h, t] = [...this.pending][0]!;
    return {
      ms: t.ms,
      fire: () => {
        this.pending.delete(h);
        t.fn();
      },
    };
  }
}
