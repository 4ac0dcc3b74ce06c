/**
 * The transcoder writes what the checked decoder and formatFlow (and
 * flowToJson) make of the same bytes, byte for byte: on captured dumps
 * (traffic, the benchmark's mix, the formats capture), on thousands of
 * random mutations of them, on each attribute header changed on its own,
 * on numbers and addresses at the edges of their digit counts and on
 * oversized labels, in every text format (-o extended, id, ktimestamp,
 * labels) and in JSON, into a sink with exactly the room it asks for. It
 * takes exactly the entries the fast decoder takes (they share the
 * attribute walk of src/scan.ts), and the fast decoder's Flow is the
 * checked decoder's.
 */

import assert from "node:assert/strict";
import { decodeFlowCheckedAt } from "../../src/decode.ts";
import { decodeFlowFastAt } from "../../src/decode_fast.ts";
import { flowToJson, formatFlow, type FormatOptions } from "../../src/format.ts";
import type { Flow } from "../../src/types.ts";
import { AttrCursor } from "../../src/netlink.ts";
import { type ByteSink, FlowJsonWriter, FlowTextWriter } from "../../src/transcode.ts";
import * as S from "../../src/scan.ts";
import { captureEntries } from "../_capture.ts";
import { Rng } from "../_fuzz.ts";

const fixture = (name: string) => new URL(`../fixtures/${name}`, import.meta.url);
const CAPTURED = [
  ...captureEntries(fixture("dump.bin")),
  ...captureEntries(fixture("formats.bin")),
  ...captureEntries(new URL("../../bench/fixtures/dump_mix.bin", import.meta.url)),
];

/**
 * A sink (no output file) with exactly the room the transcoder asks for,
 * each time: a write past what it asked for is out of the buffer, and
 * throws. Then what it wrote.
 */
class Bytes implements ByteSink {
  buffer = new Uint8Array(0);
  used = 0;
  room(n: number): void {
    const exact = new Uint8Array(this.used + n);
    exact.set(this.buffer.subarray(0, this.used));
    this.buffer = exact;
  }
  take(): string {
    const text = new TextDecoder().decode(this.buffer.subarray(0, this.used));
    this.used = 0;
    return text;
  }
}

const LABELS = Array.from({ length: 128 }, (_, i) => (i % 3 === 0 ? undefined : `l${i}`));
const FORMATS: FormatOptions[] = [
  {},
  { extended: true, id: true },
  { ktimestamp: true, labelNames: LABELS },
  { extended: true, labelNames: [] },
];
const cursor = new AttrCursor();

/**
 * Checks one entry in every format against formatFlow (and flowToJson) of
 * the checked decoder's Flow — the decoder that does not share the walk of
 * src/scan.ts — and the fast decoder's Flow against it; whether the
 * transcoder took it. Throws what the checked decoder throws.
 */
function check(m: Uint8Array<ArrayBuffer>): boolean {
  const view = new DataView(m.buffer);
  const fast = decodeFlowFastAt(m, view, 0, m.byteLength);
  let checked: Flow | undefined;
  const reference = () => checked ??= decodeFlowCheckedAt(cursor, m, view, 0, m.byteLength);
  if (fast !== undefined) assert.deepEqual(fast, reference());
  let took = false;
  for (const options of FORMATS) {
    const format = { ...options, now: 1_700_000_000 };
    const sink = new Bytes();
    const wrote = new FlowTextWriter(sink, format).write(m, view, 0, m.byteLength);
    assert.equal(
      wrote,
      fast !== undefined,
      "the transcoder and the fast decoder take different entries",
    );
    if (!wrote) continue;
    took = true;
    assert.equal(sink.take(), formatFlow(reference(), format) + "\n");
  }
  const sink = new Bytes();
  if (new FlowJsonWriter(sink).write(m, view, 0, m.byteLength)) {
    const json = sink.take();
    assert.equal(json, flowToJson(reference()) + "\n");
    JSON.parse(json);
  }
  return took;
}

Deno.test("the transcoder writes formatFlow's text of captured entries, in every format", () => {
  let taken = 0;
  for (const m of CAPTURED) if (check(m)) taken++;
  assert.ok(taken >= CAPTURED.length * 0.9, `only ${taken} of ${CAPTURED.length} transcoded`);
});

