import {
  DCCP_STATES,
  type DumpFilter,
  type Flow,
  type GetOptions,
  parseProtocol,
  SCTP_STATES,
  TCP_STATES,
  type Tuple,
  type TupleFilter,
  type TupleSpec,
  validateTuple,
} from "../mod.ts";
import { argumentError, UsageError } from "./errors.ts";
import { optionName } from "./options.ts";
import { decimal, parseCUint, parseFamily, parseMark, parseProto, parseStatus } from "./values.ts";

export const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136]);
export const ICMP_PROTOCOLS = new Set([1, 58]);

export interface Filters {
  family: "ipv4" | "ipv6" | undefined;
  protocol: number | undefined;
  src: string | undefined;
  dst: string | undefined;
  replySrc: string | undefined;
  replyDst: string | undefined;
  sport: number | undefined;
  dport: number | undefined;
  replySport: number | undefined;
  replyDport: number | undefined;
  icmpType: number | undefined;
  icmpCode: number | undefined;
  icmpId: number | undefined;
  mark: { value: number; mask: number } | undefined;
  zone: number | undefined;
  status: { value: number; mask: number } | undefined;
  state: string | undefined;
}

export function parseFilters(v: Map<string, string>): Filters {
  const get = <T>(key: string, parse: (text: string) => T): T | undefined => {
    const text = v.get(key);
    return text === undefined ? undefined : parse(text);
  };
  const port = (key: string) => get(key, (t) => decimal(key, t, 65535, "port"));
  const f: Filters = {
    family: get("family", parseFamily),
    protocol: get("proto", parseProto),
    src: v.get("src"),
    dst: v.get("dst"),
    replySrc: v.get("replySrc"),
    replyDst: v.get("replyDst"),
    sport: port("sport"),
    dport: port("dport"),
    replySport: port("replySport"),
    replyDport: port("replyDport"),
    icmpType: get("icmpType", (t) => decimal("icmpType", t, 255, "ICMP type")),
    icmpCode: get("icmpCode", (t) => decimal("icmpCode", t, 255, "ICMP code")),
    icmpId: get("icmpId", (t) => decimal("icmpId", t, 65535, "ICMP id")),
    mark: get("mark", parseMark),
    zone: get("zone", (t) => {
      const zone = parseCUint(t, 65535);
      if (zone === undefined) throw new UsageError(`invalid zone "${t}" for -w/--zone (0-65535)`);
      return zone;
    }),
    status: get("status", parseStatus),
    state: v.get("state"),
  };
  for (const key of ["src", "dst", "replySrc", "replyDst"] as const) {
    if (f[key] === "") throw new UsageError(`empty address for ${optionName(key)}`);
  }
  const p = f.protocol;
  const hasPorts = [f.sport, f.dport, f.replySport, f.replyDport].some((x) => x !== undefined);
  if (hasPorts && p !== undefined && !PORT_PROTOCOLS.has(p)) {
    throw new UsageError(
      `port options need a protocol with ports (tcp, udp, udplite, sctp, dccp), not -p ${
        v.get("proto")
      }`,
    );
  }
  const hasIcmp = [f.icmpType, f.icmpCode, f.icmpId].some((x) => x !== undefined);
  if (hasIcmp && p !== undefined && !ICMP_PROTOCOLS.has(p)) {
    throw new UsageError(`--icmp-type/--icmp-code/--icmp-id need -p icmp or -p icmpv6`);
  }
  if (f.state !== undefined) {
    const table = p === 6 ? TCP_STATES : p === 132 ? SCTP_STATES : p === 33 ? DCCP_STATES : null;
    if (table === null) throw new UsageError("--state needs -p tcp, -p sctp or -p dccp");
    if (!table.includes(f.state)) {
      throw new UsageError(
        `invalid state "${f.state}" for --state with -p ${v.get("proto")} (${table.join(", ")})`,
      );
    }
  }
  return f;
}

/** Adds `value` under `key` unless it is undefined (for exactOptionalPropertyTypes). */
export function put<T extends object, K extends keyof T>(
  obj: T,
  key: K,
  value: T[K] | undefined,
): void {
  if (value !== undefined) obj[key] = value;
}

