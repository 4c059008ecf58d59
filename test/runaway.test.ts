/**
 * A master whose own clock runs away (lib/core/runaway.ts, resign.ts).
 *
 * In the simulator (deterministic): a pinned master drifting 2000 ppm, or
 * -3000, beyond what its frequency correction can follow, keeps serving and
 * the good clocks hold as in the same seed without the fault; an elected
 * one steps down, another takes over within 3 intervals, and the old one
 * claims nothing and says why; a pinned master stepped 5 ms from outside is
 * named, moves nobody, and recovers. On real daemons (loopback): the same
 * two cases end to end, status and log included. Bounds on real processes
 * are loose: figures belong to `npm run bench:faults -- --master-drift`.
 */
import test from 'ava';
import { LAST_RESORT_INTERVALS, Resignation } from '../lib/core/resign.js';
import { FAULTY_OUTLIER_ROUNDS, RECOVER_ROUNDS } from '../lib/core/faults.js';
import { OwnClock, ServedTime } from '../lib/core/runaway.js';
import type { Notice } from '../lib/core/types.js';
import type { StatusJson } from '../lib/daemon/status.js';
import { groupTimesAt, readingOf } from '../lib/daemon/truth.js';
import { summarize } from '../lib/sim/report.js';
import { runSimulation, SIM_DEFAULTS, type Fault, type SimOptions, type SimResult } from '../lib/sim/simulator.js';
import { sleep, testCluster, testGroup } from './helpers/group.js';

const US = 1000n;
const MS = 1_000_000n;
const us = (ns: number | bigint): string => `${(Number(ns) / 1000).toFixed(1)} µs`;
const BASE: Partial<SimOptions> = { nodes: 8, rounds: 60, driftPpm: 20, delayNs: 50n * US, jitterNs: 20n * US };
const sim = (o: Partial<SimOptions>): SimResult => runSimulation({ ...SIM_DEFAULTS, ...BASE, ...o });
/** A fault that changes nothing (a master never reports): it only leaves n0 out of the good clocks of a baseline. */
const MARK_N0: Fault = { node: 'n0', kind: 'lie', ns: 0n };

const noticesOf = <K extends Notice['kind']>(r: SimResult, kind: K) =>
  r.events.flatMap((e) => (e.notice.kind === kind ? [{ atNs: e.atNs, node: e.node, notice: e.notice as Extract<Notice, { kind: K }> }] : []));

for (const seed of [1, 2, 3]) {
  test(`pinned master drifting beyond its limits: it keeps serving, names its own clock, and the good clocks hold as without the fault (seed ${seed})`, (t) => {
    const without = summarize(sim({ seed, faults: [MARK_N0] }));
    for (const ppm of [2000, -3000]) {
      const r = sim({ seed, faults: [{ node: 'n0', kind: 'drift', ppm }] });
      const s = summarize(r);
      const g = s.good;
      t.log(`n0 at ${ppm} ppm: good p99 ${us(g.precisionSteadyNs.p99)} (same seed without the fault: ${us(without.good.precisionSteadyNs.p99)}), rate ${g.rateErrorPpm?.toFixed(2)} ppm from their mean drift; named ${JSON.stringify(s.flagged)}`);
      t.deepEqual(s.masters, ['n0'], 'the pinned master stays');
      t.is(s.roundsCompleted, 60, 'it keeps serving every round');
      t.true(g.steadyFromRound !== null, 'the good clocks reach a steady state');
      t.true(g.precisionSteadyNs.p99 <= 1.5 * without.good.precisionSteadyNs.p99 + 1_000, `good p99 ${us(g.precisionSteadyNs.p99)} within 1.5x of ${us(without.good.precisionSteadyNs.p99)}`);
      t.true(Math.abs(g.rateErrorPpm!) < 5, `their common rate follows their mean drift: ${g.rateErrorPpm?.toFixed(2)} ppm apart`);
      const named = s.flagged.find((f) => f.node === 'n0' && f.reason !== null);
      t.truthy(named, 'n0 names its own clock faulty');
      t.true(named!.round <= 5, `named in round ${named?.round}`);
      t.deepEqual(s.flagged.filter((f) => f.node !== 'n0'), [], 'no good clock is named');
      const st = r.statuses.find((x) => x.name === 'n0')!;
      t.is(st.role, 'master');
      t.true(st.servingGroupTime, 'it serves the group time in place of its clock');
      t.not(st.ownClockFault, null);
      t.false(st.synced, 'its own clock is not synchronized');
      // The good clocks' error bounds hold against the time it serves, and its own clock gives none.
      t.is(s.bound.violations, 0, `${s.bound.violations} of ${s.bound.samples} pairs over their bound`);
      t.true(s.bound.faulty.samples === 0 && s.bound.faulty.none > 0, JSON.stringify(s.bound.faulty));
      // Its own row in its table says how far its clock is: far beyond the good clocks' spread.
      const row = st.lastTable.find((x) => x.node === st.node)!;
      t.true(row.outlier && row.faulty !== null, 'its own clock is out of the average, flagged');
      t.true((row.offsetNs < 0n ? -row.offsetNs : row.offsetNs) > 1n * MS, `its clock is ${us(row.offsetNs)} off the group`);
    }
  });
}

