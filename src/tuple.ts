/**
 * The tuple, in one place: validated ({@link parseTuple}), inverted,
 * encoded for requests and for `CTA_FILTER` dumps ({@link encodeTuple}),
 * decoded by the checked decoder ({@link decodeTuple}; the fast path of
 * src/decode_fast.ts reads the same attributes in place), and turned back
 * from a decoded {@link Tuple} into a {@link TupleSpec} ({@link tupleSpecOf}).
 *
 * @module
 */

import { formatIPv4, formatIPv6, parseAddress, type ParsedAddress } from "./address.ts";
import * as C from "./constants.ts";
import { ArgumentError } from "./errors.ts";
import { checkUint } from "./filter.ts";
import { parseProtocol, protocolInfo } from "./protocols.ts";
import type { AttrCursor, Encoder } from "./netlink.ts";
import type { Tuple } from "./types.ts";

/** A tuple that names one direction of one entry.
 *
 * @example
 * ```ts
 * import { type TupleSpec, validateTuple } from "@ctnl/conntrack";
 *
 * const echo: TupleSpec = {
 *   src: "fd00::1", dst: "fd00::2", protocol: "icmpv6", icmpType: 128, icmpCode: 0, icmpId: 7,
 * };
 * validateTuple(echo);
 * ```
 */
export interface TupleSpec {
  /** Source address. */
  src: string;
  /** Destination address. */
  dst: string;
  /** Protocol by name or number. */
  protocol: number | string;
  /** Source port (TCP, UDP, SCTP, DCCP, UDP-Lite) or GRE key. */
  srcPort?: number | undefined;
  /** Destination port or GRE key. */
  dstPort?: number | undefined;
  /** ICMP type (ICMP, ICMPv6). */
  icmpType?: number | undefined;
  /** ICMP code. */
  icmpCode?: number | undefined;
  /** ICMP id. */
  icmpId?: number | undefined;
  /** The zone of the entry, as a dumped tuple carries it; an option's `zone` wins. */
  zone?: number | undefined;
}

/** A validated {@link TupleSpec}. */
export interface ParsedTuple {
  /** Address family. */
  family: "ipv4" | "ipv6";
  /** Source address. */
  src: ParsedAddress;
  /** Destination address. */
  dst: ParsedAddress;
  /** Protocol number. */
  protocol: number;
  /** Ports, for port protocols. */
  srcPort: number | undefined;
  /** Destination port. */
  dstPort: number | undefined;
  /** ICMP fields, for ICMP and ICMPv6. */
  icmpType: number | undefined;
  /** ICMP code. */
  icmpCode: number | undefined;
  /** ICMP id. */
  icmpId: number | undefined;
}

/** Validates a tuple; throws `TypeError`/`RangeError` naming `argument`. */
export function parseTuple(tuple: TupleSpec | Tuple, argument = "tuple"): ParsedTuple {
  if (tuple === null || typeof tuple !== "object") {
    throw new ArgumentError(argument, tuple, `${String(tuple)} is not an object`);
  }
  const src = parseAddress(tuple.src, `${argument}.src`);
  const dst = parseAddress(tuple.dst, `${argument}.dst`);
  if (src.family !== dst.family) {
    throw new ArgumentError(
      argument,
      tuple,
      `src "${tuple.src}" is ${src.family} but dst "${tuple.dst}" is ${dst.family}`,
    );
  }
  if (tuple.protocol === undefined) {
    throw new ArgumentError(argument, tuple.protocol, `protocol is required`);
  }
  const protocol = parseProtocol(tuple.protocol, `${argument}.protocol`);
  const out: ParsedTuple = {
    family: src.family,
    src,
    dst,
    protocol,
    srcPort: undefined,
    dstPort: undefined,
    icmpType: undefined,
    icmpCode: undefined,
    icmpId: undefined,
  };
  const carries = protocolInfo(protocol).tuple;
  if (carries === "ports" || carries === "keys") {
    if (tuple.srcPort === undefined || tuple.dstPort === undefined) {
      throw new ArgumentError(
        argument,
        tuple,
        `srcPort and dstPort are required for this protocol`,
      );
    }
    out.srcPort = checkUint(tuple.srcPort, 65535, `${argument}.srcPort`);
    out.dstPort = checkUint(tuple.dstPort, 65535, `${argument}.dstPort`);
  } else if (carries === "icmp") {
    if (
      tuple.icmpType === undefined || tuple.icmpCode === undefined || tuple.icmpId === undefined
    ) {
      throw new ArgumentError(
        argument,
        tuple,
        `icmpType, icmpCode and icmpId are required for ICMP`,
      );
    }
    if ((protocol === 58) !== (src.family === "ipv6")) {
      throw new ArgumentError(
        argument,
        tuple.protocol,
        `protocol ${protocol === 1 ? "icmp" : "icmpv6"} with ${src.family} addresses`,
      );
    }
    out.icmpType = checkUint(tuple.icmpType, 255, `${argument}.icmpType`);
    out.icmpCode = checkUint(tuple.icmpCode, 255, `${argument}.icmpCode`);
    out.icmpId = checkUint(tuple.icmpId, 65535, `${argument}.icmpId`);
  }
  return out;
}

