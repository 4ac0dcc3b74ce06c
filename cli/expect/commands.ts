/**
 * The commands of the expectation table (`ctnl dump expect`, `-L expect`,
 * `get`, `delete`, `create`, `flush`, `count`, `stats`, `events expect`),
 * with conntrack-tools 1.4.7's text, options and messages; cli/main.ts runs
 * them in place of the conntrack table's when the table is `expect`.
 *
 * @module
 */

import type {
  Conntrack,
  Expectation,
  ExpectationSpec,
  ExpectMaskSpec,
  TupleSpec,
} from "../../mod.ts";
import { ERRNO, NetlinkError } from "../../src/errors.ts";
import {
  expectationToJson,
  formatExpectation,
  formatExpectStats,
} from "../../src/expect_format.ts";
import { protocolInfo } from "../../src/protocols.ts";
import { argumentError, checked, FailError, UsageError } from "../errors.ts";
import { type OptionHelp, optionHelp, type OptionKey, optionName } from "../options.ts";
import { EventWriter } from "../output.ts";
import { EXPECT_XML_FOOTER, EXPECT_XML_HEADER, formatExpectationXml } from "./xml.ts";
import { type Command, type Context, SUMMARY_PREFIX } from "../context.ts";
import { decimal } from "../values.ts";

/** conntrack's `err2str` for the expectation commands: a few words of its own, else strerror. */
const STRERROR: Readonly<Record<number, string>> = {
  [ERRNO.ENOENT]: "No such file or directory",
  [ERRNO.EEXIST]: "File exists",
  [ERRNO.EBUSY]: "Device or resource busy",
  [ERRNO.ENOMEM]: "Cannot allocate memory",
  [ERRNO.EOPNOTSUPP]: "Operation not supported",
  [ERRNO.ETIME]: "Timer expired",
  [ERRNO.EAFNOSUPPORT]: "Address family not supported by protocol",
};

/** What `conntrack -… expect` says after "Operation failed: " for `error`. */
function failText(error: NetlinkError, create: boolean): string {
  if (error.errno === ERRNO.EPERM || error.errno === ERRNO.EACCES) {
    return "sorry, you must be root or get CAP_NET_ADMIN capability to do this";
  }
  if (error.errno === ERRNO.EINVAL) return "invalid parameters";
  if (create && error.errno === ERRNO.ENOENT) return "master conntrack not found";
  return STRERROR[error.errno] ?? error.message;
}

/** The operations whose refusals conntrack words as "Operation failed: …". */
const TABLE_OPERATIONS = new Set(["dump", "get", "create", "delete", "flush", "stats", "count"]);

/**
 * Runs `fn`; what the kernel refused becomes conntrack's "Operation failed:
 * …", a bad argument a usage error naming its option.
 */
async function failing<T>(fn: () => Promise<T>, create = false): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof NetlinkError && TABLE_OPERATIONS.has(error.operation)) {
      throw new FailError(`Operation failed: ${failText(error, create)}`);
    }
    throw argumentError(error, "orig");
  }
}

/** conntrack's `-o timestamp` prefix of an expectation line: `[%-8ld.%-6ld]\t`, now. */
function timestampPrefix(): string {
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  const sec = String(Math.floor(micros / 1e6));
  const usec = String(micros % 1e6);
  return `[${sec.padEnd(8)}.${usec.padEnd(6)}]\t`;
}

/** How a command prints expectations: each one's line, and what follows the last. */
interface Printer {
  /** The line of `e` (an event's with `eventType`); the first XML line carries the header. */
  line(e: Expectation, eventType?: "new" | "destroy"): string;
  /** What follows the last line: `</expect>` after XML that had one. */
  end(out: { line(text: string): void }): void;
}

/**
 * What the `-o` keywords and `--json` ask for: JSON, conntrack's XML (with
 * `<when>` for `-o timestamp`), or conntrack's line (after
 * `[SECONDS.MICROSECONDS]<TAB>` for `-o timestamp`).
 */
function printerOf(ctx: Context): Printer {
  const timestamp = ctx.outputs.has("timestamp");
  if (ctx.json) {
    return {
      line: (e, eventType) =>
        eventType === undefined
          ? expectationToJson(e)
          : `{"event":"${eventType}",${expectationToJson(e).slice(1)}`,
      end() {},
    };
  }
  if (ctx.outputs.has("xml")) {
    let started = false;
    return {
      line(e, type) {
        const xml = formatExpectationXml(e, timestamp ? { type, when: new Date() } : { type });
        if (started) return xml;
        started = true;
        return `${EXPECT_XML_HEADER}\n${xml}`;
      },
      end(out) {
        if (started) out.line(EXPECT_XML_FOOTER);
      },
    };
  }
  return {
    line(e, eventType) {
      const options = eventType === undefined
        ? {}
        : { eventType: eventType === "new" ? "[NEW]" : "[DESTROY]" };
      const text = formatExpectation(e, options);
      return timestamp ? timestampPrefix() + text : text;
    },
    end() {},
  };
}

