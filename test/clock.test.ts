import test from 'ava';
import {
  MAX_FREQUENCY_PPM,
  createSimulatedClock,
  createVirtualClock,
  type SimulatedClockOptions,
} from '../lib/clock/index.js';

const MS = 1_000_000n;
const S = 1_000_000_000n;

/** A fake monotonic source: time moves only when the test says so. */
function fakeMonotonic(startNs = 0n) {
  let t = startNs;
  return {
    monotonic: () => t,
    advance(ns: bigint) {
      t += ns;
    },
    set(ns: bigint) {
      t = ns;
    },
  };
}

/** Deterministic PRNG (mulberry32) so randomised tests can print and replay their seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('virtual clock advances with monotonic time', (t) => {
  const m = fakeMonotonic(123n);
  const c = createVirtualClock({ monotonic: m.monotonic, originNs: 1_000n });
  t.is(c.kind, 'virtual');
  t.is(c.now(), 1_000n);
  m.advance(5n * S);
  t.is(c.now(), 1_000n + 5n * S);
  t.is(c.monotonic(), 123n + 5n * S);
  t.is(c.appliedNs(), 0n);
  t.is(c.pendingNs(), 0n);
  t.is(c.frequencyPpm(), 0);
});

test('virtual clock origin defaults to the system clock', (t) => {
  const m = fakeMonotonic();
  const before = BigInt(Date.now()) * MS;
  const c = createVirtualClock({ monotonic: m.monotonic });
  const after = BigInt(Date.now()) * MS;
  const g = c.now();
  t.true(g >= before && g <= after);
});

test('virtual clock on the real monotonic clock reads close to the system clock', (t) => {
  const c = createVirtualClock();
  const diff = c.now() - BigInt(Date.now()) * MS;
  t.true(diff > -1000n * MS && diff < 1000n * MS);
  t.true(c.monotonic() > 0n);
});

test('simulated clock: starting offset and drift (100 ppm over 10 s = 1 ms)', (t) => {
  const m = fakeMonotonic();
  const c = createSimulatedClock({ monotonic: m.monotonic, originNs: 0n, offsetNs: 5n * MS, driftPpm: 100 });
  t.is(c.kind, 'simulated');
  t.is(c.now(), 5n * MS);
  m.advance(10n * S);
  t.is(c.now(), 10n * S + 5n * MS + 1n * MS);
  // Drift is not a correction.
  t.is(c.appliedNs(), 0n);
  t.is(c.frequencyPpm(), 0);
});

test('negative drift runs slow; sub-ns results round down', (t) => {
  const m = fakeMonotonic();
  const c = createSimulatedClock({ monotonic: m.monotonic, originNs: 0n, driftPpm: -100 });
  m.advance(10n * S);
  t.is(c.now(), 10n * S - 1n * MS);
  const d = createSimulatedClock({ monotonic: m.monotonic, originNs: 0n, driftPpm: 100 });
  m.advance(1n); // 1.0001 ns -> 1
  t.is(d.now(), 1n);
  t.is(d.at(m.monotonic() - 2n), -2n); // -1.0001 ns rounds toward -inf
});

test('slew runs at maxSlewPpm: +1 ms at 500 ppm takes exactly 2 s', (t) => {
  const m = fakeMonotonic();
  const c = createVirtualClock({ monotonic: m.monotonic, originNs: 0n });
  t.is(c.correct(1n * MS, false), 'slew');
  t.is(c.pendingNs(), 1n * MS);
  t.is(c.appliedNs(), 0n);
  m.advance(1n * S);
  t.is(c.appliedNs(), 500_000n);
  t.is(c.pendingNs(), 500_000n);
  t.is(c.now(), 1n * S + 500_000n);
  m.advance(1n * S - 1n);
  t.is(c.appliedNs(), 999_999n); // 999,999.9995 ns rounds toward zero
  t.is(c.now(), 2n * S - 1n + 999_999n);
  m.advance(1n);
  t.is(c.appliedNs(), 1n * MS);
  t.is(c.pendingNs(), 0n);
  t.is(c.now(), 2n * S + 1n * MS);
  m.advance(5n * S);
  t.is(c.appliedNs(), 1n * MS);
  t.is(c.now(), 7n * S + 1n * MS);
});

test('negative slew runs at -maxSlewPpm', (t) => {
  const m = fakeMonotonic();
  const c = createVirtualClock({ monotonic: m.monotonic, originNs: 0n, maxSlewPpm: 1000 });
  c.correct(-2n * MS, true); // below the step threshold: slewed even when stepping is allowed
  m.advance(1n * S);
  t.is(c.appliedNs(), -1n * MS);
  t.is(c.pendingNs(), -1n * MS);
  t.is(c.now(), 1n * S - 1n * MS);
  m.advance(10n * S);
  t.is(c.now(), 11n * S - 2n * MS);
  t.is(c.pendingNs(), 0n);
});

test('a new correction replaces the remainder of the previous slew', (t) => {
  const m = fakeMonotonic();
  const c = createVirtualClock({ monotonic: m.monotonic, originNs: 0n });
  c.correct(1n * MS, false);
  m.advance(1n * S);
  t.is(c.appliedNs(), 500_000n);
  c.correct(1n * MS, false);
  t.is(c.pendingNs(), 1n * MS);
  m.advance(2n * S);
  t.is(c.appliedNs(), 1_500_000n);
  t.is(c.pendingNs(), 0n);
  t.is(c.now(), 3n * S + 1_500_000n);

  c.correct(1n * MS, false);
  m.advance(1n * S);
  c.correct(-200_000n, false);
  m.advance(10n * S);
  t.is(c.appliedNs(), 1_500_000n + 500_000n - 200_000n);
});

test('step above the threshold only when allowed, slew otherwise', (t) => {
  const m = fakeMonotonic();
  const c = createVirtualClock({ monotonic: m.monotonic, originNs: 0n });
  t.is(c.correct(200n * MS, false), 'slew');
  t.is(c.now(), 0n);
  t.is(c.pendingNs(), 200n * MS);
  t.is(c.correct(128n * MS, true), 'slew'); // not above the threshold
  t.is(c.pendingNs(), 128n * MS);
  t.is(c.correct(200n * MS, true), 'step'); // drops the pending slew
  t.is(c.now(), 200n * MS);
  t.is(c.appliedNs(), 200n * MS);
  t.is(c.pendingNs(), 0n);
  m.advance(1n * S);
  t.is(c.now(), 1n * S + 200n * MS);
  t.is(c.correct(-500n * MS, true), 'step');
  t.is(c.now(), 1n * S - 300n * MS); // a step may move the clock back
  t.is(c.appliedNs(), -300n * MS);
  const st = c.state();
  t.is(st.steps, 2);
  t.is(st.slews, 2);
});

test('custom step threshold and slew rate', (t) => {
  const m = fakeMonotonic();
  const c = createVirtualClock({ monotonic: m.monotonic, originNs: 0n, stepThresholdNs: 1n * MS, maxSlewPpm: 100_000 });
  t.is(c.correct(1n * MS + 1n, true), 'step');
  t.is(c.correct(1n * MS, true), 'slew');
  m.advance(10n * MS); // 10 ms at 100000 ppm = 1 ms
  t.is(c.pendingNs(), 0n);
  t.is(c.appliedNs(), 2n * MS + 1n);
});

test('never backward: negative slew at max rate with negative drift still advances', (t) => {
  const m = fakeMonotonic();
  const c = createSimulatedClock({ monotonic: m.monotonic, originNs: 0n, driftPpm: -100 });
  c.correct(-10n * S, false);
  let last = c.now();
  for (let i = 0; i < 10_000; i++) {
    m.advance(1_000_003n);
    const g = c.now();
    t.true(g > last, `step ${i}: ${g} <= ${last}`);
    last = g;
  }
  // Extremes: drift -100000 ppm, frequency -1000 ppm, slew -100000 ppm.
  const x = createSimulatedClock({ monotonic: m.monotonic, originNs: 0n, driftPpm: -100_000, maxSlewPpm: 100_000 });
  x.setFrequencyPpm(-1e9);
  x.correct(-1000n * S, false);
  const g0 = x.now();
  m.advance(1n * S);
  t.is(x.now() - g0, 1n * S - 201n * MS);
});

test('never decreases under random corrections and frequency changes (seeded)', (t) => {
  const seed = Number(process.env.SEED ?? Date.now() % 1_000_000);
  t.log(`seed ${seed} (replay with SEED=${seed})`);
  const rnd = prng(seed);
  const m = fakeMonotonic();
  const c = createSimulatedClock({ monotonic: m.monotonic, originNs: 0n, offsetNs: -7n * MS, driftPpm: -80 });
  let last = c.now();
  let ok = true;
  for (let i = 0; i < 20_000 && ok; i++) {
    m.advance(BigInt(Math.floor(rnd() * 3_000_000)));
    const r = rnd();
    if (r < 0.05) c.correct(BigInt(Math.round((rnd() - 0.5) * 400_000_000)), false);
    else if (r < 0.1) c.setFrequencyPpm((rnd() - 0.5) * 2400);
    const g = c.now();
    t.is(c.at(m.monotonic()), g);
    if (g < last) {
      ok = false;
      t.fail(`seed ${seed}: clock went back at sample ${i}: ${g} < ${last}`);
    }
    last = g;
  }
  t.true(ok, `seed ${seed}`);
});

test('frequency correction cancels drift', (t) => {
  const m = fakeMonotonic();
  const c = createSimulatedClock({ monotonic: m.monotonic, originNs: 0n, driftPpm: 50 });
  c.setFrequencyPpm(-50);
  t.is(c.frequencyPpm(), -50);
  m.advance(1000n * S);
  t.is(c.now(), 1000n * S);
  t.is(c.appliedNs(), 0n); // the frequency correction is not an applied correction

  const d = createSimulatedClock({ monotonic: m.monotonic, originNs: 0n, driftPpm: 50 });
  m.advance(10n * S); // 500 µs gained before the correction
  d.setFrequencyPpm(-50);
  m.advance(1000n * S);
  t.is(d.now() - d.at(m.monotonic() - 1000n * S), 1000n * S);
  t.is(d.now(), 1010n * S + 500_000n);
});

test('frequency correction keeps a slew in progress', (t) => {
  const m = fakeMonotonic();
  const c = createVirtualClock({ monotonic: m.monotonic, originNs: 0n });
  c.correct(1n * MS, false);
  m.advance(1n * S);
  c.setFrequencyPpm(10);
  t.is(c.pendingNs(), 500_000n);
  m.advance(1n * S);
  t.is(c.appliedNs(), 1n * MS);
  t.is(c.now(), 2n * S + 1n * MS + 10_000n);
});

test('setFrequencyPpm clamps to ±MAX_FREQUENCY_PPM and rejects NaN/Infinity', (t) => {
  const c = createVirtualClock({ monotonic: fakeMonotonic().monotonic });
  t.is(MAX_FREQUENCY_PPM, 1000);
  c.setFrequencyPpm(5000);
  t.is(c.frequencyPpm(), 1000);
  c.setFrequencyPpm(-5000);
  t.is(c.frequencyPpm(), -1000);
  c.setFrequencyPpm(12.3456789);
  t.is(c.frequencyPpm(), 12.345679); // resolution 1e-6 ppm
  for (const bad of [NaN, Infinity, -Infinity]) {
    t.throws(() => c.setFrequencyPpm(bad), { instanceOf: RangeError });
  }
  t.is(c.frequencyPpm(), 12.345679);
});

test('at() matches now() at the same instant, and extrapolates back on the current segment', (t) => {
  const m = fakeMonotonic(1_000n);
  const c = createSimulatedClock({ monotonic: m.monotonic, originNs: 0n, driftPpm: 30 });
  m.advance(3n * S);
  t.is(c.at(m.monotonic()), c.now());
  c.correct(2n * MS, false);
  m.advance(1n * S);
  t.is(c.at(m.monotonic()), c.now());
  const mid = c.now();
  c.setFrequencyPpm(70);
  t.is(c.at(m.monotonic()), mid);
  m.advance(10n * S);
  t.is(c.at(m.monotonic()), c.now());
  // An instant 1 s before the last re-anchor: extrapolated at rate 1 + 30 + 70 ppm, plus the slew rate (500 ppm).
  t.is(c.at(m.monotonic() - 11n * S), mid - 1n * S - 100_000n - 500_000n);
});

test('appliedNs sums steps and run slews; frequency does not count', (t) => {
  const m = fakeMonotonic();
  const c = createVirtualClock({ monotonic: m.monotonic, originNs: 0n });
  c.setFrequencyPpm(100);
  m.advance(10n * S);
  t.is(c.appliedNs(), 0n);
  c.correct(-300n * MS, true); // step
  c.correct(2n * MS, false); // slew, 4 s
  m.advance(3n * S);
  t.is(c.appliedNs(), -300n * MS + 1_500_000n);
  c.correct(-1n * MS, false);
  m.advance(100n * S);
  t.is(c.appliedNs(), -300n * MS + 1_500_000n - 1n * MS);
  t.deepEqual(c.state(), {
    kind: 'virtual',
    frequencyPpm: 100,
    pendingNs: 0n,
    appliedNs: -300n * MS + 500_000n,
    steps: 1,
    slews: 2,
    maxSlewPpm: 500,
    stepThresholdNs: 128n * MS,
  });
});

test('state() of a simulated clock reports its drift and offset', (t) => {
  const c = createSimulatedClock({ monotonic: fakeMonotonic().monotonic, offsetNs: -90n * MS, driftPpm: 12.5 });
  const st = c.state();
  t.is(st.kind, 'simulated');
  t.is(st.driftPpm, 12.5);
  t.is(st.offsetNs, -90n * MS);
});

const badOptions: Array<[string, SimulatedClockOptions, typeof RangeError | typeof TypeError]> = [
  ['maxSlewPpm 0', { maxSlewPpm: 0 }, RangeError],
  ['maxSlewPpm negative', { maxSlewPpm: -1 }, RangeError],
  ['maxSlewPpm too large', { maxSlewPpm: 100_001 }, RangeError],
  ['maxSlewPpm NaN', { maxSlewPpm: NaN }, RangeError],
  ['maxSlewPpm Infinity', { maxSlewPpm: Infinity }, RangeError],
  ['driftPpm too large', { driftPpm: 100_001 }, RangeError],
  ['driftPpm too small', { driftPpm: -100_001 }, RangeError],
  ['driftPpm NaN', { driftPpm: NaN }, RangeError],
  ['stepThresholdNs negative', { stepThresholdNs: -1n }, RangeError],
  ['stepThresholdNs a number', { stepThresholdNs: 5 as unknown as bigint }, TypeError],
  ['offsetNs a number', { offsetNs: 5 as unknown as bigint }, TypeError],
  ['originNs a number', { originNs: 5 as unknown as bigint }, TypeError],
  ['monotonic not a function', { monotonic: 5 as unknown as () => bigint }, TypeError],
  ['monotonic returns a number', { monotonic: (() => 5) as unknown as () => bigint }, TypeError],
];

for (const [name, opts, error] of badOptions) {
  test(`option validation: ${name}`, (t) => {
    const e = t.throws(() => createSimulatedClock({ monotonic: () => 0n, ...opts }), { instanceOf: error });
    t.regex(e?.message ?? '', /must/);
  });
}

test('option validation: limits are inclusive where documented', (t) => {
  t.notThrows(() => createSimulatedClock({ monotonic: () => 0n, maxSlewPpm: 100_000, driftPpm: -100_000 }));
  t.notThrows(() => createSimulatedClock({ monotonic: () => 0n, driftPpm: 100_000, stepThresholdNs: 0n }));
  t.throws(() => createVirtualClock({ monotonic: () => 0n, driftPpm: 5 } as SimulatedClockOptions), {
    instanceOf: RangeError,
  });
});

test('correct() rejects a non-bigint correction', (t) => {
  const c = createVirtualClock({ monotonic: () => 0n });
  t.throws(() => c.correct(5 as unknown as bigint, false), { instanceOf: TypeError });
});
