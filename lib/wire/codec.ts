/**
 * The berkeleyd datagram codec: fixed header, per-type body (bodies.ts) and
 * the optional HMAC-SHA256 tag. Pure: no sockets, no clocks, no logging.
 * The byte layout is documented in docs/protocol.md.
 *
 * Fixed header, 26 bytes, big-endian:
 *
 *     off len field
 *     0   2   magic 0x4244 ("BD")
 *     2   1   version (3)
 *     3   1   type (MessageType)
 *     4   2   domain
 *     6   1   key id (0: no tag)
 *     7   1   flags (reserved, must be 0)
 *     8   8   sender node id
 *     16  4   epoch
 *     20  4   round
 *     24  2   body length
 *     26  ..  body
 *     then, iff key id != 0, a 32-byte HMAC-SHA256 over bytes [0, 26 + body length)
 *
 * decode() never throws. Its acceptance tests run in this order and the first
 * that fails names the reason (chrony's test1..testN):
 *
 *     1 oversized        datagram longer than MAX_DATAGRAM_BYTES
 *     2 short            shorter than the fixed header
 *     3 bad-magic
 *     4 bad-version
 *     5 unknown-type
 *     6 bad-length       length != 26 + body length + (key id ? 32 : 0)
 *     7 foreign-domain   opts.domain given and different
 *     8 authentication   only if opts.keys holds a key: unauthenticated, unknown-key, bad-tag
 *     9 body             bad-field (header flags, then body fields), truncated,
 *                        table-too-large, trailing-bytes
 *
 * The domain is tested before the tag because several groups may share an
 * address and port with different keys: their traffic is then counted as
 * foreign-domain (what it is), not as bad-tag (what an attack looks like),
 * and costs no HMAC. Authentication precedes body parsing so that
 * unauthenticated junk costs at most one HMAC and reaches no body parser.
 */

import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  type AdjustEntry, type AdjustMessage, type DecodeError, type DecodeResult, type Header, type Message,
  MAGIC, MAX_DATAGRAM_BYTES, MessageType, PROTOCOL_VERSION,
} from './messages.js';
import { ADJUST_ENTRY_BYTES, ADJUST_FIXED_BYTES, ADJUST_RANGE_OFFSET, bodyCodecOf } from './bodies.js';
import { BodyReader, BodyWriter, checkU64, checkUint } from './fields.js';
import type { Keyring } from './keys.js';

/** The largest node id: the last ADJUST part's range ends here. */
const MAX_U64 = 0xffff_ffff_ffff_ffffn;

export const HEADER_BYTES = 26;
/** HMAC-SHA256 output. */
export const TAG_BYTES = 32;
/** Header offsets. */
const OFFSET_MAGIC = 0;
const OFFSET_VERSION = 2;
const OFFSET_TYPE = 3;
const OFFSET_DOMAIN = 4;
const OFFSET_KEY_ID = 6;
const OFFSET_FLAGS = 7;
const OFFSET_SENDER = 8;
const OFFSET_EPOCH = 16;
const OFFSET_ROUND = 20;
const OFFSET_BODY_LENGTH = 24;

export interface DecodeOptions {
  /** Accept only this domain; any other is 'foreign-domain'. */
  domain?: number;
  /** When it holds at least one key, every datagram must carry a valid tag. */
  keys?: Keyring;
  /**
   * This node's id: an ADJUST part whose range (rangeFirst..rangeLast, read
   * before the tag is checked) does not hold it is 'other-part', so a node
   * of a large group pays one HMAC and one body for the one part it needs.
   */
  adjustFor?: bigint;
}

export interface EncodeAuth {
  /** 1..255, written in the header. */
  keyId: number;
  key: Buffer;
}

/** Total bytes of the datagram that carries msg, with or without the tag. */
export function encodingLength(msg: Message, authenticated: boolean): number {
  const codec = bodyCodecOf(msg.type);
  if (codec === undefined) throw new RangeError(`unknown message type ${String(msg.type)}`);
  return HEADER_BYTES + codec.encodingLength(msg) + (authenticated ? TAG_BYTES : 0);
}

