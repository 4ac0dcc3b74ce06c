/**
 * The expectation table and the dying list without a kernel: datagrams
 * captured from the real one (tests/fixtures/expect_*.bin, dying.bin,
 * recorded by `deno run -A tests/capture_fixtures.ts expect`) decoded and
 * printed beside what conntrack-tools printed at the same moment; the
 * operations of `ct.expectations` against the fake kernel; malformed bytes;
 * the CLI's refusals.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  DecodeError,
  decodeExpectation,
  type Expectation,
  formatExpectation,
  formatExpectStats,
  formatFlow,
  NetlinkError,
} from "../../mod.ts";
import { main } from "../../cli/main.ts";
import { EXPECT_COMMANDS } from "../../cli/expect/commands.ts";
import { OPTIONS } from "../../cli/options.ts";
import {
  EXPECT_XML_FOOTER,
  EXPECT_XML_HEADER,
  formatExpectationXml,
} from "../../cli/expect/xml.ts";
import { openWithSockets } from "../../src/conntrack.ts";
import * as C from "../../src/constants.ts";
import { decodeFlow } from "../../src/decode.ts";
import { decodeExpectStatsAt } from "../../src/expect_decode.ts";
import { AttrCursor, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, readHeader } from "../../src/netlink.ts";
import { newHeader } from "../../src/netlink.ts";
import { ack, eachMessage, FakeKernel, fixture, replay } from "../_fake_kernel.ts";
import { masked } from "../_expect_text.ts";

const EXP = C.NFNL_SUBSYS_CTNETLINK_EXP << 8;
const CT = C.NFNL_SUBSYS_CTNETLINK << 8;
const FIXTURES = new URL("../fixtures/", import.meta.url);
const text = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES));

/** Every message of type `type` in the capture `name`, as its own bytes. */
function messages(name: string, ...types: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const d of fixture(name)) {
    eachMessage(d, (at, view) => {
      if (types.includes(view.getUint16(at + 4, true))) {
        out.push(d.subarray(at, at + view.getUint32(at, true)));
      }
    });
  }
  return out;
}

Deno.test("captured expectations decode to what conntrack -L expect printed", () => {
  const exps = messages("expect_dump.bin", EXP | C.IPCTNL_MSG_EXP_NEW).map((m) =>
    decodeExpectation(m)
  );
  assert.equal(
    exps.length,
    8,
    "ftp PASV/PORT/EPSV/EPRT, PASV and tftp through DNAT, tftp over IPv4 and IPv6",
  );
  assert.deepEqual(
    masked(exps.map((e) => formatExpectation(e))),
    masked(text("expect_dump.conntrack.txt")),
  );
  // -o xml: each family's listing between the header and </expect>.
  const xml = (["ipv4", "ipv6"] as const).flatMap((f) => [
    EXPECT_XML_HEADER,
    ...exps.filter((e) => e.family === f).map((e) => formatExpectationXml(e)),
    EXPECT_XML_FOOTER,
  ]).join("\n");
  assert.deepEqual(masked(xml), masked(text("expect_dump.xml.conntrack.txt")));
  const nat = exps.filter((e) => e.nat !== undefined);
  assert.deepEqual(nat.map((e) => `${e.helper} ${e.nat!.direction} ${e.fn}`).sort(), [
    "ftp original nat-follow-master",
    "tftp reply nat-follow-master",
  ]);
  for (const e of exps) {
    assert.deepEqual(Object.keys(e), Object.keys(exps[0]!), "one shape");
    assert.equal(e.class, 0);
    assert.deepEqual(e.flagNames, []);
  }
});

