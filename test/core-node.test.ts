/**
 * The Node state machine driven by hand: a fake monotonic clock that moves
 * only when the test says so, events fed one at a time, and the returned
 * ACTIONS checked (sends, timers, corrections, notices). Messages are built
 * as the codec would deliver them.
 */
import test from 'ava';
import { createSimulatedClock } from '../lib/clock/index.js';
import { CLAIM_WINDOW, ELECTION_JITTER, ELECTION_TIMEOUT, LIVENESS_WINDOW, STARTUP_WAIT } from '../lib/core/election.js';
import { INITIAL_STEP_UPDATES } from '../lib/core/context.js';
import { FAST_START_MIN_COLLECT_NS, FAST_START_ROUNDS, fastStartDivisor, measuredAt, type RequestTiming } from '../lib/core/master.js';
import { DEFAULTS, type NodeOptions } from '../lib/core/options.js';
import type { Action, Notice } from '../lib/core/types.js';
import { nodeIdOf } from '../lib/wire/ids.js';
import {
  MessageType,
  type AdjustMessage,
  type ClaimMessage,
  type LeaveMessage,
  type ReportMessage,
  type SyncMessage,
  type TimeRequestMessage,
} from '../lib/wire/messages.js';

import {
  US, MS, S, FakeTime, Harness, makeNode, sends, armed, disarmed, corrections, notices, only, MASTER_ADDR, PEER_ADDR, syncFrom, fakeMaster, replyTo, adjustFor, exchangeOnce, runBurst, masterRounds,
} from './helpers/core-harness.js';

// ---------------------------------------------------------------- master: rounds

test('a pinned master starts a round at once: SYNC to the group, round and collect armed', (t) => {
  const time = new FakeTime();
  const m = makeNode(time, 'alpha', { pinnedMaster: true, priority: 200 });
  const actions = m.handle({ type: 'start', monoNs: time.ns });
  const sync = only(sends(actions, MessageType.Sync), 'SYNC');
  t.is(sync.to, 'group');
  const msg = sync.msg as SyncMessage;
  t.is(msg.epoch, 1);
  t.is(msg.round, 1);
  t.is(msg.sender, m.id);
  t.is(msg.name, 'alpha');
  t.true(msg.pinned);
  t.is(msg.priority, 200);
  t.is(msg.masterTimeNs, m.clock.now(), "the master's clock at sending");
  t.is(msg.intervalMs, 1000);
  t.deepEqual(armed(actions, 'round'), [DEFAULTS.intervalNs / 4n]);
  t.deepEqual(armed(actions, 'collect'), [DEFAULTS.collectTimeoutNs / 4n]);
  t.deepEqual(notices(actions, 'role').map((n) => n.role), ['master']);
  t.is(sends(actions, MessageType.Claim).length, 0, 'a pinned master does not claim');
  t.is(armed(actions, 'election').length, 0, 'nor wait for an election');
});

test('fast start: rounds 1-4 run at a quarter interval, 5-12 at half, later ones at the interval', (t) => {
  const time = new FakeTime();
  const intervalNs = 2n * S;
  const collectTimeoutNs = 800n * MS;
  const m = makeNode(time, 'alpha', { pinnedMaster: true, intervalNs, collectTimeoutNs });
  let actions = m.handle({ type: 'start', monoNs: time.ns });
  const seen: Array<{ round: number; roundNs: bigint; collectNs: bigint; collectMs: number }> = [];
  for (let i = 0; i < 15; i++) {
    const msg = only(sends(actions, MessageType.Sync), 'SYNC').msg as SyncMessage;
    const roundNs = only(armed(actions, 'round'), 'round timer');
    const collectNs = only(armed(actions, 'collect'), 'collect timer');
    seen.push({ round: msg.round, roundNs, collectNs, collectMs: msg.collectMs });
    time.advance(collectNs);
    const collected = m.fire('collect');
    t.is(sends(collected, MessageType.Adjust).length, 1, `round ${msg.round}: an ADJUST table after the collection`);
    time.advance(roundNs - collectNs);
    actions = m.fire('round');
  }
  t.deepEqual(
    seen.map((s) => s.round),
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  );
  t.is(FAST_START_ROUNDS, 12);
  for (const s of seen) {
    const divisor = s.round <= 4 ? 4n : s.round <= 12 ? 2n : 1n;
    t.is(s.roundNs, intervalNs / divisor, `round ${s.round}: next SYNC`);
    t.is(s.collectNs, collectTimeoutNs / divisor, `round ${s.round}: collection`);
    t.is(BigInt(s.collectMs) * MS, s.collectNs, `round ${s.round}: the SYNC advertises this round's collection window`);
  }
});

test('fast start: a round\'s collection window never shrinks below 25 ms (short intervals speed up less)', (t) => {
  t.is(fastStartDivisor(1, 500n * MS), 4n, 'default: 125 ms windows');
  t.is(fastStartDivisor(5, 500n * MS), 2n);
  t.is(fastStartDivisor(1, 100n * MS), 4n, '25 ms windows');
  t.is(fastStartDivisor(1, 60n * MS), 2n, '30 ms windows, not 15');
  t.is(fastStartDivisor(5, 40n * MS), 1n, 'not 20');
  t.is(fastStartDivisor(1, 20n * MS), 1n, 'a 40 ms interval has no fast start');
  t.is(fastStartDivisor(12, 500n * MS), 2n);
  t.is(fastStartDivisor(13, 500n * MS), 1n);
  for (const c of [20n, 49n, 50n, 99n, 100n, 199n, 200n, 500n, 3000n]) {
    for (let round = 1; round <= 14; round++) {
      const d = fastStartDivisor(round, c * MS);
      t.true(d === 1n || (c * MS) / d >= FAST_START_MIN_COLLECT_NS, `round ${round}, collect ${c} ms: divisor ${d}`);
    }
  }
});

