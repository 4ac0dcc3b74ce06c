/**
 * The filter parts and changes of issue 12 without a kernel: what runs
 * where (planDump), what a dump of the captured table (tests/fixtures/
 * dump.bin, through the fake kernel) selects — checked against the
 * conntrack text captured beside it —, the requests of -z, of create with
 * NAT, zones and labels, of label removal; bad arguments of the library and
 * of the CLI.
 *
 * @module
 */

import assert from "node:assert/strict";
import { main } from "../../cli.ts";
import { parseLabelMap } from "../../cli/labels.ts";
import { type DumpFilter, validateFilter } from "../../mod.ts";
import { openWithSockets } from "../../src/conntrack.ts";
import * as C from "../../src/constants.ts";
import { decodeFlow } from "../../src/decode.ts";
import { labelBits } from "../../src/format.ts";
import { NLM_F_DUMP } from "../../src/netlink.ts";
import { ack, FakeKernel, replay } from "../_fake_kernel.ts";

const CT = C.NFNL_SUBSYS_CTNETLINK << 8;
const UDP = ["-p", "udp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--sport", "1", "--dport", "2"];
const RELEASE = { kernelRelease: "6.18.0" };
/** What conntrack printed of the captured dump, one entry a line. */
const TEXT = Deno.readTextFileSync(new URL("../fixtures/dump.conntrack.txt", import.meta.url))
  .split("\n").filter((l) => l !== "");

/** A fake kernel that answers every dump with the capture and ACKs the rest. */
function kernel(): FakeKernel {
  return new FakeKernel((request) =>
    (request.flags & NLM_F_DUMP) === NLM_F_DUMP ? replay("dump.bin", request) : [ack(request)]
  );
}

/** The ids of what a dump of the capture with `filter` returns. */
function selected(filter: DumpFilter): number[] {
  using ct = openWithSockets(kernel().open, RELEASE);
  return [...ct.dumpSync(filter)].map((f) => f.id!).sort((a, b) => a - b);
}

/** The ids of the captured text lines that `keep` accepts. */
function lines(keep: (line: string) => boolean): number[] {
  return TEXT.filter(keep).map((l) => Number(/ id=(\d+)$/.exec(l)![1])).sort((a, b) => a - b);
}

/** The fields of a line's direction (`0` original, `1` reply). */
function side(line: string, dir: 0 | 1): Record<string, string> {
  const parts = line.split(/ (?=src=)/).slice(1);
  return Object.fromEntries(
    [...parts[dir]!.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]),
  );
}

Deno.test("planDump: networks, NAT, labels and per-direction zones run in userspace, with reasons", () => {
  using ct = openWithSockets(kernel().open, RELEASE);
  const plan = ct.planDump({
    family: "ipv4",
    zone: 7,
    entryZone: 7,
    origZone: 5,
    orig: { src: "10.0.0.0/8", dst: "10.0.0.2", protocol: "tcp" },
    snat: true,
    anyNat: { port: 80 },
    labels: [1, 5],
  });
  assert.deepStrictEqual(plan.kernel, ["family", "zone", "orig.dst", "orig.protocol"]);
  assert.deepStrictEqual(plan.userspace.map((u) => u.part), [
    "orig.src",
    "entryZone",
    "origZone",
    "snat",
    "anyNat",
    "labels",
  ]);
  assert.match(plan.userspace[0]!.reason, /no netmask/);
  // A prefix of every bit, or a mask of all ones, is an exact match: the kernel's.
  assert.deepStrictEqual(ct.planDump({ orig: { src: "10.0.0.1/32" } }).kernel, [
    "family",
    "orig.src",
  ]);
  assert.deepStrictEqual(
    ct.planDump({ orig: { dst: "10.0.0.1", dstMask: "255.255.255.255" } }).kernel,
    ["family", "orig.dst"],
  );
});

