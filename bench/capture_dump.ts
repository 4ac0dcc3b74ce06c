/**
 * Captures a bigger real dump for the decode micro-benchmarks:
 * `deno run -A bench/capture_dump.ts [entries=2000] [out]` (root) fills a fresh
 * namespace with the benchmark's mix of entries (bench/_setup.ts) and records
 * every datagram of one dump, as the library receives them (64 KiB buffer,
 * so the kernel's ~32 KiB datagrams), into `out` (default
 * `bench/fixtures/dump_mix.bin`).
 *
 * Same format as tests/fixtures: u32 little-endian length, then that many
 * bytes, repeated.
 *
 * @module
 */

import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import * as C from "../src/constants.ts";
import { Encoder, NLM_F_DUMP, NLM_F_REQUEST } from "../src/netlink.ts";
import { cleanup, createNamespace, fill } from "./_setup.ts";

const entries = Number(Deno.args[0] ?? 2000);
const out = Deno.args[1] ?? new URL("./fixtures/dump_mix.bin", import.meta.url).pathname;

const ns = await createNamespace("dump");
try {
  await fill(ns, entries);
  const fd = openFd(`/run/netns/${ns}`, "open network namespace");
  const sock = NetlinkSocket.open({ netnsFd: fd, recvTimeoutMs: 10_000 });
  const records: Uint8Array[] = [];
  try {
    sock.send(
      new Encoder(64).begin(
        (C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_GET,
        NLM_F_REQUEST | NLM_F_DUMP,
        1,
        0,
      ).finish(),
      "dump",
    );
    for (let done = false; !done;) {
      const { length } = sock.recv("dump")!;
      const rec = new Uint8Array(4 + length);
      new DataView(rec.buffer).setUint32(0, length, true);
      rec.set(sock.buffer.subarray(0, length), 4);
      records.push(rec);
      const view = new DataView(rec.buffer, 4);
      for (let off = 0; off + 16 <= length;) {
        const len = view.getUint32(off, true);
        const type = view.getUint16(off + 4, true);
        if (type === 2 || type === 3) done = true;
        if (len < 16) break;
        off += (len + 3) & ~3;
      }
    }
  } finally {
    sock.close();
    closeFd(fd);
  }
  const total = records.reduce((n, r) => n + r.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const r of records) {
    bytes.set(r, at);
    at += r.length;
  }
  await Deno.writeFile(out, bytes);
  console.log(`${entries} entries, ${records.length} datagrams, ${total} bytes → ${out}`);
} finally {
  await cleanup();
}
