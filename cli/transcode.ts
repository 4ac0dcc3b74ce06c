/**
 * `ctnl dump` as text or `--json` without a `Flow` per entry: the entries' messages go
 * straight to src/transcode.ts's writer, into the output buffer; what it
 * does not take (NAT, helpers, …) is decoded and formatted as before.
 *
 * @module
 */

import type { Conntrack, DumpFilter, DumpOptions, Flow, FormatOptions } from "../mod.ts";
import { decodeFlowAt } from "../src/decode.ts";
import { flowToJson, formatFlow } from "../src/format.ts";
import { AttrCursor } from "../src/netlink.ts";
import { FlowJsonWriter, FlowTextWriter } from "../src/transcode.ts";
import type { Context } from "./context.ts";
import type { LineWriter } from "./output.ts";
import { tableOf } from "./expect/table.ts";

/** Whether the listing is conntrack's text or `--json` (no -o save or -o xml) of the table. */
export function transcodes(ctx: Context): boolean {
  const table = tableOf(ctx.parsed.table);
  return !ctx.outputs.has("save") && !ctx.outputs.has("xml") && table !== "dying" &&
    table !== "unconfirmed";
}

/**
 * Dumps `filter`'s entries as text lines into `out`; how many. Async: the
 * kernel's datagrams are received ahead on Deno's blocking pool (no Worker).
 */
export function transcodeDump(
  ct: Conntrack,
  filter: DumpFilter,
  options: DumpOptions,
  out: LineWriter,
  format: FormatOptions,
  json: boolean,
): Promise<number> {
  const writer = json ? new FlowJsonWriter(out) : new FlowTextWriter(out, format);
  const text = json ? flowToJson : (flow: Flow) => formatFlow(flow, format);
  const cursor = new AttrCursor();
  let n = 0;
  return ct.dumpMessages(filter, options, (bytes, view, offset, length) => {
    if ((++n & 1023) === 0) format.now = Math.floor(Date.now() / 1000);
    if (writer.write(bytes, view, offset, length)) return;
    out.line(text(decodeFlowAt(cursor, bytes, view, offset, length)));
  });
}
