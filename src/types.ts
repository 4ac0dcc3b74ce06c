/**
 * The conntrack domain types: {@link Flow}, {@link Tuple} and the pieces a
 * flow is made of. Every decoded object has all of its keys; what the kernel
 * did not send is `undefined`.
 *
 * @module
 */

/** Address family of a flow.
 *
 * @example
 * ```ts
 * import type { Family } from "@ctnl/conntrack";
 *
 * const family: Family = "ipv6";
 * void family;
 * ```
 */
export type Family = "ipv4" | "ipv6";

/** One direction of a connection: addresses, layer-4 fields and zone.
 *
 * @example
 * ```ts
 * import { decodeFlow } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * // An entry message as the kernel sends it: a UDP flow 10.0.0.1:5000 -> 10.0.0.2:53.
 * const hex = "58000000000102000100000000000000020000003400018014000180080001000a000001" +
 *   "080002000a0000021c0002800500010011000000060002001388000006000300003500000800" +
 *   "030000000008080008000000002a";
 * const flow = decodeFlow(Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16)));
 * equal(flow.family, "ipv4");
 * equal(flow.orig.dstPort, 53);
 * equal(flow.mark, 42);
 * ```
 */
export interface Tuple {
  /** Source address (`"10.0.0.1"`, `"fd00::1"`), as `inet_ntop` prints it. */
  src: string | undefined;
  /** Destination address. */
  dst: string | undefined;
  /** Layer-4 protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, …). */
  protocol: number | undefined;
  /** Source port (TCP, UDP, SCTP, DCCP, UDP-Lite). */
  srcPort: number | undefined;
  /** Destination port. */
  dstPort: number | undefined;
  /** ICMP or ICMPv6 identifier. */
  icmpId: number | undefined;
  /** ICMP or ICMPv6 type. */
  icmpType: number | undefined;
  /** ICMP or ICMPv6 code. */
  icmpCode: number | undefined;
  /** Zone of this direction (`CTA_TUPLE_ZONE`), when the zone is per direction. */
  zone: number | undefined;
}

/** Packet and byte counters of one direction (needs `nf_conntrack_acct`).
 *
 * @example
 * ```ts
 * import type { Counters } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const c: Counters = { packets: 3n, bytes: 180n }; // bigint: exact past 2^53
 * equal(c.bytes / c.packets, 60n);
 * ```
 */
export interface Counters {
  /** Packets seen. */
  packets: bigint;
  /** Bytes seen. */
  bytes: bigint;
}

/** TCP window-tracking flags and the mask of the ones that are valid.
 *
 * @example
 * ```ts
 * import type { TcpFlags } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const f: TcpFlags = { flags: 0x23, mask: 0 };
 * equal((f.flags & 0x01) !== 0, true); // IP_CT_TCP_FLAG_WINDOW_SCALE
 * ```
 */
export interface TcpFlags {
  /** `IP_CT_TCP_FLAG_*` bits. */
  flags: number;
  /** Which bits of `flags` are meaningful. */
  mask: number;
}

/** TCP protocol state (`CTA_PROTOINFO_TCP`).
 *
 * @example
 * ```ts
 * import { TCP_STATES, type TcpInfo } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const tcp: TcpInfo = {
 *   state: 3, stateName: "ESTABLISHED", wscaleOrig: 7, wscaleReply: 7,
 *   flagsOrig: undefined, flagsReply: undefined,
 * };
 * equal(TCP_STATES[tcp.state], tcp.stateName);
 * ```
 */
export interface TcpInfo {
  /** State number (`enum tcp_conntrack`). */
  state: number;
  /** State name as conntrack prints it (`"ESTABLISHED"`). */
  stateName: string;
  /** Window scale of the original direction. */
  wscaleOrig: number | undefined;
  /** Window scale of the reply direction. */
  wscaleReply: number | undefined;
  /** Flags of the original direction. */
  flagsOrig: TcpFlags | undefined;
  /** Flags of the reply direction. */
  flagsReply: TcpFlags | undefined;
}

/** SCTP protocol state (`CTA_PROTOINFO_SCTP`).
 *
 * @example
 * ```ts
 * import { SCTP_STATES, type SctpInfo } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const sctp: SctpInfo = { state: 4, stateName: "ESTABLISHED", vtagOrig: 1, vtagReply: 2 };
 * equal(SCTP_STATES[sctp.state], sctp.stateName);
 * ```
 */
