/**
 * `ctnl`: the conntrack table from the command line, a drop-in for
 * conntrack-tools' `-L`, `-G`, `-S`, `-C`, `-E`, `-D`, `-F`, `-I` and `-U`,
 * plus JSON.
 *
 * ```sh
 * sudo deno run --allow-ffi cli.ts dump -p tcp --dport 443
 * sudo deno run --allow-ffi cli.ts get -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 53
 * sudo deno run --allow-ffi cli.ts dump --json | jq .orig.src
 * sudo deno run --allow-ffi cli.ts events -e NEW,DESTROY -p tcp
 * sudo deno run --allow-ffi cli.ts delete -p tcp --dport 22
 * ```
 *
 * Exit status: 0 success, 1 the operation failed (no such entry, no
 * permission, no such namespace), 2 bad parameters. Errors are one line on
 * stderr starting with `ctnl: `; stdout holds only data.
 *
 * This is the entry point; the CLI lives in `cli/`: `main.ts` (parse, look
 * up the command, exit status), `options.ts` (the option table the parser,
 * each command's options and the option help come from), and one file per
 * command in `commands/`, listed in `commands/mod.ts`. Everything it knows
 * about conntrack comes from `mod.ts`.
 *
 * @module
 */

import type { CliIo } from "./cli/main.ts";
import { quick } from "./cli/quick.ts";

export type { CliIo } from "./cli/main.ts";

export type { SyncWriter } from "./cli/output.ts";

/**
 * Runs the `ctnl` command line with `args` (without the program name):
 * writes data to stdout and messages to stderr (or to the writers `io`
 * gives), and returns the exit status: 0 success, 1 the operation failed,
 * 2 bad parameters. The CLI's modules are loaded on the first call.
 *
 * @example Bad parameters are exit status 2, with one line on stderr
 * ```ts
 * import { main } from "@ctnl/conntrack/cli";
 * import { strictEqual } from "node:assert/strict";
 *
 * // stderr: ctnl: invalid port "70000" for --dport (0-65535)
 * strictEqual(await main(["dump", "-p", "tcp", "--dport", "70000"]), 2);
 * ```
 */
export async function main(args: string[], io: CliIo = {}): Promise<number> {
  // A string literal: `deno compile` and `deno bundle` include it. (Deno still reads the
  // modules behind it at start-up, ~7 ms here, but evaluates them only on this call.)
  const cli = await import("./cli/main.ts");
  return await cli.main(args, io);
}

if (import.meta.main) {
  // `ctnl count` and `ctnl stats` need a few modules only (cli/quick.ts); the rest loads the CLI.
  Deno.exit(quick(Deno.args) ?? await main(Deno.args));
}
