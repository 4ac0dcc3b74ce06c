/**
 * Kernel constants under their C names (`enum ctattr_*`, `enum cntl_msg_types`,
 * `enum ip_conntrack_status`), and the name tables that turn numbers into the
 * words conntrack-tools prints.
 *
 * @module
 */

import type { AttrSet } from "./netlink.ts";

/** `NFNL_SUBSYS_CTNETLINK`. */
export const NFNL_SUBSYS_CTNETLINK = 1;
/** `NFNL_SUBSYS_CTNETLINK_EXP`. */
export const NFNL_SUBSYS_CTNETLINK_EXP = 2;

/** `IPCTNL_MSG_CT_NEW`. */
export const IPCTNL_MSG_CT_NEW = 0;
/** `IPCTNL_MSG_CT_GET`. */
export const IPCTNL_MSG_CT_GET = 1;
/** `IPCTNL_MSG_CT_DELETE`. */
export const IPCTNL_MSG_CT_DELETE = 2;
/** `IPCTNL_MSG_CT_GET_CTRZERO`. */
export const IPCTNL_MSG_CT_GET_CTRZERO = 3;
/** `IPCTNL_MSG_CT_GET_STATS_CPU`. */
export const IPCTNL_MSG_CT_GET_STATS_CPU = 4;
/** `IPCTNL_MSG_CT_GET_STATS`. */
export const IPCTNL_MSG_CT_GET_STATS = 5;
/** `IPCTNL_MSG_CT_GET_DYING`. */
export const IPCTNL_MSG_CT_GET_DYING = 6;
/** `IPCTNL_MSG_CT_GET_UNCONFIRMED`. */
export const IPCTNL_MSG_CT_GET_UNCONFIRMED = 7;

/** `enum cntl_msg_exp_types`: the expectation subsystem's messages. */
export const IPCTNL_MSG_EXP_NEW = 0,
  IPCTNL_MSG_EXP_GET = 1,
  IPCTNL_MSG_EXP_DELETE = 2,
  IPCTNL_MSG_EXP_GET_STATS_CPU = 3;

/** `enum ctattr_expect`. */
export const CTA_EXPECT_MASTER = 1,
  CTA_EXPECT_TUPLE = 2,
  CTA_EXPECT_MASK = 3,
  CTA_EXPECT_TIMEOUT = 4,
  CTA_EXPECT_ID = 5,
  CTA_EXPECT_HELP_NAME = 6,
  CTA_EXPECT_ZONE = 7,
  CTA_EXPECT_FLAGS = 8,
  CTA_EXPECT_CLASS = 9,
  CTA_EXPECT_NAT = 10,
  CTA_EXPECT_FN = 11;
/** `enum ctattr_expect_nat`. */
export const CTA_EXPECT_NAT_DIR = 1, CTA_EXPECT_NAT_TUPLE = 2;
/** `enum ctattr_expect_stats`. */
export const CTA_STATS_EXP_NEW = 1, CTA_STATS_EXP_CREATE = 2, CTA_STATS_EXP_DELETE = 3;

/** `enum nfnetlink_groups`: the expectation event groups. */
export const NFNLGRP_CONNTRACK_EXP_NEW = 4,
  NFNLGRP_CONNTRACK_EXP_UPDATE = 5,
  NFNLGRP_CONNTRACK_EXP_DESTROY = 6;

/** `AF_UNSPEC`. */
export const AF_UNSPEC = 0;
/** `AF_INET`. */
export const AF_INET = 2;
/** `AF_INET6`. */
export const AF_INET6 = 10;

/** `enum ctattr_type`. */
export const CTA_TUPLE_ORIG = 1,
  CTA_TUPLE_REPLY = 2,
  CTA_STATUS = 3,
  CTA_PROTOINFO = 4,
  CTA_HELP = 5,
  CTA_NAT_SRC = 6,
  CTA_TIMEOUT = 7,
  CTA_MARK = 8,
  CTA_COUNTERS_ORIG = 9,
  CTA_COUNTERS_REPLY = 10,
  CTA_USE = 11,
  CTA_ID = 12,
  CTA_NAT_DST = 13,
  CTA_TUPLE_MASTER = 14,
  CTA_SEQ_ADJ_ORIG = 15,
  CTA_SEQ_ADJ_REPLY = 16,
  CTA_SECMARK = 17,
  CTA_ZONE = 18,
  CTA_SECCTX = 19,
  CTA_TIMESTAMP = 20,
  CTA_MARK_MASK = 21,
  CTA_LABELS = 22,
  CTA_LABELS_MASK = 23,
  CTA_SYNPROXY = 24,
  CTA_FILTER = 25,
  CTA_STATUS_MASK = 26,
  CTA_TIMESTAMP_EVENT = 27;

