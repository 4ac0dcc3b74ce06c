/**
 * The `ctnl` command line in-process, through `main()` with captured
 * stdout and stderr: argument parsing, bad parameters (exit 2 before
 * anything is opened), help and version. Needs no root and no permission
 * beyond `--allow-read` (the version comes from deno.json).
 */

import assert from "node:assert/strict";
import { main } from "../../cli.ts";
import { loadCommands } from "../../cli/commands/mod.ts";
import { commandList, OPTIONS } from "../../cli/options.ts";
import denoJson from "../../deno.json" with { type: "json" };

const COMMANDS = await loadCommands();

const VERSION = denoJson.version;

/** What a run of `main(args)` wrote and returned. */
interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `main(args)` in this process, collecting what it writes. */
async function ctnl(args: string[]): Promise<Result> {
  const collect = () => {
    const chunks: Uint8Array[] = [];
    const writer = { writeSync: (p: Uint8Array) => (chunks.push(p.slice()), p.length) };
    const text = () => new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    return { writer, text };
  };
  const out = collect(), err = collect();
  const code = await main(args, { stdout: out.writer, stderr: err.writer });
  return { code, stdout: out.text(), stderr: err.text() };
}

/**
 * A namespace that does not exist: bad parameters must be found before it
 * is opened (else the run would fail with exit 1, "does not exist").
 */
const NETNS = ["--netns", "ctnl-unit-no-such-ns"];

const A = "10.0.0.1", B = "10.0.0.2";
const UDP = ["-p", "udp", "-s", A, "-d", B, "--sport", "1", "--dport", "2"];
const TCP = UDP.with(1, "tcp");

/**
 * Bad inputs of the listing commands (from tests/cli_test.ts): arguments,
 * exit code, a fragment of the one stderr line.
 */
