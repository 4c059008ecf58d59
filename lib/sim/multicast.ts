/**
 * The simulator's group datagrams: one multicast on its way to every
 * receiver, held in the queue as one entry (simulator.ts), and which part
 * of a large ADJUST table each receiver reads.
 */
import type { Address } from '../core/types.js';
import { MessageType, type Message } from '../wire/messages.js';

/**
 * One group datagram on its way to every receiver. Its deliveries are what
 * one event per receiver would be (the same arrival times, the same sequence
 * numbers, so the same global order), but they wait in the queue as one
 * entry that stands for the earliest delivery not yet made: the queue holds
 * O(datagrams in flight), not O(datagrams x receivers). At 10,000 nodes one
 * round's ADJUST table alone is 127 parts x 9,999 receivers.
 *
 * Of those, each receiver needs one: the part whose range holds its node
 * id (protocol 3). The engine ignores every other part at once, with no
 * action and no state (the daemon does not even decode them: 'other-part'),
 * so only that part is delivered. `runSimulation(o, { deliverAll: true })`
 * delivers every datagram, and the tests check that both give the same
 * result.
 */
export interface AdjustTable {
  id: number;
  /** By node index: the part that holds the node's entry; -1 none, -2 more than one (always delivered). */
  partOf: Int32Array;
}

export interface Multicast {
  msg: Message;
  /** For an ADJUST part: its table, and its number in it. */
  table: AdjustTable | null;
  part: number;
  from: Address;
  sentAtNs: bigint;
  /** Receiver k (a node index), its one-way delay (ns, an integer) and sequence number seq0 + k, in the order they were drawn. */
  receivers: number[];
  delays: number[];
  seq0: number;
  /** Receiver indices by (arrival, sequence), and the next one to deliver. */
  order: Uint32Array;
  next: number;
}

/** A table's parts (splitAdjust: in id order), and for each node id, by index, the one part whose range holds it. */
export function adjustTable(id: number, parts: readonly Message[], ids: readonly bigint[]): AdjustTable {
  const partOf = new Int32Array(ids.length).fill(-1);
  // Parts cover the ids in order: the last part whose range starts at or below the id.
  const firsts = parts.map((part) => (part.type === MessageType.Adjust ? part.rangeFirst : 0n));
  ids.forEach((nodeId, i) => {
    let lo = 0;
    let hi = firsts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (firsts[mid]! <= nodeId) lo = mid;
      else hi = mid - 1;
    }
    partOf[i] = lo;
  });
  return { id, partOf };
}
