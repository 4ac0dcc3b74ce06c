/**
 * conntrack's XML (`conntrack -L -o xml`, `-E -o xml`): one `<flow>`
 * element per line, as libnetfilter_conntrack 1.0.9's
 * `__snprintf_conntrack_xml` writes it, between conntrack's header and
 * `</conntrack>`.
 *
 * @module
 */

import type { Flow, Tuple } from "../mod.ts";
import { CT_STATUS } from "../src/constants.ts";
import { protocolInfo, TCP_STATES } from "../src/protocols.ts";
import { localTime } from "../src/tz.ts";

/** The two lines conntrack prints before the first flow. */
export const XML_HEADER = '<?xml version="1.0" encoding="utf-8"?>\n<conntrack>';
/** The line conntrack prints after the last flow (only when it printed a header). */
export const XML_FOOTER = "</conntrack>";

/** What an XML flow element includes besides the entry. */
export interface XmlOptions {
  /** The event type: `<flow type="new">`; none for a listed entry. */
  type?: "new" | "update" | "destroy" | undefined;
  /** `-o ktimestamp`: `<timestamp><start>…</start><stop>…</stop></timestamp>`. */
  ktimestamp?: boolean | undefined;
  /** `-o labels`: label names by bit; without them labels are left out. */
  labelNames?: readonly (string | undefined)[] | undefined;
  /** `-o timestamp` of an event: `<when>` with this local time. */
  when?: Date | undefined;
  /** "Now" in seconds, for `<deltatime>` of an entry that has not stopped (default: the clock). */
  now?: number | undefined;
}

/** `<layer4 …>` by protocol number: `proto2str` names the protocols with fields in the tuple. */
const LAYER4: readonly string[] = Array.from({ length: 256 }, (_, n) => {
  const { name, tuple } = protocolInfo(n);
  return `<layer4 protonum="${n}" protoname="${tuple === "none" ? "unknown" : name}">`;
});

/** The tuple's layer-4 elements: ports, or GRE keys in hex; none for the others (ICMP too). */
export function layer4Fields(t: Tuple): string {
  const src = t.srcPort ?? 0, dst = t.dstPort ?? 0;
  switch (protocolInfo(t.protocol ?? 0).tuple) {
    case "ports":
      return `<sport>${src}</sport><dport>${dst}</dport>`;
    case "keys":
      return `<srckey>0x${src.toString(16)}</srckey><dstkey>0x${dst.toString(16)}</dstkey>`;
  }
  return "";
}

function meta(flow: Flow, t: Tuple, direction: "original" | "reply"): string {
  const l3 = flow.family === "ipv4"
    ? '<layer3 protonum="2" protoname="ipv4">'
    : '<layer3 protonum="10" protoname="ipv6">';
  let s = `<meta direction="${direction}">${l3}<src>${t.src ?? ""}</src><dst>${
    t.dst ?? ""
  }</dst></layer3>${LAYER4[t.protocol ?? 0]}${layer4Fields(t)}</layer4>`;
  if (t.zone !== undefined) s += `<zone>${t.zone}</zone>`;
  // Both directions print counters when the original direction has them.
  if (flow.countersOrig !== undefined) {
    const c = direction === "original" ? flow.countersOrig : flow.countersReply;
    s += `<counters><packets>${c?.packets ?? 0n}</packets><bytes>${
      c?.bytes ?? 0n
    }</bytes></counters>`;
  }
  return s + "</meta>";
}

/** `states[state]` as the XML printer reads it: the TCP names for TCP, SCTP and DCCP alike. */
function stateText(state: number): string {
  return TCP_STATES[state < 10 ? state : 0] ?? "NONE";
}

function labelsText(flow: Flow, names: readonly (string | undefined)[]): string {
  let s = "<labels>";
  const bytes = flow.labels!;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      const name = b & (1 << bit) ? names[i * 8 + bit] : undefined;
      if (name) s += `<label>${name}</label>`;
    }
  }
  return s + "</labels>";
}

const NSEC = 1_000_000_000n;

/** A time_t difference printed with `%llu`: a negative one wraps. */
function unsigned(n: bigint): bigint {
  return BigInt.asUintN(64, n);
}

function two(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** `__snprintf_localtime_xml` of `localtime(seconds)`. */
export function whenText(seconds: number): string {
  const t = localTime(seconds);
  return `<when><hour>${t.hours}</hour><min>${two(t.minutes)}</min><sec>${
    two(t.seconds)
  }</sec><wday>${t.weekday + 1}</wday><day>${t.day}</day><month>${
    t.month + 1
  }</month><year>${t.year}</year></when>`;
}

/** The `<meta direction="independent">` part: state, timeout, mark, …, delta time. */
function independent(flow: Flow, options: XmlOptions): string {
  // The status is always there, so this part always is.
  let s = '<meta direction="independent">';
  const state = flow.tcp?.state ?? flow.sctp?.state ?? flow.dccp?.state;
  if (state !== undefined) s += `<state>${stateText(state)}</state>`;
  if (flow.timeout !== undefined) s += `<timeout>${flow.timeout}</timeout>`;
  if (flow.mark !== undefined) s += `<mark>${flow.mark}</mark>`;
  if (options.labelNames !== undefined && flow.labels !== undefined) {
    s += labelsText(flow, options.labelNames);
  }
  if (flow.secmark !== undefined) s += `<secmark>${flow.secmark}</secmark>`;
  if (flow.secctx !== undefined) s += `<secctx>${flow.secctx}</secctx>`;
  if (flow.zone !== undefined) s += `<zone>${flow.zone}</zone>`;
  if (flow.use !== undefined) s += `<use>${flow.use}</use>`;
  if (flow.id !== undefined) s += `<id>${flow.id}</id>`;
  if (flow.status & CT_STATUS.ASSURED) s += "<assured/>";
  if (!(flow.status & CT_STATUS.SEEN_REPLY)) s += "<unreplied/>";
  const start = flow.timestampStart, stop = flow.timestampStop;
  if (options.ktimestamp && (start !== undefined || stop !== undefined)) {
    s += "<timestamp>";
    if (start !== undefined) s += `<start>${start}</start>`;
    if (stop !== undefined) s += `<stop>${stop}</stop>`;
    s += "</timestamp>";
  }
  if (start !== undefined && stop !== undefined) {
    s += `<deltatime>${unsigned(unsigned(stop - start) / NSEC)}</deltatime>`;
  } else if (start !== undefined) {
    const now = options.now ?? Math.floor(Date.now() / 1000);
    s += `<deltatime>${unsigned(BigInt(now) - start / NSEC)}</deltatime>`;
  }
  return s + "</meta>";
}

/**
 * One flow as a `<flow>` element on one line, byte for byte as conntrack
 * 1.4.7 prints it with `-o xml` (libnetfilter_conntrack 1.0.9). Nothing
 * is escaped, as there.
 */
export function formatXml(flow: Flow, options: XmlOptions = {}): string {
  let s = options.type === undefined ? "<flow>" : `<flow type="${options.type}">`;
  s += meta(flow, flow.orig, "original") + meta(flow, flow.reply, "reply");
  s += independent(flow, options);
  if (options.when !== undefined) s += whenText(Math.floor(options.when.getTime() / 1000));
  if (flow.helper !== undefined) s += `<helper>${flow.helper}</helper>`;
  return s + "</flow>";
}
