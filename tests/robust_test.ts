/**
 * Robustness against the real kernel: foreign senders, truncation, refused
 * permissions, leaks of descriptors and memory, concurrent handles, churn.
 */

import assert from "node:assert/strict";
import { Conntrack, type Flow, NetlinkError } from "../mod.ts";
import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import { Encoder, NLM_F_DUMP, NLM_F_REQUEST } from "../src/netlink.ts";
import * as C from "../src/constants.ts";
import { Netns, prepare, run } from "./_ns.ts";

const PROBE = new URL("./fixtures/probe.ts", import.meta.url).pathname;
const CHURN = new URL("./fixtures/churn.ts", import.meta.url).pathname;

function fdCount(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

function udp(i: number, src = "10.1.0.1") {
  return {
    orig: {
      src,
      dst: "10.2.0.1",
      protocol: "udp",
      srcPort: 1 + (i % 60000),
      dstPort: 53 + Math.floor(i / 60000),
    },
    timeout: 600,
  };
}

async function filled(tag: string, n: number): Promise<Netns> {
  return prepare(await Netns.create(tag), (ns) => {
    using ct = Conntrack.open({ netns: ns.name });
    assert.equal(ct.createManySync(Array.from({ length: n }, (_, i) => udp(i))), n);
  });
}

Deno.test("replies not sent by the kernel are ignored, even with the right sequence", async () => {
  const ns = await filled("foreign", 50);
  const fd = openFd(`/run/netns/${ns.name}`, "open network namespace");
  const intruder = NetlinkSocket.open({ netnsFd: fd });
  try {
    using ct = Conntrack.open({ netns: ns.name });
    const before = [...ct.dumpSync()].map((f) => f.id).sort();
    const seq = ct.seq + 1; // the next request's sequence number
    // A forged entry and a forged NLMSG_DONE, addressed to our port, queued
    // before the request is even sent.
    const enc = new Encoder();
    enc.begin((1 << 8) | C.IPCTNL_MSG_CT_NEW, 2, seq, C.AF_INET);
    enc.nest(C.CTA_TUPLE_ORIG).nest(C.CTA_TUPLE_IP)
      .bytes(C.CTA_IP_V4_SRC, new Uint8Array([6, 6, 6, 6]))
      .bytes(C.CTA_IP_V4_DST, new Uint8Array([6, 6, 6, 6])).end().end();
    const forged = enc.finish().slice();
    new DataView(forged.buffer).setUint32(12, ct.portId, true);
    const done = new Uint8Array(20);
    new DataView(done.buffer).setUint32(0, 20, true);
    new DataView(done.buffer).setUint16(4, 3, true);
    new DataView(done.buffer).setUint32(8, seq, true);
    new DataView(done.buffer).setUint32(12, ct.portId, true);
    sendTo(intruder, ct.portId, forged);
    sendTo(intruder, ct.portId, done);
    const after = [...ct.dumpSync()].map((f) => f.id).sort();
    assert.equal(ct.seq, seq);
    assert.deepStrictEqual(after, before);
  } finally {
    intruder.close();
    closeFd(fd);
    await ns.delete();
  }
});

/** Sends a datagram from one netlink socket to another process's port. */
function sendTo(sock: NetlinkSocket, port: number, bytes: Uint8Array<ArrayBuffer>): void {
  // The socket helper sends to the kernel (port 0); patch the address by
  // sending through a raw libc call with a sockaddr_nl naming `port`.
  const addr = new Uint8Array(12);
  new DataView(addr.buffer).setUint16(0, 16, true);
  new DataView(addr.buffer).setUint32(4, port, true);
  const n = Number(libcSendto(sock.fd, bytes, addr));
  assert.equal(n, bytes.length, "forged datagram sent");
}

import { libc } from "../ffi/libc.ts";
function libcSendto(fd: number, bytes: Uint8Array<ArrayBuffer>, addr: Uint8Array<ArrayBuffer>) {
  return libc().sendto(fd, bytes, BigInt(bytes.length), 0, addr, 12);
}

Deno.test("a datagram larger than the receive buffer is an EMSGSIZE error, not silent loss", async () => {
  const ns = await filled("trunc", 20);
  const fd = openFd(`/run/netns/${ns.name}`, "open network namespace");
  const sock = NetlinkSocket.open({ netnsFd: fd, recvTimeoutMs: 2000 }, 64);
  try {
    const req = new Encoder().begin(
      (1 << 8) | C.IPCTNL_MSG_CT_GET,
      NLM_F_REQUEST | NLM_F_DUMP,
      1,
      0,
    )
      .finish();
    sock.send(req, "dump");
    assert.throws(
      () => sock.recv("dump"),
      (e: unknown) =>
        e instanceof NetlinkError && e.code === "EMSGSIZE" && /truncated/.test(e.message),
    );
  } finally {
    sock.close();
    closeFd(fd);
    await ns.delete();
  }
});

Deno.test("without CAP_NET_ADMIN the error says what is needed; without --allow-ffi too", async () => {
  const ns = await Netns.create("perm");
  try {
    const noCap = await ns.run([
      "setpriv",
      "--bounding-set",
      "-net_admin",
      "--inh-caps",
      "-net_admin",
      Deno.execPath(),
      "run",
      "--allow-ffi",
      PROBE,
    ]);
    assert.match(noCap.stdout, /^NetlinkError EPERM .*CAP_NET_ADMIN/);
    const noFfi = await run([Deno.execPath(), "run", "--no-prompt", PROBE]);
    assert.match(noFfi.stdout, /^NotCapable - .*--allow-ffi/);
  } finally {
    await ns.delete();
  }
});

Deno.test("10,000 open/close cycles and 1,000 abandoned dumps leak no descriptors or memory", async () => {
  const ns = await filled("leak", 3000);
  try {
    const fds0 = fdCount();
    for (let i = 0; i < 10_000; i++) {
      const ct = Conntrack.open({ netns: ns.name });
      ct.close();
    }
    assert.equal(fdCount(), fds0, "open/close");
    using ct = Conntrack.open({ netns: ns.name });
    // The first receive-ahead worker makes Deno set up its worker machinery
    // (a few descriptors it keeps for the process): count from after that.
    assert.equal([...ct.dumpSync()].length, 3000);
    await new Promise((r) => setTimeout(r, 300));
    const fds1 = fdCount();
    for (let i = 0; i < 100; i++) for (const _ of ct.dumpSync()) break;
    assert.equal([...ct.dumpSync()].length, 3000, "the handle still dumps everything");
    // Dumps big enough for the receive-ahead worker, completed and abandoned
    // while the worker is receiving (it then drains and closes the socket).
    for (let i = 0; i < 20; i++) {
      assert.equal([...ct.dumpSync()].length, 3000);
      let n = 0;
      for (const _ of ct.dumpSync()) if (++n === 2500) break;
    }
    // (An abandoned dump's socket is replaced on the next call; a finished
    // worker's thread releases its descriptors asynchronously.)
    for (let i = 0; i < 50 && fdCount() > fds1; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert(fdCount() <= fds1, `abandoned dumps: ${fds1} -> ${fdCount()} descriptors`);
    // Memory, in a process of its own: two rounds of the same abandoned dumps (blocking and async,
    // early and while receiving ahead), garbage collected after each; the first lets the
    // allocator's arenas grow, the second must not grow past it (a leak would).
    const child = await run([
      Deno.execPath(),
      "run",
      "--allow-all",
      "--v8-flags=--expose-gc",
      new URL("./fixtures/abandon.ts", import.meta.url).pathname,
      ns.name,
    ]);
    assert.equal(child.code, 0, child.stderr);
    const { rss0, rss1, fds0: childFds0, fds1: childFds1 } = JSON.parse(child.stdout) as Record<
      string,
      number
    >;
    assert.equal(childFds1, childFds0, "abandoned dumps in the child: descriptors");
    const growth = (rss1! - rss0!) / 2 ** 20;
    console.log(
      `fds ${fds0} -> ${fdCount()}; the child's RSS ${(rss0! / 2 ** 20).toFixed(1)} -> ${
        (rss1! / 2 ** 20).toFixed(1)
      } MiB`,
    );
    assert(growth < 16, `RSS grew ${growth.toFixed(1)} MiB`);
  } finally {
    await ns.delete();
  }
});

Deno.test("a forgotten handle's socket is closed by the finaliser", async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc (deno task test does)");
  const fds0 = fdCount();
  (() => {
    for (let i = 0; i < 50; i++) Conntrack.open();
  })();
  assert.equal(fdCount(), fds0 + 50);
  for (let i = 0; i < 20 && fdCount() > fds0; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(fdCount(), fds0);
});

Deno.test("two handles dumping at once in one process both get complete results", async () => {
  const ns = await filled("two", 5000);
  try {
    using a = Conntrack.open({ netns: ns.name });
    using b = Conntrack.open({ netns: ns.name });
    const ia = a.dumpSync(), ib = b.dumpSync();
    const ga: Flow[] = [], gb: Flow[] = [];
    for (;;) {
      const ra = ia.next(), rb = ib.next();
      if (!ra.done) ga.push(ra.value);
      if (!rb.done) gb.push(rb.value);
      if (ra.done && rb.done) break;
    }
    assert.equal(ga.length, 5000);
    assert.deepStrictEqual(ga.map((f) => f.id).sort(), gb.map((f) => f.id).sort());
    // One handle, two interleaved dumps: the second runs on a spare socket, both complete.
    const first = a.dumpSync(), second = a.dumpSync();
    const g1: Flow[] = [], g2: Flow[] = [];
    for (;;) {
      const r1 = first.next(), r2 = second.next();
      if (!r1.done) g1.push(r1.value);
      if (!r2.done) g2.push(r2.value);
      if (r1.done && r2.done) break;
    }
    assert.deepStrictEqual(g1.map((f) => f.id).sort(), ga.map((f) => f.id).sort());
    assert.deepStrictEqual(g2.map((f) => f.id).sort(), ga.map((f) => f.id).sort());
  } finally {
    await ns.delete();
  }
});

Deno.test("a dump during churn completes and holds every entry that existed throughout", async () => {
  const ns = await filled("churn", 20_000);
  const churn = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-ffi", "--allow-read", CHURN, ns.name],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = churn.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("churn process ended");
      out += value;
    }
    using ct = Conntrack.open({ netns: ns.name });
    for (let round = 0; round < 5; round++) {
      const stable = new Set<number>();
      let churned = 0;
      for (const f of ct.dumpSync({}, { onInterrupted: "ignore" })) {
        assert(f.orig.src && f.reply.src && f.orig.protocol === 17, "well-formed");
        if (f.orig.src === "10.1.0.1") stable.add(f.orig.srcPort! + 65536 * f.orig.dstPort!);
        else churned++;
      }
      assert.equal(
        stable.size,
        20_000,
        `round ${round}: every stable entry (churned seen: ${churned})`,
      );
    }
  } finally {
    churn.kill("SIGKILL");
    await churn.status;
    await ns.delete();
  }
});

