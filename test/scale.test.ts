/**
 * The engine at scale (lib/core/load.ts): the burst a master asks of its
 * peers for the group it expects, the fast start only where it fits, the
 * member limit (refusals counted, warned about once, the table flagged
 * full), and a peer that knows when it is left out of the table.
 */
import test from 'ava';
import { DEFAULT_MAX_MEMBERS, EXCHANGES_PER_SECOND, exchangesOf, fastStartFits, probesFor } from '../lib/core/load.js';
import { validateOptions, DEFAULTS } from '../lib/core/options.js';
import { summarize } from '../lib/sim/report.js';
import { runSimulation, SIM_DEFAULTS } from '../lib/sim/simulator.js';
import { nodeIdOf } from '../lib/wire/ids.js';
import { MessageType, type AdjustMessage, type SyncMessage } from '../lib/wire/messages.js';
import {
  MS, S, FakeTime, adjustFor, armed, fakeMaster, makeNode, masterRounds, notices, only, runBurst, sends, syncFrom,
} from './helpers/core-harness.js';

const SECOND = 1_000_000_000n;

test('probesFor: a small group keeps the full burst; a large one gets what the budget allows, never less than one exchange', (t) => {
  t.is(probesFor(8, SECOND, 12), 12);
  t.is(probesFor(0, SECOND, 12), 12, 'no members known yet: the full burst');
  t.is(probesFor(1_000, SECOND, 12), 7, '1,000 x 8 exchanges = the 8,000 budget');
  t.is(probesFor(2_000, SECOND, 12), 3);
  t.is(probesFor(4_000, SECOND, 12), 1);
  t.is(probesFor(10_000, SECOND, 12), 1);
  t.is(probesFor(2_000, 2n * SECOND, 12), 7, 'a longer interval, a larger budget');
  t.is(probesFor(8, SECOND, 3), 3, '--probes is the most');
  for (const n of [100, 1_000, 2_000, 4_000, 8_000]) {
    t.true(n * exchangesOf(probesFor(n, SECOND, 12)) <= EXCHANGES_PER_SECOND, `${n} members stay within the budget`);
  }
  t.is(exchangesOf(1), 1, 'one exchange: no warm-up');
  t.is(exchangesOf(12), 13, 'a warm-up on top');
});

test('fastStartFits: quarter-interval rounds only for a group whose full bursts fit them', (t) => {
  t.true(fastStartFits(0, SECOND / 4n, 12));
  t.true(fastStartFits(100, SECOND / 4n, 12));
  t.false(fastStartFits(1_000, SECOND / 4n, 12));
});

test('--max-members: validated; the default fits 10,000 members', (t) => {
  t.true(DEFAULT_MAX_MEMBERS >= 10_000);
  t.throws(() => validateOptions({ ...DEFAULTS, name: 'a', unicast: { address: '0.0.0.0', port: 1 }, maxMembers: 0 }), { message: /max members/ });
  t.throws(() => validateOptions({ ...DEFAULTS, name: 'a', unicast: { address: '0.0.0.0', port: 1 }, maxMembers: 1.5 }), { message: /max members/ });
});

test('a master asks for smaller bursts as its group grows, and skips the fast start for a large group', (t) => {
  const time = new FakeTime();
  const { m, round } = masterRounds(time);
  const first = only(sends(m.handle({ type: 'start', monoNs: time.ns }), MessageType.Sync), 'SYNC').msg as SyncMessage;
  t.is(first.probes, 12, 'nobody known yet: the full burst');
  const many = Array.from({ length: 3_000 }, (_, i) => [`n${i}`, 10_000n, 0] as [string, bigint, number]);
  const { next } = round(many);
  t.is(m.node.status().members.length, 3_000);
  // The round after (round 2, a quarter-interval round for a small group): 3,000 members expected, so
  // fewer probes, and the full interval: their bursts would not fit a quarter of it.
  const sync = only(sends(next, MessageType.Sync), 'SYNC').msg as SyncMessage;
  t.is(sync.round, 2);
  t.is(sync.collectMs, 500, 'no fast start');
  t.is(sync.probes, probesFor(3_000, SECOND, 12));
  const st = m.node.status();
  t.is(st.probes, probesFor(3_000, SECOND, 12));
  t.true(st.probes < 12);
});

test('the member limit: reports beyond it are refused and counted, the table says full, one notice when refusing starts and one when it stops', (t) => {
  const time = new FakeTime();
  const { m, round } = masterRounds(time, { maxMembers: 3 });
  const rows = (names: string[]) => names.map((n) => [n, 10_000n, 0] as [string, bigint, number]);
  // The master counts itself in the table but not among the members: 3 members fit.
  const r1 = round(rows(['a', 'b', 'c', 'd', 'e']));
  t.is(m.node.status().members.length, 3);
  t.is(m.node.status().dropped['table-full'], 2);
  t.is(m.node.status().membersRefused, 2);
  t.true(r1.adjust.full, 'the table says it is full');
  const started = notices(r1.actions, 'member-limit');
  t.is(started.length, 1);
  t.like(started[0], { refusing: true, refused: 2, max: 3 });
  const r2 = round(rows(['a', 'b', 'c', 'd', 'e']));
  t.is(notices(r2.actions, 'member-limit').length, 0, 'no second notice while it goes on');
  t.is(m.node.status().membersRefused, 4, 'counted each round');
  const r3 = round(rows(['a', 'b', 'c']));
  t.false(r3.adjust.full);
  t.like(notices(r3.actions, 'member-limit')[0], { refusing: false });
  t.true(m.node.status().tableFull === false);
});

