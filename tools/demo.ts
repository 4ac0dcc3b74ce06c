/**
 * `deno task demo`: a first run that shows ctnl working, on any Linux machine.
 *
 * A fresh machine's conntrack table is usually empty, so this makes a
 * throwaway network namespace (`ctnl-demo-<pid>`), turns conntrack on there
 * with a few nftables rules (a DNAT, a mark, a zone), makes a little real
 * traffic of several kinds (TCP open and closed, UDP replied and unreplied,
 * ICMP, IPv6, NAT), then runs the CLI against it as real processes —
 * `ctnl dump`, `ctnl dump --json`, a filtered dump, `ctnl get`, `ctnl stats`,
 * `ctnl count` — and deletes the namespace: at the end, on failure, and on
 * Ctrl-C or SIGTERM. Headings go to stderr, the CLI's output to stdout.
 *
 * ```sh
 * sudo deno task demo            # = sudo deno run -A tools/demo.ts
 * ```
 *
 * Needs root, `ip` (iproute2) and `nft` (nftables); `ping` (iputils-ping)
 * adds ICMP traffic and `conntrack` (conntrack-tools) a cross-check, both
 * optional. The root namespace's table is never touched.
 *
 * The same file is also the traffic generator: run inside the namespace as
 * `deno run --allow-net tools/demo.ts --traffic`, it opens the connections,
 * prints "ready" and holds them open until killed.
 *
 * @module
 */

import * as dgram from "node:dgram";
import * as net from "node:net";

const SELF = new URL(import.meta.url).pathname;
const CLI = new URL("../cli.ts", import.meta.url).pathname;

// ---------------------------------------------------------------------------
// Traffic (runs inside the namespace, with --allow-net only)

/** Addresses on the namespace's loopback; 10.60.0.100 is a virtual address DNATed to .2. */
const CLIENT4 = "10.50.0.1";
const SERVER4 = "10.50.0.2";
const CLIENT6 = "fd50::1";
const SERVER6 = "fd50::2";
const VIRTUAL = "10.60.0.100";

async function traffic(): Promise<void> {
  const held: net.Socket[] = [];
  const tcpServer = (host: string, port: number) =>
    new Promise<void>((resolve, reject) => {
      const server = net.createServer((sock) => {
        held.push(sock);
        sock.on("data", (data) => sock.write(`echo ${data}`));
        sock.on("error", () => {});
      });
      server.on("error", reject);
      server.listen(port, host, () => resolve());
    });
  // Sends `size` bytes, waits for the echo; keeps the connection open or closes it.
  const tcpClient = (host: string, port: number, size: number, keep: boolean) =>
    new Promise<void>((resolve, reject) => {
      const localAddress = host.includes(":") ? CLIENT6 : CLIENT4;
      const sock = net.connect({ host, port, localAddress }, () => sock.write("x".repeat(size)));
      sock.on("error", reject);
      sock.once("data", () => {
        if (keep) {
          held.push(sock);
          resolve();
        } else {
          sock.on("close", () => resolve());
          sock.end();
        }
      });
    });
  const udpServer = (type: "udp4" | "udp6", host: string, port: number) =>
    new Promise<void>((resolve) => {
      const s = dgram.createSocket(type);
      s.on("message", (msg, from) => s.send(msg, from.port, from.address));
      s.bind(port, host, () => resolve());
    });
  // Sends one datagram; waits for the answer, or 50 ms when none will come.
  const udpClient = (type: "udp4" | "udp6", host: string, port: number, answered: boolean) =>
    new Promise<void>((resolve) => {
      const s = dgram.createSocket(type);
      const done = () => {
        s.close();
        resolve();
      };
      if (answered) s.on("message", done);
      s.bind(0, type === "udp6" ? CLIENT6 : CLIENT4, () =>
        s.send("hello", port, host, () => {
          if (!answered) setTimeout(done, 50);
        }));
    });

  await tcpServer(SERVER4, 8080);
  await tcpServer(SERVER4, 7200);
  await tcpServer(SERVER6, 8080);
  await udpServer("udp4", SERVER4, 5353);
  await udpServer("udp4", SERVER4, 5555);
  await udpServer("udp6", SERVER6, 5353);

  await tcpClient(SERVER4, 8080, 20_000, true); // TCP ESTABLISHED, the biggest flow
  await tcpClient(SERVER4, 8080, 100, false); // TCP TIME_WAIT
  await tcpClient(VIRTUAL, 8081, 2_000, true); // DNAT 10.60.0.100:8081 -> 10.50.0.2:8080
  await tcpClient(SERVER4, 7200, 500, true); // ct mark 42
  await tcpClient(SERVER6, 8080, 5_000, true); // IPv6 TCP
  await udpClient("udp4", SERVER4, 5353, true); // UDP, replied
  await udpClient("udp4", SERVER4, 5999, false); // UDP, unreplied
  await udpClient("udp4", SERVER4, 5555, true); // UDP in zone 7
  await udpClient("udp6", SERVER6, 5353, true); // IPv6 UDP
  await new Promise((resolve) => setTimeout(resolve, 300)); // let delayed ACKs settle
  console.log("ready");
  setInterval(() => {}, 1 << 30); // hold the connections until killed
}

