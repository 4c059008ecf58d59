/**
 * What the simulator is asked to simulate (SimOptions, its defaults, the
 * faults) and what it returns (SimResult and its records). The simulation
 * itself is simulator.ts; the report built from a result, report.ts.
 */
import type { NodeStatus } from '../core/node-status.js';
import { DEFAULTS } from '../core/options.js';
import type { ErrorBound, Notice, RoundRow } from '../core/types.js';
import type { BoundHonesty } from './honesty.js';

export interface SimOptions {
  nodes: number;
  rounds: number;
  intervalNs: bigint;
  collectTimeoutNs: bigint;
  /** Starting offsets of n0, n1, ... (nodes beyond the list draw one within ±offsetSpreadNs). */
  offsetsNs: bigint[];
  offsetSpreadNs: bigint;
  /** Pinned master, or null: the nodes elect one. */
  master: string | null;
  /** Each node's drift is drawn uniformly within ±driftPpm. */
  driftPpm: number;
  delayNs: bigint;
  jitterNs: bigint;
  asymmetryNs: bigint;
  /** Probability that a datagram is lost, per receiver, 0..1. */
  loss: number;
  toleranceNs: bigint;
  probes: number;
  maxSlewPpm: number;
  stepThresholdNs: bigint;
  seed: number;
  /** Crash (silently stop) the master at the start of this round, or null. */
  crashMasterAtRound: number | null;
  /** Cut nodes [0, partitionSize) off from the rest during [from, to) rounds, or null. */
  partition: { size: number; fromRound: number; toRound: number } | null;
  /** Samples of the ground truth per interval. */
  samplesPerInterval: number;
  /** Per-node faults (berkeleyd simulate --fault). */
  faults: Fault[];
  /**
   * A model of a busy receiver (off when 0 or absent): every unicast datagram
   * a node receives (on the master: every request and report) occupies it
   * for receiveCostNs, one after another; one that would wait longer than
   * receiveQueueNs (the receive buffer, in time) is dropped, as the kernel
   * drops a full socket's datagrams. The kernel's arrival stamp stays the
   * arrival time; the node handles it when its turn comes.
   */
  receiveCostNs?: bigint;
  receiveQueueNs?: bigint;
}

/**
 * A fault of one node, as `--fault` spells it:
 *   n3:drift=2000   its oscillator runs 2000 ppm off (no frequency limit can follow it)
 *   n3:jump=5ms@20  its clock is stepped by 5 ms from outside when the group's 20th round starts
 *   n3:lie=3ms      every REPORT it sends says its offset is 3 ms more than measured
 *   n3:mute@10      from the group's 10th round on it sends nothing
 */
export type Fault =
  | { node: string; kind: 'drift'; ppm: number }
  | { node: string; kind: 'jump'; ns: bigint; round: number }
  | { node: string; kind: 'lie'; ns: bigint }
  | { node: string; kind: 'mute'; round: number };

export const SIM_DEFAULTS: SimOptions = {
  nodes: 4,
  rounds: 10,
  intervalNs: DEFAULTS.intervalNs,
  collectTimeoutNs: DEFAULTS.collectTimeoutNs,
  offsetsNs: [],
  offsetSpreadNs: 1_000_000_000n,
  master: 'n0',
  driftPpm: 0,
  delayNs: 100_000n,
  jitterNs: 10_000n,
  asymmetryNs: 0n,
  loss: 0,
  toleranceNs: DEFAULTS.toleranceNs,
  probes: DEFAULTS.probes,
  maxSlewPpm: 500,
  stepThresholdNs: DEFAULTS.stepThresholdNs,
  seed: 1,
  crashMasterAtRound: null,
  partition: null,
  samplesPerInterval: 20,
  faults: [],
};


/** What the simulator saw; the report is built from it. */
export interface RoundRecord {
  /** 1-based count of rounds completed in the group (any master). */
  index: number;
  master: string;
  epoch: number;
  round: number;
  averageNs: bigint;
  quorum: boolean;
  table: (RoundRow & { name: string })[];
  /** The synchronized time (the master's group clock plus the average) and the true (virtual) time when the round was collected. */
  groupTimeNs: bigint;
  trueTimeNs: bigint;
  /** Largest disagreement between two group clocks at the last sample before the next round completed. */
  spreadAfterNs: bigint | null;
}

/** One ground-truth sample: all live clocks, and the good ones (no fault) alone. */
export interface TruthSample {
  label: number;
  /** True (virtual) time of the sample. */
  atNs: bigint;
  spreadNs: bigint;
  /** Spread of the live clocks without a fault. */
  goodSpreadNs: bigint;
  /** Mean of (group clock − true time) over the live clocks without a fault, ns. */
  goodMeanOffsetNs: number;
}

export interface SimResult {
  options: SimOptions;
  rounds: RoundRecord[];
  /** Every ground-truth sample. */
  samples: TruthSample[];
  /** Every notice of every node, in order (empty when run with keepEvents: false). */
  events: { atNs: bigint; node: string; notice: Notice }[];
  /** Members the master named faulty (reason) or recovered (null), with the group's round (1-based) of the table that did it. */
  flags: { node: string; reason: string | null; round: number; atNs: bigint }[];
  statuses: NodeStatus[];
  /** Unicast datagrams dropped by the receive model (receiveCostNs), per node name; empty without it. */
  receiveDrops: Record<string, number>;
  startOffsetsNs: bigint[];
  driftsPpm: number[];
  /** The error bound against the ground truth (honesty.ts). */
  bound: BoundHonesty;
  wallMs: number;
}

/** How to run, beside what to simulate: neither changes what happens in the group. */
export interface SimInternals {
  /** Deliver every part of every ADJUST table to every receiver (the reference the tests compare with; see Multicast). */
  deliverAll?: boolean;
  /**
   * Keep every notice of every node in SimResult.events (default true). The
   * report never reads them, and at 10,000 nodes they are millions of
   * records (most of them 'dropped'): `berkeleyd simulate` leaves them out.
   */
  keepEvents?: boolean;
  /** Called at every ground-truth sample with the group's time (null: no master) and each live node's clock and error bound (the tests). */
  onSample?: (atNs: bigint, groupNs: bigint | null, nodes: readonly { name: string; clockNs: bigint; bound: ErrorBound }[]) => void;
}
