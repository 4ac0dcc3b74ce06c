/**
 * The transport under every operation: it owns the netlink socket and does
 * everything netlink — sequence numbers, sender and port checks, ACKs,
 * `NLMSG_ERROR` with extended ack, multi-part dumps to `NLMSG_DONE`,
 * `NLM_F_DUMP_INTR`, batched requests with their ACKs, receive-ahead on a
 * worker, and abandon-and-reopen — with one receive loop ({@link Transport}'s
 * `#messages`). Operations (src/conntrack.ts) build a request, hand it here
 * and decode what comes back.
 *
 * Between the two stands the `Socket` interface of src/sockets.ts, as
 * mdlayher/netlink's `Socket`: the real one is ffi/socket.ts's
 * `NetlinkSocket`; the unit tests plug in a fake kernel that replays
 * captured datagrams.
 *
 * @module
 */

import * as C from "./constants.ts";
import {
  BusyError,
  ClosedError,
  DecodeError,
  ERRNO,
  NetlinkError,
  type Operation,
} from "./errors.ts";
import { Receiver } from "../ffi/prefetch.ts";
import { type Socket, type SocketFactory, Source } from "./sockets.ts";
import {
  AttrCursor,
  Encoder,
  type MessageHeader,
  newHeader,
  NLM_F_DUMP_INTR,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_NOOP,
  readError,
  readHeader,
} from "./netlink.ts";

/** Decodes one reply message (its header in `h`) of an exchange. */
export type Decoder<T> = (c: AttrCursor, bytes: Uint8Array, view: DataView, h: MessageHeader) => T;

/** How an exchange treats its replies. */
export interface ExchangeOptions<T> {
  /** Yield only what this accepts. */
  keep?: ((value: T) => boolean) | undefined;
  /** Receive ahead on a worker after this many datagrams (default: never). */
  prefetchAfter?: number;
  /** Set to true when the kernel flagged the dump `NLM_F_DUMP_INTR`. */
  interrupted?: { value: boolean };
}

/** A failed request of a batch: its sequence number, errno and extended ack. */
export interface BatchError {
  /** The request's sequence number. */
  seq: number;
  /** The positive errno. */
  errno: number;
  /** The kernel's extended-ack message. */
  extAck: string | undefined;
}

/** How long an async exchange decodes before it gives the event loop a turn, in ms. */
export const SLICE_MS = 4;

const SKIP = Symbol("skip");
const DONE = Symbol("done");

/** The state of one exchange: its request, socket, source of datagrams and reply handling. */
interface Exchange<T> {
  operation: Operation;
  seq: number;
  sock: Socket;
  source: Source;
  replyType: number;
  decode: Decoder<T>;
  keep: ((value: T) => boolean) | undefined;
  interrupted: { value: boolean } | undefined;
  finished: boolean;
}

/** The state of one batch: its socket, source, and the ACKs counted so far. */
interface Batch {
  sock: Socket;
  source: Source;
  firstSeq: number;
  count: number;
  acked: number;
  errors: BatchError[];
  finished: boolean;
}

/** A subscription to multicast groups: see {@link Transport.subscribe}. */
export interface Subscription {
  /** The messages; `"idle"`: await {@link wait} before going on. */
  messages: Generator<Message | Idle, void, undefined>;
  /** Resolves when a message has arrived (or the wait is woken, or the socket closed). */
  wait(): Promise<boolean>;
  /** Ends a {@link wait} in progress. */
  wake(): void;
  /** The errno of a refused socket filter (-1: the socket takes none); 0 when attached or none asked. */
  filterError: number;
}

/** One message the receive loop found, read in place. */
export interface Message {
  bytes: Uint8Array;
  view: DataView;
}

/** What a non-blocking receive found instead of a message. */
export type Idle = "idle" | "overrun";

/**
 * One netlink conversation with the kernel over one socket (reopened when
 * an abandoned dump forces it to be dropped).
 */
