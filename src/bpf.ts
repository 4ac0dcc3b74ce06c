/**
 * Kernel-side event filtering: an event filter compiled into a classic BPF
 * socket filter (`SO_ATTACH_FILTER`) for the event socket, so that events
 * the filter rejects never wake the process. The kernel's ancillary loads
 * `SKF_AD_NLATTR` and `SKF_AD_NLATTR_NEST` find an attribute of a type from
 * an offset (as libnetfilter_conntrack's filter does), which reaches
 * `CTA_TUPLE_ORIG` → `CTA_TUPLE_IP` → `CTA_IP_V4_SRC` and the rest.
 *
 * The program only ever rejects a conntrack event message it has read; any
 * other datagram (errors, other message types, a datagram of more than one
 * message, one without `CTA_TUPLE_ORIG`) passes. The userspace filter still
 * runs on every event that passes, so the program may keep too much but
 * must never drop what the userspace filter keeps.
 *
 * @module
 */

import * as C from "./constants.ts";
import type { NormalizedFilter } from "./filter.ts";
import type { MaskedAddress } from "./match.ts";
import type { TupleFields } from "./tuple.ts";

/**
 * Where each part of an event filter runs: in the event socket's BPF
 * filter in the kernel (and again in userspace), or in userspace only.
 *
 * @example
 * ```ts
 * import type { EventPlan } from "@ctnl/conntrack";
 *
 * const plan: EventPlan = {
 *   family: "ipv4",
 *   kernel: ["family", "orig.protocol", "orig.dstPort"],
 *   userspace: [{ part: "labels", reason: "the socket filter does not match labels" }],
 *   instructions: 41,
 * };
 * void plan; // what ct.planEvents(options) returns
 * ```
 */
export interface EventPlan {
  /** The address family events must have (`"all"`: any). */
  family: "ipv4" | "ipv6" | "all";
  /** Parts the socket filter applies in the kernel (userspace checks them again). */
  kernel: string[];
  /** Parts applied in userspace only, with the reason. */
  userspace: { part: string; reason: string }[];
  /** Length of the BPF program attached to the event socket; 0 when none is. */
  instructions: number;
}

/** An event filter compiled for the kernel. */
export interface SocketFilter {
  /** The `struct sock_filter` array, in host byte order (8 bytes an instruction); undefined when no part can run in the kernel. */
  program: Uint8Array<ArrayBuffer> | undefined;
  /** The plan when the program is attached. */
  plan: EventPlan;
}

// Classic BPF opcodes (linux/bpf_common.h, linux/filter.h).
const BPF_LD = 0x00, BPF_LDX = 0x01, BPF_ST = 0x02, BPF_ALU = 0x04, BPF_JMP = 0x05;
const BPF_RET = 0x06, BPF_MISC = 0x07;
const BPF_W = 0x00, BPF_H = 0x08, BPF_B = 0x10;
const BPF_IMM = 0x00, BPF_ABS = 0x20, BPF_IND = 0x40, BPF_MEM = 0x60, BPF_LEN = 0x80;
const BPF_AND = 0x50, BPF_OR = 0x40, BPF_LSH = 0x60;
const BPF_JEQ = 0x10, BPF_JGE = 0x30;
const BPF_K = 0x00, BPF_X = 0x08;
const BPF_TAX = 0x00;
/** `SKF_AD_OFF + SKF_AD_NLATTR` and `SKF_AD_OFF + SKF_AD_NLATTR_NEST`, as u32. */
const AD_NLATTR = (0x100000000 - 0x1000 + 12) >>> 0;
const AD_NLATTR_NEST = (0x100000000 - 0x1000 + 16) >>> 0;
/** Returned to keep a datagram whole / to drop it. */
const ACCEPT = 0xffffffff;
const DROP = 0;
/** Offset of the first attribute: `nlmsghdr` (16) + `nfgenmsg` (4). */
const ATTRS = 20;
/** Scratch slots: the tuples' offsets, and two for arithmetic. */
const M_ORIG = 0, M_REPLY = 1, M_TMP = 14, M_LEN = 15;

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Byte offsets of `nlmsg_type`'s two halves and of `nlmsg_len`'s bytes, host order. */
const SUBSYS_AT = LITTLE ? 5 : 4, MSG_AT = LITTLE ? 4 : 5;
const LEN_BYTES = LITTLE ? [3, 2, 1, 0] : [0, 1, 2, 3];

