/**
 * The transcoder: `conntrack -L` text written straight from an entry
 * message's bytes into an output buffer — addresses, ports, state names and
 * numbers as ASCII in place, with no `Flow`, string or line per entry. It
 * reads the fields where the attribute walk of src/scan.ts found them, the
 * walk the fast decoder builds its `Flow` from, and writes them as
 * src/format.ts's `formatFlow` (and `flowToJson`) do; an entry the walk
 * does not take is decoded and formatted (the caller's fallback).
 * tests/unit/transcode_test.ts checks that it writes their bytes on captured
 * dumps and on mutations of them.
 *
 * How it is written, for speed (bench/transcode_bench.ts): every writing
 * helper takes the output buffer and the position and returns the new
 * position, so the position lives in a register rather than in an object;
 * constant text is pre-encoded bytes, merged where pieces always come
 * together; decimal numbers are written two digits at a time from a table;
 * an IPv4 address's octets come from a table of their text. Writes may run a
 * few bytes past the returned position (an octet's unused digits): the next
 * write overwrites them, and the sink only takes `[0, used)`.
 *
 * @module
 */

import { formatIPv6, zeroRun } from "./address.ts";
import { CT_STATUS } from "./constants.ts";
import { ctime, type FormatOptions, statusJson } from "./format.ts";
import { protocolInfo, stateName, TCP_STATES } from "./protocols.ts";
import * as S from "./scan.ts";

/**
 * Where the transcoder writes: a buffer and how much of it is used;
 * `room(n)` makes room for `n` more bytes (flushing, or growing).
 */
export interface ByteSink {
  /** The buffer (may change on `room`). */
  buffer: Uint8Array;
  /** Bytes of it in use. */
  used: number;
  /** Makes sure `n` more bytes fit. */
  room(n: number): void;
}

/** The longest line the transcoder writes before labels (tuples, counters, times): a bound. */
const MAX_LINE = 1024;

function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** "00" to "99": the two digits of `n` at `2 * n`. */
const PAIRS = ascii(Array.from({ length: 100 }, (_, n) => String(n).padStart(2, "0")).join(""));

/** Each octet's decimal text at `4 * n`: its length, then its (up to 3) digits. */
const OCTETS = new Uint8Array(1024);
for (let n = 0; n < 256; n++) {
  const text = String(n);
  OCTETS[4 * n] = text.length;
  for (let i = 0; i < text.length; i++) OCTETS[4 * n + 1 + i] = text.charCodeAt(i);
}

/** Lower-case hex digits. */
const HEX_DIGITS = ascii("0123456789abcdef");

/** Copies `text` (pre-encoded) to `at`. */
function put(out: Uint8Array, at: number, text: Uint8Array): number {
  const n = text.length;
  for (let i = 0; i < n; i++) out[at + i] = text[i]!;
  return at + n;
}

/** ASCII `text` (for the rare pieces not worth pre-encoding). */
function str(out: Uint8Array, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  return at;
}

/** An unsigned integer below 2^53 in decimal. */
function dec(out: Uint8Array, at: number, n: number): number {
  if (n < 100) {
    if (n < 10) {
      out[at] = 48 + n;
      return at + 1;
    }
    out[at] = PAIRS[2 * n]!;
    out[at + 1] = PAIRS[2 * n + 1]!;
    return at + 2;
  }
  if (n >= 4294967296) return decWide(out, at, n);
  const len = n < 10000
    ? (n < 1000 ? 3 : 4)
    : n < 1000000
    ? (n < 100000 ? 5 : 6)
    : n < 100000000
    ? (n < 10000000 ? 7 : 8)
    : (n < 1000000000 ? 9 : 10);
  let i = at + len;
  while (n >= 100) {
    const q = (n / 100) >>> 0;
    const r = 2 * (n - 100 * q);
    out[--i] = PAIRS[r + 1]!;
    out[--i] = PAIRS[r]!;
    n = q;
  }
  if (n < 10) out[i - 1] = 48 + n;
  else {
    out[i - 1] = PAIRS[2 * n + 1]!;
    out[i - 2] = PAIRS[2 * n]!;
  }
  return at + len;
}

