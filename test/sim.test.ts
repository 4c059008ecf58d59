/**
 * Whole-group scenarios in the deterministic simulator (the real engine,
 * simulated clocks and network, virtual time), each with explicit options
 * and seed and a numeric limit stated in its assertion message. A limit
 * that fails is reported, never loosened.
 *
 * Precision is the simulator's ground truth: the largest disagreement
 * between any two live group clocks, sampled 20 times per interval.
 */
import test from 'ava';
import type { Notice } from '../lib/core/types.js';
import { summarize, type SimSummary } from '../lib/sim/report.js';
import { runSimulation, SIM_DEFAULTS, type SimOptions, type SimResult } from '../lib/sim/simulator.js';

const US = 1_000n;
const MS = 1_000_000n;
const S = 1_000_000_000n;

/** The defaults, then what the scenario states. Every scenario states its seed and conditions. */
const scenario = (o: Partial<SimOptions> & Pick<SimOptions, 'nodes' | 'rounds' | 'seed'>): SimOptions => ({ ...SIM_DEFAULTS, ...o });

const us = (ns: number | bigint): string => `${(Number(ns) / 1000).toFixed(1)} µs`;
const fig = (s: SimSummary): string =>
  `converged after round ${s.convergedRound}, precision p50 ${us(s.precisionNs.p50)}, p99 ${us(s.precisionNs.p99)}, max ${us(s.precisionNs.max)}, ${s.roundsCompleted} rounds, ${s.wallMs} ms wall`;

const noticesOf = <K extends Notice['kind']>(r: SimResult, kind: K) =>
  r.events.flatMap((e) => (e.notice.kind === kind ? [{ atNs: e.atNs, node: e.node, notice: e.notice as Extract<Notice, { kind: K }> }] : []));

// (a) ------------------------------------------------------------------------

test("(a) the seed's table: −90, −60, −30, 0 ms with n3 master → +45, +15, −15, −45 ms, then every clock agrees exactly", (t) => {
  const r = runSimulation(
    scenario({
      nodes: 4,
      rounds: 3,
      seed: 1,
      offsetsNs: [-90n * MS, -60n * MS, -30n * MS, 0n],
      master: 'n3',
      delayNs: 0n,
      jitterNs: 0n,
      asymmetryNs: 0n,
      loss: 0,
      driftPpm: 0,
      toleranceNs: 1n * S,
    }),
  );
  const s = summarize(r);
  t.log(fig(s));
  t.deepEqual(
    s.firstRoundAdjustmentsNs,
    { n0: 45_000_000, n1: 15_000_000, n2: -15_000_000, n3: -45_000_000 },
    'limit: first-round adjustments exactly n0 +45 ms, n1 +15 ms, n2 −15 ms, n3 −45 ms',
  );
  t.is(r.rounds[0]!.averageNs, -45n * MS, 'limit: average exactly −45 ms');
  t.true(r.rounds[0]!.quorum);
  t.deepEqual(s.masters, ['n3']);
  const before = r.samples.filter((x) => x.label === 0);
  t.true(before.length > 0 && before.every((x) => x.spreadNs === 90n * MS), 'before round 1 the clocks are 90 ms apart');
  const after = r.samples.filter((x) => x.label >= 1);
  t.true(after.length >= 3 * 5, 'samples after round 1');
  const bad = after.filter((x) => x.spreadNs !== 0n);
  t.deepEqual(bad, [], 'limit: spread exactly 0 ns at every sample after round 1');
});

// (b) ------------------------------------------------------------------------

for (const seed of [1, 2, 3]) {
  test(`(b) 16 nodes, ±1 s, ±100 ppm, 200 µs + 50 µs jitter, seed ${seed}: converged by round 3, p99 ≤ 100 µs`, (t) => {
    const r = runSimulation(
      scenario({
        nodes: 16,
        rounds: 30,
        seed,
        offsetsNs: [],
        offsetSpreadNs: 1n * S,
        master: 'n0',
        driftPpm: 100,
        delayNs: 200n * US,
        jitterNs: 50n * US,
        asymmetryNs: 0n,
        loss: 0,
        toleranceNs: 20n * MS,
      }),
    );
    const s = summarize(r);
    t.log(fig(s));
    t.true(s.roundsCompleted >= 30, `ran 30 rounds (${s.roundsCompleted})`);
    t.not(s.convergedRound, null, 'limit: converges');
    t.true(s.convergedRound! <= 3, `limit: convergedRound ≤ 3, got ${s.convergedRound}`);
    t.true(s.precisionNs.p99 <= 100_000, `limit: precision p99 ≤ 100 µs, got ${us(s.precisionNs.p99)} (p50 ${us(s.precisionNs.p50)}, max ${us(s.precisionNs.max)})`);
  });
}

