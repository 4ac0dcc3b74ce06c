/**
 * `--all-netns`: three namespaces with different entries, listed, counted
 * and dumped by the library and the CLI, each flow attributed to its
 * namespace; `ctnl events --all-netns` follows a namespace created while it
 * runs and lets go of one deleted. Only the namespaces this test made are
 * looked at (other tests' come and go on the machine).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  Conntrack,
  dumpAllNetns,
  eventsAllNetns,
  listNetns,
  listNetnsSync,
  MetricsExporter,
  type NetnsChange,
} from "../mod.ts";
import { killChild, readJsonLines } from "./_child.ts";
import { must, Netns } from "./_ns.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** `n` UDP entries from 10.8X.0.1 (X = `tag`). */
async function fill(ns: Netns, tag: number, n: number, port = 1000): Promise<void> {
  using ct = Conntrack.open({ netns: ns.name });
  const specs = Array.from({ length: n }, (_, i) => ({
    orig: {
      src: `10.8${tag}.0.1`,
      dst: "10.89.0.1",
      protocol: "udp",
      srcPort: port + i,
      dstPort: 53,
    },
    timeout: 600,
  }));
  assert.equal(await ct.createMany(specs), n);
}

async function ctnl(args: string[]): Promise<string> {
  return await must([Deno.execPath(), "run", "-A", CLI, ...args]);
}

Deno.test("--all-netns: every namespace listed, counted and dumped, each flow tagged", async () => {
  const made: Netns[] = [];
  try {
    for (let i = 0; i < 3; i++) made.push(await Netns.create(`exp-all${i}`));
    const sizes = [3, 5, 7];
    for (let i = 0; i < 3; i++) await fill(made[i]!, i + 1, sizes[i]!);
    const mine = new Map(made.map((ns, i) => [ns.name, i]));

    // Listing: each of ours once, by inode, named; sync and async agree.
    const listed = (await listNetns()).filter((n) => mine.has(n.label));
    assert.deepEqual(listed.map((n) => n.label).sort(), made.map((n) => n.name).sort());
    for (const n of listed) {
      assert.equal(n.inode, Deno.statSync(`/run/netns/${n.label}`).ino);
      assert.equal(n.path, `/run/netns/${n.label}`);
    }
    assert.deepEqual(listNetnsSync().filter((n) => mine.has(n.label)), listed);
    const self = (await listNetns()).find((n) =>
      n.inode === Deno.statSync("/proc/self/ns/net").ino
    );
    assert.ok(self !== undefined, "ctnl's own namespace is listed");
    assert.equal(self.label, self.name ?? `net:[${self.inode}]`);

    // Library dump: each flow from its namespace's source.
    const got = new Map<string, number>();
    for await (const { netns, flow } of dumpAllNetns()) {
      const i = mine.get(netns.label);
      if (i === undefined) continue;
      assert.equal(flow.orig.src, `10.8${i + 1}.0.1`, `a flow of ${netns.label}`);
      got.set(netns.label, (got.get(netns.label) ?? 0) + 1);
    }
    assert.deepEqual(got, new Map(made.map((ns, i) => [ns.name, sizes[i]!])));

    // CLI: count and dump, text and JSON.
    const counts = (await ctnl(["count", "--all-netns"])).trim().split("\n");
    for (const [i, ns] of made.entries()) {
      assert.ok(counts.includes(`netns=${ns.name} ${sizes[i]}`), counts.join("\n"));
    }
    const countJson = (await ctnl(["count", "--all-netns", "--json"])).trim().split("\n")
      .map((l) => JSON.parse(l)).filter((o) => mine.has(o.netns));
    assert.deepEqual(
      countJson.map((o) => [o.netns, o.entries]).sort(),
      made.map((ns, i) => [ns.name, sizes[i]]).sort(),
    );
    const dumpText = (await ctnl(["dump", "--all-netns"])).split("\n");
    for (const [i, ns] of made.entries()) {
      const lines = dumpText.filter((l) => l.startsWith(`netns=${ns.name} `));
      assert.equal(lines.length, sizes[i]);
      for (const l of lines) {
        assert.match(l, new RegExp(`^netns=${ns.name} udp +17 \\d+ src=10\\.8${i + 1}\\.0\\.1 `));
      }
    }
    const dumpJson = (await ctnl(["dump", "--all-netns", "--json", "-p", "udp"])).trim().split("\n")
      .map((l) => JSON.parse(l)).filter((o) => mine.has(o.netns));
    for (const o of dumpJson) assert.equal(o.orig.src, `10.8${mine.get(o.netns)! + 1}.0.1`);
    assert.equal(dumpJson.length, 15);

    // The exporter's collection: one sample per namespace, labelled.
    using exporter = MetricsExporter.open({ allNetns: true });
    const text = (await exporter.render(false)).body;
    for (const [i, ns] of made.entries()) {
      assert.ok(text.includes(`\nconntrack_entries{netns="${ns.name}"} ${sizes[i]}\n`), ns.name);
      assert.ok(
        text.includes(
          `\nconntrack_flows{netns="${ns.name}",family="ipv4",protocol="udp",state=""} ${
            sizes[i]
          }\n`,
        ),
      );
      assert.ok(text.includes(`\nctnl_collect_success{netns="${ns.name}"} 1\n`));
    }
  } finally {
    for (const ns of made) await ns.delete();
  }
});

