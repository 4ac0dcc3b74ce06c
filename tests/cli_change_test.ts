/**
 * The `ctnl` commands that watch and change the table (events, delete,
 * flush, create, update) as real processes against the real kernel, in a
 * fresh namespace, checked with conntrack-tools: `conntrack -L` and `-C`
 * see what ctnl did, `conntrack -I/-U/-D` given the same options do the
 * same, and `conntrack -E` run beside `ctnl events` prints the same lines.
 */

import assert from "node:assert/strict";
import { Conntrack } from "../mod.ts";
import { parseConntrackOutput } from "./_conntrack_text.ts";
import { Netns, pool, run, type RunResult } from "./_ns.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = new URL("../cli.ts", import.meta.url).pathname;
const DENO = Deno.execPath();
const VERSION = (JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)) as { version: string })
  .version;
const PREFIX = `ctnl v${VERSION} (@ctnl/conntrack): `;

/** `deno run --allow-ffi cli.ts --netns NS ARGS`. */
function ctnl(ns: Netns, args: string[]): Promise<RunResult> {
  return run([DENO, "run", "--allow-ffi", CLI, "--netns", ns.name, ...args]);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function count(ns: Netns): Promise<number> {
  return Number((await ns.exec(["conntrack", "-C"])).trim());
}

/** conntrack's lines of `conntrack ARGS` (stdout), with its exit code and stderr. */
function conntrack(ns: Netns, args: string[]): Promise<RunResult> {
  return ns.run(["conntrack", ...args]);
}

/** Lines of a text, without the empty last one. */
function lines(text: string): string[] {
  return text === "" ? [] : text.replace(/\n$/, "").split("\n");
}

/**
 * The same lines, except for the clock: the timeout countdown and
 * `delta-time=` may differ by 3 s (the tools ran at different moments).
 */
function assertSameLines(actual: string[], expected: string[], what: string): void {
  assert.equal(
    actual.length,
    expected.length,
    `${what}: line count\n${actual.join("\n")}\n---\n${expected.join("\n")}`,
  );
  const clock = [/^((?:\s*\[\w+\] )?(?:ipv[46] +\d+ )?\S+ +\d+ )(\d+)( )/, /( delta-time=)(\d+)()/];
  for (let i = 0; i < actual.length; i++) {
    let a = actual[i]!, e = expected[i]!;
    for (const re of clock) {
      const ma = re.exec(a), me = re.exec(e);
      if (ma && me) {
        assert(Math.abs(Number(ma[2]) - Number(me[2])) <= 3, `${what}: ${a}\nvs\n${e}`);
        a = a.replace(re, "$1N$3");
        e = e.replace(re, "$1N$3");
      }
    }
    assert.equal(a, e, `${what}: line ${i + 1}`);
  }
}

/** Exactly ctnl's one summary line on stderr. */
function assertSummary(r: RunResult, text: string, what: string): void {
  assert.equal(r.stderr, `${PREFIX}${text}\n`, `${what}: stderr`);
}

/** A long-running process whose stdout and stderr are collected as they come. */
class Watcher {
  stdout = "";
  stderr = "";
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<unknown>;
  #status: Deno.CommandStatus | undefined;

  constructor(readonly name: string, cmd: string[]) {
    this.#child = new Deno.Command(cmd[0]!, {
      args: cmd.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const collect = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) add(chunk);
    };
    this.#reading = Promise.all([
      collect(this.#child.stdout, (s) => this.stdout += s),
      collect(this.#child.stderr, (s) => this.stderr += s),
    ]);
  }

  /** Sends `signal` and waits for the process and its output to end. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    if (this.#status === undefined) {
      try {
        this.#child.kill(signal);
      } catch { /* already gone */ }
      this.#status = await this.#child.status;
      await this.#reading;
    }
    return this.#status;
  }
}

/** Polls `ok` every 20 ms for up to `ms`. */
async function until(ok: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) return false;
    await sleep(20);
  }
  return true;
}

/** The UDP "sentinel" entries used to find out that every watcher listens: 10.9.9.9:PORT -> 10.9.9.8:9. */
const SENTINEL = "10.9.9.9";
function sawSentinel(text: string, port: number): boolean {
  return text.includes(`src=${SENTINEL} dst=10.9.9.8 sport=${port} `) ||
    text.includes(
      `"src":"${SENTINEL}","dst":"10.9.9.8","protocol":17,"protocolName":"udp","srcPort":${port},`,
    );
}

