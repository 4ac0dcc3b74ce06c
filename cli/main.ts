import { type FormatOptions, NetlinkError } from "../mod.ts";
import { argumentError, FailError, failure, UsageError } from "./errors.ts";
import {
  ALLOWED,
  COMMAND_LIST,
  COMMAND_WORDS,
  firstPositional,
  optionName,
  parseArgs,
} from "./options.ts";
import { parseOutput } from "./values.ts";
import { parseFilters } from "./filters.ts";
import { stderrLine, writeText } from "./output.ts";
import { loadLabelMap } from "./labels.ts";
import { type Context, VERSION } from "./context.ts";
import { runDump } from "./commands/dump.ts";
import { runGet } from "./commands/get.ts";
import { runStats } from "./commands/stats.ts";
import { runCount } from "./commands/count.ts";
import { runEvents } from "./commands/events.ts";
import { runDelete } from "./commands/delete.ts";
import { runFlush } from "./commands/flush.ts";
import { runCreate } from "./commands/create.ts";
import { runUpdate } from "./commands/update.ts";
import { HELP_MAIN, helpFor } from "./help.ts";

export async function run(args: string[]): Promise<number> {
  if (args.length === 0) {
    writeText(HELP_MAIN);
    return 0;
  }
  const wantsHelp = (a: string) => a === "-h" || a === "--help";
  const end = args.indexOf("--");
  const before = end < 0 ? args : args.slice(0, end);
  if (before.some(wantsHelp)) {
    writeText(helpFor(before));
    return 0;
  }
  if (before.includes("-V") || before.includes("--version")) {
    writeText(`ctnl v${VERSION} (@ctnl/conntrack)\n`);
    return 0;
  }
  const help = firstPositional(before);
  if (help >= 0 && before[help] === "help") {
    // `ctnl help [COMMAND]`
    const topic = before[help + 1];
    if (topic !== undefined && !COMMAND_WORDS.has(topic)) {
      throw new UsageError(`no help for "${topic}" (try ${COMMAND_LIST})`);
    }
    writeText(helpFor(before.slice(help + 1)));
    return 0;
  }
  const parsed = parseArgs(args);
  const command = parsed.command;
  if (command === undefined) {
    throw new UsageError(`no command given (${COMMAND_LIST}; see ctnl --help)`);
  }
  if (parsed.table !== undefined && !"conntrack".startsWith(parsed.table)) {
    if (["expect", "dying", "unconfirmed"].some((t) => t.startsWith(parsed.table!))) {
      throw new UsageError(`only the conntrack table is supported, not "${parsed.table}"`);
    }
    throw new UsageError(`unexpected argument "${parsed.table}"`);
  }
  const allowed = ALLOWED[command];
  for (const key of [...parsed.values.keys(), ...parsed.flags]) {
    if (!allowed.has(key)) {
      throw new UsageError(`option ${optionName(key)} cannot be used with ${command}`);
    }
  }
  if (parsed.outputs.length > 0 && !allowed.has("output")) {
    throw new UsageError(`option -o/--output cannot be used with ${command}`);
  }
  const json = parsed.flags.has("json");
  if (json && parsed.outputs.length > 0) {
    throw new UsageError("--json and -o/--output cannot be combined");
  }
  const outputs = parseOutput(parsed.outputs);
  const filters = parseFilters(parsed.values);
  const format: FormatOptions = {
    extended: outputs.has("extended"),
    id: outputs.has("id"),
    ktimestamp: outputs.has("ktimestamp"),
  };
  if (outputs.has("labels")) {
    const names = loadLabelMap();
    if (names !== undefined) format.labelNames = names;
  }
  const ctx: Context = { parsed, filters, json, outputs, format };
  try {
    switch (command) {
      case "dump":
        return runDump(ctx);
      case "get":
        return runGet(ctx);
      case "stats":
        return await runStats(ctx);
      case "count":
        return await runCount(ctx);
      case "events":
        return await runEvents(ctx);
      case "delete":
        return await runDelete(ctx);
      case "flush":
        return await runFlush(ctx);
      case "create":
        return await runCreate(ctx);
      case "update":
        return await runUpdate(ctx);
    }
  } catch (error) {
    if (error instanceof NetlinkError) {
      throw new FailError(failure(error, command, parsed.values.get("netns")));
    }
    if (
      (error instanceof TypeError || error instanceof RangeError) &&
      /^Invalid netns/.test(error.message)
    ) {
      throw argumentError(error, "orig");
    }
    throw error;
  }
}

/**
 * Runs the `ctnl` command line with `args` (without the program name):
 * writes data to stdout and messages to stderr, and returns the exit
 * status: 0 success, 1 the operation failed, 2 bad parameters. A closed
 * stdout (`ctnl dump | head`) ends the run quietly with 0.
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
export async function main(args: string[]): Promise<number> {
  try {
    return await run(args);
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return 0;
    if (error instanceof UsageError) {
      stderrLine(`ctnl: ${error.message}`);
      return 2;
    }
    if (error instanceof FailError) {
      stderrLine(`ctnl: ${error.message}`);
      return 1;
    }
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      stderrLine(`ctnl: ${error.message.split("\n")[0]}; run it with --allow-ffi`);
      return 1;
    }
    const message = error instanceof Error ? error.message : String(error);
    stderrLine(`ctnl: ${message}`);
    return 1;
  }
}
