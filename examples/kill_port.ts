/**
 * Kill every tracked connection to a destination port: deletes the
 * matching conntrack entries and prints each one as `conntrack -L` would,
 * like `conntrack -D -p tcp --dport PORT`. Handy after changing a firewall
 * rule or a NAT target, so existing connections stop using the old path.
 *
 * Run it as root, from a checkout or straight from JSR (it is in the
 * package; JSR serves its files at https://jsr.io/@ctnl/conntrack/VERSION/):
 *
 * ```sh
 * deno run --allow-ffi examples/kill_port.ts --port 8080 [--protocol udp] [--dry-run] [--netns NAME]
 * deno run --allow-ffi https://jsr.io/@ctnl/conntrack/0.1.0/examples/kill_port.ts --port 8080 --dry-run
 * ```
 *
 * `--protocol` defaults to tcp. `--dry-run` only lists what would be
 * deleted. The count goes to stderr, the entries to stdout.
 *
 * Deleting the entry does not close the sockets at either end; it makes
 * netfilter treat the next packet as a new connection (or as invalid, for
 * a TCP segment that is not a SYN, depending on `nf_conntrack_tcp_loose`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Conntrack, type DumpFilter, formatFlow } from "../mod.ts";

const { values } = parseArgs({
  options: {
    port: { type: "string", short: "P" },
    protocol: { type: "string", short: "p", default: "tcp" },
    "dry-run": { type: "boolean", short: "n" },
    netns: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help || values.port === undefined) {
  (values.help ? console.log : console.error)(
    "Usage: kill_port.ts --port PORT [--protocol tcp|udp|sctp|…] [--dry-run] [--netns NAME]",
  );
  Deno.exit(values.help ? 0 : 2);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`kill_port: --port must be 0-65535, not "${values.port}"`);
  Deno.exit(2);
}

const filter: DumpFilter = { orig: { protocol: values.protocol, dstPort: port } };
using ct = Conntrack.open(values.netns === undefined ? {} : { netns: values.netns });

if (values["dry-run"]) {
  let n = 0;
  for await (const flow of ct.dump(filter)) {
    console.log(formatFlow(flow));
    n++;
  }
  console.error(`kill_port: ${n} entries would be deleted (dry run)`);
} else {
  const n = await ct.deleteWhere(filter, { onDelete: (flow) => console.log(formatFlow(flow)) });
  console.error(`kill_port: ${n} entries deleted`);
}
