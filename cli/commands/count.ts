/**
 * `ctnl count`: the number of entries, as `conntrack -C`; with
 * `--all-netns` one line per network namespace.
 *
 * @module
 */

import { Conntrack } from "../../src/conntrack.ts";
import { listNetns } from "../../src/netns.ts";
import type { CommandBody, Context } from "../context.ts";
import { countLines } from "../quick.ts";

/** Every namespace's count, one line each, tagged with the namespace. */
async function countAll(ctx: Context): Promise<number> {
  ctx.needFfi();
  const out = ctx.stdout();
  for (const netns of await listNetns()) {
    let stats;
    try {
      using ct = Conntrack.open({ netns: netns.path });
      stats = await ct.globalStats();
    } catch (error) {
      if (error instanceof Error && "code" in error && error.code === "ENOENT") continue; // vanished
      throw error;
    }
    ctx.setNetns(netns);
    for (const line of countLines(stats, ctx.json)) out.line(ctx.tagged(line));
  }
  out.flush();
  return 0;
}

async function run(ctx: Context): Promise<number> {
  if (ctx.allNetns()) return await countAll(ctx);
  using ct = ctx.open();
  const stats = await ct.globalStats();
  const out = ctx.stdout();
  for (const line of countLines(stats, ctx.json)) out.line(line);
  out.flush();
  return 0;
}

/** `ctnl count`, `ctnl -C`. */
export const count: CommandBody = {
  summary: "Number of entries in the table (conntrack -C)",
  options: ["netns", "json", "allNetns"],
  help: `Usage: ctnl count [--json] [--netns NAME|PATH] [--all-netns]     (also: ctnl -C)

The number of entries in the table, as conntrack -C prints it.
With --json: {"entries":N,"maxEntries":M} (M is nf_conntrack_max).
With --all-netns: one line per network namespace (those named under
/run/netns and those of running processes), "netns=NAME N" (a namespace
without a name is "netns=net:[INODE] pid=PID N"); with --json the object
starts with "netns", "netnsInode" (and "netnsPid").

Examples:
  ctnl count
  ctnl count --netns blue --json
  ctnl count --all-netns
`,
  run,
};