test('measuredAt: the mean over reporters of each one\'s mean request; others\' requests do not count', (t) => {
  const timing = (monos: bigint[], applied: bigint[]): RequestTiming => ({
    monoSum: monos.reduce((a, b) => a + b, 0n),
    appliedSum: applied.reduce((a, b) => a + b, 0n),
    n: BigInt(monos.length),
  });
  const a = 1n;
  const b = 2n;
  const flood = 3n;
  const timings = new Map<bigint, RequestTiming>([
    [a, timing([100n * MS, 102n * MS], [10n * US, 12n * US])], // mean 101 ms, 11 µs
    [b, timing([200n * MS], [30n * US])],
    // Thirty requests from a node that never reported (a replayer, or a peer whose report was lost).
    [flood, timing(Array(30).fill(900n * MS) as bigint[], Array(30).fill(500n * US) as bigint[])],
  ]);
  t.deepEqual(measuredAt(timings, [a, b]), { monoNs: 150_500_000n, appliedNs: 20_500n }, 'one value per reporter, whatever its number of requests');
  t.deepEqual(measuredAt(timings, [b]), { monoNs: 200n * MS, appliedNs: 30n * US });
  t.is(measuredAt(timings, []), null, 'nobody reported');
  t.is(measuredAt(timings, [4n]), null, 'a reporter without requests this round');
});

// ---------------------------------------------------------------- peer: a round

test('a peer: SYNC arms the slot; the slot sends a TIME_REQUEST to the master by unicast', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  const onSync = p.receive(syncFrom(master, 1, 1), MASTER_ADDR);
  const slot = only(armed(onSync, 'slot'), 'slot timer');
  t.true(slot > 0n && slot <= (500n * MS * 80n) / 100n, `slot within the first 80% of the collection window: ${slot}`);
  t.is(sends(onSync).length, 0, 'nothing is sent before the slot');
  t.deepEqual(notices(onSync, 'role').map((n) => [n.role, n.masterName]), [['peer', 'master']]);
  t.is(armed(onSync, 'election').length, 1, 'the SYNC re-arms the election timeout');
  time.advance(slot);
  const onSlot = p.fire('slot');
  const req = only(sends(onSlot, MessageType.TimeRequest), 'TIME_REQUEST');
  t.deepEqual(req.to, { address: MASTER_ADDR.address, port: 9300 }, 'SYNC address 0.0.0.0: the source address, at the advertised port');
  const msg = req.msg as TimeRequestMessage;
  t.is(msg.epoch, 1);
  t.is(msg.round, 1);
  t.is(msg.sender, p.id);
  t.is(msg.originNs, p.clock.now(), 't1 is the clock just before sending');
  t.is(armed(onSlot, 'probe').length, 1, 'the request waits for its reply with a timer');

  // An explicit unicast address is used as given.
  const p2 = makeNode(time, 'p2');
  const onSync2 = p2.receive(syncFrom(master, 1, 2, { unicastAddress: '10.9.8.7', unicastPort: 4444 }), MASTER_ADDR);
  time.advance(armed(onSync2, 'slot')[0]!);
  t.deepEqual(only(sends(p2.fire('slot'), MessageType.TimeRequest), 'TIME_REQUEST').to, { address: '10.9.8.7', port: 4444 });
});

test('a peer: replies must echo nonce and origin; the burst reports its least-delay sample; ADJUST corrects once', (t) => {
  const time = new FakeTime();
  const X = 5n * MS; // the peer is 5 ms ahead: inside the tolerance, so no coarse step
  const p = makeNode(time, 'p1', { probes: 3 }, X);
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  const onSync = p.receive(syncFrom(master, 1, 1), MASTER_ADDR);
  t.is(notices(onSync, 'coarse-step').length, 0);
  time.advance(armed(onSync, 'slot')[0]!);
  let actions = p.fire('slot');

  // Warm-up exchange: answered, discarded, next request goes out.
  let req = only(sends(actions, MessageType.TimeRequest), 'request').msg as TimeRequestMessage;
  actions = exchangeOnce(time, p, master, req, 30n * US, 30n * US);
  req = only(sends(actions, MessageType.TimeRequest), 'request after warm-up').msg as TimeRequestMessage;

  // Forged replies: wrong nonce, wrong origin. Dropped, nothing sent.
  const wrongNonce = p.receive(replyTo(req, master.id, master.clock.now(), master.clock.now(), { nonce: req.nonce ^ 1n }), MASTER_ADDR);
  t.deepEqual(notices(wrongNonce, 'dropped').map((n) => n.reason), ['unexpected-reply']);
  t.is(sends(wrongNonce).length, 0, 'a forged reply does not advance the burst');
  const wrongOrigin = p.receive(replyTo(req, master.id, master.clock.now(), master.clock.now(), { originNs: req.originNs + 1n }), MASTER_ADDR);
  t.deepEqual(notices(wrongOrigin, 'dropped').map((n) => n.reason), ['unexpected-reply']);
  t.is(sends(wrongOrigin).length, 0);
  t.is(p.node.status().dropped['unexpected-reply'], 2);

  // Three real samples: round trips 300 µs (symmetric), 100 µs (40 out, 60 back), 200 µs (symmetric).
  actions = exchangeOnce(time, p, master, req, 150n * US, 150n * US);
  req = only(sends(actions, MessageType.TimeRequest), 'request 2').msg as TimeRequestMessage;
  // A reply to the previous request, replayed now: no longer outstanding.
  const stale = p.receive(replyTo({ ...req, nonce: req.nonce + 5n }, master.id, 0n, 0n), MASTER_ADDR);
  t.deepEqual(notices(stale, 'dropped').map((n) => n.reason), ['unexpected-reply']);
  actions = exchangeOnce(time, p, master, req, 40n * US, 60n * US);
  req = only(sends(actions, MessageType.TimeRequest), 'request 3').msg as TimeRequestMessage;
  actions = exchangeOnce(time, p, master, req, 100n * US, 100n * US);

  // Burst done: REPORT of the least-delay sample to the master.
  t.is(sends(actions, MessageType.TimeRequest).length, 0, 'probes: 3 → 1 warm-up + 3 requests');
  const report = only(sends(actions, MessageType.Report), 'REPORT');
  t.deepEqual(report.to, { address: MASTER_ADDR.address, port: 9300 });
  const r = report.msg as ReportMessage;
  t.is(r.delayNs, 100n * US, 'the least delay');
  t.is(r.offsetNs, X + 10n * US, 'its offset: +5 ms plus half the asymmetry (60 − 40) / 2');
  t.is(r.round, 1);
  t.is(r.epoch, 1);
  t.is(r.name, 'p1');
  const measured = only(notices(actions, 'measured'), 'measured');
  t.is(measured.samples, 3);

  // ADJUST with our entry: one 'correct' of exactly the entry (nothing corrected since the measurement).
  time.advance(100n * MS);
  const adjust = adjustFor(master.id, 1, 1, [
    { node: nodeIdOf('someone-else'), adjustmentNs: 123n, outlier: false, faulty: false },
    { node: p.id, adjustmentNs: -X, outlier: false, faulty: false },
  ], p);
  // The same table with our entry answering another offset (a report corrupted on the way) is refused.
  const corrupt = p.receive({ ...adjust, averageNs: adjust.averageNs + 1n }, MASTER_ADDR);
  t.is(corrections(corrupt).length, 0, 'an entry for an offset we did not report moves nothing');
  t.deepEqual(notices(corrupt, 'dropped').map((n) => n.reason), ['wrong-report']);
  const onAdjust = p.receive(adjust, MASTER_ADDR);
  const c = only(corrections(onAdjust), 'correct');
  t.is(c.correctionNs, -X);
  t.true(c.allowStep, 'the first correction may step');
  t.is(only(notices(onAdjust, 'corrected'), 'corrected').adjustmentNs, -X);
  t.false(p.node.status().synced, 'one correction does not synchronize: the first 4 may step');

  // The same ADJUST again (duplicate or replay): dropped, no second correction.
  const replay = p.receive(adjust, MASTER_ADDR);
  t.is(corrections(replay).length, 0, 'a replayed ADJUST must not move the clock twice');
  t.deepEqual(notices(replay, 'dropped').map((n) => n.reason), ['stale-round']);
  t.is(p.node.status().dropped['stale-round'], 1);
});

