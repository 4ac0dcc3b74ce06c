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
import { TCP_STATES } from "./protocols.ts";
import type { Transport } from "./transport.ts";
import {
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
  /** Connection label bits to set (0–127). */
  labels?: readonly number[];
  /** TCP state by name (`"ESTABLISHED"`) or number, for TCP entries. */
  tcpState?: string | number;
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
  if (changes.labels !== undefined) {
    if (!Array.isArray(changes.labels)) {
      throw new ArgumentError(`${argument}.labels`, changes.labels, `not an array of bit numbers`);
    }
    const bits = new Uint8Array(16);
    for (const bit of changes.labels) {
      checkUint(bit, 127, `${argument}.labels[]`);
      bits[bit >> 3] = bits[bit >> 3]! | (1 << (bit & 7));
    }
    enc.bytes(C.CTA_LABELS, bits).bytes(C.CTA_LABELS_MASK, bits);
  }
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
  transport: Transport,
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
  const t = parseTuple(tuple);
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
  transport: Transport,
  spec: CreateSpec,
  seq: number,
  argument: string,
): Encoder {
  if (spec === null || typeof spec !== "object") {
    throw new ArgumentError(argument, spec, `${String(spec)} is not an object`);
  }
  if (spec.timeout === undefined) throw new ArgumentError(argument, spec, "timeout is required");
  const orig = parseTuple(spec.orig, `${argument}.orig`);
  const reply: ParsedTuple = spec.reply === undefined
    ? invertTuple(orig)
    : parseTuple(spec.reply, `${argument}.reply`);
  if (reply.family !== orig.family || reply.protocol !== orig.protocol) {
    throw new ArgumentError(argument, spec, "orig and reply differ in family or protocol");
  }
  const zone = spec.zone === undefined
    ? undefined
    : checkUint(spec.zone, 65535, `${argument}.zone`);
  const flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  const enc = transport.begin(C.IPCTNL_MSG_CT_NEW, flags, seq, familyNumber(orig));
  const v6 = orig.family === "ipv6";
  encodeTuple(enc, C.CTA_TUPLE_ORIG, orig, v6);
  encodeTuple(enc, C.CTA_TUPLE_REPLY, reply, v6);
  if (zone !== undefined) enc.u16be(C.CTA_ZONE, zone);
  encodeChanges(enc, spec, argument, true);
  return enc;
}
