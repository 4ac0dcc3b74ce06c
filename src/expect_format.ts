/**
 * Text and JSON renderings of expectations. The text matches
 * conntrack-tools (`conntrack -L expect`, `-E expect`, `-S expect`) byte for
 * byte: libnetfilter_conntrack's default expectation printer, field by field.
 *
 * @module
 */

import { expectFlags } from "./constants.ts";
import type { Expectation, ExpectStats } from "./expect_decode.ts";
import { protocolInfo } from "./protocols.ts";
import type { Tuple } from "./types.ts";

/** How {@link formatExpectation} prints.
 *
 * @example
 * ```ts
 * import type { ExpectFormatOptions } from "@ctnl/conntrack";
 *
 * const options: ExpectFormatOptions = { eventType: "[NEW]" }; // as conntrack -E expect
 * void options;
 * ```
 */
export interface ExpectFormatOptions {
  /** An event prefix such as `"[NEW]"` or `"[DESTROY]"`, right-aligned in 9 columns. */
  eventType?: string;
}

/** `src=… dst=… ` and the layer-4 fields of `t`, the address keys named `src`/`dst`. */
function tupleText(t: Tuple, src: string, dst: string): string {
  let s = `${src}=${t.src ?? ""} ${dst}=${t.dst ?? ""} `;
  switch (protocolInfo(t.protocol ?? 0).tuple) {
    case "ports":
      s += `sport=${t.srcPort ?? 0} dport=${t.dstPort ?? 0} `;
      break;
    case "keys":
      s += `srckey=0x${(t.srcPort ?? 0).toString(16)} dstkey=0x${(t.dstPort ?? 0).toString(16)} `;
      break;
    case "icmp":
      s += `type=${t.icmpType ?? 0} code=${t.icmpCode ?? 0} id=${t.icmpId ?? 0} `;
      break;
  }
  return s;
}

/**
 * Formats one expectation exactly as `conntrack -L expect` prints it
 * (without the newline).
 *
 * @example
 * ```ts
 * import { type Expectation, formatExpectation } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const t = (src: string, dst: string, srcPort: number, dstPort: number) => ({
 *   src, dst, protocol: 6, srcPort, dstPort,
 *   icmpId: undefined, icmpType: undefined, icmpCode: undefined, zone: undefined,
 * });
 * const exp: Expectation = {
 *   family: "ipv4", tuple: t("10.0.0.1", "10.0.0.2", 0, 40000),
 *   mask: t("255.255.255.255", "255.255.255.255", 0, 65535),
 *   master: t("10.0.0.1", "10.0.0.2", 51000, 21),
 *   timeout: 299, id: 1, helper: "ftp", zone: undefined, flags: 0, flagNames: [],
 *   class: 0, nat: undefined, fn: undefined, unknown: undefined,
 * };
 * equal(
 *   formatExpectation(exp),
 *   "299 proto=6 src=10.0.0.1 dst=10.0.0.2 sport=0 dport=40000 " +
 *     "mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 " +
 *     "master-src=10.0.0.1 master-dst=10.0.0.2 sport=51000 dport=21 class=0 helper=ftp",
 * );
 * ```
 */
export function formatExpectation(exp: Expectation, options: ExpectFormatOptions = {}): string {
  let s = options.eventType === undefined ? "" : `${options.eventType.padStart(9)} `;
  if (exp.timeout !== undefined) s += `${exp.timeout} `;
  s += `proto=${exp.tuple.protocol ?? 0} `;
  s += tupleText(exp.tuple, "src", "dst");
  s += tupleText(exp.mask, "mask-src", "mask-dst");
  s += tupleText(exp.master, "master-src", "master-dst");
  if (exp.zone !== undefined) s += `zone=${exp.zone} `;
  const flags = exp.flags ?? 0;
  s += expectFlags(flags).join(",");
  if (flags !== 0) s += " ";
  if (exp.class !== undefined) s += `class=${exp.class} `;
  if (exp.helper !== undefined) s += `helper=${exp.helper}`;
  return s.endsWith(" ") ? s.slice(0, -1) : s;
}

/**
 * One line of `conntrack -S expect`: `cpu=N   \texpect_new=… expect_create=… expect_delete=… `.
 *
 * @example
 * ```ts
 * import { formatExpectStats } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal(
 *   formatExpectStats({ cpu: 1, new: 1, create: 2, delete: 1 }),
 *   "cpu=1   \texpect_new=1 expect_create=2 expect_delete=1 ",
 * );
 * ```
 */
export function formatExpectStats(s: ExpectStats): string {
  return `cpu=${String(s.cpu).padEnd(4)}\texpect_new=${s.new} expect_create=${s.create} ` +
    `expect_delete=${s.delete} `;
}

/**
 * An expectation as one line of JSON: every field that is set (raw unknown
 * attributes as arrays of bytes).
 *
 * @example
 * ```ts
 * import { decodeExpectation, expectationToJson } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const hex = "40000000000200000000000000000000020000002c00028014000180080001000a000001" +
 *   "080002000a0000021400028005000100110000000600030007d00000";
 * const exp = decodeExpectation(Uint8Array.from(hex.match(/../g)!, (h) => parseInt(h, 16)));
 * equal(JSON.parse(expectationToJson(exp)).tuple.dstPort, 2000);
 * ```
 */
export function expectationToJson(exp: Expectation): string {
  return JSON.stringify(exp, (_key, value) => value instanceof Uint8Array ? [...value] : value);
}