Deno.test("captured expectation stats, events and dying list print as conntrack did", () => {
  const c = new AttrCursor();
  const stats = fixture("expect_stats.bin").flatMap((d) => {
    const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
    const h = newHeader();
    const out: string[] = [];
    for (let at = 0; at < d.length;) {
      at = readHeader(view, at, d.length, h);
      if (h.type === (CT | C.IPCTNL_MSG_EXP_GET_STATS_CPU)) {
        out.push(formatExpectStats(decodeExpectStatsAt(c, d, view, h)));
      }
    }
    return out;
  });
  assert.equal(stats.join("\n") + "\n", text("expect_stats.conntrack.txt"));

  const events = messages(
    "expect_events.bin",
    EXP | C.IPCTNL_MSG_EXP_NEW,
    EXP | C.IPCTNL_MSG_EXP_DELETE,
  )
    .map((m) => {
      const type = new DataView(m.buffer, m.byteOffset).getUint16(4, true);
      const eventType = type === (EXP | C.IPCTNL_MSG_EXP_NEW) ? "[NEW]" : "[DESTROY]";
      return formatExpectation(decodeExpectation(m), { eventType });
    });
  assert(events.length >= 8, `events: ${events.length}`);
  const theirs = text("expect_events.conntrack.txt").trimEnd().split("\n");
  assert.deepEqual(
    masked(events, true),
    masked(theirs, true),
    "the same events, in the same order",
  );

  const dying = messages("dying.bin", CT | C.IPCTNL_MSG_CT_NEW).map((m) =>
    formatFlow(decodeFlow(m))
  );
  assert(dying.length >= 5, `dying: ${dying.length}`);
  assert.deepEqual(masked(dying), masked(text("dying.conntrack.txt")));
});

Deno.test("malformed expectations are DecodeErrors naming the attribute; unknown ones are kept", () => {
  const [good] = messages("expect_dump.bin", EXP | C.IPCTNL_MSG_EXP_NEW);
  // CTA_EXPECT_TUPLE is the first attribute: cut its IP nest short.
  const bad = good!.slice();
  const v = new DataView(bad.buffer);
  v.setUint16(20 + 4, 7, true); // CTA_TUPLE_IP's nla_len: 7 bytes, shorter than its address
  assert.throws(() => decodeExpectation(bad), (e: unknown) => {
    assert(e instanceof DecodeError);
    assert.match(e.path, /^CTA_EXPECT_TUPLE\.CTA_TUPLE_IP/);
    return true;
  });
  // A message of only the headers: no CTA_EXPECT_TUPLE.
  const empty = good!.slice(0, 20);
  new DataView(empty.buffer).setUint32(0, 20, true);
  assert.throws(() => decodeExpectation(empty), /without CTA_EXPECT_TUPLE/);
  // An attribute from a newer kernel: skipped, or kept raw with keepUnknown.
  const grown = new Uint8Array(good!.length + 8);
  grown.set(good!);
  const g = new DataView(grown.buffer);
  g.setUint32(0, grown.length, true);
  g.setUint16(good!.length, 8, true);
  g.setUint16(good!.length + 2, 31, true);
  g.setUint32(good!.length + 4, 0xdeadbeef);
  const plain = decodeExpectation(grown);
  assert.equal(plain.unknown, undefined);
  assert.equal(formatExpectation(plain), formatExpectation(decodeExpectation(good!)));
  const kept = decodeExpectation(grown, { keepUnknown: true });
  assert.deepEqual(kept.unknown, [{ type: 31, data: new Uint8Array([0xde, 0xad, 0xbe, 0xef]) }]);
  // A wrong scalar size: CTA_EXPECT_TIMEOUT of 2 bytes.
  const e = new Uint8Array(28);
  const ev = new DataView(e.buffer);
  ev.setUint32(0, 28, true);
  e[16] = C.AF_INET;
  ev.setUint16(20, 6, true);
  ev.setUint16(22, C.CTA_EXPECT_TIMEOUT, true);
  assert.throws(() => decodeExpectation(e), /CTA_EXPECT_TIMEOUT.*length 2 is too short, want 4/);
});

/** A fake kernel answering expectation dumps with the capture, stats with theirs, the rest with ACKs. */
function expectKernel(): FakeKernel {
  return new FakeKernel((request) => {
    if (request.type === (EXP | C.IPCTNL_MSG_EXP_GET) && request.flags & NLM_F_DUMP) {
      return replay("expect_dump.bin", request);
    }
    if (request.type === (EXP | C.IPCTNL_MSG_EXP_GET_STATS_CPU)) {
      return replay("expect_stats.bin", request);
    }
    if (request.type === (EXP | C.IPCTNL_MSG_EXP_GET)) return replay("expect_enoent.bin", request);
    if (request.type === (CT | C.IPCTNL_MSG_CT_GET_DYING)) return replay("dying.bin", request);
    return [ack(request)];
  });
}

