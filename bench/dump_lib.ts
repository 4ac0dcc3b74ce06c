/**
 * The library's streaming dump with every field decoded: iterates
 * `ct.dumpSync()` and touches each flow (addresses, ports, state), so
 * nothing the decoder builds can be optimised away.
 *
 * `deno run --allow-ffi bench/dump_lib.ts [netns] [--async] [--no-prefetch]`
 * prints the count and a checksum; `--async` iterates `for await` over
 * `ct.dump()` instead (the non-blocking form), `--no-prefetch` without
 * receiving ahead (the blocking form's Worker, the async form's `recvmmsg`
 * on Deno's blocking pool).
 *
 * @module
 */

import { Conntrack, type Flow } from "../mod.ts";

const args = Deno.args.filter((a) => !a.startsWith("--"));
const netns = args[0];
using ct = Conntrack.open(netns === undefined ? {} : { netns });
let n = 0;
let sum = 0;
const add = (flow: Flow) => {
  n++;
  sum += flow.orig.src!.length + flow.reply.dst!.length + flow.orig.srcPort! +
    (flow.reply.dstPort ?? 0) + (flow.tcp?.state ?? 0) + flow.status + (flow.timeout ?? 0);
};
const prefetch = !Deno.args.includes("--no-prefetch");
if (Deno.args.includes("--async")) {
  for await (const flow of ct.dump(undefined, { prefetch })) add(flow);
} else {
  for (const flow of ct.dumpSync(undefined, { prefetch })) add(flow);
}
console.log(n, sum);
