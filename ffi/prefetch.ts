/**
 * Receive-ahead for large dumps: a Worker thread calls `recvmsg` on the dump
 * socket into slots of a `SharedArrayBuffer` while the calling thread decodes
 * the slots already filled, so the kernel's work of producing the dump (done
 * inside `recvmsg`) overlaps with decoding instead of adding to it.
 *
 * The Worker binds its own libc and reads `errno` on its own thread, right
 * after its own call, as every call in ffi/ does. It knows only datagrams: it
 * stops after the datagram holding the end of the dump (`NLMSG_DONE` or
 * `NLMSG_ERROR` for the dump's sequence number, from the kernel). The Worker
 * is inline source (no file to find), so it works the same from a checkout,
 * a bundle or a compiled binary.
 *
 * Handshake, all in one `Int32Array` over the shared buffer:
 * - `START`: 1 once the worker has booted (it is spawned early and boots
 *   while the caller keeps receiving).
 * - `GO`: 0 → 1 by the caller to hand the socket over, or 0 → 2 (by the
 *   caller when the dump ended first, or by a worker left waiting 5 s): the
 *   worker then leaves without touching the socket.
 * - `CANCEL`: 0 → 1 by the caller to abandon the dump (the worker then reads
 *   the rest into a private buffer and closes the socket, which the caller
 *   has handed over), or 0 → 2 by the worker as it stops (the socket stays
 *   the caller's); whichever comes first decides.
 * - per slot: state (0 empty, 1 full), length, sender port, errno.
 *
 * @module
 */

const SLOTS = 8;
const SLOT_SIZE = 65536;
const START = 0, CANCEL = 1, FINISHED = 2, GO = 3;
const SLOT_BASE = 16;
const CTL_INTS = SLOT_BASE + SLOTS * 4;
const DATA = CTL_INTS * 4;
/** How long a worker with no dump to receive waits for the next before it leaves, in ms. */
const IDLE_MS = 10_000;

/** The Worker's source: self-contained JavaScript, binding libc itself. */
const WORKER_SOURCE = `
const SLOTS = ${SLOTS}, SLOT_SIZE = ${SLOT_SIZE}, SLOT_BASE = ${SLOT_BASE}, DATA = ${DATA};
const START = ${START}, CANCEL = ${CANCEL}, FINISHED = ${FINISHED}, GO = ${GO};
let lib, errnoView, idle;
// One worker serves the dumps of one handle in turn: after a job it waits
// for the next (and leaves when told to, or after a while with none).
self.onmessage = (event) => {
  clearTimeout(idle);
  if (event.data === "quit") return self.close();
  job(event.data);
  if (!event.data.keep) return self.close(); // a one-off worker
  idle = setTimeout(() => self.close(), ${IDLE_MS});
};
function job({ sab, fd, seq, portId }) {
  const ctl = new Int32Array(sab, 0, ${CTL_INTS});
  lib ??= Deno.dlopen("libc.so.6", {
    recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
    close: { parameters: ["i32"], result: "i32" },
    __errno_location: { parameters: [], result: "pointer" },
  }).symbols;
  errnoView ??= new Deno.UnsafePointerView(lib.__errno_location());
  const scratch = new Uint8Array(SLOT_SIZE);
  const addr = new Uint8Array(12);
  const addrView = new DataView(addr.buffer);
  // One msghdr + iovec per target: the slots, then the private scratch buffer.
  const targets = [];
  for (let i = 0; i <= SLOTS; i++) {
    const buf = i < SLOTS ? new Uint8Array(sab, DATA + i * SLOT_SIZE, SLOT_SIZE) : scratch;
    const iov = new Uint8Array(16);
    const iv = new DataView(iov.buffer);
    iv.setBigUint64(0, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf))), true);
    iv.setBigUint64(8, BigInt(SLOT_SIZE), true);
    const msg = new Uint8Array(56);
    const mv = new DataView(msg.buffer);
    mv.setBigUint64(0, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(addr))), true);
    mv.setUint32(8, 12, true);
    mv.setBigUint64(16, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(iov))), true);
    mv.setBigUint64(24, 1n, true);
    targets.push({ buf, msg, mv });
  }
  const isEnd = (buf, length) => {
    const v = new DataView(buf.buffer, buf.byteOffset, length);
    for (let off = 0; off + 16 <= length;) {
      const len = v.getUint32(off, true);
      if (len < 16 || len > length - off) return true; // malformed: the caller will say so
      const type = v.getUint16(off + 4, true);
      if ((type === 2 || type === 3) && v.getUint32(off + 8, true) === seq &&
          v.getUint32(off + 12, true) === portId) return true;
      off += (len + 3) & ~3;
    }
    return false;
  };
  // Ready: wait for the caller to hand the socket over (GO 0 -> 1), or to
  // finish without us (0 -> 2); give up after 5 s of silence.
  Atomics.store(ctl, START, 1);
  Atomics.notify(ctl, START);
  for (let waited = 0; Atomics.load(ctl, GO) === 0 && waited < 50; waited++) {
    Atomics.wait(ctl, GO, 0, 100);
  }
  if (Atomics.compareExchange(ctl, GO, 0, 2) !== 1 && Atomics.load(ctl, GO) !== 1) {
    Atomics.store(ctl, FINISHED, 1);
    return;
  }
  for (let i = 0;;) {
    const base = SLOT_BASE + (i % SLOTS) * 4;
    let cancelled = Atomics.load(ctl, CANCEL) === 1;
    while (!cancelled && Atomics.load(ctl, base) !== 0) {
      Atomics.wait(ctl, base, 1, 100);
      cancelled = Atomics.load(ctl, CANCEL) === 1;
    }
    const t = targets[cancelled ? SLOTS : i % SLOTS];
    t.mv.setUint32(8, 12, true);
    t.mv.setInt32(48, 0, true);
    const r = lib.recvmsg(fd, t.msg, 0x20 /* MSG_TRUNC */);
    const n = typeof r === "bigint" ? Number(r) : r;
    let error = 0;
    if (n < 0) {
      error = errnoView.getInt32(0);
      if (error === 4 /* EINTR */) continue;
    } else if (n > SLOT_SIZE || (t.mv.getInt32(48, true) & 0x20) !== 0) {
      error = 90; // EMSGSIZE: truncated
    }
    cancelled = Atomics.load(ctl, CANCEL) === 1;
    if (!cancelled) {
      Atomics.store(ctl, base + 1, n < 0 ? 0 : n);
      Atomics.store(ctl, base + 2, addrView.getUint32(4, true));
      Atomics.store(ctl, base + 3, error);
      Atomics.store(ctl, base, 1);
      Atomics.notify(ctl, base);
      i++;
    }
    if (error !== 0) break;
    if (addrView.getUint32(4, true) === 0 && isEnd(t.buf, n)) break;
  }
  // Leaving: unless the caller cancelled (then the socket is ours to close),
  // mark the socket as still the caller's (CANCEL 0 -> 2).
  if (Atomics.compareExchange(ctl, CANCEL, 0, 2) === 1) lib.close(fd);
  Atomics.store(ctl, FINISHED, 1);
  Atomics.notify(ctl, FINISHED);
}
`;

