/**
 * conntrack's save format (`conntrack -L -o save`): each entry as the
 * options that would create it (`-A -t 120 -u SEEN_REPLY -s … -p tcp …`),
 * and the reading side of it: a `-R`/`ctnl load` file split into lines of
 * arguments, as conntrack-tools splits them.
 *
 * @module
 */

import type { Flow, Tuple } from "../mod.ts";
import { CT_STATUS } from "../src/constants.ts";
import { DCCP_STATES, protocolInfo, SCTP_STATES, TCP_STATES } from "../src/protocols.ts";
import { UsageError } from "./errors.ts";

/** The event type a save line starts with: `-A` (new, and every listed entry), `-U`, `-D`. */
export type SaveType = "new" | "update" | "destroy";

const SAVE_PREFIX: Readonly<Record<SaveType, string>> = {
  new: "-A",
  update: "-U",
  destroy: "-D",
};

/** The status bits conntrack's save format names (`conntrack_status_map`), in bit order. */
const SAVE_STATUS: readonly [number, string][] = [
  [CT_STATUS.EXPECTED, "EXPECTED"],
  [CT_STATUS.SEEN_REPLY, "SEEN_REPLY"],
  [CT_STATUS.ASSURED, "ASSURED"],
  [CT_STATUS.FIXED_TIMEOUT, "FIXED_TIMEOUT"],
];

/** `-u` of a status: its named flags, or `UNSET` when none of them is set. */
const statusText = new Map<number, string>();

function saveStatus(status: number): string {
  const named = status & 0x407;
  let text = statusText.get(named);
  if (text === undefined) {
    const names = SAVE_STATUS.filter(([bit]) => (named & bit) !== 0).map(([, name]) => name);
    text = names.length === 0 ? "UNSET" : names.join(",");
    statusText.set(named, text);
  }
  return text;
}

/**
 * A state name as conntrack's `val_mapping[state]` prints it: tables of
 * TCP_CONNTRACK_MAX, SCTP_CONNTRACK_MAX (named up to SHUTDOWN_ACK_SENT) and
 * DCCP_CONNTRACK_MAX entries; an unnamed slot is printf's `(null)`.
 */
function stateName(table: readonly string[], size: number, state: number): string {
  return state < size ? table[state] ?? "(null)" : "(null)";
}

/** A 32-bit number with its bytes reversed. */
function swap32(n: number): number {
  return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | (n >>> 24)) >>> 0;
}

const SCTP_SAVE_STATES = SCTP_STATES.slice(0, 8);
const DCCP_ROLES = ["client", "server"];

function ports(s: string, orig: Tuple, reply: Tuple, names: readonly string[]): string {
  if (orig.srcPort !== undefined) s += ` ${names[0]} ${orig.srcPort}`;
  if (orig.dstPort !== undefined) s += ` ${names[1]} ${orig.dstPort}`;
  if (reply.srcPort !== undefined) s += ` ${names[2]} ${reply.srcPort}`;
  if (reply.dstPort !== undefined) s += ` ${names[3]} ${reply.dstPort}`;
  return s;
}

const PORT_NAMES = ["--sport", "--dport", "--reply-port-src", "--reply-port-dst"];
const KEY_NAMES = ["--srckey", "--dstkey", "--reply-key-src", "--reply-key-dst"];

/**
 * The protocol's part: `-p NAME` and its fields for the protocols
 * conntrack-tools has a handler for (those with fields in the tuple),
 * else `-p NUMBER`.
 */
function protocolText(flow: Flow): string {
  const orig = flow.orig, reply = flow.reply;
  const p = orig.protocol ?? 0;
  const { name, tuple } = protocolInfo(p);
  if (tuple === "none") return ` -p ${p}`;
  let s = ` -p ${name}`;
  if (tuple === "icmp") {
    const v = p === 58 ? "v6" : "";
    if (orig.icmpType !== undefined) s += ` --icmp${v}-type ${orig.icmpType}`;
    if (orig.icmpCode !== undefined) s += ` --icmp${v}-code ${orig.icmpCode}`;
    if (orig.icmpId !== undefined) s += ` --icmp${v}-id ${orig.icmpId}`;
    return s;
  }
  s = ports(s, orig, reply, tuple === "keys" ? KEY_NAMES : PORT_NAMES);
  const { tcp, sctp, dccp } = flow;
  if (tcp) s += ` --state ${stateName(TCP_STATES, 10, tcp.state)}`;
  else if (sctp) {
    s += ` --state ${stateName(SCTP_SAVE_STATES, 10, sctp.state)}`;
    // Printed through ntohl() once more than the value was read with: byte-swapped.
    if (sctp.vtagOrig !== undefined) s += ` --orig-vtag ${swap32(sctp.vtagOrig)}`;
    if (sctp.vtagReply !== undefined) s += ` --reply-vtag ${swap32(sctp.vtagReply)}`;
  } else if (dccp) {
    s += ` --state ${stateName(DCCP_STATES, 10, dccp.state)}`;
    if (dccp.role !== undefined) s += ` --role ${stateName(DCCP_ROLES, 2, dccp.role)}`;
  }
  return s;
}

