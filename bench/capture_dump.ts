/**
 * Captures a bigger real dump for the decode micro-benchmarks:
 * `deno run -A bench/capture_dump.ts [entries=2000] [out]` (root) fills a fresh
 * namespace with the benchmark's mix of entries (bench/_setup.ts) and records
 * every datagram of one dump, as the library receives them (64 KiB buffer,
 * so the kernel's ~32 KiB datagrams), into `out` (default
 * `bench/fixtures/dump_mix.bin`).
 *
 * Same format as tests/fixtures (tests/_capture.ts): u32 little-endian
 * length, then that many bytes, repeated.
 *
 * @module
 */

import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import * as C from "../src/constants.ts";
import { Encoder, NLM_F_DUMP, NLM_F_REQUEST } from "../src/netlink.ts";
import { captureReply, readCapture } from "../tests/_capture.ts";
import { cleanup, createNamespace, fill } from "./_setup.ts";

const entries = Number(Deno.args[0] ?? 2000);
const out = Deno.args[1] ?? new URL("./fixtures/dump_mix.bin", import.meta.url).pathname;

const ns = await createNamespace("capture");
try {
  await fill(ns, entries);
  const fd = openFd(`/run/netns/${ns}`, "open network namespace");
  const sock = NetlinkSocket.open({ netnsFd: fd, recvTimeoutMs: 10_000 });
  let bytes: Uint8Array;
  try {
    const request = new Encoder(64).begin(
      (C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_GET,
      NLM_F_REQUEST | NLM_F_DUMP,
      1,
      0,
    ).finish();
    bytes = captureReply(sock, request);
  } finally {
    sock.close();
    closeFd(fd);
  }
  await Deno.writeFile(out, bytes);
  const datagrams = readCapture(out).length;
  console.log(`${entries} entries, ${datagrams} datagrams, ${bytes.length} bytes → ${out}`);
} finally {
  await cleanup();
}