Deno.test("dump of the captured table: networks and masks select what the text says", () => {
  const src = (line: string) => side(line, 0).src!;
  const dst = (line: string) => side(line, 0).dst!;
  assert.deepStrictEqual(
    selected({ orig: { src: "10.50.0.0/24" } }),
    lines((l) => src(l).startsWith("10.50.0.")),
  );
  assert.deepStrictEqual(
    selected({ orig: { dst: "10.60.0.0/16" } }),
    lines((l) => dst(l).startsWith("10.60.")),
  );
  assert.deepStrictEqual(
    selected({ orig: { src: "0.0.0.0/0" } }),
    lines((l) => l.startsWith("ipv4")),
  );
  assert.deepStrictEqual(
    selected({ orig: { src: "fd50::1", srcMask: "ffff:ffff:ffff:ffff::" } }),
    lines((l) => src(l).startsWith("fd50::")),
  );
  assert.deepStrictEqual(
    selected({ orig: { src: "fd50::2/128" } }),
    lines((l) => src(l) === "fd50::2"),
  );
  // Odd prefixes: 10.50.0.0/7 holds 10.x and 11.x.
  assert.deepStrictEqual(
    selected({ orig: { dst: "11.0.0.0/7" } }),
    lines((l) => l.startsWith("ipv4")),
  );
  assert.deepStrictEqual(
    selected({ orig: { dst: "10.50.0.3/31" } }),
    lines((l) => dst(l) === "10.50.0.2"),
  );
});

Deno.test("dump of the captured table: NAT by the reply tuple, as conntrack compares it", () => {
  const reply = (line: string) => side(line, 1);
  const orig = (line: string) => side(line, 0);
  // Destination NAT to 10.50.0.2: the reply comes from it, the original went elsewhere.
  assert.deepStrictEqual(
    selected({ dnat: { address: "10.50.0.2" } }),
    lines((l) => reply(l).src === "10.50.0.2" && orig(l).dst !== "10.50.0.2"),
  );
  assert.deepStrictEqual(
    selected({ dnat: { address: "10.50.0.2", port: 8080 } }),
    lines((l) => orig(l).dport === "8081"),
  );
  assert.deepStrictEqual(selected({ dnat: { port: 8081 } }), []);
  assert.deepStrictEqual(
    selected({ snat: { address: "10.50.0.3" } }),
    lines((l) => reply(l).dst === "10.50.0.3"),
  );
  assert.deepStrictEqual(selected({ snat: { address: "10.50.0.3", port: 1 } }), []);
  const both = selected({ snat: { address: "10.50.0.3" }, dnat: true });
  assert.deepStrictEqual(both, []); // the SNAT-ed entry was not DNAT-ed
  const any = selected({ anyNat: { address: "10.50.0.3" } });
  assert.deepStrictEqual(any, selected({ snat: { address: "10.50.0.3" } }));
});

Deno.test("zero: dump and get ask for IPCTNL_MSG_CT_GET_CTRZERO", async () => {
  const k = kernel();
  using ct = openWithSockets(k.open, RELEASE);
  const n = [...ct.dumpSync({ family: "ipv4" }, { zero: true })].length;
  assert(n > 0);
  for await (const _ of ct.dump(undefined, { zero: true })) break;
  await ct.get(
    { src: "10.0.0.1", dst: "10.0.0.2", protocol: "udp", srcPort: 1, dstPort: 2 },
    { zero: true },
  ).catch(() => {});
  const types = k.requests.map((r) => r.type);
  assert.deepStrictEqual(types.slice(0, 3), Array(3).fill(CT | C.IPCTNL_MSG_CT_GET_CTRZERO));
  assert.throws(() => ct.dumpSync(undefined, { zero: 1 as unknown as boolean }).next(), TypeError);
});

