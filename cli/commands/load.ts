/**
 * `ctnl load FILE|-`: apply a file of conntrack command lines, as
 * `conntrack -R`/`--load-file` does: the `-o save` format (`-A …`) and
 * `-I`, `-U`, `-D`, `-F` lines. Each line goes through the option parser
 * and the request building of `create`, `update`, `delete` and `flush`;
 * creates and deletes by tuple are sent in batches.
 *
 * @module
 */

import type {
  BulkChange,
  Conntrack,
  DumpFilter,
  Flow,
  FlushOptions,
  TupleSpec,
} from "../../mod.ts";
import { NetlinkError } from "../../src/errors.ts";
import { PreparedChanges } from "../../src/apply.ts";
import { tupleSpecOf } from "../../src/tuple.ts";
import { validateFilter } from "../../src/filter.ts";
import { argumentError, checked, failure, UsageError } from "../errors.ts";
import { compact, dumpFilter, type Filters, getRequest, parseFilters } from "../filters.ts";
import {
  type CommandSyntax,
  optionHelp,
  optionName,
  type Parsed,
  Parser,
  TUPLE_OPTIONS,
} from "../options.ts";
import { type CommandBody, Context, stateMatcher, SUMMARY_PREFIX } from "../context.ts";
import { type Changes, changesFor, parseChanges } from "../changes.ts";
import { splitLine } from "../save.ts";
import { create, createSpec } from "./create.ts";
import { update } from "./update.ts";
import { del } from "./delete.ts";
import { flush } from "./flush.ts";

/** What a line of the file does. */
type Line =
  | { kind: "create"; line: number; change: BulkChange; add: boolean }
  | { kind: "delete"; line: number; change: BulkChange }
  | {
    kind: "deleteWhere";
    line: number;
    filter: DumpFilter;
    keep: ((f: Flow) => boolean) | undefined;
  }
  | { kind: "update"; line: number; selection: Filters; changes: Changes }
  | { kind: "flush"; line: number; options: FlushOptions };

/**
 * A run of lines that create or delete one entry each, encoded as they are
 * read (nothing kept of a line but its request bytes, its number and
 * whether it is a `-A`), sent in batches.
 */
interface Run {
  kind: "run";
  changes: PreparedChanges;
  lines: number[];
  /** 1 for a `-A` line (an entry that exists already is skipped). */
  add: number[];
}

/** What the file does, in order: runs of creates and deletes, and the other lines. */
type Step = Run | Exclude<Line, { change: BulkChange }>;

/** Appends `line` to `steps`: a create or delete goes into the run at the end (a new one if need be). */
function appendLine(steps: Step[], line: Line): void {
  if (line.kind !== "create" && line.kind !== "delete") {
    steps.push(line);
    return;
  }
  let run = steps.at(-1);
  if (run?.kind !== "run") {
    run = { kind: "run", changes: new PreparedChanges(), lines: [], add: [] };
    steps.push(run);
  }
  run.changes.add(line.change); // checked here: a bad change is a bad line
  run.lines.push(line.line);
  run.add.push(line.kind === "create" && line.add ? 1 : 0);
}

/** The commands a line may give, and the ones conntrack names when it refuses them. */
const LINE_COMMANDS: readonly CommandSyntax[] = [
  { name: "create", words: [], flags: ["-I", "--create"] },
  { name: "add", words: [], flags: ["-A", "--add"] },
  { name: "update", words: [], flags: ["-U", "--update"] },
  { name: "delete", words: [], flags: ["-D", "--delete"] },
  { name: "flush", words: [], flags: ["-F", "--flush"] },
  { name: "-L", words: [], flags: ["-L", "--dump"] },
  { name: "-G", words: [], flags: ["-G", "--get"] },
  { name: "-E", words: [], flags: ["-E", "--event"] },
  { name: "-C", words: [], flags: ["-C", "--count"] },
  { name: "-S", words: [], flags: ["-S", "--stats"] },
];
const LINE_PARSER = new Parser(LINE_COMMANDS);
const LINE_OPTIONS: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  [["create", create], ["add", create], ["update", update], ["delete", del], ["flush", flush]]
    .map(([name, c]) => [name as string, new Set((c as CommandBody).options)]),
);

/** Files named on the command line of `load`, by parse (see {@link claimLoadFile}). */
const FILES = new WeakMap<Parsed, string>();

/**
 * Takes the FILE of `ctnl load FILE` (`-R FILE`, `--load-file FILE`) out of
 * `parsed`, where the parser put it as the table name. main calls it before
 * it checks the table.
 */