const LISTING_BAD_INPUTS: [string[], number, string][] = [
  [["dump", "--frob"], 2, "unknown option --frob"],
  [["dump", "-x"], 2, "unknown option -x"],
  [["frob"], 2, 'unknown command "frob"'],
  [["constructor"], 2, 'unknown command "constructor"'],
  [["dump", "-u", "__PROTO__"], 2, 'invalid status "__PROTO__"'],
  [["-p", "tcp"], 2, "no command given"],
  [["dump", "-s", "10.0.0.300"], 2, 'invalid -s/--src: "10.0.0.300" is not an IPv4 or IPv6'],
  [["dump", "-d", "fd00:::1"], 2, "invalid -d/--dst"],
  [["dump", "-r", "nonsense"], 2, "invalid -r/--reply-src"],
  [["dump", "-s", ""], 2, "empty address for -s/--src"],
  [["dump", "-s", "10.0.0.0/33"], 2, "invalid -s/--src"],
  [["dump", "-p", "tcp", "--dport", "70000"], 2, 'invalid port "70000" for --dport (0-65535)'],
  [["dump", "-p", "tcp", "--sport", "-1"], 2, 'invalid port "-1" for --sport'],
  [["dump", "-p", "udp", "--reply-port-src", "http"], 2, "for --reply-port-src"],
  [["dump", "-p", "frob"], 2, 'unknown protocol "frob"'],
  [["dump", "-p", "256"], 2, 'unknown protocol "256"'],
  [["dump", "-p", "icmp", "--dport", "80"], 2, "port options need a protocol with ports"],
  [["dump", "-p", "tcp", "--icmp-type", "8"], 2, "need -p icmp or -p icmpv6"],
  [["dump", "-p", "icmp", "--icmp-type", "256"], 2, 'invalid ICMP type "256"'],
  [["dump", "-m", "abc"], 2, 'invalid mark "abc"'],
  [["dump", "-m", "0x100000000"], 2, 'invalid mark "0x100000000"'],
  [["dump", "-m", "1/"], 2, 'invalid mask in "1/"'],
  [["dump", "-m", "1/0xfffffffff"], 2, "invalid mask"],
  [["dump", "-w", "65536"], 2, 'invalid zone "65536" for -w/--zone (0-65535)'],
  [["dump", "-w", "zone7"], 2, 'invalid zone "zone7"'],
  [["dump", "-u", "FROB"], 2, 'invalid status "FROB"'],
  [["dump", "-u", "ASSURED,"], 2, 'invalid status ""'],
  [["dump", "-f", "ipv7"], 2, 'invalid family "ipv7"'],
  [["dump", "-s", "10.50.0.1", "-d", "fd50::1"], 2, 'ipv6 address "fd50::1" mixed with ipv4'],
  [["dump", "-f", "ipv4", "-s", "fd50::1"], 2, "mixed with ipv4"],
  [["dump", "--state", "ESTABLISHED"], 2, "--state needs -p tcp"],
  [["dump", "-p", "tcp", "--state", "established"], 2, 'invalid state "established"'],
  [["dump", "-o", "frob"], 2, 'invalid output format "frob"'],
  [["dump", "-o", "extended,"], 2, 'invalid output format ""'],
  [["dump", "-o", "save,id"], 1, "cannot combine save output with any other output type"],
  [["dump", "--json", "-o", "id"], 2, "--json and -o/--output cannot be combined"],
  [["dump", "-s", "10.0.0.1", "-s", "10.0.0.2"], 2, "option -s/--src given twice"],
  [["dump", "-p"], 2, "option -p needs a value"],
  [["dump", "--json=yes"], 2, "option --json takes no value"],
  [["dump", "--s", "10.0.0.1"], 2, "option --s is ambiguous"],
  [["dump", "extra"], 2, 'unexpected argument "extra"'],
  [["dump", "expect", "-p", "tcp"], 2, "option -p/--proto cannot be used with dump expect"],
  [["-L", "-G"], 2, "only one command at a time: -L and -G"],
  [["dump", "get"], 2, 'unexpected argument "get"'],
  [["stats", "-p", "tcp"], 2, "option -p/--proto cannot be used with stats"],
  [["count", "-o", "id"], 2, "option -o/--output cannot be used with count"],
  [["get", "-m", "1"], 2, "option -m/--mark cannot be used with get"],
  [["get", "-s", "10.0.0.1", "-d", "10.0.0.2"], 2, "get needs -p/--proto"],
  [["get", "-p", "tcp", "-s", "10.0.0.1"], 2, "get needs -s and -d (or -r and -q)"],
  [["get", "-p", "tcp", "-s", "10.0.0.1", "-d", "10.0.0.2"], 2, "get needs --sport and --dport"],
  [
    ["get", "-p", "udp", "-r", "10.0.0.1", "-q", "10.0.0.2", "--reply-port-src", "1"],
    2,
    "get needs --reply-port-src and --reply-port-dst for udp",
  ],
  [
    ["get", "-p", "icmp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--icmp-type", "8"],
    2,
    "get needs --icmp-type, --icmp-code and --icmp-id for icmp",
  ],
  [
    ["get", ...TCP.with(5, "fd00::2")],
    2,
    "invalid the tuple",
  ],
  [["help", "frob"], 2, 'no help for "frob"'],
];

/**
 * Bad inputs of the commands that watch and change the table (from
 * tests/cli_change_test.ts): arguments, exit code, a fragment of the one
 * stderr line.
 */
