/**
 * Value parsers for the options, with conntrack's syntax (strtoul numbers,
 * keyword prefixes) and ctnl's messages.
 *
 * @module
 */

import { CT_STATUS } from "../src/constants.ts";
import { parseProtocol } from "../src/protocols.ts";
import { FailError, UsageError } from "./errors.ts";
import { optionName } from "./options.ts";

/** An unsigned integer as C's `strtoul(text, &end, 0)` reads it: decimal, 0x hex or 0 octal. */
export function parseCUint(text: string, max: number): number | undefined {
  let value: number;
  if (text.charCodeAt(0) !== 48 && (value = digits(text)) >= 0) {
    return value <= max ? value : undefined; // plain decimal, the common case
  }
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) value = parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) value = parseInt(text, 8);
  else if (/^[1-9][0-9]*$/.test(text)) value = Number(text);
  else return undefined;
  return Number.isSafeInteger(value) && value <= max ? value : undefined;
}

/** The value of `text` if it is all decimal digits (at most 15), else -1. */
export function digits(text: string): number {
  const n = text.length;
  if (n === 0 || n > 15) return n === 0 ? -1 : /^[0-9]+$/.test(text) ? Number(text) : -1;
  let value = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    value = value * 10 + c;
  }
  return value;
}

export function decimal(key: string, text: string, max: number, what: string): number {
  const value = digits(text);
  if (value < 0 || value > max) {
    throw new UsageError(`invalid ${what} "${text}" for ${optionName(key)} (0-${max})`);
  }
  return value;
}

export function parseMark(text: string): { value: number; mask: number } {
  const slash = text.indexOf("/");
  const valueText = slash < 0 ? text : text.slice(0, slash);
  const value = parseCUint(valueText, 0xffffffff);
  if (value === undefined) {
    throw new UsageError(
      `invalid mark "${text}" for -m/--mark (a 32-bit number, decimal or 0x hex, optionally /MASK)`,
    );
  }
  if (slash < 0) return { value, mask: 0xffffffff };
  const mask = parseCUint(text.slice(slash + 1), 0xffffffff);
  if (mask === undefined) {
    throw new UsageError(`invalid mask in "${text}" for -m/--mark (a 32-bit number after /)`);
  }
  return { value, mask };
}

/** conntrack's `-u` keywords, in its order (a prefix picks the first that matches). */
const STATUS_KEYWORDS: [string, number][] = [
  ["ASSURED", CT_STATUS.ASSURED],
  ["SEEN_REPLY", CT_STATUS.SEEN_REPLY],
  ["UNSET", 0],
  ["FIXED_TIMEOUT", CT_STATUS.FIXED_TIMEOUT],
  ["EXPECTED", CT_STATUS.EXPECTED],
  ["OFFLOAD", CT_STATUS.OFFLOAD],
  ["HW_OFFLOAD", CT_STATUS.HW_OFFLOAD],
];

/**
 * `-u FLAG[,FLAG…]`: every FLAG must be set, `!FLAG` must be clear,
 * `UNREPLIED` means SEEN_REPLY is clear. FLAG is a conntrack keyword (or
 * a prefix of one, case-insensitive) or any `CT_STATUS` name.
 */
export function parseStatus(text: string): { value: number; mask: number } {
  let known = STATUS_SEEN.get(text);
  if (known === undefined) {
    known = Object.freeze(statusOf(text));
    if (STATUS_SEEN.size < 256) STATUS_SEEN.set(text, known);
  }
  return known;
}

/** `-u` texts already read (a loaded file repeats a few): their frozen value. */
const STATUS_SEEN = new Map<string, { value: number; mask: number }>();

function statusOf(text: string): { value: number; mask: number } {
  let value = 0, mask = 0;
  for (const raw of text.split(",")) {
    const negated = raw.startsWith("!");
    const word = (negated ? raw.slice(1) : raw).toUpperCase();
    let bit: number | undefined;
    if (word === "UNREPLIED" && !negated) {
      mask |= CT_STATUS.SEEN_REPLY;
      continue;
    }
    if (Object.hasOwn(CT_STATUS, word)) bit = CT_STATUS[word as keyof typeof CT_STATUS];
    else if (word.length > 0) bit = STATUS_KEYWORDS.find(([name]) => name.startsWith(word))?.[1];
    if (bit === undefined) {
      throw new UsageError(
        `invalid status "${raw}" for -u/--status (ASSURED, SEEN_REPLY, UNREPLIED, FIXED_TIMEOUT, EXPECTED, OFFLOAD, HW_OFFLOAD, another CT_STATUS name, or !NAME)`,
      );
    }
    if (!negated) value |= bit;
    mask |= bit;
  }
  if (mask === 0) throw new UsageError(`-u/--status "${text}" selects no status bit`);
  return { value: value >>> 0, mask: mask >>> 0 };
}

