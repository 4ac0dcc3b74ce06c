/**
 * What the transport receives from: the {@link Socket} interface between the
 * operations and the kernel (as mdlayher/netlink's `Socket`: ffi/socket.ts's
 * `NetlinkSocket` in production, a fake kernel in the unit tests), the
 * factory of real sockets in a namespace, and the {@link Source} of one
 * exchange's datagrams (the socket, or the receive-ahead worker).
 *
 * @module
 */

import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import { PrefetchJob, type Receiver } from "../ffi/prefetch.ts";
import { AheadReceiver, FALLBACK } from "../ffi/ahead.ts";
import { ArgumentError, checkUint, ERRNO, NetlinkError, type Operation } from "./errors.ts";

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
  /**
   * Resolves true once a datagram is queued (or the next receive has an
   * error to report), false after `timeoutMs` (0: at once, but after a turn
   * of the event loop), without holding the event loop meanwhile.
   */
  readable(timeoutMs: number): Promise<boolean>;
  /** Ends a `readable` wait in progress (it resolves true). */
  wake(): void;
  /** Sets the kernel's receive buffer size. */
  setReceiveBuffer(bytes: number): void;
  /** Subscribes to a multicast group. */
  joinGroup(group: number): void;
  /** Asks the kernel not to report overruns. */
  disableEnobufs(): void;
  /**
   * Attaches a classic BPF socket filter; returns 0 or the errno of the
   * refusal. Absent where a socket cannot take one (a fake kernel).
   */
  attachFilter?(program: Uint8Array<ArrayBuffer>): number;
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
  const given = typeof netns === "number";
  return {
    open: (kind) => {
      try {
        return kind === "events"
          ? NetlinkSocket.open({ netnsFd }, 1 << 17)
          : NetlinkSocket.open({ netnsFd, recvTimeoutMs: timeoutMs });
      } catch (error) {
        // setns refuses a descriptor that is not open (EBADF) or not a namespace (EINVAL).
        const bad = error instanceof NetlinkError &&
          error.operation === "enter network namespace" &&
          (error.code === "EBADF" || error.code === "EINVAL");
        if (!given || !bad) throw error;
        throw new ArgumentError(
          "netns",
          netns,
          `${netns} is not an open network namespace file descriptor (${error.code})`,
        );
      }
    },
    release: () => {
      if (owned && netnsFd !== undefined) closeFd(netnsFd);
      netnsFd = undefined;
    },
  };
}

/**
 * Where one exchange's datagrams come from: the socket, or (once a dump has
 * proved big) something that receives ahead on it while this thread decodes:
 * for a blocking exchange a worker (ffi/prefetch.ts), for an async one
 * `recvmmsg` calls on Deno's blocking pool (ffi/ahead.ts), which need no
 * second isolate.
 */
export class Source {
  #sock: Socket;
  /** The operation receiving. */
  readonly operation: Operation;
  #received = 0;
  #prefetchAfter: number;
  #seq: number;
  #timeoutMs: number;
  #booting: PrefetchJob | undefined;
  #job: PrefetchJob | undefined;
  #ahead: AheadReceiver | undefined;

  #receiver: Receiver | undefined;

  constructor(
    sock: Socket,
    operation: Operation,
    seq: number,
    timeoutMs: number,
    after = -1,
    receiver?: Receiver,
  ) {
    this.#receiver = receiver;
    this.#sock = sock;
    this.operation = operation;
    this.#seq = seq;
    this.#timeoutMs = timeoutMs;
    this.#prefetchAfter = sock.fd >= 0 ? after : -1;
  }

  /** The next datagram; undefined when `nonBlocking` and none is queued. */
  next(nonBlocking: boolean): { bytes: Uint8Array; got: Received } | undefined {
    const sock = this.#sock;
    if (this.#ahead !== undefined) {
      let got;
      try {
        got = this.#ahead.next();
      } catch (error) {
        this.#ahead = undefined;
        throw new NetlinkError(this.operation, ERRNO.EMSGSIZE, {
          extAck: (error as Error).message,
        });
      }
      if (got !== FALLBACK) return got === undefined ? undefined : { bytes: got.bytes, got };
      // The call failed (its errno is the pool thread's): receive here, where it shows again.
      this.#ahead = undefined;
    } else if (this.#received++ === this.#prefetchAfter) {
      if (nonBlocking) {
        // Not a small dump, and an async one: receive ahead on Deno's blocking pool.
        try {
          this.#ahead = new AheadReceiver(sock, sock.buffer.byteLength);
        } catch {
          // no descriptor to spare (EMFILE): receive here
        }
        if (this.#ahead !== undefined) return this.next(nonBlocking);
      } else {
        // Not a small dump, and a blocking one: a worker boots to receive ahead while we decode.
        this.#booting = PrefetchJob.spawn(
          sock.fd,
          this.#seq,
          sock.portId,
          this.#timeoutMs,
          this.#receiver,
        );
      }
    } else if (this.#booting?.ready) {
      if (this.#booting.handOver()) this.#job = this.#booting;
      this.#booting = undefined;
    }
    if (this.#job === undefined) {
      const got = sock.recv(this.operation, nonBlocking);
      return got === undefined ? undefined : { bytes: sock.buffer, got };
    }
    const got = this.#job.next(nonBlocking);
    if (got === undefined) return undefined;
    if (got.errno !== 0) {
      throw new NetlinkError(this.operation, got.errno, {
        extAck: got.errno === ERRNO.ETIMEDOUT ? "no reply from the kernel in time" : undefined,
      });
    }
    return { bytes: got.bytes, got };
  }

  /**
   * Resolves true once the next datagram can be had without blocking (the
   * worker has it, or the socket is readable), false after `timeoutMs`.
   */
  arrived(timeoutMs: number): Promise<boolean> {
    if (this.#ahead !== undefined) return this.#ahead.arrived();
    return this.#job !== undefined ? this.#job.arrived(timeoutMs) : this.#sock.readable(timeoutMs);
  }

  /**
   * Resolves once nothing receives on the socket for this exchange in the
   * background (an async exchange awaits it before it ends, so that an
   * abandoned dump leaves no call in flight behind it).
   */
  async settled(): Promise<void> {
    this.#ahead?.stop();
    await this.#ahead?.settled();
  }

  /** Ends a wait of {@link arrived} on the socket in progress. */
  wake(): void {
    this.#sock.wake();
  }

  /** Gives the event loop a turn (a `poll` of the socket on Deno's blocking pool). */
  async turn(): Promise<void> {
    await this.#sock.readable(0);
  }

  /**
   * Ends the exchange. Unfinished (abandoned midway, or failed), the rest
   * of the reply is still queued: the socket is closed (or left to the
   * receiving worker, which drains and closes it).
   */
  end(finished: boolean): void {
    this.#ahead?.stop();
    this.#ahead = undefined;
    this.#booting?.abort();
    this.#job?.release();
    if (finished) return;
    if (this.#job?.cancel()) this.#sock.detach();
    else this.#sock.close();
  }
}
