/**
 * Elections in a large group (lib/core/election.ts): when the master of a
 * few hundred nodes dies, one of them takes over within 3 intervals and the
 * claims sent stay a handful, not one per node (before rank-timed claims,
 * 20 nodes sent 432 claims and 50 ran the simulator out of memory).
 */
import test from 'ava';
import { ClaimBook, compareCredentials, rankFraction } from '../lib/core/election.js';
import { runSimulation, SIM_DEFAULTS } from '../lib/sim/simulator.js';
import { nodeIdOf } from '../lib/wire/ids.js';

test('rankFraction: a better node (higher priority, then lower id) ranks earlier; within [0, 1)', (t) => {
  const ids = Array.from({ length: 500 }, (_, i) => nodeIdOf(`n${i}`));
  for (let i = 0; i < 200; i++) {
    const [a, b] = [ids[i]!, ids[i + 1]!];
    const better = compareCredentials({ epoch: 1, priority: 100, node: a }, { epoch: 1, priority: 100, node: b }) > 0;
    t.is(rankFraction(100, a) < rankFraction(100, b), better);
  }
  t.true(rankFraction(200, ids[0]!) < rankFraction(100, ids[0]!));
  for (const id of [0n, 1n, 0xffff_ffff_ffff_ffffn, ...ids]) for (const p of [1, 100, 255]) {
    const r = rankFraction(p, id);
    t.true(r >= 0 && r < 1, `${p}/${id}: ${r}`);
  }
});

test('ClaimBook: a claim is worth sending only if it beats every claim heard for its epoch', (t) => {
  const book = new ClaimBook();
  const me = { epoch: 5, priority: 100, node: 50n };
  t.true(book.worthClaiming(me));
  book.heard({ epoch: 5, priority: 100, node: 80n });
  t.true(book.worthClaiming(me), 'a worse claim: ours still wins');
  book.heard({ epoch: 5, priority: 100, node: 20n });
  t.false(book.worthClaiming(me), 'a better claim came: ours is not worth sending');
  t.true(book.worthClaiming({ ...me, epoch: 6 }), 'a newer epoch starts afresh');
  book.heard({ epoch: 7, priority: 1, node: 99n });
  t.false(book.worthClaiming(me), 'an older epoch than claimed already');
});

for (const nodes of [50, 200]) {
  test(`the master of ${nodes} nodes dies: one new master within 3 intervals, a handful of claims`, (t) => {
    const crash = 16;
    const r = runSimulation({ ...SIM_DEFAULTS, nodes, rounds: crash + 5, master: null, crashMasterAtRound: crash, seed: 3 });
    const crashed = r.events.find((e) => e.notice.kind === 'role' && e.notice.why === 'crashed (simulated)');
    if (!crashed) return t.fail('the master did not crash');
    const after = r.events.filter((e) => e.atNs >= crashed.atNs && e.notice.kind === 'role');
    const claims = after.filter((e) => e.notice.kind === 'role' && e.notice.role === 'candidate').length;
    const masters = after.filter((e) => e.notice.kind === 'role' && e.notice.role === 'master');
    const takeover = masters.length ? Number(masters[0]!.atNs - crashed.atNs) / Number(SIM_DEFAULTS.intervalNs) : Infinity;
    t.log(`${nodes} nodes: ${claims} claims after the crash, new master ${masters[0]?.node} after ${takeover.toFixed(2)} intervals`);
    t.is(masters.length, 1, 'one new master');
    t.true(takeover <= 3, `took ${takeover} intervals`);
    t.true(claims <= 10, `${claims} claims`);
  });
}
