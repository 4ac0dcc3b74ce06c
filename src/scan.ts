/**
 * THE attribute walk of a plain conntrack entry message, shared by the fast
 * decoder (src/decode_fast.ts builds a `Flow` from it) and the transcoder
 * (src/transcode.ts writes the text straight from the bytes): it records
 * where each field's payload is — an offset into the message, -1 when
 * absent — in one reused `Int32Array`, and nothing else. Every length is
 * checked as the cursor checks it; an entry it does not take (NAT, helpers,
 * sequence adjustment, security context, master tuple, SCTP, DCCP, 32-bit
 * counters, a malformed attribute) makes it return false, and the caller
 * uses the checked decoder of src/decode.ts. Since both users read the same
 * slots, they take the same entries and see the same fields.
 *
 * For speed, the layouts the kernel writes for nearly every entry — a TCP
 * or UDP tuple, TCP's protoinfo, synproxy — are recognised by comparing
 * their attribute headers (length and type, as one u32 each) with the
 * kernel's, and their slots set in one go; any other layout, however
 * slightly different, is walked attribute by attribute, to the same slots.
 *
 * @module
 */

import * as C from "./constants.ts";
import { NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN } from "./netlink.ts";

/** Offset of the attributes after `nlmsghdr` + `nfgenmsg`. */
export const ATTRS = NLMSG_HDRLEN + 4;

// One tuple's slots, at ORIG or REPLY.
/** The tuple nest was there. */
export const T_PRESENT = 0;
/** Source address payload (its length at T_SRC_LEN: 4 or 16). */
export const T_SRC = 1;
export const T_SRC_LEN = 2;
export const T_DST = 3;
export const T_DST_LEN = 4;
export const T_PROTO = 5;
export const T_SPORT = 6;
export const T_DPORT = 7;
export const T_ICMP_ID = 8;
export const T_ICMP_TYPE = 9;
export const T_ICMP_CODE = 10;
export const T_ZONE = 11;
const TUPLE_SLOTS = 12;

/** Where the original tuple's slots start. */
export const ORIG = 0;
/** Where the reply tuple's slots start. */
export const REPLY = TUPLE_SLOTS;

const F = 2 * TUPLE_SLOTS;
export const S_STATUS = F;
export const S_TIMEOUT = F + 1;
export const S_MARK = F + 2;
export const S_USE = F + 3;
export const S_ID = F + 4;
export const S_SECMARK = F + 5;
export const S_ZONE = F + 6;
/** CTA_PROTOINFO_TCP (with a state) was there. */
export const S_TCP = F + 7;
export const S_TCP_STATE = F + 8;
export const S_TCP_WSCALE_ORIG = F + 9;
export const S_TCP_WSCALE_REPLY = F + 10;
export const S_TCP_FLAGS_ORIG = F + 11;
export const S_TCP_FLAGS_REPLY = F + 12;
/** CTA_COUNTERS_ORIG was there (its packets and bytes, 64-bit, at the next two). */
export const S_COUNTERS_ORIG = F + 13;
export const S_COUNTERS_ORIG_PACKETS = F + 14;
export const S_COUNTERS_ORIG_BYTES = F + 15;
export const S_COUNTERS_REPLY = F + 16;
export const S_COUNTERS_REPLY_PACKETS = F + 17;
export const S_COUNTERS_REPLY_BYTES = F + 18;
export const S_TIMESTAMP_START = F + 19;
export const S_TIMESTAMP_STOP = F + 20;
export const S_LABELS = F + 21;
export const S_LABELS_LEN = F + 22;
export const S_LABELS_MASK = F + 23;
export const S_LABELS_MASK_LEN = F + 24;
export const S_SYNPROXY = F + 25;
export const S_SYNPROXY_ISN = F + 26;
export const S_SYNPROXY_ITS = F + 27;
export const S_SYNPROXY_TSOFF = F + 28;
export const S_TIMESTAMP_EVENT = F + 29;
/** The message's family (AF_INET or AF_INET6). */
export const S_FAMILY = F + 30;
/** How many slots a scan fills. */
export const SLOTS = F + 31;

const UNSET = new Int32Array(SLOTS).fill(-1);

/**
 * Walks the entry message at `offset` (`length` bytes) into `slots`; false
 * when the checked decoder must take it.
 */
