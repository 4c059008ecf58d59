/**
 * Events into and actions out of the protocol engine (sans-IO).
 *
 * The engine never touches a socket, a timer or a clock setter: the daemon
 * (real sockets, real timers) and the simulator (virtual time) feed it events
 * and carry out the actions it returns, in order, at once.
 */
import type { AdjustEntry, Message } from '../wire/messages.js';

export interface Address {
  address: string;
  port: number;
}

/** Where a message goes: the multicast group, or one node by unicast. */
export type Destination = 'group' | Address;

export type TimerName =
  | 'round'      // master: next SYNC
  | 'collect'    // master: stop waiting for reports
  | 'slot'       // peer: start of this node's burst
  | 'probe'      // peer: a request went unanswered
  | 'election'   // no SYNC heard for too long
  | 'claim';     // the claim window closed

export type Event =
  | { type: 'start'; monoNs: bigint }
  | { type: 'stop'; monoNs: bigint }
  /** rxMonoNs: monotonic time taken first thing on arrival, before decoding. */
  | { type: 'datagram'; msg: Message; from: Address; rxMonoNs: bigint }
  | { type: 'timer'; timer: TimerName; monoNs: bigint };

export type Role = 'master' | 'peer' | 'candidate';

/** What happened, for logs, status and the simulator's report. Never needed for correctness. */
export type Notice =
  | { kind: 'round'; epoch: number; round: number; averageNs: bigint; quorum: boolean; table: RoundRow[] }
  | { kind: 'corrected'; epoch: number; round: number; correctionNs: bigint; adjustmentNs: bigint; step: boolean; frequencyPpm: number }
  | { kind: 'coarse-step'; correctionNs: bigint }
  | { kind: 'measured'; round: number; offsetNs: bigint; delayNs: bigint; samples: number }
  | { kind: 'burst-failed'; round: number; why: string }
  /** A correction larger than --max-adjust, refused. */
  | { kind: 'refused'; round: number; correctionNs: bigint; maxAdjustNs: bigint }
  | { kind: 'role'; role: Role; epoch: number; masterName: string | null; why: string }
  | { kind: 'member-joined'; name: string; node: bigint }
  | { kind: 'member-left'; name: string; node: bigint; why: 'silence' | 'leave' }
  /** The master names a member faulty (reason), or a faulty member recovered (reason null). Once per change. */
  | { kind: 'member-faulty'; name: string; node: bigint; reason: FaultReason | null; round: number }
  /** This node's own estimate needs more frequency than it may apply (atLimit), or no longer does. Once per change. */
  | { kind: 'cannot-follow'; atLimit: boolean; estimatePpm: number; commonPpm: number }
  /** As master, this node's own clock was left out of its own average FAULTY_OUTLIER_ROUNDS rounds in a row (or agrees again). */
  | { kind: 'self-outlier'; outlier: boolean; round: number }
  /**
   * As master, this node named its own clock faulty (fault), or recovered (null): a pinned master then serves the
   * group's time in its place (ratePpm: the group's rate it serves, against the monotonic clock); an elected one steps down.
   */
  | { kind: 'own-clock'; fault: FaultReason | null; round: number; ratePpm: number }
  /** The master marked this node faulty in its table, or stopped doing so. Once per change. */
  | { kind: 'named-faulty'; faulty: boolean; round: number }
  /** A peer's reports reach the master's table again (inTable), or no longer: why. */
  | { kind: 'table'; inTable: boolean; why: 'table-full' | 'not-in-table' | null; round: number }
  /** The master refuses members beyond --max-members (refusing), or no longer. */
  | { kind: 'member-limit'; refusing: boolean; refused: number; max: number; round: number }
  /** As master with a reference (reference.ts): it is followed, the group is slewing back to it, or it is lost (why). */
  | { kind: 'reference'; state: 'following' | 'returning' | 'lost'; why: string | null; round: number }
  | { kind: 'dropped'; reason: DropReason; type: number; from: Address };