/** `n` from 2^32 to 2^53: its high digits, then its low eight. */
function decWide(out: Uint8Array, at: number, n: number): number {
  const high = Math.floor(n / 100000000);
  let low = n - high * 100000000;
  at = dec(out, at, high);
  for (let i = at + 6; i >= at; i -= 2) {
    const q = (low / 100) >>> 0;
    const r = 2 * (low - 100 * q);
    out[i] = PAIRS[r]!;
    out[i + 1] = PAIRS[r + 1]!;
    low = q;
  }
  return at + 8;
}

/** The big-endian u64 at `a` in decimal. */
function dec64(out: Uint8Array, at: number, v: DataView, a: number): number {
  const hi = v.getUint32(a, false);
  if (hi < 0x200000) return dec(out, at, hi * 4294967296 + v.getUint32(a + 4, false));
  return str(out, at, v.getBigUint64(a, false).toString());
}

/** The big-endian u16 at `a`. */
function u16(b: Uint8Array, a: number): number {
  return (b[a]! << 8) | b[a + 1]!;
}

/** A u8 / u16 field at `a`, 0 when absent (-1: formatFlow's `?? 0`). */
function field8(b: Uint8Array, a: number): number {
  return a < 0 ? 0 : b[a]!;
}

function field16(b: Uint8Array, a: number): number {
  return a < 0 ? 0 : u16(b, a);
}

/** The address at `a` (`len` bytes: 4 or 16). */
function address(out: Uint8Array, at: number, b: Uint8Array, a: number, len: number): number {
  if (len !== 4) return ipv6(out, at, b, a);
  let k = 4 * b[a]!;
  out[at] = OCTETS[k + 1]!;
  out[at + 1] = OCTETS[k + 2]!;
  out[at + 2] = OCTETS[k + 3]!;
  at += OCTETS[k]!;
  out[at++] = 46;
  k = 4 * b[a + 1]!;
  out[at] = OCTETS[k + 1]!;
  out[at + 1] = OCTETS[k + 2]!;
  out[at + 2] = OCTETS[k + 3]!;
  at += OCTETS[k]!;
  out[at++] = 46;
  k = 4 * b[a + 2]!;
  out[at] = OCTETS[k + 1]!;
  out[at + 1] = OCTETS[k + 2]!;
  out[at + 2] = OCTETS[k + 3]!;
  at += OCTETS[k]!;
  out[at++] = 46;
  k = 4 * b[a + 3]!;
  out[at] = OCTETS[k + 1]!;
  out[at + 1] = OCTETS[k + 2]!;
  out[at + 2] = OCTETS[k + 3]!;
  return at + OCTETS[k]!;
}

/** A 16-bit group in hex without leading zeros. */
function hexGroup(out: Uint8Array, at: number, g: number): number {
  if (g >= 0x1000) out[at++] = HEX_DIGITS[g >> 12]!;
  if (g >= 0x100) out[at++] = HEX_DIGITS[(g >> 8) & 15]!;
  if (g >= 0x10) out[at++] = HEX_DIGITS[(g >> 4) & 15]!;
  out[at] = HEX_DIGITS[g & 15]!;
  return at + 1;
}

/**
 * The IPv6 address at `a` as glibc's inet_ntop writes it (src/address.ts's
 * formatIPv6, written in place): the longest run of two or more zero groups
 * (the first of equal runs) as `::`; IPv4-compatible and -mapped addresses
 * (as formatIPv6 decides them) through it.
 */
function ipv6(out: Uint8Array, at: number, b: Uint8Array, a: number): number {
  const run = zeroRun(b, a);
  if (run < 0) {
    at = hexGroup(out, at, u16(b, a));
    for (let i = 2; i < 16; i += 2) {
      out[at++] = 58;
      at = hexGroup(out, at, u16(b, a + i));
    }
    return at;
  }
  const bestBase = run >> 4, bestLen = run & 15;
  if (bestBase === 0 && (bestLen === 6 || bestLen === 5)) {
    return str(out, at, formatIPv6(b, a)); // ::a.b.c.d, ::ffff:a.b.c.d and their neighbours: rare
  }
  for (let i = 0; i < bestBase; i++) {
    if (i !== 0) out[at++] = 58;
    at = hexGroup(out, at, u16(b, a + 2 * i));
  }
  out[at++] = 58;
  const after = bestBase + bestLen;
  if (after === 8) out[at++] = 58;
  for (let i = after; i < 8; i++) {
    out[at++] = 58;
    at = hexGroup(out, at, u16(b, a + 2 * i));
  }
  return at;
}

