/**
 * The operations of a Conntrack handle against a fake kernel that replays
 * datagrams captured from the real one (tests/fixtures/*.bin, recorded by
 * `deno task capture`): requests as the kernel receives them, replies
 * decoded, errors, sequence and sender checks, DUMP_INTR, abandoned dumps,
 * batches, events. Needs no root and no kernel.
 *
 * @module
 */

import assert from "node:assert/strict";
import { openWithSockets } from "../../src/conntrack.ts";
import * as C from "../../src/constants.ts";
import { decodeFlow } from "../../src/decode.ts";
import { ClosedError, DumpInterruptedError, NetlinkError } from "../../src/errors.ts";
import { formatCpuStats } from "../../src/stats.ts";
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST } from "../../src/netlink.ts";
import type { Flow } from "../../src/types.ts";
import {
  ack,
  type Datagram,
  done,
  eachMessage,
  FakeKernel,
  type FakeRequest,
  fixture,
  readdress,
  replay,
} from "../_fake_kernel.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);
const CT = C.NFNL_SUBSYS_CTNETLINK << 8;
const RELEASE = { kernelRelease: "6.18.0" };

/** The flows of the captured dump, decoded straight from the fixture. */
function capturedFlows(): Flow[] {
  const flows: Flow[] = [];
  for (const d of fixture("dump.bin")) {
    eachMessage(d, (at, view) => {
      const len = view.getUint32(at, true);
      if (view.getUint16(at + 4, true) === (CT | C.IPCTNL_MSG_CT_NEW)) {
        flows.push(decodeFlow(d.subarray(at, at + len)));
      }
    });
  }
  return flows;
}

/** A fake kernel that answers dumps with the capture `dump.bin` and ACKs the rest. */
function dumpingKernel(extra: (request: FakeRequest) => Datagram[] = () => []): FakeKernel {
  return new FakeKernel((request) => {
    if (request.type === (CT | C.IPCTNL_MSG_CT_GET) && request.flags & NLM_F_DUMP) {
      return [...extra(request), ...replay("dump.bin", request)];
    }
    return [ack(request)];
  });
}

Deno.test("dump: the request is a CT_GET dump; the replayed capture decodes to its flows", () => {
  const kernel = dumpingKernel();
  using ct = openWithSockets(kernel.open, RELEASE);
  const flows = [...ct.dumpSync()];
  const expected = capturedFlows();
  assert.ok(expected.length >= 10, "the capture holds a real dump");
  assert.deepStrictEqual(flows, expected);
  const [request] = kernel.requests;
  assert.equal(request!.type, CT | C.IPCTNL_MSG_CT_GET);
  assert.equal(request!.flags, NLM_F_REQUEST | NLM_F_DUMP);
  assert.equal(request!.family, C.AF_UNSPEC);
  assert.equal(request!.seq, ct.seq);
});

