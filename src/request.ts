/**
 * Request encoding: the requests that name one entry ({@link beginNamed}),
 * create requests ({@link beginCreate}) and the attributes of create and
 * update requests ({@link encodeChanges}); tuples are encoded by
 * src/tuple.ts.
 *
 * @module
 */

import * as C from "./constants.ts";
import { ArgumentError } from "./errors.ts";
import { checkUint, statusBits, type StatusValue } from "./filter.ts";
import { type Encoder, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST } from "./netlink.ts";
import type { CreateSpec, DeleteOptions } from "./options.ts";
import { DCCP_STATES, SCTP_STATES, TCP_STATES } from "./protocols.ts";
import type { Transport } from "./transport.ts";

/** What request building needs of a transport: a ctnetlink message begun in an encoder. */
export type RequestStart = Pick<Transport, "begin">;
import { parseAddress } from "./address.ts";
import { labelMask } from "./match.ts";
import {
  ALL_FIELDS,
  encodeTuple,
  familyNumber,
  invertTuple,
  type ParsedTuple,
  parseTuple,
  type TupleSpec,
  tupleSpecOf,
} from "./tuple.ts";
import type { Flow, Tuple } from "./types.ts";

/** What {@link encodeChanges} can set on a new or existing entry.
 *
 * @example
 * ```ts
 * import type { FlowChanges } from "@ctnl/conntrack";
 *
 * const changes: FlowChanges = { mark: 42, timeout: 600, status: ["ASSURED"] };
 * void changes; // ct.update(tuple, changes)
 * ```
 */
export interface FlowChanges {
  /** Timeout in seconds. */
  timeout?: number;
  /** Connection mark. */
  mark?: number;
  /** Status bits to set (`["ASSURED", "SEEN_REPLY"]` or a bitmask). */
  status?: StatusValue;
  /** Connection label bits to set (0–127); the others are kept. */
  labels?: readonly number[];
  /**
   * Connection label bits to clear (0–127), or `"all"` (conntrack's
   * `--label-del`); with `labels`, a bit in both is set. The kernel changes
   * labels only of an entry that has room for them (`ENOSPC` otherwise:
   * labels are attached when the namespace uses them, e.g. an nftables
   * `ct label` rule, before the entry is made).
   */
  labelsRemove?: readonly number[] | "all";
  /** TCP state by name (`"ESTABLISHED"`) or number, for TCP entries. */
  tcpState?: string | number;
  /**
   * SCTP state by name (`"ESTABLISHED"`) or number with the verification
   * tags of both directions, for SCTP entries (conntrack's `--state`,
   * `--orig-vtag`, `--reply-vtag`; the kernel needs all three).
   */
  sctp?: { state: string | number; vtagOrig: number; vtagReply: number } | undefined;
  /**
   * DCCP state by name (`"OPEN"`) or number and role (conntrack's `--state`
   * and `--role`). A kernel that does not track DCCP (it tracks it as a
   * generic protocol) ignores them.
   */
  dccp?: { state: string | number; role: "client" | "server" | number } | undefined;
}

/** A state by name (any case) or number in `table`. */
function stateNumber(table: readonly string[], state: string | number, argument: string): number {
  if (typeof state === "number") return checkUint(state, table.length - 1, argument);
  const n = table.indexOf(String(state).toUpperCase());
  if (n < 0) throw new ArgumentError(argument, state, `unknown state "${state}"`);
  return n;
}

/** Writes the SCTP or DCCP protocol info of `changes`. */
function encodeProtoinfo(enc: Encoder, changes: FlowChanges, argument: string): void {
  const { sctp, dccp } = changes;
  if (sctp !== undefined) {
    if (sctp === null || typeof sctp !== "object") {
      throw new ArgumentError(`${argument}.sctp`, sctp, "not { state, vtagOrig, vtagReply }");
    }
    const state = stateNumber(SCTP_STATES, sctp.state, `${argument}.sctp.state`);
    const vtagOrig = checkUint(sctp.vtagOrig, 0xffffffff, `${argument}.sctp.vtagOrig`);
    const vtagReply = checkUint(sctp.vtagReply, 0xffffffff, `${argument}.sctp.vtagReply`);
    enc.nest(C.CTA_PROTOINFO).nest(C.CTA_PROTOINFO_SCTP)
      .u8(C.CTA_PROTOINFO_SCTP_STATE, state)
      .u32be(C.CTA_PROTOINFO_SCTP_VTAG_ORIGINAL, vtagOrig)
      .u32be(C.CTA_PROTOINFO_SCTP_VTAG_REPLY, vtagReply)
      .end().end();
  }
  if (dccp !== undefined) {
    if (dccp === null || typeof dccp !== "object") {
      throw new ArgumentError(`${argument}.dccp`, dccp, "not { state, role }");
    }
    const state = stateNumber(DCCP_STATES, dccp.state, `${argument}.dccp.state`);
    const role = dccp.role === "client"
      ? 0
      : dccp.role === "server"
      ? 1
      : checkUint(dccp.role, 1, `${argument}.dccp.role`);
    enc.nest(C.CTA_PROTOINFO).nest(C.CTA_PROTOINFO_DCCP)
      .u8(C.CTA_PROTOINFO_DCCP_STATE, state)
      .u8(C.CTA_PROTOINFO_DCCP_ROLE, role)
      .end().end();
  }
}