Deno.test("create with NAT, per-direction zones, labels; update removing labels: the requests", async () => {
  const k = kernel();
  using ct = openWithSockets(k.open, RELEASE);
  const orig = { src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 4000, dstPort: 80 };
  await ct.create({
    orig,
    timeout: 60,
    tcpState: "ESTABLISHED",
    snat: { address: "10.0.0.9" },
    dnat: { address: "10.0.0.8", port: 8080 },
    origZone: 3,
    replyZone: 4,
    labels: [1, 70],
  });
  await ct.update(orig, { labels: [2], labelsRemove: [1, 3] });
  await ct.update(orig, { labelsRemove: "all" });
  const [made, changed, cleared] = k.requests.map((r) => decodeFlow(r.bytes));
  assert.deepStrictEqual(made!.natSrc, {
    minIp: "10.0.0.9",
    maxIp: undefined,
    minPort: undefined,
    maxPort: undefined,
  });
  assert.deepStrictEqual(made!.natDst, {
    minIp: "10.0.0.8",
    maxIp: undefined,
    minPort: 8080,
    maxPort: 8080,
  });
  assert.deepStrictEqual([made!.orig.zone, made!.reply.zone, made!.zone], [3, 4, undefined]);
  assert.deepStrictEqual(labelBits(made!.labels!), [1, 70]);
  // The kernel sets each label word to (old & ~mask) ^ labels.
  assert.deepStrictEqual(labelBits(changed!.labels!), [2]);
  assert.deepStrictEqual(labelBits(changed!.labelsMask!), [1, 2, 3]);
  assert.deepStrictEqual(labelBits(cleared!.labels!), []);
  assert.equal(labelBits(cleared!.labelsMask!).length, 128);
  await assert.rejects(
    ct.create({ orig, timeout: 1, tcpState: "ESTABLISHED", dnat: { address: "fd00::1" } }),
    TypeError,
  );
  await assert.rejects(ct.update(orig, { labelsRemove: [128] }), RangeError);
  const sctp = { ...orig, protocol: "sctp" };
  await ct.create({
    orig: sctp,
    timeout: 9,
    sctp: { state: "established", vtagOrig: 17, vtagReply: 0xffffffff },
  });
  const withTags = decodeFlow(k.requests.at(-1)!.bytes);
  assert.deepStrictEqual(
    [withTags.sctp?.stateName, withTags.sctp?.vtagOrig, withTags.sctp?.vtagReply],
    ["ESTABLISHED", 17, 0xffffffff],
  );
  await ct.create({
    orig: { ...orig, protocol: "dccp" },
    timeout: 9,
    dccp: { state: "OPEN", role: "server" },
  });
  const dccp = decodeFlow(k.requests.at(-1)!.bytes).dccp;
  assert.deepStrictEqual([dccp?.stateName, dccp?.role], ["OPEN", 1]);
  await assert.rejects(
    ct.create({ orig: sctp, timeout: 9, sctp: { state: "BOGUS", vtagOrig: 1, vtagReply: 2 } }),
    TypeError,
  );
});

Deno.test("validateFilter: bad network, NAT, label and zone parts name themselves", () => {
  const bad: [DumpFilter, string][] = [
    [{ orig: { src: "10.0.0.0/33" } }, "filter.orig.src"],
    [{ orig: { src: "10.0.0.0/" } }, "filter.orig.src"],
    [{ orig: { src: "10.0.0.0/8", srcMask: "255.0.0.0" } }, "filter.orig.src"],
    [{ orig: { srcMask: "255.0.0.0" } }, "filter.orig.srcMask"],
    [{ orig: { src: "10.0.0.1", srcMask: "ffff::" } }, "filter.orig.srcMask"],
    [{ snat: { port: 70000 } }, "filter.snat.port"],
    [{ snat: { address: "10.0.0.300" } }, "filter.snat.address"],
    [{ dnat: "yes" as unknown as boolean }, "filter.dnat"],
    [{ anyNat: { addr: "10.0.0.1" } as unknown as boolean }, "filter.anyNat"],
    [{ orig: { src: "10.0.0.1" }, snat: { address: "fd00::1" } }, "filter.snat.address"],
    [{ labels: [] }, "filter.labels"],
    [{ labels: [128] }, "filter.labels[]"],
    [{ origZone: 65536 }, "filter.origZone"],
    [{ entryZone: -1 }, "filter.entryZone"],
  ];
  for (const [filter, argument] of bad) {
    assert.throws(() => validateFilter(filter), (e: Error & { argument?: string }) => {
      assert.equal(e.argument, argument, `${JSON.stringify(filter)}: ${e.message}`);
      return true;
    });
  }
});

