/**
 * `.ci/run`'s install step on a machine that lacks something: a copy of the
 * script runs with a PATH made of links to this machine's commands minus
 * the missing ones, and stand-ins for `npm` or `apt-get` that fail as an
 * unreachable registry would. It must say in one line what it could not
 * install, end with `tests: 0 passed, 1 failed` and exit 1 — before any
 * test. `CTNL_CI_ONLY_INSTALL=1` is set in every case, so even a run that
 * installs everything stops there (the full script deletes every
 * `ctnl-test-*` namespace at its end; never run it from a test).
 */

import assert from "node:assert/strict";

const SCRIPT = new URL("../.ci/run", import.meta.url).pathname;

interface Machine {
  /** Commands to leave out of PATH. */
  without: string[];
  /** Stand-in scripts (sh), by command name. */
  fake?: Record<string, string>;
}

/** Runs a copy of .ci/run on a simulated machine; its code, output and the stand-ins' log. */
async function ciInstall(machine: Machine) {
  const dir = await Deno.makeTempDir({ prefix: "ctnl-ci-" });
  try {
    const bin = `${dir}/bin`;
    await Deno.mkdir(bin);
    await Deno.mkdir(`${dir}/checkout/.ci`, { recursive: true });
    await Deno.copyFile(SCRIPT, `${dir}/checkout/.ci/run`);
    // systemctl is always a stand-in: the script may stop a service it installed.
    const fake = { systemctl: "exit 0", ...machine.fake };
    const skip = new Set([...machine.without, ...Object.keys(fake)]);
    for (const from of ["/usr/local/bin", "/usr/bin", "/usr/sbin", "/bin", "/sbin"]) {
      for await (const entry of Deno.readDir(from)) {
        if (skip.has(entry.name)) continue;
        try {
          await Deno.symlink(`${from}/${entry.name}`, `${bin}/${entry.name}`);
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        }
      }
    }
    for (const [name, body] of Object.entries(fake)) {
      await Deno.writeTextFile(
        `${bin}/${name}`,
        `#!/bin/sh\necho "${name} $*" >>${dir}/calls\n${body}\n`,
      );
      await Deno.chmod(`${bin}/${name}`, 0o755);
    }
    const out = await new Deno.Command("/bin/bash", {
      args: [`${dir}/checkout/.ci/run`],
      env: { PATH: bin, CTNL_CI_ONLY_INSTALL: "1" },
      stdin: "null",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    let calls = "";
    try {
      calls = await Deno.readTextFile(`${dir}/calls`);
    } catch { /* no stand-in ran */ }
    return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr), calls };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The last two lines: the reason, then the test count. */
function assertFailedWith(r: { code: number; stdout: string }, reason: string) {
  const lines = r.stdout.trimEnd().split("\n");
  assert.equal(r.code, 1, r.stdout);
  assert.equal(lines.at(-2), `ci: FAILED: cannot install ${reason}`, r.stdout);
  assert.equal(lines.at(-1), "tests: 0 passed, 1 failed");
  assert(!r.stdout.includes("== static checks"), r.stdout);
}

Deno.test("no deno and an unreachable npm registry: one line, then tests: 0 passed, 1 failed", async () => {
  const r = await ciInstall({
    without: ["deno"],
    fake: { npm: 'echo "npm ERR! code ECONNREFUSED" >&2; exit 1' },
  });
  assertFailedWith(r, "Deno 2.9.6: npm install -g deno@2.9.6 failed (exit 1)");
  assert.match(r.stdout, /^ {2}\| npm ERR! code ECONNREFUSED$/m); // npm's own words above it
  assert.match(r.calls, /^npm install -g deno@2\.9\.6$/m);
});

Deno.test("a deno of another version is replaced through npm", async () => {
  const r = await ciInstall({
    without: [],
    fake: { deno: 'echo "deno 2.0.0 (stable)"', npm: "exit 7" },
  });
  assertFailedWith(r, "Deno 2.9.6: npm install -g deno@2.9.6 failed (exit 7)");
});

Deno.test("no deno and no npm: npm comes from Debian; if apt-get leaves it missing, that is the line", async () => {
  const r = await ciInstall({ without: ["deno", "npm"], fake: { "apt-get": "exit 0" } });
  assert.match(r.calls, /^apt-get update -qq$/m);
  assert.match(r.calls, /^apt-get install -y -qq --no-install-recommends npm$/m);
  assertFailedWith(r, "npm: npm is still missing after apt-get install");
});

Deno.test("packages installed: each command checked after apt-get; prometheus's own server stopped", async () => {
  const r = await ciInstall({ without: ["promtool"], fake: { "apt-get": "exit 0" } });
  assert.match(r.calls, /^apt-get install -y -qq --no-install-recommends prometheus$/m);
  assert.match(r.calls, /^systemctl disable --now prometheus$/m);
  assertFailedWith(r, "prometheus: promtool is still missing after apt-get install");
});

Deno.test("a Debian package that cannot be installed: apt-get's error, then the line", async () => {
  const r = await ciInstall({
    without: ["tmux", "promtool"],
    fake: {
      "apt-get":
        '[ "$1" = update ] && exit 0\necho "E: Unable to locate package tmux" >&2\nexit 100',
    },
  });
  assert.match(r.calls, /^apt-get install -y -qq --no-install-recommends prometheus tmux$/m);
  assert.match(r.stdout, /^ {2}\| E: Unable to locate package tmux$/m);
  assertFailedWith(r, "prometheus tmux: apt-get install failed (exit 100)");
});

Deno.test("nothing missing: the install step passes and CTNL_CI_ONLY_INSTALL=1 stops there", async () => {
  const r = await ciInstall({ without: [] });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^deno 2\.9\.6 /m);
  assert.match(r.stdout, /^conntrack v1\.4\.7 /m);
  assert.equal(
    r.stdout.trimEnd().split("\n").at(-1),
    "install: ok (CTNL_CI_ONLY_INSTALL=1: stopping before the tests)",
  );
});
