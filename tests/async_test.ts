/**
 * The asynchronous library against the real kernel: a big dump with
 * `for await` leaves the event loop free (timers fire, an HTTP server in the
 * same process answers); events wake on readiness (latency, idle CPU); a
 * dumped Flow goes back into delete, zone and all, and type-checks.
 *
 * The figures are printed; the bounds asserted are far from what a blocking
 * implementation gives (the control measurements show it), not tight timings.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Conntrack, type CreateSpec, type Flow } from "../mod.ts";
import { Netns, run } from "./_ns.ts";

const ROOT = new URL("../", import.meta.url).pathname;

function udp(i: number, zone?: number): CreateSpec {
  return {
    orig: {
      src: "10.1.0.1",
      dst: `10.2.${(i >> 16) & 255}.${(i >> 8) & 255}`,
      protocol: "udp",
      srcPort: 1024 + (i & 255),
      dstPort: 53,
    },
    timeout: 600,
    ...(zone === undefined ? {} : { zone }),
  };
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] ?? NaN;
}

/** Runs `work` while a 1 ms timer ticks and an HTTP server in this process is queried. */
async function whileBusy(work: () => Promise<number> | number) {
  let longest = 0, ticks = 0, last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    ticks++;
  }, 1);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  const url = `http://127.0.0.1:${server.addr.port}/`;
  let done = false;
  const latencies: number[] = [];
  let answered = 0;
  const client = (async () => {
    while (!done) {
      const t0 = performance.now();
      const r = await fetch(url);
      if ((await r.text()) === "ok") answered++;
      latencies.push(performance.now() - t0);
    }
  })();
  const started = performance.now();
  // Let the server and the timer get going before the work starts.
  await new Promise((resolve) => setTimeout(resolve, 20));
  last = performance.now();
  longest = 0;
  const result = await work();
  const took = performance.now() - started;
  done = true;
  await client;
  clearInterval(timer);
  await server.shutdown();
  return { result, took, longest, ticks, latencies, answered };
}

Deno.test("a for await dump of 200,000 entries leaves the event loop free", async () => {
  const ns = await Netns.create("async");
  try {
    using ct = Conntrack.open({ netns: ns.name });
    const n = 200_000;
    assert.equal(await ct.createMany(Array.from({ length: n }, (_, i) => udp(i))), n);

    const asyncRun = await whileBusy(async () => {
      let count = 0;
      for await (const _ of ct.dump()) count++;
      return count;
    });
    assert.equal(asyncRun.result, n);
    const p99 = percentile(asyncRun.latencies, 99);
    console.log(
      `dump(): ${n} entries in ${asyncRun.took.toFixed(0)} ms; timer's largest gap ${
        asyncRun.longest.toFixed(1)
      } ms over ${asyncRun.ticks} ticks; ${asyncRun.answered} HTTP requests answered, p99 ${
        p99.toFixed(1)
      } ms`,
    );

    // The control: the blocking form holds the loop for the whole dump.
    const syncRun = await whileBusy(() => {
      let count = 0;
      for (const _ of ct.dumpSync()) count++;
      return count;
    });
    assert.equal(syncRun.result, n);
    console.log(`dumpSync(): timer's largest gap ${syncRun.longest.toFixed(1)} ms`);

    // A server that dumps again and again keeps the receive-ahead worker
    // (keepWorker): only its first dump pays Deno's new Worker.
    using kept = Conntrack.open({ netns: ns.name, keepWorker: true });
    for await (const _ of kept.dump()) { /* the first dump starts the worker */ }
    // Up to three later dumps, the best counted: a GC pause of the garbage earlier test files
    // left in this process can land in one, but a dump that blocked, or paid a new Worker, would
    // show in all three.
    let keptRun: Awaited<ReturnType<typeof whileBusy>> | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      (globalThis as { gc?: () => void }).gc?.();
      const run = await whileBusy(async () => {
        let count = 0;
        for await (const _ of kept.dump()) count++;
        return count;
      });
      assert.equal(run.result, n);
      console.log(
        `dump() with keepWorker, a later dump: timer's largest gap ${
          run.longest.toFixed(1)
        } ms; ${run.answered} HTTP requests, p99 ${percentile(run.latencies, 99).toFixed(1)} ms`,
      );
      if (keptRun === undefined || run.longest < keptRun.longest) keptRun = run;
      if (keptRun.longest < Math.min(60, syncRun.longest / 4)) break;
    }
    assert.ok(keptRun!.longest < Math.min(60, syncRun.longest / 4), `${keptRun!.longest} ms`);

    assert.ok(asyncRun.answered > 10, "HTTP requests were answered during the dump");
    assert.equal(asyncRun.answered, asyncRun.latencies.length, "every request answered");
    assert.ok(
      asyncRun.longest < Math.min(100, syncRun.longest / 3),
      `the async dump's largest gap (${asyncRun.longest.toFixed(1)} ms) is far below the ` +
        `blocking dump's (${syncRun.longest.toFixed(1)} ms)`,
    );
  } finally {
    await ns.delete();
  }
});

