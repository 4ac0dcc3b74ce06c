/**
 * The examples and the demo as real processes: each example against a
 * namespace with real traffic (tests/_traffic.ts), its output checked
 * against conntrack-tools; `deno task demo` to completion and interrupted,
 * leaving no namespace behind.
 */

import $ from "@david/dax";
import assert from "node:assert/strict";
import { Conntrack } from "../mod.ts";
import { prepare, run } from "./_ns.ts";
import type { Netns } from "./_ns.ts";
import { tupleSpecOf } from "../src/tuple.ts";
import { parseConntrackOutput } from "./_conntrack_text.ts";
import { trafficNamespace } from "./_traffic.ts";

const DENO = Deno.execPath();
const EXAMPLES = new URL("../examples/", import.meta.url).pathname;
const DEMO = new URL("../tools/demo.ts", import.meta.url).pathname;

/** Runs `examples/NAME` as `deno run --allow-ffi`. */
function example(name: string, args: string[]) {
  return run([DENO, "run", "--allow-ffi", `${EXAMPLES}${name}`, ...args]);
}

/** `conntrack ARGS` in the namespace: its stdout lines. */
async function conntrack(ns: Netns, args: string[]): Promise<string[]> {
  const r = await ns.run(["conntrack", ...args]);
  assert.equal(r.code, 0, `conntrack ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.split("\n").filter((l) => l !== "");
}

async function conntrackCount(ns: Netns): Promise<number> {
  return Number((await conntrack(ns, ["-C"]))[0]);
}

/** A conntrack -L line with the clock masked: the timeout countdown and delta-time. */
function masked(line: string): string {
  return line.replace(/^(\S+ +\d+ )\d+ /, "$1T ").replace(/ delta-time=\d+/, "");
}

/**
 * A process whose output is collected as it comes, so a test can wait for
 * a line on stderr while the process runs. (Deno.Command, not dax: the demo
 * test needs the child's pid, and dax would give a `deno run` child without
 * permission flags `-A`; see tests/_ns.ts.)
 */
class Proc {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  #done: Promise<[void, void]>;

  constructor(cmd: string[]) {
    this.child = new Deno.Command(cmd[0]!, {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) this[key] += text;
    };
    this.#done = Promise.all([
      collect(this.child.stdout, "stdout"),
      collect(this.child.stderr, "stderr"),
    ]);
  }

  /** Waits until stderr matches `re` (or fails after `ms`). */
  async waitFor(re: RegExp, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!re.test(this.stderr)) {
      if (Date.now() > deadline) {
        throw new Error(`no ${re} on stderr after ${ms} ms:\n${this.stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Waits for the exit (killing it after `ms`); the exit code. */
  async finish(ms = 30_000): Promise<number> {
    const timer = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* it exited; its output is still being read */ }
    }, ms);
    try {
      const status = await this.child.status;
      await this.#done;
      return status.code;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * A namespace with real traffic whose short-lived entries (UDP and ICMP
 * time out after 30 s, TIME_WAIT after 120 s) are given ten minutes, so
 * nothing expires while a slow or busy machine runs a test.
 */
async function steadyNamespace(tag: string): Promise<Netns> {
  return prepare(await trafficNamespace(tag), async (ns) => {
    using ct = Conntrack.open({ netns: ns.name });
    for (const flow of [...ct.dumpSync()]) {
      if ((flow.timeout ?? 0) > 600) continue;
      await ct.update(
        tupleSpecOf(flow.orig),
        { timeout: 600 },
        flow.zone === undefined ? {} : { zone: flow.zone },
      );
    }
  });
}

async function netnsNames(): Promise<Set<string>> {
  const lines = await $`ip netns list`.lines();
  return new Set(lines.map((l) => l.split(" ")[0]!).filter((n) => n !== ""));
}

/** Starts `examples/watch.ts --netns NS ARGS`, its output collected as it comes. */
function watch(ns: Netns, args: string[]): Proc {
  return new Proc([DENO, "run", "--allow-ffi", `${EXAMPLES}watch.ts`, "--netns", ns.name, ...args]);
}

Deno.test("top_talkers lists the flows with the most bytes, as conntrack -L counts them", async () => {
  const ns = await steadyNamespace("top");
  try {
    const r = await example("top_talkers.ts", ["--netns", ns.name, "--top", "5"]);
    assert.equal(r.code, 0, r.stderr);
    const [header, ...rows] = r.stdout.trimEnd().split("\n");
    assert.match(header!, /^BYTES +PACKETS +PROTO +SOURCE +DESTINATION +STATE$/);
    assert.equal(rows.length, 5);

    const entries = parseConntrackOutput(
      (await conntrack(ns, ["-L", "-o", "extended"])).join("\n"),
    ).map((e) => ({
      e,
      bytes: BigInt(e.orig.bytes ?? 0) + BigInt(e.reply.bytes ?? 0),
      packets: BigInt(e.orig.packets ?? 0) + BigInt(e.reply.packets ?? 0),
    })).sort((a, b) => (a.bytes < b.bytes ? 1 : a.bytes > b.bytes ? -1 : 0));
    assert(entries.length > 5);
    const endpoint = (a: string, p: number | undefined) =>
      p === undefined ? a : a.includes(":") ? `[${a}]:${p}` : `${a}:${p}`;
    for (const [i, row] of rows.entries()) {
      const [bytes, packets, proto, src, dst, state] = row.trim().split(/ +/);
      // The same byte counts in the same order (ties may swap flows)…
      assert.equal(BigInt(bytes!), entries[i]!.bytes, `row ${i + 1}: ${row}`);
      // …and each row is a real entry with those counters.
      const match = entries.find(({ e, bytes: b, packets: p }) =>
        b === BigInt(bytes!) && p === BigInt(packets!) && e.l4 === proto &&
        endpoint(e.orig.src, e.orig.sport) === src && endpoint(e.orig.dst, e.orig.dport) === dst &&
        (e.state ?? "-") === state
      );
      assert(match, `row ${i + 1} is no conntrack entry: ${row}`);
    }
    // The DNAT flow says where it really went.
    const all = await example("top_talkers.ts", ["--netns", ns.name, "-n", "100"]);
    assert.match(all.stdout, /10\.60\.0\.100:8081 +ESTABLISHED +\(dnat to 10\.50\.0\.2:8080\)/);
    assert.equal(all.stdout.trimEnd().split("\n").length, entries.length + 1);
  } finally {
    await ns.delete();
  }
});

Deno.test("kill_port deletes exactly what conntrack -L -p tcp --dport lists", async () => {
  const ns = await steadyNamespace("kill");
  try {
    const listed = await conntrack(ns, ["-L", "-p", "tcp", "--dport", "8080"]);
    assert(listed.length >= 3, listed.join("\n")); // IPv4 and IPv6, open and TIME_WAIT
    const before = await conntrackCount(ns);
    const expected = listed.map(masked).sort();

    const dry = await example("kill_port.ts", ["--netns", ns.name, "--port", "8080", "--dry-run"]);
    assert.equal(dry.code, 0, dry.stderr);
    assert.deepEqual(dry.stdout.trimEnd().split("\n").map(masked).sort(), expected);
    assert.match(dry.stderr, new RegExp(`${listed.length} entries would be deleted`));
    assert.equal(await conntrackCount(ns), before);

    const kill = await example("kill_port.ts", ["--netns", ns.name, "--port", "8080"]);
    assert.equal(kill.code, 0, kill.stderr);
    assert.deepEqual(kill.stdout.trimEnd().split("\n").map(masked).sort(), expected);
    assert.match(kill.stderr, new RegExp(`${listed.length} entries deleted`));
    assert.deepEqual(await conntrack(ns, ["-L", "-p", "tcp", "--dport", "8080"]), []);
    assert.equal(await conntrackCount(ns), before - listed.length);
    // The DNAT flow (orig dport 8081, reply from 8080) is still there.
    assert.equal((await conntrack(ns, ["-L", "-p", "tcp", "--dport", "8081"])).length, 1);

    const none = await example("kill_port.ts", ["--netns", ns.name, "-p", "udp", "--port", "9"]);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, "");
    assert.match(none.stderr, /0 entries deleted/);
    const bad = await example("kill_port.ts", ["--netns", ns.name]);
    assert.equal(bad.code, 2);
  } finally {
    await ns.delete();
  }
});

Deno.test("watch prints the NEW and DESTROY of entries made while it runs, and resyncs after loss", async (t) => {
  const ns = await steadyNamespace("watch");
  try {
    await t.step("new and destroy, from conntrack -I/-D and from ping", async () => {
      const p = watch(ns, ["--count", "3", "--seconds", "60"]);
      await p.waitFor(/^watching \d+ connections$/m);
      const tuple = ["-p", "udp", "-s", "10.9.0.1", "-d", "10.9.0.2", "--sport", "1000"];
      await conntrack(ns, ["-I", ...tuple, "--dport", "2000", "-t", "50"]);
      await conntrack(ns, ["-D", ...tuple, "--dport", "2000"]);
      await ns.exec(["ping", "-c", "1", "-W", "2", "10.50.0.3"]);
      assert.equal(await p.finish(), 0, p.stderr); // --count 3 ended it
      const lines = p.stdout.trimEnd().split("\n").map((l) => l.replace(/^\S+ /, ""));
      assert.deepEqual(lines, [
        "NEW     udp  10.9.0.1:1000 -> 10.9.0.2:2000",
        "DESTROY udp  10.9.0.1:1000 -> 10.9.0.2:2000 (packets 0, bytes 0)",
        `NEW     icmp ${
          (await conntrack(ns, ["-L", "-p", "icmp", "-d", "10.50.0.3"]))[0]!.match(/src=(\S+)/)![1]
        } -> 10.50.0.3`,
      ]);
      assert.match(p.stdout, /^\d\d:\d\d:\d\d\.\d{3} NEW /);
    });

    await t.step(
      "a flood into a small buffer: the loss is reported and the dump fills the gap",
      async () => {
        const p = watch(ns, ["--seconds", "30", "--buffer", "4096"]);
        const ports = new Set<number>();
        try {
          await p.waitFor(/^watching \d+ connections$/m);
          {
            using ct = Conntrack.open({ netns: ns.name });
            const specs = Array.from({ length: 2000 }, (_, i) => ({
              orig: {
                src: "10.8.0.1",
                dst: "10.8.0.2",
                protocol: "udp",
                srcPort: 10_000 + i,
                dstPort: 53,
              },
              timeout: 120,
            }));
            assert.equal(await ct.createMany(specs), 2000);
          }
          const created = await conntrack(ns, ["-L", "-s", "10.8.0.1"]);
          assert.equal(created.length, 2000);
          // Every created entry shows up, by its event or by a resync.
          const deadline = Date.now() + 20_000;
          for (;;) {
            ports.clear();
            for (const line of p.stdout.split("\n")) {
              const m = / NEW +udp +10\.8\.0\.1:(\d+) -> 10\.8\.0\.2:53( \(resync\))?$/.exec(line);
              if (m) ports.add(Number(m[1]));
            }
            if (ports.size >= 2000 || Date.now() > deadline) break;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        } finally {
          p.child.kill("SIGTERM");
          await p.finish();
        }
        assert.equal(ports.size, 2000, `${ports.size} of 2000 entries shown:\n${p.stderr}`);
        // The first report counts every overrun before the backlog drained: 1 or more.
        assert.match(p.stderr, /the kernel dropped events \(overrun \d+\); resynchronising/);
        assert.match(p.stdout, /\(resync\)$/m);
        // …and only once.
        assert.equal(p.stdout.split("\n").filter((l) => l.includes(" 10.8.0.1:")).length, 2000);
      },
    );
  } finally {
    await ns.delete();
  }
});

/** name{labels} value, as the exposition format has it. */
const SAMPLE_RE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (?<value>-?\d+(\.\d+)?([eE][-+]?\d+)?)$/;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses exposition text, checking every line and that each metric has HELP and TYPE first. */
function parseExposition(text: string): Sample[] {
  assert(text.endsWith("\n"));
  const described = new Set<string>();
  const typed = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.trimEnd().split("\n")) {
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (comment) {
      if (comment[1] === "HELP") described.add(comment[2]!);
      else {
        assert.match(comment[3]!, /^(gauge|counter)$/);
        if (comment[3] === "counter") assert.match(comment[2]!, /_total$/);
        typed.add(comment[2]!);
      }
      continue;
    }
    const m = SAMPLE_RE.exec(line);
    assert(m, `not a sample: ${line}`);
    const name = m[1]!;
    assert(described.has(name) && typed.has(name), `${name} has no HELP/TYPE before it`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[k!] = v!;
    }
    samples.push({ name, labels, value: Number(m.groups!.value) });
  }
  return samples;
}

Deno.test("prometheus output parses and its counts match conntrack -L, -C and -S", async (t) => {
  const ns = await steadyNamespace("prom");
  try {
    const r = await example("prometheus.ts", ["--netns", ns.name]);
    assert.equal(r.code, 0, r.stderr);
    const samples = parseExposition(r.stdout);
    const one = (name: string) => samples.find((s) => s.name === name)!.value;

    assert.equal(one("conntrack_entries"), await conntrackCount(ns));
    assert(one("conntrack_entries_limit") >= one("conntrack_entries"));

    const perProtocol = new Map<string, number>();
    for (const s of samples.filter((s) => s.name === "conntrack_flows")) {
      const p = s.labels.protocol!;
      perProtocol.set(p, (perProtocol.get(p) ?? 0) + s.value);
    }
    assert.deepEqual([...perProtocol.keys()].sort(), ["icmp", "icmpv6", "tcp", "udp"]);
    for (const [protocol, n] of perProtocol) {
      assert.equal(n, (await conntrack(ns, ["-L", "-p", protocol])).length, protocol);
    }
    for (const family of ["ipv4", "ipv6"]) {
      const n = samples.filter((s) => s.name === "conntrack_flows" && s.labels.family === family)
        .reduce((a, s) => a + s.value, 0);
      assert.equal(n, (await conntrack(ns, ["-L", "-f", family])).length, family);
    }
    for (const state of ["ESTABLISHED", "TIME_WAIT", "SYN_SENT"]) {
      const s = samples.find((s) => s.name === "conntrack_tcp_flows" && s.labels.state === state);
      const listed = await conntrack(ns, ["-L", "-p", "tcp", "--state", state]);
      assert.equal(s?.value, listed.length, state);
    }

    // Per CPU: the same numbers as conntrack -S (the namespace is idle).
    const cpuLines = await conntrack(ns, ["-S"]);
    for (const line of cpuLines) {
      const cpu = /^cpu=(\d+)/.exec(line)![1]!;
      for (const [, key, value] of line.matchAll(/(\w+)=(\d+)/g)) {
        if (key === "cpu") continue;
        const s = samples.find((s) =>
          s.name === `conntrack_stat_${key}_total` && s.labels.cpu === cpu
        );
        assert.equal(s?.value, Number(value), `cpu ${cpu} ${key}`);
      }
    }

    await t.step("--listen serves the same at /metrics", async () => {
      const p = new Proc([
        DENO,
        "run",
        "--allow-ffi",
        "--allow-net",
        `${EXAMPLES}prometheus.ts`,
        "--netns",
        ns.name,
        "--listen",
        "127.0.0.1:0",
      ]);
      try {
        await p.waitFor(/^serving http:\/\/127\.0\.0\.1:\d+\/metrics$/m);
        const url = /^serving (\S+)$/m.exec(p.stderr)![1]!;
        const response = await fetch(url);
        assert.equal(response.status, 200);
        assert.match(response.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
        const scraped = parseExposition(await response.text());
        assert.equal(
          scraped.find((s) => s.name === "conntrack_entries")!.value,
          one("conntrack_entries"),
        );
        const missing = await fetch(url.replace("/metrics", "/"));
        assert.equal(missing.status, 404);
        await missing.body?.cancel();
      } finally {
        p.child.kill("SIGTERM");
        await p.finish();
      }
    });
  } finally {
    await ns.delete();
  }
});

Deno.test("deno task demo runs to completion and leaves no namespace behind", async (t) => {
  const before = await netnsNames();
  await t.step("to completion", async () => {
    const p = new Proc([DENO, "run", "-A", DEMO]);
    const name = `ctnl-demo-${p.child.pid}`;
    assert.equal(await p.finish(60_000), 0, p.stderr);
    const made = "-p tcp -s 10.50.0.1 -d 10.50.0.2 --sport 40000 --dport 9000";
    const headings = [
      `== ctnl dump --netns ${name}`,
      `== ctnl dump --json --netns ${name} | head -n 3`,
      `== ctnl dump -p tcp --dport 8080 --netns ${name}`,
      `== ctnl get -p tcp -s 10.50.0.1 -d 10.50.0.2 --sport `,
      `== ctnl stats --netns ${name}`,
      `== ctnl count --netns ${name}`,
      `== ctnl summary --by proto,state --netns ${name}`,
      `== ctnl top --once --rows 5 --interval 0.5 --netns ${name} | head -n 10`,
      `== ctnl dump expect --netns ${name}`,
      `== ctnl exporter --listen 127.0.0.1:0 --netns ${name} & curl …/metrics`,
      `== ctnl events --netns ${name} & (in the background)`,
      `== Traffic: a TCP connection to 10.50.0.2:8080 and a UDP datagram to 10.50.0.2:6000`,
      `== ctnl create ${made} -t 120 --state ESTABLISHED -u SEEN_REPLY,ASSURED --netns ${name}`,
      `== ctnl update ${made} -m 7 -t 300 --netns ${name}`,
      `== ctnl dump -m 7 --netns ${name}`,
      `== ctnl delete ${made} --netns ${name}`,
      `== ctnl dump -o save -p udp --netns ${name} > table.save`,
      `== ctnl flush --netns ${name}`,
      `== kill -INT %ctnl-events: what it printed meanwhile`,
      `== ctnl count --netns ${name}`,
      `== ctnl load - --netns ${name} < table.save`,
      `== ctnl count --netns ${name}`,
      `== Deleted namespace ${name}`,
    ];
    // Every step, in order.
    let at = 0;
    for (const heading of headings) {
      const i = p.stderr.indexOf(heading, at);
      assert(i >= 0, `no "${heading}" after byte ${at} of:\n${p.stderr}`);
      at = i + heading.length;
    }
    for (
      const summary of [
        "1 flow entries have been created.",
        "1 flow entries have been updated.",
        "1 flow entries have been deleted.",
        "connection tracking table has been emptied.",
        / \d+ flow events have been shown\./,
      ]
    ) {
      if (typeof summary === "string") assert(p.stderr.includes(summary), summary);
      else assert.match(p.stderr, summary);
    }
    // Every kind of traffic is in the dump.
    for (
      const re of [
        /^tcp .* ESTABLISHED src=10\.50\.0\.1 dst=10\.50\.0\.2 .* dport=8080 /m,
        /^tcp .* TIME_WAIT /m,
        /^tcp .* dst=10\.60\.0\.100 .* src=10\.50\.0\.2 dst=10\.50\.0\.1 sport=8080 /m, // DNAT
        / dport=7200 .* mark=42 /,
        / dport=5555 .* zone=7 /,
        /^udp .* dport=5999 .*\[UNREPLIED\]/m,
        /^icmp /m,
        /^icmpv6 /m,
        /^tcp .* src=fd50::1 dst=fd50::2 /m,
        /^\{"family":"ipv4",/m,
        /^cpu=0 +\tfound=/m,
        /^PROTO +STATE +FLOWS +PACKETS +BYTES$/m, // summary
        /^tcp +ESTABLISHED +\d+ +\d+ +[\d.]+ (B|KiB)$/m,
        /^total \(\d+ groups\) +\d+ /m,
        /^ctnl top - \d\d:\d\d:\d\d - \d+ flows: tcp \d+, /m, // top --once: one plain frame
        /^ +PROTO +STATE +SOURCE +DESTINATION +BYTES\/S/m,
        /^conntrack_entries \d+$/m, // the exporter's first samples
        /^conntrack_entries_limit \d+$/m,
        // dump expect: the FTP helper's expectation of the data connection
        /^\d+ proto=6 src=10\.50\.0\.1 dst=10\.60\.0\.100 .* master-dst=10\.60\.0\.100 sport=\d+ dport=21 class=0 helper=ftp$/m,
        // The created entry, updated: mark 7.
        /^tcp +6 \d+ ESTABLISHED src=10\.50\.0\.1 dst=10\.50\.0\.2 sport=40000 dport=9000 .* mark=7 /m,
        // What events saw: the traffic's TCP handshake and UDP datagram…
        /^ {4}\[NEW\] tcp +6 \d+ SYN_SENT src=10\.50\.0\.1 dst=10\.50\.0\.2 sport=\d+ dport=8080 /m,
        /^ \[UPDATE\] tcp +6 \d+ ESTABLISHED src=10\.50\.0\.1 dst=10\.50\.0\.2 sport=\d+ dport=8080 /m,
        /^ {4}\[NEW\] udp +17 \d+ src=10\.50\.0\.1 dst=10\.50\.0\.2 sport=\d+ dport=6000 /m,
        // …create, update, delete…
        /^ {4}\[NEW\] tcp +6 120 ESTABLISHED src=10\.50\.0\.1 dst=10\.50\.0\.2 sport=40000 dport=9000 .* mark=0( \[USERSPACE\] portid=\d+.*)?$/m,
        /^ \[UPDATE\] tcp +6 300 ESTABLISHED src=10\.50\.0\.1 .* sport=40000 dport=9000 .* mark=7( \[USERSPACE\] portid=\d+.*)?$/m,
        /^\[DESTROY\] tcp +6 \d+ ESTABLISHED src=10\.50\.0\.1 .* sport=40000 dport=9000 .* mark=7 /m,
        // …and the flush of the entries made while it listened.
        /^\[DESTROY\] udp +17 \d+ src=10\.50\.0\.1 dst=10\.50\.0\.2 sport=\d+ dport=6000 /m,
      ]
    ) assert.match(p.stdout, re);
    // The save: one -A line per UDP entry; after the flush count says 0, after the load
    // the UDP entries are back (the last three stdout lines: ctnl count, ctnl count, conntrack -C).
    const saved = Number(
      /^\((\d+) lines in all: one conntrack command line per entry\)$/m
        .exec(p.stderr)![1],
    );
    assert(saved >= 5, p.stderr); // replied, unreplied, zone 7, IPv6 ×2, the demo's own
    assert.match(p.stdout, /^-A -t \d+ -u \S+ (-w \d+ )?-s \S+ -d \S+ .*-p udp /m);
    assert.match(
      p.stderr,
      new RegExp(
        `: ${saved} lines: ${saved} created, 0 updated, 0 deleted, 0 flushed, 0 skipped, 0 failed\\.`,
      ),
    );
    assert.deepEqual(p.stdout.trimEnd().split("\n").slice(-3), ["0", String(saved), String(saved)]);
    assert(!(await netnsNames()).has(name), `${name} was left behind`);
  });

  await t.step("SIGTERM midway: it cleans up and exits 143", async () => {
    const p = new Proc([DENO, "run", "-A", DEMO]);
    const name = `ctnl-demo-${p.child.pid}`;
    await p.waitFor(/== Making traffic/);
    assert((await netnsNames()).has(name));
    p.child.kill("SIGTERM");
    assert.equal(await p.finish(), 143, p.stderr);
    assert.match(p.stderr, new RegExp(`== Deleted namespace ${name}`));
    assert(!(await netnsNames()).has(name), `${name} was left behind`);
  });

  const leftover = [...await netnsNames()].filter((n) =>
    n.startsWith("ctnl-demo-") && !before.has(n)
  );
  assert.deepEqual(leftover, []);
});
