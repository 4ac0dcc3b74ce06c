/**
 * The conntrack decoder: one `IPCTNL_MSG_CT_NEW` message → one {@link Flow},
 * one stats message → {@link CpuStats} / {@link GlobalStats}. Reads in place
 * with one {@link AttrCursor}; copies only what the flow keeps.
 *
 * @module
 */

import { formatIPv4, formatIPv6 } from "./address.ts";
import * as C from "./constants.ts";
import { DCCP_STATES, SCTP_STATES, TCP_STATES } from "./protocols.ts";
import { DecodeError } from "./errors.ts";
import {
  AttrCursor,
  type MessageHeader,
  newHeader,
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  NLMSG_HDRLEN,
  readHeader,
} from "./netlink.ts";
import type {
  Counters,
  CpuStats,
  DccpInfo,
  Family,
  Flow,
  GlobalStats,
  NatRange,
  RawAttribute,
  SctpInfo,
  SeqAdj,
  Synproxy,
  TcpInfo,
  Tuple,
} from "./types.ts";

/** Options for decoding.
 *
 * @example
 * ```ts
 * import type { DecodeOptions } from "@ctnl/conntrack";
 *
 * const options: DecodeOptions = { keepUnknown: true }; // flow.unknown keeps what this version skips
 * void options;
 * ```
 */
export interface DecodeOptions {
  /** Keep top-level attributes this version does not know in `flow.unknown`. */
  keepUnknown?: boolean;
}

/** Offset of the attributes after `nlmsghdr` + `nfgenmsg`. */
const ATTRS = NLMSG_HDRLEN + 4;