Deno.test("dump: kernel filter parts go in the request, the rest is applied to the replies", () => {
  const kernel = dumpingKernel();
  using ct = openWithSockets(kernel.open, RELEASE);
  const filter = { family: "ipv4", mark: 42, orig: { protocol: "tcp", dstPort: 7200 } } as const;
  assert.deepStrictEqual(ct.planDump(filter).kernel, [
    "family",
    "mark",
    "orig.protocol",
    "orig.dstPort",
  ]);
  for (const _ of ct.dumpSync(filter)) { /* the request is what is tested here */ }
  const request = kernel.requests[0]!;
  assert.equal(request.family, C.AF_INET);
  // CTA_MARK 42 and CTA_MARK_MASK 0xffffffff, big-endian, in the request.
  const hex = Array.from(request.bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  assert.ok(hex.includes("08000800" + "0000002a"), "CTA_MARK");
  assert.ok(hex.includes("08001500" + "ffffffff"), "CTA_MARK_MASK");
  // The fake kernel filters nothing: with every part in userspace, the replies are filtered here.
  const flows = [...ct.dumpSync(filter, { userspaceFilter: true })];
  const expected = capturedFlows().filter((f) =>
    f.family === "ipv4" && f.mark === 42 && f.orig.protocol === 6 && f.orig.dstPort === 7200
  );
  assert.ok(expected.length > 0);
  assert.deepStrictEqual(flows, expected);
  assert.equal(kernel.requests[1]!.family, C.AF_INET, "the family is always the kernel's");
});

Deno.test("dump: replies with another sequence number or from another sender are skipped", () => {
  const kernel = dumpingKernel((request) => [
    // The same datagrams once more, answering another request…
    ...fixture("dump.bin").map((d) => ({ bytes: readdress(d, request.seq + 1, 4000) })),
    // …and forged by a process (sender port 77) with the right sequence and port.
    ...replay("dump.bin", request).map((d) => ({ ...d, sender: 77 })),
  ]);
  using ct = openWithSockets(kernel.open, RELEASE);
  assert.deepStrictEqual([...ct.dumpSync()], capturedFlows());
});

Deno.test("dump: NLM_F_DUMP_INTR is a DumpInterruptedError after the last flow, or ignored", () => {
  const kernel = new FakeKernel((request) => {
    const datagrams = replay("dump.bin", request);
    eachMessage(datagrams[0]!.bytes, (at, view) => {
      view.setUint16(at + 6, view.getUint16(at + 6, true) | NLM_F_DUMP_INTR, true);
    });
    return datagrams;
  });
  using ct = openWithSockets(kernel.open, RELEASE);
  const seen: Flow[] = [];
  assert.throws(() => {
    for (const flow of ct.dumpSync()) seen.push(flow);
  }, DumpInterruptedError);
  assert.equal(seen.length, capturedFlows().length);
  assert.equal([...ct.dumpSync(undefined, { onInterrupted: "ignore" })].length, seen.length);
});

Deno.test("dump: abandoned midway, the socket is dropped and the next call opens another", () => {
  const kernel = dumpingKernel();
  using ct = openWithSockets(kernel.open, RELEASE);
  for (const _ of ct.dumpSync()) break;
  assert.equal(kernel.sockets.length, 1);
  assert.ok(kernel.sockets[0]!.closed, "the abandoned dump's socket is closed");
  assert.equal([...ct.dumpSync()].length, capturedFlows().length);
  assert.equal(kernel.sockets.length, 2);
  assert.ok(!kernel.sockets[1]!.closed);
});

Deno.test("dump: operations inside a dump loop run on a second socket of the handle", async () => {
  const kernel = dumpingKernel();
  const answerDump = kernel.answer;
  kernel.answer = (request) =>
    request.type === (CT | C.IPCTNL_MSG_CT_GET_STATS)
      ? replay("count.bin", request)
      : answerDump(request);
  using ct = openWithSockets(kernel.open, RELEASE);
  const count = Number(Deno.readTextFileSync(new URL("count.conntrack.txt", FIXTURES)).trim());
  let n = 0;
  for await (const flow of ct.dump()) {
    if (n++ === 0) {
      assert.equal(await ct.count(), count);
      assert.equal(ct.countSync(), count);
      await ct.delete(flow);
    }
  }
  assert.equal(n, capturedFlows().length);
  assert.equal(kernel.sockets.length, 2, "one spare socket, reused");
  const [, second] = kernel.sockets;
  assert.ok(
    kernel.requests.filter((r) => r.type !== (CT | C.IPCTNL_MSG_CT_GET)).every((r) =>
      r.socket === second
    ),
  );
  // A dump left unfinished without return() keeps only its own socket busy.
  const dropped = ct.dumpSync();
  dropped.next();
  assert.equal(ct.countSync(), count);
});

Deno.test("dump: the kernel's error (captured EINVAL) is a NetlinkError of the dump", () => {
  const kernel = new FakeKernel((request) => replay("einval.bin", request));
  using ct = openWithSockets(kernel.open, RELEASE);
  assert.throws(() => [...ct.dumpSync()], (e) => {
    assert.ok(e instanceof NetlinkError);
    assert.equal(e.code, "EINVAL");
    assert.equal(e.operation, "dump");
    assert.equal(e.seq, kernel.requests[0]!.seq);
    return true;
  });
});

Deno.test("get: a captured ENOENT is a NetlinkError; the request names the tuple", async () => {
  const kernel = new FakeKernel((request) => replay("enoent.bin", request));
  using ct = openWithSockets(kernel.open, RELEASE);
  const tuple = { src: "10.0.0.1", dst: "10.0.0.2", protocol: "udp", srcPort: 5000, dstPort: 53 };
  await assert.rejects(ct.get(tuple, { zone: 7, direction: "reply" }), (e) => {
    assert.ok(e instanceof NetlinkError);
    assert.equal(e.code, "ENOENT");
    assert.equal(e.operation, "get");
    return true;
  });
  const request = kernel.requests[0]!;
  assert.equal(request.type, CT | C.IPCTNL_MSG_CT_GET);
  assert.equal(request.flags, NLM_F_REQUEST | NLM_F_ACK);
  // The request parses as an entry: its reply tuple and zone are what was asked for.
  const asked = decodeFlowLoose(request.bytes);
  assert.deepStrictEqual(
    [asked.reply.src, asked.reply.dst, asked.reply.srcPort, asked.reply.dstPort, asked.zone],
    ["10.0.0.1", "10.0.0.2", 5000, 53, 7],
  );
});

/** Decodes a request that names an entry (it may have only one tuple) as a flow. */
function decodeFlowLoose(bytes: Uint8Array): Flow {
  // The decoder wants CTA_TUPLE_ORIG; a request by reply tuple has only
  // CTA_TUPLE_REPLY, so it is decoded under the original's number.
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  let sawOrig = false;
  for (let at = 20; at + 4 <= copy.length;) {
    const len = view.getUint16(at, true);
    if ((view.getUint16(at + 2, true) & 0x3fff) === C.CTA_TUPLE_ORIG) sawOrig = true;
    at += (len + 3) & ~3;
  }
  if (sawOrig) return decodeFlow(copy);
  const flow = decodeFlow(swapTuples(copy));
  return { ...flow, reply: flow.orig, orig: flow.reply };
}

/** Swaps CTA_TUPLE_ORIG and CTA_TUPLE_REPLY in a message (in place). */
function swapTuples(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 20; at + 4 <= bytes.length;) {
    const len = view.getUint16(at, true);
    const type = view.getUint16(at + 2, true);
    const n = type & 0x3fff;
    if (n === C.CTA_TUPLE_ORIG || n === C.CTA_TUPLE_REPLY) {
      view.setUint16(at + 2, (type & ~0x3fff) | (n === C.CTA_TUPLE_ORIG ? 2 : 1), true);
    }
    at += (len + 3) & ~3;
  }
  return bytes;
}

