/**
 * The expectation, dying and unconfirmed tables against conntrack-tools, on
 * real expectations: the ftp helper (PORT, PASV, EPRT, EPSV over IPv4 and
 * IPv6, and PASV through a DNAT) and the tftp helper (IPv4, IPv6), made by
 * tests/fixtures/expect_traffic.ts in a fresh namespace; entries held on the
 * dying list by a destroy-event listener that does not read. Root only.
 */

import assert from "node:assert/strict";
import { Conntrack, type Expectation, formatExpectation, formatFlow } from "../mod.ts";
import { Netns, run, type RunResult } from "./_ns.ts";
import { expectNamespace } from "./_expect_ns.ts";
import { masked } from "./_expect_text.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

/** ctnl in `ns` (through --netns). */
function ctnl(ns: Netns, args: string[]): Promise<RunResult> {
  return run([
    Deno.execPath(),
    "run",
    "--allow-ffi",
    "--allow-read",
    CLI,
    ...args,
    "--netns",
    ns.name,
  ]);
}

/** The summary line, whoever printed it. */
function summary(stderr: string): string {
  return stderr.replace("conntrack v1.4.7 (conntrack-tools): ", "")
    .replace(/ctnl v\S+ \(@ctnl\/conntrack\): /, "").replace(/^ctnl: /, "");
}

async function same(ns: Netns, args: string[], lines?: number): Promise<RunResult> {
  const [theirs, ours] = await Promise.all([ns.run(["conntrack", ...args]), ctnl(ns, args)]);
  const what = `ctnl ${args.join(" ")}`;
  assert.equal(ours.code, theirs.code, `${what}: exit status\n${ours.stderr}`);
  assert.deepEqual(masked(ours.stdout), masked(theirs.stdout), what);
  assert.equal(summary(ours.stderr), summary(theirs.stderr), `${what}: stderr`);
  if (lines !== undefined) assert.equal(masked(theirs.stdout).length, lines, `${what}: lines`);
  return ours;
}

/** conntrack's -G/-D expect arguments naming `e` (it wants the reply ports of tcp/udp too). */
function named(e: Expectation): string[] {
  const t = e.tuple;
  return [
    "-s",
    t.src!,
    "-d",
    t.dst!,
    "-p",
    String(t.protocol),
    "--sport",
    String(t.srcPort),
    "--dport",
    String(t.dstPort),
  ];
}
const REPLY_PORTS = ["--reply-port-src", "1", "--reply-port-dst", "1"];