// (b2) -----------------------------------------------------------------------

test('(b2) exact measurements, 8 nodes, ±100 ppm: frequencies found from the fourth quarter round, the group within 5 µs from round 5', (t) => {
  // With no jitter the only errors are drift before the frequency is known and the model's own.
  // Points placed at the answer's arrival instead of the measurement gave 15-21 µs here in rounds 3-6.
  const r = runSimulation(scenario({ nodes: 8, rounds: 20, seed: 1, offsetsNs: [], offsetSpreadNs: 1n * S, master: 'n0', driftPpm: 100, delayNs: 26n * US, jitterNs: 0n }));
  const worst = (from: number, to: number): number => Math.max(...r.samples.filter((x) => x.label >= from && x.label <= to).map((x) => Number(x.spreadNs)));
  t.log(`worst spread: rounds 1-3 ${us(worst(1, 3))}, 4 ${us(worst(4, 4))}, 5-20 ${us(worst(5, 20))}`);
  t.true(worst(1, 3) < 60_000, `limit: before the frequency is known, at most 200 ppm over a quarter second (50 µs) plus a little: ${us(worst(1, 3))}`);
  t.true(worst(5, 20) <= 5_000, `limit: ≤ 5 µs from round 5 on, got ${us(worst(5, 20))}`);
});

// (c) ------------------------------------------------------------------------

test('(c) asymmetric paths (300 µs to the master, 100 µs back): the peers sit asymmetry/2 from the master', (t) => {
  const delayNs = 200n * US;
  const asymmetryNs = 200n * US;
  const jitterNs = 10n * US;
  const r = runSimulation(
    scenario({
      nodes: 8,
      rounds: 30,
      seed: 1,
      master: 'n0',
      offsetSpreadNs: 1n * S,
      driftPpm: 100,
      delayNs,
      jitterNs,
      asymmetryNs,
      loss: 0,
      toleranceNs: 20n * MS,
    }),
  );
  const s = summarize(r);
  t.log(fig(s));
  t.not(s.convergedRound, null);
  // Theory. A request takes d + a/2, a reply d − a/2, so every peer's
  // measured offset is its true offset − a/2 (measure.ts: the error is
  // half the asymmetry). Every peer is biased alike; the master's own
  // reading is 0 and unbiased. adjustment(i) = average − (θ_i − a/2), so
  // after a round every peer reads master + average + a/2 and the master
  // reads master + average: the peers agree with each other and sit a/2
  // ahead of the master. The group spread is a/2 (= 100 µs) plus the
  // spread of the peers' residual errors:
  //   - measurement: the kept exchange errs by (j_back − j_out)/2, the
  //     jitters exponential with mean j; best of 8 by delay keeps
  //     j_out + j_back ≲ 1.5 j at p99, so one peer errs by ≲ 0.75 j and
  //     two peers differ by ≲ 1.5 j;
  //   - drift between rounds: what the frequency estimate leaves over a
  //     1 s interval; the estimate's error is (n_last − n_first)/Σt, a few
  //     ppm once a few seconds of spans are in the window, i.e. ≲ 1.5 j
  //     (15 µs) per interval.
  // Hence p99 ≤ a/2 + 3 j. And the bias must really be there: the spread
  // never falls below 0.8 · a/2 (it would, were the model not applying
  // the asymmetry, or the engine compensating it, which it cannot).
  const half = Number(asymmetryNs) / 2;
  const upper = half + 3 * Number(jitterNs);
  t.true(s.precisionNs.p99 <= upper, `limit: p99 ≤ asymmetry/2 + 3·jitter = ${us(upper)}, got ${us(s.precisionNs.p99)}`);
  t.true(s.precisionNs.p50 >= 0.8 * half, `limit: p50 ≥ 0.8·asymmetry/2 = ${us(0.8 * half)}, got ${us(s.precisionNs.p50)}`);
  const after = r.samples.filter((x) => x.label >= s.convergedRound!).map((x) => Number(x.spreadNs));
  const min = Math.min(...after);
  t.true(min >= 0.8 * half, `limit: every sample after convergence ≥ 0.8·asymmetry/2 = ${us(0.8 * half)}, got min ${us(min)}`);
  // Control: the same run with a symmetric path has no such floor.
  const sym = summarize(runSimulation({ ...r.options, asymmetryNs: 0n }));
  t.log(`symmetric control: ${fig(sym)}`);
  t.true(sym.precisionNs.p50 < 0.5 * half, `control: symmetric p50 < 0.5·asymmetry/2 = ${us(0.5 * half)}, got ${us(sym.precisionNs.p50)}`);
});

