/**
 * One berkeleyd node: the election, and the master or peer side of the
 * round, behind one entry point (sans-IO). The daemon and the simulator both
 * drive this class: `handle(event)` returns the actions to carry out, in
 * order, at once. The replay fence of SYNCs (fence.ts) and what the node
 * reports of itself, its status and error bound (node-status.ts), live apart.
 */
import { resolveAdvertised } from '../wire/address.js';
import { nodeIdOf } from '../wire/ids.js';
import {
  MessageType,
  type ClaimMessage,
  type LeaveMessage,
  type Message,
  type SyncMessage,
} from '../wire/messages.js';
import { Context, type ClockReader, type Randomness } from './context.js';
import {
  CLAIM_WINDOW,
  compareCredentials,
  ELECTION_JITTER,
  ELECTION_TIMEOUT,
  FRESH_MASTER,
  LIVENESS_WINDOW,
  rankFraction,
  RESPONSE_WINDOW,
  span,
  STARTUP_WAIT,
  ClaimBook,
  type Credentials,
} from './election.js';
import { ReplayFence } from './fence.js';
import { MasterRole } from './master.js';
import { nodeErrorBound, nodeStatus, type Followed, type NodeStatus, type NodeView } from './node-status.js';
import { validateOptions, type NodeOptions } from './options.js';
import { PeerRole } from './peer.js';
import { Resignation } from './resign.js';
import type { Action, Address, ErrorBound, Event, Role, TimerName } from './types.js';

/** Epochs at the top of the u32 range are refused: a group could never elect past them. */
const MAX_EPOCH = 0xffff_0000;

export class Node {
  readonly id: bigint;
  /** Highest (epoch, round) accepted from each master, kept whether or not we still follow it (fence.ts). */
  private readonly fence = new ReplayFence();
  readonly ctx: Context;
  private role: Role = 'peer';
  private epoch = 0;
  private followed: Followed | null = null;
  private master: MasterRole | null = null;
  private readonly peer: PeerRole;
  private claimEpoch: number | null = null;
  /** The best claims heard, and a claim of ours waiting for its rank's turn (see election.ts): its epoch. */
  private readonly claims = new ClaimBook();
  private pendingClaim: number | null = null;
  /** This node's place among possible masters, 0 best (election.ts): times its elections instead of a random jitter. */
  private readonly rank: number;
  /** The master we follow went quiet and was sent a liveness probe (see PeerRole.probeLiveness). */
  private livenessProbed = false;
  private assertedFor = 0;
  /** We stood down as master because our own clock was named faulty (resign.ts). */
  private readonly resigned = new Resignation();

  constructor(opts: NodeOptions, clock: ClockReader, rng: Randomness) {
    validateOptions(opts);
    this.id = nodeIdOf(opts.name);
    this.ctx = new Context(opts, this.id, clock, rng);
    this.peer = new PeerRole(this.ctx);
    this.rank = rankFraction(opts.priority, this.id);
  }

  private get opts(): NodeOptions {
    return this.ctx.opts;
  }

  private get credentials(): Credentials {
    return { epoch: this.epoch, priority: this.opts.priority, node: this.id };
  }

  /** The interval that times elections: the followed master's, else our own. */
  private get intervalNs(): bigint {
    return this.followed?.intervalNs ?? this.opts.intervalNs;
  }

  handle(ev: Event): Action[] {
    switch (ev.type) {
      case 'start':
        if (this.opts.pinnedMaster) this.becomeMaster(Math.max(1, this.epoch), 'pinned with --master');
        else this.ctx.arm('election', span(this.opts.intervalNs, STARTUP_WAIT, ELECTION_JITTER, this.rank));
        break;
      case 'stop':
        this.stop();
        break;
      case 'timer':
        this.onTimer(ev.timer, ev.monoNs);
        break;
      case 'datagram':
        this.onMessage(ev.msg, ev.from, ev.rxMonoNs);
        break;
    }
    return this.ctx.take();
  }