/**
 * Creates and deletes sentinel entries until every watcher has printed
 * one: then all of them are subscribed (at the start) or have printed
 * everything before it (at the end).
 */
async function sync(ct: Conntrack, watchers: Watcher[], firstPort: number): Promise<void> {
  for (let port = firstPort; port < firstPort + 100; port++) {
    const orig = { src: SENTINEL, dst: "10.9.9.8", protocol: "udp", srcPort: port, dstPort: 9 };
    await ct.create({ orig, timeout: 60 });
    await ct.delete(orig);
    if (await until(() => watchers.every((w) => sawSentinel(w.stdout, port)), 400)) return;
  }
  const late = watchers.filter((w) => !sawSentinel(w.stdout, firstPort + 99)).map((w) => w.name);
  throw new Error(`watchers never printed a sentinel: ${late.join(", ")}`);
}

/** A watcher's lines without the sentinels' (and without conntrack's `[USERSPACE]` suffix). */
function eventLines(text: string): string[] {
  return lines(text).filter((l) => !l.includes(SENTINEL)).map((l) =>
    l.replace(/ \[USERSPACE\] portid=\d+(?: progname=\S+)?$/, "")
  );
}

/**
 * Failures the kernel reports: arguments, exit code, a fragment of the one
 * stderr line. (Bad parameters, found before anything is opened, are
 * tested in-process in tests/unit/cli_args_test.ts.)
 */
const UDP = ["-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--sport", "1", "--dport", "2"];
const BAD_INPUTS: [string[], number, string][] = [
  // get (from tests/cli_test.ts)
  [["get", ...UDP.with(1, "tcp")], 1, "Operation failed: such conntrack doesn't exist"],
  [["get", ...UDP.with(1, "tcp"), "-w", "7"], 1, "Operation failed: such conntrack doesn't exist"],
  [["update", ...UDP, "-m", "1"], 1, "Operation failed: such conntrack doesn't exist"],
  [["update", ...UDP, "-m", "1", "-w", "9"], 1, "Operation failed: such conntrack doesn't exist"],
  [["delete", ...UDP], 1, "0 flow entries have been deleted."],
  [["update", "-p", "udp", "-d", "10.255.0.1", "-m", "1"], 1, "0 flow entries have been updated."],
];