/** The value of an option, if given. */
function value(ctx: Context, key: OptionKey): string | undefined {
  return ctx.parsed.values.get(key);
}

function port(ctx: Context, key: OptionKey): number | undefined {
  const text = value(ctx, key);
  return text === undefined ? undefined : decimal(key, text, 65535, "port");
}

/** Says which of `keys` are missing, as conntrack's "You need to supply …". */
function requireGiven(ctx: Context, name: string, keys: readonly OptionKey[]): void {
  const missing = keys.filter((k) => value(ctx, k) === undefined);
  if (missing.length > 0) {
    throw new UsageError(`${name} expect needs ${missing.map(optionName).join(", ")}`);
  }
}

/** A tuple of `src`, `dst` (option keys), `-p` and two port options (and the ICMP ones). */
function tupleOf(
  ctx: Context,
  src: OptionKey,
  dst: OptionKey,
  sport: OptionKey,
  dport: OptionKey,
): TupleSpec {
  const protocol = ctx.filters.protocol!;
  const t: TupleSpec = { src: value(ctx, src)!, dst: value(ctx, dst)!, protocol };
  const kind = protocolInfo(protocol).tuple;
  if (kind === "ports" || kind === "keys") {
    t.srcPort = port(ctx, sport);
    t.dstPort = port(ctx, dport);
    if (t.srcPort === undefined || t.dstPort === undefined) {
      throw new UsageError(
        `-p ${protocolInfo(protocol).name} needs ${optionName(sport)} and ${optionName(dport)}`,
      );
    }
  } else if (kind === "icmp") {
    const f = ctx.filters;
    if (f.icmpType === undefined || f.icmpCode === undefined || f.icmpId === undefined) {
      throw new UsageError("ICMP needs --icmp-type, --icmp-code and --icmp-id");
    }
    Object.assign(t, { icmpType: f.icmpType, icmpCode: f.icmpCode, icmpId: f.icmpId });
  }
  return t;
}

/** The expected tuple that -s/-d/-p/--sport/--dport name (get, delete). */
function namedTuple(ctx: Context, name: string): TupleSpec {
  requireGiven(ctx, name, ["src", "dst", "proto"]);
  return tupleOf(ctx, "src", "dst", "sport", "dport");
}

/** The family conntrack lists and counts by default: ipv4 unless -f says otherwise. */
function listFamily(ctx: Context): "ipv4" | "ipv6" {
  return ctx.filters.family ?? "ipv4";
}

const OUTPUT_HELP: readonly OptionHelp[] = [
  {
    key: "output",
    help: 'As conntrack -o: xml, timestamp ("[SECONDS.MICROSECONDS]<TAB>"\n' +
      "first; <when> in XML); the other keywords have no effect on\nexpectations",
  },
  { key: "json", help: "One JSON object per expectation instead" },
  "netns",
];

async function dumpRun(ctx: Context): Promise<number> {
  const print = printerOf(ctx);
  using ct = ctx.open();
  const out = ctx.stdout();
  let n = 0;
  try {
    await failing(async () => {
      for await (const e of ct.expectations.dump({ family: listFamily(ctx) })) {
        out.line(print.line(e));
        n++;
      }
    });
    print.end(out);
  } finally {
    out.flush();
  }
  ctx.summary(n, "expectations have been shown");
  return 0;
}

async function getRun(ctx: Context): Promise<number> {
  const tuple = checked(() => namedTuple(ctx, "get"));
  const print = printerOf(ctx);
  using ct = ctx.open();
  const e = await failing(() => ct.expectations.get(tuple));
  const out = ctx.stdout();
  out.line(print.line(e));
  out.flush();
  return 0;
}

async function deleteRun(ctx: Context): Promise<number> {
  const tuple = checked(() => namedTuple(ctx, "delete"));
  using ct = ctx.open();
  await failing(() => ct.expectations.delete(tuple));
  ctx.summary(1, "expectations have been deleted");
  return 0;
}

function maskOf(ctx: Context): ExpectMaskSpec {
  const mask: ExpectMaskSpec = {};
  const src = value(ctx, "maskSrc"), dst = value(ctx, "maskDst");
  if (src !== undefined) mask.src = src;
  if (dst !== undefined) mask.dst = dst;
  const sport = port(ctx, "maskSport"), dport = port(ctx, "maskDport");
  if (sport !== undefined) mask.srcPort = sport;
  if (dport !== undefined) mask.dstPort = dport;
  return mask;
}

