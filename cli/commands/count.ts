/**
 * `ctnl count`: the number of entries, as `conntrack -C`.
 *
 * @module
 */

import type { Command, Context } from "../context.ts";

async function run(ctx: Context): Promise<number> {
  using ct = ctx.open();
  const stats = await ct.globalStats();
  const out = ctx.stdout();
  out.line(ctx.json ? JSON.stringify(stats) : String(stats.entries));
  out.flush();
  return 0;
}

/** `ctnl count`, `ctnl -C`. */
export const count: Command = {
  name: "count",
  words: ["count"],
  flags: ["-C", "--count", "--counter"],
  summary: "Number of entries in the table (conntrack -C)",
  options: ["netns", "json"],
  help: `Usage: ctnl count [--json] [--netns NAME|PATH]     (also: ctnl -C)

The number of entries in the table, as conntrack -C prints it.
With --json: {"entries":N,"maxEntries":M} (M is nf_conntrack_max).

Examples:
  ctnl count
  ctnl count --netns blue --json
`,
  run,
};