Deno.test("ctnl create, update, delete, flush and events against the kernel and conntrack-tools", async (t) => {
  const ns = await Netns.create("clichange");
  const watchers: Watcher[] = [];
  try {
    using ct = Conntrack.open({ netns: ns.name });

    await t.step("create: conntrack -L lists the entry with every requested field", async () => {
      const tcp = ["-p", "tcp", "-s", "10.1.0.1", "-d", "10.1.0.2", "--sport", "4000"];
      const r = await ctnl(ns, [
        "create",
        ...tcp,
        "--dport",
        "80",
        "-t",
        "500",
        "--state",
        "ESTABLISHED",
        "-u",
        "ASSURED,SEEN_REPLY",
        "-m",
        "42",
        "-w",
        "3",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      assertSummary(r, "1 flow entries have been created.", "create tcp");
      const [e, more] = parseConntrackOutput(
        (await conntrack(ns, ["-L", "-o", "extended", "-p", "tcp"])).stdout,
      );
      assert(e && !more);
      assert.equal(e.state, "ESTABLISHED");
      assert(e.timeout! <= 500 && e.timeout! >= 495, `timeout ${e.timeout}`);
      assert.deepEqual(
        [e.l3, e.orig.src, e.orig.dst, e.orig.sport, e.orig.dport],
        ["ipv4", "10.1.0.1", "10.1.0.2", 4000, 80],
      );
      assert.deepEqual(
        [e.reply.src, e.reply.dst, e.reply.sport, e.reply.dport],
        ["10.1.0.2", "10.1.0.1", 80, 4000],
      );
      assert.deepEqual([e.assured, e.unreplied, e.mark, e.zone], [true, false, 42, 3]);

      // The same options to ctnl create and to conntrack -I make the same
      // entry (up to the source port, the clock and the id).
      const TCP = ["-p", "tcp", "-s", "10.1.0.1", "-d", "10.1.0.2"];
      const same: string[][] = [
        ["-p", "udp", "-s", "10.1.0.1", "-d", "10.1.0.2", "--dport", "53", "-t", "300"],
        ["-p", "udp", "-s", "10.1.0.1", "-d", "10.1.0.2", "--dport", "54", "-t", "300", "-m", "7"],
        [
          "-p",
          "udp",
          "-s",
          "fd01::1",
          "-d",
          "fd01::2",
          "--dport",
          "53",
          "-t",
          "300",
          "-u",
          "ASSURED",
        ],
        [
          ...["-p", "udp", "-s", "10.1.0.1", "-d", "192.0.2.1", "--dport", "53", "-t", "300"],
          ...["-r", "10.1.0.9", "-q", "10.1.0.1", "--reply-port-src", "53"],
        ],
        [...TCP, "--dport", "22", "--state", "SYN_SENT", "-t", "60"],
        [...TCP, "--dport", "23", "--state", "TIME_WAIT", "-t", "60"],
      ];
      for (const [i, args] of same.entries()) {
        const mine = 6000 + 2 * i, theirs = mine + 1;
        const reply = args.includes("-r")
          ? (port: number) => ["--reply-port-dst", String(port)]
          : () => [];
        const [m, c] = await Promise.all([
          ctnl(ns, ["create", ...args, "--sport", String(mine), ...reply(mine)]),
          conntrack(ns, ["-I", ...args, "--sport", String(theirs), ...reply(theirs)]),
        ]);
        assert.equal(c.code, 0, `conntrack -I ${args.join(" ")}: ${c.stderr}`);
        assert.equal(m.code, 0, `ctnl create ${args.join(" ")}: ${m.stderr}`);
        assertSummary(m, "1 flow entries have been created.", args.join(" "));
        const list = async (port: number) => {
          const out = (await conntrack(ns, ["-L", "-o", "extended", "-p", args[1]!])).stdout;
          const line = lines(out).find((l) => l.includes(` sport=${port} `));
          assert(line, `no entry with sport ${port}:\n${out}`);
          return line.replaceAll(`=${port} `, "=PORT ");
        };
        assertSameLines([await list(mine)], [await list(theirs)], `create ${args.join(" ")}`);
      }

      // The reply tuple alone: the original one is its mirror image.
      const onlyReply = await ctnl(ns, [
        "create",
        ...["-p", "udp", "-r", "10.1.0.2", "-q", "10.1.0.1"],
        ...["--reply-port-src", "53", "--reply-port-dst", "7000", "-t", "300"],
      ]);
      assert.equal(onlyReply.code, 0, onlyReply.stderr);
      const mirrored = parseConntrackOutput(
        (await conntrack(ns, ["-L", "-o", "extended", "-p", "udp", "--sport", "7000"])).stdout,
      );
      assert.deepEqual(
        mirrored.map((e) => [e.orig.src, e.orig.dst, e.orig.sport, e.orig.dport]),
        [["10.1.0.1", "10.1.0.2", 7000, 53]],
      );

      // ICMP: the reply is the echo reply.
      const icmp = ["-p", "icmp", "-s", "10.1.0.1", "-d", "10.1.0.2", "--icmp-type", "8"];
      const echo = await ctnl(ns, [
        "-I",
        ...icmp,
        "--icmp-code",
        "0",
        "--icmp-id",
        "77",
        "-t",
        "99",
      ]);
      assert.equal(echo.code, 0, echo.stderr);
      const [ping] = parseConntrackOutput(
        (await conntrack(ns, ["-L", "-o", "extended", "-p", "icmp"])).stdout,
      );
      assert.deepEqual(
        [ping!.orig.type, ping!.orig.id, ping!.reply.type, ping!.reply.src, ping!.timeout! <= 99],
        [8, 77, 0, "10.1.0.2", true],
      );
    });

    await t.step("create of an existing entry: exit 1 with conntrack's message", async () => {
      const args = ["-p", "udp", "-s", "10.1.0.1", "-d", "10.1.0.2", "--sport", "6000"];
      const [m, c] = await Promise.all([
        ctnl(ns, ["create", ...args, "--dport", "53", "-t", "10"]),
        conntrack(ns, ["-I", ...args, "--dport", "53", "-t", "10"]),
      ]);
      assert.equal(m.code, 1);
      assert.equal(c.code, 1);
      assert.equal(m.stdout, "");
      assert.equal(m.stderr, "ctnl: Operation failed: Such conntrack exists, try -U to update\n");
      assert.match(c.stderr, /Operation failed: Such conntrack exists, try -U to update\n$/);
      // In zone 3 the TCP entry exists; in zone 4 it does not.
      const tcp = ["-p", "tcp", "-s", "10.1.0.1", "-d", "10.1.0.2", "--sport", "4000"];
      const again = ["create", ...tcp, "--dport", "80", "-t", "600", "--state", "CLOSE"];
      assert.equal((await ctnl(ns, [...again, "-w", "3"])).code, 1);
      const zone4 = await ctnl(ns, [...again, "-w", "4"]);
      assert.equal(zone4.code, 0, zone4.stderr);
      assert.equal(zone4.stdout, "");
    });

    await t.step("update: one entry by its tuple; conntrack -L shows the change", async () => {
      const tcp = ["-p", "tcp", "-s", "10.1.0.1", "-d", "10.1.0.2", "--sport", "4000"];
      const r = await ctnl(ns, [
        "update",
        ...tcp,
        ...["--dport", "80", "-w", "3", "-m", "0x7/0xf", "-t", "200", "--state", "FIN_WAIT"],
      ]);
      assert.equal(r.code, 0, r.stderr);
      assertSummary(r, "1 flow entries have been updated.", "update tcp");
      const listed = (await conntrack(ns, ["-L", "-p", "tcp", "-w", "3"])).stdout;
      // What update printed is the entry as it is now (fetched with a get,
      // which holds one more reference than a listing: use=2).
      assertSameLines(lines(r.stdout.replace(" use=2", " use=1")), lines(listed), "update tcp");
      const [e] = parseConntrackOutput(
        (await conntrack(ns, ["-L", "-o", "extended", "-p", "tcp", "-w", "3"])).stdout,
      );
      // 42 = 0x2a: the bits outside 0xf are kept, 0x7 is xor-ed in: 0x27.
      assert.deepEqual([e!.mark, e!.state, e!.timeout! <= 200, e!.zone], [
        0x27,
        "FIN_WAIT",
        true,
        3,
      ]);

      // By the reply tuple, with --json.
      const json = await ctnl(ns, [
        "update",
        "--json",
        ...["-p", "tcp", "-r", "10.1.0.2", "-q", "10.1.0.1", "--reply-port-src", "80"],
        ...["--reply-port-dst", "4000", "-w", "3", "-u", "FIXED_TIMEOUT"],
      ]);
      assert.equal(json.code, 0, json.stderr);
      const flow = JSON.parse(json.stdout);
      assert(flow.statusFlags.includes("FIXED_TIMEOUT") && flow.statusFlags.includes("ASSURED"));
      assert.equal(flow.zone, 3);
    });

    await t.step(
      "update prints and counts what conntrack -U does for the same options",
      async () => {
        // Two equal entries, one changed by ctnl update, one by conntrack -U.
        const base = ["-p", "udp", "-s", "10.1.1.1", "-d", "10.1.1.2", "--dport", "53"];
        for (const port of [100, 101]) {
          await ns.exec([
            "conntrack",
            "-I",
            ...base,
            "--sport",
            String(port),
            "-t",
            "300",
            "-m",
            "1",
          ]);
        }
        for (
          const changes of [
            ["-m", "5", "-t", "250"],
            ["-u", "ASSURED"],
            ["-m", "0x30/0xf0", "-o", "id"],
            ["-m", "0x35"], // unchanged: neither counts it, both exit 1
          ]
        ) {
          const [m, c] = await Promise.all([
            ctnl(ns, ["update", ...base, "--sport", "100", ...changes]),
            conntrack(ns, ["-U", ...base, "--sport", "101", ...changes]),
          ]);
          const what = `update ${changes.join(" ")}`;
          assert.equal(m.code, c.code, `${what}: exit code (${m.stderr} / ${c.stderr})`);
          const n = /(\d+) flow entries have been updated\.\n$/.exec(c.stderr)![1];
          assertSummary(m, `${n} flow entries have been updated.`, what);
          const mask = (text: string) =>
            lines(text).map((l) =>
              l.replace(/sport=10[01] /, "sport=P ").replace(/dport=10[01] /, "dport=P ").replace(
                / id=\d+$/,
                " id=N",
              )
            );
          assertSameLines(mask(m.stdout), mask(c.stdout), what);
        }
        const [e] = parseConntrackOutput(
          (await conntrack(ns, ["-L", "-o", "extended", "-p", "udp", "--sport", "100"])).stdout,
        );
        assert.deepEqual([e!.mark, e!.assured, e!.timeout! <= 250], [0x35, true, true]);
      },
    );

    await t.step("update with a filter changes every entry it selects", async () => {
      const selected = lines((await conntrack(ns, ["-L", "-p", "udp", "-d", "10.1.0.2"])).stdout);
      assert(selected.length >= 3, `${selected.length} entries`);
      const r = await ctnl(ns, ["-U", "-p", "udp", "-d", "10.1.0.2", "-m", "77"]);
      assert.equal(r.code, 0, r.stderr);
      assertSummary(r, `${selected.length} flow entries have been updated.`, "update filter");
      assert.equal(lines(r.stdout).length, selected.length);
      assert(lines(r.stdout).every((l) => l.includes(" mark=77 ")), r.stdout);
      const marked = lines((await conntrack(ns, ["-L", "-m", "77"])).stdout);
      assert.equal(marked.length, selected.length);
      // A missing tuple and an empty selection fail.
      const gone = await ctnl(ns, ["update", ...UDP, "-t", "5"]);
      assert.equal(gone.code, 1);
      assert.equal(gone.stderr, "ctnl: Operation failed: such conntrack doesn't exist\n");
      const none = await ctnl(ns, ["update", "-s", "10.200.0.1", "-t", "5"]);
      assert.equal(none.code, 1);
      assertSummary(none, "0 flow entries have been updated.", "update none");
    });

    await t.step(
      "delete prints what conntrack -L lists; counts agree with conntrack -C",
      async () => {
        await ct.createMany(Array.from({ length: 200 }, (_, i) => ({
          orig: {
            src: "10.2.0.1",
            dst: "10.2.0.2",
            protocol: "udp",
            srcPort: 1000 + i,
            dstPort: 53,
          },
          timeout: 600,
          mark: 100 + (i % 4),
        })));
        for (
          const [port, state] of [[1, "TIME_WAIT"], [2, "ESTABLISHED"], [3, "TIME_WAIT"]] as const
        ) {
          await ct.create({
            orig: { src: "10.2.0.1", dst: "10.2.0.3", protocol: "tcp", srcPort: port, dstPort: 80 },
            timeout: 600,
            tcpState: state,
          });
        }
        const cases: [string[], number][] = [
          [["-p", "udp", "-m", "101"], 50],
          [["-m", "102", "-o", "extended,id"], 50],
          [["-p", "tcp", "-d", "10.2.0.3", "--state", "TIME_WAIT"], 2],
          [
            ["-p", "udp", "-s", "10.2.0.1", "-d", "10.2.0.2", "--sport", "1003", "--dport", "53"],
            1,
          ],
          [["-f", "ipv6", "-p", "udp"], 2],
          [
            ["-p", "tcp", "-s", "10.1.0.1", "-d", "10.1.0.2", "--sport", "4000", "--dport", "80"],
            2,
          ],
        ];
        for (const [args, want] of cases) {
          const what = `delete ${args.join(" ")}`;
          const listed = lines((await conntrack(ns, ["-L", ...args])).stdout);
          const before = await count(ns);
          const r = await ctnl(ns, ["delete", ...args]);
          assert.equal(r.code, 0, `${what}: ${r.stderr}`);
          assertSameLines(lines(r.stdout), listed, what);
          assertSummary(r, `${want} flow entries have been deleted.`, what);
          assert.equal(await count(ns), before - want, `${what}: conntrack -C`);
          assert.equal(lines((await conntrack(ns, ["-L", ...args])).stdout).length, 0, what);
        }
        // --json and -D, then nothing left to delete: exit 1, as conntrack -D.
        const left = lines((await conntrack(ns, ["-L", "-m", "103"])).stdout).length;
        assert.equal(left, 49); // one went with the tuple above
        const json = await ctnl(ns, ["-D", "--json", "-m", "103"]);
        assert.equal(json.code, 0, json.stderr);
        const deleted = lines(json.stdout).map((l) => JSON.parse(l));
        assert.equal(deleted.length, left);
        assert(deleted.every((f) => f.mark === 103 && f.orig.dstPort === 53));
        const args = ["-p", "udp", "-s", "10.2.0.1", "-d", "10.2.0.2", "--sport", "1003"];
        const [m, c] = await Promise.all([
          ctnl(ns, ["delete", ...args, "--dport", "53"]),
          conntrack(ns, ["-D", ...args, "--dport", "53"]),
        ]);
        assert.equal(m.code, 1);
        assert.equal(c.code, 1);
        assert.equal(m.stdout, "");
        assertSummary(m, "0 flow entries have been deleted.", "delete missing");
        assert.match(c.stderr, /: 0 flow entries have been deleted\.\n$/);
      },
    );

    await t.step("flush: -f ipv4 keeps IPv6 entries, -m only matching ones, then all", async () => {
      for (const [i, mark] of [5, 6].entries()) {
        await ct.create({
          orig: { src: "fd02::1", dst: "fd02::2", protocol: "udp", srcPort: 10 + i, dstPort: 53 },
          timeout: 600,
          mark,
        });
      }
      const v6 = lines((await conntrack(ns, ["-L", "-f", "ipv6"])).stdout).length;
      assert(v6 >= 2 && lines((await conntrack(ns, ["-L", "-f", "ipv4"])).stdout).length > 0);
      const r = await ctnl(ns, ["flush", "-f", "ipv4"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      assertSummary(r, "connection tracking table has been emptied.", "flush -f ipv4");
      assert.equal(lines((await conntrack(ns, ["-L", "-f", "ipv4"])).stdout).length, 0);
      assert.equal(lines((await conntrack(ns, ["-L", "-f", "ipv6"])).stdout).length, v6);
      assert.equal(await count(ns), v6);

      const marked = await ctnl(ns, ["-F", "-m", "5"]);
      assert.equal(marked.code, 0, marked.stderr);
      assert.equal(await count(ns), v6 - 1);
      assert.equal(lines((await conntrack(ns, ["-L", "-m", "6"])).stdout).length, 1);

      const all = await ctnl(ns, ["--flush"]);
      assert.equal(all.code, 0, all.stderr);
      assertSummary(all, "connection tracking table has been emptied.", "flush");
      assert.equal(await count(ns), 0);
    });

    await t.step("events: the same lines as conntrack -E, in the same order", async () => {
      // Make the namespace track its own traffic (conntrack hooks in only
      // when a rule needs it), for events that no netlink request caused.
      await ns.exec(
        ["nft", "-f", "-"],
        "table inet t {\n chain out {\n type filter hook output priority 0;\n ct state new counter\n }\n}\n",
      );
      const inNs = ["ip", "netns", "exec", ns.name];
      const mine = (name: string, args: string[]) =>
        new Watcher(name, [DENO, "run", "--allow-ffi", CLI, "--netns", ns.name, "events", ...args]);
      const theirs = (name: string, args: string[]) =>
        new Watcher(name, [...inNs, "conntrack", "-E", ...args]);
      const w = {
        // ctnl inside the namespace, like conntrack; the others with --netns.
        plain: new Watcher("ctnl events", [...inNs, DENO, "run", "--allow-ffi", CLI, "-E"]),
        conntrack: theirs("conntrack -E", []),
        formats: mine("ctnl -o timestamp,extended,id", ["-o", "timestamp,extended,id"]),
        conntrackFormats: theirs("conntrack -o timestamp,extended,id", [
          "-o",
          "timestamp,extended,id",
        ]),
        // (The sentinels must pass the filters: they are IPv4 UDP too.)
        udp: mine("ctnl -p udp -f ipv4", ["-p", "udp", "-f", "ipv4"]),
        conntrackUdp: theirs("conntrack -p udp -f ipv4", ["-p", "udp", "-f", "ipv4"]),
        json: mine("ctnl --json", ["--json"]),
        destroy: mine("ctnl -e DESTROY", ["-e", "DESTROY"]),
        newUpdate: mine("ctnl -e new,u", ["--event-mask", "new,u"]),
      };
      const all = Object.values(w);
      watchers.push(...all);
      await sync(ct, all, 20000);

      // Events caused by netlink requests (conntrack, the library, ctnl)
      // and by traffic.
      const a = [
        "-p",
        "udp",
        "-s",
        "10.3.0.1",
        "-d",
        "10.3.0.2",
        "--sport",
        "1000",
        "--dport",
        "53",
      ];
      await ns.exec(["conntrack", "-I", ...a, "-t", "100"]);
      const tcp = { src: "10.3.0.1", dst: "10.3.0.3", protocol: "tcp", srcPort: 2000, dstPort: 80 };
      await ct.create({ orig: tcp, timeout: 100, tcpState: "ESTABLISHED", mark: 4 });
      await ns.exec(["conntrack", "-U", ...a, "-m", "9"]);
      await ns.exec(["ping", "-c", "1", "-W", "2", "127.0.0.1"]);
      await ns.exec(["ping", "-6", "-c", "1", "-W", "2", "::1"]);
      const u = await ctnl(ns, ["update", "-p", "tcp", "-s", "10.3.0.1", "-u", "ASSURED"]);
      assert.equal(u.code, 0, u.stderr);
      await ns.exec(["conntrack", "-D", ...a]);
      await ct.delete(tcp);
      const d = await ctnl(ns, ["delete", "-p", "icmp"]);
      assert.equal(d.code, 0, d.stderr);
      await sync(ct, all, 30000);
      const status = new Map<Watcher, Deno.CommandStatus>();
      for (const watcher of all) {
        status.set(watcher, await watcher.stop(watcher === w.destroy ? "SIGINT" : "SIGTERM"));
      }

      const plain = eventLines(w.plain.stdout);
      assertSameLines(plain, eventLines(w.conntrack.stdout), "ctnl events vs conntrack -E");
      assert.deepEqual(plain.map((l) => l.slice(0, 9).trim()), [
        "[NEW]", // conntrack -I udp
        "[NEW]", // library tcp
        "[UPDATE]", // conntrack -U mark
        "[NEW]", // ping
        "[UPDATE]", // its reply
        "[NEW]", // ping -6
        "[UPDATE]",
        "[UPDATE]", // ctnl update -u ASSURED
        "[DESTROY]", // conntrack -D
        "[DESTROY]", // library delete
        "[DESTROY]", // ctnl delete -p icmp
      ]);
      // The traffic's events are byte for byte conntrack's (no [USERSPACE] suffix to mask).
      const traffic = lines(w.conntrack.stdout).filter((l) => / src=(127\.0\.0\.1|::1) /.test(l));
      assert.equal(traffic.length, 5); // NEW and UPDATE of each ping, DESTROY of the IPv4 one
      for (const line of traffic.filter((l) => !l.startsWith("[DESTROY]"))) {
        assert(w.plain.stdout.includes(`${line}\n`), `not in ctnl's output: ${line}`);
      }

      // -o timestamp,extended,id: "[SECONDS.MICROSECONDS]\t" first, then the line.
      const stamp = /^\[(\d{10})\.(\d{6})\]\t/;
      const stamped = (text: string) => {
        const out = eventLines(text);
        for (const l of out) assert.match(l, stamp);
        return out;
      };
      const mineStamped = stamped(w.formats.stdout),
        theirStamped = stamped(w.conntrackFormats.stdout);
      for (const [i, l] of mineStamped.entries()) {
        const [, s1, u1] = stamp.exec(l)!, [, s2, u2] = stamp.exec(theirStamped[i] ?? "")!;
        assert(
          Math.abs(Number(`${s1}.${u1}`) - Number(`${s2}.${u2}`)) < 2,
          `${l}\n${theirStamped[i]}`,
        );
      }
      assertSameLines(
        mineStamped.map((l) => l.replace(stamp, "")),
        theirStamped.map((l) => l.replace(stamp, "")),
        "-o timestamp,extended,id",
      );
      assert.match(
        mineStamped[0]!,
        /^\[\d+\.\d+\]\t {4}\[NEW\] ipv4 {5}2 udp {6}17 100 .* id=\d+$/,
      );

      // Filters: the same lines as conntrack -E with the same filters.
      const udp = eventLines(w.udp.stdout);
      assert.deepEqual(udp.map((l) => l.slice(0, 9).trim()), ["[NEW]", "[UPDATE]", "[DESTROY]"]);
      assertSameLines(udp, eventLines(w.conntrackUdp.stdout), "-p udp -f ipv4");

      // --json: one object per event, in the same order, with an event field.
      const json = lines(w.json.stdout).map((l) => JSON.parse(l)).filter((o) =>
        o.orig.src !== SENTINEL
      );
      assert.deepEqual(
        json.map((o) => `[${String(o.event).toUpperCase()}] ${o.orig.src} ${o.orig.protocol}`),
        plain.map((l) => {
          const m = /^\s*(\[\w+\]) \S+ +(\d+) .*? src=(\S+)/.exec(l)!;
          return `${m[1]} ${m[3]} ${m[2]}`;
        }),
      );
      assert.equal(json[1].mark, 4);
      assert.equal(json[1].tcp.stateName, "ESTABLISHED");

      // -e DESTROY and -e new,u: only those.
      const destroys = eventLines(w.destroy.stdout);
      assert.deepEqual(destroys, plain.filter((l) => l.startsWith("[DESTROY]")));
      assertSameLines(
        eventLines(w.newUpdate.stdout),
        plain.filter((l) => !l.startsWith("[DESTROY]")),
        "-e new,u",
      );

      // SIGTERM (and SIGINT) end ctnl events with exit 0 and the summary.
      for (const watcher of [w.plain, w.formats, w.udp, w.json, w.destroy, w.newUpdate]) {
        const n = lines(watcher.stdout).length;
        assert.equal(status.get(watcher)!.code, 0, `${watcher.name}: ${watcher.stderr}`);
        assert.equal(watcher.stderr, `${PREFIX}${n} flow events have been shown.\n`, watcher.name);
      }
    });

    await t.step(
      "events: a flooded small buffer warns, says lost in JSON, and goes on",
      async () => {
        const w = new Watcher("ctnl -b 4096", [
          ...[DENO, "run", "--allow-ffi", CLI, "--netns", ns.name],
          ...["events", "--json", "-b", "4096", "-e", "NEW"],
        ]);
        watchers.push(w);
        await sync(ct, [w], 40000);
        await ct.createMany(Array.from({ length: 3000 }, (_, i) => ({
          orig: {
            src: "10.4.0.1",
            dst: "10.4.0.2",
            protocol: "udp",
            srcPort: 1000 + i,
            dstPort: 53,
          },
          timeout: 60,
        })));
        // The loss is reported once the backlog queued before it is read;
        // afterwards events arrive again.
        assert(await until(() => w.stdout.includes(`{"event":"lost",`), 10_000), "a lost line");
        await sync(ct, [w], 40100);
        const status = await w.stop();
        assert.equal(status.code, 0, w.stderr);
        const events = lines(w.stdout).map((l) => JSON.parse(l));
        const losses = events.filter((e) => e.event === "lost");
        // One warning per lost line (with its running count), then the summary.
        const errors = lines(w.stderr);
        assert.equal(errors.length, losses.length + 1, w.stderr);
        for (const [i, loss] of losses.entries()) {
          assert.deepEqual(Object.keys(loss), ["event", "lost"]);
          assert(Number.isInteger(loss.lost) && loss.lost > (losses[i - 1]?.lost ?? 0), loss);
          assert.equal(
            errors[i],
            `ctnl: warning: We have hit ENOBUFS! We are losing events (${loss.lost} overruns so far); the socket buffer is too small, see -b/--buffer-size`,
          );
        }
        const first = events.findIndex((e) => e.event === "lost");
        assert(events.slice(first).some((e) => e.event === "new"), "events after the loss");
        const shown = events.length - losses.length;
        assert(shown < 3000, `${shown} events: some were lost`);
        assert.equal(errors.at(-1), `${PREFIX}${shown} flow events have been shown.`);
      },
    );

    await t.step("events: a closed stdout ends it quietly with 0", async () => {
      // head exits after the first line; ctnl's next write fails (EPIPE).
      let done = false;
      const piped = run([
        "bash",
        "-c",
        `${DENO} run --allow-ffi ${CLI} --netns ${ns.name} events | head -n 1 >/dev/null
         echo "rc=\${PIPESTATUS[0]}" >&2`,
      ]).finally(() => done = true);
      for (let port = 50000; !done && port < 50300; port++) {
        const orig = { src: SENTINEL, dst: "10.9.9.8", protocol: "udp", srcPort: port, dstPort: 9 };
        await ct.create({ orig, timeout: 60 });
        await ct.delete(orig);
        await sleep(50);
      }
      const r = await piped;
      assert.equal(r.stderr, "rc=0\n");
    });

    await t.step("failures: exit code 1, one stderr line, nothing on stdout", async () => {
      const results = await pool(BAD_INPUTS, 8, ([args]) => ctnl(ns, args));
      for (const [i, [args, code, fragment]] of BAD_INPUTS.entries()) {
        const r = results[i]!;
        const what = `ctnl ${args.join(" ")}`;
        assert.equal(r.stdout, "", `${what}: stdout`);
        assert.equal(r.code, code, `${what}: exit code (stderr ${r.stderr})`);
        const out = r.stderr.split("\n");
        assert.equal(out.length, 2, `${what}: one stderr line: ${r.stderr}`);
        assert(
          out[0]!.startsWith(code === 1 && fragment.includes("flow entries") ? PREFIX : "ctnl: "),
        );
        assert(out[0]!.includes(fragment), `${what}: "${out[0]}" lacks "${fragment}"`);
      }
    });
  } finally {
    for (const watcher of watchers) await watcher.stop("SIGKILL");
    await ns.delete();
  }
});
