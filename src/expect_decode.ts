/**
 * The expectation decoder: one `IPCTNL_MSG_EXP_NEW` (or `_DELETE`) message →
 * one {@link Expectation}, one `IPCTNL_MSG_EXP_GET_STATS_CPU` reply →
 * {@link ExpectStats}. The same rules as the flow decoder of src/decode.ts:
 * one {@link AttrCursor}, every length checked, a {@link DecodeError} with
 * offset and attribute path for anything malformed, unknown attributes
 * skipped (or kept raw).
 *
 * @module
 */

import * as C from "./constants.ts";
// EXPECT_FLAGS for {@link} in the docs.
import type { EXPECT_FLAGS as _EXPECT_FLAGS, ExpectFlag } from "./constants.ts";
import { type DecodeOptions, decodeWhole, messageFamily } from "./decode.ts";
import { checkStatsHeader } from "./stats.ts";
import { DecodeError } from "./errors.ts";
import { type AttrCursor, type MessageHeader, NLMSG_HDRLEN } from "./netlink.ts";
import { decodeTuple, emptyTuple } from "./tuple.ts";
import type { Family, RawAttribute, Tuple } from "./types.ts";

/** The NAT an expectation applies to the connection it expects (`CTA_EXPECT_NAT`).
 *
 * @example
 * ```ts
 * import type { ExpectationNat } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const nat: ExpectationNat = {
 *   dir: 1, direction: "reply",
 *   tuple: { src: "10.0.0.9", dst: undefined, protocol: 6, srcPort: 2000, dstPort: undefined,
 *     icmpId: undefined, icmpType: undefined, icmpCode: undefined, zone: undefined },
 * };
 * equal(nat.tuple.src, "10.0.0.9");
 * ```
 */
export interface ExpectationNat {
  /** `CTA_EXPECT_NAT_DIR`: 0 original, 1 reply (the direction the saved address is for). */
  dir: number;
  /** {@link dir} by name. */
  direction: "original" | "reply";
  /** `CTA_EXPECT_NAT_TUPLE`: the saved address (`src`) and port (`srcPort`). */
  tuple: Tuple;
}

/**
 * One entry of the expectation table: a connection a helper (ftp, tftp,
 * sip, …) expects, decoded from every `CTA_EXPECT_*` attribute the kernel
 * sends. Every key is present; what the kernel did not send is `undefined`.
 *
 * @example Decode captured bytes
 * ```ts
 * import { decodeExpectation, DecodeError } from "@ctnl/conntrack";
 * import { throws } from "node:assert/strict";
 *
 * const bad = new Uint8Array(20); // a header that promises 40 bytes
 * new DataView(bad.buffer).setUint32(0, 40, true);
 * throws(() => decodeExpectation(bad), DecodeError);
 * ```
 */
export interface Expectation {
  /** Address family. */
  family: Family;
  /** `CTA_EXPECT_MASTER`: the original tuple of the connection that made the expectation. */
  master: Tuple;
  /** `CTA_EXPECT_TUPLE`: the connection expected (its original direction). */
  tuple: Tuple;
  /** `CTA_EXPECT_MASK`: which bits of {@link tuple} must match (addresses as masks). */
  mask: Tuple;
  /** `CTA_EXPECT_TIMEOUT`: seconds left. */
  timeout: number | undefined;
  /** `CTA_EXPECT_ID`. */
  id: number | undefined;
  /** `CTA_EXPECT_HELP_NAME`: the helper (`"ftp"`). */
  helper: string | undefined;
  /** `CTA_EXPECT_ZONE`. */
  zone: number | undefined;
  /** `CTA_EXPECT_FLAGS`: `NF_CT_EXPECT_*` bits (see {@link EXPECT_FLAGS}). */
  flags: number | undefined;
  /** {@link flags} by name. */
  flagNames: ExpectFlag[];
  /** `CTA_EXPECT_CLASS`: the helper's expectation class. */
  class: number | undefined;
  /** `CTA_EXPECT_NAT`. */
  nat: ExpectationNat | undefined;
  /** `CTA_EXPECT_FN`: the function run on the expected connection (`"nat-follow-master"`). */
  fn: string | undefined;
  /** Top-level attributes this version does not know (with `keepUnknown`). */
  unknown: RawAttribute[] | undefined;
}

/** Per-CPU expectation statistics (`IPCTNL_MSG_EXP_GET_STATS_CPU`), as `conntrack -S expect`.
 *
 * @example
 * ```ts
 * import type { ExpectStats } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const s: ExpectStats = { cpu: 0, new: 3, create: 4, delete: 1 };
 * equal(s.create - s.delete, 3);
 * ```
 */
export interface ExpectStats {
  /** CPU number (`res_id`). */
  cpu: number;
  /** `CTA_STATS_EXP_NEW`: expected connections that arrived. */
  new: number;
  /** `CTA_STATS_EXP_CREATE`: expectations created. */
  create: number;
  /** `CTA_STATS_EXP_DELETE`: expectations deleted. */
  delete: number;
}

