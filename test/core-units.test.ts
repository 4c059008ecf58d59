/**
 * The pure parts of the engine, one unit at a time: the four-timestamp
 * exchange, the fault-tolerant average, frequency tracking, the election
 * order and the validation of options. Every test here can fail: each
 * checks exact values or a bound derived from the formula in the module's
 * doc comment.
 */
import test from 'ava';
import { divRound, faultTolerantAverage, median, type Reading } from '../lib/core/average.js';
import {
  DEFAULT_DISCIPLINE,
  discipline,
  initialDiscipline,
  type CorrectionEvent,
  type DisciplineOptions,
  type DisciplineState,
} from '../lib/core/discipline.js';
import { compareCredentials, type Credentials } from '../lib/core/election.js';
import { bestOfBurst, exchange } from '../lib/core/measure.js';
import { DEFAULTS, validateOptions, type NodeOptions } from '../lib/core/options.js';
import { Prng } from '../lib/sim/prng.js';
import { testSeed } from './helpers/prng.js';

const US = 1_000n;
const MS = 1_000_000n;
const S = 1_000_000_000n;

// ---------------------------------------------------------------- measure

/**
 * The timestamps of one exchange between a peer whose clock reads
 * `offsetNs` more than the master's, over a path of `outNs` towards the
 * master and `backNs` back, with the master taking `turnNs` to answer.
 * True time of the request: `startNs`.
 */
function timestamps(offsetNs: bigint, outNs: bigint, backNs: bigint, turnNs = 7n * US, startNs = 1_000n * S) {
  const t1 = startNs + offsetNs;
  const T2 = startNs + outNs;
  const T3 = T2 + turnNs;
  const t4 = startNs + outNs + turnNs + backNs + offsetNs;
  return [t1, T2, T3, t4] as const;
}

test('exchange: a peer ahead by +X over a symmetric path measures offset +X and the wire round trip', (t) => {
  for (const X of [90n * MS, 1n, 0n, -1n, -30n * MS, 5n * S]) {
    const [t1, T2, T3, t4] = timestamps(X, 150n * US, 150n * US);
    const s = exchange(t1, T2, T3, t4);
    t.is(s.offsetNs, X, `offset for a peer ${X} ns ahead`);
    t.is(s.delayNs, 300n * US, 'delay = (t4 - t1) - (T3 - T2): the turnaround at the master is not delay');
  }
});

test('exchange: sign convention — a peer behind the master has a negative offset', (t) => {
  const [t1, T2, T3, t4] = timestamps(-90n * MS, 100n * US, 100n * US);
  t.is(exchange(t1, T2, T3, t4).offsetNs, -90n * MS);
});

test('exchange: delay formula on raw numbers', (t) => {
  // t4 - t1 = 1000, T3 - T2 = 400: delay 600; offset ((10 - 500) + (1010 - 900)) / 2 = -190.
  const s = exchange(10n, 500n, 900n, 1010n);
  t.is(s.delayNs, 600n);
  t.is(s.offsetNs, -190n);
});

test('exchange: an asymmetric path errs by half the asymmetry (back - out) / 2', (t) => {
  const X = 20n * MS;
  // Slower towards the master: the peer looks behind by half the difference.
  const slowOut = exchange(...timestamps(X, 300n * US, 100n * US));
  t.is(slowOut.offsetNs - X, -100n * US);
  t.is(slowOut.delayNs, 400n * US);
  // Slower back: the peer looks ahead by half the difference.
  const slowBack = exchange(...timestamps(X, 100n * US, 300n * US));
  t.is(slowBack.offsetNs - X, 100n * US);
  // Error never exceeds delay / 2.
  const oneWay = exchange(...timestamps(X, 0n, 500n * US));
  t.is(oneWay.offsetNs - X, 250n * US);
  t.true(oneWay.offsetNs - X <= oneWay.delayNs / 2n);
});

test('exchange: an odd sum is halved toward −∞', (t) => {
  // sum = (t1 - T2) + (t4 - T3)
  t.is(exchange(3n, 0n, 0n, 0n).offsetNs, 1n, 'sum 3 -> 1');
  t.is(exchange(1n, 0n, 0n, 0n).offsetNs, 0n, 'sum 1 -> 0');
  t.is(exchange(-1n, 0n, 0n, 0n).offsetNs, -1n, 'sum -1 -> -1, not 0');
  t.is(exchange(-3n, 0n, 0n, 0n).offsetNs, -2n, 'sum -3 -> -2');
  t.is(exchange(0n, 0n, 0n, -5n).offsetNs, -3n, 'sum -5 -> -3');
  t.is(exchange(-4n, 0n, 0n, 0n).offsetNs, -2n, 'even sums are exact');
});

