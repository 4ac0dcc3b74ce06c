/**
 * Raw `AF_NETLINK` socket calls over libc: open (optionally inside another
 * network namespace), bind, send, receive with truncation and sender checks,
 * poll, close. No protocol knowledge lives here.
 *
 * @module
 */

import { errno, libc } from "./libc.ts";
import { ERRNO, NetlinkError, type Operation } from "../src/errors.ts";

const { EAGAIN, EINTR, EMSGSIZE, ENOPROTOOPT, ETIMEDOUT } = ERRNO;

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_NETFILTER = 12;
const SOL_SOCKET = 1;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
const SO_RCVBUFFORCE = 33;
const SO_ATTACH_FILTER = 26;
const SO_GET_FILTER = SO_ATTACH_FILTER;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const NETLINK_NO_ENOBUFS = 5;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
/** recvmsg flag: report a datagram's real length (and flag it cut). */
export const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;
const POLLIN = 0x1;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;

/** Size of `struct sockaddr_nl`. */
export const SOCKADDR_NL_SIZE = 12;
/** Size of `struct msghdr` on 64-bit Linux. */
const MSGHDR_SIZE = 56;

/** Encodes a path as a NUL-terminated C string. */
function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * Opens a file read-only with `O_CLOEXEC` and returns its descriptor (used
 * for network namespace files, whose descriptor `setns` needs).
 */
export function openFd(path: string, operation: Operation): number {
  const fd = libc().open(cString(path), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const code = errno();
    throw new NetlinkError(operation, code, { extAck: path });
  }
  return fd;
}

/** Closes a file descriptor, ignoring errors. */
export function closeFd(fd: number): void {
  libc().close(fd);
}

/** What one {@link NetlinkSocket.recv} returned. */
export interface Received {
  /** Bytes received into the buffer. */
  length: number;
  /** The sender's netlink port id (0 = the kernel). */
  senderPort: number;
}

/** Options for {@link NetlinkSocket.open}. */
export interface SocketOptions {
  /** A network namespace file descriptor to create the socket in. */
  netnsFd?: number | undefined;
  /** Receive timeout in milliseconds for blocking receives (0 = none). */
  recvTimeoutMs?: number | undefined;
}

/**
 * One `NETLINK_NETFILTER` socket. Owns its descriptor and a reusable
 * `msghdr`/`iovec`/`sockaddr_nl` block for `recvmsg`.
 */
export class NetlinkSocket {
  /** The socket's file descriptor; -1 once closed. */
  fd: number;
  /** The port id the kernel assigned at bind time. */
  readonly portId: number;
  #recvBuf: Uint8Array<ArrayBuffer>;
  #msghdr = new Uint8Array(MSGHDR_SIZE);
  #msgView: DataView;
  #iov = new Uint8Array(16);
  #iovView: DataView;
  #addr = new Uint8Array(SOCKADDR_NL_SIZE);
  #pollfd = new Uint8Array(16);
  #wakeFd = -1;
  #addrView: DataView;

  private constructor(fd: number, portId: number, bufferSize: number) {
    this.fd = fd;
    this.portId = portId;
    this.#recvBuf = new Uint8Array(bufferSize);
    this.#msgView = new DataView(this.#msghdr.buffer);
    this.#iovView = new DataView(this.#iov.buffer);
    this.#addrView = new DataView(this.#addr.buffer);
    this.#wire();
  }

  /** The receive buffer; valid until the next {@link recv}. */
  get buffer(): Uint8Array<ArrayBuffer> {
    return this.#recvBuf;
  }