const CHANGE_BAD_INPUTS: [string[], number, string][] = [
  [["events", "-e", "BOGUS"], 2, 'invalid event "BOGUS" for -e/--event-mask'],
  [["events", "-e", "NEW,"], 2, 'invalid event "" for -e/--event-mask'],
  [["events", "-b", "big"], 2, 'invalid size in bytes "big" for -b/--buffer-size'],
  [["events", "-b", "4294967296"], 2, "for -b/--buffer-size (0-2147483647)"],
  [["events", "-b"], 2, "option -b needs a value"],
  [["events", "-t", "5"], 2, "option -t/--timeout cannot be used with events"],
  [["events", "--json", "-o", "timestamp"], 2, "--json and -o/--output cannot be combined"],
  [["events", "-o", "xml,save"], 1, "cannot combine save output with any other output type"],
  [["events", "-o", "stamp"], 2, 'invalid output format "stamp"'],
  [["events", "-p", "tcp", "--state", "BOGUS"], 2, 'invalid state "BOGUS"'],
  [["events", "-s", A, "-d", "fd00::1"], 2, "mixed with ipv4"],
  [["-E", "expect", "-s", "10.0.0.1"], 2, "option -s/--src cannot be used with events expect"],
  [["-E", "-D"], 2, "only one command at a time: -E and -D"],
  [["--event", "--flush"], 2, "only one command at a time: --event and --flush"],
  [["delete", "-e", "NEW"], 2, "option -e/--event-mask cannot be used with delete"],
  [["delete", "-t", "5"], 2, "option -t/--timeout cannot be used with delete"],
  [["delete", "-s", A, "-d", "fd00::1"], 2, "mixed with ipv4"],
  [["delete", "-p", "tcp", "--dport", "70000"], 2, 'invalid port "70000" for --dport'],
  [["delete", "-m", "1/"], 2, 'invalid mask in "1/"'],
  [["-D", "-p", "udp", "--state", "ESTABLISHED"], 2, "--state needs -p tcp"],
  [["flush", "-p", "tcp"], 2, "option -p/--proto cannot be used with flush"],
  [["flush", "-s", A], 2, "option -s/--src cannot be used with flush"],
  [["flush", "-f", "ipv5"], 2, 'invalid family "ipv5"'],
  [["flush", "-m", "x"], 2, 'invalid mark "x"'],
  [["flush", "--json"], 2, "option --json cannot be used with flush"],
  [["-F", "-o", "id"], 2, "option -o/--output cannot be used with flush"],
  [["create", "-s", A, "-d", B, "-t", "5"], 2, "create needs -p/--proto"],
  [["create", ...UDP], 2, "create needs -t/--timeout"],
  [["create", "-p", "udp", "-t", "5"], 2, "create needs -s and -d (or -r and -q)"],
  [["create", "-p", "udp", "-s", A, "-t", "5"], 2, "create needs both -s and -d"],
  [["create", "-p", "udp", "-s", A, "-d", B, "-t", "5"], 2, "create needs --sport and --dport"],
  [
    ["create", ...UDP, "-r", B, "-t", "5"],
    2,
    "create needs both -r and -q for the reply tuple",
  ],
  [
    ["create", ...UDP, "-r", B, "-q", A, "-t", "5"],
    2,
    "create needs --reply-port-src and --reply-port-dst for udp",
  ],
  [
    ["create", "-p", "udp", "-r", B, "-q", A, "--sport", "1", "-t", "5"],
    2,
    "--sport and --dport need -s and -d",
  ],
  [["create", ...UDP, "--reply-port-src", "2", "-t", "5"], 2, "need -r and -q"],
  [["create", ...UDP.with(1, "tcp"), "-t", "5"], 2, "create -p tcp needs --state"],
  [["create", ...UDP.with(1, "tcp"), "-t", "5", "--state", "BOGUS"], 2, 'invalid state "BOGUS"'],
  [["create", ...UDP, "-t", "5", "--state", "ESTABLISHED"], 2, "--state needs -p tcp"],
  [
    ["create", ...UDP.with(1, "sctp"), "-t", "5", "--state", "ESTABLISHED"],
    2,
    "create -p sctp needs --orig-vtag",
  ],
  [["create", ...UDP, "-t", "soon"], 2, 'invalid timeout "soon" for -t/--timeout (0-4294967295)'],
  [["create", ...UDP, "-t", "-1"], 2, 'invalid timeout "-1"'],
  [["create", ...UDP, "-t", "4294967296"], 2, 'invalid timeout "4294967296"'],
  [["create", ...UDP, "-t", "5", "-m", "1/0xff"], 2, "-m/--mark with create takes a value"],
  [["create", ...UDP, "-t", "5", "-m", "-1"], 2, 'invalid mark "-1"'],
  [["create", ...UDP, "-t", "5", "-u", "!ASSURED"], 2, "-u/--status with create names flags"],
  [["create", ...UDP, "-t", "5", "-u", "UNREPLIED"], 2, "-u/--status with create names flags"],
  [["create", ...UDP, "-t", "5", "-u", "BOGUS"], 2, 'invalid status "BOGUS"'],
  [["create", ...UDP, "-t", "5", "-w", "65536"], 2, 'invalid zone "65536"'],
  [["create", ...UDP.with(5, "fd00::2"), "-t", "5"], 2, "is ipv4 but dst"],
  [["create", ...UDP.with(3, "10.0.0.256"), "-t", "5"], 2, "invalid -s/--src"],
  [
    [
      "create",
      ...UDP,
      "-r",
      "fd00::2",
      "-q",
      "fd00::1",
      "--reply-port-src",
      "2",
      "--reply-port-dst",
      "1",
      "-t",
      "5",
    ],
    2,
    "differ in family",
  ],
  [
    ["create", "-p", "icmp", "-s", A, "-d", B, "--icmp-type", "8", "-t", "5"],
    2,
    "create needs --icmp-type, --icmp-code and --icmp-id for icmp",
  ],
  [["create", "-p", "icmp", "-r", B, "-q", A, "-t", "5"], 2, "takes -s and -d only"],
  [["create", "-f", "ipv6", ...UDP, "-t", "5"], 2, "-f/--family ipv6 does not match"],
  [["create", "-p", "gre", "-s", A, "-d", B, "-t", "5"], 2, "create needs --srckey and --dstkey"],
  [["create", "--json", ...UDP, "-t", "5"], 2, "option --json cannot be used with create"],
  [["-I", "-o", "id", ...UDP, "-t", "5"], 2, "option -o/--output cannot be used with create"],
  [["create", "-e", "NEW", ...UDP, "-t", "5"], 2, "option -e/--event-mask cannot be used"],
  [["update", ...UDP], 2, "update needs something to change"],
  [["update", "-p", "udp"], 2, "update needs something to change"],
  [["update", "-m", "1", "-u", "UNREPLIED"], 2, "-u/--status with update names flags"],
  [["update", "-m", "1", "-u", "ASSURED,!SEEN_REPLY"], 2, "-u/--status with update names"],
  [["update", "-t", "x"], 2, 'invalid timeout "x"'],
  [["update", "-p", "udp", "--state", "ESTABLISHED", "-m", "1"], 2, "--state needs -p tcp"],
  [["update", "-e", "NEW", "-m", "1"], 2, "option -e/--event-mask cannot be used with update"],
  [["-U", "-b", "1", "-m", "1"], 2, "option -b/--buffer-size cannot be used with update"],
  [["update", ...UDP.with(3, "fd00::1"), "-m", "1"], 2, "is ipv6 but dst"],
  [["update", "-f", "ipv6", ...UDP, "-m", "1"], 2, "-f/--family ipv6 does not match"],
  [["update", "-m", "1", "-s", A, "-s", B], 2, "option -s/--src given twice"],
  [["help", "frob"], 2, `(try ${commandList(COMMANDS)})`],
  [["frob"], 2, `unknown command "frob" (try ${commandList(COMMANDS)})`],
];

