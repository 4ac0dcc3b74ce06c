/**
 * Receive-ahead for async dumps without a Worker: `recvmmsg` on Deno's
 * blocking pool (a `nonblocking` FFI call) receives the next few datagrams
 * of a dump into one half of a double buffer while the JavaScript thread
 * decodes the other half. The kernel produces a dump inside the receive
 * call, so its work then runs on the pool's thread, beside the decode, and
 * the event loop is free while it waits.
 *
 * Against ffi/prefetch.ts's Worker (used by the blocking dumps, which cannot
 * await): no second V8 isolate (~14 MiB, and ~30 ms to boot), nothing to hand
 * over or drain. One call takes up to {@link DATAGRAMS} datagrams
 * (`MSG_WAITFORONE`: it waits for the first only), so the hand-off between
 * threads is paid once per call, not per datagram.
 *
 * A call is issued only while the dump has not ended: after a batch whose
 * messages include `NLMSG_DONE` or `NLMSG_ERROR`, none. During a dump the
 * kernel queues the next datagram as each is read, so a call in flight
 * returns promptly even when the dump is abandoned. The calls receive on a
 * duplicate of the socket's descriptor (`F_DUPFD_CLOEXEC`), closed here once
 * no call is in flight or to come: closing the socket itself while a call
 * waits on the pool cannot hand the number to another socket under it. No
 * call is issued once the socket has been closed. The buffers are kept
 * alive here until the last call returns.
 *
 * The pool thread's `errno` cannot be read here: a failed call (−1) makes
 * {@link AheadReceiver.next} answer {@link FALLBACK}, and the caller goes
 * back to receiving on its own thread, where the failure (a timeout, a
 * closed socket) shows again with its errno.
 *
 * @module
 */

import { libc } from "./libc.ts";
import { MSG_TRUNC, SOCKADDR_NL_SIZE } from "./socket.ts";
import { NLMSG_DONE, NLMSG_ERROR } from "../src/netlink.ts";

/** Datagrams one `recvmmsg` call may take. */
export const DATAGRAMS = 8;
const MSG_WAITFORONE = 0x10000;
const F_DUPFD_CLOEXEC = 1030;
/** `struct mmsghdr` on 64-bit Linux: a 56-byte `msghdr`, then `msg_len`, padded. */
const MMSGHDR_SIZE = 64;
const IOVEC_SIZE = 16;

/** What {@link AheadReceiver.next} answers when the caller must receive itself. */
export const FALLBACK = Symbol("fallback");

/** One datagram received ahead. */
export interface AheadDatagram {
  /** The datagram's bytes, from offset 0 (valid until the next {@link AheadReceiver.next}). */
  bytes: Uint8Array;
  /** Its length. */
  length: number;
  /** The sender's port id (0: the kernel). */
  senderPort: number;
  /** Always 0 (kept for the shape the worker's datagrams have). */
  errno: number;
}

/** One half of the double buffer: the data slots and the `mmsghdr` vector that points at them. */
class Half {
  readonly data: Uint8Array<ArrayBuffer>;
  readonly vec = new Uint8Array(DATAGRAMS * MMSGHDR_SIZE);
  readonly vecView = new DataView(this.vec.buffer);
  readonly iov = new Uint8Array(DATAGRAMS * IOVEC_SIZE);
  readonly addr = new Uint8Array(DATAGRAMS * SOCKADDR_NL_SIZE);
  readonly addrView = new DataView(this.addr.buffer);
  readonly dataView: DataView;
  readonly vecPtr: Deno.PointerValue;
  readonly slot: number;
  /** Datagrams the last call put here, and how many of them were handed out. */
  count = 0;
  taken = 0;

  constructor(slot: number) {
    this.slot = slot;
    this.data = new Uint8Array(DATAGRAMS * slot);
    this.dataView = new DataView(this.data.buffer);
    const iovView = new DataView(this.iov.buffer);
    const data = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.data)));
    const iov = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.iov)));
    const addr = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.addr)));
    for (let i = 0; i < DATAGRAMS; i++) {
      iovView.setBigUint64(i * IOVEC_SIZE, data + BigInt(i * slot), true);
      iovView.setBigUint64(i * IOVEC_SIZE + 8, BigInt(slot), true);
      const m = i * MMSGHDR_SIZE;
      this.vecView.setBigUint64(m, addr + BigInt(i * SOCKADDR_NL_SIZE), true); // msg_name
      this.vecView.setBigUint64(m + 16, iov + BigInt(i * IOVEC_SIZE), true); // msg_iov
      this.vecView.setBigUint64(m + 24, 1n, true); // msg_iovlen
    }
    this.vecPtr = Deno.UnsafePointer.of(this.vec);
  }

  /** Readies the vector for a call (the kernel writes the name lengths, lengths and flags). */
  reset(): void {
    for (let i = 0; i < DATAGRAMS; i++) {
      const m = i * MMSGHDR_SIZE;
      this.vecView.setUint32(m + 8, SOCKADDR_NL_SIZE, true); // msg_namelen
      this.vecView.setInt32(m + 48, 0, true); // msg_flags
      this.vecView.setUint32(m + 56, 0, true); // msg_len
    }
    this.count = 0;
    this.taken = 0;
  }

  /** Datagram `i`'s length as received (its real length: `MSG_TRUNC`). */
  length(i: number): number {
    return this.vecView.getUint32(i * MMSGHDR_SIZE + 56, true);
  }

  /** Whether datagram `i` was cut to its slot. */
  truncated(i: number): boolean {
    return this.length(i) > this.slot ||
      (this.vecView.getInt32(i * MMSGHDR_SIZE + 48, true) & MSG_TRUNC) !== 0;
  }

  /**
   * Whether the received datagrams end the dump: a message of the last one
   * is `NLMSG_DONE` or `NLMSG_ERROR` (nothing follows the end of a dump, so
   * a batch that holds it holds it last).
   */
  ends(): boolean {
    for (let i = this.count - 1; i < this.count; i++) {
      const base = i * this.slot;
      const length = Math.min(this.length(i), this.slot);
      for (let off = 0; off + 16 <= length;) {
        const len = this.dataView.getUint32(base + off, true);
        const type = this.dataView.getUint16(base + off + 4, true);
        if (type === NLMSG_DONE || type === NLMSG_ERROR) return true;
        if (len < 16) break;
        off += (len + 3) & ~3;
      }
    }
    return false;
  }
}

