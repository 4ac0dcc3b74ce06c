/**
 * `main`: parse the command line, look the command up in the registry, run
 * it, and map what went wrong to an exit status (0 ok, 1 failed, 2 bad
 * parameters) and one line on stderr.
 *
 * @module
 */

import type { FormatOptions } from "../mod.ts";
import { isArgumentError, NetlinkError } from "../src/errors.ts";
import { argumentError, FailError, failure, UsageError } from "./errors.ts";
import { commandList, COMMON_OPTIONS, optionName, Parser } from "./options.ts";
import { parseOutput } from "./values.ts";
import { parseFilters } from "./filters.ts";
import { type Io, messageLine, type SyncWriter, writeText } from "./output.ts";
import { loadLabelMap, usesLabels } from "./labels.ts";
import { Context, VERSION } from "./context.ts";
import { type CommandEntry, loadCommands, REGISTRY } from "./commands/mod.ts";
import { commandFor, tableHelp, tableOf } from "./expect/table.ts";

/**
 * Where {@link main} writes: data to `stdout`, messages to `stderr`
 * (default `Deno.stdout` and `Deno.stderr`).
 *
 * @example Capture the output of a run
 * ```ts
 * import { type CliIo, main } from "@ctnl/conntrack/cli";
 * import { match, strictEqual } from "node:assert/strict";
 *
 * const chunks: Uint8Array[] = [];
 * const stdout = { writeSync: (p: Uint8Array) => (chunks.push(p.slice()), p.length) };
 * const io: CliIo = { stdout };
 * strictEqual(await main(["--version"], io), 0);
 * match(new TextDecoder().decode(chunks[0]), /^ctnl v/);
 * ```
 */
export interface CliIo {
  /** Where data goes. */
  readonly stdout?: SyncWriter;
  /** Where messages go. */
  readonly stderr?: SyncWriter;
}

const PARSER = new Parser(REGISTRY);
const BY_NAME: ReadonlyMap<string, CommandEntry> = new Map(REGISTRY.map((c) => [c.name, c]));
const COMMAND_LIST = commandList(REGISTRY);

/** The help `args` ask for (every command's module is loaded for it). */
async function help(args: readonly string[]): Promise<string> {
  const [commands, { helpFor }] = await Promise.all([loadCommands(), import("./help.ts")]);
  return (await tableHelp(args, commands)) ?? helpFor(args, commands);
}

async function run(args: string[], io: Io): Promise<number> {
  if (args.length === 0) {
    writeText(io.stdout, await help([]));
    return 0;
  }
  const wantsHelp = (a: string) => a === "-h" || a === "--help";
  const end = args.indexOf("--");
  const before = end < 0 ? args : args.slice(0, end);
  if (before.some(wantsHelp)) {
    writeText(io.stdout, await help(before));
    return 0;
  }
  if (before.includes("-V") || before.includes("--version")) {
    writeText(io.stdout, `ctnl v${VERSION} (@ctnl/conntrack)\n`);
    return 0;
  }
  const at = PARSER.firstPositional(before);
  if (at >= 0 && before[at] === "help") {
    // `ctnl help [COMMAND]`
    const topic = before[at + 1];
    if (topic !== undefined && PARSER.command(topic) === undefined) {
      throw new UsageError(`no help for "${topic}" (try ${COMMAND_LIST})`);
    }
    writeText(io.stdout, await help(before.slice(at + 1)));
    return 0;
  }
  const parsed = PARSER.parse(args);
  if (parsed.values.delete("natRange")) {
    // conntrack 1.4.7 takes -a/--nat-range on any command and ignores it, saying so.
    writeText(io.stderr, "WARNING: ignoring -a, deprecated option.\n");
  }
  const entry = parsed.command === undefined ? undefined : BY_NAME.get(parsed.command);
  if (entry === undefined) {
    throw new UsageError(`no command given (${COMMAND_LIST}; see ctnl --help)`);
  }
  if (entry.name === "load") {
    // `ctnl load FILE`: FILE is not a table name (cli/commands/load.ts)
    (await import("./commands/load.ts")).claimLoadFile(parsed);
  }
  // The table (conntrack, expect, dying, unconfirmed) picks the command that runs.
  const target = await commandFor(await entry.load(), tableOf(parsed.table));
  const allowed = new Set<string>([...target.options, ...COMMON_OPTIONS]);
  for (const key of [...parsed.values.keys(), ...parsed.flags, ...parsed.lists.keys()]) {
    if (!allowed.has(key)) {
      throw new UsageError(`option ${optionName(key)} cannot be used with ${target.name}`);
    }
  }
  const outputLists = parsed.lists.get("output") ?? [];
  const json = parsed.flags.has("json");
  if (json && outputLists.length > 0) {
    throw new UsageError("--json and -o/--output cannot be combined");
  }
  const outputs = parseOutput(outputLists);
  const filters = parseFilters(parsed.values, parsed);
  const format: FormatOptions = {
    extended: outputs.has("extended"),
    id: outputs.has("id"),
    ktimestamp: outputs.has("ktimestamp"),
  };
  if (outputs.has("labels") || usesLabels(parsed)) {
    const names = loadLabelMap(io.stderr);
    if (names !== undefined) format.labelNames = names;
  }
  const ctx = new Context({ parsed, filters, json, outputs, format, io });
  try {
    return await target.run(ctx);
  } catch (error) {
    if (error instanceof NetlinkError) {
      throw new FailError(failure(error, target.name, parsed.values.get("netns")));
    }
    if (isArgumentError(error) && error.argument === "netns") throw argumentError(error, "orig");
    throw error;
  }
}

/**
 * Runs the `ctnl` command line with `args` (without the program name):
 * writes data to stdout and messages to stderr (or to the writers `io`
 * gives), and returns the exit status: 0 success, 1 the operation failed,
 * 2 bad parameters. A closed stdout (`ctnl dump | head`) ends the run
 * quietly with 0.
 *
 * @example Bad parameters are exit status 2, with one line on stderr
 * ```ts
 * import { main } from "@ctnl/conntrack/cli";
 * import { strictEqual } from "node:assert/strict";
 *
 * // stderr: ctnl: invalid port "70000" for --dport (0-65535)
 * strictEqual(await main(["dump", "-p", "tcp", "--dport", "70000"]), 2);
 * ```
 *
 * @example Run it as a program (needs root and `--allow-ffi`)
 * ```ts ignore
 * import { main } from "@ctnl/conntrack/cli";
 *
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: string[], io: CliIo = {}): Promise<number> {
  const streams: Io = { stdout: io.stdout ?? Deno.stdout, stderr: io.stderr ?? Deno.stderr };
  const fail = (text: string, status: number) => {
    messageLine(streams.stderr, `ctnl: ${text}`);
    return status;
  };
  try {
    return await run(args, streams);
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return 0;
    if (error instanceof UsageError) return fail(error.message, 2);
    if (error instanceof FailError) return fail(error.message, 1);
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      return fail(`${error.message.split("\n")[0]}; run it with --allow-ffi`, 1);
    }
    return fail(error instanceof Error ? error.message : String(error), 1);
  }
}
