/**
 * The async iterable of a streaming dump: batches of flows from the
 * transport handed out one flow at a time, with one already-settled promise
 * per flow (a hand-written iterator costs about a third of an async
 * generator per value, which matters at a million flows).
 *
 * @module
 */

/**
 * Flattens the batches of `start()` (called on the first `next()`), then
 * runs `end()` (which may throw, e.g. the dump was interrupted).
 */
export class BatchStream<T> implements AsyncIterableIterator<T> {
  #start: (() => AsyncIterator<T[]>) | undefined;
  #end: () => void;
  #inner: AsyncIterator<T[]> | undefined;
  #batch: T[] = [];
  #i = 0;
  #done = false;

  /** A stream of what the batches of `start()` hold; `end()` runs after the last. */
  constructor(start: () => AsyncIterator<T[]>, end: () => void) {
    this.#start = start;
    this.#end = end;
  }

  /** The stream itself (for `for await`). */
  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next value. */
  next(): Promise<IteratorResult<T, undefined>> {
    if (this.#i < this.#batch.length) {
      return Promise.resolve({ value: this.#batch[this.#i++]!, done: false });
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return this.#refill();
  }

  async #refill(): Promise<IteratorResult<T, undefined>> {
    try {
      if (this.#inner === undefined) {
        const start = this.#start!;
        this.#start = undefined;
        this.#inner = start();
      }
      for (;;) {
        const r = await this.#inner.next();
        if (r.done) {
          this.#done = true;
          this.#batch = [];
          this.#end();
          return { value: undefined, done: true };
        }
        if (r.value.length === 0) continue;
        this.#batch = r.value;
        this.#i = 1;
        return { value: r.value[0]!, done: false };
      }
    } catch (error) {
      this.#done = true;
      this.#batch = [];
      throw error;
    }
  }

  /** Stops early (`break`): the underlying exchange is ended. */
  async return(): Promise<IteratorResult<T, undefined>> {
    this.#done = true;
    this.#batch = [];
    this.#start = undefined;
    await this.#inner?.return?.();
    return { value: undefined, done: true };
  }
}
