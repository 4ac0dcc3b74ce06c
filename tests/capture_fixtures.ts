/**
 * Recaptures the unit tests' fixtures from the real kernel:
 * `deno task capture` (root). Builds a traffic namespace, records the raw
 * datagrams of a dump (with a small receive buffer, so the dump spans several
 * datagrams), of per-CPU and global stats, and of kernel refusals, each beside
 * what conntrack-tools printed for the same table at the same moment.
 *
 * Datagram files are a sequence of records: u32 little-endian length, then
 * that many bytes.
 *
 * @module
 */

import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import * as C from "../src/constants.ts";
import { Encoder, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from "../src/netlink.ts";
import { Netns } from "./_ns.ts";
import { trafficNamespace } from "./_traffic.ts";

const DIR = new URL("./fixtures/", import.meta.url).pathname;

/** Sends one request and records every datagram until DONE or an error/ACK. */
function capture(sock: NetlinkSocket, request: Uint8Array<ArrayBuffer>): Uint8Array {
  sock.send(request, "dump");
  const records: Uint8Array[] = [];
  for (let done = false; !done;) {
    const r = sock.recv("dump")!;
    const rec = new Uint8Array(4 + r.length);
    new DataView(rec.buffer).setUint32(0, r.length, true);
    rec.set(sock.buffer.subarray(0, r.length), 4);
    records.push(rec);
    // Stop at NLMSG_DONE or NLMSG_ERROR anywhere in the datagram.
    const view = new DataView(sock.buffer.buffer, 0, r.length);
    for (let off = 0; off + 16 <= r.length;) {
      const len = view.getUint32(off, true);
      const type = view.getUint16(off + 4, true);
      if (type === 2 || type === 3) done = true;
      off += (len + 3) & ~3;
      if (len < 16) break;
    }
  }
  const total = records.reduce((n, r) => n + r.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const r of records) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

function request(msg: number, flags: number, family: number): Encoder {
  return new Encoder().begin((C.NFNL_SUBSYS_CTNETLINK << 8) | msg, flags, 1, family);
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

const ns = await trafficNamespace("dump");
try {
  await inNamespace(ns, async (sock) => {
    const dump = capture(
      sock,
      request(C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 0).finish(),
    );
    const text = await ns.run(["conntrack", "-L", "-o", "extended,id,ktimestamp"], utc);
    await Deno.writeFile(`${DIR}dump.bin`, dump);
    await Deno.writeTextFile(`${DIR}dump.conntrack.txt`, text.stdout);

    const stats = capture(
      sock,
      request(C.IPCTNL_MSG_CT_GET_STATS_CPU, NLM_F_REQUEST | NLM_F_DUMP, 0).finish(),
    );
    await Deno.writeFile(`${DIR}stats.bin`, stats);
    await Deno.writeTextFile(
      `${DIR}stats.conntrack.txt`,
      (await ns.run(["conntrack", "-S"])).stdout,
    );

    const count = capture(
      sock,
      request(C.IPCTNL_MSG_CT_GET_STATS, NLM_F_REQUEST | NLM_F_ACK, 0).finish(),
    );
    await Deno.writeFile(`${DIR}count.bin`, count);
    await Deno.writeTextFile(
      `${DIR}count.conntrack.txt`,
      (await ns.run(["conntrack", "-C"])).stdout,
    );

    // get of an entry that does not exist: NLMSG_ERROR with -ENOENT.
    const get = request(C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_ACK, C.AF_INET);
    get.nest(C.CTA_TUPLE_ORIG)
      .nest(C.CTA_TUPLE_IP).bytes(C.CTA_IP_V4_SRC, new Uint8Array([10, 9, 9, 9]))
      .bytes(C.CTA_IP_V4_DST, new Uint8Array([10, 9, 9, 8])).end()
      .nest(C.CTA_TUPLE_PROTO).u8(C.CTA_PROTO_NUM, 6).u16be(C.CTA_PROTO_SRC_PORT, 1)
      .u16be(C.CTA_PROTO_DST_PORT, 2).end()
      .end();
    await Deno.writeFile(`${DIR}enoent.bin`, capture(sock, get.finish()));

    // A dump request the kernel refuses: a mark mask without a mark (EINVAL).
    const bad = request(C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, C.AF_INET);
    bad.u32be(C.CTA_MARK_MASK, 0xff);
    await Deno.writeFile(`${DIR}einval.bin`, capture(sock, bad.finish()));
  });
} finally {
  await ns.delete();
}

const empty = await Netns.create("capture-empty");
try {
  await inNamespace(empty, async (sock) => {
    const dump = capture(
      sock,
      request(C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 0).finish(),
    );
    await Deno.writeFile(`${DIR}empty.bin`, dump);
  });
} finally {
  await empty.delete();
}
console.log(`fixtures written to ${DIR}`);
