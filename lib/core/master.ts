/**
 * The master's side of a round (sans-IO).
 *
 * round timer -> SYNC to the group, arm collect
 * TIME_REQUEST -> TIME_REPLY with T2 (arrival) and T3 (just before sending)
 * REPORT       -> kept for this round; the member table is refreshed
 * collect      -> fault-tolerant average, ADJUST table to the group, own correction
 */
import { MessageType, type ReportMessage, type TimeRequestMessage } from '../wire/messages.js';
import { faultTolerantAverage, type Reading } from './average.js';
import type { Context } from './context.js';
import type { Address, RoundRow } from './types.js';

/**
 * Fast start: rounds 1-4 of an epoch run at a quarter of the interval,
 * rounds 5-12 at half of it. Until a clock's frequency is known it drifts by
 * its full rate error, so the first spans are short; the frequency
 * estimate's error is the noise of the measurements over the time they
 * span, so the spans grow with it. (An eighth of a second was tried: the
 * first bursts of freshly started processes, squeezed into 60 ms windows,
 * measured hundreds of µs off, which cost more than the shorter drift
 * saved.) A round's collection window shrinks alike, but never below
 * FAST_START_MIN_COLLECT_NS: short intervals start with less of a speed-up.
 */
export const FAST_START_ROUNDS = 12;
export const FAST_START_MIN_COLLECT_NS = 25_000_000n;
export function fastStartDivisor(round: number, collectTimeoutNs: bigint): bigint {
  let divisor = round <= 4 ? 4n : round <= FAST_START_ROUNDS ? 2n : 1n;
  while (divisor > 1n && collectTimeoutNs / divisor < FAST_START_MIN_COLLECT_NS) divisor /= 2n;
  return divisor;
}

/** Sums over one sender's requests of a round. */
export interface RequestTiming {
  monoSum: bigint;
  appliedSum: bigint;
  n: bigint;
}

/**
 * When the peers measured the master, and what its clock had applied then:
 * the mean over the senders that reported of each one's mean request. One
 * value per reporter, so that requests replayed by someone else, or a
 * sender that never reported, do not move it. Null if no reporter sent a
 * request this round.
 */
export function measuredAt(timings: ReadonlyMap<bigint, RequestTiming>, reporters: Iterable<bigint>): { monoNs: bigint; appliedNs: bigint } | null {
  let mono = 0n;
  let applied = 0n;
  let n = 0n;
  for (const node of reporters) {
    const t = timings.get(node);
    if (!t || t.n === 0n) continue;
    mono += t.monoSum / t.n;
    applied += t.appliedSum / t.n;
    n += 1n;
  }
  return n === 0n ? null : { monoNs: mono / n, appliedNs: applied / n };
}

/** Largest member table (BSD timed's was 1,013 hosts; it ran with 200-300). */
export const MAX_MEMBERS = 4096;

export interface Member {
  node: bigint;
  name: string;
  address: Address;
  /** Member clock minus master clock at its last report. */
  offsetNs: bigint;
  delayNs: bigint;
  /** Last round the member reported in. */
  lastRound: number;
}

interface Report {
  node: bigint;
  name: string;
  offsetNs: bigint;
  delayNs: bigint;
}

export class MasterRole {
  round = 0;
  readonly members = new Map<bigint, Member>();
  lastTable: RoundRow[] = [];
  /** The round lastTable belongs to, and whether a majority agreed in it. */
  lastTableRound = 0;
  lastQuorum = true;
  lastAverageNs: bigint | null = null;
  private collecting = false;
  /**
   * This round's requests of this round, per sender: the sums of their
   * arrival times and of what our clock had applied at each. The peers
   * measured our clock at those instants, so the average describes it at
   * about their mean (see measuredAt).
   */
  private readonly timings = new Map<bigint, RequestTiming>();
  private readonly reports = new Map<bigint, Report>();
  private readonly requests = new Map<bigint, number>();

  constructor(
    private readonly ctx: Context,
    public epoch: number,
  ) {}

  /** Requests one node may send in one round: a burst, its warm-up, and some retries. */
  private get requestLimit(): number {
    return 2 * (this.ctx.opts.probes + 1) + 4;
  }

  /** Start a round now: SYNC to the group, and the timers of this round. */
  startRound(): void {
    const { ctx } = this;
    const o = ctx.opts;
    this.round += 1;
    this.collecting = true;
    this.reports.clear();
    this.requests.clear();
    this.timings.clear();
    // Fast start, like chrony's iburst: the first rounds of an epoch run at
    // a fraction of the interval, so that clocks are set and frequencies
    // found within a few seconds instead of many rounds.
    const divisor = fastStartDivisor(this.round, o.collectTimeoutNs);
    const collectNs = o.collectTimeoutNs / divisor;
    ctx.arm('round', o.intervalNs / divisor);
    ctx.arm('collect', collectNs);
    ctx.send('group', {
      type: MessageType.Sync,
      ...ctx.header(this.epoch, this.round),
      masterTimeNs: ctx.clock.now(),
      priority: o.priority,
      pinned: o.pinnedMaster,
      intervalMs: Number(o.intervalNs / 1_000_000n),
      // The nominal interval (peers time elections by it) and this round's collection window.
      collectMs: Math.max(1, Number(collectNs / 1_000_000n)),
      unicastAddress: o.unicast.address,
      unicastPort: o.unicast.port,
      name: o.name,
    });
  }

