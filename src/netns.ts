/**
 * Every network namespace at once: {@link listNetns} finds the namespaces
 * named under `/run/netns` (as `ip netns add` makes them) and those of
 * running processes (`/proc/PID/ns/net`), one entry per namespace
 * (deduplicated by the nsfs inode and device); {@link watchNetns} reports
 * namespaces as they appear and vanish; {@link dumpAllNetns} and
 * {@link eventsAllNetns} run a dump or an event stream in each, every flow
 * tagged with its namespace.
 *
 * @module
 */

import { Conntrack } from "./conntrack.ts";
import type { DumpFilter } from "./filter.ts";
import type { ConntrackEvent, DumpOptions, EventOptions } from "./options.ts";
import type { Flow } from "./types.ts";

/** One network namespace.
 *
 * @example
 * ```ts
 * import type { NetnsInfo } from "@ctnl/conntrack";
 *
 * const ns: NetnsInfo = {
 *   name: "blue", path: "/run/netns/blue", inode: 4026532300, dev: 4, pid: undefined,
 *   label: "blue",
 * };
 * void ns;
 * ```
 */
export interface NetnsInfo {
  /** Its name under `/run/netns`, if it has one. */
  readonly name: string | undefined;
  /** A path that opens it: `/run/netns/NAME`, else `/proc/PID/ns/net`. */
  readonly path: string;
  /** The namespace's inode (as in `net:[INODE]`). */
  readonly inode: number;
  /** The nsfs device number (an inode is unique on it). */
  readonly dev: number;
  /** The lowest pid of a process in it, if one was found. */
  readonly pid: number | undefined;
  /** How to name it: its name, else `net:[INODE]`. */
  readonly label: string;
}

/** A namespace that appeared or vanished (see {@link watchNetns}).
 *
 * @example
 * ```ts
 * import type { NetnsChange } from "@ctnl/conntrack";
 *
 * const describe = (c: NetnsChange) => `${c.type} ${c.netns.label}`;
 * void describe;
 * ```
 */
export interface NetnsChange {
  /** `added` (also for each namespace present when watching starts) or `removed`. */
  readonly type: "added" | "removed";
  /** The namespace. */
  readonly netns: NetnsInfo;
}

interface Found {
  name: string | undefined;
  path: string;
  inode: number;
  dev: number;
  pid: number | undefined;
}

function identity(f: { inode: number; dev: number }): string {
  return `${f.dev}:${f.inode}`;
}

/** Adds `found` to `byId`: a name beats a pid's path, the lowest pid is kept. */
function note(byId: Map<string, Found>, found: Found): void {
  const id = identity(found);
  const seen = byId.get(id);
  if (seen === undefined) {
    byId.set(id, found);
    return;
  }
  if (seen.name === undefined && found.name !== undefined) {
    seen.name = found.name;
    seen.path = found.path;
  }
  if (found.pid !== undefined && (seen.pid === undefined || found.pid < seen.pid)) {
    seen.pid = found.pid;
    if (seen.name === undefined) seen.path = found.path;
  }
}

