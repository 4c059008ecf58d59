/**
 * A small seeded PRNG (mulberry32) for randomised tests. Every randomised
 * test takes its seed from the environment or picks one, and prints it when
 * it fails, so that a failure can be replayed:
 *
 *     BERKELEYD_TEST_SEED=123456 npx ava dist/test/wire-fuzz.test.js
 */

import { randomInt } from 'node:crypto';

export interface Prng {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform integer in [min, max]. */
  range(min: number, max: number): number;
  bool(): boolean;
  /** Uniform unsigned 64-bit value. */
  u64(): bigint;
  /** Uniform signed 64-bit value. */
  i64(): bigint;
  bytes(n: number): Buffer;
  pick<T>(items: readonly T[]): T;
}

export function mulberry32(seed: number): Prng {
  let state = seed >>> 0;
  const u32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const prng: Prng = {
    seed,
    next: () => u32() / 2 ** 32,
    int: (n) => Math.floor((u32() / 2 ** 32) * n),
    range: (min, max) => min + prng.int(max - min + 1),
    bool: () => (u32() & 1) === 1,
    u64: () => (BigInt(u32()) << 32n) | BigInt(u32()),
    i64: () => BigInt.asIntN(64, prng.u64()),
    bytes(n) {
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i++) out[i] = u32() & 0xff;
      return out;
    },
    pick: (items) => items[prng.int(items.length)]!,
  };
  return prng;
}

/** The seed in BERKELEYD_TEST_SEED, or a fresh random one. */
export function testSeed(): number {
  const fromEnv = process.env['BERKELEYD_TEST_SEED'];
  if (fromEnv !== undefined && /^[0-9]+$/.test(fromEnv)) return Number(fromEnv) >>> 0;
  return randomInt(0, 2 ** 32 - 1);
}
