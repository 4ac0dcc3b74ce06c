/**
 * Long-run check: `deno task soak [seconds] [entries]` (root; defaults 180 s,
 * 100,000 entries). Fills a fresh namespace, then dumps the whole table once
 * a second and prints RSS and live heap (after a GC) every 10 dumps, so a
 * leak shows as a trend. The namespace is deleted at the end, also on Ctrl-C.
 *
 * @module
 */

import { Conntrack } from "../mod.ts";
import { cleanup, createNamespace, fill } from "./_setup.ts";

const seconds = Number(Deno.args[0] ?? 180);
const entries = Number(Deno.args[1] ?? 100_000);
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const mib = (n: number) => (n / 2 ** 20).toFixed(1);

try {
  const ns = await createNamespace("soak");
  await fill(ns, entries);
  using ct = Conntrack.open({ netns: ns });
  const start = performance.now();
  for (let i = 1; performance.now() - start < seconds * 1000; i++) {
    const t = performance.now();
    let n = 0;
    for (const _ of ct.dumpSync()) n++;
    if (n !== entries) throw new Error(`dump ${i}: ${n} entries, want ${entries}`);
    if (i === 1 || i % 10 === 0) {
      gc();
      const m = Deno.memoryUsage();
      console.log(
        `dump ${i} (${((t - start) / 1000).toFixed(0)} s): ${n} entries in ` +
          `${(performance.now() - t).toFixed(0)} ms, RSS ${mib(m.rss)} MiB, heap ${
            mib(m.heapUsed)
          } MiB`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (performance.now() - t))));
  }
} finally {
  await cleanup();
}