Deno.test("expectations of real ftp and tftp traffic: list, count, stats and get as conntrack", async () => {
  const ns = await expectNamespace("expect-list");
  try {
    await same(ns, ["-L", "expect"], 5); // pasv, port, pasv and tftp through DNAT, tftp: IPv4 only, as conntrack
    await same(ns, ["-L", "expect", "-f", "ipv6"], 3); // epsv, eprt, tftp
    await same(ns, ["-L", "expect", "-f", "ipv4", "-o", "extended,id"], 5); // keywords without effect
    await same(ns, ["-C", "expect"]);
    // -o xml: the header, one <flow> a line, </expect>; <when> with -o timestamp.
    await same(ns, ["-L", "expect", "-o", "xml"], 5 + 3);
    const xml = await same(ns, ["-L", "expect", "-f", "ipv6", "-o", "xml,timestamp"], 3 + 3);
    assert.match(
      xml.stdout,
      /<meta><helper-name>ftp<\/helper-name><timeout>\d+<\/timeout><class>0<\/class><when><hour>/,
    );
    // -o timestamp: conntrack's "[%-8ld.%-6ld]\t" of the moment, then the line.
    const stamped = await ctnl(ns, ["-L", "expect", "-o", "timestamp"]);
    const plain = (await ns.run(["conntrack", "-L", "expect"])).stdout;
    const lines = stamped.stdout.trimEnd().split("\n");
    for (const l of lines) assert.match(l, /^\[\d{10}\.[\d ]{6}\]\t\d+ proto=/);
    assert.deepEqual(masked(lines.map((l) => l.split("\t")[1]!)), masked(plain));
    await same(ns, ["-S", "expect"]);

    using ct = Conntrack.open({ netns: ns.name });
    const all = [...ct.expectations.dumpSync()];
    assert.equal(all.length, 8);
    const theirs = (await ns.run(["conntrack", "-L", "expect"])).stdout +
      (await ns.run(["conntrack", "-L", "expect", "-f", "ipv6"])).stdout;
    assert.deepEqual(masked(all.map((e) => formatExpectation(e)).join("\n")), masked(theirs));
    assert.equal(await ct.expectations.count(), 8);
    assert.equal(ct.expectations.countSync({ family: "ipv6" }), 3);
    assert.deepEqual(
      all.map((e) => e.helper).sort(),
      ["ftp", "ftp", "ftp", "ftp", "ftp", "tftp", "tftp", "tftp"],
    );
    // PORT/EPRT expect the server to connect back; PASV/EPSV the client to connect.
    assert(all.some((e) => e.tuple.dstPort === 40001 && e.tuple.src === "10.50.0.2"));
    assert(all.some((e) => e.tuple.dstPort === 40002 && e.family === "ipv6"));
    // Through a DNAT the helpers (nf_nat_ftp, nf_nat_tftp) save where to map the
    // expected connection: ftp in the original direction, tftp in the reply one.
    const nat = all.filter((e) => e.nat !== undefined).sort((a, b) => a.nat!.dir - b.nat!.dir);
    assert.deepEqual(nat.map((e) => [e.helper, e.nat!.direction, e.master.dst, e.fn]), [
      ["ftp", "original", "10.60.0.100", "nat-follow-master"],
      ["tftp", "reply", "10.60.0.100", "nat-follow-master"],
    ]);
    assert.equal(nat[0]!.nat!.tuple.srcPort, nat[0]!.tuple.dstPort);
    for (const e of all) {
      assert.equal(e.mask.srcPort, 0);
      assert.equal(e.mask.dstPort, 65535);
      assert.equal(e.flags, 0);
      assert.equal(typeof e.id, "number");
    }
    // The JSON of a dump is the library's Expectation.
    const json = (await ctnl(ns, ["dump", "expect", "-f", "ipv6", "--json"])).stdout.trim().split(
      "\n",
    );
    assert.deepEqual(
      json.map((l) => JSON.parse(l).tuple.dstPort).sort(),
      all.filter((e) => e.family === "ipv6").map((e) => e.tuple.dstPort).sort(),
    );

    // get: the library by a dumped expectation and by its tuple; the CLI as conntrack -G expect.
    for (
      const e of [
        all.find((e) => e.family === "ipv4")!,
        all.find((e) => e.family === "ipv6")!,
      ]
    ) {
      assert.equal(
        formatExpectation(await ct.expectations.get(e)).replace(/^\d+/, ""),
        formatExpectation(e).replace(/^\d+/, ""),
      );
      assert.equal(ct.expectations.getSync(e.tuple).id, e.id);
      await same(ns, ["-G", "expect", ...named(e), ...REPLY_PORTS], 1);
      // conntrack -G expect takes no -o (Illegal option `--output'): exit 2, and ctnl too.
      const getXml = ["-G", "expect", ...named(e), ...REPLY_PORTS, "-o", "xml"];
      assert.equal((await ns.run(["conntrack", ...getXml])).code, 2);
      assert.equal((await ctnl(ns, getXml)).code, 2);
    }
    const missing = { ...all[0]!, tuple: { ...all[0]!.tuple, dstPort: 1 } };
    await same(ns, ["-G", "expect", ...named(missing), ...REPLY_PORTS], 0); // Operation failed: No such file…
    await assert.rejects(
      ct.expectations.get(missing.tuple),
      (e: Error) => /ENOENT/.test(e.message),
    );
    // Filters: by master in the kernel, by helper in ctnl.
    const tftp = all.find((e) => e.helper === "tftp" && e.family === "ipv4")!;
    assert.deepEqual([...ct.expectations.dumpSync({ master: tftp.master })].map((e) => e.id), [
      tftp.id,
    ]);
    assert.equal((await Array.fromAsync(ct.expectations.dump({ helper: "tftp" }))).length, 3);
  } finally {
    await ns.delete();
  }
});