/** `enum ctattr_tuple`. */
export const CTA_TUPLE_IP = 1, CTA_TUPLE_PROTO = 2, CTA_TUPLE_ZONE = 3;
/** `enum ctattr_ip`. */
export const CTA_IP_V4_SRC = 1, CTA_IP_V4_DST = 2, CTA_IP_V6_SRC = 3, CTA_IP_V6_DST = 4;
/** `enum ctattr_l4proto`. */
export const CTA_PROTO_NUM = 1,
  CTA_PROTO_SRC_PORT = 2,
  CTA_PROTO_DST_PORT = 3,
  CTA_PROTO_ICMP_ID = 4,
  CTA_PROTO_ICMP_TYPE = 5,
  CTA_PROTO_ICMP_CODE = 6,
  CTA_PROTO_ICMPV6_ID = 7,
  CTA_PROTO_ICMPV6_TYPE = 8,
  CTA_PROTO_ICMPV6_CODE = 9;
/** `enum ctattr_protoinfo`. */
export const CTA_PROTOINFO_TCP = 1, CTA_PROTOINFO_DCCP = 2, CTA_PROTOINFO_SCTP = 3;
/** `enum ctattr_protoinfo_tcp`. */
export const CTA_PROTOINFO_TCP_STATE = 1,
  CTA_PROTOINFO_TCP_WSCALE_ORIGINAL = 2,
  CTA_PROTOINFO_TCP_WSCALE_REPLY = 3,
  CTA_PROTOINFO_TCP_FLAGS_ORIGINAL = 4,
  CTA_PROTOINFO_TCP_FLAGS_REPLY = 5;
/** `enum ctattr_protoinfo_dccp`. */
export const CTA_PROTOINFO_DCCP_STATE = 1,
  CTA_PROTOINFO_DCCP_ROLE = 2,
  CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ = 3;
/** `enum ctattr_protoinfo_sctp`. */
export const CTA_PROTOINFO_SCTP_STATE = 1,
  CTA_PROTOINFO_SCTP_VTAG_ORIGINAL = 2,
  CTA_PROTOINFO_SCTP_VTAG_REPLY = 3;
/** `enum ctattr_counters`. */
export const CTA_COUNTERS_PACKETS = 1,
  CTA_COUNTERS_BYTES = 2,
  CTA_COUNTERS32_PACKETS = 3,
  CTA_COUNTERS32_BYTES = 4;
/** `enum ctattr_tstamp`. */
export const CTA_TIMESTAMP_START = 1, CTA_TIMESTAMP_STOP = 2;
/** `enum ctattr_nat`. */
export const CTA_NAT_V4_MINIP = 1,
  CTA_NAT_V4_MAXIP = 2,
  CTA_NAT_PROTO = 3,
  CTA_NAT_V6_MINIP = 4,
  CTA_NAT_V6_MAXIP = 5;
/** `enum ctattr_protonat`. */
export const CTA_PROTONAT_PORT_MIN = 1, CTA_PROTONAT_PORT_MAX = 2;
/** `enum ctattr_seqadj`. */
export const CTA_SEQADJ_CORRECTION_POS = 1,
  CTA_SEQADJ_OFFSET_BEFORE = 2,
  CTA_SEQADJ_OFFSET_AFTER = 3;
/** `enum ctattr_synproxy`. */
export const CTA_SYNPROXY_ISN = 1, CTA_SYNPROXY_ITS = 2, CTA_SYNPROXY_TSOFF = 3;
/** `enum ctattr_help`. */
export const CTA_HELP_NAME = 1, CTA_HELP_INFO = 2;
/** `enum ctattr_secctx`. */
export const CTA_SECCTX_NAME = 1;
/** `enum ctattr_filter`. */
export const CTA_FILTER_ORIG_FLAGS = 1, CTA_FILTER_REPLY_FLAGS = 2;
/** `enum ctattr_stats_global`. */
export const CTA_STATS_GLOBAL_ENTRIES = 1, CTA_STATS_GLOBAL_MAX_ENTRIES = 2;

