/**
 * The option table and what is derived from it: the getopt-style parser,
 * option names for messages, and the option lines of each command's help.
 * Adding an option is one row of {@link OPTIONS}.
 *
 * @module
 */

import { UsageError } from "./errors.ts";
import { unknownLong, unknownShort, UNSUPPORTED } from "./suggest.ts";

/** One option: how it is written, whether it takes a value, its help. */
export interface OptionSpec {
  /** Key in the parsed options. */
  readonly key: string;
  /** One-letter form, without the dash. */
  readonly short?: string;
  /** Long forms, without the dashes; the first is the canonical name. */
  readonly long: readonly string[];
  /** Whether the option takes a value. */
  readonly value: boolean;
  /** The value may be left out (`-n`, `-n ADDR`): then the next argument is it unless it starts with `-` or `!`. */
  readonly optional?: boolean;
  /** May be given more than once; its values are collected in order. */
  readonly repeated?: boolean;
  /** The value in help: `ADDR`, `ipv4|ipv6`. */
  readonly placeholder?: string;
  /** The help line (a command may word it its own way); `\n` starts a continuation line. */
  readonly help: string;
}

/** Every option ctnl takes, in conntrack's spelling. */
export const OPTIONS = [
  {
    key: "netns",
    long: ["netns"],
    value: true,
    placeholder: "NAME|PATH",
    help: "Network namespace",
  },
  { key: "json", long: ["json"], value: false, help: "One JSON object per entry instead" },
  {
    key: "output",
    short: "o",
    long: ["output"],
    value: true,
    repeated: true,
    placeholder: "FORMAT[,FORMAT…]",
    help: "Output format",
  },
  {
    key: "family",
    short: "f",
    long: ["family"],
    value: true,
    placeholder: "ipv4|ipv6",
    help: "Address family",
  },
  {
    key: "proto",
    short: "p",
    long: ["proto", "protonum"],
    value: true,
    placeholder: "NAME|NUMBER",
    help: "Layer-4 protocol (tcp, udp, icmp, icmpv6, sctp, 47, …)",
  },
  {
    key: "src",
    short: "s",
    long: ["src", "orig-src"],
    value: true,
    placeholder: "ADDR",
    help: "Source address, original direction",
  },
  {
    key: "dst",
    short: "d",
    long: ["dst", "orig-dst"],
    value: true,
    placeholder: "ADDR",
    help: "Destination address, original direction",
  },
  {
    key: "replySrc",
    short: "r",
    long: ["reply-src"],
    value: true,
    placeholder: "ADDR",
    help: "Source address, reply direction",
  },
  {
    key: "replyDst",
    short: "q",
    long: ["reply-dst"],
    value: true,
    placeholder: "ADDR",
    help: "Destination address, reply direction",
  },
  {
    key: "sport",
    long: ["sport", "orig-port-src"],
    value: true,
    placeholder: "PORT",
    help: "Source port, original direction",
  },
  {
    key: "dport",
    long: ["dport", "orig-port-dst"],
    value: true,
    placeholder: "PORT",
    help: "Destination port, original direction",
  },
  {
    key: "replySport",
    long: ["reply-port-src"],
    value: true,
    placeholder: "PORT",
    help: "Source port, reply direction",
  },
  {
    key: "replyDport",
    long: ["reply-port-dst"],
    value: true,
    placeholder: "PORT",
    help: "Destination port, reply direction",
  },
  {
    key: "mark",
    short: "m",
    long: ["mark"],
    value: true,
    placeholder: "VALUE[/MASK]",
    help: "Mark (decimal, 0x hex or 0 octal); with MASK, mark & MASK == VALUE",
  },
  {
    key: "zone",
    short: "w",
    long: ["zone"],
    value: true,
    placeholder: "ZONE",
    help: "Conntrack zone, 0-65535",
  },
  {
    key: "status",
    short: "u",
    long: ["status"],
    value: true,
    placeholder: "FLAG[,FLAG…]",
    help: "Status flags that must be set: ASSURED, SEEN_REPLY,\n" +
      "FIXED_TIMEOUT, EXPECTED, OFFLOAD, HW_OFFLOAD (or any\n" +
      "status bit name); UNREPLIED = SEEN_REPLY clear;\n" +
      "!FLAG = FLAG clear",
  },
  {
    key: "state",
    long: ["state"],
    value: true,
    placeholder: "STATE",
    help: "Protocol state, with -p tcp|sctp|dccp (ESTABLISHED, …)",
  },
  {
    key: "icmpType",
    long: ["icmp-type", "icmpv6-type"],
    value: true,
    placeholder: "N",
    help: "ICMP/ICMPv6 type",
  },
  {
    key: "icmpCode",
    long: ["icmp-code", "icmpv6-code"],
    value: true,
    placeholder: "N",
    help: "ICMP/ICMPv6 code",
  },
  {
    key: "icmpId",
    long: ["icmp-id", "icmpv6-id"],
    value: true,
    placeholder: "N",
    help: "ICMP/ICMPv6 identifier",
  },
  {
    key: "timeout",
    short: "t",
    long: ["timeout"],
    value: true,
    placeholder: "SECONDS",
    help: "Timeout",
  },
  {
    key: "eventMask",
    short: "e",
    long: ["event-mask"],
    value: true,
    placeholder: "EVENT[,EVENT…]",
    help: "Only these: NEW, UPDATE, DESTROY or ALL (any case,\n" +
      "a prefix is enough; default ALL)",
  },
  {
    key: "bufferSize",
    short: "b",
    long: ["buffer-size"],
    value: true,
    placeholder: "BYTES",
    help: "Socket receive buffer (default 8 MiB)",
  },
  // filt (issue 12): filters, changes, -z
  {
    key: "maskSrc",
    long: ["mask-src"],
    value: true,
    placeholder: "MASK",
    help: "With -s: entries whose source & MASK is -s & MASK",
  },
  {
    key: "maskDst",
    long: ["mask-dst"],
    value: true,
    placeholder: "MASK",
    help: "With -d: entries whose destination & MASK is -d & MASK",
  },
  {
    key: "srcNat",
    short: "n",
    long: ["src-nat"],
    value: true,
    optional: true,
    placeholder: "[ADDR[:PORT]]",
    help: "Source-NAT-ed entries (to ADDR, PORT)",
  },
  {
    key: "dstNat",
    short: "g",
    long: ["dst-nat"],
    value: true,
    optional: true,
    placeholder: "[ADDR[:PORT]]",
    help: "Destination-NAT-ed entries (to ADDR, PORT)",
  },
  {
    key: "anyNat",
    short: "j",
    long: ["any-nat"],
    value: true,
    optional: true,
    placeholder: "[ADDR[:PORT]]",
    help: "Source- or destination-NAT-ed entries (to ADDR, PORT)",
  },
  {
    key: "label",
    short: "l",
    long: ["label"],
    value: true,
    repeated: true,
    placeholder: "LABEL[,LABEL…]",
    help: "Entries with every one of these labels set",
  },
  {
    key: "labelAdd",
    long: ["label-add"],
    value: true,
    repeated: true,
    placeholder: "LABEL[,LABEL…]",
    help: "Labels to set",
  },
  {
    key: "labelDel",
    long: ["label-del"],
    value: true,
    optional: true,
    repeated: true,
    placeholder: "[LABEL[,LABEL…]]",
    help: "Labels to clear (all of them without a value)",
  },
  {
    key: "secmark",
    short: "c",
    long: ["secmark"],
    value: true,
    placeholder: "SECMARK",
    help: "Accepted; selects nothing out (as conntrack 1.4.7)",
  },
  {
    key: "origZone",
    long: ["orig-zone"],
    value: true,
    placeholder: "ZONE",
    help: "Zone of the original direction, 0-65535",
  },
  {
    key: "replyZone",
    long: ["reply-zone"],
    value: true,
    placeholder: "ZONE",
    help: "Zone of the reply direction, 0-65535",
  },
  {
    key: "zero",
    short: "z",
    long: ["zero"],
    value: false,
    help: "Zero the counters while listing",
  },
  {
    key: "srcKey",
    long: ["srckey", "orig-key-src"],
    value: true,
    placeholder: "KEY",
    help: "GRE source key, original direction (-p gre)",
  },
  {
    key: "dstKey",
    long: ["dstkey", "orig-key-dst"],
    value: true,
    placeholder: "KEY",
    help: "GRE destination key, original direction (-p gre)",
  },
  {
    key: "replySrcKey",
    long: ["reply-key-src"],
    value: true,
    placeholder: "KEY",
    help: "GRE source key, reply direction (-p gre)",
  },
  {
    key: "replyDstKey",
    long: ["reply-key-dst"],
    value: true,
    placeholder: "KEY",
    help: "GRE destination key, reply direction (-p gre)",
  },
  {
    key: "origVtag",
    long: ["orig-vtag"],
    value: true,
    placeholder: "VTAG",
    help: "SCTP verification tag, original direction",
  },
  {
    key: "replyVtag",
    long: ["reply-vtag"],
    value: true,
    placeholder: "VTAG",
    help: "SCTP verification tag, reply direction",
  },
  {
    key: "role",
    long: ["role"],
    value: true,
    placeholder: "client|server",
    help: "DCCP role",
  },
  // ctnl top (issue 14; --by and --sort are summary's rows below)
  {
    key: "interval",
    long: ["interval"],
    value: true,
    placeholder: "SECONDS",
    help: "Seconds between refreshes (default 2; 0.1-3600)",
  },
  {
    key: "once",
    long: ["once"],
    value: false,
    help: "Print one frame (after one interval, with rates) and exit",
  },
  {
    key: "rows",
    long: ["rows"],
    value: true,
    placeholder: "N",
    help: "Rows to show (default: the screen's height; 20 on a pipe)",
  },
  // summary (issue 14)
  {
    key: "by",
    long: ["by"],
    value: true,
    placeholder: "KEY[,KEY…]",
    help: "Group by these keys",
  },
  {
    key: "sort",
    long: ["sort"],
    value: true,
    placeholder: "KEY",
    help: "Sort by",
  },
  { key: "top", long: ["top"], value: true, placeholder: "N", help: "Only the first N" },
  {
    key: "olderThan",
    long: ["older-than"],
    value: true,
    placeholder: "DURATION",
    help: "Started at least DURATION ago (90s, 5m, 1h30m, 2d);\nneeds nf_conntrack_timestamp",
  },
  {
    key: "youngerThan",
    long: ["younger-than"],
    value: true,
    placeholder: "DURATION",
    help: "Started less than DURATION ago",
  },
  {
    key: "idle",
    long: ["idle"],
    value: true,
    placeholder: "DURATION",
    help:
      "No packet for at least DURATION (from the timeout and\nthe namespace's default timeouts)",
  },
  {
    key: "bytesGt",
    long: ["bytes-gt"],
    value: true,
    placeholder: "SIZE",
    help: "More than SIZE bytes, both directions (1500, 10k,\n64Ki); needs nf_conntrack_acct",
  },
  // expect (issue 13): the expectation table's tuple and mask (--mask-src/--mask-dst are filt's rows)
  {
    key: "tupleSrc",
    long: ["tuple-src"],
    value: true,
    placeholder: "ADDR",
    help: "Expected tuple: source address",
  },
  {
    key: "tupleDst",
    long: ["tuple-dst"],
    value: true,
    placeholder: "ADDR",
    help: "Expected tuple: destination address",
  },
  {
    key: "tupleSport",
    long: ["tuple-port-src"],
    value: true,
    placeholder: "PORT",
    help: "Expected tuple: source port",
  },
  {
    key: "tupleDport",
    long: ["tuple-port-dst"],
    value: true,
    placeholder: "PORT",
    help: "Expected tuple: destination port",
  },
  {
    key: "maskSport",
    long: ["mask-port-src"],
    value: true,
    placeholder: "PORT",
    help: "Mask of the expected source port (0: any)",
  },
  {
    key: "maskDport",
    long: ["mask-port-dst"],
    value: true,
    placeholder: "PORT",
    help: "Mask of the expected destination port",
  },
  // exp: exporter, --all-netns, --resync
  {
    key: "listen",
    long: ["listen"],
    value: true,
    placeholder: "HOST:PORT",
    help: "Where to serve HTTP (default 127.0.0.1:9883)",
  },
  {
    key: "allNetns",
    long: ["all-netns"],
    value: false,
    help: "Every network namespace (/run/netns and those of processes)",
  },
  { key: "byMark", long: ["by-mark"], value: false, help: "Also count entries by mark" },
  {
    key: "countEvents",
    long: ["count-events"],
    value: false,
    help: "Count events (new, update, destroy, overruns)",
  },
  {
    key: "resync",
    long: ["resync"],
    value: false,
    help: "Dump first, and dump again after lost events, printing the\n" +
      "difference as events: the output then tracks the table exactly",
  },
  {
    key: "natRange",
    short: "a",
    long: ["nat-range"],
    value: true,
    placeholder: "RANGE",
    help: "Ignored with a warning, as conntrack 1.4.7 (deprecated)",
  },
  { key: "help", short: "h", long: ["help"], value: false, help: "Show help" },
  { key: "version", short: "V", long: ["version"], value: false, help: "Show the version" },
] as const satisfies readonly OptionSpec[];

