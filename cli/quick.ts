/**
 * `ctnl count` and `ctnl stats` (`-C`, `-S`) answered from a handful of
 * modules: the socket, the transport and src/stats.ts, not the CLI's option
 * table, the flow codec and the other commands (a count is then about as
 * quick as Deno starting up). Only the plain forms take this way: the word
 * or flag, with `--json` and `--netns NAME` at most; anything else, and any
 * failure, goes to the full CLI (cli/main.ts), which runs the command again
 * and says what went wrong in its words (both commands only read).
 *
 * The lines come from {@link countLines} and {@link statsLines}, which the
 * full commands print with too.
 *
 * @module
 */

import type { CpuStats, GlobalStats } from "../src/types.ts";
import { formatCpuStats, globalRequest, statsRequest } from "../src/stats.ts";
import { kernelSockets } from "../src/sockets.ts";
import { Transport } from "../src/transport.ts";

const COUNT = new Set(["count", "-C", "--count", "--counter"]);
const STATS = new Set(["stats", "-S", "--stats"]);

/**
 * `ctnl count`'s line for `stats`: the entries, or with `json` the object.
 *
 * @example
 * ```ts
 * import { countLines } from "./quick.ts";
 * import { deepStrictEqual } from "node:assert/strict";
 *
 * deepStrictEqual(countLines({ entries: 3, maxEntries: 65536 }, false), ["3"]);
 * deepStrictEqual(countLines({ entries: 3, maxEntries: 65536 }, true), [
 *   '{"entries":3,"maxEntries":65536}',
 * ]);
 * ```
 */
export function countLines(stats: GlobalStats, json: boolean): string[] {
  return [json ? JSON.stringify(stats) : String(stats.entries)];
}

/**
 * `ctnl stats`' lines: conntrack -S's line per CPU, or with `json` one object.
 *
 * @example
 * ```ts
 * import type { CpuStats } from "../mod.ts";
 * import { statsLines } from "./quick.ts";
 * import { strictEqual } from "node:assert/strict";
 *
 * const cpu = { cpu: 0, found: 2, invalid: 1 } as CpuStats;
 * strictEqual(statsLines([cpu], true)[0], '{"cpus":[{"cpu":0,"found":2,"invalid":1}]}');
 * ```
 */
export function statsLines(cpus: readonly CpuStats[], json: boolean): string[] {
  // undefined fields are left out of the JSON
  return json ? [JSON.stringify({ cpus })] : cpus.map(formatCpuStats);
}

/** The plain form `args` are, if they are one: the command, `--json`, `--netns`. */
function plain(
  args: readonly string[],
): { command: "count" | "stats"; json: boolean; netns: string | undefined } | undefined {
  let command: "count" | "stats" | undefined, json = false, netns: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (command === undefined && COUNT.has(a)) command = "count";
    else if (command === undefined && STATS.has(a)) command = "stats";
    else if (a === "--json" && !json) json = true;
    else if (a === "--netns" && netns === undefined && i + 1 < args.length) {
      netns = args[++i]!;
      if (netns === "" || netns.startsWith("-")) return undefined;
    } else return undefined;
  }
  return command === undefined ? undefined : { command, json, netns };
}

/**
 * Runs `args` when they are a plain `count` or `stats` and it succeeds,
 * writing its lines to stdout and returning 0; else `undefined` with
 * nothing written (the full CLI takes over).
 */
export function quick(args: readonly string[]): number | undefined {
  const p = plain(args);
  if (p === undefined) return undefined;
  let lines: string[];
  try {
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
    const sockets = kernelSockets(p.netns, 10_000);
    try {
      const t = new Transport(sockets.open, 10_000);
      try {
        if (p.command === "count") {
          const r = globalRequest(t);
          const stats = [...t.exchange(r.operation, r.request, r.seq, r.replyType, r.decode)].at(
            -1,
          );
          if (stats === undefined) return undefined;
          lines = countLines(stats, p.json);
        } else {
          const r = statsRequest(t);
          lines = statsLines(
            [...t.exchange(r.operation, r.request, r.seq, r.replyType, r.decode)],
            p.json,
          );
        }
      } finally {
        t.close();
      }
    } finally {
      sockets.release();
    }
  } catch {
    return undefined; // the full CLI runs it again and reports the failure
  }
  const bytes = new TextEncoder().encode(lines.map((l) => `${l}\n`).join(""));
  try {
    for (let at = 0; at < bytes.length;) at += Deno.stdout.writeSync(bytes.subarray(at));
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return 0; // as the full CLI: `ctnl count | true`
    const line = `ctnl: ${error instanceof Error ? error.message : String(error)}\n`;
    Deno.stderr.writeSync(new TextEncoder().encode(line));
    return 1;
  }
  return 0;
}
