/**
 * The event socket filter (src/bpf.ts) run in a classic BPF interpreter
 * written for this test (with the kernel's `SKF_AD_NLATTR` and
 * `SKF_AD_NLATTR_NEST` as net/core/filter.c implements them) over datagrams
 * captured from the real kernel and mutations of them: the kernel-side
 * verdict never drops a message the userspace filter keeps, and on the
 * kernel's own messages it is exactly the userspace verdict.
 */

import assert from "node:assert/strict";
import { readCapture } from "../_capture.ts";
import { mutate, Rng } from "../_fuzz.ts";
import { compileSocketFilter, planEventFilter } from "../../src/bpf.ts";
import { compileFilter, type DumpFilter, normalizeFilter } from "../../src/filter.ts";
import { decodeFlowAt } from "../../src/decode.ts";
import { AttrCursor } from "../../src/netlink.ts";
import type { Flow } from "../../src/types.ts";
import { openWithSockets } from "../../src/conntrack.ts";
import type { SocketFactory } from "../../src/sockets.ts";
import { FakeKernel } from "../_fake_kernel.ts";

// ---- a classic BPF interpreter (linux/filter.h semantics) ----

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The kernel's nla_find over `bytes[at, at + len)`: the offset of the first attribute of `type`, or 0. */
function nlaFind(bytes: Uint8Array, at: number, len: number, type: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let rem = len;
  while (rem >= 4) {
    const nlaLen = view.getUint16(at, true);
    if (nlaLen < 4 || nlaLen > rem) return 0;
    if ((view.getUint16(at + 2, true) & 0x3fff) === type) return at;
    const total = (nlaLen + 3) & ~3;
    at += total;
    rem -= total;
  }
  return 0;
}

/** Runs `program` over `pkt` as the kernel would; returns the verdict (0: drop). */
export function runBpf(program: Uint8Array, pkt: Uint8Array): number {
  const code = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const view = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength);
  const mem = new Uint32Array(16);
  let a = 0, x = 0;
  const n = program.length / 8;
  for (let pc = 0, steps = 0; pc < n; pc++, steps++) {
    if (steps > 10_000) throw new Error("runaway program");
    const op = code.getUint16(pc * 8, LITTLE);
    const jt = code.getUint8(pc * 8 + 2), jf = code.getUint8(pc * 8 + 3);
    const k = code.getUint32(pc * 8 + 4, LITTLE);
    const cls = op & 0x07;
    const load = (off: number, size: number): number | undefined => {
      if (off < 0 || off + size > pkt.length) return undefined;
      return size === 4 ? view.getUint32(off) : size === 2 ? view.getUint16(off) : pkt[off]!;
    };
    const sizeOf = (op & 0x18) === 0x00 ? 4 : (op & 0x18) === 0x08 ? 2 : 1;
    switch (cls) {
      case 0x00: { // LD
        const mode = op & 0xe0;
        if (mode === 0x00) a = k;
        else if (mode === 0x60) a = mem[k]!;
        else if (mode === 0x80) a = pkt.length;
        else if (mode === 0x20 && k >= 0xfffff000) {
          // Ancillary: SKF_AD_NLATTR / SKF_AD_NLATTR_NEST.
          const ad = k - 0xfffff000;
          if (pkt.length < 4 || a > pkt.length - 4) a = 0;
          else if (ad === 12) a = nlaFind(pkt, a, pkt.length - a, x);
          else if (ad === 16) {
            const nlaLen = view.getUint16(a, true);
            if (nlaLen < 4 || nlaLen > pkt.length - a) a = 0;
            else a = nlaFind(pkt, a + 4, nlaLen - 4, x);
          } else throw new Error(`ancillary ${ad} not interpreted`);
        } else {
          const v = load(mode === 0x20 ? k : (x + k) >>> 0, sizeOf);
          if (v === undefined) return 0; // out of bounds: the kernel drops
          a = v;
        }
        break;
      }
      case 0x01: // LDX
        if ((op & 0xe0) === 0x00) x = k;
        else if ((op & 0xe0) === 0x60) x = mem[k]!;
        else if ((op & 0xe0) === 0x80) x = pkt.length;
        else throw new Error(`ldx mode ${op}`);
        break;
      case 0x02:
        mem[k] = a;
        break;
      case 0x03:
        mem[k] = x;
        break;
      case 0x04: { // ALU
        const v = (op & 0x08) ? x : k;
        switch (op & 0xf0) {
          case 0x00:
            a = (a + v) >>> 0;
            break;
          case 0x10:
            a = (a - v) >>> 0;
            break;
          case 0x40:
            a = (a | v) >>> 0;
            break;
          case 0x50:
            a = (a & v) >>> 0;
            break;
          case 0x60:
            a = (a << v) >>> 0;
            break;
          case 0x70:
            a = a >>> v;
            break;
          default:
            throw new Error(`alu ${op}`);
        }
        break;
      }
      case 0x05: { // JMP
        const v = (op & 0x08) ? x : k;
        const j = op & 0xf0;
        if (j === 0x00) {
          pc += k;
          break;
        }
        const c = j === 0x10 ? a === v : j === 0x20 ? a > v : j === 0x30 ? a >= v : (a & v) !== 0;
        if (j > 0x40) throw new Error(`jmp ${op}`);
        pc += c ? jt : jf;
        break;
      }
      case 0x06:
        return (op & 0x18) === 0x10 ? a : k;
      case 0x07:
        if ((op & 0xf8) === 0x00) x = a;
        else a = x;
        break;
    }
  }
  throw new Error("program ran off its end");
}

