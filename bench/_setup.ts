/**
 * Benchmark set-up: a namespace of its own (`ctnl-bench-…`, always deleted,
 * also on Ctrl-C), the global `nf_conntrack_max` raised and restored, and a
 * table filled through ctnl's own batched create.
 *
 * @module
 */

import $ from "@david/dax";
import { Conntrack, type CreateSpec } from "../mod.ts";

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
  await $`ip netns add ${name}`;
  undo.push(async () => void await $`ip netns del ${name}`);
  const sysctl = `echo ${options.acct ? 1 : 0} > /proc/sys/net/netfilter/nf_conntrack_acct; ` +
    `echo ${options.timestamp ? 1 : 0} > /proc/sys/net/netfilter/nf_conntrack_timestamp`;
  await $`ip netns exec ${name} sh -ec ${`ip link set lo up; ${sysctl}`}`;
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
    const tcp = k >= 11 && k < 19, v6 = k >= 17;
    const src = v6
      ? `fd00:10::${a.toString(16)}:${((b << 8) | c).toString(16)}`
      : `10.${a}.${b}.${c}`;
    const dst = v6
      ? (tcp ? "2001:db8::443" : "2001:db8::53")
      : (tcp ? `198.51.100.${i % 200}` : "192.0.2.53");
    yield {
      orig: {
        src,
        dst,
        protocol: tcp ? "tcp" : "udp",
        srcPort: 1024 + (i % 50000),
        dstPort: tcp ? 443 : 53,
      },
      timeout: tcp ? 86400 : 3600,
      ...(tcp ? { tcpState: "ESTABLISHED" } : {}),
      status: ["ASSURED", "SEEN_REPLY"],
      mark: i % 7 === 0 ? i & 0xffff : 0,
    };
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