export function scanEntry(
  b: Uint8Array,
  v: DataView,
  offset: number,
  length: number,
  slots: Int32Array,
): boolean {
  if (length < ATTRS) return false;
  const af = b[offset + NLMSG_HDRLEN]!;
  if (af !== C.AF_INET && af !== C.AF_INET6) return false;
  slots.set(UNSET);
  slots[S_FAMILY] = af;
  let pos = offset + ATTRS;
  const end = offset + length;
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const header = v.getUint32(pos, true), len = header & 0xffff;
    if (len < NLA_HDRLEN || len > end - pos) return false;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch ((header >>> 16) & NLA_TYPE_MASK) {
      case 1: // CTA_TUPLE_ORIG
        if (!scanTuple(v, at, at + size, slots, ORIG)) return false;
        break;
      case 2: // CTA_TUPLE_REPLY
        if (!scanTuple(v, at, at + size, slots, REPLY)) return false;
        break;
      case 3: // CTA_STATUS
        if (size !== 4) return false;
        slots[S_STATUS] = at;
        break;
      case 4: // CTA_PROTOINFO
        if (!scanProtoinfo(v, at, at + size, slots)) return false;
        break;
      case 7: // CTA_TIMEOUT
        if (size !== 4) return false;
        slots[S_TIMEOUT] = at;
        break;
      case 8: // CTA_MARK
        if (size !== 4) return false;
        slots[S_MARK] = at;
        break;
      case 9: // CTA_COUNTERS_ORIG
        if (!scanCounters(v, at, at + size, slots, S_COUNTERS_ORIG)) return false;
        break;
      case 10: // CTA_COUNTERS_REPLY
        if (!scanCounters(v, at, at + size, slots, S_COUNTERS_REPLY)) return false;
        break;
      case 11: // CTA_USE
        if (size !== 4) return false;
        slots[S_USE] = at;
        break;
      case 12: // CTA_ID
        if (size !== 4) return false;
        slots[S_ID] = at;
        break;
      case 17: // CTA_SECMARK
        if (size !== 4) return false;
        slots[S_SECMARK] = at;
        break;
      case 18: // CTA_ZONE
        if (size !== 2) return false;
        slots[S_ZONE] = at;
        break;
      case 20: // CTA_TIMESTAMP
        if (!scanTimestamp(v, at, at + size, slots)) return false;
        break;
      case 22: // CTA_LABELS
        slots[S_LABELS] = at;
        slots[S_LABELS_LEN] = size;
        break;
      case 23: // CTA_LABELS_MASK
        slots[S_LABELS_MASK] = at;
        slots[S_LABELS_MASK_LEN] = size;
        break;
      case 24: // CTA_SYNPROXY
        if (!scanSynproxy(v, at, at + size, slots)) return false;
        break;
      case 27: // CTA_TIMESTAMP_EVENT
        if (size !== 8) return false;
        slots[S_TIMESTAMP_EVENT] = at;
        break;
      case 5: // CTA_HELP
      case 6: // CTA_NAT_SRC
      case 13: // CTA_NAT_DST
      case 14: // CTA_TUPLE_MASTER
      case 15: // CTA_SEQ_ADJ_ORIG
      case 16: // CTA_SEQ_ADJ_REPLY
      case 19: // CTA_SECCTX
        return false;
    }
    pos += (len + 3) & ~3;
  }
  return slots[ORIG + T_PRESENT]! >= 0;
}

// Attribute headers as one little-endian u32 (length | type << 16), for
// the layout the kernel gives a TCP or UDP tuple (ctnetlink_dump_tuples):
// CTA_TUPLE_IP {src, dst}, CTA_TUPLE_PROTO {num, sport, dport}.
const TUPLE4_IP = 0x80010014; // CTA_TUPLE_IP, nested, 20 bytes
const TUPLE6_IP = 0x8001002c; // CTA_TUPLE_IP, nested, 44 bytes
const V4_SRC = 0x00010008, V4_DST = 0x00020008;
const V6_SRC = 0x00030014, V6_DST = 0x00040014;
const TUPLE_PROTO = 0x8002001c; // CTA_TUPLE_PROTO, nested, 28 bytes
const PROTO_NUM = 0x00010005, PROTO_SPORT = 0x00020006, PROTO_DPORT = 0x00030006;

/**
 * The tuple nest's payload `[pos, end)` if it is the kernel's layout of a
 * TCP or UDP tuple (IPv4 or IPv6): its slots, and true — what the loop of
 * {@link scanTuple} would make of it, in one go; false (the loop's to take)
 * for anything else.
 */