// (d) ------------------------------------------------------------------------

test('(d) 20% loss, 8 nodes, ±100 ppm, 40 rounds: converges and the last 20 rounds stay within the tolerance', (t) => {
  const toleranceNs = 20n * MS;
  const r = runSimulation(
    scenario({
      nodes: 8,
      rounds: 40,
      seed: 1,
      master: 'n0',
      offsetSpreadNs: 1n * S,
      driftPpm: 100,
      delayNs: 100n * US,
      jitterNs: 10n * US,
      asymmetryNs: 0n,
      loss: 0.2,
      toleranceNs,
    }),
  );
  const s = summarize(r);
  t.log(fig(s));
  t.true(s.roundsCompleted >= 40, `40 rounds completed despite the loss (${s.roundsCompleted})`);
  t.not(s.convergedRound, null, 'limit: convergedRound not null');
  const from = s.roundsCompleted - 20;
  const last = r.samples.filter((x) => x.label >= from);
  t.true(last.length >= 20 * 19, `samples of the last 20 rounds (${last.length})`);
  const worst = last.reduce((m, x) => (x.spreadNs > m ? x.spreadNs : m), 0n);
  t.log(`last 20 rounds: worst spread ${us(worst)}`);
  t.true(worst <= toleranceNs, `limit: every sample of the last 20 rounds within the tolerance 20 ms, worst ${us(worst)}`);
});

// (e) ------------------------------------------------------------------------

test('(e) one clock 5 s off among 8 within ±100 µs: it is brought in and moves nobody else', (t) => {
  const toleranceNs = 20n * MS;
  const offsetsNs = [0n, 50n * US, -80n * US, 30n * US, -100n * US, 5n * S, 90n * US, -20n * US];
  const r = runSimulation(
    scenario({
      nodes: 8,
      rounds: 10,
      seed: 1,
      offsetsNs,
      master: 'n0',
      driftPpm: 0,
      delayNs: 100n * US,
      jitterNs: 10n * US,
      asymmetryNs: 0n,
      loss: 0,
      toleranceNs,
    }),
  );
  const s = summarize(r);
  t.log(fig(s));
  const final = r.samples[r.samples.length - 1]!.spreadNs;
  t.true(final < 1n * MS, `limit: final spread < 1 ms, got ${us(final)}`);

  // Nobody but n5 is moved by more than the tolerance: first-round adjustments, and every correction of the run.
  for (const [name, adj] of Object.entries(s.firstRoundAdjustmentsNs)) {
    if (name === 'n5') continue;
    t.true(Math.abs(adj) <= Number(toleranceNs), `limit: ${name}'s first-round adjustment within the tolerance 20 ms, got ${us(adj)}`);
  }
  const moves = r.events.filter((e) => e.node !== 'n5' && (e.notice.kind === 'corrected' || e.notice.kind === 'coarse-step'));
  const biggest = moves.reduce((m, e) => {
    const c = (e.notice as { correctionNs: bigint }).correctionNs;
    const a = c < 0n ? -c : c;
    return a > m ? a : m;
  }, 0n);
  t.log(`largest correction of any other node over the run: ${us(biggest)}`);
  t.true(biggest <= toleranceNs, `limit: no other node corrected by more than the tolerance 20 ms, got ${us(biggest)}`);

  // n5 either counted as an outlier in round 1, or took the master's clock (coarse step) before it measured.
  const row = r.rounds[0]!.table.find((x) => x.name === 'n5');
  const steps = noticesOf(r, 'coarse-step').filter((e) => e.node === 'n5');
  const firstMeasured = noticesOf(r, 'measured').find((e) => e.node === 'n5');
  const coarseFirst = steps.length > 0 && firstMeasured !== undefined && steps[0]!.atNs <= firstMeasured.atNs;
  t.log(`n5: round-1 row ${row ? `offset ${us(row.offsetNs)}, outlier ${row.outlier}` : 'absent'}; coarse steps ${steps.map((e) => us(e.notice.correctionNs)).join(', ')}`);
  t.true((row?.outlier ?? false) || coarseFirst, 'limit: n5 is an outlier in round 1 or was coarse-stepped before measuring');
  if (coarseFirst) {
    const c = steps[0]!.notice.correctionNs;
    t.true(c < -5n * S + 1n * MS && c > -5n * S - 1n * MS, `the coarse step undoes the 5 s (within 1 ms), got ${c} ns`);
  }
});