function tcpStateNumber(state: string | number): number {
  if (typeof state === "number") return checkUint(state, TCP_STATES.length - 1, "tcpState");
  const n = TCP_STATES.indexOf(String(state).toUpperCase());
  if (n < 0) throw new ArgumentError("tcpState", state, `unknown TCP state "${state}"`);
  return n;
}

/** Validates `changes` and writes their attributes. */
export function encodeChanges(
  enc: Encoder,
  changes: FlowChanges,
  argument: string,
  creating = false,
): void {
  if (changes.status !== undefined) {
    let bits = statusBits(changes.status, `${argument}.status`);
    // The kernel marks a new entry CONFIRMED before applying CTA_STATUS and
    // refuses (EBUSY) a status that would clear it.
    if (creating) bits = (bits | C.CT_STATUS.CONFIRMED) >>> 0;
    enc.u32be(C.CTA_STATUS, bits);
  }
  if (changes.timeout !== undefined) {
    enc.u32be(C.CTA_TIMEOUT, checkUint(changes.timeout, 0xffffffff, `${argument}.timeout`));
  }
  if (changes.mark !== undefined) {
    enc.u32be(C.CTA_MARK, checkUint(changes.mark, 0xffffffff, `${argument}.mark`));
  }
  if (changes.tcpState !== undefined) {
    enc.nest(C.CTA_PROTOINFO).nest(C.CTA_PROTOINFO_TCP)
      .u8(C.CTA_PROTOINFO_TCP_STATE, tcpStateNumber(changes.tcpState)).end().end();
  }
  encodeProtoinfo(enc, changes, argument);
  if (changes.labels !== undefined || changes.labelsRemove !== undefined) {
    // The kernel sets each word to (old & ~mask) ^ labels.
    const set = changes.labels === undefined
      ? new Uint8Array(16)
      : labelMask(changes.labels, `${argument}.labels`);
    const remove = changes.labelsRemove;
    const mask = remove === "all"
      ? new Uint8Array(16).fill(0xff)
      : remove === undefined
      ? set.slice()
      : labelMask(remove, `${argument}.labelsRemove`);
    for (let i = 0; i < 16; i++) mask[i] = mask[i]! | set[i]!;
    enc.bytes(C.CTA_LABELS, set).bytes(C.CTA_LABELS_MASK, mask);
  }
}

/**
 * Where a created entry is NAT-ed to: conntrack's `--src-nat IP[:PORT]` and
 * `--dst-nat IP[:PORT]` on create. The kernel computes the reply tuple
 * from the original one and this (the port applies to TCP and UDP).
 *
 * @example
 * ```ts
 * import type { CreateSpec } from "@ctnl/conntrack";
 *
 * const spec: CreateSpec = {
 *   orig: { src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 4000, dstPort: 80 },
 *   timeout: 60,
 *   tcpState: "ESTABLISHED",
 *   dnat: { address: "10.0.0.9", port: 8080 },
 * };
 * void spec; // ct.create(spec): the reply comes from 10.0.0.9:8080
 * ```
 */
export interface NatSetup {
  /** The address to translate to. */
  address: string;
  /** The port to translate to (TCP and UDP). */
  port?: number | undefined;
}

