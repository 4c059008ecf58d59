/**
 * The error bound (lib/core/bound.ts): its terms one by one, its states,
 * and, in the simulator, that it holds at every sample under loss, jitter
 * and every kind of fault (a property of the engine, not a timing figure),
 * that a node left alone after its master dies runs free with a growing
 * bound, and that a node named faulty gives none.
 */
import test from 'ava';
import { boundDriftPpm, computeBound, DRIFT_FLOOR_PPM, interval, LOST_INTERVALS, residualNs, type BoundInputs } from '../lib/core/bound.js';
import { worstSlopeErrorPpm } from '../lib/core/discipline.js';
import type { ErrorBound } from '../lib/core/types.js';
import { runSimulation, SIM_DEFAULTS, type SimOptions } from '../lib/sim/simulator.js';

const MS = 1_000_000n;
const S = 1_000_000_000n;

/** A synchronized peer that applied a correction of 8 µs 100 ms ago, measured 300 ms ago with a 40 µs round trip. */
function peer(over: Partial<BoundInputs> = {}): BoundInputs {
  return {
    role: 'peer',
    synced: true,
    namedFaulty: false,
    leftOut: null,
    cannotFollow: false,
    following: true,
    update: { measureMonoNs: 10n * S, applyMonoNs: 10n * S + 200n * MS, correctionNs: 8_000n, appliedAtNs: 1_000n, delayNs: 40_000n },
    appliedNowNs: 1_000n + 8_000n,
    averagesNs: [-3_000n, 2_000n],
    frequencyErrorPpm: null,
    intervalNs: S,
    collectNs: 500n * MS,
    ...over,
  };
}

const at = 10n * S + 300n * MS;

test('a synchronized peer: half its round trip + twice the largest recent average + what is left to slew + drift since its measurement', (t) => {
  const b = computeBound(peer({ appliedNowNs: 1_000n + 5_000n }), at);
  t.is(b.state, 'synchronized');
  t.is(b.why, null);
  t.is(b.asOfMonoNs, at);
  t.is(b.driftPpb, DRIFT_FLOOR_PPM * 1000);
  // 20 µs + 2 x 3 µs + 3 µs left of the 8 µs slew + 1 ppm x (300 ms + 500 ms collection) = 800 ns.
  t.is(b.boundNs, 20_000n + 6_000n + 3_000n + 800n);
});

test('a round trip far below the usual counts as the usual: half the median of the recent bursts\' best', (t) => {
  t.is(computeBound(peer({ typicalDelayNs: 100_000n }), at).boundNs, 50_000n + 6_000n + 0n + 800n);
  t.is(computeBound(peer({ typicalDelayNs: 10_000n }), at).boundNs, 20_000n + 6_000n + 0n + 800n, 'a longer one of its own stays');
});

test('the master: no round trip of its own, its last average once, its residual and drift', (t) => {
  const b = computeBound(peer({ role: 'master', following: false, averagesNs: [-4_000n] }), at);
  t.is(b.state, 'synchronized');
  t.is(b.boundNs, 4_000n + 0n + 800n);
});

test('the residual: what remains of the last correction, 0 once run, after a step or past it', (t) => {
  const u = { measureMonoNs: 0n, applyMonoNs: 0n, correctionNs: -10_000n, appliedAtNs: 500n, delayNs: 0n };
  t.is(residualNs(u, 500n), 10_000n);
  t.is(residualNs(u, 500n - 4_000n), 6_000n);
  t.is(residualNs(u, 500n - 10_000n), 0n, 'stepped, or slewed to the end');
  t.is(residualNs(u, 500n - 12_000n), 0n, 'a newer correction ran on');
  t.is(residualNs({ ...u, correctionNs: 7n }, 503n), 4n);
});

test('the drift: a floor, or the most the frequency fit can be off when larger', (t) => {
  t.is(boundDriftPpm(null), DRIFT_FLOOR_PPM);
  t.is(boundDriftPpm(0.1), DRIFT_FLOOR_PPM);
  t.is(boundDriftPpm(-5), 5);
  t.is(boundDriftPpm(Number.NaN), DRIFT_FLOOR_PPM);
  const b = computeBound(peer({ frequencyErrorPpm: 30 }), at);
  t.is(b.driftPpb, 30_000);
  t.is(b.boundNs, 20_000n + 6_000n + 0n + 24_000n, '30 ppm over 800 ms');
});

