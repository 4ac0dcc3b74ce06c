/**
 * Seeded fuzzing of the decoder over datagrams captured from the real kernel
 * (`deno task fuzz` runs a longer campaign).
 */

import assert from "node:assert/strict";
import { readCapture } from "../_capture.ts";
import { decodeDatagram, fuzz } from "../_fuzz.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);
const corpus = ["dump.bin", "stats.bin", "count.bin", "enoent.bin", "einval.bin", "empty.bin"]
  .flatMap((f) => readCapture(new URL(f, FIXTURES)));

Deno.test("100,000 mutated kernel datagrams raise only DecodeError, and nothing else changes", () => {
  const before = corpus.map(decodeDatagram);
  const result = fuzz(corpus, 100_000, 0x5eed);
  assert.deepStrictEqual(result.failures, []);
  assert.equal(result.cases, 100_000);
  // The mutations really do hit the error paths, and some still decode.
  assert(result.decodeErrors > 20_000, `decode errors: ${result.decodeErrors}`);
  assert(result.decodedFine > 1_000, `decoded fine: ${result.decodedFine}`);
  // Unmutated datagrams decode exactly as before: no state leaks between decodes.
  assert.deepStrictEqual(corpus.map(decodeDatagram), before);
});
