/**
 * `ctnl stats`: per-CPU statistics, as `conntrack -S`.
 *
 * @module
 */

import type { CommandBody, Context } from "../context.ts";
import { statsLines } from "../quick.ts";

async function run(ctx: Context): Promise<number> {
  using ct = ctx.open();
  const stats = await ct.stats();
  const out = ctx.stdout();
  for (const line of statsLines(stats, ctx.json)) out.line(line);
  out.flush();
  return 0;
}

/** `ctnl stats`, `ctnl -S`. */
export const stats: CommandBody = {
  summary: "Per-CPU statistics (conntrack -S)",
  options: ["netns", "json"],
  help: `Usage: ctnl stats [--json] [--netns NAME|PATH]     (also: ctnl -S)

Per-CPU conntrack statistics, one line per CPU as conntrack -S prints them:
  cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 …
With --json: {"cpus":[{"cpu":0,"found":0,"invalid":0,…},…]}.

Examples:
  ctnl stats
  ctnl stats --json | jq '[.cpus[].drop] | add'
`,
  run,
};
