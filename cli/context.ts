/**
 * What a command is (its syntax, options, help and `run`) and what it runs
 * with: the parsed options and filters, the output format, the streams.
 *
 * @module
 */

import { VERSION as PACKAGE_VERSION } from "./version.ts";
import { Conntrack, type Flow, flowToJson, formatFlow, type FormatOptions } from "../mod.ts";
import { FailError } from "./errors.ts";
import type { CommandSyntax, OptionKey, Parsed } from "./options.ts";
import type { OutputKeyword } from "./values.ts";
import type { Filters } from "./filters.ts";
import { commandOutput, type Io, LineWriter, messageLine } from "./output.ts";

/** ctnl's version (cli/version.ts, kept equal to deno.json's). */
export const VERSION: string = PACKAGE_VERSION;
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

/** The fields a {@link Context} is made of. */
export type ContextFields = Pick<
  Context,
  "parsed" | "filters" | "json" | "outputs" | "format" | "io"
>;

/** What a command runs with: the parsed command line, the streams, and what it does with them. */
export class Context {
  readonly parsed!: Parsed;
  readonly filters!: Filters;
  /** `--json` was given. */
  readonly json!: boolean;
  /** The `-o` keywords. */
  readonly outputs!: ReadonlySet<OutputKeyword>;
  /** The text format the `-o` keywords ask for. */
  readonly format!: FormatOptions;
  readonly io!: Io;

  constructor(fields: ContextFields) {
    Object.assign(this, fields);
  }

  /** A handle on the table in the namespace `--netns` names (or ctnl's own). */
  open(): Conntrack {
    const state = Deno.permissions.querySync({ name: "ffi" }).state;
    if (state !== "granted") {
      throw new FailError(
        "needs FFI access to reach netlink: run it as `deno run --allow-ffi …` (or `deno task ctnl …`)",
      );
    }
    const netns = this.parsed.values.get("netns");
    return Conntrack.open(netns === undefined ? {} : { netns });
  }

  /** A line writer for stdout. */
  stdout(): LineWriter {
    return new LineWriter(this.io.stdout);
  }

  /** One message line on stderr. */
  stderrLine(text: string): void {
    messageLine(this.io.stderr, text);
  }

  /** The summary line on stderr: `ctnl v… (@ctnl/conntrack): N flow entries have been shown.` */
  summary(n: number, what = "flow entries have been shown"): void {
    this.stderrLine(`${SUMMARY_PREFIX}${n} ${what}.`);
  }

  /**
   * Flushes `out`, prints "N flow entries have been WHAT." on stderr and
   * returns the exit status conntrack -D and -U give: 1 when N is 0.
   */
  changed(out: LineWriter, n: number, what: string): number {
    out.flush();
    this.summary(n, `flow entries have been ${what}`);
    return n === 0 ? 1 : 0;
  }

  /** The line of a flow: its JSON with `--json`, else its text in `format`. */
  flowText(format: FormatOptions = this.format): (flow: Flow) => string {
    const other = commandOutput(this.outputs, this.parsed.command, format); // -o save, -o xml
    if (other !== undefined) return other;
    return this.json ? flowToJson : (flow) => formatFlow(flow, format);
  }

  /**
   * What delete and update print of an entry: conntrack's default format
   * with `-o extended` and `-o id` (and, for update, `-o labels`); the other
   * `-o` keywords are accepted and have no effect there, as in conntrack.
   */
  changeFormat(labels: boolean): FormatOptions {
    const format: FormatOptions = {
      extended: this.format.extended ?? false,
      id: this.format.id ?? false,
    };
    if (labels && this.format.labelNames !== undefined) format.labelNames = this.format.labelNames;
    return format;
  }
}

/**
 * Runs `fn`, which writes lines to `out`. When it fails, the lines it wrote
 * go out before the failure is reported (as conntrack shows what came
 * before it), unless the failure is stdout closing.
 */
export async function showingPartial<T>(out: LineWriter, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!(error instanceof Deno.errors.BrokenPipe)) out.flush();
    throw error;
  }
}

/** The `--state` test, matched in ctnl (the kernel cannot filter by state). */
export function stateMatcher(state: string | undefined): ((flow: Flow) => boolean) | undefined {
  if (state === undefined) return undefined;
  return (flow) => (flow.tcp ?? flow.sctp ?? flow.dccp)?.stateName === state;
}