test('a peer: an ADJUST entry is reduced by what was corrected since the measurement', (t) => {
  const time = new FakeTime();
  // One sample per burst, so the measurement is taken at the REPORT's instant; a step threshold
  // high enough that the first 2 ms correction slews (500 ppm: 4 s) instead of stepping.
  const p = makeNode(time, 'p1', { probes: 1, stepThresholdNs: 10n * MS });
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  runBurst(time, p, master, syncFrom(master, 1, 1));
  const first = p.receive(adjustFor(master.id, 1, 1, [{ node: p.id, adjustmentNs: 2n * MS, outlier: false, faulty: false }], p), MASTER_ADDR);
  t.is(only(corrections(first), 'correct').correctionNs, 2n * MS);
  time.advance(100n * MS);
  // Round 2 is measured while that slew runs.
  t.is(sends(runBurst(time, p, master, syncFrom(master, 1, 2)), MessageType.Report).length, 1);
  const appliedAtMeasureNs = p.clock.appliedNs();
  time.advance(200n * MS);
  const ranSinceNs = p.clock.appliedNs() - appliedAtMeasureNs;
  t.is(ranSinceNs, 100n * US, '200 ms of a 500 ppm slew');
  const onAdjust = p.receive(adjustFor(master.id, 1, 2, [{ node: p.id, adjustmentNs: -30n * US, outlier: false, faulty: false }], p), MASTER_ADDR);
  const c = only(corrections(onAdjust), 'correct');
  t.is(c.correctionNs, -30n * US - ranSinceNs, 'the part of the slew that ran after the measurement is subtracted');
  t.true(c.allowStep, 'still acquiring: the first 4 corrections may step');
  t.false(only(notices(onAdjust, 'corrected'), 'corrected').step, 'but this one is within the threshold: slewed');
});

test('a replayed or old SYNC is dropped: same epoch with the same or a lower round → stale-round; lower epoch → stale-epoch', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  t.is(armed(p.receive(syncFrom(master, 2, 5), MASTER_ADDR), 'slot').length, 1);
  for (const round of [5, 4, 1]) {
    const a = p.receive(syncFrom(master, 2, round), MASTER_ADDR);
    t.deepEqual(notices(a, 'dropped').map((n) => n.reason), ['stale-round'], `round ${round}`);
    t.is(armed(a, 'slot').length, 0, `round ${round}: no burst for a replayed SYNC`);
    t.is(armed(a, 'election').length, 0, `round ${round}: a replay is no heartbeat`);
    t.is(corrections(a).length, 0);
  }
  const old = p.receive(syncFrom(master, 1, 9), MASTER_ADDR);
  t.deepEqual(notices(old, 'dropped').map((n) => n.reason), ['stale-epoch']);
  t.is(armed(old, 'slot').length, 0);
  t.deepEqual(p.node.status().dropped, { 'stale-round': 3, 'stale-epoch': 1 });
  t.is(armed(p.receive(syncFrom(master, 2, 6), MASTER_ADDR), 'slot').length, 1, 'the next round is accepted');
  t.is(p.node.status().round, 6);
});

/** Fire the slot armed after a coarse step and run the second burst: answered over symmetric paths, or every probe timing out. */
function secondBurst(time: FakeTime, p: Harness, master: ReturnType<typeof fakeMaster>, answer: boolean): Action[] {
  let actions = p.fire('slot');
  for (;;) {
    const req = sends(actions, MessageType.TimeRequest)[0];
    if (!req) return actions;
    if (answer) {
      actions = exchangeOnce(time, p, master, req.msg as TimeRequestMessage, 100n * US, 100n * US);
    } else {
      time.advance(only(armed(actions, 'probe'), 'probe timer'));
      actions = p.fire('probe');
    }
  }
}

test('an unsynchronised peer far from the master takes its clock from its first burst (coarse step), not from the SYNC', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1', {}, -3n * S);
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  const onSync = p.receive(syncFrom(master, 1, 1), MASTER_ADDR);
  t.is(corrections(onSync).length, 0, 'a SYNC alone moves no clock (it could be a replay)');
  const first = runBurst(time, p, master, syncFrom(master, 1, 2));
  const c = only(corrections(first), 'correct');
  t.is(c.correctionNs, 3n * S, 'symmetric 100 µs paths: the measured offset is exact');
  t.true(c.allowStep);
  t.is(notices(first, 'coarse-step').length, 1);
  t.is(p.clock.now(), master.clock.now(), 'stepped onto the master clock');
  t.is(sends(first, MessageType.Report).length, 0, 'no report yet: a second burst measures the stepped clock');
  t.deepEqual(armed(first, 'slot'), [0n], 'the second burst starts at once, after the step has been applied');
  const done = secondBurst(time, p, master, true);
  t.is(corrections(done).length, 0, 'one coarse step per newcomer');
  const report = only(sends(done, MessageType.Report), 'REPORT').msg as ReportMessage;
  t.is(report.offsetNs, 0n, 'the report carries the stepped clock\'s offset');
  const adj = p.receive(adjustFor(master.id, 1, 2, [{ node: p.id, adjustmentNs: 0n, outlier: false, faulty: false }], p), MASTER_ADDR);
  t.is(only(corrections(adj), 'correct').correctionNs, 0n);
});

