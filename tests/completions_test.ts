/**
 * The completion scripts as the shells load them: bash sources the
 * generated script (`complete -p`, then `_ctnl` over `COMP_WORDS` as
 * readline would call it: `ctnl du<TAB>`, `ctnl dump --dp<TAB>`, option
 * values, every option of every command); zsh and fish, when installed,
 * parse theirs (`zsh -n`, `fish --no-execute`); every option of the table
 * is in every script. Needs bash, no root.
 */

import assert from "node:assert/strict";
import { run } from "./_ns.ts";
import { loadCommands } from "../cli/commands/mod.ts";
import { EXPECT_COMMANDS } from "../cli/expect/commands.ts";
import { COMMON_OPTIONS, OPTIONS } from "../cli/options.ts";

const COMMANDS = await loadCommands();

const CLI = new URL("../cli.ts", import.meta.url).pathname;

async function script(shell: string): Promise<string> {
  const r = await run([Deno.execPath(), "run", CLI, "completions", shell]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  return r.stdout;
}

/** What bash completes for each line of words (the last word is the one being completed). */
async function bashComplete(source: string, cases: string[][]): Promise<string[][]> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/ctnl.bash`, source);
    const calls = cases.map((words) => {
      const quoted = words.map((w) => `'${w}'`).join(" ");
      return `COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; COMPREPLY=(); _ctnl; ` +
        `echo "\${COMPREPLY[*]}"`;
    });
    const r = await run([
      "bash",
      "--norc",
      "--noprofile",
      "-c",
      [
        `source ${dir}/ctnl.bash`,
        "complete -p ctnl",
        ...calls,
      ].join("\n"),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const [registered, ...lines] = r.stdout.trimEnd().split("\n");
    assert.equal(registered, "complete -F _ctnl ctnl");
    return lines.map((l) => l === "" ? [] : l.split(" "));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("bash: commands, options and values complete as readline would ask", async () => {
  const source = await script("bash");
  assert.equal((await run(["bash", "-n", "-c", source])).code, 0, "bash -n");
  const cases: [string[], string[]][] = [
    [["ctnl", "du"], ["dump"]],
    [["ctnl", "dump", "--dp"], ["--dport"]],
    [["ctnl", "-L", "--dp"], ["--dport"]],
    [["ctnl", "dump", "-p", "tcp", "--sp"], ["--sport"]],
    [["ctnl", "d"], ["dump", "delete"]],
    [["ctnl", "-"], [
      "-L",
      "--dump",
      "-G",
      "--get",
      "-S",
      "--stats",
      "-C",
      "--count",
      "--counter",
      "-E",
      "--event",
      "-D",
      "--delete",
      "-F",
      "--flush",
      "-I",
      "--create",
      "-U",
      "--update",
      "-A",
      "--add",
      "-R",
      "--load-file",
      "-h",
      "--help",
      "-V",
      "--version",
    ]],
    [["ctnl", "dump", "-f", ""], ["ipv4", "ipv6"]],
    [["ctnl", "dump", "--proto", "ic"], ["icmp", "icmpv6"]],
    [["ctnl", "dump", "-p", "tcp", "--state", "TIME"], ["TIME_WAIT", "TIMEWAIT"]], // tcp, dccp
    [["ctnl", "dump", "-u", "SEEN"], ["SEEN_REPLY"]],
    [["ctnl", "events", "-e", "DE"], ["DESTROY"]],
    [["ctnl", "dump", "-o", "ext"], ["extended"]],
    [["ctnl", "dump", "-o", "extended,i"], ["extended,id"]], // a list: one item at a time
    [["ctnl", "summary", "--by", "src,dp"], ["src,dport"]],
    [["ctnl", "dump", "-u", "ASSURED,SEEN"], ["ASSURED,SEEN_REPLY"]],
    [["ctnl", "top", "--sort", "pr"], ["prate", "proto"]],
    [["ctnl", "top", "--by", "dp"], ["dport"]],
    [["ctnl", "dump", "-s", ""], []], // an address: nothing to offer
    [["ctnl", "completions", ""], ["bash", "zsh", "fish"]],
    [["ctnl", "help", "st"], ["stats"]],
    [["ctnl", "stats", "--n"], ["--netns"]],
  ];
  const got = await bashComplete(source, cases.map(([words]) => words));
  cases.forEach(([words, expected], i) => assert.deepEqual(got[i], expected, words.join(" ")));
  // Every option of every command, and nothing it does not take.
  const byKey = new Map<string, (typeof OPTIONS)[number]>(OPTIONS.map((o) => [o.key, o]));
  const all = await bashComplete(source, COMMANDS.map((c) => ["ctnl", c.name, "--"]));
  COMMANDS.forEach((c, i) => {
    // Its options on the expectation table too (create expect --tuple-src …).
    const expected = [
      ...new Set([
        ...c.options,
        ...(EXPECT_COMMANDS.get(c.name)?.options ?? []),
        ...COMMON_OPTIONS,
      ]),
    ]
      .flatMap((k) => byKey.get(k)!.long.map((l) => `--${l}`));
    assert.deepEqual([...all[i]!].sort(), expected.sort(), c.name);
  });
});

async function has(tool: string): Promise<boolean> {
  return (await run(["sh", "-c", `command -v ${tool}`])).code === 0;
}

Deno.test("zsh and fish: every option in the script; parsed by the shell when it is installed", async () => {
  for (const shell of ["zsh", "fish"]) {
    const source = await script(shell);
    for (const o of OPTIONS) {
      if (o.key === "natRange") continue; // accepted and ignored, as conntrack: not offered
      for (const l of o.long) {
        const spelled = shell === "fish" ? `-l ${l}` : `'--${l}:`;
        assert(source.includes(spelled), `${shell}: ${spelled}`);
      }
    }
    for (const c of COMMANDS) {
      const when = shell === "fish" ? `(__ctnl_command) = ${c.name}'` : `(${c.name}) opts=(`;
      if (c.options.length > 0 || shell === "zsh") {
        assert(source.includes(when), `${shell}: ${c.name}`);
      }
    }
    if (await has(shell)) {
      const dir = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(`${dir}/ctnl`, source);
        const check = shell === "zsh"
          ? ["zsh", "-n", `${dir}/ctnl`]
          : ["fish", "--no-execute", `${dir}/ctnl`];
        const r = await run(check);
        assert.equal(r.code, 0, `${shell}: ${r.stderr}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    } else {
      console.log(`${shell} is not installed: its script is checked as text only`);
    }
  }
});

Deno.test("completions: a missing or unknown shell is exit 2", async () => {
  for (const args of [[], ["tcsh"], ["bash", "zsh"]]) {
    const r = await run([Deno.execPath(), "run", CLI, "completions", ...args]);
    assert.equal(r.code, 2, `${args}: ${r.stderr}`);
    assert.equal(r.stdout, "");
    assert.match(
      r.stderr,
      /^ctnl: (no shell given|unknown shell "tcsh"|unexpected argument "zsh")/,
    );
  }
});
