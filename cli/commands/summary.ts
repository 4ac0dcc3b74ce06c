/**
 * `ctnl summary`: the table (or what the filters select) grouped by keys,
 * with count, packets and bytes per group.
 *
 * @module
 */

import { decodeFlowAt } from "../../src/decode.ts";
import { AttrCursor } from "../../src/netlink.ts";
import type { DumpFilter, Flow, Summary, SummarySort } from "../../mod.ts";
import { dumpAllNetns } from "../../src/netns.ts";
import { humanBytes, humanCount } from "../../src/units.ts";
import { Summarizer, SUMMARY_KEYS } from "../../src/summary.ts";
import { validateFilter } from "../../src/filter.ts";
import { checked, UsageError } from "../errors.ts";
import { dumpFilter } from "../filters.ts";
import { EXTRA_OPTIONS, ExtrasMatcher, listingExtras, parseExtras } from "../extras.ts";
import { optionHelp } from "../options.ts";
import { type CommandBody, type Context, stateMatcher } from "../context.ts";
import { DUMP_FILTER_OPTIONS, optionKeys } from "../help.ts";
import type { LineWriter } from "../output.ts";

const SORTS: readonly SummarySort[] = ["count", "packets", "bytes"];

function summarizer(ctx: Context): Summarizer {
  const v = ctx.parsed.values;
  const sort = v.get("sort") ?? "count";
  if (!SORTS.includes(sort as SummarySort)) {
    throw new UsageError(`invalid --sort "${sort}" (count, packets or bytes)`);
  }
  const topText = v.get("top");
  let top: number | undefined;
  if (topText !== undefined) {
    top = /^[1-9][0-9]{0,8}$/.test(topText) ? Number(topText) : NaN;
    if (Number.isNaN(top)) throw new UsageError(`invalid --top "${topText}" (a positive integer)`);
  }
  const by = v.get("by") ?? "proto,state";
  const tag = ctx.allNetns() ? { tag: "netns" } : {};
  try {
    return new Summarizer({
      by,
      sort: sort as SummarySort,
      ...(top === undefined ? {} : { top }),
      ...tag,
    });
  } catch (error) {
    if (error instanceof Error && "reason" in error) {
      throw new UsageError(`invalid --by "${by}": ${String(error.reason)}`);
    }
    throw error;
  }
}

/** The aligned table: keys left-aligned, numbers right-aligned, a total line. */
function printTable(out: LineWriter, s: Summary): void {
  const header = [...s.by.map((k) => k.toUpperCase()), "FLOWS"];
  if (s.accounting) header.push("PACKETS", "BYTES");
  const rows = s.groups.map((g) => {
    const row = [...g.key, humanCount(g.count)];
    if (s.accounting) row.push(humanCount(g.packets), humanBytes(g.bytes));
    return row;
  });
  const shown = s.groups.length < s.groupCount
    ? `${s.groups.length} of ${s.groupCount} groups`
    : `${s.groupCount} group${s.groupCount === 1 ? "" : "s"}`;
  const total = [`total (${shown})`, ...s.by.slice(1).map(() => ""), humanCount(s.total.count)];
  if (s.accounting) total.push(humanCount(s.total.packets), humanBytes(s.total.bytes));
  const table = [header, ...rows, total];
  const keys = s.by.length;
  const widths = header.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  // The total's label may be wider than the key columns: let it run into them.
  for (const row of table) {
    const cells = row.map((cell, c) =>
      c < keys ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)
    );
    if (row === total) {
      const label = row.slice(0, keys).join("  ").trimEnd();
      const keyWidth = widths.slice(0, keys).reduce((a, b) => a + b + 2, -2);
      out.line(`${label.padEnd(keyWidth)}  ${cells.slice(keys).join("  ")}`.trimEnd());
    } else out.line(cells.join("  ").trimEnd());
  }
}

function json(s: Summary): string {
  return JSON.stringify({
    by: s.by,
    groups: s.groups.map((g) => ({
      key: Object.fromEntries(s.by.map((k, i) => [k, g.key[i]])),
      count: g.count,
      packets: String(g.packets),
      bytes: String(g.bytes),
    })),
    groupCount: s.groupCount,
    total: { ...s.total, packets: String(s.total.packets), bytes: String(s.total.bytes) },
    accounting: s.accounting,
  });
}

type Keep = ((flow: Flow) => boolean) | undefined;

