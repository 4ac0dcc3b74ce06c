/**
 * The mirror that is never wrong: `watch()` and `ctnl events --resync`
 * under a flood of changes with a receive buffer small enough that the
 * kernel drops events (ENOBUFS); once the stream is quiet, the mirror must
 * equal the table entry for entry (`conntrack -L -o extended,id`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Conntrack, type CreateSpec, flowKey, newFlow, watch, type WatchEvent } from "../mod.ts";
import { parseConntrackOutput, type TextEntry } from "./_conntrack_text.ts";
import { killChild, readJsonLines } from "./_child.ts";
import { Netns } from "./_ns.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** `round`'s batch of UDP entries from 10.70.0.1 (ports differ per round). */
function batch(round: number, n: number): CreateSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    orig: {
      src: "10.70.0.1",
      dst: `10.71.${round & 0xff}.1`,
      protocol: "udp",
      srcPort: 1024 + i,
      dstPort: 53,
    },
    timeout: 600,
  }));
}

/**
 * Churn: `rounds` rounds of `n` creates and `n` deletes (2·n·rounds
 * changes), leaving the last round's entries, with every third one's mark
 * changed (updates) and a TCP entry per zone 0 and 4.
 */
async function churn(ct: Conntrack, rounds: number, n: number): Promise<number> {
  let changes = 0;
  for (let round = 0; round < rounds; round++) {
    changes += await ct.createMany(batch(round, n));
    if (round < rounds - 1) changes += await ct.deleteWhere({ orig: { src: "10.70.0.1" } });
  }
  changes += await ct.updateWhere(
    { orig: { src: "10.70.0.1" } },
    (f) => (f.orig.srcPort! % 3 === 0 ? { mark: 9 } : undefined),
  );
  for (const zone of [0, 4]) {
    await ct.create({
      orig: { src: "10.72.0.1", dst: "10.72.0.2", protocol: "tcp", srcPort: 4000, dstPort: 80 },
      timeout: 600,
      tcpState: "ESTABLISHED",
      zone,
    });
    changes++;
  }
  return changes;
}

/** The key of a `conntrack -L` line, as flowKey() makes it for a flow. */
function textKey(e: TextEntry): string {
  const o = e.orig;
  return `${e.l3} ${e.l4num} ${o.src} ${o.dst} ${o.sport ?? o.id ?? ""} ${
    o.dport ?? (o.type === undefined ? "" : `${o.type}/${o.code}`)
  } ${e.zone ?? o.zone ?? 0}`;
}

/** The table as conntrack lists it: key → "id mark state". */
async function kernelTable(ns: Netns): Promise<Map<string, string>> {
  const text = await ns.exec(["conntrack", "-L", "-o", "extended,id"]);
  return new Map(
    parseConntrackOutput(text).map((e) => [textKey(e), `${e.id} ${e.mark ?? 0} ${e.state ?? ""}`]),
  );
}

Deno.test("watch(): after a flood with losses, the mirror equals conntrack -L entry for entry", async () => {
  const ns = await Netns.create("exp-watch");
  try {
    using ct = Conntrack.open({ netns: ns.name });
    using load = Conntrack.open({ netns: ns.name });
    // Entries before the watch starts: the first dump must bring them in.
    await load.createMany(
      batch(255, 500).map((s) => ({ ...s, orig: { ...s.orig, src: "10.73.0.1" } })),
    );
    const mirror = watch(ct, { bufferSize: 16384 });
    const seen = { kernel: 0, synthetic: 0, synced: 0 };
    let last = Date.now();
    let firstSync: (() => void) | undefined;
    const synced = new Promise<void>((resolve) => firstSync = resolve);
    const consuming = (async () => {
      for await (const e of mirror as AsyncIterable<WatchEvent>) {
        last = Date.now();
        if (e.type === "synced") {
          seen.synced++;
          firstSync?.();
        } else if (e.synthetic) seen.synthetic++;
        else seen.kernel++;
      }
    })();
    await synced;
    assert.equal(mirror.table.size, 500, "the first dump is in the mirror");
    const changes = await churn(load, 51, 2000);
    // Quiet: nothing came for 2 s (a resync in progress yields as it goes).
    while (Date.now() - last < 2000) await new Promise((r) => setTimeout(r, 200));
    const kernel = await kernelTable(ns);
    const mine = new Map(
      [...mirror.table].map(([k, f]) => [k, `${f.id} ${f.mark ?? 0} ${f.tcp?.stateName ?? ""}`]),
    );
    console.log(
      `${changes} changes; ${seen.kernel} kernel events, ${seen.synthetic} synthetic, ` +
        `${mirror.losses} losses, ${mirror.resyncs} resyncs; ${kernel.size} entries`,
    );
    assert.ok(changes >= 200_000, `at least 200k changes (${changes})`);
    assert.ok(mirror.losses >= 1, "the flood made the kernel drop events");
    assert.equal(mirror.resyncs, mirror.losses);
    assert.equal(kernel.size, 500 + 2000 + 2);
    assert.deepEqual(mine, kernel);
    await mirror.return();
    await consuming;
  } finally {
    await ns.delete();
  }
});