function familyName(af: number): Family {
  if (af === C.AF_INET) return "ipv4";
  if (af === C.AF_INET6) return "ipv6";
  throw new DecodeError("nfgenmsg", 16, `unknown address family ${af}`);
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
const EMPTY: Tuple = Object.freeze(emptyTuple());

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

function decodeTuple(c: AttrCursor): Tuple {
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

function stateName(table: readonly string[], state: number): string {
  return table[state] ?? `UNKNOWN(${state})`;
}

function decodeTcp(c: AttrCursor): TcpInfo {
  const info: TcpInfo = {
    state: 0,
    stateName: "",
    wscaleOrig: undefined,
    wscaleReply: undefined,
    flagsOrig: undefined,
    flagsReply: undefined,
  };
  let seenState = false;
  c.enter(C.SETS.tcp);
  while (c.next()) {
    switch (c.type) {
      case C.CTA_PROTOINFO_TCP_STATE:
        info.state = c.u8();
        seenState = true;
        break;
      case C.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL:
        info.wscaleOrig = c.u8();
        break;
      case C.CTA_PROTOINFO_TCP_WSCALE_REPLY:
        info.wscaleReply = c.u8();
        break;
      case C.CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: {
        const at = c.fixed(2);
        info.flagsOrig = { flags: c.bytes[at]!, mask: c.bytes[at + 1]! };
        break;
      }
      case C.CTA_PROTOINFO_TCP_FLAGS_REPLY: {
        const at = c.fixed(2);
        info.flagsReply = { flags: c.bytes[at]!, mask: c.bytes[at + 1]! };
        break;
      }
    }
  }
  c.leave();
  if (!seenState) throw c.error("CTA_PROTOINFO_TCP without CTA_PROTOINFO_TCP_STATE");
  info.stateName = stateName(TCP_STATES, info.state);
  return info;
}

function decodeSctp(c: AttrCursor): SctpInfo {
  const info: SctpInfo = { state: 0, stateName: "", vtagOrig: undefined, vtagReply: undefined };
  c.enter(C.SETS.sctp);
  while (c.next()) {
    switch (c.type) {
      case C.CTA_PROTOINFO_SCTP_STATE:
        info.state = c.u8();
        break;
      case C.CTA_PROTOINFO_SCTP_VTAG_ORIGINAL:
        info.vtagOrig = c.u32be();
        break;
      case C.CTA_PROTOINFO_SCTP_VTAG_REPLY:
        info.vtagReply = c.u32be();
        break;
    }
  }
  c.leave();
  info.stateName = stateName(SCTP_STATES, info.state);
  return info;
}

function decodeDccp(c: AttrCursor): DccpInfo {
  const info: DccpInfo = { state: 0, stateName: "", role: undefined, handshakeSeq: undefined };
  c.enter(C.SETS.dccp);
  while (c.next()) {
    switch (c.type) {
      case C.CTA_PROTOINFO_DCCP_STATE:
        info.state = c.u8();
        break;
      case C.CTA_PROTOINFO_DCCP_ROLE:
        info.role = c.u8();
        break;
      case C.CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ:
        info.handshakeSeq = c.u64be();
        break;
    }
  }
  c.leave();
  info.stateName = stateName(DCCP_STATES, info.state);
  return info;
}

function decodeProtoinfo(c: AttrCursor, flow: Flow): void {
  c.enter(C.SETS.protoinfo);
  while (c.next()) {
    switch (c.type) {
      case C.CTA_PROTOINFO_TCP:
        flow.tcp = decodeTcp(c);
        break;
      case C.CTA_PROTOINFO_SCTP:
        flow.sctp = decodeSctp(c);
        break;
      case C.CTA_PROTOINFO_DCCP:
        flow.dccp = decodeDccp(c);
        break;
    }
  }
  c.leave();
}

function decodeCounters(c: AttrCursor): Counters {
  const counters: Counters = { packets: 0n, bytes: 0n };
  c.enter(C.SETS.counters);
  while (c.next()) {
    switch (c.type) {
      case C.CTA_COUNTERS_PACKETS:
        counters.packets = c.u64be();
        break;
      case C.CTA_COUNTERS_BYTES:
        counters.bytes = c.u64be();
        break;
      case C.CTA_COUNTERS32_PACKETS:
        counters.packets = BigInt(c.u32be());
        break;
      case C.CTA_COUNTERS32_BYTES:
        counters.bytes = BigInt(c.u32be());
        break;
    }
  }
  c.leave();
  return counters;
}

function decodeNat(c: AttrCursor): NatRange {
  const nat: NatRange = {
    minIp: undefined,
    maxIp: undefined,
    minPort: undefined,
    maxPort: undefined,
  };
  c.enter(C.SETS.nat);
  while (c.next()) {
    switch (c.type) {
      case C.CTA_NAT_V4_MINIP:
        nat.minIp = formatIPv4(c.bytes, c.fixed(4));
        break;
      case C.CTA_NAT_V4_MAXIP:
        nat.maxIp = formatIPv4(c.bytes, c.fixed(4));
        break;
      case C.CTA_NAT_V6_MINIP:
        nat.minIp = formatIPv6(c.bytes, c.fixed(16));
        break;
      case C.CTA_NAT_V6_MAXIP:
        nat.maxIp = formatIPv6(c.bytes, c.fixed(16));
        break;
      case C.CTA_NAT_PROTO:
        decodeProtoNat(c, nat);
        break;
    }
  }
  c.leave();
  return nat;
}

function decodeProtoNat(c: AttrCursor, nat: NatRange): void {
  c.enter(C.SETS.protonat);
  while (c.next()) {
    if (c.type === C.CTA_PROTONAT_PORT_MIN) nat.minPort = c.u16be();
    else if (c.type === C.CTA_PROTONAT_PORT_MAX) nat.maxPort = c.u16be();
  }
  c.leave();
}

function decodeTimestamp(c: AttrCursor, flow: Flow): void {
  c.enter(C.SETS.tstamp);
  while (c.next()) {
    if (c.type === C.CTA_TIMESTAMP_START) flow.timestampStart = c.u64be();
    else if (c.type === C.CTA_TIMESTAMP_STOP) flow.timestampStop = c.u64be();
  }
  c.leave();
}

function decodeSeqAdj(c: AttrCursor): SeqAdj {
  const adj: SeqAdj = { correctionPos: 0, offsetBefore: 0, offsetAfter: 0 };
  c.enter(C.SETS.seqadj);
  while (c.next()) {
    switch (c.type) {
      case C.CTA_SEQADJ_CORRECTION_POS:
        adj.correctionPos = c.u32be();
        break;
      case C.CTA_SEQADJ_OFFSET_BEFORE:
        adj.offsetBefore = c.u32be();
        break;
      case C.CTA_SEQADJ_OFFSET_AFTER:
        adj.offsetAfter = c.u32be();
        break;
    }
  }
  c.leave();
  return adj;
}

function decodeSynproxy(c: AttrCursor): Synproxy {
  const s: Synproxy = { isn: 0, its: 0, tsoff: 0 };
  c.enter(C.SETS.synproxy);
  while (c.next()) {
    switch (c.type) {
      case C.CTA_SYNPROXY_ISN:
        s.isn = c.u32be();
        break;
      case C.CTA_SYNPROXY_ITS:
        s.its = c.u32be();
        break;
      case C.CTA_SYNPROXY_TSOFF:
        s.tsoff = c.u32be();
        break;
    }
  }
  c.leave();
  return s;
}

function decodeNestedString(c: AttrCursor, set: typeof C.SETS.help, type: number): string {
  let out: string | undefined;
  c.enter(set);
  while (c.next()) if (c.type === type) out = c.string();
  c.leave();
  if (out === undefined) throw c.error(`nest without ${set.names[type]}`);
  return out;
}

// ---- The fast path ----------------------------------------------------------
//
// A dump is almost all plain entries: tuples, status, timeout, mark, use, id,
// TCP state, and counters or timestamps when enabled. `fastFlow` decodes
// those with local offsets, a `switch` on literal attribute numbers per level
// (V8 turns it into a jump table) and nothing stored between attributes:
// 1.8× the checked decoder's speed on the benchmark's entries, and it
// allocates less (see bench/decode_bench.ts). It checks every
// length like the cursor does, but instead of explaining a problem it returns
// `undefined`, as it does for the entries it leaves to the checked decoder
// (NAT, helpers, sequence adjustment, security context, master tuple, SCTP,
// DCCP, 32-bit counters, `keepUnknown`). The checked decoder is the
// reference: it decodes those, or throws the DecodeError with the path.
// tests/decode_paths_test.ts checks that the two agree, on captured dumps and
// on mutations of them.

/**
 * Where the address payloads of the tuple being decoded are: offset and
 * length of orig src, orig dst, reply src, reply dst (-1: absent). Their text
 * is made once both tuples are read, so that the reply tuple can share the
 * original's strings (a flow's reply addresses are its original ones swapped,
 * unless NAT changed them): half the strings to build and to collect.
 */
const ADDR = new Int32Array(8);

/**
 * Decodes a CTA_TUPLE_* nest's payload `[pos, end)`, recording its addresses
 * in {@link ADDR} at `slot` (0 orig, 4 reply); `undefined` to fall back.
 */
function fastTuple(
  b: Uint8Array,
  v: DataView,
  pos: number,
  end: number,
  slot: number,
): Tuple | undefined {
  const t = emptyTuple();
  ADDR[slot] = -1;
  ADDR[slot + 2] = -1;
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return undefined;
    const len = v.getUint16(pos, true);
    if (len < NLA_HDRLEN || len > end - pos) return undefined;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch (v.getUint16(pos + 2, true) & NLA_TYPE_MASK) {
      case 1: // CTA_TUPLE_IP
        if (!fastIp(v, at, at + size, slot)) return undefined;
        break;
      case 2: // CTA_TUPLE_PROTO
        if (!fastProto(b, v, at, at + size, t)) return undefined;
        break;
      case 3: // CTA_TUPLE_ZONE
        if (size !== 2) return undefined;
        t.zone = v.getUint16(at, false);
        break;
    }
    pos += (len + 3) & ~3;
  }
  return t;
}

function fastIp(v: DataView, pos: number, end: number, slot: number): boolean {
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const len = v.getUint16(pos, true);
    if (len < NLA_HDRLEN || len > end - pos) return false;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch (v.getUint16(pos + 2, true) & NLA_TYPE_MASK) {
      case 1: // CTA_IP_V4_SRC
      case 2: // CTA_IP_V4_DST
        if (size !== 4) return false;
        break;
      case 3: // CTA_IP_V6_SRC
      case 4: // CTA_IP_V6_DST
        if (size !== 16) return false;
        break;
      default:
        pos += (len + 3) & ~3;
        continue;
    }
    // src (odd types) at slot, dst (even types) at slot + 2
    const i = slot + ((v.getUint16(pos + 2, true) & 1) === 1 ? 0 : 2);
    ADDR[i] = at;
    ADDR[i + 1] = size;
    pos += (len + 3) & ~3;
  }
  return true;
}

