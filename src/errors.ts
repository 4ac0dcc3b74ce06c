/**
 * Error types: what the kernel refuses ({@link NetlinkError}) and what cannot
 * be decoded ({@link DecodeError}).
 *
 * @module
 */

/** Linux errno names by number (the ones netlink and ctnetlink produce). */
const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  28: "ENOSPC",
  34: "ERANGE",
  71: "EPROTO",
  75: "EOVERFLOW",
  90: "EMSGSIZE",
  93: "EPROTONOSUPPORT",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  105: "ENOBUFS",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  38: "ENOSYS",
  88: "ENOTSOCK",
  98: "EADDRINUSE",
};

/** Short descriptions, as `strerror` gives them, for the common errno values. */
const ERRNO_TEXT: Readonly<Record<number, string>> = {
  1: "Operation not permitted",
  2: "No such file or directory",
  11: "Resource temporarily unavailable",
  12: "Cannot allocate memory",
  13: "Permission denied",
  16: "Device or resource busy",
  17: "File exists",
  22: "Invalid argument",
  71: "Protocol error",
  90: "Message too long",
  93: "Protocol not supported",
  95: "Operation not supported",
  97: "Address family not supported by protocol",
  105: "No buffer space available",
  110: "Connection timed out",
};

/**
 * Returns the symbolic name of a Linux errno value (`2` → `"ENOENT"`).
 *
 * @example Name an errno value
 * ```ts
 * import { errnoName } from "@ctnl/conntrack";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 *
 * assertEquals(errnoName(2), "ENOENT");
 * assertEquals(errnoName(9999), "E9999");
 * ```
 */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] || `E${errno}`;
}

/** Options for {@link NetlinkError}.
 *
 * @example
 * ```ts
 * import { NetlinkError } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const e = new NetlinkError("dump", 22, { extAck: "bad filter", seq: 9 });
 * equal(e.message, "Cannot dump: EINVAL (Invalid argument): bad filter");
 * ```
 */
export interface NetlinkErrorOptions {
  /** The kernel's extended-ack message, if it sent one. */
  extAck?: string | undefined;
  /** The sequence number of the request that failed. */
  seq?: number | undefined;
  /** The underlying cause. */
  cause?: unknown;
}

/**
 * The kernel (or a socket call) refused an operation.
 *
 * Carries the positive `errno`, its symbolic `code` (`"ENOENT"`), the
 * `operation` that failed (`"get"`, `"dump"`, `"socket"`, …) and the
 * kernel's extended-ack text when there was one.
 *
 * @example Tell a missing entry from other failures
 * ```ts
 * import { NetlinkError } from "@ctnl/conntrack";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 *
 * const error = new NetlinkError("get", 2);
 * assertEquals(error.code, "ENOENT");
 * assertEquals(error.message, "Cannot get: ENOENT (No such file or directory)");
 * ```
 */
export class NetlinkError extends Error {
  /** The positive errno value. */
  readonly errno: number;
  /** The errno's symbolic name, e.g. `"ENOENT"`. */
  readonly code: string;
  /** The operation that failed, e.g. `"dump"`. */
  readonly operation: string;
  /** The kernel's extended-ack message, if any. */
  readonly extAck: string | undefined;
  /** The request's sequence number, if the failure answered a request. */
  readonly seq: number | undefined;

  /** Builds the error for `operation` failing with `errno`. */
  constructor(operation: string, errno: number, options: NetlinkErrorOptions = {}) {
    const code = errnoName(errno);
    const text = ERRNO_TEXT[errno];
    let message = `Cannot ${operation}: ${code}${text ? ` (${text})` : ""}`;
    if (options.extAck) message += `: ${options.extAck}`;
    if (errno === 1 || errno === 13) {
      message += "; conntrack over netlink needs CAP_NET_ADMIN (run as root)";
    }
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NetlinkError";
    this.errno = errno;
    this.code = code;
    this.operation = operation;
    this.extAck = options.extAck;
    this.seq = options.seq;
  }
}

/**
 * Bytes that are not a well-formed netlink or conntrack message.
 *
 * A `RangeError` with the byte `offset` where decoding stopped and the
 * attribute `path` it was in, e.g.
 * `Cannot decode CTA_TUPLE_ORIG.CTA_TUPLE_IP: length 3 is too short`.
 *
 * @example Catch malformed bytes
 * ```ts
 * import { DecodeError, decodeMessages } from "@ctnl/conntrack";
 * import { throws as assertThrows } from "node:assert/strict";
 *
 * assertThrows(() => [...decodeMessages(new Uint8Array([1, 2, 3]))], DecodeError);
 * ```
 */
export class DecodeError extends RangeError {
  /** Byte offset into the buffer being decoded. */
  readonly offset: number;
  /** Attribute path, e.g. `"CTA_TUPLE_ORIG.CTA_TUPLE_IP"`. */
  readonly path: string;

  /** Builds the error for `path` at `offset`. */
  constructor(path: string, offset: number, reason: string) {
    super(`Cannot decode ${path}: ${reason} (at byte ${offset})`);
    this.name = "DecodeError";
    this.offset = offset;
    this.path = path;
  }
}
