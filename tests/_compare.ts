/**
 * Compares flows with conntrack-tools' text: builds, from a flow's fields,
 * what `conntrack -L -o extended,id,ktimestamp` must print, independently of
 * the CLI's formatter (only the protocol names and tuple kinds come from the
 * library's one protocol table, src/protocols.ts).
 *
 * @module
 */

import { CT_STATUS, ctime, type Flow, protocolInfo, type Tuple } from "../mod.ts";
import type { TextEntry, TextTuple } from "./_conntrack_text.ts";

function tupleAsText(t: Tuple, counters: Flow["countersOrig"]): TextTuple {
  const out: TextTuple = { src: t.src!, dst: t.dst! };
  const { tuple } = protocolInfo(t.protocol!);
  if (tuple === "ports") {
    out.sport = t.srcPort!;
    out.dport = t.dstPort!;
  }
  if (tuple === "icmp") {
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
    l4: protocolInfo(flow.orig.protocol!).name,
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