// ---------------------------------------------------------------------------
// The demo (runs as root, with -A)

const RULES = `
table inet ctnl_demo {
  chain raw_out {
    type filter hook output priority raw;
    udp dport 5555 ct zone set 7
    udp sport 5555 ct zone set 7
  }
  chain mangle_out {
    type filter hook output priority mangle;
    tcp dport 7200 ct mark set 42
  }
  chain nat_out {
    type nat hook output priority -100;
    ip daddr ${VIRTUAL} tcp dport 8081 dnat ip to ${SERVER4}:8080
  }
  chain nat_post {
    type nat hook postrouting priority 100;
  }
}
`;

/** Commands the demo uses, and the Debian package that has each. */
const TOOLS = [
  { cmd: "ip", pkg: "iproute2", required: true, why: "to make the namespace" },
  { cmd: "nft", pkg: "nftables", required: true, why: "to turn conntrack on in it" },
  { cmd: "ping", pkg: "iputils-ping", required: false, why: "ICMP traffic" },
  { cmd: "conntrack", pkg: "conntrack", required: false, why: "the cross-check with conntrack -C" },
];

const encoder = new TextEncoder();
const decoder = new TextDecoder();

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

/** Processes started and not yet finished, so cleanup can stop them. */
const children = new Set<Deno.ChildProcess>();

/** Runs a command; returns its exit code and output (stdout captured unless `inherit`). */
async function run(
  cmd: string[],
  options: { stdin?: string; inherit?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: options.inherit ? "inherit" : "piped",
    stderr: options.inherit ? "inherit" : "piped",
  }).spawn();
  children.add(child);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(encoder.encode(options.stdin));
      await writer.close();
    }
    const out = await child.output();
    return {
      code: out.code,
      stdout: options.inherit ? "" : decoder.decode(out.stdout),
      stderr: options.inherit ? "" : decoder.decode(out.stderr),
    };
  } finally {
    children.delete(child);
  }
}

/** Runs a command and throws, with its stderr, when it fails. */
async function must(cmd: string[], stdin?: string): Promise<string> {
  const r = await run(cmd, stdin === undefined ? {} : { stdin });
  if (r.code !== 0) {
    throw new Error(`${cmd.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Starts the traffic generator in `ns` and waits for its "ready". */
async function startTraffic(ns: string): Promise<void> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", ns, Deno.execPath(), "run", "--allow-net", SELF, "--traffic"],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  children.add(child);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  let seen = "";
  try {
    while (!seen.split("\n").includes("ready")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the traffic generator stopped before it was ready: ${seen}`);
      seen += value;
    }
  } finally {
    clearTimeout(timer);
  }
  (async () => { // keep draining, so it never blocks on a full pipe
    try {
      while (!(await reader.read()).done) { /* drain */ }
    } catch { /* killed */ }
  })();
}

