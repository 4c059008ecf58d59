/**
 * The body of each message type: encodingLength, encode and decode, the
 * dns-packet triple, one object per type. Byte layouts are documented in
 * docs/protocol.md ("Bodies"); the offsets in the comments below are from
 * the start of the body (datagram offset 26).
 *
 * Decoding runs the checks of a body in byte order and returns the first
 * fault: 'truncated' when a field reaches past the body, 'bad-field' when a
 * value is forbidden, 'table-too-large' for an ADJUST count above capacity
 * (before any entry is read), and 'trailing-bytes' when bytes remain after
 * the last field.
 */

import { type AdjustEntry, type DecodeError, type Header, type Message, MessageType } from './messages.js';
import {
  BodyReader, BodyWriter, checkBoolean, checkI64, checkU64, checkUint,
  addressEncodingLength, nameEncodingLength, readAddress, readName, writeAddress, writeName,
} from './fields.js';

/**
 * SYNC: masterTimeNs(8) priority(1) flags(1) intervalMs(4) collectMs(4) port(2) probes(1) steps(1),
 * then the address (family(1) + 4 or 16 bytes) and the name.
 */
export const SYNC_FIXED_BYTES = 22;
/** SYNC probes: exchanges per burst, 1..MAX_PROBES. */
export const MAX_PROBES = 64;
export const SYNC_FLAG_PINNED = 0x01;
export const SYNC_FLAG_REFERENCE = 0x02;
const SYNC_FLAGS = SYNC_FLAG_PINNED | SYNC_FLAG_REFERENCE;
/** TIME_REQUEST: nonce(8) originNs(8) padding(16): as long as a reply, so a request cannot be amplified. */
export const TIME_REQUEST_BYTES = 32;
export const TIME_REQUEST_PADDING_BYTES = 16;
/** TIME_REPLY: nonce(8) originNs(8) receiveNs(8) transmitNs(8). */
export const TIME_REPLY_BYTES = 32;
/** REPORT: offsetNs(8) delayNs(8) frequencyPpb(4), then the name. */
export const REPORT_FIXED_BYTES = 20;
/** REPORT frequencyPpb on the wire for "not known yet" (null). */
export const FREQUENCY_UNKNOWN = -0x8000_0000;
/** ADJUST: part(2) parts(2) averageNs(8) commonPpb(4) rangeFirst(8) rangeLast(8) flags(1) count(2), then count entries. */
export const ADJUST_FIXED_BYTES = 35;
/** ADJUST body offsets of the range, read before authentication (codec.ts, DecodeOptions.adjustFor). */
export const ADJUST_RANGE_OFFSET = 16;
export const ADJUST_TABLE_FULL = 0x01;
/** ADJUST entry: node(8) adjustmentNs(8) flags(1). */
export const ADJUST_ENTRY_BYTES = 17;
export const ADJUST_FLAG_OUTLIER = 0x01;
export const ADJUST_FLAG_FAULTY = 0x02;
const ADJUST_FLAGS = ADJUST_FLAG_OUTLIER | ADJUST_FLAG_FAULTY;
/** CLAIM: priority(1), then the name. */
export const CLAIM_FIXED_BYTES = 1;

/** What a body decoder needs to know about the datagram around it. */
export interface DecodeContext {
  /** Largest ADJUST entry count that fits this datagram (depends on the tag). */
  maxAdjustEntries: number;
}

export interface BodyCodec<M extends Message> {
  /** Bytes of the body of msg. */
  encodingLength(msg: M): number;
  /** Writes the body of msg; throws RangeError on a value out of range. */
  encode(msg: M, w: BodyWriter): void;
  /** Reads a body that spans exactly the reader; never throws. */
  decode(r: BodyReader, header: Header, ctx: DecodeContext): M | DecodeError;
}

/** A ppb value for an i32 field: an integer, and not the "unknown" marker; null passes (REPORT's unknown). */
function checkPpb(name: string, value: number | null): void {
  if (value === null) return;
  if (!Number.isInteger(value) || value <= FREQUENCY_UNKNOWN || value > 0x7fff_ffff) {
    throw new RangeError(`${name} must be an integer from ${FREQUENCY_UNKNOWN + 1} to ${0x7fff_ffff}, got ${value}`);
  }
}

type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