/** The datagram for msg, signed with auth when given. Throws RangeError on a value out of range. */
/**
 * Where the transmit timestamp of an encoded datagram lies (t1 of a
 * TimeRequest, T3 of a TimeReply: 8 bytes, big-endian), so that a sender
 * can write it after encoding, just before the system call; null for other
 * types. Only for datagrams without a tag (a tag would have to be computed
 * again).
 */
export function transmitStampOffset(type: MessageType): number | null {
  if (type === MessageType.TimeRequest) return HEADER_BYTES + 8;
  if (type === MessageType.TimeReply) return HEADER_BYTES + 24;
  return null;
}

export function encode(msg: Message, auth?: EncodeAuth): Buffer {
  const codec = bodyCodecOf(msg.type);
  if (codec === undefined) throw new RangeError(`unknown message type ${String(msg.type)}`);
  checkUint('domain', msg.domain, 16);
  checkU64('sender', msg.sender);
  checkUint('epoch', msg.epoch, 32);
  checkUint('round', msg.round, 32);
  if (auth !== undefined) {
    checkUint('keyId', auth.keyId, 8);
    if (auth.keyId === 0) throw new RangeError('keyId 0 means "no tag"; sign with 1..255');
    if (!Buffer.isBuffer(auth.key) || auth.key.length === 0) throw new RangeError('key must be a non-empty Buffer');
  }

  const bodyBytes = codec.encodingLength(msg);
  const signedBytes = HEADER_BYTES + bodyBytes;
  const totalBytes = signedBytes + (auth ? TAG_BYTES : 0);
  if (totalBytes > MAX_DATAGRAM_BYTES) {
    throw new RangeError(`datagram of ${totalBytes} bytes exceeds ${MAX_DATAGRAM_BYTES} (type ${msg.type})`);
  }

  const buf = Buffer.alloc(totalBytes);
  buf.writeUInt16BE(MAGIC, OFFSET_MAGIC);
  buf.writeUInt8(PROTOCOL_VERSION, OFFSET_VERSION);
  buf.writeUInt8(msg.type, OFFSET_TYPE);
  buf.writeUInt16BE(msg.domain, OFFSET_DOMAIN);
  buf.writeUInt8(auth ? auth.keyId : 0, OFFSET_KEY_ID);
  buf.writeUInt8(0, OFFSET_FLAGS);
  buf.writeBigUInt64BE(msg.sender, OFFSET_SENDER);
  buf.writeUInt32BE(msg.epoch, OFFSET_EPOCH);
  buf.writeUInt32BE(msg.round, OFFSET_ROUND);
  buf.writeUInt16BE(bodyBytes, OFFSET_BODY_LENGTH);

  const writer = new BodyWriter(buf, HEADER_BYTES);
  codec.encode(msg, writer);
  if (writer.offset !== signedBytes) {
    throw new Error(`internal: type ${msg.type} wrote ${writer.offset - HEADER_BYTES} body bytes, expected ${bodyBytes}`);
  }
  if (auth) tagOf(auth.key, buf.subarray(0, signedBytes)).copy(buf, signedBytes);
  return buf;
}

