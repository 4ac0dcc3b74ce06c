/**
 * `Summarizer.addMessage` (a summary read from the entries' bytes, as
 * `ctnl summary` does) gives the summary `Summarizer.add` gives of the
 * decoded entries, for every key and prefix form: on the captured dumps and
 * on mutations of them (an entry the decoder refuses is one the bytes path
 * declines).
 *
 * @module
 */

import assert from "node:assert/strict";
import { decodeFlowAt } from "../../src/decode.ts";
import { AttrCursor } from "../../src/netlink.ts";
import { Summarizer, SUMMARY_KEYS } from "../../src/summary.ts";
import { captureEntries } from "../_capture.ts";
import { mutate, Rng } from "../_fuzz.ts";

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url);
const CAPTURED = [
  ...captureEntries(fixture("dump.bin")),
  ...captureEntries(fixture("formats.bin")),
  ...captureEntries(new URL("../../bench/fixtures/dump_mix.bin", import.meta.url)),
];

const KEY_SETS: string[][] = [
  ...SUMMARY_KEYS.map((k) => [k]),
  ["src/24"],
  ["dst/16/64"],
  ["reply-src/0"],
  ["reply-dst/128"],
  ["src/31/127", "dport"],
  ["dst/77"],
  ["proto", "state", "status"],
  ["family", "zone", "mark", "reply-sport"],
];

const cursor = new AttrCursor();

/** Both summaries of `entries` by `by`; how many entries the bytes path took. */
function both(entries: Uint8Array[], by: string[]) {
  const fromBytes = new Summarizer({ by, sort: "bytes" });
  const decoded = new Summarizer({ by, sort: "bytes" });
  let taken = 0;
  for (const m of entries) {
    const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
    let flow;
    try {
      flow = decodeFlowAt(cursor, m, view, 0, m.byteLength);
    } catch {
      // refused by the decoder: the bytes path must decline it too
      assert.equal(fromBytes.addMessage(m, view, 0, m.byteLength), false);
      continue;
    }
    decoded.add(flow);
    if (fromBytes.addMessage(m, view, 0, m.byteLength)) taken++;
    else fromBytes.add(flow);
  }
  return { fromBytes: fromBytes.result(), decoded: decoded.result(), taken };
}

Deno.test("a summary from the bytes equals the summary of the decoded entries", () => {
  for (const by of KEY_SETS) {
    const { fromBytes, decoded, taken } = both(CAPTURED, by);
    assert.deepStrictEqual(fromBytes, decoded, by.join(","));
    assert.ok(taken >= CAPTURED.length * 0.9, `${by}: only ${taken} of ${CAPTURED.length} taken`);
  }
});

Deno.test("on mutated entries, the bytes path counts what the decoder sees, or declines", () => {
  const rng = new Rng(0x5a11);
  const mutated = Array.from(
    { length: 6_000 },
    () => mutate(CAPTURED[rng.below(CAPTURED.length)]!, rng),
  );
  for (const by of KEY_SETS) {
    const { fromBytes, decoded, taken } = both(mutated, by);
    assert.deepStrictEqual(fromBytes, decoded, by.join(","));
    assert.ok(taken > 1_000, `${by}: only ${taken} mutations taken`);
  }
});