/** The key of an option of {@link OPTIONS}. */
export type OptionKey = typeof OPTIONS[number]["key"];

/** What selects a tuple: protocol, addresses, ports, ICMP fields (a group of option keys). */
export const TUPLE_OPTIONS = [
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
] as const satisfies readonly OptionKey[];

/** The options every command takes (help and version are answered before any command runs). */
export const COMMON_OPTIONS = ["help", "version"] as const satisfies readonly OptionKey[];

const BY_KEY: ReadonlyMap<string, OptionSpec> = new Map(OPTIONS.map((o) => [o.key, o]));

function spec(key: string): OptionSpec | undefined {
  return BY_KEY.get(key);
}

/** How an option is named in messages: `-s/--src`, `--dport`. */
export function optionName(key: string): string {
  const option = spec(key);
  if (!option) return key;
  return option.short ? `-${option.short}/--${option.long[0]}` : `--${option.long[0]}`;
}

/** One option line in a command's help: the key, or the key with the command's own wording. */
export type OptionHelp = OptionKey | {
  readonly key: OptionKey;
  readonly help?: string;
  readonly placeholder?: string;
};

/** Where an option's help text starts. */
const HELP_COLUMN = 38;

/**
 * The help lines of `options`, laid out as conntrack-tools lays them out:
 * `  -p, --proto, --protonum NAME|NUMBER Layer-4 protocol (…)`.
 */