/**
 * Receives a dump's datagrams ahead on Deno's blocking pool, two halves of
 * {@link DATAGRAMS} datagrams each: one being read by the caller, one being
 * filled. Start it after the caller has received a few datagrams itself
 * (small replies do not pay for the hand-off).
 */
export class AheadReceiver {
  /** The duplicate descriptor the calls receive on; -1 once closed. */
  #fd: number;
  /** The socket, and its descriptor when this started: no call once they differ (closed). */
  #owner: { readonly fd: number };
  #ownerFd: number;
  #halves: [Half, Half];
  /** The half the caller reads (the first call fills the other). */
  #current = 1;
  /** The call in flight and the half it fills; `undefined` when none. */
  #pending: Promise<void> | undefined;
  #result: number | undefined;
  #ended = false;
  #stopped = false;
  #out: AheadDatagram = { bytes: new Uint8Array(0), length: 0, senderPort: 0, errno: 0 };

  /**
   * A receiver for `socket`, whose datagrams fit in `slot` bytes; throws
   * when its descriptor cannot be duplicated (the caller receives itself).
   */
  constructor(socket: { readonly fd: number }, slot: number) {
    this.#owner = socket;
    this.#ownerFd = socket.fd;
    this.#fd = libc().fcntl(socket.fd, F_DUPFD_CLOEXEC, 0);
    if (this.#fd < 0) throw new Error("cannot duplicate the socket's descriptor");
    this.#halves = [new Half(slot), new Half(slot)];
    this.#issue(0);
  }

  /** Closes the duplicate descriptor once no call is in flight and none is to come. */
  #release(): void {
    if (this.#fd < 0 || (this.#pending !== undefined && this.#result === undefined)) return;
    libc().close(this.#fd);
    this.#fd = -1;
  }

  #issue(index: number): void {
    if (this.#owner.fd !== this.#ownerFd) {
      // The socket was closed (its number may already be another's): no more calls.
      this.#stopped = true;
      this.#release();
      return;
    }
    const half = this.#halves[index]!;
    half.reset();
    this.#result = undefined;
    const call = libc().recvmmsg_async(
      this.#fd,
      half.vecPtr,
      DATAGRAMS,
      MSG_TRUNC | MSG_WAITFORONE,
      null,
    );
    // The halves stay referenced by this object (and so alive) until the call returns.
    this.#pending = call.then((n) => {
      this.#result = n;
      if (this.#stopped || this.#owner.fd !== this.#ownerFd) this.#release();
    });
  }

  /**
   * The next datagram; `undefined` when the call in flight has not returned
   * yet (wait with {@link arrived}); {@link FALLBACK} when the caller must
   * receive on its own thread from now on (the call failed, or the dump had
   * already ended). Throws `RangeError` for a datagram cut to its slot.
   */
  next(): AheadDatagram | undefined | typeof FALLBACK {
    let half = this.#halves[this.#current]!;
    if (half.taken >= half.count) {
      if (this.#ended || this.#stopped) return FALLBACK;
      if (this.#result === undefined) return undefined;
      const n = this.#result;
      this.#pending = undefined;
      if (n <= 0) {
        this.#stopped = true;
        this.#release();
        return FALLBACK;
      }
      // The half just filled becomes the caller's; the other one, read to its end, is refilled.
      this.#current = 1 - this.#current; // calls fill the half the caller does not read
      half = this.#halves[this.#current]!;
      half.count = n;
      if (half.ends()) {
        this.#ended = true;
        this.#release();
      } else this.#issue(1 - this.#current);
    }
    const i = half.taken++;
    if (half.truncated(i)) {
      this.stop();
      throw new RangeError(`datagram of ${half.length(i)} bytes truncated to ${half.slot}`);
    }
    const out = this.#out;
    out.bytes = half.data.subarray(i * half.slot, (i + 1) * half.slot);
    out.length = half.length(i);
    out.senderPort = half.addrView.getUint32(i * SOCKADDR_NL_SIZE + 4, true);
    return out;
  }

  /** Resolves once {@link next} has an answer other than `undefined`. */
  async arrived(): Promise<boolean> {
    const half = this.#halves[this.#current]!;
    if (half.taken < half.count || this.#result !== undefined || this.#pending === undefined) {
      return true;
    }
    await this.#pending;
    return true;
  }

  /** Issues no more calls (one in flight returns on its own; its datagrams are dropped). */
  stop(): void {
    this.#stopped = true;
    this.#release();
  }

  /** Resolves once no call is in flight (during a dump one returns promptly: data is queued). */
  async settled(): Promise<void> {
    await this.#pending;
  }
}
