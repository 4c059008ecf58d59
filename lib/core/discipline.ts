/**
 * Frequency tracking from successive measurements (pure).
 *
 * Let d be this clock's rate error against the group (ppm, positive: fast)
 * and f the frequency correction in force. Each round measures the clock
 * at some monotonic instant m_k and answers with an adjustment A_k: what
 * the clock should have had added at that instant to agree with the group.
 * Adding back everything that was corrected up to m_k (steps and slews run,
 * u(m_k), and what the frequency correction did, F(m_k)) gives the raw
 * phase the clock would have run up on its own:
 *
 *     X_k = u(m_k) + F(m_k) + A_k = -d·(m_k - m_0) + (n_k - n_0)
 *
 * with n_k the measurement's error. X against m is a line of slope -d. A
 * least-squares fit over the last WINDOW points after the chain's anchor
 * finds the slope, and its intercept absorbs n_0 (every point after the
 * anchor carries it; the anchor itself does not, so it stays out of the
 * fit). The loop sets f = slope, so that the clock runs at the group's rate.
 *
 * The points are placed at the instant of measurement, not the instant the
 * answer arrives: between the two lie part of a collection window whose
 * length changes during the fast start (a quarter, half, then all of the
 * interval), and a clock 100 ppm off runs up 100 ppm of
 * every change in that gap as a false slope. F(m_k) is integrated piece by
 * piece, for the frequency changes at the instants answers are applied.
 *
 * The fit is weighted: each point by 1 / (noiseFloor² + e²), where e is the
 * measurement's error bound from its round trip: half its excess over the
 * least round trip in the window, as in NTP. (The weights are worked out at
 * every fit, so a point is judged against round trips measured after it.)
 * The first rounds of freshly started processes measure with round trips
 * several times the usual and errors of hundreds of µs; unweighted, four
 * such points in the dense fast start would hold the slope off for the
 * whole window.
 *
 * Taking each weight as the point's inverse variance, the fit also gives
 * the slope's standard error, and the frequency follows the fit only once
 * that is at most maxErrorPpm. Two points a quarter second apart, each
 * good to 10 µs, know the slope to 57 ppm: no better than not correcting
 * at all a clock whose drift is within ±100 ppm, and a first burst from
 * a cold process makes it hundreds of ppm. Three such points (the fourth
 * correction, counting the anchor) know it to 28 ppm, four to 18 ppm.
 *
 * A step breaks the chain: a stepped clock's phase history no longer
 * describes its rate, so the fit starts again from the next correction.
 *
 * The group's rate. The fit measures each clock against the group's
 * reference (the average), so its slope is (rate of the reference) minus
 * (this clock's own rate). If every node simply ran at its slope, the
 * reference's rate, the mean of all the clocks' corrected rates, would be
 * preserved only on average: each round's estimation noise is added to it
 * and never taken out, so the whole group walks away from the mean of its
 * members' own rates (2-36 ppm in a minute was measured). Relative
 * measurements cannot see that walk. So each node reports its slope
 * (estimatePpm), the master sends back the mean over the clocks it kept
 * (commonPpm), and each node runs at estimate − common: the kept clocks'
 * frequency corrections then sum to zero, and the group runs at the mean
 * rate of its good clocks, whatever the estimates' noise. The slope itself
 * never sees commonPpm: the fit's points back out every correction made,
 * frequency included.
 */

export interface DisciplineOptions {
  /** How many points the fit uses. */
  window: number;
  /** Largest frequency correction the loop may ask for, ppm. */
  maxFrequencyPpm: number;
  /** Spans longer than this restart the chain (a gap: the node missed rounds). */
  maxSpanNs: bigint;
  /** The error every measurement has whatever its round trip (ns): the weights' floor. */
  noiseFloorNs: number;
  /** The frequency follows the fit only once the fit's standard error is this small (ppm). */
  maxErrorPpm: number;
}

