/**
 * Bad arguments are refused before anything is sent (moved here from
 * tests/change_test.ts, which needed a namespace only to reach these
 * checks): the same calls, on a handle over the fake kernel.
 */

import assert from "node:assert/strict";
import { openWithSockets } from "../../src/conntrack.ts";
import { FakeKernel } from "../_fake_kernel.ts";

const TCP = { src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 4000, dstPort: 80 };

Deno.test("create of a bad spec is a TypeError or RangeError, and sends nothing", async () => {
  const kernel = new FakeKernel();
  using ct = openWithSockets(kernel.open, { kernelRelease: "6.18.0" });
  await assert.rejects(ct.create({ orig: { ...TCP, srcPort: 70000 }, timeout: 5 }), RangeError);
  await assert.rejects(
    ct.create({ orig: { ...TCP, dst: "fd00::1" }, timeout: 5 }),
    /mixed|is ipv4 but dst/,
  );
  await assert.rejects(
    ct.create({ orig: TCP, timeout: 5, tcpState: "NOPE" }),
    /unknown TCP state "NOPE"/,
  );
  assert.deepStrictEqual(kernel.requests, []);
});
