/**
 * The master's side of a round (sans-IO).
 *
 * round timer -> SYNC to the group, arm collect
 * TIME_REQUEST -> TIME_REPLY with T2 (arrival) and T3 (just before sending)
 * REPORT       -> kept for this round; the member table is refreshed
 * collect      -> fault-tolerant average, ADJUST table to the group, own correction
 */
import { MessageType, type ReportMessage, type TimeRequestMessage } from '../wire/messages.js';
import { faultTolerantAverage, median, type AverageResult, type Reading } from './average.js';
import type { Context } from './context.js';
import { DEFAULT_DISCIPLINE } from './discipline.js';
import { beyondLimit, commonFrequency, judgeMembers, type Judged } from './faults.js';
import { ERROR_CAP, ERROR_FLOOR_NS, measuredAt, SelectionMargin, type RequestTiming } from './intervals.js';
import { MemberLimit, REQUESTERS_PER_MEMBER, RoundLoad } from './load.js';
import { towardReference } from './reference.js';
import { OwnClock } from './runaway.js';
import type { Address, RoundRow } from './types.js';

export { commonFrequency, FAULTY_LIMIT_ROUNDS, FAULTY_OUTLIER_ROUNDS, RECOVER_ROUNDS } from './faults.js';
export { ERROR_CAP, ERROR_FLOOR_NS, MAD_ROUNDS, MARGIN_MADS, measuredAt, type RequestTiming } from './intervals.js';

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

/** No clock runs this far off (ppb): a report claiming so is implausible (the simulated clock's own limit, 100,000 ppm). */
const MAX_PLAUSIBLE_PPB = 100_000_000;

const maxOf = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const minOf = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const absOf = (x: bigint): bigint => (x < 0n ? -x : x);

/** A member of the table; what faults.ts judges of it is Judged. */
export interface Member extends Judged {
  address: Address;
  /** Member clock minus master clock at its last report. */
  offsetNs: bigint;
  delayNs: bigint;
  /** Last round the member reported in. */
  lastRound: number;
  /** It was kept in the average the last time it reported in a round with a majority. */
  lastKept: boolean;
}

interface Report {
  node: bigint;
  name: string;
  offsetNs: bigint;
  delayNs: bigint;
  frequencyPpb: number | null;
}

export class MasterRole {
  round = 0;
  readonly members = new Map<bigint, Member>();
  lastTable: RoundRow[] = [];
  /** The round lastTable belongs to, and whether a majority agreed in it. */
  lastTableRound = 0;
  lastQuorum = true;
  lastAverageNs: bigint | null = null;
  /** The common frequency of the last table, ppm. */
  lastCommonPpm = 0;
  /** The last round's selection margin (see MARGIN_MADS), ns, and the last rounds' median absolute deviations. */
  lastMarginNs = 0n;
  private readonly margin = new SelectionMargin();
  /** The verdict on our own clock, and the group's time we serve in its place while it is named faulty (runaway.ts). */
  readonly own: OwnClock;
  /** Members named faulty so far (each naming counts once). */
  faultsNamed = 0;
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
  /** The round's load (the burst asked, the fast start, shedding) and the member limit: load.ts. */
  readonly load: RoundLoad;
  readonly limit: MemberLimit;

  constructor(
    private readonly ctx: Context,
    public epoch: number,
  ) {
    this.load = new RoundLoad(ctx.opts);
    this.own = new OwnClock((n) => ctx.notice(n));
    this.limit = new MemberLimit(ctx.opts.maxMembers, (refusing, refused) =>
      ctx.notice({ kind: 'member-limit', refusing, refused, max: ctx.opts.maxMembers, round: this.round }),
    );
  }

  /** Requests one node may send in one round: a burst, its warm-up, and some retries. */
  private get requestLimit(): number {
    return 2 * (this.ctx.opts.probes + 1) + 4;
  }

  /** Our own clock is named faulty, or was far from the majority last round: we serve the group's time in its place (runaway.ts). */
  get serving(): boolean {
    return this.own.serving;
  }

  /** The time we serve at monotonic instant monoNs: our clock's, or while it is named faulty the group's. */
  servedAt(monoNs: bigint): bigint {
    return this.serving ? this.own.served.at(monoNs) : this.ctx.clock.at(monoNs);
  }