Deno.test("on mutated entries the transcoder writes formatFlow's text or declines", () => {
  const rng = new Rng(0x7c0de);
  const next = () => rng.next();
  let taken = 0;
  for (let i = 0; i < 20_000; i++) {
    const m = CAPTURED[next() % CAPTURED.length]!.slice();
    // One to three bytes after the nlmsghdr, mostly attribute headers and values.
    for (let k = 1 + (next() % 3); k > 0; k--) {
      const at = 16 + (next() % (m.byteLength - 16));
      m[at] = next() % 4 === 0 ? m[at]! ^ (1 << (next() % 8)) : next() & 0xff;
    }
    try {
      if (check(m)) taken++;
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
      // The decoder refused it (a DecodeError): the transcoder must have declined too.
      assert.equal(decodeFlowFastAt(m, new DataView(m.buffer), 0, m.byteLength), undefined);
    }
  }
  assert.ok(taken > 5_000, `only ${taken} mutations transcoded`);
});

/** Every attribute header of the message `m` at every level: its offset. */
function headers(m: Uint8Array, view: DataView, pos: number, end: number, out: number[]): void {
  while (end - pos >= 4) {
    const len = view.getUint16(pos, true);
    if (len < 4 || len > end - pos) return;
    out.push(pos);
    if ((view.getUint16(pos + 2, true) & 0x8000) !== 0) headers(m, view, pos + 4, pos + len, out);
    pos += (len + 3) & ~3;
  }
}

/** check(), where the decoder may refuse the entry (then the transcoder must have declined). */
function checkOrRefused(m: Uint8Array<ArrayBuffer>): boolean {
  try {
    return check(m);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    assert.equal(decodeFlowFastAt(m, new DataView(m.buffer), 0, m.byteLength), undefined);
    return false;
  }
}

Deno.test("each attribute header changed on its own: the transcoder writes formatFlow's text or declines", () => {
  // The walk takes the kernel's usual layouts (a TCP/UDP tuple, TCP protoinfo,
  // synproxy) in one go and anything else attribute by attribute: a header
  // that differs in any way must give the same text either way.
  const shapes = new Set<string>();
  let changed = 0, taken = 0;
  for (const entry of CAPTURED) {
    const view = new DataView(entry.buffer);
    const at: number[] = [];
    headers(entry, view, 20, entry.byteLength, at);
    const shape = at.map((p) => view.getUint32(p, true)).join();
    if (shapes.has(shape)) continue;
    shapes.add(shape);
    for (const p of at) {
      const len = view.getUint16(p, true), type = view.getUint16(p + 2, true);
      for (
        const [newLen, newType] of [
          [len, type ^ 0x8000], // NLA_F_NESTED flipped
          [len, type | 0x4000], // NLA_F_NET_BYTEORDER set
          [len, type + 1],
          [len, type - 1],
          [len - 1, type],
          [len + 4, type],
          [len - 4, type],
        ]
      ) {
        if (newLen! < 0 || newType! < 0 || newType! > 0xffff) continue;
        const m = entry.slice();
        const v = new DataView(m.buffer);
        v.setUint16(p, newLen!, true);
        v.setUint16(p + 2, newType!, true);
        changed++;
        if (checkOrRefused(m)) taken++;
      }
    }
  }
  assert.ok(changed > 1000 && taken > changed / 10, `${taken} of ${changed} transcoded`);
});

/** The captured entry of each kind (family, protocol, with or without counters), and the offsets of its fields. */
function samples(): { m: Uint8Array<ArrayBuffer>; slots: Int32Array }[] {
  const kinds = new Map<string, { m: Uint8Array<ArrayBuffer>; slots: Int32Array }>();
  for (const m of CAPTURED) {
    const slots = new Int32Array(S.SLOTS);
    if (!S.scanEntry(m, new DataView(m.buffer), 0, m.byteLength, slots)) continue;
    const kind = [S.S_FAMILY, S.ORIG + S.T_PROTO, S.S_COUNTERS_ORIG, S.S_TIMESTAMP_START, S.S_ZONE]
      .map((i) =>
        i === S.S_FAMILY ? slots[i] : i === S.ORIG + S.T_PROTO ? m[slots[i]!] : slots[i]! >= 0
      )
      .join();
    if (!kinds.has(kind)) kinds.set(kind, { m, slots });
  }
  return [...kinds.values()];
}