  private onTimer(timer: TimerName, monoNs: bigint): void {
    switch (timer) {
      case 'round':
        return this.master?.startRound(monoNs);
      case 'collect':
        this.master?.collect(monoNs);
        return this.resignIfFaulty(monoNs);
      case 'slot':
        return this.peer.onSlot();
      case 'probe':
        return this.peer.onProbeTimeout(monoNs);
      case 'election':
        return this.onElectionTimeout(monoNs);
      case 'claim':
        if (this.role === 'candidate' && this.claimEpoch !== null) this.becomeMaster(this.claimEpoch, 'won the election');
        return;
    }
  }

  private onMessage(msg: Message, from: Address, rxMonoNs: bigint): void {
    if (msg.sender === this.id) return; // our own multicast, looped back
    switch (msg.type) {
      case MessageType.Sync:
        return this.onSync(msg, from, rxMonoNs);
      case MessageType.TimeRequest:
        if (!this.master) return this.ctx.drop('not-master', msg, from);
        return this.master.onRequest(msg, from, rxMonoNs);
      case MessageType.Report:
        if (!this.master) return this.ctx.drop('not-master', msg, from);
        return this.master.onReport(msg, from);
      case MessageType.TimeReply:
        return this.peer.onReply(msg, from, rxMonoNs);
      case MessageType.Adjust: {
        // Another node's part of a table (the daemon drops these unread, as 'other-part'): nothing to do with us.
        if (this.id < msg.rangeFirst || this.id > msg.rangeLast) return;
        const f = this.followed;
        if (this.role !== 'peer' || !f || msg.sender !== f.node) return this.ctx.drop('foreign-master', msg, from);
        if (msg.epoch !== f.epoch) return this.ctx.drop('stale-epoch', msg, from);
        const updates = this.ctx.updates;
        this.peer.onAdjust(msg, from, rxMonoNs);
        if (this.ctx.updates !== updates && this.resigned.applied(this.peer.namedFaulty || this.ctx.atFrequencyLimit)) {
          this.ctx.notice({ kind: 'own-clock', fault: null, round: msg.round, ratePpm: 0 });
        }
        return;
      }
      case MessageType.Claim:
        return this.onClaim(msg, from, rxMonoNs);
      case MessageType.Leave:
        return this.onLeave(msg, from);
    }
  }

  private onSync(msg: SyncMessage, from: Address, rxMonoNs: bigint): void {
    const { ctx } = this;
    // A peer that has lost its master takes any master, even of an older
    // epoch (a restarted --master starts again at epoch 1); otherwise older
    // epochs are stale.
    const masterless = this.role === 'peer' && this.followed === null;
    if (msg.epoch < this.epoch && !masterless) return ctx.drop('stale-epoch', msg, from);
    if (msg.epoch > MAX_EPOCH || !saneTiming(msg.intervalMs, msg.collectMs)) return ctx.drop('bad-sync', msg, from);
    if (this.fence.stale(msg, rxMonoNs)) return ctx.drop('stale-round', msg, from);
    const theirs: Credentials = { epoch: msg.epoch, priority: msg.priority, node: msg.sender };
    if (this.role === 'master') {
      if (this.opts.pinnedMaster && msg.pinned) {
        // Two pinned masters: a configuration error. Outbidding each other
        // would raise the epoch forever; the worse (priority, id) yields.
        const ours: Credentials = { ...theirs, priority: this.opts.priority, node: this.id };
        if (compareCredentials({ ...theirs, epoch: 0 }, { ...ours, epoch: 0 }) < 0) return ctx.drop('worse-master', msg, from);
        ctx.notice({ kind: 'role', role: 'peer', epoch: msg.epoch, masterName: msg.name, why: `two pinned masters (--master): yielding to ${msg.name}` });
        this.master!.stop();
        this.master = null;
        this.fence.remember(msg, rxMonoNs);
        return this.follow(msg, from, rxMonoNs);
      }
      if (compareCredentials(theirs, this.credentials) <= 0) return ctx.drop('worse-master', msg, from);
      if (this.opts.pinnedMaster) {
        // Pinned: stay, and outbid the other master at our next SYNC.
        this.epoch = msg.epoch + 1;
        this.master!.epoch = this.epoch;
        ctx.notice({ kind: 'role', role: 'master', epoch: this.epoch, masterName: this.opts.name, why: `pinned; outbidding ${msg.name}` });
        return;
      }
      this.master!.stop();
      this.master = null;
    } else if (this.role === 'peer' && this.followed) {
      const f = this.followed;
      if (msg.sender === f.node && msg.epoch === f.epoch) {
        if (msg.round <= f.round) return ctx.drop('stale-round', msg, from);
      } else if (compareCredentials(theirs, f) < 0) {
        return ctx.drop('worse-master', msg, from);
      }
    }
    this.fence.remember(msg, rxMonoNs);
    this.follow(msg, from, rxMonoNs);
  }

