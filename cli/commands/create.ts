import type { CreateSpec, TupleSpec } from "../../mod.ts";
import { argumentError, UsageError } from "../errors.ts";
import {
  checkFamily,
  checkTuple,
  ICMP_PROTOCOLS,
  parseProtocolName,
  PORT_PROTOCOLS,
  put,
} from "../filters.ts";
import { type Context, open, summary } from "../context.ts";
import { parseChanges } from "../changes.ts";

/** The entry create makes, from its options, checked as conntrack -I checks them. */
export function createSpec(ctx: Context): CreateSpec {
  const f = ctx.filters;
  const p = f.protocol;
  if (p === undefined) throw new UsageError("create needs -p/--proto");
  const changes = parseChanges(ctx, "create");
  if (changes.timeout === undefined) throw new UsageError("create needs -t/--timeout");
  const proto = parseProtocolName(p);
  if (p === 47) {
    // The kernel needs the GRE keys in the tuple (conntrack's --srckey/--dstkey).
    throw new UsageError("create -p gre needs GRE keys, which ctnl does not take");
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
  if (ICMP_PROTOCOLS.has(p)) {
    if (!hasOrig || hasReply) {
      throw new UsageError(
        `create -p ${proto} takes -s and -d only (the reply tuple follows from them)`,
      );
    }
    if (f.icmpType === undefined || f.icmpCode === undefined || f.icmpId === undefined) {
      throw new UsageError(`create needs --icmp-type, --icmp-code and --icmp-id for ${proto}`);
    }
  }
  if (!hasOrig && (f.sport !== undefined || f.dport !== undefined)) {
    throw new UsageError("--sport and --dport need -s and -d");
  }
  if (!hasReply && (f.replySport !== undefined || f.replyDport !== undefined)) {
    throw new UsageError("--reply-port-src and --reply-port-dst need -r and -q");
  }
  const ports = PORT_PROTOCOLS.has(p);
  if (ports && hasOrig && (f.sport === undefined || f.dport === undefined)) {
    throw new UsageError(`create needs --sport and --dport for ${proto}`);
  }
  if (ports && hasReply && (f.replySport === undefined || f.replyDport === undefined)) {
    throw new UsageError(`create needs --reply-port-src and --reply-port-dst for ${proto}`);
  }
  if (p === 6 && changes.tcpState === undefined) {
    throw new UsageError("create -p tcp needs --state (SYN_SENT, ESTABLISHED, …)");
  }
  let reply: TupleSpec | undefined;
  if (hasReply) {
    reply = { src: f.replySrc!, dst: f.replyDst!, protocol: p };
    put(reply, "srcPort", f.replySport);
    put(reply, "dstPort", f.replyDport);
    checkTuple(reply, "reply");
    checkFamily(f, reply);
  }
  let orig: TupleSpec;
  if (hasOrig) {
    orig = { src: f.src!, dst: f.dst!, protocol: p };
    put(orig, "srcPort", f.sport);
    put(orig, "dstPort", f.dport);
    put(orig, "icmpType", f.icmpType);
    put(orig, "icmpCode", f.icmpCode);
    put(orig, "icmpId", f.icmpId);
    checkTuple(orig, "orig");
    checkFamily(f, orig);
  } else {
    // Only the reply tuple: the original is its mirror (conntrack's NFCT_SOPT_SETUP_ORIGINAL).
    orig = { src: reply!.dst, dst: reply!.src, protocol: p };
    put(orig, "srcPort", reply!.dstPort);
    put(orig, "dstPort", reply!.srcPort);
  }
  if (reply !== undefined && orig.src.includes(":") !== reply.src.includes(":")) {
    throw new UsageError(
      `-r/-q addresses ("${reply.src}") and -s/-d addresses ("${orig.src}") differ in family`,
    );
  }
  const spec: CreateSpec = { orig, timeout: changes.timeout };
  put(spec, "reply", reply);
  put(spec, "zone", f.zone);
  put(spec, "mark", changes.mark?.value);
  put(spec, "status", changes.status);
  put(spec, "tcpState", changes.tcpState);
  return spec;
}

export async function runCreate(ctx: Context): Promise<number> {
  const spec = createSpec(ctx);
  using ct = open(ctx);
  try {
    await ct.create(spec);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) {
      throw argumentError(error, "orig");
    }
    throw error;
  }
  summary(1, "flow entries have been created");
  return 0;
}