export function optionHelp(options: readonly OptionHelp[]): string {
  const lines: string[] = [];
  for (const use of options) {
    const { key, help, placeholder } = typeof use === "string" ? { key: use } : use;
    const option = spec(key)!;
    const names = option.long.map((l) => `--${l}`).join(", ");
    const value = placeholder ?? option.placeholder;
    let left = `  ${option.short ? `-${option.short}, ` : "    "}${names}`;
    if (value !== undefined) left += ` ${value}`;
    const [first, ...more] = (help ?? option.help).split("\n");
    lines.push(`${left.padEnd(HELP_COLUMN - 1)} ${first}`);
    for (const line of more) lines.push(" ".repeat(HELP_COLUMN) + line);
  }
  return lines.join("\n");
}

/** How a command is written on the command line: `dump`, `list`, `-L`, `--dump`. */
export interface CommandSyntax {
  /** The canonical word, used in messages: `dump`. */
  readonly name: string;
  /** The words that name it: `dump`, `list`. */
  readonly words: readonly string[];
  /** conntrack's flags that name it: `-L`, `--dump`. */
  readonly flags: readonly string[];
  /** Whether a table name may follow (`ctnl dump conntrack`); default true. */
  readonly table?: boolean;
  /** One free word follows instead of a table (`ctnl completions bash`): `Parsed.operand`. */
  readonly operand?: boolean;
}

