/**
 * IP address text: formatting exactly as glibc's `inet_ntop` does (so output
 * matches conntrack-tools), and strict parsing for filters and tuples.
 *
 * @module
 */

import { ArgumentError } from "./errors.ts";

/** `"0"` … `"255"`. */
const DECIMAL: readonly string[] = Array.from({ length: 256 }, (_, i) => String(i));
/** `"0."` … `"255."`. */
const DECIMAL_DOT: readonly string[] = Array.from({ length: 256 }, (_, i) => `${i}.`);
/** `"0"` … `"ff"`. */
const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16));
/** `"00"` … `"ff"`. */
const HEX2: readonly string[] = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);

// Address text is built from these tables with three or four string
// concatenations and no number formatting: the decoder makes up to four
// addresses per flow, and this is the largest part of its time. (A cache of
// recent addresses was measured and did not pay: the strings it keeps alive
// cost the garbage collector what it saves.)

/** Formats 4 bytes at `offset` as dotted-quad IPv4. */
export function formatIPv4(bytes: Uint8Array, offset: number): string {
  return DECIMAL_DOT[bytes[offset]!]! + DECIMAL_DOT[bytes[offset + 1]!]! +
    DECIMAL_DOT[bytes[offset + 2]!]! + DECIMAL[bytes[offset + 3]!]!;
}

/** A 16-bit group as lower-case hex without leading zeros. */
function hexGroup(hi: number, lo: number): string {
  return hi === 0 ? HEX[lo]! : HEX[hi]! + HEX2[lo]!;
}

/**
 * Where inet_ntop puts the `::` of the IPv6 address at `offset`: the longest
 * run (the first of equal ones) of two or more zero groups, as
 * `base << 4 | length` in groups, or -1 when there is none.
 */
export function zeroRun(bytes: Uint8Array, offset: number): number {
  let bestBase = -1, bestLen = 0, curBase = -1, curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (bytes[offset + 2 * i] === 0 && bytes[offset + 2 * i + 1] === 0) {
      if (curBase === -1) {
        curBase = i;
        curLen = 1;
      } else curLen++;
    } else if (curBase !== -1) {
      if (bestBase === -1 || curLen > bestLen) {
        bestBase = curBase;
        bestLen = curLen;
      }
      curBase = -1;
    }
  }
  if (curBase !== -1 && (bestBase === -1 || curLen > bestLen)) {
    bestBase = curBase;
    bestLen = curLen;
  }
  return bestBase === -1 || bestLen < 2 ? -1 : (bestBase << 4) | bestLen;
}

/**
 * Formats 16 bytes at `offset` as IPv6 the way glibc `inet_ntop` does: the
 * longest run (first of equal runs) of two or more zero groups becomes `::`,
 * hex in lower case, and `::a.b.c.d` / `::ffff:a.b.c.d` for IPv4-compatible
 * and IPv4-mapped addresses.
 */
export function formatIPv6(bytes: Uint8Array, offset: number): string {
  const run = zeroRun(bytes, offset);
  const bestBase = run < 0 ? -1 : run >> 4, bestLen = run & 15;
  let out = "";
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ":";
      continue;
    }
    if (i !== 0) out += ":";
    if (
      i === 6 && bestBase === 0 &&
      (bestLen === 6 ||
        (bestLen === 5 && bytes[offset + 10] === 0xff && bytes[offset + 11] === 0xff))
    ) {
      out += formatIPv4(bytes, offset + 12);
      break;
    }
    out += hexGroup(bytes[offset + 2 * i]!, bytes[offset + 2 * i + 1]!);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out += ":";
  return out;
}

/**
 * The value of the dotted quad `text[from, to)` as a 32-bit number, or -1:
 * four decimal parts 0–255 without leading zeros, as `inet_pton` reads them.
 * (A scan of character codes: no regular expression, no split — every
 * address of a loaded file or a filter goes through here.)
 */
function dottedQuad(text: string, from: number, to: number): number {
  let value = 0, part = 0, digits = 0, dots = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) { // "."
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && part === 0) return -1; // a leading zero
      part = part * 10 + c - 48;
      if (part > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + part;
}

