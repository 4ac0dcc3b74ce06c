/**
 * The fast path of the flow decoder.
 *
 * A dump is almost all plain entries: tuples, status, timeout, mark, use, id,
 * TCP state, and counters or timestamps when enabled. {@link decodeFlowFastAt}
 * builds their `Flow` from the attribute walk of src/scan.ts — the same walk
 * the transcoder (src/transcode.ts) writes text from, so the two take the
 * same entries and read the same fields. The walk checks every length like
 * the cursor does, but instead of explaining a problem it returns false, as
 * it does for the entries it leaves to the checked decoder of src/decode.ts
 * (NAT, helpers, sequence adjustment, security context, master tuple, SCTP,
 * DCCP, 32-bit counters, `keepUnknown`). The checked decoder is the
 * reference: it decodes those, or throws the DecodeError with the path.
 * tests/unit/decode_paths_test.ts checks that the two agree, on captured
 * dumps and on mutations of them.
 *
 * @module
 */

import { formatIPv4, formatIPv6 } from "./address.ts";
import * as C from "./constants.ts";
import { newFlow, newTcpInfo } from "./flow.ts";
import { stateName, TCP_STATES } from "./protocols.ts";
import * as S from "./scan.ts";
import { emptyTuple } from "./tuple.ts";
import type { Counters, Flow, Tuple } from "./types.ts";

/** The slots of the entry being decoded (one walk at a time: decoding is synchronous). */
const SLOTS = new Int32Array(S.SLOTS);

/** The text of the address whose slot is `i`, `undefined` if absent. */
function addressAt(b: Uint8Array, i: number): string | undefined {
  const at = SLOTS[i]!;
  if (at < 0) return undefined;
  return SLOTS[i + 1] === 4 ? formatIPv4(b, at) : formatIPv6(b, at);
}

/**
 * The text of the reply address whose slot is `i`, shared with the original
 * tuple's string when the bytes are equal (a flow's reply addresses are its
 * original ones swapped, unless NAT changed them): half the strings to build
 * and to collect.
 */
function replyAddressAt(b: Uint8Array, i: number, orig: Tuple): string | undefined {
  const at = SLOTS[i]!;
  if (at < 0) return undefined;
  const size = SLOTS[i + 1]!;
  const od = S.ORIG + S.T_DST, os = S.ORIG + S.T_SRC;
  if (SLOTS[od]! >= 0 && SLOTS[od + 1] === size && sameBytes(b, at, SLOTS[od]!, size)) {
    return orig.dst;
  }
  if (SLOTS[os]! >= 0 && SLOTS[os + 1] === size && sameBytes(b, at, SLOTS[os]!, size)) {
    return orig.src;
  }
  return size === 4 ? formatIPv4(b, at) : formatIPv6(b, at);
}

function sameBytes(b: Uint8Array, x: number, y: number, size: number): boolean {
  for (let i = 0; i < size; i++) if (b[x + i] !== b[y + i]) return false;
  return true;
}

/** The tuple at slot `base`, its addresses left to the caller. */
function tupleAt(b: Uint8Array, v: DataView, base: number): Tuple {
  const t = emptyTuple();
  let at = SLOTS[base + S.T_PROTO]!;
  if (at >= 0) t.protocol = b[at]!;
  if ((at = SLOTS[base + S.T_SPORT]!) >= 0) t.srcPort = v.getUint16(at, false);
  if ((at = SLOTS[base + S.T_DPORT]!) >= 0) t.dstPort = v.getUint16(at, false);
  if ((at = SLOTS[base + S.T_ICMP_ID]!) >= 0) t.icmpId = v.getUint16(at, false);
  if ((at = SLOTS[base + S.T_ICMP_TYPE]!) >= 0) t.icmpType = b[at]!;
  if ((at = SLOTS[base + S.T_ICMP_CODE]!) >= 0) t.icmpCode = b[at]!;
  if ((at = SLOTS[base + S.T_ZONE]!) >= 0) t.zone = v.getUint16(at, false);
  return t;
}

function u32(v: DataView, slot: number): number | undefined {
  const at = SLOTS[slot]!;
  return at < 0 ? undefined : v.getUint32(at, false);
}