// (f) ------------------------------------------------------------------------

test('(f) 1,000 nodes, 20 rounds: completes and converges (wall time logged)', (t) => {
  t.timeout(120_000);
  const r = runSimulation(
    scenario({
      nodes: 1000,
      rounds: 20,
      seed: 1,
      master: 'n0',
      offsetSpreadNs: 1n * S,
      driftPpm: 100,
      delayNs: 100n * US,
      jitterNs: 10n * US,
      asymmetryNs: 0n,
      loss: 0,
      toleranceNs: 20n * MS,
    }),
  );
  const s = summarize(r);
  t.log(`wallMs ${s.wallMs}`);
  t.log(fig(s));
  t.true(s.roundsCompleted >= 20, `limit: 20 rounds completed, got ${s.roundsCompleted}`);
  t.not(s.convergedRound, null, 'limit: converges within the tolerance 20 ms');
  const unsynced = r.statuses.filter((x) => !x.synced).map((x) => x.name);
  t.deepEqual(unsynced, [], 'limit: every node has applied a correction');
  const last = r.rounds[r.rounds.length - 1]!;
  t.is(last.table.length, 1000, 'the last round counts all 1,000 clocks (an ADJUST table in many datagrams)');
});

// (g) ------------------------------------------------------------------------

test('(g) elected master crashes at round 6: a new master takes over and the group stays within 1 ms', (t) => {
  const r = runSimulation(
    scenario({
      nodes: 5,
      rounds: 20,
      seed: 1,
      master: null,
      crashMasterAtRound: 6,
      offsetSpreadNs: 1n * S,
      driftPpm: 100,
      delayNs: 100n * US,
      jitterNs: 10n * US,
      asymmetryNs: 0n,
      loss: 0,
      toleranceNs: 20n * MS,
    }),
  );
  const s = summarize(r);
  t.log(fig(s), `masters ${s.masters.join(' → ')}`);
  t.true(s.roundsCompleted >= 20, `20 rounds completed (${s.roundsCompleted})`);
  t.is(s.masters.length, 2, `limit: two masters over the run (the elected one, then its successor), got ${s.masters.join(', ')}`);
  const crashed = r.events.find((e) => e.notice.kind === 'role' && e.notice.why.startsWith('crashed'));
  t.truthy(crashed, 'the simulator crashed the master');
  t.is(crashed?.node, s.masters[0], 'the crashed node is the first master');
  const epochs = [...new Set(r.rounds.map((x) => `${x.master}@${x.epoch}`))];
  t.is(epochs.length, 2);
  t.true(r.rounds[r.rounds.length - 1]!.epoch > r.rounds[0]!.epoch, 'the successor runs a newer epoch');
  t.is(r.rounds.filter((x) => x.master === s.masters[0]).length, 5, 'the first master led rounds 1–5');
  // From the first sample after a round where the clocks agree within the tolerance, every sample < 1 ms.
  const first = r.samples.findIndex((x) => x.label >= 1 && x.spreadNs <= 20n * MS);
  t.true(first >= 0, 'converged at some point');
  const after = r.samples.slice(first);
  const worst = after.reduce((m, x) => (x.spreadNs > m ? x.spreadNs : m), 0n);
  t.log(`worst spread from the first convergence on, across the failover: ${us(worst)}`);
  t.true(worst < 1n * MS, `limit: spread < 1 ms at every sample after the first convergence, worst ${us(worst)}`);
});

