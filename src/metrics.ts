/**
 * Conntrack metrics for Prometheus: {@link collectMetrics} walks one table
 * (a streaming dump, without holding the event loop) and reads its
 * counters into a typed {@link ConntrackMetrics}; {@link metricFamilies}
 * turns that into metric families (names, types, help, labelled samples);
 * {@link formatPrometheus} and {@link formatOpenMetrics} write them in the
 * Prometheus text exposition format 0.0.4 and in OpenMetrics 1.0.
 * {@link MetricsExporter} is what a server needs around them: one table or
 * every namespace's, scrapes that never overlap, event counting. The HTTP
 * layer is the caller's (`ctnl exporter` is a thin `Deno.serve` over it).
 *
 * @module
 */

import { Conntrack } from "./conntrack.ts";
import { ArgumentRangeError, ClosedError, DumpInterruptedError } from "./errors.ts";
import { listNetns } from "./netns.ts";
import { PROTOCOL_NAMES } from "./protocols.ts";
import type { CpuStats, Flow } from "./types.ts";

/** Options of {@link collectMetrics}.
 *
 * @example
 * ```ts
 * import type { MetricsOptions } from "@ctnl/conntrack";
 *
 * const options: MetricsOptions = { byMark: true, topN: 10 };
 * void options; // await collectMetrics(ct, options)
 * ```
 */
export interface MetricsOptions {
  /** Count entries by zone (default true: at most 65536 zones, usually a few). */
  byZone?: boolean | undefined;
  /** Count entries by mark (default false: a mark per entry would be one series per entry). */
  byMark?: boolean | undefined;
  /**
   * Report the `topN` source and destination addresses with the most
   * entries (default 0: off; at most 1000). Memory grows with the number of
   * distinct addresses during the walk; the output stays `topN` rows.
   */
  topN?: number | undefined;
  /** Skip the dump: only the counters (entries, limit, per-CPU statistics). */
  countersOnly?: boolean | undefined;
  /** The dump's `prefetch` option (default true: receive ahead on Deno's blocking pool). */
  prefetch?: boolean | undefined;
}

/** Entries of one family, protocol and state (`state` is `""` for stateless protocols).
 *
 * @example
 * ```ts
 * import type { FlowCount } from "@ctnl/conntrack";
 *
 * const c: FlowCount = { family: "ipv4", protocol: "tcp", state: "ESTABLISHED", count: 3 };
 * void c;
 * ```
 */
export interface FlowCount {
  /** `ipv4` or `ipv6`. */
  family: string;
  /** The protocol's name (`tcp`, `udp`, `icmp`, …; its number when it has none). */
  protocol: string;
  /** The protocol state (TCP, SCTP, DCCP), else `""`. */
  state: string;
  /** How many entries. */
  count: number;
}

/** A value (zone, mark, address) and how many entries have it.
 *
 * @example
 * ```ts
 * import type { KeyCount } from "@ctnl/conntrack";
 *
 * const top: KeyCount<string>[] = [{ key: "10.0.0.1", count: 12 }];
 * void top;
 * ```
 */
export interface KeyCount<K> {
  /** The value. */
  key: K;
  /** How many entries have it. */
  count: number;
}

/** What {@link collectMetrics} read of one table.
 *
 * @example
 * ```ts
 * import type { ConntrackMetrics } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const m: ConntrackMetrics = {
 *   entries: 2, maxEntries: 262144, cpus: [], expectations: undefined,
 *   flows: [{ family: "ipv4", protocol: "udp", state: "", count: 2 }],
 *   zones: [{ key: 0, count: 2 }], marks: undefined, topSources: undefined,
 *   topDestinations: undefined, dumped: 2, interrupted: false, durationSeconds: 0.001,
 * };
 * equal(m.flows.reduce((n, f) => n + f.count, 0), m.dumped);
 * ```
 */
