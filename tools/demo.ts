/**
 * `deno task demo`: a first run that shows ctnl working, on any Linux machine.
 *
 * A fresh machine's conntrack table is usually empty, so this makes a
 * throwaway network namespace (`ctnl-demo-<pid>`), turns conntrack on there
 * with a few nftables rules (DNAT, SNAT, a mark, a zone, an ftp helper),
 * makes a little real traffic of several kinds (TCP open and closed, UDP
 * replied and unreplied, ICMP, IPv6, NAT, FTP) — the same recipe as the
 * integration tests, tests/_traffic.ts — then runs every CLI command against
 * it as real processes, one step of {@link STEPS} each: `dump` (plain,
 * `--json`, filtered), `get`, `stats`, `count`, `summary`, `top --once`,
 * `dump expect` (the FTP helper's expectation), one scrape of `exporter`,
 * then `events` in the
 * background while it makes more traffic and runs `create`, `update`,
 * `delete`, `dump -o save` and `flush`, shows what `events` saw, and `load`s
 * the saved lines back. It deletes the
 * namespace at the end, on failure, and on Ctrl-C or SIGTERM. Headings go to
 * stderr, the CLI's output to stdout. About 3–5 s.
 *
 * ```sh
 * sudo deno task demo            # = sudo deno run -A tools/demo.ts
 * ```
 *
 * Needs root, `ip` (iproute2) and `nft` (nftables); `ping` (iputils-ping)
 * adds ICMP traffic and `conntrack` (conntrack-tools) a cross-check, both
 * optional. The root namespace's table is never touched.
 *
 * @module
 */

import $, { KillController } from "@david/dax";
import { Netns } from "../tests/_ns.ts";
import { addTraffic, SUMMARY } from "../tests/_traffic.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** Commands the demo uses, and the Debian package that has each. */
const TOOLS = [
  { cmd: "ip", pkg: "iproute2", required: true, why: "to make the namespace" },
  { cmd: "nft", pkg: "nftables", required: true, why: "to turn conntrack on in it" },
  { cmd: "ping", pkg: "iputils-ping", required: false, why: "ICMP traffic" },
  { cmd: "conntrack", pkg: "conntrack", required: false, why: "the cross-check with conntrack -C" },
];

const encoder = new TextEncoder();

/** A short heading on stderr, so stdout holds only the CLI's output. */
function heading(text: string): void {
  Deno.stderr.writeSync(encoder.encode(`\n== ${text}\n`));
}

function note(text: string): void {
  Deno.stderr.writeSync(encoder.encode(`${text}\n`));
}

/** Finds `cmd` on PATH (and in the sbin directories, which a user's PATH may lack). */
function which(cmd: string): string | undefined {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"];
  for (const dir of dirs) {
    if (dir === "") continue;
    try {
      const info = Deno.statSync(`${dir}/${cmd}`);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return `${dir}/${cmd}`;
    } catch { /* not here */ }
  }
  return undefined;
}

/** Stops the CLI processes still running when the demo is interrupted. */
const running = new KillController();

/** `ctnl ARGS --netns NS` as its own process (`deno run --allow-ffi cli.ts`). */
function ctnlCommand(ns: string, args: string[]) {
  return $`${Deno.execPath()} run --allow-ffi ${CLI} ${args} --netns ${ns}`
    .stdin("null").signal(running.signal).noThrow();
}

/** What the steps share: the namespace, and what earlier steps found out. */
interface Demo {
  netns: Netns;
  /** `dump --json`'s entries, parsed. */
  flows: Record<string, unknown>[];
  /** The `ctnl events` running in the background, once a step has started it. */
  events?: Background | undefined;
  /** What {@link saveTable} saved. */
  saved?: string | undefined;
}

/**
 * One step of the demo: a heading (`ctnl ARGS --netns NS` for the CLI's
 * steps) and what it does. The steps run in the order of {@link STEPS};
 * a new command is one more row there.
 */
interface Step {
  heading: (d: Demo) => string;
  run: (d: Demo) => Promise<void>;
}

/**
 * A step that runs `ctnl ARGS --netns NS` (ARGS may depend on earlier steps)
 * and shows its output, or only its first `head` lines; `note` is printed
 * after it on stderr.
 */