export interface SctpInfo {
  /** State number (`enum sctp_conntrack`). */
  state: number;
  /** State name (`"ESTABLISHED"`). */
  stateName: string;
  /** Verification tag, original direction. */
  vtagOrig: number | undefined;
  /** Verification tag, reply direction. */
  vtagReply: number | undefined;
}

/** DCCP protocol state (`CTA_PROTOINFO_DCCP`).
 *
 * @example
 * ```ts
 * import { DCCP_STATES, type DccpInfo } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const dccp: DccpInfo = { state: 4, stateName: "OPEN", role: 0, handshakeSeq: 1n };
 * equal(DCCP_STATES[dccp.state], dccp.stateName);
 * ```
 */
export interface DccpInfo {
  /** State number (`enum ct_dccp_states`). */
  state: number;
  /** State name (`"OPEN"`). */
  stateName: string;
  /** Role (0 client, 1 server). */
  role: number | undefined;
  /** Handshake sequence number. */
  handshakeSeq: bigint | undefined;
}

/** NAT range as sent in `CTA_NAT_SRC` / `CTA_NAT_DST`.
 *
 * @example
 * ```ts
 * import type { NatRange } from "@ctnl/conntrack";
 *
 * const range: NatRange = { minIp: "192.0.2.1", maxIp: "192.0.2.9", minPort: 1024, maxPort: 65535 };
 * void range;
 * ```
 */
export interface NatRange {
  /** Lowest address of the range. */
  minIp: string | undefined;
  /** Highest address of the range. */
  maxIp: string | undefined;
  /** Lowest port. */
  minPort: number | undefined;
  /** Highest port. */
  maxPort: number | undefined;
}

/** Sequence-number adjustment of one direction (NAT helpers).
 *
 * @example
 * ```ts
 * import type { SeqAdj } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * // The ftp helper rewrote "10,50,0,2" as "10,60,0,100": two bytes longer after this point.
 * const adj: SeqAdj = { correctionPos: 1072916586, offsetBefore: 0, offsetAfter: 2 };
 * equal(adj.offsetAfter - adj.offsetBefore, 2);
 * ```
 */
export interface SeqAdj {
  /** Sequence number where the correction starts. */
  correctionPos: number;
  /** Offset before `correctionPos`. */
  offsetBefore: number;
  /** Offset after `correctionPos`. */
  offsetAfter: number;
}

/** SYN proxy state.
 *
 * @example
 * ```ts
 * import type { Synproxy } from "@ctnl/conntrack";
 *
 * const s: Synproxy = { isn: 1, its: 2, tsoff: 3 };
 * void s;
 * ```
 */
export interface Synproxy {
  /** Initial sequence number. */
  isn: number;
  /** Initial timestamp. */
  its: number;
  /** Timestamp offset. */
  tsoff: number;
}

/** An attribute the decoder did not know, kept raw when asked.
 *
 * @example
 * ```ts
 * import type { RawAttribute } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * // With { keepUnknown: true }, an attribute this version does not know:
 * const raw: RawAttribute = { type: 28, data: new Uint8Array([0, 0, 0, 1]) };
 * equal(raw.data.length, 4);
 * ```
 */
export interface RawAttribute {
  /** Attribute number at the top level (`CTA_*`). */
  type: number;
  /** The payload bytes (a copy). */
  data: Uint8Array;
}

/**
 * One conntrack entry, as the kernel reports it.
 *
 * Every key is always present; what the kernel did not send is `undefined`
 * (counters need `nf_conntrack_acct`, timestamps `nf_conntrack_timestamp`).
 *
 * @example
 * ```ts
 * import { decodeFlow } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * // An entry message as the kernel sends it: a UDP flow 10.0.0.1:5000 -> 10.0.0.2:53.
 * const hex = "58000000000102000100000000000000020000003400018014000180080001000a000001" +
 *   "080002000a0000021c0002800500010011000000060002001388000006000300003500000800" +
 *   "030000000008080008000000002a";
 * const flow = decodeFlow(Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16)));
 * equal(flow.family, "ipv4");
 * equal(flow.orig.dstPort, 53);
 * equal(flow.mark, 42);
 * ```
 */