/** One instruction; a jump target is a label until {@link Asm.bytes} resolves it. */
interface Insn {
  code: number;
  jt: number | string;
  jf: number | string;
  k: number;
}

/** A small assembler: instructions with forward labels. */
class Asm {
  insns: Insn[] = [];
  #labels = new Map<string, number>();
  #next = 0;

  label(): string {
    return `L${this.#next++}`;
  }
  here(label: string): void {
    this.#labels.set(label, this.insns.length);
  }
  op(code: number, k = 0, jt: number | string = 0, jf: number | string = 0): void {
    this.insns.push({ code, jt, jf, k: k >>> 0 });
  }
  ret(k: number): void {
    this.op(BPF_RET | BPF_K, k);
  }
  /** Jumps to `yes` when `A == k`, else to `no` (labels or 0 for "next"). */
  jeq(k: number, yes: number | string, no: number | string): void {
    this.op(BPF_JMP | BPF_JEQ | BPF_K, k, yes, no);
  }
  /** Jumps to `label` whatever A holds. */
  goto(label: string): void {
    this.op(BPF_JMP | BPF_JEQ | BPF_K, 0, label, label);
  }
  /** `A = offset of attribute `type``, searched from offset A (`nest`: inside the nest at A). */
  find(type: number, nest: boolean): void {
    this.op(BPF_LDX | BPF_IMM, type);
    this.op(BPF_LD | BPF_W | BPF_ABS, nest ? AD_NLATTR_NEST : AD_NLATTR);
  }
  bytes(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.insns.length * 8);
    const view = new DataView(out.buffer);
    this.insns.forEach((insn, i) => {
      const rel = (target: number | string): number => {
        if (typeof target === "number") return target;
        const at = this.#labels.get(target);
        if (at === undefined) throw new Error(`Cannot assemble BPF: label ${target} not placed`);
        const d = at - (i + 1);
        if (d < 0 || d > 255) throw new Error(`Cannot assemble BPF: jump of ${d}`);
        return d;
      };
      view.setUint16(i * 8, insn.code, LITTLE);
      view.setUint8(i * 8 + 2, rel(insn.jt));
      view.setUint8(i * 8 + 3, rel(insn.jf));
      view.setUint32(i * 8 + 4, insn.k, LITTLE);
    });
    return out;
  }
}

/**
 * Loads into A the offset of the attribute at `path` below the message top
 * (`from`: a scratch slot holding a tuple's offset, or top level), jumping
 * to `missing` when any step is absent.
 */
function walk(asm: Asm, from: number | "top", path: readonly number[], missing: string): void {
  let nest: boolean;
  if (from === "top") {
    asm.op(BPF_LD | BPF_IMM, ATTRS);
    nest = false;
  } else {
    asm.op(BPF_LD | BPF_MEM, from);
    asm.jeq(0, missing, 0);
    nest = true;
  }
  for (const type of path) {
    asm.find(type, nest);
    asm.jeq(0, missing, 0);
    nest = true;
  }
}

type Size = "u8" | "u16" | "u32";
const SIZE_CODE: Record<Size, number> = { u8: BPF_B, u16: BPF_H, u32: BPF_W };

/**
 * One scalar comparison: the attribute at `path` (below the top level or
 * below the tuple whose offset is in slot `from`) holds `(value & mask) == want`.
 */
interface Scalar {
  from: number | "top";
  path: readonly number[];
  size: Size;
  mask: number;
  want: number;
}

/** Emits the load and compare of `s`; jumps to `ok` on a match, to `fail` on a mismatch, to `missing` when absent. */
function scalar(asm: Asm, s: Scalar, ok: string, fail: string, missing: string): void {
  walk(asm, s.from, s.path, missing);
  asm.op(BPF_MISC | BPF_TAX);
  asm.op(BPF_LD | SIZE_CODE[s.size] | BPF_IND, 4);
  const full = s.size === "u8" ? 0xff : s.size === "u16" ? 0xffff : 0xffffffff;
  if ((s.mask & full) >>> 0 !== full) asm.op(BPF_ALU | BPF_AND | BPF_K, s.mask);
  asm.jeq(s.want, ok, fail);
}

