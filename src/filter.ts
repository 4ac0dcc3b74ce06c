/**
 * Dump filters: validation, the plan of which parts the running kernel can
 * apply (and which must run in userspace), the kernel request, and the
 * userspace matcher. Either way the same flows come out.
 *
 * @module
 */

import * as C from "./constants.ts";
import { ArgumentError, ArgumentRangeError, checkUint } from "./errors.ts";
import {
  hasLabels,
  isDestinationNat,
  isSourceNat,
  labelMask,
  type MaskedAddress,
  maskedMatcher,
  type NatFilter,
  type NormalizedNat,
  normalizeNat,
  parseMaskedAddress,
} from "./match.ts";
import { parseProtocol } from "./protocols.ts";
import { encodeTuple, type TupleFields } from "./tuple.ts";
import type { Encoder } from "./netlink.ts";
import * as S from "./scan.ts";
import { slotValue } from "./scan.ts";
import type { Flow, Tuple } from "./types.ts";

/** Fields of one direction to match, all optional; all given must match.
 *
 * @example
 * ```ts
 * import { validateFilter } from "@ctnl/conntrack";
 *
 * // Replies from 10.0.0.2 port 53 (udp):
 * validateFilter({ reply: { src: "10.0.0.2", protocol: "udp", srcPort: 53 } });
 * ```
 */
export interface TupleFilter {
  /** Source address (IPv4 or IPv6 text), or a network: `"10.0.0.0/8"`, `"fd00::/16"`. */
  src?: string;
  /** Destination address, or a network. */
  dst?: string;
  /**
   * A mask for `src` in address form (`"255.255.0.0"`, any bits): matches
   * when `(address & mask) === (src & mask)` (conntrack's `--mask-src`).
   */
  srcMask?: string;
  /** A mask for `dst` in address form (conntrack's `--mask-dst`). */
  dstMask?: string;
  /** Layer-4 protocol, by number or name (`"tcp"`, `"udp"`, `"icmp"`, …). */
  protocol?: number | string;
  /** Source port. */
  srcPort?: number;
  /** Destination port. */
  dstPort?: number;
  /** ICMP/ICMPv6 type. */
  icmpType?: number;
  /** ICMP/ICMPv6 code. */
  icmpCode?: number;
  /** ICMP/ICMPv6 id. */
  icmpId?: number;
}

/**
 * A value with a mask: matches when `(field & mask) === value`.
 *
 * @example
 * ```ts
 * import { validateFilter } from "@ctnl/conntrack";
 *
 * // Marks whose bits 4-7 are 0x1: (mark & 0xf0) === 0x10.
 * validateFilter({ mark: { value: 0x10, mask: 0xf0 } });
 * ```
 */
export interface Masked<T> {
  /** The value the masked field must equal. */
  value: T;
  /** The mask; defaults to all bits (mark) or to `value` (status). */
  mask?: T;
}

/** A status value: a bitmask or a list of flag names.
 *
 * @example
 * ```ts
 * import { CT_STATUS, validateFilter } from "@ctnl/conntrack";
 *
 * validateFilter({ status: ["ASSURED", "SEEN_REPLY"] });
 * validateFilter({ status: CT_STATUS.ASSURED | CT_STATUS.SEEN_REPLY });
 * ```
 */
export type StatusValue = number | readonly C.StatusFlag[];

/**
 * What a dump selects. All given parts must match. Parts the running kernel
 * can apply go into the request; the rest run in userspace (see
 * {@link FilterPlan}).
 *
 * @example
 * ```ts
 * import { type DumpFilter, validateFilter } from "@ctnl/conntrack";
 *
 * const filter: DumpFilter = {
 *   family: "ipv4",
 *   mark: { value: 0x10, mask: 0xf0 },
 *   status: ["ASSURED"],
 *   orig: { protocol: "tcp", dstPort: 443 },
 * };
 * validateFilter(filter);
 * ```
 */