// (h) ------------------------------------------------------------------------

test('(i) a partition of 2 nodes out of 5 elects a master on the cut-off side; healed, one master remains and the clocks agree', (t) => {
  const r = runSimulation(
    scenario({ nodes: 5, rounds: 30, seed: 1, master: null, partition: { size: 2, fromRound: 6, toRound: 12 }, driftPpm: 50, delayNs: 100n * US, jitterNs: 10n * US }),
  );
  const s = summarize(r);
  t.log(fig(s), `masters ${s.masters.join(' → ')}`);
  // During the partition the side without the master (n0, n1) elects its own, with a newer epoch.
  const cutOff = r.rounds.filter((x) => x.master === 'n0' || x.master === 'n1');
  t.true(cutOff.length > 0, 'the cut-off side held rounds of its own');
  const newer = Math.max(...r.rounds.map((x) => x.epoch));
  t.true(newer >= 2, 'its master has a newer epoch');
  // Healed: from then on every round comes from one master, the newest epoch's.
  const last = r.rounds.slice(-10);
  t.is(new Set(last.map((x) => `${x.master}@${x.epoch}`)).size, 1, `one master over the last 10 rounds: ${last.map((x) => x.master).join(',')}`);
  t.is(last[0]!.epoch, newer, 'the newer epoch won');
  const tail = r.samples.filter((x) => x.label >= r.rounds.length - 10);
  const worst = tail.reduce((m, x) => (x.spreadNs > m ? x.spreadNs : m), 0n);
  t.true(worst <= 1n * MS, `the clocks agree within 1 ms after the heal (worst ${us(worst)})`);
});

const withoutWall = (s: SimSummary): Omit<SimSummary, 'wallMs'> => {
  const { wallMs: _wall, ...rest } = s;
  return rest;
};
/** What a run found, leaving out what the options say (the seed itself) and the wall time. */
const findings = (s: SimSummary): Omit<SimSummary, 'wallMs' | 'seed'> => {
  const { wallMs: _wall, seed: _seed, ...rest } = s;
  return rest;
};

test('(h) determinism: the same seed gives the same run; another seed another', (t) => {
  const o = scenario({
    nodes: 8,
    rounds: 12,
    seed: 42,
    master: null,
    offsetSpreadNs: 1n * S,
    driftPpm: 100,
    delayNs: 150n * US,
    jitterNs: 30n * US,
    asymmetryNs: 20n * US,
    loss: 0.1,
    toleranceNs: 20n * MS,
  });
  const a = runSimulation(o);
  const b = runSimulation({ ...o });
  t.deepEqual(withoutWall(summarize(a)), withoutWall(summarize(b)), 'limit: identical summaries (wallMs aside) for the same seed');
  t.deepEqual(a.samples, b.samples, 'identical ground truth');
  t.deepEqual(a.events, b.events, 'identical events');
  t.deepEqual(a.startOffsetsNs, b.startOffsetsNs);
  const c = runSimulation({ ...o, seed: 43 });
  t.notDeepEqual(findings(summarize(a)), findings(summarize(c)), 'limit: a different seed gives a different summary (seed field aside)');
  t.notDeepEqual(summarize(a).precisionNs, summarize(c).precisionNs, 'different precision figures');
  t.notDeepEqual(a.startOffsetsNs, c.startOffsetsNs, 'different starting clocks');
  t.notDeepEqual(
    a.samples.map((x) => x.spreadNs),
    c.samples.map((x) => x.spreadNs),
    'a different ground truth',
  );
});

// ---------------------------------------------------------------- faults (--fault)

const FAULT_BASE = { nodes: 8, rounds: 60, driftPpm: 20, delayNs: 50n * US, jitterNs: 20n * US } as const;

