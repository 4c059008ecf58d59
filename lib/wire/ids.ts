/**
 * Node ids: the 64-bit name of a node on the wire.
 *
 * A node's id is derived from its name, so that every host computes the same
 * id for the same name without any registry: the first 8 bytes of
 * SHA-256(UTF-8 name), read as an unsigned big-endian 64-bit integer.
 * Ids order the election (ties of priority) and key the ADJUST table.
 */

import { createHash } from 'node:crypto';

/** Largest value a u64 holds. */
export const MAX_NODE_ID = (1n << 64n) - 1n;

/** The 64-bit id of the node called `name` (first 8 bytes of SHA-256, big-endian). */
export function nodeIdOf(name: string): bigint {
  const digest = createHash('sha256').update(name, 'utf8').digest();
  return digest.readBigUInt64BE(0);
}

/** A node id as 16 lower-case hex digits, e.g. "03a1f0c2b4d5e6f7". Throws on a value that is not a u64. */
export function formatNodeId(id: bigint): string {
  if (typeof id !== 'bigint' || id < 0n || id > MAX_NODE_ID) {
    throw new RangeError(`node id out of range: ${String(id)}`);
  }
  return id.toString(16).padStart(16, '0');
}
