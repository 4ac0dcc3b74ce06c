/**
 * The table's statistics: the requests for the global counts
 * (`IPCTNL_MSG_CT_GET_STATS`, what `conntrack -C` prints) and the per-CPU
 * counters (`IPCTNL_MSG_CT_GET_STATS_CPU`, `conntrack -S`), their decoders
 * and conntrack's `-S` line. Kept apart from the flow codec so that `ctnl
 * count` and `ctnl stats` load only this, the transport and the socket.
 *
 * @module
 */

import * as C from "./constants.ts";
import { DecodeError } from "./errors.ts";
import {
  type AttrCursor,
  type MessageHeader,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
} from "./netlink.ts";
import type { Prepared } from "./prepare.ts";
import type { Transport } from "./transport.ts";
import type { CpuStats, GlobalStats } from "./types.ts";

/** The netlink and nfgenmsg headers: where a message's attributes start. */
const ATTRS = NLMSG_HDRLEN + 4;

/** Checks that a stats message has its `nfgenmsg` (whose `res_id` is the CPU). */
export function checkStatsHeader(header: MessageHeader): void {
  if (header.length < ATTRS) {
    throw new DecodeError("nfgenmsg", header.offset + NLMSG_HDRLEN, "message has no nfgenmsg");
  }
}

/** Decodes a per-CPU stats message (`IPCTNL_MSG_CT_GET_STATS_CPU` reply). */
export function decodeCpuStatsAt(
  c: AttrCursor,
  bytes: Uint8Array,
  view: DataView,
  header: MessageHeader,
): CpuStats {
  checkStatsHeader(header);
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
  let maxEntries = 0;
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

/** conntrack-tools' `-S` names, by {@link CpuStats} key, in attribute order. */
const STATS_NAMES: [keyof CpuStats, string][] = [
  ["searched", "searched"],
  ["found", "found"],
  ["new", "new"],
  ["invalid", "invalid"],
  ["ignore", "ignore"],
  ["delete", "delete"],
  ["deleteList", "delete_list"],
  ["insert", "insert"],
  ["insertFailed", "insert_failed"],
  ["drop", "drop"],
  ["earlyDrop", "early_drop"],
  ["error", "error"],
  ["searchRestart", "search_restart"],
  ["clashResolve", "clash_resolve"],
  ["chainTooLong", "chaintoolong"],
];

/**
 * Formats one CPU's stats exactly as `conntrack -S` prints the line.
 *
 * @example
 * ```ts
 * import { formatCpuStats } from "@ctnl/conntrack";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 *
 * const line = formatCpuStats({
 *   cpu: 0, searched: undefined, found: 1, new: undefined, invalid: 0, ignore: undefined,
 *   delete: undefined, deleteList: undefined, insert: 0, insertFailed: 0, drop: 0,
 *   earlyDrop: 0, error: 0, searchRestart: 0, clashResolve: 0, chainTooLong: 0,
 * });
 * assertEquals(line.startsWith("cpu=0   \tfound=1 invalid=0 "), true);
 * ```
 */
export function formatCpuStats(stats: CpuStats): string {
  let s = `cpu=${String(stats.cpu).padEnd(4)}\t`;
  for (const [key, name] of STATS_NAMES) {
    const v = stats[key];
    if (v !== undefined) s += `${name}=${v} `;
  }
  return s;
}

/** The per-CPU stats request. */
export function statsRequest(transport: Transport): Prepared<CpuStats> {
  const seq = transport.nextSeq();
  const flags = NLM_F_REQUEST | NLM_F_DUMP;
  const request = transport.begin(C.IPCTNL_MSG_CT_GET_STATS_CPU, flags, seq, C.AF_UNSPEC)
    .finish();
  const replyType = C.IPCTNL_MSG_CT_GET_STATS_CPU;
  return {
    transport,
    operation: "stats",
    request,
    seq,
    replyType,
    decode: decodeCpuStatsAt,
    options: {},
  };
}
/** The global stats request. */
export function globalRequest(transport: Transport): Prepared<GlobalStats> {
  const seq = transport.nextSeq();
  const flags = NLM_F_REQUEST | NLM_F_ACK;
  const request = transport.begin(C.IPCTNL_MSG_CT_GET_STATS, flags, seq, C.AF_UNSPEC).finish();
  const replyType = C.IPCTNL_MSG_CT_GET_STATS;
  return {
    transport,
    operation: "count",
    request,
    seq,
    replyType,
    decode: decodeGlobalStatsAt,
    options: {},
  };
}
