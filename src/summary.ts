/**
 * Grouping a table: count, packets and bytes per group of flows (by source,
 * destination port, protocol and state, a `/24` prefix, …), as operators do
 * with `conntrack -L | awk | sort | uniq -c`. Memory grows with the number
 * of groups, never with the number of flows.
 *
 * @module
 */

import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "./address.ts";
import { ArgumentError, ArgumentRangeError } from "./errors.ts";
import { PROTOCOL_NAMES, stateName, TCP_STATES } from "./protocols.ts";
import { AF_INET, statusFlags } from "./constants.ts";
import * as S from "./scan.ts";
import type { Flow, Tuple } from "./types.ts";

/**
 * What flows can be grouped by. The address keys also take a prefix
 * length: `src/24` (IPv4 /24, IPv6 /24), `src/24/64` (IPv4 /24, IPv6 /64).
 *
 * @example
 * ```ts
 * import { SUMMARY_KEYS } from "@ctnl/conntrack";
 * import { ok } from "node:assert/strict";
 *
 * ok(SUMMARY_KEYS.includes("dport"));
 * ```
 */
export const SUMMARY_KEYS = [
  "src",
  "dst",
  "sport",
  "dport",
  "reply-src",
  "reply-dst",
  "reply-sport",
  "reply-dport",
  "proto",
  "state",
  "zone",
  "mark",
  "family",
  "status",
  "helper",
] as const;

/** One of {@link SUMMARY_KEYS}.
 *
 * @example
 * ```ts
 * import type { SummaryKeyName } from "@ctnl/conntrack";
 *
 * const key: SummaryKeyName = "reply-src";
 * void key;
 * ```
 */
export type SummaryKeyName = typeof SUMMARY_KEYS[number];

/** How to sort the groups of a {@link Summary} (largest first).
 *
 * @example
 * ```ts
 * import type { SummarySort } from "@ctnl/conntrack";
 *
 * const sort: SummarySort = "bytes";
 * void sort;
 * ```
 */
export type SummarySort = "count" | "packets" | "bytes";

/** Options of {@link summarize} and {@link Summarizer}.
 *
 * @example
 * ```ts
 * import type { SummaryOptions } from "@ctnl/conntrack";
 *
 * const options: SummaryOptions = { by: ["src/24", "dport"], sort: "bytes", top: 10 };
 * void options;
 * ```
 */
export interface SummaryOptions {
  /**
   * The keys, in order: names of {@link SUMMARY_KEYS}, an address key with a
   * prefix (`"src/24"`, `"dst/24/64"`), or a comma-separated list of them.
   */
  by: string | readonly string[];
  /** Order of the groups, largest first; ties in key order. Default `"count"`. */
  sort?: SummarySort;
  /** Only the first N groups (the totals still count every flow). */
  top?: number;
  /**
   * The name of a first key whose value is given to each
   * {@link Summarizer.add} (not taken from the flow): e.g. `"netns"`, with
   * each flow's namespace from `dumpAllNetns()`.
   */
  tag?: string;
}

/** One group of a {@link Summary}.
 *
 * @example
 * ```ts
 * import type { SummaryGroup } from "@ctnl/conntrack";
 *
 * const group: SummaryGroup = { key: ["tcp", "ESTABLISHED"], count: 3, packets: 10n, bytes: 900n };
 * void group;
 * ```
 */
export interface SummaryGroup {
  /** The group's value of each key, in the order of {@link Summary.by}; `"-"` where a flow has none. */
  key: string[];
  /** Flows in the group. */
  count: number;
  /** Packets of both directions (0 without accounting). */
  packets: bigint;
  /** Bytes of both directions (0 without accounting). */
  bytes: bigint;
}

/** The result of {@link summarize}.
 *
 * @example
 * ```ts
 * import { summarize } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const summary = summarize([], { by: "proto" });
 * equal(summary.total.count, 0);
 * equal(summary.groupCount, 0);
 * ```
 */
export interface Summary {
  /** The keys, canonical: `["src/24", "dport"]`. */
  by: string[];
  /** The groups, sorted, at most `top` of them. */
  groups: SummaryGroup[];
  /** How many groups there were before `top`. */
  groupCount: number;
  /** Every flow seen, in one group. */
  total: { count: number; packets: bigint; bytes: bigint };
  /** Whether any flow had counters (accounting on). */
  accounting: boolean;
}

type Extract = (flow: Flow) => string;