  /** Points the msghdr at the address and iovec, and the iovec at the buffer. */
  #wire(): void {
    const buf = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#recvBuf));
    this.#iovView.setBigUint64(0, BigInt(buf), true);
    this.#iovView.setBigUint64(8, BigInt(this.#recvBuf.byteLength), true);
    const addr = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#addr));
    const iov = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.#iov));
    this.#msgView.setBigUint64(0, BigInt(addr), true); // msg_name
    this.#msgView.setUint32(8, SOCKADDR_NL_SIZE, true); // msg_namelen
    this.#msgView.setBigUint64(16, BigInt(iov), true); // msg_iov
    this.#msgView.setBigUint64(24, 1n, true); // msg_iovlen
    this.#msgView.setBigUint64(32, 0n, true); // msg_control
    this.#msgView.setBigUint64(40, 0n, true); // msg_controllen
    this.#msgView.setInt32(48, 0, true); // msg_flags
  }

  /**
   * Creates, configures and binds a netfilter netlink socket. With
   * `netnsFd`, the calling thread enters that namespace for the `socket()`
   * call and returns to its own namespace before this returns.
   */
  static open(options: SocketOptions = {}, bufferSize = 65536): NetlinkSocket {
    const c = libc();
    let fd: number;
    if (options.netnsFd !== undefined) {
      const home = openFd("/proc/thread-self/ns/net", "open own network namespace");
      try {
        if (c.setns(options.netnsFd, CLONE_NEWNET) !== 0) {
          throw new NetlinkError("enter network namespace", errno());
        }
        fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
        const socketErrno = errno();
        if (c.setns(home, CLONE_NEWNET) !== 0) {
          const code = errno();
          if (fd >= 0) c.close(fd);
          throw new NetlinkError("return to own network namespace", code);
        }
        if (fd < 0) throw new NetlinkError("open netlink socket", socketErrno);
      } finally {
        c.close(home);
      }
    } else {
      fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
      if (fd < 0) throw new NetlinkError("open netlink socket", errno());
    }
    try {
      setIntOption(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, "enable NETLINK_EXT_ACK", true);
      setIntOption(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1, "enable NETLINK_CAP_ACK", true);
      if (options.recvTimeoutMs) {
        const tv = new DataView(new ArrayBuffer(16));
        tv.setBigInt64(0, BigInt(Math.floor(options.recvTimeoutMs / 1000)), true);
        tv.setBigInt64(8, BigInt((options.recvTimeoutMs % 1000) * 1000), true);
        if (c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, new Uint8Array(tv.buffer), 16) !== 0) {
          throw new NetlinkError("set SO_RCVTIMEO", errno());
        }
      }
      const addr = new Uint8Array(SOCKADDR_NL_SIZE);
      new DataView(addr.buffer).setUint16(0, AF_NETLINK, true);
      if (c.bind(fd, addr, SOCKADDR_NL_SIZE) !== 0) throw new NetlinkError("bind", errno());
      const len = new Uint32Array([SOCKADDR_NL_SIZE]);
      if (c.getsockname(fd, addr, new Uint8Array(len.buffer)) !== 0) {
        throw new NetlinkError("getsockname", errno());
      }
      const portId = new DataView(addr.buffer).getUint32(4, true);
      return new NetlinkSocket(fd, portId, bufferSize);
    } catch (error) {
      c.close(fd);
      throw error;
    }
  }

  /** Sends one datagram to the kernel. */
  send(bytes: Uint8Array<ArrayBuffer>, operation: Operation): void {
    const kernel = new Uint8Array(SOCKADDR_NL_SIZE);
    new DataView(kernel.buffer).setUint16(0, AF_NETLINK, true);
    for (;;) {
      const n = Number(libc().sendto(this.fd, bytes, BigInt(bytes.byteLength), 0, kernel, 12));
      if (n >= 0) {
        if (n !== bytes.byteLength) {
          throw new NetlinkError(operation, EMSGSIZE, { extAck: `short send of ${n} bytes` });
        }
        return;
      }
      const code = errno();
      if (code !== EINTR) throw new NetlinkError(operation, code);
    }
  }

  /**
   * Receives one datagram into {@link buffer}. A datagram larger than the
   * buffer is an `EMSGSIZE` error, never silently cut. With `nonBlocking`,
   * returns `undefined` when nothing is queued.
   */
  recv(operation: Operation, nonBlocking = false): Received | undefined {
    const c = libc();
    for (;;) {
      this.#msgView.setUint32(8, SOCKADDR_NL_SIZE, true);
      this.#msgView.setInt32(48, 0, true);
      const r = c.recvmsg(this.fd, this.#msghdr, MSG_TRUNC | (nonBlocking ? MSG_DONTWAIT : 0));
      const n = typeof r === "bigint" ? Number(r) : r;
      if (n < 0) {
        const code = errno();
        if (code === EINTR) continue;
        if (code === EAGAIN && nonBlocking) return undefined;
        if (code === EAGAIN) {
          throw new NetlinkError(operation, ETIMEDOUT, {
            extAck: "no reply from the kernel in time",
          });
        }
        throw new NetlinkError(operation, code);
      }
      const flags = this.#msgView.getInt32(48, true);
      if (n > this.#recvBuf.byteLength || (flags & MSG_TRUNC) !== 0) {
        throw new NetlinkError(operation, EMSGSIZE, {
          extAck: `datagram of ${n} bytes truncated to ${this.#recvBuf.byteLength}`,
        });
      }
      return { length: n, senderPort: this.#addrView.getUint32(4, true) };
    }
  }

  /** Waits up to `timeoutMs` for data; true when readable. */
  poll(timeoutMs: number, operation: Operation): boolean {
    const pfd = new Uint8Array(8);
    const view = new DataView(pfd.buffer);
    view.setInt32(0, this.fd, true);
    view.setInt16(4, POLLIN, true);
    const r = libc().poll(pfd, 1n, timeoutMs);
    if (r < 0) {
      const code = errno();
      if (code === EINTR) return false;
      throw new NetlinkError(operation, code);
    }
    return r > 0;
  }

  /**
   * Resolves true once data is queued (or the socket has an error for the
   * next receive to report), false after `timeoutMs` (−1: no limit): `poll`
   * on Deno's blocking pool, so the event loop runs meanwhile.
   */
  async readable(timeoutMs: number): Promise<boolean> {
    if (this.fd < 0) return true; // closed: the receive reports it
    if (this.#wakeFd < 0) {
      // An eventfd beside the socket, so that wake() (or close()) ends a wait at once.
      this.#wakeFd = libc().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    }
    const view = new DataView(this.#pollfd.buffer);
    view.setInt32(0, this.fd, true);
    view.setInt16(4, POLLIN, true);
    view.setInt16(6, 0, true);
    view.setInt32(8, this.#wakeFd, true);
    view.setInt16(12, POLLIN, true);
    view.setInt16(14, 0, true);
    const fds = this.#wakeFd < 0 ? 1n : 2n;
    const r = await libc().poll_async(this.#pollfd, fds, timeoutMs);
    if (r > 0 && (view.getInt16(14, true) & POLLIN) !== 0 && this.#wakeFd >= 0) {
      // Woken: take the counter back to 0 for the next wait.
      drain(this.#wakeFd);
    }
    return r !== 0; // r < 0: let the receive on this thread read errno
  }

  /** Ends a {@link readable} wait in progress (it resolves true) without closing anything. */
  wake(): void {
    if (this.#wakeFd >= 0) libc().write(this.#wakeFd, ONE, 8n);
  }

  /** Sets the receive buffer size, forcing past `rmem_max` when permitted. */
  setReceiveBuffer(bytes: number): void {
    try {
      setIntOption(this.fd, SOL_SOCKET, SO_RCVBUFFORCE, bytes, "set SO_RCVBUFFORCE", false);
    } catch {
      setIntOption(this.fd, SOL_SOCKET, SO_RCVBUF, bytes, "set SO_RCVBUF", false);
    }
  }

  /** Joins a netlink multicast group. */
  joinGroup(group: number): void {
    setIntOption(this.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group, "join group", false);
  }

  /** Turns off `ENOBUFS` reports on overrun. */
  disableEnobufs(): void {
    setIntOption(this.fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, 1, "set NETLINK_NO_ENOBUFS", false);
  }

  /**
   * Attaches a classic BPF socket filter (`SO_ATTACH_FILTER`; `program`:
   * `struct sock_filter` array in host order); returns 0, or the errno of
   * the refusal (the caller falls back to userspace filtering).
   */
  attachFilter(program: Uint8Array<ArrayBuffer>): number {
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; } (64-bit layout).
    const fprog = new DataView(new ArrayBuffer(16));
    fprog.setUint16(0, program.length / 8, true);
    fprog.setBigUint64(8, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(program))), true);
    const r = libc().setsockopt(
      this.fd,
      SOL_SOCKET,
      SO_ATTACH_FILTER,
      new Uint8Array(fprog.buffer),
      16,
    );
    return r === 0 ? 0 : errno();
  }

  /** The length of the attached socket filter in instructions (`SO_GET_FILTER`; 0: none). */
  filterLength(): number {
    const len = new Uint32Array([0]);
    const r = libc().getsockopt(
      this.fd,
      SOL_SOCKET,
      SO_GET_FILTER,
      new Uint8Array(0),
      new Uint8Array(len.buffer),
    );
    if (r !== 0) throw new NetlinkError("events", errno());
    return len[0]!;
  }

  /** Forgets the descriptor without closing it (someone else now owns it). */
  detach(): void {
    if (this.#wakeFd >= 0) {
      this.wake();
      libc().close(this.#wakeFd);
      this.#wakeFd = -1;
    }
    this.fd = -1;
  }

  /** Closes the descriptor; a second call does nothing. */
  close(): void {
    if (this.#wakeFd >= 0) {
      this.wake();
      libc().close(this.#wakeFd);
      this.#wakeFd = -1;
    }
    if (this.fd < 0) return;
    libc().close(this.fd);
    this.fd = -1;
  }
}

/** An eventfd increment of 1. */
const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
const DRAIN = new Uint8Array(8);

/** Reads an eventfd's counter back to 0 (it is non-blocking: nothing to read is fine). */
function drain(fd: number): void {
  libc().read(fd, DRAIN, 8n);
}

function setIntOption(
  fd: number,
  level: number,
  name: number,
  value: number,
  operation: Operation,
  optional: boolean,
): void {
  const v = new Int32Array([value]);
  if (libc().setsockopt(fd, level, name, new Uint8Array(v.buffer), 4) !== 0) {
    const code = errno();
    if (optional && code === ENOPROTOOPT) return;
    throw new NetlinkError(operation, code);
  }
}