Deno.test("count and stats: captured replies give what conntrack -C and -S printed", () => {
  const kernel = new FakeKernel((request) =>
    replay(request.type === (CT | C.IPCTNL_MSG_CT_GET_STATS) ? "count.bin" : "stats.bin", request)
  );
  using ct = openWithSockets(kernel.open, RELEASE);
  const count = Number(Deno.readTextFileSync(new URL("count.conntrack.txt", FIXTURES)).trim());
  assert.equal(ct.countSync(), count);
  const lines = Deno.readTextFileSync(new URL("stats.conntrack.txt", FIXTURES)).split("\n")
    .filter((line) => line !== "");
  assert.deepStrictEqual(ct.statsSync().map(formatCpuStats), lines);
  assert.equal(kernel.requests[1]!.flags, NLM_F_REQUEST | NLM_F_DUMP);
});

Deno.test("create, update, delete, flush: the requests carry what was asked; ACKs resolve", async () => {
  const kernel = new FakeKernel();
  using ct = openWithSockets(kernel.open, RELEASE);
  const tuple = { src: "fd00::1", dst: "fd00::2", protocol: "tcp", srcPort: 4000, dstPort: 80 };
  await ct.create({
    orig: tuple,
    timeout: 120,
    tcpState: "ESTABLISHED",
    status: ["ASSURED"],
    mark: 7,
    zone: 3,
  });
  await ct.update(tuple, { mark: 9, timeout: 60 }, { zone: 3 });
  await ct.delete(tuple, { zone: 3, id: 1234 });
  await ct.flush({ family: "ipv6" });
  const [create, update, del, flush] = kernel.requests.map((r) => r);
  const made = decodeFlow(create!.bytes);
  assert.equal(create!.flags & 0x600, 0x600, "NLM_F_CREATE | NLM_F_EXCL");
  assert.deepStrictEqual(
    [made.orig.src, made.reply.src, made.reply.srcPort, made.timeout, made.mark, made.zone],
    ["fd00::1", "fd00::2", 80, 120, 7, 3],
  );
  assert.equal(made.tcp?.stateName, "ESTABLISHED");
  // The kernel refuses (EBUSY) a status that would clear CONFIRMED on a new entry.
  assert.equal(made.status, C.CT_STATUS.ASSURED | C.CT_STATUS.CONFIRMED);
  const changed = decodeFlow(update!.bytes);
  assert.deepStrictEqual([update!.type, changed.mark, changed.timeout, changed.zone], [
    CT | C.IPCTNL_MSG_CT_NEW,
    9,
    60,
    3,
  ]);
  const deleted = decodeFlow(del!.bytes);
  assert.deepStrictEqual([del!.type, deleted.id, deleted.zone, deleted.orig.dstPort], [
    CT | C.IPCTNL_MSG_CT_DELETE,
    1234,
    3,
    80,
  ]);
  // Flushing one family needs nfgenmsg version 1 (version 0 flushes everything).
  assert.deepStrictEqual([flush!.type, flush!.family, flush!.version], [
    CT | C.IPCTNL_MSG_CT_DELETE,
    C.AF_INET6,
    1,
  ]);
});