test('elected master drifting 2000 ppm: it steps down with its reason, a new master leads within 3 intervals, and it claims nothing after', (t) => {
  const o = { seed: 3, master: null, rounds: 40 };
  const first = summarize(sim(o)).masters[0]!;
  const without = summarize(sim({ ...o, faults: [{ node: first, kind: 'lie', ns: 0n }] }));
  const r = sim({ ...o, faults: [{ node: first, kind: 'drift', ppm: 2000 }] });
  const s = summarize(r);
  const roles = noticesOf(r, 'role');
  const down = roles.find((e) => e.node === first && e.notice.role === 'peer' && e.notice.why.includes('own-clock-faulty'));
  t.truthy(down, `${first} says why it steps down`);
  const next = roles.find((e) => e.atNs >= down!.atNs && e.node !== first && e.notice.role === 'master');
  t.truthy(next, 'another node becomes master');
  const intervals = Number(next!.atNs - down!.atNs) / Number(SIM_DEFAULTS.intervalNs);
  const claimsAfter = roles.filter((e) => e.atNs >= down!.atNs && e.notice.role === 'candidate');
  t.log(`${first} stepped down at ${Number(down!.atNs) / 1e9} s (${down!.notice.why}); ${next!.node} master ${intervals.toFixed(2)} intervals later; ${claimsAfter.length} claim(s) since; good p99 ${us(s.good.precisionSteadyNs.p99)} (without the fault ${us(without.good.precisionSteadyNs.p99)})`);
  t.true(intervals <= 3, `a new master within 3 intervals: ${intervals.toFixed(2)}`);
  t.deepEqual(claimsAfter.filter((e) => e.node === first), [], 'the old master claims nothing after');
  t.true(claimsAfter.length <= 2, `few claims: ${claimsAfter.length}`);
  t.deepEqual(s.masters, [first, next!.node], 'one failover, no way back');
  const st = r.statuses.find((x) => x.name === first)!;
  t.is(st.role, 'peer');
  t.not(st.ownClockFault, null, 'its status keeps the reason');
  t.true(st.namedFaulty, 'the new master names it faulty');
  t.true(s.good.precisionSteadyNs.p99 <= 1.5 * without.good.precisionSteadyNs.p99 + 1_000, 'the good clocks hold');
});

test('a pinned master stepped 5 ms from outside: named, moves nobody, and recovers', (t) => {
  const o = { seed: 1, rounds: 60 };
  const without = summarize(sim({ ...o, faults: [MARK_N0] }));
  const r = sim({ ...o, faults: [{ node: 'n0', kind: 'jump', ns: 5n * MS, round: 20 }] });
  const s = summarize(r);
  t.log(`named ${JSON.stringify(s.flagged)}; good p99 ${us(s.good.precisionSteadyNs.p99)} (without the jump ${us(without.good.precisionSteadyNs.p99)}), max ${us(s.good.precisionSteadyNs.max)}`);
  const own = s.flagged.filter((f) => f.node === 'n0');
  t.true(own.length === 2 && own[0]!.reason !== null && own[1]!.reason === null, 'named, then recovered');
  t.true(own[0]!.round <= 23, `named by round 23: ${own[0]!.round}`);
  t.true(s.good.precisionSteadyNs.p99 <= 1.5 * without.good.precisionSteadyNs.p99 + 1_000, 'the good clocks hold');
  const st = r.statuses.find((x) => x.name === 'n0')!;
  t.false(st.servingGroupTime, 'recovered, it serves its own clock again');
  t.is(st.ownClockFault, null);
});

