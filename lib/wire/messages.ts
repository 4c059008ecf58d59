/**
 * The berkeleyd messages as the protocol engine sees them, independent of
 * their byte layout (see codec.ts and docs/protocol.md).
 *
 * Units: every time is signed 64-bit nanoseconds (bigint) of the sender's
 * group clock. Node ids on the wire are 64-bit (see nodeIdOf in ids.ts);
 * names travel in the messages that introduce a node (SYNC, REPORT, CLAIM).
 */

export const PROTOCOL_VERSION = 4;
/** "BD" */
export const MAGIC = 0x4244;
/** No datagram berkeleyd sends or accepts is longer: no IP fragmentation on a 1,500-byte MTU. */
export const MAX_DATAGRAM_BYTES = 1400;
/** Longest node name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 64;

export enum MessageType {
  Sync = 1,
  TimeRequest = 2,
  TimeReply = 3,
  Report = 4,
  Adjust = 5,
  Claim = 6,
  Leave = 7,
}

/** Fields every datagram carries in its fixed header. */
export interface Header {
  /** Several groups may share one address and port; a node drops foreign domains. */
  domain: number;
  /** 64-bit id of the sender (nodeIdOf(name)). */
  sender: bigint;
  /** Mastership epoch, raised by every election. */
  epoch: number;
  /** Round number within the epoch. */
  round: number;
}

/** Master -> group: starts round (epoch, round); the master's heartbeat. */
export interface SyncMessage extends Header {
  type: MessageType.Sync;
  /** The master's group clock just before sending. */
  masterTimeNs: bigint;
  /** Election priority of the master (0..255). */
  priority: number;
  /** True when the master was pinned with --master. */
  pinned: boolean;
  /** The round interval and collection timeout the master runs with. */
  intervalMs: number;
  collectMs: number;
  /**
   * Where to send time requests and reports: an IPv4 dotted quad or IPv6
   * text (RFC 5952), and UDP port. "0.0.0.0" or "::": the datagram's source.
   * An IPv6 link-local address carries no scope: the receiver uses the
   * interface it heard the SYNC on (resolveAdvertised in address.ts).
   */
  unicastAddress: string;
  unicastPort: number;
  /**
   * Exchanges a peer makes in its burst this round (1..64, a warm-up on top
   * where it has 4 or more): the master sizes it to what it can answer for
   * the whole group (see lib/core/load.ts).
   */
  probes: number;
  /**
   * Steps from the top of a hierarchy of groups (0..255; PTP's
   * stepsRemoved): 0 when this master follows no upper group.
   */
  steps: number;
  /** The master's group time follows an external reference or an upper group rather than the group's average. */
  reference: boolean;
  name: string;
}

/** Peer -> master, unicast: first half of a four-timestamp exchange. */
export interface TimeRequestMessage extends Header {
  type: MessageType.TimeRequest;
  /** Random 64-bit value the reply must echo. */
  nonce: bigint;
  /** t1: the peer's group clock just before sending. */
  originNs: bigint;
}

/** Master -> peer, unicast: second half of the exchange. */
export interface TimeReplyMessage extends Header {
  type: MessageType.TimeReply;
  nonce: bigint;
  /** Echo of t1. */
  originNs: bigint;
  /** T2: the master's group clock when the request arrived. */
  receiveNs: bigint;
  /** T3: the master's group clock just before sending the reply. */
  transmitNs: bigint;
}

/** Peer -> master, unicast: the result of the peer's burst in this round. */
export interface ReportMessage extends Header {
  type: MessageType.Report;
  /** The peer's clock minus the master's (positive: the peer is ahead). */
  offsetNs: bigint;
  /** Round-trip delay of the exchange the offset came from. */
  delayNs: bigint;
  /**
   * The frequency correction this node's own measurements call for, relative
   * to the group's clock, in ppb (positive: the node must run faster); null
   * while its estimate is not yet trusted. The master averages these over
   * the clocks it keeps and sends the mean back as AdjustMessage.commonPpb.
   */
  frequencyPpb: number | null;
  name: string;
}

export interface AdjustEntry {
  node: bigint;
  /** What the node must add to its clock: average - offset(node). */
  adjustmentNs: bigint;
  /** The node's clock did not agree with the selected majority and did not count in the average. */
  outlier: boolean;
  /** The master names this node faulty (an outlier several rounds in a row, or a frequency at its limit). */
  faulty: boolean;
}

/** Master -> group: one self-contained part of the round's adjustment table. */
export interface AdjustMessage extends Header {
  type: MessageType.Adjust;
  /** 0-based index of this part, and how many parts the table has. */
  part: number;
  parts: number;
  /** The fault-tolerant average of the round, relative to the master's clock. */
  averageNs: bigint;
  /**
   * The mean of the frequencies (REPORT frequencyPpb) that the clocks kept in
   * the average call for, ppb. Every node runs at its own estimate minus
   * this, so that the kept clocks' frequency corrections sum to zero and the
   * group runs at the mean rate of its good clocks instead of walking.
   */
  commonPpb: number;
  /**
   * The node ids this part covers, inclusive: the parts of a table cover
   * 0..2^64-1 in order, without gap or overlap, and entries are sorted by
   * node id. A node reads (and authenticates) only the part whose range
   * holds its id, and a node in that range without an entry is not in the
   * table this round.
   */
  rangeFirst: bigint;
  rangeLast: bigint;
  /** The master is at its member limit (--max-members) and refused nodes this round. */
  full: boolean;
  /** Entries answer the measurements of round `round` (header). */
  entries: AdjustEntry[];
}

/** Candidate -> group: claims mastership of epoch `epoch` (header). */
export interface ClaimMessage extends Header {
  type: MessageType.Claim;
  priority: number;
  name: string;
}

/** Any node -> group: leaving now (shutdown). */
export interface LeaveMessage extends Header {
  type: MessageType.Leave;
  name: string;
}

export type Message =
  | SyncMessage
  | TimeRequestMessage
  | TimeReplyMessage
  | ReportMessage
  | AdjustMessage
  | ClaimMessage
  | LeaveMessage;

/** Why a datagram was dropped by the decoder. Each one is a status counter. */
export type DecodeError =
  | 'short'            // shorter than the fixed header
  | 'oversized'        // longer than MAX_DATAGRAM_BYTES
  | 'bad-magic'
  | 'bad-version'
  | 'unknown-type'
  | 'bad-length'       // body length field disagrees with the datagram
  | 'truncated'        // a field reaches past the end of the body
  | 'trailing-bytes'   // body longer than its fields
  | 'bad-field'        // a field holds a value the protocol forbids
  | 'table-too-large'  // more ADJUST entries than fit a datagram
  | 'foreign-domain'
  | 'other-part'       // an ADJUST part whose range does not hold DecodeOptions.adjustFor (not read further)
  | 'unauthenticated'  // no tag, but keys are configured
  | 'unknown-key'
  | 'bad-tag';

export type DecodeResult =
  | { ok: true; msg: Message; keyId: number }
  | { ok: false; reason: DecodeError };
