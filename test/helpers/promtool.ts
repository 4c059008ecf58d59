/**
 * promtool (Debian package prometheus), for checking the metrics and the
 * alert rules: $PROMTOOL, else on PATH, else where .ci/run extracts the
 * package (never installed as a service). null where none is found.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const PROMTOOL_CACHE = '/var/cache/berkeleyd-test/prometheus/usr/bin/promtool';

export function findPromtool(): string | null {
  for (const candidate of [process.env.PROMTOOL, 'promtool', PROMTOOL_CACHE]) {
    if (!candidate) continue;
    if (candidate.includes('/') && !existsSync(candidate)) continue;
    const r = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
    if (!r.error && r.status === 0) return candidate;
  }
  return null;
}