export interface ConntrackMetrics {
  /** Entries in the table (`conntrack -C`). */
  entries: number;
  /** The table's limit (`nf_conntrack_max`). */
  maxEntries: number;
  /** The per-CPU statistics (`conntrack -S`). */
  cpus: CpuStats[];
  /** Expectations in the expectation table, when known. */
  expectations: number | undefined;
  /** Entries by family, protocol and state, from the dump. */
  flows: FlowCount[];
  /** Entries by zone (undefined when not asked for). */
  zones: KeyCount<number>[] | undefined;
  /** Entries by mark (undefined when not asked for). */
  marks: KeyCount<number>[] | undefined;
  /** The sources (original direction) with the most entries, most first. */
  topSources: KeyCount<string>[] | undefined;
  /** The destinations (original direction) with the most entries, most first. */
  topDestinations: KeyCount<string>[] | undefined;
  /** Entries the dump saw (it may differ from `entries`: the table moves meanwhile). */
  dumped: number;
  /** The kernel marked the dump interrupted (`NLM_F_DUMP_INTR`). */
  interrupted: boolean;
  /** How long the collection took, in seconds. */
  durationSeconds: number;
}

/** How long counting may hold the event loop before it gives other tasks a turn, in ms. */
const TURN_MS = 4;

/** How a flow's state is counted: family, protocol, state number packed in one number. */
function flowKey(flow: Flow): number {
  const state = (flow.tcp ?? flow.sctp ?? flow.dccp)?.state ?? 255;
  return ((flow.family === "ipv6" ? 1 : 0) << 16) | ((flow.orig.protocol ?? 0) << 8) | state;
}

function add<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** The `n` keys with the highest counts, highest first (ties by key). */
function top<K>(map: Map<K, number>, n: number): KeyCount<K>[] {
  return [...map].map(([key, count]) => ({ key, count }))
    .sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, n);
}

function sortedCounts(map: Map<number, number>): KeyCount<number>[] {
  return [...map].sort((a, b) => a[0] - b[0]).map(([key, count]) => ({ key, count }));
}

/** The expectation table's size (a count over a dump), or undefined when it cannot be read. */
async function countExpectations(ct: Conntrack): Promise<number | undefined> {
  try {
    return await ct.expectations.count();
  } catch {
    return undefined;
  }
}

/**
 * Collects one table's metrics: the counters (entries, limit, per-CPU
 * statistics) and, unless `countersOnly`, a streaming dump (`ct.dump()`,
 * which waits for the kernel without holding the event loop) counted by
 * family, protocol and state, by zone, and as asked by mark and top
 * addresses. Memory is the counts, not the flows.
 *
 * @example Collect and print (needs root and `--allow-ffi`)
 * ```ts ignore
 * import { collectMetrics, Conntrack, formatPrometheus, metricFamilies } from "@ctnl/conntrack";
 *
 * using ct = Conntrack.open();
 * const m = await collectMetrics(ct, { topN: 5 });
 * console.log(m.entries, m.topSources);
 * console.log(formatPrometheus(metricFamilies(m)));
 * ```
 */
