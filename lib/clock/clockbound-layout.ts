/**
 * ClockBound's shared-memory segment, protocol version 2 (aws/clock-bound,
 * docs/PROTOCOL.md): the byte layout alone, pure. The file I/O is in
 * clockbound.ts (the writer) and clockbound-reader.ts (the client).
 *
 * Native byte order (little-endian on x86_64 and arm64, the only platforms
 * the FFI here runs on), 80 bytes, the C layout of ClockBound's ShmHeader
 * followed by its ClockErrorBound:
 *
 *   off size field
 *     0  4+4 magic: two u32, 0x414D5A4E then 0x43420200 (what the clients compare)
 *     8  4   segment size (u32): 80
 *    12  2   version (u16): 2
 *    14  2   generation (u16): odd while the writer writes; 0: never written
 *    16  16  as-of: CLOCK_MONOTONIC_COARSE timespec (i64 tv_sec, i64 tv_nsec)
 *    32  16  void-after: CLOCK_MONOTONIC_COARSE timespec
 *    48  8   bound (i64), ns: |CLOCK_REALTIME - true time| at as-of
 *    56  8   disruption marker (u64)
 *    64  4   max drift (u32), ppb: how fast the bound grows after as-of
 *    68  4   clock status (i32): 0 unknown, 1 synchronized, 2 free running, 3 disrupted
 *    72  1   clock disruption support (u8): 0 or 1
 *    73  7   padding (zero)
 */

export const CLOCKBOUND_MAGIC = [0x414d5a4e, 0x43420200] as const;
export const CLOCKBOUND_VERSION = 2;
export const CLOCKBOUND_SEGMENT_SIZE = 80;
/** Where ClockBound's daemon writes, and its clients read, by default. */
export const CLOCKBOUND_DEFAULT_PATH = '/var/run/clockbound/shm0';

export const OFFSET = {
  magic: 0,
  segmentSize: 8,
  version: 12,
  generation: 14,
  asOf: 16,
  voidAfter: 32,
  bound: 48,
  disruptionMarker: 56,
  maxDrift: 64,
  status: 68,
  disruptionSupport: 72,
} as const;

export enum ClockStatus {
  Unknown = 0,
  Synchronized = 1,
  FreeRunning = 2,
  Disrupted = 3,
}

/** The body of the segment: everything the generation protects. Times are CLOCK_MONOTONIC_COARSE ns. */
export interface ClockErrorBoundRecord {
  asOfNs: bigint;
  voidAfterNs: bigint;
  boundNs: bigint;
  disruptionMarker: bigint;
  maxDriftPpb: number;
  status: ClockStatus;
  disruptionSupport: boolean;
}

const NS = 1_000_000_000n;

function writeTimespec(b: Buffer, off: number, ns: bigint): void {
  // tv_nsec in [0, 1e9) also for negative times (never the case for a monotonic clock).
  let sec = ns / NS;
  let nsec = ns % NS;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += NS;
  }
  b.writeBigInt64LE(sec, off);
  b.writeBigInt64LE(nsec, off + 8);
}

function readTimespec(b: Buffer, off: number): bigint {
  return b.readBigInt64LE(off) * NS + b.readBigInt64LE(off + 8);
}

/** The whole segment, header included, with this generation. */
export function encodeSegment(rec: ClockErrorBoundRecord, generation: number): Buffer {
  const b = Buffer.alloc(CLOCKBOUND_SEGMENT_SIZE);
  b.writeUInt32LE(CLOCKBOUND_MAGIC[0], OFFSET.magic);
  b.writeUInt32LE(CLOCKBOUND_MAGIC[1], OFFSET.magic + 4);
  b.writeUInt32LE(CLOCKBOUND_SEGMENT_SIZE, OFFSET.segmentSize);
  b.writeUInt16LE(CLOCKBOUND_VERSION, OFFSET.version);
  b.writeUInt16LE(generation, OFFSET.generation);
  encodeBody(rec).copy(b, OFFSET.asOf);
  return b;
}

