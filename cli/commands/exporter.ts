/**
 * `ctnl exporter`: a Prometheus exporter, a thin `Deno.serve` over the
 * library's {@link MetricsExporter}.
 *
 * @module
 */

import type { ExporterOptions } from "../../mod.ts";
import { MetricsExporter, wantsOpenMetrics } from "../../src/metrics.ts";
import { FailError, UsageError } from "../errors.ts";
import { type OptionHelp, optionHelp } from "../options.ts";
import { decimal } from "../values.ts";
import type { CommandBody, Context } from "../context.ts";

/** Where `ctnl exporter` listens unless told: loopback only, a port of Prometheus' exporter range. */
export const DEFAULT_LISTEN = "127.0.0.1:9883";

/**
 * `HOST:PORT`, `[V6]:PORT`, `:PORT` (every address) or `PORT` (loopback).
 *
 * @example
 * ```ts
 * import { parseListen } from "./exporter.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 *
 * deepStrictEqual(parseListen("[::1]:9000"), { hostname: "::1", port: 9000 });
 * deepStrictEqual(parseListen(":80"), { hostname: "0.0.0.0", port: 80 });
 * deepStrictEqual(parseListen("9883"), { hostname: "127.0.0.1", port: 9883 });
 * ```
 */
export function parseListen(text: string): { hostname: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:\[\]]*):)?([0-9]+)$/.exec(text);
  const port = Number(m?.[2]);
  if (m === null || !(port >= 0 && port <= 65535)) {
    throw new UsageError(`invalid address "${text}" for --listen (HOST:PORT, [IPV6]:PORT or PORT)`);
  }
  const host = m[1];
  if (host === undefined) return { hostname: "127.0.0.1", port };
  if (host === "") return { hostname: "0.0.0.0", port };
  return { hostname: host.startsWith("[") ? host.slice(1, -1) : host, port };
}

const PAGE = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>ctnl exporter</title></head>
<body>
<h1>ctnl exporter</h1>
<p>Conntrack metrics for Prometheus.</p>
<ul>
<li><a href="/metrics">/metrics</a> (OpenMetrics when the Accept header asks for it)</li>
<li><a href="/healthz">/healthz</a></li>
</ul>
</body>
</html>
`;

/** The handler: `/metrics`, `/`, `/healthz`. */
function handler(exporter: MetricsExporter): (request: Request) => Promise<Response> {
  return async (request) => {
    const url = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    switch (url.pathname) {
      case "/healthz":
        return new Response("ok\n", { headers: { "content-type": "text/plain; charset=utf-8" } });
      case "/":
        return new Response(PAGE, { headers: { "content-type": "text/html; charset=utf-8" } });
      case "/metrics": {
        const format = url.searchParams.get("format");
        const om = format === null
          ? wantsOpenMetrics(request.headers.get("accept"))
          : format === "openmetrics";
        const { body, contentType } = await exporter.render(om);
        return new Response(body, { headers: { "content-type": contentType } });
      }
      default:
        return new Response("not found: see /metrics\n", { status: 404 });
    }
  };
}

async function run(ctx: Context): Promise<number> {
  const values = ctx.parsed.values;
  const { hostname, port } = parseListen(values.get("listen") ?? DEFAULT_LISTEN);
  const options: ExporterOptions = {
    byMark: ctx.parsed.flags.has("byMark"),
    countEvents: ctx.parsed.flags.has("countEvents"),
    allNetns: ctx.parsed.flags.has("allNetns"),
  };
  const top = values.get("top");
  if (top !== undefined) options.topN = decimal("top", top, 1000, "count");
  const size = values.get("bufferSize");
  if (size !== undefined) {
    options.bufferSize = decimal("bufferSize", size, 0x7fffffff, "size in bytes");
  }
  const netns = values.get("netns");
  if (netns !== undefined) {
    if (options.allNetns) throw new UsageError("option --netns cannot be used with --all-netns");
    options.netns = netns;
  }
  ctx.needFfi();
  using exporter = MetricsExporter.open(options);
  // One scrape before serving: a table that cannot be read fails here (exit
  // 1), and a big one starts its receive-ahead worker now (Deno's new
  // Worker holds the thread 10-100 ms), not during a request.
  await exporter.scrape();
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    let server: Deno.HttpServer;
    try {
      server = Deno.serve({
        hostname,
        port,
        signal: stop.signal,
        onListen: (addr) => {
          const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
          const out = ctx.stdout();
          out.line(`serving http://${host}:${addr.port}/metrics`);
          out.flush();
        },
        onError: (error) => {
          ctx.stderrLine(`ctnl: scrape failed: ${error instanceof Error ? error.message : error}`);
          return new Response("scrape failed\n", { status: 500 });
        },
      }, handler(exporter));
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) {
        throw new FailError(`Cannot listen on ${hostname}:${port}: the address is in use`);
      }
      if (
        error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
      ) {
        throw new FailError(
          `Cannot listen on ${hostname}:${port}: needs --allow-net (${(error as Error).message})`,
        );
      }
      if (error instanceof Error) {
        throw new FailError(`Cannot listen on ${hostname}:${port}: ${error.message}`);
      }
      throw error;
    }
    await server.finished;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  return 0;
}

const OPTIONS: readonly OptionHelp[] = [
  "listen",
  "netns",
  "allNetns",
  "byMark",
  { key: "top", help: "Also the N sources and destinations with most entries (≤ 1000)" },
  "countEvents",
  "bufferSize",
];

/** `ctnl exporter`. */
export const exporter: CommandBody = {
  summary: "Serve Prometheus metrics of the table over HTTP",
  options: ["listen", "netns", "allNetns", "byMark", "top", "countEvents", "bufferSize"],
  help: `Usage: ctnl exporter [--listen HOST:PORT] [--netns NAME|PATH | --all-netns]
                     [--by-mark] [--top N] [--count-events [-b BYTES]]

Serves conntrack metrics for Prometheus until SIGINT or SIGTERM (exit 0):
  /metrics   the Prometheus text format 0.0.4, or OpenMetrics 1.0 when the
             Accept header asks for application/openmetrics-text (as
             Prometheus does); ?format=prometheus|openmetrics overrides
  /healthz   "ok"
  /          a page linking to /metrics
Each scrape dumps the table without holding the server (a scrape asked for
while one runs gets that one's result). It prints "serving http://…/metrics"
once listening. The default address, ${DEFAULT_LISTEN}, is loopback only.

Metrics: conntrack_entries, conntrack_entries_limit, conntrack_stat_*_total
(all CPUs) and conntrack_cpu_stat_*_total{cpu}, conntrack_flows{family,
protocol,state}, conntrack_zone_flows{zone}, conntrack_mark_flows{mark}
(--by-mark), conntrack_top_source_flows{src} and
conntrack_top_destination_flows{dst} (--top), conntrack_events_total{type}
and conntrack_events_overruns_total (--count-events), ctnl_scrape_* .
With --all-netns every sample has a netns label (the name under /run/netns,
else net:[INODE]). See docs/exporter.md.

Options:
${optionHelp(OPTIONS)}

Examples:
  ctnl exporter
  ctnl exporter --listen :9883 --all-netns --count-events
  ctnl exporter --netns blue --top 10 --by-mark
`,
  run,
};
