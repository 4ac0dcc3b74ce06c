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
 * library's `watch()` keeps a mirror of the table that survives that: when
 * the kernel reports lost events it dumps the table again and yields what
 * appeared or vanished unseen; this script prints a warning on stderr and
 * those connections marked `(resync)`.
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
import { Conntrack, type Flow, PROTOCOL_NAMES, watch } from "../mod.ts";

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

// watch() subscribes, dumps (the connections already there: not printed),
// then follows the events; after a loss it dumps again and yields the
// difference as synthetic events.
const mirror = watch(ct, {
  ...(bufferSize === undefined ? {} : { bufferSize }),
  ...(signal === undefined ? {} : { signal }),
});
let shown = 0;
let started = false;
let reported = 0; // losses already reported on stderr
for await (const event of mirror) {
  if (mirror.losses > reported) {
    reported = mirror.losses;
    console.error(`watch: the kernel dropped events (overrun ${reported}); resynchronising`);
  }
  if (event.type === "synced") {
    if (!started) console.error(`watching ${event.entries} connections`);
    started = true;
    continue;
  }
  if (!started) continue; // the first dump: already there
  if (event.type === "update" && !values.update) continue;
  console.log(line(event.type.toUpperCase(), event.flow, event.synthetic ? " (resync)" : ""));
  shown++;
  if (maxEvents !== undefined && shown >= maxEvents) break;
}