export const DEFAULT_DISCIPLINE: DisciplineOptions = {
  window: 16,
  maxFrequencyPpm: 500,
  maxSpanNs: 60_000_000_000n,
  noiseFloorNs: 10_000,
  maxErrorPpm: 30,
};

interface Point {
  /** ns since the chain's first correction. */
  t: number;
  /** Raw phase run up since then, ns. */
  x: number;
  /** The measurement's round trip, ns (0: unknown, as good as any). */
  d?: number;
  /** Weight in the fit (1 when not given). */
  w?: number;
}

export interface DisciplineState {
  /** The frequency correction in force: estimatePpm − the group's common part, clamped to ±maxFrequencyPpm. */
  frequencyPpm: number;
  /** The fit's last trusted slope (ppm: what this clock must add to run at the group's rate), or null before one. */
  estimatePpm: number | null;
  /** The most that slope can be off, ppm (worstSlopeErrorPpm; null before one): the error bound's drift (bound.ts). */
  errorPpm?: number | null;
  /** The estimate minus the common part lay beyond ±maxFrequencyPpm at the last correction: the clock cannot follow. */
  atLimit: boolean;
  /** Monotonic time of the chain's first correction, or null: no chain (at start, after a step). */
  startMonoNs: bigint | null;
  lastMonoNs: bigint | null;
  /** Raw phase (applied at measurement plus the adjustment) at the chain's start, ns. */
  baseNs: bigint;
  /** What the frequency correction has done from the chain's start to changedMonoNs, ns. */
  frequencyPhaseNs: number;
  /** When frequencyPpm last took effect (the last answer applied), monotonic ns. */
  changedMonoNs: bigint | null;
  points: readonly Point[];
}

export function initialDiscipline(frequencyPpm = 0): DisciplineState {
  return { frequencyPpm, estimatePpm: null, atLimit: false, startMonoNs: null, lastMonoNs: null, baseNs: 0n, frequencyPhaseNs: 0, changedMonoNs: null, points: [] };
}

/** One answered measurement as the discipline sees it. */
export interface CorrectionEvent {
  /** The round's adjustment for this clock, ns. */
  adjustmentNs: bigint;
  /** The clock's appliedNs() at the measurement. */
  appliedAtMeasureNs: bigint;
  /** When the measurement was taken, and when its answer is applied (monotonic ns). */
  measureMonoNs: bigint;
  applyMonoNs: bigint;
  /** The correction is a step. */
  stepped: boolean;
  /** The measurement's round trip, ns (0 or absent: unknown). */
  delayNs?: number;
  /** The group's common frequency (ADJUST commonPpb / 1000), subtracted from the estimate; absent: 0. */
  commonPpm?: number;
}

/** Each point's weight 1 / (floor² + e²) (ns⁻²), e being half of its round trip's excess over the window's least. */
export function weighted(points: readonly Point[], noiseFloorNs: number): Point[] {
  const known = points.filter((p) => (p.d ?? 0) > 0);
  const least = known.length ? Math.min(...known.map((p) => p.d!)) : 0;
  const f2 = noiseFloorNs ** 2;
  return points.map((p) => {
    const e = (p.d ?? 0) > 0 ? (p.d! - least) / 2 : 0;
    return { ...p, w: 1 / (f2 + e * e) };
  });
}

/**
 * Weighted least-squares slope of x against t, and its standard error
 * (ppm) taking each weight as 1 / the point's variance; null for fewer than
 * 2 points.
 */
export function fit(points: readonly Point[]): { slope: number; sePpm: number } | null {
  if (points.length < 2) return null;
  let sw = 0;
  let st = 0;
  let sx = 0;
  for (const p of points) {
    const w = p.w ?? 1;
    sw += w;
    st += w * p.t;
    sx += w * p.x;
  }
  const mt = st / sw;
  const mx = sx / sw;
  let num = 0;
  let den = 0;
  for (const p of points) {
    const w = p.w ?? 1;
    num += w * (p.t - mt) * (p.x - mx);
    den += w * (p.t - mt) ** 2;
  }
  return den > 0 ? { slope: num / den, sePpm: 1e6 / Math.sqrt(den) } : null;
}

