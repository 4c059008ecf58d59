/**
 * Receive timestamps: the kernel's, brought to the monotonic time base,
 * checked, and counted; the user-space stamp where the kernel's is missing
 * or cannot be right.
 *
 * The kernel stamps a datagram in CLOCK_REALTIME (on loopback inside the
 * sender's send call; on a NIC when the driver hands the packet up). The
 * engine counts in CLOCK_MONOTONIC (process.hrtime.bigint()). Each stamp is
 * converted by its age, read at once: a CLOCK_REALTIME reading bracketed by
 * two monotonic readings pairs the two clocks within half the bracket, and
 *
 *     rxMono = monoAtPairing - (realAtPairing - kernelReal)
 *
 * Only the age (tens to hundreds of µs) passes through CLOCK_REALTIME, so a
 * slew of the host's clock moves the result by age x rate (50 ns at 500 ppm),
 * and no pairing goes stale. A step of the host's clock between the kernel's
 * stamp and the pairing would enter whole: the pairings are compared with
 * the previous one, and a stamp read across a step is rejected.
 *
 * One pairing is only as good as its bracket, and a bracket is sometimes
 * wide: a reading preempted or slowed between its three clock reads (on a
 * loaded 2-vCPU VM, p50 0.5 µs but p99.9 4.8 µs, now and then 50 µs). Half
 * of it is an error of the stamp, and the best-of-burst filter prefers
 * exactly the exchanges whose stamps erred toward a shorter round trip: on
 * 8 daemons on loopback, one exchange in a run measured a 1.6 µs round trip
 * against 6.3 µs, and its clock sat 2.7 µs off the group for a round. But
 * Linux moves CLOCK_REALTIME against CLOCK_MONOTONIC only by steps
 * (settimeofday, ADJ_SETOFFSET, a leap second): frequency and slews
 * (adjtimex) run both clocks alike. So each pairing only says the offset
 * lies within [real − m2, real − m1], and the stamper keeps the
 * intersection of those intervals since the last step, and uses its middle:
 * after a few datagrams it is as narrow as the narrowest bracket seen, and a
 * wide bracket narrows nothing. A pairing outside the intersection (beyond
 * PAIR_SLACK_NS of rounding) means the offset moved: the intersection starts
 * again from that pairing, and the step test above judges the stamp.
 *
 * Named tests, each rejecting the kernel stamp (the user-space one is used):
 *   missing  the kernel gave none (timestamps just switched on; no support)
 *   late     later than the user-space stamp: it cannot be this datagram's
 *   old      more than maxAgeNs before the user-space stamp
 *   step     CLOCK_REALTIME moved against CLOCK_MONOTONIC: the pairing
 *            falls outside the intersection, or moved more than any slew
 *            could (maxSlewRate of the time elapsed, plus stepSlackNs);
 *            and every stamp for maxAgeNs after that: a datagram the kernel
 *            stamped before the step and that waited in a socket (the other
 *            one, or behind the datagram that revealed the step) carries a
 *            stamp in the old time base, which the new offset would move by
 *            the whole step. A step of 100 ms or more fails `late` or `old`
 *            anyway; a smaller one (a newcomer's step of tens of ms) would
 *            pass them.
 */

export interface StampCounters {
  /** Datagrams stamped by the kernel. */
  kernel: number;
  /** Datagrams stamped in user space (the kernel gave none, or its stamp was rejected). */
  user: number;
  /** Why kernel stamps were not used. */
  missing: number;
  late: number;
  old: number;
  step: number;
}

export const newStampCounters = (): StampCounters => ({ kernel: 0, user: 0, missing: 0, late: 0, old: 0, step: 0 });

/** The clocks and the one socket call the stamper needs (faked in tests). */
export interface StampClocks {
  monoNs(): bigint;
  realNs(): bigint;
  /** CLOCK_REALTIME kernel receive stamp of the datagram the socket just delivered; null if none. */
  lastRxRealNs(fd: number): bigint | null;
}

export interface StamperOptions {
  /** A kernel stamp older than this against the user-space stamp is rejected. Default 100 ms. */
  maxAgeNs: bigint;
  /** A pairing whose bracket exceeds this (we were preempted) is read again, once. Default 20 µs. */
  maxBracketNs: bigint;
  /** Fastest that CLOCK_REALTIME can be slewed against CLOCK_MONOTONIC (the kernel's tick can be set 10 % off). */
  maxSlewRate: number;
  /** Plus this, for the pairing's own error. Default 1 ms. */
  stepSlackNs: bigint;
}

export const STAMPER_DEFAULTS: StamperOptions = { maxAgeNs: 100_000_000n, maxBracketNs: 20_000n, maxSlewRate: 0.1, stepSlackNs: 1_000_000n };

