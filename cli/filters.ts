/**
 * The selection options (`-f -p -s -d -r -q --sport … -m -w -u --state`),
 * parsed once into {@link Filters}, and what the commands make of them: a
 * dump filter, the tuple of one entry.
 *
 * @module
 */

import type {
  DumpFilter,
  Flow,
  GetOptions,
  NatFilter,
  Tuple,
  TupleFilter,
  TupleSpec,
} from "../mod.ts";
import { protocolInfo } from "../src/protocols.ts";
import { checked, FailError, UsageError } from "./errors.ts";
import { type OptionHelp, optionName, type Parsed } from "./options.ts";
import {
  decimal,
  type NatOption,
  parseCUint,
  parseFamily,
  parseGreKey,
  parseMark,
  parseNat,
  parseProto,
  parseStatus,
  parseZone,
} from "./values.ts";
import { labelBits } from "./labels.ts";
import { parseAddress } from "../src/address.ts";
import { parseTupleOnce } from "../src/request.ts";

/** The selection options of issue 12 that dump, delete and events take (in their help's order). */
export const NETWORK_NAT_LABEL_OPTIONS: readonly OptionHelp[] = [
  "maskSrc",
  "maskDst",
  "srcNat",
  "dstNat",
  "anyNat",
  {
    key: "label",
    help: "Entries with every one of these labels set (names\nfrom /etc/xtables/connlabel.conf)",
  },
  "secmark",
  { key: "origZone", help: "Zone of the original direction (0: none of its own)" },
  { key: "replyZone", help: "Zone of the reply direction (0: none of its own)" },
  "srcKey",
  "dstKey",
  "replySrcKey",
  "replyDstKey",
];

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
  /** `--mask-src`, `--mask-dst`. */
  maskSrc: string | undefined;
  maskDst: string | undefined;
  /** `-n`, `-g`, `-j`. */
  srcNat: NatOption | undefined;
  dstNat: NatOption | undefined;
  anyNat: NatOption | undefined;
  /** `-l`: the label bits, every one must be set. */
  labels: number[] | undefined;
  /** `-c`: parsed, selects nothing out (libnetfilter_conntrack does not compare it). */
  secmark: number | undefined;
  origZone: number | undefined;
  replyZone: number | undefined;
  /** `-z`. */
  zero: boolean;
}

/** The options of the rest of the command line: the repeated ones and those without a value. */
type Rest = Pick<Parsed, "lists" | "flags">;

const NO_REST: Rest = { lists: new Map(), flags: new Set() };

/**
 * Parses and cross-checks the selection options (ports need a protocol
 * with ports, …); `rest` gives the repeated options and those given
 * without a value (`-l`, `-n`, `-z`).
 */