/** The label names of `options` in bytes at most, and whether they are all ASCII. */
function labelRoom(options: FormatOptions): [number, boolean] {
  let room = 16, ascii = true;
  for (const name of options.labelNames ?? []) {
    room += (name?.length ?? 0) + 1;
    if (name !== undefined && !/^[\x20-\x7e]*$/.test(name)) ascii = false;
  }
  return [room, ascii];
}

function pad8(name: string): string {
  return name.length >= 8 ? name : name + "        ".slice(name.length);
}

/** The text line's constant pieces, pre-encoded (built with the first text writer). */
interface TextPieces {
  /** `"%-8s %u"` of each layer-4 protocol number. */
  l4: readonly Uint8Array[];
  /** ` STATE` of each TCP state number. */
  tcpStates: readonly Uint8Array[];
  none: Uint8Array;
  ipv4: Uint8Array;
  ipv6: Uint8Array;
  src: Uint8Array;
  dst: Uint8Array;
  sport: Uint8Array;
  dport: Uint8Array;
  srckey: Uint8Array;
  dstkey: Uint8Array;
  type: Uint8Array;
  code: Uint8Array;
  id: Uint8Array;
  packets: Uint8Array;
  bytes: Uint8Array;
  zoneOrig: Uint8Array;
  zoneReply: Uint8Array;
  unreplied: Uint8Array;
  hwOffload: Uint8Array;
  offload: Uint8Array;
  assured: Uint8Array;
  mark: Uint8Array;
  secmark: Uint8Array;
  zone: Uint8Array;
  use: Uint8Array;
}

let textPieces: TextPieces | undefined;

function buildTextPieces(): TextPieces {
  return {
    l4: Array.from({ length: 256 }, (_, n) => ascii(`${pad8(protocolInfo(n).name)} ${n}`)),
    tcpStates: TCP_STATES.map((s) => ascii(` ${s}`)),
    none: ascii(" NONE"),
    ipv4: ascii("ipv4     2 "),
    ipv6: ascii("ipv6     10 "),
    src: ascii(" src="),
    dst: ascii(" dst="),
    sport: ascii(" sport="),
    dport: ascii(" dport="),
    srckey: ascii(" srckey=0x"),
    dstkey: ascii(" dstkey=0x"),
    type: ascii(" type="),
    code: ascii(" code="),
    id: ascii(" id="),
    packets: ascii(" packets="),
    bytes: ascii(" bytes="),
    zoneOrig: ascii(" zone-orig="),
    zoneReply: ascii(" zone-reply="),
    unreplied: ascii(" [UNREPLIED]"),
    hwOffload: ascii(" [HW_OFFLOAD]"),
    offload: ascii(" [OFFLOAD]"),
    assured: ascii(" [ASSURED]"),
    mark: ascii(" mark="),
    secmark: ascii(" secmark="),
    zone: ascii(" zone="),
    use: ascii(" use="),
  };
}

const NSEC = 1_000_000_000n;

/**
 * Writes entries as `conntrack -L` text lines (`formatFlow`'s). One writer
 * per output; it keeps its walk's slots, so it writes one entry at a time.
 */
export class FlowTextWriter {
  readonly #sink: ByteSink;
  readonly #options: FormatOptions;
  readonly #slots = new Int32Array(S.SLOTS);
  readonly #labelRoom: number;
  /** Label names are all ASCII (else an entry with labels takes the decoder's path). */
  readonly #asciiNames: boolean;
  readonly #t: TextPieces;