export function claimLoadFile(parsed: Parsed): void {
  if (parsed.command !== "load" || parsed.table === undefined) return;
  FILES.set(parsed, parsed.table);
  parsed.table = undefined;
}

/** `-u UNSET` (conntrack's "no flag"): sets nothing on a create, so it is dropped. */
function dropUnset(values: Map<string, string>): void {
  const status = values.get("status");
  if (status === undefined || !/(^|,)u/i.test(status)) return; // no word that may be UNSET
  const words = status.split(",").filter((w) =>
    !(w.length > 0 && "UNSET".startsWith(w.toUpperCase()))
  );
  if (words.length === 0) values.delete("status");
  else values.set("status", words.join(","));
}

/**
 * `-r`/`-q` of an ICMP line that are just the inverse of `-s`/`-d` (as
 * `-o save` writes them): dropped, since create derives them so.
 */
function dropIcmpMirror(values: Map<string, string>): void {
  const p = values.get("proto")?.toLowerCase();
  if (p !== "icmp" && p !== "icmpv6" && p !== "1" && p !== "58") return;
  if (
    values.get("replySrc") === values.get("dst") && values.get("replyDst") === values.get("src")
  ) {
    values.delete("replySrc");
    values.delete("replyDst");
  }
}

/** Whether a delete line names one entry by its tuple alone (and zone, family). */
function tupleOnly(parsed: Parsed): boolean {
  for (const key of parsed.values.keys()) {
    if (!TUPLE_KEYS.has(key)) return false;
  }
  return parsed.lists.size === 0 && parsed.flags.size === 0;
}

const TUPLE_KEYS = new Set<string>([...TUPLE_OPTIONS, "zone", "family"]);

/** One line's step; a bad line is a {@link UsageError} (or an argument error) with conntrack's wording where it has one. */
function parseLine(args: string[], line: number, ctx: Context): Line {
  const parsed = LINE_PARSER.parse(args);
  if (parsed.flags.has("help") || parsed.flags.has("version")) {
    throw new UsageError(
      `Cannot use command \`${parsed.flags.has("help") ? "-h" : "-V"}' with --load-file`,
    );
  }
  if (parsed.table !== undefined && parsed.table !== "" && "expect".startsWith(parsed.table)) {
    throw new UsageError(`Cannot use command \`${parsed.commandText} expect' with --load-file`);
  }
  const name = parsed.command;
  const allowed = name === undefined ? undefined : LINE_OPTIONS.get(name);
  if (allowed === undefined) {
    throw new UsageError(`Cannot use command \`${name ?? "unknown"}' with --load-file`);
  }
  if (parsed.table !== undefined && !"conntrack".startsWith(parsed.table)) {
    throw new UsageError(`unexpected argument "${parsed.table}"`);
  }
  const check = (key: string) => {
    if (!allowed.has(key) || key === "netns") {
      throw new UsageError(`option ${optionName(key)} cannot be used with ${name} in a load file`);
    }
  };
  for (const key of parsed.values.keys()) check(key);
  for (const key of parsed.flags) check(key);
  for (const key of parsed.lists.keys()) check(key);
  if (name === "create" || name === "add") {
    dropUnset(parsed.values);
    dropIcmpMirror(parsed.values);
  }
  const filters = parseFilters(parsed.values);
  const { json, outputs, format, io } = ctx;
  const lineCtx = new Context({ parsed, filters, json, outputs, format, io });
  switch (name) {
    case "create":
    case "add":
      return { kind: "create", line, change: { create: createSpec(lineCtx) }, add: name === "add" };
    case "flush":
      return {
        kind: "flush",
        line,
        options: compact<FlushOptions>({ family: filters.family, mark: filters.mark }),
      };
    case "update": {
      const changes = parseChanges(lineCtx, "update");
      if (Object.values(changes).every((v) => v === undefined)) {
        throw new UsageError(
          "update needs something to change: -m/--mark, -t/--timeout, -u/--status or --state",
        );
      }
      const selection = { ...filters, mark: undefined, status: undefined, state: undefined };
      checked(() => validateFilter(dumpFilter(selection)));
      return { kind: "update", line, selection, changes };
    }
  }
  // delete: one entry by its full original tuple (batched), or what the filters select.
  const named = tupleOnly(parsed) ? fullTuple(filters) : undefined;
  if (named !== undefined) {
    return {
      kind: "delete",
      line,
      change: { delete: named, options: compact({ zone: filters.zone }) },
    };
  }
  const filter = dumpFilter(filters);
  checked(() => validateFilter(filter));
  return { kind: "deleteWhere", line, filter, keep: stateMatcher(filters.state) };
}

