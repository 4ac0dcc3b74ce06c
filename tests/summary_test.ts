/**
 * `ctnl summary` against the real kernel: groups of a namespace's real
 * traffic compared with the same grouping done on `conntrack -L`'s text,
 * an exact table for entries made with `conntrack -I`, filters, and bad
 * parameters.
 */

import assert from "node:assert/strict";
import { Netns, run, type RunResult } from "./_ns.ts";
import { trafficNamespace } from "./_traffic.ts";
import { parseConntrackOutput, type TextEntry } from "./_conntrack_text.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

function ctnl(ns: Netns, args: string[]): Promise<RunResult> {
  return run([Deno.execPath(), "run", "--allow-ffi", CLI, "--netns", ns.name, ...args]);
}

interface JsonSummary {
  by: string[];
  groups: { key: Record<string, string>; count: number; packets: string; bytes: string }[];
  groupCount: number;
  total: { count: number; packets: string; bytes: string };
  accounting: boolean;
}

/** A key of conntrack's text, computed the way an awk script would. */
const TEXT_KEYS: Record<string, (e: TextEntry) => string> = {
  src: (e) => e.orig.src,
  dst: (e) => e.orig.dst,
  dport: (e) => String(e.orig.dport ?? "-"),
  "reply-src": (e) => e.reply.src,
  proto: (e) => e.l4,
  state: (e) => e.state ?? "-",
  zone: (e) => String(e.zone ?? e.orig.zone ?? 0),
  mark: (e) => String(e.mark ?? 0),
  family: (e) => e.l3,
  "src/24": (e) => {
    if (e.l3 === "ipv4") return `${e.orig.src.split(".").slice(0, 3).join(".")}.0/24`;
    // fd50::1/24 keeps the first 24 bits: fd50:0000/24 prints as fd50::/24.
    return `${e.orig.src.split(":")[0]}::/24`;
  },
};

/** count per group key ("a|b") from conntrack's lines. */
function groupText(entries: TextEntry[], by: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of entries) {
    const key = by.map((k) => TEXT_KEYS[k]!(e)).join("|");
    out.set(key, (out.get(key) ?? 0) + 1);
  }
  return out;
}

function groupJson(s: JsonSummary): Map<string, number> {
  return new Map(s.groups.map((g) => [s.by.map((k) => g.key[k]).join("|"), g.count]));
}

async function conntrackList(ns: Netns): Promise<TextEntry[]> {
  const r = await ns.run(["conntrack", "-L", "-o", "extended"]);
  assert.equal(r.code, 0, r.stderr);
  return parseConntrackOutput(r.stdout);
}

/** The table's identity (tuples), to tell whether it changed between two listings. */
function identity(entries: TextEntry[]): string {
  return entries.map((e) =>
    JSON.stringify(
      [e.l4, e.orig, e.reply].map((t) =>
        typeof t === "string" ? t : { ...t, packets: undefined, bytes: undefined }
      ),
    )
  ).sort().join("\n");
}

