/**
 * What `berkeleyd status --json` prints: one object, times as decimal
 * strings of nanoseconds (JSON numbers cannot hold them exactly). It is a
 * contract (README, "Status contract"): fields are only added within a
 * schemaVersion; renaming, removing or changing the meaning of one raises it.
 */
import type { DaemonOptions, Counters } from './types.js';
import { readKernelClock, kernelState, type KernelState, type SystemClock, type VirtualClock } from '../clock/index.js';
import type { Node } from '../core/node.js';
import type { Keyring } from '../wire/keys.js';
import { publishedAt, type BoundPublisher } from './publish.js';
import { boundJson, type BoundJson } from './bound.js';
import type { ReferenceJson, ReferenceLink } from './reference.js';

export interface MemberJson {
  nodeId: string;
  /** Member clock minus master clock at its last report, ns. */
  offsetNs: string;
  delayNs: string;
  lastRound: number;
  address: string;
  /** The frequency its own estimate calls for against the group (REPORT), ppm, or null before it has one. */
  frequencyPpm: number | null;
  /** Named faulty by this master, and why ('outlier', 'frequency-limit'), or null. */
  faulty: string | null;
  /** The round it was named faulty in, or null. */
  faultySinceRound: number | null;
}

/** Raised when a field is renamed, removed or changes meaning; adding fields keeps it. */
export const STATUS_SCHEMA_VERSION = 1;

export type ClockState = 'free-running' | 'locked' | 'holdover';

export interface RoundRowJson {
  nodeId: string;
  offsetNs: string;
  delayNs: string;
  adjustmentNs: string;
  outlier: boolean;
  /** Half-width of its interval in the selection, ns. */
  errorNs: string;
  frequencyPpm: number | null;
  faulty: string | null;
}

/** The error bound's fields (bound.ts): earliestNs, latestNs, errorBoundNs (null: no bound), boundState, boundWhy, boundDriftPpb. */
export interface StatusJson extends BoundJson {
  schemaVersion: number;
  nodeId: string;
  role: 'master' | 'peer' | 'candidate';
  masterId: string | null;
  epoch: number;
  round: number;
  synced: boolean;
  /** The group clock and process.hrtime.bigint(), read at the same instant. */
  groupTimeNs: string;
  monotonicNs: string;
  lastAdjustmentNs: string | null;
  lastOffsetNs: string | null;
  lastDelayNs: string | null;
  frequencyPpm: number;
  /** Seconds since this node last applied a correction; null before the first. */
  lastCorrectionAgeS: number | null;
  clock: {
    kind: string;
    state: ClockState;
    pendingNs: string;
    appliedNs: string;
    steps: number;
    /** System clock: steps of CLOCK_REALTIME made by someone else, noticed within 10 s; else null. */
    foreignSteps: number | null;
    maxSlewPpm: number;
    stepThresholdNs: string;
    simDriftPpm: number | null;
    simOffsetNs: string | null;
    /** System clock: the frequency it started from and the one it runs at outside slews, ppm (positive: faster); else null. */
    startFrequencyPpm: number | null;
    disciplinedFrequencyPpm: number | null;
    /** System clock: STA_UNSYNC kept clear by this daemon; else null. */
    synchronized: boolean | null;
    /** The kernel's CLOCK_REALTIME state (adjtimex, read without privilege), whatever the clock kind; null where unreadable. */
    kernel: KernelState | null;
  };
  members: MemberJson[];
  /** The master's last table; quorum false: no majority agreed, the group followed the master. */
  lastRound: { epoch: number; round: number; averageNs: string | null; quorum: boolean; commonPpm: number; marginNs: string; table: RoundRowJson[] } | null;
  /**
   * Faults: on the master, the members named faulty now and how many namings so far; on any node, whether
   * the master names this node faulty, and whether its own frequency estimate needs more than the limit.
   */
  faults: {
    members: { nodeId: string; reason: string; sinceRound: number | null }[];
    named: number;
    thisNode: boolean;
    cannotFollow: boolean;
    /**
     * This node's own clock, judged as master (runaway.ts): null while it agrees; else 'own-clock-faulty' and the
     * fault ('outlier', 'frequency-limit'), and what it did: a pinned master serves the group's time in place of its
     * clock ('serving'), an elected one stood down and claims nothing until the clock recovers ('stood-down').
     */
    ownClock: { reason: 'own-clock-faulty'; fault: string; action: 'serving' | 'stood-down' } | null;
  };
  /**
   * The member table at scale: on a peer, whether its reports reach the
   * master's table (inTable false: leftOut says why, 'table-full' or
   * 'not-in-table', and the node is not synchronized); on the master, its
   * limit (--max-members), the nodes refused beyond it so far, and whether
   * the last round refused any (full). probes: the burst the master asks
   * for this round (on a peer: the one it runs).
   */
  membership: { inTable: boolean | null; leftOut: string | null; probes: number; maxMembers: number; refused: number; full: boolean };
  counters: Counters & { dropped: Record<string, number> };
  config: { keyIds: number[]; metrics: string | null; group: string; port: number; interface: string; unicastPort: number; domain: number; intervalMs: number; collectTimeoutMs: number; probes: number; toleranceNs: string; maxAdjustNs: string | null; priority: number; pinnedMaster: boolean; authenticated: boolean };
  /** --clockbound: the segment written, how many writes, seconds since the last, and the status it says (0 unknown, 1 synchronized, 2 free running); null when none is written. */
  clockbound?: { path: string; writes: number; lastWriteAgeS: number | null; status: number | null } | null;
  /** The master's steps from the top of a hierarchy and whether its group's time follows a reference (its SYNC; this node's own as master); null without a master. */
  masterSteps?: number | null;
  masterReference?: boolean | null;
  /** --reference: the external reference and its state; null without one. */
  reference?: ReferenceJson | null;
  uptimeS: number;
  pid: number;
}

