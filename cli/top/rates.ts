/**
 * The two data structures that let `ctnl top` watch a table of a million
 * entries in bounded work per refresh: {@link CounterSamples} (the last
 * counters of every flow, keyed by flow id, for rates from deltas) and
 * {@link TopN} (a bounded heap that keeps only the rows on screen).
 *
 * @module
 */

/** What changed for one flow since the previous pass. */
export interface Delta {
  /** Bytes since the previous pass (both directions). */
  readonly bytes: number;
  /** Packets since the previous pass. */
  readonly packets: number;
}

/**
 * The counters of every flow at the previous pass and at this one, keyed by
 * flow id (`CTA_ID`). Memory: a `Map` entry and two doubles per flow of the
 * last two passes; the older pass is dropped when a new one begins.
 *
 * A flow not seen at the previous pass started since: all of its counters
 * are its delta. A counter that went down is an id the kernel reused: the
 * same. Before the second pass there is no delta (rates are unknown).
 *
 * @example Two passes one second apart
 * ```ts
 * import { CounterSamples } from "./rates.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const s = new CounterSamples();
 * s.begin(1000);
 * equal(s.record(7, 100, 2), undefined); // first pass: no rate yet
 * s.begin(2000);
 * deepEqual(s.record(7, 1100, 12), { bytes: 1000, packets: 10 });
 * equal(s.seconds, 1);
 * deepEqual(s.record(8, 50, 1), { bytes: 50, packets: 1 }); // new since the last pass
 * ```
 */
export class CounterSamples {
  #prev = new Map<number, number>();
  #prevCounters = new Float64Array(0);
  #next = new Map<number, number>();
  #nextCounters = new Float64Array(2048);
  #prevTime: number | undefined;
  #nextTime: number | undefined;

  /** Starts a pass at `now` (milliseconds); the pass before the last is forgotten. */
  begin(now: number): void {
    if (this.#nextTime !== undefined) {
      this.#prev = this.#next;
      this.#prevCounters = this.#nextCounters;
      this.#prevTime = this.#nextTime;
      this.#next = new Map();
      this.#nextCounters = new Float64Array(Math.max(2048, this.#prev.size * 2 + 64));
    }
    this.#nextTime = now;
  }

  /** Seconds between the previous pass and this one (undefined before the second pass). */
  get seconds(): number | undefined {
    if (this.#prevTime === undefined || this.#nextTime === undefined) return undefined;
    return (this.#nextTime - this.#prevTime) / 1000;
  }

  /** Flows recorded in this pass. */
  get size(): number {
    return this.#next.size;
  }

  /** Records flow `id`'s totals in this pass and returns its delta since the previous one. */
  record(id: number, bytes: number, packets: number): Delta | undefined {
    let slot = this.#next.get(id);
    if (slot === undefined) {
      slot = this.#next.size * 2;
      if (slot + 2 > this.#nextCounters.length) {
        const bigger = new Float64Array(this.#nextCounters.length * 2);
        bigger.set(this.#nextCounters);
        this.#nextCounters = bigger;
      }
      this.#next.set(id, slot);
    }
    this.#nextCounters[slot] = bytes;
    this.#nextCounters[slot + 1] = packets;
    if (this.#prevTime === undefined) return undefined;
    const before = this.#prev.get(id);
    if (before === undefined) return { bytes, packets };
    const b = this.#prevCounters[before]!, p = this.#prevCounters[before + 1]!;
    if (bytes < b || packets < p) return { bytes, packets };
    return { bytes: bytes - b, packets: packets - p };
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