/** The text of the address at `ADDR[i]`, `undefined` if absent. */
function addressAt(b: Uint8Array, i: number): string | undefined {
  const at = ADDR[i]!;
  if (at < 0) return undefined;
  return ADDR[i + 1] === 4 ? formatIPv4(b, at) : formatIPv6(b, at);
}

/** The text of the reply address at `ADDR[i]`, shared with the original tuple's when equal. */
function replyAddressAt(b: Uint8Array, i: number, orig: Tuple): string | undefined {
  const at = ADDR[i]!;
  if (at < 0) return undefined;
  const size = ADDR[i + 1]!;
  if (ADDR[2]! >= 0 && ADDR[3] === size && sameBytes(b, at, ADDR[2]!, size)) return orig.dst;
  if (ADDR[0]! >= 0 && ADDR[1] === size && sameBytes(b, at, ADDR[0]!, size)) return orig.src;
  return size === 4 ? formatIPv4(b, at) : formatIPv6(b, at);
}

function sameBytes(b: Uint8Array, x: number, y: number, size: number): boolean {
  for (let i = 0; i < size; i++) if (b[x + i] !== b[y + i]) return false;
  return true;
}

function fastProto(b: Uint8Array, v: DataView, pos: number, end: number, t: Tuple): boolean {
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const len = v.getUint16(pos, true);
    if (len < NLA_HDRLEN || len > end - pos) return false;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch (v.getUint16(pos + 2, true) & NLA_TYPE_MASK) {
      case 1: // CTA_PROTO_NUM
        if (size !== 1) return false;
        t.protocol = b[at]!;
        break;
      case 2: // CTA_PROTO_SRC_PORT
        if (size !== 2) return false;
        t.srcPort = v.getUint16(at, false);
        break;
      case 3: // CTA_PROTO_DST_PORT
        if (size !== 2) return false;
        t.dstPort = v.getUint16(at, false);
        break;
      case 4: // CTA_PROTO_ICMP_ID
      case 7: // CTA_PROTO_ICMPV6_ID
        if (size !== 2) return false;
        t.icmpId = v.getUint16(at, false);
        break;
      case 5: // CTA_PROTO_ICMP_TYPE
      case 8: // CTA_PROTO_ICMPV6_TYPE
        if (size !== 1) return false;
        t.icmpType = b[at]!;
        break;
      case 6: // CTA_PROTO_ICMP_CODE
      case 9: // CTA_PROTO_ICMPV6_CODE
        if (size !== 1) return false;
        t.icmpCode = b[at]!;
        break;
    }
    pos += (len + 3) & ~3;
  }
  return true;
}

