/**
 * Fuzzing the decoder: random buffers and mutated valid datagrams must never
 * make decode() throw, every failure must carry a known DecodeError, and
 * every datagram it accepts must re-encode to exactly the bytes received
 * (the encoding is canonical, so nothing is silently dropped or altered).
 *
 * Seeded: the seed is printed on failure; replay with
 *     BERKELEYD_TEST_SEED=<seed> npx ava dist/test/wire-fuzz.test.js
 */

import test from 'ava';
import {
  type AdjustEntry, type DecodeError, type DecodeOptions, type DecodeResult, type Header, type Message,
  HEADER_BYTES, MAX_DATAGRAM_BYTES, MAX_NAME_BYTES, MessageType, PROTOCOL_VERSION, TAG_BYTES,
  adjustCapacity, decode, encode, formatIPv6,
} from '../lib/wire/index.js';
import { KEY_1, KEY_2, KEYRING_1_2, samples } from './helpers/wire-samples.js';
import { type Prng, mulberry32, testSeed } from './helpers/prng.js';

const RANDOM_BUFFERS = 100_000;
const MUTATED_DATAGRAMS = 100_000;

const DECODE_ERRORS: ReadonlySet<DecodeError> = new Set<DecodeError>([
  'short', 'oversized', 'bad-magic', 'bad-version', 'unknown-type', 'bad-length', 'truncated', 'trailing-bytes',
  'bad-field', 'table-too-large', 'foreign-domain', 'unauthenticated', 'unknown-key', 'bad-tag',
]);

const KEYS_BY_ID = new Map([[1, KEY_1], [2, KEY_2]]);
/** Decode option sets every input is tried with. */
const OPTION_SETS: DecodeOptions[] = [{}, { keys: KEYRING_1_2 }, { domain: 0x1234 }, { domain: 0x1234, keys: KEYRING_1_2 }];

/**
 * Checks one input under every option set; returns a description of what is
 * wrong, or undefined. Accepted datagrams must re-encode to the same bytes.
 */
function check(bytes: Buffer): string | undefined {
  for (const opts of OPTION_SETS) {
    let result: DecodeResult;
    try {
      result = decode(bytes, opts);
    } catch (error) {
      return `decode threw ${String(error)}`;
    }
    if (!result.ok) {
      if (!DECODE_ERRORS.has(result.reason)) return `unknown reason ${String(result.reason)}`;
      continue;
    }
    // Canonical: the bytes it accepted are the bytes encode writes. A tag
    // that was not checked (no keys configured) is left out of the comparison.
    const key = KEYS_BY_ID.get(result.keyId) ?? Buffer.alloc(32);
    let again: Buffer;
    try {
      again = encode(result.msg, result.keyId === 0 ? undefined : { keyId: result.keyId, key });
    } catch (error) {
      return `accepted message does not re-encode: ${String(error)}`;
    }
    const tagChecked = result.keyId === 0 || opts.keys !== undefined;
    const compared = tagChecked ? bytes.length : bytes.length - TAG_BYTES;
    if (again.length !== bytes.length || !again.subarray(0, compared).equals(bytes.subarray(0, compared))) {
      return `accepted datagram re-encodes differently: ${again.toString('hex')}`;
    }
  }
  return undefined;
}

// --- Random valid messages of every type ------------------------------------

function randomName(prng: Prng): string {
  const alphabet = ['a', 'Z', '-', '.', '7', 'é', 'ß', '時', '🙂', '\ufeff'];
  let name = '';
  const length = prng.range(1, 20);
  while (name.length < length) name += prng.pick(alphabet);
  while (Buffer.byteLength(name) > MAX_NAME_BYTES) name = name.slice(0, -2);
  return name || 'x';
}

