/**
 * The real KernelClock: clock_adjtime(2) and clock_gettime(2) on
 * CLOCK_REALTIME from the C library, called through koffi (prebuilt
 * binaries, no compiler at install time). Loaded on first use, so that a
 * process that never asks for the system clock never loads libc through
 * koffi. Reading (modes 0) needs no privilege; anything else needs
 * CAP_SYS_TIME, and fails with EPERM without it.
 *
 * struct timex as glibc lays it out on 64-bit Linux (208 bytes): koffi
 * places the fields with the C alignment rules.
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { CLOCK_REALTIME, KernelClockError, type KernelClock, type Timex, type TimexRequest } from './timex.js';

interface Binding {
  clockAdjtime(id: number, tx: Record<string, unknown>): number;
  clockGettime(id: number, ts: Record<string, unknown>): number;
  errno(): number;
}

let binding: Binding | null = null;

function load(): Binding {
  if (binding) return binding;
  if (process.platform !== 'linux') throw new KernelClockError('clock_adjtime', 'ENOSYS', `the system clock is supported on Linux only, not ${process.platform}`);
  const koffi = createRequire(import.meta.url)('koffi');
  const libc = koffi.load('libc.so.6');
  const timeval = koffi.struct('berkeleyd_timeval', { tv_sec: 'long', tv_usec: 'long' });
  koffi.struct('berkeleyd_timex', {
    modes: 'uint',
    offset: 'long',
    freq: 'long',
    maxerror: 'long',
    esterror: 'long',
    status: 'int',
    constant: 'long',
    precision: 'long',
    tolerance: 'long',
    time: timeval,
    tick: 'long',
    ppsfreq: 'long',
    jitter: 'long',
    shift: 'int',
    stabil: 'long',
    jitcnt: 'long',
    calcnt: 'long',
    errcnt: 'long',
    stbcnt: 'long',
    tai: 'int',
    reserved: koffi.array('int', 11),
  });
  // Its own name: koffi's type names are global, and lib/net/ffi.ts defines a berkeleyd_timespec of its own.
  koffi.struct('berkeleyd_clock_timespec', { tv_sec: 'int64', tv_nsec: 'long' });
  binding = {
    clockAdjtime: libc.func('int clock_adjtime(int, _Inout_ berkeleyd_timex *)'),
    clockGettime: libc.func('int clock_gettime(int, _Out_ berkeleyd_clock_timespec *)'),
    errno: () => koffi.errno() as number,
  };
  return binding;
}

function errnoName(n: number): string {
  for (const [name, value] of Object.entries(constants.errno)) if (value === n) return name;
  return `errno ${n}`;
}

const MESSAGES: Record<string, string> = {
  EPERM: 'not permitted (setting the clock needs CAP_SYS_TIME, outside a user namespace)',
  EINVAL: 'the kernel refused a value',
  ENOSYS: 'no such system call',
};

/** The kernel's clock through the C library. */
export function realKernelClock(): KernelClock {
  const b = load();
  return {
    adjtime(req: TimexRequest): { state: number; timex: Timex } {
      const tx: Record<string, unknown> = {
        modes: req.modes,
        offset: req.offset ?? 0,
        freq: req.freq ?? 0,
        maxerror: req.maxerror ?? 0,
        esterror: req.esterror ?? 0,
        status: req.status ?? 0,
        tick: req.tick ?? 0,
        time: { tv_sec: req.time?.sec ?? 0, tv_usec: req.time?.usec ?? 0 },
      };
      const state = b.clockAdjtime(CLOCK_REALTIME, tx);
      if (state < 0) {
        const code = errnoName(b.errno());
        throw new KernelClockError(`clock_adjtime(modes 0x${req.modes.toString(16)})`, code, MESSAGES[code] ?? 'failed');
      }
      const t = tx as Record<string, any>;
      return {
        state,
        timex: {
          modes: t.modes,
          offset: t.offset,
          freq: t.freq,
          maxerror: t.maxerror,
          esterror: t.esterror,
          status: t.status,
          constant: t.constant,
          precision: t.precision,
          tolerance: t.tolerance,
          time: { sec: t.time.tv_sec, usec: t.time.tv_usec },
          tick: t.tick,
          tai: t.tai,
        },
      };
    },
    realtimeNs(): bigint {
      const ts: Record<string, any> = {};
      if (b.clockGettime(CLOCK_REALTIME, ts) !== 0) throw new KernelClockError('clock_gettime', errnoName(b.errno()), 'failed');
      return BigInt(ts.tv_sec) * 1_000_000_000n + BigInt(ts.tv_nsec);
    },
    monotonicNs: () => process.hrtime.bigint(),
  };
}

/** The kernel's clock state, read without privilege (modes 0), or null where the call is unavailable. */
export function readKernelClock(kernel?: KernelClock): { state: number; timex: Timex } | null {
  try {
    return (kernel ?? realKernelClock()).adjtime({ modes: 0 });
  } catch {
    return null;
  }
}