/**
 * The kernel's checks of a classic program (bpf_check_classic and
 * check_load_and_stores in net/core/filter.c): jumps in range, scratch
 * slots 0-15, shifts below 32, a ret last, and no slot loaded that might
 * not have been stored (the state carries across a ret, as there).
 */
export function checkClassic(program: Uint8Array): void {
  const code = new DataView(program.buffer, program.byteOffset, program.byteLength);
  const n = program.length / 8;
  assert(n > 0 && n <= 4096, `length ${n}`);
  const masks = new Array<number>(n).fill(0xffff);
  let valid = 0;
  for (let pc = 0; pc < n; pc++) {
    const op = code.getUint16(pc * 8, LITTLE);
    const jt = program[pc * 8 + 2]!, jf = program[pc * 8 + 3]!;
    const k = code.getUint32(pc * 8 + 4, LITTLE);
    valid &= masks[pc]!;
    if (op === 0x02 || op === 0x03) {
      assert(k < 16);
      valid |= 1 << k;
    } else if (op === 0x60 || op === 0x61) {
      assert(k < 16);
      assert(valid & (1 << k), `instruction ${pc} loads M[${k}] maybe never stored`);
    } else if ((op & 0x07) === 0x05) {
      if ((op & 0xf0) === 0x00) {
        assert(pc + 1 + k < n);
        masks[pc + 1 + k]! &= valid;
      } else {
        assert(pc + 1 + jt < n && pc + 1 + jf < n, `jump out of range at ${pc}`);
        masks[pc + 1 + jt]! &= valid;
        masks[pc + 1 + jf]! &= valid;
      }
      valid = 0xffff;
    } else if (op === 0x64 || op === 0x74) assert(k < 32);
  }
  assert.equal(code.getUint16((n - 1) * 8, LITTLE) & 0x07, 0x06, "the last instruction is a ret");
}

// ---- the corpus: single-message datagrams captured from the real kernel ----

const FIXTURES = new URL("../fixtures/", import.meta.url);

/** Splits captured datagrams into one datagram per message, as events arrive. */
function messages(file: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const d of readCapture(new URL(file, FIXTURES))) {
    const view = new DataView(d.buffer);
    for (let off = 0; off + 16 <= d.length;) {
      const len = view.getUint32(off, true);
      if (len < 16) break;
      // Entries only (IPCTNL_MSG_CT_NEW of ctnetlink), not the NLMSG_DONE.
      if (view.getUint16(off + 4, true) === 0x0100) out.push(d.slice(off, off + len));
      off += (len + 3) & ~3;
    }
  }
  return out;
}

function exists(file: string): boolean {
  try {
    Deno.statSync(new URL(file, FIXTURES));
    return true;
  } catch {
    return false;
  }
}

