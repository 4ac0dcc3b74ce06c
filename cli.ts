/**
 * `ctnl`: the conntrack table from the command line, a drop-in for
 * conntrack-tools' `-L`, `-G`, `-S`, `-C`, `-E`, `-D`, `-F`, `-I` and `-U`,
 * plus JSON.
 *
 * ```sh
 * sudo deno run --allow-ffi cli.ts dump -p tcp --dport 443
 * sudo deno run --allow-ffi cli.ts get -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 53
 * sudo deno run --allow-ffi cli.ts dump --json | jq .orig.src
 * sudo deno run --allow-ffi cli.ts events -e NEW,DESTROY -p tcp
 * sudo deno run --allow-ffi cli.ts delete -p tcp --dport 22
 * ```
 *
 * Exit status: 0 success, 1 the operation failed (no such entry, no
 * permission, no such namespace), 2 bad parameters. Errors are one line on
 * stderr starting with `ctnl: `; stdout holds only data.
 *
 * This module parses arguments and formats output; everything it knows
 * about conntrack comes from `mod.ts`.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import {
  Conntrack,
  type CpuStats,
  type CreateSpec,
  CT_STATUS,
  DCCP_STATES,
  type DumpFilter,
  DumpInterruptedError,
  type EventOptions,
  type Flow,
  type FlowChanges,
  flowToJson,
  type FlushOptions,
  formatCpuStats,
  formatFlow,
  type FormatOptions,
  type GetOptions,
  NetlinkError,
  parseProtocol,
  SCTP_STATES,
  TCP_STATES,
  type Tuple,
  type TupleFilter,
  type TupleSpec,
  validateFilter,
  validateTuple,
} from "./mod.ts";

const VERSION: string = denoJson.version;
/** Prefix of the summary line, laid out as conntrack's `conntrack v1.4.7 (conntrack-tools): `. */
const SUMMARY_PREFIX = `ctnl v${VERSION} (@ctnl/conntrack): `;
const LABEL_FILE = "/etc/xtables/connlabel.conf";

/** Bad parameters: exit status 2. */
class UsageError extends Error {}
/** The operation failed: exit status 1. */
class FailError extends Error {}

// ---------------------------------------------------------------------------
// Options

type Command =
  | "dump"
  | "get"
  | "stats"
  | "count"
  | "events"
  | "delete"
  | "flush"
  | "create"
  | "update";

interface OptionSpec {
  /** Key in the parsed options. */
  key: string;
  /** One-letter form, without the dash. */
  short?: string;
  /** Long forms, without the dashes; the first is the canonical name. */
  long: string[];
  /** Whether the option takes a value. */
  value: boolean;
}

const OPTIONS: OptionSpec[] = [
  { key: "netns", long: ["netns"], value: true },
  { key: "json", long: ["json"], value: false },
  { key: "output", short: "o", long: ["output"], value: true },
  { key: "family", short: "f", long: ["family"], value: true },
  { key: "proto", short: "p", long: ["proto", "protonum"], value: true },
  { key: "src", short: "s", long: ["src", "orig-src"], value: true },
  { key: "dst", short: "d", long: ["dst", "orig-dst"], value: true },
  { key: "replySrc", short: "r", long: ["reply-src"], value: true },
  { key: "replyDst", short: "q", long: ["reply-dst"], value: true },
  { key: "sport", long: ["sport", "orig-port-src"], value: true },
  { key: "dport", long: ["dport", "orig-port-dst"], value: true },
  { key: "replySport", long: ["reply-port-src"], value: true },
  { key: "replyDport", long: ["reply-port-dst"], value: true },
  { key: "mark", short: "m", long: ["mark"], value: true },
  { key: "zone", short: "w", long: ["zone"], value: true },
  { key: "status", short: "u", long: ["status"], value: true },
  { key: "state", long: ["state"], value: true },
  { key: "icmpType", long: ["icmp-type", "icmpv6-type"], value: true },
  { key: "icmpCode", long: ["icmp-code", "icmpv6-code"], value: true },
  { key: "icmpId", long: ["icmp-id", "icmpv6-id"], value: true },
  { key: "timeout", short: "t", long: ["timeout"], value: true },
  { key: "eventMask", short: "e", long: ["event-mask"], value: true },
  { key: "bufferSize", short: "b", long: ["buffer-size"], value: true },
  { key: "help", short: "h", long: ["help"], value: false },
  { key: "version", short: "V", long: ["version"], value: false },
  { key: "cmd:dump", short: "L", long: ["dump"], value: false },
  { key: "cmd:get", short: "G", long: ["get"], value: false },
  { key: "cmd:stats", short: "S", long: ["stats"], value: false },
  { key: "cmd:count", short: "C", long: ["count", "counter"], value: false },
  { key: "cmd:events", short: "E", long: ["event"], value: false },
  { key: "cmd:delete", short: "D", long: ["delete"], value: false },
  { key: "cmd:flush", short: "F", long: ["flush"], value: false },
  { key: "cmd:create", short: "I", long: ["create"], value: false },
  { key: "cmd:update", short: "U", long: ["update"], value: false },
];

const BY_SHORT = new Map(OPTIONS.filter((o) => o.short).map((o) => [o.short!, o]));
const BY_KEY = new Map(OPTIONS.map((o) => [o.key, o]));

/** How an option is named in messages: `-s/--src`, `--dport`. */
function optionName(key: string): string {
  const spec = BY_KEY.get(key);
  if (!spec) return key;
  return spec.short ? `-${spec.short}/--${spec.long[0]}` : `--${spec.long[0]}`;
}

const FILTER_KEYS = [
  "family",
  "proto",
  "src",
  "dst",
  "replySrc",
  "replyDst",
  "sport",
  "dport",
  "replySport",
  "replyDport",
  "icmpType",
  "icmpCode",
  "icmpId",
];
const DUMP_KEYS = ["netns", "json", "output", ...FILTER_KEYS, "mark", "zone", "status", "state"];
const ALLOWED: Record<Command, Set<string>> = {
  dump: new Set(DUMP_KEYS),
  get: new Set(["netns", "json", "output", ...FILTER_KEYS, "zone"]),
  stats: new Set(["netns", "json"]),
  count: new Set(["netns", "json"]),
  events: new Set([...DUMP_KEYS, "eventMask", "bufferSize"]),
  delete: new Set(DUMP_KEYS),
  flush: new Set(["netns", "family", "mark"]),
  create: new Set(["netns", ...FILTER_KEYS, "timeout", "mark", "zone", "status", "state"]),
  update: new Set(DUMP_KEYS.concat("timeout")),
};

const COMMAND_WORDS = new Map<string, Command>([
  ["dump", "dump"],
  ["list", "dump"],
  ["get", "get"],
  ["stats", "stats"],
  ["count", "count"],
  ["events", "events"],
  ["delete", "delete"],
  ["flush", "flush"],
  ["create", "create"],
  ["update", "update"],
]);

/** The command words, for messages. */
const COMMAND_LIST = "dump, get, stats, count, events, delete, flush, create or update";

interface Parsed {
  command: Command | undefined;
  /** Where the command came from, for messages: `dump`, `-L`. */
  commandText: string | undefined;
  values: Map<string, string>;
  flags: Set<string>;
  outputs: string[];
  table: string | undefined;
}

