/**
 * The figures the benchmark and the simulator report: percentiles, the
 * convergence rounds, and where the steady state starts (pure).
 */
import test from 'ava';
import { convergedRound, percentiles, precisionAfter, steadyFrom, type LabelledSample } from '../lib/sim/stats.js';

const US = 1_000n;
const run = (spreadsUs: Array<[label: number, us: number]>): LabelledSample[] => spreadsUs.map(([label, us]) => ({ label, spreadNs: BigInt(us) * US }));

test('percentiles: nearest rank; zeros for no values', (t) => {
  t.deepEqual(percentiles([]), { p50: 0, p99: 0, max: 0 });
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  t.deepEqual(percentiles(hundred), { p50: 50, p99: 99, max: 100 });
  t.deepEqual(percentiles([7]), { p50: 7, p99: 7, max: 7 });
});

test('convergedRound: the round after which every sample stays within the bound; null if the end is outside', (t) => {
  const s = run([[0, 900], [1, 300], [2, 80], [3, 120], [4, 60], [5, 40]]);
  t.is(convergedRound(s, 100n * US), 4, 'round 3 still had 120 µs');
  t.is(convergedRound(s, 1000n * US), 1, 'samples before round 1 do not count');
  t.is(convergedRound(run([[1, 50], [2, 150]]), 100n * US), null);
  t.is(convergedRound([], 100n * US), null);
});

test('steadyFrom: the 100 µs round, but not before the fast start is over', (t) => {
  const early = run([[1, 300], [2, 80], [5, 60], [12, 20], [13, 10], [20, 12]]);
  t.is(steadyFrom(early, 12), 13, 'within 100 µs from round 2, steady from round 13');
  const late = run([[1, 300], [14, 150], [15, 20], [30, 10]]);
  t.is(steadyFrom(late, 12), 15, 'a group that came within 100 µs after the fast start: from that round');
  t.is(steadyFrom(run([[1, 30], [40, 200]]), 12), null, 'never within 100 µs at the end');
  t.is(steadyFrom(run([[1, 300], [2, 30], [9, 20]]), 12), null, 'a run that ended in the fast start has no steady state');
  // The steady state leaves the acquisition out, the figure from convergence keeps it.
  t.is(precisionAfter(early, steadyFrom(early, 12)).max, 12_000);
  t.is(precisionAfter(early, convergedRound(early, 100n * US)).max, 80_000);
  t.deepEqual(precisionAfter(early, null), { p50: 0, p99: 0, max: 0 });
});
