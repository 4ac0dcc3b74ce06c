/**
 * Text and JSON renderings of flows and stats. The text matches
 * conntrack-tools (`conntrack -L`, `-S`) byte for byte: libnetfilter_conntrack's
 * default printer, field by field.
 *
 * @module
 */

import { CT_STATUS, type StatusFlag } from "./constants.ts";
import { DCCP_STATES, protocolInfo, SCTP_STATES, TCP_STATES } from "./protocols.ts";
import type { Flow, Tuple } from "./types.ts";
import { localTime } from "./tz.ts";

/** Which optional parts conntrack's `-o` adds.
 *
 * @example
 * ```ts
 * import type { FormatOptions } from "@ctnl/conntrack";
 *
 * // As `conntrack -L -o extended,id,ktimestamp`:
 * const options: FormatOptions = { extended: true, id: true, ktimestamp: true };
 * void options; // formatFlow(flow, options)
 * ```
 */
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
  /**
   * `-o labels`: label names by bit number, as conntrack loads them from
   * `/etc/xtables/connlabel.conf`. When given, a flow with labels ends in
   * `labels=name,name` (only bits that have a name; just `labels` when none
   * has one, as conntrack prints it). Without it, labels are not printed.
   */
  labelNames?: readonly (string | undefined)[];
}

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
 * the newline: `"Thu Jan  1 00:00:00 1970"`. Local time is the JavaScript
 * engine's, except for a POSIX `TZ` string it cannot read (`IST-5:30`,
 * `CET-1CEST,M3.5.0,M10.5.0/3`), which is applied as glibc applies it when
 * `TZ` may be read (`--allow-env=TZ`).
 *
 * @example
 * ```ts
 * import { ctime } from "@ctnl/conntrack";
 * import { match } from "node:assert/strict";
 *
 * match(ctime(0), /^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
 * ```
 */
export function ctime(seconds: number): string {
  // localTime: the engine's local time, or a POSIX TZ string's as glibc reads it.
  const t = localTime(seconds);
  return `${DAYS[t.weekday]} ${MONTHS[t.month]} ${t.day < 10 ? " " : ""}${t.day} ${two(t.hours)}:${
    two(t.minutes)
  }:${two(t.seconds)} ${t.year}`;
}

/** One direction's addresses and layer-4 fields, each piece led by a space. */
function tupleText(t: Tuple): string {
  const s = ` src=${t.src ?? ""} dst=${t.dst ?? ""}`;
  switch (t.protocol) {
    case 6:
    case 17:
    case 136:
    case 132:
    case 33:
      return `${s} sport=${t.srcPort ?? 0} dport=${t.dstPort ?? 0}`;
    case 47:
      return `${s} srckey=0x${(t.srcPort ?? 0).toString(16)} dstkey=0x${
        (t.dstPort ?? 0).toString(16)
      }`;
    case 1:
    case 58:
      return `${s} type=${t.icmpType ?? 0} code=${t.icmpCode ?? 0} id=${t.icmpId ?? 0}`;
  }
  return s;
}

/** `"%-8s %u"` of each layer-4 protocol number, computed once. */
const L4_PREFIX: readonly string[] = Array.from(
  { length: 256 },
  (_, n) => `${pad8(protocolInfo(n).name)} ${n}`,
);

const NSEC = 1_000_000_000n;

