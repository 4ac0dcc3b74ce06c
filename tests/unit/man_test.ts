/**
 * The committed man page is what tools/man.ts makes of the current help
 * text (run `deno task man` after changing a command or an option), and it
 * documents every command and every option.
 */

import assert from "node:assert/strict";
import { manPage } from "../../tools/man.ts";
import { loadCommands } from "../../cli/commands/mod.ts";
import { OPTIONS } from "../../cli/options.ts";

const COMMANDS = await loadCommands();

Deno.test("ctnl.1 is up to date with tools/man.ts (deno task man)", () => {
  const committed = Deno.readTextFileSync(new URL("../../ctnl.1", import.meta.url));
  assert(committed === manPage(), "ctnl.1 is stale: run `deno task man` and commit it");
});

Deno.test("the man page has every command and every option the commands take", () => {
  const page = manPage().replaceAll("\\-", "-");
  for (const c of COMMANDS) assert.match(page, new RegExp(`^\\.SS ${c.name}$`, "m"));
  const taken = new Set(COMMANDS.flatMap((c) => c.options));
  for (const o of OPTIONS) {
    if (!taken.has(o.key) && o.key !== "help" && o.key !== "version") continue;
    for (const l of o.long) assert(page.includes(`--${l}`), `--${l}`);
  }
});