test('bestOfBurst: the sample of least delay', (t) => {
  const samples = [
    { offsetNs: 11n, delayNs: 300n },
    { offsetNs: 22n, delayNs: 120n },
    { offsetNs: 33n, delayNs: 121n },
    { offsetNs: 44n, delayNs: 500n },
  ];
  t.deepEqual(bestOfBurst(samples), { offsetNs: 22n, delayNs: 120n });
  t.deepEqual(bestOfBurst([...samples].reverse()), { offsetNs: 22n, delayNs: 120n }, 'order does not matter');
  t.deepEqual(bestOfBurst([{ offsetNs: 5n, delayNs: 0n }, ...samples]), { offsetNs: 5n, delayNs: 0n }, 'zero delay is valid');
});

test('bestOfBurst: negative delays are ignored; nothing usable is undefined', (t) => {
  t.deepEqual(
    bestOfBurst([
      { offsetNs: 1n, delayNs: -50n },
      { offsetNs: 2n, delayNs: 80n },
      { offsetNs: 3n, delayNs: -1n },
    ]),
    { offsetNs: 2n, delayNs: 80n },
  );
  t.is(bestOfBurst([{ offsetNs: 1n, delayNs: -1n }]), undefined);
  t.is(bestOfBurst([]), undefined);
});

// ---------------------------------------------------------------- average

const readings = (master: bigint, offsets: bigint[]): Reading[] => [
  { node: master, offsetNs: 0n },
  ...offsets.map((offsetNs, i) => ({ node: BigInt(i + 1) * 1000n, offsetNs })),
];

const adjustmentsOf = (r: ReturnType<typeof faultTolerantAverage>): Map<bigint, bigint> =>
  new Map(r.entries.map((e) => [e.node, e.adjustmentNs]));

test("average: the seed's vector −90, −60, −30 and the master's 0 give −45 and +45, +15, −15, −45", (t) => {
  const r = faultTolerantAverage(readings(7n, [-90n * MS, -60n * MS, -30n * MS]), 1n * S);
  t.is(r.averageNs, -45n * MS);
  t.true(r.quorum);
  const adj = adjustmentsOf(r);
  t.is(adj.get(1000n), 45n * MS);
  t.is(adj.get(2000n), 15n * MS);
  t.is(adj.get(3000n), -15n * MS);
  t.is(adj.get(7n), -45n * MS, "the master's own adjustment is the average");
  t.true(r.entries.every((e) => !e.outlier));
  // After applying, every clock reads the same: offset + adjustment is the average for all.
  const offsets = new Map(readings(7n, [-90n * MS, -60n * MS, -30n * MS]).map((x) => [x.node, x.offsetNs]));
  for (const e of r.entries) t.is(offsets.get(e.node)! + e.adjustmentNs, -45n * MS);
});

test('average: an outlier 5 s off does not pull the average but still gets average − offset', (t) => {
  const r = faultTolerantAverage(readings(1n, [-10n * MS, 10n * MS, 4n * MS, 5n * S]), 1n * S);
  t.true(r.quorum);
  t.is(r.averageNs, 1n * MS, 'mean of 0, −10, +10, +4 ms');
  const out = r.entries.find((e) => e.node === 4000n)!;
  t.true(out.outlier);
  t.is(out.adjustmentNs, 1n * MS - 5n * S);
  t.deepEqual(
    r.entries.filter((e) => e.outlier).map((e) => e.node),
    [4000n],
    'only the 5 s clock is an outlier',
  );
  for (const e of r.entries) if (!e.outlier) t.true(e.adjustmentNs > -20n * MS && e.adjustmentNs < 20n * MS);
});

test('average: an outlier on the negative side too', (t) => {
  const r = faultTolerantAverage(readings(1n, [-5n * S, 2n * MS, 4n * MS]), 1n * S);
  t.true(r.quorum);
  t.is(r.averageNs, 2n * MS);
  const out = r.entries.find((e) => e.node === 1000n)!;
  t.true(out.outlier);
  t.is(out.adjustmentNs, 2n * MS + 5n * S);
});

