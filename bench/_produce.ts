/**
 * Event producer for bench/create_events.ts, run as its own process:
 * `deno run --allow-ffi --allow-read --allow-env bench/_produce.ts NS N` creates N
 * entries in namespace NS with batched creates, then flushes the table.
 *
 * @module
 */

import { Conntrack } from "../mod.ts";
import { benchSpecs } from "./_setup.ts";

using ct = Conntrack.open({ netns: Deno.args[0]! });
ct.createManySync(benchSpecs(Number(Deno.args[1])));
await ct.flush();