/** A unicast address of either family: no multicast, no IPv4-mapped IPv6 (the codec refuses them). */
function randomAddress(prng: Prng): string {
  if (prng.bool()) return [prng.pick([0, 10, 127, 192, 223, 240, 255]), prng.int(256), prng.int(256), prng.int(256)].join('.');
  const bytes = prng.bytes(16);
  // Runs of zeros, so that "::" compression is exercised at every position.
  for (let at = prng.int(16), n = prng.int(12); n > 0 && at < 16; n--, at++) bytes[at] = 0;
  if (bytes[0] === 0xff) bytes[0] = prng.pick([0x00, 0x20, 0xfe]);
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) bytes[11] = 0;
  return formatIPv6(bytes);
}

function randomMessage(prng: Prng, signed: boolean): Message {
  const header: Header = {
    domain: prng.bool() ? 0x1234 : prng.int(65536), sender: prng.u64(), epoch: prng.int(2 ** 32), round: prng.int(2 ** 32),
  };
  switch (prng.range(1, 7) as MessageType) {
    case MessageType.Sync: {
      const intervalMs = prng.range(2, 2 ** 32 - 1);
      return {
        ...header, type: MessageType.Sync, masterTimeNs: prng.i64(), priority: prng.int(256), pinned: prng.bool(),
        intervalMs, collectMs: prng.range(1, intervalMs - 1),
        unicastAddress: randomAddress(prng), unicastPort: prng.range(1, 65535), probes: prng.range(1, 64),
        steps: prng.int(256), reference: prng.bool(), name: randomName(prng),
      };
    }
    case MessageType.TimeRequest:
      return { ...header, type: MessageType.TimeRequest, nonce: prng.u64(), originNs: prng.i64() };
    case MessageType.TimeReply:
      return { ...header, type: MessageType.TimeReply, nonce: prng.u64(), originNs: prng.i64(), receiveNs: prng.i64(), transmitNs: prng.i64() };
    case MessageType.Report:
      return { ...header, type: MessageType.Report, offsetNs: prng.i64(), delayNs: prng.i64() & ((1n << 63n) - 1n), frequencyPpb: prng.bool() ? null : prng.range(-0x7fff_ffff, 0x7fff_ffff), name: randomName(prng) };
    case MessageType.Adjust: {
      const parts = prng.range(1, 65535);
      const count = prng.int(adjustCapacity(signed) + 1);
      // Strictly ascending ids inside a random range (the part's).
      const rangeFirst = prng.u64() >> 1n;
      let node = rangeFirst;
      const entries: AdjustEntry[] = Array.from({ length: count }, () => ({
        node: (node += 1n + (prng.u64() >> 50n)), adjustmentNs: prng.i64(), outlier: prng.bool(), faulty: prng.bool(),
      }));
      const rangeLast = (entries.at(-1)?.node ?? rangeFirst) + (prng.u64() >> 2n);
      return { ...header, type: MessageType.Adjust, part: prng.int(parts), parts, averageNs: prng.i64(), commonPpb: 0, rangeFirst, rangeLast, full: prng.bool(), entries };
    }
    case MessageType.Claim:
      return { ...header, type: MessageType.Claim, priority: prng.int(256), name: randomName(prng) };
    case MessageType.Leave:
      return { ...header, type: MessageType.Leave, name: randomName(prng) };
  }
}

// --- Mutations --------------------------------------------------------------

function mutate(prng: Prng, input: Buffer): Buffer {
  let bytes = Buffer.from(input);
  const rounds = prng.range(1, 3);
  for (let round = 0; round < rounds; round++) {
    switch (prng.int(6)) {
      case 0: // flip 1..8 bits
        for (let n = prng.range(1, 8); n > 0 && bytes.length > 0; n--) bytes[prng.int(bytes.length)]! ^= 1 << prng.int(8);
        break;
      case 1: // truncate
        bytes = bytes.subarray(0, prng.int(bytes.length + 1));
        break;
      case 2: // extend with random bytes, sometimes past the limit
        bytes = Buffer.concat([bytes, prng.bytes(prng.bool() ? prng.range(1, 40) : prng.range(1, MAX_DATAGRAM_BYTES))]);
        break;
      case 3: // overwrite a run of bytes
        for (let n = prng.range(1, 4), at = prng.int(bytes.length + 1); n > 0 && at < bytes.length; n--, at++) bytes[at] = prng.int(256);
        break;
      case 4: // rewrite a header field the decoder acts on: type, key id, flags or body length
        if (bytes.length >= HEADER_BYTES) {
          const field = prng.pick([3, 6, 7, 24]);
          if (field === 24) bytes.writeUInt16BE(prng.bool() ? prng.int(65536) : (bytes.readUInt16BE(24) + prng.range(-3, 3)) & 0xffff, 24);
          else bytes[field] = prng.bool() ? prng.int(256) : prng.int(9);
        }
        break;
      default: // keep the header consistent with a changed body: fix the body length
        if (bytes.length >= HEADER_BYTES) bytes.writeUInt16BE((bytes.length - HEADER_BYTES - (bytes[6] ? TAG_BYTES : 0)) & 0xffff, 24);
        break;
    }
  }
  return bytes;
}

