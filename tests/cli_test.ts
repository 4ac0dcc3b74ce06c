/**
 * The `ctnl` CLI as a real process against the real kernel: a namespace with
 * real traffic (tests/_traffic.ts), every output compared with
 * conntrack-tools line for line; bad inputs with their exit codes; the
 * bundled `dist/ctnl.js` through the same smoke tests.
 */

import assert from "node:assert/strict";
import { Conntrack, type Flow, flowToJson, formatFlow, type TupleSpec } from "../mod.ts";
import { pool, run, type RunResult } from "./_ns.ts";
import type { Netns } from "./_ns.ts";
import { trafficNamespace } from "./_traffic.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = new URL("../cli.ts", import.meta.url).pathname;
const DENO = Deno.execPath();
const VERSION = (JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)) as { version: string })
  .version;
const SUMMARY = new RegExp(
  `^ctnl v${
    VERSION.replaceAll(".", "\\.")
  } \\(@ctnl/conntrack\\): (\\d+) flow entries have been shown\\.$`,
);
const LABELS = "/etc/xtables/connlabel.conf";

/** Runs the CLI (`cli.ts`, or the bundle) as `deno run --allow-ffi SCRIPT ARGS`. */
function ctnl(args: string[], script = CLI, perms = ["--allow-ffi"]): Promise<RunResult> {
  return run([DENO, "run", ...perms, script, ...args]);
}

/** Seconds two runs of the clock-dependent fields may differ by. */
const SLACK = 10;
const TIMEOUT_RE = /^((?:ipv[46] +\d+ )?\S+ +\d+ )(\d+) /;
const DELTA_RE = / delta-time=(\d+)/;

/**
 * Compares ctnl's lines with conntrack's: equal except the timeout
 * countdown and `delta-time=`, which may differ by {@link SLACK} seconds
 * (the two tools ran at slightly different times, maybe on a busy machine). With `getVsList`, ctnl's `use=`
 * is one more (a get against a listing).
 */
function assertSameLines(actual: string, expected: string, what: string, getVsList = false): void {
  const a = actual.split("\n");
  const e = expected.split("\n");
  if (getVsList) {
    // A get holds one more reference on the entry while the kernel fills the reply.
    for (let i = 0; i < a.length; i++) {
      a[i] = a[i]!.replace(/ use=(\d+)/, (_m, n) => ` use=${Number(n) - 1}`);
    }
  }
  assert.equal(a.length, e.length, `${what}: line count\n${actual}\n---\n${expected}`);
  for (let i = 0; i < a.length; i++) {
    let x = a[i]!, y = e[i]!;
    for (const re of [TIMEOUT_RE, DELTA_RE]) {
      const mx = re.exec(x), my = re.exec(y);
      if (mx && my) {
        const n = mx.length - 1;
        assert(Math.abs(Number(mx[n]) - Number(my[n])) <= SLACK, `${what}: ${x}\nvs\n${y}`);
        x = x.replace(re, (m) => m.replace(/\d+( ?)$/, "N$1"));
        y = y.replace(re, (m) => m.replace(/\d+( ?)$/, "N$1"));
      }
    }
    assert.equal(x, y, `${what}: line ${i + 1}`);
  }
}

/** The count in ctnl's summary line, checking there is nothing else on stderr. */
function summaryCount(stderr: string, what: string): number {
  const lines = stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `${what}: stderr ${JSON.stringify(stderr)}`);
  const m = SUMMARY.exec(lines[0]!);
  assert(m, `${what}: summary ${JSON.stringify(lines[0])}`);
  return Number(m[1]);
}

function conntrackCount(stderr: string): number {
  const m = /: (\d+) flow entries have been shown\.$/m.exec(stderr);
  assert(m, `conntrack summary: ${stderr}`);
  return Number(m[1]);
}

/** `ctnl --netns NS dump ARGS` against `conntrack -L ARGS`: same stdout, same count. */
async function compareDump(
  ns: Netns,
  args: string[],
  script = CLI,
  ctnlArgs = ["dump", ...args],
): Promise<number> {
  const [mine, theirs] = await Promise.all([
    ctnl(["--netns", ns.name, ...ctnlArgs], script),
    ns.run(["conntrack", "-L", ...args]),
  ]);
  const what = `dump ${args.join(" ")}`;
  assert.equal(theirs.code, 0, `conntrack -L ${args.join(" ")}: ${theirs.stderr}`);
  assert.equal(mine.code, 0, `${what}: ${mine.stderr}`);
  assertSameLines(mine.stdout, theirs.stdout, what);
  const n = summaryCount(mine.stderr, what);
  assert.equal(n, conntrackCount(theirs.stderr), `${what}: summary count`);
  return n;
}