function cli(
  args: string[] | ((d: Demo) => string[]),
  options: { head?: number; note?: string } = {},
): Step {
  const argsOf = (d: Demo) => typeof args === "function" ? args(d) : args;
  return {
    heading: (d) =>
      `ctnl ${argsOf(d).join(" ")} --netns ${d.netns.name}` +
      (options.head === undefined ? "" : ` | head -n ${options.head}`),
    run: async (d) => {
      const a = argsOf(d);
      const r = await ctnlCommand(d.netns.name, a).stdout(options.head ? "piped" : "inherit");
      if (r.code !== 0) throw new Error(`ctnl ${a.join(" ")} failed (exit ${r.code})`);
      if (options.head !== undefined) {
        const lines = r.stdout.split("\n").filter((l) => l !== "");
        console.log(lines.slice(0, options.head).join("\n"));
        note(`(${lines.length} lines in all)`);
      }
      if (options.note !== undefined) note(options.note);
    },
  };
}

/** A step that runs a shell command in the namespace, to make traffic. */
function traffic(what: string, script: string): Step {
  return {
    heading: () => `Traffic: ${what}`,
    run: async (d) => void await d.netns.exec(["bash", "-c", script]),
  };
}

/** A `ctnl ARGS --netns NS` started in the background; its output is collected as it comes. */
class Background {
  readonly args: string[];
  readonly #child: Deno.ChildProcess;
  readonly #output: Promise<[void, void]>;
  stdout = "";
  stderr = "";

