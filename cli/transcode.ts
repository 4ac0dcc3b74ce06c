/**
 * `ctnl dump` as text or `--json` without a `Flow` per entry: the entries' messages go
 * straight to src/transcode.ts's writer, into the output buffer; what it
 * does not take (NAT, helpers, …) is decoded and formatted as before.
 * `--state` of a TCP entry is read from the bytes too (the same walk).
 *
 * @module
 */

import type { Conntrack, DumpFilter, DumpOptions, Flow, FormatOptions } from "../mod.ts";
import { decodeFlowAt } from "../src/decode.ts";
import { flowToJson, formatFlow } from "../src/format.ts";
import { AttrCursor } from "../src/netlink.ts";
import { FlowJsonWriter, FlowTextWriter } from "../src/transcode.ts";
import { S_TCP, S_TCP_STATE, scanEntry, SLOTS } from "../src/scan.ts";
import { TCP_STATES } from "../src/protocols.ts";
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
 * The `--state` test on an entry's bytes: true or false when the attribute
 * walk can tell (a TCP state, or an entry with no state at all), else
 * `undefined` (the entry is decoded and matched as a `Flow`).
 */
function stateOnBytes(
  state: string,
): (bytes: Uint8Array, view: DataView, offset: number, length: number) => boolean | undefined {
  const tcp = TCP_STATES.indexOf(state as (typeof TCP_STATES)[number]);
  const slots = new Int32Array(SLOTS);
  return (bytes, view, offset, length) => {
    if (!scanEntry(bytes, view, offset, length, slots)) return undefined; // SCTP, DCCP, NAT, …
    if (slots[S_TCP]! < 0) return false; // no protocol state: --state selects none
    const at = slots[S_TCP_STATE]!;
    return at < 0 ? undefined : bytes[at] === tcp;
  };
}

/**
 * Dumps `filter`'s entries as text lines into `out`; how many. Async: the
 * kernel's datagrams are received ahead on Deno's blocking pool (no Worker).
 * With `keep` (`--state`'s `Flow` test, `state` its name), the entries are
 * tested on their bytes first.
 */
export function transcodeDump(
  ct: Conntrack,
  filter: DumpFilter,
  options: DumpOptions,
  out: LineWriter,
  format: FormatOptions,
  json: boolean,
  state?: { name: string; keep: (flow: Flow) => boolean },
): Promise<number> {
  const writer = json ? new FlowJsonWriter(out) : new FlowTextWriter(out, format);
  const text = json ? flowToJson : (flow: Flow) => formatFlow(flow, format);
  const cursor = new AttrCursor();
  const onBytes = state === undefined ? undefined : stateOnBytes(state.name);
  let n = 0, skipped = 0;
  return ct.dumpMessages(filter, options, (bytes, view, offset, length) => {
    if ((++n & 1023) === 0) format.now = Math.floor(Date.now() / 1000);
    let flow: Flow | undefined;
    if (onBytes !== undefined && state !== undefined) {
      const take = onBytes(bytes, view, offset, length);
      if (take === undefined) {
        flow = decodeFlowAt(cursor, bytes, view, offset, length);
        if (!state.keep(flow)) return void skipped++;
      } else if (!take) return void skipped++;
    }
    if (flow === undefined && writer.write(bytes, view, offset, length)) return;
    out.line(text(flow ?? decodeFlowAt(cursor, bytes, view, offset, length)));
  }).then((visited) => visited - skipped);
}
