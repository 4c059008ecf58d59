/**
 * An external reference, read and never set: the host's system clock as
 * another service disciplines it (chrony from NTP or NTS, ptp4l and
 * phc2sys, a GPS), with the health that service reports to the kernel
 * (STA_UNSYNC, maxerror). Reading is clock_gettime and clock_adjtime with
 * modes 0: no privilege, no change.
 *
 * The engine compares its group clock with the reference at one monotonic
 * instant (see lib/core/reference.ts for what it does with that).
 *
 * fileReference is a stand-in for tests and benchmarks: a simulated
 * reference clock, a linear function of CLOCK_MONOTONIC, with its health,
 * described by a small JSON file that the test rewrites (a step, a drift, a
 * loss) while the daemons run.
 */
import { readFileSync } from 'node:fs';
import { realKernelClock } from './adjtimex.js';
import { STA_UNSYNC, type KernelClock } from './timex.js';

/** One reading of the reference. */
export interface ReferenceReading {
  /** The monotonic instant the reading stands for, ns. */
  monoNs: bigint;
  /** The reference's time then, ns since the epoch. */
  timeNs: bigint;
  /** The reference says it is unsynchronized (STA_UNSYNC). */
  unsync: boolean;
  /** Its own worst-case error, ns (the kernel's maxerror). */
  maxErrorNs: bigint;
}

export interface ReferenceClock {
  readonly kind: 'system' | 'file';
  /** A reading now; throws with a message when the reference cannot be read. */
  read(): ReferenceReading;
}

/** The system clock as a reference (never set). monotonic: the clock the group clock runs on. */
export function systemReference(kernel?: KernelClock, monotonic: () => bigint = () => process.hrtime.bigint()): ReferenceClock {
  const k = kernel ?? realKernelClock();
  return {
    kind: 'system',
    read(): ReferenceReading {
      const { timex } = k.adjtime({ modes: 0 });
      // The realtime read between two monotonic reads stands for their midpoint (a few µs apart at most).
      const before = monotonic();
      const timeNs = k.realtimeNs();
      const after = monotonic();
      return { monoNs: (before + after) / 2n, timeNs, unsync: (timex.status & STA_UNSYNC) !== 0, maxErrorNs: BigInt(timex.maxerror) * 1000n };
    },
  };
}

/**
 * The file's JSON: the reference's time timeNs at monotonic instant monoNs
 * (decimal strings), its rate error driftPpm (positive: fast), and its
 * health: unsync (boolean) and maxErrorUs.
 */
export interface ReferenceFile {
  monoNs: string;
  timeNs: string;
  driftPpm: number;
  unsync: boolean;
  maxErrorUs: number;
}

/** The reference described by a file (tests): re-read at every reading, so a rewrite takes effect at the next round. */
export function fileReference(path: string, monotonic: () => bigint = () => process.hrtime.bigint()): ReferenceClock {
  return {
    kind: 'file',
    read(): ReferenceReading {
      const f = JSON.parse(readFileSync(path, 'utf8')) as ReferenceFile;
      const mono = monotonic();
      return { monoNs: mono, timeNs: referenceTimeAt(f, mono), unsync: f.unsync, maxErrorNs: BigInt(Math.round(f.maxErrorUs)) * 1000n };
    },
  };
}

/** The reference's time at monotonic instant monoNs, from the file's description (for the test that wrote it). */
export function referenceTimeAt(f: ReferenceFile, monoNs: bigint): bigint {
  const elapsed = monoNs - BigInt(f.monoNs);
  return BigInt(f.timeNs) + elapsed + BigInt(Math.round((Number(elapsed) * f.driftPpm) / 1e6));
}
