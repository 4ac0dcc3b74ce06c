/**
 * Watch connections come and go, live: one line per new or destroyed
 * connection (with its byte counters when it ends), like `conntrack -E`
 * but shorter.
 *
 * ```sh
 * sudo deno run --allow-ffi examples/watch.ts [--netns NAME] [--count N] [--seconds S]
 *   [--update] [--buffer BYTES]
 * ```
 *
 * It stops after `--count` events or `--seconds` seconds (default: never;
 * Ctrl-C). `--update` also shows state changes. `--buffer` sets the event
 * socket's receive buffer (default 8 MiB).
 *
 * Events are datagrams the kernel drops when the reader falls behind. The
 * library reports that as a `lost` event; this script then prints a warning
 * on stderr and resynchronises: it dumps the table and prints the
 * connections that appeared or vanished unseen, marked `(resync)`.
 *
 * Output, one line each:
 *
 * ```text
 * 12:00:01.234 NEW     tcp  10.0.0.1:40000 -> 10.0.0.2:80
 * 12:00:03.456 DESTROY tcp  10.0.0.1:40000 -> 10.0.0.2:80 (packets 12, bytes 3400)
 * ```
 *
 * Before the first event it prints `watching N connections` on stderr, so a
 * script can wait for that line before making traffic.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Conntrack, type ConntrackEvent, type Flow, PROTOCOL_NAMES } from "../mod.ts";

const { values } = parseArgs({
  options: {
    netns: { type: "string" },
    count: { type: "string" },
    seconds: { type: "string" },
    update: { type: "boolean" },
    buffer: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(
    "Usage: watch.ts [--netns NAME] [--count N] [--seconds S] [--update] [--buffer BYTES]",
  );
  Deno.exit(0);
}

function positive(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`watch: --${name} must be a positive number, not "${text}"`);
    Deno.exit(2);
  }
  return n;
}
const maxEvents = positive("count", values.count);
const seconds = positive("seconds", values.seconds);
const bufferSize = positive("buffer", values.buffer);

function endpoint(address: string | undefined, port: number | undefined): string {
  const a = address ?? "?";
  if (port === undefined) return a;
  return a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`;
}

/** One key per connection: its original tuple and zone. */
function key(flow: Flow): string {
  const o = flow.orig;
  return [
    o.protocol,
    o.src,
    o.dst,
    o.srcPort ?? o.icmpId,
    o.dstPort ?? o.icmpType,
    flow.zone ?? 0,
  ].join(" ");
}

function line(type: string, flow: Flow, suffix = ""): string {
  const now = new Date();
  const time = now.toTimeString().slice(0, 8) + "." +
    String(now.getMilliseconds()).padStart(3, "0");
  const o = flow.orig;
  const proto = PROTOCOL_NAMES[o.protocol ?? -1] ?? String(o.protocol);
  let text = `${time} ${type.padEnd(7)} ${proto.padEnd(4)} ${endpoint(o.src, o.srcPort)} -> ${
    endpoint(o.dst, o.dstPort)
  }`;
  if (flow.zone !== undefined) text += ` zone ${flow.zone}`;
  const state = flow.tcp?.stateName;
  if (type === "UPDATE" && state !== undefined) text += ` ${state}`;
  if (type === "DESTROY" && flow.countersOrig !== undefined) {
    const packets = flow.countersOrig.packets + (flow.countersReply?.packets ?? 0n);
    const bytes = flow.countersOrig.bytes + (flow.countersReply?.bytes ?? 0n);
    text += ` (packets ${packets}, bytes ${bytes})`;
  }
  return text + suffix;
}

using ct = Conntrack.open(values.netns === undefined ? {} : { netns: values.netns });
const signal = seconds === undefined ? undefined : AbortSignal.timeout(seconds * 1000);

/** The connections we believe are in the table. */
const known = new Map<string, Flow>();
const snapshot = () => {
  const now = new Map<string, Flow>();
  for (const flow of ct.dumpSync(undefined, { onInterrupted: "ignore" })) now.set(key(flow), flow);
  return now;
};

const events = ct.events({
  types: values.update ? ["new", "update", "destroy"] : ["new", "destroy"],
  ...(bufferSize === undefined ? {} : { bufferSize }),
  ...(signal === undefined ? {} : { signal }),
})[Symbol.asyncIterator]();
// The first next() subscribes before it waits, so nothing falls between
// the snapshot below and the first event.
let pending: Promise<IteratorResult<ConntrackEvent>> = events.next();
for (const [k, flow] of snapshot()) known.set(k, flow);
console.error(`watching ${known.size} connections`);

/** Dumps the table and prints what changed unseen since `known` was right. */
function resync(): void {
  const now = snapshot();
  for (const [k, flow] of known) {
    if (!now.has(k)) {
      known.delete(k);
      console.log(line("DESTROY", flow, " (resync)"));
    }
  }
  for (const [k, flow] of now) {
    if (!known.has(k)) {
      known.set(k, flow);
      console.log(line("NEW", flow, " (resync)"));
    }
  }
}

/** Settles with undefined after the microtasks queued so far (a macrotask later). */
const soon = () => new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 0));

let shown = 0;
let mustResync = false;
try {
  for (;;) {
    let next: IteratorResult<ConntrackEvent>;
    if (mustResync) {
      // After an overrun the kernel drops every event until the socket's
      // queue is empty, so the dump must come after the backlog is read. The
      // stream yields queued events at once and sleeps when there are none:
      // if no event comes right away, the backlog is drained.
      const got = await Promise.race([pending, soon()]);
      if (got === undefined) {
        mustResync = false;
        resync();
        continue;
      }
      next = got;
    } else {
      next = await pending;
    }
    if (next.done) break;
    const event = next.value;
    if (event.type === "lost") {
      console.error(`watch: the kernel dropped events (overrun ${event.lost}); resynchronising`);
      mustResync = true;
    } else {
      const k = key(event.flow);
      // After a resync, a NEW event can come late for a flow the dump showed.
      const late = event.type === "new" && known.has(k);
      if (event.type === "destroy") known.delete(k);
      else known.set(k, event.flow);
      if (!late) {
        console.log(line(event.type.toUpperCase(), event.flow));
        shown++;
        if (maxEvents !== undefined && shown >= maxEvents) break;
      }
    }
    pending = events.next();
  }
} finally {
  await events.return?.();
}
