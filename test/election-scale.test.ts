/**
 * Elections in a large group (lib/core/election.ts): when the master of a
 * few hundred nodes dies, one of them takes over within 3 intervals and the
 * claims sent stay a handful, not one per node (before rank-timed claims,
 * 20 nodes sent 432 claims and 50 ran the simulator out of memory).
 */
import test from 'ava';
import { ClaimBook, compareCredentials, rankFraction } from '../lib/core/election.js';
import { electionAfterCrash } from '../lib/sim/report.js';
import { runSimulation, SIM_DEFAULTS } from '../lib/sim/simulator.js';
import { nodeIdOf } from '../lib/wire/ids.js';
import { MessageType, type ClaimMessage } from '../lib/wire/messages.js';
import { armed, FakeTime, fakeMaster, makeNode, MASTER_ADDR, S, sends, syncFrom } from './helpers/core-harness.js';

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
    const e = electionAfterCrash(runSimulation({ ...SIM_DEFAULTS, nodes, rounds: crash + 5, master: null, crashMasterAtRound: crash, seed: 3 }));
    if (!e) return t.fail('the master did not crash');
    t.log(`${nodes} nodes: ${e.claims} claims after the crash, new master ${e.masters[0]} after ${e.takeoverIntervals?.toFixed(2)} intervals`);
    t.is(e.masters.length, 1, 'one new master');
    t.true(e.takeoverIntervals! <= 3, `took ${e.takeoverIntervals} intervals`);
    t.true(e.claims <= 10, `${e.claims} claims`);
  });
}

/** A peer (priority 100) that followed a master, which then went quiet: past FRESH_MASTER, so it competes for the next epoch. */
function quietPeer() {
  const time = new FakeTime();
  const p = makeNode(time, 'p', { priority: 100 });
  p.handle({ type: 'start', monoNs: time.ns });
  p.receive(syncFrom(fakeMaster(time), 1, 1), MASTER_ADDR);
  time.advance(2n * S);
  return { time, p };
}

test('a node waiting to answer a worse claim stays silent when a better one comes first, and a second worse claim does not push its turn back', (t) => {
  const { time, p } = quietPeer();
  const claim = (name: string, priority: number): ClaimMessage => ({ type: MessageType.Claim, domain: 0, sender: nodeIdOf(name), epoch: 2, round: 0, priority, name });
  const first = armed(p.receive(claim('worse', 50), { address: '10.0.0.7', port: 9123 }), 'election');
  t.is(first.length, 1, 'a worse claim: p answers at its turn');
  time.advance(first[0]! / 2n);
  t.is(armed(p.receive(claim('worse-too', 40), { address: '10.0.0.8', port: 9123 }), 'election').length, 0, 'a second worse claim leaves the turn where it was');
  p.receive(claim('better', 200), { address: '10.0.0.9', port: 9123 });
  time.advance(first[0]!);
  const fired = p.fire('election');
  t.is(sends(fired, MessageType.Claim).length, 0, 'a better claim came first: no claim of its own');
  t.is(p.node.status().role, 'peer');
});

test('a node whose turn comes with only worse claims heard claims', (t) => {
  const { time, p } = quietPeer();
  const worse: ClaimMessage = { type: MessageType.Claim, domain: 0, sender: nodeIdOf('worse'), epoch: 2, round: 0, priority: 50, name: 'worse' };
  const turn = armed(p.receive(worse, { address: '10.0.0.7', port: 9123 }), 'election')[0]!;
  time.advance(turn);
  t.is(sends(p.fire('election'), MessageType.Claim).length, 1);
  t.is(p.node.status().role, 'candidate');
});
