/**
 * `ctnl completions bash|zsh|fish`: print a shell completion script.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { writeText } from "../output.ts";
import type { CommandBody, Context } from "../context.ts";
import { completionScript, type Shell, SHELLS } from "../completions.ts";

async function run(ctx: Context): Promise<number> {
  const shell = ctx.parsed.operand;
  if (shell === undefined || !(SHELLS as readonly string[]).includes(shell)) {
    const what = shell === undefined ? "no shell given" : `unknown shell "${shell}"`;
    throw new UsageError(`${what} (try ${SHELLS.join(", ")})`);
  }
  // The registry lists this command: imported when it runs, not when it loads (no cycle).
  const { loadCommands } = await import("./mod.ts");
  writeText(ctx.io.stdout, completionScript(shell as Shell, await loadCommands()));
  return 0;
}

/** `ctnl completions SHELL`. */
export const completions: CommandBody = {
  summary: "Print a shell completion script (bash, zsh, fish)",
  options: [],
  help: `Usage: ctnl completions bash|zsh|fish

Prints a completion script for the shell, made from ctnl's commands and
options: command words, each command's options, and the values of options
that take a fixed set (families, protocols, states, status flags, -o
keywords, namespaces from /run/netns).

  bash:  source <(ctnl completions bash)     (in ~/.bashrc), or
         ctnl completions bash > /etc/bash_completion.d/ctnl
  zsh:   ctnl completions zsh > "\${fpath[1]}/_ctnl"   (then restart zsh), or
         source <(ctnl completions zsh)     (after compinit)
  fish:  ctnl completions fish > ~/.config/fish/completions/ctnl.fish
`,
  run,
};