/**
 * Formats one flow exactly as `conntrack -L` prints it (without the newline).
 *
 * @example
 * ```ts
 * import { formatFlow, type Flow } from "@ctnl/conntrack";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
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
  // Each piece is led by a space (conntrack's are followed by one and the
  // last is dropped): the same text, without a final copy to trim it.
  let s = options.eventType ? options.eventType.padStart(9) + " " : "";
  if (options.extended) s += flow.family === "ipv4" ? "ipv4     2 " : "ipv6     10 ";
  s += L4_PREFIX[flow.orig.protocol ?? 0] ?? "unknown  0";
  if (flow.timeout !== undefined) s += ` ${flow.timeout}`;
  if (flow.tcp) s += ` ${TCP_STATES[flow.tcp.state] ?? "NONE"}`;
  else if (flow.sctp) s += ` ${SCTP_STATES[flow.sctp.state] ?? "NONE"}`; // HEARTBEAT_SENT too
  else if (flow.dccp) s += ` ${DCCP_STATES[flow.dccp.state] ?? "NONE"}`;
  s += tupleText(flow.orig);
  if (flow.orig.zone !== undefined) s += ` zone-orig=${flow.orig.zone}`;
  const co = flow.countersOrig;
  if (co) s += ` packets=${co.packets} bytes=${co.bytes}`;
  const status = flow.status;
  if ((status & CT_STATUS.SEEN_REPLY) === 0) s += " [UNREPLIED]";
  s += tupleText(flow.reply);
  if (flow.reply.zone !== undefined) s += ` zone-reply=${flow.reply.zone}`;
  const cr = flow.countersReply;
  if (cr) s += ` packets=${cr.packets} bytes=${cr.bytes}`;
  if (status & CT_STATUS.HW_OFFLOAD) s += " [HW_OFFLOAD]";
  else if (status & CT_STATUS.OFFLOAD) s += " [OFFLOAD]";
  else if (status & CT_STATUS.ASSURED) s += " [ASSURED]";
  if (flow.mark !== undefined) s += ` mark=${flow.mark}`;
  if (flow.secmark !== undefined) s += ` secmark=${flow.secmark}`;
  if (flow.secctx !== undefined) s += ` secctx=${flow.secctx}`;
  if (flow.zone !== undefined) s += ` zone=${flow.zone}`;
  const start = flow.timestampStart;
  if (start !== undefined) {
    const stop = flow.timestampStop ?? 0n;
    const startSec = Number(start / NSEC);
    const endSec = stop === 0n
      ? (options.now ?? Math.floor(Date.now() / 1000))
      : Number(stop / NSEC);
    const delta = endSec - startSec;
    // time_t arithmetic printed as %llu: a negative difference wraps.
    s += ` delta-time=${delta >= 0 ? delta : BigInt.asUintN(64, BigInt(delta))}`;
    if (options.ktimestamp) {
      s += ` [start=${ctime(startSec)}]`;
      if (stop !== 0n) s += ` [stop=${ctime(Number(stop / NSEC))}]`;
    }
  }
  if (flow.helper !== undefined) s += ` helper=${flow.helper}`;
  if (flow.use !== undefined) s += ` use=${flow.use}`;
  if (options.id && flow.id !== undefined) s += ` id=${flow.id}`;
  const names = options.labelNames;
  if (names !== undefined && flow.labels !== undefined) {
    let list = "";
    for (const bit of labelBits(flow.labels)) {
      const name = names[bit];
      if (name) list += list === "" ? name : `,${name}`;
    }
    // libnetfilter_conntrack writes "labels=" and "name," per name, then
    // overwrites the last character with a space: with no name, the "=".
    s += list === "" ? " labels" : ` labels=${list}`;
  }
  return s;
}

/** A JSON value; bigints as exact integers, byte arrays as number arrays, undefined keys left out. */
function jsonValue(v: unknown): string {
  switch (typeof v) {
    case "number":
      return Number.isFinite(v) ? String(v) : "null";
    case "bigint":
      return v.toString();
    case "string":
      return jsonString(v);
    case "boolean":
      return v ? "true" : "false";
    case "object": {
      if (v === null) return "null";
      if (v instanceof Uint8Array) return `[${v.join(",")}]`;
      if (Array.isArray(v)) return `[${v.map(jsonValue).join(",")}]`;
      let s = "";
      for (const key in v) {
        const value = (v as Record<string, unknown>)[key];
        if (value === undefined) continue;
        s += `${s === "" ? "" : ","}${JSON.stringify(key)}:${jsonValue(value)}`;
      }
      return `{${s}}`;
    }
  }
  return "null";
}

/** Characters a JSON string may hold unescaped that addresses and names are made of. */
const PLAIN = /^[0-9A-Za-z.:_ -]*$/;

function jsonString(v: string): string {
  return PLAIN.test(v) ? `"${v}"` : JSON.stringify(v);
}

