/**
 * Records the fixtures of tests/unit/formats_test.ts from the real kernel
 * (root): `deno run -A tests/capture_formats.ts`. A traffic namespace plus
 * entries of the kinds the traffic lacks (SCTP with vtags, GRE, DCCP,
 * per-direction zones, ESP); its dump as raw datagrams
 * (`fixtures/formats.bin`, tests/_capture.ts's format) and, right after,
 * what conntrack printed for it with `-o save` and `-o xml,ktimestamp`
 * (`formats.save.txt`, `formats.xml.txt`, in the same order).
 *
 * @module
 */

import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import * as C from "../src/constants.ts";
import { Encoder, NLM_F_DUMP, NLM_F_REQUEST } from "../src/netlink.ts";
import { captureReply } from "./_capture.ts";
import { trafficNamespace } from "./_traffic.ts";

const DIR = new URL("./fixtures/", import.meta.url).pathname;
const ODD = [
  [
    "-p",
    "sctp",
    "--sport",
    "1",
    "--dport",
    "2",
    "--state",
    "ESTABLISHED",
    "--orig-vtag",
    "5",
    "--reply-vtag",
    "6",
  ],
  ["-p", "gre", "--srckey", "17", "--dstkey", "18"],
  ["-p", "dccp", "--sport", "1", "--dport", "2", "--state", "OPEN", "--role", "server"],
  ["-p", "udp", "--sport", "1", "--dport", "2", "--orig-zone", "3", "-u", "FIXED_TIMEOUT"],
  ["-p", "udp", "--sport", "1", "--dport", "3", "--reply-zone", "4"],
  ["-p", "esp"],
];

const ns = await trafficNamespace("capture-formats");
try {
  for (const args of ODD) {
    await ns.exec(["conntrack", "-I", ...args, "-s", "10.9.0.1", "-d", "10.9.0.2", "-t", "500"]);
  }
  const fd = openFd(`/run/netns/${ns.name}`, "open network namespace");
  const sock = NetlinkSocket.open({ netnsFd: fd, recvTimeoutMs: 5000 }, 4096);
  try {
    const dump = new Encoder()
      .begin((C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
      .finish();
    await Deno.writeFile(`${DIR}formats.bin`, captureReply(sock, dump));
  } finally {
    sock.close();
    closeFd(fd);
  }
  const utc = { TZ: "UTC", PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
  for (const [name, output] of [["save", "save"], ["xml", "xml,ktimestamp"]]) {
    const r = await ns.run(["conntrack", "-L", "-o", output!], utc);
    await Deno.writeTextFile(`${DIR}formats.${name}.txt`, r.stdout);
  }
} finally {
  await ns.delete();
}
console.log(`formats fixtures written to ${DIR}`);
