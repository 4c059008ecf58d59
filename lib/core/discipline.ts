/**
 * Frequency tracking from successive corrections (pure).
 *
 * Let d be this clock's rate error against the group (ppm, positive: fast)
 * and f the frequency correction in force. Over a span t between two
 * corrections the clock gathers an error (d + f)·t, which the next round
 * corrects: c = -(d + f)·t + (n_k - n_{k-1}), where n_k is the measurement
 * error of round k. So each span gives an estimate of d, and over a window
 * of spans
 *
 *     d ≈ -Σ(c_k + f_k·t_k) / Σ t_k
 *
 * in which the measurement errors telescope: the estimate's error is
 * (n_last - n_first) / Σt, shrinking as the window grows. The loop then
 * sets f = -d. The first span already gives a full estimate (no gain to wait
 * for), the later ones average noise out.
 *
 * A step breaks the chain: the correction after a step still carries the
 * error of the stepped measurement, not drift, so the window restarts.
 */

export interface DisciplineOptions {
  /** How many spans the estimate averages over. */
  window: number;
  /** Largest frequency correction the loop may ask for, ppm. */
  maxFrequencyPpm: number;
  /** Spans longer than this are not used (a gap: the node missed rounds). */
  maxSpanNs: bigint;
}

export const DEFAULT_DISCIPLINE: DisciplineOptions = { window: 16, maxFrequencyPpm: 500, maxSpanNs: 60_000_000_000n };

interface Span {
  spanNs: number;
  /** c_k + f_k·t_k, ns: what the correction would have been with no frequency correction. */
  rawNs: number;
}

export interface DisciplineState {
  frequencyPpm: number;
  spans: readonly Span[];
  /** Monotonic time of the last correction usable as a starting point, or null after a step. */
  lastMonoNs: bigint | null;
}

export function initialDiscipline(frequencyPpm = 0): DisciplineState {
  return { frequencyPpm, spans: [], lastMonoNs: null };
}

/**
 * The state after a correction of correctionNs at monotonic time monoNs.
 * stepped: the correction was a step, which restarts the chain.
 */
export function discipline(
  state: DisciplineState,
  correctionNs: bigint,
  monoNs: bigint,
  stepped: boolean,
  opts: DisciplineOptions = DEFAULT_DISCIPLINE,
): DisciplineState {
  if (stepped) return { ...state, spans: [], lastMonoNs: null };
  const last = state.lastMonoNs;
  if (last === null || monoNs <= last || monoNs - last > opts.maxSpanNs) {
    return { ...state, lastMonoNs: monoNs };
  }
  const spanNs = Number(monoNs - last);
  const rawNs = Number(correctionNs) + (state.frequencyPpm * spanNs) / 1e6;
  const spans = [...state.spans, { spanNs, rawNs }].slice(-opts.window);
  const totalRaw = spans.reduce((s, x) => s + x.rawNs, 0);
  const totalSpan = spans.reduce((s, x) => s + x.spanNs, 0);
  const max = opts.maxFrequencyPpm;
  const frequencyPpm = Math.min(max, Math.max(-max, (totalRaw / totalSpan) * 1e6));
  return { frequencyPpm, spans, lastMonoNs: monoNs };
}