function kernelTuple(
  v: DataView,
  pos: number,
  end: number,
  slots: Int32Array,
  base: number,
): boolean {
  const size = end - pos === 48 ? 4 : end - pos === 72 ? 16 : 0; // the address size
  if (
    size === 0 || v.getUint32(pos, true) !== (size === 4 ? TUPLE4_IP : TUPLE6_IP) ||
    v.getUint32(pos + 4, true) !== (size === 4 ? V4_SRC : V6_SRC) ||
    v.getUint32(pos + 8 + size, true) !== (size === 4 ? V4_DST : V6_DST) ||
    !layer4(v, pos + 12 + 2 * size, slots, base)
  ) return false;
  slots[base + T_SRC] = pos + 8;
  slots[base + T_SRC_LEN] = size;
  slots[base + T_DST] = pos + 12 + size;
  slots[base + T_DST_LEN] = size;
  return true;
}

/**
 * The CTA_TUPLE_PROTO nest at `pos` if it is {num, sport, dport} (28 bytes):
 * their slots, and true; false (nothing set) for the loop to take.
 */
function layer4(v: DataView, pos: number, slots: Int32Array, base: number): boolean {
  if (
    v.getUint32(pos, true) !== TUPLE_PROTO || v.getUint32(pos + 4, true) !== PROTO_NUM ||
    v.getUint32(pos + 12, true) !== PROTO_SPORT || v.getUint32(pos + 20, true) !== PROTO_DPORT
  ) return false;
  slots[base + T_PROTO] = pos + 8;
  slots[base + T_SPORT] = pos + 16;
  slots[base + T_DPORT] = pos + 24;
  return true;
}

/** A CTA_TUPLE_* nest's payload `[pos, end)` into the tuple slots at `base` (a repeated nest replaces). */
function scanTuple(
  v: DataView,
  pos: number,
  end: number,
  slots: Int32Array,
  base: number,
): boolean {
  if (slots[base + T_PRESENT]! >= 0) slots.fill(-1, base, base + TUPLE_SLOTS); // repeated: replaces
  slots[base + T_PRESENT] = pos;
  if (kernelTuple(v, pos, end, slots, base)) return true;
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const header = v.getUint32(pos, true), len = header & 0xffff;
    if (len < NLA_HDRLEN || len > end - pos) return false;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch ((header >>> 16) & NLA_TYPE_MASK) {
      case 1: // CTA_TUPLE_IP
        if (!scanIp(v, at, at + size, slots, base)) return false;
        break;
      case 2: // CTA_TUPLE_PROTO
        if (!scanProto(v, at, at + size, slots, base)) return false;
        break;
      case 3: // CTA_TUPLE_ZONE
        if (size !== 2) return false;
        slots[base + T_ZONE] = at;
        break;
    }
    pos += (len + 3) & ~3;
  }
  return true;
}

function scanIp(v: DataView, pos: number, end: number, slots: Int32Array, base: number): boolean {
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const header = v.getUint32(pos, true), len = header & 0xffff;
    if (len < NLA_HDRLEN || len > end - pos) return false;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    const type = (header >>> 16) & NLA_TYPE_MASK;
    switch (type) {
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
    // src (odd types), dst (even types)
    const i = base + ((type & 1) === 1 ? T_SRC : T_DST);
    slots[i] = at;
    slots[i + 1] = size;
    pos += (len + 3) & ~3;
  }
  return true;
}

function scanProto(
  v: DataView,
  pos: number,
  end: number,
  slots: Int32Array,
  base: number,
): boolean {
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const header = v.getUint32(pos, true), len = header & 0xffff;
    if (len < NLA_HDRLEN || len > end - pos) return false;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch ((header >>> 16) & NLA_TYPE_MASK) {
      case 1: // CTA_PROTO_NUM
        if (size !== 1) return false;
        slots[base + T_PROTO] = at;
        break;
      case 2: // CTA_PROTO_SRC_PORT
        if (size !== 2) return false;
        slots[base + T_SPORT] = at;
        break;
      case 3: // CTA_PROTO_DST_PORT
        if (size !== 2) return false;
        slots[base + T_DPORT] = at;
        break;
      case 4: // CTA_PROTO_ICMP_ID
      case 7: // CTA_PROTO_ICMPV6_ID
        if (size !== 2) return false;
        slots[base + T_ICMP_ID] = at;
        break;
      case 5: // CTA_PROTO_ICMP_TYPE
      case 8: // CTA_PROTO_ICMPV6_TYPE
        if (size !== 1) return false;
        slots[base + T_ICMP_TYPE] = at;
        break;
      case 6: // CTA_PROTO_ICMP_CODE
      case 9: // CTA_PROTO_ICMPV6_CODE
        if (size !== 1) return false;
        slots[base + T_ICMP_CODE] = at;
        break;
    }
    pos += (len + 3) & ~3;
  }
  return true;
}

