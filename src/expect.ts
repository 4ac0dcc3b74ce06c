/**
 * The expectation table (`NFNL_SUBSYS_CTNETLINK_EXP`) as {@link Expectations},
 * a sibling of the {@link Conntrack} handle that made it (`ct.expectations`):
 * the same sockets, the same namespace, the same blocking and non-blocking
 * forms; and the dying and unconfirmed lists of the conntrack table
 * (`IPCTNL_MSG_CT_GET_DYING`, `_UNCONFIRMED`), which are dumps of flows.
 *
 * A sibling rather than more methods on `Conntrack`: the operations keep
 * their names (`dump`, `get`, `create`, `delete`, `flush`, `count`, `stats`,
 * `events`) with arguments of their own (an expectation is named by its
 * expected tuple, created from a master, a tuple and a mask), and the
 * conntrack facade stays one table's.
 *
 * @module
 */

import { parseAddress, type ParsedAddress } from "./address.ts";
import * as C from "./constants.ts";
import type { DecodeOptions } from "./decode.ts";
import {
  decodeExpectationAt,
  decodeExpectStatsAt,
  type Expectation,
  type ExpectStats,
} from "./expect_decode.ts";
import { ArgumentError, ClosedError, ERRNO, NetlinkError, type Operation } from "./errors.ts";
import { checkUint, compileFilter, type DumpFilter, normalizeFilter } from "./filter.ts";
import {
  AttrCursor,
  type Encoder,
  newHeader,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REQUEST,
} from "./netlink.ts";
import { flowDecoder, type Prepared } from "./prepare.ts";
import { BatchStream } from "./stream.ts";
import {
  encodeTuple,
  familyNumber,
  type ParsedTuple,
  parseTuple,
  type TupleSpec,
} from "./tuple.ts";
import type { Decoder, Transport } from "./transport.ts";
import type { Family, Flow, Tuple } from "./types.ts";
// For {@link} in the docs.
import type { Conntrack as _Conntrack } from "./conntrack.ts";

/** What selects expectations in a dump.
 *
 * @example
 * ```ts
 * import type { ExpectDumpFilter } from "@ctnl/conntrack";
 *
 * const filter: ExpectDumpFilter = { family: "ipv4", helper: "ftp" };
 * void filter; // ct.expectations.dump(filter)
 * ```
 */
export interface ExpectDumpFilter {
  /** Only this family's expectations (in the kernel). */
  family?: Family | undefined;
  /**
   * Only the expectations of this connection, named by its original tuple
   * (in the kernel: `CTA_EXPECT_MASTER`; a master that does not exist is `ENOENT`).
   */
  master?: TupleSpec | Tuple | undefined;
  /** The master's zone (with `master`). */
  zone?: number | undefined;
  /** Only the expectations of this helper (in ctnl). */
  helper?: string | undefined;
}

/** The mask of an expectation to create: which bits of the expected tuple must match.
 *
 * @example
 * ```ts
 * import type { ExpectMaskSpec } from "@ctnl/conntrack";
 *
 * // Any source port (an FTP data connection), everything else exact: the default.
 * const mask: ExpectMaskSpec = { srcPort: 0 };
 * void mask;
 * ```
 */
export interface ExpectMaskSpec {
  /** Source address mask (default all ones: `255.255.255.255`, `ffff:…:ffff`). */
  src?: string | undefined;
  /** Destination address mask (default all ones). */
  dst?: string | undefined;
  /** Source port mask (default 0xffff). */
  srcPort?: number | undefined;
  /** Destination port mask (default 0xffff). */
  dstPort?: number | undefined;
  /** ICMP type mask (default 0xff). */
  icmpType?: number | undefined;
  /** ICMP code mask (default 0xff). */
  icmpCode?: number | undefined;
  /** ICMP id mask (default 0xffff). */
  icmpId?: number | undefined;
}

/** An expectation to create (conntrack `-I expect`).
 *
 * @example
 * ```ts
 * import type { ExpectationSpec } from "@ctnl/conntrack";
 *
 * const spec: ExpectationSpec = {
 *   master: { src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 40000, dstPort: 21 },
 *   tuple: { src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 0, dstPort: 50000 },
 *   mask: { srcPort: 0 },
 *   timeout: 60,
 * };
 * void spec; // await ct.expectations.create(spec)
 * ```
 */
