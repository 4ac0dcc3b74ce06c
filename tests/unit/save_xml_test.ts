/**
 * `-o save` and `-o xml` of flows decoded from a dump captured from the
 * real kernel, beside what conntrack 1.4.7 printed for the same table
 * (tests/capture_formats.ts); the load file's line splitter; bad load files.
 */

import assert from "node:assert/strict";
import { decodeFlow, decodeMessages, type Flow, newFlow } from "../../mod.ts";
import { main } from "../../cli.ts";
import { formatSave, splitLine } from "../../cli/save.ts";
import { formatXml, XML_FOOTER, XML_HEADER } from "../../cli/xml.ts";
import { readCapture } from "../_capture.ts";
import { mutate, Rng } from "../_fuzz.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);

function capturedFlows(): Flow[] {
  const flows: Flow[] = [];
  for (const d of readCapture(new URL("formats.bin", FIXTURES))) {
    for (const m of decodeMessages(d)) {
      if ((m[4]! | (m[5]! << 8)) === 0x100) flows.push(decodeFlow(m));
    }
  }
  return flows;
}

/** `line` with the numbers `re` captures replaced by N, once checked within 3 of `other`'s. */
function mask(line: string, other: string, res: RegExp[]): string {
  for (const re of res) {
    const theirs = [...other.matchAll(re)].map((m) => Number(m[1]));
    let i = 0;
    line = line.replace(re, (m, n) => {
      assert(Math.abs(Number(n) - (theirs[i++] ?? NaN)) <= 3, `${line}\nvs\n${other}`);
      return m.replace(n, "N");
    });
  }
  return line;
}

function assertLines(mine: string[], theirs: string[], res: RegExp[]): void {
  assert.equal(mine.length, theirs.length);
  mine.forEach((l, i) => assert.equal(mask(l, theirs[i]!, res), mask(theirs[i]!, l, res)));
}

const text = (name: string) => Deno.readTextFileSync(new URL(name, FIXTURES)).split("\n");

Deno.test("-o save of captured flows is conntrack's, line for line", () => {
  const flows = capturedFlows();
  assert(flows.length >= 20);
  const theirs = text("formats.save.txt").slice(0, -1);
  assertLines(flows.map((f) => formatSave(f)), theirs, [/ -t (\d+)/g]);
  // The kinds the capture was made for are in it.
  const all = theirs.join("\n");
  for (const part of [" -g ", " -n ", " --orig-zone 3 ", " --reply-zone 4 ", " -w 7 ", " -p 50"]) {
    assert(all.includes(part), part);
  }
  assert(all.includes(" --orig-vtag 5 --reply-vtag 6"));
});

Deno.test("-o xml,ktimestamp of captured flows is conntrack's, header and footer included", () => {
  const flows = capturedFlows();
  const theirs = text("formats.xml.txt").slice(0, -1);
  // "Now" as conntrack saw it: the first entry's start plus the delta it printed.
  const [, start, delta] = /<start>(\d+)<\/start>.*<deltatime>(\d+)</.exec(theirs[2]!)!;
  const now = Number(BigInt(start!) / 1_000_000_000n) + Number(delta);
  const xml = flows.map((f) => formatXml(f, { ktimestamp: true, now }));
  const mine = [XML_HEADER, ...xml, XML_FOOTER].join("\n").split("\n");
  assertLines(mine, theirs, [/<timeout>(\d+)</g]);
  // libnetfilter_conntrack names SCTP and DCCP states from the TCP table.
  const sctp = mine.find((l) => l.includes('protoname="sctp"'))!;
  assert.match(sctp, /<state>FIN_WAIT<\/state>/);
});

