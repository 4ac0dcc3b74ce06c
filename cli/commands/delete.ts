/**
 * `ctnl delete`: delete what the filters select, as `conntrack -D`.
 *
 * @module
 */

import type { DeleteOptions, Flow } from "../../mod.ts";
import { tupleSpecOf } from "../../src/tuple.ts";
import { validateFilter } from "../../src/filter.ts";
import { checked, isNotFound } from "../errors.ts";
import { compact, dumpFilter, zoneOf } from "../filters.ts";
import { type OptionHelp, optionHelp } from "../options.ts";
import { type CommandBody, type Context, showingPartial, stateMatcher } from "../context.ts";
import { DUMP_FILTER_OPTIONS, optionKeys } from "../help.ts";
import { EXTRA_OPTIONS, listingExtras, parseExtras } from "../extras.ts";

const OUTPUT: readonly OptionHelp[] = [
  { key: "output", help: "extended, id (as conntrack -D -o)" },
  { key: "json", help: "One JSON object per deleted entry" },
  "netns",
];

/** delete takes dump's filters but -c and -j, as conntrack -D. */
const FILTERS = DUMP_FILTER_OPTIONS.filter((o) => {
  const key = typeof o === "string" ? o : o.key;
  return key !== "secmark" && key !== "anyNat";
});

async function run(ctx: Context): Promise<number> {
  const filter = dumpFilter(ctx.filters);
  checked(() => validateFilter(filter));
  const state = stateMatcher(ctx.filters.state);
  parseExtras(ctx.parsed.values);
  const text = ctx.flowText(ctx.changeFormat(false));
  using ct = ctx.open();
  const extras = await listingExtras(ctx.parsed.values, ct);
  const keep = state === undefined && !extras.active
    ? undefined
    : (flow: Flow) => (state === undefined || state(flow)) && (!extras.active || extras.test(flow));
  const out = ctx.stdout();
  const print = (flow: Flow) => out.line(text(flow));
  // --state and the extras are matched here, so deleteWhere (which takes no predicate)
  // cannot be used for it: list on this handle, delete each match by
  // tuple and id on a second one.
  const deleteMatching = async (): Promise<number> => {
    using other = ctx.open();
    let deleted = 0;
    for (const flow of ct.dumpSync(filter, { onInterrupted: "ignore" })) {
      if (!keep!(flow)) continue;
      const options = compact<DeleteOptions>({ zone: zoneOf(flow), id: flow.id });
      try {
        await other.delete(tupleSpecOf(flow.orig), options);
      } catch (error) {
        if (isNotFound(error)) continue; // gone meanwhile, as conntrack skips it
        throw error;
      }
      print(flow);
      deleted++;
    }
    return deleted;
  };
  // What was deleted before a failure is shown, then the failure.
  const deleted = await showingPartial(
    out,
    () =>
      keep === undefined
        ? ct.deleteWhere(filter, { onDelete: print, onInterrupted: "ignore" })
        : deleteMatching(),
  );
  for (const warning of extras.warnings()) ctx.stderrLine(warning);
  return ctx.changed(out, deleted, "deleted");
}

/** `ctnl delete`, `ctnl -D`. */
export const del: CommandBody = {
  summary: "Delete one entry, or every entry a filter selects (conntrack -D)",
  options: optionKeys(FILTERS, EXTRA_OPTIONS, OUTPUT),
  help: `Usage: ctnl delete [FILTERS] [OUTPUT OPTIONS]     (also: ctnl -D, --delete)

Deletes every entry the filters select, as conntrack -D does, and prints each
deleted entry as conntrack -L lists it. A full tuple (-p with -s -d --sport
--dport, or the --icmp-* fields) selects one entry (in each zone it exists
in, unless -w names one). Without any filter it deletes every entry.
"N flow entries have been deleted." goes to stderr; when nothing was deleted
the exit status is 1, as with conntrack.

Filters (the same as dump's but -c and -j, as with conntrack):
${optionHelp(FILTERS)}
${optionHelp(EXTRA_OPTIONS)}

Output:
${optionHelp(OUTPUT)}

Examples:
  ctnl delete -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 443
  ctnl delete -p tcp --dport 22
  ctnl delete -s 10.0.0.1 -m 0x10/0xf0
  ctnl delete -p tcp --state TIME_WAIT -o extended
  ctnl delete -f ipv6 -u UNREPLIED --json
  ctnl delete -p udp --idle 10m
`,
  run,
};
