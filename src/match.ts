/**
 * The filter parts no kernel applies to a dump, matched in userspace with
 * conntrack-tools' semantics: address prefixes and masks, NAT, labels, the
 * zone of the entry and of each direction.
 *
 * @module
 */

import { parseAddress, type ParsedAddress } from "./address.ts";
import * as C from "./constants.ts";
import { ArgumentError, ArgumentRangeError } from "./errors.ts";
import type { Flow, Tuple } from "./types.ts";

/**
 * What a NAT filter asks of an entry: that it was translated at all, or to
 * this address and/or port (the reply tuple's destination for source NAT,
 * its source for destination NAT).
 *
 * @example
 * ```ts
 * import { validateFilter } from "@ctnl/conntrack";
 *
 * // Entries source-NAT-ed to 192.0.2.1, destination-NAT-ed to port 8080.
 * validateFilter({ snat: { address: "192.0.2.1" }, dnat: { port: 8080 } });
 * ```
 */
export interface NatFilter {
  /** The address the entry was translated to. */
  address?: string;
  /** The port the entry was translated to. */
  port?: number;
}

/** A validated NAT filter part. */
export interface NormalizedNat {
  /** The address, when given. */
  address: ParsedAddress | undefined;
  /** The port, when given. */
  port: number | undefined;
}

/** An address with a mask: matches when `(address & mask) === (value & mask)`. */
export interface MaskedAddress {
  /** The address as given (its text is what an exact match compares). */
  address: ParsedAddress;
  /** The mask bytes; undefined when every bit counts (an exact match). */
  mask: Uint8Array | undefined;
}

/**
 * Parses `ADDR` or `ADDR/PREFIX` and an optional mask address; the mask is
 * dropped when it keeps every bit (conntrack matches /32 and /128 exactly).
 */