export interface ExpectationSpec {
  /** The original tuple of the master connection (it must exist, with a helper). */
  master: TupleSpec | Tuple;
  /** The connection expected (its original direction). */
  tuple: TupleSpec | Tuple;
  /** Which bits of `tuple` must match (default: every bit). */
  mask?: ExpectMaskSpec | undefined;
  /** Seconds (`CTA_EXPECT_TIMEOUT`; a helper's policy may set its own). */
  timeout?: number | undefined;
  /** The helper of the expected connection, by name (`CTA_EXPECT_HELP_NAME`). */
  helper?: string | undefined;
  /** The zone of the master (`CTA_EXPECT_ZONE`). */
  zone?: number | undefined;
  /** `NF_CT_EXPECT_*` flags, as bits or names (`["PERMANENT"]`; USERSPACE is the kernel's). */
  flags?: number | readonly C.ExpectFlag[] | undefined;
  /** The helper's expectation class (`CTA_EXPECT_CLASS`). */
  class?: number | undefined;
  /** NAT for the expected connection: the address (and port) to map to, and the direction. */
  nat?: {
    direction: "original" | "reply";
    src: string;
    srcPort?: number | undefined;
  } | undefined;
  /** The function to run on the expected connection (`CTA_EXPECT_FN`, e.g. `"nat-follow-master"`). */
  fn?: string | undefined;
}

/** An expectation named for `get` and `delete`: its expected tuple, or a dumped {@link Expectation}.
 *
 * @example
 * ```ts
 * import type { ExpectRef } from "@ctnl/conntrack";
 *
 * const ref: ExpectRef = {
 *   src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 0, dstPort: 50000,
 * };
 * void ref; // await ct.expectations.get(ref)
 * ```
 */
export type ExpectRef = TupleSpec | Tuple | Expectation;

/** Options of {@link Expectations.get} and {@link Expectations.delete}.
 *
 * @example
 * ```ts
 * import type { ExpectRefOptions } from "@ctnl/conntrack";
 *
 * const options: ExpectRefOptions = { zone: 7 };
 * void options;
 * ```
 */
export interface ExpectRefOptions {
  /** The zone (default: a dumped expectation's). */
  zone?: number | undefined;
}

/** Options of {@link Expectations.events}.
 *
 * @example
 * ```ts
 * import type { ExpectEventOptions } from "@ctnl/conntrack";
 *
 * const options: ExpectEventOptions = { types: ["new"], signal: AbortSignal.timeout(10_000) };
 * void options;
 * ```
 */
export interface ExpectEventOptions extends DecodeOptions {
  /** Which events (default both). */
  types?: readonly ("new" | "destroy")[] | undefined;
  /** Only this family's. */
  family?: Family | undefined;
  /** Socket receive buffer in bytes (default 8 MiB). */
  bufferSize?: number | undefined;
  /** Ask the kernel not to report overruns (`NETLINK_NO_ENOBUFS`). */
  noEnobufs?: boolean | undefined;
  /** Ends the stream when aborted. */
  signal?: AbortSignal | undefined;
}

/** One expectation event; `lost` when the kernel dropped events (the running count).
 *
 * @example
 * ```ts
 * import type { ExpectEvent } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const e: ExpectEvent = { type: "lost", lost: 1 };
 * equal(e.type, "lost");
 * ```
 */
export type ExpectEvent =
  | { type: "new" | "destroy"; expectation: Expectation; portId: number }
  | { type: "lost"; lost: number };

/** Which list of the conntrack table {@link Conntrack.dumpList} reads.
 *
 * @example
 * ```ts
 * import type { ConntrackList } from "@ctnl/conntrack";
 *
 * const list: ConntrackList = "dying";
 * void list;
 * ```
 */
export type ConntrackList = "dying" | "unconfirmed";

/** What an {@link Expectations} handle needs of its {@link Conntrack}. */
export interface ExpectHost {
  /** A transport free for a new operation. */
  free(): Transport;
  /** The handle's own transport (subscriptions are made on it). */
  readonly main: Transport;
}

const EXP = C.NFNL_SUBSYS_CTNETLINK_EXP << 8;
const AF: Readonly<Record<Family, number>> = { ipv4: C.AF_INET, ipv6: C.AF_INET6 };

/** The family number of a filter's `family` (0: every family). */
function familyOf(family: unknown, argument: string): number {
  if (family === undefined) return C.AF_UNSPEC;
  if (family === "ipv4" || family === "ipv6") return AF[family];
  throw new ArgumentError(argument, family, `"${String(family)}" is not "ipv4" or "ipv6"`);
}

