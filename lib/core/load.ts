/**
 * The master's load (pure): what it asks of the group each round, so that
 * what the group sends it fits what it can answer, and what it does when
 * the group outgrows its member limit.
 *
 * Every exchange of a burst costs the master a receive and a send, and
 * each member's REPORT one more receive. Measured on loopback with kernel
 * stamps, an exchange costs the master about 13 µs of CPU and a REPORT
 * about 8 µs; a group of thousands that each ran a full burst (13
 * exchanges) would need seconds of CPU per round, crowded into the part of
 * the collection window where bursts start. So the master hands out an
 * exchange budget: EXCHANGES_PER_SECOND per second of the round's
 * interval, split evenly over the members it expects. A small group keeps
 * the full burst (--probes) and its accuracy; a large one measures with
 * fewer exchanges (at 10,000 members, one each), and the master's work
 * per round stays within the budget at any size (docs/protocol.md,
 * "Scale"; per member it is higher in a small group, see
 * docs/performance.md).
 *
 * The number goes to the peers in SYNC (`probes`). A burst of WARMUP_FROM
 * exchanges or more has a warm-up exchange on top (discarded, see
 * peer.ts): short bursts go without it.
 */

/**
 * The round's timing on the peers' side, in fractions of the collection
 * window (SYNC collectMs): bursts start within SLOT_START..SLOT_START +
 * SLOT_SPAN (the place from the node id, jittered by SLOT_JITTER), a burst
 * reports by REPORT_BY whatever it has, and a request waits at most
 * PROBE_TIMEOUT (and at most --max-delay) for its reply. The master sheds a
 * request that waited in its queue longer than that: nobody waits for its
 * answer any more.
 */
export const SLOT_START = 0.05;
export const SLOT_SPAN = 0.7;
export const SLOT_JITTER = 0.1;
export const REPORT_BY = 0.85;
export const PROBE_TIMEOUT = 0.04;

/** How long a request waits for its reply in a round whose collection window is collectNs. */
export function probeTimeoutNs(collectNs: bigint, maxDelayNs: bigint): bigint {
  const ns = BigInt(Math.round(Number(collectNs) * PROBE_TIMEOUT));
  return ns < maxDelayNs ? ns : maxDelayNs;
}

/** Exchanges the master invites per second of interval: about 0.1 s of its CPU per second at 13 µs each. */
export const EXCHANGES_PER_SECOND = 8_000;
/** Bursts of this many exchanges or more start with a warm-up exchange (not counted in probes). */
export const WARMUP_FROM = 2;
/** Default member limit (--max-members): BSD timed held 1,013; 10,000 hosts fit with room. */
export const DEFAULT_MAX_MEMBERS = 16_384;
/** Distinct nodes whose requests are answered in one round, as a multiple of the member limit (newcomers, retries). */
export const REQUESTERS_PER_MEMBER = 2;

/** Exchanges one burst of `probes` makes, the warm-up included. */
export function exchangesOf(probes: number): number {
  return probes + (probes >= WARMUP_FROM ? 1 : 0);
}

/**
 * The burst the master asks for this round: the largest number of probes,
 * at most maxProbes and at least 1, whose bursts by `expected` members fit
 * the exchange budget of an interval of intervalNs.
 */
export function probesFor(expected: number, intervalNs: bigint, maxProbes: number): number {
  const budget = (EXCHANGES_PER_SECOND * Number(intervalNs)) / 1e9;
  const members = Math.max(1, expected);
  let probes = maxProbes;
  while (probes > 1 && members * exchangesOf(probes) > budget) probes -= 1;
  return probes;
}

/**
 * Whether a fast-start round (a fraction of the interval, see master.ts)
 * fits: the expected members' full bursts within that shorter round's
 * budget. A master that takes over a large group starts at the full
 * interval instead of squeezing thousands of first bursts into a quarter
 * of it.
 */
export function fastStartFits(expected: number, shortIntervalNs: bigint, maxProbes: number): boolean {
  return expected * exchangesOf(maxProbes) <= (EXCHANGES_PER_SECOND * Number(shortIntervalNs)) / 1e9;
}

/**
 * One master's round planning: the burst it asks for, whether the fast
 * start's shorter round fits, and the shedding of requests that waited
 * longer than their senders wait. The master tells it the fast start's
 * divisor for the round (master.ts's schedule), its members, and the
 * nodes that asked last round; it answers with the round's timing.
 */
export class RoundLoad {
  /** The burst asked for this round (SYNC probes). */
  probes: number;
  /** Requests shed so far, and in the round being collected. */
  shed = 0;
  private shedThisRound = 0;
  private timeoutNs = 0n;
  /** Members expected before any has asked (a new master of a group it followed): used by the first plan only. */
  private hint = 0;

  constructor(private readonly opts: { probes: number; intervalNs: bigint; collectTimeoutNs: bigint; maxDelayNs: bigint }) {
    this.probes = opts.probes;
  }

  /**
   * A round starts. requesters: nodes whose requests were answered last
   * round; the ones shed count too (an overloaded round hides how many
   * asked), and a round that had to shed ends the fast start.
   */
  /** A new master that followed a table of n members as a peer: its first round is planned for them. */
  expect(n: number): void {
    this.hint = n;
  }

  plan(divisor: bigint, members: number, requesters: number): { divisor: bigint; collectNs: bigint } {
    const o = this.opts;
    const expected = Math.max(members, requesters + this.shedThisRound, this.hint);
    this.hint = 0;
    if (divisor > 1n && (this.shedThisRound > 0 || !fastStartFits(expected, o.intervalNs / divisor, o.probes))) divisor = 1n;
    this.shedThisRound = 0;
    const collectNs = o.collectTimeoutNs / divisor;
    this.probes = probesFor(expected, o.intervalNs / divisor, o.probes);
    this.timeoutNs = probeTimeoutNs(collectNs, o.maxDelayNs);
    return { divisor, collectNs };
  }

  /** A request that waited this long in our queue: shed it (true), or answer it. */
  stale(waitedNs: bigint): boolean {
    if (waitedNs <= this.timeoutNs) return false;
    this.shed += 1;
    this.shedThisRound += 1;
    return true;
  }
}

/**
 * The member limit's bookkeeping: refusals per round and in all, and
 * whether the master is at the limit now. notice() is called once when
 * refusing starts and once when it stops (one warning, not one per node
 * and round).
 */
export class MemberLimit {
  /** Nodes refused since the start (each node counted once per round). */
  refusedTotal = 0;
  /** Nodes refused in the round being collected. */
  private readonly refusedNow = new Set<bigint>();
  /** The last collected round refused someone. */
  full = false;

  constructor(
    readonly max: number,
    private readonly notice: (refusing: boolean, refusedThisRound: number) => void,
  ) {}

  /** A report from a node that does not fit: refused, counted. */
  refuse(node: bigint): void {
    if (this.refusedNow.has(node)) return;
    this.refusedNow.add(node);
    this.refusedTotal += 1;
  }

  /** The round is collected: is the table full (someone refused)? Tells of a change. */
  endRound(): boolean {
    const refused = this.refusedNow.size;
    const full = refused > 0;
    if (full !== this.full) this.notice(full, refused);
    this.full = full;
    this.refusedNow.clear();
    return full;
  }
}