/** `CTA_FILTER_F_*` bits (kernel-internal, `nf_internals.h`). */
export const CTA_FILTER_F_IP_SRC = 1 << 0,
  CTA_FILTER_F_IP_DST = 1 << 1,
  CTA_FILTER_F_TUPLE_ZONE = 1 << 2,
  CTA_FILTER_F_PROTO_NUM = 1 << 3,
  CTA_FILTER_F_PROTO_SRC_PORT = 1 << 4,
  CTA_FILTER_F_PROTO_DST_PORT = 1 << 5,
  CTA_FILTER_F_ICMP_TYPE = 1 << 6,
  CTA_FILTER_F_ICMP_CODE = 1 << 7,
  CTA_FILTER_F_ICMP_ID = 1 << 8,
  CTA_FILTER_F_ICMPV6_TYPE = 1 << 9,
  CTA_FILTER_F_ICMPV6_CODE = 1 << 10,
  CTA_FILTER_F_ICMPV6_ID = 1 << 11;

function set(name: string, names: string[]): AttrSet {
  return { name, names };
}

/** Attribute sets by level, for error paths. */
export const SETS = {
  ct: set("ctattr_type", [
    "CTA_UNSPEC",
    "CTA_TUPLE_ORIG",
    "CTA_TUPLE_REPLY",
    "CTA_STATUS",
    "CTA_PROTOINFO",
    "CTA_HELP",
    "CTA_NAT_SRC",
    "CTA_TIMEOUT",
    "CTA_MARK",
    "CTA_COUNTERS_ORIG",
    "CTA_COUNTERS_REPLY",
    "CTA_USE",
    "CTA_ID",
    "CTA_NAT_DST",
    "CTA_TUPLE_MASTER",
    "CTA_SEQ_ADJ_ORIG",
    "CTA_SEQ_ADJ_REPLY",
    "CTA_SECMARK",
    "CTA_ZONE",
    "CTA_SECCTX",
    "CTA_TIMESTAMP",
    "CTA_MARK_MASK",
    "CTA_LABELS",
    "CTA_LABELS_MASK",
    "CTA_SYNPROXY",
    "CTA_FILTER",
    "CTA_STATUS_MASK",
    "CTA_TIMESTAMP_EVENT",
  ]),
  tuple: set("ctattr_tuple", [
    "CTA_TUPLE_UNSPEC",
    "CTA_TUPLE_IP",
    "CTA_TUPLE_PROTO",
    "CTA_TUPLE_ZONE",
  ]),
  ip: set("ctattr_ip", [
    "CTA_IP_UNSPEC",
    "CTA_IP_V4_SRC",
    "CTA_IP_V4_DST",
    "CTA_IP_V6_SRC",
    "CTA_IP_V6_DST",
  ]),
  proto: set("ctattr_l4proto", [
    "CTA_PROTO_UNSPEC",
    "CTA_PROTO_NUM",
    "CTA_PROTO_SRC_PORT",
    "CTA_PROTO_DST_PORT",
    "CTA_PROTO_ICMP_ID",
    "CTA_PROTO_ICMP_TYPE",
    "CTA_PROTO_ICMP_CODE",
    "CTA_PROTO_ICMPV6_ID",
    "CTA_PROTO_ICMPV6_TYPE",
    "CTA_PROTO_ICMPV6_CODE",
  ]),
  protoinfo: set("ctattr_protoinfo", [
    "CTA_PROTOINFO_UNSPEC",
    "CTA_PROTOINFO_TCP",
    "CTA_PROTOINFO_DCCP",
    "CTA_PROTOINFO_SCTP",
  ]),
  tcp: set("ctattr_protoinfo_tcp", [
    "CTA_PROTOINFO_TCP_UNSPEC",
    "CTA_PROTOINFO_TCP_STATE",
    "CTA_PROTOINFO_TCP_WSCALE_ORIGINAL",
    "CTA_PROTOINFO_TCP_WSCALE_REPLY",
    "CTA_PROTOINFO_TCP_FLAGS_ORIGINAL",
    "CTA_PROTOINFO_TCP_FLAGS_REPLY",
  ]),
  dccp: set("ctattr_protoinfo_dccp", [
    "CTA_PROTOINFO_DCCP_UNSPEC",
    "CTA_PROTOINFO_DCCP_STATE",
    "CTA_PROTOINFO_DCCP_ROLE",
    "CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ",
    "CTA_PROTOINFO_DCCP_PAD",
  ]),
  sctp: set("ctattr_protoinfo_sctp", [
    "CTA_PROTOINFO_SCTP_UNSPEC",
    "CTA_PROTOINFO_SCTP_STATE",
    "CTA_PROTOINFO_SCTP_VTAG_ORIGINAL",
    "CTA_PROTOINFO_SCTP_VTAG_REPLY",
  ]),
  counters: set("ctattr_counters", [
    "CTA_COUNTERS_UNSPEC",
    "CTA_COUNTERS_PACKETS",
    "CTA_COUNTERS_BYTES",
    "CTA_COUNTERS32_PACKETS",
    "CTA_COUNTERS32_BYTES",
    "CTA_COUNTERS_PAD",
  ]),
  tstamp: set("ctattr_tstamp", [
    "CTA_TIMESTAMP_UNSPEC",
    "CTA_TIMESTAMP_START",
    "CTA_TIMESTAMP_STOP",
    "CTA_TIMESTAMP_PAD",
  ]),
  nat: set("ctattr_nat", [
    "CTA_NAT_UNSPEC",
    "CTA_NAT_V4_MINIP",
    "CTA_NAT_V4_MAXIP",
    "CTA_NAT_PROTO",
    "CTA_NAT_V6_MINIP",
    "CTA_NAT_V6_MAXIP",
  ]),
  protonat: set("ctattr_protonat", [
    "CTA_PROTONAT_UNSPEC",
    "CTA_PROTONAT_PORT_MIN",
    "CTA_PROTONAT_PORT_MAX",
  ]),
  seqadj: set("ctattr_seqadj", [
    "CTA_SEQADJ_UNSPEC",
    "CTA_SEQADJ_CORRECTION_POS",
    "CTA_SEQADJ_OFFSET_BEFORE",
    "CTA_SEQADJ_OFFSET_AFTER",
  ]),
  synproxy: set("ctattr_synproxy", [
    "CTA_SYNPROXY_UNSPEC",
    "CTA_SYNPROXY_ISN",
    "CTA_SYNPROXY_ITS",
    "CTA_SYNPROXY_TSOFF",
  ]),
  help: set("ctattr_help", ["CTA_HELP_UNSPEC", "CTA_HELP_NAME", "CTA_HELP_INFO"]),
  secctx: set("ctattr_secctx", ["CTA_SECCTX_UNSPEC", "CTA_SECCTX_NAME"]),
  statsCpu: set("ctattr_stats_cpu", [
    "CTA_STATS_UNSPEC",
    "CTA_STATS_SEARCHED",
    "CTA_STATS_FOUND",
    "CTA_STATS_NEW",
    "CTA_STATS_INVALID",
    "CTA_STATS_IGNORE",
    "CTA_STATS_DELETE",
    "CTA_STATS_DELETE_LIST",
    "CTA_STATS_INSERT",
    "CTA_STATS_INSERT_FAILED",
    "CTA_STATS_DROP",
    "CTA_STATS_EARLY_DROP",
    "CTA_STATS_ERROR",
    "CTA_STATS_SEARCH_RESTART",
    "CTA_STATS_CLASH_RESOLVE",
    "CTA_STATS_CHAIN_TOOLONG",
  ]),
  statsGlobal: set("ctattr_stats_global", [
    "CTA_STATS_GLOBAL_UNSPEC",
    "CTA_STATS_GLOBAL_ENTRIES",
    "CTA_STATS_GLOBAL_MAX_ENTRIES",
  ]),
  expect: set("ctattr_expect", [
    "CTA_EXPECT_UNSPEC",
    "CTA_EXPECT_MASTER",
    "CTA_EXPECT_TUPLE",
    "CTA_EXPECT_MASK",
    "CTA_EXPECT_TIMEOUT",
    "CTA_EXPECT_ID",
    "CTA_EXPECT_HELP_NAME",
    "CTA_EXPECT_ZONE",
    "CTA_EXPECT_FLAGS",
    "CTA_EXPECT_CLASS",
    "CTA_EXPECT_NAT",
    "CTA_EXPECT_FN",
  ]),
  expectNat: set("ctattr_expect_nat", [
    "CTA_EXPECT_NAT_UNSPEC",
    "CTA_EXPECT_NAT_DIR",
    "CTA_EXPECT_NAT_TUPLE",
  ]),
  statsExp: set("ctattr_expect_stats", [
    "CTA_STATS_EXP_UNSPEC",
    "CTA_STATS_EXP_NEW",
    "CTA_STATS_EXP_CREATE",
    "CTA_STATS_EXP_DELETE",
  ]),
} as const;