export type StampSource = 'kernel' | 'user';

/** Rounding allowed between two pairings of an unmoved offset: the two clocks' readings are whole nanoseconds. */
export const PAIR_SLACK_NS = 16n;

export class RxStamper {
  /** CLOCK_REALTIME minus CLOCK_MONOTONIC at the last pairing, and when (monotonic). */
  private lastOffsetNs: bigint | null = null;
  private lastPairMonoNs = 0n;
  /** Where the offset lies, as every pairing since the offset last moved says (see the file's comment). */
  private known: { lo: bigint; hi: bigint } | null = null;
  /** Until this monotonic instant kernel stamps may be in the time base before the last step: rejected. */
  private distrustUntilNs: bigint | null = null;

  constructor(
    private readonly clocks: StampClocks,
    private readonly opts: StamperOptions = STAMPER_DEFAULTS,
  ) {}

  /**
   * The receive time (monotonic ns) of the datagram that socket fd just
   * delivered: the kernel's stamp if it passes the tests, else userMonoNs
   * (read first thing on arrival). Counts into counters.
   */
  stamp(fd: number, userMonoNs: bigint, counters: StampCounters): { monoNs: bigint; source: StampSource } {
    const reason = this.check(fd, userMonoNs);
    if (typeof reason === 'bigint') {
      counters.kernel += 1;
      return { monoNs: reason, source: 'kernel' };
    }
    counters[reason] += 1;
    counters.user += 1;
    return { monoNs: userMonoNs, source: 'user' };
  }

  private check(fd: number, userMonoNs: bigint): bigint | 'missing' | 'late' | 'old' | 'step' {
    const kernelReal = this.clocks.lastRxRealNs(fd);
    if (kernelReal === null) return 'missing';
    const { monoNs, offsetNs, bestNs, moved } = this.pair();
    // Either test: the intersection left behind (any step, however small), or a move no slew could make.
    if (this.stepped(monoNs, offsetNs) || moved) this.distrustUntilNs = monoNs + this.opts.maxAgeNs;
    if (this.distrustUntilNs !== null && monoNs <= this.distrustUntilNs) return 'step';
    const rxMono = kernelReal - bestNs;
    if (rxMono > userMonoNs) return 'late';
    if (userMonoNs - rxMono > this.opts.maxAgeNs) return 'old';
    return rxMono;
  }

  /**
   * CLOCK_REALTIME - CLOCK_MONOTONIC now: a bracketed reading (read again once if the bracket is wide), narrowed by
   * every reading since the offset last moved. offsetNs is this reading's own middle, for the step test; bestNs
   * the middle of what all of them leave.
   */
  private pair(): { monoNs: bigint; offsetNs: bigint; bestNs: bigint; moved: boolean } {
    const c = this.clocks;
    let best: { monoNs: bigint; offsetNs: bigint; lo: bigint; hi: bigint; bracket: bigint } | null = null;
    for (let i = 0; i < 2; i++) {
      const m1 = c.monoNs();
      const r = c.realNs();
      const m2 = c.monoNs();
      const bracket = m2 - m1;
      const monoNs = m1 + bracket / 2n;
      if (!best || bracket < best.bracket) best = { monoNs, offsetNs: r - monoNs, lo: r - m2, hi: r - m1, bracket };
      if (bracket <= this.opts.maxBracketNs) break;
    }
    const { lo, hi } = best!;
    const k = this.known;
    const moved = k !== null && !(lo <= k.hi + PAIR_SLACK_NS && hi >= k.lo - PAIR_SLACK_NS);
    if (k && !moved) {
      // Rounding may leave the two a nanosecond or so apart: then the nearer ends.
      const nlo = lo > k.lo ? lo : k.lo;
      const nhi = hi < k.hi ? hi : k.hi;
      this.known = nlo <= nhi ? { lo: nlo, hi: nhi } : { lo: nhi, hi: nlo };
    } else {
      this.known = { lo, hi };
    }
    return { monoNs: best!.monoNs, offsetNs: best!.offsetNs, bestNs: (this.known.lo + this.known.hi) / 2n, moved };
  }

  /** Whether CLOCK_REALTIME jumped against CLOCK_MONOTONIC since the last pairing; remembers this one. */
  private stepped(monoNs: bigint, offsetNs: bigint): boolean {
    const last = this.lastOffsetNs;
    const elapsed = monoNs - this.lastPairMonoNs;
    this.lastOffsetNs = offsetNs;
    this.lastPairMonoNs = monoNs;
    if (last === null) return false;
    const moved = offsetNs > last ? offsetNs - last : last - offsetNs;
    const allowed = this.opts.stepSlackNs + BigInt(Math.round(Number(elapsed) * this.opts.maxSlewRate));
    return moved > allowed;
  }
}