function longSpec(name: string): OptionSpec {
  for (const spec of OPTIONS) if (spec.long.includes(name)) return spec;
  // Like getopt_long: an unambiguous prefix of a long option names it.
  const hits = new Set<OptionSpec>();
  const names: string[] = [];
  for (const spec of OPTIONS) {
    for (const long of spec.long) {
      if (long.startsWith(name) && name.length > 0) {
        hits.add(spec);
        names.push(`--${long}`);
      }
    }
  }
  if (hits.size === 1) return [...hits][0]!;
  if (hits.size > 1) {
    throw new UsageError(`option --${name} is ambiguous (${names.join(", ")})`);
  }
  throw new UsageError(`unknown option --${name}`);
}

function setCommand(p: Parsed, command: Command, text: string): void {
  if (p.command !== undefined) {
    throw new UsageError(`only one command at a time: ${p.commandText} and ${text}`);
  }
  p.command = command;
  p.commandText = text;
}

function record(p: Parsed, spec: OptionSpec, text: string, value: string | undefined): void {
  if (spec.key.startsWith("cmd:")) {
    setCommand(p, spec.key.slice(4) as Command, text);
    return;
  }
  if (!spec.value) {
    p.flags.add(spec.key);
    return;
  }
  if (value === undefined) throw new UsageError(`option ${text} needs a value`);
  if (spec.key === "output") {
    p.outputs.push(value);
    return;
  }
  if (p.values.has(spec.key)) throw new UsageError(`option ${optionName(spec.key)} given twice`);
  p.values.set(spec.key, value);
}

/** Parses the command line, getopt style: `-pVALUE`, `-p VALUE`, `--proto=VALUE`, `--proto VALUE`. */
function parseArgs(args: string[]): Parsed {
  const p: Parsed = {
    command: undefined,
    commandText: undefined,
    values: new Map(),
    flags: new Set(),
    outputs: [],
    table: undefined,
  };
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const spec = longSpec(name);
      if (!spec.value) {
        if (eq >= 0) throw new UsageError(`option --${name} takes no value`);
        record(p, spec, `--${name}`, undefined);
      } else {
        const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
        record(p, spec, `--${name}`, value);
      }
      continue;
    }
    if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const spec = BY_SHORT.get(letter);
        if (!spec) throw new UsageError(`unknown option -${letter}`);
        if (spec.value) {
          const value = j + 1 < arg.length ? arg.slice(j + 1) : args[++i];
          record(p, spec, `-${letter}`, value);
          break;
        }
        record(p, spec, `-${letter}`, undefined);
      }
      continue;
    }
    positionals.push(arg);
  }
  for (const word of positionals) {
    if (p.command === undefined) {
      const command = COMMAND_WORDS.get(word);
      if (command === undefined) {
        throw new UsageError(`unknown command "${word}" (try ${COMMAND_LIST})`);
      }
      setCommand(p, command, word);
    } else if (p.table === undefined && p.command !== "stats") {
      p.table = word;
    } else {
      throw new UsageError(`unexpected argument "${word}"`);
    }
  }
  return p;
}

// ---------------------------------------------------------------------------
// Values

/** An unsigned integer as C's `strtoul(text, &end, 0)` reads it: decimal, 0x hex or 0 octal. */
function parseCUint(text: string, max: number): number | undefined {
  let value: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) value = parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text)) value = parseInt(text, 8);
  else if (/^[1-9][0-9]*$/.test(text)) value = Number(text);
  else return undefined;
  return Number.isSafeInteger(value) && value <= max ? value : undefined;
}

function decimal(key: string, text: string, max: number, what: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) > max) {
    throw new UsageError(`invalid ${what} "${text}" for ${optionName(key)} (0-${max})`);
  }
  return Number(text);
}

function parseMark(text: string): { value: number; mask: number } {
  const slash = text.indexOf("/");
  const valueText = slash < 0 ? text : text.slice(0, slash);
  const value = parseCUint(valueText, 0xffffffff);
  if (value === undefined) {
    throw new UsageError(
      `invalid mark "${text}" for -m/--mark (a 32-bit number, decimal or 0x hex, optionally /MASK)`,
    );
  }
  if (slash < 0) return { value, mask: 0xffffffff };
  const mask = parseCUint(text.slice(slash + 1), 0xffffffff);
  if (mask === undefined) {
    throw new UsageError(`invalid mask in "${text}" for -m/--mark (a 32-bit number after /)`);
  }
  return { value, mask };
}

/** conntrack's `-u` keywords, in its order (a prefix picks the first that matches). */
const STATUS_KEYWORDS: [string, number][] = [
  ["ASSURED", CT_STATUS.ASSURED],
  ["SEEN_REPLY", CT_STATUS.SEEN_REPLY],
  ["UNSET", 0],
  ["FIXED_TIMEOUT", CT_STATUS.FIXED_TIMEOUT],
  ["EXPECTED", CT_STATUS.EXPECTED],
  ["OFFLOAD", CT_STATUS.OFFLOAD],
  ["HW_OFFLOAD", CT_STATUS.HW_OFFLOAD],
];

/**
 * `-u FLAG[,FLAG…]`: every FLAG must be set, `!FLAG` must be clear,
 * `UNREPLIED` means SEEN_REPLY is clear. FLAG is a conntrack keyword (or
 * a prefix of one, case-insensitive) or any `CT_STATUS` name.
 */
function parseStatus(text: string): { value: number; mask: number } {
  let value = 0, mask = 0;
  for (const raw of text.split(",")) {
    const negated = raw.startsWith("!");
    const word = (negated ? raw.slice(1) : raw).toUpperCase();
    let bit: number | undefined;
    if (word === "UNREPLIED" && !negated) {
      mask |= CT_STATUS.SEEN_REPLY;
      continue;
    }
    if (Object.hasOwn(CT_STATUS, word)) bit = CT_STATUS[word as keyof typeof CT_STATUS];
    else if (word.length > 0) bit = STATUS_KEYWORDS.find(([name]) => name.startsWith(word))?.[1];
    if (bit === undefined) {
      throw new UsageError(
        `invalid status "${raw}" for -u/--status (ASSURED, SEEN_REPLY, UNREPLIED, FIXED_TIMEOUT, EXPECTED, OFFLOAD, HW_OFFLOAD, another CT_STATUS name, or !NAME)`,
      );
    }
    if (!negated) value |= bit;
    mask |= bit;
  }
  if (mask === 0) throw new UsageError(`-u/--status "${text}" selects no status bit`);
  return { value: value >>> 0, mask: mask >>> 0 };
}

/** conntrack's `-o` keywords, in its order (a prefix picks the first that matches). */
const OUTPUT_KEYWORDS = [
  "xml",
  "extended",
  "timestamp",
  "id",
  "ktimestamp",
  "labels",
  "userspace",
  "save",
] as const;
type OutputKeyword = typeof OUTPUT_KEYWORDS[number];

function parseOutput(lists: string[]): Set<OutputKeyword> {
  const out = new Set<OutputKeyword>();
  for (const list of lists) {
    for (const word of list.split(",")) {
      const lower = word.toLowerCase();
      const hit = lower === "" ? undefined : OUTPUT_KEYWORDS.find((k) => k.startsWith(lower));
      if (hit === undefined) {
        throw new UsageError(
          `invalid output format "${word}" for -o/--output (extended, id, ktimestamp, timestamp, labels, userspace)`,
        );
      }
      out.add(hit);
    }
  }
  if (out.has("xml")) throw new UsageError("-o xml is not supported; use --json");
  if (out.has("save")) throw new UsageError("-o save is not supported");
  return out;
}

function parseFamily(text: string): "ipv4" | "ipv6" {
  const lower = text.toLowerCase();
  if (lower === "ipv4" || lower === "ipv6") return lower;
  throw new UsageError(`invalid family "${text}" for -f/--family (ipv4 or ipv6)`);
}