/** Why the master names a member faulty. */
export type FaultReason =
  | 'outlier'          // left out of the average several rounds in a row
  | 'frequency-limit'; // its frequency correction sits at the limit: its clock cannot be followed

/** One line of a round's table, as the master saw it. */
export interface RoundRow {
  node: bigint;
  name: string;
  /** Node clock minus master clock; 0 for the master. */
  offsetNs: bigint;
  delayNs: bigint;
  adjustmentNs: bigint;
  outlier: boolean;
  /** The half-width of the clock's interval in the selection, ns (0 for the master: it measured nothing). */
  errorNs: bigint;
  /** The frequency the node's estimate calls for (REPORT), ppm, or null. */
  frequencyPpm: number | null;
  /** Named faulty, and why, or null. */
  faulty: FaultReason | null;
}

/** Why the engine ignored a well-formed message. Each is a status counter. */
export type DropReason =
  | 'stale-epoch'       // from an epoch older than the one followed
  | 'stale-round'       // SYNC or ADJUST for a round already seen (replay or duplicate)
  | 'worse-master'      // SYNC from a master that loses to the one followed
  | 'foreign-master'    // ADJUST from a node that is not the master followed
  | 'bad-sync'          // SYNC or CLAIM with values no peer can follow (epoch at the top of the range, absurd timing)
  | 'not-master'        // a request or report sent to a node that is not master
  | 'wrong-round'       // report for another round than the current one
  | 'unexpected-reply'  // a reply that echoes no outstanding request
  | 'no-measurement'    // ADJUST for a round this node did not report in
  | 'rate-limited'      // too many requests from one node in one round, or from too many nodes
  | 'no-exchange'       // a report from a node that made no time exchange this round
  | 'table-full'        // a report from a new node when the member table is full
  | 'stale-request'     // a request that waited in the master's queue longer than its sender waits for the reply
  | 'implausible-report' // a report whose fields cannot be true: round trip above --max-delay, frequency beyond any clock's
  | 'bad-turnaround'    // a reply whose T3 − T2 is negative or above --max-delay
  | 'negative-delay'    // an exchange whose round trip came out negative (a stepped clock, or forged stamps)
  | 'wrong-report'      // ADJUST entry that does not answer the offset this node reported (a corrupted or forged report)
  | 'implausible-adjust'; // ADJUST whose common frequency is beyond any clock's limit

export type Action =
  /**
   * Send msg. A TimeRequest's originNs (t1) and a TimeReply's transmitNs
   * (T3) were read when the action was made; whoever carries it out may
   * read the clock again just before the system call and write it into the
   * message object: the engine reads t1 back from that object.
   */
  | { type: 'send'; to: Destination; msg: Message }
  | { type: 'arm'; timer: TimerName; afterNs: bigint }
  | { type: 'disarm'; timer: TimerName }
  /** Correct the clock by correctionNs (replacing the rest of any slew). */
  | { type: 'correct'; correctionNs: bigint; allowStep: boolean }
  /** Set the frequency correction, absolute, ppm. */
  | { type: 'frequency'; ppm: number }
  | { type: 'notice'; notice: Notice };

export type { AdjustEntry };

/**
 * What a node can promise about its own clock against the group's time
 * (docs/protocol.md, "Error bound"). At monotonic instant t ≥ asOfMonoNs,
 * |this clock − group time| ≤ boundNs + (t − asOfMonoNs) · driftPpb / 1e9.
 *
 * - 'synchronized': the bound comes from a recent round and holds.
 * - 'free-running': the group is lost; the bound still holds, but only grows.
 * - 'none': no bound can be given (not yet synchronized, named faulty, left
 *   out of the table, cannot follow); why says which.
 */
export interface ErrorBound {
  state: 'synchronized' | 'free-running' | 'none';
  /** ns at asOfMonoNs; null when state is 'none'. */
  boundNs: bigint | null;
  asOfMonoNs: bigint;
  /** How fast the bound grows between updates, parts per billion. */
  driftPpb: number;
  why: string | null;
}
