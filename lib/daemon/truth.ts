/**
 * Ground truth across local processes (pure). Every process on one machine
 * shares CLOCK_MONOTONIC, so readings of (monotonic, group) taken by each
 * daemon at slightly different instants can be brought to one monotonic
 * instant exactly, up to the clock's rate over the gap (ppm of a few ms:
 * well under a microsecond).
 */

export interface ClockReading {
  monotonicNs: bigint;
  groupTimeNs: bigint;
  /** The clock's rate error against monotonic time (drift plus frequency correction), ppm. */
  rateErrorPpm: number;
  /** A slew in progress: what is left of it (signed, ns) and its rate (ppm). */
  pendingNs?: bigint;
  maxSlewPpm?: number;
}

/** Each group clock at monotonic instant atNs (forward or backward from its reading). */
export function groupTimesAt(readings: readonly ClockReading[], atNs: bigint): bigint[] {
  return readings.map((r) => {
    const gap = Number(atNs - r.monotonicNs);
    let slewed = 0;
    if (r.pendingNs && r.maxSlewPpm && gap > 0) {
      const left = Number(r.pendingNs);
      slewed = Math.sign(left) * Math.min(Math.abs(left), (gap * r.maxSlewPpm) / 1e6);
    }
    return r.groupTimeNs + BigInt(gap) + BigInt(Math.round((gap * r.rateErrorPpm) / 1e6 + slewed));
  });
}

/** The largest disagreement between any two clocks, brought to the latest reading's instant. */
export function spreadNs(readings: readonly ClockReading[]): bigint {
  if (readings.length < 2) return 0n;
  const at = readings.reduce((m, r) => (r.monotonicNs > m ? r.monotonicNs : m), readings[0]!.monotonicNs);
  const times = groupTimesAt(readings, at);
  let min = times[0]!;
  let max = times[0]!;
  for (const t of times) {
    if (t < min) min = t;
    if (t > max) max = t;
  }
  return max - min;
}

/** The reading a status --json object carries. */
export function readingOf(s: {
  monotonicNs: string;
  groupTimeNs: string;
  frequencyPpm: number;
  clock: { simDriftPpm: number | null; pendingNs: string; maxSlewPpm: number };
}): ClockReading {
  return {
    monotonicNs: BigInt(s.monotonicNs),
    groupTimeNs: BigInt(s.groupTimeNs),
    rateErrorPpm: (s.clock.simDriftPpm ?? 0) + s.frequencyPpm,
    pendingNs: BigInt(s.clock.pendingNs),
    maxSlewPpm: s.clock.maxSlewPpm,
  };
}
