/**
 * `ctnl dump`: list the table, as `conntrack -L`.
 *
 * @module
 */

import { DumpInterruptedError } from "../../src/errors.ts";
import { validateFilter } from "../../src/filter.ts";
import { checked, UsageError } from "../errors.ts";
import { dumpFilter } from "../filters.ts";
import { optionHelp, optionName } from "../options.ts";
import {
  type CommandBody,
  type Context,
  showingPartial,
  stateMatcher,
  VERSION,
} from "../context.ts";
import { DUMP_FILTER_OPTIONS, LISTING_OUTPUT_OPTIONS, optionKeys } from "../help.ts";
import { dumpRows, isList } from "../expect/table.ts";
import { listing } from "../output.ts";
import { transcodeDump, transcodes } from "../transcode.ts";
import { EXTRA_OPTIONS, listingExtras, parseExtras } from "../extras.ts";
import { listingSort, SORT_OPTIONS } from "../sort.ts";

/** What conntrack -L -z refuses beside it ("Can't use -z with filtering parameters"). */
const NOT_WITH_ZERO = [
  "proto",
  "src",
  "dst",
  "replySrc",
  "replyDst",
  "mark",
  "secmark",
  "status",
  "zone",
  "label",
  "origZone",
  "replyZone",
] as const;

async function run(ctx: Context): Promise<number> {
  const filter = dumpFilter(ctx.filters);
  checked(() => validateFilter(filter)); // bad parameters are exit 2 before anything is opened
  const zero = ctx.filters.zero;
  if (zero) {
    const given = NOT_WITH_ZERO.find((key) =>
      ctx.parsed.values.has(key) || ctx.parsed.lists.has(key)
    );
    if (given !== undefined) {
      throw new UsageError(
        `-z/--zero cannot be used with filtering parameters (${optionName(given)})`,
      );
    }
  }
  parseExtras(ctx.parsed.values);
  const sorter = listingSort(ctx);
  if (ctx.allNetns()) return ctx.dumpAllNetns(filter, stateMatcher(ctx.filters.state));
  using ct = ctx.open();
  const out = ctx.stdout();
  const keep = stateMatcher(ctx.filters.state);
  const extras = await listingExtras(ctx.parsed.values, ct);
  const format = ctx.format;
  const { text, end } = listing(ctx.outputs, format, ctx.flowText(format)); // -o save, -o xml
  let n = 0;
  // What came before a failure is shown, as conntrack does, then the failure.
  const interrupted = await showingPartial(out, async () => {
    try {
      format.now = Math.floor(Date.now() / 1000);
      if (!extras.active && sorter === undefined && transcodes(ctx)) {
        const state = ctx.filters.state;
        const matched = keep === undefined || state === undefined
          ? undefined
          : { name: state, keep };
        // no Flow per entry
        n = await transcodeDump(ct, filter, zero ? { zero } : {}, out, format, ctx.json, matched);
        return false;
      }
      // the table, or the dying/unconfirmed list
      for await (const flow of dumpRows(ct, ctx, filter, zero ? { zero } : {})) {
        if (keep !== undefined && !keep(flow)) continue;
        if (extras.active && !extras.test(flow)) continue;
        if (sorter === undefined) out.line(text(flow));
        else sorter.add(flow, text(flow));
        if ((++n & 1023) === 0) format.now = Math.floor(Date.now() / 1000);
      }
      if (sorter !== undefined) n = sorter.finish(out);
      return false;
    } catch (error) {
      if (error instanceof DumpInterruptedError) return true;
      throw error;
    }
  });
  if (!isList(ctx)) end(out); // conntrack -L dying|unconfirmed -o xml prints no </conntrack>
  out.flush();
  for (const warning of extras.warnings()) ctx.stderrLine(warning);
  if (interrupted) {
    ctx.stderrLine(
      "ctnl: warning: the table changed during the dump (NLM_F_DUMP_INTR); entries may be missing or repeated",
    );
  }
  ctx.summary(n);
  return 0;
}

/** `ctnl dump`, `ctnl list`, `ctnl -L`. */
export const dump: CommandBody = {
  summary: "List entries, optionally filtered (conntrack -L)",
  options: optionKeys(
    DUMP_FILTER_OPTIONS,
    EXTRA_OPTIONS,
    LISTING_OUTPUT_OPTIONS,
    ["zero"],
    SORT_OPTIONS,
    ["allNetns"],
  ),
  help: `Usage: ctnl dump [FILTERS] [OUTPUT OPTIONS]     (also: ctnl list, ctnl -L)

Lists the entries of the conntrack table, as conntrack -L. Filters run in the
kernel where it can (family, mark, status, zone, IPv4 tuples), otherwise in
ctnl; the result is the same. Every given filter must match.

Filters:
${optionHelp(DUMP_FILTER_OPTIONS)}

Filters of ctnl's own (in ctnl, on each entry):
${optionHelp(EXTRA_OPTIONS)}

Output:
${optionHelp(LISTING_OUTPUT_OPTIONS)}
${optionHelp(["zero"])}
${optionHelp(SORT_OPTIONS)}
${
    optionHelp([{
      key: "allNetns",
      help: "Every namespace's entries, each line starting\nnetns=NAME (docs/exporter.md)",
    }])
  }

The summary "ctnl v${VERSION} (@ctnl/conntrack): N flow entries have been shown." goes to stderr.

Examples:
  ctnl dump
  ctnl dump -p tcp --dport 22 -u ASSURED
  ctnl dump -f ipv6 -o extended,id
  ctnl dump -s 10.0.0.1 -m 0x10/0xf0
  ctnl dump -u UNREPLIED -p udp
  ctnl dump --idle 10m --sort bytes --top 20
  ctnl dump -p tcp --older-than 1d -o extended
  ctnl dump -s 10.0.0.0/8 -j
  ctnl dump -n 192.0.2.1:4000 -l blocked,audit
  ctnl dump -f ipv4 -z
  ctnl dump --json --netns blue > flows.ndjson
`,
  run,
};