// CTA_PROTOINFO_TCP (nested, 44 bytes) as the kernel writes it: state,
// window scales (u8 each), flags (struct nf_ct_tcp_flags, 2 bytes each).
const PROTOINFO_TCP = 0x8001002c;
const TCP_STATE = 0x00010005, TCP_WSCALE_ORIG = 0x00020005, TCP_WSCALE_REPLY = 0x00030005;
const TCP_FLAGS_ORIG = 0x00040006, TCP_FLAGS_REPLY = 0x00050006;

/** CTA_PROTOINFO: TCP here; SCTP and DCCP fall back. */
function scanProtoinfo(v: DataView, pos: number, end: number, slots: Int32Array): boolean {
  if (
    end - pos === 44 && v.getUint32(pos, true) === PROTOINFO_TCP &&
    v.getUint32(pos + 4, true) === TCP_STATE && v.getUint32(pos + 12, true) === TCP_WSCALE_ORIG &&
    v.getUint32(pos + 20, true) === TCP_WSCALE_REPLY &&
    v.getUint32(pos + 28, true) === TCP_FLAGS_ORIG &&
    v.getUint32(pos + 36, true) === TCP_FLAGS_REPLY
  ) {
    // The kernel's layout (ctnetlink_dump_protoinfo's tcp_to_nlattr): what the loops make of it.
    slots[S_TCP] = pos + 4;
    slots[S_TCP_STATE] = pos + 8;
    slots[S_TCP_WSCALE_ORIG] = pos + 16;
    slots[S_TCP_WSCALE_REPLY] = pos + 24;
    slots[S_TCP_FLAGS_ORIG] = pos + 32;
    slots[S_TCP_FLAGS_REPLY] = pos + 40;
    return true;
  }
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const header = v.getUint32(pos, true), len = header & 0xffff;
    if (len < NLA_HDRLEN || len > end - pos) return false;
    switch ((header >>> 16) & NLA_TYPE_MASK) {
      case 1: // CTA_PROTOINFO_TCP
        if (!scanTcp(v, pos + NLA_HDRLEN, pos + len, slots)) return false;
        break;
      case 2: // CTA_PROTOINFO_DCCP
      case 3: // CTA_PROTOINFO_SCTP
        return false;
    }
    pos += (len + 3) & ~3;
  }
  return true;
}

function scanTcp(v: DataView, pos: number, end: number, slots: Int32Array): boolean {
  slots.fill(-1, S_TCP, S_TCP_FLAGS_REPLY + 1); // a repeated nest replaces
  slots[S_TCP] = pos;
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const header = v.getUint32(pos, true), len = header & 0xffff;
    if (len < NLA_HDRLEN || len > end - pos) return false;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch ((header >>> 16) & NLA_TYPE_MASK) {
      case 1: // CTA_PROTOINFO_TCP_STATE
        if (size !== 1) return false;
        slots[S_TCP_STATE] = at;
        break;
      case 2: // CTA_PROTOINFO_TCP_WSCALE_ORIGINAL
        if (size !== 1) return false;
        slots[S_TCP_WSCALE_ORIG] = at;
        break;
      case 3: // CTA_PROTOINFO_TCP_WSCALE_REPLY
        if (size !== 1) return false;
        slots[S_TCP_WSCALE_REPLY] = at;
        break;
      case 4: // CTA_PROTOINFO_TCP_FLAGS_ORIGINAL
        if (size !== 2) return false;
        slots[S_TCP_FLAGS_ORIG] = at;
        break;
      case 5: // CTA_PROTOINFO_TCP_FLAGS_REPLY
        if (size !== 2) return false;
        slots[S_TCP_FLAGS_REPLY] = at;
        break;
    }
    pos += (len + 3) & ~3;
  }
  return slots[S_TCP_STATE]! >= 0;
}

