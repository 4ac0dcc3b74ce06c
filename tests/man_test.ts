/**
 * `man -l ctnl.1` renders without warnings (man --warnings, groff -ww), and
 * the rendered page reads as the help does.
 */

import assert from "node:assert/strict";
import { run } from "./_ns.ts";
import { loadCommands } from "../cli/commands/mod.ts";

const COMMANDS = await loadCommands();

const PAGE = new URL("../ctnl.1", import.meta.url).pathname;

Deno.test("man -l ctnl.1 renders with no warnings", async () => {
  const man = await run(["sh", "-c", `MANWIDTH=100 man --warnings -l ${PAGE} | col -bx`]);
  assert.equal(man.code, 0, man.stderr);
  assert.equal(man.stderr, "", "no warnings");
  const text = man.stdout;
  assert.match(text, /^CTNL\(1\) +User Commands +CTNL\(1\)$/m);
  for (
    const section of ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "SEE ALSO"]
  ) {
    assert.match(text, new RegExp(`^${section}$`, "m"));
  }
  assert.match(text, /^ {7}ctnl - the Linux conntrack table over netlink/m);
  for (const c of COMMANDS) assert.match(text, new RegExp(`^ {3}${c.name}$`, "m"), c.name);
  // Option tables stay aligned, hyphens are plain hyphens.
  assert.match(text, /^ +-p, --proto, --protonum NAME\|NUMBER +Layer-4 protocol/m);
  assert.match(text, /^ +ctnl dump -p tcp --dport 22 -u ASSURED$/m);
  const groff = await run(["groff", "-man", "-Tutf8", "-ww", "-z", PAGE]);
  assert.equal(groff.code, 0);
  assert.equal(groff.stderr, "", "groff -ww");
});