/**
 * Conntrack status bits (`enum ip_conntrack_status`), by the names
 * conntrack-tools uses for `-u/--status`.
 *
 * @example Test a flow's status
 * ```ts
 * import { CT_STATUS } from "@ctnl/conntrack";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 *
 * const status = CT_STATUS.SEEN_REPLY | CT_STATUS.ASSURED | CT_STATUS.CONFIRMED;
 * assertEquals((status & CT_STATUS.ASSURED) !== 0, true);
 * ```
 */
export const CT_STATUS = {
  EXPECTED: 1 << 0,
  SEEN_REPLY: 1 << 1,
  ASSURED: 1 << 2,
  CONFIRMED: 1 << 3,
  SRC_NAT: 1 << 4,
  DST_NAT: 1 << 5,
  SEQ_ADJUST: 1 << 6,
  SRC_NAT_DONE: 1 << 7,
  DST_NAT_DONE: 1 << 8,
  DYING: 1 << 9,
  FIXED_TIMEOUT: 1 << 10,
  TEMPLATE: 1 << 11,
  NAT_CLASH: 1 << 12,
  HELPER: 1 << 13,
  OFFLOAD: 1 << 14,
  HW_OFFLOAD: 1 << 15,
} as const;

/** A status flag name, a key of {@link CT_STATUS}.
 *
 * @example
 * ```ts
 * import { CT_STATUS, type StatusFlag } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const flag: StatusFlag = "ASSURED";
 * equal(CT_STATUS[flag], 4);
 * ```
 */