  /** Start a round at monotonic monoNs (absent: now; only read while serving): SYNC to the group, and the timers of this round. */
  startRound(monoNs?: bigint): void {
    const { ctx } = this;
    const o = ctx.opts;
    this.round += 1;
    this.collecting = true;
    // Fast start, like chrony's iburst: the first rounds of an epoch run at
    // a fraction of the interval, so that clocks are set and frequencies
    // found within a few seconds instead of many rounds; not for a group too
    // large to measure itself in such a short round (load.ts).
    const { divisor, collectNs } = this.load.plan(fastStartDivisor(this.round, o.collectTimeoutNs), this.members.size, this.requests.size);
    this.reports.clear();
    this.requests.clear();
    this.timings.clear();
    ctx.arm('round', o.intervalNs / divisor);
    ctx.arm('collect', collectNs);
    ctx.send('group', {
      type: MessageType.Sync,
      ...ctx.header(this.epoch, this.round),
      masterTimeNs: this.serving && monoNs !== undefined ? this.servedAt(monoNs) : ctx.clock.now(),
      priority: o.priority,
      pinned: o.pinnedMaster,
      intervalMs: Number(o.intervalNs / 1_000_000n),
      // The nominal interval (peers time elections by it) and this round's collection window.
      collectMs: Math.max(1, Number(collectNs / 1_000_000n)),
      unicastAddress: o.unicast.address,
      unicastPort: o.unicast.port,
      probes: this.load.probes,
      steps: o.steps,
      // While a reference (reference.ts) is followed, not while it is lost.
      reference: ctx.reference ? ctx.reference.state !== 'lost' : o.reference,
      name: o.name,
    });
  }

  onRequest(msg: TimeRequestMessage, from: Address, rxMonoNs: bigint): void {
    const { ctx } = this;
    if (msg.epoch !== this.epoch) return ctx.drop('stale-epoch', msg, from);
    // Overloaded (a queue that holds more work than a probe timeout): a request that waited longer than its sender
    // waits for the reply is answered for nobody, and answering it would only make the next ones late too. Shed it.
    if (this.load.stale(ctx.clock.now() - ctx.clock.at(rxMonoNs))) return ctx.drop('stale-request', msg, from);
    const count = (this.requests.get(msg.sender) ?? 0) + 1;
    if (count > this.requestLimit || (count === 1 && this.requests.size >= REQUESTERS_PER_MEMBER * ctx.opts.maxMembers)) return ctx.drop('rate-limited', msg, from);
    this.requests.set(msg.sender, count);
    if (msg.round === this.round && this.collecting) {
      const t = this.timings.get(msg.sender) ?? { monoSum: 0n, appliedSum: 0n, n: 0n };
      this.timings.set(msg.sender, { monoSum: t.monoSum + rxMonoNs, appliedSum: t.appliedSum + ctx.clock.appliedNs(), n: t.n + 1n });
    }
    const receiveNs = this.servedAt(rxMonoNs);
    // Serving the group's time: T3 is T2 plus the turnaround as our clock measured it (microseconds, at any rate).
    const transmitNs = this.serving ? receiveNs + (ctx.clock.now() - ctx.clock.at(rxMonoNs)) : ctx.clock.now();
    ctx.send(from, { type: MessageType.TimeReply, ...ctx.header(this.epoch, msg.round), nonce: msg.nonce, originNs: msg.originNs, receiveNs, transmitNs });
  }