Deno.test("ct.expectations against the fake kernel: requests as the kernel reads them, replies decoded", async () => {
  const kernel = expectKernel();
  using ct = openWithSockets(kernel.open, { kernelRelease: "6.18.0" });
  const all = [...ct.expectations.dumpSync()];
  assert.equal(all.length, 8);
  assert.deepEqual(await Array.fromAsync(ct.expectations.dump()), all);
  assert.equal(kernel.requests[0]!.flags, NLM_F_REQUEST | NLM_F_DUMP);
  assert.equal(kernel.requests[0]!.family, C.AF_UNSPEC);
  assert.equal(await ct.expectations.count({ helper: "tftp" }), 3);

  const stats = await ct.expectations.stats();
  assert.deepEqual(stats, ct.expectations.statsSync());
  assert.equal(stats.map(formatExpectStats).join("\n") + "\n", text("expect_stats.conntrack.txt"));

  // get: CTA_EXPECT_TUPLE of the expected tuple; the kernel's ENOENT names it.
  const e: Expectation = all[0]!;
  await assert.rejects(ct.expectations.get(e), (err: unknown) => {
    assert(err instanceof NetlinkError);
    assert.equal(err.code, "ENOENT");
    assert.match(err.message, /expectation src=/);
    return true;
  });
  const get = kernel.requests.at(-1)!;
  assert.equal(get.flags, NLM_F_REQUEST | NLM_F_ACK);
  assert.equal(get.family, e.family === "ipv4" ? C.AF_INET : C.AF_INET6);

  // create, delete, flush: ACKed requests of the expectation subsystem.
  const before = kernel.requests.length;
  await ct.expectations.create({
    master: e.master,
    tuple: e.tuple,
    mask: { srcPort: 0 },
    timeout: 30,
  });
  ct.expectations.deleteSync(e);
  await ct.expectations.flush({ helper: "ftp" });
  const [create, del, flush] = kernel.requests.slice(before);
  assert.equal(create!.type, EXP | C.IPCTNL_MSG_EXP_NEW);
  assert.equal(create!.flags & 0x600, 0x600, "NLM_F_CREATE | NLM_F_EXCL");
  assert.equal(del!.type, EXP | C.IPCTNL_MSG_EXP_DELETE);
  assert.equal(flush!.type, EXP | C.IPCTNL_MSG_EXP_DELETE);
  assert(
    new TextDecoder().decode(flush!.bytes.subarray(20)).includes("ftp\0"),
    "CTA_EXPECT_HELP_NAME",
  );
  assert.equal(del!.family, e.family === "ipv4" ? C.AF_INET : C.AF_INET6);

  // Bad arguments are refused before anything is sent.
  const sent = kernel.requests.length;
  assert.throws(
    () =>
      ct.expectations.createSync({
        master: e.master,
        tuple: { ...e.tuple, src: e.family === "ipv4" ? "fd00::1" : "10.0.0.1" } as never,
      }),
    TypeError,
  );
  assert.throws(
    () =>
      ct.expectations.createSync({ master: e.master, tuple: e.tuple, flags: ["BOGUS" as never] }),
    TypeError,
  );
  assert.throws(() => ct.expectations.dumpSync({ family: "ipx" as never }), TypeError);
  assert.equal(kernel.requests.length, sent);

  // The dying list: a CT_GET_DYING dump, filtered in ctnl.
  const dying = [...ct.dumpListSync("dying")];
  assert(dying.length >= 5);
  const one = dying[0]!;
  const picked = await Array.fromAsync(
    ct.dumpList("dying", { orig: { protocol: "udp", srcPort: one.orig.srcPort! } }),
  );
  assert.deepEqual(picked, [one]);
  assert.equal(kernel.requests.at(-1)!.type, CT | C.IPCTNL_MSG_CT_GET_DYING);
});

Deno.test("expectation events from the fake kernel: new and destroy, decoded; the stream ends on abort", async () => {
  const kernel = expectKernel();
  using ct = openWithSockets(kernel.open, { kernelRelease: "6.18.0" });
  const stop = new AbortController();
  const got: string[] = [];
  const done = (async () => {
    for await (const e of ct.expectations.events({ signal: stop.signal })) {
      if (e.type !== "lost") got.push(e.type);
      if (got.length === 9) stop.abort();
    }
  })();
  await new Promise((r) => setTimeout(r, 10));
  kernel.multicast(C.NFNLGRP_CONNTRACK_EXP_DESTROY, fixture("expect_events.bin"));
  await done;
  assert.deepEqual(got.slice(0, 2), ["destroy", "new"]);
  assert.equal(got.filter((t) => t === "new").length, 1);
});

