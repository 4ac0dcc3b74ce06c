/**
 * Mistyped options ("did you mean --dport?") and conntrack's options ctnl
 * does not take yet ("not supported yet; use …"), through `main()`
 * in-process: exit status 2, one line on stderr, nothing on stdout, and
 * nothing opened (a namespace that does not exist would be exit 1).
 */

import assert from "node:assert/strict";
import { main } from "../../cli.ts";
import { loadCommands } from "../../cli/commands/mod.ts";
import { OPTIONS } from "../../cli/options.ts";
import { UNSUPPORTED } from "../../cli/suggest.ts";

const COMMANDS = await loadCommands();

async function ctnl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "", stderr = "";
  const writer = (append: (t: string) => void) => ({
    writeSync: (p: Uint8Array) => (append(new TextDecoder().decode(p)), p.length),
  });
  const code = await main(args, {
    stdout: writer((t) => stdout += t),
    stderr: writer((t) => stderr += t),
  });
  return { code, stdout, stderr };
}

const NETNS = ["--netns", "ctnl-unit-no-such-ns"];

async function bad(args: string[], message: string | RegExp): Promise<void> {
  const r = await ctnl([...args, ...NETNS]);
  assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.split("\n").length, 2, `one line: ${r.stderr}`);
  if (typeof message === "string") assert.equal(r.stderr, `ctnl: ${message}\n`);
  else assert.match(r.stderr, message);
}

Deno.test("a mistyped long option: did you mean the closest one", async () => {
  await bad(["dump", "--dprot", "22"], "unknown option --dprot (did you mean --dport?)");
  await bad(["dump", "--sprot=22"], "unknown option --sprot (did you mean --sport?)");
  await bad(["dump", "--famly", "ipv4"], "unknown option --famly (did you mean --family?)");
  await bad(
    ["dump", "--stauts", "ASSURED"],
    "unknown option --stauts (did you mean --status or --stats?)",
  );
  await bad(
    ["events", "--event-msak", "NEW"],
    "unknown option --event-msak (did you mean --event-mask?)",
  );
  await bad(["dump", "--ouptut", "id"], "unknown option --ouptut (did you mean --output?)");
  await bad(["dump", "--netsn", "x"], "unknown option --netsn (did you mean --netns?)");
  await bad(["--dupm"], "unknown option --dupm (did you mean --dump?)"); // a command flag
  // Too far from anything, or as close to two: no guess.
  await bad(["dump", "--frobnicate"], "unknown option --frobnicate");
  await bad(["dump", "--zzzz"], "unknown option --zzzz");
});

Deno.test("conntrack's options that ctnl lacks: not supported yet, and what to use", async () => {
  await bad(["get", "--id", "7"], /^ctnl: option --id is not supported yet/);
  await bad(["get", "-i", "7"], /^ctnl: option -i\/--id is not supported yet; use ctnl dump -o id/);
  // Expectation options are ctnl's now (create expect); on the conntrack table they are refused.
  await bad(
    ["dump", "-p", "tcp", "--mask-port-src", "1"],
    /--mask-port-src cannot be used with dump/,
  );
  await bad(
    ["dump", "-p", "gre", "--mask-key-src", "1"],
    /--mask-key-src is not supported yet; use conntrack -p gre/,
  );
  // A one-letter option conntrack has and ctnl does not: named with its long form.
  for (const u of UNSUPPORTED) {
    if (u.short === undefined || OPTIONS.some((o) => "short" in o && o.short === u.short)) continue;
    if (COMMANDS.some((c) => c.flags.includes(`-${u.short}`))) continue;
    await bad(
      ["dump", `-${u.short}`],
      new RegExp(`^ctnl: option -${u.short}/--${u.long[0]} is not supported yet; use `),
    );
  }
});

Deno.test("UNSUPPORTED names only options ctnl does not have (prune an entry when its option lands)", () => {
  const longs = new Set<string>([
    ...OPTIONS.flatMap((o) => o.long),
    ...COMMANDS.flatMap((c) => c.flags.filter((f) => f.startsWith("--")).map((f) => f.slice(2))),
  ]);
  const shorts = new Set<string>([
    ...OPTIONS.flatMap((o) => "short" in o ? [o.short] : []),
    ...COMMANDS.flatMap((c) => c.flags.filter((f) => /^-[^-]$/.test(f)).map((f) => f.slice(1))),
  ]);
  const stale = UNSUPPORTED.filter((u) =>
    u.long.some((l) => longs.has(l)) || (u.short !== undefined && shorts.has(u.short))
  );
  assert.deepEqual(
    stale.map((u) => u.long[0]),
    [],
    "ctnl takes these now: remove them from UNSUPPORTED in cli/suggest.ts",
  );
});

Deno.test("OPTIONS has no name twice (two helpers adding the same option)", () => {
  const seen = new Map<string, string>();
  for (const o of OPTIONS) {
    for (
      const name of [
        `key ${o.key}`,
        ...o.long.map((l) => `--${l}`),
        ..."short" in o ? [`-${o.short}`] : [],
      ]
    ) {
      assert(!seen.has(name), `${name} is in OPTIONS twice (${seen.get(name)} and ${o.key})`);
      seen.set(name, o.key);
    }
  }
});

Deno.test("-a/--nat-range is ignored with conntrack 1.4.7's warning, on any command", async () => {
  for (const args of [["dump", "-a", "1.2.3.4"], ["count", "--nat-range=1.2.3.4"]]) {
    const r = await ctnl([...args, ...NETNS]);
    // Past parsing: without --allow-ffi it stops right before netlink (exit 1).
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr.split("\n")[0], "WARNING: ignoring -a, deprecated option.");
  }
});
