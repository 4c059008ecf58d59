/**
 * What a node reports of itself: its status (the daemon's `status`, the
 * simulator's summary) and its error bound (bound.ts), computed from a view
 * of its state that node.ts hands over. Nothing here changes that state.
 */
import { computeBound } from './bound.js';
import type { Context } from './context.js';
import type { Credentials } from './election.js';
import type { MasterRole, Member } from './master.js';
import type { NodeOptions } from './options.js';
import type { PeerRole } from './peer.js';
import type { Address, DropReason, ErrorBound, FaultReason, Role, RoundRow } from './types.js';

/** The master this node follows, as its last SYNC described it. */
export interface Followed extends Credentials {
  name: string;
  pinned: boolean;
  address: Address;
  /** The master's steps from the top of a hierarchy, and whether its time follows a reference (SYNC). */
  steps: number;
  reference: boolean;
  round: number;
  intervalNs: bigint;
  /** Monotonic arrival time of its last SYNC. */
  lastSyncMonoNs: bigint;
}

export interface NodeStatus {
  name: string;
  node: bigint;
  role: Role;
  masterName: string | null;
  /** The master's steps from the top and reference flag: this node's own as master, else from the followed master's last SYNC (null: none followed). */
  masterSteps: number | null;
  masterReference: boolean | null;
  epoch: number;
  round: number;
  synced: boolean;
  lastAdjustmentNs: bigint | null;
  frequencyPpm: number;
  lastOffsetNs: bigint | null;
  lastDelayNs: bigint | null;
  members: Member[];
  lastTable: RoundRow[];
  lastTableRound: number;
  lastQuorum: boolean;
  lastAverageNs: bigint | null;
  /** The master's last common frequency (ppm) and selection margin (ns). */
  lastCommonPpm: number;
  lastMarginNs: bigint;
  /** Members named faulty so far by this node as master. */
  faultsNamed: number;
  /** The master's last table named this node faulty. */
  namedFaulty: boolean;
  /** This node's frequency estimate needs more than the frequency limit. */
  cannotFollow: boolean;
  /** As master: its own clock is named faulty, and why; as a peer: why it stood down as master, until its clock recovers (resign.ts). */
  ownClockFault: FaultReason | null;
  /** As master: it serves the group's time in place of its own faulty clock (runaway.ts). */
  servingGroupTime: boolean;
  /** As a peer: why its reports reach no table of the master's (null: they do; see peer.ts). */
  leftOut: 'table-full' | 'not-in-table' | null;
  /** As master: the burst asked of peers this round, the member limit, and the nodes it refused (in all). */
  probes: number;
  maxMembers: number;
  membersRefused: number;
  /** As master: the last round refused nodes (the table is full). */
  tableFull: boolean;
  dropped: Partial<Record<DropReason, number>>;
}

/** The state of a node its reports are made from. */
export interface NodeView {
  id: bigint;
  opts: NodeOptions;
  ctx: Context;
  role: Role;
  epoch: number;
  followed: Followed | null;
  master: MasterRole | null;
  peer: PeerRole;
  /** Why it stood down as master, until its clock recovers (resign.ts). */
  resignedFor: FaultReason | null;
  /** The interval that times elections: the followed master's, else its own. */
  intervalNs: bigint;
}

/** A node's error bound at monoNs, which must be now (see ErrorBound and bound.ts). */
export function nodeErrorBound(v: NodeView, monoNs: bigint): ErrorBound {
  const { ctx } = v;
  return computeBound(
    {
      role: v.role,
      synced: ctx.synced,
      namedFaulty: v.role !== 'master' && v.peer.namedFaulty,
      ownClockFaulty: (v.master?.own.fault ?? null) !== null,
      leftOut: v.peer.leftOut,
      cannotFollow: ctx.atFrequencyLimit,
      following: v.followed !== null,
      update: ctx.lastUpdate,
      appliedNowNs: ctx.clock.appliedNs(),
      typicalDelayNs: v.peer.typicalDelayNs,
      averagesNs: v.master ? (v.master.lastAverageNs === null ? [] : [v.master.lastAverageNs]) : v.peer.averagesNs,
      frequencyErrorPpm: ctx.frequencyErrorPpm,
      intervalNs: v.intervalNs,
      collectNs: v.opts.collectTimeoutNs,
    },
    monoNs,
  );
}

/** What a node reports of itself (the daemon's status, the simulator's summary). */
export function nodeStatus(v: NodeView): NodeStatus {
  const { ctx } = v;
  return {
    name: v.opts.name,
    node: v.id,
    role: v.role,
    masterName: v.role === 'master' ? v.opts.name : (v.followed?.name ?? null),
    masterSteps: v.role === 'master' ? v.opts.steps : (v.followed?.steps ?? null),
    masterReference: v.role === 'master' ? v.opts.reference : (v.followed?.reference ?? null),
    epoch: v.epoch,
    round: v.master?.round ?? v.followed?.round ?? 0,
    // A peer left out of the table gets no corrections: whatever it did before, it is not synchronized. Nor is a
    // master whose own clock is named faulty: it serves the group's time, but its own clock is off (runaway.ts).
    synced: ctx.synced && (v.role === 'master' ? !v.master?.own.fault : v.peer.leftOut === null),
    lastAdjustmentNs: ctx.lastAdjustmentNs,
    frequencyPpm: ctx.frequencyPpm,
    lastOffsetNs: v.peer.lastOffsetNs,
    lastDelayNs: v.peer.lastDelayNs,
    members: v.master ? [...v.master.members.values()] : [],
    lastTable: v.master?.lastTable ?? [],
    lastTableRound: v.master?.lastTableRound ?? 0,
    lastQuorum: v.master?.lastQuorum ?? true,
    lastAverageNs: v.master?.lastAverageNs ?? null,
    lastCommonPpm: v.master?.lastCommonPpm ?? 0,
    lastMarginNs: v.master?.lastMarginNs ?? 0n,
    faultsNamed: v.master?.faultsNamed ?? 0,
    namedFaulty: v.peer.namedFaulty,
    cannotFollow: ctx.atFrequencyLimit,
    ownClockFault: v.master ? v.master.own.fault : v.resignedFor,
    servingGroupTime: v.master?.serving ?? false,
    leftOut: v.role === 'master' ? null : v.peer.leftOut,
    probes: v.master?.load.probes ?? v.peer.probes,
    maxMembers: v.opts.maxMembers,
    membersRefused: v.master?.limit.refusedTotal ?? 0,
    tableFull: v.master?.limit.full ?? false,
    dropped: Object.fromEntries(ctx.counters),
  };
}