/** Runs `main(args)` in this process: exit code and the stderr text. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [], err: string[] = [];
  const writer = (into: string[]) => ({
    writeSync: (p: Uint8Array) => (into.push(new TextDecoder().decode(p)), p.length),
  });
  const code = await main(["--netns", "ctnl-unit-no-such-ns", ...args], {
    stdout: writer(out),
    stderr: writer(err),
  });
  return { code, stdout: out.join(""), stderr: err.join("") };
}

Deno.test("CLI: bad values of the new options are exit 2 (1 for --label-add with --label-del)", async () => {
  const cases: [string[], number, string][] = [
    [["dump", "-r", "10.0.0.0/8"], 2, "CIDR notation is not available for -r/--reply-src"],
    [["dump", "--mask-src", "255.0.0.0"], 2, "--mask-src needs -s/--src"],
    [["dump", "-d", "10.0.0.1", "--mask-dst", "255.0.0.0/8"], 2, "CIDR notation is not available"],
    [["dump", "-s", "10.0.0.1/33"], 2, "invalid -s/--src"],
    [["dump", "-n10.0.0.1"], 2, "give the value of -n as a separate argument"],
    [["dump", "--dst-nat=10.0.0.1"], 2, "give the value of --dst-nat as a separate argument"],
    [["dump", "-n", "10.0.0.1:70000"], 2, 'invalid port "70000"'],
    [["dump", "-n", "10.0.0.1:"], 2, "no port after ':'"],
    [["dump", "-g", "[fd00::1"], 2, "no closing ']'"],
    [["dump", "-g", "[]:80"], 2, "no IPv6 address"],
    [["dump", "-j", "-n"], 2, "-j/--any-nat cannot be combined"],
    [["dump", "-f", "ipv6", "-n", "10.0.0.1"], 2, "mixes address families"],
    [["dump", "-z", "-p", "tcp"], 2, "-z/--zero cannot be used with filtering parameters"],
    [["dump", "-z", "-m", "1"], 2, "(-m/--mark)"],
    [["dump", "--orig-zone", "65536"], 2, 'invalid zone "65536" for --orig-zone'],
    [["dump", "--reply-zone", "x"], 2, "for --reply-zone"],
    [["dump", "-c", "x"], 2, 'invalid secmark "x"'],
    [["dump", "--srckey", "1"], 2, "--srckey needs -p gre"],
    [["dump", "-p", "gre", "--dstkey", "0x10000"], 2, 'invalid GRE key "0x10000"'],
    [["dump", "-l", "nosuch"], 2, 'unknown label "nosuch" for -l/--label'],
    [["delete", "-c", "1"], 2, "option -c/--secmark cannot be used with delete"],
    [["delete", "-j"], 2, "option -j/--any-nat cannot be used with delete"],
    [["events", "-z"], 2, "option -z/--zero cannot be used with events"],
    [
      ["get", ...UDP.with(3, "10.0.0.0/8")],
      2,
      "get takes whole addresses",
    ],
    [
      ["create", ...UDP, "-t", "5", "-l", "x"],
      2,
      "option -l/--label cannot be used with create",
    ],
    [
      ["update", "--label-add", "a", "--label-del", "b"],
      1,
      "cannot use --label-add and --label-del",
    ],
    [
      ["add", "-p", "gre", "-s", "10.0.0.1", "-d", "10.0.0.2", "-t", "5", "--srckey", "1"],
      2,
      "create needs --srckey and --dstkey",
    ],
  ];
  for (const [args, code, fragment] of cases) {
    const r = await cli(args);
    const what = args.join(" ");
    assert.equal(r.code, code, `${what}: ${r.stderr}`);
    assert.equal(r.stdout, "", what);
    assert.equal(r.stderr.split("\n").length, 2, `${what}: one line: ${r.stderr}`);
    assert(r.stderr.includes(fragment), `${what}: ${r.stderr}`);
  }
});

Deno.test("CLI: an optional value is the next argument unless it starts with - or !", async () => {
  // Without --allow-ffi the run stops at opening (exit 1): parsing went through.
  for (const args of [["dump", "-n"], ["dump", "-n", "-p", "tcp"], ["dump", "-j", "10.0.0.1:80"]]) {
    const r = await cli(args);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
  }
  const r = await cli(["dump", "-g", "tcp"]);
  assert.equal(r.code, 2, r.stderr); // "tcp" is taken as -g's address, as conntrack takes it
  assert.match(r.stderr, /dnat\.address|-g\/--dst-nat|address/);
});

Deno.test("connlabel.conf: BIT as strtoul reads it, a sign too (+1 is bit 1; -1 wraps, no bit)", () => {
  const names = parseLabelMap("+1 plus\n-1 minus\n-0 zero\n 0x0a ten\n012 ten-octal\n#3 no\n4\n");
  assert.deepStrictEqual(
    names?.flatMap((n, bit) => n === undefined ? [] : [[bit, n]]),
    [[0, "zero"], [1, "plus"], [10, "ten"]],
  );
});