export function parseMaskedAddress(
  text: string | undefined,
  maskText: string | undefined,
  argument: string,
): MaskedAddress {
  if (typeof text !== "string") {
    throw new ArgumentError(argument, text, `${String(text)} is not an address string`);
  }
  const slash = text.indexOf("/");
  const address = parseAddress(slash < 0 ? text : text.slice(0, slash), argument);
  const bits = address.bytes.length * 8;
  let mask: Uint8Array | undefined;
  if (slash >= 0) {
    if (maskText !== undefined) {
      throw new ArgumentError(argument, text, `a prefix length and a mask given for "${text}"`);
    }
    const prefixText = text.slice(slash + 1);
    const prefix = /^[0-9]{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
    if (!(prefix <= bits)) {
      throw new ArgumentRangeError(
        argument,
        text,
        `"${prefixText}" is not a prefix length 0-${bits}`,
      );
    }
    mask = new Uint8Array(bits / 8);
    for (let i = 0; i < prefix; i++) mask[i >> 3] = mask[i >> 3]! | (0x80 >> (i & 7));
  } else if (maskText !== undefined) {
    const m = parseAddress(maskText, `${argument}Mask`);
    if (m.family !== address.family) {
      throw new ArgumentError(
        `${argument}Mask`,
        maskText,
        `${m.family} mask "${maskText}" for ${address.family} address "${text}"`,
      );
    }
    mask = m.bytes;
  }
  if (mask !== undefined && mask.every((b) => b === 0xff)) mask = undefined;
  return { address, mask };
}

/** A matcher of `(text & mask) === (address & mask)` for address text of a dumped flow. */
export function maskedMatcher(m: MaskedAddress): (text: string | undefined) => boolean {
  const mask = m.mask;
  if (mask === undefined) {
    const want = m.address.text;
    return (text) => text === want;
  }
  const want = m.address.bytes.map((b, i) => b & mask[i]!);
  const v4 = m.address.family === "ipv4";
  return (text) => {
    if (text === undefined || text.includes(":") === v4) return false;
    const bytes = parseAddress(text, "flow").bytes;
    for (let i = 0; i < want.length; i++) if ((bytes[i]! & mask[i]!) !== want[i]) return false;
    return true;
  };
}

/** Validates a NAT filter part (`true` or `{ address, port }`); undefined for `false`. */
export function normalizeNat(value: unknown, argument: string): NormalizedNat | undefined {
  if (value === false) return undefined;
  if (value === true) return { address: undefined, port: undefined };
  if (value === null || typeof value !== "object") {
    throw new ArgumentError(argument, value, `${String(value)} is not true or { address, port }`);
  }
  const nat = value as NatFilter;
  for (const key of Object.keys(nat)) {
    if (key !== "address" && key !== "port") {
      throw new ArgumentError(argument, key, `unknown field "${key}"`);
    }
  }
  const port = nat.port;
  if (
    port !== undefined &&
    (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535)
  ) {
    throw new ArgumentRangeError(`${argument}.port`, port, `${String(port)} is not a port 0-65535`);
  }
  return {
    address: nat.address === undefined
      ? undefined
      : parseAddress(nat.address, `${argument}.address`),
    port,
  };
}

/** The 16 bits of a tuple's source side: the port, GRE key or ICMP id (0 for none). */
function l4Source(t: Tuple): number {
  return t.srcPort ?? t.icmpId ?? 0;
}

/** The 16 bits of a tuple's destination side: the port, GRE key or ICMP type and code. */
function l4Destination(t: Tuple): number {
  return t.dstPort ?? (t.icmpType === undefined ? 0 : (t.icmpType << 8) | (t.icmpCode ?? 0));
}

/**
 * Whether `flow` was source-NAT-ed as `nat` asks, with libnetfilter_conntrack's
 * test: `SRC_NAT_DONE` set and the reply's destination (address, or port)
 * differing from the original source; an address or port given must be the
 * reply's destination one (both, when both are given).
 */
export function isSourceNat(flow: Flow, nat: NormalizedNat): boolean {
  if ((flow.status & C.CT_STATUS.SRC_NAT_DONE) === 0) return false;
  const { orig, reply } = flow;
  return natMatches(
    nat,
    reply.dst !== orig.src,
    reply.dst,
    l4Destination(reply) !== l4Source(orig),
    reply.dstPort,
  );
}

/** Whether `flow` was destination-NAT-ed as `nat` asks (the reply's source against the original destination). */
export function isDestinationNat(flow: Flow, nat: NormalizedNat): boolean {
  if ((flow.status & C.CT_STATUS.DST_NAT_DONE) === 0) return false;
  const { orig, reply } = flow;
  return natMatches(
    nat,
    reply.src !== orig.dst,
    reply.src,
    l4Source(reply) !== l4Destination(orig),
    reply.srcPort,
  );
}

function natMatches(
  nat: NormalizedNat,
  addressChanged: boolean,
  address: string | undefined,
  portChanged: boolean,
  port: number | undefined,
): boolean {
  const addressOk = addressChanged && address === nat.address?.text;
  const portOk = portChanged && port === nat.port;
  if (nat.address !== undefined && nat.port !== undefined) return addressOk && portOk;
  if (nat.address !== undefined) return addressOk;
  if (nat.port !== undefined) return portOk;
  return addressChanged || portChanged;
}

/** Validates label bit numbers (0–127) into the bytes of a bit set, as `Flow.labels` holds them. */
export function labelMask(bits: unknown, argument: string): Uint8Array {
  if (!Array.isArray(bits)) {
    throw new ArgumentError(argument, bits, `${String(bits)} is not an array of bit numbers`);
  }
  const out = new Uint8Array(16);
  for (const bit of bits) {
    if (typeof bit !== "number" || !Number.isInteger(bit) || bit < 0 || bit > 127) {
      throw new ArgumentRangeError(`${argument}[]`, bit, `${String(bit)} is not a label bit 0-127`);
    }
    out[bit >> 3] = out[bit >> 3]! | (1 << (bit & 7));
  }
  return out;
}

/** Whether every bit of `want` is set in the flow's labels (a flow without labels has none). */
export function hasLabels(flow: Flow, want: Uint8Array): boolean {
  const have = flow.labels;
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w !== 0 && ((have?.[i] ?? 0) & w) !== w) return false;
  }
  return true;
}