Deno.test("repeated dumps of a 50,000-entry table keep memory flat", async () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc (deno task test does)");
  const ns = await filled("rss", 50_000);
  try {
    using ct = Conntrack.open({ netns: ns.name });
    const heap: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < 12; i++) {
      let n = 0;
      for (const _ of ct.dumpSync()) n++;
      assert.equal(n, 50_000);
      gc();
      heap.push(Deno.memoryUsage().heapUsed / 2 ** 20);
      rss.push(Deno.memoryUsage().rss / 2 ** 20);
    }
    console.log(
      `after each dump, heap ${heap.map((s) => s.toFixed(1)).join(" ")} MiB; ` +
        `RSS ${rss.map((s) => s.toFixed(0)).join(" ")} MiB`,
    );
    // Nothing accumulates: the live heap after the last dumps is what it was
    // after the first ones.
    assert(
      heap[11]! - heap[1]! < 2,
      `heap trend ${heap[1]!.toFixed(1)} -> ${heap[11]!.toFixed(1)} MiB`,
    );
  } finally {
    await ns.delete();
  }
});

Deno.test("a big dump received ahead by a worker yields exactly what one on this thread does", async () => {
  const ns = await filled("prefetch", 20_000);
  try {
    using ct = Conntrack.open({ netns: ns.name });
    const here = [...ct.dumpSync({}, { prefetch: false })];
    const ahead = [...ct.dumpSync()];
    assert.equal(ahead.length, 20_000);
    const key = (f: Flow) => f.id!;
    here.sort((a, b) => key(a) - key(b));
    ahead.sort((a, b) => key(a) - key(b));
    assert.deepStrictEqual(
      ahead.map((f) => ({ ...f, timeout: 0 })),
      here.map((f) => ({ ...f, timeout: 0 })),
    );
    // Filters still apply, and a consumer that stops early leaves the handle usable.
    assert.equal([...ct.dumpSync({ orig: { srcPort: 7 } })].length, 1);
    let n = 0;
    for (const _ of ct.dumpSync()) if (++n === 5000) break;
    assert.equal([...ct.dumpSync()].length, 20_000);
  } finally {
    await ns.delete();
  }
});