/**
 * A key's value read from an entry's bytes, through the attribute walk's
 * slots (src/scan.ts; the fast decoder builds its `Flow` from the same
 * slots): the same text {@link Extract} gives for the decoded entry.
 */
type ByteExtract = (b: Uint8Array, v: DataView, slots: Int32Array) => string;

/** Slot `i`'s u16 / u32 as text, or `absent`. */
function slotText(
  b: Uint8Array,
  v: DataView,
  s: Int32Array,
  i: number,
  size: 2 | 4,
  absent: string,
) {
  const value = S.slotValue(b, v, s, i, size);
  return value === undefined ? absent : String(value);
}

/** The address of slot pair `i` as text, `"-"` when absent. */
function addressText(b: Uint8Array, slots: Int32Array, i: number): string {
  const at = slots[i]!;
  if (at < 0) return "-";
  return slots[i + 1] === 4 ? formatIPv4(b, at) : formatIPv6(b, at);
}

/** {@link prefixOf} of the address of slot pair `i`. */
function prefixAt(
  b: Uint8Array,
  slots: Int32Array,
  i: number,
  v4: number,
  v6: number,
  v4Texts: Map<number, string>,
  scratch: Uint8Array,
): string {
  const at = slots[i]!;
  if (at < 0) return "-";
  if (slots[i + 1] === 4) {
    return v4Prefix(
      ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0,
      v4,
      v4Texts,
    );
  }
  for (let k = 0; k < 16; k++) {
    const keep = Math.max(0, Math.min(8, v6 - 8 * k));
    scratch[k] = b[at + k]! & (0xff << (8 - keep)) & 0xff;
  }
  return `${formatIPv6(scratch, 0)}/${v6}`;
}

/** `"-"` for a missing value, else its text. */
function text(value: string | number | undefined): string {
  return value === undefined ? "-" : String(value);
}

function tupleOf(flow: Flow, reply: boolean): Tuple {
  return reply ? flow.reply : flow.orig;
}

/**
 * The address at `prefix` bits (`v4`, `v6` per family): `10.1.2.0/24`.
 * IPv4 text is read digit by digit and each prefix's text made once (in
 * `v4Texts`, one per group): no regex, array or string per flow.
 */
function prefixOf(
  address: string | undefined,
  v4: number,
  v6: number,
  v4Texts: Map<number, string>,
): string {
  if (address === undefined) return "-";
  const n = ipv4Number(address);
  if (n >= 0) return v4Prefix(n, v4, v4Texts);
  const bytes = parseIPv4(address) ?? parseIPv6(address);
  if (bytes === undefined) return address;
  const bits = bytes.length === 4 ? v4 : v6;
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  return `${bytes.length === 4 ? formatIPv4(bytes, 0) : formatIPv6(bytes, 0)}/${bits}`;
}

/** The text of IPv4 address `n` at `v4` bits, made once per prefix (kept in `v4Texts`). */
function v4Prefix(n: number, v4: number, v4Texts: Map<number, string>): string {
  const masked = v4 === 0 ? 0 : (n & (~0 << (32 - v4))) >>> 0;
  let text = v4Texts.get(masked);
  if (text === undefined) {
    text = `${masked >>> 24}.${(masked >>> 16) & 0xff}.${(masked >>> 8) & 0xff}.${
      masked & 0xff
    }/${v4}`;
    v4Texts.set(masked, text);
  }
  return text;
}

/** The 32-bit number of dotted-quad text as inet_ntop writes it, or -1. */
function ipv4Number(text: string): number {
  let n = 0, part = 0, digits = 0, dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + c - 48;
      if (part > 255) return -1;
      digits++;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return n * 256 + part;
}

function prefixLength(text: string, max: number, spec: string, family = ""): number {
  const n = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(n)) {
    throw new ArgumentError("summary.by", spec, `"${text}" in "${spec}" is not a prefix length`);
  }
  if (n > max) {
    throw new ArgumentRangeError(
      "summary.by",
      spec,
      `prefix length ${n} is too long${family} (0-${max})`,
    );
  }
  return n;
}

/**
 * One grouping key: its canonical name and the value of a flow, as
 * {@link Summarizer} uses them (`ctnl top --by` too).
 *
 * @example
 * ```ts
 * import { newFlow, summaryKey } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const flow = newFlow("ipv4");
 * flow.orig = { ...flow.orig, src: "10.1.2.3" };
 * equal(summaryKey("src/24").of(flow), "10.1.2.0/24");
 * equal(summaryKey("dport").of(flow), "-");
 * ```
 */
