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
import { Conntrack, type CreateSpec } from "../mod.ts";
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

    // Idle CPU: a listener process that sees no event for 5 s.
    const script = `import { Conntrack } from "${ROOT}mod.ts";
using ct = Conntrack.open({ netns: "${ns.name}" });
console.log("ready");
for await (const _ of ct.events({ signal: AbortSignal.timeout(5000) })) { /* none */ }
const u = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
console.log(Number(u[11]) + Number(u[12]));`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--quiet", script],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const out = new TextDecoder().decode((await child.output()).stdout).trim().split("\n");
    assert.equal(out[0], "ready");
    // Clock ticks (1/100 s) of CPU for the whole process: start-up, then 5 s idle.
    const ticks = Number(out[1]);
    console.log(`an idle listener process used ${ticks * 10} ms of CPU in all (start-up included)`);
    // A busy-waiting or 1 ms-polling listener would use hundreds of milliseconds or more.
    assert.ok(ticks * 10 < 400, `${ticks * 10} ms of CPU`);
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