test('average: no majority within the tolerance → quorum false, average 0: everyone follows the master', (t) => {
  // Two clocks 5 s apart: the median sits between them, neither is within 1 s of it.
  const two = faultTolerantAverage(readings(1n, [5n * S]), 1n * S);
  t.false(two.quorum);
  t.is(two.averageNs, 0n);
  t.is(adjustmentsOf(two).get(1n), 0n, 'the master does not move');
  t.is(adjustmentsOf(two).get(1000n), -5n * S, 'the peer is brought to the master');
  // Four clocks all far apart.
  const four = faultTolerantAverage(readings(1n, [3n * S, -7n * S, 11n * S]), 1n * S);
  t.false(four.quorum);
  t.is(four.averageNs, 0n);
  const adj = adjustmentsOf(four);
  t.is(adj.get(1n), 0n);
  t.is(adj.get(1000n), -3n * S);
  t.is(adj.get(2000n), 7n * S);
  t.is(adj.get(3000n), -11n * S);
  // Exactly half is not a majority: of 0, +1 ms, −10 s, +10 s the median is 0.5 ms and only 0 and +1 ms are near it.
  const half = faultTolerantAverage(readings(1n, [1n * MS, -10n * S, 10n * S]), 1n * S);
  t.is(half.medianNs, 500n * US);
  t.deepEqual(half.entries.filter((e) => !e.outlier).map((e) => e.node), [1n, 1000n], 'two clocks agree');
  t.false(half.quorum, '2 of 4 is not a strict majority');
  t.is(half.averageNs, 0n);
  // 3 of 4 is.
  const three = faultTolerantAverage(readings(1n, [1n * MS, 2n * MS, 10n * S]), 1n * S);
  t.true(three.quorum, '3 of 4 is a majority');
  t.is(three.averageNs, 1n * MS);
});

test('average: a single clock (the master alone) is its own quorum', (t) => {
  const r = faultTolerantAverage([{ node: 9n, offsetNs: 0n }], 0n);
  t.true(r.quorum);
  t.is(r.averageNs, 0n);
  t.deepEqual(r.entries, [{ node: 9n, adjustmentNs: 0n, outlier: false }]);
});

test('average: intervals are closed (touching clocks agree); the tolerance is the outer bound', (t) => {
  const at = (offsetNs: bigint, errorNs: bigint, node: bigint) => ({ node, offsetNs, errorNs });
  // The master's 0 ± 5 and a peer's 10 ± 5 touch at 5: they agree.
  const touch = faultTolerantAverage([at(0n, 5n, 1n), at(10n, 5n, 2n)], 1_000n);
  t.true(touch.quorum);
  t.true(touch.entries.every((e) => !e.outlier));
  t.is(touch.averageNs, 5n);
  // 11 ± 5 does not reach 0 ± 5: no majority of two.
  const apart = faultTolerantAverage([at(0n, 5n, 1n), at(11n, 5n, 2n)], 1_000n);
  t.false(apart.quorum);
  // A clock whose wide interval would reach everyone is still never kept beyond the tolerance from the median.
  const wide = faultTolerantAverage([at(0n, 5n, 1n), at(2n, 5n, 2n), at(1n, 5n, 3n), at(500n, 1_000n, 4n)], 100n);
  t.deepEqual(wide.entries.filter((e) => e.outlier).map((e) => e.node), [4n]);
  t.is(wide.averageNs, 1n);
});

test('average: the largest agreeing set wins, not the median neighbourhood: a liar and a runaway clock are left out', (t) => {
  // 7 clocks measured to ±30 µs, one liar 3 ms off, one clock 1.5 ms off and running away.
  const good = [0n, 12n, -8n, 20n, -15n, 5n, 9n].map((u, i) => ({ node: BigInt(i + 1), offsetNs: u * US, errorNs: 30n * US }));
  const bad = [
    { node: 100n, offsetNs: 3n * MS, errorNs: 30n * US },
    { node: 101n, offsetNs: -1_500n * US, errorNs: 60n * US },
  ];
  const r = faultTolerantAverage([...good, ...bad], 20n * MS);
  t.true(r.quorum);
  t.deepEqual(r.entries.filter((e) => e.outlier).map((e) => e.node).sort(), [100n, 101n]);
  t.is(r.averageNs, divRound([0n, 12n, -8n, 20n, -15n, 5n, 9n].reduce((a, b) => a + b, 0n) * US, 7n), 'the mean of the good clocks only');
  t.is(r.entries.find((e) => e.node === 100n)!.adjustmentNs, r.averageNs - 3n * MS, 'the liar still gets its correction');
  // The old rule (within 20 ms of the median) would have kept both and moved the average by (3 − 1.5) / 9 ms.
});

