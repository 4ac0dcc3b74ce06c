/**
 * Builds a namespace full of real conntrack entries of many kinds: TCP
 * ESTABLISHED and TIME_WAIT, UDP replied and unreplied, ICMP and ICMPv6
 * echo, IPv6 TCP/UDP, DNAT, SNAT, an ftp helper with NAT (seq-adj and an
 * expectation), a zone and a mark. The one recipe for the tests and for
 * `deno task demo`.
 *
 * @module
 */

import { Netns, prepare } from "./_ns.ts";

/**
 * The one nftables ruleset of the tests and the demo: rules that use
 * conntrack (so the namespace's traffic is tracked), a zone, a mark, an ftp
 * helper, DNATs and an SNAT.
 */
export const RULES = `
table inet ctnl {
  ct helper ftp-std {
    type "ftp" protocol tcp;
  }
  chain raw_out {
    type filter hook output priority raw;
    udp dport 5555 ct zone set 7
    udp sport 5555 ct zone set 7
  }
  chain mangle_out {
    type filter hook output priority mangle;
    tcp dport 7200 ct mark set 42
  }
  chain helper_out {
    type filter hook output priority filter;
    tcp dport 21 ct helper set "ftp-std"
  }
  chain nat_out {
    type nat hook output priority -100;
    ip daddr 10.60.0.100 tcp dport 8081 dnat ip to 10.50.0.2:8080
    ip daddr 10.60.0.100 tcp dport 21 dnat ip to 10.50.0.2
  }
  chain nat_pre {
    type nat hook prerouting priority -100;
  }
  chain nat_in {
    type nat hook input priority 100;
  }
  chain nat_post {
    type nat hook postrouting priority 100;
    ip daddr 10.50.0.2 tcp dport 7000 snat ip to 10.50.0.3
  }
}
`;

/** What {@link RULES} and the traffic do, in one line (the demo prints it). */
export const SUMMARY = "lo: 10.50.0.1-3, fd50::1-2; nftables: DNAT 10.60.0.100:8081 -> " +
  "10.50.0.2:8080, SNAT of tcp dport 7000 to 10.50.0.3, tcp dport 7200 -> ct mark 42, " +
  "udp port 5555 -> ct zone 7, ftp helper on tcp port 21; counters and timestamps on";

const TRAFFIC = new URL("./fixtures/traffic.ts", import.meta.url).pathname;

/**
 * Gives `ns` the addresses, the long UDP/ICMP timeouts and {@link RULES},
 * then starts the traffic generator (tests/fixtures/traffic.ts, killed by
 * `ns.delete()`) and, unless `ping` is false, pings over IPv4 and IPv6.
 */
export async function addTraffic(ns: Netns, options: { ping?: boolean } = {}): Promise<void> {
  for (const a of ["10.50.0.1/24", "10.50.0.2/24", "10.50.0.3/24"]) {
    await ns.exec(["ip", "addr", "add", a, "dev", "lo"]);
  }
  for (const a of ["fd50::1/64", "fd50::2/64"]) {
    await ns.exec(["ip", "addr", "add", a, "dev", "lo", "nodad"]);
  }
  await ns.exec(["ip", "route", "add", "10.60.0.0/24", "dev", "lo"]);
  // Long UDP/ICMP timeouts: the tests compare for longer than the
  // default 30 s on a loaded machine, and entries must not expire meanwhile.
  await ns.sysctl({
    nf_conntrack_udp_timeout: 600,
    nf_conntrack_icmp_timeout: 600,
    nf_conntrack_icmpv6_timeout: 600,
  });
  await ns.exec(["nft", "-f", "-"], RULES);
  await ns.spawn([Deno.execPath(), "run", "--allow-net", TRAFFIC]);
  if (options.ping === false) return;
  await ns.exec(["ping", "-c", "1", "-W", "2", "10.50.0.2"]);
  await ns.exec(["ping", "-6", "-c", "1", "-W", "2", "fd50::2"]);
}

/** Creates a namespace with traffic of every kind; the caller deletes it. */
export async function trafficNamespace(tag: string): Promise<Netns> {
  return prepare(await Netns.create(tag), addTraffic);
}
