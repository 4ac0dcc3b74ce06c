/**
 * `ctnl create`: make an entry, as `conntrack -I`.
 *
 * @module
 */

import type { CreateSpec, NatSetup, TupleSpec } from "../../mod.ts";
import { protocolInfo } from "../../src/protocols.ts";
import type { NatOption } from "../values.ts";
import { argumentError, UsageError } from "../errors.ts";
import { checkFamily, checkTuple, compact, type Filters, noNetworks } from "../filters.ts";
import { type OptionHelp, optionHelp, optionName, TUPLE_OPTIONS } from "../options.ts";
import type { CommandBody, Context } from "../context.ts";
import { isTcp, parseChanges } from "../changes.ts";
import { optionKeys } from "../help.ts";

const TUPLE: readonly OptionHelp[] = [
  ...TUPLE_OPTIONS,
  { key: "family", help: "Checked against the addresses" },
];
const GRE_KEYS: readonly OptionHelp[] = ["srcKey", "dstKey", "replySrcKey", "replyDstKey"];
const ENTRY: readonly OptionHelp[] = [
  { key: "timeout", help: "Timeout (required)" },
  { key: "state", help: "TCP state (required with -p tcp: SYN_SENT,\nESTABLISHED, TIME_WAIT, …)" },
  { key: "status", help: "Status flags to set: ASSURED, SEEN_REPLY, …" },
  { key: "mark", placeholder: "VALUE", help: "Mark" },
  { key: "zone", help: "Zone, 0-65535 (default 0)" },
  { key: "origZone", help: "Zone of the original direction only" },
  { key: "replyZone", help: "Zone of the reply direction only" },
  {
    key: "srcNat",
    placeholder: "ADDR[:PORT]",
    help: "Source NAT to this address (and port, tcp/udp):\nthe kernel makes the reply tuple",
  },
  { key: "dstNat", placeholder: "ADDR[:PORT]", help: "Destination NAT to this address (and port)" },
  { key: "labelAdd", help: "Labels to set (names from connlabel.conf)" },
  { key: "origVtag", help: "SCTP verification tag, original direction (required\nwith -p sctp)" },
  { key: "replyVtag", help: "SCTP verification tag, reply direction (required)" },
  { key: "role", help: "DCCP role (required with -p dccp)" },
  "netns",
];

/** A tuple from the addresses and ports of one direction (and the ICMP fields of the original). */
function tupleFrom(
  f: Filters,
  protocol: number,
  [src, dst, srcPort, dstPort]: [string, string, number | undefined, number | undefined],
  icmp: boolean,
): TupleSpec {
  const t: TupleSpec = { src, dst, protocol };
  if (srcPort !== undefined) t.srcPort = srcPort;
  if (dstPort !== undefined) t.dstPort = dstPort;
  if (icmp && f.icmpType !== undefined) t.icmpType = f.icmpType;
  if (icmp && f.icmpCode !== undefined) t.icmpCode = f.icmpCode;
  if (icmp && f.icmpId !== undefined) t.icmpId = f.icmpId;
  return t;
}

