/**
 * A newcomer's path, as the README writes it: the repository cloned into a
 * temporary directory, the fresh-machine command run as written (its
 * install steps already satisfied, so it installs nothing) inside a
 * namespace with real traffic, the second command's install step, the demo,
 * the library quick start (`deno check` and a run compared with
 * `conntrack -L`), the package from a stand-in JSR registry (`deno add`, the
 * quick start outside a checkout, `deno install -g`, an example by URL), the
 * five jq recipes, and the bundle. Another test checks that every relative
 * link of the README and docs/ reaches a published file, and a third runs
 * every `ctnl` command in the README's and docs/cli.md's shell blocks and
 * docs/library.md's TypeScript, and checks the error messages docs/cli.md
 * quotes.
 *
 * It never installs anything: if the machine lacks git, npm or Deno 2.9.6
 * it fails saying so (`.ci/run` installs them first).
 */

import assert from "node:assert/strict";
import { must, type Netns, run, type RunResult } from "./_ns.ts";
import { trafficNamespace } from "./_traffic.ts";
import { SHEBANG } from "../tools/bundle.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const DENO = Deno.execPath();
const README = Deno.readTextFileSync(`${ROOT}/README.md`);
const VERSION = (JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)) as { version: string })
  .version;
/** The placeholder the README's clone line has for the repository's URL. */
const CLONE_URL = "https://github.com/OWNER/ctnl.git";

/** The text of `## HEADING` up to the next `## `. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  assert(start >= 0, `no "## ${heading}"`);
  const end = markdown.indexOf("\n## ", start + 1);
  return markdown.slice(start, end < 0 ? undefined : end);
}

/** The bodies of the fenced blocks of `lang` ("" for a block without one). */
function blocks(markdown: string, lang: string): string[] {
  const re = /^```(\S*)\n([\s\S]*?)^```$/gm;
  return [...markdown.matchAll(re)].filter((m) => m[1] === lang).map((m) => m[2]!);
}

/**
 * The commands of a shell block: comment lines dropped, continuation lines
 * (after `\`, `&&` or `|`, or indented) joined to their command.
 */
function commands(block: string): string[] {
  const out: string[] = [];
  let continues = false;
  for (const line of block.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    if (continues || /^\s/.test(line)) out[out.length - 1] += `\n${line}`;
    else out.push(line);
    continues = /(\\|&&|\|)\s*$/.test(line);
  }
  return out;
}

/** A conntrack -L line (plain or `-o extended`) without what ticks: the timeout, delta-time, use. */
function masked(line: string): string {
  return line.replace(/^((?:ipv[46] +\d+ +)?\S+ +\d+ )\d+ /, "$1T ").replace(/ delta-time=\d+/, "")
    .replace(/ use=\d+/, "");
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

/** Runs a command in `cwd` (default: here) with extra environment; its code and output. */
async function proc(
  cmd: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdin: "null",
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { NO_COLOR: "1", ...options.env },
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** `bash -o pipefail -c SCRIPT`, optionally in a namespace, with extra environment. */
function bash(
  script: string,
  options: { cwd?: string; ns?: Netns; env?: Record<string, string> } = {},
) {
  const cmd = ["bash", "-o", "pipefail", "-c", script];
  return proc(options.ns ? ["ip", "netns", "exec", options.ns.name, ...cmd] : cmd, options);
}

async function conntrackL(ns: Netns, args: string[] = []): Promise<string[]> {
  return lines(await ns.exec(["conntrack", "-L", ...args]));
}

/** The README's fresh-machine commands: [get the code … dump, run the tests]. */
function freshMachineCommands(): string[] {
  const [block] = blocks(section(README, "Two commands for a fresh Debian 12"), "sh");
  const cmds = commands(block!);
  assert.equal(cmds.length, 2, block);
  return cmds;
}

/** What `deno publish --dry-run` would publish from `dir`, relative paths. */
async function publishedFiles(dir: string): Promise<string[]> {
  const r = await proc([DENO, "publish", "--dry-run", "--allow-dirty"], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const prefix = `file://${dir}/`;
  return [...(r.stdout + r.stderr).matchAll(/^\s+(file:\/\/\S+)/gm)]
    .map((m) => m[1]!).filter((f) => f.startsWith(prefix)).map((f) => f.slice(prefix.length));
}

/**
 * A stand-in for jsr.io serving one version of the package from `dir` (the
 * files `deno publish` would upload, with the manifest Deno checks), for
 * `JSR_URL`.
 */
async function standInJsr(dir: string) {
  const config = JSON.parse(await Deno.readTextFile(`${dir}/deno.json`));
  const manifest: Record<string, { size: number; checksum: string }> = {};
  for (const file of await publishedFiles(dir)) {
    const data = await Deno.readFile(`${dir}/${file}`);
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    const hex = [...hash].map((b) => b.toString(16).padStart(2, "0")).join("");
    manifest[`/${file}`] = { size: data.length, checksum: `sha256-${hex}` };
  }
  const [scope, name] = (config.name as string).slice(1).split("/");
  const base = `/${config.name}`;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === `${base}/meta.json`) {
      return Response.json({
        scope,
        name,
        latest: config.version,
        versions: { [config.version]: {} },
      });
    }
    if (path === `${base}/${config.version}_meta.json`) {
      return Response.json({ manifest, exports: config.exports });
    }
    const file = path.slice(`${base}/${config.version}`.length);
    if (path.startsWith(`${base}/${config.version}/`) && manifest[file]) {
      return new Response(await Deno.readFile(`${dir}${file}`));
    }
    return new Response("not found", { status: 404 });
  });
  return { server, url: `http://127.0.0.1:${server.addr.port}/`, files: Object.keys(manifest) };
}