/** The command words for messages: `dump, get, … or update`. */
export function commandList(commands: readonly CommandSyntax[]): string {
  const names = commands.map((c) => c.name);
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;
}

/** The command line, parsed: the command, the option values, the table name. */
export interface Parsed {
  /** The command's name. */
  command: string | undefined;
  /** Where the command came from, for messages: `dump`, `-L`. */
  commandText: string | undefined;
  /** Values of the options given once. */
  values: Map<string, string>;
  /** Values of the repeated options, in order. */
  lists: Map<string, string[]>;
  /** The options without a value that were given. */
  flags: Set<string>;
  table: string | undefined;
  /** The free word of a command that takes one (`bash` in `ctnl completions bash`). */
  operand?: string;
}

/** A row the parser matches: an option, or a command flag (`-L`, `--dump`). */
interface Row {
  readonly option: OptionSpec | undefined;
  readonly command: CommandSyntax | undefined;
  readonly short: string | undefined;
  readonly long: readonly string[];
  readonly value: boolean;
  /** The value may be left out ({@link OptionSpec.optional}). */
  readonly optional: boolean;
}

/**
 * The getopt-style parser over {@link OPTIONS} and the commands' words and
 * flags: `-pVALUE`, `-p VALUE`, `-Lp tcp`, `--proto=VALUE`, `--proto VALUE`,
 * and an unambiguous prefix of a long option.
 */