function parseProto(text: string): number {
  try {
    return parseProtocol(text, "-p");
  } catch {
    throw new UsageError(
      `unknown protocol "${text}" for -p/--proto (a name such as tcp, udp, icmp, icmpv6, sctp, or a number 0-255)`,
    );
  }
}

type EventType = "new" | "update" | "destroy";

/** conntrack's `-e` keywords, in its order (a prefix picks the first that matches). */
const EVENT_KEYWORDS: [string, EventType[]][] = [
  ["ALL", ["new", "update", "destroy"]],
  ["NEW", ["new"]],
  ["UPDATES", ["update"]],
  ["DESTROY", ["destroy"]],
];

/** `-e NEW,UPDATE,DESTROY` (any case, a prefix is enough, `ALL` for the three). */
function parseEventMask(text: string): EventType[] {
  const wanted = new Set<EventType>();
  for (const word of text.split(",")) {
    const upper = word.toUpperCase();
    const hit = upper === "" ? undefined : EVENT_KEYWORDS.find(([name]) => name.startsWith(upper));
    if (hit === undefined) {
      throw new UsageError(
        `invalid event "${word}" for -e/--event-mask (NEW, UPDATE, DESTROY or ALL)`,
      );
    }
    for (const type of hit[1]) wanted.add(type);
  }
  return (["new", "update", "destroy"] as const).filter((type) => wanted.has(type));
}

const PORT_PROTOCOLS = new Set([6, 17, 33, 132, 136]);
const ICMP_PROTOCOLS = new Set([1, 58]);

interface Filters {
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

function parseFilters(v: Map<string, string>): Filters {
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
function put<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) obj[key] = value;
}