/** conntrack's `-o` keywords, in its order (a prefix picks the first that matches). */
const OUTPUT_KEYWORDS = [
  "xml",
  "extended",
  "timestamp",
  "id",
  "ktimestamp",
  "labels",
  "userspace",
  "save",
] as const;
export type OutputKeyword = typeof OUTPUT_KEYWORDS[number];

export function parseOutput(lists: readonly string[]): Set<OutputKeyword> {
  const out = new Set<OutputKeyword>();
  for (const list of lists) {
    for (const word of list.split(",")) {
      const lower = word.toLowerCase();
      const hit = lower === "" ? undefined : OUTPUT_KEYWORDS.find((k) => k.startsWith(lower));
      if (hit === undefined) {
        throw new UsageError(
          `invalid output format "${word}" for -o/--output (extended, id, ktimestamp, timestamp, labels, userspace, xml, save)`,
        );
      }
      out.add(hit);
    }
  }
  if (out.has("save") && [...out].some((k) => k !== "save" && k !== "userspace")) {
    // conntrack's wording and status (1, OTHER_PROBLEM)
    throw new FailError("cannot combine save output with any other output type, use -o save only");
  }
  return out;
}

export function parseFamily(text: string): "ipv4" | "ipv6" {
  const lower = text.toLowerCase();
  if (lower === "ipv4" || lower === "ipv6") return lower;
  throw new UsageError(`invalid family "${text}" for -f/--family (ipv4 or ipv6)`);
}

export function parseProto(text: string): number {
  try {
    return parseProtocol(text, "-p");
  } catch {
    throw new UsageError(
      `unknown protocol "${text}" for -p/--proto (a name such as tcp, udp, icmp, icmpv6, sctp, or a number 0-255)`,
    );
  }
}

export type EventType = "new" | "update" | "destroy";

/** conntrack's `-e` keywords, in its order (a prefix picks the first that matches). */
const EVENT_KEYWORDS: [string, EventType[]][] = [
  ["ALL", ["new", "update", "destroy"]],
  ["NEW", ["new"]],
  ["UPDATES", ["update"]],
  ["DESTROY", ["destroy"]],
];

/** `-e NEW,UPDATE,DESTROY` (any case, a prefix is enough, `ALL` for the three). */
export function parseEventMask(text: string): EventType[] {
  const wanted = new Set<EventType>();
  for (const word of text.split(",")) {
    const upper = word.toUpperCase();
    const hit = upper === "" ? undefined : EVENT_KEYWORDS.find(([name]) => name.startsWith(upper));
    if (hit === undefined) {
      throw new UsageError(
        `invalid event "${word}" for -e/--event-mask (NEW, UPDATE, DESTROY or ALL)`,
      );
    }
    for (const type of hit[1]) wanted.add(type);
  }
  return (["new", "update", "destroy"] as const).filter((type) => wanted.has(type));
}

/** A NAT option's value: any NAT (no value), or the address and port it was NAT-ed to. */
export type NatOption = true | { address: string; port: number | undefined };

/**
 * `-n/-g/-j [ADDR[:PORT]]` as conntrack splits it: `ADDR`, `ADDR:PORT`,
 * `[IPV6]:PORT`, or an IPv6 address (more than one colon, no port).
 */
export function parseNat(key: string, text: string | undefined): NatOption {
  if (text === undefined) return true;
  const name = optionName(key);
  let address = text, portText: string | undefined;
  const open = text.indexOf("[");
  if (open >= 0) {
    const close = text.indexOf("]", open + 1);
    if (close === open + 1) throw new UsageError(`no IPv6 address given in "${text}" for ${name}`);
    if (close < 0) {
      throw new UsageError(`no closing ']' around the IPv6 address in "${text}" for ${name}`);
    }
    const colon = text.indexOf(":", close);
    if (colon >= 0) {
      address = text.slice(open + 1, close);
      portText = text.slice(colon + 1);
    }
  } else {
    const colon = text.indexOf(":");
    if (colon >= 0 && !text.includes(":", colon + 1)) {
      address = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (portText === "") throw new UsageError(`no port after ':' in "${text}" for ${name}`);
    if (!/^[0-9]+$/.test(portText) || Number(portText) > 65535) {
      throw new UsageError(`invalid port "${portText}" in "${text}" for ${name} (0-65535)`);
    }
    port = Number(portText);
  }
  return { address, port };
}

/** A zone for `key`: 0-65535 as strtoul reads it. */
export function parseZone(key: string, text: string): number {
  const zone = parseCUint(text, 65535);
  if (zone === undefined) {
    throw new UsageError(`invalid zone "${text}" for ${optionName(key)} (0-65535)`);
  }
  return zone;
}

/** A GRE key for `key`: 0-65535 as strtoul reads it. */
export function parseGreKey(key: string, text: string): number {
  const value = parseCUint(text, 65535);
  if (value === undefined) {
    throw new UsageError(`invalid GRE key "${text}" for ${optionName(key)} (0-65535)`);
  }
  return value;
}
