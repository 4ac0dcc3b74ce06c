/**
 * The transcoder writes what the decoder and formatFlow (and flowToJson)
 * make of the same bytes, byte for byte: on captured dumps (traffic, the benchmark's mix, the
 * formats capture) and on thousands of mutations of them, in every text
 * format (-o extended, id, ktimestamp, labels) and in JSON. It takes exactly the entries
 * the fast decoder takes (they share the attribute walk of src/scan.ts).
 */

import assert from "node:assert/strict";
import { decodeFlowAt } from "../../src/decode.ts";
import { decodeFlowFastAt } from "../../src/decode_fast.ts";
import { flowToJson, formatFlow, type FormatOptions } from "../../src/format.ts";
import { AttrCursor, newHeader, NLMSG_DONE, NLMSG_ERROR, readHeader } from "../../src/netlink.ts";
import { type ByteSink, FlowJsonWriter, FlowTextWriter } from "../../src/transcode.ts";
import { readCapture } from "../_capture.ts";

/** Every entry message of a capture file, copied. */
function entries(url: URL): Uint8Array<ArrayBuffer>[] {
  const out: Uint8Array<ArrayBuffer>[] = [];
  const h = newHeader();
  for (const d of readCapture(url)) {
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

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url);
const CAPTURED = [
  ...entries(fixture("dump.bin")),
  ...entries(fixture("formats.bin")),
  ...entries(new URL("../../bench/fixtures/dump_mix.bin", import.meta.url)),
];

/** A sink that grows (no output file): what the transcoder wrote. */
class Bytes implements ByteSink {
  buffer = new Uint8Array(256);
  used = 0;
  room(n: number): void {
    if (this.used + n <= this.buffer.length) return;
    const bigger = new Uint8Array(Math.max(2 * this.buffer.length, this.used + n));
    bigger.set(this.buffer.subarray(0, this.used));
    this.buffer = bigger;
  }
  take(): string {
    const text = new TextDecoder().decode(this.buffer.subarray(0, this.used));
    this.used = 0;
    return text;
  }
}

const LABELS = Array.from({ length: 128 }, (_, i) => (i % 3 === 0 ? undefined : `l${i}`));
const FORMATS: FormatOptions[] = [
  {},
  { extended: true, id: true },
  { ktimestamp: true, labelNames: LABELS },
  { extended: true, labelNames: [] },
];
const cursor = new AttrCursor();

/** Checks one entry in every format; whether the transcoder took it. */
function check(m: Uint8Array<ArrayBuffer>): boolean {
  const view = new DataView(m.buffer);
  let took = false;
  for (const options of FORMATS) {
    const format = { ...options, now: 1_700_000_000 };
    const sink = new Bytes();
    const wrote = new FlowTextWriter(sink, format).write(m, view, 0, m.byteLength);
    const fast = decodeFlowFastAt(m, view, 0, m.byteLength) !== undefined;
    assert.equal(wrote, fast, "the transcoder and the fast decoder take different entries");
    if (!wrote) continue;
    took = true;
    const flow = decodeFlowAt(cursor, m, view, 0, m.byteLength);
    assert.equal(sink.take(), formatFlow(flow, format) + "\n");
  }
  const sink = new Bytes();
  if (new FlowJsonWriter(sink).write(m, view, 0, m.byteLength)) {
    const json = sink.take();
    assert.equal(json, flowToJson(decodeFlowAt(cursor, m, view, 0, m.byteLength)) + "\n");
    JSON.parse(json);
  }
  return took;
}

Deno.test("the transcoder writes formatFlow's text of captured entries, in every format", () => {
  let taken = 0;
  for (const m of CAPTURED) if (check(m)) taken++;
  assert.ok(taken >= CAPTURED.length * 0.9, `only ${taken} of ${CAPTURED.length} transcoded`);
});

/** xorshift32: reproducible mutations. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

Deno.test("on mutated entries the transcoder writes formatFlow's text or declines", () => {
  const next = rng(0x7c0de);
  let taken = 0;
  for (let i = 0; i < 20_000; i++) {
    const m = CAPTURED[next() % CAPTURED.length]!.slice();
    // One to three bytes after the nlmsghdr, mostly attribute headers and values.
    for (let k = 1 + (next() % 3); k > 0; k--) {
      const at = 16 + (next() % (m.byteLength - 16));
      m[at] = next() % 4 === 0 ? m[at]! ^ (1 << (next() % 8)) : next() & 0xff;
    }
    try {
      if (check(m)) taken++;
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
      // The decoder refused it (a DecodeError): the transcoder must have declined too.
      assert.equal(decodeFlowFastAt(m, new DataView(m.buffer), 0, m.byteLength), undefined);
    }
  }
  assert.ok(taken > 5_000, `only ${taken} mutations transcoded`);
});
