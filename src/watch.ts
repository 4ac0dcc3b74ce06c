/**
 * A mirror of the table that is never wrong for long: {@link watch} dumps
 * the table, follows its events, and after any loss (`ENOBUFS`) dumps again
 * and reports the difference as synthetic events.
 *
 * @module
 */

import { ArgumentError, DumpInterruptedError } from "./errors.ts";
import type { Conntrack } from "./conntrack.ts";
import type { DumpFilter } from "./filter.ts";
import type { ConntrackEvent, EventOptions } from "./options.ts";
import type { Flow } from "./types.ts";

/** Options of {@link watch}: those of the event stream (all three types are always watched).
 *
 * @example
 * ```ts
 * import type { WatchOptions } from "@ctnl/conntrack";
 *
 * const options: WatchOptions = { filter: { orig: { protocol: "tcp" } }, bufferSize: 1 << 20 };
 * void options; // watch(ct, options)
 * ```
 */
export type WatchOptions = Omit<EventOptions, "types" | "noEnobufs">;

/**
 * What {@link watch} yields: a change of the mirror (`synthetic` when it
 * comes from a dump rather than from a kernel event), or `synced` after
 * the first dump and after each resynchronisation.
 *
 * @example
 * ```ts
 * import type { WatchEvent } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const e: WatchEvent = { type: "synced", entries: 3, losses: 1, resyncs: 1 };
 * equal(e.type === "synced" && e.resyncs, 1);
 * ```
 */
export type WatchEvent =
  | {
    type: "new" | "update" | "destroy";
    /** The entry (for a destroy: as it was last seen, or as the kernel reported it). */
    flow: Flow;
    /** True when the change was found by a dump (the first, or a resync), not sent by the kernel. */
    synthetic: boolean;
    /** Netlink port id of the process whose request caused the event (0: the kernel, or a dump). */
    portId: number;
  }
  | {
    type: "synced";
    /** Entries in the mirror now. */
    entries: number;
    /** How many times the kernel reported lost events so far. */
    losses: number;
    /** How many times the table was dumped again because of them. */
    resyncs: number;
  };

/**
 * The key of an entry in a mirror: its original tuple and zone (the
 * kernel's identity of an entry; its id tells two lives of one key apart).
 *
 * @example
 * ```ts
 * import { flowKey, newFlow } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const f = newFlow("ipv4");
 * f.orig = { ...f.orig, src: "10.0.0.1", dst: "10.0.0.2", protocol: 17, srcPort: 5000, dstPort: 53 };
 * equal(flowKey(f), "ipv4 17 10.0.0.1 10.0.0.2 5000 53 0");
 * ```
 */
export function flowKey(flow: Flow): string {
  const o = flow.orig;
  return `${flow.family} ${o.protocol} ${o.src} ${o.dst} ${o.srcPort ?? o.icmpId ?? ""} ${
    o.dstPort ?? (o.icmpType === undefined ? "" : `${o.icmpType}/${o.icmpCode}`)
  } ${flow.zone ?? 0}`;
}

/** `old` with every field `change` has (not undefined) taken from `change`. */
function merged(old: Flow, change: Flow): Flow {
  const out = { ...old };
  const target = out as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(change)) if (value !== undefined) target[key] = value;
  return out;
}

/** Whether what events report of an entry differs between `a` and `b`. */
function differs(a: Flow, b: Flow): boolean {
  return a.id !== b.id || a.status !== b.status || a.mark !== b.mark ||
    a.tcp?.state !== b.tcp?.state || a.sctp?.state !== b.sctp?.state ||
    a.dccp?.state !== b.dccp?.state || a.helper !== b.helper ||
    String(a.labels) !== String(b.labels);
}

/**
 * A live mirror of the table: {@link watch} returns it. Iterate it to see
 * each change; {@link table} is the mirror itself, kept up to date as the
 * changes are yielded.
 *
 * @example
 * ```ts ignore
 * import { Conntrack, watch } from "@ctnl/conntrack";
 *
 * using ct = Conntrack.open();
 * const mirror = watch(ct);
 * for await (const e of mirror) {
 *   if (e.type === "synced") console.log(`in sync: ${mirror.table.size} entries`);
 * }
 * ```
 */
export class TableWatch implements AsyncIterableIterator<WatchEvent> {
  readonly #table = new Map<string, Flow>();
  readonly #gen: AsyncGenerator<WatchEvent, undefined, undefined>;
  /** Aborted by {@link return}: ends an event wait that a pending `next()` is in. */
  readonly #stop = new AbortController();
  #losses = 0;
  #resyncs = 0;

  /** Made by {@link watch}. */
  constructor(ct: Conntrack, options: WatchOptions) {
    this.#gen = this.#run(ct, options);
  }

  /** The mirror: entries by {@link flowKey}, as of the last change yielded. */
  get table(): ReadonlyMap<string, Flow> {
    return this.#table;
  }

  /** How many times the kernel reported lost events. */
  get losses(): number {
    return this.#losses;
  }

  /** How many times the table was dumped again after a loss. */
  get resyncs(): number {
    return this.#resyncs;
  }

  /** The watch itself (for `for await`). */
  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next change. */
  next(): Promise<IteratorResult<WatchEvent, undefined>> {
    return this.#gen.next();
  }

  /** Stops watching (the event socket is closed), also while a `next()` waits for an event. */
  async return(): Promise<IteratorResult<WatchEvent, undefined>> {
    this.#stop.abort();
    await this.#gen.return(undefined);
    return { value: undefined, done: true };
  }