/**
 * The most the fit's slope can be off (ppm) when each point's error is at
 * most half its round trip, whatever the errors' signs and correlation
 * (carried samples are not independent): Σ w·|t − t̄|·d/2 / Σ w·(t − t̄)²,
 * the errors all pushing the slope one way. The error bound's drift
 * (bound.ts); null for fewer than 2 points.
 */
export function worstSlopeErrorPpm(points: readonly Point[]): number | null {
  if (points.length < 2) return null;
  let sw = 0;
  let st = 0;
  for (const p of points) {
    sw += p.w ?? 1;
    st += (p.w ?? 1) * p.t;
  }
  const mt = st / sw;
  let num = 0;
  let den = 0;
  for (const p of points) {
    const w = p.w ?? 1;
    num += w * Math.abs(p.t - mt) * ((p.d ?? 0) / 2);
    den += w * (p.t - mt) ** 2;
  }
  return den > 0 ? (1e6 * num) / den : null;
}

/** The state after a correction. */
export function discipline(state: DisciplineState, ev: CorrectionEvent, opts: DisciplineOptions = DEFAULT_DISCIPLINE): DisciplineState {
  const { measureMonoNs: m, applyMonoNs: a } = ev;
  const phase = ev.appliedAtMeasureNs + ev.adjustmentNs;
  if (ev.stepped) return { ...state, startMonoNs: null, lastMonoNs: null, changedMonoNs: null, points: [] };
  const last = state.lastMonoNs;
  const start = state.startMonoNs;
  const changed = state.changedMonoNs;
  if (last === null || start === null || changed === null || m <= last || m - last > opts.maxSpanNs || a < m) {
    // The anchor is not a point of the fit: it alone lacks the error n_0 its correction left, which every later point shares.
    const frequencyPhaseNs = (state.frequencyPpm * Number(a - m)) / 1e6;
    const steered = steer(state.estimatePpm, ev.commonPpm ?? 0, state, opts);
    return { ...state, ...steered, startMonoNs: m, lastMonoNs: m, baseNs: phase, frequencyPhaseNs, changedMonoNs: a, points: [] };
  }
  const atMeasure = state.frequencyPhaseNs + (state.frequencyPpm * Number(m - changed)) / 1e6;
  const x = Number(phase - state.baseNs) + atMeasure;
  const points = [...state.points, { t: Number(m - start), x, d: ev.delayNs ?? 0 }].slice(-opts.window);
  const w = weighted(points, opts.noiseFloorNs);
  const f = fit(w);
  const trusted = f !== null && f.sePpm <= opts.maxErrorPpm;
  const estimatePpm = trusted ? f.slope * 1e6 : state.estimatePpm;
  const errorPpm = trusted ? worstSlopeErrorPpm(w) : (state.errorPpm ?? null);
  const { frequencyPpm, atLimit } = steer(estimatePpm, ev.commonPpm ?? 0, state, opts);
  // The frequency in force ran on to the answer; the new one starts there.
  const frequencyPhaseNs = state.frequencyPhaseNs + (state.frequencyPpm * Number(a - changed)) / 1e6;
  return { ...state, frequencyPpm, estimatePpm, errorPpm, atLimit, lastMonoNs: m, frequencyPhaseNs, changedMonoNs: a, points };
}

/** The frequency to run at: the estimate less the group's common part, within ±maxFrequencyPpm; unchanged without an estimate. */
function steer(estimatePpm: number | null, commonPpm: number, state: DisciplineState, opts: DisciplineOptions): { frequencyPpm: number; atLimit: boolean } {
  if (estimatePpm === null) return { frequencyPpm: state.frequencyPpm, atLimit: false };
  const max = opts.maxFrequencyPpm;
  const want = estimatePpm - commonPpm;
  return { frequencyPpm: Math.min(max, Math.max(-max, want)), atLimit: Math.abs(want) > max };
}