  onRequest(msg: TimeRequestMessage, from: Address, rxMonoNs: bigint): void {
    const { ctx } = this;
    if (msg.epoch !== this.epoch) return ctx.drop('stale-epoch', msg, from);
    const count = (this.requests.get(msg.sender) ?? 0) + 1;
    if (count > this.requestLimit || (count === 1 && this.requests.size >= 2 * MAX_MEMBERS)) return ctx.drop('rate-limited', msg, from);
    this.requests.set(msg.sender, count);
    if (msg.round === this.round && this.collecting) {
      const t = this.timings.get(msg.sender) ?? { monoSum: 0n, appliedSum: 0n, n: 0n };
      this.timings.set(msg.sender, { monoSum: t.monoSum + rxMonoNs, appliedSum: t.appliedSum + ctx.clock.appliedNs(), n: t.n + 1n });
    }
    const receiveNs = ctx.clock.at(rxMonoNs);
    ctx.send(from, {
      type: MessageType.TimeReply,
      ...ctx.header(this.epoch, msg.round),
      nonce: msg.nonce,
      originNs: msg.originNs,
      receiveNs,
      transmitNs: ctx.clock.now(),
    });
  }

  onReport(msg: ReportMessage, from: Address): void {
    const { ctx } = this;
    if (msg.epoch !== this.epoch) return ctx.drop('stale-epoch', msg, from);
    if (msg.round !== this.round || !this.collecting) return ctx.drop('wrong-round', msg, from);
    // Work stays bounded under a flood: only nodes that measured against us
    // this round may report, and the table has a size.
    if (!this.requests.has(msg.sender)) return ctx.drop('no-exchange', msg, from);
    if (!this.members.has(msg.sender) && this.members.size >= MAX_MEMBERS) return ctx.drop('table-full', msg, from);
    this.reports.set(msg.sender, { node: msg.sender, name: msg.name, offsetNs: msg.offsetNs, delayNs: msg.delayNs });
    if (!this.members.has(msg.sender)) ctx.notice({ kind: 'member-joined', name: msg.name, node: msg.sender });
    this.members.set(msg.sender, {
      node: msg.sender,
      name: msg.name,
      address: from,
      offsetNs: msg.offsetNs,
      delayNs: msg.delayNs,
      lastRound: this.round,
    });
  }

  onLeave(node: bigint): void {
    const m = this.members.get(node);
    if (!m) return;
    this.members.delete(node);
    this.reports.delete(node);
    this.ctx.notice({ kind: 'member-left', name: m.name, node, why: 'leave' });
  }

  /** The collection timeout: average, multicast the table, correct our own clock. */
  collect(monoNs: bigint): void {
    const { ctx } = this;
    if (!this.collecting) return;
    this.collecting = false;
    const readings: Reading[] = [{ node: ctx.id, offsetNs: 0n }, ...[...this.reports.values()].map((r) => ({ node: r.node, offsetNs: r.offsetNs }))];
    const result = faultTolerantAverage(readings, ctx.opts.toleranceNs);
    ctx.send('group', {
      type: MessageType.Adjust,
      ...ctx.header(this.epoch, this.round),
      part: 0,
      parts: 1,
      averageNs: result.averageNs,
      entries: result.entries,
    });
    const table: RoundRow[] = result.entries.map((e) => {
      const r = this.reports.get(e.node);
      return { node: e.node, name: r?.name ?? ctx.opts.name, offsetNs: r?.offsetNs ?? 0n, delayNs: r?.delayNs ?? 0n, adjustmentNs: e.adjustmentNs, outlier: e.outlier };
    });
    this.lastTable = table;
    this.lastTableRound = this.round;
    this.lastQuorum = result.quorum;
    this.lastAverageNs = result.averageNs;
    ctx.notice({ kind: 'round', epoch: this.epoch, round: this.round, averageNs: result.averageNs, quorum: result.quorum, table });
    // The average compares the peers' clocks with ours as they measured it,
    // spread over their slots; a slew of ours that ran on meanwhile is in
    // their offsets already.
    const at = measuredAt(this.timings, this.reports.keys()) ?? { monoNs, appliedNs: ctx.clock.appliedNs() };
    // The average's quality, for the frequency fit's weights: the reports' median round trip
    // (one member's odd report cannot make every point of ours look bad).
    const delays = [...this.reports.values()].map((r) => Math.min(Number(ctx.opts.maxDelayNs), Math.max(0, Number(r.delayNs))));
    const delayNs = delays.length ? delays.sort((a, b) => a - b)[delays.length >> 1]! : 0;
    ctx.applyAdjustment(this.epoch, this.round, result.averageNs, at.appliedNs, at.monoNs, monoNs, delayNs);
    this.expireMembers();
  }

  private expireMembers(): void {
    const limit = this.ctx.opts.memberTimeoutRounds;
    for (const m of [...this.members.values()]) {
      if (this.round - m.lastRound >= limit) {
        this.members.delete(m.node);
        this.ctx.notice({ kind: 'member-left', name: m.name, node: m.node, why: 'silence' });
      }
    }
  }

  stop(): void {
    this.ctx.disarm('round');
    this.ctx.disarm('collect');
    this.collecting = false;
  }
}