/** The `-p -s -d --sport --dport` (or `-r -q --reply-port-*`, or `--icmp-*`, and `-w`) options naming `f`. */
function tupleArgs(f: Flow, reply = false): string[] {
  const t = reply ? f.reply : f.orig;
  const args = [
    "-p",
    String(t.protocol),
    reply ? "-r" : "-s",
    t.src!,
    reply ? "-q" : "-d",
    t.dst!,
  ];
  if (t.srcPort !== undefined) {
    args.push(reply ? "--reply-port-src" : "--sport", String(t.srcPort));
    args.push(reply ? "--reply-port-dst" : "--dport", String(t.dstPort));
  }
  if (t.icmpType !== undefined) {
    const v6 = t.protocol === 58 ? "v6" : "";
    args.push(`--icmp${v6}-type`, String(t.icmpType), `--icmp${v6}-code`, String(t.icmpCode));
    args.push(`--icmp${v6}-id`, String(t.icmpId));
  }
  if (f.zone !== undefined) args.push("-w", String(f.zone));
  return args;
}

/** conntrack -L filter options (ctnl takes the same ones) and whether they must select something. */
const FILTER_CASES: [string[], boolean][] = [
  [["-f", "ipv4"], true],
  [["-f", "ipv6"], true],
  [["-p", "tcp"], true],
  [["-p", "udp"], true],
  [["-p", "6"], true],
  [["-p", "icmp"], true],
  [["-p", "icmpv6"], true],
  [["--protonum", "udp"], true],
  [["-ptcp", "--dport=8080"], true],
  [["-p", "tcp", "--dport", "8080"], true],
  [["-p", "tcp", "--orig-port-dst", "21"], true],
  [["-p", "udp", "--dport", "5353"], true],
  [["-p", "udp", "--sport", "5353"], false],
  [["-p", "tcp", "--reply-port-src", "8080"], true],
  [["-p", "tcp", "--reply-port-dst", "7000", "-r", "10.50.0.2"], false],
  [["-s", "10.50.0.1"], true],
  [["--orig-src", "10.50.0.1", "-p", "udp"], true],
  [["-d", "10.60.0.100"], true],
  [["--dst", "10.50.0.2"], true],
  [["-r", "10.50.0.2", "-q", "10.50.0.3"], true],
  [["-q", "10.50.0.1"], true],
  [["-s", "fd50::2"], true],
  [["-s", "fd50:0::2"], true],
  [["-d", "fd50::2", "-p", "udp"], true],
  [["-r", "fd50::2"], true],
  [["-f", "ipv6", "-p", "tcp"], true],
  [["-m", "42"], true],
  [["-m", "0x2a"], true],
  [["-m", "052"], true],
  [["-m", "40/0xf8"], true],
  [["-m", "0"], true],
  [["-w", "7"], true],
  [["-w", "0"], true],
  [["--zone", "8"], false],
  [["-u", "ASSURED"], true],
  [["-u", "assured"], true],
  [["-u", "SEEN_REPLY"], true],
  [["-u", "UNREPLIED"], true],
  [["-u", "!ASSURED"], true],
  [["-u", "EXPECTED"], true],
  [["-u", "SEEN_REPLY,ASSURED"], true],
  [["-p", "icmp", "--icmp-type", "8"], true],
  [["-p", "icmp", "--icmp-type", "8", "--icmp-code", "0"], true],
  [["-p", "icmpv6", "--icmpv6-type", "128"], true],
  [["-s", "10.50.0.1", "-p", "tcp", "--dport", "7000"], true],
  [["-p", "tcp", "--state", "ESTABLISHED"], true],
  [["-p", "tcp", "--state", "TIME_WAIT"], true],
  [["-f", "ipv4", "-p", "tcp", "-u", "ASSURED", "-m", "0"], true],
  [["-p", "tcp", "-o", "extended,id", "-s", "10.50.0.1"], true],
];