Deno.test("createMany: batches in one send each; the first failure names its entry", async () => {
  const kernel = new FakeKernel((request) => [ack(request, request.seq % 10 === 3 ? 17 : 0)]);
  using ct = openWithSockets(kernel.open, RELEASE);
  const specs = Array.from({ length: 10 }, (_, i) => ({
    orig: { src: "10.1.0.1", dst: "10.2.0.1", protocol: "udp", srcPort: 1024 + i, dstPort: 53 },
    timeout: 600,
  }));
  const first = ct.seq + 1;
  const failing = specs.findIndex((_, i) => (first + i) % 10 === 3);
  await assert.rejects(ct.createMany(specs, { batchSize: 4 }), (e) => {
    assert.ok(e instanceof NetlinkError);
    assert.equal(e.code, "EEXIST");
    assert.equal(e.extAck, `entry #${failing}`);
    return true;
  });
  // The batch with the failure went out whole; later batches did not.
  const batches = Math.floor(failing / 4) + 1;
  assert.equal(kernel.sends.length, batches);
  assert.equal(kernel.requests.length, Math.min(10, batches * 4));
  assert.equal(kernel.sockets[0]!.receiveBuffer, 4 << 20, "room for a batch's ACKs");
  kernel.answer = (request) => [ack(request)];
  assert.equal(ct.createManySync(specs, { batchSize: 4 }), 10);
});

