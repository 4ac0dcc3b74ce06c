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
import { Conntrack, type CpuStats, PROTOCOL_NAMES, TCP_STATES } from "../mod.ts";

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

/** Per-CPU counters: the CpuStats key, the metric's name part, and its help. */
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

/** A label value, escaped as the exposition format wants. */
function label(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/** Everything, as one exposition-format text. */
async function metrics(ct: Conntrack): Promise<string> {
  const flows = new Map<string, number>(); // "family protocol" -> count
  const tcpStates = new Map<string, number>(TCP_STATES.map((s) => [s, 0]));
  // dumpSync: the whole walk happens in one go, so concurrent scrapes never
  // find the handle busy.
  for (const flow of ct.dumpSync(undefined, { onInterrupted: "ignore" })) {
    const protocol = PROTOCOL_NAMES[flow.orig.protocol ?? -1] ?? String(flow.orig.protocol);
    const k = `${flow.family} ${protocol}`;
    flows.set(k, (flows.get(k) ?? 0) + 1);
    if (flow.tcp) {
      const state = TCP_STATES[flow.tcp.state] ?? "NONE";
      tcpStates.set(state, (tcpStates.get(state) ?? 0) + 1);
    }
  }
  const global = await ct.globalStats();
  const cpus = await ct.stats();

  const out: string[] = [];
  const family = (name: string, type: "gauge" | "counter", help: string) =>
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

  family("conntrack_entries", "gauge", "Entries in the conntrack table");
  out.push(`conntrack_entries ${global.entries}`);
  if (global.maxEntries !== undefined) {
    family("conntrack_entries_limit", "gauge", "Maximum entries (nf_conntrack_max)");
    out.push(`conntrack_entries_limit ${global.maxEntries}`);
  }
  family("conntrack_flows", "gauge", "Entries by address family and layer-4 protocol");
  for (const [k, n] of [...flows].sort()) {
    const [fam, protocol] = k.split(" ") as [string, string];
    out.push(`conntrack_flows{family=${label(fam)},protocol=${label(protocol)}} ${n}`);
  }
  family("conntrack_tcp_flows", "gauge", "TCP entries by state");
  for (const [state, n] of tcpStates) {
    out.push(`conntrack_tcp_flows{state=${label(state)}} ${n}`);
  }
  for (const [key, name, help] of CPU_STATS) {
    const present = cpus.filter((s) => s[key] !== undefined);
    if (present.length === 0) continue;
    const metric = `conntrack_stat_${name}_total`;
    family(metric, "counter", `${help} (per CPU)`);
    for (const s of present) out.push(`${metric}{cpu=${label(String(s.cpu))}} ${s[key]}`);
  }
  return out.join("\n") + "\n";
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
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      });
    } catch (error) {
      return new Response(`${error}\n`, { status: 500 });
    }
  });
  await server.finished;
}
