/**
 * What `berkeleyd status --json` prints: one object, times as decimal
 * strings of nanoseconds (JSON numbers cannot hold them exactly).
 */
import type { DaemonOptions, Counters } from './daemon.js';
import type { VirtualClock } from '../clock/index.js';
import type { Node } from '../core/node.js';

export interface MemberJson {
  nodeId: string;
  /** Member clock minus master clock at its last report, ns. */
  offsetNs: string;
  delayNs: string;
  lastRound: number;
  address: string;
}

export interface RoundRowJson {
  nodeId: string;
  offsetNs: string;
  delayNs: string;
  adjustmentNs: string;
  outlier: boolean;
}

export interface StatusJson {
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
  clock: { kind: string; pendingNs: string; appliedNs: string; steps: number; maxSlewPpm: number; stepThresholdNs: string; simDriftPpm: number | null; simOffsetNs: string | null };
  members: MemberJson[];
  /** The master's last table; quorum false: no majority agreed, the group followed the master. */
  lastRound: { epoch: number; round: number; averageNs: string | null; quorum: boolean; table: RoundRowJson[] } | null;
  counters: Counters & { dropped: Record<string, number> };
  config: { group: string; port: number; interface: string; unicastPort: number; domain: number; intervalMs: number; collectTimeoutMs: number; probes: number; toleranceNs: string; priority: number; pinnedMaster: boolean; authenticated: boolean };
  uptimeS: number;
  pid: number;
}

export function buildStatus(
  d: { clock: VirtualClock; node: Node; counters: Counters; startedMonoNs: bigint },
  opts: DaemonOptions,
  unicastPort: number,
): StatusJson {
  const mono = process.hrtime.bigint();
  const groupTimeNs = d.clock.at(mono);
  const s = d.node.status();
  const c = d.clock.state();
  const str = (x: bigint | null): string | null => (x === null ? null : x.toString());
  return {
    nodeId: s.name,
    role: s.role,
    masterId: s.masterName,
    epoch: s.epoch,
    round: s.round,
    synced: s.synced,
    groupTimeNs: groupTimeNs.toString(),
    monotonicNs: mono.toString(),
    lastAdjustmentNs: str(s.lastAdjustmentNs),
    lastOffsetNs: str(s.lastOffsetNs),
    lastDelayNs: str(s.lastDelayNs),
    frequencyPpm: d.clock.frequencyPpm(),
    clock: {
      kind: c.kind,
      pendingNs: c.pendingNs.toString(),
      appliedNs: c.appliedNs.toString(),
      steps: c.steps,
      maxSlewPpm: c.maxSlewPpm,
      stepThresholdNs: c.stepThresholdNs.toString(),
      simDriftPpm: c.driftPpm ?? null,
      simOffsetNs: str(c.offsetNs ?? null),
    },
    members: s.members.map((m) => ({ nodeId: m.name, offsetNs: m.offsetNs.toString(), delayNs: m.delayNs.toString(), lastRound: m.lastRound, address: m.address.address })),
    lastRound:
      s.role === 'master' && s.lastTable.length > 0
        ? {
            epoch: s.epoch,
            round: s.lastTableRound,
            averageNs: str(s.lastAverageNs),
            quorum: s.lastQuorum,
            table: s.lastTable.map((r) => ({ nodeId: r.name, offsetNs: r.offsetNs.toString(), delayNs: r.delayNs.toString(), adjustmentNs: r.adjustmentNs.toString(), outlier: r.outlier })),
          }
        : null,
    counters: { ...d.counters, rejected: { ...d.counters.rejected }, net: structuredClone(d.counters.net), dropped: { ...(s.dropped as Record<string, number>) } },
    config: {
      group: opts.net.group,
      port: opts.net.port,
      interface: opts.net.interfaceAddress,
      unicastPort,
      domain: opts.node.domain,
      intervalMs: Number(opts.node.intervalNs / 1_000_000n),
      collectTimeoutMs: Number(opts.node.collectTimeoutNs / 1_000_000n),
      probes: opts.node.probes,
      toleranceNs: opts.node.toleranceNs.toString(),
      priority: opts.node.priority,
      pinnedMaster: opts.node.pinnedMaster,
      authenticated: opts.keys !== null,
    },
    uptimeS: Number(mono - d.startedMonoNs) / 1e9,
    pid: process.pid,
  };
}
