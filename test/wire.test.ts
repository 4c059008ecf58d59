/**
 * The wire codec: round trips, golden bytes, a table of malformed datagrams
 * with the exact reason each must give, authentication, ADJUST splitting,
 * node ids and key files.
 */

import test from 'ava';
import { createHmac } from 'node:crypto';
import {
  type DecodeOptions, type DecodeResult, type AdjustEntry, type AdjustMessage, type Keyring, type Message, type SyncMessage,
  HEADER_BYTES, MAX_DATAGRAM_BYTES, MessageType, TAG_BYTES,
  adjustCapacity, decode, encode, encodingLength, formatNodeId, generateKeyFile, nodeIdOf, parseKeyFile, splitAdjust,
} from '../lib/wire/index.js';
import { HEADER, KEY_1, KEY_2, KEYRING_1_2, KEYRING_2, KEYRING_2_1, U64_MAX, samples } from './helpers/wire-samples.js';

const AUTH_1 = { keyId: 1, key: KEY_1 };
const AUTH_2 = { keyId: 2, key: KEY_2 };

function reasonOf(result: DecodeResult): string {
  return result.ok ? 'ok' : result.reason;
}

// --- A raw datagram builder independent of encode() -------------------------

interface Raw {
  type: number;
  magic?: number;
  version?: number;
  domain?: number;
  keyId?: number;
  flags?: number;
  /** Written in the header; defaults to the real body length. */
  bodyLength?: number;
  /** Appends HMAC-SHA256 with this key over header and body. */
  key?: Buffer;
  /** Bytes appended after everything else. */
  trailer?: string;
}

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

function raw(bodyHex: string, o: Raw): Buffer {
  const body = hex(bodyHex);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt16BE(o.magic ?? 0x4244, 0);
  header.writeUInt8(o.version ?? 4, 2);
  header.writeUInt8(o.type, 3);
  header.writeUInt16BE(o.domain ?? 0x1234, 4);
  header.writeUInt8(o.keyId ?? 0, 6);
  header.writeUInt8(o.flags ?? 0, 7);
  header.writeBigUInt64BE(0x0102030405060708n, 8);
  header.writeUInt32BE(7, 16);
  header.writeUInt32BE(9, 20);
  header.writeUInt16BE(o.bodyLength ?? body.length, 24);
  let out = Buffer.concat([header, body]);
  if (o.key) out = Buffer.concat([out, createHmac('sha256', o.key).update(out).digest()]);
  return Buffer.concat([out, hex(o.trailer ?? '')]);
}

// Valid bodies, field by field, with the fields a test may replace.
const NAME_ALPHA = '05 616c706861';
const ADDRESS_V4 = '04 c0a80114';
const ADDRESS_V6 = '06 fe800000000000000000000000000001';
const syncBody = (f: { flags?: string; interval?: string; collect?: string; port?: string; probes?: string; steps?: string; address?: string; name?: string } = {}) =>
  `0000000000000064 c8 ${f.flags ?? '01'} ${f.interval ?? '000007d0'} ${f.collect ?? '000005dc'} ${f.port ?? '3039'} ${f.probes ?? '0c'} ${f.steps ?? '00'} ${f.address ?? ADDRESS_V4} ${f.name ?? NAME_ALPHA}`;
const REQUEST_BODY = 'deadbeefcafef00d fffffffffffffffe' + '00'.repeat(16);
const REPLY_BODY = 'deadbeefcafef00d fffffffffffffffe 0000000000000001 0000000000000002';
const reportBody = (delay = '00000000000003e8', name = '02 7031', ppb = '80000000') => `ffffffffffffffa6 ${delay} ${ppb} ${name}`;
const entry = (node = '0102030405060708', flags = '01') => `${node} 000000000000002d ${flags}`;
const FULL_RANGE = '0000000000000000 ffffffffffffffff';
const adjustBody = (count: string, entries: string[], part = '0000', parts = '0001', common = 'fffffc18', range = FULL_RANGE, flags = '00') =>
  `${part} ${parts} ffffffffffffffd3 ${common} ${range} ${flags} ${count} ${entries.join(' ')}`;
const T = MessageType;

// --- Round trips and golden bytes -------------------------------------------

test('every sample round-trips byte-identically, with and without a tag', (t) => {
  for (const msg of samples()) {
    for (const auth of [undefined, AUTH_1, AUTH_2]) {
      const bytes = encode(msg, auth);
      t.is(bytes.length, encodingLength(msg, auth !== undefined));
      const result = decode(bytes, auth ? { keys: KEYRING_1_2, domain: HEADER.domain } : { domain: HEADER.domain });
      if (!result.ok) return t.fail(`type ${msg.type}: ${result.reason}`);
      t.deepEqual(result.msg, msg);
      t.is(result.keyId, auth?.keyId ?? 0);
      t.deepEqual(encode(result.msg, auth), bytes);
    }
  }
});