function u64(v: DataView, slot: number): bigint | undefined {
  const at = SLOTS[slot]!;
  return at < 0 ? undefined : v.getBigUint64(at, false);
}

function counters(v: DataView, base: number): Counters | undefined {
  if (SLOTS[base]! < 0) return undefined;
  return { packets: u64(v, base + 1) ?? 0n, bytes: u64(v, base + 2) ?? 0n };
}

/** The flow of the slots {@link S.scanEntry} filled. */
function flowOfSlots(b: Uint8Array, v: DataView): Flow {
  const flow = newFlow(SLOTS[S.S_FAMILY] === C.AF_INET ? "ipv4" : "ipv6");
  const orig = tupleAt(b, v, S.ORIG);
  orig.src = addressAt(b, S.ORIG + S.T_SRC);
  orig.dst = addressAt(b, S.ORIG + S.T_DST);
  let reply: Tuple;
  if (SLOTS[S.REPLY + S.T_PRESENT]! < 0) {
    reply = emptyTuple();
  } else {
    reply = tupleAt(b, v, S.REPLY);
    reply.src = replyAddressAt(b, S.REPLY + S.T_SRC, orig);
    reply.dst = replyAddressAt(b, S.REPLY + S.T_DST, orig);
  }
  flow.orig = orig;
  flow.reply = reply;
  let at = SLOTS[S.S_STATUS]!;
  if (at >= 0) flow.status = v.getUint32(at, false);
  flow.timeout = u32(v, S.S_TIMEOUT);
  flow.mark = u32(v, S.S_MARK);
  flow.use = u32(v, S.S_USE);
  flow.id = u32(v, S.S_ID);
  flow.secmark = u32(v, S.S_SECMARK);
  if ((at = SLOTS[S.S_ZONE]!) >= 0) flow.zone = v.getUint16(at, false);
  if (SLOTS[S.S_TCP]! >= 0) {
    const info = newTcpInfo();
    info.state = b[SLOTS[S.S_TCP_STATE]!]!;
    if ((at = SLOTS[S.S_TCP_WSCALE_ORIG]!) >= 0) info.wscaleOrig = b[at]!;
    if ((at = SLOTS[S.S_TCP_WSCALE_REPLY]!) >= 0) info.wscaleReply = b[at]!;
    if ((at = SLOTS[S.S_TCP_FLAGS_ORIG]!) >= 0) {
      info.flagsOrig = { flags: b[at]!, mask: b[at + 1]! };
    }
    if ((at = SLOTS[S.S_TCP_FLAGS_REPLY]!) >= 0) {
      info.flagsReply = { flags: b[at]!, mask: b[at + 1]! };
    }
    info.stateName = stateName(TCP_STATES, info.state);
    flow.tcp = info;
  }
  flow.countersOrig = counters(v, S.S_COUNTERS_ORIG);
  flow.countersReply = counters(v, S.S_COUNTERS_REPLY);
  flow.timestampStart = u64(v, S.S_TIMESTAMP_START);
  flow.timestampStop = u64(v, S.S_TIMESTAMP_STOP);
  if ((at = SLOTS[S.S_LABELS]!) >= 0) flow.labels = b.slice(at, at + SLOTS[S.S_LABELS_LEN]!);
  if ((at = SLOTS[S.S_LABELS_MASK]!) >= 0) {
    flow.labelsMask = b.slice(at, at + SLOTS[S.S_LABELS_MASK_LEN]!);
  }
  if (SLOTS[S.S_SYNPROXY]! >= 0) {
    flow.synproxy = {
      isn: u32(v, S.S_SYNPROXY_ISN) ?? 0,
      its: u32(v, S.S_SYNPROXY_ITS) ?? 0,
      tsoff: u32(v, S.S_SYNPROXY_TSOFF) ?? 0,
    };
  }
  flow.timestampEvent = u64(v, S.S_TIMESTAMP_EVENT);
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
  return S.scanEntry(bytes, view, offset, length, SLOTS) ? flowOfSlots(bytes, view) : undefined;
}