  /** A dump into a map; an interrupted dump is taken again (up to three times). */
  async #snapshot(ct: Conntrack, filter: DumpFilter | undefined): Promise<Map<string, Flow>> {
    for (let attempt = 1;; attempt++) {
      const now = new Map<string, Flow>();
      try {
        for await (const flow of ct.dump(filter)) now.set(flowKey(flow), flow);
        return now;
      } catch (error) {
        if (!(error instanceof DumpInterruptedError)) throw error;
        if (attempt === 3) return now; // the events that follow correct it
      }
    }
  }

  #synced(): WatchEvent {
    return {
      type: "synced",
      entries: this.#table.size,
      losses: this.#losses,
      resyncs: this.#resyncs,
    };
  }

  /** The changes that make the mirror equal `now`. */
  *#reconcile(now: Map<string, Flow>): Generator<WatchEvent> {
    const table = this.#table;
    for (const [k, flow] of table) {
      const fresh = now.get(k);
      if (fresh !== undefined && fresh.id === flow.id) continue;
      table.delete(k);
      yield { type: "destroy", flow, synthetic: true, portId: 0 };
    }
    for (const [k, flow] of now) {
      const old = table.get(k);
      if (old === undefined) {
        table.set(k, flow);
        yield { type: "new", flow, synthetic: true, portId: 0 };
      } else if (differs(old, flow)) {
        table.set(k, flow);
        yield { type: "update", flow, synthetic: true, portId: 0 };
      }
    }
  }

  /** The change a kernel event makes to the mirror, if any. */
  #apply(event: ConntrackEvent): WatchEvent | undefined {
    if (event.type === "lost") return undefined;
    const table = this.#table;
    const k = flowKey(event.flow);
    const old = table.get(k);
    if (event.type === "destroy") {
      // Not there, or a newer life of the key than the one destroyed: stale.
      if (old === undefined) return undefined;
      if (old.id !== undefined && event.flow.id !== undefined && old.id !== event.flow.id) {
        return undefined;
      }
      table.delete(k);
      return { type: "destroy", flow: event.flow, synthetic: false, portId: event.portId };
    }
    // An update event carries the tuples, id and status, and only the
    // other attributes that changed (the kernel's ctnetlink_conntrack_event:
    // a mark set by a packet's rule comes without the TCP state): what it
    // leaves out is as the mirror had it.
    const flow = old === undefined || old.id !== event.flow.id
      ? event.flow
      : merged(old, event.flow);
    table.set(k, flow);
    const type = old === undefined ? "new" : "update";
    return { type, flow, synthetic: false, portId: event.portId };
  }

  async *#run(
    ct: Conntrack,
    options: WatchOptions,
  ): AsyncGenerator<WatchEvent, undefined, undefined> {
    if ("noEnobufs" in options && (options as EventOptions).noEnobufs === true) {
      throw new ArgumentError("noEnobufs", true, "a mirror cannot tell its losses without ENOBUFS");
    }
    const signal = options.signal === undefined
      ? this.#stop.signal
      : AbortSignal.any([options.signal, this.#stop.signal]);
    const events = ct.events({ ...options, signal, types: ["new", "update", "destroy"] });
    // The first next() subscribes before it waits: nothing that changes
    // after this line can fall between the dump below and the stream.
    let pending = events.next();
    pending.catch(() => {}); // awaited below; not unhandled while a dump runs
    try {
      yield* this.#reconcile(await this.#snapshot(ct, options.filter));
      yield this.#synced();
      for (;;) {
        const r = await pending;
        if (r.done) return undefined;
        pending = events.next();
        pending.catch(() => {});
        if (r.value.type !== "lost") {
          const change = this.#apply(r.value);
          if (change !== undefined) yield change;
          continue;
        }
        // "lost" comes once the backlog queued before the overrun is read:
        // what the kernel dropped is in the table now, so dump it.
        this.#losses++;
        this.#resyncs++;
        yield* this.#reconcile(await this.#snapshot(ct, options.filter));
        yield this.#synced();
      }
    } finally {
      await events.return(undefined);
    }
  }
}

/**
 * Mirrors the table (or the entries `filter` selects): subscribes to the
 * events first, then dumps, yields every dumped entry as a synthetic `new`
 * and a `synced`, then follows the events. After the kernel reports lost
 * events (`ENOBUFS`: the receive buffer overran), it dumps again and
 * yields the difference between its mirror and that dump as synthetic
 * `destroy`, `new` and `update` events, then `synced`.
 *
 * The guarantee: events and dumps are applied in the order the kernel
 * produced them, and every change after the subscription is either
 * delivered as an event or followed by a loss report; so once the stream
 * has caught up (the kernel has queued nothing more and no resync is under
 * way — e.g. after a `synced` with no change since, or when the stream is
 * idle), {@link TableWatch.table} holds exactly the kernel's entries (by
 * original tuple and zone, each with the kernel's id), with the fields that
 * events report as of the last change: status, protocol state, mark,
 * labels, helper, tuples and NAT. Timeouts and counters change in the
 * kernel without events: they are as of the last event or dump. Before it
 * has caught up the mirror may lag (never by more than what is queued). It
 * relies on the kernel reporting overruns, so `noEnobufs` is refused, and
 * on conntrack events being on (`net.netfilter.nf_conntrack_events`).
 *
 * @example Keep a mirror and report when it is in sync (needs root)
 * ```ts ignore
 * import { Conntrack, watch } from "@ctnl/conntrack";
 *
 * using ct = Conntrack.open({ netns: "blue" });
 * const mirror = watch(ct, { bufferSize: 1 << 20 });
 * for await (const e of mirror) {
 *   if (e.type === "synced") console.log(`${e.entries} entries, ${e.resyncs} resyncs`);
 * }
 * ```
 */
export function watch(ct: Conntrack, options: WatchOptions = {}): TableWatch {
  return new TableWatch(ct, options);
}