test('a coarse step whose second burst gets no reply reports the first burst as measured; the adjustment comes out right', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1', {}, -3n * S);
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  const first = runBurst(time, p, master, syncFrom(master, 1, 2));
  t.is(notices(first, 'coarse-step').length, 1);
  const done = secondBurst(time, p, master, false);
  const report = only(sends(done, MessageType.Report), 'REPORT').msg as ReportMessage;
  t.is(report.offsetNs, -3n * S, 'the report keeps the first offset as measured');
  // The table's entry (average 0 - offset) less the step already taken leaves nothing to do.
  const adj = p.receive(adjustFor(master.id, 1, 2, [{ node: p.id, adjustmentNs: 3n * S, outlier: true, faulty: false }], p), MASTER_ADDR);
  t.is(only(corrections(adj), 'correct').correctionNs, 0n);
});

test('a coarse step left with no time for a second burst reports the first burst at once', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1', { probes: 64 }, -3n * S);
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  // 65 round trips of 8 ms run into the report deadline (0.85 x 500 ms): the burst ends there.
  const first = runBurst(time, p, master, syncFrom(master, 1, 2), 4n * MS);
  t.is(notices(first, 'coarse-step').length, 1);
  t.is(armed(first, 'slot').length, 0, 'no second burst');
  const report = only(sends(first, MessageType.Report), 'REPORT').msg as ReportMessage;
  t.is(report.offsetNs, -3n * S);
});

// ---------------------------------------------------------------- election

test('election: a node that hears no SYNC claims after the startup wait and becomes master after the claim window', (t) => {
  const time = new FakeTime();
  const interval = DEFAULTS.intervalNs;
  const a = makeNode(time, 'alpha');
  const start = a.handle({ type: 'start', monoNs: time.ns });
  t.is(sends(start).length, 0, 'nothing is sent at start: listen first');
  const wait = only(armed(start, 'election'), 'election timer');
  const lo = BigInt(Math.round(Number(interval) * STARTUP_WAIT));
  const hi = BigInt(Math.round(Number(interval) * (STARTUP_WAIT + ELECTION_JITTER)));
  t.true(wait >= lo && wait <= hi, `startup wait ${wait} within [${lo}, ${hi}]`);
  time.advance(wait);
  const claimed = a.fire('election');
  const claim = only(sends(claimed, MessageType.Claim), 'CLAIM');
  t.is(claim.to, 'group');
  t.is((claim.msg as ClaimMessage).epoch, 1);
  t.is((claim.msg as ClaimMessage).priority, 100);
  t.is((claim.msg as ClaimMessage).name, 'alpha');
  t.deepEqual(armed(claimed, 'claim'), [BigInt(Math.round(Number(interval) * CLAIM_WINDOW))]);
  t.is(sends(claimed, MessageType.Sync).length, 0, 'not master yet');
  time.advance(armed(claimed, 'claim')[0]!);
  const won = a.fire('claim');
  t.deepEqual(notices(won, 'role').map((n) => n.role), ['master']);
  const sync = only(sends(won, MessageType.Sync), 'SYNC').msg as SyncMessage;
  t.is(sync.epoch, 1);
  t.is(sync.round, 1);
  t.false(sync.pinned);
  t.is(armed(won, 'round').length, 1);
  t.is(a.node.status().role, 'master');
});

test('election: a candidate that hears a better claim stands down; a worse claim does not stop it', (t) => {
  const time = new FakeTime();
  const a = makeNode(time, 'alpha');
  time.advance(only(armed(a.handle({ type: 'start', monoNs: time.ns }), 'election'), 'election'));
  a.fire('election');
  const claimFrom = (name: string, priority: number, epoch = 1): ClaimMessage => ({
    type: MessageType.Claim,
    domain: 0,
    sender: nodeIdOf(name),
    epoch,
    round: 0,
    priority,
    name,
  });
  // Worse: lower priority. Ignored, the claim stands.
  const worse = a.receive(claimFrom('bravo', 50), { address: '10.0.0.3', port: 9123 });
  t.false(disarmed(worse, 'claim'));
  // Better: higher priority, same epoch.
  const better = a.receive(claimFrom('charlie', 150), { address: '10.0.0.4', port: 9123 });
  t.true(disarmed(better, 'claim'), 'the claim window is cancelled');
  t.is(armed(better, 'election').length, 1, 'back to waiting for a SYNC');
  t.is(a.node.status().role, 'peer');
  // Even if the claim timer fired anyway, a node that stood down does not take over.
  const late = a.fire('claim');
  t.is(sends(late, MessageType.Sync).length, 0);
  t.deepEqual(notices(late, 'role'), []);
});

test('election: equal priority — the lower node id wins the claim', (t) => {
  const time = new FakeTime();
  // Pick two names whose ids order both ways.
  const [low, high] = ['delta', 'echo'].sort((x, y) => (nodeIdOf(x) < nodeIdOf(y) ? -1 : 1)) as [string, string];
  const mk = (name: string): Harness => {
    const h = makeNode(time, name);
    h.handle({ type: 'start', monoNs: time.ns });
    h.fire('election');
    return h;
  };
  const claimOf = (name: string): ClaimMessage => ({ type: MessageType.Claim, domain: 0, sender: nodeIdOf(name), epoch: 1, round: 0, priority: 100, name });
  const hi = mk(high);
  t.true(disarmed(hi.receive(claimOf(low), PEER_ADDR), 'claim'), `${high} stands down to ${low} (lower id)`);
  const lo = mk(low);
  t.false(disarmed(lo.receive(claimOf(high), PEER_ADDR), 'claim'), `${low} keeps its claim against ${high}`);
  t.deepEqual(notices(lo.fire('claim'), 'role').map((n) => n.role), ['master']);
});