const events = exists("ct_events.bin") ? messages("ct_events.bin") : [];
const dumped = ["dump.bin", "formats.bin", "dying.bin"].flatMap(messages);
/** Dumped entries as the event messages they would be: NEW (create) and DELETE. */
const asEvents = dumped.flatMap((m) => {
  const create = m.slice();
  new DataView(create.buffer).setUint16(6, 0x0600, true); // NLM_F_CREATE | NLM_F_EXCL
  const destroy = m.slice();
  destroy[4] = 2; // IPCTNL_MSG_CT_DELETE
  return [m, create, destroy];
});
const others = [
  "count.bin",
  "stats.bin",
  "einval.bin",
  "enoent.bin",
  "empty.bin",
  "expect_events.bin",
]
  .flatMap((f) => readCapture(new URL(f, FIXTURES)));
const corpus = [...events, ...asEvents];

const cursor = new AttrCursor();

/** What the userspace filter of the event stream decides (undefined: the message does not decode). */
const userFilters = new Map<DumpFilter, ReturnType<typeof compileFilter>>();
function userspace(filter: DumpFilter, m: Uint8Array): boolean | undefined {
  let compiled = userFilters.get(filter);
  if (compiled === undefined) {
    compiled = compileFilter(normalizeFilter(filter), "6.18", true);
    userFilters.set(filter, compiled);
  }
  let flow: Flow;
  try {
    flow = decodeFlowAt(cursor, m, new DataView(m.buffer, m.byteOffset, m.byteLength), 0, m.length);
  } catch {
    return undefined;
  }
  if (compiled.plan.family !== "all" && flow.family !== compiled.plan.family) return false;
  return compiled.match === undefined || compiled.match(flow);
}

function decoded(m: Uint8Array): Flow {
  return decodeFlowAt(cursor, m, new DataView(m.buffer, m.byteOffset, m.byteLength), 0, m.length);
}

/** Filters built from the corpus's own flows (so that some match and most do not). */
function filtersFor(flows: Flow[]): DumpFilter[] {
  const out: DumpFilter[] = [
    { family: "ipv4" },
    { family: "ipv6" },
    { mark: 42 },
    { mark: 0 },
    { mark: { value: 0x2, mask: 0x2 } },
    { mark: { value: 0, mask: 0xf0 } },
    { zone: 7 },
    { zone: 0 },
    { entryZone: 7 },
    { entryZone: 0 },
    { origZone: 7 },
    { origZone: 0 },
    { replyZone: 7 },
    { replyZone: 0 },
    { status: ["ASSURED"] },
    { status: { value: 0, mask: ["ASSURED"] } },
    { orig: { protocol: "tcp" } },
    { orig: { protocol: "udp", dstPort: 5555 } },
    { orig: { dstPort: 53 } },
    { orig: { protocol: "icmp", icmpType: 8 } },
    { orig: { icmpType: 128 } },
    { reply: { icmpType: 0, icmpCode: 0 } },
    { orig: { src: "10.50.0.0/24" } },
    { orig: { src: "10.0.0.0/8", dst: "10.50.0.2" } },
    { orig: { src: "fd50::/64" } },
    { reply: { src: "fd50::2" } },
    { orig: { src: "0.0.0.0/0" } },
    { orig: { src: "::/0" } },
    { orig: { dst: "10.50.0.0", dstMask: "255.255.0.255" } },
    { family: "ipv4", labels: [1] },
    { snat: true, orig: { protocol: "tcp" } },
  ];
  for (const f of flows) {
    const o = f.orig, r = f.reply;
    out.push({ orig: { src: o.src!, dst: o.dst! } });
    out.push({ reply: { src: r.src!, protocol: r.protocol! } });
    if (o.srcPort !== undefined) {
      out.push({ orig: { protocol: o.protocol!, srcPort: o.srcPort, dstPort: o.dstPort! } });
      out.push({ reply: { dstPort: r.dstPort!, srcPort: r.srcPort! } });
    }
    if (o.icmpId !== undefined) out.push({ orig: { icmpId: o.icmpId, icmpType: o.icmpType! } });
    if (f.mark !== undefined) out.push({ mark: f.mark, orig: { dst: o.dst! } });
    if (f.zone !== undefined) out.push({ zone: f.zone, orig: { protocol: o.protocol! } });
    out.push({ status: { value: f.status, mask: 0xffffffff } });
    const prefix = o.src!.includes(":") ? `${o.src}/120` : `${o.src}/30`;
    out.push({ orig: { src: prefix }, mark: f.mark ?? 0, zone: f.zone ?? 0 });
  }
  return out;
}

