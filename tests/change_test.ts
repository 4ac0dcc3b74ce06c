/**
 * Changing and watching the table against the real kernel: create, update,
 * delete, flush, deleteWhere, createMany and events, checked with
 * conntrack-tools (`-L`, `-C`, `-E`) in a fresh namespace.
 */

import $ from "@david/dax";
import assert from "node:assert/strict";
import { Conntrack, type ConntrackEvent, formatFlow, NetlinkError } from "../mod.ts";
import { parseConntrackOutput } from "./_conntrack_text.ts";
import { Netns } from "./_ns.ts";

const TCP = { src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 4000, dstPort: 80 };

async function count(ns: Netns): Promise<number> {
  return Number((await ns.exec(["conntrack", "-C"])).trim());
}

Deno.test("create, update, delete, flush and deleteWhere, checked with conntrack-tools", async (t) => {
  const ns = await Netns.create("change");
  try {
    using ct = Conntrack.open({ netns: ns.name });

    await t.step("create sets every requested field", async () => {
      await ct.create({
        orig: TCP,
        timeout: 500,
        tcpState: "ESTABLISHED",
        status: ["ASSURED", "SEEN_REPLY"],
        mark: 42,
        zone: 3,
      });
      const [e] = parseConntrackOutput(
        await ns.exec(["conntrack", "-L", "-o", "extended", "-p", "tcp"]),
      );
      assert(e);
      assert.equal(e.state, "ESTABLISHED");
      assert(e.timeout! <= 500 && e.timeout! >= 498);
      assert.deepStrictEqual(
        [e.orig.src, e.orig.dst, e.orig.sport, e.orig.dport],
        ["10.0.0.1", "10.0.0.2", 4000, 80],
      );
      assert.deepStrictEqual(
        [e.reply.src, e.reply.dst, e.reply.sport, e.reply.dport],
        ["10.0.0.2", "10.0.0.1", 80, 4000],
      );
      assert.equal(e.assured, true);
      assert.equal(e.unreplied, false);
      assert.equal(e.mark, 42);
      assert.equal(e.zone, 3);
    });

    // A bad spec (a TypeError or RangeError, before anything is sent):
    // tests/unit/arguments_test.ts.
    await t.step("create of an existing entry is EEXIST", async () => {
      await assert.rejects(
        ct.create({ orig: TCP, timeout: 5, zone: 3, tcpState: "ESTABLISHED" }),
        (e: unknown) => e instanceof NetlinkError && e.code === "EEXIST",
      );
    });

    await t.step("an ICMPv6 echo gets its echo-reply tuple by default", async () => {
      await ct.create({
        orig: {
          src: "fd00::1",
          dst: "fd00::2",
          protocol: "icmpv6",
          icmpType: 128,
          icmpCode: 0,
          icmpId: 9,
        },
        timeout: 30,
      });
      const [e] = parseConntrackOutput(
        await ns.exec(["conntrack", "-L", "-o", "extended", "-f", "ipv6"]),
      );
      assert.deepStrictEqual([e!.reply.type, e!.reply.id, e!.reply.src], [129, 9, "fd00::2"]);
    });

    await t.step("update changes mark, timeout and status; get shows it", async () => {
      await ct.update(TCP, { mark: 7, timeout: 60 }, { zone: 3 });
      const f = await ct.get(TCP, { zone: 3 });
      assert.equal(f.mark, 7);
      assert(f.timeout! <= 60 && f.timeout! >= 58);
      const [e] = parseConntrackOutput(
        await ns.exec(["conntrack", "-L", "-o", "extended", "-p", "tcp"]),
      );
      assert.equal(e!.mark, 7);
      await assert.rejects(
        ct.update({ ...TCP, srcPort: 1 }, { mark: 1 }),
        (e: unknown) => e instanceof NetlinkError && e.code === "ENOENT",
      );
    });

    await t.step("createMany fills the table; counts agree with conntrack -C", async () => {
      const before = await count(ns);
      const specs = Array.from({ length: 2000 }, (_, i) => ({
        orig: { src: "10.1.0.1", dst: "10.2.0.1", protocol: "udp", srcPort: 1024 + i, dstPort: 53 },
        timeout: 600,
        mark: i % 2,
      }));
      assert.equal(await ct.createMany(specs, { batchSize: 300 }), 2000);
      assert.equal(await count(ns), before + 2000);
      assert.equal(await ct.count(), before + 2000);
      // A batch with duplicates: the rest is created, the first failure named.
      const again = [specs[5]!, { ...specs[0]!, orig: { ...specs[0]!.orig, srcPort: 9 } }];
      await assert.rejects(
        ct.createMany(again),
        (e: unknown) =>
          e instanceof NetlinkError && e.code === "EEXIST" && /entry #0/.test(e.message),
      );
      assert.equal(await count(ns), before + 2001);
    });

    await t.step("deleteWhere deletes exactly what the filter selects, streaming", async () => {
      const before = await count(ns);
      const seen: string[] = [];
      const n = await ct.deleteWhere(
        { orig: { protocol: "udp", dstPort: 53 }, mark: 1 },
        { onDelete: (f) => seen.push(formatFlow(f)) },
      );
      assert.equal(n, 1000);
      assert.equal(seen.length, 1000);
      assert.equal(await count(ns), before - 1000);
      const left = await ns.exec(["conntrack", "-L", "-p", "udp", "-m", "1"]);
      assert.equal(left.trim(), "");
    });

    await t.step("delete of one entry, then of a missing one (ENOENT)", async () => {
      const before = await count(ns);
      await ct.delete(TCP, { zone: 3 });
      assert.equal(await count(ns), before - 1);
      await assert.rejects(
        ct.delete(TCP, { zone: 3 }),
        (e: unknown) => e instanceof NetlinkError && e.code === "ENOENT",
      );
    });

    await t.step("flush by family keeps the other family; flush empties the rest", async () => {
      assert((await count(ns)) > 1);
      await ct.flush({ family: "ipv4" });
      const left = parseConntrackOutput(await ns.exec(["conntrack", "-L", "-o", "extended"]));
      assert(left.length >= 1 && left.every((e) => e.l3 === "ipv6"));
      await ct.flush();
      assert.equal(await count(ns), 0);
    });
  } finally {
    await ns.delete();
  }
});

