/**
 * A peer's side of a round (sans-IO).
 *
 * SYNC    -> arm this node's slot
 * slot    -> burst: a warm-up exchange, then `probes` exchanges, one after another
 * reply   -> t4 from the arrival timestamp; keep the sample; next exchange
 * done    -> best of burst by delay; dropped above maxDelay; else REPORT to the master
 *            (before the first correction, if outside the tolerance: coarse step to the master's
 *            clock, then a second burst on the stepped clock, whose result is reported)
 * ADJUST  -> this node's entry, less what was corrected since the measurement
 *
 * The slot spreads the bursts of all peers over the first part of the
 * collection window, so that peers do not all wake the master at once: its
 * place is derived from the node id, with a little jitter each round so
 * that two peers whose slots collide do not collide every round.
 */
import { MessageType, type AdjustMessage, type SyncMessage, type TimeReplyMessage, type TimeRequestMessage } from '../wire/messages.js';
import type { Context } from './context.js';
import { DEFAULT_DISCIPLINE } from './discipline.js';
import { exchangesOf, probeTimeoutNs, REPORT_BY, SLOT_JITTER, SLOT_SPAN, SLOT_START, WARMUP_FROM } from './load.js';
import { bestOfBurst, exchange, type Sample } from './measure.js';
import { boundDriftPpm } from './bound.js';
import { carryApplies, RoundFilter } from './carry.js';
import { DelayFilter } from './delay-filter.js';
import type { Address } from './types.js';

/** Complete tables in a row without our entry (our report reached no table) before we count as left out. */
const LEFT_OUT_ROUNDS = 3;
/** Exchanges a liveness probe tries before the master counts as gone. */
const LIVENESS_TRIES = 3;

interface Outstanding {
  nonce: bigint;
  /** The request as sent: its originNs (t1) may have been read again just before the system call (see Action). */
  request: TimeRequestMessage;
}

interface Burst {
  epoch: number;
  round: number;
  master: Address;
  left: number;
  warmup: boolean;
  /** The burst had no usable sample when its exchanges ran out and got one more (see next). */
  retried?: boolean;
  samples: Sample[];
  /** appliedNs() when each sample was taken, and the monotonic time its reply arrived, by sample index. */
  appliedAt: bigint[];
  takenAt: bigint[];
  outstanding: Outstanding | null;
  /** How long a request waits for its reply. */
  probeTimeoutNs: bigint;
  /** Monotonic time by which the burst reports what it has, to reach the master before the collection ends. */
  deadlineMonoNs: bigint;
  /** A second burst after a coarse step: the first burst's measurement, reported if this one fails. */
  fallback: Chosen | null;
  /** A liveness probe (see probeLiveness): its replies prove the master alive and nothing is reported. */
  liveness?: boolean;
}

/** A burst's best sample, with the clock's state when it was taken. */
interface Chosen {
  best: Sample;
  appliedAtNs: bigint;
  monoNs: bigint;
  /** Samples in its burst. */
  samples: number;
}

interface Measurement {
  epoch: number;
  round: number;
  /** The offset reported: the master's entry must answer exactly this. */
  offsetNs: bigint;
  appliedAtNs: bigint;
  monoNs: bigint;
  delayNs: bigint;
  answered: boolean;
}

const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** A common frequency beyond any clock's frequency limit cannot be the mean of kept clocks' estimates (ppb). */
const MAX_COMMON_PPB = DEFAULT_DISCIPLINE.maxFrequencyPpm * 1000;

/** ppm -> the REPORT's i32 ppb (null stays null: not known yet), within the field's range. */
export function toPpb(ppm: number | null): number | null {
  if (ppm === null || !Number.isFinite(ppm)) return null;
  return Math.max(-0x7fff_ffff, Math.min(0x7fff_ffff, Math.round(ppm * 1000)));
}

export class PeerRole {
  private burst: Burst | null = null;
  private measurement: Measurement | null = null;
  lastOffsetNs: bigint | null = null;
  lastDelayNs: bigint | null = null;
  /** Monotonic arrival of the last reply that echoed one of our requests: the master is alive. */
  lastAnswerMonoNs: bigint | null = null;
  /** Best round trips of the last bursts (delay-filter.ts). */
  private readonly delays = new DelayFilter();
  /** The master's last table named this node faulty. */
  namedFaulty = false;
  /** No burst has completed against the master followed now (see finish: a coarse step may join a new group). */
  private newMaster = false;
  /** The burst the master asked for this round (SYNC probes), at most our own --probes. */
  probes: number;
  /**
   * Why our reports reach no table (null: they do): the master is at its
   * member limit, or LEFT_OUT_ROUNDS tables in a row had no entry for us.
   * Such a node is not synchronized, whatever its clock did before.
   */
  leftOut: 'table-full' | 'not-in-table' | null = null;
  /** The size of the last table of the followed master, estimated from our part (parts × its entries): a new master's first round is planned for it. */
  tableSizeSeen = 0;
  /** Samples of earlier rounds, for rounds of one or two exchanges (carry.ts). */
  private readonly filter = new RoundFilter();
  private missingRounds = 0;
  /** The averages (the master's own adjustments) of the last two tables applied: the error bound's master slew (bound.ts). */
  readonly averagesNs: bigint[] = [];

