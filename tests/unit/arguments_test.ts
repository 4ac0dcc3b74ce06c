/**
 * Bad arguments are refused before anything is sent: the checks behind
 * `create` and `get` (moved here from tests/change_test.ts, which needed a
 * namespace only to reach them).
 */

import assert from "node:assert/strict";
import { validateTuple } from "../../mod.ts";
import { Encoder } from "../../src/netlink.ts";
import { encodeChanges } from "../../src/request.ts";

const TCP = { src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 4000, dstPort: 80 };

Deno.test("a bad create spec is a TypeError or RangeError naming what is wrong", () => {
  assert.throws(() => validateTuple({ ...TCP, srcPort: 70000 }), RangeError);
  assert.throws(() => validateTuple({ ...TCP, dst: "fd00::1" }), /mixed|is ipv4 but dst/);
  assert.throws(
    () => encodeChanges(new Encoder(), { timeout: 5, tcpState: "NOPE" }, "flow", true),
    /unknown TCP state "NOPE"/,
  );
});