/** One namespace's table into `s`. */
async function tableSummary(ctx: Context, s: Summarizer, filter: DumpFilter, keep: Keep) {
  using ct = ctx.open();
  const extras = await listingExtras(ctx.parsed.values, ct);
  if (keep === undefined && !extras.active) {
    // No Flow per entry: the keys are read from the bytes (the decoder takes what the walk leaves).
    const cursor = new AttrCursor();
    await ct.dumpMessages(filter, {}, (bytes, view, offset, length) => {
      if (!s.addMessage(bytes, view, offset, length)) {
        s.add(decodeFlowAt(cursor, bytes, view, offset, length));
      }
    });
    return extras;
  }
  for await (const flow of ct.dump(filter)) {
    if ((keep === undefined || keep(flow)) && (!extras.active || extras.test(flow))) s.add(flow);
  }
  return extras;
}

/** Every namespace's table into `s`, each flow tagged with its namespace. */
async function allNetnsSummary(ctx: Context, s: Summarizer, filter: DumpFilter, keep: Keep) {
  if (ctx.parsed.values.has("idle")) {
    throw new UsageError("option --idle cannot be used with --all-netns (yet)");
  }
  ctx.needFfi();
  const extras = new ExtrasMatcher(parseExtras(ctx.parsed.values));
  for await (const { netns, flow } of dumpAllNetns(filter, { onInterrupted: "ignore" })) {
    if ((keep === undefined || keep(flow)) && (!extras.active || extras.test(flow))) {
      s.add(flow, netns.label);
    }
  }
  return extras;
}

async function run(ctx: Context): Promise<number> {
  const filter = dumpFilter(ctx.filters);
  checked(() => validateFilter(filter));
  const s = summarizer(ctx);
  parseExtras(ctx.parsed.values); // bad values are exit 2 before anything is opened
  const keep: ((flow: Flow) => boolean) | undefined = stateMatcher(ctx.filters.state);
  const extras = ctx.allNetns()
    ? await allNetnsSummary(ctx, s, filter, keep)
    : await tableSummary(ctx, s, filter, keep);
  const result = s.result();
  const out = ctx.stdout();
  if (ctx.json) out.line(json(result));
  else printTable(out, result);
  out.flush();
  for (const warning of extras.warnings()) ctx.stderrLine(warning);
  if (!ctx.json && !result.accounting && result.total.count > 0) {
    ctx.stderrLine(
      "ctnl: no packet or byte counters: accounting is off " +
        "(sysctl -w net.netfilter.nf_conntrack_acct=1; counts start with new connections)",
    );
  }
  return 0;
}

const SUMMARY_OPTIONS = [
  {
    key: "by",
    help: `Group by these keys (default proto,state):\n` +
      `  ${SUMMARY_KEYS.slice(0, 4).join(" ")}\n` +
      `  ${SUMMARY_KEYS.slice(4, 8).join(" ")}\n` +
      `  ${SUMMARY_KEYS.slice(8).join(" ")}\n` +
      "  src/24 (IPv4 /24, IPv6 /24), src/24/64 (IPv6 /64): prefixes",
  },
  { key: "sort", placeholder: "count|packets|bytes", help: "Largest first (default count)" },
  { key: "top", help: "Only the N first groups (the total counts all)" },
  { key: "json", help: "One JSON object instead (exact counters, as strings)" },
  "netns",
  { key: "allNetns", help: "Every network namespace: the namespace is the first key" },
] as const;

/** `ctnl summary`. */
export const summary: CommandBody = {
  summary: "Entries grouped by source, port, state, … with counts",
  options: optionKeys(DUMP_FILTER_OPTIONS, EXTRA_OPTIONS, SUMMARY_OPTIONS),
  help: `Usage: ctnl summary [--by KEY[,KEY…]] [--sort count|packets|bytes] [--top N] [FILTERS]

Groups the entries of the table (or those the filters select) and prints,
per group, the number of flows and, when accounting is on, their packets and
bytes (both directions), largest first, with a total line. Memory grows with
the number of groups, not with the number of entries.

Grouping:
${optionHelp(SUMMARY_OPTIONS)}

Filters (as ctnl dump):
${optionHelp(DUMP_FILTER_OPTIONS)}
${optionHelp(EXTRA_OPTIONS)}

Examples:
  ctnl summary
  ctnl summary --by src --top 10
  ctnl summary --by src/24,dport -p tcp --sort bytes
  ctnl summary --by zone,proto --json
  ctnl summary --all-netns --by proto
  ctnl summary --by dst --older-than 1h --bytes-gt 10Mi
`,
  run,
};