/** Runs the bad inputs: nothing on stdout, the exit code, one stderr line with the fragment. */
async function assertBadInputs(cases: [string[], number, string][]): Promise<void> {
  for (const [args, code, fragment] of cases) {
    const r = await ctnl([...NETNS, ...args]);
    const what = `ctnl ${args.join(" ")}`;
    assert.equal(r.stdout, "", `${what}: stdout`);
    assert.equal(r.code, code, `${what}: exit code (stderr ${r.stderr})`);
    const lines = r.stderr.split("\n");
    assert.equal(lines.length, 2, `${what}: one stderr line: ${r.stderr}`);
    assert(lines[0]!.startsWith("ctnl: "), `${what}: ${lines[0]}`);
    assert(lines[0]!.includes(fragment), `${what}: "${lines[0]}" lacks "${fragment}"`);
  }
}

Deno.test("bad inputs of dump, get, stats, count: exit 2, one stderr line, nothing on stdout", () =>
  assertBadInputs(LISTING_BAD_INPUTS));

Deno.test("bad inputs of events, delete, flush, create, update: exit 2, one stderr line", () =>
  assertBadInputs(CHANGE_BAD_INPUTS));

/** Help and version: arguments, what stdout must match (exit 0, nothing on stderr). */
const HELP_CASES: [string[], RegExp][] = [
  [[], /^ctnl v[\d.]+: .*\n\nUsage: ctnl COMMAND/],
  [["--help"], /Commands:\n {2}dump, list, -L/],
  [["-h"], /Examples:/],
  [["help"], /Usage: ctnl COMMAND/],
  [["dump", "--help"], /^Usage: ctnl dump .*-m, --mark VALUE\[\/MASK\].*Examples:/s],
  [["help", "dump"], /^Usage: ctnl dump/],
  [["-L", "-h"], /^Usage: ctnl dump/],
  [["get", "--help"], /^Usage: ctnl get .*--sport.*Examples:/s],
  [["help", "stats"], /^Usage: ctnl stats.*Examples:/s],
  [["count", "-h"], /^Usage: ctnl count.*Examples:/s],
  [["--version"], new RegExp(`^ctnl v${VERSION.replaceAll(".", "\\.")} \\(@ctnl/conntrack\\)\n$`)],
  [["-V"], /^ctnl v/],
  [["events", "--help"], /^Usage: ctnl events .*-e, --event-mask.*Examples:\n {2}ctnl events/s],
  [["-E", "-h"], /^Usage: ctnl events/],
  [["help", "delete"], /^Usage: ctnl delete .*Examples:\n {2}ctnl delete/s],
  [["-F", "-h"], /^Usage: ctnl flush .*Examples:\n {2}ctnl flush/s],
  [["--create", "--help"], /^Usage: ctnl create .*--state.*Examples:\n {2}ctnl create/s],
  [["update", "-h"], /^Usage: ctnl update .*Changes.*Examples:\n {2}ctnl update/s],
  [["--help"], /events, -E .*delete, -D .*flush, -F .*create, -I .*update, -U /s],
];

