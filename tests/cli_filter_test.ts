/**
 * The filters and changes of issue 12 against the real kernel, with the same
 * command line given to `ctnl` and to `conntrack` in one namespace: CIDR and
 * masks, NAT (-n/-g/-j with and without an address and port), labels,
 * per-direction zones, secmark, -z, update --label-add/--label-del, create
 * with NAT, zones and labels, -A, GRE keys. Every run sees an overlay of
 * /etc with a test connlabel.conf (nft, conntrack and ctnl read label names
 * from there; the system's /etc is not touched).
 */

import assert from "node:assert/strict";
import { Conntrack, type DumpFilter } from "../mod.ts";
import { pool, run, type RunResult } from "./_ns.ts";
import type { Netns } from "./_ns.ts";
import { trafficNamespace } from "./_traffic.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const DENO = Deno.execPath();
const LABEL_CONF = "# test labels\n1 one\n5 five\n9 nine\n";

/** What one tool did: exit code, stdout, the count in its summary line (if any), stderr. */
interface Outcome {
  code: number;
  stdout: string;
  count: number | undefined;
  stderr: string;
}

function quote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

function outcome(r: RunResult): Outcome {
  const m = /\): (\d+) flow entries have been \w+\.$/m.exec(r.stderr);
  return {
    code: r.code,
    stdout: r.stdout,
    count: m ? Number(m[1]) : undefined,
    stderr: r.stderr,
  };
}

/** Timeouts count down, delta-time up; the rest of a line must be the same. */
function masked(text: string): string {
  return text
    .replace(/^((?:ipv[46] +\d+ )?\S+ +\d+ )\d+ /gm, "$1T ")
    .replace(/ delta-time=\d+/g, " delta-time=D");
}

/** The test's view of the world: runs in the namespace under the /etc overlay. */
class Bench {
  readonly ns: Netns;
  readonly #dir: string;
  #n = 0;

  constructor(ns: Netns, dir: string) {
    this.ns = ns;
    this.#dir = dir;
  }

  static async create(ns: Netns): Promise<Bench> {
    const dir = await Deno.makeTempDir({ prefix: "ctnl-filt-" });
    await Deno.mkdir(`${dir}/up/xtables`, { recursive: true });
    // conntrack reads BIT with strtoul: "+1" is bit 1 (nft, reading its own copy, would not take it).
    await Deno.writeTextFile(
      `${dir}/up/xtables/connlabel.conf`,
      LABEL_CONF.replace("1 one", "+1 one"),
    );
    await Deno.writeTextFile(`${dir}/up/connlabel.conf`, LABEL_CONF); // where nft 1.0.6 reads them
    return new Bench(ns, dir);
  }