export interface DumpFilter {
  /** Address family; default `"all"` (or the family of a given address). */
  family?: "ipv4" | "ipv6" | "all";
  /** Connection mark, or `{ value, mask }`. */
  mark?: number | Masked<number>;
  /**
   * Zone id (0–65535); an entry matches when its zone is this, whether it
   * was set for both directions or for one (the kernel's own zone filter,
   * Linux 6.8). See `entryZone`, `origZone` and `replyZone` for conntrack's
   * `-w`, `--orig-zone` and `--reply-zone`.
   */
  zone?: number;
  /**
   * The zone set for both directions (`CTA_ZONE`), 0 for an entry without
   * one — also for an entry whose zone is set for one direction only: what
   * `conntrack -w` selects. Applied in userspace.
   */
  entryZone?: number;
  /**
   * The zone of the original direction (`CTA_TUPLE_ZONE`), 0 when the zone
   * is not set per direction (conntrack's `--orig-zone`). Applied in userspace.
   */
  origZone?: number;
  /** The zone of the reply direction, 0 when not set per direction (`--reply-zone`). */
  replyZone?: number;
  /**
   * Source-NAT-ed entries (conntrack's `-n`): `true` for any, or those
   * translated to `{ address, port }` (the reply tuple's destination).
   * Entries count as NAT-ed when `SRC_NAT_DONE` is set and the reply's
   * destination differs from the original source. Applied in userspace.
   */
  snat?: boolean | NatFilter;
  /**
   * Destination-NAT-ed entries (conntrack's `-g`): `true` for any, or those
   * translated to `{ address, port }` (the reply tuple's source).
   */
  dnat?: boolean | NatFilter;
  /** Source- or destination-NAT-ed entries (conntrack's `-j`), with the same details. */
  anyNat?: boolean | NatFilter;
  /** Label bits (0–127) that must all be set (conntrack's `-l`). Applied in userspace. */
  labels?: readonly number[];
  /** Status bits: `["ASSURED"]` (all must be set), or `{ value, mask }`. */
  status?: StatusValue | Masked<StatusValue>;
  /** Fields of the original direction. */
  orig?: TupleFilter;
  /** Fields of the reply direction. */
  reply?: TupleFilter;
}

/** Where each part of a filter runs.
 *
 * @example
 * ```ts
 * import type { FilterPlan } from "@ctnl/conntrack";
 *
 * const plan: FilterPlan = {
 *   family: "ipv6",
 *   kernel: ["family", "orig.protocol"],
 *   userspace: [{ part: "orig.src", reason: "the kernel's IPv6 address match in CTA_FILTER is inverted" }],
 * };
 * void plan; // what ct.planDump(filter) returns
 * ```
 */
export interface FilterPlan {
  /** The address family put in the request's `nfgenmsg`. */
  family: "ipv4" | "ipv6" | "all";
  /** Filter parts the kernel applies, e.g. `["family", "mark", "orig.protocol"]`. */
  kernel: string[];
  /** Filter parts applied in userspace, e.g. `["orig.src"]`, with the reason. */
  userspace: { part: string; reason: string }[];
}

/** A validated tuple filter: the fields to encode, and the masked addresses. */
type NTuple = TupleFields & {
  srcNet: MaskedAddress | undefined;
  dstNet: MaskedAddress | undefined;
};

/** A validated filter. */
export interface NormalizedFilter {
  /** `AF_UNSPEC`, `AF_INET` or `AF_INET6`. */
  af: number;
  /** Mark value and mask. */
  mark: { value: number; mask: number } | undefined;
  /** Zone id. */
  zone: number | undefined;
  /** Status value and mask. */
  status: { value: number; mask: number } | undefined;
  /** Original-direction fields. */
  orig: NTuple | undefined;
  /** Reply-direction fields. */
  reply: NTuple | undefined;
  /** Zones matched in userspace: of the entry, of each direction. */
  zones: { entry: number | undefined; orig: number | undefined; reply: number | undefined };
  /** NAT parts. */
  nat: {
    src: NormalizedNat | undefined;
    dst: NormalizedNat | undefined;
    any: NormalizedNat | undefined;
  };
  /** Label bits that must be set. */
  labels: Uint8Array | undefined;
}

export { checkUint } from "./errors.ts";

