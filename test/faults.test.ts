/**
 * Bad members on real processes: a member that lies in every REPORT while
 * holding the group's key (test/helpers/liar.ts) and a clock that drifts
 * beyond any frequency correction (--sim-drift 2000). The master names both
 * faulty, leaves them out of the average, and the honest clocks stay
 * together; nobody honest is named. Bounds are loose (1 ms, a few rounds):
 * accuracy is the benchmark's business (npm run bench:faults).
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StatusJson } from '../lib/daemon/status.js';
import { groupTimesAt, readingOf } from '../lib/daemon/truth.js';
import { generateKeyFile } from '../lib/wire/keys.js';
import { sleep, testCluster, testGroup } from './helpers/group.js';
import { lying } from './helpers/liar.js';

const cluster = testCluster;

test('a liar holding the key and a runaway clock are named faulty and left out; the honest clocks hold together', async (t) => {
  t.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'berkeleyd-faults-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = join(dir, 'key');
  writeFileSync(key, generateKeyFile(1), { mode: 0o600 });
  const g = await testGroup(250);
  const c = cluster(t);
  const common = [...g.args, '--key-file', key];
  const honest = ['n1', 'n2', 'n3'];
  for (const [i, n] of honest.entries()) await c.add({ name: n, args: [...common, '--priority', '0', '--sim-offset', `${(i + 1) * 300}ms`, '--sim-drift', String(10 * (i - 1))] });
  await c.add({ name: 'liar', args: [...common, '--priority', '0'], wrap: lying(3_000_000n) });
  await c.add({ name: 'runaway', args: [...common, '--priority', '0', '--sim-drift', '2000'] });
  await c.add({ name: 'n0', args: [...common, '--master'] });

  // Wait until the master names both, or give up after 40 rounds.
  let master: StatusJson | null = null;
  for (let i = 0; i < 80; i++) {
    await sleep(g.intervalMs / 2);
    master = await c.status('n0');
    const named = new Set(master.faults.members.map((f) => f.nodeId));
    if (named.has('liar') && named.has('runaway')) break;
  }
  const faults = master!.faults;
  t.log(`round ${master!.lastRound?.round}: named ${JSON.stringify(faults.members)}, ${faults.named} naming(s)`);
  t.deepEqual(faults.members.map((f) => f.nodeId).sort(), ['liar', 'runaway'], 'exactly the two bad members are named');
  for (const f of faults.members) t.true(['outlier', 'frequency-limit'].includes(f.reason), `${f.nodeId}: ${f.reason}`);
  t.regex(c.member('n0').stderr, /warning: member liar is faulty/, 'the master warns by name');

  // In the next tables they are outliers with their entries, flagged faulty; the honest clocks agree.
  await sleep(3 * g.intervalMs);
  const m = await c.status('n0');
  const table = m.lastRound!.table;
  for (const bad of ['liar', 'runaway']) {
    const row = table.find((r) => r.nodeId === bad);
    if (!row) continue; // it may have sat out this round
    t.true(row.outlier, `${bad} is out of the average`);
    t.truthy(row.faulty, `${bad} is flagged in the table`);
  }
  for (const r of table.filter((x) => honest.includes(x.nodeId))) t.false(r.outlier, `${r.nodeId} counts`);
  const statuses = await Promise.all(['n0', ...honest].map((n) => c.status(n)));
  const readings = statuses.map(readingOf);
  const times = groupTimesAt(readings, readings.reduce((a, r) => (r.monotonicNs > a ? r.monotonicNs : a), 0n));
  const spread = Number(times.reduce((a, b) => (b > a ? b : a)) - times.reduce((a, b) => (b < a ? b : a)));
  t.log(`honest spread ${(spread / 1000).toFixed(1)} µs`);
  t.true(spread < 1_000_000, `the honest clocks agree within 1 ms: ${spread} ns`);
  // The runaway clock says so itself.
  const runaway = await c.status('runaway');
  t.true(runaway.faults.cannotFollow || /cannot follow its corrections/.test(c.member('runaway').stderr) || runaway.faults.thisNode, 'the runaway node knows');
});
