import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { type Flow, newFlow } from "../../mod.ts";
import { SortedLines } from "../../cli/sort.ts";
import type { LineWriter } from "../../cli/output.ts";

function flow(i: number, bytes: bigint | undefined, src: string): Flow {
  const f = newFlow(src.includes(":") ? "ipv6" : "ipv4");
  f.orig = { ...f.orig, src, srcPort: 1000 + i };
  f.id = i;
  if (bytes !== undefined) f.countersOrig = { packets: 1n, bytes };
  return f;
}

function collect(): { out: LineWriter; lines: string[] } {
  const lines: string[] = [];
  return {
    out: { line: (t: string) => lines.push(t), flush() {} } as unknown as LineWriter,
    lines,
  };
}

const FLOWS = [
  flow(1, 10n, "10.0.0.9"),
  flow(2, 300n, "10.0.0.10"),
  flow(3, undefined, "fd00::1"),
  flow(4, 300n, "10.0.0.2"),
  flow(5, 2n ** 63n, "10.0.0.1"),
];

Deno.test("--sort bytes: largest first, ties in arrival order, flows without counters last", () => {
  const s = new SortedLines("bytes");
  for (const f of FLOWS) s.add(f, `line ${f.id}`);
  const { out, lines } = collect();
  assertEquals(s.finish(out), 5);
  assertEquals(lines, ["line 5", "line 2", "line 4", "line 1", "line 3"]);
});

Deno.test("--sort src: addresses in numeric order, IPv4 before IPv6", () => {
  const s = new SortedLines("src");
  for (const f of FLOWS) s.add(f, f.orig.src!);
  const { out, lines } = collect();
  s.finish(out);
  assertEquals(lines, ["10.0.0.1", "10.0.0.2", "10.0.0.9", "10.0.0.10", "fd00::1"]);
});

Deno.test("--sort with --top keeps only N, in bounded memory", () => {
  const s = new SortedLines("bytes,sport", 2);
  for (let i = 0; i < 1000; i++) s.add(flow(i, BigInt(i % 7), "10.0.0.1"), String(i));
  const { out, lines } = collect();
  assertEquals(s.finish(out), 2);
  assertEquals(lines, ["6", "13"]); // bytes 6, then the lowest source port
});

Deno.test("--sort refuses an unknown key", () => {
  throws(() => new SortedLines("colour"), /invalid --sort "colour" \(keys: bytes, packets, age/);
});

Deno.test({
  name: "more lines than a run, without write permission: one clear failure",
  permissions: { read: true, write: false },
}, () => {
  const s = new SortedLines("bytes", Infinity, 3);
  throws(
    () => {
      for (const f of FLOWS) s.add(f, "x");
    },
    /writes sorted runs to temporary files: add --allow-read=\/tmp --allow-write=\/tmp/,
  );
});