  /** A writer into `sink` in the format `options` give (`now` is read at each line). */
  constructor(sink: ByteSink, options: FormatOptions) {
    this.#sink = sink;
    this.#options = options;
    [this.#labelRoom, this.#asciiNames] = labelRoom(options);
    this.#t = textPieces ??= buildTextPieces();
  }

  /**
   * Writes the line of the entry message at `offset` (`length` bytes) of
   * `bytes`, and its newline; false, writing nothing, for an entry the
   * walk leaves to the checked decoder.
   */
  write(bytes: Uint8Array, view: DataView, offset: number, length: number): boolean {
    const options = this.#options;
    if (options.eventType) return false; // events: the decoder's path
    const s = this.#slots;
    if (!S.scanEntry(bytes, view, offset, length, s)) return false;
    const labels = s[S.S_LABELS]!;
    if (!this.#asciiNames && labels >= 0) return false;
    const sink = this.#sink;
    sink.room(MAX_LINE);
    let at = this.#line(sink.buffer, sink.used, bytes, view, s);
    const names = options.labelNames;
    if (names !== undefined && labels >= 0) {
      sink.used = at;
      sink.room(this.#labelRoom);
      at = textLabels(sink.buffer, sink.used, bytes, labels, s[S.S_LABELS_LEN]!, names);
    }
    sink.buffer[at] = 10;
    sink.used = at + 1;
    return true;
  }

  /** The line, as formatFlow writes it (see there for each piece). */
  #line(out: Uint8Array, at: number, b: Uint8Array, v: DataView, s: Int32Array): number {
    const options = this.#options, t = this.#t;
    if (options.extended) at = put(out, at, s[S.S_FAMILY] === 2 ? t.ipv4 : t.ipv6);
    const proto = s[S.ORIG + S.T_PROTO]!;
    at = put(out, at, t.l4[proto < 0 ? 0 : b[proto]!]!);
    let a = s[S.S_TIMEOUT]!;
    if (a >= 0) {
      out[at++] = 32;
      at = dec(out, at, v.getUint32(a, false));
    }
    if (s[S.S_TCP]! >= 0) at = put(out, at, t.tcpStates[b[s[S.S_TCP_STATE]!]!] ?? t.none);
    at = textTuple(out, at, b, s, S.ORIG, t);
    if ((a = s[S.ORIG + S.T_ZONE]!) >= 0) {
      at = put(out, at, t.zoneOrig);
      at = dec(out, at, u16(b, a));
    }
    if ((a = s[S.S_COUNTERS_ORIG]!) >= 0) at = textCounters(out, at, v, s, S.S_COUNTERS_ORIG, t);
    a = s[S.S_STATUS]!;
    const status = a < 0 ? 0 : v.getUint32(a, false);
    if ((status & CT_STATUS.SEEN_REPLY) === 0) at = put(out, at, t.unreplied);
    at = textTuple(out, at, b, s, S.REPLY, t);
    if ((a = s[S.REPLY + S.T_ZONE]!) >= 0) {
      at = put(out, at, t.zoneReply);
      at = dec(out, at, u16(b, a));
    }
    if (s[S.S_COUNTERS_REPLY]! >= 0) at = textCounters(out, at, v, s, S.S_COUNTERS_REPLY, t);
    if (status & CT_STATUS.HW_OFFLOAD) at = put(out, at, t.hwOffload);
    else if (status & CT_STATUS.OFFLOAD) at = put(out, at, t.offload);
    else if (status & CT_STATUS.ASSURED) at = put(out, at, t.assured);
    if ((a = s[S.S_MARK]!) >= 0) {
      at = put(out, at, t.mark);
      at = dec(out, at, v.getUint32(a, false));
    }
    if ((a = s[S.S_SECMARK]!) >= 0) {
      at = put(out, at, t.secmark);
      at = dec(out, at, v.getUint32(a, false));
    }
    if ((a = s[S.S_ZONE]!) >= 0) {
      at = put(out, at, t.zone);
      at = dec(out, at, u16(b, a));
    }
    if (s[S.S_TIMESTAMP_START]! >= 0) at = this.#times(out, at, v, s);
    if ((a = s[S.S_USE]!) >= 0) {
      at = put(out, at, t.use);
      at = dec(out, at, v.getUint32(a, false));
    }
    if (options.id && (a = s[S.S_ID]!) >= 0) {
      at = put(out, at, t.id);
      at = dec(out, at, v.getUint32(a, false));
    }
    return at;
  }

  /** `delta-time=` and, with `ktimestamp`, `[start=…] [stop=…]`. */
  #times(out: Uint8Array, at: number, v: DataView, s: Int32Array): number {
    const start = v.getBigUint64(s[S.S_TIMESTAMP_START]!, false);
    const stopAt = s[S.S_TIMESTAMP_STOP]!;
    const stop = stopAt < 0 ? 0n : v.getBigUint64(stopAt, false);
    const startSec = Number(start / NSEC);
    const endSec = stop === 0n
      ? (this.#options.now ?? Math.floor(Date.now() / 1000))
      : Number(stop / NSEC);
    const delta = endSec - startSec;
    at = str(out, at, " delta-time=");
    at = str(out, at, String(delta >= 0 ? delta : BigInt.asUintN(64, BigInt(delta))));
    if (this.#options.ktimestamp) {
      at = str(out, at, ` [start=${ctime(startSec)}]`);
      if (stop !== 0n) at = str(out, at, ` [stop=${ctime(Number(stop / NSEC))}]`);
    }
    return at;
  }
}

/** `labels=name,…` (only named bits; bare `labels` when none has a name). */
function textLabels(
  out: Uint8Array,
  at: number,
  b: Uint8Array,
  a: number,
  len: number,
  names: readonly (string | undefined)[],
): number {
  at = str(out, at, " labels");
  let first = true;
  for (let i = 0; i < len; i++) {
    const byte = b[a + i]!;
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if ((byte & (1 << bit)) === 0) continue;
      const name = names[i * 8 + bit];
      if (!name) continue;
      out[at++] = first ? 61 : 44; // "=" then ","
      at = str(out, at, name);
      first = false;
    }
  }
  return at;
}

/** One direction's addresses and layer-4 fields, each piece led by a space. */
function textTuple(
  out: Uint8Array,
  at: number,
  b: Uint8Array,
  s: Int32Array,
  base: number,
  t: TextPieces,
): number {
  at = put(out, at, t.src);
  let a = s[base + S.T_SRC]!;
  if (a >= 0) at = address(out, at, b, a, s[base + S.T_SRC_LEN]!);
  at = put(out, at, t.dst);
  if ((a = s[base + S.T_DST]!) >= 0) at = address(out, at, b, a, s[base + S.T_DST_LEN]!);
  const p = s[base + S.T_PROTO]!;
  if (p < 0) return at;
  switch (b[p]) {
    case 6:
    case 17:
    case 136:
    case 132:
    case 33:
      at = put(out, at, t.sport);
      at = dec(out, at, field16(b, s[base + S.T_SPORT]!));
      at = put(out, at, t.dport);
      return dec(out, at, field16(b, s[base + S.T_DPORT]!));
    case 47:
      at = put(out, at, t.srckey);
      at = str(out, at, field16(b, s[base + S.T_SPORT]!).toString(16));
      at = put(out, at, t.dstkey);
      return str(out, at, field16(b, s[base + S.T_DPORT]!).toString(16));
    case 1:
    case 58:
      at = put(out, at, t.type);
      at = dec(out, at, field8(b, s[base + S.T_ICMP_TYPE]!));
      at = put(out, at, t.code);
      at = dec(out, at, field8(b, s[base + S.T_ICMP_CODE]!));
      at = put(out, at, t.id);
      return dec(out, at, field16(b, s[base + S.T_ICMP_ID]!));
  }
  return at;
}

/** ` packets=… bytes=…` of the counters at `base` (present, packets, bytes). */
function textCounters(
  out: Uint8Array,
  at: number,
  v: DataView,
  s: Int32Array,
  base: number,
  t: TextPieces,
): number {
  at = put(out, at, t.packets);
  let a = s[base + 1]!;
  if (a < 0) out[at++] = 48;
  else at = dec64(out, at, v, a);
  at = put(out, at, t.bytes);
  if ((a = s[base + 2]!) < 0) out[at++] = 48;
  else at = dec64(out, at, v, a);
  return at;
}

/** The longest JSON object before labels: a bound. */
const MAX_JSON = 2048;

/** The JSON object's constant pieces, pre-encoded (built with the first JSON writer). */
interface JsonPieces {
  ipv4: Uint8Array;
  ipv6: Uint8Array;
  reply: Uint8Array;
  /** `N,"protocolName":"name"` of each protocol number. */
  protocols: readonly Uint8Array[];
  /** `,"stateName":"NAME"` of each TCP state number. */
  tcpStates: readonly Uint8Array[];
  src: Uint8Array;
  dst: Uint8Array;
  protocol: Uint8Array;
  srcPort: Uint8Array;
  dstPort: Uint8Array;
  icmpId: Uint8Array;
  icmpType: Uint8Array;
  icmpCode: Uint8Array;
  tupleZone: Uint8Array;
  timeout: Uint8Array;
  mark: Uint8Array;
  use: Uint8Array;
  id: Uint8Array;
  zone: Uint8Array;
  tcp: Uint8Array;
  wscaleOrig: Uint8Array;
  wscaleReply: Uint8Array;
  flagsOrig: Uint8Array;
  flagsReply: Uint8Array;
  mask: Uint8Array;
  countersOrig: Uint8Array;
  countersReply: Uint8Array;
  bytes: Uint8Array;
  secmark: Uint8Array;
  timestampStart: Uint8Array;
  timestampStop: Uint8Array;
  timestampEvent: Uint8Array;
  labels: Uint8Array;
  labelsMask: Uint8Array;
  synproxy: Uint8Array;
  its: Uint8Array;
  tsoff: Uint8Array;
}

let jsonPieces: JsonPieces | undefined;

function buildJsonPieces(): JsonPieces {
  return {
    ipv4: ascii('{"family":"ipv4","orig":'),
    ipv6: ascii('{"family":"ipv6","orig":'),
    reply: ascii(',"reply":'),
    protocols: Array.from(
      { length: 256 },
      (_, n) => ascii(`${n},"protocolName":"${protocolInfo(n).name}"`),
    ),
    tcpStates: TCP_STATES.map((s) => ascii(`,"stateName":"${s}"`)),
    src: ascii(',"src":"'),
    dst: ascii(',"dst":"'),
    protocol: ascii(',"protocol":'),
    srcPort: ascii(',"srcPort":'),
    dstPort: ascii(',"dstPort":'),
    icmpId: ascii(',"icmpId":'),
    icmpType: ascii(',"icmpType":'),
    icmpCode: ascii(',"icmpCode":'),
    tupleZone: ascii(',"zone":'),
    timeout: ascii(',"timeout":'),
    mark: ascii(',"mark":'),
    use: ascii(',"use":'),
    id: ascii(',"id":'),
    zone: ascii(',"zone":'),
    tcp: ascii(',"tcp":{"state":'),
    wscaleOrig: ascii(',"wscaleOrig":'),
    wscaleReply: ascii(',"wscaleReply":'),
    flagsOrig: ascii(',"flagsOrig":{"flags":'),
    flagsReply: ascii(',"flagsReply":{"flags":'),
    mask: ascii(',"mask":'),
    countersOrig: ascii(',"countersOrig":{"packets":'),
    countersReply: ascii(',"countersReply":{"packets":'),
    bytes: ascii(',"bytes":'),
    secmark: ascii(',"secmark":'),
    timestampStart: ascii(',"timestampStart":'),
    timestampStop: ascii(',"timestampStop":'),
    timestampEvent: ascii(',"timestampEvent":'),
    labels: ascii(',"labels":['),
    labelsMask: ascii(',"labelsMask":['),
    synproxy: ascii(',"synproxy":{"isn":'),
    its: ascii(',"its":'),
    tsoff: ascii(',"tsoff":'),
  };
}

/**
 * Writes entries as `flowToJson`'s lines (NDJSON, `--json`). One writer per
 * output; it keeps its walk's slots, so it writes one entry at a time.
 */
export class FlowJsonWriter {
  readonly #sink: ByteSink;
  readonly #slots = new Int32Array(S.SLOTS);
  readonly #j: JsonPieces;
  /** statusJson's text of the last status written, pre-encoded (a dump's statuses repeat). */
  #status = -1;
  #statusBytes: Uint8Array = new Uint8Array(0);