Deno.test("ctnl CLI against the kernel and conntrack-tools", async (t) => {
  // `deno task bundle` makes dist/ctnl.js; build the same into a temp dir
  // (while the namespace is set up) and put it through the smoke tests.
  const bundleDir = await Deno.makeTempDir({ prefix: "ctnl-bundle-" });
  const bundle = `${bundleDir}/ctnl.js`;
  const building = run([DENO, "bundle", "--quiet", "-o", bundle, CLI]);
  const ns = await trafficNamespace("cli");
  const labelDirs: string[] = [];
  try {
    // The traffic's UDP and ICMP entries live 30 s, TIME_WAIT 120 s; stretch
    // them (and new ones) so that nothing expires while the tools are
    // compared. (conntrack -U cannot reach the zone-7 entry; the library can.)
    await ns.exec([
      "sysctl",
      "-qw",
      "net.netfilter.nf_conntrack_udp_timeout=600",
      "net.netfilter.nf_conntrack_udp_timeout_stream=600",
      "net.netfilter.nf_conntrack_icmp_timeout=600",
      "net.netfilter.nf_conntrack_icmpv6_timeout=600",
    ]);
    {
      using setup = Conntrack.open({ netns: ns.name });
      for (const f of [...setup.dumpSync()]) {
        if ((f.timeout ?? 600) >= 600) continue;
        const t = f.orig;
        const tuple: TupleSpec = { src: t.src!, dst: t.dst!, protocol: t.protocol! };
        if (t.srcPort !== undefined) {
          Object.assign(tuple, { srcPort: t.srcPort, dstPort: t.dstPort });
        }
        if (t.icmpType !== undefined) {
          Object.assign(tuple, { icmpType: t.icmpType, icmpCode: t.icmpCode, icmpId: t.icmpId });
        }
        await setup.update(tuple, { timeout: 600 }, { zone: f.zone ?? 0 }).catch(() => {});
      }
    }

    // Connection labels: an ICMP flow to 10.50.0.3 labelled "one" and "five"
    // (bits 1 and 5). nft and conntrack read label names from /etc, so each
    // run that needs them sees an overlay of /etc with our connlabel.conf.
    const withLabels = async (conf: string, script: string): Promise<RunResult> => {
      const dir = await Deno.makeTempDir({ prefix: "ctnl-labels-" });
      labelDirs.push(dir);
      await Deno.mkdir(`${dir}/up/xtables`, { recursive: true });
      await Deno.mkdir(`${dir}/work`);
      await Deno.writeTextFile(`${dir}/up/xtables/connlabel.conf`, conf);
      await Deno.writeTextFile(`${dir}/up/connlabel.conf`, conf);
      return run([
        "unshare",
        "-m",
        "sh",
        "-ec",
        `mount -t overlay overlay -o lowerdir=/etc,upperdir=${dir}/up,workdir=${dir}/work /etc\n${script}`,
      ]);
    };
    const labelConf = "# test labels\n1 one\n5 five\n0x46 seventy\n  9   nine  \n";
    const labelled = await withLabels(
      labelConf,
      `ip netns exec ${ns.name} nft add rule inet ctnl mangle_out ip daddr 10.50.0.3 meta l4proto icmp ct label set one
       ip netns exec ${ns.name} nft add rule inet ctnl mangle_out ip daddr 10.50.0.3 meta l4proto icmp ct label set five
       ip netns exec ${ns.name} ping -c 1 -W 2 10.50.0.3 >/dev/null`,
    );
    assert.equal(labelled.code, 0, `label setup: ${labelled.stderr}`);

    using ct = Conntrack.open({ netns: ns.name });
    const flows = [...ct.dumpSync()];

    await t.step("the namespace has every kind of entry", async () => {
      const text = await ns.exec(["conntrack", "-L", "-o", "extended"]);
      for (
        const needle of [
          " ESTABLISHED ",
          " TIME_WAIT ",
          "[UNREPLIED]",
          "[ASSURED]",
          "ipv6     10 udp",
          "ipv6     10 tcp",
          "icmpv6   58",
          "icmp     1",
          " zone=7 ",
          " mark=42 ",
          " helper=ftp ",
          " packets=",
          " delta-time=",
        ]
      ) assert(text.includes(needle), `no "${needle}" in\n${text}`);
      assert(flows.some((f) => f.labels !== undefined), "a labelled flow");
      assert(flows.length >= 15, `${flows.length} flows`);
    });

    await t.step(
      "dump prints what conntrack -L prints, line for line, in the same order",
      async () => {
        const cases: [string[], string[]][] = [
          [[], ["dump"]],
          [[], ["list"]],
          [[], ["-L"]],
          [[], ["--dump"]],
          [["-o", "extended"], ["dump", "-o", "extended"]],
          [["-o", "extended,id"], ["dump", "-o", "extended,id"]],
          [["-o", "id"], ["-L", "-o", "id"]],
          [["-o", "ktimestamp"], ["dump", "-o", "ktimestamp"]],
          [["-o", "extended,id,ktimestamp"], ["dump", "-o", "extended,id,ktimestamp"]],
          [["-o", "EXT,i,k"], ["dump", "--output=EXT,i,k"]],
          [["-o", "ext", "-o", "id"], ["dump", "-o", "ext", "-o", "id"]],
          [["-o", "timestamp"], ["dump", "-o", "timestamp"]],
          [["-o", "userspace"], ["dump", "-o", "userspace"]],
        ];
        const counts = await pool(cases, 6, ([args, mine]) => compareDump(ns, args, CLI, mine));
        assert(counts.every((n) => n === flows.length), `counts ${counts} vs ${flows.length}`);
      },
    );

    await t.step("dump filters select what conntrack -L selects", async () => {
      const counts = await pool(FILTER_CASES, 8, ([args]) => compareDump(ns, args));
      for (const [i, [args, nonEmpty]] of FILTER_CASES.entries()) {
        if (nonEmpty) assert(counts[i]! > 0, `${args.join(" ")} selects nothing`);
      }
    });

    await t.step("-o labels prints label names from connlabel.conf as conntrack does", async () => {
      const script = (args: string) =>
        `ip netns exec ${ns.name} conntrack -L ${args} 2>/dev/null
         echo ----
         ${DENO} run --allow-ffi --allow-read=${LABELS} ${CLI} --netns ${ns.name} dump ${args} 2>/dev/null`;
      const check = async (conf: string, args: string, expect: RegExp) => {
        const r = await withLabels(conf, script(args));
        assert.equal(r.code, 0, r.stderr);
        const [theirs, mine] = r.stdout.split("----\n") as [string, string];
        assert.match(theirs, expect);
        assertSameLines(mine, theirs, `-o labels with ${JSON.stringify(conf)}`);
      };
      await check(labelConf, "-o labels", / use=1 labels=one,five\n/);
      await check(labelConf, "-o labels,extended,id -p icmp", / id=\d+ labels=one,five\n/);
      await check("5 five\n", "-o labels", / use=1 labels=five\n/);
      await check("0 zero\n9 nine\n", "-o labels", / use=1 labels\n/); // no set bit has a name

      // Without a readable label map, conntrack prints no labels; so does ctnl, with a warning.
      const [mine, theirs] = await Promise.all([
        ctnl(["--netns", ns.name, "dump", "-o", "labels"]),
        ns.run(["conntrack", "-L", "-o", "labels"]),
      ]);
      assert.equal(mine.code, 0);
      const systemMap = await Deno.stat(LABELS).then(() => true, () => false);
      if (!systemMap) assertSameLines(mine.stdout, theirs.stdout, "-o labels without a map");
      assert(!mine.stdout.includes("labels"));
      const [warning, summary] = mine.stderr.split("\n");
      assert.equal(
        warning,
        `ctnl: warning: label names not loaded: reading ${LABELS} needs --allow-read=${LABELS}`,
      );
      assert.match(summary!, SUMMARY);
    });

    await t.step("get prints what conntrack -G prints", async () => {
      const picks: Flow[] = [];
      const pick = (what: string, p: (f: Flow) => boolean) => {
        const f = flows.find(p);
        assert(f, what);
        picks.push(f);
      };
      pick("tcp mark 42", (f) => f.mark === 42);
      pick("tcp time_wait", (f) => f.tcp?.stateName === "TIME_WAIT");
      pick("udp unreplied", (f) => f.orig.protocol === 17 && f.orig.dstPort === 5999);
      pick("udp ipv6", (f) => f.family === "ipv6" && f.orig.protocol === 17);
      pick("icmp", (f) => f.orig.protocol === 1);
      pick("icmpv6", (f) => f.orig.protocol === 58);
      pick("dnat", (f) => f.orig.dstPort === 8081);
      pick("ftp helper", (f) => f.helper === "ftp");
      pick("zone 7", (f) => f.zone === 7);
      // [ctnl get arguments, conntrack arguments]
      const cases: [string[], string[]][] = [];
      for (const f of picks) {
        const orig = tupleArgs(f, false);
        // conntrack 1.4.7 refuses -w with -G; its -L with the same tuple shows the entry.
        const command = f.zone === undefined ? "-G" : "-L";
        cases.push([orig, [command, ...orig]]);
        const ext = [...orig, "-o", "extended,id,ktimestamp"];
        cases.push([ext, [command, ...ext]]);
        // By the reply tuple (conntrack -G cannot: it answers "invalid parameters").
        if (f.orig.icmpType === undefined) cases.push([tupleArgs(f, true), [command, ...orig]]);
      }
      await pool(cases, 6, async ([args, theirArgs]) => {
        const [mine, theirs] = await Promise.all([
          ctnl(["--netns", ns.name, "get", ...args]),
          ns.run(["conntrack", ...theirArgs]),
        ]);
        const what = `get ${args.join(" ")}`;
        assert.equal(theirs.code, 0, `conntrack ${theirArgs.join(" ")}: ${theirs.stderr}`);
        assert.equal(mine.code, 0, `${what}: ${mine.stderr}`);
        assertSameLines(mine.stdout, theirs.stdout, what, theirArgs[0] === "-L");
        assert.equal(summaryCount(mine.stderr, what), 1);
      });
      // -G also works as the command flag, and a missing entry fails like conntrack.
      const missing = [
        "-p",
        "udp",
        "-s",
        "10.9.9.9",
        "-d",
        "10.9.9.8",
        "--sport",
        "1",
        "--dport",
        "2",
      ];
      const [mine, theirs] = await Promise.all([
        ctnl(["--netns", ns.name, "-G", ...missing]),
        ns.run(["conntrack", "-G", ...missing]),
      ]);
      assert.equal(theirs.code, 1);
      assert.equal(mine.code, 1);
      assert.equal(mine.stdout, "");
      assert.equal(mine.stderr, "ctnl: Operation failed: such conntrack doesn't exist\n");
      assert.match(theirs.stderr, /Operation failed: such conntrack doesn't exist/);
    });

    await t.step("stats prints conntrack -S lines; count prints conntrack -C", async () => {
      // The counters may move between the two runs if the table is touched;
      // then the runs are repeated (the layout is checked every time).
      const same = async (mineArgs: string[], theirArgs: string[]) => {
        for (let attempt = 1;; attempt++) {
          const [mine, theirs] = await Promise.all([
            ctnl(["--netns", ns.name, ...mineArgs]),
            ns.run(["conntrack", ...theirArgs]),
          ]);
          const what = `${mineArgs.join(" ")} vs conntrack ${theirArgs.join(" ")}`;
          assert.equal(mine.code, 0, `${what}: ${mine.stderr}`);
          assert.equal(mine.stderr, "", what);
          const layout = (text: string) => text.replace(/=\d+/g, "=N").replace(/^\d+$/m, "N");
          assert.equal(layout(mine.stdout), layout(theirs.stdout), what);
          if (mine.stdout === theirs.stdout) return mine.stdout;
          assert(attempt < 3, `${what}:\n${mine.stdout}\n---\n${theirs.stdout}`);
        }
      };
      const stats = await same(["stats"], ["-S"]);
      assert.match(stats, /^cpu=0 {3}\tfound=\d+ invalid=\d+ insert=\d+ insert_failed=\d+ /);
      await same(["-S"], ["-S"]);
      for (const args of [["count"], ["-C"], ["--count"], ["--counter"]]) {
        assert.equal(await same(args, ["-C"]), `${flows.length}\n`);
      }
      // The plain forms run from cli/quick.ts without loading the CLI: a CPU profile of
      // the run (sampled every 50 µs) shows none of the full CLI's modules.
      for (const args of [["count"], ["-S", "--json"]]) {
        const dir = await Deno.makeTempDir();
        try {
          const prof = [`--cpu-prof`, `--cpu-prof-dir=${dir}`, "--cpu-prof-interval=50"];
          const r = await ctnl(["--netns", ns.name, ...args], CLI, [...prof, "--allow-ffi"]);
          assert.equal(r.code, 0, r.stderr);
          const [file] = [...Deno.readDirSync(dir)];
          const profile = JSON.parse(Deno.readTextFileSync(`${dir}/${file!.name}`)) as {
            nodes: { callFrame: { url: string } }[];
          };
          const urls = new Set(profile.nodes.map((n) => n.callFrame.url));
          assert([...urls].some((u) => u.endsWith("/cli/quick.ts")), [...urls].join(" "));
          const full = [...urls].filter((u) => /\/cli\/(main|options|context|commands\/)/.test(u));
          assert.deepEqual(full, [], `${args.join(" ")} loaded the full CLI`);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      }
    });

    await t.step("--json: NDJSON for dump, one object for get, stats, count", async () => {
      const byId = new Map([...ct.dumpSync()].map((f) => [f.id!, f]));
      const [dump, theirs] = await Promise.all([
        ctnl(["--netns", ns.name, "dump", "--json"]),
        ns.run(["conntrack", "-L"]),
      ]);
      assert.equal(dump.code, 0, dump.stderr);
      const lines = dump.stdout.split("\n");
      assert.equal(lines.pop(), "");
      assert.equal(lines.length, conntrackCount(theirs.stderr));
      assert.equal(summaryCount(dump.stderr, "dump --json"), lines.length);
      const withoutClock = (o: Record<string, unknown>) => ({ ...o, timeout: 0, use: 0 });
      for (const line of lines) {
        const got = JSON.parse(line) as Record<string, unknown>;
        const flow = byId.get(got.id as number);
        assert(flow, `no library flow with id ${got.id}`);
        const want = JSON.parse(flowToJson(flow)) as Record<string, unknown>;
        assert(Math.abs((got.timeout as number) - (want.timeout as number)) <= SLACK, "timeout");
        assert.deepEqual(withoutClock(got), withoutClock(want));
        for (const key of ["family", "orig", "reply", "status", "statusFlags", "mark", "id"]) {
          assert(key in got, `${key} in ${line}`);
        }
      }
      // Counters are written as exact integers (no quotes, no rounding).
      assert.match(dump.stdout, /"countersOrig":\{"packets":\d+,"bytes":\d+\}/);

      const filtered = await ctnl(["--netns", ns.name, "dump", "--json", "-p", "tcp", "-m", "42"]);
      const marked = filtered.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(marked.length, 1);
      assert.equal(marked[0].mark, 42);
      assert.equal(marked[0].tcp.stateName, "ESTABLISHED");

      const f = flows.find((f) => f.mark === 42)!;
      const get = await ctnl(["--netns", ns.name, "get", "--json", ...tupleArgs(f)]);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(get.stdout.split("\n").length, 2, "one line");
      const one = JSON.parse(get.stdout);
      assert.equal(one.id, f.id);
      assert.deepEqual(one.orig, JSON.parse(flowToJson(f)).orig);

      const stats = await ctnl(["--netns", ns.name, "stats", "--json"]);
      const s = JSON.parse(stats.stdout);
      assert(Array.isArray(s.cpus) && s.cpus.length === (await ct.stats()).length);
      assert.deepEqual(Object.keys(s.cpus[0]).slice(0, 2), ["cpu", "found"]);
      assert.equal(typeof s.cpus[0].insertFailed, "number");

      const count = await ctnl(["--netns", ns.name, "count", "--json"]);
      const c = JSON.parse(count.stdout);
      assert.equal(c.entries, flows.length);
      assert(c.maxEntries > 0);
    });

    await t.step("a closed stdout ends the dump quietly with 0", async () => {
      const r = await run([
        "bash",
        "-c",
        `{ sleep 0.3; ${DENO} run --allow-ffi ${CLI} --netns ${ns.name} dump -o extended,id; echo "rc=$?" >&2; } | true`,
      ]);
      const lines = r.stderr.split("\n").filter((l) => l !== "");
      assert.equal(lines.at(-1), "rc=0", r.stderr);
      // Either the write failed (nothing else) or the pipe took it all (the summary).
      assert(lines.length === 1 || SUMMARY.test(lines[0]!), r.stderr);
    });

    await t.step("bundle: deno bundle builds a single file", async () => {
      const built = await building;
      assert.equal(built.code, 0, built.stderr);
      assert((await Deno.stat(bundle)).size > 10_000);
    });

    await t.step("bundle: dump equals conntrack -L", async () => {
      const n = await compareDump(ns, [], bundle);
      assert(n > 10);
      await compareDump(ns, ["-o", "extended,id", "-p", "tcp"], bundle);
    });
    await t.step("bundle: get, count, stats, json", async () => {
      const f = flows.find((f) => f.orig.protocol === 6)!;
      const args = tupleArgs(f);
      const [get, want] = await Promise.all([
        ctnl(["--netns", ns.name, "get", ...args], bundle),
        ns.run(["conntrack", "-G", ...args]),
      ]);
      assert.equal(get.code, 0, get.stderr);
      assertSameLines(get.stdout, want.stdout, "bundle get");
      assert.match(get.stdout, new RegExp(`^${formatFlow(f).split(" ").slice(0, 2).join(" ")}`));
      const [count, wantCount] = await Promise.all([
        ctnl(["--netns", ns.name, "count"], bundle),
        ns.run(["conntrack", "-C"]),
      ]);
      assert.equal(count.stdout, wantCount.stdout);
      const stats = await ctnl(["--netns", ns.name, "stats"], bundle);
      assert.match(stats.stdout, /^cpu=0 +\tfound=\d+ /);
      const json = await ctnl(["--netns", ns.name, "dump", "--json", "-p", "tcp"], bundle);
      const first = JSON.parse(json.stdout.split("\n")[0]!);
      assert.equal(first.orig.protocol, 6);
    });
    await t.step("bundle: bad input, missing entry, version", async () => {
      const bad = await ctnl(["--netns", ns.name, "dump", "-p", "tcp", "--dport", "70000"], bundle);
      assert.equal(bad.code, 2);
      assert.equal(bad.stdout, "");
      assert.equal(bad.stderr, 'ctnl: invalid port "70000" for --dport (0-65535)\n');
      const missing = await ctnl(
        [
          "--netns",
          ns.name,
          "get",
          "-p",
          "udp",
          "-s",
          "10.1.1.1",
          "-d",
          "10.1.1.2",
          "--sport",
          "1",
          "--dport",
          "2",
        ],
        bundle,
      );
      assert.equal(missing.code, 1);
      assert.equal(missing.stderr, "ctnl: Operation failed: such conntrack doesn't exist\n");
      const version = await ctnl(["--version"], bundle);
      assert.equal(version.stdout, `ctnl v${VERSION} (@ctnl/conntrack)\n`);
    });
  } finally {
    await ns.delete();
    await building.catch(() => {});
    for (const dir of [...labelDirs, bundleDir]) await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ctnl without a namespace and without permissions", async (t) => {
  await t.step("a missing namespace is exit 1", async () => {
    const r = await ctnl(["--netns", "ctnl-no-such-ns", "count"]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      'ctnl: network namespace "ctnl-no-such-ns" does not exist (/run/netns/ctnl-no-such-ns does not exist)\n',
    );
    const path = await ctnl(["--netns", "/nonexistent/ns", "dump"]);
    assert.equal(path.code, 1);
    assert.match(path.stderr, /^ctnl: network namespace "\/nonexistent\/ns" does not exist/);
  });

  await t.step("without --allow-ffi: one line saying so, exit 1", async () => {
    const r = await ctnl(["count"], CLI, []);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^ctnl: needs FFI access .*--allow-ffi.*\n$/);
    // Bad parameters are found before that.
    const bad = await ctnl(["dump", "-p", "frob"], CLI, []);
    assert.equal(bad.code, 2);
  });

  await t.step("not root: needs CAP_NET_ADMIN, exit 1", async () => {
    // As nobody, from a bundle in a world-readable place (a checkout under
    // /root would not be readable).
    const cache = await Deno.makeTempDir({ prefix: "ctnl-nobody-" });
    try {
      await Deno.chmod(cache, 0o777);
      const script = `${cache}/ctnl.js`;
      const built = await run([DENO, "bundle", "--quiet", "-o", script, CLI]);
      assert.equal(built.code, 0, built.stderr);
      await Deno.chmod(script, 0o644);
      const r = await run([
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "env",
        `DENO_DIR=${cache}`,
        `HOME=${cache}`,
        DENO,
        "run",
        "--allow-ffi",
        script,
        "count",
      ]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, "");
      assert.equal(
        r.stderr.split("\n").filter((l) => l.startsWith("ctnl: ")).join("\n"),
        "ctnl: Operation failed: sorry, you must be root or get CAP_NET_ADMIN capability to do this",
      );
    } finally {
      await Deno.remove(cache, { recursive: true });
    }
  });
});