Deno.test("deleteWhere: deletes what the dump selects on a second socket; ENOENT is skipped", async () => {
  let deletes = 0;
  const kernel = dumpingKernel();
  const answerDump = kernel.answer;
  kernel.answer = (request) => {
    if (request.type !== (CT | C.IPCTNL_MSG_CT_DELETE)) return answerDump(request);
    return [ack(request, ++deletes === 2 ? 2 : 0)]; // the second one vanished meanwhile
  };
  using ct = openWithSockets(kernel.open, RELEASE);
  const selected = capturedFlows().filter((f) => f.orig.protocol === 6);
  assert.ok(selected.length >= 2);
  const seen: Flow[] = [];
  const n = await ct.deleteWhere({ orig: { protocol: "tcp" } }, { onDelete: (f) => seen.push(f) });
  assert.equal(n, selected.length - 1);
  assert.deepStrictEqual(seen, selected.filter((_, i) => i !== 1));
  const sent = kernel.requests.filter((r) => r.type === (CT | C.IPCTNL_MSG_CT_DELETE));
  assert.ok(sent.every((r) => r.socket === kernel.sockets[1]), "deletes go on the second socket");
  assert.deepStrictEqual(sent.map((r) => decodeFlow(r.bytes).id), selected.map((f) => f.id));
  assert.ok(kernel.sockets[1]!.closed, "the second socket is closed afterwards");
});

Deno.test("events: multicast messages become events; an overrun is reported after the backlog", async () => {
  const kernel = new FakeKernel();
  using ct = openWithSockets(kernel.open, RELEASE);
  const stream = ct.events({ types: ["new", "destroy"] });
  const first = stream.next(); // subscribes
  await new Promise((resolve) => setTimeout(resolve, 5));
  const events = kernel.sockets.find((s) => s.kind === "events")!;
  assert.deepStrictEqual(events.groups, [1, 3]);
  // The captured dump's first datagram, as NEW events (NLM_F_CREATE) and as DESTROY events.
  const asNew = fixture("dump.bin")[0]!.slice();
  const asDestroy = asNew.slice();
  let n = 0;
  eachMessage(asNew, (at, view) => {
    if (view.getUint16(at + 4, true) !== (CT | C.IPCTNL_MSG_CT_NEW)) return;
    view.setUint16(at + 6, 0x400, true);
    n++;
  });
  eachMessage(asDestroy, (at, view) => {
    if (view.getUint16(at + 4, true) === (CT | C.IPCTNL_MSG_CT_NEW)) {
      view.setUint16(at + 4, CT | C.IPCTNL_MSG_CT_DELETE, true);
    }
  });
  kernel.multicast(1, [asNew]);
  events.overrun = true;
  kernel.multicast(3, [asDestroy]);
  const got = [(await first).value!];
  for (let i = 1; i < 2 * n + 1; i++) got.push((await stream.next()).value!);
  assert.deepStrictEqual(got.slice(0, n).map((e) => e.type), Array(n).fill("new"));
  assert.deepStrictEqual(got.slice(n, 2 * n).map((e) => e.type), Array(n).fill("destroy"));
  assert.deepStrictEqual(got[2 * n], { type: "lost", lost: 1 });
  const flows = capturedFlows().slice(0, n);
  assert.deepStrictEqual(got.slice(0, n).map((e) => e.type !== "lost" && e.flow), flows);
  ct.close();
  assert.equal((await stream.next()).done, true, "closing the handle ends the stream");
  assert.ok(events.closed);
});

Deno.test("a closed handle says so", () => {
  const kernel = new FakeKernel((request) => [done(request)]);
  const ct = openWithSockets(kernel.open, RELEASE);
  assert.deepStrictEqual([...ct.dumpSync()], []);
  ct.close();
  ct.close();
  assert.ok(kernel.sockets[0]!.closed);
  assert.throws(() => ct.countSync(), /Cannot count: the Conntrack handle is closed/);
});

Deno.test("dump(): waits for late datagrams without blocking, and lets timers run", async () => {
  // The kernel's answer comes in pieces: the first datagram at once, the
  // rest 20 ms later, while a timer ticks.
  let later: (() => void) | undefined;
  const kernel = new FakeKernel((request) => {
    const [first, ...rest] = replay("dump.bin", request);
    later = () => request.socket.deliver(...rest);
    return [first!];
  });
  using ct = openWithSockets(kernel.open, RELEASE);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  setTimeout(() => later!(), 20);
  try {
    const flows = [];
    for await (const flow of ct.dump()) flows.push(flow);
    assert.deepStrictEqual(flows, capturedFlows());
  } finally {
    clearInterval(timer);
  }
  assert.ok(ticks >= 5, `the timer ran while the dump waited (${ticks} ticks)`);
  assert.ok(kernel.sockets[0]!.waits >= 1, "it waited for readiness");
});