/** The entry create makes, from its options, checked as conntrack -I checks them. */
export function createSpec(ctx: Context): CreateSpec {
  const f = ctx.filters;
  // As conntrack -I reads them (and -o save writes them): -g ADDR stands for the reply
  // source -r, -n ADDR for the reply destination -q, when the other reply address is given.
  const replySrc = f.replySrc ?? (f.replyDst === undefined ? undefined : natAddress(f.dstNat));
  const replyDst = f.replyDst ?? (f.replySrc === undefined ? undefined : natAddress(f.srcNat));
  const p = f.protocol;
  if (p === undefined) throw new UsageError("create needs -p/--proto");
  const changes = parseChanges(ctx, "create");
  if (changes.timeout === undefined) throw new UsageError("create needs -t/--timeout");
  noNetworks(f, "create");
  const { name, tuple: kind } = protocolInfo(p);
  const hasOrig = f.src !== undefined || f.dst !== undefined;
  const hasReply = replySrc !== undefined || replyDst !== undefined;
  if (!hasOrig && !hasReply) throw new UsageError("create needs -s and -d (or -r and -q)");
  if (hasOrig && (f.src === undefined || f.dst === undefined)) {
    throw new UsageError("create needs both -s and -d");
  }
  if (hasReply && (replySrc === undefined || replyDst === undefined)) {
    throw new UsageError("create needs both -r and -q for the reply tuple");
  }
  if (kind === "icmp") {
    if (!hasOrig || hasReply) {
      throw new UsageError(
        `create -p ${name} takes -s and -d only (the reply tuple follows from them)`,
      );
    }
    if (f.icmpType === undefined || f.icmpCode === undefined || f.icmpId === undefined) {
      throw new UsageError(`create needs --icmp-type, --icmp-code and --icmp-id for ${name}`);
    }
  }
  if (!hasOrig && (f.sport !== undefined || f.dport !== undefined)) {
    throw new UsageError("--sport and --dport need -s and -d");
  }
  if (!hasReply && (f.replySport !== undefined || f.replyDport !== undefined)) {
    throw new UsageError("--reply-port-src and --reply-port-dst need -r and -q");
  }
  const ports = kind === "ports" || kind === "keys";
  const [sport, dport, rsport, rdport] = kind === "keys"
    ? ["--srckey", "--dstkey", "--reply-key-src", "--reply-key-dst"]
    : ["--sport", "--dport", "--reply-port-src", "--reply-port-dst"];
  if (ports && hasOrig && (f.sport === undefined || f.dport === undefined)) {
    throw new UsageError(`create needs ${sport} and ${dport} for ${name}`);
  }
  if (ports && hasReply && (f.replySport === undefined || f.replyDport === undefined)) {
    throw new UsageError(`create needs ${rsport} and ${rdport} for ${name}`);
  }
  if (isTcp(p) && changes.tcpState === undefined) {
    throw new UsageError(`create -p ${name} needs --state (SYN_SENT, ESTABLISHED, …)`);
  }
  const protoinfo = protocolInfoOf(ctx, name);
  let reply: TupleSpec | undefined;
  if (hasReply) {
    reply = tupleFrom(f, p, [replySrc!, replyDst!, f.replySport, f.replyDport], false);
    checkTuple(reply, "reply");
    checkFamily(f, reply);
  }
  let orig: TupleSpec;
  if (hasOrig) {
    orig = tupleFrom(f, p, [f.src!, f.dst!, f.sport, f.dport], true);
    checkTuple(orig, "orig");
    checkFamily(f, orig);
  } else {
    // Only the reply tuple: the original is its mirror (conntrack's NFCT_SOPT_SETUP_ORIGINAL).
    orig = tupleFrom(f, p, [reply!.dst, reply!.src, reply!.dstPort, reply!.srcPort], false);
  }
  if (reply !== undefined && orig.src.includes(":") !== reply.src.includes(":")) {
    throw new UsageError(
      `-r/-q addresses ("${reply.src}") and -s/-d addresses ("${orig.src}") differ in family`,
    );
  }
  const spec: CreateSpec = { orig, timeout: changes.timeout };
  if (reply !== undefined) spec.reply = reply;
  if (f.zone !== undefined) spec.zone = f.zone;
  if (f.origZone !== undefined) spec.origZone = f.origZone;
  if (f.replyZone !== undefined) spec.replyZone = f.replyZone;
  const snat = natSetup(f.srcNat), dnat = natSetup(f.dstNat);
  if (snat !== undefined) spec.snat = snat;
  if (dnat !== undefined) spec.dnat = dnat;
  if (changes.mark !== undefined) spec.mark = changes.mark.value;
  if (changes.status !== undefined) spec.status = changes.status;
  if (changes.tcpState !== undefined) spec.tcpState = changes.tcpState;
  if (changes.labelsAdd !== undefined) spec.labels = changes.labelsAdd;
  if (protoinfo.sctp !== undefined) spec.sctp = protoinfo.sctp;
  if (protoinfo.dccp !== undefined) spec.dccp = protoinfo.dccp;
  return spec;
}