Deno.test("summary groups real traffic as conntrack -L | awk would", async () => {
  const ns = await trafficNamespace("summary");
  try {
    for (
      const by of [
        ["proto", "state"],
        ["src"],
        ["dport"],
        ["src/24"],
        ["family", "zone", "mark"],
        ["reply-src", "proto"],
      ]
    ) {
      // The generator keeps its connections open; retry if the table moved meanwhile.
      let compared = false;
      for (let attempt = 0; attempt < 5 && !compared; attempt++) {
        const before = await conntrackList(ns);
        const r = await ctnl(ns, ["summary", "--by", by.join(","), "--json"]);
        const after = await conntrackList(ns);
        assert.equal(r.code, 0, r.stderr);
        if (identity(before) !== identity(after)) continue;
        const s = JSON.parse(r.stdout) as JsonSummary;
        assert.deepEqual(s.by, by);
        assert.deepEqual(groupJson(s), groupText(after, by), `--by ${by}`);
        assert.equal(s.total.count, after.length);
        assert.equal(s.groupCount, s.groups.length);
        assert.equal(s.accounting, true);
        // Packets and bytes: the sum of both directions as conntrack prints them.
        const packets = after.reduce(
          (n, e) => n + BigInt(e.orig.packets ?? 0) + BigInt(e.reply.packets ?? 0),
          0n,
        );
        assert.ok(BigInt(s.total.packets) >= packets, "packets only grow");
        compared = true;
      }
      assert.ok(compared, `the table kept changing; --by ${by} not compared`);
    }
    // Filters apply as in dump: only TCP, then the kernel's mark filter.
    const tcp = JSON.parse(
      (await ctnl(ns, ["summary", "--by", "proto", "-p", "tcp", "--json"]))
        .stdout,
    ) as JsonSummary;
    assert.deepEqual(tcp.groups.map((g) => g.key.proto), ["tcp"]);
    const marked = JSON.parse(
      (await ctnl(ns, ["summary", "--by", "mark", "-m", "42", "--json"]))
        .stdout,
    ) as JsonSummary;
    assert.deepEqual(marked.groups.map((g) => g.key.mark), ["42"]);
    const listed = (await conntrackList(ns)).filter((e) => e.mark === 42).length;
    assert.equal(marked.total.count, listed);
    // --bytes-gt: counters only grow, so ctnl's count lies between two listings'.
    const big = (entries: TextEntry[]) =>
      entries.filter((e) => BigInt(e.orig.bytes ?? 0) + BigInt(e.reply.bytes ?? 0) > 500n).length;
    const low = big(await conntrackList(ns));
    const gt = JSON.parse(
      (await ctnl(ns, ["summary", "--by", "proto", "--bytes-gt", "500", "--json"]))
        .stdout,
    ) as JsonSummary;
    const high = big(await conntrackList(ns));
    assert.ok(low > 0, "some flows moved more than 500 bytes");
    assert.ok(
      gt.total.count >= low && gt.total.count <= high,
      `${low} <= ${gt.total.count} <= ${high}`,
    );
  } finally {
    await ns.delete();
  }
});

Deno.test("summary prints an aligned table of entries made with conntrack -I", async () => {
  const ns = await Netns.create("summary-table");
  try {
    const add = (src: string, proto: string, dport: number) =>
      ns.exec([
        "conntrack",
        "-I",
        "-s",
        src,
        "-d",
        "10.9.0.1",
        "-p",
        proto,
        "--sport",
        "4000",
        "--dport",
        String(dport),
        "-t",
        "300",
        ...(proto === "tcp" ? ["--state", "ESTABLISHED"] : []),
      ]);
    for (let i = 1; i <= 12; i++) await add(`10.1.1.${i}`, "udp", 53);
    for (let i = 1; i <= 3; i++) await add(`10.1.2.${i}`, "udp", 123);
    await add("10.1.2.9", "tcp", 443);
    await ns.exec([
      "conntrack",
      "-I",
      "-s",
      "fd00::1",
      "-d",
      "fd00::2",
      "-p",
      "udp",
      "--sport",
      "1",
      "--dport",
      "53",
      "-t",
      "300",
    ]);

    const text = await ctnl(ns, ["summary", "--by", "src/24,dport"]);
    assert.equal(text.code, 0, text.stderr);
    assert.equal(
      text.stdout,
      [
        "SRC/24            DPORT  FLOWS  PACKETS  BYTES",
        "10.1.1.0/24       53        12        0    0 B",
        "10.1.2.0/24       123        3        0    0 B",
        "10.1.2.0/24       443        1        0    0 B",
        "fd00::/24         53         1        0    0 B",
        "total (4 groups)            17        0    0 B",
        "",
      ].join("\n"),
    );
    const top = await ctnl(ns, ["summary", "--by", "proto", "--top", "1"]);
    assert.equal(
      top.stdout,
      [
        "PROTO                  FLOWS  PACKETS  BYTES",
        "udp                       16        0    0 B",
        "total (1 of 2 groups)     17        0    0 B",
        "",
      ].join("\n"),
    );
    // Ages: three more entries now; the seventeen above are older than 2 s.
    await new Promise((r) => setTimeout(r, 2500));
    for (let i = 1; i <= 3; i++) await add(`10.1.3.${i}`, "udp", 53);
    const ages = async (args: string[]) =>
      (JSON.parse(
        (await ctnl(ns, ["summary", "--by", "family", "--json", ...args])).stdout,
      ) as JsonSummary)
        .total.count;
    assert.equal(await ages(["--older-than", "2s"]), 17);
    assert.equal(await ages(["--younger-than", "2"]), 3);
    assert.equal(await ages(["--older-than", "1h"]), 0);
    await ns.sysctl({ nf_conntrack_timestamp: 0 });
    await add("10.1.4.1", "udp", 53);
    const r = await ctnl(ns, ["summary", "--older-than", "1s"]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /^ctnl: warning: 1 entries have no start timestamp and were left out/m);
    const v6 = JSON.parse(
      (await ctnl(ns, ["summary", "--by", "src/8/64", "--json", "-f", "ipv6"]))
        .stdout,
    ) as JsonSummary;
    assert.deepEqual(v6.groups.map((g) => [g.key["src/8/64"], g.count]), [["fd00::/64", 1]]);
  } finally {
    await ns.delete();
  }
});