/** Writes a `CTA_NAT_SRC`/`CTA_NAT_DST` nest as libnetfilter_conntrack builds it. */
function encodeNat(
  enc: Encoder,
  type: number,
  nat: NatSetup,
  orig: ParsedTuple,
  argument: string,
): void {
  if (nat === null || typeof nat !== "object") {
    throw new ArgumentError(argument, nat, `${String(nat)} is not { address, port }`);
  }
  const a = parseAddress(nat.address, `${argument}.address`);
  if (a.family !== orig.family) {
    throw new ArgumentError(
      `${argument}.address`,
      nat.address,
      `${a.family} address for an ${orig.family} entry`,
    );
  }
  enc.nest(type).bytes(a.family === "ipv4" ? C.CTA_NAT_V4_MINIP : C.CTA_NAT_V6_MINIP, a.bytes);
  if (nat.port !== undefined) {
    const port = checkUint(nat.port, 65535, `${argument}.port`);
    enc.nest(C.CTA_NAT_PROTO);
    if (orig.protocol === 6 || orig.protocol === 17) {
      enc.u16be(C.CTA_PROTONAT_PORT_MIN, port).u16be(C.CTA_PROTONAT_PORT_MAX, port);
    }
    enc.end();
  }
  enc.end();
}

/**
 * What names one entry for `get`, `update` and `delete`: a tuple (a
 * `TupleSpec`, or a dumped flow's `Tuple`), or a dumped `Flow` (its original
 * tuple and zone, and for `delete` its id).
 *
 * @example
 * ```ts
 * import type { EntryRef } from "@ctnl/conntrack";
 *
 * const byTuple: EntryRef = { src: "10.0.0.1", dst: "10.0.0.2", protocol: "udp", srcPort: 1, dstPort: 53 };
 * void byTuple; // ct.delete(byTuple), or ct.delete(flow) for a dumped flow
 * ```
 */
export type EntryRef = TupleSpec | Tuple | Flow;

/** A tuple parsed lately: its fields as given, and what they parsed to. */
interface Recent {
  src: unknown;
  dst: unknown;
  protocol: unknown;
  srcPort: unknown;
  dstPort: unknown;
  icmpType: unknown;
  icmpCode: unknown;
  icmpId: unknown;
  parsed: ParsedTuple | undefined;
}

/**
 * The last tuples {@link parseTupleOnce} parsed (a ring): two, as a create
 * checks its reply and original tuple and then encodes both.
 */
const RECENT: Recent[] = Array.from({ length: 2 }, () => ({
  src: undefined,
  dst: undefined,
  protocol: undefined,
  srcPort: undefined,
  dstPort: undefined,
  icmpType: undefined,
  icmpCode: undefined,
  icmpId: undefined,
  parsed: undefined,
}));
let recentNext = 0;

/**
 * {@link parseTuple}, remembering the last few tuples it parsed by their
 * fields (all that `parseTuple` reads): a tuple equal to one of them is
 * not parsed again. The CLI checks each tuple it builds
 * (cli/filters.ts `checkTuple`) just before the request is built from it,
 * so a line of `ctnl load` parses each address once, not twice. What it
 * returns is shared: read it, never change it.
 */
export function parseTupleOnce(tuple: TupleSpec | Tuple, argument = "tuple"): ParsedTuple {
  if (tuple !== null && typeof tuple === "object") {
    const { src, dst, protocol, srcPort, dstPort, icmpType, icmpCode, icmpId } = tuple;
    for (let k = 1; k <= RECENT.length; k++) { // the newest first
      const r = RECENT[(recentNext - k + RECENT.length) % RECENT.length]!;
      const parsed = r.parsed;
      if (
        parsed === undefined || r.protocol !== protocol || r.icmpType !== icmpType ||
        r.icmpCode !== icmpCode || r.icmpId !== icmpId
      ) continue;
      if (r.src === src && r.dst === dst && r.srcPort === srcPort && r.dstPort === dstPort) {
        return parsed;
      }
      // The other direction of a tuple without ICMP fields (a reply after its original):
      // what parseTuple makes of it is the inverse, as invertTuple makes it.
      if (
        parsed.icmpType === undefined && r.src === dst && r.dst === src &&
        r.srcPort === dstPort && r.dstPort === srcPort
      ) return remember(tuple, invertTuple(parsed));
    }
  }
  return remember(tuple, parseTuple(tuple, argument));
}

/** Keeps `parsed`, what `tuple` parses to, in {@link RECENT}. */
function remember(tuple: TupleSpec | Tuple, parsed: ParsedTuple): ParsedTuple {
  const r = RECENT[recentNext]!;
  recentNext = (recentNext + 1) % RECENT.length;
  r.src = tuple.src;
  r.dst = tuple.dst;
  r.protocol = tuple.protocol;
  r.srcPort = tuple.srcPort;
  r.dstPort = tuple.dstPort;
  r.icmpType = tuple.icmpType;
  r.icmpCode = tuple.icmpCode;
  r.icmpId = tuple.icmpId;
  r.parsed = parsed;
  return parsed;
}