export function summaryKey(spec: string): { name: string; of: (flow: Flow) => string } {
  const [name, of] = keyOf(spec);
  return { name, of };
}

/** The extractors of one key spec (from a `Flow`, from the bytes), and its canonical text. */
function keyOf(spec: string): [string, Extract, ByteExtract] {
  const [name, v4Text, v6Text, extra] = spec.split("/");
  if (name === "src" || name === "dst" || name === "reply-src" || name === "reply-dst") {
    const reply = name.startsWith("reply-");
    const side = name.endsWith("src") ? "src" : "dst";
    const i = (reply ? S.REPLY : S.ORIG) + (side === "src" ? S.T_SRC : S.T_DST);
    if (v4Text === undefined) {
      return [name, (f) => text(tupleOf(f, reply)[side]), (b, _v, s) => addressText(b, s, i)];
    }
    if (extra !== undefined) {
      throw new ArgumentError("summary.by", spec, `"${spec}" has more than two prefix lengths`);
    }
    // One length: both families, IPv4 at most 32 (src/64 is IPv4 /32, IPv6 /64).
    const v4 = v6Text === undefined
      ? Math.min(prefixLength(v4Text, 128, spec), 32)
      : prefixLength(v4Text, 32, spec, " for IPv4");
    const v6 = v6Text === undefined
      ? prefixLength(v4Text, 128, spec)
      : prefixLength(v6Text, 128, spec);
    const texts = new Map<number, string>();
    const scratch = new Uint8Array(16);
    return [
      v6Text === undefined ? `${name}/${v6}` : `${name}/${v4}/${v6}`,
      (f) => prefixOf(tupleOf(f, reply)[side], v4, v6, texts),
      (b, _v, s) => prefixAt(b, s, i, v4, v6, texts, scratch),
    ];
  }
  if (v4Text !== undefined) {
    throw new ArgumentError("summary.by", spec, `only address keys take a prefix, not "${spec}"`);
  }
  const O = S.ORIG, R = S.REPLY;
  switch (name as SummaryKeyName) {
    case "sport":
      return [
        name!,
        (f) => text(f.orig.srcPort),
        (b, v, s) => slotText(b, v, s, O + S.T_SPORT, 2, "-"),
      ];
    case "dport":
      return [
        name!,
        (f) => text(f.orig.dstPort),
        (b, v, s) => slotText(b, v, s, O + S.T_DPORT, 2, "-"),
      ];
    case "reply-sport":
      return [
        name!,
        (f) => text(f.reply.srcPort),
        (b, v, s) => slotText(b, v, s, R + S.T_SPORT, 2, "-"),
      ];
    case "reply-dport":
      return [
        name!,
        (f) => text(f.reply.dstPort),
        (b, v, s) => slotText(b, v, s, R + S.T_DPORT, 2, "-"),
      ];
    case "proto":
      return [name!, (f) => protocolText(f.orig.protocol), (b, _v, s) => {
        const at = s[O + S.T_PROTO]!;
        return protocolText(at < 0 ? undefined : b[at]);
      }];
    case "state":
      return [name!, (f) => (f.tcp ?? f.sctp ?? f.dccp)?.stateName ?? "-", (b, _v, s) => {
        // the walk leaves SCTP and DCCP entries to the decoder: a state here is TCP's
        return s[S.S_TCP]! < 0 ? "-" : stateName(TCP_STATES, b[s[S.S_TCP_STATE]!]!);
      }];
    case "zone":
      return [name!, (f) => String(f.zone ?? 0), (b, v, s) => slotText(b, v, s, S.S_ZONE, 2, "0")];
    case "mark":
      return [name!, (f) => String(f.mark ?? 0), (b, v, s) => slotText(b, v, s, S.S_MARK, 4, "0")];
    case "family":
      return [name!, (f) => f.family, (_b, _v, s) => s[S.S_FAMILY] === AF_INET ? "ipv4" : "ipv6"];
    case "status":
      return [name!, (f) => statusText(f.status), (_b, v, s) => {
        const at = s[S.S_STATUS]!;
        return statusText(at < 0 ? 0 : v.getUint32(at, false));
      }];
    case "helper":
      // the walk leaves entries with a helper to the decoder
      return [name!, (f) => f.helper ?? "-", () => "-"];
  }
  throw new ArgumentError(
    "summary.by",
    spec,
    `unknown key "${spec}" (one of ${
      SUMMARY_KEYS.join(", ")
    }; addresses also as src/24, src/24/64)`,
  );
}