for (const seed of [1, 2, 3]) {
  test(`(j) faulty clocks: one or two runaway oscillators (2000 ppm) among 8 move neither the good clocks' precision nor their rate, and are named within 5 rounds (seed ${seed})`, (t) => {
    const base = summarize(runSimulation(scenario({ ...FAULT_BASE, seed })));
    const g0 = base.good;
    for (const faults of [
      [{ node: 'n3', kind: 'drift' as const, ppm: 2000 }],
      [{ node: 'n3', kind: 'drift' as const, ppm: 2000 }, { node: 'n5', kind: 'drift' as const, ppm: -2000 }],
    ]) {
      const s = summarize(runSimulation(scenario({ ...FAULT_BASE, seed, faults })));
      const g = s.good;
      const without = summarize(runSimulation(scenario({ ...FAULT_BASE, seed, faults: faults.map((f) => ({ ...f, kind: 'mute' as const, round: 1 })) })));
      t.log(`${s.faults.join(' ')}: good p99 ${us(g.precisionSteadyNs.p99)} (all clocks, no fault: ${us(g0.precisionSteadyNs.p99)}), rate ${g.rateErrorPpm?.toFixed(2)} ppm from the good mean drift; named ${JSON.stringify(s.flagged)}`);
      // The baseline is the same group with the faulty nodes silent from the start (same seeds, same drifts for the rest).
      t.true(g.precisionSteadyNs.p99 <= 1.5 * without.good.precisionSteadyNs.p99 + 1_000, `good p99 ${us(g.precisionSteadyNs.p99)} within 1.5x of ${us(without.good.precisionSteadyNs.p99)} without them`);
      t.true(Math.abs(g.rateErrorPpm!) < 5, `the good clocks' common rate is within 5 ppm of their mean drift: ${g.rateErrorPpm?.toFixed(2)} ppm`);
      for (const f of faults) {
        const named = s.flagged.find((x) => x.node === f.node && x.reason !== null);
        t.truthy(named, `${f.node} is named faulty`);
        t.true(named!.round <= 5, `${f.node} named in round ${named?.round}`);
      }
      t.deepEqual(s.flagged.filter((x) => !faults.some((f) => f.node === x.node)), [], 'no good clock is named');
    }
  });
}

test('(k) two liars (3 ms in every REPORT) among 7: left out from round 3 on, named, and the 5 honest clocks hold as without them', (t) => {
  const o = { ...FAULT_BASE, nodes: 7, seed: 4 };
  const faults = [{ node: 'n3', kind: 'lie' as const, ns: 3n * MS }, { node: 'n5', kind: 'lie' as const, ns: -3n * MS }];
  const s = summarize(runSimulation(scenario({ ...o, faults })));
  const without = summarize(runSimulation(scenario({ ...o, faults: faults.map((f) => ({ node: f.node, kind: 'mute' as const, round: 1 })) })));
  t.log(`honest p99 ${us(s.good.precisionSteadyNs.p99)} (without the liars ${us(without.good.precisionSteadyNs.p99)}), rate ${s.good.rateErrorPpm?.toFixed(2)} ppm; named ${JSON.stringify(s.flagged)}`);
  t.true(s.good.precisionSteadyNs.p99 <= 1.5 * without.good.precisionSteadyNs.p99 + 1_000);
  t.true(Math.abs(s.good.rateErrorPpm!) < 5);
  for (const n of ['n3', 'n5']) t.true(s.flagged.some((f) => f.node === n && f.reason === 'outlier' && f.round <= 5), `${n} named an outlier by round 5`);
});

