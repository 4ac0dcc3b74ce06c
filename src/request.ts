/**
 * Request encoding for the operations that name entries: tuples (validated),
 * and the attributes of create and update requests.
 *
 * @module
 */

import { parseAddress, type ParsedAddress } from "./address.ts";
import * as C from "./constants.ts";
import { ArgumentError } from "./errors.ts";
import { checkUint, statusBits, type StatusValue } from "./filter.ts";
import { parseProtocol, protocolInfo, TCP_STATES } from "./protocols.ts";
import type { Encoder } from "./netlink.ts";

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
  /** Source port (TCP, UDP, SCTP, DCCP, UDP-Lite). */
  srcPort?: number;
  /** Destination port. */
  dstPort?: number;
  /** ICMP type (ICMP, ICMPv6). */
  icmpType?: number;
  /** ICMP code. */
  icmpCode?: number;
  /** ICMP id. */
  icmpId?: number;
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
export function parseTuple(tuple: TupleSpec, argument = "tuple"): ParsedTuple {
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

/** Writes `t` as a `CTA_TUPLE_*` nest of type `type`. */
export function encodeTuple(enc: Encoder, type: number, t: ParsedTuple): void {
  const v6 = t.family === "ipv6";
  enc.nest(type);
  enc.nest(C.CTA_TUPLE_IP)
    .bytes(v6 ? C.CTA_IP_V6_SRC : C.CTA_IP_V4_SRC, t.src.bytes)
    .bytes(v6 ? C.CTA_IP_V6_DST : C.CTA_IP_V4_DST, t.dst.bytes)
    .end();
  enc.nest(C.CTA_TUPLE_PROTO).u8(C.CTA_PROTO_NUM, t.protocol);
  if (t.srcPort !== undefined) enc.u16be(C.CTA_PROTO_SRC_PORT, t.srcPort);
  if (t.dstPort !== undefined) enc.u16be(C.CTA_PROTO_DST_PORT, t.dstPort);
  if (t.icmpType !== undefined) {
    enc.u16be(v6 ? C.CTA_PROTO_ICMPV6_ID : C.CTA_PROTO_ICMP_ID, t.icmpId!);
    enc.u8(v6 ? C.CTA_PROTO_ICMPV6_TYPE : C.CTA_PROTO_ICMP_TYPE, t.icmpType);
    enc.u8(v6 ? C.CTA_PROTO_ICMPV6_CODE : C.CTA_PROTO_ICMP_CODE, t.icmpCode!);
  }
  enc.end().end();
}

/** What {@link encodeChanges} can set on a new or existing entry.
 *
 * @example
 * ```ts
 * import type { FlowChanges } from "@ctnl/conntrack";
 *
 * const changes: FlowChanges = { mark: 42, timeout: 600, status: ["ASSURED"] };
 * void changes; // ct.update(tuple, changes)
 * ```
 */
export interface FlowChanges {
  /** Timeout in seconds. */
  timeout?: number;
  /** Connection mark. */
  mark?: number;
  /** Status bits to set (`["ASSURED", "SEEN_REPLY"]` or a bitmask). */
  status?: StatusValue;
  /** Connection label bits to set (0–127). */
  labels?: readonly number[];
  /** TCP state by name (`"ESTABLISHED"`) or number, for TCP entries. */
  tcpState?: string | number;
}

function tcpStateNumber(state: string | number): number {
  if (typeof state === "number") return checkUint(state, TCP_STATES.length - 1, "tcpState");
  const n = TCP_STATES.indexOf(String(state).toUpperCase());
  if (n < 0) throw new ArgumentError("tcpState", state, `unknown TCP state "${state}"`);
  return n;
}

/** Validates `changes` and writes their attributes. */
export function encodeChanges(
  enc: Encoder,
  changes: FlowChanges,
  argument: string,
  creating = false,
): void {
  if (changes.status !== undefined) {
    let bits = statusBits(changes.status, `${argument}.status`);
    // The kernel marks a new entry CONFIRMED before applying CTA_STATUS and
    // refuses (EBUSY) a status that would clear it.
    if (creating) bits = (bits | C.CT_STATUS.CONFIRMED) >>> 0;
    enc.u32be(C.CTA_STATUS, bits);
  }
  if (changes.timeout !== undefined) {
    enc.u32be(C.CTA_TIMEOUT, checkUint(changes.timeout, 0xffffffff, `${argument}.timeout`));
  }
  if (changes.mark !== undefined) {
    enc.u32be(C.CTA_MARK, checkUint(changes.mark, 0xffffffff, `${argument}.mark`));
  }
  if (changes.tcpState !== undefined) {
    enc.nest(C.CTA_PROTOINFO).nest(C.CTA_PROTOINFO_TCP)
      .u8(C.CTA_PROTOINFO_TCP_STATE, tcpStateNumber(changes.tcpState)).end().end();
  }
  if (changes.labels !== undefined) {
    if (!Array.isArray(changes.labels)) {
      throw new ArgumentError(`${argument}.labels`, changes.labels, `not an array of bit numbers`);
    }
    const bits = new Uint8Array(16);
    for (const bit of changes.labels) {
      checkUint(bit, 127, `${argument}.labels[]`);
      bits[bit >> 3] = bits[bit >> 3]! | (1 << (bit & 7));
    }
    enc.bytes(C.CTA_LABELS, bits).bytes(C.CTA_LABELS_MASK, bits);
  }
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