  constructor(ns: string, args: string[], permissions: string[] = ["--allow-ffi"]) {
    this.args = args;
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissions, CLI, ...args, "--netns", ns],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    running.signal.addListener(() => this.kill("SIGKILL"));
    const collect = async (s: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
      for await (const text of s.pipeThrough(new TextDecoderStream())) this[key] += text;
    };
    this.#output = Promise.all([
      collect(this.#child.stdout, "stdout"),
      collect(this.#child.stderr, "stderr"),
    ]);
  }

  /** Waits (10 s at most) until its stdout matches `re`; the match. */
  async waitFor(re: RegExp): Promise<RegExpExecArray> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const m = re.exec(this.stdout);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`ctnl ${this.args[0]}: no ${re} within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  kill(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch { /* it has exited */ }
  }

  /** Ends it with `signal` (SIGINT: Ctrl-C); its exit code, stdout and stderr. */
  async stop(
    signal: Deno.Signal = "SIGINT",
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    this.kill(signal);
    const { code } = await this.#child.status;
    await this.#output;
    return { code, stdout: this.stdout, stderr: this.stderr };
  }
}

/**
 * Waits until the namespace has a netfilter netlink socket subscribed to
 * conntrack's event groups (/proc/net/netlink: protocol 12, groups 7), so
 * that the traffic after it is seen.
 */
async function subscribed(netns: Netns): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const table = await netns.exec(["cat", "/proc/net/netlink"]);
    if (table.split("\n").some((l) => /^\S+ +12 +\d+ +0*[1-7]{1}\b/.test(l))) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error("ctnl events did not subscribe within 10 s");
}

/** `ctnl events ARGS` in the background until {@link stopEvents}. */
function startEvents(args: string[]): Step {
  return {
    heading: (d) =>
      `ctnl ${["events", ...args].join(" ")} --netns ${d.netns.name} & (in the background)`,
    run: async (d) => {
      d.events = new Background(d.netns.name, ["events", ...args]);
      await subscribed(d.netns);
      note("(listening; what it printed is shown when it is stopped, below)");
    },
  };
}

/** Stops the background `ctnl events` with SIGINT and shows what it printed. */
const stopEvents: Step = {
  heading: () => "kill -INT %ctnl-events: what it printed meanwhile",
  run: async (d) => {
    if (d.events === undefined) throw new Error("no ctnl events running");
    const r = await d.events.stop();
    d.events = undefined;
    Deno.stdout.writeSync(encoder.encode(r.stdout));
    note(r.stderr.trimEnd());
    if (r.code !== 0) throw new Error(`ctnl events failed (exit ${r.code})`);
  },
};

/**
 * `ctnl exporter` in the background on a free loopback port: one scrape of
 * /metrics (its first `lines` samples shown), then SIGTERM.
 */
function exporter(lines: number): Step {
  const args = ["exporter", "--listen", "127.0.0.1:0"];
  return {
    heading: (d) => `ctnl ${args.join(" ")} --netns ${d.netns.name} & curl …/metrics`,
    run: async (d) => {
      const server = new Background(d.netns.name, args, ["--allow-ffi", "--allow-net"]);
      try {
        const [line, url] = await server.waitFor(/^serving (\S+)$/m);
        note(line);
        const response = await fetch(url!);
        const samples = (await response.text()).split("\n").filter((l) => /^[a-z]/.test(l));
        console.log(samples.slice(0, lines).join("\n"));
        note(`(${samples.length} samples in all)`);
      } finally {
        const r = await server.stop("SIGTERM");
        if (r.code !== 0) throw new Error(`ctnl exporter failed (exit ${r.code}): ${r.stderr}`);
      }
    },
  };
}

/** The open TCP connection to port 8080, from `dump --json`, as `get`'s tuple options. */
function openTcpTuple(d: Demo): string[] {
  const open = d.flows.find((f) => {
    const orig = f.orig as Record<string, unknown> | undefined;
    const tcp = f.tcp as Record<string, unknown> | undefined;
    return f.family === "ipv4" && orig?.protocol === 6 && orig?.dstPort === 8080 &&
      tcp?.stateName === "ESTABLISHED";
  });
  if (open === undefined) throw new Error("no ESTABLISHED TCP entry to port 8080 in the dump");
  const orig = open.orig as Record<string, string | number>;
  return [
    "-p",
    "tcp",
    "-s",
    String(orig.src),
    "-d",
    String(orig.dst),
    "--sport",
    String(orig.srcPort),
    "--dport",
    String(orig.dstPort),
  ];
}

/** `dump --json`, kept for the later steps (the first three lines shown). */
const dumpJson: Step = {
  heading: (d) => `ctnl dump --json --netns ${d.netns.name} | head -n 3`,
  run: async (d) => {
    const r = await ctnlCommand(d.netns.name, ["dump", "--json"]).stdout("piped");
    if (r.code !== 0) throw new Error(`ctnl dump --json failed (exit ${r.code})`);
    const lines = r.stdout.split("\n").filter((l) => l !== "");
    d.flows = lines.map((l) => JSON.parse(l));
    console.log(lines.slice(0, 3).join("\n"));
    note(`(${lines.length} lines in all: one JSON object per entry)`);
  },
};

/** `dump -o save -p udp`, kept for a later `load` (the first three lines shown). */
const saveTable: Step = {
  heading: (d) => `ctnl dump -o save -p udp --netns ${d.netns.name} > table.save`,
  run: async (d) => {
    const r = await ctnlCommand(d.netns.name, ["dump", "-o", "save", "-p", "udp"]).stdout("piped");
    if (r.code !== 0) throw new Error(`ctnl dump -o save failed (exit ${r.code})`);
    d.saved = r.stdout;
    const lines = r.stdout.split("\n").filter((l) => l !== "");
    console.log(lines.slice(0, 3).join("\n"));
    note(`(${lines.length} lines in all: one conntrack command line per entry)`);
  },
};

/** `load -` of what {@link saveTable} saved, on standard input: the UDP entries as they were. */
const loadTable: Step = {
  heading: (d) => `ctnl load - --netns ${d.netns.name} < table.save`,
  run: async (d) => {
    if (d.saved === undefined) throw new Error("nothing saved to load");
    const r = await ctnlCommand(d.netns.name, ["load", "-"]).stdinText(d.saved);
    if (r.code !== 0) throw new Error(`ctnl load failed (exit ${r.code})`);
  },
};

/** The entry the demo creates, updates and deletes. */
const MADE = [
  "-p",
  "tcp",
  "-s",
  "10.50.0.1",
  "-d",
  "10.50.0.2",
  "--sport",
  "40000",
  "--dport",
  "9000",
];

/** The demo, in order: one row per step. */
const STEPS: Step[] = [
  cli(["dump"]),
  dumpJson,
  cli(["dump", "-p", "tcp", "--dport", "8080"]),
  cli((d) => ["get", ...openTcpTuple(d)]),
  cli(["stats"]),
  cli(["count"]),
  cli(["summary", "--by", "proto,state"]),
  cli(["top", "--once", "--rows", "5", "--interval", "0.5"], { head: 10 }), // piped: one plain frame
  cli(["dump", "expect"]),
  exporter(6),
  startEvents([]),
  traffic(
    "a TCP connection to 10.50.0.2:8080 and a UDP datagram to 10.50.0.2:6000",
    "exec 3<>/dev/tcp/10.50.0.2/8080; echo hello >&3; read -r -t 5 reply <&3; exec 3>&-; " +
      "echo hello >/dev/udp/10.50.0.2/6000",
  ),
  cli(["create", ...MADE, "-t", "120", "--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED"]),
  cli(["update", ...MADE, "-m", "7", "-t", "300"]),
  cli(["dump", "-m", "7"]),
  cli(["delete", ...MADE]),
  saveTable,
  cli(["flush"], {
    note: "(only entries made while a listener existed send DESTROY events: " +
      "net.netfilter.nf_conntrack_events=2, the default)",
  }),
  stopEvents,
  cli(["count"]),
  loadTable,
  cli(["count"]),
];

/** Runs {@link STEPS}, then the cross-check with conntrack-tools if it is installed. */
async function show(netns: Netns, haveConntrack: boolean): Promise<void> {
  const demo: Demo = { netns, flows: [] };
  try {
    for (const step of STEPS) {
      heading(step.heading(demo));
      await step.run(demo);
    }
  } finally {
    demo.events?.kill("SIGKILL");
  }
  if (haveConntrack) {
    heading(`conntrack -C in ${netns.name} (conntrack-tools, for comparison)`);
    console.log((await netns.exec(["conntrack", "-C"])).trim());
  }
}

async function main(): Promise<number> {
  if (Deno.build.os !== "linux") {
    note("ctnl demo: conntrack is a Linux kernel table; this needs Linux.");
    return 1;
  }
  const missing = TOOLS.filter((t) => which(t.cmd) === undefined);
  const missingRequired = missing.filter((t) => t.required);
  const notRoot = Deno.uid() !== 0;
  if (notRoot) {
    note("ctnl demo: needs root (it makes a network namespace and reads its conntrack table).");
    note("Run it as:  sudo deno task demo   (or: sudo deno run -A tools/demo.ts)");
  }
  if (missingRequired.length > 0) {
    note(
      `ctnl demo: missing ${missingRequired.map((t) => `${t.cmd} (${t.why})`).join(", ")}.`,
    );
    note(`Install:  apt-get install ${missingRequired.map((t) => t.pkg).join(" ")}`);
  }
  for (const t of missing.filter((t) => !t.required)) {
    note(`ctnl demo: optional ${t.cmd} not found (package ${t.pkg}): skipping ${t.why}.`);
  }
  if (notRoot || missingRequired.length > 0) return 1;

  const name = `ctnl-demo-${Deno.pid}`;
  let ns: Netns | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    cleaning ??= (async () => {
      running.kill("SIGKILL");
      // Interrupted while the namespace was being made: delete it by name.
      const deleted = ns
        ? await ns.delete()
        : (await $`ip netns del ${name}`.noThrow().quiet()).code === 0;
      if (deleted) heading(`Deleted namespace ${name}`);
    })();
  let interrupted = false;
  const onSignal = (signal: Deno.Signal, code: number) => () => {
    interrupted = true;
    note(`\nctnl demo: ${signal}, cleaning up`);
    cleanUp().finally(() => Deno.exit(code));
  };
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", onSignal("SIGINT", 130)],
    ["SIGTERM", onSignal("SIGTERM", 143)],
  ];
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  try {
    note("ctnl demo: `ctnl` below is `deno run --allow-ffi cli.ts` (also: deno task ctnl).");
    heading(`Setting up namespace ${name}`);
    ns = await Netns.create("demo", { name });
    heading("Making traffic");
    const ping = which("ping") !== undefined;
    await addTraffic(ns, { ping });
    note(SUMMARY);
    note(
      "TCP: open, closed (TIME_WAIT), through the DNAT and the SNAT, marked, over IPv6, FTP " +
        "with a related data connection; UDP: replied, unreplied, in zone 7, over IPv6" +
        (ping ? "; ICMP and ICMPv6 echo" : " (no ping: no ICMP)"),
    );
    await show(ns, which("conntrack") !== undefined);
    return 0;
  } catch (error) {
    if (interrupted) return 1; // the signal handler is cleaning up and exiting
    note(`\nctnl demo failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await cleanUp();
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  }
}

if (import.meta.main) Deno.exit(await main());
