/**
 * Field-level helpers of the codec: a bounds-checked body reader, a writer,
 * range checks for encoding, and the two composite fields (name, address).
 *
 * Reading: BodyReader never reads past the end of the body it was given, but
 * it does not check on every read; the body decoders call has(n) before each
 * group of reads (dns-packet style) and return 'truncated' when it fails.
 * Writing: the check* functions throw RangeError with the field's name;
 * they guard our own code, not network input.
 */

import { FAMILY_IPV4, FAMILY_IPV6, addressBytes, formatAddress, unicastFault } from './address.js';
import { MAX_NAME_BYTES, type DecodeError } from './messages.js';

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const U64_MAX = (1n << 64n) - 1n;

/** Cursor over body bytes [start, end) of a datagram. */
export class BodyReader {
  private offset: number;

  constructor(private readonly buf: Buffer, start: number, private readonly end: number) {
    this.offset = start;
  }

  /** True when n more bytes lie within the body. Call before reading them. */
  has(n: number): boolean {
    return this.end - this.offset >= n;
  }

  /** True when every byte of the body has been read. */
  atEnd(): boolean {
    return this.offset === this.end;
  }

  u8(): number {
    const value = this.buf.readUInt8(this.offset);
    this.offset += 1;
    return value;
  }

  u16(): number {
    const value = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  u32(): number {
    const value = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  i32(): number {
    const value = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  u64(): bigint {
    const value = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  i64(): bigint {
    const value = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  /** A view (not a copy) of the next n bytes. */
  bytes(n: number): Buffer {
    const view = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return view;
  }
}

/** Cursor writing a body; the buffer was sized by encodingLength. */
export class BodyWriter {
  constructor(private readonly buf: Buffer, public offset: number) {}

  u8(value: number): void {
    this.offset = this.buf.writeUInt8(value, this.offset);
  }

  u16(value: number): void {
    this.offset = this.buf.writeUInt16BE(value, this.offset);
  }

  u32(value: number): void {
    this.offset = this.buf.writeUInt32BE(value, this.offset);
  }

  i32(value: number): void {
    this.offset = this.buf.writeInt32BE(value, this.offset);
  }

  u64(value: bigint): void {
    this.offset = this.buf.writeBigUInt64BE(value, this.offset);
  }

  i64(value: bigint): void {
    this.offset = this.buf.writeBigInt64BE(value, this.offset);
  }

  bytes(value: Uint8Array): void {
    this.buf.set(value, this.offset);
    this.offset += value.length;
  }

  /** n zero bytes (padding). */
  zeros(n: number): void {
    this.buf.fill(0, this.offset, this.offset + n);
    this.offset += n;
  }
}

// --- Range checks for encoding (throw: programmer error) -------------------

export function checkUint(field: string, value: number, bits: 8 | 16 | 32): void {
  if (!Number.isInteger(value) || value < 0 || value > 2 ** bits - 1) {
    throw new RangeError(`${field} must be an integer in 0..${2 ** bits - 1}, got ${String(value)}`);
  }
}

export function checkU64(field: string, value: bigint): void {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw new RangeError(`${field} must be a bigint in 0..2^64-1, got ${String(value)}`);
  }
}

export function checkI64(field: string, value: bigint): void {
  if (typeof value !== 'bigint' || value < I64_MIN || value > I64_MAX) {
    throw new RangeError(`${field} must be a bigint in -2^63..2^63-1, got ${String(value)}`);
  }
}

export function checkBoolean(field: string, value: boolean): void {
  if (typeof value !== 'boolean') throw new RangeError(`${field} must be a boolean, got ${String(value)}`);
}

// --- Names: u8 length (1..MAX_NAME_BYTES) + UTF-8 ---------------------------

/** C0 controls, DEL and C1 controls (Unicode category Cc). */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
/** A UTF-16 surrogate without its partner: not encodable as UTF-8. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** fatal: invalid UTF-8 throws; ignoreBOM: a leading U+FEFF is kept, so names re-encode to the same bytes. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes the name field takes on the wire: the length byte and the UTF-8. */
export function nameEncodingLength(name: string): number {
  return 1 + Buffer.byteLength(name, 'utf8');
}

export function writeName(w: BodyWriter, name: string): void {
  if (typeof name !== 'string' || LONE_SURROGATE.test(name) || CONTROL_CHARACTER.test(name)) {
    throw new RangeError(`name must be a well-formed string without control characters: ${JSON.stringify(name)}`);
  }
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length < 1 || bytes.length > MAX_NAME_BYTES) {
    throw new RangeError(`name must be 1..${MAX_NAME_BYTES} UTF-8 bytes, got ${bytes.length}`);
  }
  w.u8(bytes.length);
  w.bytes(bytes);
}

/** Reads a name field: 'truncated' if it reaches past the body, 'bad-field' if empty, too long, not UTF-8 or holding a control character. */
export function readName(r: BodyReader): { name: string } | DecodeError {
  if (!r.has(1)) return 'truncated';
  const lengthBytes = r.u8();
  if (lengthBytes < 1 || lengthBytes > MAX_NAME_BYTES) return 'bad-field';
  if (!r.has(lengthBytes)) return 'truncated';
  let name: string;
  try {
    name = utf8.decode(r.bytes(lengthBytes));
  } catch {
    return 'bad-field';
  }
  if (CONTROL_CHARACTER.test(name)) return 'bad-field';
  return { name };
}

// --- Addresses: family (u8: 4 or 6), then 4 or 16 bytes, network order -------

/** Bytes an address field takes: the family byte and the address. */
export function addressEncodingLength(address: string): number {
  const wire = addressBytes(address);
  return 1 + (wire ? wire.bytes.length : 4);
}

export function writeAddress(w: BodyWriter, field: string, address: string): void {
  const wire = addressBytes(address);
  if (!wire) throw new RangeError(`${field} must be an IPv4 dotted quad or an IPv6 address, got ${JSON.stringify(address)}`);
  const fault = unicastFault(wire.family, wire.bytes);
  if (fault) throw new RangeError(`${field} must be a unicast address, got ${fault}: ${address}`);
  w.u8(wire.family);
  w.bytes(wire.bytes);
}

/** Reads an address field: 'truncated' past the body, 'bad-field' for an unknown family, a multicast or an IPv4-mapped address. */
export function readAddress(r: BodyReader): { address: string } | DecodeError {
  if (!r.has(1)) return 'truncated';
  const family = r.u8();
  if (family !== FAMILY_IPV4 && family !== FAMILY_IPV6) return 'bad-field';
  const length = family === FAMILY_IPV4 ? 4 : 16;
  if (!r.has(length)) return 'truncated';
  const bytes = r.bytes(length);
  if (unicastFault(family, bytes)) return 'bad-field';
  return { address: formatAddress(family, bytes) };
}