function tupleJson(t: Tuple): string {
  // Decoded addresses are inet_ntop text ([0-9a-f.:]) and the numbers are
  // integers from the kernel: both go in as they are, unquoted or quoted.
  let s = "";
  if (t.src !== undefined) s += `,"src":"${t.src}"`;
  if (t.dst !== undefined) s += `,"dst":"${t.dst}"`;
  if (t.protocol !== undefined) {
    // protocolName: the name `conntrack -L` prints ("unknown" for an untracked protocol), for jq.
    s += `,"protocol":${t.protocol},"protocolName":"${protocolInfo(t.protocol).name}"`;
  }
  if (t.srcPort !== undefined) s += `,"srcPort":${t.srcPort}`;
  if (t.dstPort !== undefined) s += `,"dstPort":${t.dstPort}`;
  if (t.icmpId !== undefined) s += `,"icmpId":${t.icmpId}`;
  if (t.icmpType !== undefined) s += `,"icmpType":${t.icmpType}`;
  if (t.icmpCode !== undefined) s += `,"icmpCode":${t.icmpCode}`;
  if (t.zone !== undefined) s += `,"zone":${t.zone}`;
  return `{${s.slice(1)}}`;
}

/** `"statusFlags":[…]` by status value; a table has few distinct ones. */
const statusFlagsJson = new Map<number, string>();

/** `"status":N,"statusFlags":[…]` of a status (for src/transcode.ts too). */
export function statusJson(status: number): string {
  let text = statusFlagsJson.get(status);
  if (text === undefined) {
    const names = Object.entries(CT_STATUS).filter(([, bit]) => (status & bit) !== 0)
      .map(([name]) => `"${name}"`);
    text = `"status":${status},"statusFlags":[${names.join(",")}]`;
    if (statusFlagsJson.size < 4096) statusFlagsJson.set(status, text);
  }
  return text;
}

/**
 * The JSON form of a flow: the {@link Flow} fields with `undefined` ones
 * left out, 64-bit values as exact decimal numbers, labels as a list of bit
 * numbers, and the status also as flag names (`statusFlags`). Addresses
 * are written as they are (the decoder makes them `inet_ntop` text), so pass
 * it flows the library decoded.
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
  // Written by hand rather than with JSON.stringify: bigints (counters,
  // timestamps) come out as exact integers, and it is several times faster.
  // The keys come in the order of the Flow type, the ones left undefined out.
  let s = `{"family":"${flow.family}"`;
  s += `,"orig":${tupleJson(flow.orig)},"reply":${tupleJson(flow.reply)}`;
  if (flow.master !== undefined) s += `,"master":${tupleJson(flow.master)}`;
  s += `,${statusJson(flow.status)}`;
  if (flow.timeout !== undefined) s += `,"timeout":${flow.timeout}`;
  if (flow.mark !== undefined) s += `,"mark":${flow.mark}`;
  if (flow.use !== undefined) s += `,"use":${flow.use}`;
  if (flow.id !== undefined) s += `,"id":${flow.id}`;
  if (flow.zone !== undefined) s += `,"zone":${flow.zone}`;
  const tcp = flow.tcp;
  if (tcp !== undefined) {
    s += `,"tcp":{"state":${tcp.state},"stateName":"${tcp.stateName}"`;
    if (tcp.wscaleOrig !== undefined) s += `,"wscaleOrig":${tcp.wscaleOrig}`;
    if (tcp.wscaleReply !== undefined) s += `,"wscaleReply":${tcp.wscaleReply}`;
    const fo = tcp.flagsOrig, fr = tcp.flagsReply;
    if (fo !== undefined) s += `,"flagsOrig":{"flags":${fo.flags},"mask":${fo.mask}}`;
    if (fr !== undefined) s += `,"flagsReply":{"flags":${fr.flags},"mask":${fr.mask}}`;
    s += "}";
  }
  if (flow.sctp !== undefined) s += `,"sctp":${jsonValue(flow.sctp)}`;
  if (flow.dccp !== undefined) s += `,"dccp":${jsonValue(flow.dccp)}`;
  if (flow.helper !== undefined) s += `,"helper":${jsonString(flow.helper)}`;
  const co = flow.countersOrig, cr = flow.countersReply;
  if (co !== undefined) s += `,"countersOrig":{"packets":${co.packets},"bytes":${co.bytes}}`;
  if (cr !== undefined) s += `,"countersReply":{"packets":${cr.packets},"bytes":${cr.bytes}}`;
  if (flow.natSrc !== undefined) s += `,"natSrc":${jsonValue(flow.natSrc)}`;
  if (flow.natDst !== undefined) s += `,"natDst":${jsonValue(flow.natDst)}`;
  if (flow.seqAdjOrig !== undefined) s += `,"seqAdjOrig":${jsonValue(flow.seqAdjOrig)}`;
  if (flow.seqAdjReply !== undefined) s += `,"seqAdjReply":${jsonValue(flow.seqAdjReply)}`;
  if (flow.secmark !== undefined) s += `,"secmark":${jsonValue(flow.secmark)}`;
  if (flow.secctx !== undefined) s += `,"secctx":${jsonString(flow.secctx)}`;
  if (flow.timestampStart !== undefined) s += `,"timestampStart":${flow.timestampStart}`;
  if (flow.timestampStop !== undefined) s += `,"timestampStop":${flow.timestampStop}`;
  if (flow.timestampEvent !== undefined) s += `,"timestampEvent":${flow.timestampEvent}`;
  if (flow.labels !== undefined) s += `,"labels":[${labelBits(flow.labels).join(",")}]`;
  if (flow.labelsMask !== undefined) {
    s += `,"labelsMask":[${labelBits(flow.labelsMask).join(",")}]`;
  }
  if (flow.synproxy !== undefined) s += `,"synproxy":${jsonValue(flow.synproxy)}`;
  if (flow.unknown !== undefined) s += `,"unknown":${jsonValue(flow.unknown)}`;
  return `${s}}`;
}

/** The numbers of the bits set in a little-endian label bit set.
 *
 * @example
 * ```ts
 * import { labelBits } from "@ctnl/conntrack";
 * import { deepStrictEqual } from "node:assert/strict";
 *
 * deepStrictEqual(labelBits(new Uint8Array([0b101, 0, 0x80])), [0, 2, 23]);
 * ```
 */