Deno.test("ctnl events --all-netns: a namespace created while it runs is followed, a deleted one let go", async () => {
  const made: Netns[] = [];
  let proc: Deno.ChildProcess | undefined;
  try {
    for (let i = 0; i < 3; i++) made.push(await Netns.create(`exp-ev${i}`));
    const ours = new Map(made.map((ns, i) => [ns.name, i + 1]));
    proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "events", "--all-netns", "--json", "-e", "NEW"],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const events: { netns: string; src: string; port: number }[] = [];
    const reading = readJsonLines(proc.stdout, (o) => {
      events.push({ netns: o.netns ?? "", src: o.orig.src, port: o.orig.srcPort ?? 0 });
    });
    /** Makes entries in `ns` until one shows up in the stream (it is being followed). */
    let port = 2000;
    const followed = async (ns: Netns, tag: number) => {
      const deadline = Date.now() + 15_000;
      while (!events.some((e) => e.netns === ns.name)) {
        assert.ok(Date.now() < deadline, `events of ${ns.name} never came`);
        await fill(ns, tag, 1, port++);
        await new Promise((r) => setTimeout(r, 300));
      }
    };
    for (const [i, ns] of made.entries()) await followed(ns, i + 1);
    const late = await Netns.create("exp-ev-late");
    made.push(late);
    ours.set(late.name, 4);
    await followed(late, 4);
    // Delete the third; the others go on.
    const gone = made[2]!;
    await gone.delete();
    made.splice(2, 1);
    await new Promise((r) => setTimeout(r, 1500)); // the namespace poll notices
    const before = events.length;
    await fill(made[0]!, 1, 3, 9000);
    await fill(late, 4, 2, 9000);
    const deadline = Date.now() + 10_000;
    const after = () => events.filter((e) => e.port >= 9000 && ours.has(e.netns));
    while (after().length < 5) {
      assert.ok(Date.now() < deadline, "events after the deletion");
      await new Promise((r) => setTimeout(r, 100));
    }
    proc.kill("SIGTERM");
    assert.equal((await proc.status).code, 0);
    await reading;
    proc = undefined;
    for (const e of events) {
      const tag = ours.get(e.netns);
      if (tag === undefined) continue; // another test's namespace
      assert.equal(e.src, `10.8${tag}.0.1`, `an event attributed to ${e.netns}`);
    }
    assert.ok(events.slice(before).every((e) => e.netns !== gone.name));
    assert.deepEqual(
      after().map((e) => e.netns).sort(),
      [made[0]!.name, made[0]!.name, made[0]!.name, late.name, late.name].sort(),
    );
  } finally {
    await killChild(proc);
    for (const ns of made) await ns.delete();
  }
});

Deno.test("eventsAllNetns(): a deleted namespace's stream is closed (its socket would keep it alive)", async () => {
  const ns = await Netns.create("exp-gone");
  let deleted = false;
  try {
    const changes: NetnsChange[] = [];
    const stop = new AbortController();
    const stream = eventsAllNetns({
      intervalMs: 200,
      signal: stop.signal,
      onNetns: (c) => changes.push(c),
    });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const { netns } of stream) seen.push(netns.label);
    })();
    const deadline = Date.now() + 15_000;
    for (let port = 3000; !seen.includes(ns.name); port++) {
      assert.ok(Date.now() < deadline, "the namespace is followed");
      await fill(ns, 5, 1, port);
      await new Promise((r) => setTimeout(r, 200));
    }
    await ns.delete();
    deleted = true;
    while (!changes.some((c) => c.type === "removed" && c.netns.label === ns.name)) {
      assert.ok(Date.now() < deadline, "the deletion is noticed");
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(changes.some((c) => c.type === "added" && c.netns.label === ns.name));
    stop.abort();
    await reading;
  } finally {
    if (!deleted) await ns.delete();
  }
});
