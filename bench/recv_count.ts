/**
 * The receive-only baseline: one dump request, then receive every datagram
 * and count the entry messages by walking their headers, decoding nothing.
 * It uses the same socket code and buffer as the library, so it is the floor
 * the library's full decode is measured against.
 *
 * `deno run --allow-ffi bench/recv_count.ts [netns]` prints the count.
 *
 * @module
 */

import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import * as C from "../src/constants.ts";
import { Encoder, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR } from "../src/netlink.ts";

const netns = Deno.args[0];
const nsFd = netns === undefined
  ? undefined
  : openFd(`/run/netns/${netns}`, "open network namespace");
const sock = NetlinkSocket.open({ netnsFd: nsFd, recvTimeoutMs: 10_000 });
const request = new Encoder(64)
  .begin((C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
  .finish();
sock.send(request, "dump");
const view = new DataView(sock.buffer.buffer);
let entries = 0;
for (let done = false; !done;) {
  const { length } = sock.recv("dump")!;
  for (let off = 0; off < length;) {
    const len = view.getUint32(off, true);
    const type = view.getUint16(off + 4, true);
    if (type === NLMSG_DONE || type === NLMSG_ERROR) done = true;
    else entries++;
    if (len < 16) break;
    off += (len + 3) & ~3;
  }
}
sock.close();
if (nsFd !== undefined) closeFd(nsFd);
console.log(entries);