test('no bound, with why: not synchronized, named faulty, left out, cannot follow, no correction since a step', (t) => {
  const none = (over: Partial<BoundInputs>): ErrorBound => computeBound(peer(over), at);
  for (const [over, why] of [
    [{ synced: false }, /not yet synchronized/],
    [{ namedFaulty: true }, /named faulty/],
    [{ leftOut: 'table-full' }, /left out of the master's table \(table-full\)/],
    [{ cannotFollow: true }, /cannot follow/],
    [{ update: null }, /no correction/],
  ] as const) {
    const b = none(over);
    t.is(b.state, 'none');
    t.is(b.boundNs, null);
    t.regex(b.why ?? '', why);
    t.is(interval(123n, b), null);
  }
  t.is(computeBound(peer({ role: 'master', leftOut: 'table-full' }), at).state, 'synchronized', 'a master is never left out of its own table');
});

test('free-running: no master followed, a candidate, or no correction for 4 intervals; the bound keeps growing', (t) => {
  t.is(computeBound(peer({ following: false }), at).state, 'free-running');
  t.regex(computeBound(peer({ following: false }), at).why ?? '', /no master/);
  t.is(computeBound(peer({ role: 'candidate', following: false }), at).state, 'free-running');
  const applied = 10n * S + 200n * MS;
  const before = computeBound(peer(), applied + LOST_INTERVALS * S);
  const after = computeBound(peer(), applied + LOST_INTERVALS * S + 1n);
  t.is(before.state, 'synchronized');
  t.is(after.state, 'free-running');
  t.true(after.boundNs! > before.boundNs!);
  const later = computeBound(peer(), applied + 60n * S);
  t.is(later.boundNs! - after.boundNs!, (60n * S - LOST_INTERVALS * S - 1n) / 1_000_000n, 'grows at 1 ppm');
});

test('interval: [clock − bound, clock + bound]', (t) => {
  const b = computeBound(peer(), at);
  t.deepEqual(interval(1_000_000n, b), { earliestNs: 1_000_000n - b.boundNs!, latestNs: 1_000_000n + b.boundNs! });
});

const faulty: SimOptions = {
  ...SIM_DEFAULTS,
  nodes: 60,
  rounds: 30,
  driftPpm: 20,
  delayNs: 30_000n,
  jitterNs: 20_000n,
  loss: 0.02,
  seed: 11,
  faults: [
    { node: 'n3', kind: 'drift', ppm: 2000 },
    { node: 'n5', kind: 'jump', ns: 5_000_000n, round: 18 },
    { node: 'n7', kind: 'lie', ns: 3_000_000n },
    { node: 'n9', kind: 'mute', round: 10 },
  ],
};

test('simulator: under loss, jitter and every kind of fault, no good node is ever farther from the group time than its bound', (t) => {
  for (const seed of [11, 12]) {
    const r = runSimulation({ ...faulty, seed }, { keepEvents: false });
    const b = r.bound;
    t.log(`seed ${seed}: ${b.violations} of ${b.samples} over, ${b.none} without; median bound ${b.medianBoundNs} ns, median |error| ${b.medianErrorNs} ns, worst ${b.worstFraction?.toFixed(2)} of the bound; faulty nodes ${b.faulty.violations} of ${b.faulty.samples} over`);
    t.true(b.samples >= 20_000, `${b.samples} pairs`);
    t.is(b.violations, 0);
    t.true(b.worstFraction! <= 1);
    t.true(b.none > 0, 'the nodes had no bound before they synchronized');
    t.true(b.faulty.none > 0, 'nodes with a fault were without a bound once named');
  }
});

test('simulator: asymmetric paths make the error approach the bound, never pass it', (t) => {
  const r = runSimulation({ ...faulty, faults: [], nodes: 20, asymmetryNs: 50_000n, seed: 3 }, { keepEvents: false });
  t.is(r.bound.violations, 0);
  t.true(r.bound.worstFraction! > 0.5, `the error reached ${r.bound.worstFraction} of the bound: half the round trip is needed`);
});

test('simulator: a node left alone after its master dies runs free, its bound growing; a node named faulty gives no bound', (t) => {
  const seen = new Map<string, { atNs: bigint; bound: ErrorBound }[]>();
  runSimulation(
    // The peers have priority 0 under a pinned master: nobody takes over.
    { ...SIM_DEFAULTS, nodes: 5, rounds: 20, driftPpm: 20, crashMasterAtRound: 16, faults: [{ node: 'n4', kind: 'drift', ppm: 2000 }], seed: 5 },
    {
      keepEvents: false,
      onSample: (atNs, _g, nodes) => {
        for (const n of nodes) seen.set(n.name, [...(seen.get(n.name) ?? []), { atNs, bound: n.bound }]);
      },
    },
  );
  const n1 = seen.get('n1')!;
  t.true(n1.some((x) => x.bound.state === 'synchronized'));
  const free = n1.filter((x) => x.bound.state === 'free-running');
  t.true(free.length > 10, `${free.length} free-running samples`);
  t.true(free.every((x, i) => i === 0 || x.bound.boundNs! > free[i - 1]!.bound.boundNs!), 'the bound only grows');
  t.is(n1[n1.length - 1]!.bound.state, 'free-running', 'and stays so: no master came');
  const n4 = seen.get('n4')!;
  t.is(n4[n4.length - 1]!.bound.state, 'none');
  t.regex(n4[n4.length - 1]!.bound.why ?? '', /named faulty|cannot follow/);
  t.false(n4.some((x) => x.bound.state === 'synchronized' && x.atNs > 10n * S), 'never synchronized once its clock ran away');
});

test('the fit\'s worst slope error: every point off by half its round trip, pushing the slope one way', (t) => {
  // Points at 0, 1, 2 s, round trips 20 µs: errors of -10, 0, +10 µs over 2 s tilt the slope by 10 ppm.
  t.is(worstSlopeErrorPpm([{ t: 0, x: 0, d: 20_000 }, { t: 1e9, x: 0, d: 20_000 }, { t: 2e9, x: 0, d: 20_000 }]), 10);
  t.is(worstSlopeErrorPpm([{ t: 0, x: 0, d: 20_000 }]), null);
  // Twice the span, a quarter of the tilt per µs of error: longer windows know the frequency better.
  t.is(worstSlopeErrorPpm([{ t: 0, x: 0, d: 20_000 }, { t: 2e9, x: 0, d: 20_000 }, { t: 4e9, x: 0, d: 20_000 }]), 5);
});

test('a carried sample (rounds of one exchange) is chosen as before, but reports its age at the bound\'s drift', async (t) => {
  const { RoundFilter, CARRY_DRIFT_PPB } = await import('../lib/core/carry.js');
  const sample = (round: number, offsetNs: bigint, delayNs: bigint) => ({ epoch: 1, round, offsetNs, delayNs, appliedAtNs: 0n, monoNs: BigInt(round) * S });
  const f = new RoundFilter();
  f.choose(sample(1, 5_000n, 10_000n));
  f.noteAdjust(1, 1, 0n);
  f.noteAdjust(1, 2, 0n);
  const c = f.choose(sample(3, 40_000n, 90_000n), 20_000n);
  t.is(c.fromRound, 1, 'chosen at the filter\'s own 1 ppm');
  t.is(c.delayNs, 2n * (5_000n + 2n * 20_000n), 'reported: half its round trip plus 2 s at 20 ppm');
  f.noteAdjust(1, 3, 0n);
  t.is(f.choose(sample(4, 40_000n, 90_000n), 1n).delayNs, 2n * (5_000n + 3n * CARRY_DRIFT_PPB), 'never below the filter\'s own drift');
});

test('a correction refused by --max-adjust leaves no bound until one is applied; a coarse step neither', async (t) => {
  const { Context } = await import('../lib/core/context.js');
  const { DEFAULTS } = await import('../lib/core/options.js');
  let applied = 0n;
  const clock = { now: () => 0n, at: (m: bigint) => m, appliedNs: () => applied };
  const ctx = new Context({ ...DEFAULTS, name: 'x', unicast: { address: '0.0.0.0', port: 1 }, maxAdjustNs: 1_000_000n }, 1n, clock, { random: () => 0.5, nonce: () => 1n });
  for (let i = 0; i < 5; i++) ctx.applyAdjustment(1, i + 1, 1_000n, applied, BigInt(i) * S, BigInt(i) * S + 1n, 20_000);
  t.true(ctx.synced);
  t.like(ctx.lastUpdate, { correctionNs: 1_000n, delayNs: 20_000n, measureMonoNs: 4n * S });
  ctx.applyAdjustment(1, 6, 5_000_000n, applied, 5n * S, 5n * S + 1n, 20_000);
  t.is(ctx.lastUpdate, null, 'refused: the round says the clock is beyond --max-adjust');
  t.regex(computeBound(peer({ update: ctx.lastUpdate }), at).why ?? '', /refused/);
  ctx.applyAdjustment(1, 7, 2_000n, applied, 6n * S, 6n * S + 1n, 20_000);
  t.not(ctx.lastUpdate, null);
  ctx.coarseStep(-3_000_000n);
  t.is(ctx.lastUpdate, null);
});