/** The full original tuple the filters give (as get takes it), if they give one. */
function fullTuple(f: Filters): TupleSpec | undefined {
  if (f.src === undefined || f.dst === undefined) return undefined;
  try {
    return getRequest(f).tuple;
  } catch {
    return undefined; // not complete (no -p, no ports): a filter
  }
}

/**
 * The arguments of a line, as {@link splitLine} splits it. A line of single
 * spaces between arguments (what `-o save` writes), shorter than the
 * longest argument, is split on its spaces at once — the same words, since
 * no quote, tab, `#` or empty word can be in it — and any other line by
 * {@link splitLine}.
 */
function lineArgs(line: string): string[] | undefined {
  if (line.length > 1023 || line.includes('"') || line.includes("\t")) return splitLine(line);
  const args = line.split(" ");
  if (args.length > 253 || args[0]!.startsWith("#")) return splitLine(line);
  for (let i = 0; i < args.length; i++) if (args[i] === "") return splitLine(line);
  return args;
}

/** What lines parsed to: the steps, how many lines, how many bad ones. */
interface Parsing {
  steps: Step[];
  count: number;
  bad: number;
}

/**
 * Parses the lines of `text` into `into`, as conntrack reads them with
 * fgets (numbered from 1); a bad line is reported with its number.
 */
function parseLines(text: string, ctx: Context, into: Parsing): void {
  let n = 0;
  for (let start = 0; start < text.length;) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    n++;
    try {
      const args = lineArgs(line);
      if (args === undefined) continue;
      appendLine(into.steps, parseLine(args, n, ctx));
      into.count++;
    } catch (error) {
      const e = argumentError(error, "orig");
      if (!(e instanceof UsageError)) throw e;
      ctx.stderrLine(`ctnl: line ${n}: ${e.message}`);
      into.bad++;
    }
  }
}

async function readInput(file: string): Promise<string> {
  try {
    if (file === "-") return await new Response(Deno.stdin.readable).text();
    return await Deno.readTextFile(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new UsageError(
        `cannot read ${file}: run ctnl with --allow-read=${file}, or give it on standard input (ctnl load - < ${file})`,
      );
    }
    const why = error instanceof Deno.errors.NotFound
      ? "No such file or directory"
      : error instanceof Error
      ? error.message.split("\n")[0]
      : String(error);
    throw new UsageError(`Failed to open file ${file} for reading: ${why}`);
  }
}

/** How the lines went. */
interface Tally {
  created: number;
  updated: number;
  deleted: number;
  flushed: number;
  skipped: number;
  failed: number;
}

/** Runs the steps in order: runs of creates and deletes by tuple in batches, the rest one by one. */
async function apply(ct: Conntrack, steps: Step[], ctx: Context, tally: Tally): Promise<void> {
  const netns = ctx.parsed.values.get("netns");
  const fail = (line: number, command: string, error: unknown) => {
    if (!(error instanceof NetlinkError)) throw error;
    const about = error.subject === undefined ? "" : ` (${error.subject})`;
    ctx.stderrLine(`ctnl: line ${line}: ${failure(error, command, netns)}${about}`);
    tally.failed++;
  };
  for (const step of steps) {
    if (step.kind === "run") {
      const refused = { create: 0, delete: 0 };
      await ct.applyMany(step.changes, {
        onError(error, index) {
          const kind = error.operation === "delete" ? "delete" : "create";
          refused[kind]++;
          const benign = kind === "create"
            ? step.add[index] === 1 && error.code === "EEXIST" // -A: it exists already, as conntrack
            : error.code === "ENOENT"; // -D: nothing to delete, as conntrack
          if (benign) tally.skipped++;
          else fail(step.lines[index]!, kind, error);
        },
      });
      let creates = 0;
      for (let i = 0; i < step.changes.length; i++) {
        if (step.changes.kind(i) === "create") creates++;
      }
      tally.created += creates - refused.create;
      tally.deleted += step.changes.length - creates - refused.delete;
      continue;
    }
    try {
      if (step.kind === "flush") {
        await ct.flush(step.options);
        tally.flushed++;
      } else {
        // Nothing selected is not a failure (conntrack is silent), but is counted as skipped.
        const n = step.kind === "deleteWhere"
          ? await deleteStep(ct, step)
          : await updateStep(ct, step);
        if (n === 0) tally.skipped++;
        else if (step.kind === "deleteWhere") tally.deleted += n;
        else tally.updated += n;
      }
    } catch (error) {
      fail(step.line, step.kind === "deleteWhere" ? "delete" : step.kind, error);
    }
  }
}