const sync: BodyCodec<MessageOf<MessageType.Sync>> = {
  encodingLength: (msg) => SYNC_FIXED_BYTES + addressEncodingLength(msg.unicastAddress) + nameEncodingLength(msg.name),
  encode(msg, w) {
    checkI64('masterTimeNs', msg.masterTimeNs);
    checkUint('priority', msg.priority, 8);
    checkBoolean('pinned', msg.pinned);
    checkUint('intervalMs', msg.intervalMs, 32);
    checkUint('collectMs', msg.collectMs, 32);
    if (msg.collectMs < 1 || msg.collectMs >= msg.intervalMs) {
      throw new RangeError(`collectMs must be in 1..intervalMs-1, got ${msg.collectMs} (intervalMs ${msg.intervalMs})`);
    }
    checkUint('unicastPort', msg.unicastPort, 16);
    if (msg.unicastPort === 0) throw new RangeError('unicastPort must be 1..65535');
    checkUint('probes', msg.probes, 8);
    if (msg.probes < 1 || msg.probes > MAX_PROBES) throw new RangeError(`probes must be 1..${MAX_PROBES}, got ${msg.probes}`);
    checkUint('steps', msg.steps, 8);
    checkBoolean('reference', msg.reference);
    w.i64(msg.masterTimeNs);                  // 0
    w.u8(msg.priority);                       // 8
    w.u8((msg.pinned ? SYNC_FLAG_PINNED : 0) | (msg.reference ? SYNC_FLAG_REFERENCE : 0)); // 9
    w.u32(msg.intervalMs);                    // 10
    w.u32(msg.collectMs);                     // 14
    w.u16(msg.unicastPort);                   // 18
    w.u8(msg.probes);                         // 20
    w.u8(msg.steps);                          // 21
    writeAddress(w, 'unicastAddress', msg.unicastAddress); // 22: family, then 4 or 16 bytes
    writeName(w, msg.name);                   // 27 (IPv4) or 39 (IPv6)
  },
  decode(r, header) {
    if (!r.has(SYNC_FIXED_BYTES)) return 'truncated';
    const masterTimeNs = r.i64();
    const priority = r.u8();
    const flags = r.u8();
    const intervalMs = r.u32();
    const collectMs = r.u32();
    const unicastPort = r.u16();
    const probes = r.u8();
    const steps = r.u8();
    if ((flags & ~SYNC_FLAGS) !== 0) return 'bad-field';
    if (intervalMs === 0 || collectMs === 0 || collectMs >= intervalMs) return 'bad-field';
    if (unicastPort === 0) return 'bad-field';
    if (probes < 1 || probes > MAX_PROBES) return 'bad-field';
    const address = readAddress(r);
    if (typeof address === 'string') return address;
    const name = readName(r);
    if (typeof name === 'string') return name;
    if (!r.atEnd()) return 'trailing-bytes';
    return {
      type: MessageType.Sync, domain: header.domain, sender: header.sender, epoch: header.epoch, round: header.round,
      masterTimeNs, priority, pinned: (flags & SYNC_FLAG_PINNED) !== 0, reference: (flags & SYNC_FLAG_REFERENCE) !== 0,
      intervalMs, collectMs, unicastAddress: address.address, unicastPort, probes, steps, name: name.name,
    };
  },
};

const timeRequest: BodyCodec<MessageOf<MessageType.TimeRequest>> = {
  encodingLength: () => TIME_REQUEST_BYTES,
  encode(msg, w) {
    checkU64('nonce', msg.nonce);
    checkI64('originNs', msg.originNs);
    w.u64(msg.nonce);                         // 0
    w.i64(msg.originNs);                      // 8
    w.zeros(TIME_REQUEST_PADDING_BYTES);      // 16
  },
  decode(r, header) {
    if (!r.has(TIME_REQUEST_BYTES)) return 'truncated';
    const nonce = r.u64();
    const originNs = r.i64();
    const padding = r.bytes(TIME_REQUEST_PADDING_BYTES);
    if (padding.some((byte) => byte !== 0)) return 'bad-field';
    if (!r.atEnd()) return 'trailing-bytes';
    return {
      type: MessageType.TimeRequest, domain: header.domain, sender: header.sender, epoch: header.epoch, round: header.round,
      nonce, originNs,
    };
  },
};

