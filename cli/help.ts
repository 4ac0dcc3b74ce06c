/**
 * The main help, derived from the command registry, the option sections
 * several commands share, and which help `ctnl … --help` shows.
 *
 * @module
 */

import { type OptionHelp, type OptionKey, TUPLE_OPTIONS } from "./options.ts";
import { NETWORK_NAT_LABEL_OPTIONS } from "./filters.ts";
import { type Command, LABEL_FILE, VERSION } from "./context.ts";

/** The keys of option help lists: what a command whose help shows them takes. */
export function optionKeys(...lists: readonly (readonly OptionHelp[])[]): OptionKey[] {
  return lists.flat().map((use) => typeof use === "string" ? use : use.key);
}

/** The tuple options with the family: what selects entries by their tuple. */
export const FILTER_OPTIONS: readonly OptionHelp[] = ["family", ...TUPLE_OPTIONS];

/** The filters of a listing (dump, events, delete). */
export const DUMP_FILTER_OPTIONS: readonly OptionHelp[] = [
  ...FILTER_OPTIONS,
  "mark",
  "zone",
  "status",
  "state",
  // filt (issue 12)
  ...NETWORK_NAT_LABEL_OPTIONS,
];

/** The output options of a listing (dump, get). */
export const LISTING_OUTPUT_OPTIONS: readonly OptionHelp[] = [
  {
    key: "output",
    help: "As conntrack -o; a prefix is enough (ext = extended):\n" +
      "  extended    address family first (ipv4 2)\n" +
      "  id          id= at the end\n" +
      "  ktimestamp  [start=…] [stop=…]\n" +
      `  labels      label names from ${LABEL_FILE}\n` +
      `              (needs --allow-read=${LABEL_FILE})\n` +
      "  timestamp, userspace  accepted, no effect on a listing\n" +
      "  save        as the options that create it (-A -t … -p …),\n" +
      "              alone (ctnl load reads it back)\n" +
      "  xml         conntrack's XML, one <flow> a line",
  },
  { key: "json", help: "One JSON object per entry instead (see README)" },
  "netns",
];

/** Where a command's description starts in the main help's command list. */
const COMMAND_COLUMN = 19;

/** `ctnl --help`: the commands, in registry order, then what every command takes. */
export function mainHelp(commands: readonly Command[]): string {
  const list = commands.map((c) => {
    const names = [...c.words, ...c.flags.filter((f) => !f.startsWith("--"))].join(", ");
    return `  ${names}`.padEnd(COMMAND_COLUMN) + c.summary;
  });
  list.push("  help COMMAND".padEnd(COMMAND_COLUMN) + "Show the options of a command");
  return `ctnl v${VERSION}: the Linux conntrack table over netlink, with conntrack-tools' output

Usage: ctnl COMMAND [OPTIONS]

Commands:
${list.join("\n")}

Tables: conntrack (the default), expect, dying, unconfirmed — ctnl dump expect,
ctnl -L dying, ctnl -E expect, … (ctnl help dump expect)

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
}

/**
 * The help `args` ask for: that of the first command word or flag among
 * them (before `--`), else the main help.
 */
export function helpFor(args: readonly string[], commands: readonly Command[]): string {
  for (const arg of args) {
    if (arg === "--") break;
    const command = commands.find((c) => c.words.includes(arg) || c.flags.includes(arg));
    if (command) return command.help;
  }
  return mainHelp(commands);
}