test('average: a bad clock kept inside the agreement moves the average by at most f·2E/k (the documented bound)', (t) => {
  const prng = new Prng(4242);
  for (let trial = 0; trial < 500; trial++) {
    const E = 50n * US;
    const n = 4 + Math.floor(prng.random() * 9);
    const f = Math.floor((n - 1) / 3);
    const truth = 0n;
    const good = Array.from({ length: n - f }, (_, i) => ({ node: BigInt(i + 1), offsetNs: truth + BigInt(Math.round(prng.uniform(-50_000, 50_000))), errorNs: E }));
    const bad = Array.from({ length: f }, (_, i) => ({ node: BigInt(1000 + i), offsetNs: BigInt(Math.round(prng.uniform(-5_000_000, 5_000_000))), errorNs: E }));
    const r = faultTolerantAverage([...good, ...bad], 20n * MS);
    t.true(r.quorum, `trial ${trial}: the good clocks (all containing the truth) are a majority`);
    const kept = r.entries.filter((e) => !e.outlier);
    const keptGood = good.filter((g) => kept.some((k) => k.node === g.node));
    t.is(keptGood.length, good.length, `trial ${trial}: every good clock is kept`);
    const goodMean = Number(keptGood.reduce((a, g) => a + g.offsetNs, 0n)) / keptGood.length;
    const badKept = kept.length - keptGood.length;
    const bound = (badKept * 2 * Number(E) * 2) / kept.length;
    t.true(Math.abs(Number(r.averageNs) - goodMean) <= bound + 1, `trial ${trial}: moved ${Number(r.averageNs) - goodMean} ns, bound ${bound}`);
  }
});

test('median: odd count, even count (mean of the middle two), order-independent', (t) => {
  t.is(median([5n]), 5n);
  t.is(median([3n, 1n, 2n]), 2n);
  t.is(median([4n, 1n, 3n, 2n]), 3n, '(2 + 3) / 2 = 2.5 rounds away from zero to 3');
  t.is(median([-1n, -2n]), -2n, '(−1 − 2) / 2 = −1.5 rounds to −2');
  t.is(median([10n, 20n]), 15n);
  t.is(median([0n, -90n * MS, -60n * MS, -30n * MS]), -45n * MS);
  t.is(faultTolerantAverage(readings(1n, [-90n * MS, -60n * MS, -30n * MS]), 1n * S).medianNs, -45n * MS);
});

test('divRound: nearest, halves away from zero, any signs', (t) => {
  const cases: Array<[bigint, bigint, bigint]> = [
    [5n, 2n, 3n],
    [-5n, 2n, -3n],
    [5n, -2n, -3n],
    [-5n, -2n, 3n],
    [7n, 3n, 2n],
    [8n, 3n, 3n],
    [-7n, 3n, -2n],
    [-8n, 3n, -3n],
    [6n, 3n, 2n],
    [1n, 4n, 0n],
    [2n, 4n, 1n],
    [-2n, 4n, -1n],
    [-1n, 4n, 0n],
    [3n, 4n, 1n],
    [0n, 5n, 0n],
    [-135n * MS, 3n, -45n * MS],
  ];
  for (const [a, b, q] of cases) t.is(divRound(a, b), q, `divRound(${a}, ${b})`);
});

test('average: errors on empty input and negative tolerance', (t) => {
  t.throws(() => faultTolerantAverage([], 1n), { instanceOf: RangeError });
  t.throws(() => faultTolerantAverage(readings(1n, [1n]), -1n), { instanceOf: RangeError });
  t.throws(() => median([]), { instanceOf: RangeError });
});

// ---------------------------------------------------------------- discipline

const UNGATED: DisciplineOptions = { ...DEFAULT_DISCIPLINE, maxErrorPpm: Infinity };

