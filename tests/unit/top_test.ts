/**
 * `ctnl top`'s arithmetic without a kernel: the bounded top-N against a full
 * sort, rates from counter deltas over several passes (new flows, gone
 * flows, reused ids, an interrupted pass), a pass with filter and grouping,
 * the layout at several widths, and the key parser.
 */

import assert from "node:assert/strict";
import { type Flow, newFlow } from "../../mod.ts";
import { CounterSamples, TopN } from "../../cli/top/rates.ts";
import { collect, GROUP_KEYS, groupKey, type PassOptions } from "../../cli/top/rows.ts";
import { renderLines, type View } from "../../cli/top/render.ts";
import { parseKeys } from "../../cli/top/terminal.ts";

/** A seeded generator (xorshift32), so a failure is reproducible. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

Deno.test("TopN keeps exactly the best `limit` of a full sort, for any order of arrival", () => {
  const next = random(42);
  const cases: [number, number][] = [[0, 5], [3, 5], [1000, 1], [1000, 10], [5000, 200], [
    100,
    100,
  ]];
  for (const [n, limit] of cases) {
    const values = Array.from({ length: n }, () => Math.floor(next() * 500)); // many ties
    const byValue = (a: number, b: number) => b - a;
    const top = new TopN<number>(limit, byValue);
    for (const v of values) top.push(v);
    assert.deepEqual(
      top.sorted(),
      [...values].sort(byValue).slice(0, limit),
      `n=${n} limit=${limit}`,
    );
    assert(top.size <= limit);
  }
  const none = new TopN<number>(0, (a, b) => a - b);
  none.push(1);
  assert.deepEqual(none.sorted(), []);
});

function flow(id: number, bytes: number, packets = 1, extra: Partial<Flow> = {}): Flow {
  const f = newFlow("ipv4");
  f.id = id;
  f.orig = {
    ...f.orig,
    src: "10.0.0.1",
    dst: `10.0.0.${id % 250}`,
    protocol: 6,
    srcPort: id,
    dstPort: 80,
  };
  f.countersOrig = { bytes: BigInt(bytes), packets: BigInt(packets) };
  f.countersReply = { bytes: 0n, packets: 0n };
  return Object.assign(f, extra);
}

Deno.test("CounterSamples: deltas over passes, new and gone flows, reused ids, an unfinished pass", () => {
  const s = new CounterSamples();
  const pass = (at: number, flows: [number, number, number][], finish = true) => {
    s.begin(at);
    const out = flows.map(([id, b, p]) => s.record(id, b, p) ? [s.bytes, s.packets] : undefined);
    if (finish) s.end();
    return out;
  };
  assert.deepEqual(pass(0, [[1, 100, 1], [2, 200, 2]]), [undefined, undefined]);
  assert.equal(s.seconds, undefined);
  assert.deepEqual(pass(2000, [[1, 300, 3], [3, 50, 1]]), [[200, 2], [50, 1]]);
  assert.equal(s.seconds, 2);
  assert.equal(s.size, 2, "flow 2 is gone and forgotten");
  // Flow 2 again: it is new (its old counters were swept), so all of it counts.
  // Flow 1 with smaller counters: the id was reused, all of it counts.
  assert.deepEqual(pass(3000, [[1, 10, 1], [2, 5, 1], [3, 50, 1]]), [[10, 1], [5, 1], [0, 0]]);
  // A pass stopped half-way: no sweep, and the next pass has no rates (its base is unknown).
  pass(4000, [[1, 20, 2]], false);
  assert.equal(s.size, 3);
  assert.deepEqual(pass(5000, [[1, 30, 3]]), [undefined]);
  assert.deepEqual(pass(6000, [[1, 40, 4]]), [[10, 1]]);
  assert.equal(s.size, 1);
  // Memory is reused: a table that churns through many ids keeps its size bounded.
  for (let i = 0; i < 50; i++) {
    pass(7000 + i, Array.from({ length: 1000 }, (_, j) => [i * 1000 + j, 1, 1]));
  }
  assert.equal(s.size, 1000);
});

const base: PassOptions = { limit: 3, sort: "rate", reverse: false };

Deno.test("collect: rates over two passes pick the busiest, with filter, --by and the counts", async () => {
  const samples = new CounterSamples();
  const t1 = Array.from({ length: 100 }, (_, i) => flow(i + 1, 1000 * (i + 1)));
  const first = await collect(t1, samples, base, 0);
  assert.equal(first.seconds, undefined);
  assert.deepEqual(first.rows.map((r) => r.bytesRate), [undefined, undefined, undefined]);
  assert.deepEqual(first.rows.map((r) => r.key), ["100", "99", "98"], "ties broken by bytes");
  // Flow 7 sends 1 MB in the next 2 s, flow 50 500 kB; the others nothing.
  const t2 = t1.map((f) =>
    f.id === 7 ? flow(7, 7000 + 1e6, 11) : f.id === 50 ? flow(50, 50_000 + 5e5, 6) : f
  );
  const second = await collect(t2, samples, base, 2000);
  assert.equal(second.seconds, 2);
  assert.deepEqual(second.rows.map((r) => [r.key, r.bytesRate, r.packetsRate]), [
    ["7", 5e5, 5],
    ["50", 2.5e5, 2.5],
    ["100", 0, 0],
  ]);
  assert.equal(second.rows[0]!.dst, "10.0.0.7:80");
  assert.deepEqual([second.total, second.matched, second.counted, second.stamped], [
    100,
    100,
    100,
    0,
  ]);
  assert.deepEqual([...second.protocols], [["tcp", 100]]);
  // A filter on the text: destination 10.0.0.5 and 10.0.0.5x.
  const filtered = await collect(t2, samples, { ...base, limit: 20, filter: "10.0.0.5" }, 3000);
  assert.deepEqual(filtered.rows.map((r) => r.key).sort(), [
    "5",
    "50",
    "51",
    "52",
    "53",
    "54",
    "55",
    "56",
    "57",
    "58",
    "59",
  ]);
  assert.equal(filtered.matched, 11);
  // --by dport,proto: one group, all the bytes; sorted by flows.
  const by = [groupKey("dport"), groupKey("proto")];
  const groups = await collect(t2, samples, { ...base, sort: "flows", by }, 4000);
  assert.equal(groups.rows.length, 1);
  const g = groups.rows[0]!;
  assert.deepEqual([g.group, g.flows, g.flow], [["80", "tcp"], 100, undefined]);
  assert.equal(g.bytes, t2.reduce((a, f) => a + Number(f.countersOrig!.bytes), 0));
  assert.equal(g.bytesRate, 0, "nothing moved since the last pass");
});

Deno.test("collect: without accounting, no rates and the header says so", async () => {
  const bare = Array.from(
    { length: 5 },
    (_, i) => ({ ...flow(i + 1, 0), countersOrig: undefined, countersReply: undefined }),
  );
  const samples = new CounterSamples();
  await collect(bare, samples, base, 0);
  const frame = await collect(bare, samples, base, 1000);
  assert.equal(frame.counted, 0);
  assert(frame.rows.every((r) => r.bytesRate === undefined && !r.accounted));
  const view: View = {
    frame,
    sort: "rate",
    reverse: false,
    filter: "",
    paused: false,
    interval: 2,
    by: [],
    selected: "1",
    prompt: undefined,
    message: undefined,
  };
  const lines = renderLines(view, 120, 30, { color: false, interactive: true });
  assert.match(
    lines[2]!,
    /^accounting off \(net\.netfilter\.nf_conntrack_acct=1 for rates\); timestamps off \(nf_conntrack_timestamp=1 for ages\)$/,
  );
  assert.match(lines[5]!, /^> tcp +10\.0\.0\.1:1 +10\.0\.0\.1:80 +- +- +- +- +-$/);
});

Deno.test("renderLines: every line fits, columns drop by priority, rows fit the height", async () => {
  const samples = new CounterSamples();
  const flows = Array.from({ length: 60 }, (_, i) =>
    flow(i + 1, i * 10_000, i, {
      timeout: 100 + i,
      timestampStart: BigInt(Date.now() - 65_000) * 1_000_000n,
      orig: {
        ...newFlow("ipv6").orig,
        src: `fd00:1234:5678::${i + 1}`,
        dst: "fd00::2",
        protocol: 17,
        srcPort: 40000 + i,
        dstPort: 53,
      },
    }));
  const frame = await collect(flows, samples, { ...base, limit: 100 });
  const view: View = {
    frame,
    sort: "rate",
    reverse: false,
    filter: "",
    paused: true,
    interval: 2,
    by: [],
    selected: undefined,
    prompt: "a question",
    message: undefined,
  };
  for (
    const [width, height, titles] of [
      [200, 50, /^ {2}PROTO +STATE +SOURCE +DESTINATION +BYTES\/Sv +PKTS\/S +BYTES +AGE +TIMEOUT$/],
      [100, 30, /^ {2}PROTO +STATE +SOURCE +DESTINATION +BYTES\/Sv +PKTS\/S +BYTES +TIMEOUT$/],
      [80, 24, /^ {2}PROTO +SOURCE +DESTINATION +BYTES\/Sv +BYTES +TIMEOUT$/],
      [40, 10, /^ {2}PROTO +SOURCE +DESTI… +BYTES\/Sv +BYTES$/],
    ] as const
  ) {
    const lines = renderLines(view, width, height, { color: false, interactive: true });
    assert.equal(lines.length, height, `${width}x${height}: the screen is full`);
    for (const l of lines) assert(l.length <= width, `"${l}" fits ${width}`);
    assert.match(lines[0]!, /^ctnl top - \d\d:\d\d:\d\d - PAUSED - /);
    assert.equal(lines[3], "a question");
    assert.match(lines[4]!, titles);
    if (width >= 200) {
      assert.match(
        lines[5]!,
        /^ {2}udp +\[fd00:1234:5678::60\]:40059 +\[fd00::2\]:53 .* 1m0[45]s +159$/,
      );
    }
  }
  // Color: SGR around the header and the headings; NO_COLOR (color false) never.
  const styled = renderLines(view, 120, 20, { color: true, interactive: true });
  assert(styled[0]!.startsWith("\x1b[1m") && styled[4]!.startsWith("\x1b[7m"));
  const plain = renderLines(view, 1000, Infinity, { color: false, interactive: false });
  assert(!plain.some((l) => l.includes("\x1b")));
  assert.equal(plain.length, 3 + 60, "on a pipe: no key line, no prompt, every row");
});

Deno.test("parseKeys: what a raw terminal sends, split into keys", () => {
  const keys = (s: string) => parseKeys(new TextEncoder().encode(s));
  assert.deepEqual(keys("sS r/"), ["s", "S", " ", "r", "/"]);
  assert.deepEqual(keys("\x1b[A\x1b[B\x1bOA\x1b[5~\x1b[6~\x1b[H\x1b[F"), [
    "up",
    "down",
    "up",
    "pageup",
    "pagedown",
    "home",
    "end",
  ]);
  assert.deepEqual(keys("\x1b"), ["escape"]);
  assert.deepEqual(keys("ab\x7f\r\x03\x0c\t"), [
    "a",
    "b",
    "backspace",
    "enter",
    "ctrl-c",
    "ctrl-l",
    "tab",
  ]);
  assert.deepEqual(keys("é"), ["é"]);
});

Deno.test("groupKey: every key of ctnl summary, prefixes of both families, and what it refuses", () => {
  const f = flow(9, 0, 0, { mark: 5, zone: 3, helper: "ftp", status: 0x8 | 0x2 });
  f.reply = { ...f.reply, src: "192.0.2.200", dst: "10.0.0.1", srcPort: 80, dstPort: 9 };
  const of = (k: string) => groupKey(k)(f);
  const expected: Record<string, string> = {
    proto: "tcp",
    family: "ipv4",
    state: "-",
    status: "SEEN_REPLY,CONFIRMED",
    helper: "ftp",
    src: "10.0.0.1",
    dst: "10.0.0.9",
    sport: "9",
    dport: "80",
    "reply-src": "192.0.2.200",
    "reply-dst": "10.0.0.1",
    "reply-sport": "80",
    "reply-dport": "9",
    zone: "3",
    mark: "5",
  };
  // Every key of ctnl summary (the library's SUMMARY_KEYS), and nothing else.
  assert.deepEqual([...GROUP_KEYS].sort(), Object.keys(expected).sort());
  for (const key of GROUP_KEYS) assert.equal(of(key), expected[key], key);
  assert.equal(of("reply-src/25"), "192.0.2.128/25");
  assert.equal(of("src/0"), "0.0.0.0/0");
  assert.equal(of("src/32"), "10.0.0.1/32");
  assert.equal(of("src/24/64"), "10.0.0.0/24");
  assert.equal(of("src/64"), "10.0.0.1/32", "one length: as long as IPv4 allows");
  const v6 = { ...f, orig: { ...f.orig, src: "2001:db8:abcd:12::1" } };
  assert.equal(groupKey("src/64")(v6), "2001:db8:abcd:12::/64");
  assert.equal(groupKey("src/24/36")(v6), "2001:db8:a000::/36");
  assert.equal(groupKey("src/128")(v6), "2001:db8:abcd:12::1/128");
  assert.throws(() => groupKey("colour"), /unknown key "colour"/);
  assert.throws(() => groupKey("src/200"), /prefix length 200/);
  assert.throws(() => groupKey("src/33/64"), /33 is too long for IPv4/);
});
