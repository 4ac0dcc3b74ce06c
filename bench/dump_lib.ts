/**
 * The library's streaming dump with every field decoded: iterates
 * `ct.dumpSync()` and touches each flow (addresses, ports, state), so
 * nothing the decoder builds can be optimised away.
 *
 * `deno run --allow-ffi bench/dump_lib.ts [netns]` prints the count and a
 * checksum.
 *
 * @module
 */

import { Conntrack } from "../mod.ts";

const netns = Deno.args[0];
using ct = Conntrack.open(netns === undefined ? {} : { netns });
let n = 0;
let sum = 0;
for (const flow of ct.dumpSync()) {
  n++;
  sum += flow.orig.src!.length + flow.reply.dst!.length + flow.orig.srcPort! +
    (flow.reply.dstPort ?? 0) + (flow.tcp?.state ?? 0) + flow.status + (flow.timeout ?? 0);
}
console.log(n, sum);
