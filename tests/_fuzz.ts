/**
 * A deterministic, seeded fuzzer for the decoder: mutates datagrams captured
 * from the real kernel and checks that decoding them throws nothing but
 * `DecodeError`, and that unmutated datagrams decode exactly as before.
 *
 * @module
 */

import { DecodeError } from "../mod.ts";
import { decodeFlowAt } from "../src/decode.ts";
import { decodeCpuStatsAt, decodeGlobalStatsAt } from "../src/stats.ts";
import { decodeExpectationAt, decodeExpectStatsAt } from "../src/expect_decode.ts";
import {
  AttrCursor,
  newHeader,
  NLMSG_DONE,
  NLMSG_ERROR,
  readError,
  readHeader,
} from "../src/netlink.ts";

/** xorshift32: small, fast, and the same on every machine. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }
  below(n: number): number {
    return this.next() % n;
  }
}

const cursor = new AttrCursor();
const header = newHeader();

/**
 * Decodes a datagram as the library does (entries, stats, errors, done) and
 * returns a JSON-able summary of what came out.
 */
export function decodeDatagram(bytes: Uint8Array): unknown[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: unknown[] = [];
  for (let offset = 0; offset < bytes.length;) {
    offset = readHeader(view, offset, bytes.length, header);
    const h = header;
    // readHeader's offsets are relative to the view; keep the bytes aligned with it.
    switch (h.type) {
      case 0x100:
      case 0x102:
        out.push(decodeFlowAt(cursor, bytes, view, h.offset, h.length, { keepUnknown: true }));
        break;
      case 0x104:
        out.push(decodeCpuStatsAt(cursor, bytes, view, h));
        break;
      case 0x200: // IPCTNL_MSG_EXP_NEW
      case 0x202: // IPCTNL_MSG_EXP_DELETE (events)
        out.push(
          decodeExpectationAt(cursor, bytes, view, h.offset, h.length, { keepUnknown: true }),
        );
        break;
      case 0x103: // IPCTNL_MSG_EXP_GET_STATS_CPU, answered in ctnetlink's subsystem
        out.push(decodeExpectStatsAt(cursor, bytes, view, h));
        break;
      case 0x105:
        out.push(decodeGlobalStatsAt(cursor, bytes, view, h));
        break;
      case NLMSG_ERROR:
        out.push(readError(bytes, view, h, cursor));
        break;
      case NLMSG_DONE:
        out.push("done");
        break;
    }
  }
  return out;
}

/** The datagrams of a capture file (kept here too for the fuzzer's callers). */
export { readCapture } from "./_capture.ts";

/** Offsets of every attribute header in the datagram (a best-effort walk). */
function attrOffsets(d: Uint8Array): number[] {
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  const out: number[] = [];
  const walk = (start: number, end: number, depth: number) => {
    for (let p = start; p + 4 <= end && depth < 6;) {
      const len = view.getUint16(p, true);
      if (len < 4 || p + len > end) return;
      out.push(p);
      if (len > 8) walk(p + 4, p + len, depth + 1);
      p += (len + 3) & ~3;
    }
  };
  for (let m = 0; m + 16 <= d.length;) {
    const len = view.getUint32(m, true);
    if (len < 16 || m + len > d.length) break;
    walk(m + 20, m + len, 0);
    m += (len + 3) & ~3;
  }
  return out;
}

/** One mutated copy of `d`, chosen by `rng`. */
export function mutate(d: Uint8Array, rng: Rng): Uint8Array {
  const attrs = attrOffsets(d);
  let kind = rng.below(9);
  // Mutations that edit an attribute need one; the others work on any bytes.
  if (attrs.length === 0 && [1, 2, 3, 4, 7].includes(kind)) kind = 0;
  if (d.length === 0 && kind === 8) kind = 5;
  const pick = () => attrs.length ? attrs[rng.below(attrs.length)]! : 0;
  switch (kind) {
    case 0: // truncation at any offset
      return d.slice(0, rng.below(d.length + 1));
    case 1: { // nla_len 0-3
      const b = d.slice();
      new DataView(b.buffer).setUint16(pick(), rng.below(4), true);
      return b;
    }
    case 2: { // nla_len past the end
      const b = d.slice();
      new DataView(b.buffer).setUint16(pick(), 0xfff0 + rng.below(16), true);
      return b;
    }
    case 3: { // nested flag flipped
      const b = d.slice();
      const v = new DataView(b.buffer);
      const at = pick() + 2;
      v.setUint16(at, v.getUint16(at, true) ^ 0x8000, true);
      return b;
    }
    case 4: { // a scalar of the wrong size: shrink or grow the length by 1-3
      const b = d.slice();
      const v = new DataView(b.buffer);
      const at = pick();
      const len = v.getUint16(at, true);
      v.setUint16(at, Math.max(0, len + (rng.below(2) ? 1 : -1) * (1 + rng.below(3))), true);
      return b;
    }
    case 5: { // garbage after the end (after NLMSG_DONE, or after any message)
      const extra = new Uint8Array(1 + rng.below(64));
      for (let i = 0; i < extra.length; i++) extra[i] = rng.below(256);
      const b = new Uint8Array(d.length + extra.length);
      b.set(d);
      b.set(extra, d.length);
      return b;
    }
    case 6: { // huge counts: a message length far past the datagram
      const b = d.slice();
      if (b.length >= 4) new DataView(b.buffer).setUint32(0, 0xffffff00 + rng.below(256), true);
      return b;
    }
    case 7: { // an attribute type changed (unknown, or another known one)
      const b = d.slice();
      const v = new DataView(b.buffer);
      const at = pick() + 2;
      v.setUint16(at, (v.getUint16(at, true) & 0xc000) | rng.below(40), true);
      return b;
    }
    default: { // random bytes flipped
      const b = d.slice();
      for (let n = 1 + rng.below(4); n > 0; n--) b[rng.below(b.length)] = rng.below(256);
      return b;
    }
  }
}

/** What a fuzz run found. */
export interface FuzzResult {
  cases: number;
  decodeErrors: number;
  decodedFine: number;
  failures: { seed: number; index: number; error: string }[];
}

/** Runs `cases` mutations over `corpus` with `seed`; collects non-DecodeError failures. */
export function fuzz(corpus: Uint8Array[], cases: number, seed: number): FuzzResult {
  const rng = new Rng(seed);
  const result: FuzzResult = { cases: 0, decodeErrors: 0, decodedFine: 0, failures: [] };
  for (let i = 0; i < cases; i++) {
    const base = corpus[rng.below(corpus.length)]!;
    let d = mutate(base, rng);
    if (rng.below(4) === 0) d = mutate(d, rng); // sometimes two mutations
    result.cases++;
    try {
      decodeDatagram(d);
      result.decodedFine++;
    } catch (error) {
      if (error instanceof DecodeError) result.decodeErrors++;
      else if (result.failures.length < 20) {
        result.failures.push({ seed, index: i, error: String((error as Error)?.stack ?? error) });
      }
    }
  }
  return result;
}
