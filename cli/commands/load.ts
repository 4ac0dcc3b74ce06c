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
import { NetlinkError, PreparedChanges, tupleSpecOf, validateFilter } from "../../mod.ts";
import { appendParts, partsOf, type PreparedParts } from "../../src/apply.ts";
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
import { type Command, Context, stateMatcher, SUMMARY_PREFIX } from "../context.ts";
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
    .map(([name, c]) => [name as string, new Set((c as Command).options)]),
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

/** What lines parsed to: the steps, how many lines, and the bad lines with their messages. */
interface Parsing {
  steps: Step[];
  count: number;
  bad: [line: number, message: string][];
  /** The arguments of each line that is a step of its own (kept by the worker). */
  args?: Map<number, string[]>;
}

/**
 * Parses the lines of `text[from, to)`, the first numbered `first`, into
 * `into`: lines split as conntrack reads them with fgets, a bad line noted
 * with its number and message.
 */
function parseLines(
  text: string,
  from: number,
  to: number,
  first: number,
  ctx: Context,
  into: Parsing,
): void {
  let n = first - 1;
  for (let start = from; start < to;) {
    let end = text.indexOf("\n", start);
    if (end < 0 || end > to) end = to;
    const line = text.slice(start, end);
    start = end + 1;
    n++;
    try {
      const args = lineArgs(line);
      if (args === undefined) continue;
      const step = parseLine(args, n, ctx);
      appendLine(into.steps, step);
      if (into.args !== undefined && step.kind !== "create" && step.kind !== "delete") {
        into.args.set(n, args);
      }
      into.count++;
    } catch (error) {
      const e = argumentError(error, "orig");
      if (!(e instanceof UsageError)) throw e;
      into.bad.push([n, e.message]);
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
  let helper: Helper | undefined;
  let parsing: Parsing;
  try {
    // A big file's helper starts while it is read (new Worker holds this thread a while).
    const reading = readInput(file);
    reading.catch(() => {}); // awaited below, after the size
    if (file !== "-" && (await fileSize(file)) >= TWO_THREADS) helper = Helper.start();
    const text = await reading;
    if (helper === undefined && file === "-" && text.length >= TWO_THREADS) helper = Helper.start();
    parsing = await parseText(text, file, ctx, helper);
  } finally {
    helper?.stop();
  }
  for (const [n, message] of parsing.bad) ctx.stderrLine(`ctnl: line ${n}: ${message}`);
  const bad = parsing.bad.length;
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

// Parsing a big file on two threads. This thread takes chunks of lines from
// the front, a worker (this module again) from the back, until they meet;
// the worker hands its chunks' requests over as bytes, and its lines that
// are steps of their own (-U, -D by filter, -F) by their arguments, parsed
// again here. Every line goes through parseLine either way, the whole file
// is parsed before anything is sent, and the steps are those of one thread.

/** A file of at least this many bytes (about 20,000 save lines) is parsed on two threads. */
const TWO_THREADS = 3 << 20;
/** The size of a chunk of lines. */
const CHUNK = 256 << 10;
/** The worker's name, which makes this module the worker when it loads. */
const WORKER_NAME = "ctnl load: parse lines";

/** What the worker is given: the text (or the file to read it from) and the chunks. */
interface Job {
  file: string | undefined;
  text: string | undefined;
  length: number;
  /** Where each chunk starts in the text; the last entry is its end. */
  starts: number[];
  /** The number of each chunk's first line. */
  firstLines: number[];
  /** One Int32: the next chunk from the front (low 16 bits) and the end of the rest (high 16). */
  control: SharedArrayBuffer;
}

/** What the worker made of a chunk. */
interface Shipped {
  chunk: number;
  count: number;
  bad: [number, string][];
  items: (
    | { parts: PreparedParts; lines: Uint32Array<ArrayBuffer>; add: Uint8Array<ArrayBuffer> }
    | { line: number; args: string[] }
  )[];
}

/** The next chunk from the front or the back, or -1 when none is left. */
function claim(control: Int32Array, fromBack: boolean): number {
  for (;;) {
    const v = Atomics.load(control, 0);
    const front = v & 0xffff, back = v >>> 16;
    if (front >= back) return -1;
    const next = fromBack ? ((back - 1) << 16) | front : (back << 16) | (front + 1);
    if (Atomics.compareExchange(control, 0, v, next) === v) return fromBack ? back - 1 : front;
  }
}

/** The chunks of `text`: each ends after a newline (or at the end), about {@link CHUNK} long. */
function chunksOf(text: string): { starts: number[]; firstLines: number[] } {
  const size = Math.max(CHUNK, Math.ceil(text.length / 0xfff0));
  const starts = [0], firstLines: number[] = [];
  let line = 1;
  for (let at = 0; at < text.length;) {
    let end = at + size >= text.length ? -1 : text.indexOf("\n", at + size);
    end = end < 0 ? text.length : end + 1;
    firstLines.push(line);
    for (let i = text.indexOf("\n", at); i >= 0 && i < end; i = text.indexOf("\n", i + 1)) line++;
    starts.push(end);
    at = end;
  }
  return { starts, firstLines };
}

/** Parses `text` (on two threads with `helper`). */
async function parseText(
  text: string,
  file: string,
  ctx: Context,
  helper: Helper | undefined,
): Promise<Parsing> {
  const into: Parsing = { steps: [], count: 0, bad: [] };
  if (helper === undefined) {
    parseLines(text, 0, text.length, 1, ctx, into);
    return into;
  }
  const { starts, firstLines } = chunksOf(text);
  const control = new SharedArrayBuffer(4);
  const ctl = new Int32Array(control);
  ctl[0] = firstLines.length << 16;
  const job: Job = {
    file: file === "-" ? undefined : file,
    text: file === "-" ? text : undefined,
    length: text.length,
    starts,
    firstLines,
    control,
  };
  helper.post(job);
  const parse = (j: number) =>
    parseLines(text, starts[j]!, starts[j + 1]!, firstLines[j]!, ctx, into);
  for (let j; (j = claim(ctl, false)) >= 0;) parse(j);
  // The rest, from where the two met, are the worker's.
  for (let j = Atomics.load(ctl, 0) & 0xffff; j < firstLines.length; j++) {
    const shipped = await helper.result(j);
    if (shipped === undefined) parse(j); // the worker failed it: parsed here (and fails here)
    else merge(into, shipped, ctx);
  }
  return into;
}

/** Appends a chunk the worker parsed to `into`. */
function merge(into: Parsing, shipped: Shipped, ctx: Context): void {
  into.count += shipped.count;
  for (const bad of shipped.bad) into.bad.push(bad);
  for (const item of shipped.items) {
    if (!("parts" in item)) {
      appendLine(into.steps, parseLine(item.args, item.line, ctx));
      continue;
    }
    let run = into.steps.at(-1);
    if (run?.kind !== "run") {
      run = { kind: "run", changes: new PreparedChanges(), lines: [], add: [] };
      into.steps.push(run);
    }
    appendParts(run.changes, item.parts);
    for (const n of item.lines) run.lines.push(n);
    for (const a of item.add) run.add.push(a);
  }
}

/** The worker that parses chunks from the back, seen from this thread. */
class Helper {
  readonly #worker: Worker;
  readonly #results = new Map<number, Shipped | undefined>();
  #gone = false;
  #wake: (() => void) | undefined;

  private constructor(worker: Worker) {
    this.#worker = worker;
    worker.onmessage = (e: MessageEvent<Shipped | { chunk: number; failed: true }>) => {
      this.#results.set(e.data.chunk, "failed" in e.data ? undefined : e.data);
      this.#wake?.();
    };
    const gone = (e: Event) => {
      e.preventDefault(); // not this process's error: its chunks are parsed here
      this.#gone = true;
      this.#wake?.();
    };
    worker.onerror = gone;
    worker.onmessageerror = gone;
  }

  /** A new worker; undefined where none can be made (this module bundled into another). */
  static start(): Helper | undefined {
    if (!import.meta.url.endsWith("/cli/commands/load.ts")) return undefined;
    try {
      return new Helper(new Worker(import.meta.url, { type: "module", name: WORKER_NAME }));
    } catch {
      return undefined;
    }
  }

  post(job: Job): void {
    this.#worker.postMessage(job);
  }

  /** The worker's chunk `j`, once it is in; undefined if the worker failed it or is gone. */
  async result(j: number): Promise<Shipped | undefined> {
    while (!this.#results.has(j) && !this.#gone) {
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    return this.#results.get(j);
  }

  stop(): void {
    this.#worker.terminate();
  }
}

/** The worker: parses chunks from the back until none is left, sending each as it is done. */
function serveChunks(): void {
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent<Job>) => void) | null;
    postMessage(message: unknown, transfer?: Transferable[]): void;
    close(): void;
  };
  scope.onmessage = async (e) => {
    scope.onmessage = null;
    const job = e.data;
    let text = job.text;
    try {
      text ??= await Deno.readTextFile(job.file!);
    } catch {
      text = undefined;
    }
    // Unreadable, or changed since: this thread parses nothing (the other parses it all).
    if (text === undefined || text.length !== job.length) return scope.close();
    const ctl = new Int32Array(job.control);
    const ctx = new Context({
      parsed: {
        command: "load",
        commandText: "load",
        values: new Map(),
        lists: new Map(),
        flags: new Set(),
        table: undefined,
      },
      filters: parseFilters(new Map()),
      json: false,
      outputs: new Set(),
      format: {},
      io: { stdout: DISCARD, stderr: DISCARD },
    });
    for (let j; (j = claim(ctl, true)) >= 0;) {
      const into: Parsing = { steps: [], count: 0, bad: [], args: new Map() };
      try {
        parseLines(text, job.starts[j]!, job.starts[j + 1]!, job.firstLines[j]!, ctx, into);
      } catch {
        scope.postMessage({ chunk: j, failed: true });
        continue;
      }
      const transfer: Transferable[] = [];
      const items: Shipped["items"] = into.steps.map((step) => {
        if (step.kind !== "run") return { line: step.line, args: into.args!.get(step.line)! };
        const parts = partsOf(step.changes);
        const lines = Uint32Array.from(step.lines), add = Uint8Array.from(step.add);
        transfer.push(parts.bytes.buffer, parts.ends.buffer, lines.buffer, add.buffer);
        return { parts, lines, add };
      });
      scope.postMessage({ chunk: j, count: into.count, bad: into.bad, items }, transfer);
    }
    scope.close();
  };
}

/** Where the worker's Context writes (it writes nothing: parsing does not print). */
const DISCARD = { writeSync: (p: Uint8Array) => p.byteLength };

if ((globalThis as { name?: unknown }).name === WORKER_NAME) serveChunks();

/** The size of `file`, or 0 if it cannot be told (then reading it reports why). */
async function fileSize(file: string): Promise<number> {
  try {
    return (await Deno.stat(file)).size;
  } catch {
    return 0;
  }
}

const OPTIONS = ["netns"] as const;

/** `ctnl load FILE|-`, `ctnl -R FILE`, `ctnl --load-file FILE`. */
export const load: Command = {
  name: "load",
  words: ["load"],
  flags: ["-R", "--load-file"],
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