async function createRun(ctx: Context): Promise<number> {
  requireGiven(ctx, "create", ["src", "dst", "proto", "tupleSrc", "tupleDst"]);
  const spec: ExpectationSpec = checked(() => ({
    master: tupleOf(ctx, "src", "dst", "sport", "dport"),
    tuple: tupleOf(ctx, "tupleSrc", "tupleDst", "tupleSport", "tupleDport"),
    mask: maskOf(ctx),
  }));
  const timeout = value(ctx, "timeout");
  if (timeout !== undefined) spec.timeout = decimal("timeout", timeout, 0xffffffff, "seconds");
  if (ctx.filters.zone !== undefined) spec.zone = ctx.filters.zone;
  using ct = ctx.open();
  await failing(() => ct.expectations.create(spec), true);
  return 0;
}

async function flushRun(ctx: Context): Promise<number> {
  using ct = ctx.open();
  await failing(() => ct.expectations.flush());
  ctx.stderrLine(`${SUMMARY_PREFIX}expectation table has been emptied.`);
  return 0;
}

async function countRun(ctx: Context): Promise<number> {
  using ct = ctx.open();
  // conntrack -C expect counts what -L expect lists: the IPv4 expectations.
  const n = await failing(() => ct.expectations.count({ family: "ipv4" }));
  const out = ctx.stdout();
  out.line(ctx.json ? JSON.stringify({ expectations: n }) : String(n));
  out.flush();
  return 0;
}

async function statsRun(ctx: Context): Promise<number> {
  using ct = ctx.open();
  const stats = await failing(() => ct.expectations.stats());
  const out = ctx.stdout();
  if (ctx.json) out.line(JSON.stringify({ cpus: stats }));
  else for (const s of stats) out.line(formatExpectStats(s));
  out.flush();
  return 0;
}

