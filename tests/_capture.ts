/**
 * The capture format of tests/fixtures/*.bin and bench/fixtures/*.bin: every
 * datagram the kernel sent, as a u32 little-endian length and then that many
 * bytes, repeated. Written by tests/capture_fixtures.ts and
 * bench/capture_dump.ts, read by the unit tests, the fuzzer and the
 * benchmarks.
 *
 * @module
 */

import type { NetlinkSocket } from "../ffi/socket.ts";
import { newHeader, NLMSG_DONE, NLMSG_ERROR, readHeader } from "../src/netlink.ts";

/** The datagrams of a capture file, each copied into its own buffer (offset 0). */
export function readCapture(path: string | URL): Uint8Array<ArrayBuffer>[] {
  const bytes = Deno.readFileSync(path);
  const view = new DataView(bytes.buffer);
  const out: Uint8Array<ArrayBuffer>[] = [];
  for (let at = 0; at < bytes.length;) {
    const len = view.getUint32(at, true);
    out.push(bytes.slice(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return out;
}

/** Every entry message (not `NLMSG_DONE` or an error) of a capture file, each copied. */
export function captureEntries(path: string | URL): Uint8Array<ArrayBuffer>[] {
  const out: Uint8Array<ArrayBuffer>[] = [];
  const h = newHeader();
  for (const d of readCapture(path)) {
    const view = new DataView(d.buffer);
    for (let off = 0; off < d.length;) {
      off = readHeader(view, off, d.length, h);
      if (h.type !== NLMSG_DONE && h.type !== NLMSG_ERROR) {
        out.push(d.slice(h.offset, h.offset + h.length));
      }
    }
  }
  return out;
}

/**
 * Sends one request and records every datagram of the reply until one holds
 * NLMSG_DONE or NLMSG_ERROR (an error or an ACK): the bytes of a capture file.
 */
export function captureReply(sock: NetlinkSocket, request: Uint8Array<ArrayBuffer>): Uint8Array {
  sock.send(request, "dump");
  const records: Uint8Array[] = [];
  for (let done = false; !done;) {
    const { length } = sock.recv("dump")!;
    const record = new Uint8Array(4 + length);
    new DataView(record.buffer).setUint32(0, length, true);
    record.set(sock.buffer.subarray(0, length), 4);
    records.push(record);
    const view = new DataView(record.buffer, 4);
    for (let off = 0; off + 16 <= length;) {
      const len = view.getUint32(off, true);
      const type = view.getUint16(off + 4, true);
      if (type === NLMSG_ERROR || type === NLMSG_DONE) done = true;
      if (len < 16) break;
      off += (len + 3) & ~3;
    }
  }
  const out = new Uint8Array(records.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of records) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}
