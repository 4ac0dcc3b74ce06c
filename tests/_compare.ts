/**
 * Compares flows with conntrack-tools' text: builds, from a flow's fields,
 * what `conntrack -L -o extended,id,ktimestamp` must print, independently of
 * the CLI's formatter.
 *
 * @module
 */

import { CT_STATUS, ctime, type Flow, type Tuple, type TupleSpec } from "../mod.ts";
import type { TextEntry, TextTuple } from "./_conntrack_text.ts";

const L4: Record<number, string> = {
  1: "icmp",
  6: "tcp",
  17: "udp",
  33: "dccp",
  47: "gre",
  58: "icmpv6",
  132: "sctp",
  136: "udplite",
};

function tupleAsText(t: Tuple, counters: Flow["countersOrig"]): TextTuple {
  const out: TextTuple = { src: t.src!, dst: t.dst! };
  if ([6, 17, 33, 132, 136].includes(t.protocol!)) {
    out.sport = t.srcPort!;
    out.dport = t.dstPort!;
  }
  if (t.protocol === 1 || t.protocol === 58) {
    out.type = t.icmpType!;
    out.code = t.icmpCode!;
    out.id = t.icmpId!;
  }
  if (t.zone !== undefined) out.zone = t.zone;
  if (counters) {
    out.packets = String(counters.packets);
    out.bytes = String(counters.bytes);
  }
  return out;
}

/** What conntrack should print for this flow, built from the flow's fields. */
export function flowAsText(flow: Flow): TextEntry {
  const e: TextEntry = {
    l3: flow.family,
    l3num: flow.family === "ipv4" ? 2 : 10,
    l4: L4[flow.orig.protocol!] ?? "unknown",
    l4num: flow.orig.protocol!,
    orig: tupleAsText(flow.orig, flow.countersOrig),
    reply: tupleAsText(flow.reply, flow.countersReply),
    unreplied: (flow.status & CT_STATUS.SEEN_REPLY) === 0,
    assured: (flow.status & CT_STATUS.ASSURED) !== 0,
    offload: (flow.status & (CT_STATUS.OFFLOAD | CT_STATUS.HW_OFFLOAD)) !== 0,
  };
  if (flow.timeout !== undefined) e.timeout = flow.timeout;
  const state = flow.tcp?.stateName ?? flow.sctp?.stateName ?? flow.dccp?.stateName;
  if (state !== undefined) e.state = state;
  if (flow.mark !== undefined) e.mark = flow.mark;
  if (flow.zone !== undefined) e.zone = flow.zone;
  if (flow.secctx !== undefined) e.secctx = flow.secctx;
  if (flow.timestampStart !== undefined) {
    e.deltaTime = 0; // masked: it counts seconds
    e.start = ctime(Number(flow.timestampStart / 1_000_000_000n));
  }
  if (flow.timestampStop) e.stop = ctime(Number(flow.timestampStop / 1_000_000_000n));
  if (flow.helper !== undefined) e.helper = flow.helper;
  if (flow.use !== undefined) e.use = flow.use;
  if (flow.id !== undefined) e.id = flow.id;
  return e;
}

/** Masks what changes with the clock: the timeout countdown (±2 s) and delta-time. */
export function mask(expected: TextEntry, actual: TextEntry): TextEntry {
  const out = { ...actual };
  if (out.deltaTime !== undefined) out.deltaTime = 0;
  if (
    out.timeout !== undefined && expected.timeout !== undefined &&
    Math.abs(out.timeout - expected.timeout) <= 2
  ) {
    out.timeout = expected.timeout;
  }
  return out;
}

/** The {@link TupleSpec} that looks a decoded tuple up again (get, update, delete). */
export function tupleSpec(t: Tuple): TupleSpec {
  return {
    src: t.src!,
    dst: t.dst!,
    protocol: t.protocol!,
    ...(t.srcPort !== undefined ? { srcPort: t.srcPort, dstPort: t.dstPort! } : {}),
    ...(t.icmpId !== undefined
      ? { icmpId: t.icmpId, icmpType: t.icmpType!, icmpCode: t.icmpCode! }
      : {}),
  };
}