test('ServedTime: passes through the last point at the fitted rate', (t) => {
  const s = new ServedTime();
  t.is(s.at(5n), 5n, 'before any point: the monotonic clock');
  // A group running 1500 ppm fast against the monotonic clock, from 1 s at mono 0.
  for (let k = 0n; k < 10n; k++) s.add(k * 250n * MS, 1_000_000_000n + k * 250n * MS + (k * 250n * MS * 1500n) / 1_000_000n);
  t.true(Math.abs(s.ratePpm - 1500) < 1e-6, `rate ${s.ratePpm}`);
  t.is(s.size, 8, 'a window of the last points');
  const at = 3_000_000_000n;
  const expected = 1_000_000_000n + at + (at * 1500n) / 1_000_000n;
  t.true((s.at(at) - expected < 0n ? expected - s.at(at) : s.at(at) - expected) <= 1n, `extrapolates: ${s.at(at)} vs ${expected}`);
  s.add(1n, 0n);
  t.is(s.size, 8, 'a point older than the last is ignored');
  s.restart();
  t.is(s.size, 0);
  t.true(Math.abs(s.ratePpm - 1500) < 1e-6, 'a restart keeps the rate until new points give one');
});

test('Resignation: no claim while faulty, unless nobody else leads for a while; recovery after clean tables', (t) => {
  const interval = 1_000_000_000n;
  const r = new Resignation();
  t.true(r.mayClaim(0n, interval), 'never resigned: may claim');
  r.resign('frequency-limit', 10n * interval);
  t.false(r.mayClaim(11n * interval, interval));
  r.heardMaster(14n * interval);
  t.false(r.mayClaim((14n + BigInt(LAST_RESORT_INTERVALS) - 1n) * interval, interval), 'a master heard lately: no claim');
  t.false(r.lastResort);
  for (let i = 1; i < RECOVER_ROUNDS; i++) t.false(r.applied(false));
  t.false(r.applied(true), 'named faulty again: the count starts over');
  for (let i = 1; i < RECOVER_ROUNDS; i++) t.false(r.applied(false));
  t.true(r.applied(false), `recovered after ${RECOVER_ROUNDS} clean tables`);
  t.is(r.reason, null);
  r.resign('outlier', 0n);
  t.true(r.mayClaim(BigInt(LAST_RESORT_INTERVALS) * interval, interval), 'nobody else led: a claim as the last resort');
  t.true(r.lastResort, 'and as master it will serve instead of stepping down again');
});

// Real daemons ---------------------------------------------------------------

/** Poll statuses until done() holds, at most rounds intervals. */
async function until(c: ReturnType<typeof testCluster>, names: string[], intervalMs: number, rounds: number, done: (s: StatusJson[]) => boolean): Promise<StatusJson[]> {
  let st: StatusJson[] = [];
  for (let i = 0; i < 2 * rounds; i++) {
    await sleep(intervalMs / 2);
    st = await Promise.all(names.map((n) => c.status(n)));
    if (done(st)) break;
  }
  return st;
}