/**
 * A check that passes when one of `alternatives` matches, tried in order:
 * an absent one moves on to the next; a present one that does not match
 * moves on too, or rejects with `firstMatchDecides` (the zone's `??`
 * chain). When all are absent, `absentOk` decides (the userspace
 * matcher's default). The datagram is dropped when the check fails.
 */
function check(
  asm: Asm,
  alternatives: Scalar[],
  absentOk: boolean,
  firstMatchDecides = false,
): void {
  const ok = asm.label(), fail = asm.label();
  alternatives.forEach((s, i) => {
    const last = i === alternatives.length - 1;
    const next = last ? (absentOk ? ok : fail) : asm.label();
    // An alternative that is present decides when `firstMatchDecides` (the zone's `??` chain).
    scalar(asm, s, ok, last || firstMatchDecides ? fail : next, next);
    if (!last) asm.here(next);
  });
  asm.here(fail);
  asm.ret(DROP);
  asm.here(ok);
}

/** The compared words of a (masked) address: `[word index, mask, value]`, skipping wholly masked-off words. */
function addressWords(net: MaskedAddress): [number, number, number][] {
  const bytes = net.address.bytes;
  const out: [number, number, number][] = [];
  for (let w = 0; w < bytes.length / 4; w++) {
    let mask = 0, want = 0;
    for (let b = 0; b < 4; b++) {
      const m = net.mask === undefined ? 0xff : net.mask[w * 4 + b]!;
      mask = (mask << 8) | m;
      want = (want << 8) | (bytes[w * 4 + b]! & m);
    }
    if (mask !== 0) out.push([w, mask >>> 0, want >>> 0]);
  }
  return out;
}

/** An address check: present in the tuple (else reject) and each word matching under the mask. */
function address(asm: Asm, slot: number, attr: number, net: MaskedAddress): void {
  const fail = asm.label(), ok = asm.label();
  walk(asm, slot, [C.CTA_TUPLE_IP, attr], fail);
  asm.op(BPF_MISC | BPF_TAX);
  for (const [w, mask, want] of addressWords(net)) {
    asm.op(BPF_LD | BPF_W | BPF_IND, 4 + 4 * w);
    if (mask !== 0xffffffff) asm.op(BPF_ALU | BPF_AND | BPF_K, mask);
    asm.jeq(want, 0, fail);
  }
  asm.goto(ok);
  asm.here(fail);
  asm.ret(DROP);
  asm.here(ok);
}

type NTuple = TupleFields & {
  srcNet: MaskedAddress | undefined;
  dstNet: MaskedAddress | undefined;
};

/** The checks of one direction; returns the parts it compiled. */
function tupleChecks(asm: Asm, t: NTuple, dir: "orig" | "reply", af: number): string[] {
  const slot = dir === "orig" ? M_ORIG : M_REPLY;
  const parts: string[] = [];
  const v6 = af === C.AF_INET6;
  if (t.srcNet !== undefined) {
    address(asm, slot, v6 ? C.CTA_IP_V6_SRC : C.CTA_IP_V4_SRC, t.srcNet);
    parts.push(`${dir}.src`);
  }
  if (t.dstNet !== undefined) {
    address(asm, slot, v6 ? C.CTA_IP_V6_DST : C.CTA_IP_V4_DST, t.dstNet);
    parts.push(`${dir}.dst`);
  }
  const proto = (attrs: number[], size: Size, want: number, part: string) => {
    // ICMP fields come as CTA_PROTO_ICMP_* or CTA_PROTO_ICMPV6_*: either may match.
    const alts = attrs.map((attr): Scalar => ({
      from: slot,
      path: [C.CTA_TUPLE_PROTO, attr],
      size,
      mask: 0xffffffff,
      want,
    }));
    check(asm, alts, false);
    parts.push(`${dir}.${part}`);
  };
  if (t.protocol !== undefined) proto([C.CTA_PROTO_NUM], "u8", t.protocol, "protocol");
  if (t.srcPort !== undefined) proto([C.CTA_PROTO_SRC_PORT], "u16", t.srcPort, "srcPort");
  if (t.dstPort !== undefined) proto([C.CTA_PROTO_DST_PORT], "u16", t.dstPort, "dstPort");
  if (t.icmpType !== undefined) {
    proto([C.CTA_PROTO_ICMP_TYPE, C.CTA_PROTO_ICMPV6_TYPE], "u8", t.icmpType, "icmpType");
  }
  if (t.icmpCode !== undefined) {
    proto([C.CTA_PROTO_ICMP_CODE, C.CTA_PROTO_ICMPV6_CODE], "u8", t.icmpCode, "icmpCode");
  }
  if (t.icmpId !== undefined) {
    proto([C.CTA_PROTO_ICMP_ID, C.CTA_PROTO_ICMPV6_ID], "u16", t.icmpId, "icmpId");
  }
  return parts;
}