export async function collectMetrics(
  ct: Conntrack,
  options: MetricsOptions = {},
): Promise<ConntrackMetrics> {
  const topN = options.topN ?? 0;
  if (!Number.isInteger(topN) || topN < 0 || topN > 1000) {
    throw new ArgumentRangeError("topN", topN, `${topN} is not an integer from 0 to 1000`);
  }
  const started = performance.now();
  const states = new Map<number, number>();
  const stateNames = new Map<number, string>();
  const zones = options.byZone === false ? undefined : new Map<number, number>();
  const marks = options.byMark === true ? new Map<number, number>() : undefined;
  const sources = topN > 0 ? new Map<string, number>() : undefined;
  const destinations = topN > 0 ? new Map<string, number>() : undefined;
  let dumped = 0;
  let interrupted = false;
  if (options.countersOnly !== true) {
    try {
      let turn = performance.now();
      const dumpOptions = options.prefetch === undefined ? {} : { prefetch: options.prefetch };
      for await (const flow of ct.dump(undefined, dumpOptions)) {
        // Counting a batch the dump hands over at once must not hold the
        // event loop either: a turn every few milliseconds.
        if ((++dumped & 255) === 0 && performance.now() - turn > TURN_MS) {
          await new Promise((resolve) => setTimeout(resolve, 0));
          turn = performance.now();
        }
        const k = flowKey(flow);
        const n = states.get(k);
        if (n === undefined) {
          states.set(k, 1);
          stateNames.set(k, (flow.tcp ?? flow.sctp ?? flow.dccp)?.stateName ?? "");
        } else states.set(k, n + 1);
        if (zones !== undefined) add(zones, flow.zone ?? 0);
        if (marks !== undefined) add(marks, flow.mark ?? 0);
        if (sources !== undefined) add(sources, flow.orig.src ?? "");
        if (destinations !== undefined) add(destinations, flow.orig.dst ?? "");
      }
    } catch (error) {
      // Thrown after the last flow: what was counted stands, marked as such.
      if (!(error instanceof DumpInterruptedError)) throw error;
      interrupted = true;
    }
  }
  const [global, cpus] = await Promise.all([ct.globalStats(), ct.stats()]);
  const expectations = await countExpectations(ct);
  const flows: FlowCount[] = [...states].sort((a, b) => a[0] - b[0]).map(([k, count]) => {
    const number = (k >> 8) & 0xff;
    return {
      family: (k >> 16) === 1 ? "ipv6" : "ipv4",
      protocol: PROTOCOL_NAMES[number] ?? String(number),
      state: stateNames.get(k) ?? "",
      count,
    };
  });
  return {
    entries: global.entries,
    maxEntries: global.maxEntries,
    cpus,
    expectations,
    flows,
    zones: zones === undefined ? undefined : sortedCounts(zones),
    marks: marks === undefined ? undefined : sortedCounts(marks),
    topSources: sources === undefined ? undefined : top(sources, topN),
    topDestinations: destinations === undefined ? undefined : top(destinations, topN),
    dumped,
    interrupted,
    durationSeconds: (performance.now() - started) / 1000,
  };
}

/** One sample of a metric family: its labels and value.
 *
 * @example
 * ```ts
 * import type { Sample } from "@ctnl/conntrack";
 *
 * const s: Sample = { labels: { protocol: "tcp" }, value: 3 };
 * void s;
 * ```
 */
export interface Sample {
  /** Label names and values (names are `[a-zA-Z_][a-zA-Z0-9_]*`). */
  labels: Readonly<Record<string, string>>;
  /** The value. */
  value: number;
}

/**
 * A metric family: a name (without `_total` for a counter: the formatters
 * add it), its type, help, optional unit (the name then ends in `_UNIT`),
 * and its samples.
 *
 * @example
 * ```ts
 * import { formatPrometheus, type MetricFamily } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const f: MetricFamily = {
 *   name: "conntrack_stat_found", type: "counter", help: "Lookups that found an entry",
 *   samples: [{ labels: {}, value: 7 }],
 * };
 * equal(formatPrometheus([f]).split("\n")[2], "conntrack_stat_found_total 7");
 * ```
 */
export interface MetricFamily {
  /** The family's name (`conntrack_entries`; a counter's without `_total`). */
  name: string;
  /** `gauge` or `counter`. */
  type: "gauge" | "counter";
  /** One line of help. */
  help: string;
  /** The unit (OpenMetrics `# UNIT`), which the name ends with. */
  unit?: string | undefined;
  /** The samples. */
  samples: Sample[];
}

