/**
 * `--clockbound`: the node's error bound (Node.errorBound) published in
 * ClockBound's shared-memory segment (lib/clock/clockbound.ts), after every
 * correction and every change of state the engine notices, and at least
 * once a second, so that the segment's as-of stays recent. At stop the
 * status becomes 0 (unknown): nobody vouches for the clock any more.
 */
import type { ErrorBound } from '../core/types.js';
import { ClockBoundWriter, coarseMonotonicNs, coarseResolutionNs, decideAuto } from '../clock/clockbound.js';
import { ClockStatus, type ClockErrorBoundRecord } from '../clock/clockbound-layout.js';
import type { Warn } from './log.js';

/** How often the segment is rewritten when nothing else happens. */
export const REFRESH_MS = 1000;
/** void-after − as-of: five missed refreshes, also ClockBound's grace period for a restarting writer. */
export const VALIDITY_NS = 5_000_000_000n;

const NS = 1_000_000_000n;
const ceilDiv = (a: bigint, b: bigint): bigint => (a <= 0n ? 0n : (a + b - 1n) / b);

/**
 * The segment's body for bound b, read at CLOCK_MONOTONIC monoNs, with
 * as-of = coarseNs, a CLOCK_MONOTONIC_COARSE reading taken just before
 * monoNs (so coarseNs ≤ monoNs) whose clock lags by at most resolutionNs.
 *
 * A reader at instant t reads coarse ≥ t − resolution, and adds
 * maxDrift · (coarse − as-of) ≥ maxDrift · (t − resolution − monoNs): the
 * bound written is the bound at monoNs plus maxDrift · resolution, plus
 * 1 ns for the clients' rounding down, so what they compute holds at t.
 */
export function recordFor(b: ErrorBound, monoNs: bigint, coarseNs: bigint, resolutionNs: bigint): ClockErrorBoundRecord {
  const voidAfterNs = coarseNs + VALIDITY_NS;
  if (b.state === 'none' || b.boundNs === null) {
    // What ClockBound's own daemon writes before it knows: status unknown, bound 0, no drift.
    return { asOfNs: coarseNs, voidAfterNs, boundNs: 0n, disruptionMarker: 0n, maxDriftPpb: 0, status: ClockStatus.Unknown, disruptionSupport: false };
  }
  const driftPpb = Math.min(999_999_999, Math.max(0, Math.ceil(b.driftPpb)));
  const ppb = BigInt(driftPpb);
  const atMono = b.boundNs + ceilDiv((monoNs - b.asOfMonoNs) * ppb, NS);
  const boundNs = atMono + ceilDiv(resolutionNs * ppb, NS) + 1n;
  return {
    asOfNs: coarseNs,
    voidAfterNs,
    boundNs,
    disruptionMarker: 0n,
    maxDriftPpb: driftPpb,
    status: b.state === 'synchronized' ? ClockStatus.Synchronized : ClockStatus.FreeRunning,
    disruptionSupport: false,
  };
}

/** The segment cannot be written at an explicitly given path (a usage error: exit 2). */
export class SegmentError extends Error {}

export interface PublisherOptions {
  /** The path, and whether it came from `auto` (then a path owned by someone else is skipped, not fatal). */
  path: string;
  auto: boolean;
  bound: (monoNs: bigint) => ErrorBound;
  info: Warn;
  warn: Warn;
}

export class BoundPublisher {
  private writer: ClockBoundWriter | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly resolutionNs: bigint;
  /** CLOCK_MONOTONIC of the last write, and what it said. */
  lastWriteMonoNs: bigint | null = null;
  lastRecord: ClockErrorBoundRecord | null = null;
  writes = 0;

  constructor(private readonly opts: PublisherOptions) {
    this.resolutionNs = coarseResolutionNs();
  }

  /** The path written, or null when `auto` decided not to publish. */
  get path(): string | null {
    return this.writer?.path ?? null;
  }

  /** Opens the segment and starts the refresh; throws (explicit path) or warns and stays idle (auto) when it cannot. */
  start(): void {
    const { path } = this.opts;
    if (this.opts.auto) {
      const d = decideAuto(path);
      if (!d.publish) {
        this.opts.info(`--clockbound auto: not publishing the error bound: ${d.why}`);
        return;
      }
      try {
        this.open();
      } catch (err) {
        this.opts.warn(`--clockbound auto: cannot write ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): not publishing the error bound`);
        return;
      }
      this.opts.info(`publishing the error bound in ClockBound's segment ${path} (${d.why}; ${this.writer!.opened})`);
    } else {
      try {
        this.open();
      } catch (err) {
        throw new SegmentError(`cannot write ${path}: ${(err as Error).message}`);
      }
      this.opts.info(`publishing the error bound in ClockBound's segment ${path} (${this.writer!.opened})`);
    }
    this.timer = setInterval(() => this.update(), REFRESH_MS);
    this.timer.unref();
    // A crash (an uncaught exception) still goes through 'exit': the segment then says unknown too.
    process.once('exit', this.onExit);
  }

  private readonly onExit = (): void => this.stop();
  private pending = false;

  /** update() once the current event's actions have run (several notices of one event: one write). */
  soon(): void {
    if (this.pending || !this.writer) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      this.update();
    });
  }

  private open(): void {
    this.writer = ClockBoundWriter.open(this.opts.path, this.record());
    this.noteWrite();
  }

  private record(): ClockErrorBoundRecord {
    const coarse = coarseMonotonicNs();
    const mono = process.hrtime.bigint();
    this.lastRecord = recordFor(this.opts.bound(mono), mono, coarse, this.resolutionNs);
    return this.lastRecord;
  }

  private noteWrite(): void {
    this.lastWriteMonoNs = process.hrtime.bigint();
    this.writes += 1;
  }

  /** Writes the bound as it is now. */
  update(): void {
    if (!this.writer) return;
    try {
      this.writer.write(this.record());
      this.noteWrite();
    } catch (err) {
      this.opts.warn(`--clockbound: cannot write ${this.writer.path}: ${(err as Error).message}`);
    }
  }

  /** Status unknown, then close; the file stays for readers that have it mapped. Idempotent. */
  stop(): void {
    process.removeListener('exit', this.onExit);
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (!this.writer) return;
    const coarse = coarseMonotonicNs();
    const last = recordFor({ state: 'none', boundNs: null, asOfMonoNs: 0n, driftPpb: 0, why: 'stopped' }, 0n, coarse, 0n);
    try {
      this.writer.close(last);
    } catch (err) {
      this.opts.warn(`--clockbound: cannot write the last word to ${this.writer.path}: ${(err as Error).message}`);
    }
    this.writer = null;
  }
}

/** What status --json says of the segment (null: none written). */
export function publishedAt(p: BoundPublisher | null, monoNs: bigint): { path: string; writes: number; lastWriteAgeS: number | null; status: number | null } | null {
  if (!p || p.path === null) return null;
  return { path: p.path, writes: p.writes, lastWriteAgeS: p.lastWriteMonoNs === null ? null : Number(monoNs - p.lastWriteMonoNs) / 1e9, status: p.lastRecord?.status ?? null };
}