// Address bytes are views of a shared slab: a `new Uint8Array` costs a
// third of a microsecond here (its own backing store), a view of a slab a
// tenth of that, and a loaded file parses four addresses a line, twice.
const SLAB_SIZE = 16 * 1024;
let slab = new Uint8Array(SLAB_SIZE);
let slabUsed = 0;

/** `n` zeroed bytes of their own (a view of the current slab). */
function addressBytes(n: number): Uint8Array {
  if (slabUsed + n > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabUsed = 0;
  }
  const bytes = slab.subarray(slabUsed, slabUsed + n);
  slabUsed += n;
  return bytes;
}

function ipv4Bytes(value: number, out: Uint8Array, offset: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

/** Parses dotted-quad IPv4 into 4 bytes, or returns undefined. */
export function parseIPv4(text: string): Uint8Array | undefined {
  const value = text.length > 15 ? -1 : dottedQuad(text, 0, text.length);
  if (value < 0) return undefined;
  const bytes = addressBytes(4);
  ipv4Bytes(value, bytes, 0);
  return bytes;
}

/** The value of a hex digit's character code, or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

/** Parses IPv6 text (with `::` and an optional trailing IPv4) into 16 bytes, or undefined. */
export function parseIPv6(text: string): Uint8Array | undefined {
  const n = text.length;
  if (n < 2 || n > 45) return undefined;
  const bytes = addressBytes(16);
  let at = 0; // bytes written
  let gap = -1; // where "::" stands, in bytes
  let i = 0;
  if (text.charCodeAt(0) === 58) { // a leading ":" only as "::"
    if (text.charCodeAt(1) !== 58) return undefined;
    gap = 0;
    i = 2;
    if (i === n) return bytes;
  }
  while (i < n) {
    // One group: hex digits up to ":" or the end, or a trailing IPv4.
    let group = 0, digits = 0, j = i;
    for (; j < n; j++) {
      const d = hexDigit(text.charCodeAt(j));
      if (d < 0) break;
      group = (group << 4) | d;
      digits++;
    }
    if (j < n && text.charCodeAt(j) === 46) { // "." : the rest is a dotted quad
      const v4 = at <= 12 ? dottedQuad(text, i, n) : -1;
      if (v4 < 0) return undefined;
      ipv4Bytes(v4, bytes, at);
      at += 4;
      i = n;
      break;
    }
    if (digits === 0 || digits > 4 || at === 16) return undefined;
    bytes[at++] = group >> 8;
    bytes[at++] = group & 0xff;
    if (j === n) {
      i = n;
      break;
    }
    if (text.charCodeAt(j) !== 58) return undefined;
    if (j + 1 < n && text.charCodeAt(j + 1) === 58) { // "::"
      if (gap >= 0) return undefined;
      gap = at;
      i = j + 2;
      if (i === n) break;
    } else {
      i = j + 1;
      if (i === n) return undefined; // a trailing single ":"
    }
  }
  if (gap < 0) return at === 16 ? bytes : undefined;
  if (at === 16) return undefined; // "::" stands for at least one group
  const tail = at - gap;
  bytes.copyWithin(16 - tail, gap, at);
  bytes.fill(0, gap, 16 - tail);
  return bytes;
}

/** A parsed address with its family. */
export interface ParsedAddress {
  /** `"ipv4"` or `"ipv6"`. */
  family: "ipv4" | "ipv6";
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
  /** The canonical text, as `inet_ntop` prints it. */
  text: string;
}

/**
 * Parses an IPv4 or IPv6 address; throws a `TypeError` naming `argument`
 * when the text is neither.
 */
export function parseAddress(text: string | undefined, argument: string): ParsedAddress {
  if (typeof text !== "string") {
    throw new ArgumentError(argument, text, `${String(text)} is not an address string`);
  }
  const v4 = parseIPv4(text);
  if (v4) return { family: "ipv4", bytes: v4, text }; // dotted quads parse only in canonical form
  const v6 = parseIPv6(text);
  if (v6) return { family: "ipv6", bytes: v6, text: formatIPv6(v6, 0) };
  throw new ArgumentError(argument, text, `"${text}" is not an IPv4 or IPv6 address`);
}
