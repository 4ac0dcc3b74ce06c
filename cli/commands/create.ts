/**
 * `ctnl create`: make an entry, as `conntrack -I`.
 *
 * @module
 */

import { type CreateSpec, protocolInfo, type TupleSpec } from "../../mod.ts";
import { argumentError, UsageError } from "../errors.ts";
import { checkFamily, checkTuple, compact, type Filters } from "../filters.ts";
import { type OptionHelp, optionHelp, TUPLE_OPTIONS } from "../options.ts";
import type { Command, Context } from "../context.ts";
import { isTcp, parseChanges } from "../changes.ts";
import { optionKeys } from "../help.ts";

const TUPLE: readonly OptionHelp[] = [
  ...TUPLE_OPTIONS,
  { key: "family", help: "Checked against the addresses" },
];
const ENTRY: readonly OptionHelp[] = [
  { key: "timeout", help: "Timeout (required)" },
  { key: "state", help: "TCP state (required with -p tcp: SYN_SENT,\nESTABLISHED, TIME_WAIT, …)" },
  { key: "status", help: "Status flags to set: ASSURED, SEEN_REPLY, …" },
  { key: "mark", placeholder: "VALUE", help: "Mark" },
  { key: "zone", help: "Zone, 0-65535 (default 0)" },
  "netns",
];

/** A tuple from the addresses and ports of one direction (and the ICMP fields of the original). */
function tupleFrom(
  f: Filters,
  protocol: number,
  [src, dst, srcPort, dstPort]: [string, string, number | undefined, number | undefined],
  icmp: boolean,
): TupleSpec {
  return compact<TupleSpec>({
    src,
    dst,
    protocol,
    srcPort,
    dstPort,
    icmpType: icmp ? f.icmpType : undefined,
    icmpCode: icmp ? f.icmpCode : undefined,
    icmpId: icmp ? f.icmpId : undefined,
  });
}

/** The entry create makes, from its options, checked as conntrack -I checks them. */
export function createSpec(ctx: Context): CreateSpec {
  const f = ctx.filters;
  const p = f.protocol;
  if (p === undefined) throw new UsageError("create needs -p/--proto");
  const changes = parseChanges(ctx, "create");
  if (changes.timeout === undefined) throw new UsageError("create needs -t/--timeout");
  const { name, tuple: kind } = protocolInfo(p);
  if (kind === "keys") {
    // The kernel needs the GRE keys in the tuple (conntrack's --srckey/--dstkey).
    throw new UsageError(`create -p ${name} needs GRE keys, which ctnl does not take`);
  }
  const hasOrig = f.src !== undefined || f.dst !== undefined;
  const hasReply = f.replySrc !== undefined || f.replyDst !== undefined;
  if (!hasOrig && !hasReply) throw new UsageError("create needs -s and -d (or -r and -q)");
  if (hasOrig && (f.src === undefined || f.dst === undefined)) {
    throw new UsageError("create needs both -s and -d");
  }
  if (hasReply && (f.replySrc === undefined || f.replyDst === undefined)) {
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
  const ports = kind === "ports";
  if (ports && hasOrig && (f.sport === undefined || f.dport === undefined)) {
    throw new UsageError(`create needs --sport and --dport for ${name}`);
  }
  if (ports && hasReply && (f.replySport === undefined || f.replyDport === undefined)) {
    throw new UsageError(`create needs --reply-port-src and --reply-port-dst for ${name}`);
  }
  if (isTcp(p) && changes.tcpState === undefined) {
    throw new UsageError(`create -p ${name} needs --state (SYN_SENT, ESTABLISHED, …)`);
  }
  let reply: TupleSpec | undefined;
  if (hasReply) {
    reply = tupleFrom(f, p, [f.replySrc!, f.replyDst!, f.replySport, f.replyDport], false);
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
  return compact<CreateSpec>({
    orig,
    reply,
    timeout: changes.timeout,
    zone: f.zone,
    mark: changes.mark?.value,
    status: changes.status,
    tcpState: changes.tcpState,
  });
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

/** `ctnl create`, `ctnl -I`. */
export const create: Command = {
  name: "create",
  words: ["create"],
  flags: ["-I", "--create"],
  summary: "Create an entry (conntrack -I)",
  options: optionKeys(TUPLE, ENTRY),
  help: `Usage: ctnl create -p PROTO -s ADDR -d ADDR [PORTS] -t SECONDS [OPTIONS]   (also: ctnl -I)

Creates an entry, as conntrack -I does. The reply tuple is the inverse of the
original one unless -r, -q (and --reply-port-src, --reply-port-dst) give it,
for example for a NAT-ed entry; with only -r and -q the original tuple is the
inverse of the reply one. An entry that exists already is exit 1 with
"Operation failed: Such conntrack exists, try -U to update".
"1 flow entries have been created." goes to stderr.

Tuple:
${optionHelp(TUPLE)}

Entry:
${optionHelp(ENTRY)}

Examples:
  ctnl create -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 80 -t 3600 \\
      --state ESTABLISHED -u ASSURED,SEEN_REPLY -m 7
  ctnl create -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 53 -t 120 -w 3
  ctnl create -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 5000 --dport 53 \\
      -r 10.0.0.9 -q 10.0.0.1 --reply-port-src 53 --reply-port-dst 5000 -t 120
  ctnl create -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 7 -t 30
`,
  run,
};