export type StatusFlag = keyof typeof CT_STATUS;

/**
 * Names the status bits set in `status`, lowest bit first.
 *
 * @example
 * ```ts
 * import { statusFlags } from "@ctnl/conntrack";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 *
 * assertEquals(statusFlags(0b1110), ["SEEN_REPLY", "ASSURED", "CONFIRMED"]);
 * ```
 */
export function statusFlags(status: number): StatusFlag[] {
  return bitNames(CT_STATUS, status);
}

/** The names of `table`'s bits set in `bits`, in the table's order. */
function bitNames<K extends string>(table: Readonly<Record<K, number>>, bits: number): K[] {
  const out: K[] = [];
  for (const [name, bit] of Object.entries(table) as [K, number][]) {
    if ((bits & bit) !== 0) out.push(name);
  }
  return out;
}

/**
 * Expectation flags (`NF_CT_EXPECT_*`), by the names conntrack-tools prints.
 *
 * @example Test an expectation's flags
 * ```ts
 * import { EXPECT_FLAGS } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal((EXPECT_FLAGS.PERMANENT | EXPECT_FLAGS.INACTIVE) & EXPECT_FLAGS.INACTIVE, 2);
 * ```
 */
export const EXPECT_FLAGS = {
  PERMANENT: 0x1,
  INACTIVE: 0x2,
  USERSPACE: 0x4,
} as const;

/** An expectation flag name, a key of {@link EXPECT_FLAGS}.
 *
 * @example
 * ```ts
 * import { EXPECT_FLAGS, type ExpectFlag } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const flag: ExpectFlag = "PERMANENT";
 * equal(EXPECT_FLAGS[flag], 1);
 * ```
 */
export type ExpectFlag = keyof typeof EXPECT_FLAGS;

/**
 * Names the expectation flags set in `flags`, lowest bit first.
 *
 * @example
 * ```ts
 * import { expectFlags } from "@ctnl/conntrack";
 * import { deepStrictEqual } from "node:assert/strict";
 *
 * deepStrictEqual(expectFlags(0b101), ["PERMANENT", "USERSPACE"]);
 * ```
 */
export function expectFlags(flags: number): ExpectFlag[] {
  return bitNames(EXPECT_FLAGS, flags);
}
