/**
 * The fast path of the flow decoder.
 *
 * A dump is almost all plain entries: tuples, status, timeout, mark, use, id,
 * TCP state, and counters or timestamps when enabled. {@link decodeFlowFastAt}
 * decodes those with local offsets, a `switch` on literal attribute numbers
 * per level (V8 turns it into a jump table) and nothing stored between
 * attributes: 1.8× the checked decoder's speed on the benchmark's entries,
 * and it allocates less (see bench/decode_bench.ts). It checks every length
 * like the cursor does, but instead of explaining a problem it returns
 * `undefined`, as it does for the entries it leaves to the checked decoder of
 * src/decode.ts (NAT, helpers, sequence adjustment, security context, master
 * tuple, SCTP, DCCP, 32-bit counters, `keepUnknown`). The checked decoder is
 * the reference: it decodes those, or throws the DecodeError with the path.
 * tests/unit/decode_paths_test.ts checks that the two agree, on captured dumps and
 * on mutations of them.
 *
 * @module
 */

import { formatIPv4, formatIPv6 } from "./address.ts";
import * as C from "./constants.ts";
import { newFlow, newTcpInfo } from "./flow.ts";
import { NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN } from "./netlink.ts";
import { stateName, TCP_STATES } from "./protocols.ts";
import { emptyTuple } from "./tuple.ts";
import type { Counters, Flow, Synproxy, TcpInfo, Tuple } from "./types.ts";

/** Offset of the attributes after `nlmsghdr` + `nfgenmsg`. */
const ATTRS = NLMSG_HDRLEN + 4;

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
  const info = newTcpInfo();
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
