/**
 * `ctnl events`: watch the table change, as `conntrack -E`.
 *
 * @module
 */

import { type EventOptions, type Flow, flowToJson, formatFlow, validateFilter } from "../../mod.ts";
import { checked } from "../errors.ts";
import { decimal, type EventType, parseEventMask } from "../values.ts";
import { dumpFilter } from "../filters.ts";
import { type OptionHelp, optionHelp } from "../options.ts";
import { EventWriter } from "../output.ts";
import { type Command, type Context, stateMatcher } from "../context.ts";
import { DUMP_FILTER_OPTIONS, optionKeys } from "../help.ts";

const EVENTS: readonly OptionHelp[] = ["eventMask", "bufferSize"];
const OUTPUT: readonly OptionHelp[] = [
  {
    key: "output",
    help: "As conntrack -E -o: extended, id, ktimestamp, labels,\n" +
      'timestamp ("[SECONDS.MICROSECONDS]<TAB>" first: the\n' +
      "kernel's time of the event)",
  },
  {
    key: "json",
    help: "One JSON object per event: the entry as dump --json\n" +
      'prints it plus "event":"new"|"update"|"destroy";\n' +
      '{"event":"lost","lost":N} when events were dropped',
  },
  "netns",
];

/** `[SEC.USEC]\t` of `-o timestamp`: the kernel's time of the event when it sent one, else now. */
function eventTime(flow: Flow): string {
  let sec: string, usec: string;
  const ns = flow.timestampEvent;
  if (ns !== undefined) {
    sec = String(ns / 1_000_000_000n);
    usec = String((ns % 1_000_000_000n) / 1000n);
  } else {
    const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    sec = String(Math.floor(micros / 1e6));
    usec = String(micros % 1e6);
  }
  // conntrack's printf("[%-.8ld.%-.6ld]\t"): the precision zero-pads.
  return `[${sec.padStart(8, "0")}.${usec.padStart(6, "0")}]\t`;
}

const EVENT_PREFIX: Readonly<Record<EventType, string>> = {
  new: "[NEW]",
  update: "[UPDATE]",
  destroy: "[DESTROY]",
};

async function run(ctx: Context): Promise<number> {
  const filter = dumpFilter(ctx.filters);
  checked(() => validateFilter(filter));
  const options: EventOptions = { filter };
  const mask = ctx.parsed.values.get("eventMask");
  if (mask !== undefined) options.types = parseEventMask(mask);
  const size = ctx.parsed.values.get("bufferSize");
  if (size !== undefined) {
    options.bufferSize = decimal("bufferSize", size, 0x7fffffff, "size in bytes");
  }
  const keep = stateMatcher(ctx.filters.state);
  const timestamp = ctx.outputs.has("timestamp");
  const format = { ...ctx.format };
  using ct = ctx.open();
  const stop = new AbortController();
  options.signal = stop.signal;
  const onSignal = () => stop.abort();
  const out = new EventWriter(ctx.io.stdout, onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let shown = 0;
  try {
    for await (const event of ctx.eventStream(ct, options)) {
      if (event.type === "lost") {
        ctx.stderrLine(
          `ctnl: warning: We have hit ENOBUFS! We are losing events (${event.lost} overruns so far); the socket buffer is too small, see -b/--buffer-size`,
        );
        if (ctx.json) out.line(`{"event":"lost","lost":${event.lost}}`);
        continue;
      }
      const flow = event.flow;
      if (keep !== undefined && !keep(flow)) continue;
      if (ctx.json) {
        out.line(ctx.tagged(`{"event":"${event.type}",${flowToJson(flow).slice(1)}`));
      } else {
        format.eventType = EVENT_PREFIX[event.type];
        const text = formatFlow(flow, format);
        out.line(ctx.tagged(timestamp ? eventTime(flow) + text : text));
      }
      shown++;
    }
    if (out.error !== undefined) throw out.error;
    out.flush();
  } finally {
    out.close();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  ctx.summary(shown, "flow events have been shown");
  return 0;
}

/** `ctnl events`, `ctnl -E`. */
export const events: Command = {
  name: "events",
  words: ["events"],
  flags: ["-E", "--event"],
  summary: "Watch entries being created, updated, destroyed (conntrack -E)",
  options: [...optionKeys(DUMP_FILTER_OPTIONS, EVENTS, OUTPUT), "allNetns", "resync"],
  help:
    `Usage: ctnl events [FILTERS] [-e EVENTS] [-b BYTES] [OUTPUT OPTIONS]   (also: ctnl -E, --event)

Prints entries as they are created, updated and destroyed, one line each as
conntrack -E prints them ("    [NEW] tcp      6 120 SYN_SENT src=…"), until
Ctrl-C or SIGTERM; then "N flow events have been shown." goes to stderr and
the exit status is 0. Each line is written as soon as the stream goes quiet,
so a program reading the output sees events as they happen.

When the kernel drops events because the socket buffer overran (ENOBUFS),
a one-line warning goes to stderr and the stream goes on; list the table
(ctnl dump) to resynchronise, or give a larger -b.

Filters (every given one must match; the same as dump's):
${optionHelp(DUMP_FILTER_OPTIONS)}

Events:
${optionHelp(EVENTS)}
${
      optionHelp(["resync", {
        key: "allNetns",
        help: "Every namespace's events, each line starting\nnetns=NAME (docs/exporter.md)",
      }])
    }

Output:
${optionHelp(OUTPUT)}

Examples:
  ctnl events
  ctnl events -e NEW,DESTROY -p tcp --dport 443
  ctnl events -e DESTROY -o timestamp,extended
  ctnl events --json -b 33554432 | jq -c 'select(.event == "destroy")'
  ctnl events --netns blue -s 10.0.0.1
`,
  run,
};
