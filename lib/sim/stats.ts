/**
 * Figures of a run: when the group converged and how closely it held (pure).
 */

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of a list of numbers (0s for an empty list). */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p99: 0, max: 0 };
  const s = [...values].sort((a, b) => a - b);
  const rank = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { p50: rank(0.5), p99: rank(0.99), max: s[s.length - 1]! };
}

export interface LabelledSample {
  /** Rounds completed when the sample was taken. */
  label: number;
  spreadNs: bigint;
}

/**
 * The first round k >= 1 such that every sample taken after round k was
 * completed shows all clocks within toleranceNs of each other; null if the
 * last samples still disagree, or if no round completed.
 */
export function convergedRound(samples: readonly LabelledSample[], toleranceNs: bigint): number | null {
  const after = samples.filter((s) => s.label >= 1);
  if (after.length === 0) return null;
  let lastBad = 0;
  for (const s of after) if (s.spreadNs > toleranceNs) lastBad = Math.max(lastBad, s.label);
  const last = after[after.length - 1]!;
  if (last.spreadNs > toleranceNs) return null;
  return Math.max(1, lastBad + 1);
}

/** Precision after convergence: percentiles of the spread over samples labelled >= fromRound. */
export function precisionAfter(samples: readonly LabelledSample[], fromRound: number | null): Percentiles {
  if (fromRound === null) return percentiles([]);
  return percentiles(samples.filter((s) => s.label >= fromRound).map((s) => Number(s.spreadNs)));
}

/**
 * The steady state's first round, as the benchmark and the simulator
 * report precision: from the round after which the group stays within
 * 100 µs, but not before the fast start (frequency acquisition, rounds at a
 * fraction of the interval) is over. Null when the group never came within
 * 100 µs, or the run ended before that round.
 */
export function steadyFrom(samples: readonly LabelledSample[], fastStartRounds: number): number | null {
  const us100 = convergedRound(samples, 100_000n);
  if (us100 === null) return null;
  const from = Math.max(us100, fastStartRounds + 1);
  // A run that ended before the steady state has none to report.
  return samples.some((s) => s.label >= from) ? from : null;
}

/** Least-squares slope of y (ns) against t (ns), in ppm (0 for fewer than two distinct t). */
export function slopePpm(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mt = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, y] of points) {
    num += (t - mt) * (y - my);
    den += (t - mt) ** 2;
  }
  return den > 0 ? (num / den) * 1e6 : 0;
}
