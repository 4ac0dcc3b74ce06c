/**
 * `ctnl summary` on a table of 100,000 entries (made through the library's
 * batched create: TCP in three states and UDP, IPv4 and IPv6, marks, zones,
 * many sources and ports): every group's count, packets and bytes for
 * eight key combinations, with filters and `--top`, equal to the same
 * grouping computed independently over `conntrack -L -o extended`.
 */

import assert from "node:assert/strict";
import { Conntrack, type CreateSpec } from "../mod.ts";
import { Netns, run } from "./_ns.ts";
import { parseConntrackOutput, type TextEntry } from "./_conntrack_text.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const N = 100_000;
const STATES = ["ESTABLISHED", "TIME_WAIT", "SYN_SENT"] as const;

function* specs(n: number): Generator<CreateSpec> {
  for (let i = 0; i < n; i++) {
    const v6 = i % 10 === 9, tcp = i % 3 !== 0;
    const a = (i >>> 12) & 0xff, b = (i >>> 4) & 0xff, c = i & 0xf;
    yield {
      orig: {
        src: v6
          ? `fd${(a % 4).toString(16).padStart(2, "0")}::${b.toString(16)}:${c}`
          : `10.${a}.${b}.${c}`,
        dst: v6 ? "2001:db8::1" : `192.0.2.${i % 7}`,
        protocol: tcp ? "tcp" : "udp",
        srcPort: 1024 + (i % 40000),
        dstPort: [53, 80, 443, 8080, 5353][i % 5]!,
      },
      timeout: 3600,
      ...(tcp ? { tcpState: STATES[i % 3]! } : {}),
      mark: i % 4,
      zone: i % 6 === 0 ? 3 : 0,
    };
  }
}

/** An address at a prefix, as text: `10.1.0.0/16`, `fd01::/16`. */
function prefix16(address: string): string {
  if (!address.includes(":")) return `${address.split(".").slice(0, 2).join(".")}.0.0/16`;
  return `${address.split(":")[0]!.replace(/^0+(?=.)/, "")}::/16`;
}

const TEXT: Record<string, (e: TextEntry) => string> = {
  proto: (e) => e.l4,
  state: (e) => e.state ?? "-",
  "src/16": (e) => prefix16(e.orig.src),
  dst: (e) => e.orig.dst,
  sport: (e) => String(e.orig.sport),
  dport: (e) => String(e.orig.dport),
  mark: (e) => String(e.mark ?? 0),
  zone: (e) => String(e.zone ?? 0),
  family: (e) => e.l3,
};

interface Group {
  key: Record<string, string>;
  count: number;
  packets: string;
  bytes: string;
}

/** count, packets, bytes per group key, from conntrack's text. */
function expected(entries: TextEntry[], by: string[]): Map<string, [number, bigint, bigint]> {
  const out = new Map<string, [number, bigint, bigint]>();
  for (const e of entries) {
    const k = by.map((key) => TEXT[key]!(e)).join("|");
    const g = out.get(k) ?? [0, 0n, 0n];
    g[0]++;
    g[1] += BigInt(e.orig.packets ?? 0) + BigInt(e.reply.packets ?? 0);
    g[2] += BigInt(e.orig.bytes ?? 0) + BigInt(e.reply.bytes ?? 0);
    out.set(k, g);
  }
  return out;
}

Deno.test(`summary of ${N} entries equals conntrack -L -o extended grouped the same way`, async () => {
  const ns = await Netns.create("summary-big");
  try {
    {
      using ct = Conntrack.open({ netns: ns.name, timeoutMs: 30_000 });
      ct.createManySync(specs(N), { batchSize: 512 });
      assert.equal(await ct.count(), N);
    }
    const listing = await ns.run(["conntrack", "-L", "-o", "extended"]);
    assert.equal(listing.code, 0, listing.stderr);
    const all = parseConntrackOutput(listing.stdout);
    assert.equal(all.length, N);

    const cases: [string[], string[], (e: TextEntry) => boolean][] = [
      [["proto", "state"], [], () => true],
      [["src/16"], [], () => true],
      [["dport"], [], () => true],
      [["mark", "zone"], [], () => true],
      [["family", "proto"], [], () => true],
      [["dst"], [], () => true],
      [["sport"], [], () => true],
      [["state", "dport"], ["-p", "tcp"], (e) => e.l4 === "tcp"],
      [["src/16", "proto"], ["-m", "2"], (e) => (e.mark ?? 0) === 2],
      [["dport"], ["-f", "ipv6", "-p", "udp"], (e) => e.l3 === "ipv6" && e.l4 === "udp"],
      [["zone"], ["-w", "3"], (e) => (e.zone ?? 0) === 3],
    ];
    for (const [by, filters, select] of cases) {
      const r = await run([
        Deno.execPath(),
        "run",
        "--allow-ffi",
        CLI,
        "--netns",
        ns.name,
        "summary",
        "--by",
        by.join(","),
        "--json",
        ...filters,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout) as { groups: Group[]; groupCount: number; total: Group };
      const want = expected(all.filter(select), by);
      const got = new Map(
        s.groups.map((g) => [
          by.map((k) => g.key[k]).join("|"),
          [g.count, BigInt(g.packets), BigInt(g.bytes)] as [number, bigint, bigint],
        ]),
      );
      assert.deepEqual(got, want, `--by ${by} ${filters.join(" ")}`);
      assert.equal(s.groupCount, want.size);
      assert.equal(s.total.count, all.filter(select).length);
      // Largest first.
      const counts = s.groups.map((g) => g.count);
      assert.deepEqual(counts, [...counts].sort((a, b) => b - a));
    }

    // --top: the biggest N groups, the total over all of them.
    const r = await run([
      Deno.execPath(),
      "run",
      "--allow-ffi",
      CLI,
      "--netns",
      ns.name,
      "summary",
      "--by",
      "src/16",
      "--top",
      "5",
      "--json",
    ]);
    const top = JSON.parse(r.stdout) as { groups: Group[]; groupCount: number; total: Group };
    const want = [...expected(all, ["src/16"]).entries()]
      .sort((a, b) => b[1][0] - a[1][0] || (a[0] < b[0] ? -1 : 1));
    assert.equal(top.groups.length, 5);
    assert.deepEqual(top.groups.map((g) => g.count), want.slice(0, 5).map(([, v]) => v[0]));
    assert.equal(top.groupCount, want.length);
    assert.equal(top.total.count, N);
  } finally {
    await ns.delete();
  }
});