/** The prologue: pass whatever is not one conntrack event message with an original tuple. */
function prologue(asm: Asm, reply: boolean): void {
  const pass = asm.label(), go = asm.label();
  // Every scratch slot written first: the kernel's check of loads and stores
  // (check_load_and_stores) carries what was stored across a ret, so a slot
  // stored on one path only would be refused.
  asm.op(BPF_LD | BPF_IMM, 0);
  for (const slot of [M_ORIG, M_REPLY, M_TMP, M_LEN]) asm.op(BPF_ST, slot);
  asm.op(BPF_LD | BPF_W | BPF_LEN);
  asm.op(BPF_JMP | BPF_JGE | BPF_K, ATTRS, 0, pass);
  asm.op(BPF_ST, M_LEN);
  // nlmsg_len (host order) must be the datagram's length: one message.
  for (const [i, at] of LEN_BYTES.entries()) {
    asm.op(BPF_LD | BPF_B | BPF_ABS, at);
    if (i < 3) asm.op(BPF_ALU | BPF_LSH | BPF_K, 8 * (3 - i));
    if (i > 0) {
      asm.op(BPF_MISC | BPF_TAX);
      asm.op(BPF_LD | BPF_MEM, M_TMP);
      asm.op(BPF_ALU | BPF_OR | BPF_X);
    }
    asm.op(BPF_ST, M_TMP);
  }
  asm.op(BPF_MISC | BPF_TAX);
  asm.op(BPF_LD | BPF_MEM, M_LEN);
  asm.op(BPF_JMP | BPF_JEQ | BPF_X, 0, 0, pass);
  asm.op(BPF_LD | BPF_B | BPF_ABS, SUBSYS_AT);
  asm.jeq(C.NFNL_SUBSYS_CTNETLINK, 0, pass);
  asm.op(BPF_LD | BPF_B | BPF_ABS, MSG_AT);
  asm.jeq(C.IPCTNL_MSG_CT_NEW, go, 0);
  asm.jeq(C.IPCTNL_MSG_CT_DELETE, go, pass);
  asm.here(go);
  asm.op(BPF_LD | BPF_IMM, ATTRS);
  asm.find(C.CTA_TUPLE_ORIG, false);
  asm.jeq(0, pass, 0);
  asm.op(BPF_ST, M_ORIG);
  if (reply) {
    // 0 when absent: the reply checks then see every field absent.
    asm.op(BPF_LD | BPF_IMM, ATTRS);
    asm.find(C.CTA_TUPLE_REPLY, false);
    asm.op(BPF_ST, M_REPLY);
  }
  const over = asm.label();
  asm.goto(over);
  asm.here(pass);
  asm.ret(ACCEPT);
  asm.here(over);
}

const FAMILY_NAMES = { [C.AF_UNSPEC]: "all", [C.AF_INET]: "ipv4", [C.AF_INET6]: "ipv6" } as const;