Deno.test("summary refuses bad parameters with exit 2 and one line", async () => {
  const ns = await Netns.create("summary-bad");
  try {
    for (
      const [args, message] of [
        [["--by", "colour"], /^ctnl: invalid --by "colour": unknown key "colour"/],
        [["--by", "dport/24"], /only address keys take a prefix/],
        [["--by", "src/200"], /prefix length 200 is too long \(0-128\)/],
        [["--by", "src/33/64"], /prefix length 33 is too long for IPv4 \(0-32\)/],
        [["--sort", "size"], /^ctnl: invalid --sort "size" \(count, packets or bytes\)$/],
        [["--top", "0"], /^ctnl: invalid --top "0" \(a positive integer\)$/],
        [["--by", ""], /needs at least one key/],
        [["--older-than", "5x"], /^ctnl: invalid duration "5x" for --older-than/],
        [["--bytes-gt", "lots"], /^ctnl: invalid size "lots" for --bytes-gt/],
      ] as const
    ) {
      const r = await ctnl(ns, ["summary", ...args]);
      assert.equal(r.code, 2, `${args}: ${r.stderr}`);
      const lines = r.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, message);
      assert.equal(r.stdout, "");
    }
  } finally {
    await ns.delete();
  }
});

Deno.test("summary --all-netns: the namespace is the first key", async () => {
  const a = await Netns.create("summary-all-a");
  const b = await Netns.create("summary-all-b");
  try {
    const add = (ns: Netns, i: number, proto: string) =>
      ns.exec([
        "conntrack",
        "-I",
        "-s",
        `10.3.0.${i}`,
        "-d",
        "10.3.1.1",
        "-p",
        proto,
        "--sport",
        "1000",
        "--dport",
        "53",
        "-t",
        "300",
        ...(proto === "tcp" ? ["--state", "ESTABLISHED"] : []),
      ]);
    for (let i = 1; i <= 4; i++) await add(a, i, "udp");
    await add(a, 9, "tcp");
    for (let i = 1; i <= 2; i++) await add(b, i, "tcp");
    const r = await run([
      Deno.execPath(),
      "run",
      "-A", // --all-netns reads /proc/*/ns/net: Deno opens /proc only with --allow-all
      CLI,
      "summary",
      "--all-netns",
      "--by",
      "proto",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as JsonSummary;
    assert.deepEqual(s.by, ["netns", "proto"]);
    const mine = s.groups.filter((g) => g.key.netns === a.name || g.key.netns === b.name)
      .map((g) => [g.key.netns, g.key.proto, g.count]).sort();
    assert.deepEqual(mine, [[a.name, "tcp", 1], [a.name, "udp", 4], [b.name, "tcp", 2]].sort());
    const both = await run([
      Deno.execPath(),
      "run",
      "--allow-ffi",
      CLI,
      "summary",
      "--all-netns",
      "--netns",
      a.name,
    ]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^ctnl: option --netns cannot be used with --all-netns$/m);
  } finally {
    await a.delete();
    await b.delete();
  }
});
