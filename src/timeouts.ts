/**
 * The namespace's default timeout policy of a protocol, from the kernel's
 * cttimeout subsystem (`IPCTNL_MSG_TIMEOUT_DEFAULT_GET`): how long an entry
 * in each state lives after its last packet. With an entry's remaining
 * timeout it tells how long the entry has been idle.
 *
 * @module
 */

import { ArgumentError } from "./errors.ts";
import type { AttrCursor, MessageHeader } from "./netlink.ts";
import { NLM_F_ACK, NLM_F_REQUEST, NLMSG_HDRLEN } from "./netlink.ts";
import { DCCP_STATES, parseProtocol, SCTP_STATES, TCP_STATES } from "./protocols.ts";
import type { Prepared } from "./prepare.ts";
import type { Transport } from "./transport.ts";
import type { Family, Flow } from "./types.ts";
import { CT_STATUS } from "./constants.ts";

/** `NFNL_SUBSYS_CTNETLINK_TIMEOUT`. */
const SUBSYS_TIMEOUT = 8;
/** `IPCTNL_MSG_TIMEOUT_DEFAULT_GET`. */
const MSG_DEFAULT_GET = 4;
/** `IPCTNL_MSG_TIMEOUT_DEFAULT_SET`. */
const MSG_DEFAULT_SET = 3;
const CTA_TIMEOUT_L3PROTO = 2;
const CTA_TIMEOUT_L4PROTO = 3;
const CTA_TIMEOUT_DATA = 4;

/**
 * The names of a protocol's timeouts, by attribute number
 * (`enum ctattr_timeout_tcp`, …). For TCP, SCTP and DCCP the number is the
 * state's number (`enum tcp_conntrack`, …), so their state tables name them
 * (attribute 0 is never sent); TCP adds RETRANS and UNACK after its states.
 */
const NAMES: Record<number, readonly string[]> = {
  6: [...TCP_STATES, "RETRANS", "UNACK"],
  17: ["", "UNREPLIED", "REPLIED"],
  136: ["", "UNREPLIED", "REPLIED"],
  47: ["", "UNREPLIED", "REPLIED"],
  1: ["", "TIMEOUT"],
  58: ["", "TIMEOUT"],
  33: DCCP_STATES,
  132: SCTP_STATES,
};
const GENERIC: readonly string[] = ["", "TIMEOUT"];

/**
 * A protocol's default timeouts in seconds, by the kernel's names
 * (`ESTABLISHED`, `UNREPLIED`, `REPLIED`, `TIMEOUT`, …).
 *
 * @example
 * ```ts
 * import type { TimeoutPolicy } from "@ctnl/conntrack";
 *
 * const udp: TimeoutPolicy = { protocol: 17, timeouts: { UNREPLIED: 30, REPLIED: 120 } };
 * void udp;
 * ```
 */
export interface TimeoutPolicy {
  /** The layer-4 protocol number. */
  protocol: number;
  /** Seconds by timeout name. */
  timeouts: Record<string, number>;
}

/** The `IPCTNL_MSG_TIMEOUT_DEFAULT_GET` request of `protocol` in `family`. */
export function timeoutPolicyRequest(
  t: Transport,
  protocol: number | string,
  family: Family = "ipv4",
): Prepared<TimeoutPolicy> {
  const l4 = parseProtocol(protocol, "protocol");
  if (family !== "ipv4" && family !== "ipv6") {
    throw new ArgumentError("family", family, `"${String(family)}" is not "ipv4" or "ipv6"`);
  }
  const af = family === "ipv4" ? 2 : 10;
  const seq = t.nextSeq();
  const type = (SUBSYS_TIMEOUT << 8) | MSG_DEFAULT_GET;
  const request = t.encoder.begin(type, NLM_F_REQUEST | NLM_F_ACK, seq, af)
    .u16be(CTA_TIMEOUT_L3PROTO, af)
    .u8(CTA_TIMEOUT_L4PROTO, l4)
    .finish();
  return {
    transport: t,
    operation: "get",
    request,
    seq,
    // The kernel answers with IPCTNL_MSG_TIMEOUT_DEFAULT_SET's type (cttimeout_default_get).
    replyType: (SUBSYS_TIMEOUT << 8) | MSG_DEFAULT_SET,
    decode: (c, bytes, view, h) => decodePolicy(c, bytes, view, h, l4),
    options: {},
  };
}

const POLICY_SET = { name: "ctattr_timeout", names: ["", "NAME", "L3PROTO", "L4PROTO", "DATA"] };

function decodePolicy(
  c: AttrCursor,
  bytes: Uint8Array,
  view: DataView,
  h: MessageHeader,
  protocol: number,
): TimeoutPolicy {
  const names = NAMES[protocol] ?? GENERIC;
  const timeouts: Record<string, number> = {};
  c.reset(bytes, view, h.offset + NLMSG_HDRLEN + 4, h.offset + h.length, POLICY_SET);
  while (c.next()) {
    if (c.type !== CTA_TIMEOUT_DATA) continue;
    c.enter({ name: "ctattr_timeout_data", names });
    while (c.next()) {
      const name = names[c.type];
      if (name !== undefined && name !== "") timeouts[name] = c.u32be();
    }
    c.leave();
  }
  return { protocol, timeouts };
}

/**
 * The timeout `flow` got at its last packet under `policy`, in seconds:
 * its state's for TCP, SCTP and DCCP; `REPLIED` for an assured UDP,
 * UDP-Lite or GRE flow, else `UNREPLIED`; `TIMEOUT` for the others.
 * `undefined` for an entry whose timeout userspace fixed
 * (`FIXED_TIMEOUT`) or a state the policy has no timeout for. Entries under
 * a custom policy (nftables `ct timeout`) or TCP's shorter `RETRANS`/`UNACK`
 * timeouts are not told apart: for them the result is the default's.
 *
 * @example
 * ```ts
 * import { fullTimeout, newFlow } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const flow = { ...newFlow("ipv4"), status: 0x4 }; // ASSURED
 * flow.orig = { ...flow.orig, protocol: 17 };
 * equal(fullTimeout(flow, { protocol: 17, timeouts: { UNREPLIED: 30, REPLIED: 120 } }), 120);
 * ```
 */
export function fullTimeout(flow: Flow, policy: TimeoutPolicy): number | undefined {
  if ((flow.status & CT_STATUS.FIXED_TIMEOUT) !== 0) return undefined;
  const t = policy.timeouts;
  switch (policy.protocol) {
    case 6:
    case 132:
    case 33: {
      const info = flow.tcp ?? flow.sctp ?? flow.dccp;
      return info === undefined ? undefined : t[info.stateName];
    }
    case 17:
    case 136:
    case 47:
      return (flow.status & CT_STATUS.ASSURED) !== 0 ? t.REPLIED : t.UNREPLIED;
    default:
      return t.TIMEOUT;
  }
}