  onReport(msg: ReportMessage, from: Address): void {
    const { ctx } = this;
    if (msg.epoch !== this.epoch) return ctx.drop('stale-epoch', msg, from);
    if (msg.round !== this.round || !this.collecting) return ctx.drop('wrong-round', msg, from);
    // Work stays bounded under a flood: only nodes that measured against us
    // this round may report, and the table has a size.
    if (!this.requests.has(msg.sender)) return ctx.drop('no-exchange', msg, from);
    // Fields that cannot be true never reach the average: a peer reports no burst above --max-delay,
    // and no clock runs 100,000 ppm off.
    if (msg.delayNs > ctx.opts.maxDelayNs || (msg.frequencyPpb !== null && Math.abs(msg.frequencyPpb) > MAX_PLAUSIBLE_PPB)) {
      return ctx.drop('implausible-report', msg, from);
    }
    if (!this.members.has(msg.sender) && this.members.size >= ctx.opts.maxMembers) {
      this.limit.refuse(msg.sender);
      return ctx.drop('table-full', msg, from);
    }
    this.reports.set(msg.sender, { node: msg.sender, name: msg.name, offsetNs: msg.offsetNs, delayNs: msg.delayNs, frequencyPpb: msg.frequencyPpb });
    const known = this.members.get(msg.sender);
    if (!known) ctx.notice({ kind: 'member-joined', name: msg.name, node: msg.sender });
    this.members.set(msg.sender, {
      node: msg.sender,
      name: msg.name,
      address: from,
      offsetNs: msg.offsetNs,
      delayNs: msg.delayNs,
      frequencyPpm: msg.frequencyPpb === null ? null : msg.frequencyPpb / 1000,
      lastRound: this.round,
      faulty: known?.faulty ?? null,
      faultySinceRound: known?.faultySinceRound ?? null,
      outlierRounds: known?.outlierRounds ?? 0,
      limitRounds: known?.limitRounds ?? 0,
      cleanRounds: known?.cleanRounds ?? 0,
      lastKept: known?.lastKept ?? false,
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
    const reports = [...this.reports.values()];
    // The average compares the peers' clocks with ours as they measured it,
    // spread over their slots; a slew of ours that ran on meanwhile is in
    // their offsets already.
    const at = measuredAt(this.timings, this.reports.keys()) ?? { monoNs, appliedNs: ctx.clock.appliedNs() };
    // Serving the group's time (runaway.ts): our own clock is a reading like a member's, its offset from what we
    // served, and it stays out of the selection. Otherwise it is the reference, offset 0.
    const serving = this.serving;
    const ownOffsetNs = serving ? ctx.clock.at(at.monoNs) - this.own.served.at(at.monoNs) : 0n;
    // Each clock's interval: half its round trip, capped, plus the margin (see ERROR_FLOOR_NS).
    const medianHalfNs = reports.length ? median(reports.map((r) => r.delayNs / 2n)) : 0n;
    const capNs = maxOf(ERROR_CAP * medianHalfNs, ERROR_FLOOR_NS);
    // The group's dispersion, without the members already named faulty, as the median over the last MAD_ROUNDS
    // rounds: one round in which half the good members sat out (their delay filters) leaves the bad ones half
    // of the readings, and its own median absolute deviation would open the margin to them.
    const goodOffsets = reports.filter((r) => !this.members.get(r.node)?.faulty).map((r) => r.offsetNs);
    const marginNs = this.margin.next(serving && goodOffsets.length ? goodOffsets : [0n, ...goodOffsets]);
    this.lastMarginNs = marginNs;
    const errorOf = (r: Report): bigint => minOf(r.delayNs / 2n, capNs) + marginNs;
    const ownErrorNs = medianHalfNs + marginNs;
    const ownReading: Reading = { node: ctx.id, offsetNs: ownOffsetNs, errorNs: ownErrorNs };
    const peerReadings: Reading[] = reports.map((r) => ({ node: r.node, offsetNs: r.offsetNs, errorNs: errorOf(r) }));
    const readings = [ownReading, ...peerReadings];
    // With a reference (reference.ts) the group's time follows it, not the average; the selection still names faults.
    const ref = ctx.referenceTarget(this.round, ctx.clock.appliedNs() - at.appliedNs);
    const target = ref?.averageNs ?? null;
    const selected = serving ? selectWithout(ownReading, peerReadings, ctx.opts.toleranceNs) : faultTolerantAverage(readings, ctx.opts.toleranceNs);
    const result = towardReference(selected, target);
    const kept = new Set(result.entries.filter((e) => result.quorum && !e.outlier).map((e) => e.node));
    // Our own clock agrees: kept, or while serving, within its interval of the point the majority agreed on.
    const ownKept = serving ? absOf(ownOffsetNs - result.agreedNs) <= ownErrorNs : kept.has(ctx.id);
    // The group's common frequency: the mean of what the kept clocks' estimates call for.
    const frequencyOf = (node: bigint): number | null => {
      if (node === ctx.id) return ctx.estimatePpm;
      const f = this.reports.get(node)?.frequencyPpb;
      return f === null || f === undefined ? null : f / 1000;
    };
    // Over the clocks kept now and the members that were kept when they last reported (a member that sits out a
    // round under its delay filter keeps its place): a mean over whoever reported this round would jump by a
    // member's whole estimate / N each time one sits out, and the group's rate with it.
    if (result.quorum) for (const e of result.entries) {
      const m = this.members.get(e.node);
      if (m && this.reports.has(e.node)) m.lastKept = !e.outlier;
    }
    const ownInCommon = !serving && (kept.has(ctx.id) || !result.quorum);
    const estimates = [ownInCommon ? ctx.estimatePpm : null, ...[...this.members.values()].filter((m) => m.lastKept && m.faulty === null).map((m) => m.frequencyPpm)].filter(
      (f): f is number => f !== null,
    );
    const commonPpm = commonFrequency(estimates, DEFAULT_DISCIPLINE.maxFrequencyPpm);
    // Following a reference, every clock runs at its own estimate: each is measured against the reference's time.
    const commonPpb = target === null ? Math.round(commonPpm * 1000) : 0;
    let withhold = false;
    if (result.quorum) {
      // Far: more than twice its own interval's half-width from the point the majority agreed on.
      const far = new Set(readings.filter((r) => absOf(r.offsetNs - result.agreedNs) > 2n * r.errorNs!).map((r) => r.node));
      const judged = result.entries.flatMap((e) => {
        const m = this.members.get(e.node);
        return m && this.reports.has(e.node) ? [{ member: m, outlier: e.outlier, far: far.has(e.node) }] : [];
      });
      this.faultsNamed += judgeMembers(judged, commonPpb / 1000, this.round, (n) => ctx.notice(n));
      // The group's time at the reporters' mean instant, for the line we serve while our clock is faulty: the
      // fit starts again at each round in which our own clock agreed (it pulled that average), so that the line
      // always has a point once a round had a majority.
      if (ownKept && !serving) this.own.served.restart();
      this.own.served.add(at.monoNs, this.servedAt(at.monoNs) + result.averageNs);
      // A master that follows a reference (or an upper group) is not judged by its group while it does: its clock is the
      // group's time by design. Lost, it is a clock like any master's.
      if (ctx.reference === null || ctx.reference.state === 'lost') this.own.judge({ round: this.round, kept: ownKept, far: far.has(ctx.id), atLimit: beyondLimit(ctx.estimatePpm, commonPpb / 1000) });
      else this.own.clear(this.round);
      // The first round that finds our clock far: its offsets were taken against our clock at the peers' own
      // instants, and a table from them would scatter the good clocks by our rate (runaway.ts). None is sent.
      withhold = !serving && this.own.serving && far.has(ctx.id);
    }
    const entries = result.entries.map((e) => ({ ...e, faulty: e.node === ctx.id ? this.own.fault !== null : this.members.get(e.node)?.faulty != null }));
    const full = this.limit.endRound();
    // One table: the transport splits it into parts by node id (splitAdjust).
    if (!withhold) ctx.send('group', {
      type: MessageType.Adjust,
      ...ctx.header(this.epoch, this.round),
      part: 0,
      parts: 1,
      averageNs: result.averageNs,
      commonPpb,
      rangeFirst: 0n,
      rangeLast: 0xffff_ffff_ffff_ffffn,
      full,
      entries: entries.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
    });
    const table: RoundRow[] = result.entries.map((e) => {
      const r = this.reports.get(e.node);
      return {
        node: e.node,
        name: r?.name ?? ctx.opts.name,
        offsetNs: r?.offsetNs ?? ownOffsetNs,
        delayNs: r?.delayNs ?? 0n,
        adjustmentNs: e.adjustmentNs,
        outlier: e.outlier,
        errorNs: r ? errorOf(r) : ownErrorNs,
        frequencyPpm: frequencyOf(e.node),
        faulty: r ? (this.members.get(e.node)?.faulty ?? null) : this.own.fault,
      };
    });
    this.lastTable = table;
    this.lastTableRound = this.round;
    this.lastQuorum = result.quorum;
    this.lastAverageNs = result.averageNs;
    this.lastCommonPpm = commonPpb / 1000;
    ctx.notice({ kind: 'round', epoch: this.epoch, round: this.round, averageNs: result.averageNs, quorum: result.quorum, table });
    // The average's quality, for the frequency fit's weights: the reports' median round trip
    // (one member's odd report cannot make every point of ours look bad).
    const delays = reports.map((r) => Math.min(Number(ctx.opts.maxDelayNs), Math.max(0, Number(r.delayNs))));
    const delayNs = delays.length ? delays.sort((a, b) => a - b)[delays.length >> 1]! : 0;
    ctx.applyAdjustment(this.epoch, this.round, result.averageNs - ownOffsetNs, at.appliedNs, at.monoNs, monoNs, delayNs, commonPpb / 1000, ref?.fitNs);
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

/**
 * The selection without our own clock (named faulty, runaway.ts): over the peers' readings alone, and our own
 * entry added, left out, answering its reading. No peer reported: no majority, the group follows what we serve.
 */
function selectWithout(own: Reading, peers: readonly Reading[], toleranceNs: bigint): AverageResult {
  const r: AverageResult = peers.length ? faultTolerantAverage(peers, toleranceNs) : { averageNs: 0n, quorum: false, medianNs: 0n, agreedNs: 0n, entries: [] };
  return { ...r, entries: [{ node: own.node, adjustmentNs: r.averageNs - own.offsetNs, outlier: true }, ...r.entries] };
}
