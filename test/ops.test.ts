/**
 * Operating a running group of 4 daemons on loopback: key rotation by
 * reload (SIGHUP) with no datagram rejected and the group undisturbed, a bad
 * key file refused whole, reloadable settings from --reload-env-file, and
 * the metrics (/metrics and `status --format prometheus`) checked with
 * promtool where it is installed.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { query } from '../lib/daemon/control.js';
import type { StatusJson } from '../lib/daemon/status.js';
import { BERKELEYD_JS, cleanEnv, cli, Proc, ROOT, startRun, testGroup, waitFor } from './helpers/group.js';
import { findPromtool } from './helpers/promtool.js';

const promtool = findPromtool();
const noPromtool = promtool ? '' : ' (promtool not found: skipped that check; .ci/run extracts it from the prometheus .deb)';

function scrape(address: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    get(`http://${address}/metrics`, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

const keyLine = (id: number, key: Buffer): string => `${id} HMAC-SHA256 HEX:${key.toString('hex')}\n`;
const rejectedTotal = (s: StatusJson): number => Object.values(s.counters.rejected).reduce((a, b) => a + b, 0);

test('4 daemons: keys rotate by reload with no datagram rejected and no election; a bad key file is refused; metrics pass promtool' + noPromtool, async (t) => {
  t.timeout(90_000);
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-ops-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const g = await testGroup(200);
  const names = ['n0', 'n1', 'n2', 'n3'];
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);
  const keyFile = (n: string): string => join(dir, `${n}.key`);
  const envFile = join(dir, 'n3.env');
  for (const n of names) writeFileSync(keyFile(n), keyLine(1, oldKey), { mode: 0o600 });
  writeFileSync(envFile, `BERKELEYD_KEY_FILE=${keyFile('n3')}\n`);

  const procs = new Map<string, Proc>();
  const control = (n: string): string => join(dir, `${n}.sock`);
  // Peers first, the pinned master last (it starts the rounds at once).
  for (const n of [...names.slice(1), names[0]!]) {
    const extra = n === 'n0' ? ['--master'] : n === 'n3' ? ['--reload-env-file', envFile] : [];
    const args = [...g.args, '--node-id', n, '--metrics', '127.0.0.1:0', ...(n === 'n3' ? [] : ['--key-file', keyFile(n)]), ...extra];
    procs.set(n, await (n === 'n3' ? startWithEnv(t, control(n), args, { BERKELEYD_KEY_FILE: keyFile('n3') }) : startRun(t, control(n), args)));
  }
  const status = async (n: string): Promise<StatusJson> => (await query(control(n), 'status')) as StatusJson;
  const all = async (): Promise<StatusJson[]> => Promise.all(names.map(status));

  await waitFor('a synchronized group of 4', async () => {
    const s = await all();
    return s[0]!.members.length === 3 && s.every((x) => x.synced && x.masterId === 'n0') ? true : undefined;
  }, 30_000);

  // Watch the master's rounds throughout: which members each table had.
  const tables = new Map<number, number>();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const m = await status('n0').catch(() => null);
      if (m?.lastRound) tables.set(m.lastRound.round, m.lastRound.table.length);
      await new Promise((r) => setTimeout(r, g.intervalMs / 4));
    }
  })();
  t.teardown(() => {
    watching = false;
  });

  // A baseline of as many rounds as the rotation takes, after the fast start (rounds 1-12).
  await waitFor('round 14', async () => ((await status('n0')).round >= 14 ? true : undefined), 40 * g.intervalMs);
  const baseFrom = (await status('n0')).round;
  await waitFor('9 rounds', async () => ((await status('n0')).round >= baseFrom + 9 ? true : undefined), 40 * g.intervalMs);
  const before = await all();
  const reloadAll = async (text: string, expect: number[]): Promise<void> => {
    for (const n of names) writeFileSync(keyFile(n), text);
    for (const n of names) procs.get(n)!.child.kill('SIGHUP');
    await waitFor(`every node on keys ${expect}`, async () => ((await all()).every((s) => s.config.keyIds.join() === expect.join()) ? true : undefined), 10_000);
    // Let a few rounds run on the new keys.
    const r0 = (await status('n0')).round;
    await waitFor('3 rounds', async () => ((await status('n0')).round >= r0 + 3 ? true : undefined), 20 * g.intervalMs);
  };
  const firstRound = before[0]!.round;
  await reloadAll(keyLine(1, oldKey) + keyLine(2, newKey), [1, 2]); // 1. add the new key second
  await reloadAll(keyLine(2, newKey) + keyLine(1, oldKey), [2, 1]); // 2. sign with it
  await reloadAll(keyLine(2, newKey), [2]); //                          3. drop the old one
  // On the new key alone, every node is corrected again (how often depends on the machine's load: only logged).
  const last = await all();
  await waitFor('a correction of every node on the new key alone', async () => ((await all()).every((s, i) => s.counters.corrections > last[i]!.counters.corrections) ? true : undefined), 60 * g.intervalMs);
  const after = await all();
  watching = false;
  await watcher;

  const rounds = [...tables.entries()].filter(([r]) => r > firstRound && r <= after[0]!.round);
  const short = rounds.filter(([, rows]) => rows < 4);
  const base = [...tables.entries()].filter(([r]) => r > baseFrom && r <= firstRound);
  const baseShort = base.filter(([, rows]) => rows < 4);
  const rejected = after.map((s, i) => rejectedTotal(s) - rejectedTotal(before[i]!));
  const corrections = after.map((s, i) => s.counters.corrections - before[i]!.counters.corrections);
  t.log(`baseline rounds ${baseFrom + 1}..${firstRound}: ${base.length} tables seen, ${baseShort.length} without all 4 members`);
  t.log(`rotation over rounds ${firstRound + 1}..${after[0]!.round}: ${rounds.length} tables seen, ${short.length} without all 4 members; rejected datagrams per node ${rejected.join('/')}; corrections per node ${corrections.join('/')}`);
  t.deepEqual(rejected, [0, 0, 0, 0], 'no datagram rejected during the rotation');
  t.true(after.every((s) => s.epoch === before[0]!.epoch && s.masterId === 'n0'), 'no election');
  t.true(after.every((s) => s.counters.reloads.ok === 3 && s.counters.reloads.refused === 0));
  t.is(after[0]!.members.length, 3);

  // A bad key file: refused whole, with a warning; the keys in force stay, and so does the group.
  writeFileSync(keyFile('n1'), '2 HMAC-SHA256 HEX:1234\n');
  procs.get('n1')!.child.kill('SIGHUP');
  await waitFor('the refusal', async () => ((await status('n1')).counters.reloads.refused === 1 ? true : undefined), 5000);
  t.regex(procs.get('n1')!.stderr, /warning: reload refused, the running configuration stays in force: --key-file: .*n1\.key/);
  t.deepEqual((await status('n1')).config.keyIds, [2]);
  const c1 = (await status('n1')).counters.corrections;
  await waitFor('n1 still corrected', async () => ((await status('n1')).counters.corrections >= c1 + 2 ? true : undefined), 30 * g.intervalMs);

  // --reload-env-file: the reloadable settings from the file; the others wait for a restart, with a warning.
  writeFileSync(envFile, `BERKELEYD_KEY_FILE=${keyFile('n3')}\nBERKELEYD_TOLERANCE=5ms\nBERKELEYD_MAX_ADJUST=1s\nBERKELEYD_PORT=1\n`);
  procs.get('n3')!.child.kill('SIGHUP');
  await waitFor('n3 reloaded', async () => ((await status('n3')).counters.reloads.ok === 4 ? true : undefined), 5000);
  const s3 = await status('n3');
  t.like(s3.config, { toleranceNs: '5000000', maxAdjustNs: '1000000000', port: g.port });
  t.regex(procs.get('n3')!.stderr, /warning: reload: BERKELEYD_PORT changed in .*: in force after a restart only/);
  writeFileSync(envFile, `BERKELEYD_KEY_FILE=${keyFile('n3')}\nBERKELEYD_TOLERANCE=soon\n`);
  procs.get('n3')!.child.kill('SIGHUP');
  await waitFor('n3 refused', async () => ((await status('n3')).counters.reloads.refused === 1 ? true : undefined), 5000);
  t.is((await status('n3')).config.toleranceNs, '5000000');

  // Metrics: every daemon's /metrics, and the CLI's rendering of the master's.
  const statuses = await all();
  for (const s of statuses) {
    const r = await scrape(s.config.metrics!);
    t.is(r.status, 200);
    t.regex(r.type, /^text\/plain; version=0\.0\.4/);
    t.regex(r.body, /^berkeleyd_build_info\{version="[^"]+",nodejs="v\d+/m);
    t.regex(r.body, new RegExp(`^berkeleyd_role\\{role="${s.role}"\\} 1$`, 'm'));
    t.regex(r.body, /^berkeleyd_master_known 1$/m);
    t.regex(r.body, /^berkeleyd_clock_state\{state="locked"\} 1$/m);
    t.regex(r.body, /^berkeleyd_send_key_id 2$/m);
    t.regex(r.body, /^berkeleyd_event_loop_lag_p99_seconds \d/m);
    if (promtool) {
      const check = spawnSync(promtool, ['check', 'metrics'], { input: r.body, encoding: 'utf8' });
      t.is(check.status, 0, `promtool check metrics on ${s.nodeId}: ${check.stdout}${check.stderr}`);
    }
    if (s.nodeId === 'n0') {
      t.regex(r.body, /^berkeleyd_members 3$/m);
      for (const n of names.slice(1)) t.regex(r.body, new RegExp(`^berkeleyd_member_offset_seconds\\{node="${n}"\\} -?\\d`, 'm'));
      t.regex(r.body, /^berkeleyd_member_faulty\{node="n1",reason=""\} 0$/m);
      t.regex(r.body, /^berkeleyd_group_spread_seconds \d/m);
    } else {
      t.regex(r.body, /^berkeleyd_offset_seconds -?\d/m);
    }
  }
  const p = await cli(['status', '--format', 'prometheus', '--control', control('n0')], { env: cleanEnv() });
  t.is(p.code, 0, p.text);
  const metricNames = (text: string): string[] => [...new Set([...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!))];
  t.deepEqual(metricNames(p.stdout), metricNames((await scrape(statuses[0]!.config.metrics!)).body));
  if (promtool) {
    const check = spawnSync(promtool, ['check', 'metrics'], { input: p.stdout, encoding: 'utf8' });
    t.is(check.status, 0, check.stdout + check.stderr);
  }
});

test('the example alert rules pass promtool check rules' + noPromtool, (t) => {
  const rules = join(ROOT, 'docs', 'alerts.rules.yml');
  t.true(existsSync(rules));
  if (!promtool) return t.pass();
  const r = spawnSync(promtool, ['check', 'rules', rules], { encoding: 'utf8' });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /SUCCESS: \d+ rules found/);
});

test('--metrics with a port in use is a configuration error (exit 2)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-ops-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const g = await testGroup(200);
  const first = await startRun(t, join(dir, 'a.sock'), [...g.args, '--node-id', 'a', '--metrics', '127.0.0.1:0']);
  const s = (await query(join(dir, 'a.sock'), 'status')) as StatusJson;
  const r = await cli(['run', ...g.args, '--node-id', 'b', '--control', join(dir, 'b.sock'), '--metrics', s.config.metrics!], { env: cleanEnv() });
  t.is(r.code, 2, r.text);
  t.regex(r.stderr, /--metrics: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
  t.true(first.running);
});

/** startRun with extra environment variables (n3 takes its key file from BERKELEYD_KEY_FILE, as under the unit). */
async function startWithEnv(t: Parameters<typeof startRun>[0], controlPath: string, args: string[], env: Record<string, string>): Promise<Proc> {
  const p = new Proc(process.execPath, [BERKELEYD_JS, 'run', '--control', controlPath, ...args], cleanEnv(env));
  t.teardown(() => p.stop());
  await waitFor(`${controlPath} to answer`, async () => (!p.running ? true : existsSync(controlPath) ? query(controlPath, 'now', 1000).then(() => true, () => undefined) : undefined), 10_000);
  if (!p.running) throw new Error(`run exited at start (${p.code ?? p.signal}): ${p.stderr}`);
  return p;
}
