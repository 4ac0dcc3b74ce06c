/**
 * `deno task demo`: a first run that shows ctnl working, on any Linux machine.
 *
 * A fresh machine's conntrack table is usually empty, so this makes a
 * throwaway network namespace (`ctnl-demo-<pid>`), turns conntrack on there
 * with a few nftables rules (DNAT, SNAT, a mark, a zone, an ftp helper),
 * makes a little real traffic of several kinds (TCP open and closed, UDP
 * replied and unreplied, ICMP, IPv6, NAT, FTP) — the same recipe as the
 * integration tests, tests/_traffic.ts — then runs the CLI against it as real
 * processes — `ctnl dump`, `ctnl dump --json`, a filtered dump, `ctnl get`,
 * `ctnl stats`, `ctnl count` — and deletes the namespace: at the end, on
 * failure, and on Ctrl-C or SIGTERM. Headings go to stderr, the CLI's output
 * to stdout.
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

/** Runs `ctnl ARGS --netns NS`; its output goes straight to ours. */
async function ctnl(ns: string, args: string[]): Promise<void> {
  heading(`ctnl ${args.join(" ")} --netns ${ns}`);
  const { code } = await ctnlCommand(ns, args);
  if (code !== 0) throw new Error(`ctnl ${args.join(" ")} failed (exit ${code})`);
}

/** Runs `ctnl ARGS --netns NS` and returns its stdout. */
async function ctnlOutput(ns: string, args: string[]): Promise<string> {
  const r = await ctnlCommand(ns, args).stdout("piped").stderr("piped");
  if (r.code !== 0) {
    throw new Error(`ctnl ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Shows the CLI at work on the namespace. */
async function show(netns: Netns, haveConntrack: boolean): Promise<void> {
  const ns = netns.name;
  await ctnl(ns, ["dump"]);

  heading(`ctnl dump --json --netns ${ns} | head -n 3`);
  const json = await ctnlOutput(ns, ["dump", "--json"]);
  const lines = json.split("\n").filter((l) => l !== "");
  console.log(lines.slice(0, 3).join("\n"));
  note(`(${lines.length} lines in all: one JSON object per entry)`);

  await ctnl(ns, ["dump", "-p", "tcp", "--dport", "8080"]);

  // Pick the open TCP connection from the JSON, and get it by its tuple.
  const flows = lines.map((l) => JSON.parse(l));
  const open = flows.find((f) =>
    f.family === "ipv4" && f.orig?.protocol === 6 && f.orig?.dstPort === 8080 &&
    f.tcp?.stateName === "ESTABLISHED"
  );
  if (open === undefined) throw new Error("no ESTABLISHED TCP entry to port 8080 in the dump");
  await ctnl(ns, [
    "get",
    "-p",
    "tcp",
    "-s",
    open.orig.src,
    "-d",
    open.orig.dst,
    "--sport",
    String(open.orig.srcPort),
    "--dport",
    "8080",
  ]);

  await ctnl(ns, ["stats"]);
  await ctnl(ns, ["count"]);

  if (haveConntrack) {
    heading(`conntrack -C in ${ns} (conntrack-tools, for comparison)`);
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