function dumpFilter(f: Filters): DumpFilter {
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
function getRequest(f: Filters): { tuple: TupleSpec; options: GetOptions; direction: string } {
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

function parseProtocolName(protocol: number): string {
  for (const name of ["tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6"]) {
    if (parseProtocol(name) === protocol) return name;
  }
  return `protocol ${protocol}`;
}

// ---------------------------------------------------------------------------
// Output

const encoder = new TextEncoder();
const FLUSH_AT = 64 * 1024;

function writeAll(file: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
}

/** Buffers lines for stdout and writes them in ~64 KiB chunks. */
class LineWriter {
  // One reused buffer: lines are encoded straight into it and written out in
  // large chunks, so output allocates nothing per line or per chunk.
  #buf = new Uint8Array(4 * FLUSH_AT);
  #used = 0;

  line(text: string): void {
    const most = text.length * 3 + 1; // UTF-8 bytes at most
    if (this.#used + most > this.#buf.length) {
      this.flush();
      if (most > this.#buf.length) {
        writeAll(Deno.stdout, encoder.encode(text + "\n"));
        return;
      }
    }
    this.#used += encoder.encodeInto(text, this.#buf.subarray(this.#used)).written;
    this.#buf[this.#used++] = 10;
  }

  flush(): void {
    if (this.#used === 0) return;
    const used = this.#used;
    this.#used = 0;
    writeAll(Deno.stdout, this.#buf.subarray(0, used));
  }
}

function stderrLine(text: string): void {
  try {
    writeAll(Deno.stderr, encoder.encode(text.replace(/\s*\n\s*/g, " ") + "\n"));
  } catch {
    // Nowhere left to report it.
  }
}

/** The text of one stats object for `--json`: undefined fields left out. */
function statsJson(stats: CpuStats[]): string {
  return JSON.stringify({ cpus: stats });
}

/**
 * Label names by bit from connlabel.conf, read as libnetfilter_conntrack
 * does: `BIT NAME` lines (BIT as strtoul base 0, below 1024), `#` comments,
 * names of letters, digits, spaces and dashes, the first of a bit or name
 * wins. Undefined when no line defines a label.
 */
function parseLabelMap(text: string): (string | undefined)[] | undefined {
  const names: (string | undefined)[] = [];
  const seen = new Set<string>();
  let added = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^[ \t\v\f\r]*(?:0[xX]([0-9a-fA-F]+)|([1-9][0-9]*)|(0[0-7]*))/.exec(line);
    if (!m) continue;
    const bit = m[1] !== undefined
      ? parseInt(m[1], 16)
      : m[2] !== undefined
      ? Number(m[2])
      : parseInt(m[3]!, 8);
    if (!(bit < 1024) || names[bit] !== undefined) continue;
    const name = line.slice(m[0].length).replace(/^[ \t\v\f\r]+|[ \t\v\f\r]+$/g, "");
    if (name === "" || !/^[A-Za-z0-9 -]+$/.test(name) || seen.has(name)) continue;
    names[bit] = name;
    seen.add(name);
    added++;
  }
  return added > 0 ? names : undefined;
}

function loadLabelMap(): (string | undefined)[] | undefined {
  const state = Deno.permissions.querySync({ name: "read", path: LABEL_FILE }).state;
  if (state !== "granted") {
    stderrLine(
      `ctnl: warning: label names not loaded: reading ${LABEL_FILE} needs --allow-read=${LABEL_FILE}`,
    );
    return undefined;
  }
  try {
    const map = parseLabelMap(Deno.readTextFileSync(LABEL_FILE));
    if (map === undefined) stderrLine(`ctnl: warning: no label names in ${LABEL_FILE}`);
    return map;
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "No such file or directory"
      : error instanceof Error
      ? error.message
      : String(error);
    stderrLine(`ctnl: warning: label names not loaded: ${LABEL_FILE}: ${why}`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Commands

interface Context {
  parsed: Parsed;
  filters: Filters;
  json: boolean;
  outputs: Set<OutputKeyword>;
  format: FormatOptions;
}

function open(ctx: Context): Conntrack {
  const state = Deno.permissions.querySync({ name: "ffi" }).state;
  if (state !== "granted") {
    throw new FailError(
      "needs FFI access to reach netlink: run it as `deno run --allow-ffi …` (or `deno task ctnl …`)",
    );
  }
  const netns = ctx.parsed.values.get("netns");
  return Conntrack.open(netns === undefined ? {} : { netns });
}

/** The summary line on stderr: `ctnl v… (@ctnl/conntrack): N flow entries have been shown.` */
function summary(n: number, what = "flow entries have been shown"): void {
  stderrLine(`${SUMMARY_PREFIX}${n} ${what}.`);
}

function stateMatcher(state: string | undefined): ((flow: Flow) => boolean) | undefined {
  if (state === undefined) return undefined;
  return (flow) => (flow.tcp ?? flow.sctp ?? flow.dccp)?.stateName === state;
}

function runDump(ctx: Context): number {
  const filter = dumpFilter(ctx.filters);
  try {
    validateFilter(filter); // bad parameters are exit 2 before anything is opened
  } catch (error) {
    throw argumentError(error, "orig");
  }
  using ct = open(ctx);
  const out = new LineWriter();
  const keep = stateMatcher(ctx.filters.state);
  const format = ctx.format;
  let n = 0;
  let interrupted = false;
  try {
    format.now = Math.floor(Date.now() / 1000);
    for (const flow of ct.dumpSync(filter)) {
      if (keep !== undefined && !keep(flow)) continue;
      out.line(ctx.json ? flowToJson(flow) : formatFlow(flow, format));
      if ((++n & 1023) === 0) format.now = Math.floor(Date.now() / 1000);
    }
  } catch (error) {
    if (!(error instanceof DumpInterruptedError)) {
      // Show what came before the failure, as conntrack does, then report it.
      if (!(error instanceof Deno.errors.BrokenPipe)) out.flush();
      throw error;
    }
    interrupted = true;
  }
  out.flush();
  if (interrupted) {
    stderrLine(
      "ctnl: warning: the table changed during the dump (NLM_F_DUMP_INTR); entries may be missing or repeated",
    );
  }
  summary(n);
  return 0;
}

function runGet(ctx: Context): number {
  const { tuple, options, direction } = getRequest(ctx.filters);
  if (ctx.filters.family !== undefined) {
    const v6 = tuple.src.includes(":");
    if ((ctx.filters.family === "ipv6") !== v6) {
      throw new UsageError(
        `-f/--family ${ctx.filters.family} does not match the address "${tuple.src}"`,
      );
    }
  }
  try {
    validateTuple(tuple);
  } catch (error) {
    throw argumentError(error, direction);
  }
  using ct = open(ctx);
  let flow: Flow;
  try {
    flow = ct.getSync(tuple, options);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) {
      throw argumentError(error, direction);
    }
    throw error;
  }
  const out = new LineWriter();
  out.line(ctx.json ? flowToJson(flow) : formatFlow(flow, ctx.format));
  out.flush();
  summary(1);
  return 0;
}

async function runStats(ctx: Context): Promise<number> {
  using ct = open(ctx);
  const stats = await ct.stats();
  const out = new LineWriter();
  if (ctx.json) out.line(statsJson(stats));
  else for (const s of stats) out.line(formatCpuStats(s));
  out.flush();
  return 0;
}

async function runCount(ctx: Context): Promise<number> {
  using ct = open(ctx);
  const stats = await ct.globalStats();
  const out = new LineWriter();
  out.line(ctx.json ? JSON.stringify(stats) : String(stats.entries));
  out.flush();
  return 0;
}

// ---------------------------------------------------------------------------
// Watching and changing the table

/** The tuple of one direction of a listed flow, to name its entry in a request. */
function tupleOf(t: Tuple): TupleSpec {
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
function zoneOf(flow: Flow): number | undefined {
  return flow.zone ?? flow.orig.zone;
}

function isNotFound(error: unknown): boolean {
  return error instanceof NetlinkError && error.code === "ENOENT";
}

/** Rejects `-f` that contradicts the family of the tuple's addresses. */
function checkFamily(f: Filters, tuple: TupleSpec): void {
  if (f.family === undefined) return;
  if ((f.family === "ipv6") !== tuple.src.includes(":")) {
    throw new UsageError(`-f/--family ${f.family} does not match the address "${tuple.src}"`);
  }
}

function checkTuple(tuple: TupleSpec, direction: string): void {
  try {
    validateTuple(tuple);
  } catch (error) {
    throw argumentError(error, direction);
  }
}

/**
 * What delete and update print of an entry: conntrack's default format
 * with `-o extended` and `-o id` (and, for update, `-o labels`); the other
 * `-o` keywords are accepted and have no effect there, as in conntrack.
 */
function changeFormat(ctx: Context, labels: boolean): FormatOptions {
  const format: FormatOptions = {
    extended: ctx.format.extended ?? false,
    id: ctx.format.id ?? false,
  };
  if (labels && ctx.format.labelNames !== undefined) format.labelNames = ctx.format.labelNames;
  return format;
}

/** `[SEC.USEC]\t` of `-o timestamp`: the kernel's time of the event when it sent one, else now. */
function eventTime(flow: Flow): string {
  let sec: string, usec: string;
  const ns = flow.timestampEvent;
  if (ns !== undefined) {
    sec = String(ns / 1_000_000_000n);
    usec = String((ns % 1_000_000_000n) / 1000n);
  } else {
    const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    sec = String(Math.floor(micros / 1e6));
    usec = String(micros % 1e6);
  }
  // conntrack's printf("[%-.8ld.%-.6ld]\t"): the precision zero-pads.
  return `[${sec.padStart(8, "0")}.${usec.padStart(6, "0")}]\t`;
}

const EVENT_PREFIX: Readonly<Record<EventType, string>> = {
  new: "[NEW]",
  update: "[UPDATE]",
  destroy: "[DESTROY]",
};

/**
 * Event lines for stdout. They are written as soon as the stream goes idle
 * (a zero-delay timer, which only runs once the event loop has nothing
 * else to do) or when 64 KiB are waiting: a reader at the other end of a
 * pipe sees each event as it happens, and a burst still goes out in large
 * writes. A failed write from the timer is kept in `error` and reported
 * through `onError`.
 */
class EventWriter {
  #text = "";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #onError: () => void;
  /** The error of a write made from the idle timer, if one failed. */
  error: unknown = undefined;

  constructor(onError: () => void) {
    this.#onError = onError;
  }

  line(text: string): void {
    this.#text += text + "\n";
    if (this.#text.length >= FLUSH_AT) this.flush();
    else this.#timer ??= setTimeout(this.#idle, 0);
  }

  #idle = (): void => {
    this.#timer = undefined;
    try {
      this.flush();
    } catch (error) {
      this.error ??= error;
      this.#onError();
    }
  };

  flush(): void {
    this.close();
    if (this.#text === "") return;
    const bytes = encoder.encode(this.#text);
    this.#text = "";
    writeAll(Deno.stdout, bytes);
  }

  /** Cancels the pending idle write (the text stays). */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

async function runEvents(ctx: Context): Promise<number> {
  const filter = dumpFilter(ctx.filters);
  try {
    validateFilter(filter);
  } catch (error) {
    throw argumentError(error, "orig");
  }
  const options: EventOptions = { filter };
  const mask = ctx.parsed.values.get("eventMask");
  if (mask !== undefined) options.types = parseEventMask(mask);
  const size = ctx.parsed.values.get("bufferSize");
  if (size !== undefined) {
    options.bufferSize = decimal("bufferSize", size, 0x7fffffff, "size in bytes");
  }
  const keep = stateMatcher(ctx.filters.state);
  const timestamp = ctx.outputs.has("timestamp");
  const format: FormatOptions = { ...ctx.format };
  using ct = open(ctx);
  const stop = new AbortController();
  options.signal = stop.signal;
  const onSignal = () => stop.abort();
  const out = new EventWriter(onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let shown = 0;
  try {
    for await (const event of ct.events(options)) {
      if (event.type === "lost") {
        stderrLine(
          `ctnl: warning: We have hit ENOBUFS! We are losing events (${event.lost} overruns so far); the socket buffer is too small, see -b/--buffer-size`,
        );
        if (ctx.json) out.line(`{"event":"lost","lost":${event.lost}}`);
        continue;
      }
      const flow = event.flow;
      if (keep !== undefined && !keep(flow)) continue;
      if (ctx.json) {
        out.line(`{"event":"${event.type}",${flowToJson(flow).slice(1)}`);
      } else {
        format.eventType = EVENT_PREFIX[event.type];
        out.line(timestamp ? eventTime(flow) + formatFlow(flow, format) : formatFlow(flow, format));
      }
      shown++;
    }
    if (out.error !== undefined) throw out.error;
    out.flush();
  } finally {
    out.close();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  summary(shown, "flow events have been shown");
  return 0;
}

async function runDelete(ctx: Context): Promise<number> {
  const filter = dumpFilter(ctx.filters);
  try {
    validateFilter(filter);
  } catch (error) {
    throw argumentError(error, "orig");
  }
  const keep = stateMatcher(ctx.filters.state);
  const format = changeFormat(ctx, false);
  using ct = open(ctx);
  const out = new LineWriter();
  const print = (flow: Flow) => out.line(ctx.json ? flowToJson(flow) : formatFlow(flow, format));
  let deleted = 0;
  try {
    if (keep === undefined) {
      deleted = await ct.deleteWhere(filter, { onDelete: print, onInterrupted: "ignore" });
    } else {
      // --state is matched here, so deleteWhere (which takes no predicate)
      // cannot be used: list on this handle, delete each match by tuple
      // and id on a second one.
      using other = open(ctx);
      for (const flow of ct.dumpSync(filter, { onInterrupted: "ignore" })) {
        if (!keep(flow)) continue;
        const options: GetOptions & { id?: number } = {};
        put(options, "zone", zoneOf(flow));
        put(options, "id", flow.id);
        try {
          await other.delete(tupleOf(flow.orig), options);
        } catch (error) {
          if (isNotFound(error)) continue; // gone meanwhile, as conntrack skips it
          throw error;
        }
        print(flow);
        deleted++;
      }
    }
  } catch (error) {
    // Show what was deleted before the failure, then report it.
    if (!(error instanceof Deno.errors.BrokenPipe)) out.flush();
    throw error;
  }
  out.flush();
  summary(deleted, "flow entries have been deleted");
  return deleted === 0 ? 1 : 0;
}

async function runFlush(ctx: Context): Promise<number> {
  const options: FlushOptions = {};
  put(options, "family", ctx.filters.family);
  put(options, "mark", ctx.filters.mark);
  using ct = open(ctx);
  await ct.flush(options);
  stderrLine(`${SUMMARY_PREFIX}connection tracking table has been emptied.`);
  return 0;
}

/** What create and update set: parsed from -t, -m, -u and --state. */
interface Changes {
  timeout: number | undefined;
  mark: { value: number; mask: number } | undefined;
  status: number | undefined;
  tcpState: string | undefined;
}

function parseChanges(ctx: Context, command: "create" | "update"): Changes {
  const f = ctx.filters;
  const timeout = ctx.parsed.values.get("timeout");
  const changes: Changes = {
    timeout: timeout === undefined ? undefined : decimal("timeout", timeout, 0xffffffff, "timeout"),
    mark: f.mark,
    status: f.status?.value,
    tcpState: f.state,
  };
  if (command === "create" && f.mark !== undefined && f.mark.mask !== 0xffffffff) {
    throw new UsageError(`-m/--mark with create takes a value, not VALUE/MASK`);
  }
  if (f.status !== undefined && f.status.value !== f.status.mask) {
    throw new UsageError(
      `-u/--status with ${command} names flags to set; "!FLAG" and UNREPLIED only select (dump, delete, events)`,
    );
  }
  if (f.state !== undefined && f.protocol !== 6) {
    throw new UsageError(`--state with ${command} needs -p tcp`);
  }
  return changes;
}

/** The entry's fields after `changes`, as conntrack -U computes them; undefined when nothing changes. */
function changesFor(flow: Flow, changes: Changes): FlowChanges | undefined {
  const out: FlowChanges = {};
  let changed = false;
  if (changes.timeout !== undefined) {
    out.timeout = changes.timeout;
    changed ||= flow.timeout !== changes.timeout;
  }
  if (changes.mark !== undefined) {
    // conntrack -U -m VALUE/MASK: the bits outside MASK are kept, VALUE is xor-ed in.
    const mark = (((flow.mark ?? 0) & ~changes.mark.mask) ^ changes.mark.value) >>> 0;
    out.mark = mark;
    changed ||= flow.mark !== mark;
  }
  if (changes.status !== undefined) {
    // Flags are only ever set; the kernel refuses to clear most of them.
    const status = (flow.status | changes.status) >>> 0;
    if (status !== flow.status) {
      out.status = status;
      changed = true;
    }
  }
  if (changes.tcpState !== undefined) {
    out.tcpState = changes.tcpState;
    changed ||= flow.tcp?.stateName !== changes.tcpState;
  }
  return changed ? out : undefined;
}

/** The entry create makes, from its options, checked as conntrack -I checks them. */
function createSpec(ctx: Context): CreateSpec {
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

async function runCreate(ctx: Context): Promise<number> {
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

/**
 * The one entry update names when it is given one complete tuple (as get
 * takes it) and nothing else to select by; undefined otherwise.
 */
function namedTuple(f: Filters): ReturnType<typeof getRequest> | undefined {
  const given = (values: (number | string | undefined)[]) => values.some((v) => v !== undefined);
  const orig = given([f.src, f.dst, f.sport, f.dport]);
  const reply = given([f.replySrc, f.replyDst, f.replySport, f.replyDport]);
  if (orig === reply) return undefined;
  try {
    return getRequest(f);
  } catch {
    return undefined;
  }
}

async function runUpdate(ctx: Context): Promise<number> {
  const changes = parseChanges(ctx, "update");
  if (Object.values(changes).every((v) => v === undefined)) {
    throw new UsageError(
      "update needs something to change: -m/--mark, -t/--timeout, -u/--status or --state",
    );
  }
  // -m, -u and --state are what to set; the rest selects the entries.
  const selection: Filters = {
    ...ctx.filters,
    mark: undefined,
    status: undefined,
    state: undefined,
  };
  const named = namedTuple(selection);
  const format = changeFormat(ctx, true);
  const out = new LineWriter();
  const print = (flow: Flow) => out.line(ctx.json ? flowToJson(flow) : formatFlow(flow, format));
  /** Updates the entry `flow` was listed from and prints it as it is now. */
  const updateOne = async (ct: Conntrack, flow: Flow): Promise<boolean> => {
    const wanted = changesFor(flow, changes);
    if (wanted === undefined) return false; // unchanged: conntrack sends nothing and counts nothing
    const tuple = tupleOf(flow.orig);
    const options: GetOptions = {};
    put(options, "zone", zoneOf(flow));
    try {
      await ct.update(tuple, wanted, options);
      print(ct.getSync(tuple, options));
    } catch (error) {
      if (isNotFound(error)) return false; // gone meanwhile
      throw error;
    }
    return true;
  };
  let updated = 0;
  if (named !== undefined) {
    checkFamily(selection, named.tuple);
    checkTuple(named.tuple, named.direction);
    using ct = open(ctx);
    let flow: Flow;
    try {
      flow = ct.getSync(named.tuple, named.options);
    } catch (error) {
      if (isNotFound(error)) throw new FailError("Operation failed: such conntrack doesn't exist");
      throw error;
    }
    if (await updateOne(ct, flow)) updated = 1;
  } else {
    const filter = dumpFilter(selection);
    try {
      validateFilter(filter);
    } catch (error) {
      throw argumentError(error, "orig");
    }
    using ct = open(ctx);
    using other = open(ctx);
    try {
      for (const flow of ct.dumpSync(filter, { onInterrupted: "ignore" })) {
        if (await updateOne(other, flow)) updated++;
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BrokenPipe)) out.flush();
      throw error;
    }
  }
  out.flush();
  summary(updated, "flow entries have been updated");
  return updated === 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Errors

/** Library argument names, as the options that fed them. */
function argumentNames(direction: string): Record<string, string> {
  const orig = direction === "orig";
  return {
    "filter.orig.src": "-s/--src",
    "filter.orig.dst": "-d/--dst",
    "filter.reply.src": "-r/--reply-src",
    "filter.reply.dst": "-q/--reply-dst",
    "filter.orig.protocol": "-p/--proto",
    "filter.reply.protocol": "-p/--proto",
    "filter.family": "-f/--family",
    "filter.mark": "-m/--mark",
    "filter.zone": "-w/--zone",
    "filter.status": "-u/--status",
    "tuple.src": orig ? "-s/--src" : "-r/--reply-src",
    "tuple.dst": orig ? "-d/--dst" : "-q/--reply-dst",
    "tuple.protocol": "-p/--proto",
    "tuple": "the tuple",
    "netns": "--netns",
    "zone": "-w/--zone",
  };
}

/** A library `TypeError`/`RangeError` about an argument, as a usage error naming the option. */
function argumentError(error: unknown, direction: string): unknown {
  if (!(error instanceof TypeError || error instanceof RangeError)) return error;
  const m = /^Invalid ([\w.]+): (.*)$/s.exec(error.message);
  if (!m) return new UsageError(error.message);
  const names = argumentNames(direction);
  const name = Object.hasOwn(names, m[1]!) ? names[m[1]!]! : m[1]!;
  return new UsageError(`invalid ${name}: ${m[2]}`);
}

/** conntrack-tools' wording for what the kernel refused (its `err2str`). */
function failure(error: NetlinkError, command: Command, netns: string | undefined): string {
  const op = error.operation;
  if (op === "open network namespace") {
    if (error.code === "ENOENT") {
      return `network namespace "${netns}" does not exist (${error.extAck ?? netns})`;
    }
    return `cannot open network namespace "${netns}": ${error.message}`;
  }
  if (op === "enter network namespace" || op === "return to own network namespace") {
    if (error.code === "EPERM") {
      return `cannot enter network namespace "${netns}": operation not permitted; run as root (CAP_SYS_ADMIN)`;
    }
    return `cannot enter network namespace "${netns}": ${error.message}`;
  }
  if (error.code === "EPERM" || error.code === "EACCES") {
    return "Operation failed: sorry, you must be root or get CAP_NET_ADMIN capability to do this";
  }
  if (error.code === "ENOENT" && ["get", "delete", "create", "update"].includes(command)) {
    return "Operation failed: such conntrack doesn't exist";
  }
  if (error.code === "EEXIST" && command === "create") {
    return "Operation failed: Such conntrack exists, try -U to update";
  }
  if (error.code === "ENOMEM" && (command === "create" || command === "get")) {
    return "Operation failed: not enough memory";
  }
  if (error.errno === 62 && command === "create") {
    return "Operation failed: conntrack has expired"; // ETIME
  }
  if (error.code === "EINVAL") return "Operation failed: invalid parameters";
  if (error.code === "EAFNOSUPPORT" && command === "get") {
    return "Operation failed: protocol not supported";
  }
  if (error.errno === 524 && command === "dump") {
    return "Operation failed: function not implemented";
  }
  return `Operation failed: ${error.message}`;
}

// ---------------------------------------------------------------------------
// Help

const HELP_MAIN =
  `ctnl v${VERSION}: the Linux conntrack table over netlink, with conntrack-tools' output

Usage: ctnl COMMAND [OPTIONS]

Commands:
  dump, list, -L   List entries, optionally filtered (conntrack -L)
  get, -G          Show one entry, given its tuple (conntrack -G)
  stats, -S        Per-CPU statistics (conntrack -S)
  count, -C        Number of entries in the table (conntrack -C)
  events, -E       Watch entries being created, updated, destroyed (conntrack -E)
  delete, -D       Delete one entry, or every entry a filter selects (conntrack -D)
  flush, -F        Empty the table, or one family's or mark's entries (conntrack -F)
  create, -I       Create an entry (conntrack -I)
  update, -U       Change the mark, timeout, status or TCP state of entries (conntrack -U)
  help COMMAND     Show the options of a command

Options of every command:
  --netns NAME|PATH  Work in this network namespace: a name made by \`ip netns add\`
                     (under /run/netns) or a path such as /proc/PID/ns/net
  --json             JSON output: one object per line (dump, events, delete, update),
                     one object (get, stats, count)
  -h, --help         Show help
  -V, --version      Show the version

Text output is byte for byte what conntrack prints; the "N flow entries have
been shown." summary goes to stderr. Exit status: 0 success, 1 the operation
failed (no such entry, nothing deleted or updated, not root, no such
namespace), 2 bad parameters.

Needs Linux, --allow-ffi, and root (CAP_NET_ADMIN).

Examples:
  ctnl dump
  ctnl dump -p tcp --dport 443 -u ASSURED
  ctnl dump -o extended,id --netns blue
  ctnl get -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5353 --dport 53
  ctnl count
  ctnl dump --json | jq -r '.orig.src'
  ctnl events -e NEW,DESTROY -p tcp
  ctnl delete -p tcp --dport 22
  ctnl create -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 53 -t 120
`;

const FILTER_HELP = `  -f, --family ipv4|ipv6              Address family
  -p, --proto, --protonum NAME|NUMBER Layer-4 protocol (tcp, udp, icmp, icmpv6, sctp, 47, …)
  -s, --src, --orig-src ADDR          Source address, original direction
  -d, --dst, --orig-dst ADDR          Destination address, original direction
  -r, --reply-src ADDR                Source address, reply direction
  -q, --reply-dst ADDR                Destination address, reply direction
      --sport, --orig-port-src PORT   Source port, original direction
      --dport, --orig-port-dst PORT   Destination port, original direction
      --reply-port-src PORT           Source port, reply direction
      --reply-port-dst PORT           Destination port, reply direction
      --icmp-type, --icmpv6-type N    ICMP/ICMPv6 type
      --icmp-code, --icmpv6-code N    ICMP/ICMPv6 code
      --icmp-id, --icmpv6-id N        ICMP/ICMPv6 identifier`;

const OUTPUT_HELP =
  `  -o, --output FORMAT[,FORMAT…]       As conntrack -o; a prefix is enough (ext = extended):
                                        extended    address family first (ipv4 2)
                                        id          id= at the end
                                        ktimestamp  [start=…] [stop=…]
                                        labels      label names from ${LABEL_FILE}
                                                    (needs --allow-read=${LABEL_FILE})
                                        timestamp, userspace  accepted, no effect on a listing
      --json                          One JSON object per entry instead (see README)
      --netns NAME|PATH               Network namespace`;

const DUMP_FILTER_HELP = `${FILTER_HELP}
  -m, --mark VALUE[/MASK]             Mark (decimal, 0x hex or 0 octal); with MASK, mark & MASK == VALUE
  -w, --zone ZONE                     Conntrack zone, 0-65535
  -u, --status FLAG[,FLAG…]           Status flags that must be set: ASSURED, SEEN_REPLY,
                                      FIXED_TIMEOUT, EXPECTED, OFFLOAD, HW_OFFLOAD (or any
                                      status bit name); UNREPLIED = SEEN_REPLY clear;
                                      !FLAG = FLAG clear
      --state STATE                   Protocol state, with -p tcp|sctp|dccp (ESTABLISHED, …)`;

/** The tuple options: the filter options without the family. */
const TUPLE_HELP = FILTER_HELP.split("\n").slice(1).join("\n");

const HELP: Record<Command, string> = {
  dump: `Usage: ctnl dump [FILTERS] [OUTPUT OPTIONS]     (also: ctnl list, ctnl -L)

Lists the entries of the conntrack table, as conntrack -L. Filters run in the
kernel where it can (family, mark, status, zone, IPv4 tuples), otherwise in
ctnl; the result is the same. Every given filter must match.

Filters:
${DUMP_FILTER_HELP}

Output:
${OUTPUT_HELP}

The summary "ctnl v${VERSION} (@ctnl/conntrack): N flow entries have been shown." goes to stderr.

Examples:
  ctnl dump
  ctnl dump -p tcp --dport 22 -u ASSURED
  ctnl dump -f ipv6 -o extended,id
  ctnl dump -s 10.0.0.1 -m 0x10/0xf0
  ctnl dump -u UNREPLIED -p udp
  ctnl dump --json --netns blue > flows.ndjson
`,
  get:
    `Usage: ctnl get -p PROTO -s ADDR -d ADDR [--sport PORT --dport PORT] [OPTIONS]   (also: ctnl -G)

Shows one entry, found by its original tuple (-s -d with --sport --dport, or the
--icmp-* fields for ICMP), or by its reply tuple (-r -q with --reply-port-src
--reply-port-dst). Exits 1 with "Operation failed: such conntrack doesn't exist"
when there is none.

Tuple:
${FILTER_HELP}
  -w, --zone ZONE                     Zone to look in (default 0)

Output:
${OUTPUT_HELP}

Examples:
  ctnl get -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 443
  ctnl get -p udp -r 10.0.0.2 -q 10.0.0.1 --reply-port-src 53 --reply-port-dst 5353
  ctnl get -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 77
  ctnl get -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 5555 -w 7 --json
`,
  stats: `Usage: ctnl stats [--json] [--netns NAME|PATH]     (also: ctnl -S)

Per-CPU conntrack statistics, one line per CPU as conntrack -S prints them:
  cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 …
With --json: {"cpus":[{"cpu":0,"found":0,"invalid":0,…},…]}.

Examples:
  ctnl stats
  ctnl stats --json | jq '[.cpus[].drop] | add'
`,
  count: `Usage: ctnl count [--json] [--netns NAME|PATH]     (also: ctnl -C)

The number of entries in the table, as conntrack -C prints it.
With --json: {"entries":N,"maxEntries":M} (M is nf_conntrack_max).

Examples:
  ctnl count
  ctnl count --netns blue --json
`,
  events:
    `Usage: ctnl events [FILTERS] [-e EVENTS] [-b BYTES] [OUTPUT OPTIONS]   (also: ctnl -E, --event)

Prints entries as they are created, updated and destroyed, one line each as
conntrack -E prints them ("    [NEW] tcp      6 120 SYN_SENT src=…"), until
Ctrl-C or SIGTERM; then "N flow events have been shown." goes to stderr and
the exit status is 0. Each line is written as soon as the stream goes quiet,
so a program reading the output sees events as they happen.

When the kernel drops events because the socket buffer overran (ENOBUFS),
a one-line warning goes to stderr and the stream goes on; list the table
(ctnl dump) to resynchronise, or give a larger -b.

Filters (every given one must match; the same as dump's):
${DUMP_FILTER_HELP}

Events:
  -e, --event-mask EVENT[,EVENT…]     Only these: NEW, UPDATE, DESTROY or ALL (any case,
                                      a prefix is enough; default ALL)
  -b, --buffer-size BYTES             Socket receive buffer (default 8 MiB)

Output:
  -o, --output FORMAT[,FORMAT…]       As conntrack -E -o: extended, id, ktimestamp, labels,
                                      timestamp ("[SECONDS.MICROSECONDS]<TAB>" first: the
                                      kernel's time of the event)
      --json                          One JSON object per event: the entry as dump --json
                                      prints it plus "event":"new"|"update"|"destroy";
                                      {"event":"lost","lost":N} when events were dropped
      --netns NAME|PATH               Network namespace

Examples:
  ctnl events
  ctnl events -e NEW,DESTROY -p tcp --dport 443
  ctnl events -e DESTROY -o timestamp,extended
  ctnl events --json -b 33554432 | jq -c 'select(.event == "destroy")'
  ctnl events --netns blue -s 10.0.0.1
`,
  delete: `Usage: ctnl delete [FILTERS] [OUTPUT OPTIONS]     (also: ctnl -D, --delete)

Deletes every entry the filters select, as conntrack -D does, and prints each
deleted entry as conntrack -L lists it. A full tuple (-p with -s -d --sport
--dport, or the --icmp-* fields) selects one entry (in each zone it exists
in, unless -w names one). Without any filter it deletes every entry.
"N flow entries have been deleted." goes to stderr; when nothing was deleted
the exit status is 1, as with conntrack.

Filters (the same as dump's):
${DUMP_FILTER_HELP}

Output:
  -o, --output FORMAT[,FORMAT…]       extended, id (as conntrack -D -o)
      --json                          One JSON object per deleted entry
      --netns NAME|PATH               Network namespace

Examples:
  ctnl delete -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 443
  ctnl delete -p tcp --dport 22
  ctnl delete -s 10.0.0.1 -m 0x10/0xf0
  ctnl delete -p tcp --state TIME_WAIT -o extended
  ctnl delete -f ipv6 -u UNREPLIED --json
`,
  flush: `Usage: ctnl flush [-f ipv4|ipv6] [-m VALUE[/MASK]] [--netns NAME|PATH]   (also: ctnl -F)

Deletes every entry of the table, or only those of one family, or only those
whose mark matches (mark & MASK == VALUE), and prints "connection tracking
table has been emptied." to stderr.

Unlike conntrack 1.4.7 -F, whose request makes the kernel ignore -f (it
always empties the whole table), ctnl flush -f ipv4 keeps the IPv6 entries.

Options:
  -f, --family ipv4|ipv6              Only this family's entries
  -m, --mark VALUE[/MASK]             Only entries whose mark matches
      --netns NAME|PATH               Network namespace

Examples:
  ctnl flush
  ctnl flush -f ipv6
  ctnl flush -m 0x100/0xf00 --netns blue
`,
  create:
    `Usage: ctnl create -p PROTO -s ADDR -d ADDR [PORTS] -t SECONDS [OPTIONS]   (also: ctnl -I)

Creates an entry, as conntrack -I does. The reply tuple is the inverse of the
original one unless -r, -q (and --reply-port-src, --reply-port-dst) give it,
for example for a NAT-ed entry; with only -r and -q the original tuple is the
inverse of the reply one. An entry that exists already is exit 1 with
"Operation failed: Such conntrack exists, try -U to update".
"1 flow entries have been created." goes to stderr.

Tuple:
${TUPLE_HELP}
  -f, --family ipv4|ipv6              Checked against the addresses

Entry:
  -t, --timeout SECONDS               Timeout (required)
      --state STATE                   TCP state (required with -p tcp: SYN_SENT,
                                      ESTABLISHED, TIME_WAIT, …)
  -u, --status FLAG[,FLAG…]           Status flags to set: ASSURED, SEEN_REPLY, …
  -m, --mark VALUE                    Mark
  -w, --zone ZONE                     Zone, 0-65535 (default 0)
      --netns NAME|PATH               Network namespace

Examples:
  ctnl create -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 80 -t 3600 \\
      --state ESTABLISHED -u ASSURED,SEEN_REPLY -m 7
  ctnl create -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 53 -t 120 -w 3
  ctnl create -p udp -s 10.0.0.1 -d 192.0.2.1 --sport 5000 --dport 53 \\
      -r 10.0.0.9 -q 10.0.0.1 --reply-port-src 53 --reply-port-dst 5000 -t 120
  ctnl create -p icmp -s 10.0.0.1 -d 10.0.0.2 --icmp-type 8 --icmp-code 0 --icmp-id 7 -t 30
`,
  update: `Usage: ctnl update [SELECTION] CHANGES [OUTPUT OPTIONS]     (also: ctnl -U)

Changes entries, as conntrack -U does, and prints each changed entry as it is
afterwards. With a full tuple (as get takes it: -p with -s -d --sport --dport,
or the reply tuple, or the --icmp-* fields; -w for a zone other than 0) it
changes that one entry and exits 1 with "Operation failed: such conntrack
doesn't exist" when there is none. With other selection options (or none:
every entry) it changes every entry they select. An entry that already has
the requested values is left alone and not counted, as with conntrack.
"N flow entries have been updated." goes to stderr; exit 1 when it is 0.

Selection (every given one must match):
${FILTER_HELP}
  -w, --zone ZONE                     Zone

Changes (at least one):
  -t, --timeout SECONDS               New timeout
  -m, --mark VALUE[/MASK]             New mark; with MASK, the bits outside MASK are
                                      kept and VALUE is xor-ed in (as conntrack does)
  -u, --status FLAG[,FLAG…]           Status flags to set (flags are never cleared)
      --state STATE                   New TCP state (with -p tcp)

Output:
  -o, --output FORMAT[,FORMAT…]       extended, id, labels (as conntrack -U -o)
      --json                          One JSON object per changed entry
      --netns NAME|PATH               Network namespace

Examples:
  ctnl update -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 40000 --dport 80 -m 42
  ctnl update -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 53 -t 600 -w 3
  ctnl update -p tcp --dport 22 -u ASSURED -t 7200
  ctnl update -s 10.0.0.1 -m 0x100/0xf00
`,
};

const COMMAND_FLAGS = new Map<string, Command>([
  ["-L", "dump"],
  ["--dump", "dump"],
  ["-G", "get"],
  ["--get", "get"],
  ["-S", "stats"],
  ["--stats", "stats"],
  ["-C", "count"],
  ["--count", "count"],
  ["--counter", "count"],
  ["-E", "events"],
  ["--event", "events"],
  ["-D", "delete"],
  ["--delete", "delete"],
  ["-F", "flush"],
  ["--flush", "flush"],
  ["-I", "create"],
  ["--create", "create"],
  ["-U", "update"],
  ["--update", "update"],
]);

function helpFor(args: string[]): string {
  for (const arg of args) {
    if (arg === "--") break;
    const command = COMMAND_WORDS.get(arg) ?? COMMAND_FLAGS.get(arg);
    if (command) return HELP[command];
  }
  return HELP_MAIN;
}

// ---------------------------------------------------------------------------
// Main

async function run(args: string[]): Promise<number> {
  if (args.length === 0) {
    writeText(HELP_MAIN);
    return 0;
  }
  const wantsHelp = (a: string) => a === "-h" || a === "--help";
  const end = args.indexOf("--");
  const before = end < 0 ? args : args.slice(0, end);
  if (before.some(wantsHelp)) {
    writeText(helpFor(before));
    return 0;
  }
  if (before.includes("-V") || before.includes("--version")) {
    writeText(`ctnl v${VERSION} (@ctnl/conntrack)\n`);
    return 0;
  }
  const help = firstPositional(before);
  if (help >= 0 && before[help] === "help") {
    // `ctnl help [COMMAND]`
    const topic = before[help + 1];
    if (topic !== undefined && !COMMAND_WORDS.has(topic)) {
      throw new UsageError(`no help for "${topic}" (try ${COMMAND_LIST})`);
    }
    writeText(helpFor(before.slice(help + 1)));
    return 0;
  }
  const parsed = parseArgs(args);
  const command = parsed.command;
  if (command === undefined) {
    throw new UsageError(`no command given (${COMMAND_LIST}; see ctnl --help)`);
  }
  if (parsed.table !== undefined && !"conntrack".startsWith(parsed.table)) {
    if (["expect", "dying", "unconfirmed"].some((t) => t.startsWith(parsed.table!))) {
      throw new UsageError(`only the conntrack table is supported, not "${parsed.table}"`);
    }
    throw new UsageError(`unexpected argument "${parsed.table}"`);
  }
  const allowed = ALLOWED[command];
  for (const key of [...parsed.values.keys(), ...parsed.flags]) {
    if (!allowed.has(key)) {
      throw new UsageError(`option ${optionName(key)} cannot be used with ${command}`);
    }
  }
  if (parsed.outputs.length > 0 && !allowed.has("output")) {
    throw new UsageError(`option -o/--output cannot be used with ${command}`);
  }
  const json = parsed.flags.has("json");
  if (json && parsed.outputs.length > 0) {
    throw new UsageError("--json and -o/--output cannot be combined");
  }
  const outputs = parseOutput(parsed.outputs);
  const filters = parseFilters(parsed.values);
  const format: FormatOptions = {
    extended: outputs.has("extended"),
    id: outputs.has("id"),
    ktimestamp: outputs.has("ktimestamp"),
  };
  if (outputs.has("labels")) {
    const names = loadLabelMap();
    if (names !== undefined) format.labelNames = names;
  }
  const ctx: Context = { parsed, filters, json, outputs, format };
  try {
    switch (command) {
      case "dump":
        return runDump(ctx);
      case "get":
        return runGet(ctx);
      case "stats":
        return await runStats(ctx);
      case "count":
        return await runCount(ctx);
      case "events":
        return await runEvents(ctx);
      case "delete":
        return await runDelete(ctx);
      case "flush":
        return await runFlush(ctx);
      case "create":
        return await runCreate(ctx);
      case "update":
        return await runUpdate(ctx);
    }
  } catch (error) {
    if (error instanceof NetlinkError) {
      throw new FailError(failure(error, command, parsed.values.get("netns")));
    }
    if (
      (error instanceof TypeError || error instanceof RangeError) &&
      /^Invalid netns/.test(error.message)
    ) {
      throw argumentError(error, "orig");
    }
    throw error;
  }
}

/** Index of the first argument that is neither an option nor an option's value, or -1. */
function firstPositional(args: string[]): number {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith("--")) {
      if (arg.includes("=")) continue;
      try {
        if (longSpec(arg.slice(2)).value) i++;
      } catch {
        return -1; // parseArgs will report it
      }
    } else if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const spec = BY_SHORT.get(arg[j]!);
        if (spec?.value) {
          if (j + 1 === arg.length) i++;
          break;
        }
      }
    } else {
      return i;
    }
  }
  return -1;
}

function writeText(text: string): void {
  writeAll(Deno.stdout, encoder.encode(text));
}

/**
 * Runs the `ctnl` command line with `args` (without the program name):
 * writes data to stdout and messages to stderr, and returns the exit
 * status: 0 success, 1 the operation failed, 2 bad parameters. A closed
 * stdout (`ctnl dump | head`) ends the run quietly with 0.
 *
 * @example Bad parameters are exit status 2, with one line on stderr
 * ```ts
 * import { main } from "@ctnl/conntrack/cli";
 * import { strictEqual } from "node:assert/strict";
 *
 * // stderr: ctnl: invalid port "70000" for --dport (0-65535)
 * strictEqual(await main(["dump", "-p", "tcp", "--dport", "70000"]), 2);
 * ```
 *
 * @example Run it as a program (needs root and `--allow-ffi`)
 * ```ts ignore
 * import { main } from "@ctnl/conntrack/cli";
 *
 * Deno.exit(await main(Deno.args));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  try {
    return await run(args);
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) return 0;
    if (error instanceof UsageError) {
      stderrLine(`ctnl: ${error.message}`);
      return 2;
    }
    if (error instanceof FailError) {
      stderrLine(`ctnl: ${error.message}`);
      return 1;
    }
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      stderrLine(`ctnl: ${error.message.split("\n")[0]}; run it with --allow-ffi`);
      return 1;
    }
    const message = error instanceof Error ? error.message : String(error);
    stderrLine(`ctnl: ${message}`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