Deno.test("ctnl events --resync --json: applying its lines gives the table after losses", async () => {
  const ns = await Netns.create("exp-resync");
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      ns.name,
      Deno.execPath(),
      "run",
      "-A",
      CLI,
      "events",
      "--resync",
      "--json",
      "-b",
      "16384",
    ],
    stdout: "piped",
    stderr: "piped",
  });
  let proc: Deno.ChildProcess | undefined;
  try {
    using load = Conntrack.open({ netns: ns.name });
    await load.create({
      orig: { src: "10.74.0.1", dst: "10.74.0.2", protocol: "udp", srcPort: 1, dstPort: 2 },
      timeout: 600,
    });
    proc = child.spawn();
    const mirror = new Map<string, string>();
    let resynced = 0;
    let last = Date.now();
    let ready: (() => void) | undefined;
    const started = new Promise<void>((resolve) => ready = resolve);
    const reading = readJsonLines(proc.stdout, (e) => {
      last = Date.now();
      if (e.resync === true) resynced++;
      const o = e.orig;
      const k = `${e.family} ${o.protocol} ${o.src} ${o.dst} ${o.srcPort ?? o.icmpId ?? ""} ${
        o.dstPort ?? (o.icmpType === undefined ? "" : `${o.icmpType}/${o.icmpCode}`)
      } ${e.zone ?? 0}`;
      if (e.event === "destroy") mirror.delete(k);
      else mirror.set(k, `${e.id} ${e.mark ?? 0} ${e.tcp?.stateName ?? ""}`);
      ready?.();
    });
    const stderr = new Response(proc.stderr).text();
    await started; // the first dump's line for the entry made before
    const changes = await churn(load, 10, 2000);
    while (Date.now() - last < 2000) await new Promise((r) => setTimeout(r, 200));
    const kernel = await kernelTable(ns);
    proc.kill("SIGTERM");
    await reading;
    const messages = await stderr;
    const resyncs = messages.split("\n").filter((l) => l.includes("dumped again")).length;
    console.log(`${changes} changes; ${resynced} resync lines; ${resyncs} resyncs`);
    assert.ok(resyncs >= 1, `losses happened and were resynced: ${messages}`);
    assert.equal(kernel.size, 1 + 2000 + 2);
    assert.deepEqual(mirror, kernel);
    assert.equal((await proc.status).code, 0);
    proc = undefined;
  } finally {
    await killChild(proc);
    await ns.delete();
  }
});

// flowKey is the mirror's key; the text key above must agree with it.
Deno.test("flowKey and the conntrack -L key agree", () => {
  const line =
    "ipv4     2 udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=5 dport=53 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=53 dport=5 mark=0 zone=4 use=1 id=7";
  const [e] = parseConntrackOutput(line);
  const f = newFlow("ipv4");
  f.orig = { ...f.orig, src: "10.0.0.1", dst: "10.0.0.2", protocol: 17, srcPort: 5, dstPort: 53 };
  f.zone = 4;
  assert.equal(textKey(e!), flowKey(f));
});