function protocolText(p: number | undefined): string {
  return p === undefined ? "-" : PROTOCOL_NAMES[p] ?? String(p);
}

function statusText(status: number): string {
  return statusFlags(status).join(",") || "-";
}

/** The key specs of `by`, split on commas, trimmed. */
function specs(by: string | readonly string[]): string[] {
  const list = (typeof by === "string" ? [by] : [...by]).flatMap((s) => {
    if (typeof s !== "string") throw new ArgumentError("summary.by", s, "keys must be strings");
    return s.split(",");
  }).map((s) => s.trim());
  if (list.length === 0 || list.some((s) => s === "")) {
    throw new ArgumentError("summary.by", by, "needs at least one key, and no empty ones");
  }
  return list;
}

const SORTS: readonly SummarySort[] = ["count", "packets", "bytes"];

/**
 * Adds flows one at a time into groups; {@link Summarizer.result} gives the
 * {@link Summary}. Holds one entry per group, nothing per flow.
 *
 * @example
 * ```ts
 * import { newFlow, Summarizer } from "@ctnl/conntrack";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 *
 * const s = new Summarizer({ by: "proto,dport" });
 * for (const port of [53, 53, 443]) {
 *   const flow = newFlow("ipv4");
 *   flow.orig = { ...flow.orig, protocol: 17, dstPort: port };
 *   s.add(flow);
 * }
 * assertEquals(s.result().groups.map((g) => [g.key, g.count]), [
 *   [["udp", "53"], 2],
 *   [["udp", "443"], 1],
 * ]);
 * ```
 */
export class Summarizer {
  readonly #by: string[];
  readonly #extract: Extract[];
  readonly #fromBytes: ByteExtract[];
  readonly #slots = new Int32Array(S.SLOTS);
  readonly #tagged: boolean;
  readonly #sort: SummarySort;
  readonly #top: number;
  readonly #groups = new Map<string, SummaryGroup>();
  #count = 0;
  #packets = 0n;
  #bytes = 0n;
  #accounting = false;

  /** Checks the options; throws an `ArgumentError` for a bad key, sort or top. */
  constructor(options: SummaryOptions) {
    if (typeof options !== "object" || options === null) {
      throw new ArgumentError("summary", options, "options must be an object with `by`");
    }
    const keys = specs(options.by).map(keyOf);
    this.#tagged = options.tag !== undefined;
    if (this.#tagged && typeof options.tag !== "string") {
      throw new ArgumentError("summary.tag", options.tag, "the tag must be a string");
    }
    this.#by = [...(this.#tagged ? [options.tag!] : []), ...keys.map(([name]) => name)];
    this.#extract = keys.map(([, extract]) => extract);
    this.#fromBytes = keys.map(([, , extract]) => extract);
    const sort = options.sort ?? "count";
    if (!SORTS.includes(sort)) {
      throw new ArgumentError("summary.sort", sort, `"${sort}" is not one of ${SORTS.join(", ")}`);
    }
    this.#sort = sort;
    const top = options.top ?? Infinity;
    if (top !== Infinity && !(Number.isSafeInteger(top) && top > 0)) {
      throw new ArgumentRangeError("summary.top", top, `${top} is not a positive integer`);
    }
    this.#top = top;
  }