export interface Flow {
  /** Address family. */
  family: Family;
  /** Original-direction tuple. */
  orig: Tuple;
  /** Reply-direction tuple. */
  reply: Tuple;
  /** The master connection's tuple, for expected (related) flows. */
  master: Tuple | undefined;
  /** Status bits; see `CT_STATUS` and `statusFlags()`. */
  status: number;
  /** Seconds until the entry expires. */
  timeout: number | undefined;
  /** Connection mark. */
  mark: number | undefined;
  /** Reference count. */
  use: number | undefined;
  /** Entry id (`CTA_ID`). */
  id: number | undefined;
  /** Zone (`CTA_ZONE`), sent only when not the default zone 0. */
  zone: number | undefined;
  /** TCP state, for TCP flows. */
  tcp: TcpInfo | undefined;
  /** SCTP state, for SCTP flows. */
  sctp: SctpInfo | undefined;
  /** DCCP state, for DCCP flows. */
  dccp: DccpInfo | undefined;
  /** Name of the attached helper (`"ftp"`). */
  helper: string | undefined;
  /** Original-direction counters. */
  countersOrig: Counters | undefined;
  /** Reply-direction counters. */
  countersReply: Counters | undefined;
  /** Source NAT range (requests and some events). */
  natSrc: NatRange | undefined;
  /** Destination NAT range. */
  natDst: NatRange | undefined;
  /** Sequence adjustment, original direction. */
  seqAdjOrig: SeqAdj | undefined;
  /** Sequence adjustment, reply direction. */
  seqAdjReply: SeqAdj | undefined;
  /** Security mark (obsolete; the kernel no longer sends it). */
  secmark: number | undefined;
  /** Security context name. */
  secctx: string | undefined;
  /** Start time, nanoseconds since the epoch. */
  timestampStart: bigint | undefined;
  /** Stop time (destroyed flows), nanoseconds since the epoch. */
  timestampStop: bigint | undefined;
  /** Event time (events only), nanoseconds since the epoch. */
  timestampEvent: bigint | undefined;
  /** Connection labels as a little-endian bit set (bit n = byte n>>3, bit n&7). */
  labels: Uint8Array | undefined;
  /** Label mask (requests). */
  labelsMask: Uint8Array | undefined;
  /** SYN proxy state. */
  synproxy: Synproxy | undefined;
  /** Attributes this version does not know, when decoding with `keepUnknown`. */
  unknown: RawAttribute[] | undefined;
}

/** Per-CPU conntrack statistics (`IPCTNL_MSG_CT_GET_STATS_CPU`).
 *
 * @example
 * ```ts
 * import { type CpuStats, formatCpuStats } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const s: CpuStats = {
 *   cpu: 1, searched: undefined, found: 2, new: undefined, invalid: 0, ignore: undefined,
 *   delete: undefined, deleteList: undefined, insert: 0, insertFailed: 0, drop: 0,
 *   earlyDrop: 0, error: 1, searchRestart: 0, clashResolve: 0, chainTooLong: 0,
 * };
 * equal(formatCpuStats(s).startsWith("cpu=1   \tfound=2 invalid=0"), true);
 * ```
 */
export interface CpuStats {
  /** CPU number (`res_id`). */
  cpu: number;
  /** `CTA_STATS_SEARCHED` (obsolete). */
  searched: number | undefined;
  /** `CTA_STATS_FOUND`. */
  found: number | undefined;
  /** `CTA_STATS_NEW` (obsolete). */
  new: number | undefined;
  /** `CTA_STATS_INVALID`. */
  invalid: number | undefined;
  /** `CTA_STATS_IGNORE` (obsolete). */
  ignore: number | undefined;
  /** `CTA_STATS_DELETE` (obsolete). */
  delete: number | undefined;
  /** `CTA_STATS_DELETE_LIST` (obsolete). */
  deleteList: number | undefined;
  /** `CTA_STATS_INSERT`. */
  insert: number | undefined;
  /** `CTA_STATS_INSERT_FAILED`. */
  insertFailed: number | undefined;
  /** `CTA_STATS_DROP`. */
  drop: number | undefined;
  /** `CTA_STATS_EARLY_DROP`. */
  earlyDrop: number | undefined;
  /** `CTA_STATS_ERROR`. */
  error: number | undefined;
  /** `CTA_STATS_SEARCH_RESTART`. */
  searchRestart: number | undefined;
  /** `CTA_STATS_CLASH_RESOLVE`. */
  clashResolve: number | undefined;
  /** `CTA_STATS_CHAIN_TOOLONG`. */
  chainTooLong: number | undefined;
}

/** Global conntrack statistics (`IPCTNL_MSG_CT_GET_STATS`).
 *
 * @example
 * ```ts
 * import type { GlobalStats } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const g: GlobalStats = { entries: 131072, maxEntries: 262144 };
 * equal(g.entries / g.maxEntries!, 0.5); // how full the table is
 * ```
 */
export interface GlobalStats {
  /** Entries in the table. */
  entries: number;
  /** `nf_conntrack_max` (0 if the kernel did not say: before Linux 4.x). */
  maxEntries: number;
}
