/**
 * `ctnl load` against `conntrack -R` on the same save file (root):
 * `deno run -A bench/load_compare.ts [--n 100000] [--rounds 3]`.
 *
 * In a fresh namespace (always deleted, also on Ctrl-C): a table of N
 * entries (bench/_setup.ts's mix) saved with `ctnl dump -o save`; then,
 * round-robin, the table flushed and loaded from the file by each tool as
 * a process (start-up included), the load timed; the medians and lines per
 * second printed, and both tools' tables checked to be the saved one.
 *
 * @module
 */

import { Conntrack } from "../mod.ts";
import { must } from "../tests/_ns.ts";
import { benchSpecs, cleanup, createNamespace } from "./_setup.ts";

function option(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

const N = option("--n", 100_000);
const ROUNDS = option("--rounds", 3);
const CLI = new URL("../cli.ts", import.meta.url).pathname;
const CTNL = `${Deno.execPath()} run --allow-ffi --allow-read ${CLI}`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const content = (save: string) =>
  save.split("\n").filter((l) => l !== "").map((l) => l.replace(/ -t \d+/, "")).sort().join("\n");

const dir = await Deno.makeTempDir({ prefix: "ctnl-load-bench-" });
try {
  const ns = await createNamespace("load");
  const sh = (script: string) => must(["ip", "netns", "exec", ns, "sh", "-ec", script]);
  {
    using ct = Conntrack.open({ netns: ns, timeoutMs: 30_000 });
    ct.createManySync(benchSpecs(N), { batchSize: 512 });
  }
  const file = `${dir}/table.txt`;
  await sh(`${CTNL} dump -o save > ${file} 2>/dev/null`);
  const saved = content(await Deno.readTextFile(file));
  const tools = { "ctnl load": `${CTNL} load ${file}`, "conntrack -R": `conntrack -R ${file}` };
  const times: Record<string, number[]> = { "ctnl load": [], "conntrack -R": [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, script] of Object.entries(tools)) {
      await sh("conntrack -F 2>/dev/null");
      const start = performance.now();
      await sh(`${script} 2>/dev/null`);
      times[name]!.push(performance.now() - start);
      const now = content(await sh(`${CTNL} dump -o save 2>/dev/null`));
      if (now !== saved) throw new Error(`${name}: the loaded table differs from the saved one`);
    }
  }
  console.log(`${N} save lines, ${ROUNDS} rounds, medians (each run a whole process):`);
  for (const [name, xs] of Object.entries(times)) {
    const ms = median(xs);
    console.log(
      `  ${name.padEnd(13)} ${ms.toFixed(0).padStart(6)} ms  ${
        Math.round(N / (ms / 1000)).toLocaleString("en")
      } lines/s  (runs: ${xs.map((x) => x.toFixed(0)).join(", ")} ms)`,
    );
  }
} finally {
  await cleanup();
  await Deno.remove(dir, { recursive: true });
}
