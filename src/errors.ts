/**
 * Error types: what the kernel refuses ({@link NetlinkError}) and what cannot
 * be decoded ({@link DecodeError}).
 *
 * @module
 */

/**
 * The Linux errno values ctnl branches on, by name (`ERRNO.ENOENT` is 2),
 * so that no bare errno number stands in the code.
 *
 * @example
 * ```ts
 * import { ERRNO, NetlinkError } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal(new NetlinkError("get", ERRNO.ENOENT).code, "ENOENT");
 * ```
 */
export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EBADF: 9,
  EINTR: 4,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENODATA: 61,
  ETIME: 62,
  EPROTO: 71,
  ENOPROTOOPT: 92,
  EMSGSIZE: 90,
  EOPNOTSUPP: 95,
  EAFNOSUPPORT: 97,
  ENOBUFS: 105,
  ETIMEDOUT: 110,
  ENOTSUPP: 524,
} as const;

/** Linux errno names by number (the ones netlink and ctnetlink produce). */
const ERRNO_NAMES = {
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
  92: "ENOPROTOOPT",
  93: "EPROTONOSUPPORT",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  105: "ENOBUFS",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  38: "ENOSYS",
  61: "ENODATA",
  62: "ETIME",
  524: "ENOTSUPP",
  88: "ENOTSOCK",
  98: "EADDRINUSE",
} as const satisfies Record<number, ErrnoCode>;

/**
 * The symbolic name of an errno value: one ctnl knows (`"ENOENT"`), or
 * `E<number>` for the others.
 *
 * @example
 * ```ts
 * import type { ErrnoCode } from "@ctnl/conntrack";
 *
 * const missing: ErrnoCode = "ENOENT";
 * void missing;
 * ```
 */
export type ErrnoCode =
  | "EPERM"
  | "ENOENT"
  | "ESRCH"
  | "EINTR"
  | "EIO"
  | "EBADF"
  | "EAGAIN"
  | "ENOMEM"
  | "EACCES"
  | "EFAULT"
  | "EBUSY"
  | "EEXIST"
  | "ENODEV"
  | "EINVAL"
  | "ENFILE"
  | "EMFILE"
  | "ENOSPC"
  | "ERANGE"
  | "EPROTO"
  | "EOVERFLOW"
  | "EMSGSIZE"
  | "ENOPROTOOPT"
  | "EPROTONOSUPPORT"
  | "EOPNOTSUPP"
  | "EAFNOSUPPORT"
  | "ENOBUFS"
  | "ETIMEDOUT"
  | "ECONNREFUSED"
  | "ENOSYS"
  | "ENODATA"
  | "ETIME"
  | "ENOTSUPP"
  | "ENOTSOCK"
  | "EADDRINUSE"
  | `E${number}`;

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
export function errnoName(errno: number): ErrnoCode {
  return (ERRNO_NAMES as Readonly<Record<number, ErrnoCode>>)[errno] ?? `E${errno}`;
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
  /** The entry the request named, as messages name it (`udp 10.0.0.1:5353 -> 10.0.0.2:53`). */
  subject?: string | undefined;
}

/**
 * What a {@link NetlinkError} says failed: a conntrack operation (`"get"`,
 * `"dump"`, …), or the socket or namespace step under it.
 *
 * @example Branch on the step that failed
 * ```ts
 * import { NetlinkError, type Operation } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const where = (e: NetlinkError): Operation => e.operation;
 * equal(where(new NetlinkError("open network namespace", 2)), "open network namespace");
 * ```
 */
