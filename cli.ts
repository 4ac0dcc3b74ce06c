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

import { main } from "./cli/main.ts";

export { type CliIo, main } from "./cli/main.ts";
export type { SyncWriter } from "./cli/output.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
