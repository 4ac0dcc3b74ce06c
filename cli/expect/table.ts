/**
 * The table a command works on (`ctnl dump expect`, `-L dying`, …), as
 * conntrack's `check_type` reads it, and the command that runs for it: the
 * expectation table's own (cli/expect/commands.ts), or the conntrack
 * table's, which for `dump` also lists the dying and unconfirmed lists.
 *
 * @module
 */

import type { Conntrack, DumpFilter, DumpOptions, Flow } from "../../mod.ts";
import { UsageError } from "../errors.ts";
import type { Command, Context } from "../context.ts";

/** The four tables of conntrack-tools. */
export type Table = "conntrack" | "expect" | "dying" | "unconfirmed";

const TABLES: readonly Table[] = ["expect", "conntrack", "dying", "unconfirmed"];

/** The table `word` names: a prefix is enough, as in conntrack (`-L exp`). */
export function tableOf(word: string | undefined): Table {
  if (word === undefined) return "conntrack";
  const table = TABLES.find((t) => word.length > 0 && t.startsWith(word));
  if (table === undefined) {
    throw new UsageError(
      `unexpected argument "${word}" (the tables are conntrack, expect, dying and unconfirmed)`,
    );
  }
  return table;
}

/**
 * The command to run for `command` on `table`: conntrack's refusals are
 * usage errors (`ctnl update expect`, `ctnl get dying`).
 */
export async function commandFor(command: Command, table: Table): Promise<Command> {
  if (table === "conntrack") return command;
  if (table === "dying" || table === "unconfirmed") {
    if (command.name === "dump") return command;
    throw new UsageError(`${command.name} cannot be used with the tables dying and unconfirmed`);
  }
  const { EXPECT_COMMANDS } = await import("./commands.ts"); // loaded for this table only
  const expect = EXPECT_COMMANDS.get(command.name);
  if (expect === undefined) throw new UsageError(`${command.name} cannot be used on expectations`);
  return expect;
}

/**
 * Whether `ctnl dump` lists the dying or unconfirmed list, after which
 * conntrack prints no `</conntrack>` (its `-L dying -o xml` stops before it).
 */
export function isList(ctx: Context): boolean {
  const table = tableOf(ctx.parsed.table);
  return table === "dying" || table === "unconfirmed";
}

/**
 * What `ctnl dump` lists: the conntrack table through `dump` (filters in
 * the kernel where it can; `options` such as `-z`'s), or the dying or
 * unconfirmed list (filters in ctnl).
 */
export function dumpRows(
  ct: Conntrack,
  ctx: Context,
  filter: DumpFilter,
  options: DumpOptions,
): AsyncIterable<Flow> {
  const table = tableOf(ctx.parsed.table);
  return table === "dying" || table === "unconfirmed"
    ? ct.dumpList(table, filter) // conntrack lists these whole, -z or not
    : ct.dump(filter, options);
}

/**
 * The help `args` ask for when they name a command on the expectation
 * table (`ctnl help dump expect`, `ctnl -L expect -h`), else `undefined`.
 */
export async function tableHelp(
  args: readonly string[],
  commands: readonly Command[],
): Promise<string | undefined> {
  const at = args.findIndex((a) =>
    commands.some((c) => c.words.includes(a) || c.flags.includes(a))
  );
  if (at < 0) return undefined;
  const command = commands.find((c) => c.words.includes(args[at]!) || c.flags.includes(args[at]!))!;
  const table = args.slice(at + 1).find((a) => !a.startsWith("-"));
  if (table === undefined || !"expect".startsWith(table)) return undefined;
  const { EXPECT_COMMANDS } = await import("./commands.ts");
  return EXPECT_COMMANDS.get(command.name)?.help;
}
