/**
 * `--sort` past the in-memory run: sorted runs in temporary files, merged;
 * the result equals an in-memory sort and no file is left behind.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { newFlow } from "../mod.ts";
import { SortedLines } from "../cli/sort.ts";
import type { LineWriter } from "../cli/output.ts";

Deno.test("--sort spills runs to temporary files and merges them", () => {
  const tmpBefore = [...Deno.readDirSync("/tmp")].filter((e) => e.name.startsWith("ctnl-sort-"));
  const flows = Array.from({ length: 2500 }, (_, i) => {
    const f = newFlow("ipv4");
    f.orig = { ...f.orig, src: `10.${(i * 7919) % 256}.${(i * 31) % 256}.${i % 256}` };
    f.countersOrig = { packets: 1n, bytes: BigInt((i * 104729) % 1000) };
    return f;
  });
  const run = (runLines: number) => {
    const s = new SortedLines("bytes,src", Infinity, runLines);
    flows.forEach((f, i) => s.add(f, `${i} ${f.orig.src}`));
    const lines: string[] = [];
    s.finish({ line: (t: string) => lines.push(t), flush() {} } as unknown as LineWriter);
    return lines;
  };
  const inMemory = run(1e9);
  const spilled = run(300); // 8 runs of 300 and 100 lines in memory
  assertEquals(spilled.length, 2500);
  assertEquals(spilled, inMemory);
  const after = [...Deno.readDirSync("/tmp")].filter((e) => e.name.startsWith("ctnl-sort-"));
  assertEquals(after.length, tmpBefore.length);
});
