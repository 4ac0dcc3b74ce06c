/**
 * The command registry: every command, in the order the main help lists
 * them. Adding a command is a file in this folder and a line here.
 *
 * The registry holds each command's syntax (its words and conntrack's
 * flags): enough to parse a command line. The rest of a command (options,
 * help, what it runs) is in its module, imported when the command runs —
 * by a string literal, so that `deno compile` and `deno bundle` include it.
 * `ctnl dump` then evaluates none of the other commands' modules.
 *
 * @module
 */

import type { CommandSyntax } from "../options.ts";
import type { Command, CommandBody } from "../context.ts";

/** A command's syntax, and its module's part, loaded on demand. */
export interface CommandEntry extends CommandSyntax {
  /** The whole command (the module is imported on the first call). */
  load(): Promise<Command>;
}

function entry(
  name: string,
  words: readonly string[],
  flags: readonly string[],
  body: () => Promise<CommandBody>,
  syntax: { table?: boolean; operand?: boolean } = {},
): CommandEntry {
  let loaded: Promise<Command> | undefined;
  return {
    name,
    words,
    flags,
    ...syntax,
    load: () => loaded ??= body().then((b) => ({ name, words, flags, ...syntax, ...b })),
  };
}

/** Every command ctnl has, as the parser needs them. */
export const REGISTRY: readonly CommandEntry[] = [
  entry("dump", ["dump", "list"], ["-L", "--dump"], async () => (await import("./dump.ts")).dump),
  entry("get", ["get"], ["-G", "--get"], async () => (await import("./get.ts")).get),
  entry("stats", ["stats"], ["-S", "--stats"], async () => (await import("./stats.ts")).stats),
  entry(
    "count",
    ["count"],
    ["-C", "--count", "--counter"],
    async () => (await import("./count.ts")).count,
  ),
  entry("summary", ["summary"], [], async () => (await import("./summary.ts")).summary),
  entry("top", ["top"], [], async () => (await import("./top.ts")).top, { table: false }),
  entry("events", ["events"], ["-E", "--event"], async () => (await import("./events.ts")).events),
  entry("delete", ["delete"], ["-D", "--delete"], async () => (await import("./delete.ts")).del),
  entry("flush", ["flush"], ["-F", "--flush"], async () => (await import("./flush.ts")).flush),
  entry("create", ["create"], ["-I", "--create"], async () => (await import("./create.ts")).create),
  entry("update", ["update"], ["-U", "--update"], async () => (await import("./update.ts")).update),
  entry("add", ["add"], ["-A", "--add"], async () => (await import("./add.ts")).add),
  entry("load", ["load"], ["-R", "--load-file"], async () => (await import("./load.ts")).load),
  entry(
    "completions",
    ["completions"],
    [],
    async () => (await import("./completions.ts")).completions,
    { table: false, operand: true },
  ),
  entry("exporter", ["exporter"], [], async () => (await import("./exporter.ts")).exporter, {
    table: false,
  }),
];

/**
 * Every command, whole (each command's module loaded): for the help, the
 * completions and the manual page.
 *
 * @example
 * ```ts
 * import { loadCommands } from "./mod.ts";
 * import { ok } from "node:assert/strict";
 *
 * const commands = await loadCommands();
 * ok(commands.some((c) => c.name === "dump" && c.options.includes("proto")));
 * ```
 */
export function loadCommands(): Promise<Command[]> {
  return Promise.all(REGISTRY.map((c) => c.load()));
}