/** Runs `ctnl ARGS --netns NS` as its own process; output goes straight to ours. */
async function ctnl(ns: string, args: string[]): Promise<void> {
  heading(`ctnl ${args.join(" ")} --netns ${ns}`);
  const r = await run(
    [Deno.execPath(), "run", "--allow-ffi", CLI, ...args, "--netns", ns],
    { inherit: true },
  );
  if (r.code !== 0) throw new Error(`ctnl ${args.join(" ")} failed (exit ${r.code})`);
}

/** Runs `ctnl ARGS --netns NS` and returns its stdout. */
async function ctnlOutput(ns: string, args: string[]): Promise<string> {
  const r = await run([
    Deno.execPath(),
    "run",
    "--allow-ffi",
    CLI,
    ...args,
    "--netns",
    ns,
  ]);
  if (r.code !== 0) {
    throw new Error(`ctnl ${args.join(" ")} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/** Makes the namespace and its traffic. */
async function setUp(ns: string, haveping: boolean): Promise<void> {
  heading(`Setting up namespace ${ns}`);
  await must(["ip", "netns", "add", ns]);
  const exec = (cmd: string[], stdin?: string) => must(["ip", "netns", "exec", ns, ...cmd], stdin);
  await exec(["ip", "link", "set", "lo", "up"]);
  for (const a of [`${CLIENT4}/24`, `${SERVER4}/24`]) {
    await exec(["ip", "addr", "add", a, "dev", "lo"]);
  }
  for (const a of [`${CLIENT6}/64`, `${SERVER6}/64`]) {
    await exec(["ip", "addr", "add", a, "dev", "lo", "nodad"]);
  }
  await exec(["ip", "route", "add", "10.60.0.0/24", "dev", "lo"]);
  // Rules that use conntrack make the kernel track this namespace's traffic.
  await exec(["nft", "-f", "-"], RULES);
  // Byte/packet counters and start timestamps (per namespace; off by default).
  await exec([
    "sh",
    "-c",
    "echo 1 > /proc/sys/net/netfilter/nf_conntrack_acct && " +
    "echo 1 > /proc/sys/net/netfilter/nf_conntrack_timestamp",
  ]);
  note(
    `lo: 10.50.0.1, ${SERVER4}, fd50::1, ${SERVER6}; nftables: ` +
      `DNAT ${VIRTUAL}:8081 -> ${SERVER4}:8080, tcp dport 7200 -> ct mark 42, ` +
      `udp port 5555 -> ct zone 7; counters and timestamps on`,
  );

  heading("Making traffic");
  await startTraffic(ns);
  if (haveping) {
    await exec(["ping", "-c", "1", "-W", "2", SERVER4]);
    await exec(["ping", "-6", "-c", "1", "-W", "2", "-I", CLIENT6, SERVER6]);
  }
  note(
    "TCP: open, closed (TIME_WAIT), through the DNAT, marked, over IPv6; " +
      "UDP: replied, unreplied, in zone 7, over IPv6" +
      (haveping ? "; ICMP and ICMPv6 echo" : " (no ping: no ICMP)"),
  );
}

/** Shows the CLI at work on the namespace. */
async function show(ns: string, haveConntrack: boolean): Promise<void> {
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
    const r = await run(["ip", "netns", "exec", ns, "conntrack", "-C"]);
    console.log(r.stdout.trim());
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

  const ns = `ctnl-demo-${Deno.pid}`;
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    cleaning ??= (async () => {
      for (const child of children) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      for (const child of [...children]) await child.status.catch(() => {});
      const r = await run(["ip", "netns", "del", ns]);
      if (r.code === 0) heading(`Deleted namespace ${ns}`);
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
    await setUp(ns, which("ping") !== undefined);
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

if (import.meta.main) {
  if (Deno.args.includes("--traffic")) await traffic();
  else Deno.exit(await main());
}
