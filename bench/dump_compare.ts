/**
 * The whole-process benchmark: `deno task bench:dump` (root; needs hyperfine
 * and GNU time).
 *
 * Creates a fresh namespace `ctnl-bench-dump-<pid>`, fills it through ctnl's
 * batched create with the mix of bench/_setup.ts (UDP and TCP ESTABLISHED,
 * ASSURED, IPv4 and IPv6, long timeouts) for each size N, and times side by
 * side with hyperfine, every command run as `ip netns exec <ns> …` (the same
 * wrapper for every row; ctnl then works in its own namespace, no `--netns`):
 *
 * - `C floor`: bench/recv_floor.c compiled with cc, receive and count;
 * - `baseline`: bench/recv_count.ts, receive and count, decode nothing;
 * - `library`: bench/dump_lib.ts, `ct.dumpSync()` with every field decoded;
 * - `ctnl dump` and `ctnl dump --json` (cli.ts with the flags of `deno task
 *   ctnl`, output to /dev/null);
 * - `conntrack -L` and `conntrack -L -o extended` (output to /dev/null);
 *
 * and (with the first size) the start-up-bound `ctnl count` and `ctnl stats`
 * against `deno run` of an empty script; and the peak RSS of each (GNU
 * time's maximum resident set size, one run each). Prints a Markdown table
 * with medians, min–max and the ratios to `conntrack -L` and to the
 * baseline, all from this one run.
 *
 * Options: `--sizes 10000,100000,1000000`, `--runs 10,10,5` (per size,
 * split into interleaved passes of at most 5 runs so that every command sees
 * the same drift of a noisy machine), `--acct` (accounting and timestamps
 * on, so entries carry counters), `--json FILE` (raw results).
 *
 * The global `nf_conntrack_max` is raised when a size needs it and restored
 * afterwards; the namespace is always deleted, also on Ctrl-C.
 *
 * @module
 */

import $ from "@david/dax";
import { cleanup, createNamespace, fill, raiseConntrackMax } from "./_setup.ts";

const ROOT = new URL("../", import.meta.url).pathname;

