/**
 * Request encoding: the attributes of create and update requests
 * ({@link encodeChanges}); tuples are encoded by src/tuple.ts.
 *
 * @module
 */

import * as C from "./constants.ts";
import { ArgumentError } from "./errors.ts";
import { checkUint, statusBits, type StatusValue } from "./filter.ts";
import { TCP_STATES } from "./protocols.ts";
import type { Encoder } from "./netlink.ts";

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