test('golden bytes: the layout of docs/protocol.md, byte for byte', (t) => {
  const h = { domain: 0x1234, sender: 0x0102030405060708n, epoch: 7, round: 9 };
  const cases: Array<[Message, Buffer]> = [
    [{ ...h, type: T.Sync, masterTimeNs: 100n, priority: 200, pinned: true, intervalMs: 2000, collectMs: 1500,
      unicastAddress: '192.168.1.20', unicastPort: 12345, probes: 12, steps: 0, reference: false, name: 'alpha' }, raw(syncBody(), { type: 1 })],
    [{ ...h, type: T.Sync, masterTimeNs: 100n, priority: 200, pinned: true, intervalMs: 2000, collectMs: 1500,
      unicastAddress: 'fe80::1', unicastPort: 12345, probes: 12, steps: 2, reference: true, name: 'alpha' }, raw(syncBody({ flags: '03', steps: '02', address: ADDRESS_V6 }), { type: 1 })],
    [{ ...h, type: T.TimeRequest, nonce: 0xdeadbeefcafef00dn, originNs: -2n }, raw(REQUEST_BODY, { type: 2 })],
    [{ ...h, type: T.TimeReply, nonce: 0xdeadbeefcafef00dn, originNs: -2n, receiveNs: 1n, transmitNs: 2n }, raw(REPLY_BODY, { type: 3 })],
    [{ ...h, type: T.Report, offsetNs: -90n, delayNs: 1000n, frequencyPpb: null, name: 'p1' }, raw(reportBody(), { type: 4 })],
    [{ ...h, type: T.Adjust, part: 0, parts: 1, averageNs: -45n, commonPpb: -1000, rangeFirst: 0n, rangeLast: U64_MAX, full: false, entries: [{ node: 0x0102030405060708n, adjustmentNs: 45n, outlier: true, faulty: false }] },
      raw(adjustBody('0001', [entry()]), { type: 5 })],
    [{ ...h, type: T.Adjust, part: 1, parts: 3, averageNs: -45n, commonPpb: -1000, rangeFirst: 0x0100000000000000n, rangeLast: 0x01ffffffffffffffn, full: true, entries: [] },
      raw(adjustBody('0000', [], '0001', '0003', 'fffffc18', '0100000000000000 01ffffffffffffff', '01'), { type: 5 })],
    [{ ...h, type: T.Claim, priority: 5, name: 'a' }, raw('05 0161', { type: 6 })],
    [{ ...h, type: T.Leave, name: 'a' }, raw('0161', { type: 7 })],
  ];
  for (const [msg, bytes] of cases) {
    t.deepEqual(encode(msg), bytes, `type ${msg.type}`);
    t.deepEqual(encode(msg, AUTH_1), raw(bytes.subarray(HEADER_BYTES).toString('hex'), { type: msg.type, keyId: 1, key: KEY_1 }));
  }
  // Request and reply are the same size: a request cannot be amplified.
  t.is(cases[2]![1].length, cases[3]![1].length);
});

test('node ids: first 8 bytes of SHA-256, big-endian, 16 hex digits', (t) => {
  t.is(nodeIdOf(''), 0xe3b0c44298fc1c14n);
  t.is(nodeIdOf('abc'), 0xba7816bf8f01cfean);
  t.is(formatNodeId(nodeIdOf('alpha')), '8ed3f6ad685b959e');
  t.is(formatNodeId(1n), '0000000000000001');
  t.is(formatNodeId(U64_MAX), 'ffffffffffffffff');
  t.throws(() => formatNodeId(-1n), { instanceOf: RangeError });
  t.throws(() => formatNodeId(1n << 64n), { instanceOf: RangeError });
});

test('encode throws on values out of range (our own code, not input)', (t) => {
  const [sync, , request, , report, , adjust, , claim] = samples() as [Message, ...Message[]];
  const bad: Array<[string, Message, { keyId: number; key: Buffer }?]> = [
    ['name of 65 bytes', { ...claim!, name: 'x'.repeat(65) } as Message],
    ['empty name', { ...claim!, name: '' } as Message],
    ['control character in name', { ...claim!, name: 'a\nb' } as Message],
    ['lone surrogate in name', { ...claim!, name: 'a\ud800' } as Message],
    ['priority 256', { ...claim!, priority: 256 } as Message],
    ['negative epoch', { ...request!, epoch: -1 }],
    ['round 2^32', { ...request!, round: 2 ** 32 }],
    ['domain 65536', { ...request!, domain: 65536 }],
    ['fractional round', { ...request!, round: 1.5 }],
    ['sender -1', { ...request!, sender: -1n }],
    ['sender 2^64', { ...request!, sender: 1n << 64n }],
    ['nonce 2^64', { ...request!, nonce: 1n << 64n } as Message],
    ['originNs 2^63', { ...request!, originNs: 1n << 63n } as Message],
    ['collectMs = intervalMs', { ...sync!, collectMs: 2000 } as Message],
    ['intervalMs 0', { ...sync!, intervalMs: 0, collectMs: 0 } as Message],
    ['port 0', { ...sync!, unicastPort: 0 } as Message],
    ['address 256.0.0.1', { ...sync!, unicastAddress: '256.0.0.1' } as Message],
    ['address 1.2.3', { ...sync!, unicastAddress: '1.2.3' } as Message],
    ['address with a scope', { ...sync!, unicastAddress: 'fe80::1%eth0' } as Message],
    ['address 1::2::3', { ...sync!, unicastAddress: '1::2::3' } as Message],
    ['address of 9 groups', { ...sync!, unicastAddress: '1:2:3:4:5:6:7:8:9' } as Message],
    ['address a host name', { ...sync!, unicastAddress: 'localhost' } as Message],
    ['IPv4 multicast address', { ...sync!, unicastAddress: '239.255.77.1' } as Message],
    ['IPv6 multicast address', { ...sync!, unicastAddress: 'ff02::b3d1' } as Message],
    ['IPv4-mapped IPv6 address', { ...sync!, unicastAddress: '::ffff:10.0.0.1' } as Message],
    ['steps 256', { ...sync!, steps: 256 } as Message],
    ['steps -1', { ...sync!, steps: -1 } as Message],
    ['reference not a boolean', { ...sync!, reference: 1 } as unknown as Message],
    ['negative delay', { ...report!, delayNs: -1n } as Message],
    ['part = parts', { ...adjust!, part: 1, parts: 1 } as Message],
    ['parts 0', { ...adjust!, part: 0, parts: 0 } as Message],
    ['duplicate node', { ...adjust!, entries: [{ node: 1n, adjustmentNs: 0n, outlier: false, faulty: false }, { node: 1n, adjustmentNs: 0n, outlier: false, faulty: false }] } as Message],
    ['entries out of order', { ...adjust!, entries: [{ node: 2n, adjustmentNs: 0n, outlier: false, faulty: false }, { node: 1n, adjustmentNs: 0n, outlier: false, faulty: false }] } as Message],
    ['entry outside the range', { ...adjust!, rangeFirst: 5n, rangeLast: 9n, entries: [{ node: 10n, adjustmentNs: 0n, outlier: false, faulty: false }] } as Message],
    ['range reversed', { ...adjust!, rangeFirst: 9n, rangeLast: 5n, entries: [] } as Message],
    ['probes 0', { ...sync!, probes: 0 } as Message],
    ['probes 65', { ...sync!, probes: 65 } as Message],
    ['80 entries', { ...adjust!, entries: entries(adjustCapacity(false) + 1) } as Message],
    ['78 entries, signed', { ...adjust!, entries: entries(adjustCapacity(true) + 1) } as Message, AUTH_1],
    ['key id 0', request!, { keyId: 0, key: KEY_1 }],
    ['key id 256', request!, { keyId: 256, key: KEY_1 }],
    ['unknown type', { ...request!, type: 9 } as unknown as Message],
  ];
  for (const [what, msg, auth] of bad) t.throws(() => encode(msg, auth), { instanceOf: RangeError }, what);
});