/** Whether `ref` is a whole flow rather than a tuple. */
function isFlow(ref: EntryRef): ref is Flow {
  return ref !== null && typeof ref === "object" && "orig" in ref && "reply" in ref;
}

/**
 * Starts a request that names one entry: by `ref`'s tuple (a flow's
 * original tuple), in the zone `options` give, else the one `ref` carries
 * (never dropped), and, for a flow whose id is known, only that entry
 * (`CTA_ID`) when `withId`.
 */
export function beginNamed(
  transport: RequestStart,
  msg: number,
  seq: number,
  ref: EntryRef,
  options: DeleteOptions,
  withId = false,
): Encoder {
  const flow = isFlow(ref) ? ref : undefined;
  const tuple: TupleSpec | Tuple = flow === undefined
    ? ref as TupleSpec | Tuple
    : tupleSpecOf(flow.orig);
  const t = parseTupleOnce(tuple);
  const direction = flow === undefined ? options.direction ?? "orig" : "orig";
  if (direction !== "orig" && direction !== "reply") {
    throw new ArgumentError(
      "direction",
      direction,
      `"${String(direction)}" is not "orig" or "reply"`,
    );
  }
  const zoneGiven = options.zone ?? (flow === undefined ? tuple.zone : flow.zone ?? flow.orig.zone);
  const zone = zoneGiven === undefined ? undefined : checkUint(zoneGiven, 65535, "zone");
  const idGiven = options.id ?? (withId ? flow?.id : undefined);
  const id = idGiven === undefined ? undefined : checkUint(idGiven, 0xffffffff, "id");
  const enc = transport.begin(msg, NLM_F_REQUEST | NLM_F_ACK, seq, familyNumber(t));
  const type = direction === "orig" ? C.CTA_TUPLE_ORIG : C.CTA_TUPLE_REPLY;
  encodeTuple(enc, type, t, t.family === "ipv6");
  if (zone !== undefined) enc.u16be(C.CTA_ZONE, zone);
  if (id !== undefined) enc.u32be(C.CTA_ID, id);
  return enc;
}

/** Writes the create request for `spec` (sequence `seq`) into the transport's encoder. */
export function beginCreate(
  transport: RequestStart,
  spec: CreateSpec,
  seq: number,
  argument: string,
): Encoder {
  if (spec === null || typeof spec !== "object") {
    throw new ArgumentError(argument, spec, `${String(spec)} is not an object`);
  }
  if (spec.timeout === undefined) throw new ArgumentError(argument, spec, "timeout is required");
  const orig = parseTupleOnce(spec.orig, `${argument}.orig`);
  const reply: ParsedTuple = spec.reply === undefined
    ? invertTuple(orig)
    : parseTupleOnce(spec.reply, `${argument}.reply`);
  if (reply.family !== orig.family || reply.protocol !== orig.protocol) {
    throw new ArgumentError(argument, spec, "orig and reply differ in family or protocol");
  }
  const zone = spec.zone === undefined
    ? undefined
    : checkUint(spec.zone, 65535, `${argument}.zone`);
  const origZone = spec.origZone === undefined
    ? undefined
    : checkUint(spec.origZone, 65535, `${argument}.origZone`);
  const replyZone = spec.replyZone === undefined
    ? undefined
    : checkUint(spec.replyZone, 65535, `${argument}.replyZone`);
  const flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  const enc = transport.begin(C.IPCTNL_MSG_CT_NEW, flags, seq, familyNumber(orig));
  const v6 = orig.family === "ipv6";
  encodeTuple(enc, C.CTA_TUPLE_ORIG, orig, v6, ALL_FIELDS, origZone);
  encodeTuple(enc, C.CTA_TUPLE_REPLY, reply, v6, ALL_FIELDS, replyZone);
  if (zone !== undefined) enc.u16be(C.CTA_ZONE, zone);
  if (spec.snat !== undefined) encodeNat(enc, C.CTA_NAT_SRC, spec.snat, orig, `${argument}.snat`);
  if (spec.dnat !== undefined) encodeNat(enc, C.CTA_NAT_DST, spec.dnat, orig, `${argument}.dnat`);
  encodeChanges(enc, spec, argument, true);
  return enc;
}