Deno.test("help and version", async () => {
  for (const [args, re] of HELP_CASES) {
    const r = await ctnl(args);
    assert.equal(r.code, 0, `${args}: ${r.stderr}`);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, re, args.join(" "));
  }
});

Deno.test("each command's help lists exactly the options it takes", async () => {
  const byLong = new Map<string, string>(OPTIONS.map((o) => [o.long[0], o.key]));
  for (const command of COMMANDS) {
    const r = await ctnl(["help", command.name]);
    assert.equal(r.code, 0, r.stderr);
    // Option lines: "  -p, --proto, …" or "      --sport, …".
    const listed = new Set<string>();
    for (const m of r.stdout.matchAll(/^ {2}(?:-\w, | {4})--([\w-]+)/gm)) {
      listed.add(byLong.get(m[1]!) ?? m[1]!);
    }
    // stats and count name theirs in the usage line.
    const usage = r.stdout.split("\n")[0]!;
    for (const m of usage.matchAll(/\[--([\w-]+)/g)) listed.add(byLong.get(m[1]!) ?? m[1]!);
    assert.deepEqual([...listed].sort(), [...command.options].sort(), command.name);
  }
});

Deno.test("the main help lists every command with its words and flag", async () => {
  const r = await ctnl(["--help"]);
  for (const command of COMMANDS) {
    const short = command.flags.filter((f) => !f.startsWith("--")); // none for ctnl's own (top)
    assert.match(r.stdout, new RegExp(`^ {2}${[...command.words, ...short].join(", ")} +\\S`, "m"));
  }
});

Deno.test({
  name: "good arguments get past parsing: without --allow-ffi, exit 1 saying so",
  permissions: { read: true, ffi: false },
}, async () => {
  // Without FFI permission a command stops right before opening netlink:
  // everything before that (parsing, values, cross-checks) has passed.
  assert.equal(Deno.permissions.querySync({ name: "ffi" }).state === "granted", false);
  const cases = [
    "dump -ptcp --dport=8080",
    "-L --proto udp --orig-port-src 53",
    "list conntrack -o ext -o id",
    "dump --pro=tcp --dp 22 --state ESTABLISHED",
    "-Lp icmp --icmp-type 8",
    `get ${UDP.join(" ")}`,
    "get -p tcp -r fd00::2 -q fd00::1 --reply-port-src 80 --reply-port-dst 4000",
    "-S",
    "--counter --json",
    "events -e new,d -b 1048576 -p sctp --state ESTABLISHED",
    "-D -f ipv6 -u UNREPLIED",
    "flush -m 0x10/0xf0",
    `create ${TCP.join(" ")} -t 60 --state SYN_SENT -u ASSURED`,
    "update -p udp -m 0x100/0xf00 -t 30",
    "dump -- conntrack",
  ].map((line) => line.split(" "));
  for (const args of cases) {
    const r = await ctnl(args);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^ctnl: needs FFI access .*--allow-ffi.*\n$/, args.join(" "));
  }
});
