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
 * Formats 16 bytes at `offset` as IPv6 the way glibc `inet_ntop` does: the
 * longest run (first of equal runs) of two or more zero groups becomes `::`,
 * hex in lower case, and `::a.b.c.d` / `::ffff:a.b.c.d` for IPv4-compatible
 * and IPv4-mapped addresses.
 */
export function formatIPv6(bytes: Uint8Array, offset: number): string {
  // Find the longest run of zero groups.
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
  if (bestBase !== -1 && bestLen < 2) bestBase = -1;
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

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Parses dotted-quad IPv4 into 4 bytes, or returns undefined. */
export function parseIPv4(text: string): Uint8Array | undefined {
  if (!IPV4_RE.test(text)) return undefined;
  return new Uint8Array(text.split(".").map(Number));
}

/** Parses IPv6 text (with `::` and an optional trailing IPv4) into 16 bytes, or undefined. */
export function parseIPv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const groups = part.split(":");
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (i === groups.length - 1 && g.includes(".")) {
        const v4 = parseIPv4(g);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0]!);
  const tail = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  let words: number[];
  if (halves.length === 2) {
    if (head.length + tail.length > 7) return undefined;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    if (head.length !== 8) return undefined;
    words = head;
  }
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    bytes[2 * i] = words[i]! >> 8;
    bytes[2 * i + 1] = words[i]! & 0xff;
  }
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
  if (v4) return { family: "ipv4", bytes: v4, text: formatIPv4(v4, 0) };
  const v6 = parseIPv6(text);
  if (v6) return { family: "ipv6", bytes: v6, text: formatIPv6(v6, 0) };
  throw new ArgumentError(argument, text, `"${text}" is not an IPv4 or IPv6 address`);
}
