/**
 * Top talkers: the connections that moved the most bytes (original plus
 * reply direction), as an aligned table.
 *
 * Run it as root, from a checkout or straight from JSR (it is in the
 * package; JSR serves its files at https://jsr.io/@ctnl/conntrack/VERSION/):
 *
 * ```sh
 * deno run --allow-ffi examples/top_talkers.ts [--top N] [--netns NAME]
 * deno run --allow-ffi https://jsr.io/@ctnl/conntrack/0.1.0/examples/top_talkers.ts --top 5
 * ```
 *
 * Byte counters exist only while accounting is on
 * (`sysctl -w net.netfilter.nf_conntrack_acct=1`), and only for connections
 * that started after it was turned on; without them this says so and exits 1.
 *
 * It streams the table and keeps only the N biggest flows, so a table of a
 * million entries costs no more memory than N flows.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Conntrack, type Flow, PROTOCOL_NAMES, type Tuple } from "../mod.ts";

const { values } = parseArgs({
  options: {
    top: { type: "string", short: "n", default: "10" },
    netns: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log("Usage: top_talkers.ts [--top N] [--netns NAME]");
  Deno.exit(0);
}
const top = Number(values.top);
if (!Number.isInteger(top) || top < 1) {
  console.error(`top_talkers: --top must be a positive integer, not "${values.top}"`);
  Deno.exit(2);
}

interface Row {
  bytes: bigint;
  packets: bigint;
  flow: Flow;
}

/** `10.0.0.1:443`, `[fd00::1]:443`, or just the address for port-less protocols. */
function endpoint(address: string | undefined, port: number | undefined): string {
  const a = address ?? "?";
  if (port === undefined) return a;
  return a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`;
}

/** Where the reply really came from, when NAT rewrote the destination. */
function natNote(flow: Flow): string {
  const { orig, reply } = flow;
  if (reply.src !== orig.dst || reply.srcPort !== orig.dstPort) {
    return `(dnat to ${endpoint(reply.src, reply.srcPort)})`;
  }
  if (reply.dst !== orig.src || reply.dstPort !== orig.srcPort) {
    return `(snat to ${endpoint(reply.dst, reply.dstPort)})`;
  }
  return "";
}

function protocolName(t: Tuple): string {
  return PROTOCOL_NAMES[t.protocol ?? -1] ?? String(t.protocol);
}

using ct = Conntrack.open(values.netns === undefined ? {} : { netns: values.netns });

// The N biggest so far, biggest first.
const rows: Row[] = [];
let counted = 0;
let total = 0;
for await (const flow of ct.dump()) {
  total++;
  const o = flow.countersOrig;
  const r = flow.countersReply;
  if (o === undefined && r === undefined) continue;
  counted++;
  const bytes = (o?.bytes ?? 0n) + (r?.bytes ?? 0n);
  if (rows.length === top && bytes <= rows[top - 1]!.bytes) continue;
  const row = { bytes, packets: (o?.packets ?? 0n) + (r?.packets ?? 0n), flow };
  let i = rows.length;
  while (i > 0 && rows[i - 1]!.bytes < bytes) i--;
  rows.splice(i, 0, row);
  if (rows.length > top) rows.pop();
}

if (total > 0 && counted === 0) {
  console.error(
    "top_talkers: no byte counters; turn accounting on " +
      "(sysctl -w net.netfilter.nf_conntrack_acct=1) and wait for new connections",
  );
  Deno.exit(1);
}

const table = [["BYTES", "PACKETS", "PROTO", "SOURCE", "DESTINATION", "STATE", ""]];
for (const { bytes, packets, flow } of rows) {
  const o = flow.orig;
  table.push([
    String(bytes),
    String(packets),
    protocolName(o),
    endpoint(o.src, o.srcPort),
    endpoint(o.dst, o.dstPort),
    flow.tcp?.stateName ?? flow.sctp?.stateName ?? flow.dccp?.stateName ?? "-",
    natNote(flow),
  ]);
}
const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
const numeric = new Set([0, 1]);
for (const row of table) {
  const cells = row.map((cell, c) =>
    numeric.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)
  );
  console.log(cells.join("  ").trimEnd());
}
