/**
 * Text and JSON renderings of flows and stats. The text matches
 * conntrack-tools (`conntrack -L`, `-S`) byte for byte: libnetfilter_conntrack's
 * default printer, field by field.
 *
 * @module
 */

import { CT_STATUS, DCCP_STATES, TCP_STATES } from "./constants.ts";
import type { CpuStats, Flow, Tuple } from "./types.ts";

/** Which optional parts conntrack's `-o` adds. */
export interface FormatOptions {
  /** `-o extended`: the layer-3 name and number first. */
  extended?: boolean;
  /** `-o id`: `id=` at the end. */
  id?: boolean;
  /** `-o ktimestamp`: `[start=…]` and `[stop=…]`. */
  ktimestamp?: boolean;
  /** An event prefix such as `"[NEW]"`, right-aligned in 9 columns. */
  eventType?: string;
  /** "Now" in seconds for `delta-time` (default: the clock). */
  now?: number;
}

/** libnetfilter_conntrack's `proto2str`: only these names, else `unknown`. */
const L4_NAMES: Readonly<Record<number, string>> = {
  1: "icmp",
  6: "tcp",
  17: "udp",
  33: "dccp",
  47: "gre",
  58: "icmpv6",
  132: "sctp",
  136: "udplite",
};

/** libnetfilter_conntrack's SCTP state names (no HEARTBEAT states: those print NONE). */
const SCTP_PRINT_STATES = [
  "NONE",
  "CLOSED",
  "COOKIE_WAIT",
  "COOKIE_ECHOED",
  "ESTABLISHED",
  "SHUTDOWN_SENT",
  "SHUTDOWN_RECD",
  "SHUTDOWN_ACK_SENT",
];