  private follow(msg: SyncMessage, from: Address, rxMonoNs: bigint): void {
    const { ctx } = this;
    const address: Address = { address: resolveAdvertised(msg.unicastAddress, from.address), port: msg.unicastPort };
    const changed = this.role !== 'peer' || this.followed?.node !== msg.sender || this.followed.epoch !== msg.epoch;
    if (this.role === 'candidate') ctx.disarm('claim');
    this.livenessProbed = false;
    this.role = 'peer';
    this.claimEpoch = null;
    this.epoch = msg.epoch;
    this.followed = {
      epoch: msg.epoch,
      priority: msg.priority,
      node: msg.sender,
      name: msg.name,
      pinned: msg.pinned,
      address,
      steps: msg.steps,
      reference: msg.reference,
      round: msg.round,
      intervalNs: BigInt(msg.intervalMs) * 1_000_000n,
      lastSyncMonoNs: rxMonoNs,
    };
    this.resigned.heardMaster(rxMonoNs);
    if (changed) {
      ctx.notice({ kind: 'role', role: 'peer', epoch: msg.epoch, masterName: msg.name, why: 'following SYNC' });
      this.peer.masterChanged();
    }
    ctx.arm('election', span(this.intervalNs, ELECTION_TIMEOUT, ELECTION_JITTER, this.rank));
    this.peer.onSync(msg, address, rxMonoNs);
  }

  private onElectionTimeout(monoNs: bigint): void {
    if (this.role !== 'peer') return;
    const { ctx } = this;
    // Our answer to a worse claim, at our rank's turn: sent only if nothing as good came meanwhile.
    const pending = this.pendingClaim;
    this.pendingClaim = null;
    if (pending !== null && pending > this.epoch) {
      if (this.claims.worthClaiming({ ...this.credentials, epoch: pending })) return this.claim(pending);
      ctx.arm('election', span(this.intervalNs, ELECTION_TIMEOUT, ELECTION_JITTER, this.rank));
      return;
    }
    const f = this.followed;
    if (f) {
      // Heard from lately, by SYNC or by a reply to one of our exchanges: still our master.
      const answer = this.peer.lastAnswerMonoNs;
      const heard = answer !== null && answer > f.lastSyncMonoNs ? answer : f.lastSyncMonoNs;
      const timeout = span(f.intervalNs, ELECTION_TIMEOUT);
      if (monoNs - heard < timeout) {
        this.livenessProbed = false;
        ctx.arm('election', heard + timeout - monoNs + span(f.intervalNs, 0, ELECTION_JITTER, this.rank));
        return;
      }
      // SYNCs may be lost while the master lives: ask it directly before deposing it.
      if (!this.livenessProbed) {
        this.livenessProbed = true;
        const windowNs = span(f.intervalNs, LIVENESS_WINDOW);
        this.peer.probeLiveness(f.address, f.epoch, f.round, monoNs, windowNs);
        ctx.arm('election', windowNs);
        return;
      }
    }
    this.livenessProbed = false;
    if (f) {
      ctx.notice({ kind: 'role', role: 'peer', epoch: this.epoch, masterName: null, why: `no SYNC and no reply from ${f.name}` });
      this.followed = null;
      this.peer.cancelBurst();
    }
    if (this.opts.priority === 0) {
      ctx.arm('election', span(this.intervalNs, ELECTION_TIMEOUT, ELECTION_JITTER, this.rank));
      return;
    }
    if (this.epoch >= MAX_EPOCH) return; // never: epochs that high are refused
    // Stood down because our own clock was named faulty: no claim while it still is (resign.ts).
    if (!this.resigned.mayClaim(monoNs, this.intervalNs)) {
      ctx.arm('election', span(this.intervalNs, ELECTION_TIMEOUT, ELECTION_JITTER, this.rank));
      return;
    }
    // Someone as good or better claimed the next epoch already: wait for its SYNC.
    if (!this.claims.worthClaiming({ ...this.credentials, epoch: this.epoch + 1 })) {
      ctx.arm('election', span(this.intervalNs, ELECTION_TIMEOUT, ELECTION_JITTER, this.rank));
      return;
    }
    this.claim(this.epoch + 1);
  }

