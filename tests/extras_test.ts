/**
 * ctnl's listing extras against the real kernel: `--idle` (the namespace's
 * default timeouts, from the cttimeout subsystem, minus each entry's
 * remaining timeout, checked with `conntrack -L` and the namespace's
 * sysctls), on dump, delete and summary; `--sort`/`--top` on dump, checked
 * against conntrack's listing sorted the same way.
 */

import assert from "node:assert/strict";
import { Conntrack } from "../mod.ts";
import { Netns, run, type RunResult } from "./_ns.ts";
import { parseConntrackOutput, type TextEntry } from "./_conntrack_text.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

function ctnl(ns: Netns, args: string[]): Promise<RunResult> {
  return run([Deno.execPath(), "run", "--allow-ffi", CLI, "--netns", ns.name, ...args]);
}

async function list(ns: Netns): Promise<TextEntry[]> {
  const r = await ns.run(["conntrack", "-L", "-o", "extended"]);
  assert.equal(r.code, 0, r.stderr);
  return parseConntrackOutput(r.stdout);
}

/** Twelve UDP entries with remaining timeouts 50, 100, … 600 of a 610 s policy; one TCP. */
async function table(tag: string): Promise<Netns> {
  const ns = await Netns.create(tag);
  await ns.sysctl({ nf_conntrack_udp_timeout: 610 });
  for (let i = 1; i <= 12; i++) {
    await ns.exec([
      "conntrack",
      "-I",
      "-p",
      "udp",
      "-s",
      `10.7.0.${i}`,
      "-d",
      "10.7.1.1",
      "--sport",
      String(2000 + i),
      "--dport",
      "53",
      "-t",
      String(50 * i),
    ]);
  }
  await ns.exec([
    "conntrack",
    "-I",
    "-p",
    "tcp",
    "-s",
    "10.7.0.99",
    "-d",
    "10.7.1.1",
    "--sport",
    "9",
    "--dport",
    "443",
    "--state",
    "ESTABLISHED",
    "-t",
    "431000",
  ]);
  return ns;
}

Deno.test("the namespace's default timeouts, as its sysctls have them", async () => {
  const ns = await Netns.create("extras-policy");
  try {
    await ns.sysctl({ nf_conntrack_udp_timeout: 77, nf_conntrack_tcp_timeout_established: 3600 });
    using ct = Conntrack.open({ netns: ns.name });
    const udp = await ct.timeoutPolicy("udp");
    const stream = Number(
      await ns.exec(["cat", "/proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream"]),
    );
    assert.deepEqual(udp, { protocol: 17, timeouts: { UNREPLIED: 77, REPLIED: stream } });
    assert.equal(ct.timeoutPolicySync("tcp").timeouts.ESTABLISHED, 3600);
    const icmp = Number(
      await ns.exec(["cat", "/proc/sys/net/netfilter/nf_conntrack_icmp_timeout"]),
    );
    assert.equal((await ct.timeoutPolicy("icmp")).timeouts.TIMEOUT, icmp);
  } finally {
    await ns.delete();
  }
});

Deno.test("--idle selects what conntrack's timeouts say has been idle that long", async () => {
  const ns = await table("extras-idle");
  try {
    // Idle = 610 - remaining: 560, 510, … 10 s for the UDP entries; the TCP one 1000 s.
    const expected = (entries: TextEntry[], seconds: number, policy: Record<string, number>) =>
      entries.filter((e) => policy[e.l4]! - e.timeout! >= seconds).map((e) => e.orig.src).sort();
    const tcp = Number(
      await ns.exec(["cat", "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established"]),
    );
    const policy = { udp: 610, tcp };
    const before = await list(ns);
    const r = await ctnl(ns, ["dump", "--idle", "5m", "-o", "extended"]);
    assert.equal(r.code, 0, r.stderr);
    const shown = parseConntrackOutput(r.stdout).map((e) => e.orig.src).sort();
    // The clock runs between the listings: a 2 s margin either way.
    const low = expected(before, 300 + 2, policy);
    const high = expected(await list(ns), 300 - 2, policy);
    assert.ok(
      low.every((a) => shown.includes(a)) && shown.every((a) => high.includes(a)),
      `${shown}`,
    );
    assert.ok(shown.length >= 6, `${shown}`);
    assert.ok(shown.includes("10.7.0.99"), "TCP: idle 1000 s of its ESTABLISHED timeout");

    const s = JSON.parse(
      (await ctnl(ns, ["summary", "--by", "proto", "--idle", "9m", "--json"])).stdout,
    );
    assert.equal(s.total.count, expected(await list(ns), 540, policy).length);

    // delete --idle: those go, the others stay, as conntrack -L shows.
    const del = await ctnl(ns, ["delete", "-p", "udp", "--idle", "400"]);
    assert.equal(del.code, 0, del.stderr);
    const left = await list(ns);
    assert.ok(left.some((e) => e.orig.src === "10.7.0.99"), "-p udp: TCP stays");
    for (const e of left.filter((e) => e.l4 === "udp")) {
      assert.ok(610 - e.timeout! < 400 + 2, e.orig.src);
    }
    assert.equal(
      left.filter((e) => e.l4 === "udp").length,
      12 - (del.stdout.trim().split("\n").length),
    );
  } finally {
    await ns.delete();
  }
});

Deno.test("dump --sort and --top order what conntrack lists", async () => {
  const ns = await table("extras-sort");
  try {
    const entries = await list(ns);
    const byTimeout = [...entries].sort((a, b) => a.timeout! - b.timeout!).map((e) => e.orig.src);
    const sorted = await ctnl(ns, ["dump", "--sort", "timeout", "-o", "extended"]);
    assert.equal(sorted.code, 0, sorted.stderr);
    assert.deepEqual(parseConntrackOutput(sorted.stdout).map((e) => e.orig.src), byTimeout);
    const top = await ctnl(ns, [
      "dump",
      "--sort",
      "src",
      "--top",
      "3",
      "-p",
      "udp",
      "-o",
      "extended",
    ]);
    assert.deepEqual(parseConntrackOutput(top.stdout).map((e) => e.orig.src), [
      "10.7.0.1",
      "10.7.0.2",
      "10.7.0.3",
    ]);
    assert.match(top.stderr, /: 3 flow entries have been shown\.$/m);
    const json = await ctnl(ns, ["dump", "--sort", "dport,sport", "--json"]);
    const ports = json.stdout.trim().split("\n").map((l) => JSON.parse(l).orig.srcPort);
    // dport 53 (UDP, by source port) before 443 (TCP).
    assert.deepEqual(ports, [...Array.from({ length: 12 }, (_, i) => 2001 + i), 9]);
    for (
      const [args, message] of [
        [["--sort", "colour"], /^ctnl: invalid --sort "colour" \(keys: bytes, packets, age/],
        [["--top", "3"], /^ctnl: --top needs --sort$/],
        [["--sort", "bytes", "-o", "xml"], /^ctnl: --sort cannot be used with -o xml$/],
        [["--idle", "soon"], /^ctnl: invalid duration "soon" for --idle/],
      ] as const
    ) {
      const r = await ctnl(ns, ["dump", ...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr.trimEnd(), message);
      assert.equal(r.stdout, "");
    }
  } finally {
    await ns.delete();
  }
});