function finish(byId: Map<string, Found>): NetnsInfo[] {
  return [...byId.values()]
    .map((f) => Object.freeze({ ...f, label: f.name ?? `net:[${f.inode}]` }))
    .sort((a, b) => a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
}

/** Where namespaces are looked for (tests point it elsewhere). */
interface Roots {
  runNetns: string;
  proc: string;
}
const ROOTS: Roots = { runNetns: "/run/netns", proc: "/proc" };

/** The nsfs device: what a real namespace file's `dev` is (a stale name in /run/netns is not). */
function nsfsDevSync(): number | undefined {
  try {
    return Deno.statSync("/proc/self/ns/net").dev;
  } catch {
    return undefined;
  }
}

/**
 * Every network namespace there is (that this process may look at), as
 * {@link listNetns}, reading the file system synchronously.
 *
 * @example
 * ```ts ignore
 * import { listNetnsSync } from "@ctnl/conntrack";
 *
 * for (const ns of listNetnsSync()) console.log(ns.label, ns.inode, ns.pid);
 * ```
 */
export function listNetnsSync(): NetnsInfo[] {
  const byId = new Map<string, Found>();
  const dev = nsfsDevSync();
  const look = (path: string, name: string | undefined, pid: number | undefined) => {
    try {
      const st = Deno.statSync(path);
      if (dev !== undefined && st.dev !== dev) return; // a stale name, no namespace mounted
      note(byId, { name, path, inode: st.ino ?? 0, dev: st.dev, pid });
    } catch { /* gone, or not ours to look at */ }
  };
  try {
    for (const e of Deno.readDirSync(ROOTS.runNetns)) {
      look(`${ROOTS.runNetns}/${e.name}`, e.name, undefined);
    }
  } catch { /* no /run/netns */ }
  for (const e of Deno.readDirSync(ROOTS.proc)) {
    if (!/^[0-9]+$/.test(e.name)) continue;
    look(`${ROOTS.proc}/${e.name}/ns/net`, undefined, Number(e.name));
  }
  return finish(byId);
}

/**
 * Every network namespace there is: those named under `/run/netns` and
 * those of running processes (`/proc/PID/ns/net`), one entry each
 * (deduplicated by inode and device), a named one under its name. Processes
 * whose namespace this process may not look at are skipped, as are names
 * with no namespace mounted on them. Sorted by label.
 *
 * @example
 * ```ts ignore
 * import { Conntrack, listNetns } from "@ctnl/conntrack";
 *
 * for (const ns of await listNetns()) {
 *   using ct = Conntrack.open({ netns: ns.path });
 *   console.log(ns.label, await ct.count());
 * }
 * ```
 */
export async function listNetns(): Promise<NetnsInfo[]> {
  const byId = new Map<string, Found>();
  let dev: number | undefined;
  try {
    dev = (await Deno.stat("/proc/self/ns/net")).dev;
  } catch { /* no /proc */ }
  const look = async (path: string, name: string | undefined, pid: number | undefined) => {
    try {
      const st = await Deno.stat(path);
      if (dev !== undefined && st.dev !== dev) return;
      note(byId, { name, path, inode: st.ino ?? 0, dev: st.dev, pid });
    } catch { /* gone, or not ours to look at */ }
  };
  try {
    for await (const e of Deno.readDir(ROOTS.runNetns)) {
      await look(`${ROOTS.runNetns}/${e.name}`, e.name, undefined);
    }
  } catch { /* no /run/netns */ }
  for await (const e of Deno.readDir(ROOTS.proc)) {
    if (/^[0-9]+$/.test(e.name)) {
      await look(`${ROOTS.proc}/${e.name}/ns/net`, undefined, Number(e.name));
    }
  }
  return finish(byId);
}

/** Options of {@link watchNetns}.
 *
 * @example
 * ```ts
 * import type { WatchNetnsOptions } from "@ctnl/conntrack";
 *
 * const options: WatchNetnsOptions = { intervalMs: 500, signal: AbortSignal.timeout(10_000) };
 * void options;
 * ```
 */
export interface WatchNetnsOptions {
  /** How often to look again, in ms (default 1000). */
  intervalMs?: number | undefined;
  /** Ends the stream when aborted. */
  signal?: AbortSignal | undefined;
}

/** Resolves after `ms`, or at once when `signal` is aborted. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * The namespaces as they come and go: an `added` change for each one
 * present at the start, then, looking again every `intervalMs`, `added`
 * for each new one and `removed` for each one gone (by inode: a namespace
 * renamed stays the same). Ends when `signal` is aborted or the consumer
 * stops.
 *
 * @example
 * ```ts ignore
 * import { watchNetns } from "@ctnl/conntrack";
 *
 * for await (const change of watchNetns({ signal: AbortSignal.timeout(60_000) })) {
 *   console.log(change.type, change.netns.label);
 * }
 * ```
 */
export async function* watchNetns(
  options: WatchNetnsOptions = {},
): AsyncGenerator<NetnsChange, void, undefined> {
  const interval = options.intervalMs ?? 1000;
  const signal = options.signal;
  let known = new Map<string, NetnsInfo>();
  while (!signal?.aborted) {
    const now = new Map((await listNetns()).map((ns) => [identity(ns), ns]));
    for (const [id, ns] of known) if (!now.has(id)) yield { type: "removed", netns: ns };
    for (const [id, ns] of now) if (!known.has(id)) yield { type: "added", netns: ns };
    known = now;
    await sleep(interval, signal);
  }
}

/** A flow and the namespace it is in.
 *
 * @example
 * ```ts
 * import type { NetnsFlow } from "@ctnl/conntrack";
 *
 * const where = (f: NetnsFlow) => `${f.netns.label} ${f.flow.orig.src}`;
 * void where;
 * ```
 */
export interface NetnsFlow {
  /** The namespace. */
  netns: NetnsInfo;
  /** The flow. */
  flow: Flow;
}

/** A handle in `ns`, or undefined when it vanished before it could be opened. */
function openIn(ns: NetnsInfo): Conntrack | undefined {
  try {
    return Conntrack.open({ netns: ns.path });
  } catch (error) {
    if (error instanceof Error && "code" in error && error.code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Dumps every namespace's table in turn (those {@link listNetns} finds when
 * it starts; one that vanishes before its turn is skipped), each flow with
 * its namespace.
 *
 * @example
 * ```ts ignore
 * import { dumpAllNetns } from "@ctnl/conntrack";
 *
 * for await (const { netns, flow } of dumpAllNetns({ orig: { protocol: "tcp" } })) {
 *   console.log(netns.label, flow.orig.src, flow.tcp?.stateName);
 * }
 * ```
 */
export async function* dumpAllNetns(
  filter?: DumpFilter,
  options: DumpOptions = {},
): AsyncGenerator<NetnsFlow, void, undefined> {
  for (const netns of await listNetns()) {
    const ct = openIn(netns);
    if (ct === undefined) continue;
    try {
      for await (const flow of ct.dump(filter, options)) yield { netns, flow };
    } finally {
      ct.close();
    }
  }
}

/** An event and the namespace it happened in.
 *
 * @example
 * ```ts
 * import type { NetnsEvent } from "@ctnl/conntrack";
 *
 * const describe = (e: NetnsEvent) => `${e.netns.label} ${e.event.type}`;
 * void describe;
 * ```
 */
export interface NetnsEvent {
  /** The namespace. */
  netns: NetnsInfo;
  /** The event (or `lost`: that namespace's stream overran). */
  event: ConntrackEvent;
}

/** Options of {@link eventsAllNetns}: the event options, and how often to look for namespaces.
 *
 * @example
 * ```ts
 * import type { AllNetnsEventOptions } from "@ctnl/conntrack";
 *
 * const options: AllNetnsEventOptions = { types: ["new"], intervalMs: 500 };
 * void options;
 * ```
 */
export interface AllNetnsEventOptions extends EventOptions {
  /** How often to look for namespaces that appeared or vanished, in ms (default 1000). */
  intervalMs?: number | undefined;
  /** Called when a namespace is added or removed from the watch. */
  onNetns?: ((change: NetnsChange) => void) | undefined;
}

/**
 * Watches the events of every namespace at once, each tagged with its
 * namespace: a stream is started in each namespace present and in each
 * that appears later ({@link watchNetns}); a namespace's stream is closed
 * when it vanishes (the socket would otherwise keep it alive). Ends on
 * `signal` or when the consumer stops.
 *
 * @example
 * ```ts ignore
 * import { eventsAllNetns } from "@ctnl/conntrack";
 *
 * for await (const { netns, event } of eventsAllNetns({ types: ["new"] })) {
 *   if (event.type !== "lost") console.log(netns.label, event.flow.orig.src);
 * }
 * ```
 */
export async function* eventsAllNetns(
  options: AllNetnsEventOptions = {},
): AsyncGenerator<NetnsEvent, void, undefined> {
  const { intervalMs, onNetns, ...eventOptions } = options;
  const stop = new AbortController();
  const outer = options.signal;
  const onAbort = () => stop.abort();
  outer?.addEventListener("abort", onAbort, { once: true });
  if (outer?.aborted) stop.abort();
  const queue: NetnsEvent[] = [];
  let wake: (() => void) | undefined;
  let failure: { error: unknown } | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  const streams = new Map<string, { ct: Conntrack; stop: AbortController }>();
  const follow = async (netns: NetnsInfo, ct: Conntrack, own: AbortController) => {
    try {
      for await (const event of ct.events({ ...eventOptions, signal: own.signal })) {
        queue.push({ netns, event });
        notify();
      }
    } catch (error) {
      if (!own.signal.aborted && failure === undefined) failure = { error };
      notify();
    }
  };
  const watching = (async () => {
    try {
      for await (const change of watchNetns({ intervalMs, signal: stop.signal })) {
        const id = identity(change.netns);
        if (change.type === "added") {
          const ct = openIn(change.netns);
          if (ct === undefined) continue;
          const own = new AbortController();
          streams.set(id, { ct, stop: own });
          follow(change.netns, ct, own);
        } else {
          const s = streams.get(id);
          if (s === undefined) continue;
          streams.delete(id);
          s.stop.abort();
          s.ct.close();
        }
        onNetns?.(change);
      }
    } catch (error) {
      if (failure === undefined) failure = { error };
      notify();
    }
  })();
  const stopped = new Promise<void>((resolve) => {
    stop.signal.addEventListener("abort", () => resolve(), { once: true });
  });
  try {
    for (;;) {
      if (failure !== undefined) throw failure.error;
      const next = queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (stop.signal.aborted) return;
      await Promise.race([new Promise<void>((resolve) => wake = resolve), stopped]);
    }
  } finally {
    outer?.removeEventListener("abort", onAbort);
    stop.abort();
    for (const s of streams.values()) {
      s.stop.abort();
      s.ct.close();
    }
    streams.clear();
    await watching;
  }
}