  /** Counts one flow in its group; `tag` is its value of the `tag` key, if the options name one. */
  add(flow: Flow, tag?: string): void {
    const key = this.#extract.map((extract) => extract(flow));
    const o = flow.countersOrig;
    const r = flow.countersReply;
    if (o === undefined && r === undefined) this.#count1(key, tag, undefined, 0n);
    else {this.#count1(
        key,
        tag,
        (o?.packets ?? 0n) + (r?.packets ?? 0n),
        (o?.bytes ?? 0n) + (r?.bytes ?? 0n),
      );}
  }

  /**
   * Counts the entry of one netlink message (`offset`, `length` in `bytes`,
   * as `Conntrack.dumpMessages` hands them over) without decoding it into a
   * `Flow`: its keys are read from the bytes. Returns false, counting
   * nothing, for an entry the attribute walk leaves to the decoder (NAT,
   * helpers, SCTP, …): decode it and {@link add} it.
   */
  addMessage(
    bytes: Uint8Array,
    view: DataView,
    offset: number,
    length: number,
    tag?: string,
  ): boolean {
    const s = this.#slots;
    if (!S.scanEntry(bytes, view, offset, length, s)) return false;
    const key = this.#fromBytes.map((extract) => extract(bytes, view, s));
    const o = s[S.S_COUNTERS_ORIG]! >= 0, r = s[S.S_COUNTERS_REPLY]! >= 0;
    if (!o && !r) {
      this.#count1(key, tag, undefined, 0n);
      return true;
    }
    const u64 = (i: number) => (s[i]! < 0 ? 0n : view.getBigUint64(s[i]!, false));
    const packets = (o ? u64(S.S_COUNTERS_ORIG + 1) : 0n) + (r ? u64(S.S_COUNTERS_REPLY + 1) : 0n);
    const bytes_ = (o ? u64(S.S_COUNTERS_ORIG + 2) : 0n) + (r ? u64(S.S_COUNTERS_REPLY + 2) : 0n);
    this.#count1(key, tag, packets, bytes_);
    return true;
  }

  /** One flow into its group; `packets` undefined when it has no counters. */
  #count1(key: string[], tag: string | undefined, packets: bigint | undefined, bytes: bigint) {
    if (this.#tagged) key.unshift(tag ?? "-");
    const id = key.join("\0");
    let group = this.#groups.get(id);
    if (group === undefined) {
      group = { key, count: 0, packets: 0n, bytes: 0n };
      this.#groups.set(id, group);
    }
    group.count++;
    this.#count++;
    if (packets === undefined) return;
    this.#accounting = true;
    group.packets += packets;
    group.bytes += bytes;
    this.#packets += packets;
    this.#bytes += bytes;
  }

  /** The groups so far, sorted, the first `top` of them. */
  result(): Summary {
    const sort = this.#sort;
    const value = (g: SummaryGroup): bigint =>
      sort === "count" ? BigInt(g.count) : sort === "packets" ? g.packets : g.bytes;
    const groups = [...this.#groups.values()].sort((a, b) => {
      const d = value(b) - value(a);
      if (d !== 0n) return d > 0n ? 1 : -1;
      return compareKeys(a.key, b.key);
    });
    return {
      by: [...this.#by],
      groups: groups.slice(0, this.#top),
      groupCount: groups.length,
      total: { count: this.#count, packets: this.#packets, bytes: this.#bytes },
      accounting: this.#accounting,
    };
  }
}

/** Numbers in numeric order, then text. */
function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    const nx = Number(x);
    const ny = Number(y);
    if (x !== "" && y !== "" && Number.isFinite(nx) && Number.isFinite(ny)) return nx - ny;
    return x < y ? -1 : 1;
  }
  return 0;
}

/**
 * Groups `flows` (any iterable: an array, `ct.dumpSync()`) by `options.by`.
 *
 * @example
 * ```ts
 * import { newFlow, summarize } from "@ctnl/conntrack";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 *
 * const flows = ["10.0.1.5", "10.0.1.9", "10.0.2.1"].map((src) => {
 *   const flow = newFlow("ipv4");
 *   flow.orig = { ...flow.orig, src };
 *   return flow;
 * });
 * const summary = summarize(flows, { by: "src/24" });
 * assertEquals(summary.groups.map((g) => [g.key[0], g.count]), [["10.0.1.0/24", 2], ["10.0.2.0/24", 1]]);
 * ```
 */
export function summarize(flows: Iterable<Flow>, options: SummaryOptions): Summary {
  const s = new Summarizer(options);
  for (const flow of flows) s.add(flow);
  return s.result();
}

/**
 * Groups an async stream of flows (`ct.dump()`), without holding the event
 * loop longer than the stream does.
 *
 * @example
 * ```ts
 * import { newFlow, summarizeAsync } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * async function* flows() {
 *   yield newFlow("ipv4");
 *   yield newFlow("ipv6");
 * }
 * const summary = await summarizeAsync(flows(), { by: "family" });
 * equal(summary.groupCount, 2);
 * ```
 */
export async function summarizeAsync(
  flows: AsyncIterable<Flow> | Iterable<Flow>,
  options: SummaryOptions,
): Promise<Summary> {
  const s = new Summarizer(options);
  for await (const flow of flows) s.add(flow);
  return s.result();
}
