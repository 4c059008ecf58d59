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
  | { kind: 'dropped'; reason: DropReason; type: number; from: Address };

/** One line of a round's table, as the master saw it. */
export interface RoundRow {
  node: bigint;
  name: string;
  /** Node clock minus master clock; 0 for the master. */
  offsetNs: bigint;
  delayNs: bigint;
  adjustmentNs: bigint;
  outlier: boolean;
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
  | 'table-full';       // a report from a new node when the member table is full

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