/** ICMP echo-style request types and the reply type the kernel expects. */
const ICMP_REPLY: Readonly<Record<number, number>> = { 8: 0, 13: 14, 15: 16, 17: 18, 128: 129 };

/**
 * The reply tuple conntrack would expect for `t`: addresses and ports
 * swapped, an ICMP echo request answered by its echo reply.
 */
export function invertTuple(t: ParsedTuple): ParsedTuple {
  return {
    ...t,
    src: t.dst,
    dst: t.src,
    srcPort: t.dstPort,
    dstPort: t.srcPort,
    icmpType: t.icmpType === undefined ? undefined : (ICMP_REPLY[t.icmpType] ?? t.icmpType),
  };
}

/** The fields of a tuple to encode: a {@link ParsedTuple}, or a filter's (some absent). */
export interface TupleFields {
  /** Source address. */
  src: ParsedAddress | undefined;
  /** Destination address. */
  dst: ParsedAddress | undefined;
  /** Protocol number. */
  protocol: number | undefined;
  /** Source port (or GRE key). */
  srcPort: number | undefined;
  /** Destination port (or GRE key). */
  dstPort: number | undefined;
  /** ICMP type. */
  icmpType: number | undefined;
  /** ICMP code. */
  icmpCode: number | undefined;
  /** ICMP id. */
  icmpId: number | undefined;
}

/** Every `CTA_FILTER_F_*` flag: encode every field that is present. */
export const ALL_FIELDS = 0xffffffff;

/**
 * Writes `t` as a `CTA_TUPLE_*` nest of type `type`: the fields that are
 * present and selected by `flags` (`CTA_FILTER_F_*`; default all), with
 * the ICMPv6 attribute numbers when `v6`, and `zone` as `CTA_TUPLE_ZONE`
 * (the zone of this direction) when given.
 */
export function encodeTuple(
  enc: Encoder,
  type: number,
  t: TupleFields,
  v6: boolean,
  flags = ALL_FIELDS,
  zone?: number,
): void {
  enc.nest(type);
  if (flags & (C.CTA_FILTER_F_IP_SRC | C.CTA_FILTER_F_IP_DST)) {
    enc.nest(C.CTA_TUPLE_IP);
    if (flags & C.CTA_FILTER_F_IP_SRC && t.src) {
      enc.bytes(v6 ? C.CTA_IP_V6_SRC : C.CTA_IP_V4_SRC, t.src.bytes);
    }
    if (flags & C.CTA_FILTER_F_IP_DST && t.dst) {
      enc.bytes(v6 ? C.CTA_IP_V6_DST : C.CTA_IP_V4_DST, t.dst.bytes);
    }
    enc.end();
  }
  if (t.protocol !== undefined && flags & C.CTA_FILTER_F_PROTO_NUM) {
    enc.nest(C.CTA_TUPLE_PROTO).u8(C.CTA_PROTO_NUM, t.protocol);
    if (flags & C.CTA_FILTER_F_PROTO_SRC_PORT && t.srcPort !== undefined) {
      enc.u16be(C.CTA_PROTO_SRC_PORT, t.srcPort);
    }
    if (flags & C.CTA_FILTER_F_PROTO_DST_PORT && t.dstPort !== undefined) {
      enc.u16be(C.CTA_PROTO_DST_PORT, t.dstPort);
    }
    if (flags & (C.CTA_FILTER_F_ICMP_ID | C.CTA_FILTER_F_ICMPV6_ID) && t.icmpId !== undefined) {
      enc.u16be(v6 ? C.CTA_PROTO_ICMPV6_ID : C.CTA_PROTO_ICMP_ID, t.icmpId);
    }
    if (
      flags & (C.CTA_FILTER_F_ICMP_TYPE | C.CTA_FILTER_F_ICMPV6_TYPE) && t.icmpType !== undefined
    ) {
      enc.u8(v6 ? C.CTA_PROTO_ICMPV6_TYPE : C.CTA_PROTO_ICMP_TYPE, t.icmpType);
    }
    if (
      flags & (C.CTA_FILTER_F_ICMP_CODE | C.CTA_FILTER_F_ICMPV6_CODE) && t.icmpCode !== undefined
    ) {
      enc.u8(v6 ? C.CTA_PROTO_ICMPV6_CODE : C.CTA_PROTO_ICMP_CODE, t.icmpCode);
    }
    enc.end();
  }
  if (zone !== undefined) enc.u16be(C.CTA_TUPLE_ZONE, zone);
  enc.end();
}

/** The `nfgenmsg` family of a parsed tuple. */
export function familyNumber(t: ParsedTuple): number {
  return t.family === "ipv6" ? C.AF_INET6 : C.AF_INET;
}

