/**
 * The decoder's two paths agree: every flow the fast path decodes is exactly
 * what the checked decoder makes of the same bytes, on captured dumps and on
 * thousands of mutations of them (whatever the fast path declines, the
 * checked decoder decodes or explains).
 */

import assert from "node:assert/strict";
import { DecodeError } from "../../mod.ts";
import { decodeFlowCheckedAt } from "../../src/decode.ts";
import { decodeFlowFastAt } from "../../src/decode_fast.ts";
import { AttrCursor } from "../../src/netlink.ts";
import { captureEntries } from "../_capture.ts";
import { Rng } from "../_fuzz.ts";

const SMALL = captureEntries(new URL("../fixtures/dump.bin", import.meta.url));
const MIX = captureEntries(new URL("../../bench/fixtures/dump_mix.bin", import.meta.url));
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

Deno.test("on mutated entries the fast path agrees or declines, never differs", () => {
  const rng = new Rng(0x5eed);
  const next = () => rng.next();
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
