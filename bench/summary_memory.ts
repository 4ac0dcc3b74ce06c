/**
 * `ctnl summary`'s memory against the table's size: peak RSS (GNU time) of
 * `ctnl summary --by proto,state` (a handful of groups), `--by src/16` and
 * `--by dport` (few groups) and, for scale, `ctnl dump` and `conntrack -L`,
 * for each table size. A summary's memory should stay flat as the table
 * grows (it holds groups, not entries).
 *
 * ```sh
 * sudo deno run -A bench/summary_memory.ts [--sizes 100000,400000,1000000] [--rounds 5]
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

const { values } = parseArgs({
  options: {
    sizes: { type: "string", default: "100000,400000" },
    rounds: { type: "string", default: "5" },
  },
});
const sizes = values.sizes.split(",").map(Number);
const ROUNDS = Number(values.rounds);
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
    const walls = new Map<string, number>();
    await raiseConntrackMax(n + 1000);
    const have = await fill(ns, n);
    // Round-robin: each round runs every command once, so that all see the
    // same drift of a shared machine; medians of the rounds.
    const runs = new Map<string, [number, number][]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, cmd] of Object.entries(COMMANDS)) {
        const list = runs.get(name) ?? [];
        list.push(await measure(ns, cmd));
        runs.set(name, list);
      }
    }
    for (const [name, list] of runs) {
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const rss = median(list.map((r) => r[0]));
      const secs = median(list.map((r) => r[1]));
      walls.set(name, secs);
      rows.push(`| ${have} | ${name} | ${rss.toFixed(0)} MiB | ${secs.toFixed(2)} s |`);
      console.error(rows.at(-1));
    }
    const dump = walls.get("ctnl dump")!;
    for (const [name, secs] of walls) {
      if (name.startsWith("ctnl summary")) {
        rows.push(`| ${have} | ${name} ÷ ctnl dump | | ${(secs / dump).toFixed(2)}× |`);
      }
    }
  }
  console.log("| entries | command | peak RSS (median of the rounds) | wall |\n|---|---|---|---|");
  console.log(rows.join("\n"));
} finally {
  await cleanup();
}
