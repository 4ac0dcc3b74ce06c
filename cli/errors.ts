import { NetlinkError } from "../mod.ts";
import type { Command } from "./options.ts";

/** Bad parameters: exit status 2. */
export class UsageError extends Error {}
/** The operation failed: exit status 1. */
export class FailError extends Error {}

export function isNotFound(error: unknown): boolean {
  return error instanceof NetlinkError && error.code === "ENOENT";
}

/** Library argument names, as the options that fed them. */
export function argumentNames(direction: string): Record<string, string> {
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

/** A library `TypeError`/`RangeError` about an argument, as a usage error naming the option. */
export function argumentError(error: unknown, direction: string): unknown {
  if (!(error instanceof TypeError || error instanceof RangeError)) return error;
  const m = /^Invalid ([\w.]+): (.*)$/s.exec(error.message);
  if (!m) return new UsageError(error.message);
  const names = argumentNames(direction);
  const name = Object.hasOwn(names, m[1]!) ? names[m[1]!]! : m[1]!;
  return new UsageError(`invalid ${name}: ${m[2]}`);
}

/** conntrack-tools' wording for what the kernel refused (its `err2str`). */
export function failure(error: NetlinkError, command: Command, netns: string | undefined): string {
  const op = error.operation;
  if (op === "open network namespace") {
    if (error.code === "ENOENT") {
      return `network namespace "${netns}" does not exist (${error.extAck ?? netns})`;
    }
    return `cannot open network namespace "${netns}": ${error.message}`;
  }
  if (op === "enter network namespace" || op === "return to own network namespace") {
    if (error.code === "EPERM") {
      return `cannot enter network namespace "${netns}": operation not permitted; run as root (CAP_SYS_ADMIN)`;
    }
    return `cannot enter network namespace "${netns}": ${error.message}`;
  }
  if (error.code === "EPERM" || error.code === "EACCES") {
    return "Operation failed: sorry, you must be root or get CAP_NET_ADMIN capability to do this";
  }
  if (error.code === "ENOENT" && ["get", "delete", "create", "update"].includes(command)) {
    return "Operation failed: such conntrack doesn't exist";
  }
  if (error.code === "EEXIST" && command === "create") {
    return "Operation failed: Such conntrack exists, try -U to update";
  }
  if (error.code === "ENOMEM" && (command === "create" || command === "get")) {
    return "Operation failed: not enough memory";
  }
  if (error.errno === 62 && command === "create") {
    return "Operation failed: conntrack has expired"; // ETIME
  }
  if (error.code === "EINVAL") return "Operation failed: invalid parameters";
  if (error.code === "EAFNOSUPPORT" && command === "get") {
    return "Operation failed: protocol not supported";
  }
  if (error.errno === 524 && command === "dump") {
    return "Operation failed: function not implemented";
  }
  return `Operation failed: ${error.message}`;
}