function option(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

const SIZES = (option("--sizes") ?? "10000,100000,1000000").split(",").map(Number);
const RUNS = (option("--runs") ?? "10,10,5").split(",").map(Number);
const ACCT = Deno.args.includes("--acct");
const JSON_OUT = option("--json");
const PASS_RUNS = 5;
const STARTUP_RUNS = 20;

interface Row {
  /** Short name in the table. */
  name: string;
  /** The command, run inside the namespace. */
  cmd: string[];
  /** Lines of stdout a dump prints per entry (0: prints a count). */
  linesPerEntry?: number;
  /** How many entries its output says it saw (else the first number, or the lines). */
  seen?: (stdout: string) => number;
}

const DENO = Deno.execPath();
/** The flags a newcomer runs the CLI with: no V8 flag (issue 16). */
const CTNL_FLAGS = ["--allow-ffi"];
/** The bundle (`deno task bundle`), when it has been built. */
const BUNDLE = "dist/ctnl.js";
const HAVE_BUNDLE = await Deno.stat(new URL(`../${BUNDLE}`, import.meta.url)).then(
  () => true,
  () => false,
);
/** The C floor: bench/recv_floor.c, compiled here — receive and count, nothing else. */
const FLOOR = `${await Deno.makeTempDir({ prefix: "ctnl-floor-" })}/recv_floor`;
await $`cc -O2 -o ${FLOOR} ${ROOT}bench/recv_floor.c`;
const DUMP_ROWS: Row[] = [
  { name: "C floor (receive only)", cmd: [FLOOR] },
  { name: "baseline (receive only)", cmd: [DENO, "run", "--allow-ffi", "bench/recv_count.ts"] },
  { name: "library (full decode)", cmd: [DENO, "run", "--allow-ffi", "bench/dump_lib.ts"] },
  {
    name: "library, dumpSync() without the Worker",
    cmd: [DENO, "run", "--allow-ffi", "bench/dump_lib.ts", "--no-prefetch"],
  },
  {
    name: "library, for await dump()",
    cmd: [DENO, "run", "--allow-ffi", "bench/dump_lib.ts", "--async"],
  },
  {
    name: "library, for await dump() without receive-ahead",
    cmd: [DENO, "run", "--allow-ffi", "bench/dump_lib.ts", "--async", "--no-prefetch"],
  },
  { name: "ctnl dump", cmd: [DENO, "run", ...CTNL_FLAGS, "cli.ts", "dump"], linesPerEntry: 1 },
  {
    name: "ctnl dump --json",
    cmd: [DENO, "run", ...CTNL_FLAGS, "cli.ts", "dump", "--json"],
    linesPerEntry: 1,
  },
  {
    name: "ctnl summary --by proto,state",
    cmd: [DENO, "run", ...CTNL_FLAGS, "cli.ts", "summary", "--by", "proto,state", "--json"],
    seen: (text) => (JSON.parse(text) as { total: { count: number } }).total.count,
  },
  {
    name: "ctnl dump, --max-semi-space-size=1",
    cmd: [DENO, "run", ...CTNL_FLAGS, "--v8-flags=--max-semi-space-size=1", "cli.ts", "dump"],
    linesPerEntry: 1,
  },
  ...(HAVE_BUNDLE
    ? [{
      name: "ctnl dump (bundle)",
      cmd: [DENO, "run", ...CTNL_FLAGS, BUNDLE, "dump"],
      linesPerEntry: 1,
    }]
    : []),
  { name: "conntrack -L", cmd: ["conntrack", "-L"], linesPerEntry: 1 },
  {
    name: "conntrack -L -o extended",
    cmd: ["conntrack", "-L", "-o", "extended"],
    linesPerEntry: 1,
  },
];
const STARTUP_ROWS: Row[] = [
  { name: "deno run (empty script)", cmd: [DENO, "run", "bench/empty.ts"] },
  { name: "ctnl count", cmd: [DENO, "run", ...CTNL_FLAGS, "cli.ts", "count"] },
  { name: "ctnl stats", cmd: [DENO, "run", ...CTNL_FLAGS, "cli.ts", "stats"] },
  { name: "conntrack -C", cmd: ["conntrack", "-C"] },
  { name: "conntrack -S", cmd: ["conntrack", "-S"] },
];

interface Result {
  n: number;
  name: string;
  command: string;
  times: number[];
  median: number;
  min: number;
  max: number;
  user: number;
  system: number;
  rssKiB: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function inNs(ns: string, row: Row): string[] {
  return ["ip", "netns", "exec", ns, ...row.cmd];
}

/** Runs a command once; its stdout line count or printed count, to check every tool sees N. */
async function entriesSeen(ns: string, row: Row): Promise<number> {
  const r = await $`${inNs(ns, row)}`.cwd(ROOT).stdout("piped").stderr("piped").noThrow();
  if (r.code !== 0) throw new Error(`${row.name} failed: ${r.stderr.trim()}`);
  const text = r.stdout;
  if (row.seen !== undefined) return row.seen(text);
  if (row.linesPerEntry === undefined) return Number(text.trim().split(/\s+/)[0]);
  let lines = 0;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) lines++;
  return lines / row.linesPerEntry;
}

/** Peak RSS (KiB) of one run, from GNU time (`%M`, as `-v` prints it). */
async function peakRss(ns: string, row: Row): Promise<number> {
  const { stderr } = await $`ip netns exec ${ns} /usr/bin/time -f ${"ctnl-rss %M"} ${row.cmd}`
    .cwd(ROOT).stdout("null").stderr("piped").noThrow();
  const m = /ctnl-rss (\d+)/.exec(stderr);
  return m ? Number(m[1]) : NaN;
}

/**
 * Times `rows` with hyperfine in interleaved passes (each pass runs every
 * command up to PASS_RUNS times, the first pass after one warm-up run).
 */
async function time(ns: string, rows: Row[], runs: number, n: number): Promise<Result[]> {
  const times = rows.map(() => [] as number[]);
  const user = rows.map(() => [] as number[]);
  const system = rows.map(() => [] as number[]);
  const file = await Deno.makeTempFile({ prefix: "ctnl-hyperfine-", suffix: ".json" });
  try {
    for (let done = 0, pass = 0; done < runs; pass++) {
      const r = Math.min(PASS_RUNS, runs - done);
      const args = ["-N", "--style", "none", "--runs", String(r), "--export-json", file];
      if (pass === 0) args.push("--warmup", "1");
      for (const row of rows) args.push(inNs(ns, row).join(" "));
      await $`hyperfine ${args}`.cwd(ROOT).stdout("null");
      const json = JSON.parse(await Deno.readTextFile(file));
      json.results.forEach((res: { times: number[]; user: number; system: number }, i: number) => {
        times[i]!.push(...res.times);
        user[i]!.push(res.user);
        system[i]!.push(res.system);
      });
      done += r;
    }
  } finally {
    await Deno.remove(file).catch(() => {});
  }
  const results: Result[] = [];
  for (const [i, row] of rows.entries()) {
    results.push({
      n,
      name: row.name,
      command: inNs(ns, row).join(" ").replace(DENO, "deno"),
      times: times[i]!,
      median: median(times[i]!),
      min: Math.min(...times[i]!),
      max: Math.max(...times[i]!),
      user: user[i]!.reduce((a, b) => a + b, 0) / user[i]!.length,
      system: system[i]!.reduce((a, b) => a + b, 0) / system[i]!.length,
      rssKiB: await peakRss(ns, row),
    });
  }
  return results;
}

function seconds(s: number): string {
  return s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(2)} s`;
}

function table(results: Result[], refs: [string, string][]): string {
  const head = [
    "N",
    "command",
    "median",
    "min–max",
    ...refs.map(([, label]) => label),
    "CPU user / sys",
    "peak RSS",
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const r of results) {
    const ratios = refs.map(([name]) => {
      const ref = results.find((x) => x.n === r.n && x.name === name);
      return ref ? `${(r.median / ref.median).toFixed(2)}×` : "";
    });
    lines.push(
      `| ${r.n.toLocaleString("en")} | ${r.name} | ${seconds(r.median)} | ${seconds(r.min)}–${
        seconds(r.max)
      } | ${ratios.join(" | ")} | ${seconds(r.user)} / ${seconds(r.system)} | ${
        (r.rssKiB / 1024).toFixed(1)
      } MiB |`,
    );
  }
  return lines.join("\n");
}

async function environment(): Promise<string> {
  const kernel = await $`uname -r`.text();
  const conntrack = await $`conntrack --version`.text();
  const hyperfine = await $`hyperfine --version`.text();
  const cpu = await $`nproc`.text();
  return `kernel ${kernel}, ${cpu} CPUs, deno ${Deno.version.deno} (V8 ${Deno.version.v8}), ` +
    `${conntrack}, ${hyperfine}, accounting ${ACCT ? "on" : "off"}, ${new Date().toISOString()}`;
}

const results: Result[] = [];
const startupResults: Result[] = [];
const started = performance.now();
const ns = await createNamespace("dump", { acct: ACCT, timestamp: ACCT });
try {
  const env = await environment();
  console.error(`namespace ${ns}; ${env}`);
  for (const [i, n] of SIZES.entries()) {
    if (n > 200_000) await raiseConntrackMax(n + 50_000);
    const t0 = performance.now();
    const have = await fill(ns, n);
    console.error(
      `N=${n}: table has ${have} entries (filled in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s)`,
    );
    if (have !== n) throw new Error(`wanted ${n} entries, the table has ${have}`);
    for (const row of DUMP_ROWS) {
      const seen = await entriesSeen(ns, row);
      if (seen !== n) throw new Error(`${row.name} saw ${seen} entries, not ${n}`);
    }
    const rows = await time(ns, DUMP_ROWS, RUNS[i] ?? RUNS.at(-1)!, n);
    results.push(...rows);
    console.error(
      table(rows, [["conntrack -L", "× conntrack -L"], [DUMP_ROWS[0]!.name, "× floor"]]),
    );
    if (i === 0) {
      // Independent of N; measured with the smallest table.
      startupResults.push(...await time(ns, STARTUP_ROWS, STARTUP_RUNS, n));
      console.error(table(startupResults, [["deno run (empty script)", "× empty deno run"]]));
    }
  }
  const elapsed = ((performance.now() - started) / 1000).toFixed(0);
  console.log(`### Dump, whole process (one run of \`deno task bench:dump\`, ${elapsed} s)\n`);
  console.log(`${env}\n`);
  console.log(
    "Every command runs as `ip netns exec <ns> <command>`, stdout to /dev/null; " +
      "times are hyperfine wall-clock medians over " +
      `${SIZES.map((n, i) => `${RUNS[i] ?? RUNS.at(-1)} runs at N=${n}`).join(", ")}; ` +
      "CPU is hyperfine's mean user and system time (all threads); " +
      "peak RSS is GNU time's maximum resident set size of one run.\n",
  );
  console.log(
    table(results, [["conntrack -L", "× conntrack -L"], [DUMP_ROWS[0]!.name, "× floor"]]),
  );
  console.log(
    `\n### Start-up-bound commands (N=${SIZES[0]}, ${STARTUP_RUNS} runs)\n\n` +
      table(startupResults, [["deno run (empty script)", "× empty deno run"]]),
  );
  console.log("\nCommands:\n");
  for (const r of [...results.filter((r) => r.n === SIZES[0]), ...startupResults]) {
    console.log(`- ${r.name}: \`${r.command.replace(ns, "<ns>")}\``);
  }
  if (JSON_OUT) {
    await Deno.writeTextFile(
      JSON_OUT,
      JSON.stringify({ env, results, startup: startupResults }, null, 2),
    );
  }
} finally {
  await cleanup();
}