function isExpectation(ref: ExpectRef): ref is Expectation {
  return typeof ref === "object" && ref !== null && "mask" in ref && "master" in ref;
}

function checkObject(value: unknown, argument: string, keys?: ReadonlySet<string>): void {
  if (value === null || typeof value !== "object") {
    throw new ArgumentError(argument, value, `${String(value)} is not an object`);
  }
  for (const key of keys === undefined ? [] : Object.keys(value)) {
    if (!keys!.has(key)) throw new ArgumentError(argument, key, `unknown field "${key}"`);
  }
}

const FILTER_KEYS = new Set(["family", "master", "zone", "helper"]);
const SPEC_KEYS = new Set([
  "master",
  "tuple",
  "mask",
  "timeout",
  "helper",
  "zone",
  "flags",
  "class",
  "nat",
  "fn",
]);

/** Starts an expectation-subsystem request. */
function begin(t: Transport, msg: number, flags: number, seq: number, af: number): Encoder {
  return t.encoder.begin(EXP | msg, flags, seq, af);
}

const decodeOne = (options: DecodeOptions): Decoder<Expectation> => {
  const o: DecodeOptions = { keepUnknown: options.keepUnknown ?? false };
  return (c, bytes, view, h) => decodeExpectationAt(c, bytes, view, h.offset, h.length, o);
};

/** The dump request of `filter`. */
function dumpRequest(
  t: Transport,
  filter: ExpectDumpFilter,
  options: DecodeOptions,
): Prepared<Expectation> {
  checkObject(filter, "filter", FILTER_KEYS);
  let af = familyOf(filter.family, "filter.family");
  const m = filter.master === undefined ? undefined : parseTuple(filter.master, "filter.master");
  if (m !== undefined) {
    if (af !== C.AF_UNSPEC && familyNumber(m) !== af) {
      throw new ArgumentError("filter.master", filter.master, `is not ${filter.family}`);
    }
    af = familyNumber(m); // the kernel reads the master's addresses in this family
  }
  const seq = t.nextSeq();
  const enc = begin(t, C.IPCTNL_MSG_EXP_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, af);
  if (m !== undefined && filter.master !== undefined) {
    encodeTuple(enc, C.CTA_EXPECT_MASTER, m, m.family === "ipv6");
    const zone = filter.zone ?? filter.master.zone;
    if (zone !== undefined) enc.u16be(C.CTA_EXPECT_ZONE, checkUint(zone, 65535, "filter.zone"));
  }
  const helper = filter.helper;
  if (helper !== undefined && typeof helper !== "string") {
    throw new ArgumentError("filter.helper", helper, `${String(helper)} is not a string`);
  }
  return {
    transport: t,
    operation: "dump",
    request: enc.finish(),
    seq,
    replyType: EXP | C.IPCTNL_MSG_EXP_NEW,
    decode: decodeOne(options),
    options: helper === undefined ? {} : { keep: (e) => e.helper === helper },
  };
}

/** The tuple and zone that name `ref`. */
function named(ref: ExpectRef, options: ExpectRefOptions): { t: ParsedTuple; zone?: number } {
  checkObject(ref, "tuple");
  const exp = isExpectation(ref) ? ref : undefined;
  const t = parseTuple(exp === undefined ? ref as TupleSpec : exp.tuple, "tuple");
  const given = options.zone ?? (exp === undefined ? (ref as TupleSpec).zone : exp.zone);
  return given === undefined ? { t } : { t, zone: checkUint(given, 65535, "zone") };
}

/** A request naming one expectation (get, delete). */
function namedRequest(t: Transport, msg: number, ref: ExpectRef, options: ExpectRefOptions) {
  const { t: tuple, zone } = named(ref, options);
  const seq = t.nextSeq();
  const enc = begin(t, msg, NLM_F_REQUEST | NLM_F_ACK, seq, familyNumber(tuple));
  encodeTuple(enc, C.CTA_EXPECT_TUPLE, tuple, tuple.family === "ipv6");
  if (zone !== undefined) enc.u16be(C.CTA_EXPECT_ZONE, zone);
  return { seq, request: enc.finish(), tuple };
}