/** A directory with a `ctnl` that runs `dir`'s cli.ts in `ns` (for the README's `ctnl …` lines). */
async function ctnlOnPath(tmp: string, dir: string, ns: Netns): Promise<string> {
  const bin = `${tmp}/bin-${ns.name}`;
  await Deno.mkdir(bin, { recursive: true });
  await Deno.writeTextFile(
    `${bin}/ctnl`,
    `#!/bin/sh\nexec ${DENO} run --allow-ffi --allow-read=/etc/xtables/connlabel.conf ` +
      `${dir}/cli.ts "$@" --netns ${ns.name}\n`,
  );
  await Deno.chmod(`${bin}/ctnl`, 0o755);
  return `${bin}:${Deno.env.get("PATH")}`;
}

Deno.test("the README's path for a newcomer, from a fresh clone", async (t) => {
  // The install steps must already be satisfied: this test installs nothing.
  for (const cmd of ["git", "npm"]) {
    assert.equal((await run(["sh", "-c", `command -v ${cmd}`])).code, 0, `${cmd} is missing`);
  }
  assert.match(await must(["deno", "--version"]), /^deno 2\.9\.6 /, "deno on PATH is not 2.9.6");
  assert.equal(
    (await run(["git", "-C", ROOT, "rev-parse", "--git-dir"])).code,
    0,
    `${ROOT} is not a git checkout: this test clones it`,
  );

  const tmp = await Deno.makeTempDir({ prefix: "ctnl-newcomer-" });
  const ns = await trafficNamespace("newcomer");
  const clone = `${tmp}/ctnl`;
  try {
    const [getCode, runTests] = freshMachineCommands();
    // apt-get and npm that refuse, first on PATH for the README's install steps: whatever
    // happens, this test installs nothing.
    const guard = `${tmp}/guard`;
    await Deno.mkdir(guard);
    for (const cmd of ["apt-get", "npm"]) {
      await Deno.writeTextFile(
        `${guard}/${cmd}`,
        `#!/bin/sh\necho "stand-in ${cmd} $*" >&2\nexit 99\n`,
      );
      await Deno.chmod(`${guard}/${cmd}`, 0o755);
    }
    const env = { PATH: `${guard}:${Deno.env.get("PATH")}` };

    await t.step(
      "the fresh-machine command clones, installs nothing more here, dumps",
      async () => {
        assert(getCode!.includes(`git clone ${CLONE_URL} ctnl && cd ctnl`), getCode);
        assert(getCode!.includes("apt-get install -y git npm"), getCode);
        assert(getCode!.includes("npm install -g deno@2.9.6"), getCode);
        const r = await bash(getCode!.replace(CLONE_URL, ROOT), { cwd: tmp, ns, env });
        assert.equal(r.code, 0, r.stderr);
        assert(!r.stderr.includes("stand-in"), "it tried to install something:\n" + r.stderr);
        assert.equal(
          await must(["git", "-C", clone, "rev-parse", "HEAD"]),
          await must(["git", "-C", ROOT, "rev-parse", "HEAD"]),
        );
        assert.deepEqual(
          lines(r.stdout).map(masked).sort(),
          (await conntrackL(ns)).map(masked).sort(),
        );
        assert.match(
          r.stderr,
          /ctnl v[\d.]+ \(@ctnl\/conntrack\): \d+ flow entries have been shown\./,
        );
      },
    );

    await t.step("the test command: CI's install step, then deno task test", async () => {
      assert.equal(runTests, "CTNL_CI_ONLY_INSTALL=1 bash .ci/run && deno task test");
      const ci = await Deno.readTextFile(`${clone}/.ci/run`);
      assert.match(ci, /^deno task test 2>&1 \| tee "\$log"$/m); // the same test command as CI
      const r = await bash("CTNL_CI_ONLY_INSTALL=1 bash .ci/run", { cwd: clone, env });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^install: ok /m);
      assert(!r.stdout.includes("== static checks"), r.stdout);
    });

    await t.step("the demo, from the clone", async () => {
      const [block] = blocks(section(README, "The demo"), "sh");
      assert.equal(block, "deno task demo\n");
      const r = await bash("deno task demo", { cwd: clone });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^== ctnl events --netns ctnl-demo-\d+ & \(in the background\)$/m);
      assert.match(r.stderr, /^== Deleted namespace ctnl-demo-\d+$/m);
    });

    const [quickStart] = blocks(section(README, "Library quick start"), "ts");
    assert(quickStart?.includes('from "@ctnl/conntrack"'));
    let quickOut = "";

    await t.step("the quick start type-checks and prints what conntrack -L lists", async () => {
      await Deno.writeTextFile(`${clone}/quick_start.ts`, quickStart!);
      const check = await proc([DENO, "check", "quick_start.ts"], { cwd: clone });
      assert.equal(check.code, 0, check.stderr);
      const r = await bash(`${DENO} run --allow-ffi quick_start.ts`, { cwd: clone, ns });
      assert.equal(r.code, 0, r.stderr);
      quickOut = r.stdout;
      const listed = await conntrackL(ns, ["-p", "tcp", "-u", "ASSURED"]);
      assert(listed.length >= 4, listed.join("\n"));
      assert.deepEqual(lines(r.stdout).map(masked).sort(), listed.map(masked).sort());
      const timeWait = listed.filter((l) => / TIME_WAIT /.test(l)).length;
      assert.equal((r.stderr.match(/^closing: /gm) ?? []).length, timeWait, r.stderr);
      const count = (await ns.exec(["conntrack", "-C"])).trim();
      assert.match(r.stderr, new RegExp(`^${count} entries in all$`, "m"));
    });

    await t.step(
      "from a stand-in JSR: deno add, the quick start, deno install -g, an example",
      async () => {
        const jsr = await standInJsr(clone);
        try {
          for (
            const f of ["/examples/kill_port.ts", "/examples/top_talkers.ts", "/cli/version.ts"]
          ) {
            assert(jsr.files.includes(f), `${f} is not in the package`);
          }
          // Of tests/, bench/ and dist/, only the two READMEs the README links.
          const extra = jsr.files.filter((f) => /^\/(tests|bench|dist)\//.test(f));
          assert.deepEqual(extra.sort(), ["/bench/README.md", "/tests/README.md"]);
          const env = {
            JSR_URL: jsr.url,
            DENO_DIR: `${tmp}/deno-dir`,
            DENO_INSTALL_ROOT: `${tmp}/root`,
          };
          const project = `${tmp}/project`;
          await Deno.mkdir(project);
          await Deno.writeTextFile(`${project}/deno.json`, "{}\n");
          const install = commands(blocks(section(README, "Install"), "sh")[0]!)
            .map((c) => c.replace(/\s+#.*$/, ""));
          assert.deepEqual(install, [
            "deno add jsr:@ctnl/conntrack",
            "deno install -g --allow-ffi -n ctnl jsr:@ctnl/conntrack/cli",
          ]);
          const add = await bash(install[0]!, { cwd: project, env });
          assert.equal(add.code, 0, add.stderr);
          assert.match(
            await Deno.readTextFile(`${project}/deno.json`),
            /"@ctnl\/conntrack": "jsr:@ctnl\/conntrack@\^/,
          );
          await Deno.writeTextFile(`${project}/quick_start.ts`, quickStart!);
          const check = await bash(`${DENO} check quick_start.ts`, { cwd: project, env });
          assert.equal(check.code, 0, check.stderr);
          const r = await bash(`${DENO} run --allow-ffi quick_start.ts`, { cwd: project, ns, env });
          assert.equal(r.code, 0, r.stderr);
          assert.deepEqual(lines(r.stdout).map(masked).sort(), lines(quickOut).map(masked).sort());

          const inst = await bash(install[1]!, { cwd: tmp, env });
          assert.equal(inst.code, 0, inst.stderr);
          const ctnl = `${tmp}/root/bin/ctnl`;
          const version = await bash(`${ctnl} --version`, { cwd: "/", env });
          assert.equal(version.stdout, `ctnl v${VERSION} (@ctnl/conntrack)\n`, version.stderr);
          const count = await bash(`${ctnl} count --netns ${ns.name}`, { cwd: "/", env });
          assert.equal(count.stdout, await ns.exec(["conntrack", "-C"]));

          const url = `${jsr.url}@ctnl/conntrack/${VERSION}/examples/top_talkers.ts`;
          const host = new URL(jsr.url).host;
          const top = await bash(
            `${DENO} run --allow-ffi --allow-import=${host} ${url} --top 2 --netns ${ns.name}`,
            { cwd: "/", env },
          );
          assert.equal(top.code, 0, top.stderr);
          assert.match(top.stdout, /^BYTES +PACKETS +PROTO +SOURCE +DESTINATION +STATE\n.*\n.*\n$/);
        } finally {
          await jsr.server.shutdown();
        }
      },
    );

    await t.step("the five jq recipes", async () => {
      const recipes = commands(blocks(section(README, "JSON for jq users"), "sh")[0]!);
      assert.equal(recipes.length, 5, recipes.join("\n"));
      const PATH = await ctnlOnPath(tmp, clone, ns);
      const out: string[] = [];
      for (const recipe of recipes) {
        const r = await bash(recipe, { cwd: tmp, env: { PATH } });
        assert.equal(r.code, 0, `${recipe}\n${r.stderr}`);
        assert.notEqual(r.stdout, "", recipe);
        out.push(r.stdout);
      }
      // Established TCP destinations, counted: as many as conntrack lists.
      const established = await conntrackL(ns, ["-p", "tcp", "--state", "ESTABLISHED"]);
      const counted = lines(out[0]!).map((l) => Number(l.trim().split(" ")[0]));
      assert.equal(counted.reduce((a, b) => a + b, 0), established.length);
      // entries / nf_conntrack_max.
      const count = Number(await ns.exec(["conntrack", "-C"]));
      const max = Number(await ns.exec(["cat", "/proc/sys/net/netfilter/nf_conntrack_max"]));
      assert.equal(Number(out[1]), count / max);
      // Three flows with bytes, biggest first.
      const top = lines(out[2]!).map((l) => JSON.parse(l) as { proto: string; bytes: number });
      assert(top.every((f) => ["tcp", "udp", "icmp", "icmpv6"].includes(f.proto)));
      assert.equal(top.length, 3);
      assert(top[0]!.bytes >= top[1]!.bytes && top[1]!.bytes >= top[2]!.bytes && top[2]!.bytes > 0);
      // protocolName is conntrack -L's protocol column, entry by entry.
      const names = await bash("ctnl dump --json | jq -r '.orig.protocolName'", { env: { PATH } });
      assert.deepEqual(
        lines(names.stdout).sort(),
        (await conntrackL(ns)).map((l) => l.split(/ +/)[0]!).sort(),
      );
      // The DNAT of tests/_traffic.ts.
      assert.match(out[3]!, /^10\.60\.0\.100:8081 -> 10\.50\.0\.2:8080$/m);
      // Start dates: today's.
      const today = new Date().toISOString().slice(0, 10);
      for (const l of lines(out[4]!)) {
        assert.match(l, new RegExp(`^${today}T\\d\\d:\\d\\d:\\d\\dZ \\S+ -> \\S+$`));
      }
    });

    await t.step(
      "the bundle: a shebang, runs from another directory, prints what cli.ts prints",
      async () => {
        const b = await proc([DENO, "task", "bundle"], { cwd: clone });
        assert.equal(b.code, 0, b.stderr);
        const bundle = `${clone}/dist/ctnl.js`;
        const text = await Deno.readTextFile(bundle);
        assert.equal(text.slice(0, text.indexOf("\n")), SHEBANG);
        assert(SHEBANG.startsWith("#!/usr/bin/env -S deno run --allow-ffi "));
        assert.equal((await Deno.stat(bundle)).mode! & 0o111, 0o111);
        assert(!text.includes('"compilerOptions"'), "the bundle embeds deno.json");
        const version = await proc([bundle, "--version"], { cwd: "/" });
        assert.equal(version.stdout, `ctnl v${VERSION} (@ctnl/conntrack)\n`, version.stderr);
        const fromBundle = await proc([bundle, "dump", "-o", "extended,id", "--netns", ns.name], {
          cwd: "/",
        });
        const fromCli = await proc([
          DENO,
          "run",
          "--allow-ffi",
          `${clone}/cli.ts`,
          "dump",
          "-o",
          "extended,id",
          "--netns",
          ns.name,
        ]);
        assert.equal(fromBundle.code, 0, fromBundle.stderr);
        assert.equal(fromBundle.stderr, fromCli.stderr);
        assert.deepEqual(
          lines(fromBundle.stdout).map(masked).sort(),
          lines(fromCli.stdout).map(masked).sort(),
        );
      },
    );
  } finally {
    await ns.delete();
    await Deno.remove(tmp, { recursive: true });
  }
});

/** Pages the README links before they are written (none now); checked once they exist. */
const PENDING = new Set<string>([]);

Deno.test("every relative link of the README and docs/ reaches a file of the package", async () => {
  const published = new Set(await publishedFiles(ROOT));
  const pages = [
    "README.md",
    ...[...Deno.readDirSync(`${ROOT}/docs`)].map((e) => `docs/${e.name}`),
  ];
  const missing: string[] = [];
  for (const page of pages) {
    const text = await Deno.readTextFile(`${ROOT}/${page}`);
    for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // a URL
      const file = new URL(target!, `file:///${page}`).pathname.slice(1);
      if (PENDING.has(file) && !published.has(file)) continue;
      if (!published.has(file)) missing.push(`${page} -> ${target}`);
    }
  }
  assert.deepEqual(missing, []);
});

