/**
 * The transport under every operation: it owns the netlink socket and does
 * everything netlink — sequence numbers, sender and port checks, ACKs,
 * `NLMSG_ERROR` with extended ack, multi-part dumps to `NLMSG_DONE`,
 * `NLM_F_DUMP_INTR`, batched requests with their ACKs, receive-ahead on a
 * worker, and abandon-and-reopen — with one receive loop ({@link Transport}'s
 * `#messages`). Operations (src/conntrack.ts) build a request, hand it here
 * and decode what comes back.
 *
 * Between the two stands the {@link Socket} interface, as mdlayher/netlink's
 * `Socket`: the real one is ffi/socket.ts's `NetlinkSocket`; the unit tests
 * plug in a fake kernel that replays captured datagrams.
 *
 * @module
 */

import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import { PrefetchJob } from "../ffi/prefetch.ts";
import * as C from "./constants.ts";
import { ArgumentError, DecodeError, ERRNO, NetlinkError, type Operation } from "./errors.ts";
import { checkUint } from "./filter.ts";
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

/** One datagram as a socket received it. */
export interface Received {
  /** Its length in bytes (the bytes are the socket's {@link Socket.buffer}). */
  length: number;
  /** The sender's port id (0: the kernel). */
  senderPort: number;
}

/**
 * What the transport needs of a netlink socket: ffi/socket.ts's
 * `NetlinkSocket`, or a fake kernel in the unit tests.
 */
export interface Socket {
  /** The file descriptor (negative when there is none: no receive-ahead then). */
  readonly fd: number;
  /** The socket's netlink port id. */
  readonly portId: number;
  /** The receive buffer; valid until the next {@link recv}. */
  readonly buffer: Uint8Array;
  /** Sends one datagram to the kernel. */
  send(bytes: Uint8Array<ArrayBuffer>, operation: Operation): void;
  /**
   * Receives one datagram into {@link buffer}; undefined when `nonBlocking`
   * and nothing is queued. `ENOBUFS` and other failures throw.
   */
  recv(operation: Operation, nonBlocking?: boolean): Received | undefined;
  /** Sets the kernel's receive buffer size. */
  setReceiveBuffer(bytes: number): void;
  /** Subscribes to a multicast group. */
  joinGroup(group: number): void;
  /** Asks the kernel not to report overruns. */
  disableEnobufs(): void;
  /** Forgets the descriptor without closing it (a worker closes it). */
  detach(): void;
  /** Closes the socket. */
  close(): void;
}

/** Opens a socket: `"request"` for requests and dumps, `"events"` for a subscription. */
export type SocketFactory = (kind: "request" | "events") => Socket;

/** The kernel's sockets, in the caller's namespace or in `netns`. */
export interface KernelSockets {
  /** Opens a socket there. */
  open: SocketFactory;
  /** Closes the namespace descriptor the factory opened (not one the caller passed). */
  release(): void;
}

/**
 * The factory of real netlink sockets in a namespace: a name under
 * `/run/netns`, a path, or an open descriptor (which stays the caller's).
 */
export function kernelSockets(
  netns: string | number | undefined,
  timeoutMs: number,
): KernelSockets {
  let netnsFd: number | undefined;
  let owned = false;
  if (typeof netns === "number") {
    netnsFd = checkUint(netns, 0x7fffffff, "netns");
  } else if (typeof netns === "string" && netns.length > 0) {
    const path = netns.includes("/") ? netns : `/run/netns/${netns}`;
    try {
      netnsFd = openFd(path, "open network namespace");
    } catch (error) {
      if (error instanceof NetlinkError && error.code === "ENOENT") {
        throw new NetlinkError("open network namespace", ERRNO.ENOENT, {
          extAck: `${path} does not exist`,
        });
      }
      throw error;
    }
    owned = true;
  } else if (netns !== undefined) {
    throw new ArgumentError("netns", netns, `${String(netns)} is not a name, path or fd`);
  }
  return {
    open: (kind) =>
      kind === "events"
        ? NetlinkSocket.open({ netnsFd }, 1 << 17)
        : NetlinkSocket.open({ netnsFd, recvTimeoutMs: timeoutMs }),
    release: () => {
      if (owned && netnsFd !== undefined) closeFd(netnsFd);
      netnsFd = undefined;
    },
  };
}

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

/** One message the receive loop found, read in place. */
interface Message {
  bytes: Uint8Array;
  view: DataView;
}

/** What a non-blocking receive found instead of a message. */
type Idle = "idle" | "overrun";

/**
 * Where one exchange's datagrams come from: the socket, or (once a dump has
 * proved big) a worker that receives ahead on it while this thread decodes.
 */