/**
 * A clock with rate error dPpm against the group, measured every span and
 * corrected by what the round answers: A_k = -(its error at the
 * measurement) + noise. The answer arrives gapNs(k) after the measurement
 * (a collection window; 0 by default). Corrections are applied at once
 * unless `applyFraction` says only part of each ran before the next
 * replaced it (a slew cut short). Returns the frequency after each answer.
 */
function run(
  dPpm: number,
  spansNs: bigint[],
  o: {
    f0?: number;
    startErrorNs?: number;
    noise?: () => number;
    applyFraction?: number;
    gapNs?: (k: number) => bigint;
    /** Round trip of the k-th measurement, ns (default: all alike). */
    delayNs?: (k: number) => number;
    /** Error added to the k-th measurement, ns (on top of noise). */
    errorNs?: (k: number) => number;
    opts?: DisciplineOptions;
  } = {},
): { state: DisciplineState; history: number[]; monoNs: bigint } {
  // Unless a test says otherwise, the fit is followed from its first slope (noise-free points).
  const opts = o.opts ?? UNGATED;
  let state = initialDiscipline(o.f0 ?? 0);
  let mono = 10n * S;
  let applied = 0n;
  let error = o.startErrorNs ?? 0; // the clock's error against the group, ns (positive: ahead)
  const noise = o.noise ?? (() => 0);
  const gap = o.gapNs ?? (() => 0n);
  // The chain's first correction leaves whatever error it leaves (startErrorNs).
  state = discipline(state, { adjustmentNs: 0n, appliedAtMeasureNs: applied, measureMonoNs: mono, applyMonoNs: mono, stepped: false }, opts);
  const history: number[] = [];
  spansNs.forEach((spanNs, k) => {
    const g = gap(k);
    mono += spanNs - g;
    error += ((dPpm + state.frequencyPpm) * Number(spanNs - g)) / 1e6; // to the measurement
    const a = BigInt(Math.round(-(error + noise() + (o.errorNs?.(k) ?? 0))));
    error += ((dPpm + state.frequencyPpm) * Number(g)) / 1e6; // on to the answer, at the old frequency
    const delayNs = o.delayNs?.(k) ?? 0;
    state = discipline(state, { adjustmentNs: a, appliedAtMeasureNs: applied, measureMonoNs: mono, applyMonoNs: mono + g, stepped: false, delayNs }, opts);
    mono += g;
    const ran = o.applyFraction === undefined ? a : BigInt(Math.round(Number(a) * o.applyFraction));
    applied += ran;
    error += Number(ran);
    history.push(state.frequencyPpm);
  });
  return { state, history, monoNs: mono };
}

test('discipline: a constant drift d is found as -d from the second span on, and held', (t) => {
  for (const d of [37.25, -100, 0.5, 250, -3.125]) {
    for (const f0 of [0, 12, -40.5]) {
      const { history } = run(d, [1n * S, 1n * S, 2n * S, 4n * S, 1n * S], { f0 });
      t.is(history[0], f0, `d=${d}, f0=${f0}: one span fits no line yet`);
      for (const f of history.slice(1)) t.true(Math.abs(f + d) <= 1e-3, `d=${d}, f0=${f0}: ${f} vs ${-d}`);
    }
  }
});

test('discipline: the error left by the chain\'s first correction does not bias the estimate (the fit\'s intercept takes it)', (t) => {
  // A first correction that left the clock 200 µs off: a sum over the window would be off by 200 µs / elapsed.
  const { history } = run(60, [250n * MS, 250n * MS, 250n * MS, 500n * MS, 1n * S], { startErrorNs: 200_000 });
  for (const f of history.slice(1)) t.true(Math.abs(f + 60) <= 1e-3, `estimate ${f} vs -60 despite a 200 µs start`);
});

test('discipline: a slew cut short by the next correction is counted as what ran, not what was decided', (t) => {
  // Each correction only gets 60% of the way before the next replaces it.
  const { history } = run(-45, [250n * MS, 250n * MS, 250n * MS, 250n * MS, 500n * MS, 500n * MS], { applyFraction: 0.6 });
  for (const f of history.slice(1)) t.true(Math.abs(f - 45) <= 1e-3, `estimate ${f} vs +45`);
});

