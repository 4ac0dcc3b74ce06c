/**
 * Micro-benchmarks over bytes captured from the real kernel:
 * `deno task bench` (or `deno bench --allow-ffi --allow-read bench/`).
 *
 * - `bench/fixtures/dump_mix.bin` — 2000 entries of the whole-process
 *   benchmark's mix (UDP and TCP ESTABLISHED, IPv4 and IPv6) in the kernel's
 *   ~32 KiB datagrams (recapture: `deno run -A bench/capture_dump.ts`).
 * - `tests/fixtures/dump.bin` — a small capture of real traffic of many
 *   kinds, with counters, timestamps, NAT, helpers and zones.
 *
 * Each benchmark's name says how many flows and bytes one iteration handles,
 * so flows/s and MB/s follow from the time per iteration.
 *
 * @module
 */

import { decodeFlowAt, decodeFlowCheckedAt, decodeTupleOnlyAt } from "../src/decode.ts";
import {
  AttrCursor,
  newHeader,
  NLA_F_NESTED,
  NLMSG_DONE,
  NLMSG_ERROR,
  readHeader,
} from "../src/netlink.ts";
import { Encoder, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from "../src/netlink.ts";
import { encodeChanges } from "../src/request.ts";
import { encodeTuple, parseTuple } from "../src/tuple.ts";
import { compileFilter, normalizeFilter } from "../src/filter.ts";
import * as C from "../src/constants.ts";
import { type Flow, flowToJson, formatFlow } from "../mod.ts";

interface Datagram {
  bytes: Uint8Array;
  view: DataView;
}

/** Reads a capture: u32 LE length + datagram, repeated. */
function load(path: URL): { datagrams: Datagram[]; flows: number; bytes: number } {
  const file = Deno.readFileSync(path);
  const fv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const datagrams: Datagram[] = [];
  let flows = 0;
  const h = newHeader();
  for (let at = 0; at < file.byteLength;) {
    const len = fv.getUint32(at, true);
    // A copy in a buffer of its own, as the socket's receive buffer is.
    const bytes = file.slice(at + 4, at + 4 + len);
    const view = new DataView(bytes.buffer);
    for (let off = 0; off < len;) {
      off = readHeader(view, off, len, h);
      if (h.type !== NLMSG_DONE && h.type !== NLMSG_ERROR) flows++;
    }
    datagrams.push({ bytes, view });
    at += 4 + len;
  }
  return { datagrams, flows, bytes: file.byteLength };
}

const MIX = load(new URL("./fixtures/dump_mix.bin", import.meta.url));
const SMALL = load(new URL("../tests/fixtures/dump.bin", import.meta.url));

const cursor = new AttrCursor();
const header = newHeader();

/** Calls `each` for every entry message of `datagrams`. */
function forEachEntry(
  datagrams: Datagram[],
  each: (bytes: Uint8Array, view: DataView, offset: number, length: number) => void,
): void {
  for (const { bytes, view } of datagrams) {
    const end = bytes.byteLength;
    for (let off = 0; off < end;) {
      off = readHeader(view, off, end, header);
      const type = header.type;
      if (type === NLMSG_DONE || type === NLMSG_ERROR) continue;
      each(bytes, view, header.offset, header.length);
    }
  }
}

let sink = 0;

function decodeAll(datagrams: Datagram[]): void {
  forEachEntry(datagrams, (bytes, view, offset, length) => {
    const f = decodeFlowAt(cursor, bytes, view, offset, length);
    sink += f.status;
  });
}

function decodeAllTouched(datagrams: Datagram[]): void {
  forEachEntry(datagrams, (bytes, view, offset, length) => {
    const f = decodeFlowAt(cursor, bytes, view, offset, length);
    sink += f.orig.src!.length + f.reply.dst!.length + f.orig.srcPort! + f.status;
  });
}

function label(set: { flows: number; bytes: number }, what: string): string {
  return `${what} (${set.flows} flows, ${(set.bytes / 1000).toFixed(0)} kB)`;
}

for (const [name, set] of [["mix", MIX], ["small", SMALL]] as const) {
  const group = `decode ${name}`;
  Deno.bench({
    group,
    name: label(set, "walk message headers only"),
    fn() {
      forEachEntry(set.datagrams, (_b, _v, offset) => {
        sink += offset;
      });
    },
  });
  Deno.bench({
    group,
    name: label(set, "walk every attribute, decode nothing"),
    fn() {
      forEachEntry(set.datagrams, (bytes, view, offset, length) => {
        sink += walkAll(bytes, view, offset, length);
      });
    },
  });
  Deno.bench({
    group,
    name: label(set, "orig tuple only"),
    fn() {
      forEachEntry(set.datagrams, (bytes, view, offset, length) => {
        sink += decodeTupleOnlyAt(cursor, bytes, view, offset, length).srcPort ?? 0;
      });
    },
  });
  Deno.bench({
    group,
    name: label(set, "full decode"),
    baseline: true,
    fn() {
      decodeAll(set.datagrams);
    },
  });
  Deno.bench({
    group,
    name: label(set, "full decode, checked decoder only"),
    fn() {
      forEachEntry(set.datagrams, (bytes, view, offset, length) => {
        sink += decodeFlowCheckedAt(cursor, bytes, view, offset, length).status;
      });
    },
  });
  Deno.bench({
    group,
    name: label(set, "full decode, addresses and ports read"),
    fn() {
      decodeAllTouched(set.datagrams);
    },
  });
}

/** Visits every attribute of a message at every level, with the cursor; decodes nothing. */
function walkAll(bytes: Uint8Array, view: DataView, offset: number, length: number): number {
  cursor.reset(bytes, view, offset + 20, offset + length, C.SETS.ct);
  return walkLevel(0);
}

function walkLevel(depth: number): number {
  let n = 0;
  while (cursor.next()) {
    n++;
    if ((cursor.rawType & NLA_F_NESTED) !== 0 && depth < 4) {
      cursor.enter(C.SETS.ct);
      n += walkLevel(depth + 1);
      cursor.leave();
    }
  }
  return n;
}

const mixFlows: Flow[] = [];
forEachEntry(MIX.datagrams, (bytes, view, offset, length) => {
  mixFlows.push(decodeFlowAt(new AttrCursor(), bytes, view, offset, length));
});
const smallFlows: Flow[] = [];
forEachEntry(SMALL.datagrams, (bytes, view, offset, length) => {
  smallFlows.push(decodeFlowAt(new AttrCursor(), bytes, view, offset, length));
});

for (const [name, flows] of [["mix", mixFlows], ["small", smallFlows]] as const) {
  const group = `format ${name}`;
  const now = Math.floor(Date.now() / 1000);
  Deno.bench({
    group,
    name: `text, formatFlow (${flows.length} flows)`,
    baseline: true,
    fn() {
      for (const f of flows) sink += formatFlow(f, { now }).length;
    },
  });
  Deno.bench({
    group,
    name: `text -o extended,id (${flows.length} flows)`,
    fn() {
      for (const f of flows) sink += formatFlow(f, { now, extended: true, id: true }).length;
    },
  });
  Deno.bench({
    group,
    name: `JSON, flowToJson (${flows.length} flows)`,
    fn() {
      for (const f of flows) sink += flowToJson(f).length;
    },
  });
}

const encoder = new Encoder(512);
const FILTER = normalizeFilter({
  family: "ipv4",
  orig: { protocol: "tcp", dstPort: 443, src: "10.0.0.1" },
  status: ["ASSURED"],
  mark: { value: 42, mask: 0xff },
});
const CREATE = {
  orig: { src: "10.1.2.3", dst: "192.0.2.53", protocol: "udp", srcPort: 4000, dstPort: 53 },
  timeout: 3600,
  status: ["ASSURED", "SEEN_REPLY"],
  mark: 7,
} as const;

Deno.bench({
  group: "encode",
  name: "dump request with a filter (compile + encode)",
  fn() {
    const compiled = compileFilter(FILTER, "6.18.0");
    encoder.begin(
      (C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_GET,
      NLM_F_REQUEST | NLM_F_DUMP,
      1,
      2,
    );
    compiled.encode(encoder);
    sink += encoder.finish().byteLength;
  },
});
Deno.bench({
  group: "encode",
  name: "create request (parse tuple + encode)",
  baseline: true,
  fn() {
    const t = parseTuple(CREATE.orig);
    encoder.begin(
      (C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_NEW,
      NLM_F_REQUEST | NLM_F_ACK,
      1,
      2,
    );
    encodeTuple(encoder, C.CTA_TUPLE_ORIG, t, false);
    encodeChanges(encoder, CREATE, "flow", true);
    sink += encoder.finish().byteLength;
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
