/**
 * What `ctnl top` shows of a flow or of a group of flows (a {@link TopRow}),
 * the keys it sorts by and groups by, and one refresh pass over a stream of
 * flows ({@link collect}): counters sampled for rates, rows filtered and cut
 * down to the best N.
 *
 * @module
 */

import type { Flow } from "../../mod.ts";
import { PROTOCOL_NAMES } from "../../src/protocols.ts";
import { SUMMARY_KEYS, summaryKey } from "../../src/summary.ts";
import { type CounterSamples, TopN } from "./rates.ts";
import { endpoint } from "./units.ts";

/** One row: a flow, or (with `--by`) a group of flows. */
export interface TopRow {
  /** The flow id (ungrouped) or the group's key text. */
  key: string;
  /** Breaks ties in the order: the flow id, or the group's number. */
  readonly order: number;
  /** The flow itself (ungrouped rows only): what `d` deletes. */
  readonly flow: Flow | undefined;
  /** The group's values, one per `--by` key (grouped rows only). */
  readonly group: readonly string[];
  /** Protocol, state, source and destination: filled by {@link describe} when needed. */
  proto: string;
  state: string;
  src: string;
  dst: string;
  /** Flows in the row (1 ungrouped). */
  flows: number;
  /** Whether the flow (or a flow of the group) has counters: accounting was on when it started. */
  accounted: boolean;
  /** Bytes, both directions (0 without accounting). */
  bytes: number;
  /** Packets, both directions. */
  packets: number;
  /** Bytes per second since the previous pass; undefined on the first pass or without accounting. */
  bytesRate: number | undefined;
  /** Packets per second. */
  packetsRate: number | undefined;
  /** Seconds since the flow started (needs timestamps); the oldest flow of a group. */
  age: number | undefined;
  /** Seconds until the flow expires; the longest of a group. */
  timeout: number | undefined;
}

/** How the rows may be sorted: the key, its column heading, numbers first biggest. */
export const SORT_KEYS = [
  { key: "rate", column: "BYTES/S", numeric: true },
  { key: "prate", column: "PKTS/S", numeric: true },
  { key: "bytes", column: "BYTES", numeric: true },
  { key: "packets", column: "PACKETS", numeric: true },
  { key: "flows", column: "FLOWS", numeric: true },
  { key: "age", column: "AGE", numeric: true },
  { key: "timeout", column: "TIMEOUT", numeric: true },
  { key: "proto", column: "PROTO", numeric: false },
  { key: "state", column: "STATE", numeric: false },
  { key: "src", column: "SOURCE", numeric: false },
  { key: "dst", column: "DESTINATION", numeric: false },
  { key: "group", column: "GROUP", numeric: false },
] as const;

/** A sort key of {@link SORT_KEYS}. */
export type SortKey = typeof SORT_KEYS[number]["key"];

/** The sort keys that make sense ungrouped, or grouped. */
export function sortKeys(grouped: boolean): SortKey[] {
  const flowOnly = new Set<string>(["flows", "group"]);
  const groupOnly = new Set<string>(["age", "timeout", "proto", "state", "src", "dst"]);
  return SORT_KEYS.map((s) => s.key).filter((k) => !(grouped ? groupOnly : flowOnly).has(k));
}

function sortValue(row: TopRow, key: SortKey): number | string | undefined {
  switch (key) {
    case "rate":
      return row.bytesRate;
    case "prate":
      return row.packetsRate;
    case "group":
      return row.group.join(" ");
    default:
      return row[key];
  }
}

/**
 * The order of rows for `key`: numbers biggest first, text A to Z (`reverse`
 * turns it round); rows without a value (no rate yet) last either way; ties
 * broken by bytes, then key, so the order is stable between refreshes.
 *
 * @example
 * ```ts
 * import { compareRows, type TopRow } from "./rows.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * const row = (key: string, order: number, bytesRate?: number) =>
 *   ({ key, order, bytesRate, bytes: 0 }) as TopRow;
 * const rows = [row("a", 1, 5), row("b", 2), row("c", 3, 50)];
 * deepEqual(rows.sort(compareRows("rate", false)).map((r) => r.key), ["c", "a", "b"]);
 * deepEqual(rows.sort(compareRows("rate", true)).map((r) => r.key), ["a", "c", "b"]);
 * ```
 */
export function compareRows(key: SortKey, reverse: boolean): (a: TopRow, b: TopRow) => number {
  const numeric = SORT_KEYS.find((s) => s.key === key)!.numeric;
  const sign = (numeric ? -1 : 1) * (reverse ? -1 : 1);
  return (a, b) => {
    const x = sortValue(a, key), y = sortValue(b, key);
    if (x === undefined || y === undefined) {
      if (x !== y) return x === undefined ? 1 : -1;
    } else if (x !== y) {
      return (x < y ? -1 : 1) * sign;
    }
    if (a.bytes !== b.bytes) return b.bytes - a.bytes;
    return a.order - b.order;
  };
}