/** A delete line that selects by more than a tuple: every entry it selects, as `ctnl delete`. */
async function deleteStep(ct: Conntrack, step: Step & { kind: "deleteWhere" }): Promise<number> {
  const keep = step.keep;
  if (keep === undefined) return await ct.deleteWhere(step.filter, { onInterrupted: "ignore" });
  let deleted = 0;
  for (const flow of ct.dumpSync(step.filter, { onInterrupted: "ignore" })) {
    if (!keep(flow)) continue;
    try {
      await ct.delete(tupleSpecOf(flow.orig), compact({ zone: flow.zone, id: flow.id }));
      deleted++;
    } catch (error) {
      if (!(error instanceof NetlinkError && error.code === "ENOENT")) throw error;
    }
  }
  return deleted;
}

/** An update line: the one entry a full tuple names, or every entry the selection selects. */
async function updateStep(
  ct: Conntrack,
  step: Step & { kind: "update" },
): Promise<number> {
  const f = step.selection;
  const keep = stateMatcher(f.state);
  const wanted = (
    flow: Flow,
  ) => (keep === undefined || keep(flow) ? changesFor(flow, step.changes) : undefined);
  let named;
  try {
    named = getRequest(f);
  } catch {
    named = undefined;
  }
  if (named !== undefined) {
    let flow: Flow;
    try {
      flow = await ct.get(named.tuple, named.options);
    } catch (error) {
      if (error instanceof NetlinkError && error.code === "ENOENT") return 0; // nothing to update
      throw error;
    }
    const changes = wanted(flow);
    if (changes === undefined) return 0;
    await ct.update(flow, changes);
    return 1;
  }
  return await ct.updateWhere(dumpFilter(f), wanted, { onInterrupted: "ignore" });
}

async function run(ctx: Context): Promise<number> {
  const file = FILES.get(ctx.parsed);
  if (file === undefined) throw new UsageError("load needs a FILE (or - for standard input)");
  const text = await readInput(file);
  const parsing: Parsing = { steps: [], count: 0, bad: 0 };
  parseLines(text, ctx, parsing);
  const bad = parsing.bad;
  if (bad > 0) {
    // Nothing is applied from a file with a bad line, as conntrack parses it all first.
    throw new UsageError(`${bad} bad line${bad === 1 ? "" : "s"} in ${file}; nothing was changed`);
  }
  const tally: Tally = { created: 0, updated: 0, deleted: 0, flushed: 0, skipped: 0, failed: 0 };
  using ct = ctx.open();
  await apply(ct, parsing.steps, ctx, tally);
  const { created, updated, deleted, flushed, skipped, failed } = tally;
  ctx.stderrLine(
    `${SUMMARY_PREFIX}${parsing.count} lines: ${created} created, ${updated} updated, ${deleted} deleted, ${flushed} flushed, ${skipped} skipped, ${failed} failed.`,
  );
  return failed > 0 ? 1 : 0;
}

const OPTIONS = ["netns"] as const;

/** `ctnl load FILE|-`, `ctnl -R FILE`, `ctnl --load-file FILE`. */
export const load: CommandBody = {
  summary: "Apply a file of -A/-I/-U/-D/-F lines, as -o save writes them (conntrack -R)",
  options: [...OPTIONS],
  help: `Usage: ctnl load FILE|- [--netns NAME|PATH]     (also: ctnl -R FILE, --load-file FILE)

Applies a file of conntrack command lines, as conntrack -R does: what
ctnl dump -o save (or conntrack -L -o save) writes, one entry a line
("-A -t 120 -u SEEN_REPLY -s … -p tcp …"), and lines of -I (create), -A
(create; an entry that exists already is skipped), -U (update), -D (delete)
and -F (flush) with the options those commands take. "-" reads standard
input. Blank lines and lines starting with # are skipped; arguments are
split on blanks, "…" quotes one.

Every line is parsed first: a bad line is reported with its number and
nothing is changed (exit 2). Then the lines run in order; creates and
deletes of one entry by its tuple go to the kernel in batches. Each line
the kernel refuses is reported with its number ("ctnl: line 7: Operation
failed: Such conntrack exists, try -U to update (…)") and the rest go on;
exit 1 when one failed. The summary goes to stderr:
"N lines: C created, U updated, D deleted, F flushed, S skipped, X failed."

Options:
${optionHelp(OPTIONS)}

Examples:
  ctnl dump -o save > table.txt; ctnl flush; ctnl load table.txt
  ctnl dump -w 11 -o save | sed 's/-w 11/-w 12/' | ctnl load -
  ctnl load --netns blue changes.txt
`,
  run,
};