class Source {
  #sock: Socket;
  #operation: Operation;
  #received = 0;
  #prefetchAfter: number;
  #seq: number;
  #timeoutMs: number;
  #booting: PrefetchJob | undefined;
  #job: PrefetchJob | undefined;

  constructor(sock: Socket, operation: Operation, seq: number, timeoutMs: number, after = -1) {
    this.#sock = sock;
    this.#operation = operation;
    this.#seq = seq;
    this.#timeoutMs = timeoutMs;
    this.#prefetchAfter = sock.fd >= 0 ? after : -1;
  }

  /** The next datagram; undefined when `nonBlocking` and none is queued. */
  next(nonBlocking: boolean): { bytes: Uint8Array; got: Received } | undefined {
    const sock = this.#sock;
    if (this.#received++ === this.#prefetchAfter) {
      // Not a small dump: a worker boots to receive ahead while we decode.
      this.#booting = PrefetchJob.spawn(sock.fd, this.#seq, sock.portId, this.#timeoutMs);
    } else if (this.#booting?.ready) {
      if (this.#booting.handOver()) this.#job = this.#booting;
      this.#booting = undefined;
    }
    if (this.#job === undefined) {
      const got = sock.recv(this.#operation, nonBlocking);
      return got === undefined ? undefined : { bytes: sock.buffer, got };
    }
    const got = this.#job.next();
    if (got.errno !== 0) {
      throw new NetlinkError(this.#operation, got.errno, {
        extAck: got.errno === ERRNO.ETIMEDOUT ? "no reply from the kernel in time" : undefined,
      });
    }
    return { bytes: got.bytes, got };
  }

  /**
   * Ends the exchange. Unfinished (abandoned midway, or failed), the rest
   * of the reply is still queued: the socket is closed (or left to the
   * receiving worker, which drains and closes it).
   */
  end(finished: boolean): void {
    this.#booting?.abort();
    this.#job?.release();
    if (finished) return;
    if (this.#job?.cancel()) this.#sock.detach();
    else this.#sock.close();
  }
}

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
  #cursor = new AttrCursor();
  #header = newHeader();
  /** The encoder requests are built in (reused: one request at a time). */
  readonly encoder: Encoder = new Encoder(512);

  /**
   * A transport whose sockets come from `open`; `onSocket` hears of each
   * socket it opens and drops (the handle's finaliser tracks them).
   */
  constructor(
    open: SocketFactory,
    timeoutMs: number,
    onSocket?: (sock: Socket | undefined) => void,
  ) {
    this.#open = open;
    this.#timeoutMs = timeoutMs;
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
  }

  /** A transport of its own (another socket from the same factory). */
  sibling(): Transport {
    return new Transport(this.#open, this.#timeoutMs);
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
    if (this.#closed) throw new Error(`Cannot ${operation}: the Conntrack handle is closed`);
    if (this.#busy) {
      throw new Error(
        `Cannot ${operation}: this handle is still busy with a dump; finish it or open another handle`,
      );
    }
    if (this.#sock === undefined) {
      this.#sock = this.#open("request");
      this.#onSocket?.(this.#sock);
    }
    return this.#sock;
  }

  /**
   * The one receive loop: each message of each datagram from the kernel
   * (datagrams from other senders are dropped), its header in `h`. With
   * `nonBlocking`, `"idle"` when nothing is queued and `"overrun"` when the
   * kernel dropped messages (`ENOBUFS`).
   */
  *#messages(
    source: Source,
    h: MessageHeader,
    nonBlocking = false,
  ): Generator<Message | Idle, void, undefined> {
    const message: Message = { bytes: new Uint8Array(0), view: new DataView(new ArrayBuffer(0)) };
    for (;;) {
      let next;
      try {
        next = source.next(nonBlocking);
      } catch (error) {
        if (!nonBlocking || !(error instanceof NetlinkError && error.code === "ENOBUFS")) {
          throw error;
        }
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

  /**
   * Sends `request` (sequence `seq`) and yields what `decode` makes of each
   * reply message of type `replyType`, until `NLMSG_DONE` (dumps) or the
   * ACK (requests); the kernel's error is thrown as a {@link NetlinkError}.
   * Messages with another sequence or port id are skipped. Abandoned midway,
   * the socket is dropped and the next call opens another.
   */
  *exchange<T>(
    operation: Operation,
    request: Uint8Array<ArrayBuffer>,
    seq: number,
    replyType: number,
    decode: Decoder<T>,
    options: ExchangeOptions<T> = {},
  ): Generator<T, void, undefined> {
    const sock = this.socket(operation);
    sock.send(request, operation);
    this.#busy = true;
    const source = new Source(sock, operation, seq, this.#timeoutMs, options.prefetchAfter);
    const h = this.#header;
    const keep = options.keep;
    let finished = false;
    try {
      for (const m of this.#messages(source, h)) {
        if (typeof m === "string" || h.seq !== seq || h.pid !== sock.portId) continue;
        if ((h.flags & NLM_F_DUMP_INTR) !== 0 && options.interrupted) {
          options.interrupted.value = true;
        }
        const type = h.type;
        if (type === NLMSG_DONE || type === NLMSG_ERROR) {
          finished = true;
          const errno = type === NLMSG_ERROR
            ? readError(m.bytes, m.view, h, this.#cursor)
            : doneError(m.view, h);
          if (errno.errno !== 0) {
            throw new NetlinkError(operation, errno.errno, { extAck: errno.extAck, seq });
          }
          return;
        }
        if (type === NLMSG_NOOP) continue;
        if (type !== ((C.NFNL_SUBSYS_CTNETLINK << 8) | replyType)) {
          throw new DecodeError(
            "nlmsghdr",
            h.offset,
            `unexpected message type 0x${type.toString(16)} in ${operation} reply`,
          );
        }
        const value = decode(this.#cursor, m.bytes, m.view, h);
        if (keep === undefined || keep(value)) yield value;
      }
    } finally {
      this.#busy = false;
      source.end(finished);
      if (!finished && this.#sock === sock) {
        this.#sock = undefined;
        this.#onSocket?.(undefined);
      }
    }
  }

  /** Sends an ACKed `request` and waits for its ACK (or throws the kernel's error). */
  ack(operation: Operation, request: Uint8Array<ArrayBuffer>, seq: number): void {
    for (const _ of this.exchange(operation, request, seq, -1, noReply)) {
      // An ACKed request has no reply messages.
    }
  }

  /**
   * Sends `count` ACKed requests in one datagram (sequence numbers from
   * `firstSeq`) and waits for every ACK; returns the failures.
   */
  batch(
    operation: Operation,
    bytes: Uint8Array<ArrayBuffer>,
    firstSeq: number,
    count: number,
  ): BatchError[] {
    const sock = this.socket(operation);
    sock.send(bytes, operation);
    const source = new Source(sock, operation, firstSeq, this.#timeoutMs);
    const h = this.#header;
    const errors: BatchError[] = [];
    let acked = 0;
    let finished = false;
    try {
      if (count === 0) return errors;
      for (const m of this.#messages(source, h)) {
        if (typeof m === "string") continue;
        const rel = (h.seq - firstSeq) >>> 0;
        if (h.pid !== sock.portId || rel >= count || h.type !== NLMSG_ERROR) continue;
        const e = readError(m.bytes, m.view, h, this.#cursor);
        if (e.errno !== 0) errors.push({ seq: h.seq, errno: e.errno, extAck: e.extAck });
        if (++acked === count) break;
      }
      finished = true;
      return errors;
    } finally {
      source.end(finished);
      if (!finished && this.#sock === sock) {
        this.#sock = undefined;
        this.#onSocket?.(undefined);
      }
    }
  }

  /** Makes the socket's receive buffer at least `bytes` (room for a batch's ACKs). */
  growReceiveBuffer(bytes: number): void {
    this.socket("create").setReceiveBuffer(bytes);
  }

  /**
   * Subscribes a socket of its own to the multicast `groups` and yields each
   * ctnetlink message sent to them (its header in `h`), never blocking:
   * `"idle"` when nothing is queued, `"overrun"` when the kernel dropped
   * messages. Ends when the transport is closed.
   */
  *subscribe(
    groups: readonly number[],
    options: { bufferSize?: number | undefined; noEnobufs?: boolean | undefined },
    h: MessageHeader,
  ): Generator<Message | Idle, void, undefined> {
    if (this.#closed) throw new Error("Cannot watch events: the Conntrack handle is closed");
    const sock = this.#open("events");
    this.#subscriptions.add(sock);
    try {
      sock.setReceiveBuffer(options.bufferSize ?? 8 << 20);
      if (options.noEnobufs) sock.disableEnobufs();
      for (const group of groups) sock.joinGroup(group);
      const source = new Source(sock, "events", 0, this.#timeoutMs);
      for (const m of this.#messages(source, h, true)) {
        if (!this.#subscriptions.has(sock)) return; // closed with the handle
        if (typeof m !== "string" && h.type >> 8 !== C.NFNL_SUBSYS_CTNETLINK) continue;
        yield m;
      }
    } catch (error) {
      if (!this.#subscriptions.has(sock)) return; // the socket was closed under the receive
      throw error;
    } finally {
      this.#subscriptions.delete(sock);
      sock.close();
    }
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