/** Bytes 16 to 80: what a writer puts between the odd and the even generation. */
export function encodeBody(rec: ClockErrorBoundRecord): Buffer {
  if (rec.maxDriftPpb < 0 || rec.maxDriftPpb >= 1e9 || !Number.isInteger(rec.maxDriftPpb)) throw new RangeError(`max drift ${rec.maxDriftPpb} ppb: an integer from 0 to 999999999 (the clients refuse 1e9 and more)`);
  if (rec.boundNs < 0n || rec.boundNs > 0x7fffffffffffffffn) throw new RangeError(`bound ${rec.boundNs} ns out of range`);
  const b = Buffer.alloc(CLOCKBOUND_SEGMENT_SIZE - OFFSET.asOf);
  const at = (o: number): number => o - OFFSET.asOf;
  writeTimespec(b, at(OFFSET.asOf), rec.asOfNs);
  writeTimespec(b, at(OFFSET.voidAfter), rec.voidAfterNs);
  b.writeBigInt64LE(rec.boundNs, at(OFFSET.bound));
  b.writeBigUInt64LE(rec.disruptionMarker, at(OFFSET.disruptionMarker));
  b.writeUInt32LE(rec.maxDriftPpb, at(OFFSET.maxDrift));
  b.writeInt32LE(rec.status, at(OFFSET.status));
  b.writeUInt8(rec.disruptionSupport ? 1 : 0, at(OFFSET.disruptionSupport));
  return b;
}

/** The next generation after g at the end of a write: even, and never 0 (0 means "never written"). */
export function nextEvenGeneration(g: number): number {
  const odd = g % 2 === 1 ? g : (g + 1) & 0xffff;
  const even = (odd + 1) & 0xffff;
  return even === 0 ? 2 : even;
}

/** The odd generation that marks a write in progress, from the current one. */
export function oddGeneration(g: number): number {
  return g % 2 === 1 ? g : (g + 1) & 0xffff;
}

export type DecodedSegment =
  | { ok: true; generation: number; record: ClockErrorBoundRecord }
  | { ok: false; reason: 'short' | 'magic' | 'version' | 'not-written' | 'size' | 'writing' };

/**
 * A segment's header and body, as ClockBound's clients check them: magic,
 * a version they know, a generation other than 0 (never written), a size
 * that holds the header and the body; an odd generation is a write in
 * progress. Says nothing about a torn read: the caller compares generations.
 */
export function decodeSegment(b: Buffer): DecodedSegment {
  if (b.length < 16) return { ok: false, reason: 'short' };
  if (b.readUInt32LE(0) !== CLOCKBOUND_MAGIC[0] || b.readUInt32LE(4) !== CLOCKBOUND_MAGIC[1]) return { ok: false, reason: 'magic' };
  if (b.readUInt16LE(OFFSET.version) !== CLOCKBOUND_VERSION) return { ok: false, reason: 'version' };
  const generation = b.readUInt16LE(OFFSET.generation);
  if (generation === 0) return { ok: false, reason: 'not-written' };
  if (b.readUInt32LE(OFFSET.segmentSize) < CLOCKBOUND_SEGMENT_SIZE || b.length < CLOCKBOUND_SEGMENT_SIZE) return { ok: false, reason: 'size' };
  if (generation % 2 === 1) return { ok: false, reason: 'writing' };
  return {
    ok: true,
    generation,
    record: {
      asOfNs: readTimespec(b, OFFSET.asOf),
      voidAfterNs: readTimespec(b, OFFSET.voidAfter),
      boundNs: b.readBigInt64LE(OFFSET.bound),
      disruptionMarker: b.readBigUInt64LE(OFFSET.disruptionMarker),
      maxDriftPpb: b.readUInt32LE(OFFSET.maxDrift),
      status: b.readInt32LE(OFFSET.status) as ClockStatus,
      disruptionSupport: b.readUInt8(OFFSET.disruptionSupport) !== 0,
    },
  };
}

/**
 * The bound at monotonic instant monoNs, as ClockBound's clients compute
 * it: bound + maxDrift · (mono − asOf); null when mono is before as-of by
 * more than 1 µs (the clients' causality check fails there).
 */
export function boundAt(rec: ClockErrorBoundRecord, monoNs: bigint): bigint | null {
  const elapsed = monoNs - rec.asOfNs;
  if (elapsed < -1000n) return null;
  const grow = elapsed > 0n ? (elapsed * BigInt(rec.maxDriftPpb) + 999_999_999n) / NS : 0n;
  return rec.boundNs + grow;
}

/**
 * The status a ClockBound client reports at monoNs: as written within 5 s
 * of as-of (their grace period for a restarting writer), then free running
 * until void-after, then unknown. Unknown and disrupted stay as they are.
 */
export function statusAt(rec: ClockErrorBoundRecord, monoNs: bigint): ClockStatus {
  if (rec.status !== ClockStatus.Synchronized && rec.status !== ClockStatus.FreeRunning) return rec.status;
  if (monoNs < rec.asOfNs + 5n * NS) return rec.status;
  if (monoNs < rec.voidAfterNs) return ClockStatus.FreeRunning;
  return ClockStatus.Unknown;
}
