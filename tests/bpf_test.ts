/**
 * The event socket filter on the real kernel (root): in a fresh namespace,
 * a socket with the compiled program attached receives exactly the event
 * datagrams an unfiltered socket receives that the userspace filter keeps;
 * `ct.events()` with and without the kernel filter delivers the same
 * events; `SO_GET_FILTER` shows the program attached.
 *
 * `CTNL_CAPTURE_EVENTS=1` also writes the unfiltered event datagrams to
 * tests/fixtures/ct_events.bin for tests/unit/bpf_test.ts.
 */

import assert from "node:assert/strict";
import { Conntrack, type ConntrackEvent, type DumpFilter } from "../mod.ts";
import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import { compileSocketFilter } from "../src/bpf.ts";
import { compileFilter, normalizeFilter } from "../src/filter.ts";
import { decodeFlowAt } from "../src/decode.ts";
import { AttrCursor } from "../src/netlink.ts";
import { Netns } from "./_ns.ts";
import { addTraffic } from "./_traffic.ts";
import { benchSpecs } from "../bench/_setup.ts";

/** A raw event socket in `ns` subscribed to new, update and destroy, with `program` attached. */
function eventSocket(ns: Netns, program?: Uint8Array<ArrayBuffer>): NetlinkSocket {
  const nsFd = openFd(`/run/netns/${ns.name}`, "open network namespace");
  try {
    const sock = NetlinkSocket.open({ netnsFd: nsFd }, 1 << 16);
    sock.setReceiveBuffer(32 << 20);
    if (program !== undefined) assert.equal(sock.attachFilter(program), 0);
    for (const group of [1, 2, 3]) sock.joinGroup(group);
    return sock;
  } finally {
    closeFd(nsFd);
  }
}

/** The datagrams queued on `sock`, copied. */
function drain(sock: NetlinkSocket): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let got = sock.recv("events", true); got !== undefined; got = sock.recv("events", true)) {
    out.push(sock.buffer.slice(0, got.length));
  }
  return out;
}

const cursor = new AttrCursor();

function keeps(filter: DumpFilter, m: Uint8Array): boolean {
  const c = compileFilter(normalizeFilter(filter), "6.18", true);
  const flow = decodeFlowAt(cursor, m, new DataView(m.buffer, m.byteOffset), 0, m.length);
  if (c.plan.family !== "all" && flow.family !== c.plan.family) return false;
  return c.match === undefined || c.match(flow);
}

const hex = (m: Uint8Array) => Array.from(m, (b) => b.toString(16).padStart(2, "0")).join("");

const FILTERS: DumpFilter[] = [
  { zone: 7 },
  { mark: 42 },
  { family: "ipv6" },
  { orig: { protocol: "icmp" } },
  { orig: { protocol: "udp", src: "10.0.1.0/24" } },
  { orig: { dst: "fd50::2" } },
  { reply: { srcPort: 8080 } },
];

Deno.test("real events: the kernel filter passes exactly what the userspace filter keeps", async () => {
  const ns = await Netns.create("bpf");
  const socks: NetlinkSocket[] = [];
  try {
    await ns.sysctl({ nf_conntrack_events: 1 });
    const all = eventSocket(ns);
    socks.push(all);
    const filtered = FILTERS.map((f) => {
      const s = eventSocket(ns, compileSocketFilter(normalizeFilter(f)).program);
      socks.push(s);
      return s;
    });
    // The program is attached: SO_GET_FILTER reports its length.
    FILTERS.forEach((f, i) => {
      const { program } = compileSocketFilter(normalizeFilter(f));
      assert.equal(filtered[i]!.filterLength(), program!.length / 8);
    });
    assert.equal(all.filterLength(), 0);
    await addTraffic(ns);
    using ct = Conntrack.open({ netns: ns.name });
    ct.createManySync(benchSpecs(600));
    await new Promise((r) => setTimeout(r, 1500));
    await ct.flush();
    await new Promise((r) => setTimeout(r, 500));
    const every = drain(all);
    assert(every.length > 1200, `events: ${every.length}`);
    if (Deno.env.get("CTNL_CAPTURE_EVENTS") === "1") {
      const out: number[] = [];
      for (const m of every.filter((_, i) => i < 200 || i % 20 === 0)) {
        out.push(...new Uint8Array(new Uint32Array([m.length]).buffer), ...m);
      }
      await Deno.writeFile(
        new URL("./fixtures/ct_events.bin", import.meta.url),
        new Uint8Array(out),
      );
    }
    FILTERS.forEach((f, i) => {
      const got = drain(filtered[i]!).map(hex);
      const want = every.filter((m) => keeps(f, m)).map(hex);
      assert(want.length > 0, `no event matches ${JSON.stringify(f)}`);
      assert(want.length < every.length / 2, `too many match ${JSON.stringify(f)}`);
      assert.deepStrictEqual(got, want, JSON.stringify(f));
    });
  } finally {
    for (const s of socks) s.close();
    await ns.delete();
  }
});

/** The events `ct.events(options)` yields until `stop` resolves. */
async function collect(
  ct: Conntrack,
  filter: DumpFilter,
  kernelFilter: boolean,
  signal: AbortSignal,
): Promise<string[]> {
  const out: string[] = [];
  for await (const e of ct.events({ filter, kernelFilter, signal })) {
    out.push(describe(e));
  }
  return out;
}

function describe(e: ConntrackEvent): string {
  if (e.type === "lost") return "lost";
  const { orig, reply } = e.flow;
  return `${e.type} ${orig.protocol} ${orig.src}:${orig.srcPort} ${orig.dst}:${orig.dstPort} ` +
    `${reply.src}:${reply.srcPort} mark=${e.flow.mark} id=${e.flow.id}`;
}

Deno.test("ct.events(): the same events with and without the kernel filter", async () => {
  const ns = await Netns.create("bpf-events");
  try {
    await ns.sysctl({ nf_conntrack_events: 1 });
    using ct = Conntrack.open({ netns: ns.name });
    const filter: DumpFilter = { orig: { protocol: "udp", src: "10.0.2.0/24" }, mark: 0 };
    const plan = ct.planEvents({ filter });
    assert.deepStrictEqual(plan.kernel, ["family", "mark", "orig.src", "orig.protocol"]);
    assert(plan.instructions > 0);
    const off = ct.planEvents({ filter, kernelFilter: false });
    assert.equal(off.instructions, 0);
    assert.deepStrictEqual(off.kernel, []);
    const ac = new AbortController();
    const withKernel = collect(ct, filter, true, ac.signal);
    const without = collect(ct, filter, false, ac.signal);
    await new Promise((r) => setTimeout(r, 300));
    ct.createManySync(benchSpecs(2000));
    await ct.flush();
    await new Promise((r) => setTimeout(r, 1500));
    ac.abort();
    const [a, b] = await Promise.all([withKernel, without]);
    // 10.0.2.0/24: entries 512-767, of which the unmarked UDP/IPv4 ones.
    assert(a.length > 100, `events: ${a.length}`);
    assert(!a.includes("lost"));
    assert.deepStrictEqual(a, b);
  } finally {
    await ns.delete();
  }
});
