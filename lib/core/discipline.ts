/**
 * Frequency tracking from successive corrections (pure).
 *
 * Let d be this clock's rate error against the group (ppm, positive: fast)
 * and f the frequency correction in force. Over a span t between two
 * corrections the clock gathers (d + f)·t of error, which the next round
 * corrects, so c_k = -(d + f_k)·t_k + (n_k - n_{k-1}), with n_k the error
 * left by round k's measurement. Adding back what the frequency correction
 * did gives the raw phase the clock would have run up on its own:
 *
 *     X_k = Σ_{j<=k} (c_j + f_j·t_j) = -d·(T_k - T_0) + (n_k - n_0)
 *
 * X against time T is a line of slope -d. A least-squares fit over the last
 * WINDOW points after the chain's anchor finds the slope, and its intercept
 * absorbs n_0, the error left by the correction the chain started from
 * (every point after the anchor carries it; the anchor itself does not, so
 * it stays out of the fit). (A plain sum over the
 * window, Σ(c + f·t)/Σt, carries that error divided by the time elapsed,
 * which after a poor first correction is hundreds of ppm for seconds.)
 * The loop sets f = slope, so that the clock runs at the group's rate.
 *
 * The phase counts what was applied, not what was decided: a correction
 * replaces the unrun rest of the previous slew, so X_k is taken as the
 * correction applied so far (the clock's appliedNs) plus the new one, plus
 * what the frequency correction itself has done.
 *
 * A step breaks the chain: a stepped clock's phase history no longer
 * describes its rate, so the fit starts again from the next correction.
 */

export interface DisciplineOptions {
  /** How many points the fit uses. */
  window: number;
  /** Largest frequency correction the loop may ask for, ppm. */
  maxFrequencyPpm: number;
  /** Spans longer than this restart the chain (a gap: the node missed rounds). */
  maxSpanNs: bigint;
}

export const DEFAULT_DISCIPLINE: DisciplineOptions = { window: 16, maxFrequencyPpm: 500, maxSpanNs: 60_000_000_000n };

interface Point {
  /** ns since the chain's first correction. */
  t: number;
  /** Raw phase run up since then, ns. */
  x: number;
}

export interface DisciplineState {
  frequencyPpm: number;
  /** Monotonic time of the chain's first correction, or null: no chain (at start, after a step). */
  startMonoNs: bigint | null;
  lastMonoNs: bigint | null;
  /** Applied correction plus the correction then made, at the chain's start, ns. */
  baseNs: bigint;
  /** What the frequency correction has done since the chain's start, ns. */
  frequencyPhaseNs: number;
  points: readonly Point[];
}

export function initialDiscipline(frequencyPpm = 0): DisciplineState {
  return { frequencyPpm, startMonoNs: null, lastMonoNs: null, baseNs: 0n, frequencyPhaseNs: 0, points: [] };
}

/** One correction as the discipline sees it. */
export interface CorrectionEvent {
  correctionNs: bigint;
  /** The clock's appliedNs() just before this correction. */
  appliedNs: bigint;
  monoNs: bigint;
  /** The correction is a step. */
  stepped: boolean;
}

/** Least-squares slope of x against t; null for fewer than 2 points. */
export function slope(points: readonly Point[]): number | null {
  const n = points.length;
  if (n < 2) return null;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.x - mx);
    den += (p.t - mt) ** 2;
  }
  return den > 0 ? num / den : null;
}

/** The state after a correction. */
export function discipline(state: DisciplineState, ev: CorrectionEvent, opts: DisciplineOptions = DEFAULT_DISCIPLINE): DisciplineState {
  const { correctionNs, appliedNs, monoNs } = ev;
  if (ev.stepped) return { ...state, startMonoNs: null, lastMonoNs: null, points: [] };
  const last = state.lastMonoNs;
  const start = state.startMonoNs;
  if (last === null || start === null || monoNs <= last || monoNs - last > opts.maxSpanNs) {
    // The anchor is not a point of the fit: it alone lacks the error n_0 its correction left, which every later point shares.
    return { ...state, startMonoNs: monoNs, lastMonoNs: monoNs, baseNs: appliedNs + correctionNs, frequencyPhaseNs: 0, points: [] };
  }
  const frequencyPhaseNs = state.frequencyPhaseNs + (state.frequencyPpm * Number(monoNs - last)) / 1e6;
  const x = Number(appliedNs + correctionNs - state.baseNs) + frequencyPhaseNs;
  const points = [...state.points, { t: Number(monoNs - start), x }].slice(-opts.window);
  const s = slope(points);
  const max = opts.maxFrequencyPpm;
  const frequencyPpm = s === null ? state.frequencyPpm : Math.min(max, Math.max(-max, s * 1e6));
  return { ...state, frequencyPpm, lastMonoNs: monoNs, frequencyPhaseNs, points };
}