/** Offset of the attributes after `nlmsghdr` + `nfgenmsg`. */
const ATTRS = NLMSG_HDRLEN + 4;

/** An expectation with every field `undefined` (tuples empty). */
export function newExpectation(family: Family): Expectation {
  return {
    family,
    master: emptyTuple(),
    tuple: emptyTuple(),
    mask: emptyTuple(),
    timeout: undefined,
    id: undefined,
    helper: undefined,
    zone: undefined,
    flags: undefined,
    flagNames: [],
    class: undefined,
    nat: undefined,
    fn: undefined,
    unknown: undefined,
  };
}

function decodeNat(c: AttrCursor): ExpectationNat {
  let dir: number | undefined;
  let tuple: Tuple | undefined;
  c.enter(C.SETS.expectNat);
  while (c.next()) {
    if (c.type === C.CTA_EXPECT_NAT_DIR) dir = c.u32be();
    else if (c.type === C.CTA_EXPECT_NAT_TUPLE) tuple = decodeTuple(c);
  }
  c.leave();
  if (dir === undefined) throw c.error("nest without CTA_EXPECT_NAT_DIR");
  return {
    dir,
    direction: dir === 0 ? "original" : "reply",
    tuple: tuple ?? emptyTuple(),
  };
}

/**
 * Decodes the expectation message that starts at `offset` of `bytes` (its
 * header already checked: `length` bytes long).
 */
export function decodeExpectationAt(
  c: AttrCursor,
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  length: number,
  options?: DecodeOptions,
): Expectation {
  const exp = newExpectation(messageFamily(bytes, offset, length));
  c.reset(bytes, view, offset + ATTRS, offset + length, C.SETS.expect);
  let sawTuple = false;
  while (c.next()) {
    switch (c.type) {
      case C.CTA_EXPECT_MASTER:
        exp.master = decodeTuple(c);
        break;
      case C.CTA_EXPECT_TUPLE:
        exp.tuple = decodeTuple(c);
        sawTuple = true;
        break;
      case C.CTA_EXPECT_MASK:
        exp.mask = decodeTuple(c);
        break;
      case C.CTA_EXPECT_TIMEOUT:
        exp.timeout = c.u32be();
        break;
      case C.CTA_EXPECT_ID:
        exp.id = c.u32be();
        break;
      case C.CTA_EXPECT_HELP_NAME:
        exp.helper = c.string();
        break;
      case C.CTA_EXPECT_ZONE:
        exp.zone = c.u16be();
        break;
      case C.CTA_EXPECT_FLAGS:
        exp.flags = c.u32be();
        exp.flagNames = C.expectFlags(exp.flags);
        break;
      case C.CTA_EXPECT_CLASS:
        exp.class = c.u32be();
        break;
      case C.CTA_EXPECT_NAT:
        exp.nat = decodeNat(c);
        break;
      case C.CTA_EXPECT_FN:
        exp.fn = c.string();
        break;
      default:
        if (options?.keepUnknown) {
          const raw: RawAttribute = { type: c.type, data: c.copy() };
          (exp.unknown ??= []).push(raw);
        }
    }
  }
  if (!sawTuple) {
    throw new DecodeError("ctattr_expect", offset + ATTRS, "expectation without CTA_EXPECT_TUPLE");
  }
  return exp;
}

/**
 * Decodes one expectation message (`nlmsghdr` + `nfgenmsg` + attributes, as
 * the kernel sends in expectation dumps, gets and events) into an
 * {@link Expectation}.
 *
 * @example A header that promises more than there is
 * ```ts
 * import { decodeExpectation, DecodeError } from "@ctnl/conntrack";
 * import { throws } from "node:assert/strict";
 *
 * const bad = new Uint8Array(16);
 * new DataView(bad.buffer).setUint32(0, 64, true);
 * throws(() => decodeExpectation(bad), DecodeError);
 * ```
 */
export function decodeExpectation(message: Uint8Array, options?: DecodeOptions): Expectation {
  return decodeWhole(message, decodeExpectationAt, options);
}

/** Decodes a per-CPU expectation stats message. */
export function decodeExpectStatsAt(
  c: AttrCursor,
  bytes: Uint8Array,
  view: DataView,
  header: MessageHeader,
): ExpectStats {
  checkStatsHeader(header);
  const s: ExpectStats = {
    cpu: view.getUint16(header.offset + NLMSG_HDRLEN + 2, false),
    new: 0,
    create: 0,
    delete: 0,
  };
  c.reset(bytes, view, header.offset + ATTRS, header.offset + header.length, C.SETS.statsExp);
  while (c.next()) {
    if (c.type === C.CTA_STATS_EXP_NEW) s.new = c.u32be();
    else if (c.type === C.CTA_STATS_EXP_CREATE) s.create = c.u32be();
    else if (c.type === C.CTA_STATS_EXP_DELETE) s.delete = c.u32be();
  }
  return s;
}
