/**
 * `ctnl update`: change entries, as `conntrack -U`.
 *
 * @module
 */

import type { Conntrack, Flow, GetOptions } from "../../mod.ts";
import { tupleSpecOf } from "../../src/tuple.ts";
import { validateFilter } from "../../src/filter.ts";
import { checked, FailError, isNotFound, UsageError } from "../errors.ts";
import {
  checkFamily,
  checkTuple,
  compact,
  dumpFilter,
  type Filters,
  getRequest,
  type NamedEntry,
  zoneOf,
} from "../filters.ts";
import { type OptionHelp, optionHelp } from "../options.ts";
import { type CommandBody, type Context, showingPartial } from "../context.ts";
import { changesFor, parseChanges } from "../changes.ts";
import { FILTER_OPTIONS, optionKeys } from "../help.ts";

const SELECTION: readonly OptionHelp[] = [
  ...FILTER_OPTIONS,
  { key: "zone", help: "Zone" },
  // conntrack -U takes these of dump's filters
  "maskSrc",
  "maskDst",
  "srcNat",
  "dstNat",
  "label",
  "srcKey",
  "dstKey",
  "replySrcKey",
  "replyDstKey",
];
const CHANGES: readonly OptionHelp[] = [
  { key: "timeout", help: "New timeout" },
  {
    key: "mark",
    help: "New mark; with MASK, the bits outside MASK are\n" +
      "kept and VALUE is xor-ed in (as conntrack does)",
  },
  { key: "status", help: "Status flags to set (flags are never cleared)" },
  { key: "state", help: "New TCP state (with -p tcp)" },
  { key: "labelAdd", help: "Labels to set (the others are kept)" },
  { key: "labelDel", help: "Labels to clear; all of them without a value" },
];
const OUTPUT: readonly OptionHelp[] = [
  { key: "output", help: "extended, id, labels (as conntrack -U -o)" },
  { key: "json", help: "One JSON object per changed entry" },
  "netns",
];

/**
 * The one entry update names when it is given one complete tuple (as get
 * takes it) and nothing else to select by; undefined otherwise.
 */
function namedTuple(f: Filters): NamedEntry | undefined {
  const given = (values: (number | string | undefined)[]) => values.some((v) => v !== undefined);
  const orig = given([f.src, f.dst, f.sport, f.dport]);
  const reply = given([f.replySrc, f.replyDst, f.replySport, f.replyDport]);
  if (orig === reply) return undefined;
  // NAT, label and network filters are matched on the listed entries.
  const listed = [f.srcNat, f.dstNat, f.labels, f.maskSrc, f.maskDst];
  if (listed.some((v) => v !== undefined) || f.src?.includes("/") || f.dst?.includes("/")) {
    return undefined;
  }
  try {
    return getRequest(f);
  } catch {
    return undefined;
  }
}

async function run(ctx: Context): Promise<number> {
  const changes = parseChanges(ctx, "update");
  if (Object.values(changes).every((v) => v === undefined)) {
    throw new UsageError(
      "update needs something to change: -m/--mark, -t/--timeout, -u/--status, --state, --label-add or --label-del",
    );
  }
  // -m, -u and --state are what to set; the rest selects the entries.
  const selection: Filters = {
    ...ctx.filters,
    mark: undefined,
    status: undefined,
    state: undefined,
  };
  const named = namedTuple(selection);
  const text = ctx.flowText(ctx.changeFormat(true));
  const out = ctx.stdout();
  /** Updates the entry `flow` was listed from and prints it as it is now. */
  const updateOne = async (ct: Conntrack, flow: Flow): Promise<boolean> => {
    const wanted = changesFor(flow, changes);
    if (wanted === undefined) return false; // unchanged: conntrack sends nothing and counts nothing
    const tuple = tupleSpecOf(flow.orig);
    const options = compact<GetOptions>({ zone: zoneOf(flow) });
    try {
      await ct.update(tuple, wanted, options);
      out.line(text(ct.getSync(tuple, options)));
    } catch (error) {
      if (isNotFound(error)) return false; // gone meanwhile
      throw error;
    }
    return true;
  };
  let updated = 0;
  if (named !== undefined) {
    checkFamily(selection, named.tuple);
    checkTuple(named.tuple, named.direction);
    using ct = ctx.open();
    let flow: Flow;
    try {
      flow = ct.getSync(named.tuple, named.options);
    } catch (error) {
      if (isNotFound(error)) throw new FailError("Operation failed: such conntrack doesn't exist");
      throw error;
    }
    if (await updateOne(ct, flow)) updated = 1;
  } else {
    const filter = dumpFilter(selection);
    checked(() => validateFilter(filter));
    using ct = ctx.open();
    using other = ctx.open();
    await showingPartial(out, async () => {
      for (const flow of ct.dumpSync(filter, { onInterrupted: "ignore" })) {
        if (await updateOne(other, flow)) updated++;
      }
    });
  }
  return ctx.changed(out, updated, "updated");
}

/** `ctnl update`, `ctnl -U`. */
export const update: CommandBody = {
  summary: "Change the mark, timeout, status or TCP state of entries (conntrack -U)",
  options: optionKeys(SELECTION, CHANGES, OUTPUT),
  help: `Usage: ctnl update [SELECTION] CHANGES [OUTPUT OPTIONS]     (also: ctnl -U)

Changes entries, as conntrack -U does, and prints each changed entry as it is
afterwards. With a full tuple (as get takes it: -p with -s -d --sport --dport,
or the reply tuple, or the --icmp-* fields; -w for a zone other than 0) it
changes that one entry and exits 1 with "Operation failed: such conntrack
doesn't exist" when there is none. With other selection options (or none:
every entry) it changes every entry they select. An entry that already has
the requested values is left alone and not counted, as with conntrack.
"N flow entries have been updated." goes to stderr; exit 1 when it is 0.

Selection (every given one must match):
${optionHelp(SELECTION)}

Changes (at least one):
${optionHelp(CHANGES)}

Output:
${optionHelp(OUTPUT)}

Examples:
  ctnl update -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 80 -m 42
  ctnl update -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 53 -t 600 -w 3
  ctnl update -p tcp --dport 22 -u ASSURED -t 7200
  ctnl update -s 10.0.0.1 -m 0x100/0xf00
  ctnl update -s 10.0.0.0/8 -n --label-add nat-seen
  ctnl update -l blocked --label-del
`,
  run,
};
