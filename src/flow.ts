/**
 * The empty {@link Flow} both decoders fill.
 *
 * @module
 */

import { EMPTY_TUPLE } from "./tuple.ts";
import type { Family, Flow, TcpInfo } from "./types.ts";

/**
 * A flow with every key present and nothing decoded yet. Both decoders build
 * flows here, so every flow has the same keys in the same order (one shape
 * for V8, and `deepStrictEqual`-comparable); tests build their flows here too.
 *
 * @example A flow to test code that takes flows
 * ```ts
 * import { newFlow } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const flow = { ...newFlow("ipv6"), mark: 7 };
 * equal(flow.orig.src, undefined);
 * equal(flow.mark, 7);
 * ```
 */
export function newFlow(family: Family): Flow {
  return {
    family,
    orig: EMPTY_TUPLE,
    reply: EMPTY_TUPLE,
    master: undefined,
    status: 0,
    timeout: undefined,
    mark: undefined,
    use: undefined,
    id: undefined,
    zone: undefined,
    tcp: undefined,
    sctp: undefined,
    dccp: undefined,
    helper: undefined,
    countersOrig: undefined,
    countersReply: undefined,
    natSrc: undefined,
    natDst: undefined,
    seqAdjOrig: undefined,
    seqAdjReply: undefined,
    secmark: undefined,
    secctx: undefined,
    timestampStart: undefined,
    timestampStop: undefined,
    timestampEvent: undefined,
    labels: undefined,
    labelsMask: undefined,
    synproxy: undefined,
    unknown: undefined,
  };
}

/** A TCP protocol info with every key present, for both decoders to fill. */
export function newTcpInfo(): TcpInfo {
  return {
    state: 0,
    stateName: "",
    wscaleOrig: undefined,
    wscaleReply: undefined,
    flagsOrig: undefined,
    flagsReply: undefined,
  };
}
