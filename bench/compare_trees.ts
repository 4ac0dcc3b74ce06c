/**
 * Before and after, whole process: the same dumps run from several
 * checkouts (`git worktree add /tmp/before <commit>`), round-robin, so a
 * noisy machine's drift falls on every row alike. Run it as root inside a
 * namespace that holds the table to dump:
 *
 * ```sh
 * ip netns exec NS deno run -A bench/compare_trees.ts --rounds 5 before=/tmp/before now=.
 * ```
 *
 * Each round runs every command once, in an order that rotates from round
 * to round; round 0 only warms up. Prints the median of the rounds for the
 * receive-only floor, the library's `dumpSync` and `for await` dump, and
 * `ctnl dump`, `dump --json` and `count`, per checkout, with the ratio to
 * the first checkout. Plain `deno run --allow-ffi`, no V8 flags: as a
 * newcomer runs it.
 *
 * @module
 */

import $ from "@david/dax";

const args = Deno.args.filter((a) => a.includes("="));
const at = Deno.args.indexOf("--rounds");
const rounds = at >= 0 ? Number(Deno.args[at + 1]) : 5;
if (args.length === 0 || !(rounds > 0)) {
  console.error("usage: compare_trees.ts [--rounds N] NAME=DIR [NAME=DIR …]");
  Deno.exit(2);
}
const trees = args.map((a) => {
  const [name, dir] = a.split("=") as [string, string];
  return {
    name,
    dir: new URL(dir.endsWith("/") ? dir : `${dir}/`, `file://${Deno.cwd()}/`).pathname,
  };
});
const ROWS: [string, string[]][] = [
  ["library dumpSync", ["bench/dump_lib.ts"]],
  ["library for await dump()", ["bench/dump_lib.ts", "--async"]],
  ["ctnl dump", ["cli.ts", "dump"]],
  ["ctnl dump --json", ["cli.ts", "dump", "--json"]],
  ["ctnl count", ["cli.ts", "count"]],
];

interface Cmd {
  key: string;
  dir: string;
  args: string[];
}
const cmds: Cmd[] = [{ key: "floor", dir: trees.at(-1)!.dir, args: ["bench/recv_count.ts"] }];
for (const t of trees) {
  for (const [row, a] of ROWS) {
    // An older checkout may not know --async: it is skipped there.
    const src = await Deno.readTextFile(`${t.dir}bench/dump_lib.ts`).catch(() => "");
    if (a.includes("--async") && !src.includes("--async")) continue;
    cmds.push({ key: `${t.name}\t${row}`, dir: t.dir, args: a });
  }
}

const times = new Map<string, number[]>(cmds.map((c) => [c.key, []]));
for (let r = 0; r <= rounds; r++) {
  const order = [...cmds.slice(r % cmds.length), ...cmds.slice(0, r % cmds.length)];
  for (const c of order) {
    const t0 = performance.now();
    await $`${Deno.execPath()} run --allow-ffi ${c.args}`.cwd(c.dir).quiet();
    if (r > 0) times.get(c.key)!.push((performance.now() - t0) / 1000);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const floor = median(times.get("floor")!);
console.log(
  `medians of ${rounds} round-robin rounds; floor (receive only) ${floor.toFixed(3)} s\n`,
);
console.log(`| row | ${trees.map((t) => t.name).join(" | ")} | × floor (${trees.at(-1)!.name}) |`);
console.log(`|---|${trees.map(() => "---|").join("")}---|`);
for (const [row] of ROWS) {
  const cells = trees.map((t) => {
    const xs = times.get(`${t.name}\t${row}`);
    return xs === undefined ? undefined : median(xs);
  });
  const first = cells.find((c) => c !== undefined);
  const text = cells.map((c) =>
    c === undefined ? "" : `${c.toFixed(3)} s${c === first ? "" : ` (${(c / first!).toFixed(2)}×)`}`
  );
  const last = cells.at(-1);
  console.log(
    `| ${row} | ${text.join(" | ")} | ${last === undefined ? "" : (last / floor).toFixed(2)} |`,
  );
}
