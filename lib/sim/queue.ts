/**
 * The simulator's event queue: a min-heap of entries ordered by (at, seq),
 * and the delivery order of a multicast's receivers.
 */

/** A queue entry: ordered by (at, seq); t is Number(at), compared first because it is cheaper (see Heap). */
export interface QueueEntry<T> {
  at: bigint;
  t: number;
  seq: number;
  item: T;
}

/**
 * Receiver indices sorted by (delay, index): the order in which one event
 * per receiver, scheduled in index order, would leave the queue.
 */
export function deliveryOrder(delays: readonly number[]): Uint32Array {
  const n = delays.length;
  const order = new Uint32Array(n);
  let max = 0;
  let sorted = true;
  for (let k = 0; k < n; k++) {
    const d = delays[k]!;
    if (d > max) max = d;
    if (k > 0 && d < delays[k - 1]!) sorted = false;
    order[k] = k;
  }
  if (sorted) return order;
  // Delay and index packed into one exact double, sorted natively; a comparator beyond 2^53.
  const width = 2 ** Math.ceil(Math.log2(n + 1));
  if ((max + 1) * width <= Number.MAX_SAFE_INTEGER) {
    const keys = new Float64Array(n);
    for (let k = 0; k < n; k++) keys[k] = delays[k]! * width + k;
    keys.sort();
    for (let k = 0; k < n; k++) order[k] = keys[k]! % width;
    return order;
  }
  return order.sort((a, b) => delays[a]! - delays[b]! || a - b);
}

/**
 * A binary min-heap of queue entries by (at, seq). Number(at) is compared
 * first: the conversion never reverses an order, so unequal Numbers decide;
 * equal ones below 2^53 are equal bigints, and beyond that the exact bigints
 * decide; then seq. The keys live in typed arrays beside the entries, so
 * that sifting reads contiguous memory instead of one object per level.
 */
export class Heap<T> {
  private entries: (QueueEntry<T> | undefined)[] = [];
  private ts = new Float64Array(1024);
  private seqs = new Float64Array(1024);
  private n = 0;

  get size(): number {
    return this.n;
  }

  peek(): QueueEntry<T> | undefined {
    return this.entries[0];
  }

  static less<U>(a: QueueEntry<U>, b: QueueEntry<U>): boolean {
    if (a.t !== b.t) return a.t < b.t;
    if (a.t <= Number.MAX_SAFE_INTEGER) return a.seq < b.seq;
    if (a.at !== b.at) return a.at < b.at;
    return a.seq < b.seq;
  }

  /** Entry e before the entry at index i? */
  private before(e: QueueEntry<T>, i: number): boolean {
    const t = this.ts[i]!;
    if (e.t !== t) return e.t < t;
    if (t <= Number.MAX_SAFE_INTEGER) return e.seq < this.seqs[i]!;
    return Heap.less(e, this.entries[i]!);
  }

  /** The entry at index i before the one at j? */
  private beforeAt(i: number, j: number): boolean {
    const ti = this.ts[i]!;
    const tj = this.ts[j]!;
    if (ti !== tj) return ti < tj;
    if (ti <= Number.MAX_SAFE_INTEGER) return this.seqs[i]! < this.seqs[j]!;
    return Heap.less(this.entries[i]!, this.entries[j]!);
  }

  private put(i: number, e: QueueEntry<T>): void {
    this.entries[i] = e;
    this.ts[i] = e.t;
    this.seqs[i] = e.seq;
  }

  private move(from: number, to: number): void {
    this.entries[to] = this.entries[from];
    this.ts[to] = this.ts[from]!;
    this.seqs[to] = this.seqs[from]!;
  }

  push(e: QueueEntry<T>): void {
    if (this.n === this.ts.length) {
      const ts = new Float64Array(this.n * 2);
      ts.set(this.ts);
      this.ts = ts;
      const seqs = new Float64Array(this.n * 2);
      seqs.set(this.seqs);
      this.seqs = seqs;
    }
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(e, p)) break;
      this.move(p, i);
      i = p;
    }
    this.put(i, e);
  }

  pop(): QueueEntry<T> | undefined {
    if (this.n === 0) return undefined;
    const top = this.entries[0]!;
    const n = --this.n;
    const last = this.entries[n]!;
    this.entries[n] = undefined;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const m = r < n && this.beforeAt(r, l) ? r : l;
        if (this.before(last, m)) break;
        this.move(m, i);
        i = m;
      }
      this.put(i, last);
    }
    return top;
  }
}
