/**
 * The one table of layer-4 protocols: number, the name conntrack-tools
 * prints, the `/etc/protocols` names it accepts, what a tuple carries after
 * the addresses, and the state names. Filters, requests, the printer and the
 * CLI all ask here.
 *
 * @module
 */

import { ArgumentError, ArgumentRangeError } from "./errors.ts";

/**
 * What one layer-4 protocol means to conntrack.
 *
 * @example
 * ```ts
 * import { protocolInfo } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const sctp = protocolInfo(132);
 * equal(sctp.name, "sctp");
 * equal(sctp.tuple, "ports");
 * equal(sctp.states?.[4], "ESTABLISHED");
 * ```
 */
export interface ProtocolInfo {
  /** The IP protocol number, 0–255. */
  readonly number: number;
  /**
   * The name conntrack-tools prints (libnetfilter_conntrack's `proto2str`):
   * `tcp`, `udp`, `udplite`, `sctp`, `dccp`, `icmp`, `icmpv6`, `gre`, or
   * `unknown` for every other protocol.
   */
  readonly name: string;
  /** The names `/etc/protocols` gives it (accepted by {@link parseProtocol}). */
  readonly aliases: readonly string[];
  /**
   * What the tuple carries after the addresses: `"ports"` (TCP, UDP,
   * UDP-Lite, SCTP, DCCP), `"keys"` (GRE keys, in the port attributes),
   * `"icmp"` (type, code and id), or `"none"`.
   */
  readonly tuple: "ports" | "keys" | "icmp" | "none";
  /** The kernel's state names by number, for protocols that track states. */
  readonly states: readonly string[] | undefined;
}

/** TCP conntrack states by number (`enum tcp_conntrack`).
 *
 * @example
 * ```ts
 * import { TCP_STATES } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal(TCP_STATES[3], "ESTABLISHED");
 * ```
 */
export const TCP_STATES: readonly string[] = [
  "NONE",
  "SYN_SENT",
  "SYN_RECV",
  "ESTABLISHED",
  "FIN_WAIT",
  "CLOSE_WAIT",
  "LAST_ACK",
  "TIME_WAIT",
  "CLOSE",
  "SYN_SENT2",
];

/** SCTP conntrack states by number (`enum sctp_conntrack`).
 *
 * @example
 * ```ts
 * import { SCTP_STATES } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal(SCTP_STATES[4], "ESTABLISHED");
 * ```
 */
export const SCTP_STATES: readonly string[] = [
  "NONE",
  "CLOSED",
  "COOKIE_WAIT",
  "COOKIE_ECHOED",
  "ESTABLISHED",
  "SHUTDOWN_SENT",
  "SHUTDOWN_RECD",
  "SHUTDOWN_ACK_SENT",
  "HEARTBEAT_SENT",
  "HEARTBEAT_ACKED",
];

/** DCCP conntrack states by number (`enum ct_dccp_states`).
 *
 * @example
 * ```ts
 * import { DCCP_STATES } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal(DCCP_STATES[4], "OPEN");
 * ```
 */
export const DCCP_STATES: readonly string[] = [
  "NONE",
  "REQUEST",
  "RESPOND",
  "PARTOPEN",
  "OPEN",
  "CLOSEREQ",
  "CLOSING",
  "TIMEWAIT",
  "IGNORE",
  "INVALID",
];

/** The protocols conntrack tracks by name: number, printed name, tuple, states. */
const TRACKED: readonly [number, string, ProtocolInfo["tuple"], readonly string[] | undefined][] = [
  [1, "icmp", "icmp", undefined],
  [6, "tcp", "ports", TCP_STATES],
  [17, "udp", "ports", undefined],
  [33, "dccp", "ports", DCCP_STATES],
  [47, "gre", "keys", undefined],
  [58, "icmpv6", "icmp", undefined],
  [132, "sctp", "ports", SCTP_STATES],
  [136, "udplite", "ports", undefined],
];

/** `/etc/protocols` (Debian's netbase): number, name, alias. */
const ETC_PROTOCOLS: readonly [number, string, string][] = [
  [0, "ip", "IP"],
  [0, "hopopt", "HOPOPT"],
  [1, "icmp", "ICMP"],
  [2, "igmp", "IGMP"],
  [3, "ggp", "GGP"],
  [4, "ipencap", "IP-ENCAP"],
  [5, "st", "ST"],
  [6, "tcp", "TCP"],
  [8, "egp", "EGP"],
  [9, "igp", "IGP"],
  [12, "pup", "PUP"],
  [17, "udp", "UDP"],
  [20, "hmp", "HMP"],
  [22, "xns-idp", "XNS-IDP"],
  [27, "rdp", "RDP"],
  [29, "iso-tp4", "ISO-TP4"],
  [33, "dccp", "DCCP"],
  [36, "xtp", "XTP"],
  [37, "ddp", "DDP"],
  [38, "idpr-cmtp", "IDPR-CMTP"],
  [41, "ipv6", "IPv6"],
  [43, "ipv6-route", "IPv6-Route"],
  [44, "ipv6-frag", "IPv6-Frag"],
  [45, "idrp", "IDRP"],
  [46, "rsvp", "RSVP"],
  [47, "gre", "GRE"],
  [50, "esp", "IPSEC-ESP"],
  [51, "ah", "IPSEC-AH"],
  [57, "skip", "SKIP"],
  [58, "ipv6-icmp", "IPv6-ICMP"],
  [59, "ipv6-nonxt", "IPv6-NoNxt"],
  [60, "ipv6-opts", "IPv6-Opts"],
  [73, "rspf", "RSPF"],
  [81, "vmtp", "VMTP"],
  [88, "eigrp", "EIGRP"],
  [89, "ospf", "OSPFIGP"],
  [93, "ax.25", "AX.25"],
  [94, "ipip", "IPIP"],
  [97, "etherip", "ETHERIP"],
  [98, "encap", "ENCAP"],
  [103, "pim", "PIM"],
  [108, "ipcomp", "IPCOMP"],
  [112, "vrrp", "VRRP"],
  [115, "l2tp", "L2TP"],
  [124, "isis", "ISIS"],
  [132, "sctp", "SCTP"],
  [133, "fc", "FC"],
  [135, "mobility-header", "Mobility-Header"],
  [136, "udplite", "UDPLite"],
  [137, "mpls-in-ip", "MPLS-in-IP"],
  [138, "manet", ""],
  [139, "hip", "HIP"],
  [140, "shim6", "Shim6"],
  [141, "wesp", "WESP"],
  [142, "rohc", "ROHC"],
  [143, "ethernet", "Ethernet"],
];

