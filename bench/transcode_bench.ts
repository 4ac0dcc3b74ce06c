/**
 * The CLI dump's transcoder (src/transcode.ts) and the attribute walk it
 * shares with the fast decoder (src/scan.ts), per entry, over bytes captured
 * from the real kernel: `deno bench --allow-read bench/transcode_bench.ts`.
 *
 * `bench/fixtures/dump_mix.bin` holds 2000 entries of the whole-process
 * benchmark's mix (UDP and TCP ESTABLISHED, IPv4 and IPv6), in the kernel's
 * datagrams; each iteration writes all of them (µs per entry = time per
 * iteration / 2000). The sink drops what is written when it fills, as the
 * CLI's output buffer is flushed, but without the write.
 *
 * @module
 */

import { newHeader, NLMSG_DONE, NLMSG_ERROR, readHeader } from "../src/netlink.ts";
import { scanEntry, SLOTS } from "../src/scan.ts";
import { type ByteSink, FlowJsonWriter, FlowTextWriter } from "../src/transcode.ts";
import { readCapture } from "../tests/_capture.ts";

interface Entry {
  bytes: Uint8Array;
  view: DataView;
  offset: number;
  length: number;
}

/** Every entry message of a capture, in place in its datagram (as the dump hands them over). */
function entries(url: URL): Entry[] {
  const out: Entry[] = [];
  const h = newHeader();
  for (const bytes of readCapture(url)) {
    const view = new DataView(bytes.buffer);
    for (let off = 0; off < bytes.length;) {
      off = readHeader(view, off, bytes.length, h);
      if (h.type === NLMSG_DONE || h.type === NLMSG_ERROR) continue;
      out.push({ bytes, view, offset: h.offset, length: h.length });
    }
  }
  return out;
}

const MIX = entries(new URL("./fixtures/dump_mix.bin", import.meta.url));

/** The CLI's output buffer without the file: dropped when full. */
class Discard implements ByteSink {
  buffer = new Uint8Array(256 * 1024);
  used = 0;
  written = 0;
  room(n: number): void {
    if (this.used + n <= this.buffer.length) return;
    this.written += this.used;
    this.used = 0;
  }
}

const sink = new Discard();
let declined = 0;

// One loop per writer, as the CLI has one writer a process: a shared loop's
// call of write() would see both writer classes and be slower for each.
function runText(writer: FlowTextWriter): void {
  for (let i = 0; i < MIX.length; i++) {
    const e = MIX[i]!;
    if (!writer.write(e.bytes, e.view, e.offset, e.length)) declined++;
  }
}

function runExtended(writer: FlowTextWriter): void {
  for (let i = 0; i < MIX.length; i++) {
    const e = MIX[i]!;
    if (!writer.write(e.bytes, e.view, e.offset, e.length)) declined++;
  }
}

function runJson(writer: FlowJsonWriter): void {
  for (let i = 0; i < MIX.length; i++) {
    const e = MIX[i]!;
    if (!writer.write(e.bytes, e.view, e.offset, e.length)) declined++;
  }
}

const group = `transcode mix (${MIX.length} entries)`;
const now = Math.floor(Date.now() / 1000);
const text = new FlowTextWriter(sink, { now });
const extended = new FlowTextWriter(sink, { now, extended: true });
const json = new FlowJsonWriter(sink);
const slots = new Int32Array(SLOTS);

Deno.bench({
  group,
  name: "scanEntry only",
  fn() {
    for (let i = 0; i < MIX.length; i++) {
      const e = MIX[i]!;
      if (!scanEntry(e.bytes, e.view, e.offset, e.length, slots)) declined++;
    }
  },
});
Deno.bench({ group, name: "text", baseline: true, fn: () => runText(text) });
Deno.bench({ group, name: "text -o extended", fn: () => runExtended(extended) });
Deno.bench({ group, name: "JSON", fn: () => runJson(json) });

globalThis.addEventListener("unload", () => {
  if (declined !== 0) console.log(`${declined} entries declined (the decoder's path)`);
  if (sink.written === 0.5) console.log(sink.written);
});
