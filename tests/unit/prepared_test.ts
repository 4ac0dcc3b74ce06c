/**
 * What `ctnl load` is built on, without a kernel: the address scanners
 * (cases glibc's inet_pton accepts and refuses), and PreparedChanges —
 * requests encoded ahead into one buffer — sent by applyMany to the fake
 * kernel: the same requests as the changes themselves, sequence numbers
 * in order, each refusal reported by index with its entry decoded back
 * from the request.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type BulkChange, type NetlinkError, PreparedChanges } from "../../mod.ts";
import { openWithSockets } from "../../src/conntrack.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "../../src/address.ts";
import { ack, FakeKernel } from "../_fake_kernel.ts";

const RELEASE = { kernelRelease: "6.18.0" };

Deno.test("addresses: dotted quads and IPv6 text as inet_pton reads them", () => {
  const v4 = (t: string) => {
    const b = parseIPv4(t);
    return b === undefined ? undefined : formatIPv4(b, 0);
  };
  const v6 = (t: string) => {
    const b = parseIPv6(t);
    return b === undefined ? undefined : formatIPv6(b, 0);
  };
  for (const t of ["0.0.0.0", "1.2.3.4", "255.255.255.255", "10.0.35.155"]) assert.equal(v4(t), t);
  for (
    const t of ["01.2.3.4", "1.2.3.256", "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.4 ", "", "a.b.c.d"]
  ) {
    assert.equal(v4(t), undefined, t);
  }
  const good: [string, string][] = [
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["fd00:10::dd1", "fd00:10::dd1"],
    ["2001:DB8:0:0:0:0:0:443", "2001:db8::443"],
    ["1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"],
    ["::ffff:1.2.3.4", "::ffff:1.2.3.4"],
    ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
    ["0001:2::", "1:2::"],
  ];
  for (const [t, canonical] of good) assert.equal(v6(t), canonical, t);
  const bad = [
    ":",
    ":1",
    "1:",
    "1:::2",
    "1::2::3",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7",
    "12345::",
    "1:2:3:4:5:6:7:1.2.3.4",
    "0.2.3.4::",
    "::1.2.3",
    "g::1",
    "1:2:3:4:5:6:7:8::",
  ];
  for (const t of bad) assert.equal(v6(t), undefined, t);
});

const tuple = (port: number) => ({
  src: "10.1.0.1",
  dst: "10.2.0.1",
  protocol: "udp",
  srcPort: port,
  dstPort: 53,
});

Deno.test("PreparedChanges: the requests applyMany makes of the changes, refusals by index", async () => {
  const changes: BulkChange[] = [];
  for (let i = 0; i < 10; i++) changes.push({ create: { orig: tuple(1000 + i), timeout: 60 } });
  changes.push({ delete: tuple(1003), options: { zone: 7 } });
  changes.push({ update: tuple(1004), changes: { mark: 5 } });
  const refuse = new Set([3, 10]); // a create (EEXIST) and the delete (ENOENT)

  // What the kernel receives from plain changes, then from the prepared ones.
  const received = async (prepared: boolean) => {
    const kernel = new FakeKernel((request) => [ack(request)]);
    using ct = openWithSockets(kernel.open, RELEASE);
    const first = ct.seq + 1;
    kernel.answer = (request) => {
      const i = request.seq - first;
      return [ack(request, refuse.has(i) ? (i === 10 ? 2 : 17) : 0)];
    };
    const errors: [number, string, string | undefined, string][] = [];
    const input = prepared ? new PreparedChanges() : changes;
    if (input instanceof PreparedChanges) { for (const c of changes) input.add(c); }
    const done = await ct.applyMany(input, {
      batchSize: 4,
      onError(error: NetlinkError, index: number) {
        errors.push([index, error.operation, error.code, error.subject ?? ""]);
      },
    });
    return {
      done,
      errors,
      sends: kernel.sends.length,
      requests: kernel.requests.map((
        r,
      ) => [r.seq - first, r.type, r.flags, [...r.bytes.slice(16)]]),
    };
  };
  const plain = await received(false);
  const prepared = await received(true);
  assert.deepStrictEqual(prepared, plain);
  assert.equal(prepared.done, 10);
  assert.equal(prepared.sends, 3);
  assert.deepStrictEqual(prepared.errors.map(([i, op, code]) => [i, op, code]), [
    [3, "create", "EEXIST"],
    [10, "delete", "ENOENT"],
  ]);
  assert.equal(prepared.errors[1]![3], "udp 10.1.0.1:1003 -> 10.2.0.1:53");
});

Deno.test("PreparedChanges: a bad change throws at add and is not added", () => {
  const changes = new PreparedChanges();
  changes.add({ create: { orig: tuple(1), timeout: 60 } });
  assert.throws(
    () => changes.add({ create: { orig: { ...tuple(2), src: "10.1.0.256" }, timeout: 1 } }),
    TypeError,
  );
  assert.throws(() => changes.add({ create: { orig: tuple(3), timeout: -1 } }), RangeError);
  assert.equal(changes.length, 1);
  assert.equal(changes.kind(0), "create");
});
