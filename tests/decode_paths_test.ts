/**
 * The decoder's two paths agree: every flow the fast path decodes is exactly
 * what the checked decoder makes of the same bytes, on captured dumps and on
 * thousands of mutations of them (whatever the fast path declines, the
 * checked decoder decodes or explains).
 */

import assert from "node:assert/strict";
import { DecodeError } from "../mod.ts";
import { decodeFlowCheckedAt } from "../src/decode.ts";
import { decodeFlowFastAt } from "../src/decode_fast.ts";
import { AttrCursor, newHeader, NLMSG_DONE, NLMSG_ERROR, readHeader } from "../src/netlink.ts";

/** Every entry message of a capture file (u32 LE length + datagram, repeated), copied. */
function entries(url: URL): Uint8Array<ArrayBuffer>[] {
  const file = Deno.readFileSync(url);
  const fv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const out: Uint8Array<ArrayBuffer>[] = [];
  const h = newHeader();
  for (let at = 0; at < file.byteLength;) {
    const len = fv.getUint32(at, true);
    const d = file.subarray(at + 4, at + 4 + len);
    const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
    for (let off = 0; off < len;) {
      off = readHeader(view, off, len, h);
      if (h.type !== NLMSG_DONE && h.type !== NLMSG_ERROR) {
        out.push(d.slice(h.offset, h.offset + h.length));
      }
    }
    at += 4 + len;
  }
  return out;
}

const SMALL = entries(new URL("./fixtures/dump.bin", import.meta.url));
const MIX = entries(new URL("../bench/fixtures/dump_mix.bin", import.meta.url));
const cursor = new AttrCursor();

function fast(m: Uint8Array<ArrayBuffer>) {
  return decodeFlowFastAt(m, new DataView(m.buffer), 0, m.byteLength);
}

function checked(m: Uint8Array<ArrayBuffer>) {
  return decodeFlowCheckedAt(cursor, m, new DataView(m.buffer), 0, m.byteLength);
}

Deno.test("the fast path decodes captured entries exactly as the checked decoder", () => {
  let taken = 0;
  for (const m of [...SMALL, ...MIX]) {
    const f = fast(m);
    if (f === undefined) continue;
    taken++;
    assert.deepStrictEqual(f, checked(m));
    assert.deepStrictEqual(Object.keys(f.orig), Object.keys(f.reply));
  }
  // Every entry of the benchmark's mix is plain: all take the fast path.
  assert.ok(MIX.every((m) => fast(m) !== undefined), "a plain entry fell back");
  assert.ok(taken > MIX.length, "no captured traffic entry took the fast path");
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

Deno.test("on mutated entries the fast path agrees or declines, never differs", () => {
  const next = rng(0x5eed);
  const sources = [...SMALL, ...MIX.slice(0, 64)];
  let agreed = 0, declined = 0;
  for (let i = 0; i < 20_000; i++) {
    const m = sources[next() % sources.length]!.slice();
    // Change one to three bytes after the nlmsghdr, mostly attribute headers.
    for (let k = 1 + (next() % 3); k > 0; k--) {
      const at = 16 + (next() % (m.byteLength - 16));
      m[at] = next() % 4 === 0 ? m[at]! ^ (1 << (next() % 8)) : next() & 0xff;
    }
    const f = fast(m);
    if (f === undefined) {
      declined++;
      try {
        checked(m);
      } catch (error) {
        assert.ok(error instanceof DecodeError, `not a DecodeError: ${error}`);
      }
      continue;
    }
    agreed++;
    assert.deepStrictEqual(f, checked(m), `mutation ${i}`);
  }
  assert.ok(agreed > 1000 && declined > 1000, `${agreed} agreed, ${declined} declined`);
});