export function dumpFilter(f: Filters): DumpFilter {
  const filter: DumpFilter = {};
  put(filter, "family", f.family);
  put(filter, "mark", f.mark);
  put(filter, "zone", f.zone);
  put(filter, "status", f.status);
  const orig: TupleFilter = {};
  put(orig, "src", f.src);
  put(orig, "dst", f.dst);
  put(orig, "protocol", f.protocol);
  put(orig, "srcPort", f.sport);
  put(orig, "dstPort", f.dport);
  put(orig, "icmpType", f.icmpType);
  put(orig, "icmpCode", f.icmpCode);
  put(orig, "icmpId", f.icmpId);
  const reply: TupleFilter = {};
  put(reply, "src", f.replySrc);
  put(reply, "dst", f.replyDst);
  put(reply, "srcPort", f.replySport);
  put(reply, "dstPort", f.replyDport);
  if (Object.keys(reply).length > 0) put(reply, "protocol", f.protocol);
  if (Object.keys(orig).length > 0) filter.orig = orig;
  if (Object.keys(reply).length > 0) filter.reply = reply;
  return filter;
}

/** The tuple and options for `get`, from `-s -d --sport --dport` or `-r -q --reply-port-*`. */
export function getRequest(
  f: Filters,
): { tuple: TupleSpec; options: GetOptions; direction: string } {
  if (f.protocol === undefined) throw new UsageError("get needs -p/--proto");
  let direction: "orig" | "reply";
  if (f.src !== undefined && f.dst !== undefined) direction = "orig";
  else if (f.replySrc !== undefined && f.replyDst !== undefined) direction = "reply";
  else throw new UsageError("get needs -s and -d (or -r and -q)");
  const orig = direction === "orig";
  const tuple: TupleSpec = {
    src: orig ? f.src! : f.replySrc!,
    dst: orig ? f.dst! : f.replyDst!,
    protocol: f.protocol,
  };
  const proto = parseProtocolName(f.protocol);
  if (PORT_PROTOCOLS.has(f.protocol)) {
    const sport = orig ? f.sport : f.replySport;
    const dport = orig ? f.dport : f.replyDport;
    if (sport === undefined || dport === undefined) {
      throw new UsageError(
        orig
          ? `get needs --sport and --dport for ${proto}`
          : `get needs --reply-port-src and --reply-port-dst for ${proto}`,
      );
    }
    tuple.srcPort = sport;
    tuple.dstPort = dport;
  } else if (ICMP_PROTOCOLS.has(f.protocol)) {
    if (f.icmpType === undefined || f.icmpCode === undefined || f.icmpId === undefined) {
      throw new UsageError(`get needs --icmp-type, --icmp-code and --icmp-id for ${proto}`);
    }
    tuple.icmpType = f.icmpType;
    tuple.icmpCode = f.icmpCode;
    tuple.icmpId = f.icmpId;
  }
  const options: GetOptions = { direction };
  put(options, "zone", f.zone);
  return { tuple, options, direction };
}

export function parseProtocolName(protocol: number): string {
  for (const name of ["tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6"]) {
    if (parseProtocol(name) === protocol) return name;
  }
  return `protocol ${protocol}`;
}

/** The tuple of one direction of a listed flow, to name its entry in a request. */
export function tupleOf(t: Tuple): TupleSpec {
  const tuple: TupleSpec = { src: t.src ?? "", dst: t.dst ?? "", protocol: t.protocol ?? 0 };
  if (t.srcPort !== undefined && t.dstPort !== undefined) {
    tuple.srcPort = t.srcPort;
    tuple.dstPort = t.dstPort;
  }
  if (t.icmpType !== undefined) {
    tuple.icmpType = t.icmpType;
    tuple.icmpCode = t.icmpCode ?? 0;
    tuple.icmpId = t.icmpId ?? 0;
  }
  return tuple;
}

/** The zone of a listed flow, to name its entry in a request (undefined: zone 0). */
export function zoneOf(flow: Flow): number | undefined {
  return flow.zone ?? flow.orig.zone;
}

/** Rejects `-f` that contradicts the family of the tuple's addresses. */
export function checkFamily(f: Filters, tuple: TupleSpec): void {
  if (f.family === undefined) return;
  if ((f.family === "ipv6") !== tuple.src.includes(":")) {
    throw new UsageError(`-f/--family ${f.family} does not match the address "${tuple.src}"`);
  }
}

export function checkTuple(tuple: TupleSpec, direction: string): void {
  try {
    validateTuple(tuple);
  } catch (error) {
    throw argumentError(error, direction);
  }
}