const timeReply: BodyCodec<MessageOf<MessageType.TimeReply>> = {
  encodingLength: () => TIME_REPLY_BYTES,
  encode(msg, w) {
    checkU64('nonce', msg.nonce);
    checkI64('originNs', msg.originNs);
    checkI64('receiveNs', msg.receiveNs);
    checkI64('transmitNs', msg.transmitNs);
    w.u64(msg.nonce);                         // 0
    w.i64(msg.originNs);                      // 8
    w.i64(msg.receiveNs);                     // 16
    w.i64(msg.transmitNs);                    // 24
  },
  decode(r, header) {
    if (!r.has(TIME_REPLY_BYTES)) return 'truncated';
    const nonce = r.u64();
    const originNs = r.i64();
    const receiveNs = r.i64();
    const transmitNs = r.i64();
    if (!r.atEnd()) return 'trailing-bytes';
    return {
      type: MessageType.TimeReply, domain: header.domain, sender: header.sender, epoch: header.epoch, round: header.round,
      nonce, originNs, receiveNs, transmitNs,
    };
  },
};

const report: BodyCodec<MessageOf<MessageType.Report>> = {
  encodingLength: (msg) => REPORT_FIXED_BYTES + nameEncodingLength(msg.name),
  encode(msg, w) {
    checkI64('offsetNs', msg.offsetNs);
    checkI64('delayNs', msg.delayNs);
    if (msg.delayNs < 0n) throw new RangeError(`delayNs must be >= 0, got ${msg.delayNs}`);
    checkPpb('frequencyPpb', msg.frequencyPpb);
    w.i64(msg.offsetNs);                      // 0
    w.i64(msg.delayNs);                       // 8
    w.i32(msg.frequencyPpb ?? FREQUENCY_UNKNOWN); // 16
    writeName(w, msg.name);                   // 20
  },
  decode(r, header) {
    if (!r.has(REPORT_FIXED_BYTES)) return 'truncated';
    const offsetNs = r.i64();
    const delayNs = r.i64();
    if (delayNs < 0n) return 'bad-field';
    const ppb = r.i32();
    const name = readName(r);
    if (typeof name === 'string') return name;
    if (!r.atEnd()) return 'trailing-bytes';
    return {
      type: MessageType.Report, domain: header.domain, sender: header.sender, epoch: header.epoch, round: header.round,
      offsetNs, delayNs, frequencyPpb: ppb === FREQUENCY_UNKNOWN ? null : ppb, name: name.name,
    };
  },
};