/** CTA_PROTOINFO: TCP here; SCTP and DCCP fall back. */
function fastProtoinfo(b: Uint8Array, v: DataView, pos: number, end: number, flow: Flow): boolean {
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const len = v.getUint16(pos, true);
    if (len < NLA_HDRLEN || len > end - pos) return false;
    switch (v.getUint16(pos + 2, true) & NLA_TYPE_MASK) {
      case 1: { // CTA_PROTOINFO_TCP
        const tcp = fastTcp(b, v, pos + NLA_HDRLEN, pos + len);
        if (tcp === undefined) return false;
        flow.tcp = tcp;
        break;
      }
      case 2: // CTA_PROTOINFO_DCCP
      case 3: // CTA_PROTOINFO_SCTP
        return false;
    }
    pos += (len + 3) & ~3;
  }
  return true;
}

function fastTcp(b: Uint8Array, v: DataView, pos: number, end: number): TcpInfo | undefined {
  const info: TcpInfo = {
    state: 0,
    stateName: "",
    wscaleOrig: undefined,
    wscaleReply: undefined,
    flagsOrig: undefined,
    flagsReply: undefined,
  };
  let seenState = false;
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return undefined;
    const len = v.getUint16(pos, true);
    if (len < NLA_HDRLEN || len > end - pos) return undefined;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch (v.getUint16(pos + 2, true) & NLA_TYPE_MASK) {
      case 1: // CTA_PROTOINFO_TCP_STATE
        if (size !== 1) return undefined;
        info.state = b[at]!;
        seenState = true;
        break;
      case 2: // CTA_PROTOINFO_TCP_WSCALE_ORIGINAL
        if (size !== 1) return undefined;
        info.wscaleOrig = b[at]!;
        break;
      case 3: // CTA_PROTOINFO_TCP_WSCALE_REPLY
        if (size !== 1) return undefined;
        info.wscaleReply = b[at]!;
        break;
      case 4: // CTA_PROTOINFO_TCP_FLAGS_ORIGINAL
        if (size !== 2) return undefined;
        info.flagsOrig = { flags: b[at]!, mask: b[at + 1]! };
        break;
      case 5: // CTA_PROTOINFO_TCP_FLAGS_REPLY
        if (size !== 2) return undefined;
        info.flagsReply = { flags: b[at]!, mask: b[at + 1]! };
        break;
    }
    pos += (len + 3) & ~3;
  }
  if (!seenState) return undefined;
  info.stateName = stateName(TCP_STATES, info.state);
  return info;
}