/** The per-CPU counters: the {@link CpuStats} key, the metric's name part, and its help. */
const CPU_COUNTERS: readonly (readonly [keyof CpuStats, string, string])[] = [
  ["found", "found", "Lookups that found an entry"],
  ["invalid", "invalid", "Packets conntrack could not track"],
  ["insert", "insert", "Entries inserted"],
  ["insertFailed", "insert_failed", "Entries that could not be inserted"],
  ["drop", "drop", "Packets dropped because an entry could not be made"],
  ["earlyDrop", "early_drop", "Entries dropped early to make room in a full table"],
  ["error", "error", "Packets that failed validation (ICMP errors)"],
  ["searchRestart", "search_restart", "Lookups restarted (hash resize, entry moved)"],
  ["clashResolve", "clash_resolve", "Insert clashes resolved"],
  ["chainTooLong", "chain_toolong", "Inserts refused because a hash chain was too long"],
];

function family(
  name: string,
  type: "gauge" | "counter",
  help: string,
  samples: Sample[],
): MetricFamily {
  return { name, type, help, samples };
}

/**
 * The metric families of one table's {@link ConntrackMetrics}, each sample
 * carrying `labels` too (e.g. `{ netns: "blue" }`). Families that were not
 * collected (marks, top addresses, expectations) are left out.
 *
 * @example
 * ```ts
 * import { type ConntrackMetrics, metricFamilies } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const m: ConntrackMetrics = {
 *   entries: 1, maxEntries: 100, cpus: [], expectations: undefined,
 *   flows: [{ family: "ipv4", protocol: "tcp", state: "ESTABLISHED", count: 1 }],
 *   zones: undefined, marks: undefined, topSources: undefined, topDestinations: undefined,
 *   dumped: 1, interrupted: false, durationSeconds: 0,
 * };
 * const flows = metricFamilies(m, { netns: "blue" }).find((f) => f.name === "conntrack_flows");
 * equal(flows?.samples[0]?.labels.state, "ESTABLISHED");
 * equal(flows?.samples[0]?.labels.netns, "blue");
 * ```
 */
export function metricFamilies(
  m: ConntrackMetrics,
  labels: Readonly<Record<string, string>> = {},
): MetricFamily[] {
  const one = (value: number): Sample[] => [{ labels, value }];
  const out: MetricFamily[] = [
    family("conntrack_entries", "gauge", "Entries in the conntrack table", one(m.entries)),
    family(
      "conntrack_entries_limit",
      "gauge",
      "The table's limit (nf_conntrack_max)",
      one(m.maxEntries),
    ),
  ];
  for (const [key, name, help] of CPU_COUNTERS) {
    const present = m.cpus.filter((s) => s[key] !== undefined);
    if (present.length === 0) continue;
    const sum = present.reduce((n, s) => n + (s[key] as number), 0);
    out.push(family(`conntrack_stat_${name}`, "counter", `${help}, all CPUs`, one(sum)));
    out.push(family(
      `conntrack_cpu_stat_${name}`,
      "counter",
      `${help}, per CPU`,
      present.map((s) => ({ labels: { ...labels, cpu: String(s.cpu) }, value: s[key] as number })),
    ));
  }
  if (m.expectations !== undefined) {
    out.push(family(
      "conntrack_expectations",
      "gauge",
      "Entries in the expectation table",
      one(m.expectations),
    ));
  }
  out.push(family(
    "conntrack_flows",
    "gauge",
    "Entries by family, protocol and state (from a dump)",
    m.flows.map((f) => ({
      labels: { ...labels, family: f.family, protocol: f.protocol, state: f.state },
      value: f.count,
    })),
  ));
  const counts = <K>(name: string, help: string, label: string, rows?: KeyCount<K>[]) => {
    if (rows === undefined) return;
    const samples = rows.map((r) => ({
      labels: { ...labels, [label]: String(r.key) },
      value: r.count,
    }));
    out.push(family(name, "gauge", help, samples));
  };
  counts("conntrack_zone_flows", "Entries by zone (from a dump)", "zone", m.zones);
  counts("conntrack_mark_flows", "Entries by mark (from a dump)", "mark", m.marks);
  counts(
    "conntrack_top_source_flows",
    "Entries of the source addresses with the most entries",
    "src",
    m.topSources,
  );
  counts(
    "conntrack_top_destination_flows",
    "Entries of the destination addresses with the most entries",
    "dst",
    m.topDestinations,
  );
  out.push(family(
    "conntrack_dump_flows",
    "gauge",
    "Entries the scrape's dump saw",
    one(m.dumped),
  ));
  out.push(family(
    "conntrack_dump_interrupted",
    "gauge",
    "Whether the kernel marked the dump interrupted (1: counts may be off)",
    one(m.interrupted ? 1 : 0),
  ));
  out.push({
    ...family(
      "conntrack_dump_duration_seconds",
      "gauge",
      "How long collecting this table took",
      one(m.durationSeconds),
    ),
    unit: "seconds",
  });
  return out;
}