  private claim(epoch: number): void {
    const { ctx } = this;
    this.role = 'candidate';
    this.claimEpoch = epoch;
    this.pendingClaim = null;
    this.claims.heard({ ...this.credentials, epoch });
    ctx.disarm('election');
    ctx.notice({ kind: 'role', role: 'candidate', epoch, masterName: null, why: 'claiming mastership' });
    ctx.send('group', { type: MessageType.Claim, ...ctx.header(epoch, 0), priority: this.opts.priority, name: this.opts.name });
    ctx.arm('claim', span(this.intervalNs, CLAIM_WINDOW));
  }

  private onClaim(msg: ClaimMessage, from: Address, rxMonoNs: bigint): void {
    const { ctx } = this;
    if (msg.epoch <= this.epoch) return ctx.drop('stale-epoch', msg, from);
    if (msg.epoch > MAX_EPOCH) return ctx.drop('bad-sync', msg, from);
    const theirs: Credentials = { epoch: msg.epoch, priority: msg.priority, node: msg.sender };
    // Priority 0 never claims, so such a claim counts for nothing (see election.ts).
    if (msg.priority > 0) this.claims.heard(theirs);
    if (this.role === 'master') {
      // A live master keeps its place: a SYNC now makes the claimants stand down.
      if (msg.epoch > this.assertedFor) {
        this.assertedFor = msg.epoch;
        this.master!.startRound(rxMonoNs);
      }
      return;
    }
    const ours: Credentials = { epoch: msg.epoch, priority: this.opts.priority, node: this.id };
    if (this.role === 'candidate') {
      const mine: Credentials = { ...ours, epoch: this.claimEpoch! };
      if (compareCredentials(theirs, mine) > 0) this.standDown();
      return;
    }
    // A peer whose master was heard within the interval leaves the claim to
    // the master, which answers it with a SYNC; one whose master has gone
    // quiet competes, so that the best node wins, not the first to time out.
    const f = this.followed;
    if (f && rxMonoNs - f.lastSyncMonoNs < span(f.intervalNs, FRESH_MASTER)) return;
    if (this.opts.priority > 0 && this.claims.worthClaiming(ours) && this.resigned.mayClaim(rxMonoNs, this.intervalNs)) {
      // Better than every claim so far: answer at our rank's turn within the claim window, unless a better one comes
      // first. Already waiting to answer this epoch: another worse claim does not push our turn back.
      if (this.pendingClaim === msg.epoch) return;
      this.pendingClaim = msg.epoch;
      ctx.arm('election', span(this.intervalNs, 0, RESPONSE_WINDOW, this.rank));
      return;
    }
    this.pendingClaim = null;
    ctx.arm('election', span(this.intervalNs, ELECTION_TIMEOUT, ELECTION_JITTER, this.rank));
  }

  private standDown(): void {
    this.role = 'peer';
    this.claimEpoch = null;
    this.ctx.disarm('claim');
    this.ctx.arm('election', span(this.intervalNs, ELECTION_TIMEOUT, ELECTION_JITTER, this.rank));
  }

