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

const expectCorpus = [
  "expect_dump.bin",
  "expect_stats.bin",
  "expect_events.bin",
  "expect_enoent.bin",
  "dying.bin",
].flatMap((f) => readCapture(new URL(f, FIXTURES)));

Deno.test("100,000 mutated expectation and dying-list datagrams raise only DecodeError", () => {
  const before = expectCorpus.map(decodeDatagram);
  assert(before.flat().length >= 20, "the corpus decodes to expectations, stats and flows");
  const result = fuzz(expectCorpus, 100_000, 0xe4bec7);
  assert.deepStrictEqual(result.failures, []);
  assert.equal(result.cases, 100_000);
  assert(result.decodeErrors > 20_000, `decode errors: ${result.decodeErrors}`);
  assert(result.decodedFine > 1_000, `decoded fine: ${result.decodedFine}`);
  assert.deepStrictEqual(expectCorpus.map(decodeDatagram), before);
});