/** An answer applied at the instant it was measured. */
const ev = (adjustmentNs: bigint, appliedAtMeasureNs: bigint, monoNs: bigint): CorrectionEvent => ({
  adjustmentNs,
  appliedAtMeasureNs,
  measureMonoNs: monoNs,
  applyMonoNs: monoNs,
  stepped: false,
});

test('discipline: an answer that arrives a varying time after its measurement (the fast start\'s growing windows) gives no false slope', (t) => {
  // Rounds of 125, 250, 500 ms and 1 s whose answers come 60, 120, 250, 500 ms after the measurement, like the fast start's collections.
  const spans = [125n, 125n, 125n, 250n, 250n, 500n, 500n, 1000n, 1000n, 1000n].map((x) => x * MS);
  const gapNs = (k: number): bigint => spans[k]! / 2n;
  for (const d of [100, -87.5]) {
    const { history } = run(d, spans, { gapNs });
    // Within the rounding of the answers to whole ns over 125 ms spans.
    for (const f of history.slice(1)) t.true(Math.abs(f + d) <= 0.01, `d=${d}: ${f} vs ${-d}`);
  }
});

test('discipline: the frequency follows the fit only once its standard error is at most 30 ppm (10 µs points: the fourth a quarter second apart)', (t) => {
  const quarter = Array(6).fill(250n * MS) as bigint[];
  const { history } = run(80, quarter, { opts: DEFAULT_DISCIPLINE });
  // Points 1 and 2: 57 ppm, 3: 28 ppm; from there on the estimate is exact (noise-free).
  t.deepEqual(history.slice(0, 2), [0, 0], 'two points a quarter second apart are not trusted');
  for (const f of history.slice(2)) t.true(Math.abs(f + 80) <= 1e-3, `then followed: ${f}`);
  const second = run(80, [1n * S, 1n * S, 1n * S], { opts: DEFAULT_DISCIPLINE });
  t.true(Math.abs(second.history[1]! + 80) <= 1e-3, 'two points a second apart are (14 ppm)');
});

test('discipline: a measurement with a long round trip weighs little (cold first rounds)', (t) => {
  // Points 1 and 2 are 150 µs off, and their round trips 400 µs longer than the rest: e = 200 µs.
  const spans = [250n, 250n, 250n, 250n, 500n, 500n, 1000n, 1000n].map((x) => x * MS);
  const cold = { errorNs: (k: number) => (k < 2 ? 150_000 : 0), opts: DEFAULT_DISCIPLINE };
  const weighed = run(-40, spans, { ...cold, delayNs: (k) => (k < 2 ? 470_000 : 70_000) });
  const blind = run(-40, spans, cold);
  const last = (h: number[]): number => h[h.length - 1]!;
  t.log(`frequency after 8 spans: ${last(weighed.history).toFixed(2)} ppm weighed by round trip, ${last(blind.history).toFixed(2)} ppm without`);
  t.true(Math.abs(last(weighed.history) - 40) < 2, `weighed: ${last(weighed.history)} vs +40`);
  t.true(Math.abs(last(blind.history) - 40) > 10, 'control: without round trips the two points pull the slope off');
});

test('discipline: the first correction only anchors the chain', (t) => {
  const s = discipline(initialDiscipline(3), ev(-5n * US, 0n, 5n * S));
  t.is(s.frequencyPpm, 3);
  t.is(s.startMonoNs, 5n * S);
  t.is(s.points.length, 0, 'the anchor is not a point of the fit');
});

test('discipline: a step breaks the chain; the fit restarts from the next correction', (t) => {
  const { state: locked, monoNs } = run(40, [1n * S, 1n * S, 1n * S]);
  t.true(Math.abs(locked.frequencyPpm + 40) <= 1e-3);
  const stepped = discipline(locked, { ...ev(300n * MS, 0n, monoNs + 1n * S), stepped: true });
  t.is(stepped.frequencyPpm, locked.frequencyPpm, 'a step leaves the frequency alone');
  t.is(stepped.startMonoNs, null);
  t.is(stepped.points.length, 0, 'the chain restarts');
  const after = discipline(stepped, ev(250n * US, 300n * MS, monoNs + 2n * S));
  t.is(after.frequencyPpm, locked.frequencyPpm, 'the correction after a step only anchors');
  t.is(after.points.length, 0);
});