test('the table on the wire: entries in node id order', (t) => {
  const time = new FakeTime();
  const { round } = masterRounds(time);
  const { adjust } = round(Array.from({ length: 40 }, (_, i) => [`n${i}`, BigInt(i) * 1_000n, 0] as [string, bigint, number]));
  const ids = adjust.entries.map((e) => e.node);
  t.deepEqual(ids, [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  t.is(adjust.rangeFirst, 0n);
  t.is(adjust.rangeLast, 0xffff_ffff_ffff_ffffn);
});

/** A peer that has measured and reported in round r; returns the ADJUST template of that round. */
function reported(time: FakeTime, p: ReturnType<typeof makeNode>, master: ReturnType<typeof fakeMaster>, round: number, over: Partial<SyncMessage> = {}): void {
  const actions = runBurst(time, p, master, syncFrom(master, 1, round, over));
  only(sends(actions, MessageType.Report), 'REPORT');
}

test('a peer left out of a full table knows it at once: not synchronized, with the reason; back in the table, it says so', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  // Synchronized first: corrections in several rounds.
  for (let r = 1; r <= 6; r++) {
    reported(time, p, master, r);
    p.receive(adjustFor(master.id, 1, r, [{ node: p.id, adjustmentNs: 0n, outlier: false, faulty: false }], p), { address: '10.0.0.1', port: 9123 });
    time.advance(S / 2n);
  }
  t.true(p.node.status().synced);
  reported(time, p, master, 7);
  const full: AdjustMessage = { ...adjustFor(master.id, 1, 7, [{ node: nodeIdOf('other'), adjustmentNs: 0n, outlier: false, faulty: false }], 0n), full: true };
  const out = p.receive(full, { address: '10.0.0.1', port: 9123 });
  t.like(notices(out, 'table')[0], { inTable: false, why: 'table-full' });
  t.is(p.node.status().leftOut, 'table-full');
  t.false(p.node.status().synced, 'left out: not synchronized');
  // A part that does not hold our id says nothing about us.
  reported(time, p, master, 8);
  const elsewhere: AdjustMessage = { ...adjustFor(master.id, 1, 8, [], 0n), rangeFirst: p.id + 1n };
  t.is(notices(p.receive(elsewhere, { address: '10.0.0.1', port: 9123 }), 'table').length, 0);
  // In the table again.
  const back = p.receive(adjustFor(master.id, 1, 8, [{ node: p.id, adjustmentNs: 0n, outlier: false, faulty: false }], p), { address: '10.0.0.1', port: 9123 });
  t.like(notices(back, 'table')[0], { inTable: true });
  t.is(p.node.status().leftOut, null);
  t.true(p.node.status().synced);
});

test('a peer whose reports reach no table (no full flag) counts as left out after 3 rounds, not at the first miss', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  const seen: string[] = [];
  for (let r = 1; r <= 3; r++) {
    reported(time, p, master, r);
    const out = p.receive(adjustFor(master.id, 1, r, [{ node: nodeIdOf('other'), adjustmentNs: 0n, outlier: false, faulty: false }], 0n), { address: '10.0.0.1', port: 9123 });
    seen.push(...notices(out, 'table').map((n) => `${r}:${n.why}`));
    time.advance(S / 2n);
  }
  t.deepEqual(seen, ['3:not-in-table']);
  t.is(p.node.status().leftOut, 'not-in-table');
});

test('a peer runs the burst its master asks for: one exchange and no warm-up at 10,000 members', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  const actions = runBurst(time, p, master, syncFrom(master, 1, 2, { probes: 1 }));
  const measured = notices(actions, 'measured');
  t.is(measured.length, 1);
  t.is(measured[0]!.samples, 1);
  t.is(p.node.status().probes, 1);
  // A master that asks for more than our --probes gets our --probes.
  runBurst(time, p, master, syncFrom(master, 1, 3, { probes: 64 }));
  t.is(p.node.status().probes, 12);
});

test('an overloaded master sheds requests that waited longer than their senders wait for the reply, and answers fresh ones', (t) => {
  const time = new FakeTime();
  const m = makeNode(time, 'm', { pinnedMaster: true });
  const sync = only(sends(m.handle({ type: 'start', monoNs: time.ns }), MessageType.Sync), 'SYNC').msg as SyncMessage;
  time.advance(100n * MS);
  const request = (nonce: bigint) => ({ type: MessageType.TimeRequest as const, domain: 0, sender: nodeIdOf('p'), epoch: sync.epoch, round: sync.round, nonce, originNs: 0n });
  const from = { address: '10.0.0.9', port: 9200 };
  // Round 1 is a fast-start round: a 125 ms window, so peers wait 5 ms for a reply.
  const stale = m.handle({ type: 'datagram', msg: request(1n), from, rxMonoNs: time.ns - 6n * MS });
  t.is(sends(stale, MessageType.TimeReply).length, 0, 'waited 6 ms in our queue: nobody waits for it');
  t.is(m.node.status().dropped['stale-request'], 1);
  const fresh = m.handle({ type: 'datagram', msg: request(2n), from, rxMonoNs: time.ns - 4n * MS });
  t.is(sends(fresh, MessageType.TimeReply).length, 1, 'waited 4 ms: answered');
});

