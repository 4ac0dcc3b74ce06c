/**
 * The event socket filter's benchmark row (root): `deno run -A bench/events_bpf.ts`.
 *
 * In a fresh namespace (always deleted), two listener processes watch the
 * same churn with the same filter — one with the kernel's socket filter,
 * one filtering in userspace only (`kernelFilter: false`) — while another
 * process makes the churn with ctnl's batched create and a flush
 * (bench/_produce.ts). The filter matches about 1% of the events. Each
 * listener reports the CPU time it used while listening (utime + stime of
 * /proc/self/stat) and a digest of the events it delivered; the two must
 * agree. Rounds alternate which listener starts first.
 *
 * Options: `--n 100000` (entries per churn round), `--rounds 3`.
 *
 * @module
 */

import { Conntrack, type DumpFilter } from "../mod.ts";
import { must } from "../tests/_ns.ts";
import { cleanup, createNamespace } from "./_setup.ts";

/** 10.0.0.0/22: about 1% of bench/_setup.ts's benchSpecs(100_000). */
const FILTER: DumpFilter = { orig: { src: "10.0.0.0/22" } };

function option(name: string, fallback: number): number {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

/** utime + stime of this process, in ms (clock ticks of 10 ms). */
function cpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** The listener: `--listen NS kernel|user`; prints "ready", stops at a line on stdin. */
async function listen(ns: string, kernel: boolean): Promise<void> {
  using ct = Conntrack.open({ netns: ns });
  const ac = new AbortController();
  let events = 0, lost = 0, digest = 0;
  const listening = (async () => {
    for await (
      const e of ct.events({
        filter: FILTER,
        kernelFilter: kernel,
        bufferSize: 64 << 20,
        signal: ac.signal,
      })
    ) {
      if (e.type === "lost") {
        lost = e.lost;
        continue;
      }
      events++;
      const key = `${e.type} ${e.flow.orig.src} ${e.flow.orig.srcPort} ${e.flow.id}`;
      for (let i = 0; i < key.length; i++) {
        digest = (Math.imul(digest, 31) + key.charCodeAt(i)) >>> 0;
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  const plan = ct.planEvents({ filter: FILTER, kernelFilter: kernel });
  const start = cpuMs();
  console.log("ready");
  const reader = Deno.stdin.readable.getReader();
  await reader.read();
  const used = cpuMs() - start;
  ac.abort();
  await listening;
  console.log(JSON.stringify({ events, lost, digest, cpuMs: used, plan }));
}

interface Result {
  events: number;
  lost: number;
  digest: number;
  cpuMs: number;
  plan: { instructions: number; kernel: string[] };
}

/** Starts a listener process; resolves once it is subscribed. */
async function startListener(ns: string, kernel: boolean) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, "--listen", ns, kernel ? "kernel" : "user"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready\n")) {
    const { value, done } = await lines.read();
    if (done) throw new Error("listener ended early");
    text += value;
  }
  return {
    async stop(): Promise<Result> {
      const w = child.stdin.getWriter();
      try {
        await w.write(new TextEncoder().encode("stop\n"));
        await w.close();
      } catch { /* the listener ended: its output says why */ }
      for (;;) {
        const { value, done } = await lines.read();
        if (done) break;
        text += value;
      }
      const status = await child.status;
      const out = text.slice(text.indexOf("ready\n") + 6).trim();
      if (!status.success || !out.startsWith("{")) throw new Error(`listener failed: ${out}`);
      return JSON.parse(out) as Result;
    },
  };
}

async function bench(): Promise<void> {
  const n = option("--n", 100_000);
  const rounds = option("--rounds", 3);
  const ns = await createNamespace("bpf");
  const rows: string[] = [];
  let kernelCpu = 0, userCpu = 0;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [true, false] : [false, true];
    const listeners = new Map<boolean, Awaited<ReturnType<typeof startListener>>>();
    for (const kernel of order) listeners.set(kernel, await startListener(ns, kernel));
    const t = performance.now();
    await must([
      Deno.execPath(),
      "run",
      "-A",
      new URL("./_produce.ts", import.meta.url).pathname,
      ns,
      String(n),
    ]);
    const churnMs = performance.now() - t;
    await new Promise((r) => setTimeout(r, 1000));
    const k = await listeners.get(true)!.stop();
    const u = await listeners.get(false)!.stop();
    const same = k.events === u.events && k.digest === u.digest && k.lost === 0 && u.lost === 0;
    kernelCpu += k.cpuMs;
    userCpu += u.cpuMs;
    rows.push(
      `| ${round + 1} | ${2 * n} in ${churnMs.toFixed(0)} ms incl. producer start-up (${
        Math.round(2 * n / (churnMs / 1000)).toLocaleString("en")
      }/s) | ${k.events} | ${k.cpuMs} ms | ${u.cpuMs} ms | ${
        same ? "identical" : `DIFFER (lost ${k.lost}/${u.lost})`
      } | ${k.plan.instructions} |`,
    );
  }
  console.log(`filter ${JSON.stringify(FILTER)}; churn: ${n} batched creates + flush per round`);
  console.log(
    "| round | events made | delivered | CPU, kernel filter | CPU, userspace only | events | BPF insns |",
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const row of rows) console.log(row);
  console.log(`| total | | | ${kernelCpu} ms | ${userCpu} ms | | |`);
}

if (Deno.args[0] === "--listen") await listen(Deno.args[1]!, Deno.args[2] === "kernel");
else {
  try {
    await bench();
  } finally {
    await cleanup();
  }
}
