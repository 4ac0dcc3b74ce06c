/**
 * `ctnl delete`: delete what the filters select, as `conntrack -D`.
 *
 * @module
 */

import { type GetOptions, validateFilter } from "../../mod.ts";
import { checked, isNotFound } from "../errors.ts";
import { compact, dumpFilter, tupleOf, zoneOf } from "../filters.ts";
import { type OptionHelp, optionHelp } from "../options.ts";
import {
  changeFormat,
  type Command,
  type Context,
  flowText,
  open,
  stateMatcher,
  stdout,
  summary,
} from "../context.ts";
import { DUMP_FILTER_OPTIONS, optionKeys } from "../help.ts";

const OUTPUT: readonly OptionHelp[] = [
  { key: "output", help: "extended, id (as conntrack -D -o)" },
  { key: "json", help: "One JSON object per deleted entry" },
  "netns",
];

async function run(ctx: Context): Promise<number> {
  const filter = dumpFilter(ctx.filters);
  checked(() => validateFilter(filter));
  const keep = stateMatcher(ctx.filters.state);
  const text = flowText(ctx, changeFormat(ctx, false));
  using ct = open(ctx);
  const out = stdout(ctx);
  const print = (flow: Parameters<typeof text>[0]) => out.line(text(flow));
  let deleted = 0;
  try {
    if (keep === undefined) {
      deleted = await ct.deleteWhere(filter, { onDelete: print, onInterrupted: "ignore" });
    } else {
      // --state is matched here, so deleteWhere (which takes no predicate)
      // cannot be used: list on this handle, delete each match by tuple
      // and id on a second one.
      using other = open(ctx);
      for (const flow of ct.dumpSync(filter, { onInterrupted: "ignore" })) {
        if (!keep(flow)) continue;
        const options = compact<GetOptions & { id?: number }>({ zone: zoneOf(flow), id: flow.id });
        try {
          await other.delete(tupleOf(flow.orig), options);
        } catch (error) {
          if (isNotFound(error)) continue; // gone meanwhile, as conntrack skips it
          throw error;
        }
        print(flow);
        deleted++;
      }
    }
  } catch (error) {
    // Show what was deleted before the failure, then report it.
    if (!(error instanceof Deno.errors.BrokenPipe)) out.flush();
    throw error;
  }
  out.flush();
  summary(ctx, deleted, "flow entries have been deleted");
  return deleted === 0 ? 1 : 0;
}

/** `ctnl delete`, `ctnl -D`. */
export const del: Command = {
  name: "delete",
  words: ["delete"],
  flags: ["-D", "--delete"],
  summary: "Delete one entry, or every entry a filter selects (conntrack -D)",
  options: optionKeys(DUMP_FILTER_OPTIONS, OUTPUT),
  help: `Usage: ctnl delete [FILTERS] [OUTPUT OPTIONS]     (also: ctnl -D, --delete)

Deletes every entry the filters select, as conntrack -D does, and prints each
deleted entry as conntrack -L lists it. A full tuple (-p with -s -d --sport
--dport, or the --icmp-* fields) selects one entry (in each zone it exists
in, unless -w names one). Without any filter it deletes every entry.
"N flow entries have been deleted." goes to stderr; when nothing was deleted
the exit status is 1, as with conntrack.

Filters (the same as dump's):
${optionHelp(DUMP_FILTER_OPTIONS)}

Output:
${optionHelp(OUTPUT)}

Examples:
  ctnl delete -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 443
  ctnl delete -p tcp --dport 22
  ctnl delete -s 10.0.0.1 -m 0x10/0xf0
  ctnl delete -p tcp --state TIME_WAIT -o extended
  ctnl delete -f ipv6 -u UNREPLIED --json
`,
  run,
};
