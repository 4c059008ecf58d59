/**
 * The C library calls that ClockBound's segment needs, through koffi (as
 * adjtimex.ts does): clock_gettime and clock_getres on any clock id, and a
 * read-only shared mapping of a file that JavaScript reads in place.
 * Loaded on first use; Linux only (x86_64 and arm64: struct timespec is two
 * 64-bit fields, little-endian).
 */
import { createRequire } from 'node:module';

export const CLOCK_REALTIME = 0;
export const CLOCK_MONOTONIC = 1;
export const CLOCK_MONOTONIC_COARSE = 6;

const PROT_READ = 1;
const MAP_SHARED = 1;

interface Calls {
  gettime(id: number, ts: Buffer): number;
  getres(id: number, ts: Buffer): number;
  mmap(addr: null, len: number, prot: number, flags: number, fd: number, off: number): unknown;
  munmap(ptr: unknown, len: number): number;
  address(ptr: unknown): bigint;
  view(ptr: unknown, len: number): ArrayBuffer;
  errno(): number;
}

let calls: Calls | null = null;

function load(): Calls {
  if (calls) return calls;
  if (process.platform !== 'linux') throw new Error(`ClockBound's segment needs Linux, not ${process.platform}`);
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const libc = koffi.load('libc.so.6');
  calls = {
    // A Buffer passed for void * is the memory the call writes: nothing is allocated per call.
    gettime: libc.func('int clock_gettime(int, void *)'),
    getres: libc.func('int clock_getres(int, void *)'),
    mmap: libc.func('void *mmap(void *, size_t, int, int, int, intptr_t)'),
    munmap: libc.func('int munmap(void *, size_t)'),
    address: (p) => koffi.address(p),
    view: (p, len) => koffi.view(p, len),
    errno: () => koffi.errno(),
  };
  return calls;
}

const ts = Buffer.alloc(16);

/** clock_gettime(id) in ns; throws with the errno on failure. */
export function clockNs(id: number): bigint {
  const c = calls ?? load();
  if (c.gettime(id, ts) !== 0) throw new Error(`clock_gettime(${id}) failed: errno ${c.errno()}`);
  return ts.readBigInt64LE(0) * 1_000_000_000n + ts.readBigInt64LE(8);
}

/** clock_getres(id) in ns. */
export function clockResolutionNs(id: number): bigint {
  const c = load();
  if (c.getres(id, ts) !== 0) throw new Error(`clock_getres(${id}) failed: errno ${c.errno()}`);
  return ts.readBigInt64LE(0) * 1_000_000_000n + ts.readBigInt64LE(8);
}

export interface Mapping {
  /** The file's first len bytes, read in place (a writer's changes show at once). */
  buffer: ArrayBuffer;
  unmap(): void;
}

/** mmap(PROT_READ, MAP_SHARED) of fd's first len bytes. */
export function mapReadOnly(fd: number, len: number): Mapping {
  const c = load();
  const p = c.mmap(null, len, PROT_READ, MAP_SHARED, fd, 0);
  if (p === null || c.address(p) === 0xffffffffffffffffn) throw new Error(`mmap failed: errno ${c.errno()}`);
  let mapped = true;
  return {
    buffer: c.view(p, len),
    unmap: () => {
      if (mapped) c.munmap(p, len);
      mapped = false;
    },
  };
}