Deno.test("events agree with conntrack -E; a flooded small buffer signals loss and goes on", async (t) => {
  const ns = await Netns.create("events");
  try {
    using ct = Conntrack.open({ netns: ns.name });
    await t.step("new, update and destroy, as conntrack -E shows them", async () => {
      const oracle = $`ip netns exec ${ns.name} conntrack -E -o extended`
        .stdout("piped").stderr("null").noThrow().spawn();
      const ac = new AbortController();
      const events: ConntrackEvent[] = [];
      const watching = (async () => {
        for await (const e of ct.events({ signal: ac.signal })) events.push(e);
      })();
      await new Promise((r) => setTimeout(r, 300));
      const udp = { src: "10.0.0.1", dst: "10.0.0.2", protocol: "udp", srcPort: 1, dstPort: 2 };
      await ct.create({ orig: udp, timeout: 100 });
      await ct.update(udp, { mark: 3 });
      await ct.delete(udp);
      await new Promise((r) => setTimeout(r, 300));
      ac.abort();
      await watching;
      oracle.kill("SIGINT");
      const out = (await oracle).stdout;
      const theirs = out.trim().split("\n").map((l) => /^\s*\[(\w+)\]/.exec(l)![1]!.toLowerCase());
      const ours = events.map((e) => e.type);
      assert.deepStrictEqual(ours, ["new", "update", "destroy"]);
      assert.deepStrictEqual(ours, theirs);
      // Same tuples as conntrack printed.
      for (const [i, line] of out.trim().split("\n").entries()) {
        const e = events[i]!;
        assert(e.type !== "lost");
        assert(line.includes(`src=${e.flow.orig.src} dst=${e.flow.orig.dst} sport=1 dport=2`));
      }
      const destroy = events[2]!;
      assert(destroy.type === "destroy" && destroy.flow.mark === 3);
    });

    await t.step("filtered events see only what matches", async () => {
      const ac = new AbortController();
      const events: ConntrackEvent[] = [];
      const watching = (async () => {
        for await (
          const e of ct.events({
            types: ["new"],
            filter: { orig: { dstPort: 99 } },
            signal: ac.signal,
          })
        ) {
          events.push(e);
        }
      })();
      await new Promise((r) => setTimeout(r, 100));
      for (const port of [98, 99]) {
        await ct.create({
          orig: { src: "10.0.0.1", dst: "10.0.0.2", protocol: "udp", srcPort: 5, dstPort: port },
          timeout: 100,
        });
      }
      await new Promise((r) => setTimeout(r, 200));
      ac.abort();
      await watching;
      assert.deepStrictEqual(events.map((e) => e.type === "lost" ? -1 : e.flow.orig.dstPort), [99]);
    });

    await t.step(
      "a flooded 4 KiB buffer yields a loss signal and the stream continues",
      async () => {
        const ac = new AbortController();
        const events: ConntrackEvent[] = [];
        const watching = (async () => {
          for await (
            const e of ct.events({ bufferSize: 4096, signal: ac.signal })
          ) events.push(e);
        })();
        await new Promise((r) => setTimeout(r, 100));
        await ct.createMany(Array.from({ length: 3000 }, (_, i) => ({
          orig: {
            src: "10.9.0.1",
            dst: "10.0.0.2",
            protocol: "udp",
            srcPort: 1000 + i,
            dstPort: 2,
          },
          timeout: 100,
        })));
        await new Promise((r) => setTimeout(r, 600));
        // After the loss, new events still arrive.
        await ct.flush();
        await new Promise((r) => setTimeout(r, 600));
        ac.abort();
        await watching;
        const firstLoss = events.findIndex((e) => e.type === "lost");
        assert(firstLoss >= 0, "a loss was signalled");
        assert(events.slice(firstLoss).some((e) => e.type !== "lost"), "events after the loss");
        assert(events.length < 6000, "some were really lost");
      },
    );

    await t.step("closing the handle ends the stream", async () => {
      const other = Conntrack.open({ netns: ns.name });
      const it = other.events();
      const next = it.next();
      await new Promise((r) => setTimeout(r, 50));
      other.close();
      const r = await next;
      assert.equal(r.done, true);
    });
  } finally {
    await ns.delete();
  }
});
