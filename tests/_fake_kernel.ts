/**
 * A fake kernel for the unit tests, after mdlayher/netlink's `nltest`: a
 * {@link SocketFactory} whose sockets answer each request with datagrams
 * the test chooses — usually bytes captured from the real kernel
 * (tests/fixtures/*.bin), re-addressed to the request's sequence number and
 * the socket's port id. No root, no kernel, no namespace.
 *
 * @module
 */

import { readCapture } from "./_capture.ts";
import { ERRNO, NetlinkError, type Operation } from "../src/errors.ts";
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN } from "../src/netlink.ts";
import type { Received, Socket, SocketFactory } from "../src/sockets.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);

/** One request message a fake socket was sent. */
export interface FakeRequest {
  /** `nlmsg_type`. */
  type: number;
  /** `nlmsg_flags`. */
  flags: number;
  /** `nlmsg_seq`. */
  seq: number;
  /** `nfgen_family`. */
  family: number;
  /** `nfgenmsg` version. */
  version: number;
  /** The whole message (header, nfgenmsg, attributes), copied. */
  bytes: Uint8Array;
  /** The socket it came on. */
  socket: FakeSocket;
}

/** A datagram to deliver: its bytes and who sent it (0: the kernel). */
export interface Datagram {
  bytes: Uint8Array;
  sender?: number;
}

/** What the fake kernel answers a request with (datagrams, in order). */
export type Answer = (request: FakeRequest) => Datagram[];

/** The datagrams of the capture file `name` in tests/fixtures/. */
export function fixture(name: string): Uint8Array<ArrayBuffer>[] {
  return readCapture(new URL(name, FIXTURES));
}

/** Calls `fn` with the offset of each message of `datagram`. */
export function eachMessage(datagram: Uint8Array, fn: (offset: number, view: DataView) => void) {
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  for (let at = 0; at + NLMSG_HDRLEN <= datagram.length;) {
    const len = view.getUint32(at, true);
    fn(at, view);
    if (len < NLMSG_HDRLEN) break;
    at += (len + 3) & ~3;
  }
}

/** A copy of `datagram` with every message addressed to sequence `seq` and port `pid`. */
export function readdress(datagram: Uint8Array, seq: number, pid: number): Uint8Array {
  const out = datagram.slice();
  eachMessage(out, (at, view) => {
    view.setUint32(at + 8, seq, true);
    view.setUint32(at + 12, pid, true);
  });
  return out;
}

/** An `NLMSG_ERROR` datagram answering `request` with `errno` (0: the ACK). */
export function ack(request: FakeRequest, errno = 0): Datagram {
  const out = new Uint8Array(NLMSG_HDRLEN + 4 + NLMSG_HDRLEN);
  const view = new DataView(out.buffer);
  view.setUint32(0, out.length, true);
  view.setUint16(4, NLMSG_ERROR, true);
  view.setUint16(6, 0x100, true); // NLM_F_CAPPED: the request header only
  view.setUint32(8, request.seq, true);
  view.setUint32(12, request.socket.portId, true);
  view.setInt32(16, -errno, true);
  out.set(request.bytes.subarray(0, NLMSG_HDRLEN), 20);
  return { bytes: out };
}

/** An `NLMSG_DONE` datagram ending `request`'s dump. */
export function done(request: FakeRequest): Datagram {
  const out = new Uint8Array(NLMSG_HDRLEN + 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, out.length, true);
  view.setUint16(4, NLMSG_DONE, true);
  view.setUint16(6, 2, true); // NLM_F_MULTI
  view.setUint32(8, request.seq, true);
  view.setUint32(12, request.socket.portId, true);
  return { bytes: out };
}

/** The captured datagrams of `name`, as answers to `request`. */
export function replay(name: string, request: FakeRequest): Datagram[] {
  return fixture(name).map((d) => ({
    bytes: readdress(d, request.seq, request.socket.portId),
  }));
}