  constructor(private readonly ctx: Context) {
    this.probes = ctx.opts.probes;
  }

  /** A valid SYNC from the master we follow. */
  onSync(msg: SyncMessage, master: Address, rxMonoNs: bigint): void {
    const { ctx } = this;
    this.cancelBurst();
    const idFraction = Number(ctx.id & 0xffffffffn) / 2 ** 32;
    const fraction = (idFraction + SLOT_JITTER * (ctx.rng.random() - 0.5) + 1) % 1;
    const collectNs = BigInt(msg.collectMs) * 1_000_000n;
    const slotNs = BigInt(Math.round(Number(collectNs) * (SLOT_START + SLOT_SPAN * fraction)));
    this.probes = Math.min(ctx.opts.probes, msg.probes);
    this.burst = {
      epoch: msg.epoch,
      round: msg.round,
      master,
      left: exchangesOf(this.probes),
      warmup: this.probes >= WARMUP_FROM,
      samples: [],
      appliedAt: [],
      takenAt: [],
      outstanding: null,
      probeTimeoutNs: probeTimeoutNs(collectNs, ctx.opts.maxDelayNs),
      deadlineMonoNs: rxMonoNs + BigInt(Math.round(Number(collectNs) * REPORT_BY)),
      fallback: null,
    };
    ctx.arm('slot', slotNs);
  }

  /** The slot came: first exchange of the burst. */
  onSlot(): void {
    if (this.burst && this.burst.outstanding === null && this.burst.left > 0) this.sendRequest(this.burst);
  }

  private sendRequest(b: Burst): void {
    const { ctx } = this;
    b.left -= 1;
    const nonce = ctx.rng.nonce();
    ctx.arm('probe', b.probeTimeoutNs);
    const request: TimeRequestMessage = { type: MessageType.TimeRequest, ...ctx.header(b.epoch, b.round), nonce, originNs: ctx.clock.now() };
    b.outstanding = { nonce, request };
    ctx.send(b.master, request);
  }

  onReply(msg: TimeReplyMessage, from: Address, rxMonoNs: bigint): void {
    const { ctx } = this;
    const t4 = ctx.clock.at(rxMonoNs);
    const b = this.burst;
    const o = b?.outstanding;
    // Accept only an exact echo of the one outstanding request: that alone stops blind spoofing.
    if (!b || !o || msg.nonce !== o.nonce || msg.originNs !== o.request.originNs || msg.epoch !== b.epoch) {
      return ctx.drop('unexpected-reply', msg, from);
    }
    b.outstanding = null;
    ctx.disarm('probe');
    this.lastAnswerMonoNs = rxMonoNs;
    if (b.liveness) {
      this.burst = null;
      return;
    }
    // Fields that cannot be true (an unauthenticated reply can carry anything that echoes our request):
    // the master's turnaround T3 − T2 is never negative, and never longer than a request may wait.
    const turnaround = msg.transmitNs - msg.receiveNs;
    if (turnaround < 0n || turnaround > ctx.opts.maxDelayNs) {
      ctx.drop('bad-turnaround', msg, from);
      b.warmup = false; // the exchange warmed the path all the same
    } else if (b.warmup) {
      b.warmup = false;
    } else {
      const sample = exchange(o.request.originNs, msg.receiveNs, msg.transmitNs, t4);
      if (sample.delayNs < 0n) {
        ctx.drop('negative-delay', msg, from);
      } else {
        b.samples.push(sample);
        b.appliedAt.push(ctx.clock.appliedNs());
        b.takenAt.push(rxMonoNs);
      }
    }
    this.next(b, rxMonoNs);
  }

  /** The outstanding request went unanswered. */
  onProbeTimeout(monoNs: bigint): void {
    const b = this.burst;
    if (!b || !b.outstanding) return;
    b.outstanding = null;
    b.warmup = false;
    this.next(b, monoNs);
  }