/** Turns a status value (bitmask or flag names) into a bitmask. */
export function statusBits(value: StatusValue, argument: string): number {
  if (typeof value === "number") return checkUint(value, 0xffffffff, argument);
  if (!Array.isArray(value)) {
    throw new ArgumentError(argument, value, `${String(value)} is not a number or flag list`);
  }
  let bits = 0;
  for (const name of value) {
    const bit = (C.CT_STATUS as Record<string, number>)[name];
    if (bit === undefined) {
      throw new ArgumentError(argument, name, `unknown status flag "${name}"`);
    }
    bits |= bit;
  }
  return bits >>> 0;
}

const TUPLE_KEYS = new Set([
  "src",
  "dst",
  "srcMask",
  "dstMask",
  "protocol",
  "srcPort",
  "dstPort",
  "icmpType",
  "icmpCode",
  "icmpId",
]);

function normalizeTuple(t: TupleFilter, dir: string, family: { af: number }): NTuple | undefined {
  if (t === null || typeof t !== "object") {
    throw new ArgumentError(`filter.${dir}`, t, `${String(t)} is not an object`);
  }
  for (const key of Object.keys(t)) {
    if (!TUPLE_KEYS.has(key)) {
      throw new ArgumentError(`filter.${dir}`, key, `unknown field "${key}"`);
    }
  }
  const net = (
    text: string | undefined,
    maskText: string | undefined,
    name: string,
  ): MaskedAddress | undefined => {
    if (text === undefined) {
      if (maskText !== undefined) {
        throw new ArgumentError(`filter.${dir}.${name}Mask`, maskText, `a mask without ${name}`);
      }
      return undefined;
    }
    const a = parseMaskedAddress(text, maskText, `filter.${dir}.${name}`);
    const af = a.address.family === "ipv4" ? C.AF_INET : C.AF_INET6;
    if (family.af !== C.AF_UNSPEC && family.af !== af) {
      throw new ArgumentError(
        `filter.${dir}.${name}`,
        text,
        `${a.address.family} address "${text}" mixed with ${
          family.af === C.AF_INET ? "ipv4" : "ipv6"
        }`,
      );
    }
    family.af = af;
    return a;
  };
  const srcNet = net(t.src, t.srcMask, "src");
  const dstNet = net(t.dst, t.dstMask, "dst");
  const n: NTuple = {
    src: srcNet?.address,
    dst: dstNet?.address,
    protocol: t.protocol === undefined
      ? undefined
      : parseProtocol(t.protocol, `filter.${dir}.protocol`),
    srcPort: t.srcPort === undefined
      ? undefined
      : checkUint(t.srcPort, 65535, `filter.${dir}.srcPort`),
    dstPort: t.dstPort === undefined
      ? undefined
      : checkUint(t.dstPort, 65535, `filter.${dir}.dstPort`),
    icmpType: t.icmpType === undefined
      ? undefined
      : checkUint(t.icmpType, 255, `filter.${dir}.icmpType`),
    icmpCode: t.icmpCode === undefined
      ? undefined
      : checkUint(t.icmpCode, 255, `filter.${dir}.icmpCode`),
    icmpId: t.icmpId === undefined ? undefined : checkUint(t.icmpId, 65535, `filter.${dir}.icmpId`),
    srcNet,
    dstNet,
  };
  const empty = Object.values(n).every((v) => v === undefined);
  return empty ? undefined : n;
}

const FILTER_KEYS = new Set([
  "family",
  "mark",
  "zone",
  "status",
  "orig",
  "reply",
  "entryZone",
  "origZone",
  "replyZone",
  "snat",
  "dnat",
  "anyNat",
  "labels",
]);

/** A NAT filter part's address joins the filter's family. */
function natFamily(nat: NormalizedNat | undefined, argument: string, family: { af: number }): void {
  const a = nat?.address;
  if (a === undefined) return;
  const af = a.family === "ipv4" ? C.AF_INET : C.AF_INET6;
  if (family.af !== C.AF_UNSPEC && family.af !== af) {
    throw new ArgumentError(
      argument,
      a.text,
      `${a.family} address "${a.text}" mixed with another family`,
    );
  }
  family.af = af;
}