/** CTA_COUNTERS_*: the 64-bit counters here; 32-bit ones fall back. */
function fastCounters(v: DataView, pos: number, end: number): Counters | undefined {
  const counters: Counters = { packets: 0n, bytes: 0n };
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return undefined;
    const len = v.getUint16(pos, true);
    if (len < NLA_HDRLEN || len > end - pos) return undefined;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch (v.getUint16(pos + 2, true) & NLA_TYPE_MASK) {
      case 1: // CTA_COUNTERS_PACKETS
        if (size !== 8) return undefined;
        counters.packets = v.getBigUint64(at, false);
        break;
      case 2: // CTA_COUNTERS_BYTES
        if (size !== 8) return undefined;
        counters.bytes = v.getBigUint64(at, false);
        break;
      case 3: // CTA_COUNTERS32_PACKETS
      case 4: // CTA_COUNTERS32_BYTES
        return undefined;
    }
    pos += (len + 3) & ~3;
  }
  return counters;
}

function fastTimestamp(v: DataView, pos: number, end: number, flow: Flow): boolean {
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const len = v.getUint16(pos, true);
    if (len < NLA_HDRLEN || len > end - pos) return false;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch (v.getUint16(pos + 2, true) & NLA_TYPE_MASK) {
      case 1: // CTA_TIMESTAMP_START
        if (size !== 8) return false;
        flow.timestampStart = v.getBigUint64(at, false);
        break;
      case 2: // CTA_TIMESTAMP_STOP
        if (size !== 8) return false;
        flow.timestampStop = v.getBigUint64(at, false);
        break;
    }
    pos += (len + 3) & ~3;
  }
  return true;
}

function fastSynproxy(v: DataView, pos: number, end: number): Synproxy | undefined {
  const s: Synproxy = { isn: 0, its: 0, tsoff: 0 };
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return undefined;
    const len = v.getUint16(pos, true);
    if (len < NLA_HDRLEN || len > end - pos) return undefined;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch (v.getUint16(pos + 2, true) & NLA_TYPE_MASK) {
      case 1: // CTA_SYNPROXY_ISN
        if (size !== 4) return undefined;
        s.isn = v.getUint32(at, false);
        break;
      case 2: // CTA_SYNPROXY_ITS
        if (size !== 4) return undefined;
        s.its = v.getUint32(at, false);
        break;
      case 3: // CTA_SYNPROXY_TSOFF
        if (size !== 4) return undefined;
        s.tsoff = v.getUint32(at, false);
        break;
    }
    pos += (len + 3) & ~3;
  }
  return s;
}

/**
 * Decodes the attributes `[pos, end)` of a common entry of family `af`
 * (AF_INET or AF_INET6); `undefined` when the checked decoder must do it.
 */