test('(l) a clock stepped 5 ms from outside at round 20 is left out and named; the others do not move by more than their precision; it recovers', (t) => {
  const o = scenario({ ...FAULT_BASE, seed: 5, faults: [{ node: 'n3', kind: 'jump', ns: 5n * MS, round: 20 }] });
  const r = runSimulation(o);
  const s = summarize(r);
  const p99 = s.good.precisionSteadyNs.p99;
  // The good clocks' mean against true time, detrended by its slope before the jump: it must not move at the jump.
  const before = r.samples.filter((x) => x.label >= 14 && x.label < 20);
  const after = r.samples.filter((x) => x.label >= 20 && x.label < 26);
  const slope = (before.at(-1)!.goodMeanOffsetNs - before[0]!.goodMeanOffsetNs) / Number(before.at(-1)!.atNs - before[0]!.atNs);
  const moved = Math.max(...after.map((x) => Math.abs(x.goodMeanOffsetNs - (before.at(-1)!.goodMeanOffsetNs + slope * Number(x.atNs - before.at(-1)!.atNs)))));
  t.log(`named ${JSON.stringify(s.flagged)}; the good clocks' mean moved ${us(moved)} against their trend after the jump; their p99 ${us(p99)}`);
  t.true(moved <= p99, `moved ${us(moved)}, precision ${us(p99)}`);
  t.true(s.flagged.some((f) => f.node === 'n3' && f.reason === 'outlier' && f.round >= 20 && f.round <= 24));
  t.true(s.flagged.some((f) => f.node === 'n3' && f.reason === null), 'n3 recovers once it has slewed back');
  t.true(s.good.precisionSteadyNs.p99 < 50_000);
});

test('(m) a member muted at round 10 leaves the table; the rest hold; JSON has the fault fields', (t) => {
  const s = summarize(runSimulation(scenario({ ...FAULT_BASE, rounds: 30, seed: 6, faults: [{ node: 'n3', kind: 'mute', round: 10 }] })));
  t.deepEqual(s.faults, ['n3:mute@10']);
  t.deepEqual(s.good.nodes, ['n0', 'n1', 'n2', 'n4', 'n5', 'n6', 'n7']);
  t.deepEqual(s.flagged, [], 'silence is not a fault: the member just leaves');
  t.true(s.good.precisionSteadyNs.p99 < 50_000);
  const json = JSON.parse(JSON.stringify(s)) as SimSummary;
  for (const k of ['ratePpm', 'meanDriftPpm', 'rateErrorPpm', 'precisionSteadyNs', 'steadyFromRound']) t.true(k in json.good, k);
});

test('(n) without faults the common rate follows the members\' mean drift (the frequency loop no longer walks)', (t) => {
  for (const seed of [7, 8]) {
    const s = summarize(runSimulation(scenario({ nodes: 8, rounds: 120, driftPpm: 100, delayNs: 50n * US, jitterNs: 30n * US, seed })));
    t.log(`seed ${seed}: rate ${s.good.ratePpm?.toFixed(2)} ppm, mean drift ${s.good.meanDriftPpm.toFixed(2)} ppm`);
    t.true(Math.abs(s.good.rateErrorPpm!) < 1, `${s.good.rateErrorPpm?.toFixed(3)} ppm apart`);
  }
});

test('(o) passing over ADJUST parts without the receiver\'s entry changes nothing: the run is the same as when every part reaches every node', (t) => {
  // 200 and 240 nodes: tables of 3 and 4 parts. Loss and a muted node leave peers without a measurement (every part
  // dropped, with a notice), a partition leaves a side without its master, a jump disturbs a clock between parts.
  const cases: SimOptions[] = [
    scenario({ nodes: 200, rounds: 16, seed: 5, driftPpm: 50, jitterNs: 40n * US, loss: 0.05, faults: [{ node: 'n7', kind: 'mute', round: 6 }, { node: 'n9', kind: 'jump', ns: 5n * MS, round: 8 }] }),
    scenario({ nodes: 240, rounds: 14, seed: 6, asymmetryNs: 20n * US, partition: { size: 90, fromRound: 4, toRound: 9 } }),
  ];
  for (const o of cases) {
    const a = runSimulation(o);
    const b = runSimulation(o, { deliverAll: true });
    t.deepEqual(a.rounds, b.rounds, `${o.nodes} nodes: the same rounds`);
    t.deepEqual(a.samples, b.samples, `${o.nodes} nodes: the same ground truth`);
    t.deepEqual(a.events, b.events, `${o.nodes} nodes: the same events`);
    t.deepEqual(a.flags, b.flags, `${o.nodes} nodes: the same flags`);
    t.deepEqual(a.statuses, b.statuses, `${o.nodes} nodes: the same node status (drop counters included)`);
  }
  const first = runSimulation(cases[0]!);
  t.true(first.events.some((e) => e.notice.kind === 'dropped' && e.notice.reason === 'no-measurement'), 'the first case has parts that were dropped, not passed over');
});