// --- Malformed datagrams ----------------------------------------------------

const anyLeave = raw('0161', { type: T.Leave });
const flipped = (buf: Buffer, byte: number, bit = 0): Buffer => {
  const copy = Buffer.from(buf);
  copy[byte < 0 ? copy.length + byte : byte]! ^= 1 << bit;
  return copy;
};
const signed1 = (bodyHex: string, type: number, extra: Partial<Raw> = {}) => raw(bodyHex, { type, keyId: 1, key: KEY_1, ...extra });
const withKeys: DecodeOptions = { keys: KEYRING_1_2 };

const MALFORMED: Array<[string, Buffer, DecodeOptions, string]> = [
  // Size and header.
  ['empty datagram', Buffer.alloc(0), {}, 'short'],
  ['25 bytes', anyLeave.subarray(0, 25), {}, 'short'],
  ['1401 zero bytes', Buffer.alloc(MAX_DATAGRAM_BYTES + 1), {}, 'oversized'],
  ['valid header claiming a 1375-byte body (1401 total)', raw('00'.repeat(1375), { type: T.Leave }), {}, 'oversized'],
  ['bad magic', raw('0161', { type: T.Leave, magic: 0x4245 }), {}, 'bad-magic'],
  ['byte-swapped magic', raw('0161', { type: T.Leave, magic: 0x4442 }), {}, 'bad-magic'],
  ['bad magic and bad version', raw('0161', { type: T.Leave, magic: 0, version: 9 }), {}, 'bad-magic'],
  ['version 0', raw('0161', { type: T.Leave, version: 0 }), {}, 'bad-version'],
  ['version 5', raw('0161', { type: T.Leave, version: 5 }), {}, 'bad-version'],
  ['version 3 (before IPv6 addresses and steps)', raw('0161', { type: T.Leave, version: 3 }), {}, 'bad-version'],
  ['version 2 (before burst sizes and table ranges)', raw('0161', { type: T.Leave, version: 2 }), {}, 'bad-version'],
  ['version 1 (before the frequency fields)', raw('0161', { type: T.Leave, version: 1 }), {}, 'bad-version'],
  ['type 0', raw('0161', { type: 0 }), {}, 'unknown-type'],
  ['type 8', raw('0161', { type: 8 }), {}, 'unknown-type'],
  ['type 255', raw('0161', { type: 255 }), {}, 'unknown-type'],
  ['body length past the end', raw('0161', { type: T.Leave, bodyLength: 3 }), {}, 'bad-length'],
  ['body length 65535', raw('0161', { type: T.Leave, bodyLength: 0xffff }), {}, 'bad-length'],
  ['one byte after the body (surplus datagram)', raw('0161', { type: T.Leave, trailer: '00' }), {}, 'bad-length'],
  ['key id set, tag missing', raw('0161', { type: T.Leave, keyId: 1 }), {}, 'bad-length'],
  ['tag one byte short', signed1('0161', T.Leave).subarray(0, HEADER_BYTES + 2 + TAG_BYTES - 1), withKeys, 'bad-length'],
  ['32 bytes after an unsigned body', raw('0161', { type: T.Leave, trailer: '00'.repeat(32) }), withKeys, 'bad-length'],
  ['foreign domain', raw('0161', { type: T.Leave, domain: 0x9999 }), { domain: 0x1234 }, 'foreign-domain'],
  ['foreign domain is tested before the tag', flipped(signed1('0161', T.Leave, { domain: 9 }), -1), { domain: 0x1234, ...withKeys }, 'foreign-domain'],
  ['header flags 0x01', raw('0161', { type: T.Leave, flags: 0x01 }), {}, 'bad-field'],
  ['header flags 0x80', raw('0161', { type: T.Leave, flags: 0x80 }), {}, 'bad-field'],
  // SYNC.
  ['SYNC cut inside its fixed fields', raw(syncBody().replace(/ /g, '').slice(0, 40), { type: T.Sync }), {}, 'truncated'],
  ['SYNC without its name', raw(syncBody({ name: '' }), { type: T.Sync }), {}, 'truncated'],
  ['SYNC name length past the body', raw(syncBody({ name: '06 616c706861' }), { type: T.Sync }), {}, 'truncated'],
  ['SYNC trailing byte', raw(syncBody() + '00', { type: T.Sync }), {}, 'trailing-bytes'],
  ['SYNC flag bit 2', raw(syncBody({ flags: '05' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC flag bit 7', raw(syncBody({ flags: '80' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC address family 0', raw(syncBody({ address: '00 c0a80114' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC address family 2 (AF_INET is not the family byte)', raw(syncBody({ address: '02 c0a80114' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC address family 10', raw(syncBody({ address: '0a ' + '00'.repeat(16) }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC IPv4 multicast address', raw(syncBody({ address: '04 efff4d01' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC IPv6 multicast address', raw(syncBody({ address: '06 ff02' + '00'.repeat(12) + 'b3d1' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC IPv4-mapped IPv6 address', raw(syncBody({ address: '06 ' + '00'.repeat(10) + 'ffff 0a000001' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC family 6 with 4 address bytes', raw(syncBody({ address: '06 c0a80114', name: '' }), { type: T.Sync }), {}, 'truncated'],
  ['SYNC family 6 cut inside the address', raw(syncBody({ address: '06 fe80', name: '' }), { type: T.Sync }), {}, 'truncated'],
  ['SYNC without its address', raw(syncBody({ address: '', name: '' }), { type: T.Sync }), {}, 'truncated'],
  ['SYNC family 4 with 16 address bytes (the name reads as junk)', raw(syncBody({ address: ADDRESS_V6.replace('06', '04') }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC intervalMs 0', raw(syncBody({ interval: '00000000', collect: '00000000' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC collectMs 0', raw(syncBody({ collect: '00000000' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC collectMs = intervalMs', raw(syncBody({ collect: '000007d0' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC port 0', raw(syncBody({ port: '0000' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC empty name', raw(syncBody({ name: '00' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC name of 65 bytes', raw(syncBody({ name: '41' + '61'.repeat(65) }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC probes 0', raw(syncBody({ probes: '00' }), { type: T.Sync }), {}, 'bad-field'],
  ['SYNC probes 65', raw(syncBody({ probes: '41' }), { type: T.Sync }), {}, 'bad-field'],
  // Names (in LEAVE, whose body is only the name).
  ['name byte 0xff', raw('01 ff', { type: T.Leave }), {}, 'bad-field'],
  ['name overlong NUL (c0 80)', raw('02 c080', { type: T.Leave }), {}, 'bad-field'],
  ['name encoded surrogate (ed a0 80)', raw('03 eda080', { type: T.Leave }), {}, 'bad-field'],
  ['name cut inside a sequence (c3)', raw('02 61c3', { type: T.Leave }), {}, 'bad-field'],
  ['name above U+10FFFF', raw('04 f4908080', { type: T.Leave }), {}, 'bad-field'],
  ['name with NUL', raw('02 6100', { type: T.Leave }), {}, 'bad-field'],
  ['name with newline', raw('02 610a', { type: T.Leave }), {}, 'bad-field'],
  ['name with DEL', raw('02 617f', { type: T.Leave }), {}, 'bad-field'],
  ['name with U+0085 (C1)', raw('03 61c285', { type: T.Leave }), {}, 'bad-field'],
  ['LEAVE empty body', raw('', { type: T.Leave }), {}, 'truncated'],
  ['LEAVE trailing byte', raw('0161 00', { type: T.Leave }), {}, 'trailing-bytes'],
  // Time exchange.
  ['TIME_REQUEST without padding', raw(REQUEST_BODY.slice(0, 33), { type: T.TimeRequest }), {}, 'truncated'],
  ['TIME_REQUEST non-zero padding', raw(REQUEST_BODY.slice(0, -2) + '01', { type: T.TimeRequest }), {}, 'bad-field'],
  ['TIME_REQUEST trailing byte', raw(REQUEST_BODY + '00', { type: T.TimeRequest }), {}, 'trailing-bytes'],
  ['TIME_REPLY of 31 bytes', raw(REPLY_BODY.replace(/ /g, '').slice(0, 62), { type: T.TimeReply }), {}, 'truncated'],
  ['TIME_REPLY trailing byte', raw(REPLY_BODY + '00', { type: T.TimeReply }), {}, 'trailing-bytes'],
  // REPORT.
  ['REPORT negative delay (-1)', raw(reportBody('ffffffffffffffff'), { type: T.Report }), {}, 'bad-field'],
  ['REPORT delay -2^63', raw(reportBody('8000000000000000'), { type: T.Report }), {}, 'bad-field'],
  ['REPORT without its name', raw(reportBody(undefined, ''), { type: T.Report }), {}, 'truncated'],
  ['REPORT trailing byte', raw(reportBody() + '00', { type: T.Report }), {}, 'trailing-bytes'],
  // ADJUST.
  ['ADJUST cut inside its fixed fields', raw('0000 0001 ffffffffffffffd3 00', { type: T.Adjust }), {}, 'truncated'],
  ['ADJUST count 79 > capacity 78', raw(adjustBody('004f', []), { type: T.Adjust }), {}, 'table-too-large'],
  ['ADJUST count 65535', raw(adjustBody('ffff', [entry()]), { type: T.Adjust }), {}, 'table-too-large'],
  ['ADJUST count 77 > capacity 76 when signed', signed1(adjustBody('004d', []), T.Adjust), withKeys, 'table-too-large'],
  ['ADJUST count 77 > 76 signed, keys not configured', signed1(adjustBody('004d', []), T.Adjust), {}, 'table-too-large'],
  ['ADJUST count 76 signed, one entry present', signed1(adjustBody('004c', [entry()]), T.Adjust), withKeys, 'truncated'],
  ['ADJUST count 2, one entry', raw(adjustBody('0002', [entry()]), { type: T.Adjust }), {}, 'truncated'],
  ['ADJUST count 1, two entries', raw(adjustBody('0001', [entry(), entry('0000000000000009')]), { type: T.Adjust }), {}, 'trailing-bytes'],
  ['ADJUST parts 0', raw(adjustBody('0000', [], '0000', '0000'), { type: T.Adjust }), {}, 'bad-field'],
  ['ADJUST part = parts', raw(adjustBody('0000', [], '0002', '0002'), { type: T.Adjust }), {}, 'bad-field'],
  ['ADJUST entry flag bit 2', raw(adjustBody('0001', [entry(undefined, '04')]), { type: T.Adjust }), {}, 'bad-field'],
  ['ADJUST common frequency -2^31 (the unknown marker)', raw(adjustBody('0001', [entry()], '0000', '0001', '80000000'), { type: T.Adjust }), {}, 'bad-field'],
  ['ADJUST node twice', raw(adjustBody('0002', [entry(), entry(undefined, '00')]), { type: T.Adjust }), {}, 'bad-field'],
  ['ADJUST entries out of order', raw(adjustBody('0002', [entry(), entry('0000000000000009')]), { type: T.Adjust }), {}, 'bad-field'],
  ['ADJUST entry below its range', raw(adjustBody('0001', [entry()], '0000', '0001', 'fffffc18', '0200000000000000 ffffffffffffffff'), { type: T.Adjust }), {}, 'bad-field'],
  ['ADJUST entry above its range', raw(adjustBody('0001', [entry()], '0000', '0001', 'fffffc18', '0000000000000000 0100000000000000'), { type: T.Adjust }), {}, 'bad-field'],
  ['ADJUST range first above last', raw(adjustBody('0000', [], '0000', '0001', 'fffffc18', '0000000000000002 0000000000000001'), { type: T.Adjust }), {}, 'bad-field'],
  ['ADJUST table flag bit 1', raw(adjustBody('0000', [], '0000', '0001', 'fffffc18', FULL_RANGE, '02'), { type: T.Adjust }), {}, 'bad-field'],
  ['ADJUST part for other ids (adjustFor), before its tag', flipped(signed1(adjustBody('0000', [], '0000', '0002', 'fffffc18', '0000000000000000 00000000000000ff'), T.Adjust), -1), { adjustFor: 0x100n, ...withKeys }, 'other-part'],
  ['ADJUST part for other ids (adjustFor below)', raw(adjustBody('0000', [], '0001', '0002', 'fffffc18', '0000000000000100 ffffffffffffffff'), { type: T.Adjust }), { adjustFor: 0xffn }, 'other-part'],
  // CLAIM.
  ['CLAIM empty body', raw('', { type: T.Claim }), {}, 'truncated'],
  ['CLAIM priority only', raw('05', { type: T.Claim }), {}, 'truncated'],
  ['CLAIM trailing byte', raw('05 0161 00', { type: T.Claim }), {}, 'trailing-bytes'],
  // Authentication.
  ['no tag, keys configured', raw('0161', { type: T.Leave }), withKeys, 'unauthenticated'],
  ['no tag and a bad body, keys configured', raw('00', { type: T.Leave }), withKeys, 'unauthenticated'],
  ['key id 1 not in the keyring', signed1('0161', T.Leave), { keys: KEYRING_2 }, 'unknown-key'],
  ['key id 3 not in the keyring', raw('0161', { type: T.Leave, keyId: 3, key: KEY_1 }), withKeys, 'unknown-key'],
  ['flipped tag bit', flipped(signed1('0161', T.Leave), -1, 7), withKeys, 'bad-tag'],
  ['flipped body bit', flipped(signed1('0161', T.Leave), HEADER_BYTES + 1), withKeys, 'bad-tag'],
  ['flipped header bit (round)', flipped(signed1('0161', T.Leave), 23), withKeys, 'bad-tag'],
  ['key id changed 1 -> 2', (() => { const b = signed1('0161', T.Leave); b[6] = 2; return b; })(), withKeys, 'bad-tag'],
  ['signed with the wrong key for its id', raw('0161', { type: T.Leave, keyId: 1, key: KEY_2 }), withKeys, 'bad-tag'],
  ['bad tag and a bad body', flipped(signed1('00', T.Leave), -1), withKeys, 'bad-tag'],
];

test('malformed datagrams give their exact reason', (t) => {
  for (const [what, bytes, opts, reason] of MALFORMED) t.is(reasonOf(decode(bytes, opts)), reason, what);
});

test('the valid counterparts of the malformed table decode', (t) => {
  const valid: Array<[string, Buffer, DecodeOptions]> = [
    ['LEAVE', anyLeave, { domain: 0x1234 }],
    ['SYNC', raw(syncBody(), { type: T.Sync }), {}],
    ['SYNC name of 64 bytes', raw(syncBody({ name: '40' + '61'.repeat(64) }), { type: T.Sync }), {}],
    ['SYNC from an IPv6 master, steps 255, reference', raw(syncBody({ flags: '02', steps: 'ff', address: ADDRESS_V6 }), { type: T.Sync }), {}],
    ['SYNC advertising "::"', raw(syncBody({ address: '06 ' + '00'.repeat(16) }), { type: T.Sync }), {}],
    ['name with a leading BOM', raw('04 efbbbf61', { type: T.Leave }), {}],
    ['name with a 4-byte character', raw('04 f09f9980', { type: T.Leave }), {}],
    ['ADJUST 78 entries, 1387 bytes', encode(table(78)), {}],
    ['ADJUST 76 entries signed', encode(table(76), AUTH_1), withKeys],
    ['ADJUST part holding adjustFor', raw(adjustBody('0001', [entry()], '0000', '0002', 'fffffc18', '0000000000000000 0102030405060708'), { type: T.Adjust }), { adjustFor: 0x0102030405060708n }],
    ['ADJUST part starting at adjustFor', raw(adjustBody('0000', [], '0001', '0002', 'fffffc18', '0102030405060708 ffffffffffffffff'), { type: T.Adjust }), { adjustFor: 0x0102030405060708n }],
    ['signed, no keys configured: tag not checked', flipped(signed1('0161', T.Leave), -1), {}],
    ['signed, empty keyring: tag not checked', flipped(signed1('0161', T.Leave), -1), { keys: { sendKeyId: 1, get: () => undefined, ids: () => [] } }],
  ];
  for (const [what, bytes, opts] of valid) t.is(reasonOf(decode(bytes, opts)), 'ok', what);
  t.is(encode(table(78)).length, 1387);
  t.throws(() => encode(table(79)), { message: /exceeds 1400/ });
});

test('a datagram cut at every length gives short, then bad-length', (t) => {
  const wrong: string[] = [];
  for (const msg of samples()) {
    for (const auth of [undefined, AUTH_1]) {
      const bytes = encode(msg, auth);
      for (let length = 0; length < bytes.length; length++) {
        const expected = length < HEADER_BYTES ? 'short' : 'bad-length';
        const got = reasonOf(decode(bytes.subarray(0, length), auth ? withKeys : {}));
        if (got !== expected) wrong.push(`type ${msg.type} signed=${!!auth} length ${length}: ${got}, expected ${expected}`);
      }
      // One byte more is bad-length too; past 1,400 bytes it is oversized.
      t.is(reasonOf(decode(Buffer.concat([bytes, Buffer.alloc(1)]))), 'bad-length');
      t.is(reasonOf(decode(Buffer.concat([bytes, Buffer.alloc(MAX_DATAGRAM_BYTES + 1 - bytes.length)]))), 'oversized');
    }
  }
  t.deepEqual(wrong, []);
});

test('decode takes any Uint8Array, including a view at an offset, and never throws on junk input', (t) => {
  const bytes = encode(samples()[0]!);
  const backing = new Uint8Array(bytes.length + 10);
  backing.set(bytes, 5);
  t.true(decode(backing.subarray(5, 5 + bytes.length)).ok);
  t.is(reasonOf(decode(null as unknown as Uint8Array)), 'short');
  t.is(reasonOf(decode('BD' as unknown as Uint8Array)), 'short');
  t.is(reasonOf(decode(bytes, null as unknown as DecodeOptions)), 'ok');
});

// --- Authentication and key rotation ----------------------------------------

test('rotation: both keys are accepted whichever signs', (t) => {
  for (const msg of samples()) {
    for (const keys of [KEYRING_1_2, KEYRING_2_1]) {
      for (const auth of [AUTH_1, AUTH_2]) {
        const result = decode(encode(msg, auth), { keys });
        t.true(result.ok && result.keyId === auth.keyId);
      }
    }
  }
  t.is(KEYRING_2_1.sendKeyId, 2);
  t.deepEqual(KEYRING_2_1.ids(), [2, 1]);
});

// --- ADJUST tables ----------------------------------------------------------

function entries(count: number): AdjustEntry[] {
  return Array.from({ length: count }, (_, i) => ({ node: nodeIdOf(`node-${i}`), adjustmentNs: BigInt(i * 1000 - 500_000), outlier: i % 7 === 0, faulty: i % 11 === 0 }));
}

const byNode = (a: AdjustEntry, b: AdjustEntry): number => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0);

/** One whole table as one ADJUST part: entries sorted, the full range of ids. */
function table(count: number): AdjustMessage {
  return { ...HEADER, type: MessageType.Adjust, part: 0, parts: 1, averageNs: 0n, commonPpb: 0, rangeFirst: 0n, rangeLast: U64_MAX, full: false, entries: entries(count).sort(byNode) };
}

const HEADER_IDS = { epoch: HEADER.epoch, round: HEADER.round, sender: HEADER.sender };

test('datagram sizes match the table of docs/protocol.md', (t) => {
  const h = HEADER;
  const named = (name: string): Message[] => [
    { ...h, type: T.Sync, masterTimeNs: 0n, priority: 0, pinned: false, intervalMs: 2, collectMs: 1, unicastAddress: '0.0.0.0', unicastPort: 1, probes: 1, steps: 0, reference: false, name },
    { ...h, type: T.Report, offsetNs: 0n, delayNs: 0n, frequencyPpb: null, name },
    { ...h, type: T.Claim, priority: 1, name },
    { ...h, type: T.Leave, name },
  ];
  const sizes = (name: string) => named(name).map((msg) => encodingLength(msg, false));
  t.deepEqual(sizes('a'), [55, 48, 29, 28]);
  t.deepEqual(sizes('a'.repeat(64)), [118, 111, 92, 91]);
  t.deepEqual(named('a').map((msg) => encodingLength(msg, true)), [87, 80, 61, 60]);
  // An IPv6 master's SYNC is 12 bytes longer.
  t.is(encodingLength({ ...(named('a')[0] as SyncMessage), unicastAddress: '::' }, false), 67);
  t.is(encodingLength({ ...(named('a'.repeat(64))[0] as SyncMessage), unicastAddress: '::' }, true), 162);
  t.is(encodingLength({ ...h, type: T.TimeRequest, nonce: 0n, originNs: 0n }, false), 58);
  t.is(encodingLength({ ...h, type: T.TimeReply, nonce: 0n, originNs: 0n, receiveNs: 0n, transmitNs: 0n }, true), 90);
  t.is(encodingLength(table(0), false), 61);
  t.is(encodingLength(table(78), false), 1387);
  t.is(encodingLength(table(76), true), 1385);
});

test('ADJUST capacity: 78 entries unsigned, 76 signed', (t) => {
  t.is(adjustCapacity(false), 78);
  t.is(adjustCapacity(true), 76);
});

for (const signed of [false, true]) {
  test(`splitAdjust: 1,000 entries in self-contained parts of at most 1,400 bytes (signed=${signed})`, (t) => {
    const table = entries(1000);
    const parts = splitAdjust({ ...HEADER, averageNs: -45n, commonPpb: 2_500, full: false, entries: table }, signed);
    t.is(parts.length, Math.ceil(1000 / adjustCapacity(signed)));
    const received: AdjustEntry[] = [];
    // The ranges cover every id, in order, without gap or overlap; each part's entries lie in its range.
    t.is(parts[0]!.rangeFirst, 0n);
    t.is(parts.at(-1)!.rangeLast, U64_MAX);
    for (let i = 1; i < parts.length; i++) t.is(parts[i]!.rangeFirst, parts[i - 1]!.rangeLast + 1n);
    // Every node finds its entry in the one part its id selects, and no other part decodes for it.
    for (const e of [table[0]!, table[500]!, table[999]!]) {
      const mine = parts.map((p) => decode(encode(p, signed ? AUTH_1 : undefined), { adjustFor: e.node, ...(signed ? withKeys : {}) }));
      t.is(mine.filter((r) => r.ok).length, 1);
      t.true(mine.filter((r) => !r.ok).every((r) => reasonOf(r) === 'other-part'));
      const part = mine.find((r) => r.ok)!;
      t.true(part.ok && part.msg.type === T.Adjust && part.msg.entries.some((x) => x.node === e.node));
    }
    parts.forEach((part, index) => {
      const bytes = encode(part, signed ? AUTH_1 : undefined);
      t.true(bytes.length <= MAX_DATAGRAM_BYTES);
      const result = decode(bytes, signed ? withKeys : {});
      if (!result.ok || result.msg.type !== T.Adjust) return t.fail(`part ${index}: ${reasonOf(result)}`);
      const { part: number, parts: total, averageNs, commonPpb, epoch, round, sender } = result.msg;
      t.deepEqual({ number, total, averageNs, commonPpb, epoch, round, sender }, { number: index, total: parts.length, averageNs: -45n, commonPpb: 2_500, ...HEADER_IDS });
      received.push(...result.msg.entries);
    });
    t.deepEqual(received, [...table].sort(byNode)); // every entry exactly once, in id order
    t.is(new Set(received.map((e) => e.node)).size, 1000);
  });
}

test('splitAdjust: empty table gives one empty part; capacity boundaries', (t) => {
  const empty = splitAdjust({ ...HEADER, type: T.Claim, priority: 1, averageNs: 0n, commonPpb: 0, full: true, entries: [] } as Parameters<typeof splitAdjust>[0], false);
  t.is(empty.length, 1);
  t.like(empty[0], { type: T.Adjust, part: 0, parts: 1, rangeFirst: 0n, rangeLast: U64_MAX, full: true, entries: [] });
  t.false('priority' in empty[0]!); // only the header fields of base are copied
  t.true(decode(encode(empty[0]!)).ok);
  const split = (n: number, signed: boolean) => splitAdjust({ ...HEADER, averageNs: 0n, commonPpb: 0, full: false, entries: entries(n) }, signed);
  t.is(split(78, false).length, 1);
  t.is(split(79, false).length, 2);
  t.is(split(76, true).length, 1);
  t.is(split(77, true).length, 2);
});

test("the seed's table: -90, -60, -30, 0 average -45; adjustments +45, +15, -15, -45", (t) => {
  // offset = peer clock - master clock; adjustment = average - offset; a node adds its adjustment.
  const masterClock = 13665n;
  const nodes = [['p1', -90n], ['p2', -60n], ['p3', -30n], ['master', 0n]] as const;
  const averageNs = nodes.reduce((sum, [, offset]) => sum + offset, 0n) / BigInt(nodes.length);
  t.is(averageNs, -45n);
  const table = nodes.map(([name, offset]) => ({ node: nodeIdOf(name), adjustmentNs: averageNs - offset, outlier: false, faulty: false }));
  const [part] = splitAdjust({ ...HEADER, sender: nodeIdOf('master'), averageNs, commonPpb: 0, full: false, entries: table }, true);
  const result = decode(encode(part!, AUTH_1), withKeys);
  if (!result.ok || result.msg.type !== T.Adjust) return t.fail(reasonOf(result));
  // On the wire in id order: each node looks its own up.
  const received = table.map((e) => result.msg.type === T.Adjust && result.msg.entries.find((x) => x.node === e.node)!);
  t.deepEqual(received.map((e) => e && e.adjustmentNs), [45n, 15n, -15n, -45n]);
  const clocks = nodes.map(([, offset], i) => masterClock + offset + (received[i] as AdjustEntry).adjustmentNs);
  t.deepEqual(clocks, [13620n, 13620n, 13620n, 13620n]);
});

// --- Key files --------------------------------------------------------------

const HEX_A = 'a1'.repeat(32);
const HEX_B = 'B2'.repeat(40);

test('parseKeyFile: comments, blank lines, CRLF, tabs; the first key signs', (t) => {
  const text = `# berkeleyd keys\r\n\r\n  7 HMAC-SHA256 HEX:${HEX_A}   # new key\r\n3\thmac-sha256\thex:${HEX_B}\n# old key above\n`;
  const result = parseKeyFile(text);
  if (!result.ok) return t.fail(result.error);
  const keyring: Keyring = result.keyring;
  t.is(keyring.sendKeyId, 7);
  t.deepEqual(keyring.ids(), [7, 3]);
  t.deepEqual(keyring.get(7), Buffer.from(HEX_A, 'hex'));
  t.deepEqual(keyring.get(3), Buffer.from(HEX_B, 'hex'));
  t.is(keyring.get(1), undefined);
});

test('parseKeyFile: bad files name the line and the fault', (t) => {
  const bad: Array<[string, string, RegExp]> = [
    ['empty file', '', /no key/],
    ['comments only', '# nothing\n\n', /no key/],
    ['two fields', `1 HEX:${HEX_A}`, /^line 1: expected .* found 2 field/],
    ['four fields', `1 HMAC-SHA256 HEX:${HEX_A} extra`, /^line 1: .*found 4 field/],
    ['id 0', `0 HMAC-SHA256 HEX:${HEX_A}`, /^line 1: key id "0" is not a number in 1\.\.255/],
    ['id 256', `# c\n256 HMAC-SHA256 HEX:${HEX_A}`, /^line 2: key id "256"/],
    ['id not a number', `one HMAC-SHA256 HEX:${HEX_A}`, /^line 1: key id "one"/],
    ['negative id', `-1 HMAC-SHA256 HEX:${HEX_A}`, /^line 1: key id "-1"/],
    ['duplicate id', `1 HMAC-SHA256 HEX:${HEX_A}\n1 HMAC-SHA256 HEX:${HEX_B}`, /^line 2: duplicate key id 1 \(first on line 1\)/],
    ['other algorithm', `1 SHA256 HEX:${HEX_A}`, /^line 1: unsupported algorithm "SHA256"/],
    ['no HEX: prefix', `1 HMAC-SHA256 ${HEX_A}`, /^line 1: key must be written as HEX:/],
    ['ASCII key', '1 HMAC-SHA256 ASCII:secretsecretsecretsecretsecretsecret', /^line 1: key must be written as HEX:/],
    ['not hex', `1 HMAC-SHA256 HEX:${HEX_A.slice(0, -1)}g`, /^line 1: .*not a hex digit/],
    ['odd digits', `1 HMAC-SHA256 HEX:${HEX_A}a`, /^line 1: key has an odd number of hex digits/],
    ['31-byte key', `1 HMAC-SHA256 HEX:${'ab'.repeat(31)}`, /^line 1: key is 31 bytes, at least 32/],
    ['empty key', '1 HMAC-SHA256 HEX:', /^line 1: key is 0 bytes/],
  ];
  for (const [what, text, error] of bad) {
    const result = parseKeyFile(text);
    if (result.ok) t.fail(`${what}: accepted`);
    else t.regex(result.error, error, what);
  }
});

test('generateKeyFile round-trips through parseKeyFile and signs datagrams', (t) => {
  const first = parseKeyFile(generateKeyFile());
  const second = parseKeyFile(generateKeyFile(42));
  if (!first.ok || !second.ok) return t.fail('generated file rejected');
  t.is(first.keyring.sendKeyId, 1);
  t.is(second.keyring.sendKeyId, 42);
  t.is(first.keyring.get(1)!.length, 32);
  t.notDeepEqual(first.keyring.get(1), second.keyring.get(42));
  t.true(generateKeyFile(5).startsWith('#'));
  const keyring = first.keyring;
  const bytes = encode(samples()[0]!, { keyId: keyring.sendKeyId, key: keyring.get(keyring.sendKeyId)! });
  t.true(decode(bytes, { keys: keyring }).ok);
  t.is(reasonOf(decode(bytes, { keys: second.keyring })), 'unknown-key');
  t.throws(() => generateKeyFile(0), { instanceOf: RangeError });
  t.throws(() => generateKeyFile(256), { instanceOf: RangeError });
});

test('DecodeResult reasons used here are all DecodeErrors', (t) => {
  const known = new Set(['short', 'oversized', 'bad-magic', 'bad-version', 'unknown-type', 'bad-length', 'truncated',
    'trailing-bytes', 'bad-field', 'table-too-large', 'foreign-domain', 'other-part', 'unauthenticated', 'unknown-key', 'bad-tag']);
  for (const [, , , reason] of MALFORMED) t.true(known.has(reason), reason);
});
