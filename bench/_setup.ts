/**
 * Benchmark set-up: a namespace of its own (`ctnl-bench-…`, always deleted,
 * also on Ctrl-C), the global `nf_conntrack_max` raised and restored, and a
 * table filled through ctnl's own batched create.
 *
 * @module
 */

import { Conntrack, type CreateSpec } from "../mod.ts";

/** Runs a command; throws with its stderr when it fails. */
export async function sh(cmd: string[]): Promise<string> {
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  if (!out.success) {
    throw new Error(`${cmd.join(" ")} failed (${out.code}): ${dec.decode(out.stderr).trim()}`);
  }
  return dec.decode(out.stdout);
}

const MAX_PATH = "/proc/sys/net/netfilter/nf_conntrack_max";

/** Everything to undo, undone in reverse order by {@link cleanup}. */
const undo: (() => Promise<void> | void)[] = [];
let cleaning: Promise<void> | undefined;

/** Undoes what {@link createNamespace} and {@link raiseConntrackMax} did. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (undo.length > 0) {
      const step = undo.pop()!;
      try {
        await step();
      } catch (error) {
        console.error("cleanup:", error);
      }
    }
  })();
  return cleaning;
}

let signalsHooked = false;
function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      console.error(`\n${sig}: cleaning up`);
      cleanup().finally(() => Deno.exit(130));
    });
  }
}

/**
 * Creates `ctnl-bench-<tag>-<pid>` with loopback up and conntrack's
 * accounting and timestamps as given; {@link cleanup} deletes it.
 */
export async function createNamespace(
  tag: string,
  options: { acct?: boolean; timestamp?: boolean } = {},
): Promise<string> {
  hookSignals();
  const name = `ctnl-bench-${tag}-${Deno.pid}`;
  await sh(["ip", "netns", "add", name]);
  undo.push(() => sh(["ip", "netns", "del", name]).then(() => {}));
  await sh(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]);
  await sh([
    "ip",
    "netns",
    "exec",
    name,
    "sysctl",
    "-qw",
    `net.netfilter.nf_conntrack_acct=${options.acct ? 1 : 0}`,
    `net.netfilter.nf_conntrack_timestamp=${options.timestamp ? 1 : 0}`,
  ]);
  return name;
}

/**
 * Raises the global `nf_conntrack_max` (root namespace; read-only in other
 * namespaces) to at least `atLeast`; {@link cleanup} restores the old value.
 */
export async function raiseConntrackMax(atLeast: number): Promise<void> {
  hookSignals();
  const old = Number((await Deno.readTextFile(MAX_PATH)).trim());
  if (old >= atLeast) return;
  undo.push(async () => {
    await Deno.writeTextFile(MAX_PATH, `${old}\n`);
    console.error(`nf_conntrack_max restored to ${old}`);
  });
  await Deno.writeTextFile(MAX_PATH, `${atLeast}\n`);
}

/**
 * The benchmark's mix of entries, generated lazily (nothing accumulated):
 * of every 20, 11 UDP/IPv4, 6 TCP/IPv4 ESTABLISHED, 2 TCP/IPv6 ESTABLISHED,
 * 1 UDP/IPv6 — all ASSURED and SEEN_REPLY, with long timeouts, some marked.
 */
export function* benchSpecs(n: number, from = 0): Generator<CreateSpec> {
  for (let i = from; i < from + n; i++) {
    const k = i % 20;
    const a = (i >>> 16) & 0xff, b = (i >>> 8) & 0xff, c = i & 0xff;
    const srcPort = 1024 + (i % 50000);
    const mark = i % 7 === 0 ? i & 0xffff : 0;
    if (k < 11) {
      yield {
        orig: {
          src: `10.${a}.${b}.${c}`,
          dst: "192.0.2.53",
          protocol: "udp",
          srcPort,
          dstPort: 53,
        },
        timeout: 3600,
        status: ["ASSURED", "SEEN_REPLY"],
        mark,
      };
    } else if (k < 17) {
      yield {
        orig: {
          src: `10.${a}.${b}.${c}`,
          dst: `198.51.100.${i % 200}`,
          protocol: "tcp",
          srcPort,
          dstPort: 443,
        },
        timeout: 86400,
        tcpState: "ESTABLISHED",
        status: ["ASSURED", "SEEN_REPLY"],
        mark,
      };
    } else if (k < 19) {
      yield {
        orig: {
          src: `fd00:10::${a.toString(16)}:${((b << 8) | c).toString(16)}`,
          dst: "2001:db8::443",
          protocol: "tcp",
          srcPort,
          dstPort: 443,
        },
        timeout: 86400,
        tcpState: "ESTABLISHED",
        status: ["ASSURED", "SEEN_REPLY"],
        mark,
      };
    } else {
      yield {
        orig: {
          src: `fd00:10::${a.toString(16)}:${((b << 8) | c).toString(16)}`,
          dst: "2001:db8::53",
          protocol: "udp",
          srcPort,
          dstPort: 53,
        },
        timeout: 3600,
        status: ["ASSURED", "SEEN_REPLY"],
        mark,
      };
    }
  }
}

/**
 * Fills the namespace's table up to `n` entries of {@link benchSpecs}
 * (adding only what is missing) and returns the count the kernel reports.
 */
export async function fill(netns: string, n: number): Promise<number> {
  using ct = Conntrack.open({ netns, timeoutMs: 30_000 });
  const have = await ct.count();
  if (have < n) ct.createManySync(benchSpecs(n - have, have), { batchSize: 512 });
  return await ct.count();
}
