import { UsageError } from "./errors.ts";

// Options

export type Command =
  | "dump"
  | "get"
  | "stats"
  | "count"
  | "events"
  | "delete"
  | "flush"
  | "create"
  | "update";

export interface OptionSpec {
  /** Key in the parsed options. */
  key: string;
  /** One-letter form, without the dash. */
  short?: string;
  /** Long forms, without the dashes; the first is the canonical name. */
  long: string[];
  /** Whether the option takes a value. */
  value: boolean;
}

export const OPTIONS: OptionSpec[] = [
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

export const BY_SHORT = new Map(OPTIONS.filter((o) => o.short).map((o) => [o.short!, o]));
export const BY_KEY = new Map(OPTIONS.map((o) => [o.key, o]));

/** How an option is named in messages: `-s/--src`, `--dport`. */
export function optionName(key: string): string {
  const spec = BY_KEY.get(key);
  if (!spec) return key;
  return spec.short ? `-${spec.short}/--${spec.long[0]}` : `--${spec.long[0]}`;
}

export const FILTER_KEYS = [
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
export const DUMP_KEYS = [
  "netns",
  "json",
  "output",
  ...FILTER_KEYS,
  "mark",
  "zone",
  "status",
  "state",
];
export const ALLOWED: Record<Command, Set<string>> = {
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

export const COMMAND_WORDS = new Map<string, Command>([
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
export const COMMAND_LIST = "dump, get, stats, count, events, delete, flush, create or update";

export interface Parsed {
  command: Command | undefined;
  /** Where the command came from, for messages: `dump`, `-L`. */
  commandText: string | undefined;
  values: Map<string, string>;
  flags: Set<string>;
  outputs: string[];
  table: string | undefined;
}

export function longSpec(name: string): OptionSpec {
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

export function setCommand(p: Parsed, command: Command, text: string): void {
  if (p.command !== undefined) {
    throw new UsageError(`only one command at a time: ${p.commandText} and ${text}`);
  }
  p.command = command;
  p.commandText = text;
}

export function record(p: Parsed, spec: OptionSpec, text: string, value: string | undefined): void {
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
export function parseArgs(args: string[]): Parsed {
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

/** Index of the first argument that is neither an option nor an option's value, or -1. */
export function firstPositional(args: string[]): number {
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