Deno.test("dump(): a long dump gives the event loop a turn every few milliseconds", async () => {
  // 400 copies of the captured dump's datagrams: a dump long enough to decode for a while.
  const kernel = new FakeKernel((request) => {
    const datagrams = replay("dump.bin", request);
    const body = datagrams.slice(0, -1), end = datagrams.at(-1)!;
    return [...Array.from({ length: 400 }, () => body).flat(), end];
  });
  using ct = openWithSockets(kernel.open, RELEASE);
  let longest = 0, last = performance.now(), n = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const started = performance.now();
  try {
    for await (const _ of ct.dump()) n++;
  } finally {
    clearInterval(timer);
  }
  const took = performance.now() - started;
  assert.ok(n > 0);
  assert.equal(n % capturedFlows().length, 0);
  // Report rather than time: the gap is bounded by the slice, not by the dump's length.
  console.log(
    `${n} flows in ${took.toFixed(0)} ms; the timer's longest gap ${longest.toFixed(1)} ms`,
  );
  if (took > 50) assert.ok(longest < took / 2, "the timer ran during the dump");
});

Deno.test("a Flow goes back in: get, update and delete use its tuple and zone", () => {
  const kernel = new FakeKernel((request) =>
    request.type === (CT | C.IPCTNL_MSG_CT_GET) ? replay("enoent.bin", request) : [ack(request)]
  );
  using ct = openWithSockets(kernel.open, RELEASE);
  const zoned = capturedFlows().find((f) => (f.zone ?? f.orig.zone) !== undefined);
  assert.ok(zoned, "the capture has a zoned flow");
  const zone = zoned.zone ?? zoned.orig.zone;
  ct.deleteSync(zoned);
  ct.updateSync(zoned, { mark: 1 });
  ct.updateSync(zoned.orig, { mark: 2 }, { zone }); // a dumped Tuple is a TupleSpec
  assert.throws(() => ct.getSync(zoned), (e) => {
    assert.ok(e instanceof NetlinkError && e.code === "ENOENT");
    assert.match(e.message, /^Cannot get \w+ \S+ -> \S+ zone \d+: no such entry \(ENOENT\)/);
    return true;
  });
  const [del, upd, upd2, get] = kernel.requests.map((r) => decodeFlow(r.bytes));
  assert.deepStrictEqual([del!.zone, del!.id, del!.orig.src], [zone, zoned.id, zoned.orig.src]);
  assert.deepStrictEqual([upd!.zone, upd!.mark, upd!.id], [zone, 1, undefined]);
  assert.deepStrictEqual([upd2!.zone, upd2!.mark], [zone, 2]);
  assert.equal(get!.zone, zone);
});

Deno.test("closing the handle mid-dump ends the dump with a ClosedError, not EBADF", async () => {
  const kernel = dumpingKernel();
  const ct = openWithSockets(kernel.open, RELEASE);
  assert.throws(
    () => {
      for (const _ of ct.dumpSync()) ct.close();
    },
    (e) =>
      e instanceof ClosedError &&
      e.message === "Cannot dump: the Conntrack handle was closed during the dump",
  );
  // dump(): closed while it waits for the rest of the reply.
  const lazy = new FakeKernel((request) => {
    const [first, ...rest] = replay("dump.bin", request);
    setTimeout(() => request.socket.deliver(...rest), 20);
    return [first!];
  });
  const again = openWithSockets(lazy.open, RELEASE);
  await assert.rejects(async () => {
    for await (const _ of again.dump()) again.close();
  }, (e) => e instanceof ClosedError && /closed during the dump/.test(e.message));
  assert.throws(() => again.countSync(), (e) => e instanceof ClosedError);
});