export class Transport {
  #open: SocketFactory;
  #sock: Socket | undefined;
  #timeoutMs: number;
  #seq: number;
  #busy = false;
  #closed = false;
  #onSocket: ((sock: Socket | undefined) => void) | undefined;
  #subscriptions = new Set<Socket>();
  /** The receive-ahead worker, kept from one big dump to the next (with `keepWorker`). */
  #receiver: Receiver | undefined;
  #keepWorker: boolean;
  #cursor = new AttrCursor();
  #header = newHeader();
  /** The encoder requests are built in (reused: one request at a time). */
  readonly encoder: Encoder = new Encoder(512);

  /**
   * A transport whose sockets come from `open`; `onSocket` hears of each
   * socket it opens and drops (the handle's finaliser tracks them). With
   * `keepWorker`, the receive-ahead worker of one big dump serves the next.
   */
  constructor(
    open: SocketFactory,
    timeoutMs: number,
    onSocket?: (sock: Socket | undefined) => void,
    keepWorker = false,
  ) {
    this.#open = open;
    this.#timeoutMs = timeoutMs;
    this.#keepWorker = keepWorker;
    this.#receiver = keepWorker ? new Receiver() : undefined;
    this.#onSocket = onSocket;
    this.#seq = (Date.now() & 0x3fffffff) >>> 0;
    this.#sock = open("request");
    onSocket?.(this.#sock);
  }

  /** The netlink port id of the socket (0 while there is none). */
  get portId(): number {
    return this.#sock?.portId ?? 0;
  }

  /** The sequence number of the last request. */
  get seq(): number {
    return this.#seq;
  }

  /** True once {@link close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the socket and every subscription. Calling it again does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sock?.close();
    this.#sock = undefined;
    for (const sock of this.#subscriptions) sock.close();
    this.#subscriptions.clear();
    this.#receiver?.close();
  }

  /** A transport of its own (another socket from the same factory). */
  sibling(): Transport {
    return new Transport(this.#open, this.#timeoutMs, undefined, this.#keepWorker);
  }

  /** The next sequence number (never 0). */
  nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0;
    if (this.#seq === 0) this.#seq = 1;
    return this.#seq;
  }

  /** Starts a ctnetlink request of message type `msg` in {@link encoder}. */
  begin(msg: number, flags: number, seq: number, family: number, version = 0): Encoder {
    return this.encoder.begin((C.NFNL_SUBSYS_CTNETLINK << 8) | msg, flags, seq, family, 0, version);
  }

  /** The socket for `operation`: refused while closed or busy; reopened after an abandoned dump. */
  socket(operation: Operation): Socket {
    if (this.#closed) throw new ClosedError(operation);
    if (this.#busy) throw new BusyError(operation);
    if (this.#sock === undefined) {
      this.#sock = this.#open("request");
      this.#onSocket?.(this.#sock);
    }
    return this.#sock;
  }

  /**
   * The one receive loop: each message of each datagram from the kernel
   * (datagrams from other senders are dropped), its header in `h`. With
   * `nonBlocking`, `"idle"` when nothing is queued (wait with
   * `source.arrived()`, then go on) and, when `overruns` is set,
   * `"overrun"` when the kernel dropped messages (`ENOBUFS`).
   */
  *#messages(
    source: Source,
    h: MessageHeader,
    nonBlocking = false,
    overruns = false,
  ): Generator<Message | Idle, void, undefined> {
    const message: Message = { bytes: new Uint8Array(0), view: new DataView(new ArrayBuffer(0)) };
    for (;;) {
      let next;
      try {
        next = source.next(nonBlocking);
      } catch (error) {
        // The handle was closed under the receive: say so, not EBADF.
        if (this.#closed) throw new ClosedError(source.operation, true);
        if (!overruns || !(error instanceof NetlinkError && error.code === "ENOBUFS")) throw error;
        yield "overrun";
        continue;
      }
      if (next === undefined) {
        yield "idle";
        continue;
      }
      const { bytes, got } = next;
      if (got.senderPort !== 0) continue; // not from the kernel
      const view = new DataView(bytes.buffer, bytes.byteOffset, got.length);
      message.bytes = bytes;
      message.view = view;
      for (let offset = 0; offset < got.length;) {
        offset = readHeader(view, offset, got.length, h);
        yield message;
      }
    }
  }

  /** Sends `request` and sets up the receiving of its reply. */
  #start<T>(
    operation: Operation,
    request: Uint8Array<ArrayBuffer>,
    seq: number,
    replyType: number,
    decode: Decoder<T>,
    options: ExchangeOptions<T>,
  ): Exchange<T> {
    const sock = this.socket(operation);
    sock.send(request, operation);
    this.#busy = true;
    return {
      operation,
      seq,
      sock,
      source: new Source(
        sock,
        operation,
        seq,
        this.#timeoutMs,
        options.prefetchAfter,
        this.#receiver,
      ),
      replyType,
      decode,
      keep: options.keep,
      interrupted: options.interrupted,
      finished: false,
    };
  }

  /**
   * What one reply message means to exchange `ex`: a decoded value, `SKIP`
   * (not ours, or not kept), or `DONE`; the kernel's error is thrown.
   */
  #reply<T>(ex: Exchange<T>, m: Message): T | typeof SKIP | typeof DONE {
    const h = this.#header;
    if (h.seq !== ex.seq || h.pid !== ex.sock.portId) return SKIP;
    if ((h.flags & NLM_F_DUMP_INTR) !== 0 && ex.interrupted) ex.interrupted.value = true;
    const type = h.type;
    if (type === NLMSG_DONE || type === NLMSG_ERROR) {
      ex.finished = true;
      const e = type === NLMSG_ERROR
        ? readError(m.bytes, m.view, h, this.#cursor)
        : doneError(m.view, h);
      if (e.errno !== 0) {
        throw new NetlinkError(ex.operation, e.errno, { extAck: e.extAck, seq: ex.seq });
      }
      return DONE;
    }
    if (type === NLMSG_NOOP) return SKIP;
    // A reply type above 0xff names its subsystem (the expectation table's); else ctnetlink's.
    const want = ex.replyType > 0xff ? ex.replyType : (C.NFNL_SUBSYS_CTNETLINK << 8) | ex.replyType;
    if (type !== want) {
      throw new DecodeError(
        "nlmsghdr",
        h.offset,
        `unexpected message type 0x${type.toString(16)} in ${ex.operation} reply`,
      );
    }
    const value = ex.decode(this.#cursor, m.bytes, m.view, h);
    return ex.keep === undefined || ex.keep(value) ? value : SKIP;
  }

  /** Ends exchange `ex`; unfinished, its socket is dropped (the next call opens another). */
  #end(ex: { sock: Socket; source: Source; finished: boolean }, busy = true): void {
    if (busy) this.#busy = false;
    ex.source.end(ex.finished);
    if (!ex.finished && this.#sock === ex.sock) {
      this.#sock = undefined;
      this.#onSocket?.(undefined);
    }
  }

  /** Waits without blocking until `source` has a datagram; the timeout is an error. */
  async #arrival(source: Source, operation: Operation): Promise<void> {
    if (this.#closed) throw new ClosedError(operation, true);
    if (!(await source.arrived(this.#timeoutMs))) {
      throw new NetlinkError(operation, ERRNO.ETIMEDOUT, {
        extAck: "no reply from the kernel in time",
      });
    }
    if (this.#closed) throw new ClosedError(operation, true);
  }

  /**
   * Sends `request` (sequence `seq`) and yields what `decode` makes of each
   * reply message of type `replyType`, until `NLMSG_DONE` (dumps) or the
   * ACK (requests); the kernel's error is thrown as a {@link NetlinkError}.
   * Messages with another sequence or port id are skipped. Abandoned midway,
   * the socket is dropped and the next call opens another. Blocks while it
   * waits for the kernel.
   */
  *exchange<T>(
    operation: Operation,
    request: Uint8Array<ArrayBuffer>,
    seq: number,
    replyType: number,
    decode: Decoder<T>,
    options: ExchangeOptions<T> = {},
  ): Generator<T, void, undefined> {
    const ex = this.#start(operation, request, seq, replyType, decode, options);
    try {
      for (const m of this.#messages(ex.source, this.#header)) {
        const r = this.#reply(ex, m as Message);
        if (r === DONE) return;
        if (r !== SKIP) yield r;
      }
    } finally {
      this.#end(ex);
    }
  }

  /**
   * {@link exchange} without blocking: it waits for the kernel with `poll`
   * on Deno's blocking pool (or the receive-ahead worker with
   * `Atomics.waitAsync`), receives with `MSG_DONTWAIT` on this thread, and
   * gives the event loop a turn every {@link SLICE_MS} ms of decoding. It
   * yields the values in batches (whatever was decoded before each wait or
   * turn, so one promise per batch, not per value); the array is reused:
   * take its values before asking for the next batch.
   */
  async *exchangeAsync<T>(
    operation: Operation,
    request: Uint8Array<ArrayBuffer>,
    seq: number,
    replyType: number,
    decode: Decoder<T>,
    options: ExchangeOptions<T> = {},
  ): AsyncGenerator<T[], void, undefined> {
    const ex = this.#start(operation, request, seq, replyType, decode, options);
    const batch: T[] = [];
    try {
      let since = performance.now();
      for (const m of this.#messages(ex.source, this.#header, true)) {
        if (m === "idle") {
          if (batch.length > 0) {
            yield batch;
            batch.length = 0;
          }
          await this.#arrival(ex.source, operation);
          since = performance.now();
          continue;
        }
        const r = this.#reply(ex, m as Message);
        if (r === DONE) break;
        if (r === SKIP) continue;
        // Look at the clock every 64 values: it is cheap, but not free.
        if (batch.push(r) % 64 === 0 && performance.now() - since > SLICE_MS) {
          yield batch;
          batch.length = 0;
          await ex.source.turn();
          if (this.#closed) throw new ClosedError(operation, true);
          since = performance.now();
        }
      }
      if (batch.length > 0) yield batch;
    } finally {
      await ex.source.settled();
      this.#end(ex);
    }
  }

  /** Sends an ACKed `request` and waits for its ACK (or throws the kernel's error). Blocks. */
  ack(operation: Operation, request: Uint8Array<ArrayBuffer>, seq: number): void {
    for (const _ of this.exchange(operation, request, seq, -1, noReply)) {
      // An ACKed request has no reply messages.
    }
  }

  /** {@link ack} without blocking. */
  async ackAsync(
    operation: Operation,
    request: Uint8Array<ArrayBuffer>,
    seq: number,
  ): Promise<void> {
    for await (const _ of this.exchangeAsync(operation, request, seq, -1, noReply)) {
      // An ACKed request has no reply messages.
    }
  }

  /** Sends a batch; the state of receiving its ACKs. */
  #startBatch(
    operation: Operation,
    bytes: Uint8Array<ArrayBuffer>,
    firstSeq: number,
    count: number,
  ): Batch {
    const sock = this.socket(operation);
    sock.send(bytes, operation);
    const source = new Source(sock, operation, firstSeq, this.#timeoutMs);
    return {
      sock,
      source,
      firstSeq,
      count,
      acked: 0,
      errors: [] as BatchError[],
      finished: count === 0,
    };
  }

  /** Counts `m` if it is an ACK of the batch; true once every ACK is in. */
  #batchReply(b: Batch, m: Message): boolean {
    const h = this.#header;
    const rel = (h.seq - b.firstSeq) >>> 0;
    if (h.pid !== b.sock.portId || rel >= b.count || h.type !== NLMSG_ERROR) return false;
    const e = readError(m.bytes, m.view, h, this.#cursor);
    if (e.errno !== 0) b.errors.push({ seq: h.seq, errno: e.errno, extAck: e.extAck });
    b.finished = ++b.acked === b.count;
    return b.finished;
  }

  /**
   * Sends `count` ACKed requests in one datagram (sequence numbers from
   * `firstSeq`) and waits for every ACK; returns the failures. Blocks.
   */
  batch(
    operation: Operation,
    bytes: Uint8Array<ArrayBuffer>,
    firstSeq: number,
    count: number,
  ): BatchError[] {
    const b = this.#startBatch(operation, bytes, firstSeq, count);
    try {
      if (!b.finished) {
        for (const m of this.#messages(b.source, this.#header)) {
          if (this.#batchReply(b, m as Message)) break;
        }
      }
      return b.errors;
    } finally {
      this.#end(b, false);
    }
  }

  /** {@link batch} without blocking. */
  async batchAsync(
    operation: Operation,
    bytes: Uint8Array<ArrayBuffer>,
    firstSeq: number,
    count: number,
  ): Promise<BatchError[]> {
    const b = this.#startBatch(operation, bytes, firstSeq, count);
    try {
      if (!b.finished) {
        for (const m of this.#messages(b.source, this.#header, true)) {
          if (m === "idle") await this.#arrival(b.source, operation);
          else if (this.#batchReply(b, m as Message)) break;
        }
      }
      return b.errors;
    } finally {
      this.#end(b, false);
    }
  }

  /** True while a dump or request is receiving on this transport's socket. */
  get busy(): boolean {
    return this.#busy;
  }

  /** Makes the socket's receive buffer at least `bytes` (room for a batch's ACKs). */
  growReceiveBuffer(bytes: number): void {
    this.socket("create").setReceiveBuffer(bytes);
  }

  /**
   * Subscribes a socket of its own to the multicast `groups`. Its
   * `messages` are each ctnetlink message sent to them (header in `h`),
   * `"overrun"` when the kernel dropped messages, and `"idle"` when nothing
   * is queued — then `await wait()` before going on: it resolves, without
   * blocking, when a message arrives, or `wake()` is called (a stop signal),
   * or the socket is closed. The messages end when the transport is closed.
   */
  subscribe(
    groups: readonly number[],
    options: {
      bufferSize?: number | undefined;
      noEnobufs?: boolean | undefined;
      socketFilter?: Uint8Array<ArrayBuffer> | undefined;
    },
    h: MessageHeader,
  ): Subscription {
    if (this.#closed) throw new ClosedError("events");
    const sock = this.#open("events");
    this.#subscriptions.add(sock);
    let filterError = 0;
    try {
      sock.setReceiveBuffer(options.bufferSize ?? 8 << 20);
      if (options.noEnobufs) sock.disableEnobufs();
      // Before joining: no event arrives unfiltered.
      if (options.socketFilter) filterError = sock.attachFilter?.(options.socketFilter) ?? -1;
      for (const group of groups) sock.joinGroup(group);
    } catch (error) {
      this.#subscriptions.delete(sock);
      sock.close();
      throw error;
    }
    const source = new Source(sock, "events", 0, this.#timeoutMs);
    const subscriptions = this.#subscriptions;
    const all = this.#messages(source, h, true, true);
    function* messages(): Generator<Message | Idle, void, undefined> {
      try {
        for (const m of all) {
          if (!subscriptions.has(sock)) return; // closed with the handle
          const subsys = h.type >> 8; // ctnetlink's, or the expectation table's
          if (
            typeof m !== "string" && subsys !== C.NFNL_SUBSYS_CTNETLINK &&
            subsys !== C.NFNL_SUBSYS_CTNETLINK_EXP
          ) continue;
          yield m;
        }
      } catch (error) {
        if (!subscriptions.has(sock)) return; // the socket was closed under the receive
        throw error;
      } finally {
        subscriptions.delete(sock);
        sock.close();
      }
    }
    return {
      messages: messages(),
      wait: () => subscriptions.has(sock) ? source.arrived(-1) : Promise.resolve(true),
      wake: () => source.wake(),
      filterError,
    };
  }
}

/** The error code a `NLMSG_DONE` carries (0 when it carries none). */
function doneError(view: DataView, h: MessageHeader): { errno: number; extAck: undefined } {
  const errno = h.length >= NLMSG_HDRLEN + 4 ? -view.getInt32(h.offset + NLMSG_HDRLEN, true) : 0;
  return { errno: errno > 0 ? errno : 0, extAck: undefined };
}

const noReply: Decoder<never> = (_c, _bytes, _view, h) => {
  throw new DecodeError(
    "nlmsghdr",
    h.offset,
    `unexpected reply message type 0x${h.type.toString(16)}`,
  );
};
