/**
 * Unit tests of the codec: bytes captured from the real kernel
 * (tests/capture_fixtures.ts) beside what conntrack-tools printed for the same
 * table, and hand-made messages for every attribute kind and malformation.
 */

import assert from "node:assert/strict";
import {
  CT_STATUS,
  DecodeError,
  decodeFlow,
  decodeMessages,
  type Flow,
  formatCpuStats,
  labelBits,
} from "../../mod.ts";
import * as C from "../../src/constants.ts";
import { decodeCpuStatsAt, decodeGlobalStatsAt } from "../../src/stats.ts";
import {
  AttrCursor,
  Encoder,
  newHeader,
  NLA_F_NESTED,
  NLMSG_DONE,
  NLMSG_ERROR,
  readError,
  readHeader,
} from "../../src/netlink.ts";
import { formatIPv6, parseAddress } from "../../src/address.ts";
import { readCapture } from "../_capture.ts";
import { parseConntrackOutput } from "../_conntrack_text.ts";
import { flowAsText, mask } from "../_compare.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);

/** Every message of a capture, in order, with its type. */
function messages(file: string): { type: number; bytes: Uint8Array }[] {
  const out: { type: number; bytes: Uint8Array }[] = [];
  for (const d of readCapture(new URL(file, FIXTURES))) {
    for (const m of decodeMessages(d)) out.push({ type: m[4]! | (m[5]! << 8), bytes: m });
  }
  return out;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** ctime() in UTC (the fixtures were captured with TZ=UTC). */
function utcCtime(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${
    p(d.getUTCHours())
  }:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

Deno.test("a captured multi-datagram dump decodes to what conntrack -L printed", () => {
  const all = messages("dump.bin");
  assert(readCapture(new URL("dump.bin", FIXTURES)).length >= 2, "multi-part");
  assert.equal(all.at(-1)!.type, NLMSG_DONE);
  const flows = all.filter((m) => m.type === 0x100).map((m) => decodeFlow(m.bytes));
  const text = parseConntrackOutput(
    Deno.readTextFileSync(new URL("dump.conntrack.txt", FIXTURES)),
  );
  const byId = new Map(text.map((e) => [e.id, e]));
  assert.equal(flows.length, text.length);
  for (const flow of flows) {
    const expected = flowAsText(flow);
    if (flow.timestampStart !== undefined) {
      expected.start = utcCtime(Number(flow.timestampStart / 1_000_000_000n));
    }
    const actual = byId.get(flow.id);
    assert(actual, `conntrack printed entry ${flow.id}`);
    assert.deepStrictEqual(mask(expected, actual), expected);
  }
  // The capture has the interesting kinds.
  assert(flows.some((f) => f.seqAdjReply !== undefined && f.helper === "ftp"));
  assert(flows.some((f) => f.master !== undefined));
  assert(flows.some((f) => f.zone === 7));
  assert(flows.some((f) => f.family === "ipv6" && f.orig.icmpType === 128));
});

Deno.test("captured per-CPU stats format exactly as conntrack -S printed them", () => {
  const lines = Deno.readTextFileSync(new URL("stats.conntrack.txt", FIXTURES)).split("\n")
    .filter((l) => l !== "");
  const cursor = new AttrCursor();
  const stats = messages("stats.bin").filter((m) => m.type === 0x104).map((m) => {
    const view = new DataView(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
    const h = newHeader();
    readHeader(view, 0, m.bytes.length, h);
    return decodeCpuStatsAt(cursor, m.bytes, view, h);
  });
  assert.deepStrictEqual(stats.map(formatCpuStats), lines);
  assert.deepStrictEqual(stats.map((s) => s.cpu), lines.map((_, i) => i));
});

Deno.test("captured global stats give conntrack -C's count; the ACK follows", () => {
  const all = messages("count.bin");
  const m = all.find((x) => x.type === 0x105)!;
  const view = new DataView(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
  const h = newHeader();
  readHeader(view, 0, m.bytes.length, h);
  const g = decodeGlobalStatsAt(new AttrCursor(), m.bytes, view, h);
  const count = Number(Deno.readTextFileSync(new URL("count.conntrack.txt", FIXTURES)).trim());
  assert.equal(g.entries, count);
  assert(g.maxEntries! > 0);
  assert.equal(all.at(-1)!.type, NLMSG_ERROR);
});

function errorOf(file: string) {
  const m = messages(file)[0]!;
  assert.equal(m.type, NLMSG_ERROR);
  const view = new DataView(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
  const h = newHeader();
  readHeader(view, 0, m.bytes.length, h);
  return readError(m.bytes, view, h, new AttrCursor());
}

Deno.test("captured kernel refusals: ENOENT for a missing entry, EINVAL for a bad filter", () => {
  assert.equal(errorOf("enoent.bin").errno, 2);
  assert.equal(errorOf("einval.bin").errno, 22);
});

Deno.test("a captured dump of an empty table is just NLMSG_DONE", () => {
  const all = messages("empty.bin");
  assert.deepStrictEqual(all.map((m) => m.type), [NLMSG_DONE]);
});

// ---- hand-made messages ----------------------------------------------------

function entry(family: number, build: (e: Encoder) => void): Uint8Array {
  const e = new Encoder().begin(0x100, 2, 1, family);
  build(e);
  return e.finish().slice();
}

function tuple(
  e: Encoder,
  type: number,
  src: number[],
  dst: number[],
  proto: number,
  l4: (e: Encoder) => void,
) {
  const v6 = src.length === 16;
  e.nest(type).nest(C.CTA_TUPLE_IP)
    .bytes(v6 ? C.CTA_IP_V6_SRC : C.CTA_IP_V4_SRC, new Uint8Array(src))
    .bytes(v6 ? C.CTA_IP_V6_DST : C.CTA_IP_V4_DST, new Uint8Array(dst)).end()
    .nest(C.CTA_TUPLE_PROTO).u8(C.CTA_PROTO_NUM, proto);
  l4(e);
  e.end().end();
}

const ports = (s: number, d: number) => (e: Encoder) =>
  e.u16be(C.CTA_PROTO_SRC_PORT, s).u16be(C.CTA_PROTO_DST_PORT, d);

Deno.test("every attribute kind decodes (SCTP, DCCP, NAT, labels, secctx, synproxy, stop time)", () => {
  const full = entry(C.AF_INET, (e) => {
    tuple(e, C.CTA_TUPLE_ORIG, [1, 2, 3, 4], [5, 6, 7, 8], 132, ports(1000, 2000));
    tuple(e, C.CTA_TUPLE_REPLY, [5, 6, 7, 8], [1, 2, 3, 4], 132, ports(2000, 1000));
    e.nest(C.CTA_TUPLE_MASTER).nest(C.CTA_TUPLE_IP)
      .bytes(C.CTA_IP_V4_SRC, new Uint8Array([9, 9, 9, 9]))
      .bytes(C.CTA_IP_V4_DST, new Uint8Array([8, 8, 8, 8])).end()
      .nest(C.CTA_TUPLE_PROTO).u8(C.CTA_PROTO_NUM, 6).end()
      .u16be(C.CTA_TUPLE_ZONE, 3).end();
    e.u32be(C.CTA_STATUS, CT_STATUS.ASSURED | CT_STATUS.SEEN_REPLY | CT_STATUS.CONFIRMED);
    e.nest(C.CTA_PROTOINFO).nest(C.CTA_PROTOINFO_SCTP)
      .u8(C.CTA_PROTOINFO_SCTP_STATE, 4)
      .u32be(C.CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, 0xdeadbeef)
      .u32be(C.CTA_PROTOINFO_SCTP_VTAG_REPLY, 7).end().end();
    e.nest(C.CTA_HELP).bytes(C.CTA_HELP_NAME, new TextEncoder().encode("sip\0")).end();
    e.nest(C.CTA_NAT_SRC).bytes(C.CTA_NAT_V4_MINIP, new Uint8Array([10, 0, 0, 1]))
      .bytes(C.CTA_NAT_V4_MAXIP, new Uint8Array([10, 0, 0, 9]))
      .nest(C.CTA_NAT_PROTO).u16be(C.CTA_PROTONAT_PORT_MIN, 1024)
      .u16be(C.CTA_PROTONAT_PORT_MAX, 2048).end().end();
    e.nest(C.CTA_NAT_DST).bytes(C.CTA_NAT_V6_MINIP, new Uint8Array(16).fill(0).fill(1, 15)).end();
    e.u32be(C.CTA_TIMEOUT, 120).u32be(C.CTA_MARK, 0xffffffff);
    e.nest(C.CTA_COUNTERS_ORIG).bytes(C.CTA_COUNTERS_PACKETS, be64(2n ** 60n))
      .bytes(C.CTA_COUNTERS_BYTES, be64(2n ** 64n - 1n)).end();
    e.nest(C.CTA_COUNTERS_REPLY).u32be(C.CTA_COUNTERS32_PACKETS, 5)
      .u32be(C.CTA_COUNTERS32_BYTES, 500).end();
    e.u32be(C.CTA_USE, 1).u32be(C.CTA_ID, 0x80000001);
    e.nest(C.CTA_SEQ_ADJ_ORIG).u32be(C.CTA_SEQADJ_CORRECTION_POS, 1)
      .u32be(C.CTA_SEQADJ_OFFSET_BEFORE, 2).u32be(C.CTA_SEQADJ_OFFSET_AFTER, 3).end();
    e.u32be(C.CTA_SECMARK, 9);
    e.u16be(C.CTA_ZONE, 65535);
    e.nest(C.CTA_SECCTX).bytes(C.CTA_SECCTX_NAME, new TextEncoder().encode("system_u:object_r\0"))
      .end();
    e.nest(C.CTA_TIMESTAMP).bytes(C.CTA_TIMESTAMP_START, be64(1_000_000_000n))
      .bytes(C.CTA_TIMESTAMP_STOP, be64(3_000_000_000n)).end();
    const labels = new Uint8Array(16);
    labels[0] = 0b101;
    labels[15] = 0x80;
    e.bytes(C.CTA_LABELS, labels);
    e.nest(C.CTA_SYNPROXY).u32be(C.CTA_SYNPROXY_ISN, 1).u32be(C.CTA_SYNPROXY_ITS, 2)
      .u32be(C.CTA_SYNPROXY_TSOFF, 3).end();
    e.bytes(C.CTA_TIMESTAMP_EVENT, be64(42n));
    e.u32be(200, 1); // unknown to this version
  });
  const f = decodeFlow(full, { keepUnknown: true });
  assert.equal(f.family, "ipv4");
  assert.deepStrictEqual(f.sctp, {
    state: 4,
    stateName: "ESTABLISHED",
    vtagOrig: 0xdeadbeef,
    vtagReply: 7,
  });
  assert.equal(f.orig.srcPort, 1000);
  assert.equal(f.master?.src, "9.9.9.9");
  assert.equal(f.master?.zone, 3);
  assert.equal(f.helper, "sip");
  assert.deepStrictEqual(f.natSrc, {
    minIp: "10.0.0.1",
    maxIp: "10.0.0.9",
    minPort: 1024,
    maxPort: 2048,
  });
  assert.equal(f.natDst?.minIp, "::1");
  assert.equal(f.mark, 0xffffffff);
  assert.deepStrictEqual(f.countersOrig, { packets: 2n ** 60n, bytes: 2n ** 64n - 1n });
  assert.deepStrictEqual(f.countersReply, { packets: 5n, bytes: 500n });
  assert.equal(f.id, 0x80000001);
  assert.deepStrictEqual(f.seqAdjOrig, { correctionPos: 1, offsetBefore: 2, offsetAfter: 3 });
  assert.equal(f.secmark, 9);
  assert.equal(f.zone, 65535);
  assert.equal(f.secctx, "system_u:object_r");
  assert.equal(f.timestampStart, 1_000_000_000n);
  assert.equal(f.timestampStop, 3_000_000_000n);
  assert.deepStrictEqual(labelBits(f.labels!), [0, 2, 127]);
  assert.deepStrictEqual(f.synproxy, { isn: 1, its: 2, tsoff: 3 });
  assert.equal(f.timestampEvent, 42n);
  assert.deepStrictEqual(f.unknown, [{ type: 200, data: new Uint8Array([0, 0, 0, 1]) }]);
  // Without keepUnknown the unknown attribute is skipped, not an error.
  assert.equal(decodeFlow(full).unknown, undefined);
});

Deno.test("DCCP, TCP flags and ICMPv6 tuples decode", () => {
  const v6 = (last: number) => [...new Array(15).fill(0), last];
  const msg = entry(C.AF_INET6, (e) => {
    tuple(
      e,
      C.CTA_TUPLE_ORIG,
      v6(1),
      v6(2),
      58,
      (x) =>
        x.u16be(C.CTA_PROTO_ICMPV6_ID, 77).u8(C.CTA_PROTO_ICMPV6_TYPE, 128)
          .u8(C.CTA_PROTO_ICMPV6_CODE, 0),
    );
    e.nest(C.CTA_PROTOINFO).nest(C.CTA_PROTOINFO_DCCP).u8(C.CTA_PROTOINFO_DCCP_STATE, 4)
      .u8(C.CTA_PROTOINFO_DCCP_ROLE, 1).bytes(C.CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ, be64(99n))
      .end().nest(C.CTA_PROTOINFO_TCP).u8(C.CTA_PROTOINFO_TCP_STATE, 9)
      .u8(C.CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, 7)
      .bytes(C.CTA_PROTOINFO_TCP_FLAGS_REPLY, new Uint8Array([0x23, 0x01])).end().end();
  });
  const f = decodeFlow(msg);
  assert.equal(f.family, "ipv6");
  assert.deepStrictEqual(
    [f.orig.src, f.orig.dst, f.orig.icmpId, f.orig.icmpType, f.orig.icmpCode],
    ["::1", "::2", 77, 128, 0],
  );
  assert.deepStrictEqual(f.dccp, { state: 4, stateName: "OPEN", role: 1, handshakeSeq: 99n });
  assert.equal(f.tcp?.stateName, "SYN_SENT2");
  assert.deepStrictEqual(f.tcp?.flagsReply, { flags: 0x23, mask: 0x01 });
  // The reply tuple was absent: present as all-undefined, same shape.
  assert.deepStrictEqual(Object.keys(f.reply), Object.keys(f.orig));
  assert.equal(f.reply.src, undefined);
});

Deno.test("every flow has the same keys in the same order", () => {
  const a = decodeFlow(
    entry(C.AF_INET, (e) => tuple(e, 1, [1, 1, 1, 1], [2, 2, 2, 2], 17, ports(1, 2))),
  );
  const flows = messages("dump.bin").filter((m) => m.type === 0x100).map((m) =>
    decodeFlow(m.bytes)
  );
  for (const f of flows) assert.deepStrictEqual(Object.keys(f), Object.keys(a));
});

function be64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, false);
  return b;
}

function decodeError(bytes: Uint8Array): DecodeError {
  try {
    decodeFlow(bytes);
  } catch (e) {
    assert(e instanceof DecodeError, `want DecodeError, got ${e}`);
    return e;
  }
  assert.fail("no error");
}

Deno.test("malformed messages are DecodeErrors with the attribute path and offset", () => {
  // A scalar of the wrong size inside a nest.
  const short = entry(C.AF_INET, (e) => {
    e.nest(C.CTA_TUPLE_ORIG).nest(C.CTA_TUPLE_IP).bytes(C.CTA_IP_V4_SRC, new Uint8Array(3)).end()
      .end();
  });
  const e1 = decodeError(short);
  assert.equal(e1.path, "CTA_TUPLE_ORIG.CTA_TUPLE_IP.CTA_IP_V4_SRC");
  assert.match(
    e1.message,
    /^Cannot decode CTA_TUPLE_ORIG\.CTA_TUPLE_IP\.CTA_IP_V4_SRC: length 3 is too short, want 4/,
  );
  assert.equal(e1.offset, 28);

  // nla_len past the end of the message.
  const past = entry(C.AF_INET, (e) => e.u32be(C.CTA_MARK, 1));
  new DataView(past.buffer).setUint16(20, 200, true);
  assert.match(decodeError(past).message, /runs past the end/);

  // nla_len below the header size.
  for (const len of [0, 1, 2, 3]) {
    const tiny = entry(C.AF_INET, (e) => e.u32be(C.CTA_MARK, 1));
    new DataView(tiny.buffer).setUint16(20, len, true);
    assert.match(decodeError(tiny).message, /too short/);
  }

  // Trailing bytes too short for an attribute header.
  const trailing = new Uint8Array(22);
  trailing.set(entry(C.AF_INET, () => {}).subarray(0, 20));
  new DataView(trailing.buffer).setUint32(0, 22, true);
  assert.match(decodeError(trailing).message, /trailing bytes/);

  // A message header that promises more than there is.
  const header = entry(C.AF_INET, (e) => e.u32be(C.CTA_MARK, 1));
  new DataView(header.buffer).setUint32(0, 400, true);
  assert.equal(decodeError(header).path, "nlmsghdr");

  // Nesting deeper than any real message.
  const deep = new Encoder().begin(0x100, 2, 1, C.AF_INET);
  for (let i = 0; i < 40; i++) deep.nest(C.CTA_TUPLE_ORIG);
  for (let i = 0; i < 40; i++) deep.end();
  // (The decoder only descends into nests it knows, so this fails on the
  // first scalar it meets, never by recursion.)
  assert.match(decodeError(deep.finish().slice()).message, /Cannot decode CTA_TUPLE_ORIG\./);

  // An entry without its original tuple.
  assert.match(
    decodeError(entry(C.AF_INET, (e) => e.u32be(C.CTA_MARK, 1))).message,
    /CTA_TUPLE_ORIG/,
  );

  // A family conntrack never uses.
  assert.equal(decodeError(entry(7, (e) => e.u32be(C.CTA_MARK, 1))).path, "nfgenmsg");

  // The nested flag bit is masked off the type.
  const flagged = entry(C.AF_INET, (e) => tuple(e, 1, [1, 1, 1, 1], [2, 2, 2, 2], 6, ports(1, 2)));
  const view = new DataView(flagged.buffer);
  assert.equal(view.getUint16(22, true) & NLA_F_NESTED, NLA_F_NESTED);
  view.setUint16(22, C.CTA_TUPLE_ORIG, true); // without NLA_F_NESTED: same meaning
  assert.equal(decodeFlow(flagged).orig.dstPort, 2);
});

Deno.test("decodeMessages splits datagrams and rejects bad lengths", () => {
  const a = entry(C.AF_INET, (e) => e.u32be(C.CTA_MARK, 1));
  const two = new Uint8Array(a.length * 2);
  two.set(a);
  two.set(a, a.length);
  assert.deepStrictEqual([...decodeMessages(two)].map((m) => m.length), [a.length, a.length]);
  assert.throws(() => [...decodeMessages(two.subarray(0, a.length + 5))], DecodeError);
  const zero = new Uint8Array(16);
  assert.throws(() => [...decodeMessages(zero)], /message length 0 is too short/);
});

Deno.test("IPv6 text matches glibc inet_ntop", () => {
  const cases: [string, string][] = [
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["1:0:0:0:0:0:0:0", "1::"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"],
    ["0:0:0:0:0:ffff:102:304", "::ffff:1.2.3.4"],
    ["0:0:0:0:0:0:102:304", "::1.2.3.4"],
    ["fe80:0:0:0:abcd:0:0:0", "fe80::abcd:0:0:0"],
    ["FD50:0:0:0:0:0:0:2", "fd50::2"],
  ];
  for (const [full, want] of cases) {
    const bytes = parseAddress(full, "test").bytes;
    assert.equal(formatIPv6(bytes, 0), want, full);
    assert.deepStrictEqual(parseAddress(want, "test").bytes, bytes);
  }
  for (const bad of ["1.2.3", "1.2.3.256", "::g", "1:2:3:4:5:6:7:8:9", "1::2::3", "", "01.2.3.4"]) {
    assert.throws(() => parseAddress(bad, "tuple.src"), TypeError, bad);
  }
});

Deno.test("an ACK with extended-ack text yields the message", () => {
  // NLMSG_ERROR, flags CAPPED|ACK_TLVS, error -22, echoed header, NLMSGERR_ATTR_MSG.
  const text = new TextEncoder().encode("bad filter\0");
  const attrLen = 4 + text.length;
  const total = 16 + 4 + 16 + ((attrLen + 3) & ~3);
  const b = new Uint8Array(total);
  const v = new DataView(b.buffer);
  v.setUint32(0, total, true);
  v.setUint16(4, NLMSG_ERROR, true);
  v.setUint16(6, 0x100 | 0x200, true);
  v.setInt32(16, -22, true);
  v.setUint32(20, 16, true);
  v.setUint16(36, attrLen, true);
  v.setUint16(38, 1, true);
  b.set(text, 40);
  const h = newHeader();
  readHeader(v, 0, total, h);
  assert.deepStrictEqual(readError(b, v, h, new AttrCursor()), { errno: 22, extAck: "bad filter" });
});

Deno.test("status flag names", () => {
  const f: Pick<Flow, "status"> = { status: CT_STATUS.OFFLOAD | CT_STATUS.EXPECTED };
  assert.deepStrictEqual(C.statusFlags(f.status), ["EXPECTED", "OFFLOAD"]);
});
