/**
 * Test helpers: run commands, create and always delete network namespaces.
 *
 * `run` spawns with `Deno.Command`, not dax: dax-sh (the npm build) spawns
 * through `node:child_process`, and Deno's Node compatibility gives a
 * `deno run SCRIPT` child spawned that way without permission flags `-A`
 * (as Node would have no permissions to check) — which would make every
 * test of what happens *without* `--allow-ffi` pass for the wrong reason.
 * The tests run `deno` children through here; dax does the shell work of
 * the demo and the benchmarks.
 *
 * @module
 */

/** Result of {@link run}. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command, collects its output; never throws for a non-zero exit. */
export async function run(
  cmd: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    ...(options.env ? { env: options.env } : {}),
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs a command and throws with its stderr when it fails. */
export async function must(cmd: string[], stdin?: string): Promise<string> {
  const r = await run(cmd, stdin === undefined ? {} : { stdin });
  if (r.code !== 0) {
    throw new Error(`${cmd.join(" ")} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

/** A network namespace that exists until {@link Netns.delete}. */
export class Netns {
  readonly name: string;
  #children: Deno.ChildProcess[] = [];

  private constructor(name: string) {
    this.name = name;
  }

  /**
   * Creates `ctnl-test-<tag>-<pid>-<n>` (or `options.name`) with loopback up,
   * conntrack's accounting and timestamps on.
   */
  static async create(tag: string, options: { name?: string } = {}): Promise<Netns> {
    const name = options.name ?? `ctnl-test-${tag}-${Deno.pid}-${Math.floor(Math.random() * 1e6)}`;
    await must(["ip", "netns", "add", name]);
    return await prepare(new Netns(name), async (ns) => {
      await ns.exec(["ip", "link", "set", "lo", "up"]);
      await ns.sysctl({ nf_conntrack_acct: 1, nf_conntrack_timestamp: 1 });
    });
  }

  /** Runs a command inside the namespace; throws if it fails. */
  exec(cmd: string[], stdin?: string): Promise<string> {
    return must(["ip", "netns", "exec", this.name, ...cmd], stdin);
  }

  /** Runs a command inside the namespace; returns code and output. */
  run(cmd: string[], env?: Record<string, string>): Promise<RunResult> {
    return run(["ip", "netns", "exec", this.name, ...cmd], env ? { env } : {});
  }

  /**
   * Sets the namespace's `net.netfilter.*` sysctls (by writing /proc/sys in
   * the namespace, so procps' `sysctl` is not needed).
   */
  async sysctl(settings: Record<string, number>): Promise<void> {
    const writes = Object.entries(settings)
      .map(([key, value]) => `echo ${value} > /proc/sys/net/netfilter/${key}`);
    await this.exec(["sh", "-ec", writes.join("\n")]);
  }

  /**
   * Starts a long-running command in the namespace and waits until it prints
   * a line equal to `readyLine` on stdout. It is killed by {@link delete}.
   */
  async spawn(cmd: string[], readyLine = "ready"): Promise<void> {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", this.name, ...cmd],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#children.push(child);
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    const deadline = setTimeout(() => child.kill("SIGKILL"), 60_000);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`${cmd.join(" ")} ended before "${readyLine}": ${seen}`);
        seen += value;
        if (seen.split("\n").includes(readyLine)) break;
      }
    } finally {
      clearTimeout(deadline);
    }
    // Keep draining so the child never blocks on a full pipe.
    (async () => {
      try {
        while (!(await reader.read()).done) { /* drain */ }
      } catch { /* killed */ }
    })();
  }

  /** Kills what {@link spawn} started and deletes the namespace; whether it was deleted. */
  async delete(): Promise<boolean> {
    for (const child of this.#children) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      try {
        await child.status;
      } catch { /* ignore */ }
    }
    this.#children = [];
    return (await run(["ip", "netns", "del", this.name])).code === 0;
  }
}

/** Runs `setUp` on `ns` and returns it; if `setUp` fails, deletes `ns` and rethrows. */
export async function prepare(ns: Netns, setUp: (ns: Netns) => unknown): Promise<Netns> {
  try {
    await setUp(ns);
  } catch (error) {
    await ns.delete();
    throw error;
  }
  return ns;
}

/** Runs `fn` over `items`, at most `limit` at a time, keeping the order of results. */
export async function pool<T, R>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
