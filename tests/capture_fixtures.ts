/**
 * Recaptures the unit tests' fixtures from the real kernel:
 * `deno task capture` (root). Builds a traffic namespace, records the raw
 * datagrams of a dump (with a small receive buffer, so the dump spans several
 * datagrams), of per-CPU and global stats, and of kernel refusals, each beside
 * what conntrack-tools printed for the same table at the same moment.
 *
 * Datagram files are a sequence of records: u32 little-endian length, then
 * that many bytes (tests/_capture.ts).
 *
 * @module
 */

import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import * as C from "../src/constants.ts";
import { Encoder, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from "../src/netlink.ts";
import { captureReply } from "./_capture.ts";
import { Netns } from "./_ns.ts";
import { trafficNamespace } from "./_traffic.ts";
import { expectNamespace } from "./_expect_ns.ts";
import { Conntrack } from "../mod.ts";

const DIR = new URL("./fixtures/", import.meta.url).pathname;

function request(
  msg: number,
  flags: number,
  family: number,
  subsys = C.NFNL_SUBSYS_CTNETLINK,
): Encoder {
  return new Encoder().begin((subsys << 8) | msg, flags, 1, family);
}

async function inNamespace(ns: Netns, fn: (sock: NetlinkSocket) => Promise<void>): Promise<void> {
  const fd = openFd(`/run/netns/${ns.name}`, "open network namespace");
  // A 4 KiB buffer makes the kernel split the dump over several datagrams.
  const sock = NetlinkSocket.open({ netnsFd: fd, recvTimeoutMs: 5000 }, 4096);
  try {
    await fn(sock);
  } finally {
    sock.close();
    closeFd(fd);
  }
}

const utc = { TZ: "UTC", PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin" };

/**
 * Records the reply to `request` into `name.bin` and, with
 * `conntrack`, what `conntrack ARGS` printed into `name.conntrack.txt`.
 */
async function record(
  ns: Netns,
  sock: NetlinkSocket,
  name: string,
  request: Encoder,
  conntrack?: string[],
): Promise<void> {
  await Deno.writeFile(`${DIR}${name}.bin`, captureReply(sock, request.finish()));
  if (conntrack === undefined) return;
  const text = await ns.run(["conntrack", ...conntrack], utc);
  await Deno.writeTextFile(`${DIR}${name}.conntrack.txt`, text.stdout);
}

// `deno task capture` records everything; `… capture_fixtures.ts expect` only the
// expectation, dying and unconfirmed fixtures (expect_*.bin, dying.bin).
const only = Deno.args[0];
if (only === undefined || only === "conntrack") {
  const ns = await trafficNamespace("capture");
  try {
    await inNamespace(ns, async (sock) => {
      const dump = request(C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 0);
      await record(ns, sock, "dump", dump, ["-L", "-o", "extended,id,ktimestamp"]);
      const stats = request(C.IPCTNL_MSG_CT_GET_STATS_CPU, NLM_F_REQUEST | NLM_F_DUMP, 0);
      await record(ns, sock, "stats", stats, ["-S"]);
      const count = request(C.IPCTNL_MSG_CT_GET_STATS, NLM_F_REQUEST | NLM_F_ACK, 0);
      await record(ns, sock, "count", count, ["-C"]);

      // get of an entry that does not exist: NLMSG_ERROR with -ENOENT.
      const get = request(C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_ACK, C.AF_INET);
      get.nest(C.CTA_TUPLE_ORIG)
        .nest(C.CTA_TUPLE_IP).bytes(C.CTA_IP_V4_SRC, new Uint8Array([10, 9, 9, 9]))
        .bytes(C.CTA_IP_V4_DST, new Uint8Array([10, 9, 9, 8])).end()
        .nest(C.CTA_TUPLE_PROTO).u8(C.CTA_PROTO_NUM, 6).u16be(C.CTA_PROTO_SRC_PORT, 1)
        .u16be(C.CTA_PROTO_DST_PORT, 2).end()
        .end();
      await record(ns, sock, "enoent", get);

      // A dump request the kernel refuses: a mark mask without a mark (EINVAL).
      const bad = request(C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, C.AF_INET);
      bad.u32be(C.CTA_MARK_MASK, 0xff);
      await record(ns, sock, "einval", bad);
    });
  } finally {
    await ns.delete();
  }

  const empty = await Netns.create("capture-empty");
  try {
    await inNamespace(empty, async (sock) => {
      await record(
        empty,
        sock,
        "empty",
        request(C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 0),
      );
    });
  } finally {
    await empty.delete();
  }
  console.log(`fixtures written to ${DIR}`);
}
if (only === undefined || only === "expect") await captureExpect();

/** What the conntrack ARGS print, one run after another, into `name.conntrack.txt`. */
async function conntrackText(ns: Netns, name: string, ...runs: string[][]): Promise<void> {
  let text = "";
  for (const args of runs) text += (await ns.run(["conntrack", ...args], utc)).stdout;
  await Deno.writeTextFile(`${DIR}${name}.conntrack.txt`, text);
}

/** The datagrams `sock` has queued, in the capture format. */
function drain(sock: NetlinkSocket): Uint8Array {
  const records: Uint8Array[] = [];
  for (let got = sock.recv("events", true); got !== undefined; got = sock.recv("events", true)) {
    const record = new Uint8Array(4 + got.length);
    new DataView(record.buffer).setUint32(0, got.length, true);
    record.set(sock.buffer.subarray(0, got.length), 4);
    records.push(record);
  }
  const out = new Uint8Array(records.reduce((n, r) => n + r.length, 0));
  records.reduce((at, r) => (out.set(r, at), at + r.length), 0);
  return out;
}

/** A destroy listener that never reads (see tests/expect_test.ts): destroyed entries stay dying. */
function holdDying(): string {
  return "import socket, time\n" +
    "s = socket.socket(16, socket.SOCK_RAW, 12)\n" +
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)\n" +
    "s.setsockopt(270, 4, 1)\n" +
    "s.bind((0, 4))\n" +
    'print("ready", flush=True)\n' +
    "time.sleep(600)\n";
}

/**
 * The expectation fixtures: a dump of the ftp/tftp expectations of
 * tests/_expect_ns.ts, per-CPU stats, a get that finds nothing, the events
 * of a create and a flush (beside conntrack -E expect's text of the same
 * events), and a dump of the dying list with entries held on it.
 */
async function captureExpect(): Promise<void> {
  const EXP = C.NFNL_SUBSYS_CTNETLINK_EXP;
  const ns = await expectNamespace("capture-expect");
  try {
    const events = new Deno.Command("ip", {
      args: ["netns", "exec", ns.name, "conntrack", "-E", "expect"],
      stdout: "piped",
      stderr: "null",
      env: utc,
    }).spawn();
    await inNamespace(ns, async (sock) => {
      const dump = request(C.IPCTNL_MSG_EXP_GET, NLM_F_REQUEST | NLM_F_DUMP, 0, EXP);
      await Deno.writeFile(`${DIR}expect_dump.bin`, captureReply(sock, dump.finish()));
      await conntrackText(ns, "expect_dump", ["-L", "expect"], ["-L", "expect", "-f", "ipv6"]);
      await conntrackText(ns, "expect_dump.xml", ["-L", "expect", "-o", "xml"], [
        "-L",
        "expect",
        "-f",
        "ipv6",
        "-o",
        "xml",
      ]);
      const stats = request(C.IPCTNL_MSG_EXP_GET_STATS_CPU, NLM_F_REQUEST | NLM_F_DUMP, 0, EXP);
      await Deno.writeFile(`${DIR}expect_stats.bin`, captureReply(sock, stats.finish()));
      await conntrackText(ns, "expect_stats", ["-S", "expect"]);
      const get = request(C.IPCTNL_MSG_EXP_GET, NLM_F_REQUEST | NLM_F_ACK, C.AF_INET, EXP);
      get.nest(C.CTA_EXPECT_TUPLE)
        .nest(C.CTA_TUPLE_IP).bytes(C.CTA_IP_V4_SRC, new Uint8Array([10, 9, 9, 9]))
        .bytes(C.CTA_IP_V4_DST, new Uint8Array([10, 9, 9, 8])).end()
        .nest(C.CTA_TUPLE_PROTO).u8(C.CTA_PROTO_NUM, 6).u16be(C.CTA_PROTO_SRC_PORT, 1)
        .u16be(C.CTA_PROTO_DST_PORT, 2).end()
        .end();
      await Deno.writeFile(`${DIR}expect_enoent.bin`, captureReply(sock, get.finish()));
    });
    // Events: a socket in the expectation groups, while an expectation is made and all flushed.
    const fd = openFd(`/run/netns/${ns.name}`, "open network namespace");
    const sub = NetlinkSocket.open({ netnsFd: fd, recvTimeoutMs: 5000 });
    try {
      sub.joinGroup(C.NFNLGRP_CONNTRACK_EXP_NEW);
      sub.joinGroup(C.NFNLGRP_CONNTRACK_EXP_DESTROY);
      using ct = Conntrack.open({ netns: ns.name });
      const [e] = ct.expectations.dumpSync({ family: "ipv4", helper: "ftp" });
      const m = e!.master;
      await new Promise((r) => setTimeout(r, 1000)); // conntrack -E expect subscribed
      await ct.expectations.create({
        master: m,
        tuple: { src: m.src!, dst: m.dst!, protocol: "tcp", srcPort: 0, dstPort: 44444 },
        mask: { srcPort: 0 },
      });
      await ct.expectations.flush();
      await new Promise((r) => setTimeout(r, 500));
      await Deno.writeFile(`${DIR}expect_events.bin`, drain(sub));
    } finally {
      sub.close();
      closeFd(fd);
    }
    events.kill("SIGINT");
    const text = new TextDecoder().decode((await events.output()).stdout);
    await Deno.writeTextFile(`${DIR}expect_events.conntrack.txt`, text);
  } finally {
    await ns.delete();
  }

  const dying = await Netns.create("capture-dying");
  try {
    await dying.sysctl({ nf_conntrack_events: 1 });
    await dying.spawn(["python3", "-c", holdDying()]);
    using ct = Conntrack.open({ netns: dying.name });
    await ct.createMany(Array.from({ length: 12 }, (_, i) => ({
      orig: { src: "10.1.0.1", dst: "10.2.0.1", protocol: "udp", srcPort: 1000 + i, dstPort: 53 },
      timeout: 600,
    })));
    await ct.flush();
    await inNamespace(dying, async (sock) => {
      const list = request(C.IPCTNL_MSG_CT_GET_DYING, NLM_F_REQUEST | NLM_F_DUMP, 0);
      await Deno.writeFile(`${DIR}dying.bin`, captureReply(sock, list.finish()));
      await conntrackText(dying, "dying", ["-L", "dying"]);
    });
  } finally {
    await dying.delete();
  }
  console.log(`expectation fixtures written to ${DIR}`);
}
