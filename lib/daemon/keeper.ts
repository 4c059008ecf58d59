/**
 * The daemon's side of the system clock: keeps the kernel's sync state
 * true and the state file current.
 *
 * - Every correction while the engine is synchronized clears STA_UNSYNC
 *   with esterror = |adjustment| and maxerror = |adjustment| + half the
 *   measurement's round trip (the bound on its error; on the master, the
 *   longest round trip in its table); the kernel adds 500 µs a second to
 *   maxerror until the next round.
 * - No synchronized correction for LOST_ROUNDS intervals (at least 5 s),
 *   or the node turning candidate (its master went silent): STA_UNSYNC
 *   again. A master whose peers all fell silent corrects only by itself,
 *   which is not synchronization: the daemon passes synced false then.
 * - The state file gets the disciplined frequency at the first
 *   synchronization, whenever it moved and a minute has passed, and at
 *   stop (with synchronized false). A write that fails is tried again at
 *   every correction until one succeeds; the operator is warned once when
 *   writing starts to fail and told once when it works again, not every
 *   round.
 */
import type { SystemClock } from '../clock/system.js';
import { writeStateFile } from '../clock/statefile.js';
import type { Warn } from './log.js';

export const LOST_ROUNDS = 4;
const SAVE_EVERY_NS = 60_000_000_000n;

export interface KeeperOptions {
  stateFile: string | null;
  intervalNs: bigint;
  warn: Warn;
  log: (fmt: string, ...args: unknown[]) => void;
}

/** What the last write of the state file did: null before the first. */
export type SaveOutcome = { ok: true } | { ok: false; error: string };

/** What close() leaves: the frequency in force, and whether the state file now holds it (null: no state file). */
export interface Closed {
  ppm: number;
  saved: SaveOutcome | null;
}

export class SystemClockKeeper {
  private watchdog: NodeJS.Timeout | null = null;
  private savedAtNs: bigint | null = null;
  private savedPpm: number | null = null;
  private closed = false;
  private closedWith: Closed | null = null;
  /** The last write's outcome; a failed one is retried at every correction. */
  private lastSave: SaveOutcome | null = null;
  /** The last known measurement round trip, ns. */
  private delayNs = 0n;

  constructor(
    private readonly clock: SystemClock,
    private readonly opts: KeeperOptions,
  ) {}

  /** A correction was applied; synced: the engine's view (and, on a master, someone else reported); delayNs: the measurement's round trip, if known. */
  corrected(adjustmentNs: bigint, synced: boolean, delayNs: bigint | null): void {
    if (this.closed) return;
    const abs = adjustmentNs < 0n ? -adjustmentNs : adjustmentNs;
    // A round without a round trip (a master whose peers did not report) keeps the last one known.
    if (delayNs !== null && delayNs > 0n) this.delayNs = delayNs;
    if (synced) {
      const was = this.clock.isSynchronized();
      const maxNs = abs + this.delayNs / 2n;
      this.clock.markSynchronized(abs, maxNs);
      if (!was) {
        this.opts.log('synchronized: STA_UNSYNC cleared, maxerror %d µs', Number((maxNs + 999n) / 1000n));
        this.save(true);
      }
      this.armWatchdog();
    }
    const now = process.hrtime.bigint();
    const ppm = this.clock.disciplinedFrequencyPpm();
    if (this.lastSave?.ok === false) this.save(this.clock.isSynchronized());
    else if (this.savedAtNs !== null && now - this.savedAtNs >= SAVE_EVERY_NS && ppm !== this.savedPpm) this.save(this.clock.isSynchronized());
  }

  /** The node lost its master (or the group). */
  lost(why: string): void {
    if (this.closed || !this.clock.isSynchronized()) return;
    this.clock.markUnsynchronized();
    this.opts.warn(`no longer synchronized (${why}): STA_UNSYNC set, frequency ${this.clock.disciplinedFrequencyPpm().toFixed(3)} ppm kept`);
    this.save(false);
  }

  /** Stop: STA_UNSYNC, frequency left in force and saved (if the file can be written). Idempotent. */
  close(): Closed {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    if (this.closedWith) return this.closedWith;
    const ppm = this.clock.close();
    this.save(false);
    this.closed = true;
    this.closedWith = { ppm, saved: this.opts.stateFile === null ? null : this.lastSave };
    return this.closedWith;
  }

  private armWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    const ns = BigInt(LOST_ROUNDS) * this.opts.intervalNs;
    const ms = Math.max(5000, Number(ns / 1_000_000n));
    this.watchdog = setTimeout(() => {
      this.watchdog = null;
      this.lost(`no correction for ${ms} ms`);
    }, ms);
    this.watchdog.unref();
  }

  private save(synchronized: boolean): void {
    if (this.opts.stateFile === null) return;
    const ppm = this.clock.disciplinedFrequencyPpm();
    const before = this.lastSave;
    try {
      writeStateFile(this.opts.stateFile, { frequencyPpm: ppm, synchronized });
      this.savedAtNs = process.hrtime.bigint();
      this.savedPpm = ppm;
      this.lastSave = { ok: true };
      if (before?.ok === false) this.opts.log('the state file %s is written again', this.opts.stateFile);
    } catch (err) {
      const error = (err as Error).message;
      this.lastSave = { ok: false, error };
      // One warning per change of state: the first failure, not every retry.
      if (before?.ok !== false) this.opts.warn(`cannot write the state file ${this.opts.stateFile}: ${error}; trying again every round`);
    }
  }
}