const ONES: Readonly<Record<Family, ParsedAddress>> = {
  ipv4: parseAddress("255.255.255.255", "mask"),
  ipv6: parseAddress("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "mask"),
};

/** The mask tuple of `spec` for the expected tuple `t`. */
function maskTuple(t: ParsedTuple, spec: ExpectMaskSpec | undefined): ParsedTuple {
  const m = spec ?? {};
  checkObject(m, "mask");
  const address = (text: string | undefined, argument: string) => {
    if (text === undefined) return ONES[t.family];
    const a = parseAddress(text, argument);
    if (a.family !== t.family) throw new ArgumentError(argument, text, `is not ${t.family}`);
    return a;
  };
  const num = (v: number | undefined, max: number, argument: string, present: boolean) =>
    present ? (v === undefined ? max : checkUint(v, max, argument)) : undefined;
  const ports = t.srcPort !== undefined;
  const icmp = t.icmpType !== undefined;
  return {
    family: t.family,
    src: address(m.src, "mask.src"),
    dst: address(m.dst, "mask.dst"),
    protocol: t.protocol,
    srcPort: num(m.srcPort, 0xffff, "mask.srcPort", ports),
    dstPort: num(m.dstPort, 0xffff, "mask.dstPort", ports),
    icmpType: num(m.icmpType, 0xff, "mask.icmpType", icmp),
    icmpCode: num(m.icmpCode, 0xff, "mask.icmpCode", icmp),
    icmpId: num(m.icmpId, 0xffff, "mask.icmpId", icmp),
  };
}

function flagBits(flags: ExpectationSpec["flags"]): number {
  if (typeof flags === "number") return checkUint(flags, 0xffffffff, "flags");
  if (!Array.isArray(flags)) throw new ArgumentError("flags", flags, "is not a number or names");
  let bits = 0;
  for (const name of flags) {
    const bit = Object.hasOwn(C.EXPECT_FLAGS, name) ? C.EXPECT_FLAGS[name as C.ExpectFlag] : 0;
    if (bit === 0) {
      throw new ArgumentError(
        "flags",
        name,
        `"${String(name)}" is not PERMANENT, INACTIVE or USERSPACE`,
      );
    }
    bits |= bit;
  }
  return bits;
}

function checkString(value: unknown, argument: string): string {
  if (typeof value !== "string" || value.length === 0) {
    throw new ArgumentError(argument, value, `${String(value)} is not a name`);
  }
  return value;
}

/** The create request of `spec`. */
function createRequest(tr: Transport, spec: ExpectationSpec) {
  checkObject(spec, "spec", SPEC_KEYS);
  const master = parseTuple(spec.master, "master");
  const tuple = parseTuple(spec.tuple, "tuple");
  if (master.family !== tuple.family) {
    throw new ArgumentError(
      "tuple",
      spec.tuple,
      `is ${tuple.family} but master is ${master.family}`,
    );
  }
  const mask = maskTuple(tuple, spec.mask);
  const v6 = tuple.family === "ipv6";
  const seq = tr.nextSeq();
  const flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  const enc = begin(tr, C.IPCTNL_MSG_EXP_NEW, flags, seq, familyNumber(tuple));
  encodeTuple(enc, C.CTA_EXPECT_MASTER, master, v6);
  encodeTuple(enc, C.CTA_EXPECT_TUPLE, tuple, v6);
  encodeTuple(enc, C.CTA_EXPECT_MASK, mask, v6);
  if (spec.timeout !== undefined) {
    enc.u32be(C.CTA_EXPECT_TIMEOUT, checkUint(spec.timeout, 0xffffffff, "timeout"));
  }
  const zone = spec.zone ?? spec.master.zone;
  if (zone !== undefined) enc.u16be(C.CTA_EXPECT_ZONE, checkUint(zone, 65535, "zone"));
  if (spec.flags !== undefined) enc.u32be(C.CTA_EXPECT_FLAGS, flagBits(spec.flags));
  if (spec.helper !== undefined) {
    enc.bytes(C.CTA_EXPECT_HELP_NAME, cString(checkString(spec.helper, "helper")));
  }
  if (spec.class !== undefined) {
    enc.u32be(C.CTA_EXPECT_CLASS, checkUint(spec.class, 0xffffffff, "class"));
  }
  if (spec.nat !== undefined) encodeNat(enc, spec.nat, master);
  if (spec.fn !== undefined) enc.bytes(C.CTA_EXPECT_FN, cString(checkString(spec.fn, "fn")));
  return { seq, request: enc.finish() };
}

function encodeNat(enc: Encoder, nat: NonNullable<ExpectationSpec["nat"]>, master: ParsedTuple) {
  checkObject(nat, "nat");
  if (nat.direction !== "original" && nat.direction !== "reply") {
    throw new ArgumentError("nat.direction", nat.direction, `is not "original" or "reply"`);
  }
  const src = parseAddress(nat.src, "nat.src");
  if (src.family !== master.family) {
    throw new ArgumentError("nat.src", nat.src, `is not ${master.family}`);
  }
  const ports = master.srcPort !== undefined;
  const port = nat.srcPort === undefined ? 0 : checkUint(nat.srcPort, 65535, "nat.srcPort");
  enc.nest(C.CTA_EXPECT_NAT).u32be(C.CTA_EXPECT_NAT_DIR, nat.direction === "original" ? 0 : 1);
  // The kernel reads the saved address and port from the source side of this tuple.
  encodeTuple(enc, C.CTA_EXPECT_NAT_TUPLE, {
    ...master,
    src,
    dst: src,
    srcPort: ports ? port : undefined,
    dstPort: ports ? 0 : undefined,
  }, master.family === "ipv6");
  enc.end();
}

const ENCODER = new TextEncoder();

function cString(s: string): Uint8Array {
  const bytes = ENCODER.encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/** The flush request: every expectation, or a helper's. */
function flushRequest(t: Transport, helper: string | undefined) {
  const seq = t.nextSeq();
  const enc = begin(t, C.IPCTNL_MSG_EXP_DELETE, NLM_F_REQUEST | NLM_F_ACK, seq, C.AF_UNSPEC);
  if (helper !== undefined) {
    enc.bytes(C.CTA_EXPECT_HELP_NAME, cString(checkString(helper, "helper")));
  }
  return { seq, request: enc.finish() };
}

/** The per-CPU stats request. */
function statsRequest(t: Transport): Prepared<ExpectStats> {
  const seq = t.nextSeq();
  const flags = NLM_F_REQUEST | NLM_F_DUMP;
  return {
    transport: t,
    operation: "stats",
    request: begin(t, C.IPCTNL_MSG_EXP_GET_STATS_CPU, flags, seq, C.AF_UNSPEC).finish(),
    seq,
    // The kernel answers in ctnetlink's subsystem, not the expectation one's.
    replyType: (C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_EXP_GET_STATS_CPU,
    decode: decodeExpectStatsAt,
    options: {},
  };
}

/**
 * The dump of the dying or unconfirmed list, filtered in ctnl (the kernel
 * filters these lists by family only).
 */
export function listRequest(
  t: Transport,
  release: string,
  list: ConntrackList,
  filter: DumpFilter | undefined,
  options: DecodeOptions,
): Prepared<Flow> {
  if (list !== "dying" && list !== "unconfirmed") {
    throw new ArgumentError("list", list, `"${String(list)}" is not "dying" or "unconfirmed"`);
  }
  const compiled = compileFilter(normalizeFilter(filter), release, true);
  const af = familyOf(compiled.plan.family === "all" ? undefined : compiled.plan.family, "family");
  const msg = list === "dying" ? C.IPCTNL_MSG_CT_GET_DYING : C.IPCTNL_MSG_CT_GET_UNCONFIRMED;
  const seq = t.nextSeq();
  return {
    transport: t,
    operation: "dump",
    request: t.begin(msg, NLM_F_REQUEST | NLM_F_DUMP, seq, af).finish(),
    seq,
    replyType: C.IPCTNL_MSG_CT_NEW, // as a dump of the table
    decode: flowDecoder(options),
    options: compiled.match === undefined ? {} : { keep: compiled.match },
  };
}

/** Every value of `p`'s exchange, blocking. */
export function* allSync<T>(p: Prepared<T>): Generator<T, void, undefined> {
  yield* p.transport.exchange(p.operation, p.request, p.seq, p.replyType, p.decode, p.options);
}

/** Every value of `p`'s exchange (prepared on the first `next()`), without blocking. */
export function all<T>(prepare: () => Prepared<T>): AsyncIterableIterator<T> {
  return new BatchStream(() => {
    const p = prepare();
    return p.transport.exchangeAsync(
      p.operation,
      p.request,
      p.seq,
      p.replyType,
      p.decode,
      p.options,
    );
  }, () => {});
}

/** The one value of a get, or its `ENOENT`. */
function found(exp: Expectation | undefined, tuple: ParsedTuple, seq: number): Expectation {
  if (exp !== undefined) return exp;
  throw new NetlinkError("get", ERRNO.ENOENT, { extAck: "no expectation in the reply", seq })
    .about(describe(tuple));
}

/** How a request names an expectation in errors. */
function describe(t: ParsedTuple): string {
  const ports = t.srcPort === undefined ? "" : ` sport=${t.srcPort} dport=${t.dstPort}`;
  return `expectation src=${t.src.text} dst=${t.dst.text} proto=${t.protocol}${ports}`;
}

/** The error of a request about `tuple`, saying which expectation. */
function about(error: unknown, tuple: ParsedTuple | undefined): unknown {
  if (!(error instanceof NetlinkError) || error.subject !== undefined || tuple === undefined) {
    return error;
  }
  return error.about(describe(tuple));
}

/** True when a delete failed because the expectation went meanwhile (`ENOENT`); else rethrows. */
function vanished(error: unknown): true {
  if (error instanceof NetlinkError && error.errno === ERRNO.ENOENT) return true;
  throw error;
}

/** Creates the {@link Expectations} of a {@link Conntrack} handle (not part of mod.ts). */
export let newExpectations: (host: ExpectHost) => Expectations;

/**
 * The expectation table of a {@link Conntrack} handle's namespace
 * (`ct.expectations`): what helpers such as ftp, tftp, sip and h323
 * expect to come. It uses the handle's sockets, and closes with it. As on
 * the handle, what returns a Promise or an async iterable waits without
 * holding the event loop; each `…Sync` twin blocks.
 *
 * @example List, count and watch (needs root and `--allow-ffi`)
 * ```ts ignore
 * import { Conntrack } from "@ctnl/conntrack";
 *
 * using ct = Conntrack.open();
 * for await (const e of ct.expectations.dump({ helper: "ftp" })) {
 *   console.log(e.tuple.dst, e.tuple.dstPort, e.timeout);
 * }
 * console.log(await ct.expectations.count());
 * ```
 */
export class Expectations {
  #host: ExpectHost;

  private constructor(host: ExpectHost) {
    this.#host = host;
  }

  static {
    newExpectations = (host) => new Expectations(host);
  }

  /**
   * Streams the expectations (or those `filter` selects) without blocking.
   * {@link dumpSync} blocks.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * for await (const e of ct.expectations.dump({ family: "ipv6" })) console.log(e.helper);
   * ```
   */
  dump(
    filter: ExpectDumpFilter = {},
    options: DecodeOptions = {},
  ): AsyncIterableIterator<Expectation> {
    return all(() => dumpRequest(this.#host.free(), filter, options));
  }

  /** {@link dump}, blocking while it waits for the kernel. */
  dumpSync(
    filter: ExpectDumpFilter = {},
    options: DecodeOptions = {},
  ): Generator<Expectation, void, undefined> {
    return allSync(dumpRequest(this.#host.free(), filter, options));
  }

  /**
   * Gets one expectation, named by its expected tuple (a connection the
   * mask lets through names it too) or by a dumped {@link Expectation}. A
   * missing one is a {@link NetlinkError} with code `ENOENT`.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * const e = await ct.expectations.get({
   *   src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 0, dstPort: 50000,
   * });
   * console.log(e.timeout);
   * ```
   */
  async get(ref: ExpectRef, options: ExpectRefOptions = {}): Promise<Expectation> {
    let tuple: ParsedTuple | undefined;
    try {
      const t = this.#host.free();
      const r = namedRequest(t, C.IPCTNL_MSG_EXP_GET, ref, options);
      tuple = r.tuple;
      let last: Expectation | undefined;
      const decode = decodeOne({});
      for await (const batch of t.exchangeAsync("get", r.request, r.seq, EXP, decode)) {
        last = batch.at(-1) ?? last;
      }
      return found(last, r.tuple, r.seq);
    } catch (error) {
      throw about(error, tuple);
    }
  }

  /** {@link get}, blocking while it waits for the kernel. */
  getSync(ref: ExpectRef, options: ExpectRefOptions = {}): Expectation {
    let tuple: ParsedTuple | undefined;
    try {
      const t = this.#host.free();
      const r = namedRequest(t, C.IPCTNL_MSG_EXP_GET, ref, options);
      tuple = r.tuple;
      let last: Expectation | undefined;
      for (const e of t.exchange("get", r.request, r.seq, EXP, decodeOne({}))) last = e;
      return found(last, r.tuple, r.seq);
    } catch (error) {
      throw about(error, tuple);
    }
  }

  /**
   * Creates an expectation (conntrack `-I expect`): its master must exist
   * and have a helper (else `EOPNOTSUPP`; a missing master is `ENOENT`); an
   * existing one is `EEXIST`.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * await ct.expectations.create({
   *   master: { src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 40000, dstPort: 21 },
   *   tuple: { src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 0, dstPort: 50000 },
   *   mask: { srcPort: 0 },
   *   timeout: 60,
   * });
   * ```
   */
  async create(spec: ExpectationSpec): Promise<void> {
    const t = this.#host.free();
    const r = createRequest(t, spec);
    await t.ackAsync("create", r.request, r.seq);
  }

  /** {@link create}, blocking while it waits for the kernel. */
  createSync(spec: ExpectationSpec): void {
    const t = this.#host.free();
    const r = createRequest(t, spec);
    t.ack("create", r.request, r.seq);
  }

  /**
   * Deletes one expectation, named by its expected tuple or a dumped
   * {@link Expectation} (its zone kept). A missing one is `ENOENT`.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * for (const e of ct.expectations.dumpSync({ helper: "tftp" })) await ct.expectations.delete(e);
   * ```
   */
  async delete(ref: ExpectRef, options: ExpectRefOptions = {}): Promise<void> {
    await this.#ack("delete", ref, options, false);
  }

  /** {@link delete}, blocking while it waits for the kernel. */
  deleteSync(ref: ExpectRef, options: ExpectRefOptions = {}): void {
    this.#ack("delete", ref, options, true);
  }

  #ack(operation: Operation, ref: ExpectRef, options: ExpectRefOptions, sync: true): void;
  #ack(operation: Operation, ref: ExpectRef, options: ExpectRefOptions, sync: false): Promise<void>;
  #ack(operation: Operation, ref: ExpectRef, options: ExpectRefOptions, sync: boolean) {
    let tuple: ParsedTuple | undefined;
    const fail = (error: unknown) => {
      throw about(error, tuple);
    };
    try {
      const t = this.#host.free();
      const r = namedRequest(t, C.IPCTNL_MSG_EXP_DELETE, ref, options);
      tuple = r.tuple;
      if (sync) return t.ack(operation, r.request, r.seq);
      return t.ackAsync(operation, r.request, r.seq).catch(fail);
    } catch (error) {
      return fail(error);
    }
  }

  /**
   * Deletes every expectation `filter` selects and returns how many it
   * deleted (those that expire meanwhile are not counted). `onDelete` sees
   * each one deleted.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * console.log(await ct.expectations.deleteWhere({ helper: "ftp", family: "ipv6" }));
   * ```
   */
  async deleteWhere(
    filter: ExpectDumpFilter = {},
    options: { onDelete?: (e: Expectation) => void } = {},
  ): Promise<number> {
    let n = 0;
    for await (const e of this.dump(filter)) {
      try {
        await this.delete(e);
      } catch (error) {
        if (vanished(error)) continue;
      }
      options.onDelete?.(e);
      n++;
    }
    return n;
  }

  /** {@link deleteWhere}, blocking while it waits for the kernel. */
  deleteWhereSync(
    filter: ExpectDumpFilter = {},
    options: { onDelete?: (e: Expectation) => void } = {},
  ): number {
    let n = 0;
    for (const e of this.dumpSync(filter)) {
      try {
        this.deleteSync(e);
      } catch (error) {
        if (vanished(error)) continue;
      }
      options.onDelete?.(e);
      n++;
    }
    return n;
  }

  /**
   * Empties the expectation table (conntrack `-F expect`), or deletes only
   * one helper's expectations.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * await ct.expectations.flush({ helper: "sip" });
   * ```
   */
  async flush(options: { helper?: string | undefined } = {}): Promise<void> {
    const t = this.#host.free();
    const r = flushRequest(t, options.helper);
    await t.ackAsync("flush", r.request, r.seq);
  }

  /** {@link flush}, blocking while it waits for the kernel. */
  flushSync(options: { helper?: string | undefined } = {}): void {
    const t = this.#host.free();
    const r = flushRequest(t, options.helper);
    t.ack("flush", r.request, r.seq);
  }

  /**
   * The number of expectations (of one family with `filter.family`),
   * counted over a dump: the kernel keeps no count of its own to ask for.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * console.log(await ct.expectations.count());
   * ```
   */
  async count(filter: ExpectDumpFilter = {}): Promise<number> {
    let n = 0;
    for await (const _ of this.dump(filter)) n++;
    return n;
  }

  /** {@link count}, blocking while it waits for the kernel. */
  countSync(filter: ExpectDumpFilter = {}): number {
    let n = 0;
    for (const _ of this.dumpSync(filter)) n++;
    return n;
  }

  /**
   * Per-CPU expectation statistics (`IPCTNL_MSG_EXP_GET_STATS_CPU`), as
   * `conntrack -S expect` shows them.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * for (const s of await ct.expectations.stats()) console.log(s.cpu, s.create);
   * ```
   */
  async stats(): Promise<ExpectStats[]> {
    const out: ExpectStats[] = [];
    for await (const s of all(() => statsRequest(this.#host.free()))) out.push(s);
    return out;
  }

  /** {@link stats}, blocking while it waits for the kernel. */
  statsSync(): ExpectStats[] {
    return [...allSync(statsRequest(this.#host.free()))];
  }

  /**
   * Watches the expectation table live (conntrack `-E expect`): new and
   * destroyed expectations, on a socket of its own subscribed to
   * `NFNLGRP_CONNTRACK_EXP_NEW`/`_DESTROY`; a sibling of
   * {@link Conntrack.events}, with the same waiting (readiness, no timer),
   * overrun reporting (`lost`) and ending (stop iterating, `signal`, close).
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * for await (const e of ct.expectations.events()) {
   *   if (e.type !== "lost") console.log(e.type, e.expectation.tuple.dstPort);
   * }
   * ```
   */
  async *events(options: ExpectEventOptions = {}): AsyncGenerator<ExpectEvent, void, undefined> {
    yield* watchExpectations(this.#host.main, options);
  }
}

const EVENT_GROUPS: Readonly<Record<string, number>> = {
  new: C.NFNLGRP_CONNTRACK_EXP_NEW,
  destroy: C.NFNLGRP_CONNTRACK_EXP_DESTROY,
};

async function* watchExpectations(
  transport: Transport,
  options: ExpectEventOptions,
): AsyncGenerator<ExpectEvent, void, undefined> {
  if (transport.closed) throw new ClosedError("events");
  checkObject(options, "options");
  const types = options.types ?? ["new", "destroy"];
  const groups = types.map((type) => {
    const group = EVENT_GROUPS[type];
    if (group === undefined) {
      throw new ArgumentError("types", type, `"${String(type)}" is not "new" or "destroy"`);
    }
    return group;
  });
  const family = options.family === undefined ? undefined : familyOf(options.family, "family");
  const decode = decodeOne(options);
  const cursor = new AttrCursor();
  const h = newHeader();
  const subscription = transport.subscribe(groups, options, h);
  const signal = options.signal;
  let onAbort = () => {};
  const aborted = signal === undefined ? undefined : new Promise<boolean>((resolve) => {
    onAbort = () => {
      resolve(true);
      subscription.wake();
    };
    if (signal.aborted) resolve(true);
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  let lost = 0;
  let lossPending = false;
  try {
    for (const m of subscription.messages) {
      if (signal?.aborted) return;
      if (m === "overrun") {
        lost++;
        lossPending = true;
      } else if (m === "idle") {
        if (lossPending) {
          lossPending = false;
          yield { type: "lost", lost };
        } else {
          const wait = subscription.wait();
          await (aborted === undefined ? wait : Promise.race([wait, aborted]));
        }
      } else if (
        h.type === (EXP | C.IPCTNL_MSG_EXP_NEW) || h.type === (EXP | C.IPCTNL_MSG_EXP_DELETE)
      ) {
        const type = h.type === (EXP | C.IPCTNL_MSG_EXP_NEW) ? "new" : "destroy";
        if (!types.includes(type)) continue;
        const expectation = decode(cursor, m.bytes, m.view, h);
        if (family !== undefined && AF[expectation.family] !== family) continue;
        yield { type, expectation, portId: h.pid };
      }
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    subscription.messages.return();
  }
}