function buildTable(): ProtocolInfo[] {
  const aliases: string[][] = Array.from({ length: 256 }, () => []);
  for (const [number, name, alias] of ETC_PROTOCOLS) {
    aliases[number]!.push(name);
    if (alias !== "" && alias.toLowerCase() !== name) aliases[number]!.push(alias.toLowerCase());
  }
  const tracked = new Map(TRACKED.map((row) => [row[0], row]));
  return aliases.map((names, number): ProtocolInfo => {
    const row = tracked.get(number);
    if (row !== undefined && !names.includes(row[1])) names.unshift(row[1]);
    return Object.freeze({
      number,
      name: row?.[1] ?? "unknown",
      aliases: Object.freeze(names),
      tuple: row?.[2] ?? "none",
      states: row?.[3],
    });
  });
}

const TABLE_BY_NUMBER: readonly ProtocolInfo[] = buildTable();

const BY_NAME: ReadonlyMap<string, number> = new Map(
  TABLE_BY_NUMBER.flatMap((p) => p.aliases.map((name) => [name, p.number] as const)),
);

/**
 * The protocols conntrack knows by name (those whose {@link ProtocolInfo.name}
 * is not `unknown`), in number order.
 *
 * @example
 * ```ts
 * import { PROTOCOLS } from "@ctnl/conntrack";
 * import { deepStrictEqual } from "node:assert/strict";
 *
 * deepStrictEqual(PROTOCOLS.filter((p) => p.tuple === "icmp").map((p) => p.name), ["icmp", "icmpv6"]);
 * ```
 */
export const PROTOCOLS: readonly ProtocolInfo[] = TABLE_BY_NUMBER.filter((p) =>
  p.name !== "unknown"
);

/**
 * What conntrack knows of protocol `number` (0–255; any other number is a
 * `ArgumentRangeError`).
 *
 * @example
 * ```ts
 * import { protocolInfo } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal(protocolInfo(6).tuple, "ports");
 * equal(protocolInfo(2).name, "unknown"); // printed as conntrack does
 * equal(protocolInfo(2).aliases[0], "igmp");
 * ```
 */
export function protocolInfo(number: number): ProtocolInfo {
  const info = TABLE_BY_NUMBER[number];
  if (info === undefined) {
    throw new ArgumentRangeError("protocol", number, `${number} is not a protocol number (0-255)`);
  }
  return info;
}

/**
 * Layer-4 protocol names by number: conntrack's name where it has one, else
 * the first `/etc/protocols` name.
 *
 * @example
 * ```ts
 * import { PROTOCOL_NAMES } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal(PROTOCOL_NAMES[6], "tcp");
 * equal(PROTOCOL_NAMES[58], "icmpv6");
 * equal(PROTOCOL_NAMES[2], "igmp");
 * ```
 */
export const PROTOCOL_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(
    TABLE_BY_NUMBER.filter((p) => p.aliases.length > 0).map((p) => [
      p.number,
      p.name === "unknown" ? p.aliases[0]! : p.name,
    ]),
  ),
);

/**
 * Parses a layer-4 protocol given by name (conntrack's names and every
 * `/etc/protocols` name, any case) or number (0–255); throws an
 * {@link ArgumentError}/{@link ArgumentRangeError} naming `argument`
 * otherwise.
 *
 * @example
 * ```ts
 * import { parseProtocol } from "@ctnl/conntrack";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 *
 * assertEquals(parseProtocol("tcp"), 6);
 * assertEquals(parseProtocol("ipv6-icmp"), 58);
 * assertEquals(parseProtocol("OSPFIGP"), 89);
 * assertEquals(parseProtocol(58), 58);
 * ```
 */
export function parseProtocol(value: number | string, argument = "protocol"): number {
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value < 0 || value > 255) {
      throw new ArgumentRangeError(argument, value, `${value} is not a protocol number (0-255)`);
    }
    return value;
  }
  if (typeof value !== "string") {
    throw new ArgumentError(argument, value, `${String(value)} is not a protocol`);
  }
  const byName = BY_NAME.get(value.toLowerCase());
  if (byName !== undefined) return byName;
  if (/^\d+$/.test(value)) return parseProtocol(Number(value), argument);
  throw new ArgumentError(argument, value, `unknown protocol "${value}"`);
}

/** The name of `state` in `table` (`UNKNOWN(n)` past its end). */
export function stateName(table: readonly string[], state: number): string {
  return table[state] ?? `UNKNOWN(${state})`;
}
