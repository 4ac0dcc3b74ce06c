/**
 * `ctnl top`: a live, top-like view of the table (see cli/top/ and docs/top.md).
 *
 * @module
 */

import type { Conntrack } from "../../mod.ts";
import { isArgumentError } from "../../src/errors.ts";
import { validateFilter } from "../../src/filter.ts";
import { checked, UsageError } from "../errors.ts";
import { dumpFilter } from "../filters.ts";
import { type OptionHelp, optionHelp } from "../options.ts";
import { type CommandBody, type Context, stateMatcher } from "../context.ts";
import { DUMP_FILTER_OPTIONS, optionKeys } from "../help.ts";
import { runTop, type TopSettings } from "../top/app.ts";
import { GROUP_KEYS, groupKey, SORT_KEYS, type SortKey, sortKeys } from "../top/rows.ts";
import { EXTRA_OPTIONS, listingExtras, parseExtras } from "../extras.ts";

/** `text` in lines of at most 58 characters, as the option help lays them out. */
function wrap(text: string): string {
  const lines = [""];
  for (const word of text.split(" ")) {
    const line = lines.at(-1)!;
    if (line !== "" && line.length + 1 + word.length > 58) lines.push(word);
    else lines[lines.length - 1] = line === "" ? word : `${line} ${word}`;
  }
  return lines.join("\n");
}

const VIEW: readonly OptionHelp[] = [
  "interval",
  "once",
  "rows",
  {
    key: "sort",
    help: "Sort by: rate (default), prate, bytes, packets, age,\n" +
      "timeout, proto, state, src, dst; with --by: flows, group,\n" +
      "rate, prate, bytes, packets",
  },
  {
    key: "by",
    help: wrap(
      `One row per group: ${GROUP_KEYS.join(", ")}, or an address prefix: ` +
        "src/24, dst/64, src/24/64 (IPv4/IPv6)",
    ),
  },
  "netns",
];

function settings(ctx: Context): TopSettings {
  const v = ctx.parsed.values;
  const intervalText = v.get("interval") ?? "2";
  const interval = Number(intervalText);
  if (!/^\d+(\.\d+)?$/.test(intervalText) || !(interval >= 0.1 && interval <= 3600)) {
    throw new UsageError(`invalid interval "${intervalText}" for --interval (0.1-3600 seconds)`);
  }
  const rowsText = v.get("rows");
  let rows: number | undefined;
  if (rowsText !== undefined) {
    rows = Number(rowsText);
    if (!/^\d+$/.test(rowsText) || rows < 1 || rows > 100_000) {
      throw new UsageError(`invalid number "${rowsText}" for --rows (1-100000)`);
    }
  }
  const by = v.get("by")?.split(",") ?? [];
  const groupBy = by.map((key) => {
    try {
      return groupKey(key);
    } catch (error) {
      const reason = isArgumentError(error) ? error.reason : (error as Error).message;
      throw new UsageError(`invalid key for --by: ${reason}`);
    }
  });
  const sortText = v.get("sort");
  const allowed = sortKeys(by.length > 0);
  const sort = (sortText ?? (allowed.includes("rate") ? "rate" : allowed[0])) as SortKey;
  if (!allowed.includes(sort)) {
    const known = SORT_KEYS.some((s) => s.key === sortText);
    throw new UsageError(
      known
        ? `--sort ${sortText} cannot be used ${by.length > 0 ? "with" : "without"} --by`
        : `invalid key "${sortText}" for --sort (${allowed.join(", ")})`,
    );
  }
  const filter = dumpFilter(ctx.filters);
  checked(() => validateFilter(filter));
  return {
    interval,
    once: ctx.parsed.flags.has("once"),
    rows,
    sort,
    by,
    groupBy,
    filter,
    keep: undefined,
  };
}

/** `--state` and the listing extras (`--older-than`, `--idle`, `--bytes-gt`, …), per pass. */
async function keeper(ctx: Context, ct: Conntrack): Promise<TopSettings["keep"]> {
  const state = stateMatcher(ctx.filters.state);
  const extras = await listingExtras(ctx.parsed.values, ct);
  if (state === undefined && !extras.active) return undefined;
  return () => {
    extras.nowNs = BigInt(Date.now()) * 1_000_000n; // ages as of this pass
    return (flow) => (state === undefined || state(flow)) && (!extras.active || extras.test(flow));
  };
}

async function run(ctx: Context): Promise<number> {
  const s = settings(ctx); // bad parameters are exit 2 before anything is opened
  parseExtras(ctx.parsed.values);
  using ct = ctx.open();
  const keep = await keeper(ctx, ct);
  const terminal = ctx.io.stdout === Deno.stdout && Deno.stdout.isTerminal();
  const interactive = terminal && !s.once && Deno.stdin.isTerminal();
  const size = terminal ? () => Deno.consoleSize() : undefined;
  return await runTop({ ...s, keep }, {
    ct,
    stdout: ctx.io.stdout,
    interactive,
    color: terminal && !Deno.noColor,
    size,
  });
}

/** `ctnl top`. */
export const top: CommandBody = {
  summary: "A live view of the busiest flows, refreshed (like top)",
  options: optionKeys(DUMP_FILTER_OPTIONS, EXTRA_OPTIONS, VIEW),
  help: `Usage: ctnl top [FILTERS] [--interval S] [--sort KEY] [--by KEY,…] [--once]

A full-screen view of the table that refreshes every --interval seconds: one
row per flow (or per group with --by), with bytes and packets per second from
the counters' change between two refreshes (needs accounting:
sysctl net.netfilter.nf_conntrack_acct=1), total bytes, age (needs
nf_conntrack_timestamp=1) and timeout. Only the rows on screen are kept: a
table of a million entries streams through without stalling the keys.

Keys: s/S next/previous sort key, r reverse, / filter (text in protocol, state,
source or destination; Enter applies, Esc cancels), space or p pause,
up/down/j/k/PgUp/PgDn select, d delete the selected flow (asks y/N), q or
Ctrl-C quit.

When stdout is not a terminal it prints plain frames (all columns, --rows
rows, default 20) every interval; --once prints one frame and exits. NO_COLOR
turns styling off.

Filters (as dump's; they select what is shown):
${optionHelp(DUMP_FILTER_OPTIONS)}
${optionHelp(EXTRA_OPTIONS)}

View:
${optionHelp(VIEW)}

Examples:
  ctnl top
  ctnl top -p tcp --dport 443 --interval 1
  ctnl top --by src/24 --sort bytes
  ctnl top --once --rows 10 --netns blue
`,
  run,
};
