/**
 * What `--json` and the text format print of a flow built in memory (no
 * kernel): counters past 2^53 stay exact, label names as connlabel.conf
 * gives them.
 */

import assert from "node:assert/strict";
import { type Flow, flowToJson, formatFlow } from "../../mod.ts";
import { newFlow } from "../../src/decode.ts";

Deno.test("JSON counters stay exact past 2^53", () => {
  const tuple = {
    src: "10.0.0.1",
    dst: "10.0.0.2",
    protocol: 17,
    srcPort: 1,
    dstPort: 2,
    icmpId: undefined,
    icmpType: undefined,
    icmpCode: undefined,
    zone: undefined,
  };
  const flow: Flow = {
    ...newFlow("ipv4"),
    orig: tuple,
    reply: { ...tuple, src: "10.0.0.2", dst: "10.0.0.1", srcPort: 2, dstPort: 1 },
    status: 14,
    timeout: 30,
    mark: 0,
    use: 1,
    id: 1,
    countersOrig: { packets: 2n ** 64n - 1n, bytes: 2n ** 53n + 1n },
  };
  const text = flowToJson(flow);
  assert.match(text, /"countersOrig":\{"packets":18446744073709551615,"bytes":9007199254740993\}/);
  assert.equal(
    formatFlow(flow),
    "udp      17 30 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 packets=18446744073709551615 " +
      "bytes=9007199254740993 src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=0 use=1",
  );
  const labelled = { ...flow, labels: new Uint8Array([0b0010_0010, 0, 0, 0, 0, 0, 0, 0, 0x40]) };
  const names = ["zero", "one", undefined, undefined, undefined, "five"];
  assert.match(formatFlow(labelled, { labelNames: names }), / use=1 labels=one,five$/);
  assert.match(formatFlow(labelled, { labelNames: ["zero"] }), / use=1 labels$/);
  assert.match(formatFlow(labelled), / use=1$/);
});
