/**
 * A dump filter's userspace part on the entries' bytes (`matchSlots`, what
 * `dumpMessages` and the CLI's listings use) gives the answer of the same
 * part on the decoded `Flow` (`match`), for every entry the attribute walk
 * takes: on the captured dumps and on mutations of them, with every part
 * forced into userspace.
 *
 * @module
 */

import assert from "node:assert/strict";
import { decodeFlowAt } from "../../src/decode.ts";
import { compileFilter, type DumpFilter, normalizeFilter } from "../../src/filter.ts";
import { AttrCursor } from "../../src/netlink.ts";
import { scanEntry, SLOTS } from "../../src/scan.ts";
import { captureEntries } from "../_capture.ts";
import { mutate, Rng } from "../_fuzz.ts";

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url);
const CAPTURED = [
  ...captureEntries(fixture("dump.bin")),
  ...captureEntries(fixture("formats.bin")),
  ...captureEntries(new URL("../../bench/fixtures/dump_mix.bin", import.meta.url)),
];

const FILTERS: DumpFilter[] = [
  { status: ["ASSURED"] },
  { status: { value: 0, mask: ["SEEN_REPLY"] } },
  { mark: 0 },
  { mark: { value: 0x10, mask: 0xf0 } },
  { zone: 0 },
  { entryZone: 0 },
  { origZone: 0 },
  { replyZone: 7 },
  { orig: { src: "10.0.0.0/8" } },
  { orig: { src: "10.1.0.0/16", protocol: "udp" } },
  { orig: { dst: "198.51.100.0/25", protocol: "tcp", dstPort: 443 } },
  { orig: { src: "fd00:10::/32" } },
  { orig: { dst: "2001:db8::443" } },
  { orig: { src: "10.50.0.1" } },
  { orig: { src: "10.50.0.0" } },
  { orig: { dst: "10.50.0.3" } },
  { orig: { src: "10.0.0.0", srcMask: "255.0.255.0" } },
  { reply: { src: "192.0.2.0/24", srcPort: 53 } },
  { reply: { dst: "fd50::/16" } },
  { orig: { protocol: "icmp", icmpType: 8 } },
  { orig: { protocol: "icmpv6", icmpType: 128, icmpCode: 0 } },
  { family: "ipv6", orig: { protocol: "tcp" }, status: ["ASSURED"] },
  { orig: { srcPort: 1024 }, reply: { dstPort: 1024 } },
];

const cursor = new AttrCursor();
const slots = new Int32Array(SLOTS);

/** How many entries the walk took, and how many of those the filter kept. */
function compare(entries: Uint8Array[], filter: DumpFilter): [number, number] {
  const compiled = compileFilter(normalizeFilter(filter), "6.18.0", true);
  const { match, matchSlots } = compiled;
  assert.ok(match !== undefined && matchSlots !== undefined, JSON.stringify(filter));
  let taken = 0, kept = 0;
  for (const m of entries) {
    const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
    if (!scanEntry(m, view, 0, m.byteLength, slots)) continue;
    const flow = decodeFlowAt(cursor, m, view, 0, m.byteLength); // taken by the walk: decodes
    const onBytes = matchSlots(m, view, slots);
    assert.equal(onBytes, match(flow), `${JSON.stringify(filter)} on entry ${flow.id}`);
    taken++;
    if (onBytes) kept++;
  }
  return [taken, kept];
}

Deno.test("a filter's userspace part on the bytes answers as on the decoded entry", () => {
  let selective = 0;
  for (const filter of FILTERS) {
    const [taken, kept] = compare(CAPTURED, filter);
    assert.ok(taken >= CAPTURED.length * 0.9, `${JSON.stringify(filter)}: walk took ${taken}`);
    if (kept > 0 && kept < taken) selective++;
  }
  assert.ok(selective >= FILTERS.length / 2, `only ${selective} filters select some, not all`);
});

Deno.test("on mutated entries too", () => {
  const rng = new Rng(0xf117);
  const mutated = Array.from(
    { length: 4_000 },
    () => mutate(CAPTURED[rng.below(CAPTURED.length)]!, rng),
  );
  for (const filter of FILTERS) compare(mutated, filter);
});

Deno.test("NAT and label parts have no bytes form: those dumps decode each entry", () => {
  for (const filter of [{ snat: true }, { labels: [1] }] as DumpFilter[]) {
    const compiled = compileFilter(normalizeFilter(filter), "6.18.0");
    assert.ok(compiled.match !== undefined);
    assert.equal(compiled.matchSlots, undefined);
  }
});
