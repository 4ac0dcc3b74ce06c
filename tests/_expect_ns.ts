/**
 * A namespace whose ftp and tftp helpers hold real expectations (made by
 * tests/fixtures/expect_traffic.ts): for tests/expect_test.ts and the
 * expectation fixtures of tests/capture_fixtures.ts.
 *
 * @module
 */

import { Netns, prepare } from "./_ns.ts";

/** Helpers on ftp (tcp 21) and tftp (udp 69), and DNATs of 10.60.0.100 (ftp, tftp) to 10.50.0.2. */
export const EXPECT_RULES = `
table inet ctnl_expect {
  ct helper ftp-std {
    type "ftp" protocol tcp;
  }
  ct helper tftp-std {
    type "tftp" protocol udp;
  }
  chain helpers {
    type filter hook output priority filter;
    tcp dport 21 ct helper set "ftp-std"
    udp dport 69 ct helper set "tftp-std"
  }
  chain nat_out {
    type nat hook output priority -100;
    ip daddr 10.60.0.100 tcp dport 21 dnat ip to 10.50.0.2
    ip daddr 10.60.0.100 udp dport 69 dnat ip to 10.50.0.2
  }
  chain nat_post {
    type nat hook postrouting priority 100;
  }
}
`;

const TRAFFIC = new URL("./fixtures/expect_traffic.ts", import.meta.url).pathname;

/** Every scenario of tests/fixtures/expect_traffic.ts. */
export const ALL_SCENARIOS = [
  "pasv4",
  "port4",
  "epsv6",
  "eprt6",
  "pasv4nat",
  "tftp4",
  "tftp6",
  "tftp4nat",
];

/**
 * Gives `ns` addresses, event delivery for every entry
 * (`nf_conntrack_events=1`, so that expectation events are sent for masters
 * made before a listener), {@link EXPECT_RULES}, and starts the traffic of
 * `scenarios` (killed by `ns.delete()`).
 */
export async function addExpectTraffic(ns: Netns, scenarios: readonly string[]): Promise<void> {
  for (const a of ["10.50.0.1/24", "10.50.0.2/24"]) {
    await ns.exec(["ip", "addr", "add", a, "dev", "lo"]);
  }
  for (const a of ["fd50::1/64", "fd50::2/64"]) {
    await ns.exec(["ip", "addr", "add", a, "dev", "lo", "nodad"]);
  }
  await ns.exec(["ip", "route", "add", "10.60.0.0/24", "dev", "lo"]);
  await ns.sysctl({ nf_conntrack_events: 1 });
  await ns.exec(["nft", "-f", "-"], EXPECT_RULES);
  if (scenarios.length === 0) return;
  await ns.spawn([Deno.execPath(), "run", "--allow-net", TRAFFIC, ...scenarios]);
}

/** A namespace with the expectations of `scenarios`; the caller deletes it. */
export async function expectNamespace(
  tag: string,
  scenarios: readonly string[] = ALL_SCENARIOS,
): Promise<Netns> {
  return prepare(await Netns.create(tag), (ns) => addExpectTraffic(ns, scenarios));
}