  private onLeave(msg: LeaveMessage, from: Address): void {
    if (this.master) return this.master.onLeave(msg.sender);
    const f = this.followed;
    if (f && msg.sender === f.node) {
      // Fenced like SYNC: a LEAVE from an older epoch or round is a replay.
      if (msg.epoch !== f.epoch || msg.round < f.round) return this.ctx.drop('stale-round', msg, from);
      this.ctx.notice({ kind: 'role', role: 'peer', epoch: this.epoch, masterName: null, why: `${msg.name} left` });
      this.followed = null;
      this.peer.cancelBurst();
      // Elect soon, but not all at once.
      this.ctx.arm('election', span(this.intervalNs, 0, ELECTION_JITTER, this.rank));
    }
  }

  /**
   * An elected master whose own clock its selection named faulty steps down: LEAVE, so that the next candidate
   * takes over at once, and no claim of ours until the clock recovers (resign.ts). A pinned master, or one that
   * claimed because nobody else would, serves the group's time instead (runaway.ts).
   */
  private resignIfFaulty(monoNs: bigint): void {
    const m = this.master;
    const fault = m?.own.fault ?? null;
    if (!m || fault === null || this.opts.pinnedMaster || this.resigned.lastResort) return;
    const { ctx } = this;
    ctx.notice({ kind: 'role', role: 'peer', epoch: this.epoch, masterName: null, why: `own-clock-faulty (${fault}): stepping down` });
    ctx.send('group', { type: MessageType.Leave, ...ctx.header(this.epoch, m.round), name: this.opts.name });
    m.stop();
    this.master = null;
    this.role = 'peer';
    this.followed = null;
    this.resigned.resign(fault, monoNs);
    ctx.arm('election', span(this.intervalNs, ELECTION_TIMEOUT, ELECTION_JITTER, this.rank));
  }

  /** The clock a master serves while its own is named faulty, by monotonic instant (the daemon stamps T3 with it); null: its own clock. */
  servedClock(): ((monoNs: bigint) => bigint) | null {
    const m = this.master;
    return m?.serving ? (monoNs) => m.servedAt(monoNs) : null;
  }

  private becomeMaster(epoch: number, why: string): void {
    const { ctx } = this;
    this.role = 'master';
    this.epoch = epoch;
    this.claimEpoch = null;
    this.followed = null;
    this.peer.cancelBurst();
    ctx.disarm('election');
    ctx.disarm('claim');
    this.master = new MasterRole(ctx, epoch);
    // A group this node followed as a peer: its first round is planned for that many members, not as a fast start for none.
    this.master.load.expect(this.peer.tableSizeSeen);
    ctx.notice({ kind: 'role', role: 'master', epoch, masterName: this.opts.name, why });
    this.master.startRound();
  }

  private stop(): void {
    const { ctx } = this;
    ctx.send('group', { type: MessageType.Leave, ...ctx.header(this.epoch, this.master?.round ?? this.followed?.round ?? 0), name: this.opts.name });
    this.master?.stop();
    this.peer.cancelBurst();
    ctx.disarm('election');
    ctx.disarm('claim');
  }

  /** This node's error bound at monoNs, which must be now (see ErrorBound and bound.ts). */
  errorBound(monoNs: bigint): ErrorBound {
    return nodeErrorBound(this.view(), monoNs);
  }

  status(): NodeStatus {
    return nodeStatus(this.view());
  }

  private view(): NodeView {
    return {
      id: this.id,
      opts: this.opts,
      ctx: this.ctx,
      role: this.role,
      epoch: this.epoch,
      followed: this.followed,
      master: this.master,
      peer: this.peer,
      resignedFor: this.resigned.reason,
      intervalNs: this.intervalNs,
    };
  }
}

/** SYNC timing a peer can live with: interval 10 ms to 1 h, collection shorter than it. */
function saneTiming(intervalMs: number, collectMs: number): boolean {
  return intervalMs >= 10 && intervalMs <= 3_600_000 && collectMs >= 1 && collectMs < intervalMs;
}