Deno.test("events wake on readiness: prompt delivery, no CPU while idle", async () => {
  const ns = await Netns.create("evwake");
  try {
    await ns.exec(["sysctl", "-qw", "net.netfilter.nf_conntrack_timestamp=1"]);
    // Delivery latency: the kernel's event timestamp to the event's arrival here.
    using ct = Conntrack.open({ netns: ns.name });
    const stop = new AbortController();
    const delays: number[] = [];
    const watching = (async () => {
      for await (const e of ct.events({ types: ["new"], signal: stop.signal })) {
        const arrived = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
        if (e.type === "new" && e.flow.timestampEvent !== undefined) {
          delays.push(Number(arrived - e.flow.timestampEvent) / 1e6);
        }
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    using other = Conntrack.open({ netns: ns.name });
    for (let i = 0; i < 50; i++) {
      await other.create(udp(i));
      await new Promise((resolve) => setTimeout(resolve, 5 + (i % 7))); // idle between
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    stop.abort();
    await watching;
    assert.equal(delays.length, 50, "every event arrived");
    const p99 = percentile(delays, 99);
    console.log(
      `event delivery: median ${percentile(delays, 50).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
    );
    assert.ok(p99 < 50, `p99 delivery ${p99.toFixed(2)} ms`);

    // Idle CPU: a listener process that sees no event for 10 s, measured
    // from its subscription on (start-up excluded).
    const script = `import { Conntrack } from "${ROOT}mod.ts";
const cpu = () => {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
};
using ct = Conntrack.open({ netns: "${ns.name}" });
const events = ct.events({ signal: AbortSignal.timeout(10_000) });
const first = events.next(); // subscribes, then waits
await new Promise((r) => setTimeout(r, 200));
const before = cpu();
await first;
for await (const _ of events) { /* none */ }
console.log(cpu() - before);`;
    const child = await run([Deno.execPath(), "eval", "--quiet", script]);
    assert.equal(child.code, 0, child.stderr);
    const idleMs = Number(child.stdout.trim());
    console.log(`an idle listener used ${idleMs} ms of CPU in 10 s (10 ms clock ticks)`);
    // A 1 ms polling loop would use hundreds of milliseconds; waking on readiness, next to none.
    assert.ok(idleMs <= 50, `${idleMs} ms of CPU while idle`);
  } finally {
    await ns.delete();
  }
});

Deno.test("a dumped Flow goes back into delete: deno check passes, zoned flows are deleted", async () => {
  const ns = await Netns.create("flowback");
  const dir = await Deno.makeTempDir();
  try {
    using ct = Conntrack.open({ netns: ns.name });
    const specs = [
      ...Array.from({ length: 20 }, (_, i) => udp(i, 7)),
      ...Array.from({ length: 20 }, (_, i) => udp(i, 9)),
      ...Array.from({ length: 20 }, (_, i) => udp(i)),
    ];
    assert.equal(await ct.createMany(specs), 60);
    const script = `${dir}/delete_all.ts`;
    await Deno.writeTextFile(
      script,
      `import { Conntrack } from "${ROOT}mod.ts";
using ct = Conntrack.open({ netns: Deno.args[0] });
for (const f of ct.dumpSync()) ct.deleteSync(f);
for (const f of ct.dumpSync()) await ct.delete(f);
console.log(ct.countSync());
`,
    );
    const check = await run([Deno.execPath(), "check", "--quiet", script]);
    assert.equal(check.code, 0, check.stderr);
    const r = await run([Deno.execPath(), "run", "--allow-ffi", script, ns.name]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "0");
    assert.equal((await ns.exec(["conntrack", "-C"])).trim(), "0");
  } finally {
    await Deno.remove(dir, { recursive: true });
    await ns.delete();
  }
});

Deno.test("errors say what to do: a bad netns descriptor, a closed handle", () => {
  assert.throws(
    () => Conntrack.open({ netns: 99999 }),
    (e) =>
      e instanceof TypeError &&
      /^Invalid netns: 99999 is not an open network namespace file descriptor/.test(e.message),
  );
});

Deno.test("keepWorker: the kept worker does not hold the process once the handle is closed", async () => {
  const ns = await Netns.create("keepexit");
  try {
    {
      using ct = Conntrack.open({ netns: ns.name });
      assert.equal(await ct.createMany(Array.from({ length: 5000 }, (_, i) => udp(i))), 5000);
    }
    const script = `import { Conntrack } from "${ROOT}mod.ts";
using ct = Conntrack.open({ netns: "${ns.name}", keepWorker: true });
let n = 0;
for await (const _ of ct.dump()) n++;
for await (const _ of ct.dump()) n++;
console.log(n);`;
    const started = performance.now();
    const r = await run([Deno.execPath(), "eval", "--quiet", script]);
    const took = performance.now() - started;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "10000");
    console.log(`two dumps with a kept worker, then exit: ${took.toFixed(0)} ms`);
    assert.ok(took < 5000, "the process did not wait for the worker's idle timeout (10 s)");
  } finally {
    await ns.delete();
  }
});

Deno.test("async dumps receive ahead on Deno's blocking pool: the same entries as dumpSync, abandoned dumps leave nothing in flight", async () => {
  const ns = await Netns.create("ahead");
  try {
    using ct = Conntrack.open({ netns: ns.name });
    const n = 30_000; // ~150 datagrams: far past the few received before the receive-ahead starts
    assert.equal(await ct.createMany(Array.from({ length: n }, (_, i) => udp(i))), n);
    const key = (f: Flow) => `${f.orig.dst}:${f.orig.srcPort}`;
    const blocking = [...ct.dumpSync({}, { prefetch: false })].map(key);
    const ahead: string[] = [];
    for await (const f of ct.dump()) ahead.push(key(f));
    assert.equal(ahead.length, n);
    assert.deepEqual(ahead, blocking, "same entries in the kernel's order");

    // The message dump the CLI's transcoder uses: every message, once.
    let bytes = 0;
    const got = await ct.dumpMessages({}, {}, (_b, view, offset, length) => {
      assert.equal(view.getUint32(offset, true), length);
      bytes += length;
    });
    assert.equal(got, n);
    assert.ok(bytes > n * 100);

    // Abandoned midway, several times (each at another point of the receive-ahead's batches):
    // the handle answers at once and dumps again, whole.
    for (let round = 0; round < 5; round++) {
      let seen = 0;
      for await (const _ of ct.dump()) if (++seen === 2_000 + round * 3_001) break;
      assert.equal(await ct.count(), n);
    }
    let again = 0;
    for await (const _ of ct.dump()) again++;
    assert.equal(again, n);

    // Closed under a dump (from inside the loop, as another task could): the loop ends with the
    // handle's error; a handle opened right after (its socket may get the same descriptor
    // number) dumps whole; no descriptor is left behind once the receive in flight has returned.
    const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
    const before = fds();
    for (let round = 0; round < 3; round++) {
      const doomed = Conntrack.open({ netns: ns.name });
      let seen = 0;
      await assert.rejects(async () => {
        for await (const _ of doomed.dump()) if (++seen === 3_000) doomed.close();
      }, /closed/i);
      using next = Conntrack.open({ netns: ns.name });
      let whole = 0;
      for await (const _ of next.dump()) whole++;
      assert.equal(whole, n);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(fds(), before, "no descriptor left open");
  } finally {
    await ns.delete();
  }
});