test.serial('real daemons: a pinned master drifting 2000 ppm serves the group time, and its peers agree far better than with its clock', async (t) => {
  t.timeout(60_000);
  const g = await testGroup(250);
  const c = testCluster(t);
  const peers = ['n1', 'n2', 'n3'];
  for (const [i, n] of peers.entries()) await c.add({ name: n, args: [...g.args, '--priority', '0', '--sim-offset', `${(i + 1) * 200}ms`, '--sim-drift', String(10 * (i - 1))] });
  await c.add({ name: 'n0', args: [...g.args, '--master', '--sim-drift', '2000'] });
  const st = await until(c, ['n0'], g.intervalMs, 40, ([m]) => m!.faults.ownClock !== null);
  const own = st[0]!.faults.ownClock;
  t.log(`round ${st[0]!.lastRound?.round}: n0 ${JSON.stringify(own)}`);
  t.deepEqual(own && { reason: own.reason, action: own.action }, { reason: 'own-clock-faulty', action: 'serving' });
  t.regex(c.member('n0').stderr, /own-clock-faulty \((outlier|frequency-limit)\)/, 'the log says why');
  await sleep(8 * g.intervalMs);
  const all = await Promise.all(['n0', ...peers].map((n) => c.status(n)));
  t.is(all[0]!.role, 'master', 'it keeps serving');
  const readings = all.map(readingOf);
  const times = groupTimesAt(readings, readings.reduce((a, r) => (r.monotonicNs > a ? r.monotonicNs : a), 0n));
  const good = times.slice(1);
  const spread = Number(good.reduce((a, b) => (b > a ? b : a)) - good.reduce((a, b) => (b < a ? b : a)));
  const masterOff = Math.abs(Number(times[0]! - good[0]!));
  t.log(`peers' spread ${us(spread)}; the master's own clock ${us(masterOff)} from them`);
  t.true(spread < 1_000_000, `the peers agree within 1 ms: ${us(spread)}`);
  t.true(spread * 10 < masterOff, "the peers agree with each other far better than with the master's clock");
});

test.serial('real daemons: an elected master drifting 2000 ppm steps down, another leads, and status and log say why', async (t) => {
  t.timeout(60_000);
  const g = await testGroup(250);
  const c = testCluster(t);
  const names = ['n0', 'n1', 'n2', 'n3'];
  // n0 starts alone and elects itself; the others join its group (a live master keeps its place).
  await c.add({ name: 'n0', args: [...g.args, '--priority', '200', '--sim-drift', '2000'] });
  const alone = await until(c, ['n0'], g.intervalMs, 20, ([m]) => m!.role === 'master');
  t.is(alone[0]!.role, 'master', 'n0 leads first');
  for (const [i, n] of names.slice(1).entries()) await c.add({ name: n, args: [...g.args, '--priority', '100', '--sim-offset', `${(i + 1) * 200}ms`, '--sim-drift', String(10 * (i - 1))] });
  const st = await until(c, names, g.intervalMs, 60, (s) => s[0]!.faults.ownClock?.action === 'stood-down' && s.some((x) => x.role === 'master'));
  const n0 = st[0]!;
  const master = st.find((x) => x.role === 'master');
  t.log(`n0: role ${n0.role}, ${JSON.stringify(n0.faults.ownClock)}; master ${master?.nodeId}; claims ${st.map((x) => `${x.nodeId}:${x.counters.claims}`).join(' ')}`);
  t.is(n0.role, 'peer');
  t.is(n0.faults.ownClock?.action, 'stood-down');
  t.truthy(master && master.nodeId !== 'n0', 'another node leads');
  t.regex(c.member('n0').stderr, /own-clock-faulty \((outlier|frequency-limit)\) in round \d+: .*stepping down/, 'the log says why');
  // It does not take the group back.
  await sleep(6 * g.intervalMs);
  const later = await Promise.all(names.map((n) => c.status(n)));
  t.is(later[0]!.role, 'peer', 'n0 stays a peer');
  t.is(later.filter((x) => x.role === 'master').length, 1, 'one master');
});

test('OwnClock.clear: a master that follows its reference again is no longer judged faulty, and says so once', (t) => {
  const notices: Notice[] = [];
  const own = new OwnClock((n) => notices.push(n));
  for (let r = 1; r <= FAULTY_OUTLIER_ROUNDS; r++) own.judge({ round: r, kept: false, far: true, atLimit: false });
  t.is(own.fault, 'outlier');
  t.true(own.serving);
  own.clear(10);
  t.is(own.fault, null);
  t.false(own.serving, 'it serves its own clock (the reference) again');
  t.like(notices.filter((n) => n.kind === 'own-clock').at(-1), { fault: null, round: 10 });
  const count = notices.length;
  own.clear(11);
  t.is(notices.length, count, 'nothing more to say');
});