async function eventsRun(ctx: Context): Promise<number> {
  const print = printerOf(ctx);
  using ct: Conntrack = ctx.open();
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const out = new EventWriter(ctx.io.stdout, onSignal);
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let shown = 0;
  try {
    for await (const event of ct.expectations.events({ signal: stop.signal })) {
      if (event.type === "lost") {
        ctx.stderrLine(
          `ctnl: warning: We have hit ENOBUFS! We are losing events (${event.lost} overruns so far)`,
        );
        if (ctx.json) out.line(`{"event":"lost","lost":${event.lost}}`);
        continue;
      }
      out.line(print.line(event.expectation, event.type));
      shown++;
    }
    if (out.error !== undefined) throw out.error;
    print.end(out);
    out.flush();
  } finally {
    out.close();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  ctx.summary(shown, "expectation events have been shown");
  return 0;
}

const TUPLE_HELP: readonly OptionHelp[] = [
  { key: "src", help: "Source address of the expected tuple" },
  { key: "dst", help: "Destination address of the expected tuple" },
  "proto",
  { key: "sport", help: "Source port of the expected tuple" },
  { key: "dport", help: "Destination port of the expected tuple" },
  "icmpType",
  "icmpCode",
  "icmpId",
  "netns",
];
/** Accepted as conntrack accepts them, and not used (the expected tuple names the entry). */
const IGNORED: readonly OptionKey[] = ["replySrc", "replyDst", "replySport", "replyDport"];

const CREATE_HELP: readonly OptionHelp[] = [
  { key: "src", help: "Master: source address (original direction)" },
  { key: "dst", help: "Master: destination address" },
  "proto",
  { key: "sport", help: "Master: source port" },
  { key: "dport", help: "Master: destination port" },
  "tupleSrc",
  "tupleDst",
  "tupleSport",
  "tupleDport",
  { key: "maskSrc", help: "Mask of the expected source address (default all ones)" },
  { key: "maskDst", help: "Mask of the expected destination address (default all ones)" },
  "maskSport",
  "maskDport",
  { key: "timeout", help: "Seconds (the helper's policy may set its own)" },
  { key: "zone", help: "Zone of the master" },
  "icmpType",
  "icmpCode",
  "icmpId",
  "netns",
];

function keys(list: readonly OptionHelp[]): OptionKey[] {
  return list.map((o) => typeof o === "string" ? o : o.key);
}

/** A command of the expectation table: `name` is the conntrack table command it stands in for. */
function expectCommand(
  name: string,
  summary: string,
  options: readonly OptionKey[],
  help: string,
  run: (ctx: Context) => Promise<number>,
): Command {
  return { name: `${name} expect`, words: [], flags: [], summary, options, help, run };
}

/** The expectation table's command for each conntrack table command, by its name. */
export const EXPECT_COMMANDS: ReadonlyMap<string, Command> = new Map([
  [
    "dump",
    expectCommand(
      "dump",
      "List the expectations (conntrack -L expect)",
      ["family", ...keys(OUTPUT_HELP)],
      `Usage: ctnl dump expect [-f ipv4|ipv6] [OUTPUT OPTIONS]   (also: ctnl -L expect)

Lists the expectation table as conntrack -L expect prints it. As conntrack,
only the IPv4 expectations unless -f ipv6 is given. The summary
"N expectations have been shown." goes to stderr.

Options:
${optionHelp(["family", ...OUTPUT_HELP])}

Examples:
  ctnl dump expect
  ctnl -L expect -f ipv6 --json
`,
      dumpRun,
    ),
  ],
  [
    "get",
    expectCommand(
      "get",
      "Show one expectation (conntrack -G expect)",
      [...keys(TUPLE_HELP), ...IGNORED, "json"], // conntrack -G expect takes no -o
      `Usage: ctnl get expect -s ADDR -d ADDR -p PROTO [--sport P --dport P]   (also: -G expect)

Shows the expectation whose expected tuple matches (under its mask) the
tuple given, as conntrack -G expect. -r/-q and the reply ports are taken
as conntrack takes them, and not used.

Options:
${optionHelp([...TUPLE_HELP, OUTPUT_HELP[1]!])}
`,
      getRun,
    ),
  ],
  [
    "delete",
    expectCommand(
      "delete",
      "Delete one expectation (conntrack -D expect)",
      [...keys(TUPLE_HELP), ...IGNORED],
      `Usage: ctnl delete expect -s ADDR -d ADDR -p PROTO [--sport P --dport P]   (also: -D expect)

Deletes the expectation the expected tuple names and prints "1 expectations
have been deleted." to stderr (conntrack 1.4.7 prints "0 expectations have
been shown." and exits 1 even when it deleted one; ctnl exits 0).

Options:
${optionHelp(TUPLE_HELP)}
`,
      deleteRun,
    ),
  ],
  [
    "create",
    expectCommand(
      "create",
      "Create an expectation (conntrack -I expect)",
      [...keys(CREATE_HELP), ...IGNORED, "status"],
      `Usage: ctnl create expect -s ADDR -d ADDR -p PROTO --sport P --dport P
         --tuple-src ADDR --tuple-dst ADDR --tuple-port-src P --tuple-port-dst P
         [--mask-src MASK --mask-dst MASK --mask-port-src P --mask-port-dst P] [-t SECONDS]
         (also: ctnl -I expect)

Creates an expectation of the master connection -s/-d/-p/--sport/--dport
(it must exist and have a helper). The mask defaults to every bit; FTP-like
expectations take --mask-port-src 0. conntrack 1.4.7 sends the expected
tuple's protocol wrong with --tuple-port-src/--tuple-port-dst (it lists as
proto=15 or so); ctnl sends -p.

Options:
${optionHelp(CREATE_HELP)}
`,
      createRun,
    ),
  ],
  [
    "flush",
    expectCommand(
      "flush",
      "Empty the expectation table (conntrack -F expect)",
      ["netns"],
      `Usage: ctnl flush expect [--netns NAME|PATH]   (also: ctnl -F expect)

Deletes every expectation and prints "expectation table has been emptied."
to stderr.
`,
      flushRun,
    ),
  ],
  [
    "count",
    expectCommand(
      "count",
      "Number of expectations (conntrack -C expect)",
      ["json", "netns"],
      `Usage: ctnl count expect [--json] [--netns NAME|PATH]   (also: ctnl -C expect)

The number of IPv4 expectations, as conntrack -C expect counts them (what
-L expect lists). With --json: {"expectations":N}.
`,
      countRun,
    ),
  ],
  [
    "stats",
    expectCommand(
      "stats",
      "Per-CPU expectation statistics (conntrack -S expect)",
      ["json", "netns"],
      `Usage: ctnl stats expect [--json] [--netns NAME|PATH]   (also: ctnl -S expect)

One line per CPU as conntrack -S expect prints them:
  cpu=0   \texpect_new=0 expect_create=1 expect_delete=0
With --json: {"cpus":[{"cpu":0,"new":0,"create":1,"delete":0},…]}.
`,
      statsRun,
    ),
  ],
  [
    "events",
    expectCommand(
      "events",
      "Watch expectations being created and destroyed (conntrack -E expect)",
      keys(OUTPUT_HELP),
      `Usage: ctnl events expect [OUTPUT OPTIONS]   (also: ctnl -E expect)

Prints expectations as they are created and destroyed, as conntrack -E
expect ("    [NEW] 300 proto=6 src=…"), until Ctrl-C or SIGTERM; then
"N expectation events have been shown." goes to stderr. The kernel sends
these events only for masters that had event delivery when they were made
(net.netfilter.nf_conntrack_events=1, or a listener already running).

Options:
${optionHelp(OUTPUT_HELP)}
`,
      eventsRun,
    ),
  ],
]);