  private next(b: Burst, monoNs: bigint): void {
    // A burst that ran out without a usable sample (at one exchange a round, in a large group, one lost reply
    // is the whole burst) tries once more while there is time.
    if (b.left === 0 && b.samples.length === 0 && !b.retried && !b.liveness) {
      b.retried = true;
      b.left = 1;
    }
    if (b.left > 0 && monoNs < b.deadlineMonoNs) return this.sendRequest(b);
    this.finish(b, monoNs);
  }

  private finish(b: Burst, monoNs: bigint): void {
    const { ctx } = this;
    this.burst = null;
    if (b.liveness) return;
    const best = bestOfBurst(b.samples);
    const failed = !best ? 'no reply' : best.delayNs > ctx.opts.maxDelayNs ? `best round trip ${best.delayNs} ns above --max-delay` : null;
    if (failed !== null || !best) {
      // A second burst after a coarse step that got nothing: report the first one's measurement.
      if (b.fallback) return this.report(b, b.fallback);
      return ctx.notice({ kind: 'burst-failed', round: b.round, why: failed ?? 'no reply' });
    }
    const bound = this.delays.judge(best.delayNs, ctx.synced);
    if (bound !== null) return ctx.notice({ kind: 'burst-failed', round: b.round, why: `best round trip ${best.delayNs} ns above the delay filter's bound (${bound} ns)` });
    const index = b.samples.indexOf(best);
    const chosen: Chosen = { best, appliedAtNs: b.appliedAt[index]!, monoNs: b.takenAt[index]!, samples: b.samples.length };
    // A newcomer whose clock is outside the group's tolerance takes the
    // master's clock at once, from this fresh measurement (its replies echo
    // our nonces, so a replayed SYNC cannot do this). That first burst ran
    // on a clock far off and in a process just started (cold code, a master
    // busy with everyone's first burst): it lands within a few hundred µs,
    // and slewing that away at 500 ppm takes rounds. So, time permitting, a
    // second burst measures the stepped clock, and that is what is reported;
    // the round's adjustment may then still step, the clock not being
    // synchronized yet. If no time is left, or the second burst fails, the
    // first is reported as measured: the step counts as corrected since
    // that measurement, so the round's adjustment comes out right.
    //
    // The same holds for a synchronized node's first burst against a master it
    // did not follow before, when two groups merge (a partition heals, or a
    // pinned master starts after the others elected one of their own): a
    // clock a second away from its new master would otherwise slew for half
    // an hour. Within the tolerance (a failover inside one group) nothing
    // steps; a correction larger than --max-adjust never does.
    const size = best.offsetNs < 0n ? -best.offsetNs : best.offsetNs;
    const joining = ctx.updates === 0 || (this.newMaster && (ctx.opts.maxAdjustNs === null || size <= ctx.opts.maxAdjustNs));
    this.newMaster = false;
    if (joining && !b.fallback && size > ctx.opts.toleranceNs && size > ctx.opts.stepThresholdNs) {
      ctx.coarseStep(-best.offsetNs);
      if (monoNs < b.deadlineMonoNs) {
        this.burst = { ...b, left: exchangesOf(this.probes), warmup: this.probes >= WARMUP_FROM, samples: [], appliedAt: [], takenAt: [], outstanding: null, fallback: chosen };
        // By timer, so that the requests go out on the stepped clock.
        ctx.arm('slot', 0n);
        return;
      }
    }
    this.report(b, chosen);
  }

  private report(b: Burst, chosen: Chosen): void {
    const { ctx } = this;
    // Once synchronized, a burst reports the best of this and recent rounds' samples, carried to now (carry.ts).
    if (!ctx.synced || b.fallback) this.filter.reset();
    const carried = this.filter.choose(
      { epoch: b.epoch, round: b.round, offsetNs: chosen.best.offsetNs, delayNs: chosen.best.delayNs, appliedAtNs: chosen.appliedAtNs, monoNs: chosen.monoNs },
      // What the frequency may be off by runs on a carried sample: the error bound's drift.
      BigInt(Math.ceil(boundDriftPpm(ctx.frequencyErrorPpm) * 1000)),
      chosen.samples,
    );
    // A full burst takes a carried sample only once its frequency fit is trusted (carryApplies).
    const best = carryApplies(ctx.synced, chosen.samples, ctx.frequencyErrorPpm) ? carried : chosen.best;
    this.measurement = { epoch: b.epoch, round: b.round, offsetNs: best.offsetNs, appliedAtNs: chosen.appliedAtNs, monoNs: chosen.monoNs, delayNs: best.delayNs, answered: false };
    this.lastOffsetNs = best.offsetNs;
    this.lastDelayNs = best.delayNs;
    ctx.notice({ kind: 'measured', round: b.round, offsetNs: best.offsetNs, delayNs: best.delayNs, samples: chosen.samples });
    ctx.send(b.master, {
      type: MessageType.Report,
      ...ctx.header(b.epoch, b.round),
      offsetNs: best.offsetNs,
      delayNs: best.delayNs,
      frequencyPpb: toPpb(ctx.estimatePpm),
      name: ctx.opts.name,
    });
  }

