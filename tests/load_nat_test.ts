/**
 * `ctnl load` of NAT-ed entries as `-o save` writes them (`-g ADDR` in place
 * of `-r`, `-n ADDR` in place of `-q`): the table ctnl loads equals the one
 * `conntrack -R` loads from the same file, compared with `conntrack -L -o save`.
 */

import assert from "node:assert/strict";
import { Netns, run } from "./_ns.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const LINES = [
  // DNAT: the reply comes from the real server, written as -g.
  "-A -t 100 -u SEEN_REPLY -s 10.1.0.1 -d 10.60.0.100 -g 10.1.0.2 -q 10.1.0.1 -p tcp " +
  "--sport 1000 --dport 8081 --reply-port-src 8080 --reply-port-dst 1000 --state ESTABLISHED",
  // SNAT: the reply goes to the translated source, written as -n.
  "-A -t 200 -u SEEN_REPLY,ASSURED -s 10.1.0.3 -d 10.1.0.2 -r 10.1.0.2 -n 10.1.0.9 -p udp " +
  "--sport 5000 --dport 53 --reply-port-src 53 --reply-port-dst 5000",
  "-A -t 300 -s fd00::1 -d fd00::2 -p udp --sport 7 --dport 9",
];
const mask = (text: string) => text.replace(/-t \d+ /g, "-t T ").split("\n").sort().join("\n");

Deno.test("load: NAT-ed save lines give the table conntrack -R gives", async () => {
  const ns = await Netns.create("load-nat");
  try {
    const file = await Deno.makeTempFile({ suffix: ".save" });
    await Deno.writeTextFile(file, LINES.join("\n") + "\n");
    try {
      await ns.exec(["conntrack", "-R", file]);
      const theirs = await ns.exec(["conntrack", "-L", "-o", "save"]);
      await ns.exec(["conntrack", "-F"]);
      const r = await run([
        Deno.execPath(),
        "run",
        "--allow-ffi",
        "--allow-read",
        CLI,
        "--netns",
        ns.name,
        "load",
        file,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        / 3 lines: 3 created, 0 updated, 0 deleted, 0 flushed, 0 skipped, 0 failed\.$/m,
      );
      const ours = await ns.exec(["conntrack", "-L", "-o", "save"]);
      assert.equal(mask(ours), mask(theirs));
      assert.equal(theirs.trim().split("\n").length, 3);
    } finally {
      await Deno.remove(file);
    }
  } finally {
    await ns.delete();
  }
});
