/**
 * What bench:scale's generator process and its driver say to each other
 * (over the child process's IPC channel), and the record of one round.
 */

export interface GenConfig {
  group: string;
  port: number;
  interfaceAddress: string;
  domain: number;
  /** Emulated peers, named namePrefix + 5 digits (gen-00042). */
  members: number;
  namePrefix: string;
  /** Exchanges per burst after the warm-up (the daemon's --probes). */
  probes: number;
  /** Unicast sockets the peers share. */
  sockets: number;
  /** The daemon's --max-delay, ms: bounds the probe timeout and the best round trip a peer reports. */
  maxDelayMs: number;
  /** Synthetic offsets are uniform within ± this, ns. */
  offsetSpreadNs: number;
  /** The process ends by itself after this long, whatever happens. */
  maxRunMs: number;
}

/** One round as the emulated peers saw it. */
export interface GenRound {
  epoch: number;
  round: number;
  collectMs: number;
  peers: number;
  /** Bursts begun (slots that came before the next SYNC), and slots that never came. */
  bursts: number;
  notStarted: number;
  /** Requests sent; replies in time; replies after their probe timeout; probe timeouts; requests never answered. */
  requests: number;
  onTime: number;
  late: number;
  timeouts: number;
  /** Requests of this round never answered (timed out or outstanding at the next SYNC, less the late replies heard this round). */
  lost: number;
  /** Late replies to requests of earlier rounds, heard during this one. */
  lateEarlier: number;
  /** Bursts cut short by the report deadline; bursts with no usable exchange (nothing reported); REPORTs sent. */
  cut: number;
  failed: number;
  reports: number;
  /** ADJUST parts received for this round, and how many the master said there were. */
  adjustParts: number;
  adjustPartsAnnounced: number;
  /** ADJUST parts of an earlier round that arrived during this one. */
  lateAdjustParts: number;
  /** Entries in the parts received (all nodes, the master's own included). */
  tableRows: number;
  /** Emulated peers that reported and found their entry; how many of those were outliers; entries for peers that did not report. */
  gotEntry: number;
  outliers: number;
  unreportedEntries: number;
  /** Entries that do not answer the offset the member reported (a real peer would drop them). */
  wrongEntries: number;
  /** The reported (best) round trips. */
  bestDelayUs: { p50: number; p99: number; max: number };
  /** The generator's CPU during the round (user + system), µs, and the system part. */
  genCpuUs: number;
  genSysUs: number;
  /** Time its threads waited for a CPU while runnable during the round, µs (null: /proc cannot tell). */
  genWaitUs: number | null;
  /** Ended by stop(), not by the next SYNC. */
  partial: boolean;
}

export function newRound(epoch: number, round: number, collectMs: number, peers: number): GenRound {
  return {
    epoch, round, collectMs, peers,
    bursts: 0, notStarted: 0, requests: 0, onTime: 0, late: 0, lateEarlier: 0, timeouts: 0, lost: 0, cut: 0, failed: 0, reports: 0,
    adjustParts: 0, adjustPartsAnnounced: 0, lateAdjustParts: 0, tableRows: 0, gotEntry: 0, outliers: 0, unreportedEntries: 0, wrongEntries: 0,
    bestDelayUs: { p50: 0, p99: 0, max: 0 }, genCpuUs: 0, genSysUs: 0, genWaitUs: null, partial: false,
  };
}

/** Driver -> generator. */
export type ToGen = { cmd: 'start'; config: GenConfig } | { cmd: 'stop' };

/** Generator -> driver. */
export type FromGen =
  | { ev: 'ready'; ports: number[]; directSend: boolean }
  | { ev: 'sync'; epoch: number; round: number; collectMs: number }
  | { ev: 'round'; round: GenRound }
  | { ev: 'done'; cpuUs: number; drops: number | null; foreign: number; sendErrors: number; rssMb: number }
  | { ev: 'error'; message: string };
