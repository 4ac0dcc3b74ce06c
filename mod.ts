/**
 * # @ctnl/conntrack
 *
 * Read the Linux connection-tracking table over netlink, from Deno, with no
 * native addon and no helper process: `Deno.dlopen` binds libc's socket
 * calls and a TypeScript codec decodes the kernel's messages in place.
 *
 * - {@link Conntrack} — a handle on one namespace's table: `get`, streaming
 *   `dump` with kernel-side filters ({@link DumpFilter}), per-CPU `stats`,
 *   `count`.
 * - {@link Flow} and {@link Tuple} — what an entry decodes to; every key is
 *   always present, absent values are `undefined`.
 * - {@link NetlinkError} (the kernel refused), {@link DecodeError} (malformed
 *   bytes); bad arguments are `TypeError`/`RangeError` naming the argument.
 *
 * Needs Linux, `--allow-ffi`, and CAP_NET_ADMIN (root) in the namespace.
 *
 * @example Dump established TCP flows to port 443 and count the table
 * ```ts ignore
 * import { Conntrack } from "@ctnl/conntrack";
 *
 * using ct = Conntrack.open(); // or Conntrack.open({ netns: "blue" })
 * for await (const flow of ct.dump({ orig: { protocol: "tcp", dstPort: 443 } })) {
 *   console.log(flow.orig.src, "->", flow.orig.dst, flow.tcp?.stateName);
 * }
 * console.log(await ct.count(), "entries");
 * ```
 *
 * @example Name status flags (runs anywhere)
 * ```ts
 * import { CT_STATUS, statusFlags } from "@ctnl/conntrack";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 *
 * assertEquals(statusFlags(CT_STATUS.ASSURED | CT_STATUS.SEEN_REPLY), ["SEEN_REPLY", "ASSURED"]);
 * ```
 *
 * @module
 */

export { Conntrack } from "./src/conntrack.ts";
export type * from "./src/options.ts";
export { type FlowChanges } from "./src/request.ts";
export { type TupleSpec, tupleSpecOf, validateTuple } from "./src/tuple.ts";
export {
  type DumpFilter,
  type FilterPlan,
  type Masked,
  type StatusValue,
  type TupleFilter,
  validateFilter,
} from "./src/filter.ts";
export { decodeFlow, type DecodeOptions } from "./src/decode.ts";
export {
  ctime,
  flowToJson,
  formatCpuStats,
  formatFlow,
  type FormatOptions,
  labelBits,
} from "./src/format.ts";
export { decodeMessages } from "./src/netlink.ts";
export {
  ArgumentError,
  ArgumentRangeError,
  DecodeError,
  DumpInterruptedError,
  ERRNO,
  errnoName,
  isArgumentError,
  NetlinkError,
  type NetlinkErrorOptions,
  type Operation,
} from "./src/errors.ts";
export { CT_STATUS, type StatusFlag, statusFlags } from "./src/constants.ts";
export {
  DCCP_STATES,
  parseProtocol,
  PROTOCOL_NAMES,
  type ProtocolInfo,
  protocolInfo,
  PROTOCOLS,
  SCTP_STATES,
  TCP_STATES,
} from "./src/protocols.ts";
export type * from "./src/types.ts";