let workerUrl: string | undefined;

/** One datagram the worker received. */
export interface Prefetched {
  /** The slot's bytes (valid until {@link PrefetchJob.release}). */
  bytes: Uint8Array;
  /** Datagram length. */
  length: number;
  /** The sender's port id (0 = the kernel). */
  senderPort: number;
}

/**
 * A dump being received ahead by a Worker. Call {@link next} for each
 * datagram in order and {@link release} when done with it.
 */
export class PrefetchJob {
  #sab: SharedArrayBuffer;
  #ctl: Int32Array;
  #index = 0;
  #held = -1;
  #timeoutMs: number;

  private constructor(sab: SharedArrayBuffer, timeoutMs: number) {
    this.#sab = sab;
    this.#ctl = new Int32Array(sab, 0, CTL_INTS);
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Spawns a worker for the dump with sequence `seq` on `fd`, without
   * waiting: it boots while the caller goes on receiving itself, and takes
   * over only when the caller calls {@link handOver} once it is
   * {@link ready}. Undefined when no worker can be made here.
   */
  static spawn(
    fd: number,
    seq: number,
    portId: number,
    timeoutMs: number,
    receiver?: Receiver,
  ): PrefetchJob | undefined {
    const taken = receiver !== undefined ? receiver.take() : { worker: newWorker(), keep: false };
    if (taken.worker === undefined) return undefined;
    const sab = new SharedArrayBuffer(DATA + SLOTS * SLOT_SIZE);
    taken.worker.postMessage({ sab, fd, seq, portId, keep: taken.keep });
    const job = new PrefetchJob(sab, timeoutMs);
    receiver?.busyWith(job, taken.keep);
    return job;
  }

  /** True once the worker has booted and waits for the socket. */
  get ready(): boolean {
    return Atomics.load(this.#ctl, START) === 1;
  }

  /**
   * Hands the socket over: from now on only the worker receives on it and
   * {@link next} returns what it received. False when the worker gave up
   * waiting (the caller keeps receiving itself).
   */
  handOver(): boolean {
    const ok = Atomics.compareExchange(this.#ctl, GO, 0, 1) === 0;
    Atomics.notify(this.#ctl, GO);
    return ok;
  }

  /** Tells a worker that was never handed the socket to go away. */
  abort(): void {
    Atomics.compareExchange(this.#ctl, GO, 0, 2);
    Atomics.notify(this.#ctl, GO);
  }

  /**
   * Waits for the next datagram (blocking this thread); `errno` (non-zero)
   * when the receive failed. With `nonBlocking`, undefined at once when the
   * worker has not received it yet (wait with {@link ready} then).
   */
  next(nonBlocking = false): (Prefetched & { errno: number }) | undefined {
    this.release();
    const ctl = this.#ctl;
    const slot = this.#index % SLOTS;
    const base = SLOT_BASE + slot * 4;
    if (nonBlocking && Atomics.load(ctl, base) === 0) return undefined;
    const deadline = performance.now() + this.#timeoutMs;
    while (Atomics.load(ctl, base) === 0) {
      const left = deadline - performance.now();
      if (left <= 0) return { bytes: new Uint8Array(0), length: 0, senderPort: 0, errno: 110 };
      Atomics.wait(ctl, base, 0, Math.min(left, 1000));
    }
    this.#held = slot;
    this.#index++;
    return {
      bytes: new Uint8Array(this.#sab, DATA + slot * SLOT_SIZE, SLOT_SIZE),
      length: Atomics.load(ctl, base + 1),
      senderPort: Atomics.load(ctl, base + 2) >>> 0,
      errno: Atomics.load(ctl, base + 3),
    };
  }

  /**
   * Resolves once the worker has received the next datagram (true), or
   * after `timeoutMs` (false), without blocking the event loop.
   */
  async arrived(timeoutMs: number): Promise<boolean> {
    const base = SLOT_BASE + (this.#index % SLOTS) * 4;
    if (Atomics.load(this.#ctl, base) !== 0) return true;
    const wait = Atomics.waitAsync(this.#ctl, base, 0, timeoutMs);
    if (wait.async) await wait.value;
    return Atomics.load(this.#ctl, base) !== 0;
  }

  /** Hands the slot of the last datagram back to the worker. */
  release(): void {
    if (this.#held < 0) return;
    const base = SLOT_BASE + this.#held * 4;
    Atomics.store(this.#ctl, base, 0);
    Atomics.notify(this.#ctl, base);
    this.#held = -1;
  }

  /**
   * Abandons the dump. Returns true when the worker is still running: it
   * then reads the rest into its own buffer and closes the socket, which the
   * caller must no longer use or close. False: the worker had already
   * stopped, and the socket is still the caller's to close.
   */
  cancel(): boolean {
    this.#held = -1;
    const ctl = this.#ctl;
    const taken = Atomics.compareExchange(ctl, CANCEL, 0, 1) === 0;
    for (let i = 0; i < SLOTS; i++) Atomics.notify(ctl, SLOT_BASE + i * 4);
    return taken;
  }

  /** True once the worker has stopped. */
  get finished(): boolean {
    return Atomics.load(this.#ctl, FINISHED) === 1;
  }
}

/** A new receive-ahead worker; undefined when none can be made here. */
function newWorker(): Worker | undefined {
  try {
    workerUrl ??= URL.createObjectURL(
      new Blob([WORKER_SOURCE], { type: "application/javascript" }),
    );
    return new Worker(workerUrl, { type: "module" });
  } catch {
    return undefined;
  }
}

/**
 * The receive-ahead worker of one handle, made on its first big dump and
 * kept for the next ones: Deno's `new Worker` holds the calling thread for
 * ~10–40 ms, which a server that dumps again and again pays only once. A
 * worker left without a dump for 10 s leaves by itself; {@link close} lets
 * it go at once (after the dump it is receiving, if any).
 */
export class Receiver {
  #worker: Worker | undefined;
  #job: PrefetchJob | undefined;

  /**
   * The worker for a new job: the kept one when it is free, else a new one
   * (kept, or — while the kept one is busy — a one-off that leaves after
   * its dump).
   */
  take(): { worker: Worker | undefined; keep: boolean } {
    if (this.#worker !== undefined && (this.#job === undefined || this.#job.finished)) {
      return { worker: this.#worker, keep: true };
    }
    if (this.#worker !== undefined) return { worker: newWorker(), keep: false };
    this.#worker = newWorker();
    return { worker: this.#worker, keep: true };
  }

  /** Notes the job the kept worker took. */
  busyWith(job: PrefetchJob, keep: boolean): void {
    if (keep) this.#job = job;
  }

  /** Lets the worker go: now if idle, else once its dump is received. */
  close(): void {
    this.#worker?.postMessage("quit");
    this.#worker = undefined;
    this.#job = undefined;
  }
}