test("election: a master hearing a better master's SYNC steps down and follows it", (t) => {
  const time = new FakeTime();
  const a = makeNode(time, 'alpha');
  a.handle({ type: 'start', monoNs: time.ns });
  a.fire('election');
  a.fire('claim');
  t.is(a.node.status().role, 'master');
  const other = fakeMaster(time, 'bravo');
  // A worse master (same epoch, lower priority) is ignored.
  const worse = a.receive(syncFrom(other, 1, 3, { priority: 50 }), MASTER_ADDR);
  t.deepEqual(notices(worse, 'dropped').map((n) => n.reason), ['worse-master']);
  t.false(disarmed(worse, 'round'));
  // A better one (newer epoch) wins.
  const better = a.receive(syncFrom(other, 2, 1), MASTER_ADDR);
  t.true(disarmed(better, 'round'), 'no more rounds of our own');
  t.true(disarmed(better, 'collect'));
  t.deepEqual(notices(better, 'role').map((n) => [n.role, n.masterName]), [['peer', 'bravo']]);
  t.is(armed(better, 'slot').length, 1, 'measures against the new master this very round');
  t.is(sends(better).length, 0);
  // A stray round timer does nothing now.
  t.is(sends(a.fire('round'), MessageType.Sync).length, 0);
  t.is(a.node.status().masterName, 'bravo');
});

test('election: a pinned master hearing a better master outbids it instead of stepping down', (t) => {
  const time = new FakeTime();
  const a = makeNode(time, 'alpha', { pinnedMaster: true });
  a.handle({ type: 'start', monoNs: time.ns });
  const other = fakeMaster(time, 'bravo');
  const heard = a.receive(syncFrom(other, 3, 1, { priority: 255 }), MASTER_ADDR);
  t.false(disarmed(heard, 'round'), 'keeps running rounds');
  t.is(armed(heard, 'slot').length, 0, 'does not follow');
  t.deepEqual(notices(heard, 'role').map((n) => n.role), ['master']);
  t.is(a.node.status().role, 'master');
  const next = only(sends(a.fire('round'), MessageType.Sync), 'SYNC').msg as SyncMessage;
  t.is(next.epoch, 4, 'its next SYNC carries a newer epoch than the rival');
  t.true(next.pinned);
});

// ---------------------------------------------------------------- lost SYNCs never depose a live master

test('election: a peer whose SYNCs stop probes its master by unicast; a reply keeps the master, silence elects', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  const first = p.receive(syncFrom(master, 1, 1), MASTER_ADDR);
  const timeout = only(armed(first, 'election'), 'election timer');
  t.true(timeout >= BigInt(Math.round(Number(S) * ELECTION_TIMEOUT)), 'armed for the election timeout');
  // Every later SYNC is lost (a flood fills the group socket). The timeout asks the master directly.
  time.advance(timeout);
  const probe = p.fire('election');
  t.is(sends(probe, MessageType.Claim).length, 0, 'no claim yet');
  const req = only(sends(probe, MessageType.TimeRequest), 'liveness request');
  t.deepEqual(req.to, { address: MASTER_ADDR.address, port: 9300 }, 'sent by unicast to the master, where its SYNC said');
  t.deepEqual(armed(probe, 'election'), [BigInt(Math.round(Number(S) * LIVENESS_WINDOW))]);
  // The master answers: it is alive, and it is kept.
  time.advance(200n * US);
  const r = req.msg as TimeRequestMessage;
  const answered = p.receive(replyTo(r, master.id, time.ns, time.ns), MASTER_ADDR);
  t.is(sends(answered, MessageType.Report).length, 0, 'a liveness exchange reports nothing');
  time.advance(BigInt(Math.round(Number(S) * LIVENESS_WINDOW)));
  const kept = p.fire('election');
  t.is(sends(kept, MessageType.Claim).length, 0, 'no claim: the master answered');
  t.is(p.node.status().masterName, 'master');
  t.is(armed(kept, 'election').length, 1, 'the timer runs on from the answer');
  // Still no SYNC, and now no answer either: after the timeout, a probe, then the window, p claims.
  time.advance(armed(kept, 'election')[0]!);
  const again = p.fire('election');
  t.is(sends(again, MessageType.TimeRequest).length, 1, 'probes again');
  time.advance(armed(again, 'election')[0]!);
  const claimed = p.fire('election');
  t.is(only(sends(claimed, MessageType.Claim), 'CLAIM').msg.epoch, 2);
  t.is(p.node.status().role, 'candidate');
});

test('election: a SYNC after a probe resets it; a reply to an old request proves nothing', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  p.receive(syncFrom(master, 1, 1), MASTER_ADDR);
  time.advance(2n * S);
  const probe = p.fire('election');
  const req = only(sends(probe, MessageType.TimeRequest), 'liveness request').msg as TimeRequestMessage;
  // A forged reply with the wrong nonce does not count as an answer.
  const forged = p.receive(replyTo(req, master.id, time.ns, time.ns, { nonce: req.nonce ^ 1n }), MASTER_ADDR);
  t.is(p.node.status().dropped['unexpected-reply'], 1);
  t.is(sends(forged).length, 0);
  time.advance(S / 2n);
  t.is(sends(p.fire('election'), MessageType.Claim).length, 1, 'no real answer: claims');
  // A fresh SYNC of a better master ends the candidacy and the probe state.
  p.receive(syncFrom(master, 3, 1), MASTER_ADDR);
  t.is(p.node.status().role, 'peer');
  time.advance(2n * S);
  t.is(sends(p.fire('election'), MessageType.TimeRequest).length, 1, 'probes first again after following');
});

test('election: priority 0 never claims', (t) => {
  const time = new FakeTime();
  const z = makeNode(time, 'zero', { priority: 0 });
  let actions = z.handle({ type: 'start', monoNs: time.ns });
  for (let i = 0; i < 5; i++) {
    const wait = only(armed(actions, 'election'), 'election timer');
    time.advance(wait);
    actions = z.fire('election');
    t.is(sends(actions, MessageType.Claim).length, 0, `timeout ${i + 1}: no CLAIM`);
  }
  // Nor after following a master that fell silent.
  const master = fakeMaster(time);
  z.receive(syncFrom(master, 1, 1), MASTER_ADDR);
  time.advance(BigInt(Math.round(Number(DEFAULTS.intervalNs) * (ELECTION_TIMEOUT + ELECTION_JITTER))));
  const silent = z.fire('election');
  t.is(sends(silent, MessageType.Claim).length, 0);
  t.is(armed(silent, 'election').length, 1, 'keeps listening');
  // Nor when it hears a worse claim.
  const heard = z.receive(
    { type: MessageType.Claim, domain: 0, sender: nodeIdOf('weak'), epoch: 2, round: 0, priority: 1, name: 'weak' },
    PEER_ADDR,
  );
  t.is(sends(heard, MessageType.Claim).length, 0);
  t.is(z.node.status().role, 'peer');
});