function fastFlow(
  b: Uint8Array,
  v: DataView,
  pos: number,
  end: number,
  af: number,
): Flow | undefined {
  const flow = newFlow(af === C.AF_INET ? "ipv4" : "ipv6");
  let orig: Tuple | undefined;
  let reply: Tuple | undefined;
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return undefined;
    const len = v.getUint16(pos, true);
    if (len < NLA_HDRLEN || len > end - pos) return undefined;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch (v.getUint16(pos + 2, true) & NLA_TYPE_MASK) {
      case 1: // CTA_TUPLE_ORIG
        orig = fastTuple(b, v, at, at + size, 0);
        if (orig === undefined) return undefined;
        break;
      case 2: // CTA_TUPLE_REPLY
        reply = fastTuple(b, v, at, at + size, 4);
        if (reply === undefined) return undefined;
        break;
      case 3: // CTA_STATUS
        if (size !== 4) return undefined;
        flow.status = v.getUint32(at, false);
        break;
      case 4: // CTA_PROTOINFO
        if (!fastProtoinfo(b, v, at, at + size, flow)) return undefined;
        break;
      case 7: // CTA_TIMEOUT
        if (size !== 4) return undefined;
        flow.timeout = v.getUint32(at, false);
        break;
      case 8: // CTA_MARK
        if (size !== 4) return undefined;
        flow.mark = v.getUint32(at, false);
        break;
      case 9: { // CTA_COUNTERS_ORIG
        const counters = fastCounters(v, at, at + size);
        if (counters === undefined) return undefined;
        flow.countersOrig = counters;
        break;
      }
      case 10: { // CTA_COUNTERS_REPLY
        const counters = fastCounters(v, at, at + size);
        if (counters === undefined) return undefined;
        flow.countersReply = counters;
        break;
      }
      case 11: // CTA_USE
        if (size !== 4) return undefined;
        flow.use = v.getUint32(at, false);
        break;
      case 12: // CTA_ID
        if (size !== 4) return undefined;
        flow.id = v.getUint32(at, false);
        break;
      case 17: // CTA_SECMARK
        if (size !== 4) return undefined;
        flow.secmark = v.getUint32(at, false);
        break;
      case 18: // CTA_ZONE
        if (size !== 2) return undefined;
        flow.zone = v.getUint16(at, false);
        break;
      case 20: // CTA_TIMESTAMP
        if (!fastTimestamp(v, at, at + size, flow)) return undefined;
        break;
      case 22: // CTA_LABELS
        flow.labels = b.slice(at, at + size);
        break;
      case 23: // CTA_LABELS_MASK
        flow.labelsMask = b.slice(at, at + size);
        break;
      case 24: { // CTA_SYNPROXY
        const synproxy = fastSynproxy(v, at, at + size);
        if (synproxy === undefined) return undefined;
        flow.synproxy = synproxy;
        break;
      }
      case 27: // CTA_TIMESTAMP_EVENT
        if (size !== 8) return undefined;
        flow.timestampEvent = v.getBigUint64(at, false);
        break;
      case 5: // CTA_HELP
      case 6: // CTA_NAT_SRC
      case 13: // CTA_NAT_DST
      case 14: // CTA_TUPLE_MASTER
      case 15: // CTA_SEQ_ADJ_ORIG
      case 16: // CTA_SEQ_ADJ_REPLY
      case 19: // CTA_SECCTX
        return undefined;
    }
    pos += (len + 3) & ~3;
  }
  if (orig === undefined) return undefined;
  orig.src = addressAt(b, 0);
  orig.dst = addressAt(b, 2);
  if (reply === undefined) {
    reply = emptyTuple();
  } else {
    reply.src = replyAddressAt(b, 4, orig);
    reply.dst = replyAddressAt(b, 6, orig);
  }
  flow.orig = orig;
  flow.reply = reply;
  return flow;
}

/**
 * A flow with every key present and nothing decoded yet. Both decoders build
 * flows here, so every flow has the same keys in the same order (one shape
 * for V8, and `deepStrictEqual`-comparable); tests build their flows here too.
 */
export function newFlow(family: Family): Flow {
  return {
    family,
    orig: EMPTY,
    reply: EMPTY,
    master: undefined,
    status: 0,
    timeout: undefined,
    mark: undefined,
    use: undefined,
    id: undefined,
    zone: undefined,
    tcp: undefined,
    sctp: undefined,
    dccp: undefined,
    helper: undefined,
    countersOrig: undefined,
    countersReply: undefined,
    natSrc: undefined,
    natDst: undefined,
    seqAdjOrig: undefined,
    seqAdjReply: undefined,
    secmark: undefined,
    secctx: undefined,
    timestampStart: undefined,
    timestampStop: undefined,
    timestampEvent: undefined,
    labels: undefined,
    labelsMask: undefined,
    synproxy: undefined,
    unknown: undefined,
  };
}

/**
 * Decodes the attributes of a conntrack entry message that starts at
 * `offset` of `bytes` (header already checked: `length` bytes long): the
 * fast path for plain entries, the checked decoder for everything else.
 */
export function decodeFlowAt(
  c: AttrCursor,
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  length: number,
  options?: DecodeOptions,
): Flow {
  if (options?.keepUnknown !== true) {
    const fast = decodeFlowFastAt(bytes, view, offset, length);
    if (fast !== undefined) return fast;
  }
  return decodeFlowCheckedAt(c, bytes, view, offset, length, options);
}

