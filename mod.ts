/**
 * # @ctnl/conntrack
 *
 * Read the Linux connection-tracking table over netlink, from Deno, with no
 * native addon and no helper process: `Deno.dlopen` binds libc's socket
 * calls and a TypeScript codec decodes the kernel's messages in place.
 *
 * - {@link Conntrack} — a handle on one namespace's table: `get`, streaming
 *   `dump` with kernel-side filters ({@link DumpFilter}), per-CPU `stats`,
 *   `count`, `events`, and the changes (`create`, `update`, `delete`,
 *   `flush`, and their bulk forms). Every method that returns a Promise or an
 *   async iterable waits for the kernel without holding the event loop; its
 *   `…Sync` twin blocks.
 * - {@link Flow} and {@link Tuple} — what an entry decodes to; every key is
 *   always present, absent values are `undefined`. A dumped flow goes back
 *   into `get`, `update` and `delete` as it is.
 * - {@link NetlinkError} (the kernel refused), {@link DecodeError} (malformed
 *   bytes), {@link ArgumentError}/{@link ArgumentRangeError} (bad arguments,
 *   with the argument's name and value as fields), {@link ClosedError}.
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
export { type EntryRef, type FlowChanges } from "./src/request.ts";
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
export { newFlow } from "./src/flow.ts";
export {
  ctime,
  type FlowObject,
  flowToJson,
  flowToObject,
  formatFlow,
  type FormatOptions,
  labelBits,
  type Plain,
} from "./src/format.ts";
export { decodeMessages } from "./src/netlink.ts";
export { formatCpuStats } from "./src/stats.ts";
export {
  ArgumentError,
  ArgumentRangeError,
  BusyError,
  ClosedError,
  DecodeError,
  DumpInterruptedError,
  ERRNO,
  type ErrnoCode,
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
// filt: filters and changes of issue 12
export type { NatFilter } from "./src/match.ts";
export type { NatSetup } from "./src/request.ts";
export {
  type ConntrackList,
  Expectations,
  type ExpectationSpec,
  type ExpectDumpFilter,
  type ExpectEvent,
  type ExpectEventOptions,
  type ExpectMaskSpec,
  type ExpectRef,
  type ExpectRefOptions,
} from "./src/expect.ts";
export {
  decodeExpectation,
  type Expectation,
  type ExpectationNat,
  type ExpectStats,
} from "./src/expect_decode.ts";
export {
  expectationToJson,
  type ExpectFormatOptions,
  formatExpectation,
  formatExpectStats,
} from "./src/expect_format.ts";
export { EXPECT_FLAGS, type ExpectFlag, expectFlags } from "./src/constants.ts";
export {
  summarize,
  summarizeAsync,
  Summarizer,
  type Summary,
  SUMMARY_KEYS,
  type SummaryGroup,
  summaryKey,
  type SummaryKeyName,
  type SummaryOptions,
  type SummarySort,
} from "./src/summary.ts";
export { humanBytes, humanCount } from "./src/units.ts";
export type { ApplyManyOptions, BulkChange } from "./src/apply.ts";
export { fullTimeout, type TimeoutPolicy } from "./src/timeouts.ts";
export {
  collectMetrics,
  type ConntrackMetrics,
  type ExporterOptions,
  type FlowCount,
  formatOpenMetrics,
  formatPrometheus,
  type KeyCount,
  mergeFamilies,
  metricFamilies,
  type MetricFamily,
  MetricsExporter,
  type MetricsOptions,
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_CONTENT_TYPE,
  type Sample,
  wantsOpenMetrics,
} from "./src/metrics.ts";
export {
  type AllNetnsEventOptions,
  dumpAllNetns,
  eventsAllNetns,
  listNetns,
  listNetnsSync,
  type NetnsChange,
  type NetnsEvent,
  type NetnsFlow,
  type NetnsInfo,
  watchNetns,
  type WatchNetnsOptions,
} from "./src/netns.ts";
export { flowKey, TableWatch, watch, type WatchEvent, type WatchOptions } from "./src/watch.ts";
// perf (issue 16): changes checked and encoded ahead, for applyMany
export { PreparedChanges } from "./src/apply.ts";
export type { EventPlan } from "./src/bpf.ts";
