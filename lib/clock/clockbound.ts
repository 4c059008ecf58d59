/**
 * The writer of ClockBound's segment (layout: clockbound-layout.ts): a file
 * in tmpfs, kept open, written with pwrite under ClockBound's seqlock:
 * generation odd, then the body, then generation even (never 0). And who
 * owns ClockBound's default path (`--clockbound auto`).
 *
 * Each pwrite copies into the page that every reader maps; the three calls
 * run in order, and each ends by releasing the page's lock, which orders
 * its stores before the next call's (x86-64 keeps stores in order anyway).
 */
import { closeSync, constants, fchmodSync, fstatSync, mkdirSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { dirname } from 'node:path';
import {
  CLOCKBOUND_SEGMENT_SIZE,
  OFFSET,
  decodeSegment,
  encodeBody,
  encodeSegment,
  nextEvenGeneration,
  oddGeneration,
  type ClockErrorBoundRecord,
} from './clockbound-layout.js';
import { findTimeDaemons } from './guard.js';
import { CLOCK_MONOTONIC_COARSE, clockNs, clockResolutionNs } from './segment-ffi.js';

/** CLOCK_MONOTONIC_COARSE now, ns: the clock of the segment's as-of and void-after. */
export const coarseMonotonicNs = (): bigint => clockNs(CLOCK_MONOTONIC_COARSE);
/** How far CLOCK_MONOTONIC_COARSE lags CLOCK_MONOTONIC at most (one tick), ns. */
export const coarseResolutionNs = (): bigint => clockResolutionNs(CLOCK_MONOTONIC_COARSE);

export class ClockBoundWriter {
  private generation: number;
  /** How the file was found at open: created afresh, or an earlier berkeleyd's segment taken over in place. */
  readonly opened: 'created' | 'reused';

  private constructor(
    readonly path: string,
    private fd: number | null,
    generation: number,
    opened: 'created' | 'reused',
  ) {
    this.generation = generation;
    this.opened = opened;
  }

  /**
   * Opens path for writing, with first as its content. A valid segment of
   * this user's (an earlier run's) is written in place, so that readers
   * that keep it mapped, as ClockBound's clients do, follow across a
   * restart; anything else is replaced atomically (temporary file, rename)
   * by a complete segment, mode 0644. The parent directory is created.
   */
  static open(path: string, first: ClockErrorBoundRecord): ClockBoundWriter {
    if (endianness() !== 'LE') throw new Error('the segment is written in native byte order, and only little-endian machines are supported');
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    const reused = reuse(path);
    if (reused) {
      const w = new ClockBoundWriter(path, reused.fd, reused.generation, 'reused');
      w.write(first);
      return w;
    }
    const tmp = `${path}.${process.pid}.tmp`;
    const fd = openSync(tmp, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
    try {
      // The mode regardless of the umask (the unit's is 0077): every local program may read the bound.
      fchmodSync(fd, 0o644);
      const generation = 2;
      writeSync(fd, encodeSegment(first, generation), 0, CLOCKBOUND_SEGMENT_SIZE, 0);
      renameSync(tmp, path);
      return new ClockBoundWriter(path, fd, generation, 'created');
    } catch (err) {
      closeSync(fd);
      try {
        unlinkSync(tmp);
      } catch {
        // already renamed or gone
      }
      throw err;
    }
  }

  /** One update under the seqlock; returns the generation readers now see. */
  write(rec: ClockErrorBoundRecord): number {
    if (this.fd === null) throw new Error(`${this.path}: closed`);
    const body = encodeBody(rec);
    const odd = oddGeneration(this.generation);
    writeSync(this.fd, u16(odd), 0, 2, OFFSET.generation);
    writeSync(this.fd, body, 0, body.length, OFFSET.asOf);
    this.generation = nextEvenGeneration(odd);
    writeSync(this.fd, u16(this.generation), 0, 2, OFFSET.generation);
    return this.generation;
  }

  /** Writes last (if given), then closes. The file stays: readers that map it see the last word. Idempotent. */
  close(last?: ClockErrorBoundRecord): void {
    if (this.fd === null) return;
    try {
      if (last) this.write(last);
    } finally {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(v, 0);
  return b;
}

/** An earlier berkeleyd's segment at path, opened for writing in place; null when there is none to reuse. */
function reuse(path: string): { fd: number; generation: number } | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    const mine = typeof process.getuid !== 'function' || st.uid === process.getuid();
    if (st.isFile() && st.size === CLOCKBOUND_SEGMENT_SIZE && mine) {
      const b = Buffer.alloc(CLOCKBOUND_SEGMENT_SIZE);
      readSync(fd, b, 0, b.length, 0);
      const d = decodeSegment(b);
      // A generation left odd (a writer killed mid-write) is fine: the next write continues from it.
      const generation = b.readUInt16LE(OFFSET.generation);
      if (d.ok || d.reason === 'writing') return { fd, generation };
    }
  } catch {
    // unreadable: replace it
  }
  closeSync(fd);
  return null;
}

/** Where `--clockbound auto` writes, and why; or why it does not. */
export type AutoDecision = { publish: true; path: string; why: string } | { publish: false; why: string };

export interface AutoProbe {
  procRoot?: string;
  /** CLOCK_MONOTONIC_COARSE now (tests fake it). */
  monoNs?: () => bigint;
  uid?: number;
}

/**
 * `--clockbound auto`: ClockBound's default path, unless a clockbound
 * daemon owns it: one runs (a process named clockbound, where /proc shows
 * other users' processes), or the file there belongs to another user and
 * was written within the last 10 s (its as-of, on this boot's monotonic clock).
 */
export function decideAuto(path: string, probe: AutoProbe = {}): AutoDecision {
  const running = findTimeDaemons(probe.procRoot, process.pid, new Set(['clockbound']));
  if (running.length > 0) return { publish: false, why: `a clockbound daemon runs (pid ${running[0]!.pid}) and owns ${path}` };
  let uid: number;
  try {
    uid = statSync(path).uid;
  } catch {
    return { publish: true, path, why: `no segment at ${path} yet and no clockbound daemon seen` };
  }
  const self = probe.uid ?? (typeof process.getuid === 'function' ? process.getuid() : uid);
  if (uid === self) return { publish: true, path, why: `${path} is this user's (an earlier berkeleyd's)` };
  let rec: ClockErrorBoundRecord | null = null;
  try {
    const fd = openSync(path, 'r');
    const b = Buffer.alloc(CLOCKBOUND_SEGMENT_SIZE);
    readSync(fd, b, 0, b.length, 0);
    closeSync(fd);
    const d = decodeSegment(b);
    rec = d.ok ? d.record : null;
  } catch {
    // unreadable: not a live segment we can judge
  }
  const now = (probe.monoNs ?? coarseMonotonicNs)();
  if (rec && now - rec.asOfNs < 10_000_000_000n && now >= rec.asOfNs - 1_000_000n) {
    return { publish: false, why: `${path} belongs to uid ${uid} and was written ${((Number(now - rec.asOfNs)) / 1e9).toFixed(1)} s ago: another writer (a clockbound daemon?) owns it` };
  }
  return { publish: true, path, why: `${path} belongs to uid ${uid} but nobody has written it for 10 s: taken over` };
}
