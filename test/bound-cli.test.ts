/**
 * The error bound where applications and operators look: two real daemons
 * on loopback; `now` (text and --json) and `status` show no bound before
 * the peer synchronizes, then an interval around its clock, and the peer
 * runs free once its master has left.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { query } from '../lib/daemon/control.js';
import type { StatusJson } from '../lib/daemon/status.js';
import { cleanEnv, cli, startRun, testGroup, waitFor } from './helpers/group.js';

interface NowJson {
  groupTimeNs: string;
  earliestNs: string | null;
  latestNs: string | null;
  errorBoundNs: string | null;
  boundState: string;
  boundWhy: string | null;
  boundDriftPpb: number;
}

test('now and status: no bound before the first corrections, then earliest ≤ clock ≤ latest; free-running once the master left', async (t) => {
  t.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-bound-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const g = await testGroup(200);
  const m = join(dir, 'm.sock');
  const p = join(dir, 'p.sock');
  const master = await startRun(t, m, [...g.args, '--node-id', 'm', '--master', '--sim-offset', '0']);
  await startRun(t, p, [...g.args, '--node-id', 'p', '--priority', '0', '--sim-offset', '3ms', '--sim-drift', '15']);
  const first = (await query(p, 'now')) as NowJson;
  if (first.boundState === 'none') {
    t.is(first.errorBoundNs, null);
    t.is(first.earliestNs, null);
    t.truthy(first.boundWhy);
  }
  const synced = await waitFor('a synchronized bound on the peer', async () => {
    const r = (await query(p, 'now')) as NowJson;
    return r.boundState === 'synchronized' ? r : undefined;
  }, 30_000);
  const clock = BigInt(synced.groupTimeNs);
  const bound = BigInt(synced.errorBoundNs!);
  t.true(bound > 0n && bound < 10_000_000n, `bound ${bound} ns`);
  t.is(BigInt(synced.earliestNs!), clock - bound);
  t.is(BigInt(synced.latestNs!), clock + bound);
  t.true(synced.boundDriftPpb >= 1000);
  const text = await cli(['now', '--control', p], { env: cleanEnv() });
  t.is(text.code, 0, text.text);
  t.regex(text.stdout, /^earliest \d{4}-\d\d-\d\dT[\d:.]+Z$/m);
  t.regex(text.stdout, /^latest {3}\d{4}-/m);
  t.regex(text.stdout, /^bound {4}± [\d.]+ [nµm]?s \((synchronized|free-running)/m);
  const json = JSON.parse((await cli(['now', '--json', '--control', p], { env: cleanEnv() })).stdout) as NowJson;
  t.truthy(json.errorBoundNs);
  const s = (await query(m, 'status')) as StatusJson;
  t.is(s.boundState, 'synchronized', 'the master has a bound too');
  t.regex((await cli(['status', '--control', p], { env: cleanEnv() })).stdout, /^Error bound {6}: ± /m);
  master.stop();
  const free = await waitFor('the peer to run free', async () => {
    const r = (await query(p, 'now')) as NowJson;
    return r.boundState === 'free-running' ? r : undefined;
  }, 20_000);
  const later = await waitFor('the bound to grow', async () => {
    const r = (await query(p, 'now')) as NowJson;
    return BigInt(r.errorBoundNs!) > BigInt(free.errorBoundNs!) ? r : undefined;
  }, 10_000);
  t.is(later.boundState, 'free-running');
  t.regex(later.boundWhy ?? '', /master/);
});
