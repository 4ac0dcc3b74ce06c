/**
 * The CLI's errors and their exit statuses ({@link UsageError} 2,
 * {@link FailError} 1), library argument errors named as the options that
 * fed them, and conntrack-tools' wording for what the kernel refused.
 *
 * @module
 */

import { ERRNO, isArgumentError, NetlinkError } from "../src/errors.ts";

/** Bad parameters: exit status 2. */
export class UsageError extends Error {}
/** The operation failed: exit status 1. */
export class FailError extends Error {}

/** The kernel has no such entry. */
export function isNotFound(error: unknown): boolean {
  return error instanceof NetlinkError && error.errno === ERRNO.ENOENT;
}

/** Library argument names, as the options that fed them. */
function argumentNames(direction: string): Record<string, string> {
  const orig = direction === "orig";
  return {
    "filter.orig.src": "-s/--src",
    "filter.orig.dst": "-d/--dst",
    "filter.reply.src": "-r/--reply-src",
    "filter.reply.dst": "-q/--reply-dst",
    "filter.orig.protocol": "-p/--proto",
    "filter.reply.protocol": "-p/--proto",
    "filter.family": "-f/--family",
    "filter.mark": "-m/--mark",
    "filter.zone": "-w/--zone",
    "filter.status": "-u/--status",
    "tuple.src": orig ? "-s/--src" : "-r/--reply-src",
    "tuple.dst": orig ? "-d/--dst" : "-q/--reply-dst",
    "tuple.protocol": "-p/--proto",
    "tuple": "the tuple",
    "netns": "--netns",
    "zone": "-w/--zone",
  };
}

/**
 * A library argument error as a usage error naming the option that fed the
 * argument (`tuple.src` is `-s/--src` in the original direction, `-r/--reply-src`
 * in the reply one); another `TypeError`/`RangeError` as a usage error with
 * its message; anything else as it is.
 */
export function argumentError(error: unknown, direction: string): unknown {
  if (isArgumentError(error)) {
    const names = argumentNames(direction);
    const name = Object.hasOwn(names, error.argument) ? names[error.argument]! : error.argument;
    return new UsageError(`invalid ${name}: ${error.reason}`);
  }
  if (error instanceof TypeError || error instanceof RangeError) {
    return new UsageError(error.message);
  }
  return error;
}

/** Runs `fn`; a library argument error it throws becomes a usage error naming the option. */
export function checked<T>(fn: () => T, direction = "orig"): T {
  try {
    return fn();
  } catch (error) {
    throw argumentError(error, direction);
  }
}

/**
 * conntrack-tools' `err2str`, in its order: the errno, the commands the
 * wording is for (every command when empty), the text after
 * "Operation failed: ".
 */
const ERR2STR: readonly [errno: number, commands: readonly string[], text: string][] = [
  [ERRNO.EPERM, [], "sorry, you must be root or get CAP_NET_ADMIN capability to do this"],
  [ERRNO.EACCES, [], "sorry, you must be root or get CAP_NET_ADMIN capability to do this"],
  [ERRNO.ENOENT, ["get", "delete", "create", "update"], "such conntrack doesn't exist"],
  [ERRNO.EEXIST, ["create"], "Such conntrack exists, try -U to update"],
  [ERRNO.ENOMEM, ["create", "get"], "not enough memory"],
  [ERRNO.ETIME, ["create"], "conntrack has expired"],
  [ERRNO.EINVAL, [], "invalid parameters"],
  [ERRNO.EAFNOSUPPORT, ["get"], "protocol not supported"],
  [ERRNO.ENOTSUPP, ["dump"], "function not implemented"],
];

/** conntrack-tools' wording for what the kernel refused (its `err2str`). */
export function failure(error: NetlinkError, command: string, netns: string | undefined): string {
  const op = error.operation;
  if (op === "open network namespace") {
    if (error.errno === ERRNO.ENOENT) {
      return `network namespace "${netns}" does not exist (${error.extAck ?? netns})`;
    }
    return `cannot open network namespace "${netns}": ${error.message}`;
  }
  if (op === "enter network namespace" || op === "return to own network namespace") {
    if (error.errno === ERRNO.EPERM) {
      return `cannot enter network namespace "${netns}": operation not permitted; run as root (CAP_SYS_ADMIN)`;
    }
    return `cannot enter network namespace "${netns}": ${error.message}`;
  }
  for (const [errno, commands, text] of ERR2STR) {
    if (errno === error.errno && (commands.length === 0 || commands.includes(command))) {
      return `Operation failed: ${text}`;
    }
  }
  return `Operation failed: ${error.message}`;
}