/**
 * The fast path alone: the flow of a plain, well-formed IPv4 or IPv6 entry
 * message, or `undefined` for anything it leaves to
 * {@link decodeFlowCheckedAt}.
 */
export function decodeFlowFastAt(
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  length: number,
): Flow | undefined {
  if (length < ATTRS) return undefined;
  const af = bytes[offset + NLMSG_HDRLEN]!;
  if (af !== C.AF_INET && af !== C.AF_INET6) return undefined;
  return fastFlow(bytes, view, offset + ATTRS, offset + length, af);
}

/**
 * The checked decoder alone: {@link decodeFlowAt} without the fast path.
 * It decodes every attribute ctnl knows and explains every malformation;
 * the fast path is tested against it.
 */
export function decodeFlowCheckedAt(
  c: AttrCursor,
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  length: number,
  options?: DecodeOptions,
): Flow {
  if (length < ATTRS) {
    throw new DecodeError(
      "nfgenmsg",
      offset + NLMSG_HDRLEN,
      `message length ${length} has no nfgenmsg`,
    );
  }
  const af = bytes[offset + NLMSG_HDRLEN]!;
  const flow = newFlow(familyName(af));
  c.reset(bytes, view, offset + ATTRS, offset + length, C.SETS.ct);
  let sawOrig = false, sawReply = false;
  while (c.next()) {
    switch (c.type) {
      case C.CTA_TUPLE_ORIG:
        flow.orig = decodeTuple(c);
        sawOrig = true;
        break;
      case C.CTA_TUPLE_REPLY:
        flow.reply = decodeTuple(c);
        sawReply = true;
        break;
      case C.CTA_TUPLE_MASTER:
        flow.master = decodeTuple(c);
        break;
      case C.CTA_STATUS:
        flow.status = c.u32be();
        break;
      case C.CTA_PROTOINFO:
        decodeProtoinfo(c, flow);
        break;
      case C.CTA_HELP:
        flow.helper = decodeNestedString(c, C.SETS.help, C.CTA_HELP_NAME);
        break;
      case C.CTA_NAT_SRC:
        flow.natSrc = decodeNat(c);
        break;
      case C.CTA_NAT_DST:
        flow.natDst = decodeNat(c);
        break;
      case C.CTA_TIMEOUT:
        flow.timeout = c.u32be();
        break;
      case C.CTA_MARK:
        flow.mark = c.u32be();
        break;
      case C.CTA_COUNTERS_ORIG:
        flow.countersOrig = decodeCounters(c);
        break;
      case C.CTA_COUNTERS_REPLY:
        flow.countersReply = decodeCounters(c);
        break;
      case C.CTA_USE:
        flow.use = c.u32be();
        break;
      case C.CTA_ID:
        flow.id = c.u32be();
        break;
      case C.CTA_SEQ_ADJ_ORIG:
        flow.seqAdjOrig = decodeSeqAdj(c);
        break;
      case C.CTA_SEQ_ADJ_REPLY:
        flow.seqAdjReply = decodeSeqAdj(c);
        break;
      case C.CTA_SECMARK:
        flow.secmark = c.u32be();
        break;
      case C.CTA_ZONE:
        flow.zone = c.u16be();
        break;
      case C.CTA_SECCTX:
        flow.secctx = decodeNestedString(c, C.SETS.secctx, C.CTA_SECCTX_NAME);
        break;
      case C.CTA_TIMESTAMP:
        decodeTimestamp(c, flow);
        break;
      case C.CTA_TIMESTAMP_EVENT:
        flow.timestampEvent = c.u64be();
        break;
      case C.CTA_LABELS:
        flow.labels = c.copy();
        break;
      case C.CTA_LABELS_MASK:
        flow.labelsMask = c.copy();
        break;
      case C.CTA_SYNPROXY:
        flow.synproxy = decodeSynproxy(c);
        break;
      default:
        if (options?.keepUnknown) {
          const raw: RawAttribute = { type: c.type, data: c.copy() };
          (flow.unknown ??= []).push(raw);
        }
    }
  }
  if (!sawOrig) {
    throw new DecodeError("ctattr_type", offset + ATTRS, "entry without CTA_TUPLE_ORIG");
  }
  if (!sawReply) flow.reply = emptyTuple();
  return flow;
}