/**
 * The {@link TupleSpec} that names the entry a decoded tuple came from (the
 * fields its protocol carries), to pass a dumped flow's tuple back to
 * `get`, `update` or `delete`.
 *
 * @example Delete what a dump found
 * ```ts
 * import { tupleSpecOf } from "@ctnl/conntrack";
 * import { deepStrictEqual } from "node:assert/strict";
 *
 * const orig = {
 *   src: "10.0.0.1", dst: "10.0.0.2", protocol: 17, srcPort: 5000, dstPort: 53,
 *   icmpId: undefined, icmpType: undefined, icmpCode: undefined, zone: undefined,
 * };
 * deepStrictEqual(tupleSpecOf(orig), {
 *   src: "10.0.0.1", dst: "10.0.0.2", protocol: 17, srcPort: 5000, dstPort: 53,
 * });
 * // for (const flow of ct.dumpSync()) await ct.delete(tupleSpecOf(flow.orig), { zone: flow.zone });
 * ```
 */
export function tupleSpecOf(t: Tuple): TupleSpec {
  const spec: TupleSpec = { src: t.src ?? "", dst: t.dst ?? "", protocol: t.protocol ?? 0 };
  if (t.srcPort !== undefined && t.dstPort !== undefined) {
    spec.srcPort = t.srcPort;
    spec.dstPort = t.dstPort;
  }
  if (t.icmpType !== undefined) {
    spec.icmpType = t.icmpType;
    spec.icmpCode = t.icmpCode ?? 0;
    spec.icmpId = t.icmpId ?? 0;
  }
  return spec;
}

/** A tuple with every field `undefined`. */
export function emptyTuple(): Tuple {
  return {
    src: undefined,
    dst: undefined,
    protocol: undefined,
    srcPort: undefined,
    dstPort: undefined,
    icmpId: undefined,
    icmpType: undefined,
    icmpCode: undefined,
    zone: undefined,
  };
}

/** The placeholder tuple of a flow under construction (never handed out). */
export const EMPTY_TUPLE: Tuple = Object.freeze(emptyTuple());

function decodeIp(c: AttrCursor, t: Tuple): void {
  c.enter(C.SETS.ip);
  while (c.next()) {
    switch (c.type) {
      case C.CTA_IP_V4_SRC:
        t.src = formatIPv4(c.bytes, c.fixed(4));
        break;
      case C.CTA_IP_V4_DST:
        t.dst = formatIPv4(c.bytes, c.fixed(4));
        break;
      case C.CTA_IP_V6_SRC:
        t.src = formatIPv6(c.bytes, c.fixed(16));
        break;
      case C.CTA_IP_V6_DST:
        t.dst = formatIPv6(c.bytes, c.fixed(16));
        break;
    }
  }
  c.leave();
}

function decodeProto(c: AttrCursor, t: Tuple): void {
  c.enter(C.SETS.proto);
  while (c.next()) {
    switch (c.type) {
      case C.CTA_PROTO_NUM:
        t.protocol = c.u8();
        break;
      case C.CTA_PROTO_SRC_PORT:
        t.srcPort = c.u16be();
        break;
      case C.CTA_PROTO_DST_PORT:
        t.dstPort = c.u16be();
        break;
      case C.CTA_PROTO_ICMP_ID:
      case C.CTA_PROTO_ICMPV6_ID:
        t.icmpId = c.u16be();
        break;
      case C.CTA_PROTO_ICMP_TYPE:
      case C.CTA_PROTO_ICMPV6_TYPE:
        t.icmpType = c.u8();
        break;
      case C.CTA_PROTO_ICMP_CODE:
      case C.CTA_PROTO_ICMPV6_CODE:
        t.icmpCode = c.u8();
        break;
    }
  }
  c.leave();
}

/** Decodes the `CTA_TUPLE_*` nest the cursor is on (the checked path). */
export function decodeTuple(c: AttrCursor): Tuple {
  const t = emptyTuple();
  c.enter(C.SETS.tuple);
  while (c.next()) {
    switch (c.type) {
      case C.CTA_TUPLE_IP:
        decodeIp(c, t);
        break;
      case C.CTA_TUPLE_PROTO:
        decodeProto(c, t);
        break;
      case C.CTA_TUPLE_ZONE:
        t.zone = c.u16be();
        break;
    }
  }
  c.leave();
  return t;
}

/**
 * Checks a {@link TupleSpec} without opening anything: throws the same
 * `TypeError`/`RangeError` a `get` would, naming the bad field.
 *
 * @example
 * ```ts
 * import { validateTuple } from "@ctnl/conntrack";
 * import { throws } from "node:assert/strict";
 *
 * validateTuple({ src: "10.0.0.1", dst: "10.0.0.2", protocol: "udp", srcPort: 1, dstPort: 53 });
 * throws(() => validateTuple({ src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp" }), TypeError);
 * ```
 */
export function validateTuple(tuple: TupleSpec): void {
  parseTuple(tuple);
}
