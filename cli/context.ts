/**
 * What a command is (its syntax, options, help and `run`) and what it runs
 * with: the parsed options and filters, the output format, the streams.
 *
 * @module
 */

import { VERSION as PACKAGE_VERSION } from "./version.ts";
import type {
  ConntrackEvent,
  DumpFilter,
  EventOptions,
  Flow,
  FormatOptions,
  NetnsInfo,
} from "../mod.ts";
import { Conntrack } from "../src/conntrack.ts";
import { flowToJson, formatFlow } from "../src/format.ts";
import { FailError, UsageError } from "./errors.ts";
import { type CommandSyntax, type OptionKey, optionName, type Parsed } from "./options.ts";
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

/**
 * What a command's module defines: a {@link Command} but for its syntax
 * (name, words, flags), which the registry (cli/commands/mod.ts) holds so
 * that the command line can be parsed before any command's module loads.
 */
export type CommandBody = Omit<Command, keyof CommandSyntax>;

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

  /** Fails (exit 1, one line) unless ctnl may use FFI, which netlink needs. */
  needFfi(): void {
    const state = Deno.permissions.querySync({ name: "ffi" }).state;
    if (state !== "granted") {
      throw new FailError(
        "needs FFI access to reach netlink: run it as `deno run --allow-ffi …` (or `deno task ctnl …`)",
      );
    }
  }

  /** A handle on the table in the namespace `--netns` names (or ctnl's own). */
  open(): Conntrack {
    this.needFfi();
    const netns = this.parsed.values.get("netns");
    return Conntrack.open(netns === undefined ? {} : { netns });
  }

  /** What {@link tagged} adds to the next line: the namespace, a synthetic event. */
  #tag: { netns: NetnsInfo | undefined; synthetic: boolean } = {
    netns: undefined,
    synthetic: false,
  };

  /** Tags the lines that follow with `netns` (see {@link tagged}). */
  setNetns(netns: NetnsInfo | undefined): void {
    this.#tag = { netns, synthetic: false };
  }

  /** `--all-netns` was given (and not with `--netns`, nor `--all-netns --resync`). */
  allNetns(): boolean {
    const flags = this.parsed.flags;
    if (!flags.has("allNetns")) return false;
    if (this.parsed.values.has("netns")) {
      throw new UsageError("option --netns cannot be used with --all-netns");
    }
    if (flags.has("resync")) {
      throw new UsageError("option --resync cannot be used with --all-netns");
    }
    for (const keyword of ["save", "xml"] as const) {
      // A line prefix would break what ctnl load and XML readers read.
      if (this.outputs.has(keyword)) {
        throw new UsageError(`-o ${keyword} cannot be used with --all-netns`);
      }
    }
    return true;
  }

  /**
   * A line as printed with the namespace it came from (`--all-netns`): text
   * lines start with `netns=NAME ` (`netns=net:[INODE] pid=PID ` for a
   * namespace without a name); a JSON object gets `"netns"` (and
   * `"netnsInode"`, `"netnsPid"`) first, and `"resync":true` for an event a
   * resync found (`--resync`).
   */
  tagged(line: string): string {
    const { netns, synthetic } = this.#tag;
    if (line.startsWith("{")) {
      let head = "";
      if (netns !== undefined) {
        head += `"netns":${JSON.stringify(netns.label)},"netnsInode":${netns.inode},`;
        if (netns.pid !== undefined) head += `"netnsPid":${netns.pid},`;
      }
      if (synthetic) head += `"resync":true,`;
      return head === "" ? line : `{${head}${line.slice(1)}`;
    }
    if (netns === undefined) return line;
    const pid = netns.name === undefined && netns.pid !== undefined ? ` pid=${netns.pid}` : "";
    return `netns=${netns.label}${pid} ${line}`;
  }

  /**
   * The events `ctnl events` prints: `ct.events(options)`; with
   * `--all-netns` every namespace's (each line {@link tagged}); with
   * `--resync` the library's `watch()`: the table's entries first (as
   * `new`), then the events, and after lost events the difference a new
   * dump finds (a note on stderr says so).
   */
  async *eventStream(ct: Conntrack, options: EventOptions): AsyncGenerator<ConntrackEvent> {
    if (this.allNetns()) {
      const { eventsAllNetns } = await import("../src/netns.ts"); // loaded for --all-netns only
      for await (const { netns, event } of eventsAllNetns(options)) {
        this.#tag = { netns, synthetic: false };
        yield event;
      }
      return;
    }
    if (!this.parsed.flags.has("resync")) {
      yield* ct.events(options);
      return;
    }
    const { types, noEnobufs: _, ...watchOptions } = options;
    const want = new Set(types ?? ["new", "update", "destroy"]);
    const { watch } = await import("../src/watch.ts"); // loaded for --resync only
    for await (const e of watch(ct, watchOptions)) {
      if (e.type === "synced") {
        if (e.resyncs > 0) {
          this.stderrLine(
            `ctnl: events were lost (ENOBUFS); the table was dumped again (${e.resyncs} resyncs so far)`,
          );
        }
        continue;
      }
      if (!want.has(e.type)) continue;
      this.#tag = { netns: undefined, synthetic: e.synthetic };
      yield { type: e.type, flow: e.flow, portId: e.portId };
    }
  }

  /** `ctnl dump --all-netns` (also with `-z`): every namespace's entries, each line {@link tagged}. */
  async dumpAllNetns(
    filter: DumpFilter,
    keep: ((flow: Flow) => boolean) | undefined,
  ): Promise<number> {
    for (const key of ["sort", "top", "olderThan", "youngerThan", "idle", "bytesGt"]) {
      if (this.parsed.values.has(key)) {
        throw new UsageError(`option ${optionName(key)} cannot be used with --all-netns (yet)`);
      }
    }
    this.needFfi();
    const out = this.stdout();
    const format = this.format;
    const text = this.flowText(format);
    let n = 0;
    format.now = Math.floor(Date.now() / 1000);
    await showingPartial(out, async () => {
      const options = {
        onInterrupted: "ignore",
        ...(this.filters.zero ? { zero: true } : {}),
      } as const;
      const { dumpAllNetns } = await import("../src/netns.ts");
      for await (const { netns, flow } of dumpAllNetns(filter, options)) {
        if (keep !== undefined && !keep(flow)) continue;
        this.#tag = { netns, synthetic: false };
        out.line(this.tagged(text(flow)));
        if ((++n & 1023) === 0) format.now = Math.floor(Date.now() / 1000);
      }
    });
    out.flush();
    this.summary(n);
    return 0;
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