export class Parser {
  readonly #rows: readonly Row[];
  readonly #byShort: ReadonlyMap<string, Row>;
  readonly #byLong: ReadonlyMap<string, Row>;
  /** Each row by a whole word that names it alone: `-s`, `--sport` (most words of a line). */
  readonly #byWord: ReadonlyMap<string, Row>;
  readonly #words: ReadonlyMap<string, CommandSyntax>;
  readonly #byName: ReadonlyMap<string, CommandSyntax>;
  readonly #list: string;

  constructor(commands: readonly CommandSyntax[]) {
    const rows: Row[] = OPTIONS.map((o) => ({
      option: o,
      command: undefined,
      short: "short" in o ? o.short : undefined,
      long: o.long,
      value: o.value,
      optional: "optional" in o && o.optional === true,
    }));
    for (const c of commands) {
      rows.push({
        option: undefined,
        command: c,
        short: c.flags.find((f) => /^-[^-]$/.test(f))?.slice(1),
        long: c.flags.filter((f) => f.startsWith("--")).map((f) => f.slice(2)),
        value: false,
        optional: false,
      });
    }
    this.#rows = rows;
    this.#byShort = new Map(rows.filter((r) => r.short).map((r) => [r.short!, r]));
    const byLong = new Map<string, Row>();
    for (const row of rows) {
      for (const long of row.long) if (!byLong.has(`--${long}`)) byLong.set(`--${long}`, row);
    }
    this.#byLong = byLong;
    const byWord = new Map(byLong);
    for (const [short, row] of this.#byShort) byWord.set(`-${short}`, row);
    this.#byWord = byWord;
    this.#words = new Map(commands.flatMap((c) => c.words.map((w) => [w, c])));
    this.#byName = new Map(commands.map((c) => [c.name, c]));
    this.#list = commandList(commands);
  }

  /** The command a word names (`dump`, `list`), if any. */
  command(word: string): CommandSyntax | undefined {
    return this.#words.get(word);
  }

  #long(name: string): Row {
    const exact = this.#byLong.get(`--${name}`);
    if (exact !== undefined) return exact;
    // conntrack's own names come before prefixes of ctnl's: --id is conntrack's -i, not --idle.
    if (UNSUPPORTED.some((u) => u.long.includes(name))) {
      throw new UsageError(unknownLong(name, []));
    }
    // Like getopt_long: an unambiguous prefix of a long option names it.
    const hits = new Set<Row>();
    const names: string[] = [];
    for (const row of this.#rows) {
      for (const long of row.long) {
        if (long.startsWith(name) && name.length > 0) {
          hits.add(row);
          names.push(`--${long}`);
        }
      }
    }
    if (hits.size === 1) return [...hits][0]!;
    if (hits.size > 1) {
      throw new UsageError(`option --${name} is ambiguous (${names.join(", ")})`);
    }
    throw new UsageError(unknownLong(name, this.#rows.flatMap((r) => r.long)));
  }

  /** Parses `args`; bad syntax is a {@link UsageError}. */
  parse(args: readonly string[]): Parsed {
    const p: Parsed = {
      command: undefined,
      commandText: undefined,
      values: new Map(),
      lists: new Map(),
      flags: new Set(),
      table: undefined,
    };
    const positionals: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      const whole = this.#byWord.get(arg);
      if (whole !== undefined) {
        // "-s VALUE", "--sport VALUE", "-A": the common case, one look-up of the word.
        if (!whole.value) record(p, whole, arg, undefined);
        else if (!whole.optional) record(p, whole, arg, args[++i]);
        else if (takesNext(args[i + 1])) record(p, whole, arg, args[++i]);
        else p.flags.add(whole.option!.key);
        continue;
      }
      if (arg === "--") {
        positionals.push(...args.slice(i + 1));
        break;
      }
      if (arg.startsWith("--")) {
        const eq = arg.indexOf("=");
        const text = eq < 0 ? arg : arg.slice(0, eq); // "--name"
        const row = this.#long(text.slice(2));
        if (!row.value) {
          if (eq >= 0) throw new UsageError(`option ${text} takes no value`);
          record(p, row, text, undefined);
        } else if (isOptional(row)) {
          if (eq >= 0) throw attachedValue(text);
          if (takesNext(args[i + 1])) record(p, row, text, args[++i]);
          else p.flags.add(row.option!.key);
        } else {
          const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
          record(p, row, text, value);
        }
        continue;
      }
      if (arg.startsWith("-") && arg.length > 1) {
        for (let j = 1; j < arg.length; j++) {
          const letter = arg[j]!;
          const row = this.#byShort.get(letter);
          if (!row) {
            throw new UsageError(unknownShort(letter, arg, this.#rows.flatMap((r) => r.long)));
          }
          if (row.value) {
            if (isOptional(row)) {
              if (j + 1 < arg.length) throw attachedValue(`-${letter}`);
              if (takesNext(args[i + 1])) record(p, row, `-${letter}`, args[++i]);
              else p.flags.add(row.option!.key);
              break;
            }
            const value = j + 1 < arg.length ? arg.slice(j + 1) : args[++i];
            record(p, row, arg.length === 2 ? arg : `-${letter}`, value);
            break;
          }
          record(p, row, arg.length === 2 ? arg : `-${letter}`, undefined);
        }
        continue;
      }
      positionals.push(arg);
    }
    for (const word of positionals) {
      if (p.command === undefined) {
        const command = this.#words.get(word);
        if (command === undefined) {
          throw new UsageError(`unknown command "${word}" (try ${this.#list})`);
        }
        setCommand(p, command, word);
      } else if (p.operand === undefined && this.#byName.get(p.command)?.operand) {
        p.operand = word;
      } else if (p.table === undefined && this.#byName.get(p.command)?.table !== false) {
        p.table = word;
      } else {
        throw new UsageError(`unexpected argument "${word}"`);
      }
    }
    return p;
  }

  /** Index of the first argument that is neither an option nor an option's value, or -1. */
  firstPositional(args: readonly string[]): number {
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      if (arg.startsWith("--")) {
        if (arg.includes("=")) continue;
        try {
          const row = this.#long(arg.slice(2));
          if (row.value && (!isOptional(row) || takesNext(args[i + 1]))) i++;
        } catch {
          return -1; // parse will report it
        }
      } else if (arg.startsWith("-") && arg.length > 1) {
        for (let j = 1; j < arg.length; j++) {
          const row = this.#byShort.get(arg[j]!);
          if (row?.value) {
            if (j + 1 === arg.length && (!isOptional(row) || takesNext(args[i + 1]))) i++;
            break;
          }
        }
      } else {
        return i;
      }
    }
    return -1;
  }
}

/** Whether the option's value may be left out. */
function isOptional(row: Row): boolean {
  return row.optional;
}

/**
 * An optional value written onto its option (`--src-nat=ADDR`, `-nADDR`):
 * conntrack 1.4.7 drops such a value without a word, so ctnl refuses it.
 */
function attachedValue(text: string): UsageError {
  return new UsageError(
    `give the value of ${text} as a separate argument (conntrack 1.4.7 ignores a value attached to it)`,
  );
}

/** Whether an optional value is the next argument, as conntrack's get_optional_arg takes it. */
function takesNext(arg: string | undefined): boolean {
  return arg !== undefined && !arg.startsWith("-") && !arg.startsWith("!");
}

function setCommand(p: Parsed, command: CommandSyntax, text: string): void {
  if (p.command !== undefined) {
    throw new UsageError(`only one command at a time: ${p.commandText} and ${text}`);
  }
  p.command = command.name;
  p.commandText = text;
}

function record(p: Parsed, row: Row, text: string, value: string | undefined): void {
  if (row.command !== undefined) {
    setCommand(p, row.command, text);
    return;
  }
  const option = row.option!;
  if (!option.value) {
    p.flags.add(option.key);
    return;
  }
  if (value === undefined) throw new UsageError(`option ${text} needs a value`);
  if (option.repeated) {
    const list = p.lists.get(option.key);
    if (list === undefined) p.lists.set(option.key, [value]);
    else list.push(value);
    return;
  }
  const size = p.values.size;
  p.values.set(option.key, value); // one look-up: a key given before leaves the size as it was
  if (p.values.size === size) throw new UsageError(`option ${optionName(option.key)} given twice`);
}
