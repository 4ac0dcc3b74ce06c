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

const DIR = new URL("./fixtures/", import.meta.url).pathname;

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
    await record(empty, sock, "empty", request(C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 0));
  });
} finally {
  await empty.delete();
}
console.log(`fixtures written to ${DIR}`);
