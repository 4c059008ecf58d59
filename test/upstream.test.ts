/**
 * --upstream on real daemons on loopback: an upper group (a master running
 * 100 ppm fast, one peer) and a lower group (three peers) joined by a
 * boundary host, a peer of the upper group and the master of the lower.
 * All seven clocks are compared exactly (every process shares
 * CLOCK_MONOTONIC). The lower group must follow the upper one (on its own
 * average it would drift 100 µs a second away); SYNC carries the steps;
 * the boundary host killed, the lower group elects and runs on; restarted,
 * it takes its group back into the hierarchy without a step. Two boundary
 * hosts upstream of each other are a loop: refused, with the message.
 */
import test from 'ava';
import { query } from '../lib/daemon/control.js';
import { loopRefusal, MAX_STEPS } from '../lib/daemon/boundary.js';
import { cli, testCluster, testGroup, waitFor } from './helpers/group.js';
import { fmt, killAndRestart, pct, relative, spread, spreads, US } from './helpers/segments.js';
import { netnsAvailable } from './helpers/netns.js';

test('loopRefusal: a master 15 steps from the top is refused (this host would be 16)', (t) => {
  t.is(loopRefusal(null), null);
  t.is(loopRefusal(MAX_STEPS - 2), null);
  t.regex(loopRefusal(MAX_STEPS - 1)!, /15 steps from the top: this host would be 16, the limit is 15.*a loop/);
});

test('run --upstream naming its own group: exit 2', async (t) => {
  const g = await testGroup();
  const r = await cli(['run', ...g.args, '--upstream', `${g.group}:${g.port}`]);
  t.is(r.code, 2, r.text);
  t.regex(r.stderr, /--upstream .* is this node's own group .*: a loop/);
});

// Where network namespaces can be made, segments-netns.test.ts runs the same case on two bridges with real interfaces.
const netns = netnsAvailable();
const onLoopback = netns.ok ? test.skip : test;
const coveredBy = netns.ok ? ' (skipped: segments-netns.test.ts runs it on two bridges here)' : '';

onLoopback(`two segments: the lower group follows the upper one through the boundary host, with steps; the host killed and restarted${coveredBy}`, async (t) => {
  t.timeout(120_000);
  const up = await testGroup(200);
  const low = await testGroup(200);
  const c = testCluster(t);
  await c.add({ name: 'top', args: [...up.args, '--master', '--sim-drift', '100'] });
  await c.add({ name: 'u1', args: [...up.args, '--sim-drift', '-20', '--sim-offset', '1ms'] });
  const boundaryArgs = [...low.args, '--upstream', `${up.group}:${up.port}`, '--sim-drift', '30'];
  await c.add({ name: 'bnd', args: boundaryArgs }, 20_000);
  const lower = ['l1', 'l2', 'l3'];
  for (const [i, n] of lower.entries()) await c.add({ name: n, args: [...low.args, '--sim-drift', String([-40, 10, 25][i]), '--sim-offset', `${i + 1}ms`] });
  const all = ['top', 'u1', 'bnd', ...lower];
  await waitFor('all six clocks within 200 µs of the top', async () => (spread(await relative(c, all)) < 200n * US ? true : undefined), 30_000, { everyMs: 200 });
  const sp = await spreads(c, all, { upper: ['top', 'u1', 'bnd'], lower: ['bnd', ...lower], across: all }, 25);
  t.log(`converged, 25 readings over 5 s: upper group (top, u1, bnd) spread p50 ${fmt(pct(sp.upper!, 50))} max ${fmt(pct(sp.upper!, 100))}; lower group (bnd, l1-l3) p50 ${fmt(pct(sp.lower!, 50))} max ${fmt(pct(sp.lower!, 100))}; all six p50 ${fmt(pct(sp.across!, 50))} max ${fmt(pct(sp.across!, 100))}`);
  t.true(pct(sp.across!, 100) < 300n * US, 'the lower group follows the upper one (on its own it would drift 100 µs a second away)');
  const l1 = await c.status('l1');
  t.is(l1.masterId, 'bnd');
  t.is(l1.masterSteps, 1, 'SYNC of the lower group: one step from the top');
  t.true(l1.masterReference);
  const upSide = (await query(`${c.member('bnd').control}.upstream`, 'status')) as { role: string; masterId: string; masterSteps: number };
  t.like(upSide, { role: 'peer', masterId: 'top', masterSteps: 0 });
  // The boundary host dies: its group elects a master among l1-l3 and runs on its average; then it returns.
  const largest = await killAndRestart(t, c, { upper: ['top', 'u1'], boundary: 'bnd', lower });
  const end = await relative(c, all);
  t.log(`boundary host killed and restarted: the lower group's largest move against the top between readings (~100 ms apart) ${fmt(largest)}; spread of all six at the end ${fmt(spread(end))}`);
  t.true(spread(end) < 500n * US, 'back in the hierarchy');
});

test('two boundary hosts upstream of each other: a loop, refused with its message', async (t) => {
  t.timeout(90_000);
  const ga = await testGroup(100);
  const gb = await testGroup(100);
  const c = testCluster(t);
  await Promise.all([
    c.add({ name: 'a', args: [...ga.args, '--upstream', `${gb.group}:${gb.port}`] }, 20_000),
    c.add({ name: 'b', args: [...gb.args, '--upstream', `${ga.group}:${ga.port}`] }, 20_000),
  ]);
  const said = await waitFor('a refusal', async () => c.members.find((m) => /refusing the upstream/.test(m.stderr)), 40_000, { everyMs: 200 });
  const line = /error: refusing the upstream.*/.exec(said.stderr)![0];
  t.log(`${said.name}: ${line}`);
  t.regex(line, /steps from the top: this host would be 16, the limit is 15.*a loop/);
});
