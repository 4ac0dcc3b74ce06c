/**
 * The JSON of flows for jq users: each tuple's `protocolName` is the name
 * conntrack-tools printed for the same captured entry (tests/fixtures/),
 * beside `protocol`; an untracked protocol is "unknown", as conntrack
 * prints it; flowToObject carries the same names.
 */

import assert from "node:assert/strict";
import { decodeFlow, decodeMessages, flowToJson, flowToObject, newFlow } from "../../mod.ts";
import { readCapture } from "../_capture.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url);
const NEW_FLOW = 0x100; // IPCTNL_MSG_CT_NEW in the ctnetlink subsystem

Deno.test("protocolName is the protocol conntrack -L printed, for every captured entry", () => {
  const flows = readCapture(new URL("dump.bin", FIXTURES)).flatMap((d) => [...decodeMessages(d)])
    .filter((m) => (m[4]! | (m[5]! << 8)) === NEW_FLOW).map((m) => decodeFlow(m));
  // conntrack -L -o extended,…: "ipv4     2 udp      17 …", by entry id.
  const printed = new Map(
    Deno.readTextFileSync(new URL("dump.conntrack.txt", FIXTURES)).trim().split("\n").map((l) => {
      const [, , name, number] = l.split(/ +/);
      return [Number(/ id=(\d+)$/.exec(l)![1]), { name: name!, number: Number(number) }]; // the entry id is last
    }),
  );
  assert(flows.length >= 10 && flows.length === printed.size);
  const names = new Set<string>();
  for (const flow of flows) {
    const want = printed.get(flow.id!)!;
    const json = JSON.parse(flowToJson(flow));
    for (const tuple of [json.orig, json.reply]) {
      assert.equal(tuple.protocol, want.number);
      assert.equal(tuple.protocolName, want.name);
    }
    // …beside protocol, in that order (a reader that greps the text sees them together).
    assert.match(flowToJson(flow), /"protocol":\d+,"protocolName":"[a-z0-9-]+"/);
    assert.equal(flowToObject(flow).orig?.protocolName, want.name);
    names.add(want.name);
  }
  assert.deepEqual([...names].sort(), ["icmp", "icmpv6", "tcp", "udp"]);
});

Deno.test("protocolName of an untracked protocol is unknown, as conntrack prints it", () => {
  const tuple = { src: "10.0.0.1", dst: "10.0.0.2", protocol: 2 }; // igmp: no conntrack tracker
  const flow = { ...newFlow("ipv4"), orig: { ...newFlow("ipv4").orig, ...tuple } };
  assert.equal(JSON.parse(flowToJson(flow)).orig.protocolName, "unknown");
  const gre = { ...newFlow("ipv4"), orig: { ...newFlow("ipv4").orig, ...tuple, protocol: 47 } };
  assert.equal(flowToObject(gre).orig?.protocolName, "gre");
});
