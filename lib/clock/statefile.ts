/**
 * The system clock's state file, like chrony's driftfile: the learned
 * frequency, so that a restart starts from it instead of relearning. One
 * JSON object:
 *
 *   {"frequencyPpm": -12.345678, "synchronized": false, "savedAt": "2026-…Z"}
 *
 * frequencyPpm: what the kernel runs at outside slews (positive: faster).
 * synchronized: true while a running daemon keeps STA_UNSYNC clear; a clean
 * stop writes false. Finding true at start means the last daemon died
 * without setting STA_UNSYNC again, so a clear STA_UNSYNC is its own doing
 * and not another time service's.
 *
 * Written to a temporary file and renamed, so that a crash leaves the old
 * file or the new one, never half of one.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface ClockStateFile {
  frequencyPpm: number;
  synchronized: boolean;
  savedAt?: string;
}

/** The default path: $STATE_DIRECTORY (systemd's StateDirectory=) or /var/lib/berkeleyd, file clock.json. */
export function defaultStateFile(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.STATE_DIRECTORY?.split(':')[0] || '/var/lib/berkeleyd';
  return join(dir, 'clock.json');
}

/** The saved state; null when there is none; throws Error naming what is wrong with a file that exists but is bad. */
export function readStateFile(path: string): ClockStateFile | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new Error(`${path} is not JSON`);
  }
  const o = v as Partial<ClockStateFile>;
  if (typeof o !== 'object' || o === null || typeof o.frequencyPpm !== 'number' || !Number.isFinite(o.frequencyPpm) || Math.abs(o.frequencyPpm) > 100_000) {
    throw new Error(`${path}: frequencyPpm must be a number of ppm within ±100000`);
  }
  return { frequencyPpm: o.frequencyPpm, synchronized: o.synchronized === true, savedAt: typeof o.savedAt === 'string' ? o.savedAt : undefined };
}

export function writeStateFile(path: string, s: ClockStateFile): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify({ frequencyPpm: Number(s.frequencyPpm.toFixed(6)), synchronized: s.synchronized, savedAt: new Date().toISOString() }) + '\n', { mode: 0o644 });
  renameSync(tmp, path);
}