/**
 * Decodes only the original tuple of a conntrack entry message that starts
 * at `offset` of `bytes` (header already checked: `length` bytes long), for
 * callers that need nothing else.
 */
export function decodeTupleOnlyAt(
  c: AttrCursor,
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  length: number,
): Tuple {
  if (length < ATTRS) {
    throw new DecodeError(
      "nfgenmsg",
      offset + NLMSG_HDRLEN,
      `message length ${length} has no nfgenmsg`,
    );
  }
  c.reset(bytes, view, offset + ATTRS, offset + length, C.SETS.ct);
  while (c.next()) {
    if (c.type === C.CTA_TUPLE_ORIG) return decodeTuple(c);
  }
  throw new DecodeError("ctattr_type", offset + ATTRS, "entry without CTA_TUPLE_ORIG");
}

/**
 * Decodes one conntrack entry message (`nlmsghdr` + `nfgenmsg` + attributes,
 * as the kernel sends in dumps, gets and events) into a {@link Flow}.
 *
 * @example Decode captured bytes
 * ```ts
 * import { decodeFlow, DecodeError } from "@ctnl/conntrack";
 * import { throws as assertThrows } from "node:assert/strict";
 *
 * // A header that promises 40 bytes where there are only 20.
 * const bad = new Uint8Array(20);
 * new DataView(bad.buffer).setUint32(0, 40, true);
 * assertThrows(() => decodeFlow(bad), DecodeError);
 * ```
 */
export function decodeFlow(message: Uint8Array, options?: DecodeOptions): Flow {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const header = newHeader();
  readHeader(view, 0, message.byteLength, header);
  return decodeFlowAt(new AttrCursor(), message, view, 0, header.length, options);
}

/** Decodes a per-CPU stats message (`IPCTNL_MSG_CT_GET_STATS_CPU` reply). */
export function decodeCpuStatsAt(
  c: AttrCursor,
  bytes: Uint8Array,
  view: DataView,
  header: MessageHeader,
): CpuStats {
  if (header.length < ATTRS) {
    throw new DecodeError("nfgenmsg", header.offset + NLMSG_HDRLEN, "message has no nfgenmsg");
  }
  const s: CpuStats = {
    cpu: view.getUint16(header.offset + NLMSG_HDRLEN + 2, false),
    searched: undefined,
    found: undefined,
    new: undefined,
    invalid: undefined,
    ignore: undefined,
    delete: undefined,
    deleteList: undefined,
    insert: undefined,
    insertFailed: undefined,
    drop: undefined,
    earlyDrop: undefined,
    error: undefined,
    searchRestart: undefined,
    clashResolve: undefined,
    chainTooLong: undefined,
  };
  c.reset(bytes, view, header.offset + ATTRS, header.offset + header.length, C.SETS.statsCpu);
  while (c.next()) {
    const key = CPU_STATS_KEYS[c.type];
    if (key !== undefined) s[key] = c.u32be();
  }
  return s;
}

/** {@link CpuStats} keys by `CTA_STATS_*` number. */
export const CPU_STATS_KEYS: readonly (Exclude<keyof CpuStats, "cpu"> | undefined)[] = [
  undefined,
  "searched",
  "found",
  "new",
  "invalid",
  "ignore",
  "delete",
  "deleteList",
  "insert",
  "insertFailed",
  "drop",
  "earlyDrop",
  "error",
  "searchRestart",
  "clashResolve",
  "chainTooLong",
];

/** Decodes a global stats message (`IPCTNL_MSG_CT_GET_STATS` reply). */
export function decodeGlobalStatsAt(
  c: AttrCursor,
  bytes: Uint8Array,
  view: DataView,
  header: MessageHeader,
): GlobalStats {
  let entries: number | undefined;
  let maxEntries: number | undefined;
  c.reset(bytes, view, header.offset + ATTRS, header.offset + header.length, C.SETS.statsGlobal);
  while (c.next()) {
    if (c.type === C.CTA_STATS_GLOBAL_ENTRIES) entries = c.u32be();
    else if (c.type === C.CTA_STATS_GLOBAL_MAX_ENTRIES) maxEntries = c.u32be();
  }
  if (entries === undefined) {
    throw new DecodeError(
      "ctattr_stats_global",
      header.offset + ATTRS,
      "no CTA_STATS_GLOBAL_ENTRIES",
    );
  }
  return { entries, maxEntries };
}
