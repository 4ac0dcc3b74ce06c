/**
 * The two data structures that let `ctnl top` watch a table of a million
 * entries in bounded work per refresh: {@link CounterSamples} (the last
 * counters of every flow, keyed by flow id, for rates from deltas) and
 * {@link TopN} (a bounded heap that keeps only the rows on screen).
 *
 * @module
 */

/**
 * The counters of every flow at the last pass, keyed by flow id (`CTA_ID`),
 * for rates from deltas. Memory: one `Map` entry and 20 bytes of typed
 * arrays per flow of the last pass; flows gone from the table are swept
 * out at the end of each pass ({@link end}).
 *
 * A flow not seen at the previous pass started since: all of its counters
 * are its delta. A counter that went down is an id the kernel reused: the
 * same. Before the second pass there is no delta (rates are unknown).
 * {@link record} returns whether there is a delta and leaves it in
 * {@link bytes} and {@link packets} (no object per flow).
 *
 * @example Two passes one second apart
 * ```ts
 * import { CounterSamples } from "./rates.ts";
 * import { equal } from "node:assert/strict";
 *
 * const s = new CounterSamples();
 * s.begin(1000);
 * equal(s.record(7, 100, 2), false); // first pass: no rate yet
 * s.end();
 * s.begin(2000);
 * equal(s.record(7, 1100, 12), true);
 * equal(s.bytes, 1000);
 * equal(s.packets, 10);
 * equal(s.seconds, 1);
 * equal(s.record(8, 50, 1), true); // new since the last pass: all of it
 * equal(s.bytes, 50);
 * s.end();
 * equal(s.size, 2);
 * ```
 */
export class CounterSamples {
  readonly #slots = new Map<number, number>();
  #bytes = new Float64Array(1024);
  #packets = new Float64Array(1024);
  #seen = new Uint32Array(1024); // the pass a slot was last recorded in
  readonly #free: number[] = [];
  #used = 0;
  #pass = 0;
  #prevTime: number | undefined;
  #time: number | undefined;
  #ended = false;
  /** The last delta {@link record} found: bytes. */
  bytes = 0;
  /** The last delta {@link record} found: packets. */
  packets = 0;

  /** Starts a pass at `now` (milliseconds). */
  begin(now: number): void {
    if (this.#time !== undefined && this.#ended) this.#prevTime = this.#time;
    else if (this.#time !== undefined) this.#prevTime = undefined; // an unfinished pass: start over
    this.#time = now;
    this.#pass++;
    this.#ended = false;
  }

  /** Ends a pass that saw the whole table: forgets the flows it did not see. */
  end(): void {
    for (const [id, slot] of this.#slots) {
      if (this.#seen[slot] !== this.#pass) {
        this.#slots.delete(id);
        this.#free.push(slot);
      }
    }
    this.#ended = true;
  }

  /** Seconds between the previous pass and this one (undefined before the second pass). */
  get seconds(): number | undefined {
    if (this.#prevTime === undefined || this.#time === undefined) return undefined;
    return (this.#time - this.#prevTime) / 1000;
  }

  /** Flows it holds counters of. */
  get size(): number {
    return this.#slots.size;
  }

  #grow(): void {
    const n = this.#bytes.length * 2;
    const grow = <T extends Float64Array | Uint32Array>(a: T, b: T) => (b.set(a), b);
    this.#bytes = grow(this.#bytes, new Float64Array(n));
    this.#packets = grow(this.#packets, new Float64Array(n));
    this.#seen = grow(this.#seen, new Uint32Array(n));
  }

  /** Records flow `id`'s totals; whether there is a delta (then in {@link bytes}, {@link packets}). */
  record(id: number, bytes: number, packets: number): boolean {
    let slot = this.#slots.get(id);
    let known = false;
    if (slot === undefined) {
      slot = this.#free.pop();
      if (slot === undefined) {
        if (this.#used === this.#bytes.length) this.#grow();
        slot = this.#used++;
      }
      this.#slots.set(id, slot);
    } else {
      known = this.#seen[slot] === this.#pass - 1;
    }
    const b = this.#bytes[slot]!, p = this.#packets[slot]!;
    this.#bytes[slot] = bytes;
    this.#packets[slot] = packets;
    this.#seen[slot] = this.#pass;
    if (this.#prevTime === undefined) return false;
    if (!known || bytes < b || packets < p) {
      this.bytes = bytes;
      this.packets = packets;
    } else {
      this.bytes = bytes - b;
      this.packets = packets - p;
    }
    return true;
  }
}

/**
 * The `limit` best of the values pushed into it, by `compare` (negative:
 * the first argument comes first), in O(log limit) per push and O(limit)
 * memory: a binary heap whose root is the worst value kept.
 *
 * @example The three biggest
 * ```ts
 * import { TopN } from "./rates.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * const top = new TopN<number>(3, (a, b) => b - a);
 * for (const n of [5, 1, 9, 7, 3, 8]) top.push(n);
 * deepEqual(top.sorted(), [9, 8, 7]);
 * ```
 */
export class TopN<T> {
  readonly #heap: T[] = [];
  readonly #limit: number;
  readonly #compare: (a: T, b: T) => number;

  constructor(limit: number, compare: (a: T, b: T) => number) {
    this.#limit = Math.max(0, limit);
    this.#compare = compare;
  }

  /** How many values it holds. */
  get size(): number {
    return this.#heap.length;
  }

  /** Offers `value`; it is kept if it is among the best `limit` so far. */
  push(value: T): void {
    const h = this.#heap;
    if (h.length < this.#limit) {
      h.push(value);
      this.#up(h.length - 1);
    } else if (h.length > 0 && this.#compare(value, h[0]!) < 0) {
      h[0] = value;
      this.#down(0);
    }
  }

  /** The values kept, best first. */
  sorted(): T[] {
    return [...this.#heap].sort(this.#compare);
  }

  // The heap is ordered so that the root is the last in display order.
  #worse(i: number, j: number): boolean {
    return this.#compare(this.#heap[i]!, this.#heap[j]!) > 0;
  }

  #swap(i: number, j: number): void {
    const h = this.#heap;
    [h[i], h[j]] = [h[j]!, h[i]!];
  }

  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#worse(i, parent)) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const n = this.#heap.length;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let worst = i;
      if (l < n && this.#worse(l, worst)) worst = l;
      if (r < n && this.#worse(r, worst)) worst = r;
      if (worst === i) return;
      this.#swap(i, worst);
      i = worst;
    }
  }
}