/** Locked: corrected within the last 3 intervals; holdover: corrected before, not lately; free-running: never. */
export function clockState(lastCorrectionMonoNs: bigint | null, monoNs: bigint, intervalNs: bigint): ClockState {
  if (lastCorrectionMonoNs === null) return 'free-running';
  return monoNs - lastCorrectionMonoNs <= 3n * intervalNs ? 'locked' : 'holdover';
}

export function buildStatus(
  d: { clock: VirtualClock | SystemClock; node: Node; counters: Counters; startedMonoNs: bigint; lastCorrectionMonoNs: bigint | null; keys: Keyring | null; metricsAddress: string | null; clockbound?: BoundPublisher | null; reference?: ReferenceLink | null },
  opts: DaemonOptions,
  unicastPort: number,
): StatusJson {
  const mono = process.hrtime.bigint();
  const groupTimeNs = d.clock.at(mono);
  const s = d.node.status();
  const c = d.clock.state();
  const sys = c.kind === 'system' ? c : null;
  const virt = c.kind === 'system' ? null : c;
  const read = sys ? null : readKernelClock();
  const kernel = sys ? sys.kernel : read ? kernelState(read.state, read.timex) : null;
  const str = (x: bigint | null): string | null => (x === null ? null : x.toString());
  return {
    schemaVersion: STATUS_SCHEMA_VERSION,
    nodeId: s.name,
    role: s.role,
    masterId: s.masterName,
    epoch: s.epoch,
    round: s.round,
    synced: s.synced,
    groupTimeNs: groupTimeNs.toString(),
    monotonicNs: mono.toString(),
    ...boundJson(groupTimeNs, d.node.errorBound(mono)),
    lastAdjustmentNs: str(s.lastAdjustmentNs),
    lastOffsetNs: str(s.lastOffsetNs),
    lastDelayNs: str(s.lastDelayNs),
    frequencyPpm: d.clock.frequencyPpm(),
    lastCorrectionAgeS: d.lastCorrectionMonoNs === null ? null : Number(mono - d.lastCorrectionMonoNs) / 1e9,
    clock: {
      kind: c.kind,
      state: clockState(d.lastCorrectionMonoNs, mono, opts.node.intervalNs),
      pendingNs: c.pendingNs.toString(),
      appliedNs: c.appliedNs.toString(),
      steps: c.steps,
      foreignSteps: sys?.foreignSteps ?? null,
      maxSlewPpm: c.maxSlewPpm,
      stepThresholdNs: c.stepThresholdNs.toString(),
      simDriftPpm: virt?.driftPpm ?? null,
      simOffsetNs: str(virt?.offsetNs ?? null),
      startFrequencyPpm: sys?.startFrequencyPpm ?? null,
      disciplinedFrequencyPpm: sys?.disciplinedFrequencyPpm ?? null,
      synchronized: sys?.synchronized ?? null,
      kernel,
    },
    members: s.members.map((m) => ({
      nodeId: m.name,
      offsetNs: m.offsetNs.toString(),
      delayNs: m.delayNs.toString(),
      lastRound: m.lastRound,
      address: m.address.address,
      frequencyPpm: m.frequencyPpm,
      faulty: m.faulty,
      faultySinceRound: m.faultySinceRound,
    })),
    lastRound:
      s.role === 'master' && s.lastTable.length > 0
        ? {
            epoch: s.epoch,
            round: s.lastTableRound,
            averageNs: str(s.lastAverageNs),
            quorum: s.lastQuorum,
            commonPpm: s.lastCommonPpm,
            marginNs: s.lastMarginNs.toString(),
            table: s.lastTable.map((r) => ({
              nodeId: r.name,
              offsetNs: r.offsetNs.toString(),
              delayNs: r.delayNs.toString(),
              adjustmentNs: r.adjustmentNs.toString(),
              outlier: r.outlier,
              errorNs: r.errorNs.toString(),
              frequencyPpm: r.frequencyPpm,
              faulty: r.faulty,
            })),
          }
        : null,
    faults: {
      members: s.members.filter((m) => m.faulty !== null).map((m) => ({ nodeId: m.name, reason: m.faulty!, sinceRound: m.faultySinceRound })),
      named: s.faultsNamed,
      thisNode: s.namedFaulty,
      cannotFollow: s.cannotFollow,
      ownClock: s.ownClockFault === null ? null : { reason: 'own-clock-faulty', fault: s.ownClockFault, action: s.role === 'master' ? 'serving' : 'stood-down' },
    },
    membership: {
      inTable: s.role === 'master' ? null : s.leftOut === null,
      leftOut: s.leftOut,
      probes: s.probes,
      maxMembers: s.maxMembers,
      refused: s.membersRefused,
      full: s.tableFull,
    },
    counters: { ...d.counters, rejected: { ...d.counters.rejected }, reloads: { ...d.counters.reloads }, net: structuredClone(d.counters.net), dropped: { ...(s.dropped as Record<string, number>) } },
    config: {
      group: opts.net.group,
      port: opts.net.port,
      interface: opts.net.interfaceAddress,
      unicastPort,
      domain: opts.node.domain,
      intervalMs: Number(opts.node.intervalNs / 1_000_000n),
      collectTimeoutMs: Number(opts.node.collectTimeoutNs / 1_000_000n),
      probes: opts.node.probes,
      // The engine's live options: reload may have changed these.
      toleranceNs: d.node.ctx.opts.toleranceNs.toString(),
      maxAdjustNs: str(d.node.ctx.opts.maxAdjustNs),
      priority: d.node.ctx.opts.priority,
      pinnedMaster: opts.node.pinnedMaster,
      authenticated: d.keys !== null,
      keyIds: d.keys ? d.keys.ids() : [],
      metrics: d.metricsAddress,
    },
    clockbound: publishedAt(d.clockbound ?? null, mono),
    masterSteps: s.masterSteps,
    masterReference: s.masterReference,
    reference: d.reference?.json() ?? null,
    uptimeS: Number(mono - d.startedMonoNs) / 1e9,
    pid: process.pid,
  };
}
