/**
 * What a command is (its syntax, options, help and `run`) and what it runs
 * with: the parsed options and filters, the output format, the streams.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { Conntrack, type Flow, flowToJson, formatFlow, type FormatOptions } from "../mod.ts";
import { FailError } from "./errors.ts";
import type { CommandSyntax, OptionKey, Parsed } from "./options.ts";
import type { OutputKeyword } from "./values.ts";
import type { Filters } from "./filters.ts";
import { type Io, LineWriter, messageLine } from "./output.ts";

/** ctnl's version, from deno.json. */
export const VERSION: string = denoJson.version;
/** Prefix of the summary line, laid out as conntrack's `conntrack v1.4.7 (conntrack-tools): `. */
export const SUMMARY_PREFIX = `ctnl v${VERSION} (@ctnl/conntrack): `;
/** Where conntrack-tools and libnetfilter_conntrack read label names. */
export const LABEL_FILE = "/etc/xtables/connlabel.conf";

/** One command: `cli/commands/<name>.ts` exports one, `cli/commands/mod.ts` lists them. */
export interface Command extends CommandSyntax {
  /** The line in the main help's command list. */
  readonly summary: string;
  /** The options it takes (help and version are taken by every command). */
  readonly options: readonly OptionKey[];
  /** `ctnl help NAME`. */
  readonly help: string;
  /** Runs it; returns the exit status. */
  run(ctx: Context): number | Promise<number>;
}

/** What a command runs with. */
export interface Context {
  readonly parsed: Parsed;
  readonly filters: Filters;
  /** `--json` was given. */
  readonly json: boolean;
  /** The `-o` keywords. */
  readonly outputs: ReadonlySet<OutputKeyword>;
  /** The text format the `-o` keywords ask for. */
  readonly format: FormatOptions;
  readonly io: Io;
}

/** A handle on the table in the namespace `--netns` names (or ctnl's own). */
export function open(ctx: Context): Conntrack {
  const state = Deno.permissions.querySync({ name: "ffi" }).state;
  if (state !== "granted") {
    throw new FailError(
      "needs FFI access to reach netlink: run it as `deno run --allow-ffi …` (or `deno task ctnl …`)",
    );
  }
  const netns = ctx.parsed.values.get("netns");
  return Conntrack.open(netns === undefined ? {} : { netns });
}

/** A line writer for stdout. */
export function stdout(ctx: Context): LineWriter {
  return new LineWriter(ctx.io.stdout);
}

/** One message line on stderr. */
export function stderrLine(ctx: Context, text: string): void {
  messageLine(ctx.io.stderr, text);
}

/** The summary line on stderr: `ctnl v… (@ctnl/conntrack): N flow entries have been shown.` */
export function summary(ctx: Context, n: number, what = "flow entries have been shown"): void {
  stderrLine(ctx, `${SUMMARY_PREFIX}${n} ${what}.`);
}

/** The line of a flow: its JSON with `--json`, else its text in `format`. */
export function flowText(ctx: Context, format: FormatOptions): (flow: Flow) => string {
  return ctx.json ? flowToJson : (flow) => formatFlow(flow, format);
}

/** The `--state` test, matched in ctnl (the kernel cannot filter by state). */
export function stateMatcher(state: string | undefined): ((flow: Flow) => boolean) | undefined {
  if (state === undefined) return undefined;
  return (flow) => (flow.tcp ?? flow.sctp ?? flow.dccp)?.stateName === state;
}

/**
 * What delete and update print of an entry: conntrack's default format
 * with `-o extended` and `-o id` (and, for update, `-o labels`); the other
 * `-o` keywords are accepted and have no effect there, as in conntrack.
 */
export function changeFormat(ctx: Context, labels: boolean): FormatOptions {
  const format: FormatOptions = {
    extended: ctx.format.extended ?? false,
    id: ctx.format.id ?? false,
  };
  if (labels && ctx.format.labelNames !== undefined) format.labelNames = ctx.format.labelNames;
  return format;
}
