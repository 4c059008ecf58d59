/**
 * The member limit with real processes: a master with --max-members 1 and
 * two peers. One gets the place; the other is refused, counted and warned
 * about once by the master, and knows it is left out: not synchronized,
 * `membership.inTable` false with the reason, a warning of its own. When
 * the member leaves, the refused peer takes its place.
 */
import test from 'ava';
import { testCluster, testGroup, waitFor } from './helpers/group.js';

test.serial('--max-members 1: the second peer is refused, counted and told; it joins when the place frees', async (t) => {
  const g = await testGroup(200);
  const c = testCluster(t);
  await c.add({ name: 'm', args: [...g.args, '--master', '--max-members', '1'] });
  await c.add({ name: 'a', args: [...g.args, '--priority', '0'] });
  await waitFor('a in the table', async () => ((await c.status('m')).members.some((x) => x.nodeId === 'a') ? true : undefined), 40 * g.intervalMs);
  await c.add({ name: 'b', args: [...g.args, '--priority', '0'] });
  const left = await waitFor('b left out', async () => {
    const s = await c.status('b');
    return s.membership.inTable === false ? s : undefined;
  }, 40 * g.intervalMs);
  t.is(left.membership.leftOut, 'table-full');
  t.false(left.synced, 'left out: not synchronized');
  const m = await c.status('m');
  t.deepEqual(m.members.map((x) => x.nodeId), ['a']);
  t.true(m.membership.refused >= 1);
  t.true(m.membership.full);
  t.is(m.membership.maxMembers, 1);
  t.true((m.counters.dropped['table-full'] ?? 0) >= 1);
  // Warned once, not every round.
  await waitFor('a few more rounds', async () => ((await c.status('m')).membership.refused >= 4 ? true : undefined), 40 * g.intervalMs);
  t.is(c.member('m').stderr.match(/the member table is full/g)?.length, 1, c.member('m').stderr);
  t.regex(c.member('b').stderr, /the master's table is full .* not synchronized/);
  t.log(`master: ${m.membership.refused} refusals so far; b: ${JSON.stringify(left.membership)}`);
  // The member leaves: b takes the place and says so.
  await c.kill('a', 'SIGTERM');
  await waitFor('b in the table', async () => ((await c.status('b')).membership.inTable === true ? true : undefined), 40 * g.intervalMs);
  t.regex(c.member('b').stderr, /in the master's table again/);
  await waitFor('the master says there is room', async () => (/the member table has room again/.test(c.member('m').stderr) ? true : undefined), 20 * g.intervalMs);
  t.false((await c.status('m')).membership.full);
});
