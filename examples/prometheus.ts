/**
 * Conntrack metrics in the Prometheus text exposition format: entries per
 * family and protocol, TCP entries per state, the table's size and limit,
 * and the kernel's per-CPU counters (`conntrack -S`).
 *
 * ```sh
 * sudo deno run --allow-ffi examples/prometheus.ts [--netns NAME]     # print once
 * sudo deno run --allow-ffi --allow-net examples/prometheus.ts --listen 9466
 * ```
 *
 * With `--listen PORT` it serves the metrics at `http://HOST:PORT/metrics`
 * (each scrape dumps the table afresh) instead of printing them once.
 *
 * Metrics (all gauges, except the per-CPU counters):
 *
 * - `conntrack_entries` and `conntrack_entries_limit` (`nf_conntrack_max`);
 * - `conntrack_flows{family,protocol}` — entries by address family and protocol;
 * - `conntrack_tcp_flows{state}` — TCP entries by state, every state listed;
 * - `conntrack_stat_<name>_total{cpu}` — found, invalid, insert, insert_failed,
 *   drop, early_drop, error, search_restart, clash_resolve, chaintoolong.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  collectMetrics,
  Conntrack,
  type CpuStats,
  formatPrometheus,
  type MetricFamily,
  PROMETHEUS_CONTENT_TYPE,
  TCP_STATES,
} from "../mod.ts";

const { values } = parseArgs({
  options: {
    netns: { type: "string" },
    listen: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log("Usage: prometheus.ts [--netns NAME] [--listen [HOST:]PORT]");
  Deno.exit(0);
}

/** Per-CPU counters: the CpuStats key, the metric's name part (as conntrack -S), its help. */
const CPU_STATS: [keyof CpuStats, string, string][] = [
  ["found", "found", "Lookups that found an entry"],
  ["invalid", "invalid", "Packets conntrack could not track"],
  ["insert", "insert", "Entries inserted"],
  ["insertFailed", "insert_failed", "Entries that could not be inserted"],
  ["drop", "drop", "Packets dropped because an entry could not be made"],
  ["earlyDrop", "early_drop", "Entries dropped early to make room when the table was full"],
  ["error", "error", "ICMP(v6) packets that failed validation"],
  ["searchRestart", "search_restart", "Lookups restarted because of a hash resize"],
  ["clashResolve", "clash_resolve", "Insert clashes resolved"],
  ["chainTooLong", "chaintoolong", "Hash chains found too long"],
];

/**
 * Everything, as one exposition-format text: the library's collectMetrics()
 * reads the table (a dump that does not hold the event loop) and its
 * formatPrometheus() writes the families this script names. (`ctnl
 * exporter` serves the library's own, fuller set: docs/exporter.md.)
 */
async function metrics(ct: Conntrack): Promise<string> {
  const m = await collectMetrics(ct, { byZone: false });
  const families: MetricFamily[] = [];
  const gauge = (name: string, help: string, samples: MetricFamily["samples"]) =>
    families.push({ name, type: "gauge", help, samples });
  gauge("conntrack_entries", "Entries in the conntrack table", [{ labels: {}, value: m.entries }]);
  if (m.maxEntries !== 0) {
    gauge("conntrack_entries_limit", "Maximum entries (nf_conntrack_max)", [
      { labels: {}, value: m.maxEntries },
    ]);
  }
  const flows = new Map<string, number>(); // "family protocol" -> count
  const tcpStates = new Map<string, number>(TCP_STATES.map((s) => [s, 0]));
  for (const f of m.flows) {
    const k = `${f.family} ${f.protocol}`;
    flows.set(k, (flows.get(k) ?? 0) + f.count);
    if (f.protocol === "tcp") tcpStates.set(f.state, (tcpStates.get(f.state) ?? 0) + f.count);
  }
  gauge(
    "conntrack_flows",
    "Entries by address family and layer-4 protocol",
    [...flows].sort().map(([k, value]) => {
      const [family, protocol] = k.split(" ") as [string, string];
      return { labels: { family, protocol }, value };
    }),
  );
  gauge(
    "conntrack_tcp_flows",
    "TCP entries by state",
    [...tcpStates].map(([state, value]) => ({ labels: { state }, value })),
  );
  for (const [key, name, help] of CPU_STATS) {
    const present = m.cpus.filter((s) => s[key] !== undefined);
    if (present.length === 0) continue;
    families.push({
      name: `conntrack_stat_${name}`, // a counter: formatPrometheus adds _total
      type: "counter",
      help: `${help} (per CPU)`,
      samples: present.map((s) => ({ labels: { cpu: String(s.cpu) }, value: s[key] as number })),
    });
  }
  return formatPrometheus(families);
}

using ct = Conntrack.open(values.netns === undefined ? {} : { netns: values.netns });

if (values.listen === undefined) {
  await Deno.stdout.write(new TextEncoder().encode(await metrics(ct)));
} else {
  const colon = values.listen.lastIndexOf(":");
  const hostname = colon < 0 ? "0.0.0.0" : values.listen.slice(0, colon);
  const port = Number(colon < 0 ? values.listen : values.listen.slice(colon + 1));
  const server = Deno.serve({
    hostname,
    port,
    onListen: ({ hostname, port }) => console.error(`serving http://${hostname}:${port}/metrics`),
  }, async (request) => {
    if (new URL(request.url).pathname !== "/metrics") {
      return new Response("see /metrics\n", { status: 404 });
    }
    try {
      return new Response(await metrics(ct), {
        headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
      });
    } catch (error) {
      return new Response(`${error}\n`, { status: 500 });
    }
  });
  await server.finished;
}
