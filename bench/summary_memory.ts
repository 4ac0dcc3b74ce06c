/**
 * `ctnl summary`'s memory against the table's size: peak RSS (GNU time) of
 * `ctnl summary --by proto,state` (a handful of groups), `--by src/16` and
 * `--by dport` (few groups) and, for scale, `ctnl dump` and `conntrack -L`,
 * for each table size. A summary's memory should stay flat as the table
 * grows (it holds groups, not entries).
 *
 * ```sh
 * sudo deno run -A bench/summary_memory.ts [--sizes 100000,400000,1000000]
 * ```
 *
 * Root; a namespace of its own (`ctnl-bench-summary-…`, always deleted), the
 * global `nf_conntrack_max` raised when a size needs it and restored.
 *
 * @module
 */

import $ from "@david/dax";
import { parseArgs } from "node:util";
import { cleanup, createNamespace, fill, raiseConntrackMax } from "./_setup.ts";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "100000,400000" } } });
const sizes = values.sizes.split(",").map(Number);
const CLI = new URL("../cli.ts", import.meta.url).pathname;
const DENO = Deno.execPath();

const COMMANDS: Record<string, string[]> = {
  "ctnl summary --by proto,state": [
    DENO,
    "run",
    "--allow-ffi",
    CLI,
    "summary",
    "--by",
    "proto,state",
  ],
  "ctnl summary --by src/16": [DENO, "run", "--allow-ffi", CLI, "summary", "--by", "src/16"],
  "ctnl summary --by dport": [DENO, "run", "--allow-ffi", CLI, "summary", "--by", "dport"],
  "ctnl dump": [DENO, "run", "--allow-ffi", CLI, "dump"],
  "conntrack -L": ["conntrack", "-L"],
};

/** Peak RSS in MiB and wall seconds of one run, output to /dev/null. */
async function measure(ns: string, cmd: string[]): Promise<[number, number]> {
  const r = await $`ip netns exec ${ns} /usr/bin/time -f ${"%M %e"} ${cmd}`
    .stdout("null").stderr("piped").noThrow();
  const last = r.stderr.trim().split("\n").at(-1)!.split(" ");
  return [Number(last[0]) / 1024, Number(last[1])];
}

try {
  const ns = await createNamespace("summary");
  const rows: string[] = [];
  for (const n of sizes) {
    await raiseConntrackMax(n + 1000);
    const have = await fill(ns, n);
    for (const [name, cmd] of Object.entries(COMMANDS)) {
      // Median of three: the machine is shared.
      const runs = [];
      for (let i = 0; i < 3; i++) runs.push(await measure(ns, cmd));
      const rss = runs.map((r) => r[0]).sort((a, b) => a - b)[1]!;
      const secs = runs.map((r) => r[1]).sort((a, b) => a - b)[1]!;
      rows.push(`| ${have} | ${name} | ${rss.toFixed(0)} MiB | ${secs.toFixed(2)} s |`);
      console.error(rows.at(-1));
    }
  }
  console.log("| entries | command | peak RSS (median of 3) | wall |\n|---|---|---|---|");
  console.log(rows.join("\n"));
} finally {
  await cleanup();
}