Deno.test("every ctnl command in the README's and docs/cli.md's shell blocks runs, docs/library.md's code runs; the quoted errors are what ctnl prints", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "ctnl-doc-commands-" });
  const ns = await trafficNamespace("doccmds");
  try {
    const cli = await Deno.readTextFile(`${ROOT}/docs/cli.md`);
    const PATH = await ctnlOnPath(tmp, ROOT, ns);

    await t.step("the error messages docs/cli.md quotes", async () => {
      const block = blocks(section(cli, "Exit status and errors"), "")[0]!;
      const pairs = [...block.matchAll(/^\$ (.+)\n(.+?) +\(exit (\d)\)$/gm)];
      assert.equal(pairs.length, 7, block);
      // These read the namespace ctnl runs in (the root one; reading is all they do), so
      // `ctnl` here is cli.ts without --netns; `--netns blue` names one that does not exist.
      assert.equal((await run(["ip", "netns", "pids", "blue"])).code, 1, "a namespace blue exists");
      const bare = `${tmp}/bare`;
      await Deno.mkdir(bare);
      await Deno.writeTextFile(
        `${bare}/ctnl`,
        `#!/bin/sh\nexec ${DENO} run --allow-ffi ${ROOT}/cli.ts "$@"\n`,
      );
      await Deno.chmod(`${bare}/ctnl`, 0o755);
      await Deno.chmod(tmp, 0o755);
      const home = `${tmp}/home`; // a user's own DENO_DIR, as .ci/run gives uid 65534
      await Deno.mkdir(home);
      await Deno.chown(home, 65534, 65534);
      const env = { PATH: `${bare}:${Deno.env.get("PATH")}`, HOME: home };
      for (const [, command, message, code] of pairs) {
        let cmd = command!.replace(/\s+#.*$/, "");
        if (command!.includes("# as a user")) {
          cmd = `setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all ${cmd}`;
        }
        const r = await bash(cmd, { cwd: ROOT, env });
        assert.equal(r.stdout, "", cmd);
        assert.equal(r.stderr, `${message}\n`, cmd);
        assert.equal(r.code, Number(code), cmd);
      }
    });

    await t.step(
      "docs/library.md's TypeScript runs, and planDump says what the page says",
      async () => {
        const library = await Deno.readTextFile(`${ROOT}/docs/library.md`);
        const [tour, plan] = blocks(library, "ts");
        const runTs = async (name: string, code: string) => {
          await Deno.writeTextFile(`${ROOT}/${name}`, code); // in the checkout: "@ctnl/conntrack" resolves
          try {
            return await bash(`${DENO} run --allow-ffi ${name}`, { cwd: ROOT, ns });
          } finally {
            await Deno.remove(`${ROOT}/${name}`);
          }
        };
        const r = await runTs(`.tour_${ns.name}.ts`, tour!);
        assert.equal(r.code, 0, r.stderr);
        const count = (await ns.exec(["conntrack", "-C"])).trim();
        assert.match(r.stdout, new RegExp(`^${count} entries$`, "m"));
        assert.match(r.stdout, /^0 \d+ \d+$/m); // stats: cpu 0's found and insertFailed
        const call = /^ct\.planDump\((.*)\);$/m.exec(plan!)!;
        const shown = plan!.slice(call.index + call[0].length).replace(/^\/\/ ?/gm, "");
        const p = await runTs(
          `.plan_${ns.name}.ts`,
          plan!.replace(call[0], `console.log(JSON.stringify(ct.planDump(${call[1]})));`),
        );
        assert.equal(p.code, 0, p.stderr);
        // The page writes it as a JS literal: compare with its keys quoted.
        const literal = shown.trim().replace(/([{,]\s*)([a-z]+):/g, '$1"$2":');
        assert.deepEqual(JSON.parse(p.stdout), JSON.parse(literal));
      },
    );

    const docs = [README, cli];
    const all = docs.flatMap((d) => blocks(d, "sh").flatMap(commands))
      .filter((c) => c.startsWith("ctnl "))
      .map((c) => c.replace(/\s+#[^'"]*$/, "").replace(/ --netns blue/, ""));
    assert(all.length >= 30, `${all.length} commands`);

    await t.step(
      `${all.length} commands: exit 0 or 1 (an entry the example names may not exist), never 2`,
      async () => {
        const results: string[] = [];
        for (const cmd of all) {
          const script = cmd.startsWith("ctnl events")
            ? `timeout --preserve-status -s INT 1 ${cmd}`
            : cmd;
          const r = await bash(script, { cwd: tmp, env: { PATH } }); // files they write land in tmp
          results.push(`${r.code} ${cmd.split("\n")[0]}`);
          assert([0, 1].includes(r.code), `exit ${r.code}: ${cmd}\n${r.stderr}`);
          assert(!/Uncaught|\n\s+at /.test(r.stderr), `${cmd}\n${r.stderr}`);
          for (const l of lines(r.stderr)) {
            assert.match(
              l,
              /^(ctnl[: ]|\S+ flow (entries|events) have been|connection tracking)/,
              `${cmd}\n${r.stderr}`,
            );
          }
        }
        // Most of them do something.
        assert(
          results.filter((r) => r.startsWith("0 ")).length > all.length / 2,
          results.join("\n"),
        );
      },
    );
  } finally {
    await ns.delete();
    await Deno.remove(tmp, { recursive: true });
  }
});