// ---------------------------------------------------------------- max-adjust

test('synchronization: a node\'s first 4 corrections step when beyond the step threshold; later ones slew', (t) => {
  const steps = (adjustments: bigint[]): boolean[] => {
    const time = new FakeTime();
    const p = makeNode(time, 'p1', { probes: 2 });
    const master = fakeMaster(time);
    p.handle({ type: 'start', monoNs: time.ns });
    return adjustments.map((a, i) => {
      time.advance(500n * MS);
      runBurst(time, p, master, syncFrom(master, 1, i + 1));
      const done = p.receive(adjustFor(master.id, 1, i + 1, [{ node: p.id, adjustmentNs: a, outlier: false, faulty: false }], p), MASTER_ADDR);
      return only(notices(done, 'corrected'), 'corrected').step;
    });
  };
  t.is(INITIAL_STEP_UPDATES, 4);
  // Default threshold 100 µs.
  t.deepEqual(steps([300n * US, 200n * US, 150n * US, 150n * US, 150n * US]), [true, true, true, true, false], 'four corrections may step, the fifth slews');
  t.deepEqual(steps([300n * US, 20n * US, 150n * US, 90n * US, 500n * US]), [true, false, true, false, false], 'a small correction between does not end the acquisition');
});

test('--max-adjust: after the first synchronization a larger adjustment is refused, not applied', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1', { probes: 2, maxAdjustNs: 1n * MS });
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  runBurst(time, p, master, syncFrom(master, 1, 1));
  // Before the first synchronization a large adjustment is allowed (that is how a node joins): it steps.
  const first = p.receive(adjustFor(master.id, 1, 1, [{ node: p.id, adjustmentNs: 5n * MS, outlier: false, faulty: false }], p), MASTER_ADDR);
  t.is(only(corrections(first), 'correct').correctionNs, 5n * MS);
  t.is(notices(first, 'refused').length, 0);
  t.false(p.node.status().synced);
  for (const round of [2, 3, 4]) {
    time.advance(500n * MS);
    runBurst(time, p, master, syncFrom(master, 1, round));
    p.receive(adjustFor(master.id, 1, round, [{ node: p.id, adjustmentNs: 30n * US, outlier: false, faulty: false }], p), MASTER_ADDR);
  }
  t.true(p.node.status().synced, 'synchronized after 4 corrections');
  time.advance(500n * MS);
  runBurst(time, p, master, syncFrom(master, 1, 5));
  const big = p.receive(adjustFor(master.id, 1, 5, [{ node: p.id, adjustmentNs: -(1n * MS + 1n), outlier: false, faulty: false }], p), MASTER_ADDR);
  t.is(corrections(big).length, 0, 'no correct action for an adjustment above --max-adjust');
  t.is(big.filter((a) => a.type === 'frequency').length, 0);
  const refused = only(notices(big, 'refused'), 'refused');
  // What is refused is the correction: the entry less what was corrected since the measurement (here a few ns of slew).
  t.true(refused.correctionNs < -1n * MS && refused.correctionNs > -(1n * MS + 1n * US), `refused correction ${refused.correctionNs}`);
  t.is(refused.maxAdjustNs, 1n * MS);
  t.is(refused.round, 5);
  time.advance(500n * MS);
  runBurst(time, p, master, syncFrom(master, 1, 6));
  const ok = p.receive(adjustFor(master.id, 1, 6, [{ node: p.id, adjustmentNs: 1n * MS, outlier: false, faulty: false }], p), MASTER_ADDR);
  t.is(corrections(ok).length, 1, 'exactly --max-adjust is allowed');
});

// ---------------------------------------------------------------- leave

test("'stop' sends LEAVE to the group", (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  p.receive(syncFrom(master, 3, 7), MASTER_ADDR);
  const stop = p.handle({ type: 'stop', monoNs: time.ns });
  const leave = only(sends(stop, MessageType.Leave), 'LEAVE');
  t.is(leave.to, 'group');
  const msg = leave.msg as LeaveMessage;
  t.is(msg.name, 'p1');
  t.is(msg.sender, p.id);
  t.is(msg.epoch, 3);
  t.true(disarmed(stop, 'election'));

  const m = makeNode(time, 'm', { pinnedMaster: true });
  m.handle({ type: 'start', monoNs: time.ns });
  const mstop = m.handle({ type: 'stop', monoNs: time.ns });
  t.is(sends(mstop, MessageType.Leave).length, 1);
  t.true(disarmed(mstop, 'round'));
  t.true(disarmed(mstop, 'collect'));
});

test('a master receiving LEAVE from a member removes it from the member table', (t) => {
  const time = new FakeTime();
  const m = makeNode(time, 'm', { pinnedMaster: true });
  const start = m.handle({ type: 'start', monoNs: time.ns });
  const round = (only(sends(start, MessageType.Sync), 'SYNC').msg as SyncMessage).round;
  const report = (name: string): ReportMessage => ({
    type: MessageType.Report,
    domain: 0,
    sender: nodeIdOf(name),
    epoch: 1,
    round,
    offsetNs: 10n * US,
    delayNs: 200n * US,
    frequencyPpb: null,
    name,
  });
  // Only a node that measured against the master this round may report.
  const request = (name: string): TimeRequestMessage => ({ type: MessageType.TimeRequest, domain: 0, sender: nodeIdOf(name), epoch: 1, round, nonce: 1n, originNs: 0n });
  t.deepEqual(notices(m.receive(report('p1'), PEER_ADDR), 'member-joined'), [], 'a report without an exchange is ignored');
  t.is(m.node.status().dropped['no-exchange'], 1);
  m.receive(request('p1'), PEER_ADDR);
  m.receive(request('p2'), { address: '10.0.0.3', port: 9200 });
  const joined = m.receive(report('p1'), PEER_ADDR);
  t.deepEqual(notices(joined, 'member-joined').map((n) => n.name), ['p1']);
  m.receive(report('p2'), { address: '10.0.0.3', port: 9200 });
  t.deepEqual(m.node.status().members.map((x) => x.name).sort(), ['p1', 'p2']);
  const leave: LeaveMessage = { type: MessageType.Leave, domain: 0, sender: nodeIdOf('p1'), epoch: 1, round, name: 'p1' };
  const left = m.receive(leave, PEER_ADDR);
  t.deepEqual(notices(left, 'member-left').map((n) => [n.name, n.why]), [['p1', 'leave']]);
  t.deepEqual(m.node.status().members.map((x) => x.name), ['p2']);
  // Its report of this round no longer counts: the table has only the master and p2.
  time.advance(DEFAULTS.collectTimeoutNs / 4n);
  const collected = m.fire('collect');
  const adjust = only(sends(collected, MessageType.Adjust), 'ADJUST').msg as AdjustMessage;
  t.deepEqual(adjust.entries.map((e) => e.node).sort(), [m.id, nodeIdOf('p2')].sort());
});