/** A socket of the fake kernel. */
export class FakeSocket implements Socket {
  /** No descriptor: the transport never receives ahead on a worker. */
  readonly fd = -1;
  readonly portId: number;
  readonly kind: "request" | "events";
  readonly buffer: Uint8Array = new Uint8Array(65536);
  /** Datagrams waiting to be received. */
  readonly queue: Datagram[] = [];
  closed = false;
  /** Multicast groups joined. */
  readonly groups: number[] = [];
  /** The next receive fails with ENOBUFS (the kernel dropped messages). */
  overrun = false;
  receiveBuffer = 0;
  /** How many times the transport waited for readiness (`readable`). */
  waits = 0;
  #kernel: FakeKernel;
  #waiters: (() => void)[] = [];

  constructor(kernel: FakeKernel, kind: "request" | "events", portId: number) {
    this.#kernel = kernel;
    this.kind = kind;
    this.portId = portId;
  }

  send(bytes: Uint8Array<ArrayBuffer>, _operation: Operation): void {
    if (this.closed) throw new Error("send on a closed fake socket");
    this.#kernel.sends.push(bytes.length);
    eachMessage(bytes, (at, view) => {
      const len = view.getUint32(at, true);
      const request: FakeRequest = {
        type: view.getUint16(at + 4, true),
        flags: view.getUint16(at + 6, true),
        seq: view.getUint32(at + 8, true),
        family: bytes[at + 16]!,
        version: bytes[at + 17]!,
        bytes: bytes.slice(at, at + len),
        socket: this,
      };
      this.#kernel.requests.push(request);
      this.deliver(...this.#kernel.answer(request));
    });
  }

  recv(operation: Operation, nonBlocking = false): Received | undefined {
    if (this.closed) throw new NetlinkError(operation, 9); // EBADF
    if (this.overrun) {
      this.overrun = false;
      throw new NetlinkError(operation, ERRNO.ENOBUFS);
    }
    const next = this.queue.shift();
    if (next === undefined) {
      if (nonBlocking) return undefined;
      // What SO_RCVTIMEO gives a real socket: never a hang.
      throw new NetlinkError(operation, ERRNO.ETIMEDOUT, { extAck: "fake kernel: nothing queued" });
    }
    this.buffer.set(next.bytes);
    return { length: next.bytes.length, senderPort: next.sender ?? 0 };
  }

  /** Queues `datagrams` and wakes a waiting `readable`. */
  deliver(...datagrams: Datagram[]): void {
    this.queue.push(...datagrams);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  readable(timeoutMs: number): Promise<boolean> {
    this.waits++;
    if (this.closed || this.overrun || this.queue.length > 0) {
      // As poll on the blocking pool: the answer comes after a turn of the event loop.
      return new Promise((resolve) => setTimeout(() => resolve(true), 0));
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        resolve(false);
      }, timeoutMs);
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#waiters.push(wake);
    });
  }

  wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  setReceiveBuffer(bytes: number): void {
    this.receiveBuffer = bytes;
  }

  joinGroup(group: number): void {
    this.groups.push(group);
  }

  disableEnobufs(): void {}

  detach(): void {
    this.closed = true;
  }

  close(): void {
    this.closed = true;
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

/** The fake kernel: hands out sockets and answers what they send. */
export class FakeKernel {
  /** Every request message received, in order. */
  readonly requests: FakeRequest[] = [];
  /** The byte length of each `send`. */
  readonly sends: number[] = [];
  /** Every socket opened, in order. */
  readonly sockets: FakeSocket[] = [];
  /** The answer to each request (default: an ACK). */
  answer: Answer;
  #nextPort = 4000;

  constructor(answer: Answer = (request) => [ack(request)]) {
    this.answer = answer;
  }

  /** The factory to open a handle with (`openWithSockets(kernel.open)`). */
  readonly open: SocketFactory = (kind) => {
    const sock = new FakeSocket(this, kind, this.#nextPort++);
    this.sockets.push(sock);
    return sock;
  };

  /** Queues `datagrams` on every open events socket that joined `group`. */
  multicast(group: number, datagrams: Uint8Array[]): void {
    for (const sock of this.sockets) {
      if (sock.kind === "events" && !sock.closed && sock.groups.includes(group)) {
        sock.deliver(...datagrams.map((bytes) => ({ bytes: bytes.slice() })));
      }
    }
  }
}