export function labelBits(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0) continue;
    for (let bit = 0; bit < 8; bit++) if (b & (1 << bit)) out.push(i * 8 + bit);
  }
  return out;
}

/**
 * What a value becomes in {@link flowToObject}: bigints decimal strings,
 * byte arrays arrays of numbers (labels: their bit numbers), absent keys
 * left out.
 */
export type Plain<T> = T extends bigint ? string
  : T extends Uint8Array ? number[]
  : T extends readonly (infer E)[] ? Plain<E>[]
  : T extends object ? { [K in keyof T]?: Plain<Exclude<T[K], undefined>> }
  : T;

/**
 * A flow as plain JSON-safe data ({@link flowToObject}), with its status flags
 * by name and each tuple's `protocolName`.
 */
export type FlowObject = Omit<Plain<Flow>, "orig" | "reply" | "master"> & {
  orig?: Plain<Tuple> & { protocolName?: string };
  reply?: Plain<Tuple> & { protocolName?: string };
  master?: Plain<Tuple> & { protocolName?: string };
  statusFlags: StatusFlag[];
};

/** The keys of {@link Flow} (and its parts) whose values are 64-bit: kept exact as strings. */
const BIG_KEYS = new Set([
  "packets",
  "bytes",
  "timestampStart",
  "timestampStop",
  "timestampEvent",
  "handshakeSeq",
]);

/**
 * A flow as plain data for `JSON.stringify`, `structuredClone` or a web
 * response: the same keys and values as {@link flowToJson}'s line, but an
 * object, with the 64-bit values (counters, timestamps) as exact decimal
 * strings. `console.log(flow)` shows the flow itself readably already.
 *
 * @example
 * ```ts
 * import { flowToObject, newFlow } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const flow = { ...newFlow("ipv4"), status: 2, countersOrig: { packets: 3n, bytes: 2n ** 60n } };
 * const plain = flowToObject(flow);
 * equal(plain.countersOrig?.bytes, "1152921504606846976");
 * equal(JSON.stringify(plain.statusFlags), '["SEEN_REPLY"]');
 * ```
 */
export function flowToObject(flow: Flow): FlowObject {
  return JSON.parse(
    flowToJson(flow),
    (key: string, value: unknown, context?: { source?: string }) =>
      BIG_KEYS.has(key) && typeof value === "number" ? context?.source ?? String(value) : value,
  );
}
