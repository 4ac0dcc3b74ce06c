import {
  type EventOptions,
  type Flow,
  flowToJson,
  formatFlow,
  type FormatOptions,
  validateFilter,
} from "../../mod.ts";
import { argumentError } from "../errors.ts";
import { decimal, type EventType, parseEventMask } from "../values.ts";
import { dumpFilter } from "../filters.ts";
import { EventWriter, stderrLine } from "../output.ts";
import { type Context, open, stateMatcher, summary } from "../context.ts";

/** `[SEC.USEC]\t` of `-o timestamp`: the kernel's time of the event when it sent one, else now. */
export function eventTime(flow: Flow): string {
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

export const EVENT_PREFIX: Readonly<Record<EventType, string>> = {
  new: "[NEW]",
  update: "[UPDATE]",
  destroy: "[DESTROY]",
};

export async function runEvents(ctx: Context): Promise<number> {
  const filter = dumpFilter(ctx.filters);
  try {
    validateFilter(filter);
  } catch (error) {
    throw argumentError(error, "orig");
  }
  const options: EventOptions = { filter };
  const mask = ctx.parsed.values.get("eventMask");
  if (mask !== undefined) options.types = parseEventMask(mask);
  const size = ctx.parsed.values.get("bufferSize");
  if (size !== undefined) {
    options.bufferSize = decimal("bufferSize", size, 0x7fffffff, "size in bytes");
  }
  const keep = stateMatcher(ctx.filters.state);
  const timestamp = ctx.outputs.has("timestamp");
  const format: FormatOptions = { ...ctx.format };
  using ct = open(ctx);
  const stop = new AbortController();
  options.signal = stop.signal;
  const onSignal = () => stop.abort();
  const out = new EventWriter(onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let shown = 0;
  try {
    for await (const event of ct.events(options)) {
      if (event.type === "lost") {
        stderrLine(
          `ctnl: warning: We have hit ENOBUFS! We are losing events (${event.lost} overruns so far); the socket buffer is too small, see -b/--buffer-size`,
        );
        if (ctx.json) out.line(`{"event":"lost","lost":${event.lost}}`);
        continue;
      }
      const flow = event.flow;
      if (keep !== undefined && !keep(flow)) continue;
      if (ctx.json) {
        out.line(`{"event":"${event.type}",${flowToJson(flow).slice(1)}`);
      } else {
        format.eventType = EVENT_PREFIX[event.type];
        out.line(timestamp ? eventTime(flow) + formatFlow(flow, format) : formatFlow(flow, format));
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
  summary(shown, "flow events have been shown");
  return 0;
}