test('discipline: spans longer than maxSpanNs, or time not moving forward, restart the chain', (t) => {
  const opts: DisciplineOptions = { ...DEFAULT_DISCIPLINE, maxSpanNs: 10n * S };
  const { state: locked, monoNs } = run(20, [1n * S, 1n * S, 1n * S], { opts });
  const gap = discipline(locked, ev(-1n * MS, 0n, monoNs + 10n * S + 1n), opts);
  t.is(gap.frequencyPpm, locked.frequencyPpm, 'a gap longer than maxSpanNs changes nothing');
  t.is(gap.points.length, 0, 'but it re-anchors');
  t.is(gap.startMonoNs, monoNs + 10n * S + 1n);
  const back = discipline(locked, ev(-1n * MS, 0n, monoNs), opts);
  t.is(back.points.length, 0);
});

test('discipline: the frequency is clamped to ±maxFrequencyPpm', (t) => {
  const { history } = run(2000, [1n * S, 1n * S, 1n * S]);
  t.deepEqual(history.slice(1), [-500, -500], 'default limit 500 ppm');
  const neg = run(-150, [1n * S, 1n * S], { opts: { ...DEFAULT_DISCIPLINE, maxFrequencyPpm: 100 } });
  t.is(neg.state.frequencyPpm, 100);
});

test('discipline: with measurement noise σ the error shrinks as the window fills', (t) => {
  const seed = Number(process.env.BERKELEYD_TEST_SEED ?? Date.now() % 2 ** 31);
  const rng = new Prng(seed);
  const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rng.random())) * Math.cos(2 * Math.PI * rng.random());
  const sigmaNs = 20_000;
  const rms = (k: number): number => {
    let sum = 0;
    const trials = 200;
    for (let i = 0; i < trials; i++) {
      const { history } = run(30, Array(k).fill(1n * S), { noise: () => sigmaNs * gauss() });
      sum += (history[k - 1]! + 30) ** 2;
    }
    return Math.sqrt(sum / trials);
  };
  const early = rms(2);
  const late = rms(15);
  t.log(`seed ${seed}: RMS frequency error ${early.toFixed(2)} ppm after 2 spans, ${late.toFixed(2)} ppm after 15`);
  t.true(late < early / 3, `seed ${seed}: the estimate improves as the window fills (${early.toFixed(2)} -> ${late.toFixed(2)} ppm)`);
  t.true(late < 5, `seed ${seed}: 15 one-second spans with 20 µs noise give a few ppm at most (${late.toFixed(2)})`);
});

// ---------------------------------------------------------------- election

const cred = (epoch: number, priority: number, node: bigint): Credentials => ({ epoch, priority, node });

test('compareCredentials: epoch first, then priority, then the lower node id', (t) => {
  t.true(compareCredentials(cred(2, 0, 99n), cred(1, 255, 1n)) > 0, 'a newer epoch wins over any priority and id');
  t.true(compareCredentials(cred(1, 255, 1n), cred(2, 0, 99n)) < 0);
  t.true(compareCredentials(cred(3, 200, 99n), cred(3, 100, 1n)) > 0, 'same epoch: higher priority wins over a lower id');
  t.true(compareCredentials(cred(3, 100, 1n), cred(3, 200, 99n)) < 0);
  t.true(compareCredentials(cred(3, 100, 5n), cred(3, 100, 6n)) > 0, 'same epoch and priority: the lower node id wins');
  t.true(compareCredentials(cred(3, 100, 6n), cred(3, 100, 5n)) < 0);
  t.true(compareCredentials(cred(3, 100, 0n), cred(3, 100, (1n << 64n) - 1n)) > 0, 'full 64-bit ids');
  t.is(compareCredentials(cred(3, 100, 5n), cred(3, 100, 5n)), 0);
});