const filters = filtersFor([...events, ...dumped].filter((_, i) => i % 4 === 0).map(decoded));
const programs = filters.map((f) => ({ f, s: compileSocketFilter(normalizeFilter(f)) }));

Deno.test("the corpus: kernel event and dump messages, several families and protocols", () => {
  assert(dumped.length >= 30, `dumped messages: ${dumped.length}`);
  const flows = corpus.map(decoded);
  assert(flows.some((f) => f.family === "ipv6") && flows.some((f) => f.mark === 42));
  assert(flows.some((f) => f.zone === 7 || f.orig.zone === 7));
  assert(programs.every((p) => p.s.program !== undefined || p.s.plan.kernel.length === 0));
  assert(events.length >= 200, `event messages captured: ${events.length}`);
});

Deno.test("every compiled program passes the kernel's checks of a classic program", () => {
  for (const { s } of programs) if (s.program !== undefined) checkClassic(s.program);
});

Deno.test("on the kernel's messages, the socket filter's verdict is the userspace verdict", () => {
  let kept = 0, dropped = 0;
  for (const { f, s } of programs) {
    if (s.program === undefined) continue;
    for (const m of corpus) {
      const user = userspace(f, m);
      const kernel = runBpf(s.program, m) !== 0;
      // The NAT and label parts run in userspace only: the kernel may keep more.
      const exact = s.plan.userspace.length === 0;
      if (user) assert(kernel, `dropped a kept message: ${JSON.stringify(f)}`);
      else if (exact) assert(!kernel, `kept a rejected message: ${JSON.stringify(f)}`);
      if (kernel) kept++;
      else dropped++;
    }
  }
  assert(kept > 500 && dropped > 2 * kept, `kept ${kept}, dropped ${dropped}`);
});

Deno.test("what is not a conntrack event message passes the socket filter", () => {
  const { program } = compileSocketFilter(normalizeFilter({ orig: { src: "192.0.2.1" } }));
  assert(program !== undefined);
  for (const d of others) assert.notEqual(runBpf(program, d), 0);
  // Two messages in one datagram, a message cut short, one without its original tuple.
  const two = new Uint8Array(corpus[0]!.length * 2);
  two.set(corpus[0]!);
  two.set(corpus[0]!, corpus[0]!.length);
  assert.notEqual(runBpf(program, two), 0);
  assert.notEqual(runBpf(program, corpus[0]!.subarray(0, 18)), 0);
  const headerOnly = corpus[0]!.slice(0, 20);
  new DataView(headerOnly.buffer).setUint32(0, 20, true);
  assert.notEqual(runBpf(program, headerOnly), 0);
  // But the message itself is dropped.
  assert.equal(runBpf(program, corpus[0]!), 0);
});

Deno.test("on mutated messages, the socket filter never drops what the userspace filter keeps", () => {
  const rng = new Rng(0xb9f);
  let checked = 0, keptByUser = 0;
  for (let i = 0; i < 40_000; i++) {
    const m = mutate(corpus[rng.below(corpus.length)]!, rng);
    const { f, s } = programs[rng.below(programs.length)]!;
    if (s.program === undefined) continue;
    const user = userspace(f, m);
    if (user === undefined) continue;
    // A repeated attribute: the kernel's nla_find sees the first, the decoder keeps
    // the last; the kernel never sends one (see docs/bpf.md).
    if (hasRepeats(m)) continue;
    checked++;
    if (user) {
      keptByUser++;
      assert.notEqual(runBpf(s.program, m), 0, `dropped a kept mutation: ${JSON.stringify(f)}`);
    }
  }
  assert(checked > 10_000 && keptByUser > 200, `checked ${checked}, kept ${keptByUser}`);
});

/** True when some nest of the message (or its top level) holds one attribute type twice. */
function hasRepeats(m: Uint8Array): boolean {
  const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
  const walkLevel = (at: number, end: number, depth: number): boolean => {
    const seen = new Set<number>();
    while (at + 4 <= end) {
      const len = view.getUint16(at, true);
      if (len < 4 || at + len > end) return false;
      const type = view.getUint16(at + 2, true) & 0x3fff;
      if (seen.has(type)) return true;
      seen.add(type);
      if (depth < 3 && len > 8 && walkLevel(at + 4, at + len, depth + 1)) return true;
      at += (len + 3) & ~3;
    }
    return false;
  };
  return walkLevel(20, m.length, 0);
}