test('a one-exchange burst whose reply is lost tries once more, then gives up', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  const onSync = p.receive(syncFrom(master, 1, 1, { probes: 1 }), { address: '10.0.0.1', port: 9123 });
  time.advance(armed(onSync, 'slot')[0]!);
  t.is(sends(p.fire('slot'), MessageType.TimeRequest).length, 1, 'one exchange, no warm-up');
  time.advance(20n * MS);
  t.is(sends(p.fire('probe'), MessageType.TimeRequest).length, 1, 'its reply lost: one more try');
  time.advance(20n * MS);
  const last = p.fire('probe');
  t.is(sends(last, MessageType.TimeRequest).length, 0, 'lost again: no third');
  t.is(notices(last, 'burst-failed').length, 1);
});

test('a master that had to shed requests expects that many requesters and runs no fast-start round', (t) => {
  const time = new FakeTime();
  const m = makeNode(time, 'm', { pinnedMaster: true });
  const sync = only(sends(m.handle({ type: 'start', monoNs: time.ns }), MessageType.Sync), 'SYNC').msg as SyncMessage;
  t.is(sync.collectMs, 125, 'round 1: a quarter-interval round');
  time.advance(100n * MS);
  for (let i = 0; i < 3_000; i++) {
    const msg = { type: MessageType.TimeRequest as const, domain: 0, sender: BigInt(i + 1), epoch: sync.epoch, round: sync.round, nonce: BigInt(i), originNs: 0n };
    m.handle({ type: 'datagram', msg, from: { address: '10.0.0.9', port: 9200 }, rxMonoNs: time.ns - 10n * MS });
  }
  t.is(m.node.status().dropped['stale-request'], 3_000);
  time.advance(25n * MS);
  m.fire('collect');
  time.advance(125n * MS);
  const next = only(sends(m.fire('round'), MessageType.Sync), 'SYNC').msg as SyncMessage;
  t.is(next.collectMs, 500, 'round 2 at the full interval');
  t.is(next.probes, probesFor(3_000, SECOND, 12));
});

test('a peer that takes over a large group plans its first round for the table it followed: no fast start, the burst the budget allows', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  // Our part of a table of 130 parts, 77 entries each (about 10,000 members).
  const others = [...Array(76).keys()].map((i) => ({ node: p.id + BigInt(i + 1), adjustmentNs: 0n, outlier: false, faulty: false }));
  for (let r = 1; r <= 3; r++) {
    reported(time, p, master, r);
    const part = adjustFor(master.id, 1, r, [{ node: p.id, adjustmentNs: 0n, outlier: false, faulty: false }, ...others], p);
    p.receive({ ...part, parts: 130 }, { address: '10.0.0.1', port: 9123 });
    time.advance(S / 2n);
  }
  // The master falls silent: p claims, and wins.
  let sync: SyncMessage | null = null;
  for (let k = 0; k < 6 && sync === null; k++) {
    time.advance(2n * S);
    const out = [...p.fire('election'), ...p.fire('claim')];
    sync = (sends(out, MessageType.Sync)[0]?.msg as SyncMessage | undefined) ?? null;
  }
  t.truthy(sync, 'p never became master');
  t.is(p.node.status().role, 'master');
  t.is(sync!.collectMs, 500, 'round 1 at the full interval, not a quarter of it');
  t.is(sync!.probes, probesFor(130 * 77, SECOND, 12));
  t.is(sync!.probes, 1);
});

test("the simulator's receive model: a master that can answer its group holds it; one ten times too slow loses its tables", (t) => {
  const run = (cost: bigint) => summarize(runSimulation({ ...SIM_DEFAULTS, nodes: 400, rounds: 18, driftPpm: 50, receiveCostNs: cost, seed: 5 }));
  const fast = run(13_000n).load;
  // 400 members run full bursts (the budget allows 12 probes up to 615): 400 x (13 exchanges + a report) at 13 µs is 73 ms a round.
  t.true(fast.tableRows.median! >= 390, JSON.stringify(fast));
  // 1.5 ms a datagram: 400 reports alone are 0.6 s of a 0.5 s window.
  const slow = run(1_500_000n).load;
  t.true(slow.tableRows.median! < 200, JSON.stringify(slow));
  t.true(slow.receiveDrops > 0 || slow.staleRequests > 0);
  t.log(`13 µs: rows min ${fast.tableRows.min}, median ${fast.tableRows.median}; 1.5 ms: median ${slow.tableRows.median}, ${slow.receiveDrops} dropped, ${slow.staleRequests} shed`);
});