test('compareCredentials: antisymmetric and total (seeded random pairs, with many ties)', (t) => {
  const seed = testSeed();
  const rng = new Prng(seed);
  const pick = (): Credentials => cred(Math.floor(rng.random() * 3), Math.floor(rng.random() * 3), BigInt(Math.floor(rng.random() * 3)) << 60n);
  const sign = (x: number): number => (x > 0 ? 1 : x < 0 ? -1 : 0);
  const pool = Array.from({ length: 40 }, pick);
  let failures = 0;
  for (const a of pool) {
    for (const b of pool) {
      const ab = sign(compareCredentials(a, b));
      const ba = sign(compareCredentials(b, a));
      const same = a.epoch === b.epoch && a.priority === b.priority && a.node === b.node;
      if (ab !== -ba || (ab === 0) !== same) failures++;
      for (const c of pool) {
        // Transitivity: a > b and b > c imply a > c.
        if (ab > 0 && compareCredentials(b, c) > 0 && !(compareCredentials(a, c) > 0)) failures++;
      }
    }
  }
  t.is(failures, 0, `seed ${seed}: violations of antisymmetry, totality or transitivity`);
  // Every node that hears the same contenders picks the same winner, whatever the order.
  const best = [...pool].sort((x, y) => compareCredentials(y, x))[0]!;
  const shuffled = [...pool].reverse();
  t.deepEqual([...shuffled].sort((x, y) => compareCredentials(y, x))[0], best, `seed ${seed}`);
});

// ---------------------------------------------------------------- options

const good: NodeOptions = { ...DEFAULTS, name: 'alpha', unicast: { address: '0.0.0.0', port: 9123 } };

test('validateOptions: the defaults and boundary values pass', (t) => {
  t.is(validateOptions(good), good);
  for (const o of [
    { name: 'x'.repeat(64) },
    { name: 'ü'.repeat(32) },
    { domain: 0 },
    { domain: 65535 },
    { priority: 0 },
    { priority: 255 },
    { intervalNs: 10n * MS, collectTimeoutNs: 5n * MS },
    { intervalNs: 3_600n * S },
    { collectTimeoutNs: 1n },
    { probes: 1 },
    { probes: 64 },
    { toleranceNs: 0n },
    { stepThresholdNs: 0n },
    { maxAdjustNs: 1n },
    { memberTimeoutRounds: 1 },
    { pinnedMaster: true, priority: 1 },
  ] satisfies Partial<NodeOptions>[]) {
    t.notThrows(() => validateOptions({ ...good, ...o }), JSON.stringify(o, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)));
  }
});

const bad: Array<[Partial<NodeOptions>, RegExp]> = [
  [{ name: '' }, /node id/],
  [{ name: 'x'.repeat(65) }, /node id/],
  [{ name: 'ü'.repeat(33) }, /node id/], // 66 bytes
  [{ name: 'tab\there' }, /node id/],
  [{ name: 'del\u007f' }, /node id/],
  [{ domain: -1 }, /domain/],
  [{ domain: 65536 }, /domain/],
  [{ domain: 1.5 }, /domain/],
  [{ domain: Number.NaN }, /domain/],
  [{ priority: -1 }, /priority/],
  [{ priority: 256 }, /priority/],
  [{ priority: 2.5 }, /priority/],
  [{ intervalNs: 10n * MS - 1n, collectTimeoutNs: 1n * MS }, /interval/],
  [{ intervalNs: 3_600n * S + 1n }, /interval/],
  [{ collectTimeoutNs: 0n }, /collect timeout/],
  [{ collectTimeoutNs: -1n }, /collect timeout/],
  [{ collectTimeoutNs: DEFAULTS.intervalNs }, /collect timeout/],
  [{ probes: 0 }, /probes/],
  [{ probes: 65 }, /probes/],
  [{ probes: 1.5 }, /probes/],
  [{ toleranceNs: -1n }, /tolerance/],
  [{ maxDelayNs: 0n }, /max delay/],
  [{ maxDelayNs: -5n }, /max delay/],
  [{ stepThresholdNs: -1n }, /step threshold/],
  [{ maxAdjustNs: 0n }, /max adjust/],
  [{ maxAdjustNs: -1n }, /max adjust/],
  [{ memberTimeoutRounds: 0 }, /member timeout/],
  [{ memberTimeoutRounds: 2.5 }, /member timeout/],
  [{ memberTimeoutRounds: Number.POSITIVE_INFINITY }, /member timeout/],
  [{ pinnedMaster: true, priority: 0 }, /master/],
];

for (const [change, pattern] of bad) {
  const label = JSON.stringify(change, (_, v) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v)).replace(
    /\u007f/g,
    '\\u007f',
  );
  test(`validateOptions rejects ${label} naming the option`, (t) => {
    const err = t.throws(() => validateOptions({ ...good, ...change }), { instanceOf: RangeError });
    t.regex(err?.message ?? '', pattern);
  });
}