/**
 * The keys `--by` takes: those of `ctnl summary` (the library's
 * `SUMMARY_KEYS`); `src/24`, `dst/64`, `src/24/64` (IPv4/IPv6 lengths) group
 * addresses by prefix.
 */
export const GROUP_KEYS: readonly string[] = SUMMARY_KEYS;

/** Extracts one `--by` value from a flow. */
export type GroupKey = (flow: Flow) => string;

function protoName(n: number | undefined): string {
  return n === undefined ? "?" : PROTOCOL_NAMES[n] ?? String(n);
}

function stateName(flow: Flow): string {
  return (flow.tcp ?? flow.sctp ?? flow.dccp)?.stateName ?? "";
}

/**
 * The value extractor for a `--by` key (`dport`, `src/24`, …), or a
 * `RangeError` naming what is allowed.
 *
 * @example
 * ```ts
 * import { groupKey } from "./rows.ts";
 * import { newFlow } from "../../src/flow.ts";
 * import { equal } from "node:assert/strict";
 *
 * const flow = newFlow("ipv4");
 * flow.orig = { ...flow.orig, src: "10.1.2.3", protocol: 6 };
 * equal(groupKey("src/24")(flow), "10.1.2.0/24");
 * equal(groupKey("proto")(flow), "tcp");
 * flow.orig = { ...flow.orig, src: "fd00:1:2:3::9" };
 * equal(groupKey("src/48")(flow), "fd00:1:2::/48");
 * ```
 */
export function groupKey(text: string): GroupKey {
  // The keys of ctnl summary, from the library: one definition of each.
  return summaryKey(text).of;
}

function bytesOf(flow: Flow): number {
  const o = flow.countersOrig, r = flow.countersReply;
  return (o === undefined ? 0 : Number(o.bytes)) + (r === undefined ? 0 : Number(r.bytes));
}

function packetsOf(flow: Flow): number {
  const o = flow.countersOrig, r = flow.countersReply;
  return (o === undefined ? 0 : Number(o.packets)) + (r === undefined ? 0 : Number(r.packets));
}

/**
 * The row of one flow at `now` (milliseconds), its rates from a delta over
 * `seconds` (`rated`); the text columns stay empty until {@link describe}.
 */
export function flowRow(
  flow: Flow,
  rated: boolean,
  delta: { readonly bytes: number; readonly packets: number },
  seconds: number | undefined,
  now: number,
  bytes: number = bytesOf(flow),
  packets: number = packetsOf(flow),
): TopRow {
  const start = flow.timestampStart;
  const rate = rated && seconds !== undefined && seconds > 0;
  return {
    key: "",
    order: flow.id ?? 0,
    flow,
    group: [],
    proto: "",
    state: "",
    src: "",
    dst: "",
    flows: 1,
    accounted: flow.countersOrig !== undefined,
    bytes,
    packets,
    bytesRate: rate ? delta.bytes / seconds : undefined,
    packetsRate: rate ? delta.packets / seconds : undefined,
    age: start === undefined ? undefined : Math.max(0, (now - Number(start) / 1e6) / 1000),
    timeout: flow.timeout,
  };
}

/** Fills the text columns of a flow's row (once); returns it. */
export function describe(row: TopRow): TopRow {
  const flow = row.flow;
  if (flow === undefined || row.key !== "") return row;
  const o = flow.orig;
  row.proto = protoName(o.protocol);
  row.state = stateName(flow);
  row.src = endpoint(o.src, o.srcPort);
  row.dst = endpoint(o.dst, o.dstPort);
  row.key = flow.id !== undefined ? String(flow.id) : `${row.proto} ${row.src} ${row.dst}`;
  return row;
}

/** The text a filter is matched against: protocol, state, source, destination or group. */
export function rowText(row: TopRow): string {
  return row.group.length > 0
    ? row.group.join(" ")
    : `${row.proto} ${row.state} ${row.src} ${row.dst}`;
}

/** What one pass is asked for. */
export interface PassOptions {
  /** Rows to keep. */
  readonly limit: number;
  readonly sort: SortKey;
  readonly reverse: boolean;
  /** Keep rows whose {@link rowText} contains this (case-insensitive). */
  readonly filter?: string;
  /** `--by`: group by these keys. */
  readonly by?: readonly GroupKey[];
  /** Stop early when this returns true (the user quit). */
  readonly stop?: () => boolean;
}

