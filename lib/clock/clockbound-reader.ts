/**
 * Reading ClockBound's segment in a Node program (the client behind
 * `berkeleyd/client`): the file mapped read-only (mmap through koffi), read
 * in place under the protocol's retry rule, then CLOCK_REALTIME ± the bound
 * grown since as-of. No system call but clock_gettime per reading.
 *
 * The monotonic reading is CLOCK_MONOTONIC (process.hrtime.bigint()), not
 * the writer's CLOCK_MONOTONIC_COARSE: it is never behind a coarse reading
 * taken earlier, so the elapsed time, and the bound, come out at least as
 * large as ClockBound's own clients compute: never smaller.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import {
  CLOCKBOUND_DEFAULT_PATH,
  CLOCKBOUND_SEGMENT_SIZE,
  ClockStatus,
  OFFSET,
  boundAt,
  decodeSegment,
  statusAt,
  type ClockErrorBoundRecord,
} from './clockbound-layout.js';
import { CLOCK_REALTIME, clockNs, mapReadOnly, type Mapping } from './segment-ffi.js';

export type BoundStatus = 'unknown' | 'synchronized' | 'free-running' | 'disrupted';

/** One reading: true time lies in [earliest, latest], ns since the Unix epoch (CLOCK_REALTIME's scale). */
export interface TimeBound {
  earliest: bigint;
  latest: bigint;
  /** 'synchronized' and 'free-running' vouch for the interval; 'unknown' and 'disrupted' do not. */
  status: BoundStatus;
  /** (latest − earliest) / 2, ns. */
  boundNs: bigint;
}

const STATUS_NAMES: Record<number, BoundStatus> = {
  [ClockStatus.Unknown]: 'unknown',
  [ClockStatus.Synchronized]: 'synchronized',
  [ClockStatus.FreeRunning]: 'free-running',
  [ClockStatus.Disrupted]: 'disrupted',
};

export class ClockBoundError extends Error {
  constructor(
    readonly reason: 'open' | 'short' | 'magic' | 'version' | 'not-written' | 'size' | 'busy' | 'causality',
    message: string,
  ) {
    super(message);
  }
}

/** ClockBound's default path, or BERKELEYD_CLOCKBOUND when it names a file. */
export function defaultSegmentPath(env: NodeJS.ProcessEnv = process.env): string {
  const v = env.BERKELEYD_CLOCKBOUND;
  return v && v !== 'auto' && v !== 'off' ? v : CLOCKBOUND_DEFAULT_PATH;
}

/** How many times a read is retried while the writer writes (it takes microseconds). */
const MAX_TRIES = 100_000;
/** How often the path is checked for a new file (a writer that replaced it), ns. */
const RECHECK_NS = 1_000_000_000n;
const NS = 1_000_000_000n;

export class ClockBoundReader {
  private map: Mapping | null = null;
  private gen!: Uint16Array;
  private view!: DataView;
  private ino = 0;
  private checkedMonoNs = 0n;
  /** Retries taken by the last read (a write was in progress, or landed during the read). */
  lastRetries = 0;

  constructor(
    readonly path: string = defaultSegmentPath(),
    /** Called on every retry (tests use it to finish a write the reader caught half done). */
    private readonly onRetry?: (tries: number) => void,
  ) {
    this.open();
  }

  private open(): void {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      throw new ClockBoundError('open', `${this.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      const head = Buffer.alloc(CLOCKBOUND_SEGMENT_SIZE);
      const n = readSync(fd, head, 0, head.length, 0);
      const d = decodeSegment(head.subarray(0, n));
      // A write in progress at open is fine: now() waits it out.
      if (!d.ok && d.reason !== 'writing') throw new ClockBoundError(d.reason, `${this.path}: not a readable ClockBound v2 segment (${d.reason})`);
      const map = mapReadOnly(fd, CLOCKBOUND_SEGMENT_SIZE);
      this.map?.unmap();
      this.map = map;
      this.gen = new Uint16Array(map.buffer, OFFSET.generation, 1);
      this.view = new DataView(map.buffer);
      this.ino = fstatSync(fd).ino;
    } finally {
      // The mapping outlives the descriptor.
      closeSync(fd);
    }
  }

  /** The segment's body, read consistently: generation even, nonzero and unchanged across the read. */
  record(): ClockErrorBoundRecord {
    if (!this.map) throw new ClockBoundError('open', `${this.path}: closed`);
    const v = this.view;
    for (let tries = 0; tries < MAX_TRIES; tries++) {
      const g1 = Atomics.load(this.gen, 0);
      if (g1 === 0) throw new ClockBoundError('not-written', `${this.path}: never written (generation 0)`);
      if ((g1 & 1) === 0) {
        const rec: ClockErrorBoundRecord = {
          asOfNs: v.getBigInt64(OFFSET.asOf, true) * NS + v.getBigInt64(OFFSET.asOf + 8, true),
          voidAfterNs: v.getBigInt64(OFFSET.voidAfter, true) * NS + v.getBigInt64(OFFSET.voidAfter + 8, true),
          boundNs: v.getBigInt64(OFFSET.bound, true),
          disruptionMarker: v.getBigUint64(OFFSET.disruptionMarker, true),
          maxDriftPpb: v.getUint32(OFFSET.maxDrift, true),
          status: v.getInt32(OFFSET.status, true),
          disruptionSupport: v.getUint8(OFFSET.disruptionSupport) !== 0,
        };
        if (Atomics.load(this.gen, 0) === g1) {
          this.lastRetries = tries;
          return rec;
        }
      }
      this.onRetry?.(tries + 1);
    }
    throw new ClockBoundError('busy', `${this.path}: no consistent read in ${MAX_TRIES} tries (a writer stopped in the middle of a write?)`);
  }

  /** [earliest, latest] around CLOCK_REALTIME now, and the status. */
  now(): TimeBound {
    let mono = process.hrtime.bigint();
    if (mono - this.checkedMonoNs > RECHECK_NS) {
      this.checkedMonoNs = mono;
      // A writer that created its file anew (not in place): follow it.
      let ino = this.ino;
      try {
        ino = statSync(this.path).ino;
      } catch {
        // gone: keep what is mapped; its void-after ends it
      }
      if (ino !== this.ino) this.open();
    }
    const rec = this.record();
    // CLOCK_REALTIME first, then the monotonic clock: a late second reading only widens the interval.
    const real = clockNs(CLOCK_REALTIME);
    mono = process.hrtime.bigint();
    const bound = boundAt(rec, mono);
    if (bound === null) throw new ClockBoundError('causality', `${this.path}: as-of is in the future of this monotonic clock (another boot's segment?)`);
    return { earliest: real - bound, latest: real + bound, status: STATUS_NAMES[statusAt(rec, mono)] ?? 'unknown', boundNs: bound };
  }

  close(): void {
    this.map?.unmap();
    this.map = null;
  }
}
