/**
 * The library against the real kernel: a namespace with real traffic of many
 * kinds (tests/_traffic.ts), compared with conntrack-tools field by field.
 */

import assert from "node:assert/strict";
import {
  Conntrack,
  CT_STATUS,
  type DumpFilter,
  type Flow,
  formatFlow,
  NetlinkError,
} from "../mod.ts";
import { parseConntrackOutput } from "./_conntrack_text.ts";
import { flowAsText, mask } from "./_compare.ts";
import { trafficNamespace } from "./_traffic.ts";
import type { Netns } from "./_ns.ts";
import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import { decodeMessages, Encoder, NLM_F_DUMP, NLM_F_REQUEST } from "../src/netlink.ts";
import * as C from "../src/constants.ts";
import { decodeFlow } from "../src/decode.ts";

async function conntrackIds(ns: Netns, args: string[]): Promise<number[]> {
  const out = await ns.exec(["conntrack", "-L", "-o", "id", ...args]);
  return parseConntrackIdList(out);
}

function parseConntrackIdList(out: string): number[] {
  return out.split("\n").filter((l) => l.trim()).map((l) => Number(/ id=(\d+)$/.exec(l)![1]))
    .sort((a, b) => a - b);
}

function ids(flows: Iterable<Flow>): number[] {
  return [...flows].map((f) => f.id!).sort((a, b) => a - b);
}

/** conntrack -L options and the DumpFilter meaning the same. */
const FILTER_CASES: [string[], DumpFilter][] = [
  [["-f", "ipv4"], { family: "ipv4" }],
  [["-f", "ipv6"], { family: "ipv6" }],
  [["-p", "tcp"], { orig: { protocol: "tcp" } }],
  [["-p", "udp"], { orig: { protocol: "udp" } }],
  [["-p", "tcp", "--dport", "8080"], { orig: { protocol: "tcp", dstPort: 8080 } }],
  [["-p", "udp", "--dport", "5353"], { orig: { protocol: "udp", dstPort: 5353 } }],
  [["-p", "udp", "--sport", "5353"], { orig: { protocol: "udp", srcPort: 5353 } }],
  [["-p", "tcp", "--reply-port-src", "8080"], { reply: { protocol: "tcp", srcPort: 8080 } }],
  [["-s", "10.50.0.1"], { orig: { src: "10.50.0.1" } }],
  [["-d", "10.60.0.100"], { orig: { dst: "10.60.0.100" } }],
  [["-r", "10.50.0.2", "-q", "10.50.0.3"], { reply: { src: "10.50.0.2", dst: "10.50.0.3" } }],
  [["-s", "fd50::2"], { orig: { src: "fd50::2" } }],
  [["-d", "fd50::2", "-p", "udp"], { orig: { dst: "fd50::2", protocol: "udp" } }],
  [["-f", "ipv6", "-p", "tcp"], { family: "ipv6", orig: { protocol: "tcp" } }],
  [["-m", "42"], { mark: 42 }],
  [["-m", "40/0xf8"], { mark: { value: 40, mask: 0xf8 } }],
  [["-w", "7"], { zone: 7 }],
  [["-w", "0"], { zone: 0 }],
  [["-u", "ASSURED"], { status: ["ASSURED"] }],
  [["-u", "SEEN_REPLY"], { status: ["SEEN_REPLY"] }],
  [["-u", "UNREPLIED"], { status: { value: 0, mask: ["SEEN_REPLY"] } }],
  [["-p", "icmp", "--icmp-type", "8"], { orig: { protocol: "icmp", icmpType: 8 } }],
  [
    ["-p", "icmpv6", "--icmpv6-type", "128"],
    { family: "ipv6", orig: { protocol: "icmpv6", icmpType: 128 } },
  ],
  [
    ["-s", "10.50.0.1", "-p", "tcp", "--dport", "7000"],
    { orig: { src: "10.50.0.1", protocol: "tcp", dstPort: 7000 } },
  ],
  [
    ["-f", "ipv4", "-p", "tcp", "-u", "ASSURED", "-m", "0"],
    { family: "ipv4", orig: { protocol: "tcp" }, status: ["ASSURED"], mark: 0 },
  ],
];