  /** The median of the last bursts' best round trips (delay-filter.ts), for the error bound; null while the history is short. */
  get typicalDelayNs(): bigint | null {
    return this.delays.typicalNs;
  }

  /** One part of the table of the master we follow. */
  onAdjust(msg: AdjustMessage, from: Address, monoNs: bigint): void {
    const { ctx } = this;
    this.tableSizeSeen = msg.parts * Math.max(1, msg.entries.length);
    this.filter.noteAdjust(msg.epoch, msg.round, msg.averageNs);
    const m = this.measurement;
    if (!m || m.epoch !== msg.epoch || m.round !== msg.round) return ctx.drop('no-measurement', msg, from);
    // Node.onMessage passes only the part whose range holds our id (parts cover the ids in order).
    const entry = msg.entries.find((e) => e.node === ctx.id);
    if (m.answered) return ctx.drop('stale-round', msg, from); // a duplicate or a replay
    if (!entry) return this.missing(msg.full, msg.round);
    if (this.leftOut !== null) {
      this.leftOut = null;
      ctx.notice({ kind: 'table', inTable: true, why: null, round: msg.round });
    }
    this.missingRounds = 0;
    // The master computes average − offset exactly, so an entry that answers any other offset than the one
    // we reported answers a report that was corrupted or forged on the way: applying it would move our clock
    // by the corruption.
    if (entry.adjustmentNs !== msg.averageNs - m.offsetNs) return ctx.drop('wrong-report', msg, from);
    if (Math.abs(msg.commonPpb) > MAX_COMMON_PPB) return ctx.drop('implausible-adjust', msg, from);
    m.answered = true;
    this.averagesNs.push(msg.averageNs);
    if (this.averagesNs.length > 2) this.averagesNs.shift();
    if (entry.faulty !== this.namedFaulty) {
      this.namedFaulty = entry.faulty;
      ctx.notice({ kind: 'named-faulty', faulty: entry.faulty, round: msg.round });
    }
    ctx.applyAdjustment(msg.epoch, msg.round, entry.adjustmentNs, m.appliedAtNs, m.monoNs, monoNs, Number(m.delayNs), msg.commonPpb / 1000);
  }

  /** Our part of the table came without our entry, though we reported: left out at once when the master says its table is full. */
  private missing(full: boolean, round: number): void {
    const m = this.measurement!;
    m.answered = true;
    this.missingRounds += 1;
    const why = full ? 'table-full' : this.missingRounds >= LEFT_OUT_ROUNDS ? 'not-in-table' : null;
    if (why === null || why === this.leftOut) return;
    this.leftOut = why;
    this.ctx.notice({ kind: 'table', inTable: false, why, round });
  }

  /**
   * Ask a master whose SYNCs stopped coming whether it is still there: up
   * to LIVENESS_TRIES plain exchanges, one after another, reported nowhere.
   * A reply sets lastAnswerMonoNs. SYNCs are multicast and share the group
   * socket with whatever floods it; the exchanges go by unicast, so a
   * master that still answers them is alive, and a peer that lost a few
   * SYNCs must not depose it.
   */
  probeLiveness(master: Address, epoch: number, round: number, monoNs: bigint, windowNs: bigint): void {
    this.cancelBurst();
    this.burst = {
      epoch,
      round,
      master,
      left: LIVENESS_TRIES,
      warmup: false,
      samples: [],
      appliedAt: [],
      takenAt: [],
      outstanding: null,
      probeTimeoutNs: min(this.ctx.opts.maxDelayNs, windowNs / BigInt(LIVENESS_TRIES + 1)),
      deadlineMonoNs: monoNs + windowNs,
      fallback: null,
      liveness: true,
    };
    this.sendRequest(this.burst);
  }

  /** The node follows a master it did not follow before. */
  masterChanged(): void {
    this.newMaster = true;
    this.filter.reset();
  }

  cancelBurst(): void {
    if (this.burst?.outstanding) this.ctx.disarm('probe');
    if (this.burst) this.ctx.disarm('slot');
    this.burst = null;
  }
}