/** A top-level u32/u16 attribute, or a tuple's, as a {@link Scalar}. */
function attr(from: number | "top", path: number[], size: Size, want: number, mask = 0xffffffff) {
  return { from, path, size, want, mask } satisfies Scalar;
}

/**
 * Compiles the parts of a normalized event filter that classic BPF can
 * match on the netlink message (no program when none can). Every part runs
 * in userspace too.
 */
export function compileSocketFilter(f: NormalizedFilter): SocketFilter {
  const asm = new Asm();
  const kernel: string[] = [];
  const userspace: EventPlan["userspace"] = [];
  const needsReply = f.reply !== undefined || f.zone !== undefined || f.zones.reply !== undefined;
  prologue(asm, needsReply);
  if (f.af !== C.AF_UNSPEC) {
    const fail = asm.label();
    asm.op(BPF_LD | BPF_B | BPF_ABS, 16);
    asm.jeq(f.af, 1, 0);
    asm.here(fail);
    asm.ret(DROP);
    kernel.push("family");
  }
  if (f.mark !== undefined) {
    // An entry without CTA_MARK has mark 0.
    const { value, mask } = f.mark;
    check(asm, [attr("top", [C.CTA_MARK], "u32", value, mask)], ((0 & mask) >>> 0) === value);
    kernel.push("mark");
  }
  if (f.status !== undefined) {
    const { value, mask } = f.status;
    check(asm, [attr("top", [C.CTA_STATUS], "u32", value, mask)], value === 0);
    kernel.push("status");
  }
  if (f.zone !== undefined) {
    // CTA_ZONE ?? the original tuple's zone ?? the reply's ?? 0: the first present decides.
    const z = f.zone;
    check(
      asm,
      [
        attr("top", [C.CTA_ZONE], "u16", z),
        attr(M_ORIG, [C.CTA_TUPLE_ZONE], "u16", z),
        attr(M_REPLY, [C.CTA_TUPLE_ZONE], "u16", z),
      ],
      z === 0,
      true,
    );
    kernel.push("zone");
  }
  const { entry, orig, reply } = f.zones;
  if (entry !== undefined) {
    check(asm, [attr("top", [C.CTA_ZONE], "u16", entry)], entry === 0);
    kernel.push("entryZone");
  }
  if (orig !== undefined) {
    check(asm, [attr(M_ORIG, [C.CTA_TUPLE_ZONE], "u16", orig)], orig === 0);
    kernel.push("origZone");
  }
  if (reply !== undefined) {
    check(asm, [attr(M_REPLY, [C.CTA_TUPLE_ZONE], "u16", reply)], reply === 0);
    kernel.push("replyZone");
  }
  if (f.orig !== undefined) kernel.push(...tupleChecks(asm, f.orig, "orig", f.af));
  if (f.reply !== undefined) kernel.push(...tupleChecks(asm, f.reply, "reply", f.af));
  const natWhy = "the socket filter does not match NAT";
  if (f.nat.src !== undefined) userspace.push({ part: "snat", reason: natWhy });
  if (f.nat.dst !== undefined) userspace.push({ part: "dnat", reason: natWhy });
  if (f.nat.any !== undefined) userspace.push({ part: "anyNat", reason: natWhy });
  if (f.labels !== undefined) {
    userspace.push({ part: "labels", reason: "the socket filter does not match labels" });
  }
  asm.ret(ACCEPT);
  const family = FAMILY_NAMES[f.af as 0 | 2 | 10];
  if (kernel.length === 0) {
    return { program: undefined, plan: { family, kernel, userspace, instructions: 0 } };
  }
  const program = asm.bytes();
  return { program, plan: { family, kernel, userspace, instructions: program.length / 8 } };
}

/**
 * The plan of a compiled event filter: as compiled when its program is
 * attached (`refused` undefined), else every part in userspace with the
 * reason.
 */
export function planEventFilter(compiled: SocketFilter, refused: string | undefined): EventPlan {
  if (refused === undefined) return compiled.plan;
  const { family, kernel, userspace } = compiled.plan;
  return {
    family,
    kernel: [],
    userspace: [...kernel.map((part) => ({ part, reason: refused })), ...userspace],
    instructions: 0,
  };
}