Deno.test("expectation events: an overrun is reported as lost after the backlog; close ends the stream", async () => {
  const kernel = expectKernel();
  const ct = openWithSockets(kernel.open, { kernelRelease: "6.18.0" });
  const stream = ct.expectations.events({ types: ["new"] });
  const first = stream.next(); // subscribes
  await new Promise((r) => setTimeout(r, 5));
  const sock = kernel.sockets.find((s) => s.kind === "events")!;
  assert.deepEqual(sock.groups, [C.NFNLGRP_CONNTRACK_EXP_NEW]);
  kernel.multicast(C.NFNLGRP_CONNTRACK_EXP_NEW, fixture("expect_events.bin"));
  sock.overrun = true;
  const got = [(await first).value!];
  while (got.at(-1)!.type !== "lost") got.push((await stream.next()).value!);
  assert.deepEqual(got.map((e) => e.type), ["new", "lost"], "destroy events are not asked for");
  assert.deepEqual(got[1], { type: "lost", lost: 1 });
  ct.close();
  assert.equal((await stream.next()).done, true);
  assert.ok(sock.closed);
  assert.throws(() => ct.expectations.dumpSync().next(), (e: Error) => e.name === "ClosedError");
  await assert.rejects(ct.expectations.count(), (e: Error) => e.name === "ClosedError");
  assert.throws(
    () => ct.expectations.dumpSync({ fmaily: "ipv4" } as never),
    /unknown field "fmaily"/,
  );
});

/** Runs the CLI in-process; returns the status and stderr. */
async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = "";
  const dec = new TextDecoder();
  const io = {
    stdout: { writeSync: (p: Uint8Array) => p.length },
    stderr: { writeSync: (p: Uint8Array) => (stderr += dec.decode(p), p.length) },
  };
  return { code: await main(args, io), stderr };
}

Deno.test("CLI: what conntrack refuses for the expect, dying and unconfirmed tables is exit 2 and one line", async () => {
  for (
    const args of [
      ["-L", "expect", "-p", "tcp"], // conntrack: Illegal option `--protonum'
      ["-C", "expect", "-f", "ipv6"],
      ["-U", "expect"], // Can't do --update on expectations
      ["-G", "dying"], // Can't do that command with tables `dying' and `unconfirmed'
      ["-L", "foo"], // unknown type `foo'
      ["get", "expect", "-s", "10.0.0.1"],
      ["create", "expect", "-s", "10.0.0.1", "-d", "10.0.0.2", "-p", "tcp"],
      ["-E", "expect", "-s", "10.0.0.1"],
    ]
  ) {
    const r = await cli(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.split("\n").length, 2, `${args.join(" ")}: one line`);
    assert.match(r.stderr, /^ctnl: /);
  }
});

Deno.test({
  name: "CLI: good arguments on the expect, dying and unconfirmed tables get past parsing",
  permissions: { read: true, ffi: false },
}, async () => {
  // Without FFI permission a command stops right before opening netlink.
  const cases = [
    "-L expect",
    "dump exp -f ipv6 -o timestamp",
    "-L dying -p udp --sport 53 -o extended",
    "dump unconfirmed --json",
    "-G expect -s 10.0.0.1 -d 10.0.0.2 -p tcp --sport 0 --dport 4000 --reply-port-src 1 --reply-port-dst 1",
    "-D expect -s fd00::1 -d fd00::2 -p udp --sport 0 --dport 69",
    "-I expect -s 10.0.0.1 -d 10.0.0.2 -p tcp --sport 4000 --dport 21 --tuple-src 10.0.0.2 " +
    "--tuple-dst 10.0.0.1 --tuple-port-src 0 --tuple-port-dst 5000 --mask-src 255.255.255.255 " +
    "--mask-dst 255.255.255.255 --mask-port-src 0 --mask-port-dst 65535 -t 60",
    "-F expect",
    "-C expect --json",
    "-S expect",
    "-E expect -o timestamp",
  ].map((line) => line.split(" "));
  for (const args of cases) {
    const r = await cli(args);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /^ctnl: needs FFI access/, args.join(" "));
  }
});

Deno.test("CLI: each expectation command's help names the options it takes", () => {
  for (const command of EXPECT_COMMANDS.values()) {
    const shown = new Set([...command.help.matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]));
    const ignored = ["replySrc", "replyDst", "replySport", "replyDport", "status"];
    for (const key of command.options) {
      if (ignored.includes(key)) continue;
      const long = OPTIONS.find((o) => o.key === key)!.long[0];
      assert(shown.has(long), `${command.name}: --${long} missing from its help`);
    }
  }
});