function pad8(name: string): string {
  return name.length >= 8 ? name : name + "        ".slice(name.length);
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function two(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/**
 * Formats seconds since the epoch as C `ctime()` does in local time, without
 * the newline: `"Thu Jan  1 00:00:00 1970"`.
 */
export function ctime(seconds: number): string {
  const d = new Date(seconds * 1000);
  const day = d.getDate();
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${day < 10 ? " " : ""}${day} ${
    two(d.getHours())
  }:${two(d.getMinutes())}:${two(d.getSeconds())} ${d.getFullYear()}`;
}

function tupleText(t: Tuple): string {
  let s = `src=${t.src ?? ""} dst=${t.dst ?? ""} `;
  switch (t.protocol) {
    case 6:
    case 17:
    case 136:
    case 132:
    case 33:
      s += `sport=${t.srcPort ?? 0} dport=${t.dstPort ?? 0} `;
      break;
    case 47:
      s += `srckey=0x${(t.srcPort ?? 0).toString(16)} dstkey=0x${(t.dstPort ?? 0).toString(16)} `;
      break;
    case 1:
    case 58:
      s += `type=${t.icmpType ?? 0} code=${t.icmpCode ?? 0} id=${t.icmpId ?? 0} `;
      break;
  }
  return s;
}

const NSEC = 1_000_000_000n;

/**
 * Formats one flow exactly as `conntrack -L` prints it (without the newline).
 *
 * @example
 * ```ts
 * import { formatFlow, type Flow } from "@ctnl/conntrack";
 * import { assertEquals } from "node:assert";
 *
 * const tuple = (src: string, dst: string, sp: number, dp: number) => ({
 *   src, dst, protocol: 17, srcPort: sp, dstPort: dp,
 *   icmpId: undefined, icmpType: undefined, icmpCode: undefined, zone: undefined,
 * });
 * const flow: Flow = {
 *   family: "ipv4", orig: tuple("10.0.0.1", "10.0.0.2", 5000, 53),
 *   reply: tuple("10.0.0.2", "10.0.0.1", 53, 5000), master: undefined,
 *   status: 8, timeout: 29, mark: 0, use: 1, id: 7, zone: undefined,
 *   tcp: undefined, sctp: undefined, dccp: undefined, helper: undefined,
 *   countersOrig: undefined, countersReply: undefined, natSrc: undefined, natDst: undefined,
 *   seqAdjOrig: undefined, seqAdjReply: undefined, secmark: undefined, secctx: undefined,
 *   timestampStart: undefined, timestampStop: undefined, timestampEvent: undefined,
 *   labels: undefined, labelsMask: undefined, synproxy: undefined, unknown: undefined,
 * };
 * assertEquals(
 *   formatFlow(flow),
 *   "udp      17 29 src=10.0.0.1 dst=10.0.0.2 sport=5000 dport=53 [UNREPLIED] " +
 *     "src=10.0.0.2 dst=10.0.0.1 sport=53 dport=5000 mark=0 use=1",
 * );
 * ```
 */
export function formatFlow(flow: Flow, options: FormatOptions = {}): string {
  let s = "";
  if (options.eventType) s += options.eventType.padStart(9) + " ";
  if (options.extended) {
    s += flow.family === "ipv4" ? "ipv4     2 " : "ipv6     10 ";
  }
  const proto = flow.orig.protocol ?? 0;
  s += `${pad8(L4_NAMES[proto] ?? "unknown")} ${proto} `;
  if (flow.timeout !== undefined) s += `${flow.timeout} `;
  if (flow.tcp) s += `${TCP_STATES[flow.tcp.state] ?? "NONE"} `;
  else if (flow.sctp) s += `${SCTP_PRINT_STATES[flow.sctp.state] ?? "NONE"} `;
  else if (flow.dccp) s += `${DCCP_STATES[flow.dccp.state] ?? "NONE"} `;
  s += tupleText(flow.orig);
  if (flow.orig.zone !== undefined) s += `zone-orig=${flow.orig.zone} `;
  const co = flow.countersOrig;
  if (co) s += `packets=${co.packets} bytes=${co.bytes} `;
  const status = flow.status;
  if ((status & CT_STATUS.SEEN_REPLY) === 0) s += "[UNREPLIED] ";
  s += tupleText(flow.reply);
  if (flow.reply.zone !== undefined) s += `zone-reply=${flow.reply.zone} `;
  const cr = flow.countersReply;
  if (cr) s += `packets=${cr.packets} bytes=${cr.bytes} `;
  if (status & CT_STATUS.HW_OFFLOAD) s += "[HW_OFFLOAD] ";
  else if (status & CT_STATUS.OFFLOAD) s += "[OFFLOAD] ";
  else if (status & CT_STATUS.ASSURED) s += "[ASSURED] ";
  if (flow.mark !== undefined) s += `mark=${flow.mark} `;
  if (flow.secmark !== undefined) s += `secmark=${flow.secmark} `;
  if (flow.secctx !== undefined) s += `secctx=${flow.secctx} `;
  if (flow.zone !== undefined) s += `zone=${flow.zone} `;
  const start = flow.timestampStart;
  if (start !== undefined) {
    const stop = flow.timestampStop ?? 0n;
    const end = stop === 0n ? BigInt(options.now ?? Math.floor(Date.now() / 1000)) : stop / NSEC;
    s += `delta-time=${BigInt.asUintN(64, end - start / NSEC)} `;
    if (options.ktimestamp) {
      s += `[start=${ctime(Number(start / NSEC))}] `;
      if (stop !== 0n) s += `[stop=${ctime(Number(stop / NSEC))}] `;
    }
  }
  if (flow.helper !== undefined) s += `helper=${flow.helper} `;
  if (flow.use !== undefined) s += `use=${flow.use} `;
  if (options.id && flow.id !== undefined) s += `id=${flow.id} `;
  return s.slice(0, -1);
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
 * import { assertEquals } from "node:assert";
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

function tupleJson(t: Tuple | undefined): Record<string, unknown> | undefined {
  if (t === undefined) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(t)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * The JSON form of a flow: the {@link Flow} fields with `undefined` ones
 * left out, 64-bit values as exact decimal numbers, labels as a list of bit
 * numbers, and the status also as flag names (`statusFlags`).
 *
 * @example
 * ```ts ignore
 * import { Conntrack, flowToJson } from "@ctnl/conntrack";
 *
 * using ct = Conntrack.open();
 * for (const flow of ct.dumpSync()) console.log(flowToJson(flow));
 * ```
 */
export function flowToJson(flow: Flow): string {
  // BigInts are written as raw numbers, so counters stay exact past 2^53.
  const marks: string[] = [];
  const obj: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flow)) {
    if (v === undefined) continue;
    if (k === "orig" || k === "reply" || k === "master") obj[k] = tupleJson(v as Tuple);
    else if (k === "labels" || k === "labelsMask") obj[k] = labelBits(v as Uint8Array);
    else if (k === "status") {
      obj.status = v;
      obj.statusFlags = Object.entries(CT_STATUS).filter(([, bit]) => (flow.status & bit) !== 0)
        .map(([name]) => name);
    } else obj[k] = v;
  }
  return JSON.stringify(obj, (_key, value) => {
    if (typeof value === "bigint") {
      marks.push(value.toString());
      return `\u0000big${marks.length - 1}\u0000`;
    }
    if (value instanceof Uint8Array) return Array.from(value);
    return value;
  }).replace(/"\\u0000big(\d+)\\u0000"/g, (_m, i) => marks[Number(i)]!);
}

/** The numbers of the bits set in a little-endian label bit set. */
export function labelBits(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0) continue;
    for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) out.push(i * 8 + bit);
  }
  return out;
}