/** The SCTP state and tags, or DCCP state and role, that conntrack -I requires for them. */
function protocolInfoOf(ctx: Context, name: string): Pick<CreateSpec, "sctp" | "dccp"> {
  const v = ctx.parsed.values;
  const state = ctx.filters.state;
  if (name !== "sctp" && (v.has("origVtag") || v.has("replyVtag"))) {
    throw new UsageError(
      `${optionName(v.has("origVtag") ? "origVtag" : "replyVtag")} needs -p sctp`,
    );
  }
  if (name !== "dccp" && v.has("role")) throw new UsageError("--role needs -p dccp");
  if (name === "sctp") {
    const vtag = (key: string) => {
      const text = v.get(key);
      if (text === undefined) throw new UsageError(`create -p sctp needs ${optionName(key)}`);
      if (!/^[0-9]+$/.test(text) || Number(text) > 0xffffffff) {
        throw new UsageError(
          `invalid verification tag "${text}" for ${optionName(key)} (0-4294967295)`,
        );
      }
      return Number(text);
    };
    if (state === undefined) throw new UsageError("create -p sctp needs --state (ESTABLISHED, …)");
    return { sctp: { state, vtagOrig: vtag("origVtag"), vtagReply: vtag("replyVtag") } };
  }
  if (name === "dccp") {
    const role = v.get("role");
    if (state === undefined) throw new UsageError("create -p dccp needs --state (OPEN, …)");
    if (role === undefined) throw new UsageError("create -p dccp needs --role (client or server)");
    if (role !== "client" && role !== "server") {
      throw new UsageError(`invalid role "${role}" for --role (client or server)`);
    }
    return { dccp: { state, role } };
  }
  return {};
}

/** `--src-nat`/`--dst-nat` of create: without an address, nothing (as conntrack -I). */
/** The address of a NAT option given with one (`-g 10.0.0.2`), else undefined. */
function natAddress(option: NatOption | undefined): string | undefined {
  return option === undefined || option === true ? undefined : option.address;
}

function natSetup(option: NatOption | undefined): NatSetup | undefined {
  if (option === undefined || option === true) return undefined;
  return compact<NatSetup>({ address: option.address, port: option.port });
}

async function run(ctx: Context): Promise<number> {
  const spec = createSpec(ctx);
  using ct = ctx.open();
  try {
    await ct.create(spec);
  } catch (error) {
    throw argumentError(error, "orig");
  }
  ctx.summary(1, "flow entries have been created");
  return 0;
}

/** The options of create (and of add). */
export const CREATE_OPTIONS: readonly OptionHelp[] = [...TUPLE, ...GRE_KEYS, ...ENTRY];

/** `ctnl create`, `ctnl -I`. */
export const create: CommandBody = {
  summary: "Create an entry (conntrack -I)",
  options: optionKeys(TUPLE, GRE_KEYS, ENTRY),
  help: `Usage: ctnl create -p PROTO -s ADDR -d ADDR [PORTS] -t SECONDS [OPTIONS]   (also: ctnl -I)

Creates an entry, as conntrack -I does. The reply tuple is the inverse of the
original one unless -r, -q (and --reply-port-src, --reply-port-dst) give it,
for example for a NAT-ed entry; with only -r and -q the original tuple is the
inverse of the reply one. An entry that exists already is exit 1 with
"Operation failed: Such conntrack exists, try -U to update".
"1 flow entries have been created." goes to stderr.

Tuple:
${optionHelp(TUPLE)}
${optionHelp(GRE_KEYS)}

Entry:
${optionHelp(ENTRY)}

Examples:
  ctnl create -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 80 -t 3600 \\
      --state ESTABLISHED -u ASSURED,SEEN_REPLY -m 7
  ctnl create -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 53 -t 120 -w 3
  ctnl create -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 5000 --dport 53 \\
      -r 10.0.0.9 -q 10.0.0.1 --reply-port-src 53 --reply-port-dst 5000 -t 120
  ctnl create -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 7 -t 30
  ctnl create -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 4000 --dport 80 -t 60 \\
      --state ESTABLISHED --dst-nat 10.0.0.9:8080 --label-add seen
  ctnl create -p gre -s 10.0.0.1 -d 10.0.0.2 --srckey 5 --dstkey 6 -t 60
`,
  run,
};