// ---------------------------------------------------------------- fencing beyond the followed master

test('replay fencing outlives the followed master: after an election timeout an old SYNC of that master is still stale', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1', { priority: 0 });
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  const old = syncFrom(master, 1, 3);
  p.receive(syncFrom(master, 1, 2), MASTER_ADDR);
  p.receive(old, MASTER_ADDR);
  p.receive(syncFrom(master, 1, 9), MASTER_ADDR);
  time.advance(2n * S);
  p.fire('election'); // the master went quiet: p probes it
  time.advance(S / 2n);
  p.fire('election'); // no answer: p has no master now
  t.is(p.node.status().masterName, null);
  const replay = p.receive(old, MASTER_ADDR);
  t.is(armed(replay, 'slot').length, 0, 'a replayed old round starts no measurement');
  t.is(p.node.status().masterName, null, 'and is not followed');
  t.true((p.node.status().dropped['stale-round'] ?? 0) >= 1);
});

test('a master silent for 3 intervals is forgotten: restarted at round 1, it is followed again', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1', { priority: 0 });
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  p.receive(syncFrom(master, 1, 40, { pinned: true }), MASTER_ADDR);
  time.advance(1n * S);
  t.deepEqual(armed(p.receive(syncFrom(master, 1, 1, { pinned: true }), MASTER_ADDR), 'slot'), [], 'round 1 right after round 40: a replay');
  time.advance(3n * S);
  p.fire('election');
  time.advance(S / 2n);
  p.fire('election');
  const back = p.receive(syncFrom(master, 1, 1, { pinned: true }), MASTER_ADDR);
  t.is(armed(back, 'slot').length, 1, 'after 3 silent intervals the restarted master is measured against');
  t.is(p.node.status().masterName, 'master');
});

test('a replayed LEAVE of the master (older round or epoch) does not leave the group masterless', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  p.receive(syncFrom(master, 2, 10), MASTER_ADDR);
  const leave = (epoch: number, round: number): LeaveMessage => ({ type: MessageType.Leave, domain: 0, sender: master.id, epoch, round, name: 'master' });
  p.receive(leave(1, 50), MASTER_ADDR);
  p.receive(leave(2, 9), MASTER_ADDR);
  t.is(p.node.status().masterName, 'master', 'stale LEAVEs are ignored');
  t.is(p.node.status().dropped['stale-round'], 2);
  p.receive(leave(2, 10), MASTER_ADDR);
  t.is(p.node.status().masterName, null, 'a current LEAVE is honoured');
});

test('SYNCs and CLAIMs no peer can follow are refused: an epoch at the top of the range, absurd timing', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1');
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  for (const over of [{ epoch: 0xffffffff }, { intervalMs: 2 ** 32 - 1 }, { intervalMs: 5, collectMs: 2 }, { collectMs: 1000 }] as Partial<SyncMessage>[]) {
    const a = p.receive(syncFrom(master, over.epoch ?? 1, 1, over), MASTER_ADDR);
    t.is(armed(a, 'slot').length, 0, JSON.stringify(over));
  }
  t.is(p.node.status().dropped['bad-sync'], 4);
  const claim: ClaimMessage = { type: MessageType.Claim, domain: 0, sender: nodeIdOf('x'), epoch: 0xffffffff, round: 0, priority: 255, name: 'x' };
  p.receive(claim, MASTER_ADDR);
  t.is(p.node.status().dropped['bad-sync'], 5);
});

test('two pinned masters: the worse (priority, id) yields instead of both raising the epoch forever', (t) => {
  const time = new FakeTime();
  const a = makeNode(time, 'alpha', { pinnedMaster: true, priority: 200 });
  const b = makeNode(time, 'beta', { pinnedMaster: true, priority: 100 });
  const syncOf = (acts: Action[]) => only(sends(acts, MessageType.Sync), 'SYNC').msg as SyncMessage;
  const sa = syncOf(a.handle({ type: 'start', monoNs: time.ns }));
  const sb = syncOf(b.handle({ type: 'start', monoNs: time.ns }));
  a.receive(sb, { address: '10.0.0.2', port: 9123 });
  b.receive(sa, { address: '10.0.0.1', port: 9123 });
  t.is(a.node.status().role, 'master', 'higher priority keeps the job');
  t.is(a.node.status().epoch, 1, 'and does not raise its epoch');
  t.is(b.node.status().role, 'peer', 'the other yields');
  t.is(b.node.status().masterName, 'alpha');
});

// ---------------------------------------------------------------- faults and sanity at the master

test('master: a report whose fields cannot be true is dropped before the average (round trip above --max-delay, absurd frequency)', (t) => {
  const time = new FakeTime();
  const { m, round } = masterRounds(time);
  const { adjust } = round([
    ['ok', 10n * US, 1000],
    ['slow', 5n * US, 0],
  ], 60n * MS);
  t.deepEqual(adjust.entries.map((e) => e.node), [m.id], 'both reports (60 ms round trips, above the 50 ms --max-delay) are dropped');
  t.is(m.node.status().dropped['implausible-report'], 2);
  const second = round([['ok', 10n * US, 2_000_000_000]]);
  t.deepEqual(second.adjust.entries.map((e) => e.node), [m.id], 'a frequency of 2,000,000 ppm is no clock');
  t.is(m.node.status().dropped['implausible-report'], 3);
});

