import { type Command, COMMAND_WORDS } from "./options.ts";
import { LABEL_FILE, VERSION } from "./context.ts";

export const HELP_MAIN =
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

export const FILTER_HELP = `  -f, --family ipv4|ipv6              Address family
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

export const OUTPUT_HELP =
  `  -o, --output FORMAT[,FORMAT…]       As conntrack -o; a prefix is enough (ext = extended):
                                        extended    address family first (ipv4 2)
                                        id          id= at the end
                                        ktimestamp  [start=…] [stop=…]
                                        labels      label names from ${LABEL_FILE}
                                                    (needs --allow-read=${LABEL_FILE})
                                        timestamp, userspace  accepted, no effect on a listing
      --json                          One JSON object per entry instead (see README)
      --netns NAME|PATH               Network namespace`;

export const DUMP_FILTER_HELP = `${FILTER_HELP}
  -m, --mark VALUE[/MASK]             Mark (decimal, 0x hex or 0 octal); with MASK, mark & MASK == VALUE
  -w, --zone ZONE                     Conntrack zone, 0-65535
  -u, --status FLAG[,FLAG…]           Status flags that must be set: ASSURED, SEEN_REPLY,
                                      FIXED_TIMEOUT, EXPECTED, OFFLOAD, HW_OFFLOAD (or any
                                      status bit name); UNREPLIED = SEEN_REPLY clear;
                                      !FLAG = FLAG clear
      --state STATE                   Protocol state, with -p tcp|sctp|dccp (ESTABLISHED, …)`;

/** The tuple options: the filter options without the family. */
export const TUPLE_HELP = FILTER_HELP.split("\n").slice(1).join("\n");

export const HELP: Record<Command, string> = {
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

export const COMMAND_FLAGS = new Map<string, Command>([
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

export function helpFor(args: string[]): string {
  for (const arg of args) {
    if (arg === "--") break;
    const command = COMMAND_WORDS.get(arg) ?? COMMAND_FLAGS.get(arg);
    if (command) return HELP[command];
  }
  return HELP_MAIN;
}