Deno.test("create, delete and flush, checked with conntrack; events as conntrack -E expect", async () => {
  const ns = await expectNamespace("expect-change", ["pasv4", "port4", "epsv6"]);
  const listen = (cmd: string[]) =>
    new Deno.Command("ip", {
      args: ["netns", "exec", ns.name, ...cmd],
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
  const ctnlE = [Deno.execPath(), "run", "--allow-ffi", "--allow-read", CLI, "-E", "expect"];
  const theirsE = listen(["conntrack", "-E", "expect"]);
  const oursE = listen(ctnlE);
  const theirsX = listen(["conntrack", "-E", "expect", "-o", "xml"]);
  const oursX = listen([...ctnlE, "-o", "xml"]);
  try {
    await new Promise((r) => setTimeout(r, 2500)); // both subscribed
    using ct = Conntrack.open({ netns: ns.name });
    const before = [...ct.expectations.dumpSync()];
    const port = before.find((e) => e.tuple.dstPort === 40001)!;
    const epsv = before.find((e) => e.family === "ipv6")!;

    // conntrack -I expect (its expected tuple gets a stray protocol number), listed by ctnl.
    const m = port.master;
    const made = await ns.run([
      "conntrack",
      "-I",
      "expect",
      "-s",
      m.src!,
      "-d",
      m.dst!,
      "-p",
      "tcp",
      "--sport",
      String(m.srcPort),
      "--dport",
      "21",
      "--tuple-src",
      m.dst!,
      "--tuple-dst",
      m.src!,
      "--tuple-port-src",
      "0",
      "--tuple-port-dst",
      "41000",
      "--mask-src",
      "255.255.255.255",
      "--mask-dst",
      "255.255.255.255",
      "--mask-port-src",
      "0",
      "--mask-port-dst",
      "65535",
      "-t",
      "100",
    ]);
    assert.equal(made.code, 0, made.stderr);
    await same(ns, ["-L", "expect"], 2);

    // ctnl create expect (IPv6, on the EPSV master), listed and got by conntrack.
    const v6 = epsv.master;
    const created = await ctnl(ns, [
      "create",
      "expect",
      "-s",
      v6.src!,
      "-d",
      v6.dst!,
      "-p",
      "tcp",
      "--sport",
      String(v6.srcPort),
      "--dport",
      "21",
      "--tuple-src",
      v6.src!,
      "--tuple-dst",
      v6.dst!,
      "--tuple-port-src",
      "0",
      "--tuple-port-dst",
      "45000",
      "--mask-port-src",
      "0",
      "-t",
      "60",
    ]);
    assert.equal(created.code, 0, created.stderr);
    const made6 = ["-s", v6.src!, "-d", v6.dst!, "-p", "tcp", "--sport", "0", "--dport", "45000"];
    const listed = (await ns.run(["conntrack", "-L", "expect", "-f", "ipv6"])).stdout;
    assert.match(
      listed,
      /proto=6 src=fd50::2 dst=fd50::2 sport=0 dport=45000 mask-src=ffff:(ffff:){6}ffff mask-dst=/,
    );
    const got = await ns.run(["conntrack", "-G", "expect", ...made6, ...REPLY_PORTS]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(masked(got.stdout).length, 1);
    // The library creates from a dumped master: flags by name, helper, class, NAT, fn.
    await ct.expectations.create({
      master: port.master,
      tuple: { src: m.dst!, dst: m.src!, protocol: "tcp", srcPort: 0, dstPort: 42000 },
      mask: { srcPort: 0 },
      flags: ["PERMANENT", "INACTIVE"],
      helper: "ftp",
      class: 0,
      nat: { direction: "reply", src: "10.50.0.9", srcPort: 5555 },
      fn: "nat-follow-master",
    });
    assert.match(
      (await ns.run(["conntrack", "-L", "expect"])).stdout,
      /dport=42000 .* PERMANENT,INACTIVE class=0 helper=ftp/,
    );
    const [rich] = ct.expectations.dumpSync({ master: port.master });
    assert.deepEqual(rich!.flagNames, ["PERMANENT", "INACTIVE"]);
    assert.equal(rich!.fn, "nat-follow-master");
    assert.equal(rich!.nat!.direction, "reply");
    assert.deepEqual([rich!.nat!.tuple.src, rich!.nat!.tuple.srcPort], ["10.50.0.9", 5555]);
    await same(ns, ["-L", "expect"], 2); // the ftp helper keeps one per master: 41000 went

    // Bad input: exit 2 and one line, nothing sent.
    const bad = await ctnl(ns, ["create", "expect", "-s", v6.src!, "-p", "tcp"]);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr.trim().split("\n").length, 1);
    const noMaster = await ctnl(ns, [
      "-I",
      "expect",
      "-s",
      "10.50.0.1",
      "-d",
      "10.50.0.2",
      "-p",
      "tcp",
      "--sport",
      "1",
      "--dport",
      "21",
      "--tuple-src",
      "10.50.0.1",
      "--tuple-dst",
      "10.50.0.2",
      "--tuple-port-src",
      "0",
      "--tuple-port-dst",
      "1",
    ]);
    assert.equal(noMaster.code, 1);
    assert.equal(noMaster.stderr, "ctnl: Operation failed: master conntrack not found\n");

    // delete: ctnl deletes, conntrack no longer finds it.
    const del = await ctnl(ns, ["delete", "expect", ...made6]);
    assert.equal(del.code, 0, del.stderr);
    assert.match(del.stderr, /1 expectations have been deleted\.$/m);
    const gone = await ns.run(["conntrack", "-G", "expect", ...made6, ...REPLY_PORTS]);
    assert.equal(gone.code, 1);
    const again = await ctnl(ns, ["delete", "expect", ...made6]);
    assert.equal(again.stderr, "ctnl: Operation failed: No such file or directory\n");
    assert.equal(again.code, 1);
    // deleteWhere: the library's "every match".
    assert.equal(await ct.expectations.deleteWhere({ family: "ipv4", helper: "ftp" }), 2);
    await same(ns, ["-L", "expect"], 0);

    // flush: ctnl empties, conntrack sees nothing.
    await ct.expectations.create({
      master: port.master,
      tuple: { src: m.dst!, dst: m.src!, protocol: "tcp", srcPort: 0, dstPort: 43000 },
      mask: { srcPort: 0 },
    });
    assert.equal(await ct.expectations.count(), 1);
    const flushed = await ctnl(ns, ["flush", "expect"]);
    assert.match(flushed.stderr, /expectation table has been emptied\.$/m);
    assert.equal(masked((await ns.run(["conntrack", "-L", "expect"])).stdout).length, 0);
    assert.equal(
      masked((await ns.run(["conntrack", "-L", "expect", "-f", "ipv6"])).stdout).length,
      0,
    );
    await same(ns, ["-S", "expect"]);

    await new Promise((r) => setTimeout(r, 500)); // the last events delivered
    const dec = new TextDecoder();
    for (const [mine, conntrack, min] of [[oursE, theirsE, 8], [oursX, theirsX, 8 + 3]] as const) {
      conntrack.kill("SIGINT");
      mine.kill("SIGINT");
      const [t, o] = await Promise.all([conntrack.output(), mine.output()]);
      const theirs = dec.decode(t.stdout), ours = dec.decode(o.stdout);
      assert(masked(theirs).length >= min, theirs);
      // Byte for byte (countdowns masked), in the order the kernel sent them.
      assert.deepEqual(masked(ours, true), masked(theirs, true));
      assert.equal(summary(dec.decode(o.stderr)), summary(dec.decode(t.stderr)));
      assert.equal(o.code, 0);
    }
  } finally {
    for (const c of [theirsE, oursE, theirsX, oursX]) {
      try {
        c.kill("SIGKILL");
      } catch { /* already ended */ }
    }
    await ns.delete();
  }
});

/** A destroy-event listener that never reads, asking for delivery errors: destroyed entries wait on the dying list. */
const HOLD_DYING = `
import socket, time
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
s.setsockopt(270, 4, 1)  # SOL_NETLINK, NETLINK_BROADCAST_ERROR
s.bind((0, 4))  # NF_NETLINK_CONNTRACK_DESTROY
print("ready", flush=True)
time.sleep(600)
`;

Deno.test("dying list: entries held by an undelivered destroy event, as conntrack -L dying; empty lists", async () => {
  const ns = await Netns.create("expect-dying");
  try {
    // Empty lists first.
    await same(ns, ["-L", "dying"], 0);
    await same(ns, ["-L", "unconfirmed"], 0);
    await same(ns, ["-L", "expect", "-o", "xml"], 0); // no header for nothing
    await same(ns, ["-L", "dying", "-o", "xml"], 0);
    await ns.sysctl({ nf_conntrack_events: 1 });
    await ns.spawn(["python3", "-c", HOLD_DYING]);
    using ct = Conntrack.open({ netns: ns.name });
    const specs = Array.from({ length: 20 }, (_, i) => ({
      orig: { src: "10.1.0.1", dst: "10.2.0.1", protocol: "udp", srcPort: 1000 + i, dstPort: 53 },
      timeout: 600,
    }));
    await ct.createMany(specs);
    await ct.flush(); // the first events fill the listener's buffer; the rest cannot be delivered
    const dying = await Array.fromAsync(ct.dumpList("dying"));
    assert(dying.length >= 10, `dying: ${dying.length}`);
    assert.equal([...ct.dumpSync()].length, 0, "not in the table any more");
    await same(ns, ["-L", "dying"], dying.length);
    await same(ns, ["-L", "dying", "-o", "xml"], dying.length + 2); // no </conntrack> after these
    await same(ns, ["-L", "unconfirmed"], 0);
    // Filters apply in ctnl, to the same Flow type.
    const one = dying[0]!;
    const picked = [
      ...ct.dumpListSync("dying", { orig: { protocol: "udp", srcPort: one.orig.srcPort! } }),
    ];
    assert.deepEqual(masked(picked.map((f) => formatFlow(f))), masked([formatFlow(one)]));
    const theirs =
      (await ns.run(["conntrack", "-L", "dying", "-p", "udp", "--sport", String(one.orig.srcPort)]))
        .stdout;
    assert.equal(masked(theirs).length, 1);
    await same(ns, ["-L", "dying", "-p", "udp", "--sport", String(one.orig.srcPort)], 1);
    const json = (await ctnl(ns, ["dump", "dying", "--json"])).stdout.trimEnd().split("\n");
    assert.deepEqual(
      json.map((l) => JSON.parse(l).orig.srcPort).sort(),
      dying.map((f) => f.orig.srcPort).sort(),
    );
    const refused = await ctnl(ns, ["-G", "dying"]);
    assert.equal(refused.code, 2);
  } finally {
    await ns.delete();
  }
});