/** What one pass over the table found. */
export interface Frame {
  /** The rows to show, in order. */
  readonly rows: TopRow[];
  /** Entries in the table. */
  readonly total: number;
  /** Rows (flows, or groups) that matched the filter. */
  readonly matched: number;
  /** Entries with counters (accounting on when they started). */
  readonly counted: number;
  /** Entries with a start timestamp. */
  readonly stamped: number;
  /** Entries per protocol name. */
  readonly protocols: ReadonlyMap<string, number>;
  /** Seconds the rates are over (undefined on the first pass). */
  readonly seconds: number | undefined;
  /** When the pass began (milliseconds). */
  readonly at: number;
}

/**
 * One refresh: streams `flows`, records every flow's counters in `samples`
 * (for the next pass's deltas), and keeps the best `limit` rows. Memory is
 * `limit` rows (plus one per group with `by`), and the samples.
 *
 * @example Rates over two passes
 * ```ts
 * import { collect } from "./rows.ts";
 * import { CounterSamples } from "./rates.ts";
 * import { newFlow } from "../../src/flow.ts";
 * import { equal } from "node:assert/strict";
 *
 * const flow = (id: number, bytes: bigint) => {
 *   const f = newFlow("ipv4");
 *   f.id = id;
 *   f.countersOrig = { bytes, packets: 1n };
 *   return f;
 * };
 * async function* table(...flows: ReturnType<typeof newFlow>[]) { yield* flows; }
 * const samples = new CounterSamples();
 * const options = { limit: 1, sort: "rate", reverse: false } as const;
 * await collect(table(flow(1, 0n), flow(2, 0n)), samples, options, 0);
 * const frame = await collect(table(flow(1, 500n), flow(2, 4000n)), samples, options, 2000);
 * equal(frame.rows[0]!.key, "2");
 * equal(frame.rows[0]!.bytesRate, 2000);
 * ```
 */
export async function collect(
  flows: AsyncIterable<Flow> | Iterable<Flow>,
  samples: CounterSamples,
  options: PassOptions,
  now: number = Date.now(),
): Promise<Frame> {
  samples.begin(now);
  const seconds = samples.seconds;
  const compare = compareRows(options.sort, options.reverse);
  const top = new TopN<TopRow>(options.limit, compare);
  const needle = options.filter?.toLowerCase() || undefined;
  const textSort = !SORT_KEYS.find((k) => k.key === options.sort)!.numeric;
  const groups = options.by !== undefined && options.by.length > 0
    ? new Map<string, TopRow>()
    : undefined;
  const protocols = new Map<number | undefined, number>();
  let total = 0, matched = 0, counted = 0, stamped = 0, complete = true;
  for await (const flow of flows) {
    if (options.stop?.()) {
      complete = false;
      break;
    }
    total++;
    const p = flow.orig.protocol;
    protocols.set(p, (protocols.get(p) ?? 0) + 1);
    if (flow.timestampStart !== undefined) stamped++;
    let rated = false;
    const bytes = bytesOf(flow), packets = packetsOf(flow);
    if (flow.countersOrig !== undefined) {
      counted++;
      if (flow.id !== undefined) rated = samples.record(flow.id, bytes, packets);
    }
    const row = flowRow(flow, rated, samples, seconds, now, bytes, packets);
    if (groups === undefined) {
      if (needle !== undefined && !rowText(describe(row)).toLowerCase().includes(needle)) continue;
      matched++;
      top.push(textSort ? describe(row) : row);
      continue;
    }
    const values = options.by!.map((key) => key(flow));
    const key = values.join("\u0000");
    const g = groups.get(key);
    if (g === undefined) {
      const group = { ...row, key: values.join(" "), order: groups.size, flow: undefined };
      groups.set(key, { ...group, group: values });
      continue;
    }
    g.flows++;
    g.accounted ||= row.accounted;
    g.bytes += row.bytes;
    g.packets += row.packets;
    if (row.bytesRate !== undefined) g.bytesRate = (g.bytesRate ?? 0) + row.bytesRate;
    if (row.packetsRate !== undefined) g.packetsRate = (g.packetsRate ?? 0) + row.packetsRate;
    if (row.age !== undefined && (g.age === undefined || row.age > g.age)) g.age = row.age;
    if (row.timeout !== undefined && (g.timeout === undefined || row.timeout > g.timeout)) {
      g.timeout = row.timeout;
    }
  }
  if (complete) samples.end();
  if (groups !== undefined) {
    for (const g of groups.values()) {
      if (needle !== undefined && !rowText(g).toLowerCase().includes(needle)) continue;
      matched++;
      top.push(g);
    }
  }
  const names = new Map<string, number>();
  for (const [p, n] of protocols) names.set(protoName(p), (names.get(protoName(p)) ?? 0) + n);
  const rows = top.sorted().map(describe);
  return { rows, total, matched, counted, stamped, protocols: names, seconds, at: now };
}
