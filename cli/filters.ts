/**
 * The selection options (`-f -p -s -d -r -q --sport … -m -w -u --state`),
 * parsed once into {@link Filters}, and what the commands make of them: a
 * dump filter, the tuple of one entry.
 *
 * @module
 */

import {
  type DumpFilter,
  type Flow,
  type GetOptions,
  protocolInfo,
  type TupleFilter,
  type TupleSpec,
  validateTuple,
} from "../mod.ts";
import { checked, UsageError } from "./errors.ts";
import { optionName } from "./options.ts";
import { decimal, parseCUint, parseFamily, parseMark, parseProto, parseStatus } from "./values.ts";

/** The selection options, parsed. */
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

/** Parses and cross-checks the selection options (ports need a protocol with ports, …). */
export function parseFilters(v: ReadonlyMap<string, string>): Filters {
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
  if (hasPorts && p !== undefined && protocolInfo(p).tuple !== "ports") {
    throw new UsageError(
      `port options need a protocol with ports (tcp, udp, udplite, sctp, dccp), not -p ${
        v.get("proto")
      }`,
    );
  }
  const hasIcmp = [f.icmpType, f.icmpCode, f.icmpId].some((x) => x !== undefined);
  if (hasIcmp && p !== undefined && protocolInfo(p).tuple !== "icmp") {
    throw new UsageError(`--icmp-type/--icmp-code/--icmp-id need -p icmp or -p icmpv6`);
  }
  if (f.state !== undefined) {
    const table = p === undefined ? undefined : protocolInfo(p).states;
    if (table === undefined) throw new UsageError("--state needs -p tcp, -p sctp or -p dccp");
    if (!table.includes(f.state)) {
      throw new UsageError(
        `invalid state "${f.state}" for --state with -p ${v.get("proto")} (${table.join(", ")})`,
      );
    }
  }
  return f;
}

/**
 * `obj` without its undefined properties: an object for an options type
 * under exactOptionalPropertyTypes.
 */
export function compact<T extends object>(obj: { [K in keyof T]: T[K] | undefined }): T {
  const out: Partial<T> = {};
  for (const key of Object.keys(obj) as (keyof T)[]) {
    if (obj[key] !== undefined) out[key] = obj[key];
  }
  return out as T;
}

/** The dump filter of the selection options. */
export function dumpFilter(f: Filters): DumpFilter {
  const orig = compact<TupleFilter>({
    src: f.src,
    dst: f.dst,
    protocol: f.protocol,
    srcPort: f.sport,
    dstPort: f.dport,
    icmpType: f.icmpType,
    icmpCode: f.icmpCode,
    icmpId: f.icmpId,
  });
  const reply = compact<TupleFilter>({
    src: f.replySrc,
    dst: f.replyDst,
    srcPort: f.replySport,
    dstPort: f.replyDport,
  });
  const hasReply = Object.keys(reply).length > 0;
  if (hasReply && f.protocol !== undefined) reply.protocol = f.protocol;
  return compact<DumpFilter>({
    family: f.family,
    mark: f.mark,
    zone: f.zone,
    status: f.status,
    orig: Object.keys(orig).length > 0 ? orig : undefined,
    reply: hasReply ? reply : undefined,
  });
}

/** The one entry a full tuple names: the tuple, the get options, the direction it is in. */
export interface NamedEntry {
  tuple: TupleSpec;
  options: GetOptions;
  direction: "orig" | "reply";
}

/** The tuple and options for `get`, from `-s -d --sport --dport` or `-r -q --reply-port-*`. */
export function getRequest(f: Filters): NamedEntry {
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
  const { name, tuple: kind } = protocolInfo(f.protocol);
  if (kind === "ports") {
    const sport = orig ? f.sport : f.replySport;
    const dport = orig ? f.dport : f.replyDport;
    if (sport === undefined || dport === undefined) {
      throw new UsageError(
        orig
          ? `get needs --sport and --dport for ${name}`
          : `get needs --reply-port-src and --reply-port-dst for ${name}`,
      );
    }
    tuple.srcPort = sport;
    tuple.dstPort = dport;
  } else if (kind === "icmp") {
    if (f.icmpType === undefined || f.icmpCode === undefined || f.icmpId === undefined) {
      throw new UsageError(`get needs --icmp-type, --icmp-code and --icmp-id for ${name}`);
    }
    tuple.icmpType = f.icmpType;
    tuple.icmpCode = f.icmpCode;
    tuple.icmpId = f.icmpId;
  }
  const options: GetOptions = { direction };
  if (f.zone !== undefined) options.zone = f.zone;
  return { tuple, options, direction };
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

/** Checks `tuple` as the library does; a bad field is a usage error naming its option. */
export function checkTuple(tuple: TupleSpec, direction: string): void {
  checked(() => validateTuple(tuple), direction);
}