const adjust: BodyCodec<MessageOf<MessageType.Adjust>> = {
  encodingLength: (msg) => ADJUST_FIXED_BYTES + ADJUST_ENTRY_BYTES * msg.entries.length,
  encode(msg, w) {
    checkUint('parts', msg.parts, 16);
    checkUint('part', msg.part, 16);
    if (msg.parts < 1 || msg.part >= msg.parts) {
      throw new RangeError(`need 0 <= part < parts, got part ${msg.part} of ${msg.parts}`);
    }
    checkI64('averageNs', msg.averageNs);
    checkPpb('commonPpb', msg.commonPpb);
    if (msg.commonPpb === null) throw new RangeError('commonPpb must be a number');
    checkU64('rangeFirst', msg.rangeFirst);
    checkU64('rangeLast', msg.rangeLast);
    if (msg.rangeFirst > msg.rangeLast) throw new RangeError(`rangeFirst ${msg.rangeFirst} above rangeLast ${msg.rangeLast}`);
    checkBoolean('full', msg.full);
    checkUint('entries.length', msg.entries.length, 16);
    let previous = -1n;
    for (const entry of msg.entries) {
      checkU64('entry.node', entry.node);
      checkI64('entry.adjustmentNs', entry.adjustmentNs);
      checkBoolean('entry.outlier', entry.outlier);
      checkBoolean('entry.faulty', entry.faulty);
      if (entry.node <= previous) throw new RangeError(`ADJUST entries must be in strictly ascending node order (node ${entry.node} after ${previous})`);
      if (entry.node < msg.rangeFirst || entry.node > msg.rangeLast) throw new RangeError(`ADJUST entry for node ${entry.node} outside the part's range`);
      previous = entry.node;
    }
    w.u16(msg.part);                          // 0
    w.u16(msg.parts);                         // 2
    w.i64(msg.averageNs);                     // 4
    w.i32(msg.commonPpb);                     // 12
    w.u64(msg.rangeFirst);                    // 16
    w.u64(msg.rangeLast);                     // 24
    w.u8(msg.full ? ADJUST_TABLE_FULL : 0);   // 32
    w.u16(msg.entries.length);                // 33
    for (const entry of msg.entries) {        // 35 + 17 * i
      w.u64(entry.node);
      w.i64(entry.adjustmentNs);
      w.u8((entry.outlier ? ADJUST_FLAG_OUTLIER : 0) | (entry.faulty ? ADJUST_FLAG_FAULTY : 0));
    }
  },
  decode(r, header, ctx) {
    if (!r.has(ADJUST_FIXED_BYTES)) return 'truncated';
    const part = r.u16();
    const parts = r.u16();
    const averageNs = r.i64();
    const commonPpb = r.i32();
    const rangeFirst = r.u64();
    const rangeLast = r.u64();
    const tableFlags = r.u8();
    const count = r.u16();
    if (parts < 1 || part >= parts || commonPpb === FREQUENCY_UNKNOWN) return 'bad-field';
    if (rangeFirst > rangeLast || (tableFlags & ~ADJUST_TABLE_FULL) !== 0) return 'bad-field';
    // Named check before any entry is read: a count no datagram can hold.
    if (count > ctx.maxAdjustEntries) return 'table-too-large';
    if (!r.has(count * ADJUST_ENTRY_BYTES)) return 'truncated';
    const entries: AdjustEntry[] = [];
    let previous = -1n;
    for (let i = 0; i < count; i++) {
      const node = r.u64();
      const adjustmentNs = r.i64();
      const flags = r.u8();
      if ((flags & ~ADJUST_FLAGS) !== 0) return 'bad-field';
      // Strictly ascending (so a node appears once) and inside the part's range.
      if (node <= previous || node < rangeFirst || node > rangeLast) return 'bad-field';
      previous = node;
      entries.push({ node, adjustmentNs, outlier: (flags & ADJUST_FLAG_OUTLIER) !== 0, faulty: (flags & ADJUST_FLAG_FAULTY) !== 0 });
    }
    if (!r.atEnd()) return 'trailing-bytes';
    return {
      type: MessageType.Adjust, domain: header.domain, sender: header.sender, epoch: header.epoch, round: header.round,
      part, parts, averageNs, commonPpb, rangeFirst, rangeLast, full: (tableFlags & ADJUST_TABLE_FULL) !== 0, entries,
    };
  },
};

const claim: BodyCodec<MessageOf<MessageType.Claim>> = {
  encodingLength: (msg) => CLAIM_FIXED_BYTES + nameEncodingLength(msg.name),
  encode(msg, w) {
    checkUint('priority', msg.priority, 8);
    w.u8(msg.priority);                       // 0
    writeName(w, msg.name);                   // 1
  },
  decode(r, header) {
    if (!r.has(CLAIM_FIXED_BYTES)) return 'truncated';
    const priority = r.u8();
    const name = readName(r);
    if (typeof name === 'string') return name;
    if (!r.atEnd()) return 'trailing-bytes';
    return {
      type: MessageType.Claim, domain: header.domain, sender: header.sender, epoch: header.epoch, round: header.round,
      priority, name: name.name,
    };
  },
};

const leave: BodyCodec<MessageOf<MessageType.Leave>> = {
  encodingLength: (msg) => nameEncodingLength(msg.name),
  encode(msg, w) {
    writeName(w, msg.name);                   // 0
  },
  decode(r, header) {
    const name = readName(r);
    if (typeof name === 'string') return name;
    if (!r.atEnd()) return 'trailing-bytes';
    return {
      type: MessageType.Leave, domain: header.domain, sender: header.sender, epoch: header.epoch, round: header.round,
      name: name.name,
    };
  },
};

const BODY_CODECS: { [T in MessageType]: BodyCodec<MessageOf<T>> } = {
  [MessageType.Sync]: sync,
  [MessageType.TimeRequest]: timeRequest,
  [MessageType.TimeReply]: timeReply,
  [MessageType.Report]: report,
  [MessageType.Adjust]: adjust,
  [MessageType.Claim]: claim,
  [MessageType.Leave]: leave,
};

/** The body codec of a type byte, or undefined for a type this version does not know. */
export function bodyCodecOf(type: number): BodyCodec<Message> | undefined {
  if (!Object.hasOwn(BODY_CODECS, type)) return undefined;
  return BODY_CODECS[type as MessageType] as BodyCodec<Message>;
}
