/**
 * `ctnl flush`: empty the table, as `conntrack -F`.
 *
 * @module
 */

import type { FlushOptions } from "../../mod.ts";
import { compact } from "../filters.ts";
import { type OptionHelp, optionHelp } from "../options.ts";
import { type CommandBody, type Context, SUMMARY_PREFIX } from "../context.ts";
import { optionKeys } from "../help.ts";

const OPTIONS: readonly OptionHelp[] = [
  { key: "family", help: "Only this family's entries" },
  { key: "mark", help: "Only entries whose mark matches" },
  "netns",
];

async function run(ctx: Context): Promise<number> {
  const options = compact<FlushOptions>({ family: ctx.filters.family, mark: ctx.filters.mark });
  using ct = ctx.open();
  await ct.flush(options);
  ctx.stderrLine(`${SUMMARY_PREFIX}connection tracking table has been emptied.`);
  return 0;
}

/** `ctnl flush`, `ctnl -F`. */
export const flush: CommandBody = {
  summary: "Empty the table, or one family's or mark's entries (conntrack -F)",
  options: optionKeys(OPTIONS),
  help: `Usage: ctnl flush [-f ipv4|ipv6] [-m VALUE[/MASK]] [--netns NAME|PATH]   (also: ctnl -F)

Deletes every entry of the table, or only those of one family, or only those
whose mark matches (mark & MASK == VALUE), and prints "connection tracking
table has been emptied." to stderr.

Unlike conntrack 1.4.7 -F, whose request makes the kernel ignore -f (it
always empties the whole table), ctnl flush -f ipv4 keeps the IPv6 entries.

Options:
${optionHelp(OPTIONS)}

Examples:
  ctnl flush
  ctnl flush -f ipv6
  ctnl flush -m 0x100/0xf00 --netns blue
`,
  run,
};