/** CTA_COUNTERS_* at `base` (present, packets, bytes): 64-bit here; 32-bit ones fall back. */
function scanCounters(
  v: DataView,
  pos: number,
  end: number,
  slots: Int32Array,
  base: number,
): boolean {
  slots[base] = pos;
  slots[base + 1] = -1;
  slots[base + 2] = -1;
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const header = v.getUint32(pos, true), len = header & 0xffff;
    if (len < NLA_HDRLEN || len > end - pos) return false;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch ((header >>> 16) & NLA_TYPE_MASK) {
      case 1: // CTA_COUNTERS_PACKETS
        if (size !== 8) return false;
        slots[base + 1] = at;
        break;
      case 2: // CTA_COUNTERS_BYTES
        if (size !== 8) return false;
        slots[base + 2] = at;
        break;
      case 3: // CTA_COUNTERS32_PACKETS
      case 4: // CTA_COUNTERS32_BYTES
        return false;
    }
    pos += (len + 3) & ~3;
  }
  return true;
}

/** CTA_TIMESTAMP: start and stop (a repeated nest keeps what the earlier one gave). */
function scanTimestamp(v: DataView, pos: number, end: number, slots: Int32Array): boolean {
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const header = v.getUint32(pos, true), len = header & 0xffff;
    if (len < NLA_HDRLEN || len > end - pos) return false;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch ((header >>> 16) & NLA_TYPE_MASK) {
      case 1: // CTA_TIMESTAMP_START
        if (size !== 8) return false;
        slots[S_TIMESTAMP_START] = at;
        break;
      case 2: // CTA_TIMESTAMP_STOP
        if (size !== 8) return false;
        slots[S_TIMESTAMP_STOP] = at;
        break;
    }
    pos += (len + 3) & ~3;
  }
  return true;
}

// CTA_SYNPROXY's attributes as the kernel writes them (u32 each).
const SYNPROXY_ISN = 0x00010008, SYNPROXY_ITS = 0x00020008, SYNPROXY_TSOFF = 0x00030008;

function scanSynproxy(v: DataView, pos: number, end: number, slots: Int32Array): boolean {
  slots[S_SYNPROXY] = pos;
  if (
    end - pos === 24 && v.getUint32(pos, true) === SYNPROXY_ISN &&
    v.getUint32(pos + 8, true) === SYNPROXY_ITS && v.getUint32(pos + 16, true) === SYNPROXY_TSOFF
  ) {
    // The kernel's layout (isn, its, tsoff): what the loop makes of it.
    slots[S_SYNPROXY_ISN] = pos + 4;
    slots[S_SYNPROXY_ITS] = pos + 12;
    slots[S_SYNPROXY_TSOFF] = pos + 20;
    return true;
  }
  slots[S_SYNPROXY_ISN] = -1;
  slots[S_SYNPROXY_ITS] = -1;
  slots[S_SYNPROXY_TSOFF] = -1;
  while (pos < end) {
    if (end - pos < NLA_HDRLEN) return false;
    const header = v.getUint32(pos, true), len = header & 0xffff;
    if (len < NLA_HDRLEN || len > end - pos) return false;
    const at = pos + NLA_HDRLEN, size = len - NLA_HDRLEN;
    switch ((header >>> 16) & NLA_TYPE_MASK) {
      case 1: // CTA_SYNPROXY_ISN
        if (size !== 4) return false;
        slots[S_SYNPROXY_ISN] = at;
        break;
      case 2: // CTA_SYNPROXY_ITS
        if (size !== 4) return false;
        slots[S_SYNPROXY_ITS] = at;
        break;
      case 3: // CTA_SYNPROXY_TSOFF
        if (size !== 4) return false;
        slots[S_SYNPROXY_TSOFF] = at;
        break;
    }
    pos += (len + 3) & ~3;
  }
  return true;
}

/** The u8, u16 or u32 (big-endian) that slot `i` of `s` points at, or undefined when absent. */
export function slotValue(
  b: Uint8Array,
  v: DataView,
  s: Int32Array,
  i: number,
  size: 1 | 2 | 4,
): number | undefined {
  const at = s[i]!;
  if (at < 0) return undefined;
  return size === 1 ? b[at]! : size === 2 ? v.getUint16(at, false) : v.getUint32(at, false);
}