test('master: a member out of the average 3 rounds in a row is named faulty once, still gets its entry, and recovers after 3 clean rounds', (t) => {
  const time = new FakeTime();
  const { m, round } = masterRounds(time);
  const good = (k: bigint): [string, bigint, number | null][] => [['a', k * US, null], ['b', -k * US, null], ['c', 2n * US, null], ['d', 0n, null]];
  const named: Notice[] = [];
  for (let r = 1; r <= 5; r++) {
    const { adjust, actions } = round([...good(BigInt(r)), ['liar', 3n * MS, null]]);
    named.push(...notices(actions, 'member-faulty'));
    const e = adjust.entries.find((x) => x.node === nodeIdOf('liar'))!;
    t.true(e.outlier, `round ${r}: the liar is an outlier`);
    t.is(e.adjustmentNs, adjust.averageNs - 3n * MS, 'and still gets its correction');
    t.is(e.faulty, r >= 3, `round ${r}: named faulty from the third round`);
  }
  t.deepEqual(named.map((n) => n.kind === 'member-faulty' && [n.name, n.reason, n.round]), [['liar', 'outlier', 3]], 'named once');
  const st = m.node.status();
  t.is(st.faultsNamed, 1);
  t.is(st.members.find((x) => x.name === 'liar')!.faulty, 'outlier');
  // It mends its ways.
  const back: Notice[] = [];
  for (let r = 0; r < 3; r++) back.push(...notices(round([...good(1n), ['liar', 1n * US, null]]).actions, 'member-faulty'));
  t.deepEqual(back.map((n) => n.kind === 'member-faulty' && [n.name, n.reason]), [['liar', null]], 'recovered after 3 clean rounds');
});

test('master: a member whose estimate needs more than the 500 ppm limit is named (frequency-limit); ADJUST carries the mean of the kept estimates', (t) => {
  const time = new FakeTime();
  const { round } = masterRounds(time);
  const rows = (runaway: number): [string, bigint, number | null][] => [['a', 1n * US, 10_000], ['b', -1n * US, -4_000], ['c', 0n, 3_000], ['r', 2n * US, runaway]];
  const first = round(rows(-2_000_000));
  // The master has no estimate yet; a, b, c and r are kept (r agrees now), but r's estimate is 2000 ppm away from
  // the others': it cannot count in the mean, or it would drag every good clock toward the frequency limit.
  t.is(first.adjust.commonPpb, Math.round((10_000 - 4_000 + 3_000) / 3), 'the mean over the kept clocks with a plausible estimate');
  const named = notices(first.actions, 'member-faulty');
  t.deepEqual(named.map((n) => n.kind === 'member-faulty' && [n.name, n.reason]), [['r', 'frequency-limit']], 'named in the first round its estimate is beyond the limit');
  round(rows(-2_000_000));
  const third = round(rows(-2_000_000));
  t.is(third.adjust.commonPpb, Math.round((10_000 - 4_000 + 3_000) / 3), 'a faulty member no longer counts in the common frequency');
});

test('peer: replies whose turnaround is negative or above --max-delay, and exchanges with a negative round trip, are counted and never measured', (t) => {
  const time = new FakeTime();
  const p = makeNode(time, 'p1', { probes: 2 });
  const master = fakeMaster(time);
  p.handle({ type: 'start', monoNs: time.ns });
  let actions = p.receive(syncFrom(master, 1, 1), MASTER_ADDR);
  time.advance(only(armed(actions, 'slot'), 'slot'));
  actions = p.fire('slot');
  let req = only(sends(actions, MessageType.TimeRequest), 'warm-up').msg as TimeRequestMessage;
  actions = p.receive(replyTo(req, master.id, 10n, 5n), MASTER_ADDR); // T3 before T2
  req = only(sends(actions, MessageType.TimeRequest), 'next').msg as TimeRequestMessage;
  actions = p.receive(replyTo(req, master.id, 0n, 60n * MS), MASTER_ADDR); // a 60 ms turnaround
  req = only(sends(actions, MessageType.TimeRequest), 'next').msg as TimeRequestMessage;
  // Origin echoed, but T2/T3 claim the master held it for longer than the round trip took: delay < 0.
  actions = p.receive(replyTo(req, master.id, req.originNs - 1n * MS, req.originNs + 10n * MS), MASTER_ADDR);
  const dropped = p.node.status().dropped;
  t.is(dropped['bad-turnaround'], 2);
  t.is(dropped['negative-delay'], 1);
  t.is(sends(actions, MessageType.Report).length, 0, 'nothing usable: no report');
});

// ---------------------------------------------------------------- joining another group

test('a synchronized node that follows a new master a second away steps to it (groups merging); within the tolerance, or beyond --max-adjust, it does not', (t) => {
  const joinStep = (newMasterOffsetNs: bigint, over: Partial<NodeOptions> = {}): Notice[] => {
    const time = new FakeTime();
    const p = makeNode(time, 'p1', { probes: 2, ...over });
    const a = fakeMaster(time, 'a');
    p.handle({ type: 'start', monoNs: time.ns });
    for (let round = 1; round <= 5; round++) {
      time.advance(500n * MS);
      runBurst(time, p, a, syncFrom(a, 1, round));
      p.receive(adjustFor(a.id, 1, round, [{ node: p.id, adjustmentNs: 0n, outlier: false, faulty: false }], p), MASTER_ADDR);
    }
    t.true(p.node.status().synced, 'synchronized with a');
    // b, of another group, wins (a higher epoch); its clock is newMasterOffsetNs ahead of a's.
    const b = { name: 'b', id: nodeIdOf('b'), clock: createSimulatedClock({ monotonic: time.monotonic, originNs: a.clock.now(), offsetNs: newMasterOffsetNs }) };
    time.advance(500n * MS);
    return notices(runBurst(time, p, b, syncFrom(b, 5, 1)), 'coarse-step');
  };
  const merged = joinStep(1n * S);
  t.is(merged.length, 1, 'a second away: it steps to its new master at its first burst');
  t.true(merged[0]!.kind === 'coarse-step' && merged[0]!.correctionNs > 999n * MS && merged[0]!.correctionNs < 1001n * MS);
  t.deepEqual(joinStep(5n * MS), [], 'a failover inside the group (within the tolerance): no step');
  t.deepEqual(joinStep(1n * S, { maxAdjustNs: 100n * MS }), [], 'beyond --max-adjust: no step (the correction is then refused)');
});
