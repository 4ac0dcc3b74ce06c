/**
 * `ctnl get`: one entry by its tuple, as `conntrack -G`.
 *
 * @module
 */

import { labelBits } from "../../src/format.ts";
import { validateTuple } from "../../src/tuple.ts";
import { checked } from "../errors.ts";
import { checkFamily, getRequest, isTupleAsked, noNetworks } from "../filters.ts";
import { type OptionHelp, optionHelp } from "../options.ts";
import type { CommandBody, Context } from "../context.ts";
import { FILTER_OPTIONS, LISTING_OUTPUT_OPTIONS, optionKeys } from "../help.ts";

const TUPLE: readonly OptionHelp[] = [
  ...FILTER_OPTIONS,
  { key: "zone", help: "Zone to look in (default 0)" },
  "srcKey",
  "dstKey",
  "replySrcKey",
  "replyDstKey",
  { key: "label", help: "Show it only if it has every one of these labels" },
];

function run(ctx: Context): number {
  noNetworks(ctx.filters, "get");
  const { tuple, options, direction } = getRequest(ctx.filters);
  checkFamily(ctx.filters, tuple);
  checked(() => validateTuple(tuple), direction);
  using ct = ctx.open();
  const flow = checked(() => ct.getSync(tuple, options), direction);
  // conntrack -G shows nothing (and fails) for an entry the kernel found by
  // its other direction, or without the labels -l names.
  const wanted = ctx.filters.labels;
  const have = new Set(flow.labels === undefined ? [] : labelBits(flow.labels));
  const labelled = wanted === undefined || wanted.every((bit) => have.has(bit));
  if (!labelled || !isTupleAsked(flow[direction], tuple)) {
    ctx.summary(0);
    return 1;
  }
  const out = ctx.stdout();
  out.line(ctx.flowText()(flow));
  out.flush();
  ctx.summary(1);
  return 0;
}

/** `ctnl get`, `ctnl -G`. */
export const get: CommandBody = {
  summary: "Show one entry, given its tuple (conntrack -G)",
  options: optionKeys(TUPLE, LISTING_OUTPUT_OPTIONS),
  help:
    `Usage: ctnl get -p PROTO -s ADDR -d ADDR [--sport PORT --dport PORT] [OPTIONS]   (also: ctnl -G)

Shows one entry, found by its original tuple (-s -d with --sport --dport, or the
--icmp-* fields for ICMP), or by its reply tuple (-r -q with --reply-port-src
--reply-port-dst). Exits 1 with "Operation failed: such conntrack doesn't exist"
when there is none.

Tuple:
${optionHelp(TUPLE)}

Output:
${optionHelp(LISTING_OUTPUT_OPTIONS)}

Examples:
  ctnl get -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 443
  ctnl get -p udp -r 10.0.0.2 -q 10.0.0.1 --reply-port-src 53 --reply-port-dst 5353
  ctnl get -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 77
  ctnl get -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 5555 -w 7 --json
`,
  run,
};