export type Operation =
  | "open network namespace"
  | "open own network namespace"
  | "enter network namespace"
  | "return to own network namespace"
  | "open netlink socket"
  | "bind"
  | "getsockname"
  | "set SO_RCVTIMEO"
  | "set SO_RCVBUF"
  | "set SO_RCVBUFFORCE"
  | "set NETLINK_NO_ENOBUFS"
  | "join group"
  | "enable NETLINK_EXT_ACK"
  | "enable NETLINK_CAP_ACK"
  | "get"
  | "dump"
  | "stats"
  | "count"
  | "create"
  | "update"
  | "delete"
  | "flush"
  | "events";

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
  readonly code: ErrnoCode;
  /** The operation that failed, e.g. `"dump"`. */
  readonly operation: Operation;
  /** The kernel's extended-ack message, if any. */
  readonly extAck: string | undefined;
  /** The request's sequence number, if the failure answered a request. */
  readonly seq: number | undefined;
  /** The entry the request named, if it named one (`udp 10.0.0.1:5353 -> 10.0.0.2:53`). */
  readonly subject: string | undefined;
  #options: NetlinkErrorOptions;

  /** Builds the error for `operation` failing with `errno`. */
  constructor(operation: Operation, errno: number, options: NetlinkErrorOptions = {}) {
    const code = errnoName(errno);
    const text = ERRNO_TEXT[errno];
    let message: string;
    if (options.subject !== undefined) {
      // Cannot delete udp 10.0.0.1:5353 -> 10.0.0.2:53: no such entry (ENOENT)
      const why = errno === ERRNO.ENOENT
        ? "no such entry"
        : errno === ERRNO.EEXIST
        ? "it exists already"
        : (text ?? "failed").toLowerCase();
      message = `Cannot ${operation} ${options.subject}: ${why} (${code})`;
    } else {
      message = `Cannot ${operation}: ${code}${text ? ` (${text})` : ""}`;
    }
    if (options.extAck) message += `: ${options.extAck}`;
    if (errno === ERRNO.EPERM || errno === ERRNO.EACCES) {
      message += operation.endsWith("network namespace")
        ? "; entering another network namespace needs CAP_SYS_ADMIN (run as root)"
        : "; conntrack over netlink needs CAP_NET_ADMIN (run as root)";
    }
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NetlinkError";
    this.errno = errno;
    this.code = code;
    this.operation = operation;
    this.extAck = options.extAck;
    this.seq = options.seq;
    this.subject = options.subject;
    this.#options = options;
  }

  /**
   * The same error, naming the entry the request was about.
   *
   * @example
   * ```ts
   * import { NetlinkError } from "@ctnl/conntrack";
   * import { equal } from "node:assert/strict";
   *
   * const e = new NetlinkError("delete", 2).about("udp 10.0.0.1:5353 -> 10.0.0.2:53");
   * equal(e.message, "Cannot delete udp 10.0.0.1:5353 -> 10.0.0.2:53: no such entry (ENOENT)");
   * ```
   */
  about(subject: string): NetlinkError {
    return new NetlinkError(this.operation, this.errno, { ...this.#options, subject });
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

/**
 * A bad argument of the wrong kind or shape: a `TypeError` that names the
 * `argument` (its path, e.g. `"filter.orig.src"`), the `value` given and the
 * `reason`, so that callers branch on fields rather than on message text.
 * The message reads `Invalid <argument>: <reason>`.
 *
 * @example
 * ```ts
 * import { ArgumentError, validateTuple } from "@ctnl/conntrack";
 * import { equal, ok } from "node:assert/strict";
 *
 * try {
 *   validateTuple({ src: "10.0.0.1", dst: "nowhere", protocol: "icmp" });
 * } catch (e) {
 *   ok(e instanceof ArgumentError && e instanceof TypeError);
 *   equal(e.argument, "tuple.dst");
 *   equal(e.value, "nowhere");
 *   equal(e.message, `Invalid tuple.dst: "nowhere" is not an IPv4 or IPv6 address`);
 * }
 * ```
 */
export class ArgumentError extends TypeError {
  /** The argument's path, e.g. `"filter.orig.dstPort"`. */
  readonly argument: string;
  /** The value that was given. */
  readonly value: unknown;
  /** What is wrong with it, e.g. `"70000 is not an integer in 0-65535"`. */
  readonly reason: string;

  /** Builds the error for `argument` given as `value`. */
  constructor(argument: string, value: unknown, reason: string) {
    super(`Invalid ${argument}: ${reason}`);
    this.name = "ArgumentError";
    this.argument = argument;
    this.value = value;
    this.reason = reason;
  }
}

/**
 * A number out of its range: a `RangeError` with the same fields as
 * {@link ArgumentError}.
 *
 * @example
 * ```ts
 * import { ArgumentRangeError, validateTuple } from "@ctnl/conntrack";
 * import { throws } from "node:assert/strict";
 *
 * throws(
 *   () => validateTuple({ src: "::1", dst: "::1", protocol: "udp", srcPort: 70000, dstPort: 53 }),
 *   (e) => e instanceof ArgumentRangeError && e.argument === "tuple.srcPort" && e.value === 70000,
 * );
 * ```
 */
export class ArgumentRangeError extends RangeError {
  /** The argument's path, e.g. `"tuple.srcPort"`. */
  readonly argument: string;
  /** The value that was given. */
  readonly value: unknown;
  /** What is wrong with it. */
  readonly reason: string;

  /** Builds the error for `argument` given as `value`. */
  constructor(argument: string, value: unknown, reason: string) {
    super(`Invalid ${argument}: ${reason}`);
    this.name = "ArgumentRangeError";
    this.argument = argument;
    this.value = value;
    this.reason = reason;
  }
}

/**
 * Whether `error` is a bad-argument error from ctnl ({@link ArgumentError}
 * or {@link ArgumentRangeError}).
 *
 * @example
 * ```ts
 * import { isArgumentError, validateFilter } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * try {
 *   validateFilter({ orig: { dstPort: -1 } });
 * } catch (e) {
 *   equal(isArgumentError(e) && e.argument, "filter.orig.dstPort");
 * }
 * ```
 */
export function isArgumentError(error: unknown): error is ArgumentError | ArgumentRangeError {
  return error instanceof ArgumentError || error instanceof ArgumentRangeError;
}

/**
 * A dump was interrupted: the kernel flagged `NLM_F_DUMP_INTR`, so some
 * entries may be missing or repeated. Retry the dump if you need a
 * consistent view.
 *
 * @example
 * ```ts
 * import { DumpInterruptedError } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const e = new DumpInterruptedError("dump");
 * equal(e.code, "EINTR");
 * equal(e instanceof Error, true);
 * ```
 */
export class DumpInterruptedError extends NetlinkError {
  /** Builds the error for `operation`. */
  constructor(operation: Operation) {
    super(operation, ERRNO.EINTR, {
      extAck: "dump interrupted by a table change (NLM_F_DUMP_INTR)",
    });
    this.name = "DumpInterruptedError";
  }
}

/** The verb of an operation in messages (`"watch events"` for `"events"`). */
function verb(operation: Operation): string {
  return operation === "events" ? "watch events" : operation;
}

/**
 * An operation on a handle that is closed — or that was closed while the
 * operation waited for the kernel (`during`).
 *
 * @example
 * ```ts
 * import { ClosedError } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal(new ClosedError("count").message, "Cannot count: the Conntrack handle is closed");
 * equal(
 *   new ClosedError("dump", true).message,
 *   "Cannot dump: the Conntrack handle was closed during the dump",
 * );
 * ```
 */
export class ClosedError extends Error {
  /** The operation that was refused or cut short. */
  readonly operation: Operation;

  /** Builds the error for `operation` (cut short when `during`). */
  constructor(operation: Operation, during = false) {
    super(
      during
        ? `Cannot ${verb(operation)}: the Conntrack handle was closed during the ${operation}`
        : `Cannot ${verb(operation)}: the Conntrack handle is closed`,
    );
    this.name = "ClosedError";
    this.operation = operation;
  }
}

/**
 * An operation on a handle whose socket is still receiving a dump that was
 * neither finished nor ended with `return()`.
 *
 * @example
 * ```ts
 * import { BusyError } from "@ctnl/conntrack";
 * import { match } from "node:assert/strict";
 *
 * match(new BusyError("get").message, /^Cannot get: this handle is still busy with a dump/);
 * ```
 */
export class BusyError extends Error {
  /** The operation that was refused. */
  readonly operation: Operation;

  /** Builds the error for `operation`. */
  constructor(operation: Operation) {
    super(
      `Cannot ${
        verb(operation)
      }: this handle is still busy with a dump; finish it or open another handle`,
    );
    this.name = "BusyError";
    this.operation = operation;
  }
}

/** Checks an integer in `[0, max]`; throws a `RangeError` naming `argument`. */
export function checkUint(value: unknown, max: number, argument: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw new ArgumentRangeError(argument, value, `${String(value)} is not an integer in 0-${max}`);
  }
  return value;
}