Deno.test("numbers and addresses at the edges of their digit counts: the transcoder writes formatFlow's text", () => {
  const u16s = [0, 9, 10, 99, 100, 999, 1000, 9999, 10000, 65535];
  const u32s = [
    ...u16s,
    99999,
    100000,
    999999,
    1000000,
    9999999,
    10000000,
    99999999,
    100000000,
    999999999,
    1000000000,
    2147483647,
    2147483648,
    4294967295,
  ];
  const u64s = [
    ...u32s.map(BigInt),
    4294967296n,
    9999999999n,
    10000000000n,
    99999999999999n,
    2n ** 53n - 1n,
    2n ** 53n,
    2n ** 53n + 1n,
    10n ** 19n,
    2n ** 64n - 1n,
  ];
  const U32_SLOTS = [S.S_TIMEOUT, S.S_MARK, S.S_USE, S.S_ID, S.S_SECMARK];
  const U64_SLOTS = [
    S.S_COUNTERS_ORIG_PACKETS,
    S.S_COUNTERS_ORIG_BYTES,
    S.S_COUNTERS_REPLY_PACKETS,
    S.S_COUNTERS_REPLY_BYTES,
  ];
  const U16_SLOTS = [S.ORIG + S.T_SPORT, S.ORIG + S.T_DPORT, S.REPLY + S.T_ICMP_ID, S.S_ZONE];
  let checked = 0;
  for (const { m: entry, slots } of samples()) {
    const at = (slot: number) => slots[slot]!;
    const edit = (f: (v: DataView, m: Uint8Array) => void) => {
      const m = entry.slice();
      f(new DataView(m.buffer), m);
      assert.ok(check(m));
      checked++;
    };
    for (const slot of U32_SLOTS.filter((s) => at(s) >= 0)) {
      for (const n of u32s) edit((v) => v.setUint32(at(slot), n, false));
    }
    for (const slot of U64_SLOTS.filter((s) => at(s) >= 0)) {
      for (const n of u64s) edit((v) => v.setBigUint64(at(slot), n, false));
    }
    for (const slot of U16_SLOTS.filter((s) => at(s) >= 0)) {
      for (const n of u16s) edit((v) => v.setUint16(at(slot), n, false));
    }
    for (const slot of [S.ORIG + S.T_SRC, S.REPLY + S.T_DST].filter((s) => at(s) >= 0)) {
      const size = slots[slot + 1]!;
      for (let i = 0; i < size; i++) {
        for (const byte of [0, 1, 9, 10, 15, 16, 99, 100, 199, 200, 255]) {
          edit((_, m) => m[at(slot) + i] = byte);
        }
      }
      if (size === 16) {
        // Zero runs of every length at every place (the `::` and its ties).
        for (let first = 0; first < 8; first++) {
          for (let last = first; last < 8; last++) {
            edit((_, m) => m.fill(0, at(slot) + 2 * first, at(slot) + 2 * last + 2));
          }
        }
      }
    }
  }
  assert.ok(checked > 1000, `only ${checked} edits`);
});

Deno.test("labels far longer than the kernel's 16 bytes: the transcoder writes flowToJson's list, within the room it asked for", () => {
  const base = CAPTURED.find((m) => {
    const slots = new Int32Array(S.SLOTS);
    return S.scanEntry(m, new DataView(m.buffer), 0, m.byteLength, slots) &&
      slots[S.S_LABELS]! < 0;
  })!;
  for (const size of [16, 200, 4000, 65000]) {
    const attrs = [22, 23].map((type) => { // CTA_LABELS, CTA_LABELS_MASK, every bit set
      const a = new Uint8Array((4 + size + 3) & ~3).fill(0xff, 4, 4 + size);
      new DataView(a.buffer).setUint16(0, 4 + size, true);
      new DataView(a.buffer).setUint16(2, type, true);
      return a;
    });
    const m = new Uint8Array(base.byteLength + attrs[0]!.length + attrs[1]!.length);
    m.set(base);
    m.set(attrs[0]!, base.byteLength);
    m.set(attrs[1]!, base.byteLength + attrs[0]!.length);
    new DataView(m.buffer).setUint32(0, m.byteLength, true); // nlmsg_len
    assert.ok(check(m), `labels of ${size} bytes`);
  }
});
