/**
 * The exporter at scale: `ctnl exporter` in a namespace of N entries (1M by
 * default), each `/metrics` scrape timed, and `/healthz` asked every 20 ms
 * while the scrapes run (its latencies: median, 95th percentile, max).
 *
 * ```sh
 * sudo deno run -A bench/exporter_scrape.ts [--entries 1000000] [--scrapes 5]
 * ```
 *
 * Root; its own namespace (`ctnl-bench-scrape-…`, always deleted); the
 * global `nf_conntrack_max` raised for the fill and restored.
 *
 * @module
 */

import $ from "@david/dax";
import { parseArgs } from "node:util";
import { cleanup, createNamespace, fill, raiseConntrackMax } from "./_setup.ts";

const { values } = parseArgs({
  options: {
    entries: { type: "string", default: "1000000" },
    scrapes: { type: "string", default: "5" },
  },
});
const N = Number(values.entries);
const SCRAPES = Number(values.scrapes);
const CLI = new URL("../cli.ts", import.meta.url).pathname;
const PORT = 19883;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

try {
  await raiseConntrackMax(N + 10_000);
  const ns = await createNamespace("scrape");
  const have = await fill(ns, N);
  const exporter = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns,
      Deno.execPath(),
      "run",
      "--allow-ffi",
      "--allow-net",
      CLI,
      "exporter",
      "--listen",
      `127.0.0.1:${PORT}`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  // "serving http://…/metrics" once listening (after a first scrape).
  const reader = exporter.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  while (!seen.includes("serving")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the exporter exited");
    seen += value;
  }
  // The client runs in the namespace too: a tiny Deno script over loopback.
  const client = `
    const url = "http://127.0.0.1:${PORT}";
    const health = [];
    let scraping = true;
    const probe = (async () => {
      while (scraping) {
        const t = performance.now();
        await (await fetch(url + "/healthz")).text();
        health.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const scrapes = [];
    let entries = "";
    for (let i = 0; i < ${SCRAPES}; i++) {
      // Past the exporter's coalescing: each scrape a fresh dump.
      await new Promise((r) => setTimeout(r, 200));
      const t = performance.now();
      const body = await (await fetch(url + "/metrics")).text();
      scrapes.push(performance.now() - t);
      entries = body.match(/^conntrack_entries (\\d+)/m)?.[1] ?? "?";
    }
    scraping = false;
    await probe;
    console.log(JSON.stringify({ scrapes, health, entries }));
  `;
  const out = await $`ip netns exec ${ns} ${Deno.execPath()} eval ${client}`.text();
  const r = JSON.parse(out) as { scrapes: number[]; health: number[]; entries: string };
  exporter.kill("SIGTERM");
  await exporter.status;
  console.log(
    `| entries | scrape (median of ${SCRAPES}) | scrape min–max | /healthz median | p95 | max | /healthz answers |`,
  );
  console.log("|---|---|---|---|---|---|---|");
  console.log(
    `| ${have} (metric: ${r.entries}) | ${(median(r.scrapes) / 1000).toFixed(2)} s | ` +
      `${(Math.min(...r.scrapes) / 1000).toFixed(2)}–${
        (Math.max(...r.scrapes) / 1000).toFixed(2)
      } s | ` +
      `${median(r.health).toFixed(1)} ms | ${pct(r.health, 0.95).toFixed(1)} ms | ` +
      `${Math.max(...r.health).toFixed(1)} ms | ${r.health.length} |`,
  );
} finally {
  await cleanup();
}
