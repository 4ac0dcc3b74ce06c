/**
 * A longer fuzz campaign: `deno task fuzz [cases] [seed]` (defaults: 5,000,000
 * cases, a seed from the clock). Prints the seed so a failure can be replayed.
 *
 * @module
 */

import { readCapture } from "./_capture.ts";
import { fuzz } from "./_fuzz.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url);
const corpus = ["dump.bin", "stats.bin", "count.bin", "enoent.bin", "einval.bin", "empty.bin"]
  .concat([
    "expect_dump.bin",
    "expect_stats.bin",
    "expect_events.bin",
    "expect_enoent.bin",
    "dying.bin",
  ])
  .flatMap((f) => readCapture(new URL(f, FIXTURES)));
const cases = Number(Deno.args[0] ?? 5_000_000);
const seed = Number(Deno.args[1] ?? (Date.now() & 0x7fffffff));
const start = performance.now();
const result = fuzz(corpus, cases, seed);
const seconds = (performance.now() - start) / 1000;
console.log(
  `seed ${seed}: ${result.cases} cases in ${seconds.toFixed(1)} s, ` +
    `${result.decodeErrors} DecodeError, ${result.decodedFine} decoded, ${result.failures.length} failures`,
);
for (const f of result.failures) console.log(f.error);
Deno.exit(result.failures.length === 0 ? 0 : 1);