export function parseFilters(v: ReadonlyMap<string, string>, rest: Rest = NO_REST): Filters {
  const f: Filters = {
    family: valueOf(v, "family", parseFamily),
    protocol: valueOf(v, "proto", parseProto),
    src: v.get("src"),
    dst: v.get("dst"),
    replySrc: v.get("replySrc"),
    replyDst: v.get("replyDst"),
    sport: valueOf(v, "sport", port),
    dport: valueOf(v, "dport", port),
    replySport: valueOf(v, "replySport", port),
    replyDport: valueOf(v, "replyDport", port),
    icmpType: valueOf(v, "icmpType", icmpByte),
    icmpCode: valueOf(v, "icmpCode", icmpByte),
    icmpId: valueOf(v, "icmpId", icmpId),
    mark: valueOf(v, "mark", parseMark),
    zone: valueOf(v, "zone", zone),
    status: valueOf(v, "status", parseStatus),
    state: v.get("state"),
    maskSrc: v.get("maskSrc"),
    maskDst: v.get("maskDst"),
    srcNat: nat("srcNat", v, rest),
    dstNat: nat("dstNat", v, rest),
    anyNat: nat("anyNat", v, rest),
    labels: rest.lists.has("label") ? labelBits("label", rest.lists.get("label")!) : undefined,
    secmark: valueOf(v, "secmark", secmark),
    origZone: valueOf(v, "origZone", directionZone),
    replyZone: valueOf(v, "replyZone", directionZone),
    zero: rest.flags.has("zero"),
  };
  checkNetworks(f);
  if (rest.lists.has("labelAdd") && (rest.lists.has("labelDel") || rest.flags.has("labelDel"))) {
    // conntrack exits with OTHER_PROBLEM (1) here.
    throw new FailError("cannot use --label-add and --label-del at the same time");
  }
  if (f.anyNat !== undefined && (f.srcNat !== undefined || f.dstNat !== undefined)) {
    throw new UsageError("-j/--any-nat cannot be combined with -n/--src-nat or -g/--dst-nat");
  }
  if (f.src === "" || f.dst === "" || f.replySrc === "" || f.replyDst === "") {
    for (const key of ["src", "dst", "replySrc", "replyDst"] as const) {
      if (f[key] === "") throw new UsageError(`empty address for ${optionName(key)}`);
    }
  }
  const p = f.protocol;
  const hasPorts = f.sport !== undefined || f.dport !== undefined || f.replySport !== undefined ||
    f.replyDport !== undefined;
  if (hasPorts && p !== undefined && protocolInfo(p).tuple !== "ports") {
    throw new UsageError(
      `port options need a protocol with ports (tcp, udp, udplite, sctp, dccp), not -p ${
        v.get("proto")
      }`,
    );
  }
  if (
    p === 47 || v.has("srcKey") || v.has("dstKey") || v.has("replySrcKey") || v.has("replyDstKey")
  ) {
    greKeys(f, v);
  }
  const hasIcmp = f.icmpType !== undefined || f.icmpCode !== undefined || f.icmpId !== undefined;
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

/** The value of option `key` parsed by `parse` (given the text and the key), if it was given. */
function valueOf<T>(
  v: ReadonlyMap<string, string>,
  key: string,
  parse: (text: string, key: string) => T,
): T | undefined {
  const text = v.get(key);
  return text === undefined ? undefined : parse(text, key);
}

// The value parsers of parseFilters, made once (not a closure a line of a loaded file).
const port = (text: string, key: string) => decimal(key, text, 65535, "port");
const icmpByte = (text: string, key: string) =>
  decimal(key, text, 255, key === "icmpType" ? "ICMP type" : "ICMP code");
const icmpId = (text: string, key: string) => decimal(key, text, 65535, "ICMP id");
const directionZone = (text: string, key: string) => parseZone(key, text);

function zone(text: string): number {
  const zone = parseCUint(text, 65535);
  if (zone === undefined) throw new UsageError(`invalid zone "${text}" for -w/--zone (0-65535)`);
  return zone;
}

function secmark(text: string): number {
  const mark = parseCUint(text, 0xffffffff);
  if (mark === undefined) throw new UsageError(`invalid secmark "${text}" for -c/--secmark`);
  return mark;
}

function nat(key: string, v: ReadonlyMap<string, string>, rest: Rest): NatOption | undefined {
  if (rest.flags.has(key)) return true;
  const text = v.get(key);
  return text === undefined ? undefined : parseNat(key, text);
}

/** `--srckey`, `--dstkey`, `--reply-key-src`, `--reply-key-dst`: the ports of a GRE tuple. */
function greKeys(f: Filters, v: ReadonlyMap<string, string>): void {
  const keys = [
    ["srcKey", "sport"],
    ["dstKey", "dport"],
    ["replySrcKey", "replySport"],
    ["replyDstKey", "replyDport"],
  ] as const;
  for (const [key, port] of keys) {
    const text = v.get(key);
    if (text === undefined) continue;
    if (f.protocol !== 47) throw new UsageError(`${optionName(key)} needs -p gre`);
    if (f[port] !== undefined) {
      throw new UsageError(`${optionName(key)} and ${optionName(port)} name the same field`);
    }
    f[port] = parseGreKey(key, text);
  }
}

/** Prefixes and masks: on -s and -d only (as conntrack), a mask only with its address. */
function checkNetworks(f: Filters): void {
  const slash = (a: string | undefined) => a !== undefined && a.includes("/");
  if (slash(f.replySrc) || slash(f.replyDst) || slash(f.maskSrc) || slash(f.maskDst)) {
    for (const key of ["replySrc", "replyDst", "maskSrc", "maskDst"] as const) {
      if (f[key]?.includes("/")) {
        throw new UsageError(`CIDR notation is not available for ${optionName(key)}`);
      }
    }
  }
  if (f.maskSrc !== undefined && f.src === undefined) {
    throw new UsageError("--mask-src needs -s/--src");
  }
  if (f.maskDst !== undefined && f.dst === undefined) {
    throw new UsageError("--mask-dst needs -d/--dst");
  }
}

/** Rejects a prefix (`-s 10.0.0.0/8`) where one entry is named (get, create). */
export function noNetworks(f: Filters, command: string): void {
  if (
    f.maskSrc === undefined && f.maskDst === undefined && !f.src?.includes("/") &&
    !f.dst?.includes("/")
  ) return;
  for (const key of ["src", "dst", "maskSrc", "maskDst"] as const) {
    if (f[key] !== undefined && (f[key].includes("/") || key.startsWith("mask"))) {
      throw new UsageError(
        `${command} takes whole addresses: no prefix or mask for ${optionName(key)}`,
      );
    }
  }
}

/** The NAT part of a dump filter: conntrack compares IPv4 NAT addresses only (any NAT for IPv6). */
function natFilter(
  option: NatOption | undefined,
  family: { af: "ipv4" | "ipv6" | undefined },
): true | NatFilter | undefined {
  if (option === undefined || option === true) return option;
  const v6 = option.address.includes(":");
  const af = v6 ? "ipv6" : "ipv4";
  if (family.af !== undefined && family.af !== af) {
    throw new UsageError(`the NAT address "${option.address}" mixes address families`);
  }
  family.af = af;
  return compact<NatFilter>({ address: v6 ? undefined : option.address, port: option.port });
}

/** Splits a prefix off `-s`/`-d`, where `--mask-src`/`--mask-dst` gives the mask. */
function withMask(address: string | undefined, mask: string | undefined): string | undefined {
  if (address === undefined || mask === undefined) return address;
  const slash = address.indexOf("/");
  return slash < 0 ? address : address.slice(0, slash);
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
    src: withMask(f.src, f.maskSrc),
    dst: withMask(f.dst, f.maskDst),
    srcMask: f.maskSrc,
    dstMask: f.maskDst,
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
  const family = { af: f.family };
  const snat = natFilter(f.srcNat, family);
  const dnat = natFilter(f.dstNat, family);
  const anyNat = natFilter(f.anyNat, family);
  return compact<DumpFilter>({
    family: family.af,
    mark: f.mark,
    // conntrack -w compares the zone of both directions (CTA_ZONE, 0 when
    // absent); the kernel's zone filter, which matches a zone of either
    // direction, narrows the dump first when the zone is not 0.
    zone: f.zone === 0 ? undefined : f.zone,
    entryZone: f.zone,
    origZone: f.origZone,
    replyZone: f.replyZone,
    status: f.status,
    snat,
    dnat,
    anyNat,
    labels: f.labels,
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
  if (kind === "ports" || kind === "keys") {
    const sport = orig ? f.sport : f.replySport;
    const dport = orig ? f.dport : f.replyDport;
    if (sport === undefined || dport === undefined) {
      const names = kind === "keys"
        ? (orig ? "--srckey and --dstkey" : "--reply-key-src and --reply-key-dst")
        : (orig ? "--sport and --dport" : "--reply-port-src and --reply-port-dst");
      throw new UsageError(`get needs ${names} for ${name}`);
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

/**
 * Whether `t`, a direction of the entry the kernel returned, is the tuple
 * asked for. The kernel finds an entry by either direction's tuple;
 * conntrack -G then compares the direction asked for and shows nothing
 * when it differs (also when ports were given for an entry tracked without
 * them, as DCCP on a kernel that tracks it as a generic protocol).
 */
export function isTupleAsked(t: Tuple, asked: TupleSpec): boolean {
  const text = (address: string) => parseAddress(address, "tuple").text;
  if (t.src !== text(asked.src) || t.dst !== text(asked.dst) || t.protocol !== asked.protocol) {
    return false;
  }
  if (asked.srcPort !== undefined && (t.srcPort !== asked.srcPort || t.dstPort !== asked.dstPort)) {
    return false;
  }
  return asked.icmpType === undefined ||
    (t.icmpType === asked.icmpType && t.icmpCode === asked.icmpCode && t.icmpId === asked.icmpId);
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

/**
 * Checks `tuple` as the library does; a bad field is a usage error naming
 * its option. (The library remembers what it parsed: the request built
 * from the tuple next does not parse it again.)
 */
export function checkTuple(tuple: TupleSpec, direction: string): void {
  checked(() => parseTupleOnce(tuple), direction);
}
