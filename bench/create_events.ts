/**
 * Create and event rates: `deno task bench:create` (root).
 *
 * In a fresh namespace (always deleted, also on Ctrl-C):
 * - ctnl's batched `createManySync` of N entries, against `conntrack -I`,
 *   one process per entry, for a sample of M entries (conntrack-tools 1.4.7
 *   has no `-R`/batch load, so one process per entry is how a script fills a
 *   table with it);
 * - events: a listener with the default 8 MiB buffer receives the NEW events
 *   of a batched create of N entries, then the DESTROY events of a flush,
 *   both made by another process (bench/_produce.ts); reports events per
 *   second received and how many were lost.
 *
 * Options: `--n 100000` (entries), `--sample 500` (conntrack -I runs).
 *
 * @module
 */

import { Conntrack } from "../mod.ts";
import { must } from "../tests/_ns.ts";
import { benchSpecs, cleanup, createNamespace } from "./_setup.ts";

function option(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

const N = option("--n", 100_000);
const SAMPLE = option("--sample", 500);

try {
  const ns = await createNamespace("create");

  // ctnl: batched create.
  using ct = Conntrack.open({ netns: ns });
  let t = performance.now();
  const created = ct.createManySync(benchSpecs(N));
  const ctnlMs = performance.now() - t;
  await ct.flush();

  // conntrack -I: one process per entry (spawned with Deno.Command, via
  // must(): dax would add ~1.5 ms of its own to every timed process).
  t = performance.now();
  for (let i = 0; i < SAMPLE; i++) {
    await must([
      "ip",
      "netns",
      "exec",
      ns,
      "conntrack",
      "-I",
      "-p",
      "udp",
      "-s",
      "10.9.0.1",
      "-d",
      "10.9.0.2",
      "--sport",
      String(1000 + i),
      "--dport",
      "53",
      "-t",
      "600",
    ]);
  }
  const conntrackMs = performance.now() - t;
  await ct.flush();

  // Events: NEW for a batched create, DESTROY for the flush.
  const ac = new AbortController();
  let events = 0, lost = 0, last = 0;
  const listening = (async () => {
    for await (
      const e of ct.events({ types: ["new", "destroy"], signal: ac.signal })
    ) {
      if (e.type === "lost") lost = e.lost;
      else events++;
      last = performance.now();
    }
  })();
  await new Promise((r) => setTimeout(r, 100));
  // The producer is another process, as it would be on a real host: this
  // one only listens, so its event loop is free to drain the socket.
  t = performance.now();
  await must([
    Deno.execPath(),
    "run",
    "--allow-ffi",
    "--allow-read",
    "--allow-env", // bench/_setup.ts imports dax, which reads the environment
    new URL("./_produce.ts", import.meta.url).pathname,
    ns,
    String(N),
  ]);
  const expected = 2 * N;
  const deadline = performance.now() + 60_000;
  while (events < expected && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    if (lost > 0 && performance.now() - last > 2000) break;
  }
  ac.abort();
  await listening;
  const eventMs = last - t;

  const perS = (n: number, ms: number) => Math.round(n / (ms / 1000)).toLocaleString("en");
  console.log(`| what | entries | time | rate |`);
  console.log(`|---|---|---|---|`);
  console.log(
    `| ctnl createMany (batched) | ${created} | ${ctnlMs.toFixed(0)} ms | ${
      perS(created, ctnlMs)
    }/s (${(ctnlMs * 1000 / created).toFixed(1)} µs each) |`,
  );
  console.log(
    `| conntrack -I, one process each | ${SAMPLE} | ${conntrackMs.toFixed(0)} ms | ${
      perS(SAMPLE, conntrackMs)
    }/s (${(conntrackMs * 1000 / SAMPLE).toFixed(0)} µs each) |`,
  );
  console.log(
    `| events received (NEW + DESTROY) | ${events} of ${expected}, ${lost} overruns | ${
      eventMs.toFixed(0)
    } ms | ${perS(events, eventMs)}/s |`,
  );
} finally {
  await cleanup();
}
