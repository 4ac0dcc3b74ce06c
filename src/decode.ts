/**
 * The conntrack decoder: one `IPCTNL_MSG_CT_NEW` message → one {@link Flow},
 * one stats message → {@link CpuStats} / {@link GlobalStats}. Reads in place
 * with one {@link AttrCursor}; copies only what the flow keeps.
 *
 * @module
 */

import { formatIPv4, formatIPv6 } from "./address.ts";
import * as C from "./constants.ts";
import { DCCP_STATES, SCTP_STATES, stateName, TCP_STATES } from "./protocols.ts";
import { decodeFlowFastAt } from "./decode_fast.ts";
import { newFlow, newTcpInfo } from "./flow.ts";
import { decodeTuple, emptyTuple } from "./tuple.ts";
import { DecodeError } from "./errors.ts";
import { AttrCursor, newHeader, NLMSG_HDRLEN, readHeader } from "./netlink.ts";
import type {
  Counters,
  DccpInfo,
  Family,
  Flow,
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

/**
 * The family in the `nfgenmsg` of the message at `offset` (`length` bytes
 * long), which must have one: of a flow, of an expectation.
 */
export function messageFamily(bytes: Uint8Array, offset: number, length: number): Family {
  if (length < ATTRS) {
    throw new DecodeError(
      "nfgenmsg",
      offset + NLMSG_HDRLEN,
      `message length ${length} has no nfgenmsg`,
    );
  }
  return familyName(bytes[offset + NLMSG_HDRLEN]!);
}

/** What decodes one message in place (a flow, an expectation). */
export type DecodeAt<T> = (
  c: AttrCursor,
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  length: number,
  options?: DecodeOptions,
) => T;

/** Decodes a whole message (its header read and checked first) with `decodeAt`. */
export function decodeWhole<T>(
  message: Uint8Array,
  decodeAt: DecodeAt<T>,
  options?: DecodeOptions,
): T {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const header = newHeader();
  readHeader(view, 0, message.byteLength, header);
  return decodeAt(new AttrCursor(), message, view, 0, header.length, options);
}

function decodeTcp(c: AttrCursor): TcpInfo {
  const info = newTcpInfo();
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
  const flow = newFlow(messageFamily(bytes, offset, length));
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
  return decodeWhole(message, decodeFlowAt, options);
}

export { newFlow };