Deno.test("library against the kernel and conntrack-tools", async (t) => {
  const ns = await trafficNamespace("lib");
  try {
    using ct = Conntrack.open({ netns: ns.name });
    const flows = [...ct.dumpSync()];
    const text = parseConntrackOutput(
      await ns.exec(["conntrack", "-L", "-o", "extended,id,ktimestamp"]),
    );

    await t.step("the traffic made every kind of entry", () => {
      const has = (p: (f: Flow) => boolean, what: string) => assert(flows.some(p), what);
      has((f) => f.tcp?.stateName === "ESTABLISHED", "tcp established");
      has((f) => f.tcp?.stateName === "TIME_WAIT", "tcp time_wait");
      has((f) => f.orig.protocol === 17 && (f.status & CT_STATUS.SEEN_REPLY) !== 0, "udp replied");
      has(
        (f) => f.orig.protocol === 17 && (f.status & CT_STATUS.SEEN_REPLY) === 0,
        "udp unreplied",
      );
      has((f) => f.orig.protocol === 1 && f.orig.icmpType === 8, "icmp echo");
      has((f) => f.orig.protocol === 58 && f.orig.icmpType === 128, "icmpv6 echo");
      has((f) => f.family === "ipv6" && f.orig.protocol === 6, "ipv6 tcp");
      has((f) => f.family === "ipv6" && f.orig.protocol === 17, "ipv6 udp");
      has((f) => (f.status & CT_STATUS.DST_NAT) !== 0 && f.orig.dstPort === 8081, "dnat");
      has((f) => (f.status & CT_STATUS.SRC_NAT) !== 0 && f.reply.dst === "10.50.0.3", "snat");
      has((f) => f.helper === "ftp" && f.seqAdjReply !== undefined, "ftp helper with seq-adj");
      has((f) => f.master?.dstPort === 21 && (f.status & CT_STATUS.EXPECTED) !== 0, "related");
      has((f) => f.zone === 7, "zone 7");
      has((f) => f.mark === 42, "mark 42");
      has((f) => f.countersOrig !== undefined && f.timestampStart !== undefined, "acct+tstamp");
    });

    await t.step(
      "every entry equals conntrack -L -o extended,id,ktimestamp, field by field",
      () => {
        const byId = new Map(text.map((e) => [e.id!, e]));
        assertEquals(ids(flows), [...byId.keys()].sort((a, b) => a - b));
        for (const flow of flows) {
          const expected = flowAsText(flow);
          const actual = byId.get(flow.id!)!;
          assert.deepStrictEqual(mask(expected, actual), expected);
        }
      },
    );

    await t.step("master tuple of a related flow is its control connection's tuple", () => {
      const control = flows.find((f) => f.helper === "ftp")!;
      for (const f of flows.filter((f) => f.master !== undefined)) {
        assert.deepStrictEqual(f.master, control.orig);
      }
    });

    await t.step("get() of every dumped entry returns the same entry", async () => {
      for (const flow of flows) {
        const again = await ct.get(
          {
            src: flow.orig.src!,
            dst: flow.orig.dst!,
            protocol: flow.orig.protocol!,
            ...(flow.orig.srcPort !== undefined
              ? { srcPort: flow.orig.srcPort, dstPort: flow.orig.dstPort! }
              : {}),
            ...(flow.orig.icmpId !== undefined
              ? {
                icmpId: flow.orig.icmpId,
                icmpType: flow.orig.icmpType!,
                icmpCode: flow.orig.icmpCode!,
              }
              : {}),
          },
          { zone: flow.zone ?? 0 },
        );
        assert(
          Math.abs(again.timeout! - flow.timeout!) <= 2,
          `timeout ${again.timeout} vs ${flow.timeout}: ${formatFlow(flow)}`,
        );
        // The lookup itself holds a reference while the kernel fills the reply.
        assert(again.use === flow.use || again.use === flow.use! + 1, "use");
        assert.deepStrictEqual({ ...again, timeout: 0, use: 0 }, { ...flow, timeout: 0, use: 0 });
        const byReply = ct.getSync(
          {
            src: flow.reply.src!,
            dst: flow.reply.dst!,
            protocol: flow.reply.protocol!,
            ...(flow.reply.srcPort !== undefined
              ? { srcPort: flow.reply.srcPort, dstPort: flow.reply.dstPort! }
              : {}),
            ...(flow.reply.icmpId !== undefined
              ? {
                icmpId: flow.reply.icmpId,
                icmpType: flow.reply.icmpType!,
                icmpCode: flow.reply.icmpCode!,
              }
              : {}),
          },
          { zone: flow.zone ?? 0, direction: "reply" },
        );
        assertEquals(byReply.id, flow.id);
      }
    });

    await t.step("get() of a missing entry is NetlinkError ENOENT", async () => {
      await assert.rejects(
        ct.get({ src: "10.9.9.9", dst: "10.9.9.8", protocol: "tcp", srcPort: 1, dstPort: 2 }),
        NetlinkError,
      );
      try {
        ct.getSync({ src: "10.9.9.9", dst: "10.9.9.8", protocol: "tcp", srcPort: 1, dstPort: 2 });
        assert.fail("no error");
      } catch (e) {
        assert(e instanceof NetlinkError);
        assertEquals(e.code, "ENOENT");
        assertEquals(e.operation, "get");
      }
      // The zone matters: the zone-7 flow is not in zone 0.
      const z = flows.find((f) => f.zone === 7)!;
      assert.throws(() =>
        ct.getSync({
          src: z.orig.src!,
          dst: z.orig.dst!,
          protocol: "udp",
          srcPort: z.orig.srcPort!,
          dstPort: z.orig.dstPort!,
        }), (e: unknown) => e instanceof NetlinkError && e.code === "ENOENT");
    });

    for (const [args, filter] of FILTER_CASES) {
      await t.step(
        `filter ${JSON.stringify(filter)} selects what conntrack -L ${args.join(" ")} does`,
        async () => {
          const want = await conntrackIds(ns, args);
          const kernel = ids(ct.dumpSync(filter));
          const user = ids(ct.dumpSync(filter, { userspaceFilter: true }));
          assertEquals(kernel, want, "auto (kernel where possible)");
          assertEquals(user, want, "userspace");
          assert(want.length > 0 || args.includes("--sport"), "the case selects something");
        },
      );
    }

    await t.step(
      "an old kernel's plan puts zone and status in userspace, same result",
      async () => {
        using old = Conntrack.open({ netns: ns.name, kernelRelease: "5.4.0" });
        const plan = old.planDump({ zone: 7, status: ["ASSURED"], orig: { protocol: "tcp" } });
        assertEquals(plan.kernel, []);
        assertEquals(plan.userspace.map((u) => u.part).sort(), ["orig.protocol", "status", "zone"]);
        assertEquals(ids(old.dumpSync({ zone: 7 })), await conntrackIds(ns, ["-w", "7"]));
        assertEquals(
          ids(old.dumpSync({ status: ["ASSURED"] })),
          await conntrackIds(ns, ["-u", "ASSURED"]),
        );
        const filter: DumpFilter = {
          family: "ipv4",
          zone: 7,
          status: ["ASSURED"],
          orig: { protocol: "tcp" },
        };
        const now = ct.planDump(filter);
        assertEquals(now.kernel.sort(), ["family", "orig.protocol", "status", "zone"]);
        assertEquals(now.userspace, []);
      },
    );

    await t.step(
      "the kernel's IPv6 CTA_FILTER address match is inverted (why it runs in userspace)",
      () => {
        const fd = openFd(`/run/netns/${ns.name}`, "open network namespace");
        const sock = NetlinkSocket.open({ netnsFd: fd, recvTimeoutMs: 5000 });
        try {
          const enc = new Encoder();
          enc.begin((1 << 8) | C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 77, C.AF_INET6);
          const addr = new Uint8Array(16);
          addr.set([0xfd, 0x50], 0);
          addr[15] = 2; // fd50::2
          enc.nest(C.CTA_TUPLE_ORIG).nest(C.CTA_TUPLE_IP).bytes(C.CTA_IP_V6_SRC, addr).end().end();
          enc.nest(C.CTA_FILTER).u32(C.CTA_FILTER_ORIG_FLAGS, C.CTA_FILTER_F_IP_SRC)
            .u32(C.CTA_FILTER_REPLY_FLAGS, 0).end();
          sock.send(enc.finish(), "dump");
          const got: Flow[] = [];
          for (let done = false; !done;) {
            const r = sock.recv("dump")!;
            for (const m of decodeMessages(sock.buffer.subarray(0, r.length))) {
              const type = m[4]! | (m[5]! << 8);
              if (type === 2) assert.fail("the kernel refused the filter");
              if (type === 3) done = true;
              else got.push(decodeFlow(m));
            }
          }
          const v6 = flows.filter((f) => f.family === "ipv6");
          const withSrc = v6.filter((f) => f.orig.src === "fd50::2");
          assert(withSrc.length > 0 && withSrc.length < v6.length, "both kinds of source");
          // Inverted: the kernel returns the IPv6 flows whose source DIFFERS.
          assertEquals(ids(got), ids(v6.filter((f) => f.orig.src !== "fd50::2")));
        } finally {
          sock.close();
          closeFd(fd);
        }
      },
    );

    await t.step(
      "async and sync dumps agree; breaking out midway leaves the handle usable",
      async () => {
        const asyncIds: number[] = [];
        for await (const f of ct.dump()) asyncIds.push(f.id!);
        assertEquals(asyncIds.sort((a, b) => a - b), ids(flows));
        for (const _ of ct.dumpSync()) break;
        for await (const _ of ct.dump()) break;
        assertEquals(ids(ct.dumpSync()), ids(flows));
      },
    );

    await t.step("count() equals conntrack -C; globalStats() has the max", async () => {
      assertEquals(await ct.count(), Number((await ns.exec(["conntrack", "-C"])).trim()));
      const g = await ct.globalStats();
      assertEquals(g.entries, flows.length);
      assert(g.maxEntries! > 0);
    });

    await t.step("stats() equals conntrack -S, CPU by CPU", async () => {
      const lines = (await ns.exec(["conntrack", "-S"])).trim().split("\n");
      const stats = await ct.stats();
      assertEquals(stats.length, lines.length);
      for (const [i, line] of lines.entries()) {
        const fields = Object.fromEntries(
          line.trim().split(/\s+/).map((kv) => kv.split("=") as [string, string]),
        );
        const s = stats[i]!;
        assertEquals(Number(fields.cpu), s.cpu);
        assertEquals(Number(fields.found), s.found);
        assertEquals(Number(fields.invalid), s.invalid);
        assertEquals(Number(fields.insert), s.insert);
        assertEquals(Number(fields.insert_failed), s.insertFailed);
        assertEquals(Number(fields.drop), s.drop);
        assertEquals(Number(fields.early_drop), s.earlyDrop);
        assertEquals(Number(fields.error), s.error);
        assertEquals(Number(fields.search_restart), s.searchRestart);
        assertEquals(Number(fields.clash_resolve), s.clashResolve);
        assertEquals(Number(fields.chaintoolong), s.chainTooLong);
      }
    });

    await t.step("netns by path and by fd reach the same table", () => {
      using byPath = Conntrack.open({ netns: `/run/netns/${ns.name}` });
      assertEquals(ids(byPath.dumpSync()), ids(flows));
      const fd = openFd(`/run/netns/${ns.name}`, "open network namespace");
      try {
        using byFd = Conntrack.open({ netns: fd });
        assertEquals(ids(byFd.dumpSync()), ids(flows));
      } finally {
        closeFd(fd);
      }
      // The thread went back home: a handle without netns sees another table.
      using home = Conntrack.open();
      const homeIds = new Set(ids(home.dumpSync()));
      assert(flows.every((f) => !homeIds.has(f.id!)));
    });
  } finally {
    await ns.delete();
  }
});

function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assert.deepStrictEqual(actual, expected, message);
}

Deno.test("opening a namespace that does not exist is NetlinkError ENOENT", () => {
  assert.throws(
    () => Conntrack.open({ netns: "ctnl-no-such-namespace" }),
    (e: unknown) =>
      e instanceof NetlinkError && e.code === "ENOENT" &&
      e.message.includes("/run/netns/ctnl-no-such-namespace"),
  );
});

Deno.test("a closed handle says so; close() twice is harmless", () => {
  const ct = Conntrack.open();
  ct.close();
  ct.close();
  assert.equal(ct.closed, true);
  assert.throws(() => [...ct.dumpSync()], /handle is closed/);
});
