/**
 * The generator's one timer (bench/scale-gen.ts): instead of a timer per
 * emulated peer, the round's slots sorted by time, and a FIFO of probe
 * deadlines (every request waits the same probe timeout, so deadlines come
 * in the order the requests went out). One setTimeout is armed for the
 * earlier of the next slot and the next deadline of a request still
 * waiting.
 */
export class Schedule {
  private readonly slotAt: Float64Array;
  private order: number[] = [];
  private nextSlot = 0;
  private readonly toIdx: Int32Array;
  private readonly toSeq: Uint8Array;
  private readonly toAt: Float64Array;
  private head = 0;
  private tail = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;

  /**
   * n peers, at most `capacity` requests a round; fire() runs when the timer
   * does; live(i, seq): request seq of peer i still waits for its reply.
   */
  constructor(
    n: number,
    capacity: number,
    private readonly fire: () => void,
    private readonly live: (i: number, seq: number) => boolean,
  ) {
    this.slotAt = new Float64Array(n);
    this.toIdx = new Int32Array(capacity);
    this.toSeq = new Uint8Array(capacity);
    this.toAt = new Float64Array(capacity);
  }

  /** A new round: each peer's slot (ms, performance.now()); the last round's deadlines are dropped. */
  plan(slotOf: (i: number) => number): void {
    for (let i = 0; i < this.slotAt.length; i++) this.slotAt[i] = slotOf(i);
    this.order = [...Array(this.slotAt.length).keys()].sort((a, b) => this.slotAt[a]! - this.slotAt[b]!);
    this.nextSlot = 0;
    this.head = this.tail = 0;
  }

  /** Slots that never came this round. */
  get notStarted(): number {
    return this.order.length - this.nextSlot;
  }

  /** The next peer whose slot has come by `now`, or -1. */
  slotDue(now: number): number {
    if (this.nextSlot >= this.order.length || this.slotAt[this.order[this.nextSlot]!]! > now) return -1;
    return this.order[this.nextSlot++]!;
  }

  /** Request seq of peer i waits for its reply until `at`. */
  deadline(i: number, seq: number, at: number): void {
    const k = this.tail++;
    this.toIdx[k] = i;
    this.toSeq[k] = seq;
    this.toAt[k] = at;
  }

  /** The next peer whose waiting request's deadline has passed by `now`, or -1 (answered requests are skipped). */
  timeoutDue(now: number): number {
    this.skipAnswered();
    if (this.head >= this.tail || this.toAt[this.head]! > now) return -1;
    return this.toIdx[this.head++]!;
  }

  private skipAnswered(): void {
    while (this.head < this.tail && !this.live(this.toIdx[this.head]!, this.toSeq[this.head]!)) this.head += 1;
  }

  /** Arms the timer for the next slot or deadline, unless it is armed for that or earlier already. */
  arm(now: number): void {
    this.skipAnswered();
    const slot = this.nextSlot < this.order.length ? this.slotAt[this.order[this.nextSlot]!]! : Infinity;
    const at = Math.min(slot, this.head < this.tail ? this.toAt[this.head]! : Infinity);
    if (at === Infinity || at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.fire();
    }, Math.max(0, at - now));
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }
}