  /** A writer into `sink`. */
  constructor(sink: ByteSink) {
    this.#sink = sink;
    this.#j = jsonPieces ??= buildJsonPieces();
  }

  /** As {@link FlowTextWriter.write}, in JSON. */
  write(bytes: Uint8Array, view: DataView, offset: number, length: number): boolean {
    const s = this.#slots;
    if (!S.scanEntry(bytes, view, offset, length, s)) return false;
    const b = bytes, v = view, j = this.#j;
    const labels = s[S.S_LABELS]!, mask = s[S.S_LABELS_MASK]!;
    const labelsLen = labels >= 0 ? s[S.S_LABELS_LEN]! : 0;
    const maskLen = mask >= 0 ? s[S.S_LABELS_MASK_LEN]! : 0;
    const sink = this.#sink;
    sink.room(MAX_JSON + 32 * (labelsLen + maskLen));
    const out = sink.buffer;
    let at = put(out, sink.used, s[S.S_FAMILY] === 2 ? j.ipv4 : j.ipv6);
    at = jsonTuple(out, at, b, s, S.ORIG, j);
    at = put(out, at, j.reply);
    at = jsonTuple(out, at, b, s, S.REPLY, j);
    out[at++] = 44;
    let a = s[S.S_STATUS]!;
    at = put(out, at, this.#statusText(a < 0 ? 0 : v.getUint32(a, false)));
    if ((a = s[S.S_TIMEOUT]!) >= 0) at = dec(out, put(out, at, j.timeout), v.getUint32(a, false));
    if ((a = s[S.S_MARK]!) >= 0) at = dec(out, put(out, at, j.mark), v.getUint32(a, false));
    if ((a = s[S.S_USE]!) >= 0) at = dec(out, put(out, at, j.use), v.getUint32(a, false));
    if ((a = s[S.S_ID]!) >= 0) at = dec(out, put(out, at, j.id), v.getUint32(a, false));
    if ((a = s[S.S_ZONE]!) >= 0) at = dec(out, put(out, at, j.zone), u16(b, a));
    if (s[S.S_TCP]! >= 0) at = jsonTcp(out, at, b, s, j);
    if (s[S.S_COUNTERS_ORIG]! >= 0) {
      at = jsonCounters(out, at, v, s, S.S_COUNTERS_ORIG, j.countersOrig, j);
    }
    if (s[S.S_COUNTERS_REPLY]! >= 0) {
      at = jsonCounters(out, at, v, s, S.S_COUNTERS_REPLY, j.countersReply, j);
    }
    if ((a = s[S.S_SECMARK]!) >= 0) at = dec(out, put(out, at, j.secmark), v.getUint32(a, false));
    if ((a = s[S.S_TIMESTAMP_START]!) >= 0) at = dec64(out, put(out, at, j.timestampStart), v, a);
    if ((a = s[S.S_TIMESTAMP_STOP]!) >= 0) at = dec64(out, put(out, at, j.timestampStop), v, a);
    if ((a = s[S.S_TIMESTAMP_EVENT]!) >= 0) at = dec64(out, put(out, at, j.timestampEvent), v, a);
    if (labels >= 0) at = jsonBits(out, put(out, at, j.labels), b, labels, labelsLen);
    if (mask >= 0) at = jsonBits(out, put(out, at, j.labelsMask), b, mask, maskLen);
    if (s[S.S_SYNPROXY]! >= 0) {
      at = put(out, at, j.synproxy);
      at = dec(out, at, (a = s[S.S_SYNPROXY_ISN]!) < 0 ? 0 : v.getUint32(a, false));
      at = put(out, at, j.its);
      at = dec(out, at, (a = s[S.S_SYNPROXY_ITS]!) < 0 ? 0 : v.getUint32(a, false));
      at = put(out, at, j.tsoff);
      at = dec(out, at, (a = s[S.S_SYNPROXY_TSOFF]!) < 0 ? 0 : v.getUint32(a, false));
      out[at++] = 125;
    }
    out[at] = 125;
    out[at + 1] = 10;
    sink.used = at + 2;
    return true;
  }

  /** `"status":N,"statusFlags":[…]` (statusJson's) as bytes. */
  #statusText(status: number): Uint8Array {
    if (status !== this.#status) {
      this.#status = status;
      this.#statusBytes = ascii(statusJson(status));
    }
    return this.#statusBytes;
  }
}

/** A tuple as `flowToJson` writes it: the keys of its present fields, in the Tuple's order. */
function jsonTuple(
  out: Uint8Array,
  at: number,
  b: Uint8Array,
  s: Int32Array,
  base: number,
  j: JsonPieces,
): number {
  const start = at; // each key is led by ","; the first "," becomes the "{"
  let a = s[base + S.T_SRC]!;
  if (a >= 0) {
    at = address(out, put(out, at, j.src), b, a, s[base + S.T_SRC_LEN]!);
    out[at++] = 34;
  }
  if ((a = s[base + S.T_DST]!) >= 0) {
    at = address(out, put(out, at, j.dst), b, a, s[base + S.T_DST_LEN]!);
    out[at++] = 34;
  }
  // protocolName: the name `conntrack -L` prints, as flowToJson writes it.
  if ((a = s[base + S.T_PROTO]!) >= 0) at = put(out, put(out, at, j.protocol), j.protocols[b[a]!]!);
  if ((a = s[base + S.T_SPORT]!) >= 0) at = dec(out, put(out, at, j.srcPort), u16(b, a));
  if ((a = s[base + S.T_DPORT]!) >= 0) at = dec(out, put(out, at, j.dstPort), u16(b, a));
  if ((a = s[base + S.T_ICMP_ID]!) >= 0) at = dec(out, put(out, at, j.icmpId), u16(b, a));
  if ((a = s[base + S.T_ICMP_TYPE]!) >= 0) at = dec(out, put(out, at, j.icmpType), b[a]!);
  if ((a = s[base + S.T_ICMP_CODE]!) >= 0) at = dec(out, put(out, at, j.icmpCode), b[a]!);
  if ((a = s[base + S.T_ZONE]!) >= 0) at = dec(out, put(out, at, j.tupleZone), u16(b, a));
  if (at === start) out[at++] = 123;
  else out[start] = 123;
  out[at] = 125;
  return at + 1;
}

function jsonTcp(out: Uint8Array, at: number, b: Uint8Array, s: Int32Array, j: JsonPieces): number {
  const state = b[s[S.S_TCP_STATE]!]!;
  at = dec(out, put(out, at, j.tcp), state);
  const name = j.tcpStates[state];
  if (name !== undefined) at = put(out, at, name);
  else {
    at = str(out, at, ',"stateName":"');
    at = str(out, at, stateName(TCP_STATES, state));
    out[at++] = 34;
  }
  let a = s[S.S_TCP_WSCALE_ORIG]!;
  if (a >= 0) at = dec(out, put(out, at, j.wscaleOrig), b[a]!);
  if ((a = s[S.S_TCP_WSCALE_REPLY]!) >= 0) at = dec(out, put(out, at, j.wscaleReply), b[a]!);
  if ((a = s[S.S_TCP_FLAGS_ORIG]!) >= 0) at = jsonFlags(out, put(out, at, j.flagsOrig), b, a, j);
  if ((a = s[S.S_TCP_FLAGS_REPLY]!) >= 0) at = jsonFlags(out, put(out, at, j.flagsReply), b, a, j);
  out[at] = 125;
  return at + 1;
}

/** `N,"mask":M}` of the TCP flags at `a`. */
function jsonFlags(out: Uint8Array, at: number, b: Uint8Array, a: number, j: JsonPieces): number {
  at = dec(out, put(out, dec(out, at, b[a]!), j.mask), b[a + 1]!);
  out[at] = 125;
  return at + 1;
}

function jsonCounters(
  out: Uint8Array,
  at: number,
  v: DataView,
  s: Int32Array,
  base: number,
  key: Uint8Array,
  j: JsonPieces,
): number {
  at = put(out, at, key);
  let a = s[base + 1]!;
  if (a < 0) out[at++] = 48;
  else at = dec64(out, at, v, a);
  at = put(out, at, j.bytes);
  if ((a = s[base + 2]!) < 0) out[at++] = 48;
  else at = dec64(out, at, v, a);
  out[at] = 125;
  return at + 1;
}

/** The numbers of the bits set in the label bit set at `a` (`len` bytes), and the `]`. */
function jsonBits(out: Uint8Array, at: number, b: Uint8Array, a: number, len: number): number {
  let first = true;
  for (let i = 0; i < len; i++) {
    const byte = b[a + i]!;
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if ((byte & (1 << bit)) === 0) continue;
      if (!first) out[at++] = 44;
      at = dec(out, at, i * 8 + bit);
      first = false;
    }
  }
  out[at] = 93;
  return at + 1;
}