/** Decodes one datagram. Never throws; see the order of the tests above. */
export function decode(buf: Uint8Array, opts?: DecodeOptions): DecodeResult {
  const wantDomain = opts?.domain;
  const keys = opts?.keys;
  if (!(buf instanceof Uint8Array)) return fail('short'); // not bytes at all: nothing to read
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);

  // 1-2: size.
  if (b.length > MAX_DATAGRAM_BYTES) return fail('oversized');
  if (b.length < HEADER_BYTES) return fail('short');
  // 3-5: identity of the datagram.
  if (b.readUInt16BE(OFFSET_MAGIC) !== MAGIC) return fail('bad-magic');
  if (b.readUInt8(OFFSET_VERSION) !== PROTOCOL_VERSION) return fail('bad-version');
  const type = b.readUInt8(OFFSET_TYPE);
  const codec = bodyCodecOf(type);
  if (codec === undefined) return fail('unknown-type');
  // 6: the layout adds up exactly.
  const keyId = b.readUInt8(OFFSET_KEY_ID);
  const bodyBytes = b.readUInt16BE(OFFSET_BODY_LENGTH);
  const signedBytes = HEADER_BYTES + bodyBytes;
  if (b.length !== signedBytes + (keyId !== 0 ? TAG_BYTES : 0)) return fail('bad-length');
  // 7: our group.
  const domain = b.readUInt16BE(OFFSET_DOMAIN);
  if (wantDomain !== undefined && domain !== wantDomain) return fail('foreign-domain');
  // 7b: another node's part of a table (when asked): skipped before its tag and body cost anything.
  if (type === MessageType.Adjust && opts?.adjustFor !== undefined && bodyBytes >= ADJUST_RANGE_OFFSET + 16) {
    const at = HEADER_BYTES + ADJUST_RANGE_OFFSET;
    if (opts.adjustFor < b.readBigUInt64BE(at) || opts.adjustFor > b.readBigUInt64BE(at + 8)) return fail('other-part');
  }
  // 8: authentication, when keys are configured.
  if (keys !== undefined && keys.ids().length > 0) {
    if (keyId === 0) return fail('unauthenticated');
    const key = keys.get(keyId);
    if (key === undefined) return fail('unknown-key');
    const expected = tagOf(key, b.subarray(0, signedBytes));
    if (!timingSafeEqual(expected, b.subarray(signedBytes, signedBytes + TAG_BYTES))) return fail('bad-tag');
  }
  // 9: reserved header flags, then the body.
  if (b.readUInt8(OFFSET_FLAGS) !== 0) return fail('bad-field');
  const header: Header = {
    domain,
    sender: b.readBigUInt64BE(OFFSET_SENDER),
    epoch: b.readUInt32BE(OFFSET_EPOCH),
    round: b.readUInt32BE(OFFSET_ROUND),
  };
  const reader = new BodyReader(b, HEADER_BYTES, signedBytes);
  const msg = codec.decode(reader, header, { maxAdjustEntries: adjustCapacity(keyId !== 0) });
  if (typeof msg === 'string') return fail(msg);
  return { ok: true, msg, keyId };
}

/** Most ADJUST entries one datagram can carry within MAX_DATAGRAM_BYTES: 79 without a tag, 77 with. */
export function adjustCapacity(authenticated: boolean): number {
  const roomBytes = MAX_DATAGRAM_BYTES - HEADER_BYTES - ADJUST_FIXED_BYTES - (authenticated ? TAG_BYTES : 0);
  return Math.floor(roomBytes / ADJUST_ENTRY_BYTES);
}

/**
 * A round's adjustment table as self-contained ADJUST datagrams, each within
 * MAX_DATAGRAM_BYTES once encoded (with the tag if `authenticated`): entries
 * sorted by node id, parts numbered 0..parts-1 in that order, each with the
 * range of ids it covers (together 0..2^64-1). An empty table gives one
 * empty part. Only the header fields, averageNs, commonPpb, full and
 * entries of `table` are used.
 */
export function splitAdjust(table: Header & { averageNs: bigint; commonPpb: number; full: boolean; entries: AdjustEntry[] }, authenticated: boolean): AdjustMessage[] {
  const capacity = adjustCapacity(authenticated);
  const entries = [...table.entries].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  const parts = Math.max(1, Math.ceil(entries.length / capacity));
  checkUint('parts', parts, 16);
  const messages: AdjustMessage[] = [];
  for (let part = 0; part < parts; part++) {
    // The parts cover every node id in order: from this part's first entry to just before the next part's.
    const next = entries[(part + 1) * capacity];
    messages.push({
      type: MessageType.Adjust,
      domain: table.domain,
      sender: table.sender,
      epoch: table.epoch,
      round: table.round,
      part,
      parts,
      averageNs: table.averageNs,
      commonPpb: table.commonPpb,
      rangeFirst: part === 0 ? 0n : entries[part * capacity]!.node,
      rangeLast: part === parts - 1 || !next ? MAX_U64 : next.node - 1n,
      full: table.full,
      entries: entries.slice(part * capacity, (part + 1) * capacity),
    });
  }
  return messages;
}

function tagOf(key: Buffer, signed: Buffer): Buffer {
  return createHmac('sha256', key).update(signed).digest();
}

function fail(reason: DecodeError): DecodeResult {
  return { ok: false, reason };
}