Deno.test("-o xml: labels by name, <when>, type, delta time of a stopped entry", () => {
  const flow: Flow = {
    ...newFlow("ipv6"),
    orig: {
      ...newFlow("ipv6").orig,
      src: "fd00::1",
      dst: "fd00::2",
      protocol: 47,
      srcPort: 255,
      dstPort: 16,
    },
    reply: {
      ...newFlow("ipv6").reply,
      src: "fd00::2",
      dst: "fd00::1",
      protocol: 47,
      srcPort: 16,
      dstPort: 255,
    },
    status: 6,
    labels: new Uint8Array([0b10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    timestampStart: 5_000_000_000n,
    timestampStop: 7_500_000_000n,
    helper: "pptp",
  };
  const when = new Date(2024, 0, 2, 3, 4, 5);
  const xml = formatXml(flow, { type: "destroy", labelNames: [undefined, "one"], when });
  assert.equal(
    xml,
    '<flow type="destroy"><meta direction="original"><layer3 protonum="10" protoname="ipv6">' +
      "<src>fd00::1</src><dst>fd00::2</dst></layer3>" +
      '<layer4 protonum="47" protoname="gre"><srckey>0xff</srckey><dstkey>0x10</dstkey></layer4>' +
      '</meta><meta direction="reply"><layer3 protonum="10" protoname="ipv6"><src>fd00::2</src>' +
      '<dst>fd00::1</dst></layer3><layer4 protonum="47" protoname="gre"><srckey>0x10</srckey>' +
      '<dstkey>0xff</dstkey></layer4></meta><meta direction="independent">' +
      "<labels><label>one</label></labels><assured/><deltatime>2</deltatime></meta>" +
      "<when><hour>3</hour><min>04</min><sec>05</sec><wday>3</wday><day>2</day><month>1</month>" +
      "<year>2024</year></when><helper>pptp</helper></flow>",
  );
  assert.match(formatXml(flow, { labelNames: ["zero"] }), /<labels><\/labels>/);
});

Deno.test("load lines split as conntrack splits them", () => {
  assert.equal(splitLine(""), undefined);
  assert.equal(splitLine("  \t "), undefined);
  assert.equal(splitLine("   # comment -A"), undefined);
  assert.deepEqual(splitLine("-A  -t 5\t-p tcp "), ["-A", "-t", "5", "-p", "tcp"]);
  // Quotes keep blanks; a closing quote ends the argument; \ escapes inside quotes only.
  assert.deepEqual(splitLine('-l "a b" x"y z"w ""'), ["-l", "a b", "xy z", "w", ""]);
  assert.deepEqual(splitLine('"a\\"b" c\\d'), ['a"b', "c\\d"]);
  assert.deepEqual(splitLine("-A #not-a-comment"), ["-A", "#not-a-comment"]);
  assert.throws(() => splitLine(`-s ${"1".repeat(1024)}`), /Parameter too long!/);
  assert.throws(() => splitLine(Array(300).fill("-A").join(" ")), /too many arguments/);
});

Deno.test("ctnl load: every bad line by number, exit 2, before anything is opened", async () => {
  let err = "";
  const stderr = { writeSync: (p: Uint8Array) => (err += new TextDecoder().decode(p), p.length) };
  const file = new URL("load_bad.txt", FIXTURES).pathname;
  assert.equal(await main(["load", file], { stderr }), 2);
  assert.deepEqual(err.split("\n"), [
    'ctnl: line 4: invalid port "70000" for --dport (0-65535)',
    "ctnl: line 5: Cannot use command `-G' with --load-file",
    "ctnl: line 6: option --netns cannot be used with create in a load file",
    "ctnl: line 7: create needs -p/--proto", // the open quote runs to the end of the line
    'ctnl: line 8: unknown protocol "frob" for -p/--proto (a name such as tcp, udp, icmp, icmpv6, sctp, or a number 0-255)',
    "ctnl: line 9: Cannot use command `-D expect' with --load-file",
    `ctnl: 6 bad lines in ${file}; nothing was changed`,
    "",
  ]);
  err = "";
  assert.equal(await main(["-R"], { stderr }), 2);
  assert.equal(err, "ctnl: load needs a FILE (or - for standard input)\n");
});

Deno.test("save and XML lines of 20,000 mutated captured datagrams: whatever decodes formats", () => {
  const corpus = readCapture(new URL("formats.bin", FIXTURES));
  const rng = new Rng(0xf0a7);
  let formatted = 0;
  for (let i = 0; i < 20_000; i++) {
    const bytes = mutate(corpus[rng.below(corpus.length)]!, rng);
    let flows: Flow[];
    try {
      flows = [...decodeMessages(bytes)].filter((m) =>
        m.length >= 20 && (m[4]! | (m[5]! << 8)) === 0x100
      )
        .map((m) => decodeFlow(m));
    } catch {
      continue; // a DecodeError: the decoder's own tests check those
    }
    for (const flow of flows) {
      assert.equal(typeof formatSave(flow, "destroy"), "string");
      assert.doesNotMatch(formatXml(flow, { ktimestamp: true, labelNames: ["a"] }), /undefined/);
      formatted++;
    }
  }
  assert(formatted > 1000, `formatted ${formatted}`);
});