/**
 * Merges lists of families (e.g. one per namespace): families of the same
 * name become one, their samples in order. The first list's help wins.
 *
 * @example
 * ```ts
 * import { mergeFamilies } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const a = [{ name: "x", type: "gauge" as const, help: "X", samples: [{ labels: { n: "a" }, value: 1 }] }];
 * const b = [{ name: "x", type: "gauge" as const, help: "X", samples: [{ labels: { n: "b" }, value: 2 }] }];
 * equal(mergeFamilies(a, b)[0]?.samples.length, 2);
 * ```
 */
export function mergeFamilies(...lists: readonly MetricFamily[][]): MetricFamily[] {
  const byName = new Map<string, MetricFamily>();
  for (const list of lists) {
    for (const f of list) {
      const seen = byName.get(f.name);
      if (seen === undefined) byName.set(f.name, { ...f, samples: [...f.samples] });
      else seen.samples.push(...f.samples);
    }
  }
  return [...byName.values()];
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function sampleLine(name: string, sample: Sample): string {
  const pairs = Object.entries(sample.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  const labels = pairs.length === 0 ? "" : `{${pairs.join(",")}}`;
  const v = sample.value;
  const value = Number.isFinite(v) ? String(v) : Number.isNaN(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
  return `${name}${labels} ${value}`;
}

/** The content type of {@link formatPrometheus}'s text. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
/** The content type of {@link formatOpenMetrics}'s text. */
export const OPENMETRICS_CONTENT_TYPE =
  "application/openmetrics-text; version=1.0.0; charset=utf-8";

/**
 * The families in the Prometheus text exposition format 0.0.4: `# HELP`,
 * `# TYPE`, then the samples; a counter's name ends in `_total` on all
 * three lines.
 *
 * @example
 * ```ts
 * import { formatPrometheus } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const text = formatPrometheus([
 *   { name: "conntrack_entries", type: "gauge", help: "Entries", samples: [{ labels: {}, value: 3 }] },
 * ]);
 * equal(text, "# HELP conntrack_entries Entries\n# TYPE conntrack_entries gauge\nconntrack_entries 3\n");
 * ```
 */
export function formatPrometheus(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    const name = f.type === "counter" ? `${f.name}_total` : f.name;
    out.push(`# HELP ${name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    out.push(`# TYPE ${name} ${f.type}`);
    for (const s of f.samples) out.push(sampleLine(name, s));
  }
  return out.join("\n") + "\n";
}

/**
 * The families in OpenMetrics 1.0 text: `# TYPE`, `# UNIT` (when the family
 * has one), `# HELP` under the family's name (a counter's without
 * `_total`), its samples (a counter's with `_total`), and `# EOF` last.
 *
 * @example
 * ```ts
 * import { formatOpenMetrics } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const text = formatOpenMetrics([
 *   { name: "conntrack_stat_drop", type: "counter", help: "Drops", samples: [{ labels: { cpu: "0" }, value: 1 }] },
 * ]);
 * equal(
 *   text,
 *   '# TYPE conntrack_stat_drop counter\n# HELP conntrack_stat_drop Drops\nconntrack_stat_drop_total{cpu="0"} 1\n# EOF\n',
 * );
 * ```
 */
export function formatOpenMetrics(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# TYPE ${f.name} ${f.type}`);
    if (f.unit !== undefined) out.push(`# UNIT ${f.name} ${f.unit}`);
    out.push(`# HELP ${f.name} ${escapeLabel(f.help)}`);
    const name = f.type === "counter" ? `${f.name}_total` : f.name;
    for (const s of f.samples) out.push(sampleLine(name, s));
  }
  out.push("# EOF");
  return out.join("\n") + "\n";
}

/**
 * Whether an HTTP `Accept` header asks for OpenMetrics (as Prometheus
 * does: `application/openmetrics-text;version=1.0.0,…;q=0.75,text/plain;…`),
 * comparing quality values.
 *
 * @example
 * ```ts
 * import { wantsOpenMetrics } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal(wantsOpenMetrics("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"), true);
 * equal(wantsOpenMetrics("text/plain"), false);
 * equal(wantsOpenMetrics(null), false);
 * ```
 */
export function wantsOpenMetrics(accept: string | null | undefined): boolean {
  if (accept === null || accept === undefined) return false;
  let om = -1;
  let text = -1;
  for (const part of accept.split(",")) {
    const [type = "", ...params] = part.trim().split(";").map((s) => s.trim());
    const q = params.find((p) => p.startsWith("q="));
    const quality = q === undefined ? 1 : Number(q.slice(2)) || 0;
    if (type === "application/openmetrics-text") om = Math.max(om, quality);
    else if (type === "text/plain" || type === "*/*" || type === "text/*") {
      text = Math.max(text, quality);
    }
  }
  return om > 0 && om >= text;
}

/** Options of {@link MetricsExporter.open}.
 *
 * @example
 * ```ts
 * import type { ExporterOptions } from "@ctnl/conntrack";
 *
 * const options: ExporterOptions = { allNetns: true, countEvents: true, topN: 10 };
 * void options; // MetricsExporter.open(options)
 * ```
 */
export interface ExporterOptions extends MetricsOptions {
  /** The namespace to export (a name under /run/netns, a path or a descriptor); default ctnl's own. */
  netns?: string | number | undefined;
  /** Export every namespace ({@link listNetns}), each sample labelled `netns`. */
  allNetns?: boolean | undefined;
  /** Count events (new, update, destroy, and overruns) on a subscription of each namespace. */
  countEvents?: boolean | undefined;
  /** The event socket's receive buffer, with `countEvents` (default 8 MiB). */
  bufferSize?: number | undefined;
}

/** What the event counter of one namespace has seen. */
interface EventCounts {
  new: number;
  update: number;
  destroy: number;
  overruns: number;
}

/** One exported table: its handle, its labels, its event counter. */
class Target {
  readonly ct: Conntrack;
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: EventCounts = { new: 0, update: 0, destroy: 0, overruns: 0 };
  errors = 0;
  readonly #stop = new AbortController();
  readonly #counting: boolean;

  constructor(ct: Conntrack, labels: Readonly<Record<string, string>>, options: ExporterOptions) {
    this.ct = ct;
    this.labels = labels;
    this.#counting = options.countEvents === true;
    if (this.#counting) this.#count(options.bufferSize);
  }

  async #count(bufferSize: number | undefined): Promise<void> {
    try {
      const events = this.ct.events({
        signal: this.#stop.signal,
        ...(bufferSize === undefined ? {} : { bufferSize }),
      });
      for await (const e of events) {
        if (e.type === "lost") this.counts.overruns = e.lost;
        else this.counts[e.type]++;
      }
    } catch {
      if (!this.#stop.signal.aborted) this.errors++;
    }
  }

  families(): MetricFamily[] {
    if (!this.#counting) return [];
    const c = this.counts;
    const samples = (["new", "update", "destroy"] as const)
      .map((type) => ({ labels: { ...this.labels, type }, value: c[type] }));
    return [
      family("conntrack_events", "counter", "Events received, by type", samples),
      family(
        "conntrack_events_overruns",
        "counter",
        "Times the kernel dropped events (ENOBUFS: the receive buffer overran)",
        [{ labels: this.labels, value: c.overruns }],
      ),
    ];
  }

  close(): void {
    this.#stop.abort();
    this.ct.close();
  }
}

/**
 * The collecting side of a Prometheus exporter: one table (or, with
 * `allNetns`, every namespace's, found afresh at each scrape), collected
 * with {@link collectMetrics} on handles kept open between scrapes. A
 * scrape asked for while one runs gets that one's result (scrapes never
 * overlap); the dump waits for the kernel without holding the event loop,
 * so a server stays responsive during a scrape of a million entries.
 * Besides the table's metrics: `ctnl_scrape_duration_seconds`,
 * `ctnl_scrapes_total`, `ctnl_scrapes_coalesced_total`,
 * `ctnl_scrape_errors_total` and `ctnl_collect_success` (per namespace),
 * and with `countEvents` `conntrack_events_total{type}` and
 * `conntrack_events_overruns_total`.
 *
 * @example A minimal server (needs root and `--allow-ffi --allow-net`)
 * ```ts ignore
 * import { MetricsExporter, wantsOpenMetrics } from "@ctnl/conntrack";
 *
 * using exporter = MetricsExporter.open({ countEvents: true });
 * Deno.serve({ port: 9883, hostname: "127.0.0.1" }, async (request) => {
 *   const om = wantsOpenMetrics(request.headers.get("accept"));
 *   const { body, contentType } = await exporter.render(om);
 *   return new Response(body, { headers: { "content-type": contentType } });
 * });
 * ```
 */
export class MetricsExporter implements Disposable {
  readonly #options: ExporterOptions;
  readonly #targets = new Map<string, Target>();
  #inflight: Promise<MetricFamily[]> | undefined;
  #scrapes = 0;
  #coalesced = 0;
  #closed = false;

  private constructor(options: ExporterOptions) {
    this.#options = options;
  }

  /**
   * Opens the handles (one namespace; with `allNetns` they are opened at
   * the first scrape) and, with `countEvents`, starts counting events.
   *
   * @example
   * ```ts ignore
   * import { MetricsExporter } from "@ctnl/conntrack";
   *
   * using exporter = MetricsExporter.open({ netns: "blue", byMark: true });
   * console.log(await exporter.render(false));
   * ```
   */
  static open(options: ExporterOptions = {}): MetricsExporter {
    const topN = options.topN ?? 0;
    if (!Number.isInteger(topN) || topN < 0 || topN > 1000) {
      throw new ArgumentRangeError("topN", topN, `${topN} is not an integer from 0 to 1000`);
    }
    const exporter = new MetricsExporter(options);
    if (options.allNetns !== true) {
      const ct = Conntrack.open(options.netns === undefined ? {} : { netns: options.netns });
      exporter.#targets.set("", new Target(ct, {}, options));
    }
    return exporter;
  }

  /** How many scrapes ran (not counting those that shared one in flight). */
  get scrapes(): number {
    return this.#scrapes;
  }

  /** How many scrape requests got the result of one already in flight. */
  get coalesced(): number {
    return this.#coalesced;
  }

  /** The namespaces of `allNetns` now: new ones opened, vanished ones closed. */
  async #refreshTargets(): Promise<void> {
    const present = new Set<string>();
    for (const ns of await listNetns()) {
      const id = `${ns.dev}:${ns.inode}`;
      present.add(id);
      if (this.#targets.has(id)) continue;
      let ct: Conntrack;
      try {
        ct = Conntrack.open({ netns: ns.path });
      } catch {
        continue; // vanished (or not ours to enter) meanwhile
      }
      this.#targets.set(id, new Target(ct, { netns: ns.label }, this.#options));
    }
    for (const [id, t] of this.#targets) {
      if (present.has(id)) continue;
      t.close();
      this.#targets.delete(id);
    }
  }

  async #collect(): Promise<MetricFamily[]> {
    const started = performance.now();
    if (this.#options.allNetns === true) await this.#refreshTargets();
    const lists: MetricFamily[][] = [];
    const success: Sample[] = [];
    const errors: Sample[] = [];
    // One namespace after another: a scrape is one dump at a time.
    for (const t of this.#targets.values()) {
      let ok = 1;
      try {
        // The async dump receives ahead on Deno's blocking pool: no Worker to start.
        const m = await collectMetrics(t.ct, this.#options);
        lists.push(metricFamilies(m, t.labels));
      } catch {
        ok = 0;
        t.errors++;
      }
      lists.push(t.families());
      success.push({ labels: t.labels, value: ok });
      errors.push({ labels: t.labels, value: t.errors });
    }
    this.#scrapes++;
    const self: MetricFamily[] = [
      family("ctnl_collect_success", "gauge", "Whether the table was read (1) or not (0)", success),
      family("ctnl_scrape_errors", "counter", "Scrapes of this table that failed", errors),
      family("ctnl_scrapes", "counter", "Scrapes run", [{ labels: {}, value: this.#scrapes }]),
      family(
        "ctnl_scrapes_coalesced",
        "counter",
        "Scrape requests answered with the result of a scrape already running",
        [{ labels: {}, value: this.#coalesced }],
      ),
      {
        ...family("ctnl_scrape_duration_seconds", "gauge", "How long this scrape took", [
          { labels: {}, value: (performance.now() - started) / 1000 },
        ]),
        unit: "seconds",
      },
    ];
    return mergeFamilies(...lists, self);
  }

  /**
   * The metric families of a scrape: a new one, or the one in flight (its
   * very result) when a scrape is running.
   *
   * @example
   * ```ts ignore
   * import { MetricsExporter } from "@ctnl/conntrack";
   *
   * using exporter = MetricsExporter.open();
   * const [a, b] = await Promise.all([exporter.scrape(), exporter.scrape()]);
   * console.log(a === b); // true: one scrape served both
   * ```
   */
  scrape(): Promise<MetricFamily[]> {
    if (this.#closed) return Promise.reject(new ClosedError("dump"));
    if (this.#inflight !== undefined) {
      this.#coalesced++;
      return this.#inflight;
    }
    const p = this.#collect().finally(() => {
      this.#inflight = undefined;
    });
    this.#inflight = p;
    return p;
  }

  /**
   * A scrape as exposition text: OpenMetrics 1.0 when `openMetrics`, else
   * the Prometheus text format 0.0.4, with its content type.
   *
   * @example
   * ```ts ignore
   * import { MetricsExporter } from "@ctnl/conntrack";
   *
   * using exporter = MetricsExporter.open();
   * const { body, contentType } = await exporter.render(true);
   * console.log(contentType, body.endsWith("# EOF\n"));
   * ```
   */
  async render(openMetrics: boolean): Promise<{ body: string; contentType: string }> {
    const families = await this.scrape();
    return openMetrics
      ? { body: formatOpenMetrics(families), contentType: OPENMETRICS_CONTENT_TYPE }
      : { body: formatPrometheus(families), contentType: PROMETHEUS_CONTENT_TYPE };
  }

  /** Closes every handle and stops counting events. Calling it again does nothing. */
  close(): void {
    this.#closed = true;
    for (const t of this.#targets.values()) t.close();
    this.#targets.clear();
  }

  /** Closes it (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
