/**
 * The clock filter across rounds (lib/core/carry.ts): a synchronized peer
 * reports the least-delayed of its recent samples carried to now, whether
 * its bursts hold one exchange (a large group) or twelve, and the group
 * holds tighter for it.
 */
import test from 'ava';
import { CARRY_BELOW_SAMPLES, CARRY_DRIFT_PPB, CARRY_ROUNDS, carryApplies, RoundFilter, type RoundSample } from '../lib/core/carry.js';
import { summarize } from '../lib/sim/report.js';
import { runSimulation, SIM_DEFAULTS } from '../lib/sim/simulator.js';

const S = 1_000_000_000n;
const sample = (round: number, offsetNs: bigint, delayNs: bigint, appliedAtNs = 0n, epoch = 1): RoundSample => ({ epoch, round, offsetNs, delayNs, appliedAtNs, monoNs: BigInt(round) * S });

test('a fresh sample of least delay is reported as it is', (t) => {
  const f = new RoundFilter();
  t.deepEqual(f.choose(sample(1, 7_000n, 30_000n)), { offsetNs: 7_000n, delayNs: 30_000n, fromRound: 1 });
  f.noteAdjust(1, 1, 0n);
  t.deepEqual(f.choose(sample(2, -2_000n, 10_000n)), { offsetNs: -2_000n, delayNs: 10_000n, fromRound: 2 });
});

test('an earlier sample of less delay is carried to now: plus what this clock applied since, less what the master applied (its averages)', (t) => {
  const f = new RoundFilter();
  f.choose(sample(1, 5_000n, 10_000n, 100n));
  // Round 1's table: the master moved by its average, +2 µs; this clock by 2 − 5 = −3 µs (applied 100 → −2,900).
  f.noteAdjust(1, 1, 2_000n);
  const c = f.choose(sample(2, 40_000n, 90_000n, -2_900n));
  // 5 µs + (−3 µs) − 2 µs = 0: the correction left nothing, so a noisy 40 µs now counts for less than the earlier, better sample.
  t.is(c.offsetNs, 0n);
  t.is(c.fromRound, 1);
  // Its bound: half its round trip, plus a second at the drift it may have gathered.
  t.is(c.delayNs, 2n * (5_000n + CARRY_DRIFT_PPB));
});

test('a round whose table was not heard breaks the carry; so does another epoch or a reset', (t) => {
  const f = new RoundFilter();
  f.choose(sample(1, 5_000n, 10_000n));
  // No ADJUST heard for round 1: what the master did is not known.
  t.is(f.choose(sample(2, 40_000n, 90_000n)).fromRound, 2);
  f.noteAdjust(1, 2, 0n);
  t.is(f.choose(sample(3, 1_000n, 200_000n)).fromRound, 2, 'round 2 carried over a heard table');
  f.noteAdjust(2, 3, 0n);
  t.is(f.choose(sample(4, 1_000n, 90_000n, 0n, 2)).fromRound, 4, 'a new epoch starts afresh');
  f.noteAdjust(2, 4, 0n);
  f.reset();
  t.is(f.choose(sample(5, 1_000n, 90_000n, 0n, 2)).fromRound, 5, 'reset');
});

test('samples age: an old one must be better by more than its age at the assumed drift, and none is kept past CARRY_ROUNDS', (t) => {
  const f = new RoundFilter();
  f.choose(sample(1, 0n, 10_000n));
  for (let r = 1; r <= CARRY_ROUNDS + 1; r++) f.noteAdjust(1, r, 0n);
  // 3 s later, at 1 ppm, the old sample's bound is 5 + 3 µs: a 14 µs round trip (7 µs) wins.
  t.is(f.choose(sample(4, 0n, 14_000n)).fromRound, 4);
  const g = new RoundFilter();
  g.choose(sample(1, 0n, 10_000n));
  g.noteAdjust(1, 1, 0n);
  g.noteAdjust(1, 2, 0n);
  t.is(g.choose(sample(3, 0n, 18_000n)).fromRound, 1, '2 s: 5 + 2 µs beats 9 µs');
  for (let r = 3; r <= CARRY_ROUNDS + 2; r++) g.noteAdjust(1, r, 0n);
  t.is(g.choose(sample(CARRY_ROUNDS + 2, 0n, 1_000_000n)).fromRound, 3, 'round 1 is too old to keep; round 3 (18 µs) is the best left');
});

test('a full burst that met a slow path reports an earlier one carried, while the frequency is known to within the assumed drift; not when it may be further off', (t) => {
  const twelve = (f: RoundFilter, round: number, delayNs: bigint, driftPpb: bigint) => f.choose(sample(round, 1_500n, delayNs), driftPpb, 12);
  const f = new RoundFilter();
  twelve(f, 1, 6_300n, CARRY_DRIFT_PPB);
  f.noteAdjust(1, 1, 0n);
  // All twelve exchanges took 10 µs against the usual 6.3: half of 6.3 plus a second at 1 ppm (4.15 µs) beats 5 µs.
  const slow = twelve(f, 2, 10_000n, CARRY_DRIFT_PPB);
  t.is(slow.fromRound, 1);
  // A frequency that may be 3 ppm off: the earlier sample's bound (6.15 µs) loses.
  const g = new RoundFilter();
  twelve(g, 1, 6_300n, 3_000n);
  g.noteAdjust(1, 1, 0n);
  t.is(twelve(g, 2, 10_000n, 3_000n).fromRound, 2);
  // One exchange a round chooses at the assumed drift whatever the fit says (the reported bound still takes the fit's).
  const h = new RoundFilter();
  h.choose(sample(1, 0n, 6_300n), 3_000n, 1);
  h.noteAdjust(1, 1, 0n);
  const one = h.choose(sample(2, 0n, 10_000n), 3_000n, 1);
  t.is(one.fromRound, 1);
  t.is(one.delayNs, 2n * (3_150n + 3_000n));
});

test('who carries: nobody before synchronizing; a small burst as soon as synchronized; a full burst only with a trusted frequency fit', (t) => {
  const full = CARRY_BELOW_SAMPLES;
  const small = CARRY_BELOW_SAMPLES - 1;
  t.false(carryApplies(false, 1, 0.5), 'not synchronized: its own best, whatever the burst');
  t.false(carryApplies(false, full, 0.5));
  t.true(carryApplies(true, 1, null), 'one exchange: carried even before the fit is trusted');
  t.true(carryApplies(true, small, null));
  t.false(carryApplies(true, full, null), 'a full burst in acquisition (fit not trusted): its own best');
  t.false(carryApplies(true, 12, null));
  t.true(carryApplies(true, 12, 0.4), 'a full burst with a trusted fit: carried');
  t.true(carryApplies(true, 12, 25), 'trusted however large: the drift it chooses at (choose) keeps a poor fit from carrying far');
});

test('in the simulator (seeded, so the figures are the same on any machine), one exchange a round holds within 2x of full bursts (without the filter 4x)', (t) => {
  const run = (probes: number) => summarize(runSimulation({ ...SIM_DEFAULTS, nodes: 9, rounds: 120, probes, seed: 3 })).precisionSteadyNs!;
  const one = run(1);
  const full = run(12);
  t.log(`steady p50 / p99: 1 exchange ${(one.p50 / 1000).toFixed(1)} / ${(one.p99 / 1000).toFixed(1)} µs, 12 exchanges ${(full.p50 / 1000).toFixed(1)} / ${(full.p99 / 1000).toFixed(1)} µs`);
  t.true(one.p99 <= 2 * full.p99, `1 exchange p99 ${one.p99} ns against ${full.p99} ns with 12`);
});
