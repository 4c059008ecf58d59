/**
 * The four-timestamp exchange and the best of a burst (pure).
 *
 *   t1  peer sends the request        (peer clock)
 *   T2  master receives it            (master clock)
 *   T3  master sends the reply        (master clock)
 *   t4  peer receives the reply       (peer clock)
 *
 *   delay  = (t4 - t1) - (T3 - T2)              round trip on the wire, >= 0 ideally
 *   offset = ((t1 - T2) + (t4 - T3)) / 2        peer clock minus master clock
 *
 * Positive offset: the peer is ahead of the master. With a symmetric path
 * the error of offset is at most half the asymmetry of the path; in any case
 * it is at most delay / 2.
 */

export interface Sample {
  offsetNs: bigint;
  delayNs: bigint;
}

export function exchange(t1: bigint, T2: bigint, T3: bigint, t4: bigint): Sample {
  const delayNs = t4 - t1 - (T3 - T2);
  // Halve with rounding toward negative infinity so that the sign never flips a result of -1 to 0.
  const sum = t1 - T2 + (t4 - T3);
  const offsetNs = sum >= 0n ? sum / 2n : -((-sum + 1n) / 2n);
  return { offsetNs, delayNs };
}

/**
 * The sample of least delay: the one least disturbed by queueing, whose
 * offset error bound (delay / 2) is the smallest. Samples with a negative
 * delay (a clock stepped mid-exchange) are not trusted. Undefined if none.
 */
export function bestOfBurst(samples: readonly Sample[]): Sample | undefined {
  let best: Sample | undefined;
  for (const s of samples) {
    if (s.delayNs < 0n) continue;
    if (best === undefined || s.delayNs < best.delayNs) best = s;
  }
  return best;
}