  /** Runs a shell script in a private mount namespace whose /etc has the test connlabel.conf. */
  async script(text: string): Promise<RunResult> {
    const work = `${this.#dir}/work${this.#n++}`;
    await Deno.mkdir(work);
    return run([
      "unshare",
      "-m",
      "--propagation",
      "private",
      "sh",
      "-ec",
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${this.#dir}/up,workdir=${work} /etc\n${text}`,
    ]);
  }

  /** `conntrack ARGS` in the namespace. */
  async conntrack(args: string[]): Promise<Outcome> {
    return outcome(
      await this.script(
        `exec ip netns exec ${this.ns.name} conntrack ${args.map(quote).join(" ")}`,
      ),
    );
  }

  /** `ctnl --netns NS ARGS`. */
  async ctnl(args: string[]): Promise<Outcome> {
    const cmd = [DENO, "run", "--allow-ffi", "--allow-read=/etc/xtables/connlabel.conf", CLI];
    return outcome(
      await this.script(`exec ${[...cmd, "--netns", this.ns.name, ...args].map(quote).join(" ")}`),
    );
  }

  async remove(): Promise<void> {
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}

/** The same command line to both tools: same exit code, same lines (countdowns masked), same count. */
async function same(b: Bench, args: string[], nonEmpty?: boolean): Promise<Outcome> {
  const [mine, theirs] = await Promise.all([b.ctnl(args), b.conntrack(args)]);
  const what = args.join(" ");
  assert.equal(
    mine.code,
    theirs.code,
    `${what}: exit ${mine.code} vs ${theirs.code}\n${mine.stderr}\n${theirs.stderr}`,
  );
  assert.equal(masked(mine.stdout), masked(theirs.stdout), what);
  assert.equal(mine.count, theirs.count, `${what}: summary\n${mine.stderr}\n${theirs.stderr}`);
  if (nonEmpty !== undefined) {
    assert.equal((mine.count ?? 0) > 0, nonEmpty, `${what}: ${mine.count} entries`);
  }
  return mine;
}

/** Extra traffic: per-direction zones, labels, NAT with ports, IPv6 NAT. */
const RULES = `
table inet filt {
  chain raw_out {
    type filter hook output priority raw;
    udp dport 5601 ct original zone set 5
    udp dport 5602 ct zone set 6
  }
  chain mangle_out {
    type filter hook output priority mangle;
    udp dport 5603 ct label set one
    udp dport 5603 ct label set five
    udp dport 5604 ct label set nine
  }
  chain nat_out {
    type nat hook output priority -100;
    ip daddr 10.60.0.101 udp dport 5605 dnat ip to 10.50.0.2:6605
  }
  chain nat_post {
    type nat hook postrouting priority 100;
    ip daddr 10.50.0.2 udp dport 5606 snat ip to 10.50.0.3:40006
    ip6 daddr fd50::2 udp dport 5607 snat ip6 to fd50::3
  }
}
`;

const FILTERS: [string[], boolean][] = [
  // Networks
  [["-s", "10.50.0.0/24"], true],
  [["-s", "10.50.0.0/16", "-p", "tcp"], true],
  [["-s", "10.50.0.9/24"], true],
  [["-d", "10.60.0.0/24"], true],
  [["-s", "10.50.0.1/32"], true],
  [["-s", "10.0.0.0/8", "-d", "10.50.0.2"], true],
  [["-s", "0.0.0.0/0"], true],
  [["-s", "192.168.0.0/16"], false],
  [["-s", "fd50::/64"], true],
  [["-d", "fd50::2/128"], true],
  [["-s", "fd00::/8", "-p", "udp"], true],
  [["-s", "10.50.0.1", "--mask-src", "255.255.255.0"], true],
  [["-d", "10.50.0.77", "--mask-dst", "255.255.0.255"], false],
  [["-d", "10.50.77.2", "--mask-dst", "255.255.0.255"], true],
  [["-s", "fd50::1", "--mask-src", "ffff:ffff::"], true],
  // NAT
  [["-n"], true],
  [["-g"], true],
  [["-j"], true],
  [["--src-nat"], true],
  [["--any-nat", "-p", "udp"], true],
  [["-n", "10.50.0.3"], true],
  [["-n", "10.50.0.9"], false],
  [["-n", "10.50.0.3:40006"], true],
  [["-n", "10.50.0.3:40007"], false],
  [["-g", "10.50.0.2"], true],
  [["-g", "10.50.0.2:8080"], true],
  [["-g", "10.50.0.2:6605", "-p", "udp"], true],
  [["-g", "10.50.0.9"], false],
  [["-j", "10.50.0.3"], true],
  [["-j", "10.50.0.2:8080"], true],
  [["-n", "-g"], true],
  [["-n", "fd50::3"], true],
  [["-n", "[fd50::3]:1"], false],
  [["-p", "tcp", "-g", "--dport", "8081"], true],
  // Labels
  [["-l", "one"], true],
  [["-l", "five"], true],
  [["-l", "one,five"], true],
  [["-l", "one", "-l", "five"], true],
  [["-l", "nine"], true],
  [["-l", "one,nine"], false],
  [["--label", "five", "-p", "udp"], true],
  // Zones
  [["--orig-zone", "5"], true],
  [["--orig-zone", "0"], true],
  [["--reply-zone", "5"], false],
  [["--reply-zone", "0"], true],
  [["--orig-zone", "6"], false],
  [["-w", "5"], false],
  [["-w", "0"], true],
  [["-w", "6"], true],
  [["-w", "7", "-p", "udp"], true],
  // secmark: accepted, selects nothing out
  [["-c", "5"], true],
  [["--secmark", "0"], true],
];

/** Bad parameters: both exit 2 (ctnl's message is its own). */
const SCTP = ["-p", "sctp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--sport", "1", "--dport", "2"];
const UDP = SCTP.with(1, "udp");
const BAD: string[][] = [
  ["-L", "-p", "sctp", "--orig-vtag", "5"],
  ["-L", "-p", "dccp", "--role", "client"],
  ["-I", ...SCTP, "-t", "5", "--state", "ESTABLISHED", "--orig-vtag", "1"],
  ["-I", ...SCTP, "-t", "5", "--orig-vtag", "1", "--reply-vtag", "2"],
  ["-I", ...SCTP.with(1, "dccp"), "-t", "5", "--state", "OPEN"],
  ["-I", ...SCTP.with(1, "dccp"), "-t", "5", "--state", "OPEN", "--role", "boss"],
  ["-L", "-r", "10.0.0.0/8"],
  ["-L", "-q", "10.0.0.0/8"],
  ["-L", "--mask-src", "255.0.0.0"],
  ["-L", "-s", "10.0.0.1", "--mask-src", "ffff::"],
  ["-L", "-s", "10.0.0.0/33"],
  ["-L", "-s", "fd00::/129"],
  ["-L", "-s", "10.0.0.0/x"],
  ["-L", "-n", "10.0.0.1:99999"],
  ["-L", "-n", "10.0.0.1:"],
  ["-L", "-n", "10.0.0.300"],
  ["-L", "-n", "[fd00::1"],
  ["-L", "-j", "-n"],
  ["-L", "-j", "10.0.0.1", "-g"],
  ["-L", "-f", "ipv6", "-n", "10.0.0.1"],
  ["-L", "-l", "nosuch"],
  ["-L", "-l", "one,"],
  ["-L", "-z", "-p", "tcp"],
  ["-L", "-z", "-s", "10.50.0.1"],
  ["-L", "-z", "-l", "one"],
  ["-L", "-z", "--orig-zone", "5"],
  ["-D", "-c", "5"],
  ["-D", "-j"],
  ["-G", ...UDP.with(3, "10.0.0.0/8")],
  ["-I", ...UDP.with(3, "10.0.0.0/8"), "-t", "5"],
  ["-I", ...UDP, "-t", "5", "-l", "one"],
  ["-I", "-p", "gre", "-s", "10.0.0.1", "-d", "10.0.0.2", "-t", "5"],
  ["-I", "-p", "gre", "-s", "10.0.0.1", "-d", "10.0.0.2", "-t", "5", "--srckey", "1"],
  ["-E", "-z"],
];

Deno.test("issue 12 filters and changes against the kernel and conntrack-tools", async (t) => {
  const ns = await trafficNamespace("filt");
  const b = await Bench.create(ns);
  try {
    await ns.exec(["ip", "addr", "add", "fd50::3/64", "dev", "lo", "nodad"]);
    await ns.exec(["ip", "route", "add", "10.60.0.101/32", "dev", "lo"]);
    const setup = await b.script(
      `ip netns exec ${ns.name} nft -f - <<'EOF'\n${RULES}\nEOF
       for p in 5601 5602 5603 5604 5606; do
         echo x | ip netns exec ${ns.name} socat -u - UDP4-SENDTO:10.50.0.2:$p
       done
       echo x | ip netns exec ${ns.name} socat -u - UDP4-SENDTO:10.60.0.101:5605
       echo x | ip netns exec ${ns.name} socat -u - UDP6-SENDTO:[fd50::2]:5607`,
    );
    assert.equal(setup.code, 0, `setup: ${setup.stderr}`);
    {
      using ct = Conntrack.open({ netns: ns.name });
      const flows = [...ct.dumpSync()];
      const ports = new Set(flows.map((f) => f.orig.dstPort));
      for (const p of [5601, 5602, 5603, 5604, 5605, 5606, 5607]) {
        assert(ports.has(p), `no entry to ${p}`);
      }
    }

    await t.step("dump with each filter lists what conntrack -L lists", async () => {
      await pool(FILTERS, 4, ([args, nonEmpty]) => same(b, ["-L", ...args], nonEmpty));
      // The same filters with the word command and -o labels,extended.
      await pool(
        FILTERS.slice(0, 8),
        4,
        ([args]) => same(b, ["-L", "-o", "labels,extended", ...args]),
      );
    });

    await t.step("the library's filter parts select what conntrack's options select", async () => {
      using ct = Conntrack.open({ netns: ns.name });
      const cases: [DumpFilter, string[]][] = [
        [{ snat: true }, ["-n"]],
        [{ dnat: true }, ["-g"]],
        [{ anyNat: true, family: "ipv4" }, ["-j", "-f", "ipv4"]],
        [{ snat: { address: "10.50.0.3", port: 40006 } }, ["-n", "10.50.0.3:40006"]],
        [{ dnat: { address: "10.50.0.2", port: 8080 } }, ["-g", "10.50.0.2:8080"]],
        [{ anyNat: { address: "10.50.0.3" } }, ["-j", "10.50.0.3"]],
        [{ orig: { src: "10.50.0.0/24", protocol: "udp" } }, ["-s", "10.50.0.0/24", "-p", "udp"]],
        [{ orig: { dst: "10.50.77.2", dstMask: "255.255.0.255" } }, [
          "-d",
          "10.50.77.2",
          "--mask-dst",
          "255.255.0.255",
        ]],
        [{ orig: { src: "fd50::/64" } }, ["-s", "fd50::/64"]],
        [{ labels: [1, 5] }, ["-l", "one,five"]],
        [{ origZone: 5 }, ["--orig-zone", "5"]],
        [{ replyZone: 0, family: "ipv6" }, ["--reply-zone", "0", "-f", "ipv6"]],
        [{ entryZone: 0 }, ["-w", "0"]],
        [{ entryZone: 6, zone: 6 }, ["-w", "6"]],
      ];
      for (const [filter, args] of cases) {
        const theirs = await b.conntrack(["-L", "-o", "id", ...args]);
        // The entry's id is the last id= of a line (ICMP tuples have their own).
        const ids = theirs.stdout.split("\n").filter((l) => l !== "")
          .map((l) => Number([...l.matchAll(/ id=(\d+)/g)].at(-1)![1]));
        const mine = [...ct.dumpSync(filter)].map((f) => f.id!);
        const viaAsync: number[] = [];
        for await (const f of ct.dump(filter)) viaAsync.push(f.id!);
        const what = `${JSON.stringify(filter)} vs ${args.join(" ")}`;
        assert.deepStrictEqual(mine.toSorted(), ids.toSorted(), what);
        assert.deepStrictEqual(viaAsync.toSorted(), ids.toSorted(), what);
        assert(ids.length > 0, `${what}: nothing`);
      }
      // Zone 5 set for the original direction only: the kernel's zone filter (any
      // direction) finds it; conntrack -w 5 does not (entryZone).
      const any = [...ct.dumpSync({ zone: 5 })];
      assert(any.length > 0 && any.every((f) => f.orig.zone === 5 && f.zone === undefined));
      assert.equal([...ct.dumpSync({ entryZone: 5 })].length, 0);
    });

    await t.step(
      "events with NAT, network and label filters show what conntrack -E shows",
      async () => {
        const ctnlCmd = [
          DENO,
          "run",
          "--allow-ffi",
          "--allow-read=/etc/xtables/connlabel.conf",
          CLI,
        ];
        const cases = [
          ["-n"],
          ["-j", "10.50.0.2:6605"],
          ["-g", "-f", "ipv4"],
          ["-s", "10.50.0.0/24", "-p", "udp"],
          ["-l", "one"],
        ];
        const watch = cases.map((args, i) => {
          const a = args.map(quote).join(" ");
          return `timeout -s INT 6 ${
            ctnlCmd.map(quote).join(" ")
          } --netns ${ns.name} events -e NEW ${a} >m${i} 2>/dev/null &
timeout -s INT 6 ip netns exec ${ns.name} conntrack -E -e NEW ${a} >c${i} 2>/dev/null &`;
        });
        const dir = await Deno.makeTempDir({ prefix: "ctnl-filt-events-" });
        try {
          const r = await b.script(`cd ${dir}
${watch.join("\n")}
sleep 3
for p in 5603 5601; do echo x | ip netns exec ${ns.name} socat -u - UDP4-SENDTO:10.50.0.2:$p; done
echo x | ip netns exec ${ns.name} socat -u - UDP4-SENDTO:10.60.0.101:5605
echo x | ip netns exec ${ns.name} socat -u - UDP6-SENDTO:[fd50::2]:5607
wait`);
          assert.equal(r.code, 0, r.stderr);
          for (const [i, args] of cases.entries()) {
            const mine = await Deno.readTextFile(`${dir}/m${i}`);
            const theirs = await Deno.readTextFile(`${dir}/c${i}`);
            assert.equal(mine, theirs, `events ${args.join(" ")}`);
            assert(mine !== "", `events ${args.join(" ")}: none`);
          }
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    );

    await t.step("get -l, get by the other direction's tuple: as conntrack -G", async () => {
      using ct = Conntrack.open({ netns: ns.name });
      const [flow] = [...ct.dumpSync({ orig: { protocol: "udp", dstPort: 5603 } })];
      assert(flow);
      const tuple = ["-p", "udp", "-s", flow.orig.src!, "-d", flow.orig.dst!];
      tuple.push("--sport", String(flow.orig.srcPort), "--dport", "5603");
      await same(b, ["-G", ...tuple, "-l", "one"], true);
      await same(b, ["-G", ...tuple, "-l", "five,one", "-o", "extended"], true);
      const missing = await same(b, ["-G", ...tuple, "-l", "nine"], false);
      assert.equal(missing.code, 1);
      // By the reply tuple given as -s/-d: the kernel finds the entry; conntrack shows nothing.
      const reverse = ["-p", "udp", "-s", flow.orig.dst!, "-d", flow.orig.src!];
      reverse.push("--sport", "5603", "--dport", String(flow.orig.srcPort));
      const reversed = await same(b, ["-G", ...reverse], false);
      assert.equal(reversed.code, 1);
    });

    await t.step("bad parameters are exit 2 for both", async () => {
      await pool(BAD, 4, async (args) => {
        const [mine, theirs] = await Promise.all([b.ctnl(args), b.conntrack(args)]);
        const what = args.join(" ");
        assert.equal(theirs.code, 2, `conntrack ${what}: ${theirs.stderr}`);
        assert.equal(mine.code, 2, `ctnl ${what}: ${mine.stderr}`);
        assert.equal(mine.stdout, "", what);
        assert.match(mine.stderr, /^ctnl: [^\n]+\n$/, what);
      });
    });

    /** ctnl then conntrack, each from the same state (`undo` puts it back): same output, count, code. */
    const turn = async (args: string[], undo: string[] | undefined, count: number | undefined) => {
      const mine = await b.ctnl(args);
      if (undo !== undefined) assert.equal((await b.ctnl(undo)).code, 0, `undo ${undo.join(" ")}`);
      const theirs = await b.conntrack(args);
      const what = args.join(" ");
      assert.equal(mine.code, theirs.code, `${what}:\n${mine.stderr}\n${theirs.stderr}`);
      assert.equal(masked(mine.stdout), masked(theirs.stdout), what);
      assert.equal(mine.count, count, `ctnl ${what}: ${mine.stderr}`);
      assert.equal(theirs.count, count, `conntrack ${what}: ${theirs.stderr}`);
    };

    await t.step(
      "update --label-add/--label-del: conntrack -L lists the labels ctnl set",
      async () => {
        // conntrack 1.4.7's own -U --label-add/--label-del fail on this kernel
        // ("Operation failed: Operation not supported"), so ctnl's changes are
        // checked by listing them with conntrack.
        const entry = ["-p", "udp", "--dport", "5606"];
        const sel = ["-U", "-p", "udp", "-n", "10.50.0.3:40006"]; // the SNAT-ed entry to port 5606
        const step = async (args: string[], count: number, labels: string) => {
          const mine = await b.ctnl([...sel, ...args]);
          assert.equal(mine.count, count, `${args.join(" ")}: ${mine.stderr}`);
          assert.equal(mine.code, count === 0 ? 1 : 0, args.join(" "));
          const listed = await same(b, ["-L", "-o", "labels", ...entry], true);
          assert.match(listed.stdout, new RegExp(`${labels}\n$`), args.join(" "));
          const use = (text: string) => masked(text).replace(/ use=\d+/, "");
          if (count > 0) assert.equal(use(mine.stdout), use(listed.stdout), args.join(" "));
          else assert.equal(mine.stdout, "");
        };
        await step(["--label-add", "five"], 1, " use=1 labels=five");
        await step(["--label-add", "five"], 0, " use=1 labels=five"); // nothing to change
        await step(["--label-add", "one,nine"], 1, " labels=one,five,nine");
        await step(["--label-del", "five"], 1, " labels=one,nine");
        await step(["--label-del", "five"], 0, " labels=one,nine");
        await step(["--label-del"], 1, " use=1"); // every label
        await step(["--label-del"], 0, " use=1");
        await step(["--label-add", "one", "--label-add", "nine"], 1, " labels=one,nine");
        // -l selects by label: the entry to 5603 has one and five.
        const labelled = await b.conntrack(["-L", "-l", "one,five"]);
        const byLabel = await b.ctnl(["-U", "-l", "one,five", "--label-add", "nine"]);
        assert.equal(byLabel.count, labelled.count, byLabel.stderr);
        await same(b, ["-L", "-l", "nine"], true);
        await same(b, ["-L", "-l", "one,five,nine", "-o", "extended"], true);
        const both = await b.ctnl([...sel, "--label-add", "one", "--label-del", "five"]);
        assert.equal(both.code, 1, "--label-add with --label-del: conntrack's OTHER_PROBLEM");
      },
    );

    /** Makes an entry with ctnl and with conntrack: the same entry either way, as both list it. */
    const created = async (command: string, sel: string[], extra: string[]) => {
      const list = ["-L", "-o", "extended,labels", ...sel];
      const mine = await b.ctnl([command, ...sel, ...extra]);
      assert.equal(mine.code, 0, `ctnl ${command} ${[...sel, ...extra].join(" ")}: ${mine.stderr}`);
      const afterMine = await same(b, list, true);
      assert.equal((await b.conntrack(["-D", ...sel])).code, 0);
      const theirs = await b.conntrack([command, ...sel, ...extra]);
      assert.equal(theirs.code, 0, `conntrack ${command}: ${theirs.stderr}`);
      assert.equal(mine.count, theirs.count);
      const afterTheirs = await same(b, list, true);
      assert.equal(
        masked(afterMine.stdout),
        masked(afterTheirs.stdout),
        `${command} ${extra.join(" ")}`,
      );
      assert.equal((await b.conntrack(["-D", ...sel])).code, 0);
    };

    await t.step(
      "create with NAT, per-direction zones, labels, GRE keys makes conntrack's entry",
      async () => {
        const udp = (
          sport: number,
        ) => [
          "-p",
          "udp",
          "-s",
          "10.50.0.1",
          "-d",
          "10.50.0.2",
          "--sport",
          String(sport),
          "--dport",
          "53",
        ];
        const tcp = [
          "-p",
          "tcp",
          "-s",
          "10.50.0.1",
          "-d",
          "10.50.0.2",
          "--sport",
          "41000",
          "--dport",
          "80",
        ];
        const est = ["-t", "100", "--state", "ESTABLISHED"];
        await created("-I", tcp, [...est, "--dst-nat", "10.50.0.3:8080"]);
        await created("-I", tcp, [...est, "--src-nat", "10.50.0.3:40000"]);
        await created("-I", udp(41001), ["-t", "100", "--src-nat", "10.50.0.3"]);
        await created("-I", udp(41002), ["-t", "100", "-n", "10.50.0.3", "-g", "10.50.0.1:99"]);
        await created("-I", udp(41003), ["-t", "100", "--orig-zone", "3"]);
        await created("-I", udp(41004), ["-t", "100", "--reply-zone", "4"]);
        // A zone for each direction: the kernel refuses it (EINVAL) from both tools.
        await turn(
          ["-I", ...udp(41005), "-t", "100", "--orig-zone", "3", "--reply-zone", "4"],
          undefined,
          undefined,
        );
        await created("-I", udp(41006), ["-t", "100", "--label-add", "one,five"]);
        await created("-I", udp(41007), [
          "-t",
          "100",
          "--label-add",
          "one",
          "--label-add",
          "nine",
          "-m",
          "3",
        ]);
        const v6 = [
          "-p",
          "udp",
          "-s",
          "fd50::1",
          "-d",
          "fd50::2",
          "--sport",
          "41008",
          "--dport",
          "53",
        ];
        await created("-I", v6, ["-t", "100", "--dst-nat", "[fd50::3]:5353"]);
        // SCTP: state and both verification tags (the listing does not show the tags).
        const sctp = [
          "-p",
          "sctp",
          "-s",
          "10.50.0.1",
          "-d",
          "10.50.0.2",
          "--sport",
          "41010",
          "--dport",
          "9",
        ];
        const sctpInfo = [
          "-t",
          "100",
          "--state",
          "ESTABLISHED",
          "--orig-vtag",
          "17",
          "--reply-vtag",
          "0x12",
        ];
        const tagged = await b.ctnl(["-I", ...sctp, ...sctpInfo]);
        assert.equal(tagged.code, 2, "a verification tag is decimal, as conntrack's atoi reads it");
        sctpInfo[7] = "18";
        await created("-I", sctp, sctpInfo);
        assert.equal((await b.ctnl(["-I", ...sctp, ...sctpInfo])).code, 0);
        {
          using ct = Conntrack.open({ netns: ns.name });
          const [flow] = [...ct.dumpSync({ orig: { protocol: "sctp", srcPort: 41010 } })];
          assert.deepStrictEqual(
            [flow?.sctp?.stateName, flow?.sctp?.vtagOrig, flow?.sctp?.vtagReply],
            ["ESTABLISHED", 17, 18],
          );
        }
        // --state of an SCTP entry (which the attribute walk leaves to the decoder), and of
        // TCP entries beside it (read from the bytes), select what conntrack's do.
        await same(b, ["-L", "-p", "sctp", "--state", "ESTABLISHED"], true);
        await same(b, ["-L", "-p", "sctp", "--state", "CLOSED"], false);
        await same(b, ["-L", "-p", "tcp", "--state", "ESTABLISHED"]);
        await same(b, ["-L", "-p", "tcp", "--state", "ESTABLISHED", "-o", "extended"]);
        assert.equal((await b.conntrack(["-D", ...sctp])).code, 0);
        // DCCP: this kernel tracks it as a generic protocol (no ports, no state).
        const dccp = [
          "-p",
          "dccp",
          "-s",
          "10.50.0.1",
          "-d",
          "10.50.0.2",
          "--sport",
          "41011",
          "--dport",
          "9",
        ];
        const dccpInfo = ["-t", "100", "--state", "OPEN", "--role", "client"];
        const mineDccp = await b.ctnl(["-I", ...dccp, ...dccpInfo]);
        assert.equal(mineDccp.code, 0, mineDccp.stderr);
        const listedMine = await same(b, ["-L", "-p", "dccp"], true);
        assert.equal((await b.conntrack(["-D", "-p", "dccp"])).count, 1);
        assert.equal((await b.conntrack(["-I", ...dccp, ...dccpInfo])).code, 0);
        const listedTheirs = await same(b, ["-L", "-p", "dccp"], true);
        assert.equal(masked(listedMine.stdout), masked(listedTheirs.stdout));
        assert.equal((await b.conntrack(["-D", "-p", "dccp"])).count, 1);
        const gre = [
          "-p",
          "gre",
          "-s",
          "10.50.0.1",
          "-d",
          "10.50.0.2",
          "--srckey",
          "5",
          "--dstkey",
          "0x6",
        ];
        await created("-I", gre, ["-t", "100"]);
        assert.equal((await b.ctnl(["-I", ...gre, "-t", "100"])).code, 0);
        await same(b, ["-L", "-p", "gre", "--srckey", "5"], true);
        // conntrack -L compares no GRE keys (libnetfilter_conntrack compares the
        // ports of TCP, UDP, UDP-Lite, DCCP, SCTP only) and lists the entry;
        // ctnl selects by them.
        const other = await b.ctnl(["-L", "-p", "gre", "--dstkey", "7"]);
        assert.equal(other.stdout, "");
        assert.equal(other.count, 0);
        assert.equal((await b.conntrack(["-L", "-p", "gre", "--dstkey", "7"])).count, 1);
        await same(b, ["-L", "-p", "gre", "--reply-key-src", "6"], true);
        await same(b, ["-G", ...gre], true);
        const deleted = await b.ctnl(["-D", ...gre]);
        assert.equal(deleted.count, 1, deleted.stderr);
        assert.equal((await b.conntrack(["-L", "-p", "gre"])).count, 0);
      },
    );

    await t.step("add (-A) creates, or counts 0 and succeeds when the entry exists", async () => {
      const udp = [
        "-p",
        "udp",
        "-s",
        "10.50.0.1",
        "-d",
        "10.50.0.2",
        "--sport",
        "42000",
        "--dport",
        "53",
        "-t",
        "100",
      ];
      await turn(["-A", ...udp], ["-D", ...udp.slice(0, -2)], 1);
      await turn(["-A", ...udp], undefined, 0);
      await turn(["--add", ...udp, "-m", "9"], undefined, 0);
      await same(b, ["-L", "-p", "udp", "--sport", "42000"], true);
    });

    await t.step("-z lists the counters and zeroes them, as conntrack -L -z", async () => {
      for (const [family, first] of [["ipv4", "ctnl"], ["ipv6", "conntrack"]] as const) {
        const before = await b.conntrack(["-L", "-f", family]);
        const zeroing = first === "ctnl"
          ? await b.ctnl(["-L", "-z", "-f", family])
          : await b.conntrack(["-L", "-z", "-f", family]);
        // The kernel zeroes an entry's counters as it writes its message; the
        // entry that does not fit at the end of a batch is written again in the
        // next one, with counters already 0 (either tool; where batches end
        // depends on the receive buffer). Such an entry may show 0 here.
        const a = masked(zeroing.stdout).split("\n"), e = masked(before.stdout).split("\n");
        assert.equal(a.length, e.length, `-z -f ${family}: lines`);
        const zeroed = (l: string) => l.replace(/ packets=\d+ bytes=\d+/g, " packets=0 bytes=0");
        let lost = 0;
        for (const [i, line] of a.entries()) {
          if (line === e[i]) continue;
          assert.equal(line, zeroed(e[i]!), `-z -f ${family}: line ${i + 1}`);
          lost++;
        }
        assert(lost <= 2, `-z -f ${family}: ${lost} entries without counts`);
        const after = await same(b, ["-L", "-f", family], true);
        assert.match(after.stdout, / packets=0 bytes=0 /);
        assert.doesNotMatch(after.stdout, / packets=[1-9]/, `${family} after -z`);
      }
      await same(b, ["-L", "-z", "-n"], true);
    });
    await t.step(
      "delete with the new filters deletes what conntrack -L lists with them",
      async () => {
        const cases = [
          ["-l", "one,five"],
          ["-p", "udp", "-s", "10.50.0.0/24", "--orig-zone", "5"],
          ["-g", "10.50.0.2:6605"],
          ["-n", "fd50::3", "-p", "udp"],
        ];
        for (const args of cases) {
          const before = await b.conntrack(["-L", ...args]);
          assert((before.count ?? 0) > 0, `nothing to delete with ${args.join(" ")}`);
          const deleted = await b.ctnl(["-D", ...args]);
          assert.equal(deleted.code, 0, deleted.stderr);
          assert.equal(deleted.count, before.count, args.join(" "));
          // conntrack -D prints deleted entries without labels, as ctnl does.
          const unlabelled = masked(before.stdout).replace(/ labels=\S+$/gm, "");
          assert.equal(masked(deleted.stdout), unlabelled, args.join(" "));
          assert.equal((await b.conntrack(["-L", ...args])).count, 0, args.join(" "));
          const again = await b.ctnl(["-D", ...args]);
          assert.deepStrictEqual([again.code, again.count], [1, 0], "nothing left: exit 1");
        }
      },
    );
  } finally {
    await b.remove();
    assert(await ns.delete(), "namespace deleted");
  }
});