/** Validates a {@link DumpFilter}; throws `TypeError`/`RangeError` naming the bad part. */
export function normalizeFilter(filter: DumpFilter = {}): NormalizedFilter {
  if (filter === null || typeof filter !== "object") {
    throw new ArgumentError("filter", filter, `${String(filter)} is not an object`);
  }
  for (const key of Object.keys(filter)) {
    if (!FILTER_KEYS.has(key)) throw new ArgumentError("filter", key, `unknown field "${key}"`);
  }
  const family = { af: C.AF_UNSPEC };
  if (filter.family !== undefined) {
    if (filter.family === "ipv4") family.af = C.AF_INET;
    else if (filter.family === "ipv6") family.af = C.AF_INET6;
    else if (filter.family !== "all") {
      throw new ArgumentError(
        "filter.family",
        filter.family,
        `"${String(filter.family)}" is not "ipv4", "ipv6" or "all"`,
      );
    }
  }
  const explicitAll = filter.family === "all";
  let mark: NormalizedFilter["mark"];
  if (filter.mark !== undefined) {
    if (typeof filter.mark === "number") {
      mark = { value: checkUint(filter.mark, 0xffffffff, "filter.mark"), mask: 0xffffffff };
    } else {
      mark = {
        value: checkUint(filter.mark.value, 0xffffffff, "filter.mark.value"),
        mask: filter.mark.mask === undefined
          ? 0xffffffff
          : checkUint(filter.mark.mask, 0xffffffff, "filter.mark.mask"),
      };
    }
  }
  let status: NormalizedFilter["status"];
  if (filter.status !== undefined) {
    const s = filter.status;
    if (typeof s === "number" || Array.isArray(s)) {
      const bits = statusBits(s as StatusValue, "filter.status");
      status = { value: bits, mask: bits };
    } else {
      const m = s as Masked<StatusValue>;
      const value = statusBits(m.value, "filter.status.value");
      const mask = m.mask === undefined ? value : statusBits(m.mask, "filter.status.mask");
      status = { value, mask };
    }
    if (status.mask === 0) {
      throw new ArgumentRangeError(
        "filter.status",
        filter.status,
        "the mask selects no status bit",
      );
    }
  }
  const zone = filter.zone === undefined ? undefined : checkUint(filter.zone, 65535, "filter.zone");
  const orig = filter.orig === undefined ? undefined : normalizeTuple(filter.orig, "orig", family);
  const reply = filter.reply === undefined
    ? undefined
    : normalizeTuple(filter.reply, "reply", family);
  const zones = {
    entry: filter.entryZone === undefined
      ? undefined
      : checkUint(filter.entryZone, 65535, "filter.entryZone"),
    orig: filter.origZone === undefined
      ? undefined
      : checkUint(filter.origZone, 65535, "filter.origZone"),
    reply: filter.replyZone === undefined
      ? undefined
      : checkUint(filter.replyZone, 65535, "filter.replyZone"),
  };
  const nat = {
    src: filter.snat === undefined ? undefined : normalizeNat(filter.snat, "filter.snat"),
    dst: filter.dnat === undefined ? undefined : normalizeNat(filter.dnat, "filter.dnat"),
    any: filter.anyNat === undefined ? undefined : normalizeNat(filter.anyNat, "filter.anyNat"),
  };
  natFamily(nat.src, "filter.snat.address", family);
  natFamily(nat.dst, "filter.dnat.address", family);
  natFamily(nat.any, "filter.anyNat.address", family);
  let labels: Uint8Array | undefined;
  if (filter.labels !== undefined) {
    labels = labelMask(filter.labels, "filter.labels");
    if (labels.every((b) => b === 0)) {
      throw new ArgumentError("filter.labels", filter.labels, "the list names no label bit");
    }
  }
  if (explicitAll && family.af !== C.AF_UNSPEC) {
    throw new ArgumentError(
      "filter.family",
      filter.family,
      `"all" conflicts with ${family.af === C.AF_INET ? "an ipv4" : "an ipv6"} address`,
    );
  }
  return { af: family.af, mark, zone, status, orig, reply, zones, nat, labels };
}