test('random buffers never make decode throw', (t) => {
  const prng = mulberry32(testSeed());
  t.log(`seed ${prng.seed}`);
  for (let i = 0; i < RANDOM_BUFFERS; i++) {
    const bytes = prng.bytes(prng.int(1501));
    // Half of them start with a plausible header, to get past the first
    // tests; half of those also with a consistent length, to reach the bodies.
    if (i % 2 === 1 && bytes.length >= 4) {
      bytes.writeUInt16BE(0x4244, 0);
      bytes[2] = PROTOCOL_VERSION;
      bytes[3] = prng.range(0, 8);
    }
    if (i % 4 === 3 && bytes.length >= HEADER_BYTES) {
      bytes[6] = 0; // no tag
      bytes[7] = 0; // no flags
      bytes.writeUInt16BE(bytes.length - HEADER_BYTES, 24);
    }
    const fault = check(bytes);
    if (fault !== undefined) return t.fail(`seed ${prng.seed}, buffer ${i} (${bytes.toString('hex')}): ${fault}`);
  }
  t.pass();
});

test('mutated valid datagrams of every type never make decode throw', (t) => {
  const prng = mulberry32(testSeed());
  t.log(`seed ${prng.seed}`);
  const fixed = samples();
  // Outcomes with keys (mostly stopped by authentication) and without (reaching the body parsers).
  const keyed = new Map<string, number>();
  const plain = new Map<string, number>();
  const tally = (map: Map<string, number>, result: DecodeResult) => {
    const outcome = result.ok ? 'ok' : result.reason;
    map.set(outcome, (map.get(outcome) ?? 0) + 1);
  };
  for (let i = 0; i < MUTATED_DATAGRAMS; i++) {
    const signed = prng.bool();
    const msg = i % 4 === 0 ? prng.pick(fixed) : randomMessage(prng, signed);
    const auth = signed ? (prng.bool() ? { keyId: 1, key: KEY_1 } : { keyId: 2, key: KEY_2 }) : undefined;
    const valid = encode(msg, auth);
    const mutated = mutate(prng, valid);
    const fault = check(valid) ?? check(mutated);
    if (fault !== undefined) return t.fail(`seed ${prng.seed}, datagram ${i} (type ${msg.type}, ${mutated.toString('hex')}): ${fault}`);
    tally(keyed, decode(mutated, { keys: KEYRING_1_2 }));
    tally(plain, decode(mutated));
  }
  const show = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${reason} ${n}`).join(', ');
  t.log(`with keys: ${show(keyed)}`);
  t.log(`without keys: ${show(plain)}`);
  // The mutations reach every stage of the decoder.
  for (const reason of ['ok', 'short', 'oversized', 'bad-length', 'unknown-type', 'unauthenticated', 'unknown-key', 'bad-tag']) {
    t.true((keyed.get(reason) ?? 0) > 0, `seed ${prng.seed}: no mutation gave ${reason} with keys`);
  }
  for (const reason of ['ok', 'bad-magic', 'bad-version', 'truncated', 'trailing-bytes', 'bad-field', 'table-too-large']) {
    t.true((plain.get(reason) ?? 0) > 0, `seed ${prng.seed}: no mutation gave ${reason} without keys`);
  }
});