/**
 * One flow as `conntrack -o save` prints it (conntrack-tools 1.4.7's
 * `ct_save_snprintf`): the event's command (`-A` for a listed entry),
 * `-t -u -c -w --orig-zone --reply-zone`, the addresses (`-g`/`-n` for the
 * reply address when the entry is DNAT-ed/SNAT-ed, else `-r`/`-q`), `-p`
 * and the protocol's fields. Mark, labels and counters are not part of it.
 */
export function formatSave(flow: Flow, type: SaveType = "new"): string {
  let s = SAVE_PREFIX[type];
  if (flow.timeout !== undefined) s += ` -t ${flow.timeout}`;
  s += ` -u ${saveStatus(flow.status)}`;
  if (flow.secmark !== undefined) s += ` -c ${flow.secmark}`;
  if (flow.zone !== undefined) s += ` -w ${flow.zone}`;
  if (flow.orig.zone !== undefined) s += ` --orig-zone ${flow.orig.zone}`;
  if (flow.reply.zone !== undefined) s += ` --reply-zone ${flow.reply.zone}`;
  const orig = flow.orig, reply = flow.reply;
  if (orig.src !== undefined) s += ` -s ${orig.src}`;
  if (orig.dst !== undefined) s += ` -d ${orig.dst}`;
  // libnetfilter_conntrack's NFCT_GOPT_IS_DNAT / IS_SNAT.
  const dnat = (flow.status & CT_STATUS.DST_NAT_DONE) !== 0 && reply.src !== orig.dst;
  const snat = (flow.status & CT_STATUS.SRC_NAT_DONE) !== 0 && reply.dst !== orig.src;
  if (reply.src !== undefined) s += `${dnat ? " -g" : " -r"} ${reply.src}`;
  if (reply.dst !== undefined) s += `${snat ? " -n" : " -q"} ${reply.dst}`;
  return s + protocolText(flow);
}

/** The longest argument conntrack's line splitter takes (`ct_param_buf`). */
const MAX_PARAM = 1023;
/** What separates arguments. */
const BLANKS = /[ \t\n]+/;
/** The most arguments a line may have (`MAX_ARGC`, the program name counted). */
const MAX_ARGS = 253;

/**
 * The arguments of one line of a load file, split as conntrack-tools'
 * `add_param_to_argv` splits them: on spaces, tabs and newlines; `"…"`
 * quotes (a closing quote ends the argument; `\` escapes inside quotes).
 * Undefined for a line conntrack skips: empty, blank or a `#` comment.
 */
export function splitLine(line: string): string[] | undefined {
  if (!line.includes('"')) {
    // No quotes: arguments are the runs between blanks (the common case, done at once).
    const args = line.split(BLANKS);
    if (args[0] === "") args.shift();
    if (args.at(-1) === "") args.pop();
    if (args.length === 0 || args[0]!.startsWith("#")) return undefined;
    if (args.length > MAX_ARGS) throw new UsageError("too many arguments");
    for (const arg of args) if (arg.length > MAX_PARAM) throw new UsageError("Parameter too long!");
    return args;
  }
  let i = 0;
  while (line[i] === " " || line[i] === "\t") i++;
  if (i === line.length || line[i] === "\n" || line[i] === "#") return undefined;
  const args: string[] = [];
  let param = "", quoteOpen = false, escaped = false;
  const push = () => {
    if (args.length >= MAX_ARGS) throw new UsageError("too many arguments");
    args.push(param);
    param = "";
  };
  const add = (c: string) => {
    param += c;
    if (param.length > MAX_PARAM) throw new UsageError("Parameter too long!");
  };
  for (; i < line.length; i++) {
    const c = line[i]!;
    if (quoteOpen) {
      if (escaped) {
        add(c);
        escaped = false;
        continue;
      }
      if (c === "\\") {
        escaped = true;
        continue;
      }
      if (c !== '"') {
        add(c);
        continue;
      }
      quoteOpen = false; // the closing quote ends the argument, even an empty one
      push();
      continue;
    }
    if (c === '"') {
      quoteOpen = true;
      continue;
    }
    if (c === " " || c === "\t" || c === "\n") {
      if (param.length > 0) push();
      continue;
    }
    add(c);
  }
  if (param.length > 0) push();
  return args.length === 0 ? undefined : args;
}