/** Parses `uname -r` text into `[major, minor]`. */
export function parseRelease(release: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function atLeast(release: [number, number], major: number, minor: number): boolean {
  return release[0] > major || (release[0] === major && release[1] >= minor);
}

/** Which fields of one direction go to the kernel (`CTA_FILTER_F_*` bits). */
interface TuplePlan {
  flags: number;
  userspace: { part: string; reason: string }[];
  kernel: string[];
}

function planTuple(
  t: NTuple,
  dir: string,
  af: number,
  release: [number, number],
  force: boolean,
): TuplePlan {
  const plan: TuplePlan = { flags: 0, userspace: [], kernel: [] };
  const fields = Object.entries(t)
    .filter(([k, v]) => v !== undefined && k !== "srcNet" && k !== "dstNet")
    .map(([k]) => k);
  let why: string | undefined;
  if (force) why = "userspace filtering requested";
  else if (!atLeast(release, 5, 8)) why = "CTA_FILTER needs Linux 5.8";
  else if (af === C.AF_UNSPEC) why = "the kernel refuses CTA_FILTER for family all";
  if (why !== undefined) {
    for (const f of fields) plan.userspace.push({ part: `${dir}.${f}`, reason: why });
    return plan;
  }
  const kernel = (part: string, flag: number) => {
    plan.flags |= flag;
    plan.kernel.push(`${dir}.${part}`);
  };
  const user = (part: string, reason: string) =>
    plan.userspace.push({ part: `${dir}.${part}`, reason });
  const v6 = af === C.AF_INET6;
  const inverted = "the kernel's IPv6 address match in CTA_FILTER is inverted";
  const masked = "the kernel matches whole addresses only (CTA_FILTER has no netmask)";
  if (t.src) {
    if (t.srcNet?.mask) user("src", masked);
    else v6 ? user("src", inverted) : kernel("src", C.CTA_FILTER_F_IP_SRC);
  }
  if (t.dst) {
    if (t.dstNet?.mask) user("dst", masked);
    else v6 ? user("dst", inverted) : kernel("dst", C.CTA_FILTER_F_IP_DST);
  }
  if (t.protocol !== undefined) kernel("protocol", C.CTA_FILTER_F_PROTO_NUM);
  const portsInKernel = t.protocol === 6 || t.protocol === 17;
  const portWhy = t.protocol === undefined
    ? "the kernel matches ports only with a protocol"
    : "the kernel matches ports only for tcp and udp";
  if (t.srcPort !== undefined) {
    portsInKernel ? kernel("srcPort", C.CTA_FILTER_F_PROTO_SRC_PORT) : user("srcPort", portWhy);
  }
  if (t.dstPort !== undefined) {
    portsInKernel ? kernel("dstPort", C.CTA_FILTER_F_PROTO_DST_PORT) : user("dstPort", portWhy);
  }
  const icmp = (!v6 && t.protocol === 1) || (v6 && t.protocol === 58);
  const icmpWhy = "the kernel matches ICMP fields only with protocol icmp (ipv4) or icmpv6 (ipv6)";
  if (t.icmpType !== undefined) {
    icmp
      ? kernel("icmpType", v6 ? C.CTA_FILTER_F_ICMPV6_TYPE : C.CTA_FILTER_F_ICMP_TYPE)
      : user("icmpType", icmpWhy);
  }
  if (t.icmpCode !== undefined) {
    icmp
      ? kernel("icmpCode", v6 ? C.CTA_FILTER_F_ICMPV6_CODE : C.CTA_FILTER_F_ICMP_CODE)
      : user("icmpCode", icmpWhy);
  }
  if (t.icmpId !== undefined) {
    icmp
      ? kernel("icmpId", v6 ? C.CTA_FILTER_F_ICMPV6_ID : C.CTA_FILTER_F_ICMP_ID)
      : user("icmpId", icmpWhy);
  }
  return plan;
}

/** A filter split between the kernel request and the userspace matcher. */
export interface CompiledFilter {
  /** The plan, for callers who want to see it. */
  plan: FilterPlan;
  /** Writes the kernel part's attributes into a dump request. */
  encode(enc: Encoder): void;
  /** The userspace part; undefined when the kernel does everything. */
  match: ((flow: Flow) => boolean) | undefined;
  /**
   * The userspace part on an entry's bytes, through the attribute walk's
   * slots (`scanEntry` of src/scan.ts, which the fast decoder builds its
   * `Flow` from): the same answer as {@link match} for an entry the walk
   * takes. Undefined when some part needs the decoded entry (NAT, labels).
   */
  matchSlots: SlotCheck | undefined;
}

/** A check of an entry by its walk's slots (see {@link CompiledFilter.matchSlots}). */
export type SlotCheck = (b: Uint8Array, v: DataView, slots: Int32Array) => boolean;

/** Whether the address of slot pair `i` is `want` (its family and bytes), masked by `mask`. */
function addressIs(
  b: Uint8Array,
  s: Int32Array,
  i: number,
  want: Uint8Array,
  mask: Uint8Array | undefined,
): boolean {
  const at = s[i]!;
  if (at < 0 || s[i + 1] !== want.length) return false;
  for (let k = 0; k < want.length; k++) {
    const m = mask === undefined ? 0xff : mask[k]!;
    if ((b[at + k]! & m) !== (want[k]! & m)) return false;
  }
  return true;
}

const FAMILY_NAMES = { [C.AF_UNSPEC]: "all", [C.AF_INET]: "ipv4", [C.AF_INET6]: "ipv6" } as const;

/**
 * Splits a normalized filter between kernel and userspace for a kernel of
 * `release`; with `userspaceOnly`, everything but the family runs in
 * userspace.
 */
export function compileFilter(
  f: NormalizedFilter,
  releaseText: string,
  userspaceOnly = false,
): CompiledFilter {
  const release = parseRelease(releaseText);
  const plan: FilterPlan = {
    family: FAMILY_NAMES[f.af as 0 | 2 | 10],
    kernel: f.af === C.AF_UNSPEC ? [] : ["family"],
    userspace: [],
  };
  const checks: ((flow: Flow) => boolean)[] = [];
  const slotChecks: (SlotCheck | undefined)[] = [];
  const add = (check: (flow: Flow) => boolean, slotCheck: SlotCheck | undefined) => {
    checks.push(check);
    slotChecks.push(slotCheck);
  };
  const forced = "userspace filtering requested";

  const markInKernel = f.mark !== undefined && !userspaceOnly;
  if (f.mark) {
    if (markInKernel) plan.kernel.push("mark");
    else {
      plan.userspace.push({ part: "mark", reason: forced });
      const { value, mask } = f.mark;
      add(
        (flow) => (((flow.mark ?? 0) & mask) >>> 0) === value,
        (b, v, s) => (((slotValue(b, v, s, S.S_MARK, 4) ?? 0) & mask) >>> 0) === value,
      );
    }
  }
  const statusInKernel = f.status !== undefined && !userspaceOnly && atLeast(release, 5, 15);
  if (f.status) {
    if (statusInKernel) plan.kernel.push("status");
    else {
      plan.userspace.push({
        part: "status",
        reason: userspaceOnly ? forced : "status filtering in dumps needs Linux 5.15",
      });
      const { value, mask } = f.status;
      add(
        (flow) => ((flow.status & mask) >>> 0) === value,
        (b, v, s) => (((slotValue(b, v, s, S.S_STATUS, 4) ?? 0) & mask) >>> 0) === value,
      );
    }
  }
  const zoneInKernel = f.zone !== undefined && !userspaceOnly && atLeast(release, 6, 8);
  if (f.zone !== undefined) {
    if (zoneInKernel) plan.kernel.push("zone");
    else {
      plan.userspace.push({
        part: "zone",
        reason: userspaceOnly ? forced : "zone filtering in dumps needs Linux 6.8",
      });
      const zone = f.zone;
      add(
        (flow) => (flow.zone ?? flow.orig.zone ?? flow.reply.zone ?? 0) === zone,
        (b, v, s) =>
          (slotValue(b, v, s, S.S_ZONE, 2) ?? slotValue(b, v, s, S.ORIG + S.T_ZONE, 2) ??
            slotValue(b, v, s, S.REPLY + S.T_ZONE, 2) ?? 0) === zone,
      );
    }
  }
  const tuplePlans: [NTuple, TuplePlan, "orig" | "reply"][] = [];
  for (const dir of ["orig", "reply"] as const) {
    const t = f[dir];
    if (!t) continue;
    const p = planTuple(t, dir, f.af, release, userspaceOnly);
    plan.kernel.push(...p.kernel);
    plan.userspace.push(...p.userspace);
    tuplePlans.push([t, p, dir]);
    const userFields = new Set(p.userspace.map((u) => u.part.slice(dir.length + 1)));
    if (userFields.size > 0) {
      add(tupleMatcher(t, userFields, dir), tupleSlotMatcher(t, userFields, dir));
    }
  }

  userspaceOnlyChecks(f, plan, add);

  const encode = (enc: Encoder) => {
    if (markInKernel && f.mark) {
      enc.u32be(C.CTA_MARK, f.mark.value).u32be(C.CTA_MARK_MASK, f.mark.mask);
    }
    if (statusInKernel && f.status) {
      enc.u32be(C.CTA_STATUS, f.status.value).u32be(C.CTA_STATUS_MASK, f.status.mask);
    }
    if (zoneInKernel && f.zone !== undefined) enc.u16be(C.CTA_ZONE, f.zone);
    let origFlags = 0, replyFlags = 0;
    for (const [t, p, dir] of tuplePlans) {
      if (p.flags === 0) continue;
      const type = dir === "orig" ? C.CTA_TUPLE_ORIG : C.CTA_TUPLE_REPLY;
      encodeTuple(enc, type, t, f.af === C.AF_INET6, p.flags);
      if (dir === "orig") origFlags = p.flags;
      else replyFlags = p.flags;
    }
    if (origFlags || replyFlags) {
      // The flags are NLA_U32 in host byte order, unlike the rest of ctnetlink.
      enc.nest(C.CTA_FILTER)
        .u32(C.CTA_FILTER_ORIG_FLAGS, origFlags)
        .u32(C.CTA_FILTER_REPLY_FLAGS, replyFlags)
        .end();
    }
  };

  let match: CompiledFilter["match"];
  if (checks.length === 1) match = checks[0];
  else if (checks.length > 1) match = (flow) => checks.every((check) => check(flow));
  let matchSlots: SlotCheck | undefined;
  if (checks.length > 0 && slotChecks.every((c) => c !== undefined)) {
    const all = slotChecks as SlotCheck[];
    matchSlots = all.length === 1 ? all[0] : (b, v, s) => all.every((check) => check(b, v, s));
  }
  return { plan, encode, match, matchSlots };
}

/** The slot form of {@link tupleMatcher}; undefined for a field it does not read. */
function tupleSlotMatcher(
  t: NTuple,
  fields: Set<string>,
  dir: "orig" | "reply",
): SlotCheck | undefined {
  const base = dir === "orig" ? S.ORIG : S.REPLY;
  const numbers: [number, 1 | 2, number][] = [];
  const addresses: [number, Uint8Array, Uint8Array | undefined][] = [];
  const SLOTS: Record<string, [number, 1 | 2]> = {
    protocol: [S.T_PROTO, 1],
    srcPort: [S.T_SPORT, 2],
    dstPort: [S.T_DPORT, 2],
    icmpType: [S.T_ICMP_TYPE, 1],
    icmpCode: [S.T_ICMP_CODE, 1],
    icmpId: [S.T_ICMP_ID, 2],
  };
  for (const field of fields) {
    if (field === "src" || field === "dst") {
      const slot = base + (field === "src" ? S.T_SRC : S.T_DST);
      const net = field === "src" ? t.srcNet : t.dstNet;
      const exact = t[field];
      // A dumped address's text is inet_ntop's, as a parsed address's text is: text equal is
      // family and bytes equal; a masked match compares the masked bytes (maskedMatcher).
      if (net !== undefined) addresses.push([slot, net.address.bytes, net.mask]);
      else if (exact !== undefined) addresses.push([slot, exact.bytes, undefined]);
      continue;
    }
    const v = t[field as keyof TupleFields];
    if (v === undefined) continue;
    const at = SLOTS[field];
    if (at === undefined || typeof v !== "number") return undefined;
    numbers.push([base + at[0], at[1], v]);
  }
  return (b, v, s) => {
    for (const [slot, size, value] of numbers) {
      if (slotValue(b, v, s, slot, size) !== value) return false;
    }
    for (const [slot, want, mask] of addresses) {
      if (!addressIs(b, s, slot, want, mask)) return false;
    }
    return true;
  };
}

function tupleMatcher(
  t: NTuple,
  fields: Set<string>,
  dir: "orig" | "reply",
): (flow: Flow) => boolean {
  const want: [keyof Tuple, string | number][] = [];
  const nets: [keyof Tuple, (text: string | undefined) => boolean][] = [];
  for (const field of fields) {
    const net = field === "src" ? t.srcNet : field === "dst" ? t.dstNet : undefined;
    if (net !== undefined) {
      nets.push([field as keyof Tuple, maskedMatcher(net)]);
      continue;
    }
    const v = t[field as keyof TupleFields];
    if (v === undefined) continue;
    want.push([field as keyof Tuple, typeof v === "object" ? v.text : v]);
  }
  return (flow) => {
    const tuple = flow[dir];
    for (const [key, value] of want) if (tuple[key] !== value) return false;
    for (const [key, match] of nets) if (!match(tuple[key] as string | undefined)) return false;
    return true;
  };
}

/** The checks of the parts only userspace applies (zones per direction, NAT, labels), with the plan's lines. */
function userspaceOnlyChecks(
  f: NormalizedFilter,
  plan: FilterPlan,
  add: (check: (flow: Flow) => boolean, slotCheck: SlotCheck | undefined) => void,
): void {
  const user = (
    part: string,
    reason: string,
    check: (flow: Flow) => boolean,
    slotCheck?: SlotCheck,
  ) => {
    plan.userspace.push({ part, reason });
    add(check, slotCheck);
  };
  const zoneWhy = "the kernel's zone filter matches the zone of any direction";
  const { entry, orig, reply } = f.zones;
  const zoneIs = (slot: number, zone: number): SlotCheck => (b, v, s) =>
    (slotValue(b, v, s, slot, 2) ?? 0) === zone;
  if (entry !== undefined) {
    user("entryZone", zoneWhy, (flow) => (flow.zone ?? 0) === entry, zoneIs(S.S_ZONE, entry));
  }
  if (orig !== undefined) {
    user(
      "origZone",
      zoneWhy,
      (flow) => (flow.orig.zone ?? 0) === orig,
      zoneIs(S.ORIG + S.T_ZONE, orig),
    );
  }
  if (reply !== undefined) {
    user(
      "replyZone",
      zoneWhy,
      (flow) => (flow.reply.zone ?? 0) === reply,
      zoneIs(S.REPLY + S.T_ZONE, reply),
    );
  }
  const natWhy = "the kernel cannot filter dumps by NAT";
  const { src, dst, any } = f.nat;
  if (src !== undefined) user("snat", natWhy, (flow) => isSourceNat(flow, src));
  if (dst !== undefined) user("dnat", natWhy, (flow) => isDestinationNat(flow, dst));
  if (any !== undefined) {
    user("anyNat", natWhy, (flow) => isSourceNat(flow, any) || isDestinationNat(flow, any));
  }
  const labels = f.labels;
  if (labels !== undefined) {
    user("labels", "the kernel cannot filter dumps by label", (flow) => hasLabels(flow, labels));
  }
}

/**
 * Checks a {@link DumpFilter} without opening anything: throws the same
 * `TypeError`/`RangeError` a dump would (naming the bad part), returns
 * nothing when the filter is valid.
 *
 * @example
 * ```ts
 * import { validateFilter } from "@ctnl/conntrack";
 * import { throws } from "node:assert/strict";
 *
 * validateFilter({ orig: { protocol: "tcp", dstPort: 443 } });
 * throws(() => validateFilter({ orig: { src: "10.0.0.1", dst: "fd00::1" } }), TypeError);
 * ```
 */
export function validateFilter(filter: DumpFilter): void {
  normalizeFilter(filter);
}
