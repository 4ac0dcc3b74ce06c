/**
 * `ctnl events`: watch the table change, as `conntrack -E`.
 *
 * @module
 */

import type { EventOptions, Flow } from "../../mod.ts";
import { flowToJson, formatFlow } from "../../src/format.ts";
import { validateFilter } from "../../src/filter.ts";
import { formatSave } from "../save.ts";
import { formatXml, XML_FOOTER, XML_HEADER } from "../xml.ts";
import { ProgramNames } from "../userspace.ts";
import { checked } from "../errors.ts";
import { decimal, type EventType, parseEventMask } from "../values.ts";
import { dumpFilter } from "../filters.ts";
import { type OptionHelp, optionHelp } from "../options.ts";
import { EventWriter } from "../output.ts";
import { type CommandBody, type Context, stateMatcher } from "../context.ts";
import { DUMP_FILTER_OPTIONS, optionKeys } from "../help.ts";

const EVENTS: readonly OptionHelp[] = ["eventMask", "bufferSize"];
const OUTPUT: readonly OptionHelp[] = [
  {
    key: "output",
    help: "As conntrack -E -o: extended, id, ktimestamp, labels,\n" +
      'timestamp ("[SECONDS.MICROSECONDS]<TAB>" first, the time\n' +
      "it is printed; <when> with xml), save (-A/-U/-D lines),\n" +
      "xml, userspace (accepted: an event a program caused\n" +
      'always ends in " [USERSPACE] portid=N progname=NAME",\n' +
      "as with conntrack 1.4.7; progname needs --allow-all:\n" +
      "Deno opens /proc only with it)",
  },
  {
    key: "json",
    help: "One JSON object per event: the entry as dump --json\n" +
      'prints it plus "event":"new"|"update"|"destroy";\n' +
      '{"event":"lost","lost":N} when events were dropped',
  },
  "netns",
];

/** `[SEC.USEC]\t` of `-o timestamp`: the time the event is printed (conntrack 1.4.7's gettimeofday). */
function eventTime(): string {
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  const sec = String(Math.floor(micros / 1e6));
  const usec = String(micros % 1e6);
  // conntrack's printf("[%-.8ld.%-.6ld]\t"): the precision zero-pads.
  return `[${sec.padStart(8, "0")}.${usec.padStart(6, "0")}]\t`;
}

/** The path of the namespace `--netns` names (a name is one of `ip netns`'s). */
function netnsPath(netns: string | undefined): string | undefined {
  if (netns === undefined) return undefined;
  return netns.includes("/") ? netns : `/run/netns/${netns}`;
}

/**
 * The line of an event as conntrack -E prints it: `-o save`, `-o xml` (the
 * XML header before the first), or the default format with the
 * `-o timestamp` prefix; then, for an event a program caused, the
 * `[USERSPACE]` suffix.
 */
function eventLines(ctx: Context): {
  line(event: { type: EventType; flow: Flow; portId: number }): string;
  end(): string | undefined;
} {
  const outputs = ctx.outputs;
  const format = { ...ctx.format };
  const timestamp = outputs.has("timestamp");
  const names = new ProgramNames(netnsPath(ctx.parsed.values.get("netns")));
  let header = false;
  const text = (type: EventType, flow: Flow): string => {
    if (outputs.has("save")) return formatSave(flow, type);
    if (outputs.has("xml")) {
      const xml = formatXml(flow, {
        type,
        ktimestamp: format.ktimestamp,
        labelNames: format.labelNames,
        when: timestamp ? new Date() : undefined,
      });
      if (header) return xml;
      header = true;
      return `${XML_HEADER}\n${xml}`;
    }
    format.eventType = EVENT_PREFIX[type];
    return timestamp ? eventTime() + formatFlow(flow, format) : formatFlow(flow, format);
  };
  return {
    line: (event) => text(event.type, event.flow) + names.suffix(event.portId),
    end: () => (header ? XML_FOOTER : undefined),
  };
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
  const lines = eventLines(ctx);
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
        out.line(ctx.tagged(lines.line(event)));
      }
      shown++;
    }
    if (out.error !== undefined) throw out.error;
    const footer = lines.end();
    if (footer !== undefined) out.line(footer);
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
export const events: CommandBody = {
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