Deno.test("value mutations of the filtered fields: same verdict as userspace", () => {
  // Rewrite marks, ports and address bytes of real messages to the values the
  // filters look for, so that the kept side is well exercised.
  const rng = new Rng(0x5eed5);
  let kept = 0;
  for (let i = 0; i < 20_000; i++) {
    const base = corpus[rng.below(corpus.length)]!;
    const m = base.slice();
    // Flip one byte inside the payload of an attribute, at random.
    const at = 20 + rng.below(Math.max(1, m.length - 20));
    m[at] = rng.below(4) === 0 ? 0 : m[at]! ^ (1 << rng.below(8));
    const { f, s } = programs[rng.below(programs.length)]!;
    if (s.program === undefined) continue;
    const user = userspace(f, m);
    if (user === undefined || hasRepeats(m)) continue;
    if (user) {
      kept++;
      assert.notEqual(runBpf(s.program, m), 0, `dropped a kept message: ${JSON.stringify(f)}`);
    }
  }
  assert(kept > 100, `kept ${kept}`);
});

Deno.test("the plan: kernel parts, userspace-only parts, and the fallback", () => {
  const s = compileSocketFilter(normalizeFilter({
    orig: { protocol: "tcp", dstPort: 443, src: "10.0.0.0/8" },
    mark: 1,
    labels: [3],
  }));
  assert.deepStrictEqual(s.plan.kernel, [
    "family",
    "mark",
    "orig.src",
    "orig.protocol",
    "orig.dstPort",
  ]);
  assert.deepStrictEqual(s.plan.userspace.map((u) => u.part), ["labels"]);
  assert.equal(s.plan.instructions, s.program!.length / 8);
  assert(s.plan.instructions < 200);
  const refused = planEventFilter(s, "the kernel refused the socket filter (errno 22)");
  assert.deepStrictEqual(refused.kernel, []);
  assert.equal(refused.instructions, 0);
  assert.equal(refused.userspace.length, 6);
  // Nothing the kernel can match: no program.
  const none = compileSocketFilter(normalizeFilter({ snat: true }));
  assert.equal(none.program, undefined);
  assert.deepStrictEqual(none.plan.userspace.map((u) => u.part), ["snat"]);
});

Deno.test("a handle attaches the program to its event socket, and falls back when refused", async () => {
  const filter: DumpFilter = { orig: { protocol: "udp" }, family: "ipv4" };
  const want = compileSocketFilter(normalizeFilter(filter)).program!;
  for (const refuse of [0, 22, undefined]) {
    const kernel = new FakeKernel();
    const attached: Uint8Array[] = [];
    const open: SocketFactory = (kind) => {
      const sock = kernel.open(kind);
      if (refuse !== undefined) {
        sock.attachFilter = (program) => (attached.push(program.slice()), refuse);
      }
      return sock;
    };
    using ct = openWithSockets(open, { kernelRelease: "6.18.0" });
    const plan = ct.planEvents({ filter });
    if (refuse === 0) {
      assert.deepStrictEqual(plan.kernel, ["family", "orig.protocol"]);
      assert.equal(plan.instructions, want.length / 8);
    } else {
      assert.deepStrictEqual(plan.kernel, []);
      assert.equal(plan.instructions, 0);
      assert.deepStrictEqual(plan.userspace.map((u) => u.part), ["family", "orig.protocol"]);
      assert.match(
        plan.userspace[0]!.reason,
        refuse === undefined ? /cannot take a socket filter/ : /errno 22/,
      );
    }
    // The stream: the program attached to its socket; whatever the kernel did, userspace filters.
    const stream = ct.events({ filter, types: ["new"] });
    const first = stream.next();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const tcp = events.find((m) => decoded(m).family === "ipv4" && decoded(m).orig.protocol === 6)!;
    const udp = events.find((m) =>
      decoded(m).family === "ipv4" && decoded(m).orig.protocol === 17
    )!;
    kernel.multicast(1, [tcp, udp]);
    const got = (await first).value!;
    assert(got.type === "new" && got.flow.orig.protocol === 17);
    if (refuse !== undefined) {
      assert.equal(attached.length, 2, "planEvents' throwaway socket, then the stream's");
      assert.deepStrictEqual(attached[1], want);
    }
    await stream.return();
  }
});
