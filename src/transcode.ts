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
 * helper takes a DataView of the output buffer and the position and returns
 * the new position, so the position lives in a register rather than in an
 * object; constant text is pre-encoded once, as little-endian u32 words
 * written a word a store (a protocol's piece when it is first written);
 * numbers are written four digits a store, made from a table of the 100
 * digit pairs; an IPv4 octet's digits and its dot are one word of a table.
 * Writes may run up to three bytes past the returned position: the next
 * write overwrites them, the sink only takes `[0, used)`, and the room asked
 * of the sink covers them (tests/unit/transcode_test.ts gives exactly that
 * room, so a write past it throws).
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

/**
 * Pre-encoded ASCII text as little-endian u32 words, written four bytes a
 * store: its length in bytes, then its bytes (the last word zero-padded).
 */
type Words = Uint32Array;

function words(text: string): Words {
  const w = new Uint32Array(Math.max(4, 1 + ((text.length + 3) >> 2)));
  w[0] = text.length;
  for (let i = 0; i < text.length; i++) w[1 + (i >> 2)]! |= text.charCodeAt(i) << (8 * (i & 3));
  return w;
}

/** The two digits of each number below 100, as a little-endian u16 (the tens in the low byte). */
const PAIRS = new Uint16Array(100);
/** Each octet's decimal text and a ".", as a little-endian u32 (all of "255." fits). */
const OCTET_DOT = new Uint32Array(256);
/** The length of each octet's {@link OCTET_DOT} text, with its ".". */
const OCTET_DOT_LEN = new Uint8Array(256);

/**
 * Fills the digit tables, once (with the first writer). Small on purpose:
 * a table of the 10000 four-digit words wrote ~3% faster but took 1 to 4 ms
 * to fill before the filling loop was optimised.
 */
function tables(): void {
  if (PAIRS[1] !== 0) return;
  for (let n = 0; n < 100; n++) PAIRS[n] = (48 + ((n / 10) | 0)) | ((48 + (n % 10)) << 8);
  for (let n = 0; n < 256; n++) {
    const len = n < 10 ? 1 : n < 100 ? 2 : 3;
    OCTET_DOT[n] = (digits4(n) >>> (32 - 8 * len)) | (46 << (8 * len));
    OCTET_DOT_LEN[n] = len + 1;
  }
}

/**
 * The four digits of `n` (below 10000), zero-padded, as a little-endian u32
 * (the first digit in the low byte).
 */
function digits4(n: number): number {
  const high = (n * 5243) >>> 19; // n / 100 for n below 43699
  return PAIRS[high]! | (PAIRS[n - 100 * high]! << 16);
}

/**
 * A piece for each protocol number (0 to 255), encoded when first written
 * ({@link pieceOf}): a dump has a few protocols, and start-up need not
 * encode 256.
 */
type PieceTable = (Words | undefined)[];

function pieceTable(): PieceTable {
  return new Array(256).fill(undefined);
}

/** Encodes piece `n` of `table` (`text(n)`), keeps it and returns it. */
function pieceOf(table: PieceTable, n: number, text: (n: number) => string): Words {
  return table[n] = words(text(n));
}

function l4Text(n: number): string {
  return `${pad8(protocolInfo(n).name)} ${n}`;
}

function protocolJson(n: number): string {
  return `,"protocol":${n},"protocolName":"${protocolInfo(n).name}"`;
}

/** A DataView of a sink's buffer, made again only when the buffer changes. */
class OutputView {
  #buffer: Uint8Array | undefined;
  #view: DataView = new DataView(new ArrayBuffer(0));

  of(buffer: Uint8Array): DataView {
    if (buffer !== this.#buffer) {
      this.#buffer = buffer;
      this.#view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    }
    return this.#view;
  }
}

/** Lower-case hex digits. */
const HEX_DIGITS = ascii("0123456789abcdef");

/** Writes `text` (pre-encoded) at `at`: no loop for the short pieces most are. */
function put(o: DataView, at: number, text: Words): number {
  const n = text[0]!;
  o.setUint32(at, text[1]!, true);
  if (n > 4) {
    o.setUint32(at + 4, text[2]!, true);
    if (n > 8) {
      o.setUint32(at + 8, text[3]!, true);
      if (n > 12) putRest(o, at, text);
    }
  }
  return at + n;
}

/** The words of `text` after its first 12 bytes. */
function putRest(o: DataView, at: number, text: Words): void {
  for (let i = 4, k = at + 12; i < text.length; i++, k += 4) o.setUint32(k, text[i]!, true);
}

/** ASCII `text` (for the rare pieces not worth pre-encoding). */
function str(o: DataView, at: number, text: string): number {
  for (let i = 0; i < text.length; i++) o.setUint8(at++, text.charCodeAt(i));
  return at;
}

/** `n` (below 10000) in decimal. */
function dec4(o: DataView, at: number, n: number): number {
  if (n < 10) {
    o.setUint8(at, 48 + n);
    return at + 1;
  }
  if (n < 100) {
    o.setUint16(at, PAIRS[n]!, true);
    return at + 2;
  }
  const w = digits4(n);
  if (n < 1000) {
    o.setUint32(at, w >>> 8, true);
    return at + 3;
  }
  o.setUint32(at, w, true);
  return at + 4;
}

/** An unsigned integer below 2^53 in decimal. */
function dec(o: DataView, at: number, n: number): number {
  return n < 10000 ? dec4(o, at, n) : decLong(o, at, n); // small, to be inlined
}

/** `n` from 10000 to 2^53 in decimal. */
function decLong(o: DataView, at: number, n: number): number {
  if (n < 100000000) {
    const high = (n / 10000) | 0;
    at = dec4(o, at, high);
    o.setUint32(at, digits4(n - 10000 * high), true);
    return at + 4;
  }
  const high = Math.floor(n / 100000000);
  const low = n - 100000000 * high, mid = (low / 10000) | 0;
  at = dec(o, at, high);
  o.setUint32(at, digits4(mid), true);
  o.setUint32(at + 4, digits4(low - 10000 * mid), true);
  return at + 8;
}

/** A counter: the big-endian u64 at `a`, or 0 when absent (`a` < 0). */
function counter(o: DataView, at: number, v: DataView, a: number): number {
  if (a >= 0) return dec64(o, at, v, a);
  o.setUint8(at, 48);
  return at + 1;
}

/** The big-endian u64 at `a` of `v` in decimal. */
function dec64(o: DataView, at: number, v: DataView, a: number): number {
  const hi = v.getUint32(a, false);
  if (hi < 0x200000) return dec(o, at, hi * 4294967296 + v.getUint32(a + 4, false));
  return str(o, at, v.getBigUint64(a, false).toString());
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
function address(o: DataView, at: number, b: Uint8Array, a: number, len: number): number {
  if (len !== 4) return ipv6(o, at, b, a);
  let x = b[a]!;
  o.setUint32(at, OCTET_DOT[x]!, true);
  at += OCTET_DOT_LEN[x]!;
  x = b[a + 1]!;
  o.setUint32(at, OCTET_DOT[x]!, true);
  at += OCTET_DOT_LEN[x]!;
  x = b[a + 2]!;
  o.setUint32(at, OCTET_DOT[x]!, true);
  at += OCTET_DOT_LEN[x]!;
  x = b[a + 3]!;
  o.setUint32(at, OCTET_DOT[x]!, true); // its "." is past the end: overwritten
  return at + OCTET_DOT_LEN[x]! - 1;
}

/** A 16-bit group in hex without leading zeros. */
function hexGroup(o: DataView, at: number, g: number): number {
  if (g >= 0x1000) o.setUint8(at++, HEX_DIGITS[g >> 12]!);
  if (g >= 0x100) o.setUint8(at++, HEX_DIGITS[(g >> 8) & 15]!);
  if (g >= 0x10) o.setUint8(at++, HEX_DIGITS[(g >> 4) & 15]!);
  o.setUint8(at, HEX_DIGITS[g & 15]!);
  return at + 1;
}

/**
 * The IPv6 address at `a` as glibc's inet_ntop writes it (src/address.ts's
 * formatIPv6, written in place): the longest run of two or more zero groups
 * (the first of equal runs) as `::`; IPv4-compatible and -mapped addresses
 * (as formatIPv6 decides them) through it.
 */
function ipv6(o: DataView, at: number, b: Uint8Array, a: number): number {
  const run = zeroRun(b, a);
  if (run < 0) {
    at = hexGroup(o, at, u16(b, a));
    for (let i = 2; i < 16; i += 2) {
      o.setUint8(at++, 58);
      at = hexGroup(o, at, u16(b, a + i));
    }
    return at;
  }
  const bestBase = run >> 4, bestLen = run & 15;
  if (bestBase === 0 && (bestLen === 6 || bestLen === 5)) {
    return str(o, at, formatIPv6(b, a)); // ::a.b.c.d, ::ffff:a.b.c.d and their neighbours: rare
  }
  for (let i = 0; i < bestBase; i++) {
    if (i !== 0) o.setUint8(at++, 58);
    at = hexGroup(o, at, u16(b, a + 2 * i));
  }
  o.setUint8(at++, 58);
  const after = bestBase + bestLen;
  if (after === 8) o.setUint8(at++, 58);
  for (let i = after; i < 8; i++) {
    o.setUint8(at++, 58);
    at = hexGroup(o, at, u16(b, a + 2 * i));
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
type TextPieces = ReturnType<typeof buildTextPieces>;

let textPieces: TextPieces | undefined;

function buildTextPieces() {
  return {
    /** `"%-8s %u"` of each layer-4 protocol number. */
    l4: pieceTable(),
    /** ` STATE` of each TCP state number. */
    tcpStates: TCP_STATES.map((s) => words(` ${s}`)),
    none: words(" NONE"),
    ipv4: words("ipv4     2 "),
    ipv6: words("ipv6     10 "),
    src: words(" src="),
    dst: words(" dst="),
    sport: words(" sport="),
    dport: words(" dport="),
    srckey: words(" srckey=0x"),
    dstkey: words(" dstkey=0x"),
    type: words(" type="),
    code: words(" code="),
    id: words(" id="),
    packets: words(" packets="),
    bytes: words(" bytes="),
    zoneOrig: words(" zone-orig="),
    zoneReply: words(" zone-reply="),
    unreplied: words(" [UNREPLIED]"),
    hwOffload: words(" [HW_OFFLOAD]"),
    offload: words(" [OFFLOAD]"),
    assured: words(" [ASSURED]"),
    mark: words(" mark="),
    secmark: words(" secmark="),
    zone: words(" zone="),
    use: words(" use="),
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
  readonly #out = new OutputView();

  /** A writer into `sink` in the format `options` give (`now` is read at each line). */
  constructor(sink: ByteSink, options: FormatOptions) {
    this.#sink = sink;
    this.#options = options;
    [this.#labelRoom, this.#asciiNames] = labelRoom(options);
    this.#t = textPieces ??= buildTextPieces();
    tables();
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
    let o = this.#out.of(sink.buffer);
    let at = this.#line(o, sink.used, bytes, view, s);
    const names = options.labelNames;
    if (names !== undefined && labels >= 0) {
      sink.used = at;
      sink.room(this.#labelRoom);
      o = this.#out.of(sink.buffer);
      at = textLabels(o, sink.used, bytes, labels, s[S.S_LABELS_LEN]!, names);
    }
    o.setUint8(at, 10);
    sink.used = at + 1;
    return true;
  }

  /** The line, as formatFlow writes it (see there for each piece). */
  #line(o: DataView, at: number, b: Uint8Array, v: DataView, s: Int32Array): number {
    const options = this.#options, t = this.#t;
    if (options.extended) at = put(o, at, s[S.S_FAMILY] === 2 ? t.ipv4 : t.ipv6);
    const proto = s[S.ORIG + S.T_PROTO]!;
    const p = proto < 0 ? 0 : b[proto]!;
    at = put(o, at, t.l4[p] ?? pieceOf(t.l4, p, l4Text));
    let a = s[S.S_TIMEOUT]!;
    if (a >= 0) {
      o.setUint8(at++, 32);
      at = dec(o, at, v.getUint32(a, false));
    }
    if (s[S.S_TCP]! >= 0) at = put(o, at, t.tcpStates[b[s[S.S_TCP_STATE]!]!] ?? t.none);
    at = textTuple(o, at, b, s, S.ORIG, t);
    if ((a = s[S.ORIG + S.T_ZONE]!) >= 0) {
      at = put(o, at, t.zoneOrig);
      at = dec(o, at, u16(b, a));
    }
    if ((a = s[S.S_COUNTERS_ORIG]!) >= 0) at = textCounters(o, at, v, s, S.S_COUNTERS_ORIG, t);
    a = s[S.S_STATUS]!;
    const status = a < 0 ? 0 : v.getUint32(a, false);
    if ((status & CT_STATUS.SEEN_REPLY) === 0) at = put(o, at, t.unreplied);
    at = textTuple(o, at, b, s, S.REPLY, t);
    if ((a = s[S.REPLY + S.T_ZONE]!) >= 0) {
      at = put(o, at, t.zoneReply);
      at = dec(o, at, u16(b, a));
    }
    if (s[S.S_COUNTERS_REPLY]! >= 0) at = textCounters(o, at, v, s, S.S_COUNTERS_REPLY, t);
    if (status & CT_STATUS.HW_OFFLOAD) at = put(o, at, t.hwOffload);
    else if (status & CT_STATUS.OFFLOAD) at = put(o, at, t.offload);
    else if (status & CT_STATUS.ASSURED) at = put(o, at, t.assured);
    if ((a = s[S.S_MARK]!) >= 0) {
      at = put(o, at, t.mark);
      at = dec(o, at, v.getUint32(a, false));
    }
    if ((a = s[S.S_SECMARK]!) >= 0) {
      at = put(o, at, t.secmark);
      at = dec(o, at, v.getUint32(a, false));
    }
    if ((a = s[S.S_ZONE]!) >= 0) {
      at = put(o, at, t.zone);
      at = dec(o, at, u16(b, a));
    }
    if (s[S.S_TIMESTAMP_START]! >= 0) at = this.#times(o, at, v, s);
    if ((a = s[S.S_USE]!) >= 0) {
      at = put(o, at, t.use);
      at = dec(o, at, v.getUint32(a, false));
    }
    if (options.id && (a = s[S.S_ID]!) >= 0) {
      at = put(o, at, t.id);
      at = dec(o, at, v.getUint32(a, false));
    }
    return at;
  }

  /** `delta-time=` and, with `ktimestamp`, `[start=…] [stop=…]`. */
  #times(o: DataView, at: number, v: DataView, s: Int32Array): number {
    const start = v.getBigUint64(s[S.S_TIMESTAMP_START]!, false);
    const stopAt = s[S.S_TIMESTAMP_STOP]!;
    const stop = stopAt < 0 ? 0n : v.getBigUint64(stopAt, false);
    const startSec = Number(start / NSEC);
    const endSec = stop === 0n
      ? (this.#options.now ?? Math.floor(Date.now() / 1000))
      : Number(stop / NSEC);
    const delta = endSec - startSec;
    at = str(o, at, " delta-time=");
    at = str(o, at, String(delta >= 0 ? delta : BigInt.asUintN(64, BigInt(delta))));
    if (this.#options.ktimestamp) {
      at = str(o, at, ` [start=${ctime(startSec)}]`);
      if (stop !== 0n) at = str(o, at, ` [stop=${ctime(Number(stop / NSEC))}]`);
    }
    return at;
  }
}

/** `labels=name,…` (only named bits; bare `labels` when none has a name). */
function textLabels(
  o: DataView,
  at: number,
  b: Uint8Array,
  a: number,
  len: number,
  names: readonly (string | undefined)[],
): number {
  at = str(o, at, " labels");
  let first = true;
  for (const n of setBits(b, a, len)) {
    const name = names[n];
    if (!name) continue;
    o.setUint8(at++, first ? 61 : 44); // "=" then ","
    at = str(o, at, name);
    first = false;
  }
  return at;
}

/** The numbers of the bits set in the label bit set at `a` (`len` bytes), lowest first. */
function setBits(b: Uint8Array, a: number, len: number): number[] {
  const bits: number[] = [];
  for (let i = 0; i < len; i++) {
    const byte = b[a + i]!;
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) if ((byte & (1 << bit)) !== 0) bits.push(i * 8 + bit);
  }
  return bits;
}

/** One direction's addresses and layer-4 fields, each piece led by a space. */
function textTuple(
  o: DataView,
  at: number,
  b: Uint8Array,
  s: Int32Array,
  base: number,
  t: TextPieces,
): number {
  at = put(o, at, t.src);
  let a = s[base + S.T_SRC]!;
  if (a >= 0) at = address(o, at, b, a, s[base + S.T_SRC_LEN]!);
  at = put(o, at, t.dst);
  if ((a = s[base + S.T_DST]!) >= 0) at = address(o, at, b, a, s[base + S.T_DST_LEN]!);
  const p = s[base + S.T_PROTO]!;
  if (p < 0) return at;
  switch (b[p]) {
    case 6:
    case 17:
    case 136:
    case 132:
    case 33:
      at = put(o, at, t.sport);
      at = dec(o, at, field16(b, s[base + S.T_SPORT]!));
      at = put(o, at, t.dport);
      return dec(o, at, field16(b, s[base + S.T_DPORT]!));
    case 47:
      at = put(o, at, t.srckey);
      at = str(o, at, field16(b, s[base + S.T_SPORT]!).toString(16));
      at = put(o, at, t.dstkey);
      return str(o, at, field16(b, s[base + S.T_DPORT]!).toString(16));
    case 1:
    case 58:
      at = put(o, at, t.type);
      at = dec(o, at, field8(b, s[base + S.T_ICMP_TYPE]!));
      at = put(o, at, t.code);
      at = dec(o, at, field8(b, s[base + S.T_ICMP_CODE]!));
      at = put(o, at, t.id);
      return dec(o, at, field16(b, s[base + S.T_ICMP_ID]!));
  }
  return at;
}

/** ` packets=… bytes=…` of the counters at `base` (present, packets, bytes). */
function textCounters(
  o: DataView,
  at: number,
  v: DataView,
  s: Int32Array,
  base: number,
  t: TextPieces,
): number {
  at = put(o, at, t.packets);
  at = counter(o, at, v, s[base + 1]!);
  at = put(o, at, t.bytes);
  at = counter(o, at, v, s[base + 2]!);
  return at;
}

/** The longest JSON object before labels: a bound. */
const MAX_JSON = 2048;

/** The JSON object's constant pieces, pre-encoded (built with the first JSON writer). */
type JsonPieces = ReturnType<typeof buildJsonPieces>;

let jsonPieces: JsonPieces | undefined;

function buildJsonPieces() {
  return {
    ipv4: words('{"family":"ipv4","orig":'),
    ipv6: words('{"family":"ipv6","orig":'),
    reply: words(',"reply":'),
    /** `,"protocol":N,"protocolName":"name"` of each protocol number. */
    protocols: pieceTable(),
    /** `,"stateName":"NAME"` of each TCP state number. */
    tcpStates: TCP_STATES.map((s) => words(`,"stateName":"${s}"`)),
    src: words(',"src":"'),
    dst: words(',"dst":"'),
    srcPort: words(',"srcPort":'),
    dstPort: words(',"dstPort":'),
    icmpId: words(',"icmpId":'),
    icmpType: words(',"icmpType":'),
    icmpCode: words(',"icmpCode":'),
    tupleZone: words(',"zone":'),
    timeout: words(',"timeout":'),
    mark: words(',"mark":'),
    use: words(',"use":'),
    id: words(',"id":'),
    zone: words(',"zone":'),
    tcp: words(',"tcp":{"state":'),
    wscaleOrig: words(',"wscaleOrig":'),
    wscaleReply: words(',"wscaleReply":'),
    flagsOrig: words(',"flagsOrig":{"flags":'),
    flagsReply: words(',"flagsReply":{"flags":'),
    mask: words(',"mask":'),
    countersOrig: words(',"countersOrig":{"packets":'),
    countersReply: words(',"countersReply":{"packets":'),
    bytes: words(',"bytes":'),
    secmark: words(',"secmark":'),
    timestampStart: words(',"timestampStart":'),
    timestampStop: words(',"timestampStop":'),
    timestampEvent: words(',"timestampEvent":'),
    labels: words(',"labels":['),
    labelsMask: words(',"labelsMask":['),
    synproxy: words(',"synproxy":{"isn":'),
    its: words(',"its":'),
    tsoff: words(',"tsoff":'),
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
  readonly #out = new OutputView();
  /** statusJson's text of the last status written, pre-encoded (a dump's statuses repeat). */
  #status = -1;
  #statusWords: Words = new Uint32Array(1);

  /** A writer into `sink`. */
  constructor(sink: ByteSink) {
    this.#sink = sink;
    this.#j = jsonPieces ??= buildJsonPieces();
    tables();
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
    // A label byte's bits: 8 numbers of up to 6 digits (below 2^19) and commas.
    sink.room(MAX_JSON + 64 * (labelsLen + maskLen));
    const o = this.#out.of(sink.buffer);
    // In pieces of a size V8 optimises whole (each inlining its small helpers).
    let at = put(o, sink.used, s[S.S_FAMILY] === 2 ? j.ipv4 : j.ipv6);
    at = jsonTuple(o, at, b, s, S.ORIG, j);
    at = jsonTuple(o, put(o, at, j.reply), b, s, S.REPLY, j);
    const a = s[S.S_STATUS]!;
    at = put(o, at, this.#statusText(a < 0 ? 0 : v.getUint32(a, false)));
    at = jsonScalars(o, at, b, v, s, j);
    if (s[S.S_TCP]! >= 0) at = jsonTcp(o, at, b, s, j);
    if (
      s[S.S_COUNTERS_ORIG]! >= 0 || s[S.S_COUNTERS_REPLY]! >= 0 || s[S.S_SECMARK]! >= 0 ||
      s[S.S_TIMESTAMP_START]! >= 0 || s[S.S_TIMESTAMP_STOP]! >= 0 ||
      s[S.S_TIMESTAMP_EVENT]! >= 0 || labels >= 0 || mask >= 0
    ) at = jsonMore(o, at, b, v, s, j, labelsLen, maskLen);
    if (s[S.S_SYNPROXY]! >= 0) {
      at = jsonU32(o, put(o, at, j.synproxy), v, s[S.S_SYNPROXY_ISN]!);
      at = jsonU32(o, put(o, at, j.its), v, s[S.S_SYNPROXY_ITS]!);
      at = jsonU32(o, put(o, at, j.tsoff), v, s[S.S_SYNPROXY_TSOFF]!);
      o.setUint8(at++, 125);
    }
    o.setUint8(at, 125);
    o.setUint8(at + 1, 10);
    sink.used = at + 2;
    return true;
  }

  /** `"status":N,"statusFlags":[…]` (statusJson's) as bytes. */
  #statusText(status: number): Words {
    if (status !== this.#status) {
      this.#status = status;
      this.#statusWords = words(`,${statusJson(status)}`);
    }
    return this.#statusWords;
  }
}

/** The u32 at `a` (0 when absent: -1). */
function jsonU32(o: DataView, at: number, v: DataView, a: number): number {
  return dec(o, at, a < 0 ? 0 : v.getUint32(a, false));
}

/** `timeout`, `mark`, `use`, `id`, `zone`: those present. */
function jsonScalars(
  o: DataView,
  at: number,
  b: Uint8Array,
  v: DataView,
  s: Int32Array,
  j: JsonPieces,
): number {
  let a = s[S.S_TIMEOUT]!;
  if (a >= 0) at = dec(o, put(o, at, j.timeout), v.getUint32(a, false));
  if ((a = s[S.S_MARK]!) >= 0) at = dec(o, put(o, at, j.mark), v.getUint32(a, false));
  if ((a = s[S.S_USE]!) >= 0) at = dec(o, put(o, at, j.use), v.getUint32(a, false));
  if ((a = s[S.S_ID]!) >= 0) at = dec(o, put(o, at, j.id), v.getUint32(a, false));
  if ((a = s[S.S_ZONE]!) >= 0) at = dec(o, put(o, at, j.zone), u16(b, a));
  return at;
}

/** The counters, `secmark`, the timestamps and the labels: those present. */
function jsonMore(
  o: DataView,
  at: number,
  b: Uint8Array,
  v: DataView,
  s: Int32Array,
  j: JsonPieces,
  labelsLen: number,
  maskLen: number,
): number {
  if (s[S.S_COUNTERS_ORIG]! >= 0) {
    at = jsonCounters(o, at, v, s, S.S_COUNTERS_ORIG, j.countersOrig, j);
  }
  if (s[S.S_COUNTERS_REPLY]! >= 0) {
    at = jsonCounters(o, at, v, s, S.S_COUNTERS_REPLY, j.countersReply, j);
  }
  let a = s[S.S_SECMARK]!;
  if (a >= 0) at = dec(o, put(o, at, j.secmark), v.getUint32(a, false));
  if ((a = s[S.S_TIMESTAMP_START]!) >= 0) at = dec64(o, put(o, at, j.timestampStart), v, a);
  if ((a = s[S.S_TIMESTAMP_STOP]!) >= 0) at = dec64(o, put(o, at, j.timestampStop), v, a);
  if ((a = s[S.S_TIMESTAMP_EVENT]!) >= 0) at = dec64(o, put(o, at, j.timestampEvent), v, a);
  if ((a = s[S.S_LABELS]!) >= 0) at = jsonBits(o, put(o, at, j.labels), b, a, labelsLen);
  if ((a = s[S.S_LABELS_MASK]!) >= 0) at = jsonBits(o, put(o, at, j.labelsMask), b, a, maskLen);
  return at;
}

/** A tuple as `flowToJson` writes it: the keys of its present fields, in the Tuple's order. */
function jsonTuple(
  o: DataView,
  at: number,
  b: Uint8Array,
  s: Int32Array,
  base: number,
  j: JsonPieces,
): number {
  const start = at; // each key is led by ","; the first "," becomes the "{"
  let a = s[base + S.T_SRC]!;
  if (a >= 0) {
    at = address(o, put(o, at, j.src), b, a, s[base + S.T_SRC_LEN]!);
    o.setUint8(at++, 34);
  }
  if ((a = s[base + S.T_DST]!) >= 0) {
    at = address(o, put(o, at, j.dst), b, a, s[base + S.T_DST_LEN]!);
    o.setUint8(at++, 34);
  }
  // protocolName: the name `conntrack -L` prints, as flowToJson writes it.
  if ((a = s[base + S.T_PROTO]!) >= 0) {
    const p = b[a]!;
    at = put(o, at, j.protocols[p] ?? pieceOf(j.protocols, p, protocolJson));
  }
  if ((a = s[base + S.T_SPORT]!) >= 0) at = dec(o, put(o, at, j.srcPort), u16(b, a));
  if ((a = s[base + S.T_DPORT]!) >= 0) at = dec(o, put(o, at, j.dstPort), u16(b, a));
  if ((a = s[base + S.T_ICMP_ID]!) >= 0) at = dec(o, put(o, at, j.icmpId), u16(b, a));
  if ((a = s[base + S.T_ICMP_TYPE]!) >= 0) at = dec(o, put(o, at, j.icmpType), b[a]!);
  if ((a = s[base + S.T_ICMP_CODE]!) >= 0) at = dec(o, put(o, at, j.icmpCode), b[a]!);
  if ((a = s[base + S.T_ZONE]!) >= 0) at = dec(o, put(o, at, j.tupleZone), u16(b, a));
  if (at === start) o.setUint8(at++, 123);
  else o.setUint8(start, 123);
  o.setUint8(at, 125);
  return at + 1;
}

function jsonTcp(o: DataView, at: number, b: Uint8Array, s: Int32Array, j: JsonPieces): number {
  const state = b[s[S.S_TCP_STATE]!]!;
  at = dec(o, put(o, at, j.tcp), state);
  const name = j.tcpStates[state];
  if (name !== undefined) at = put(o, at, name);
  else {
    at = str(o, at, ',"stateName":"');
    at = str(o, at, stateName(TCP_STATES, state));
    o.setUint8(at++, 34);
  }
  let a = s[S.S_TCP_WSCALE_ORIG]!;
  if (a >= 0) at = dec(o, put(o, at, j.wscaleOrig), b[a]!);
  if ((a = s[S.S_TCP_WSCALE_REPLY]!) >= 0) at = dec(o, put(o, at, j.wscaleReply), b[a]!);
  if ((a = s[S.S_TCP_FLAGS_ORIG]!) >= 0) at = jsonFlags(o, put(o, at, j.flagsOrig), b, a, j);
  if ((a = s[S.S_TCP_FLAGS_REPLY]!) >= 0) at = jsonFlags(o, put(o, at, j.flagsReply), b, a, j);
  o.setUint8(at, 125);
  return at + 1;
}

/** `N,"mask":M}` of the TCP flags at `a`. */
function jsonFlags(o: DataView, at: number, b: Uint8Array, a: number, j: JsonPieces): number {
  at = dec(o, put(o, dec(o, at, b[a]!), j.mask), b[a + 1]!);
  o.setUint8(at, 125);
  return at + 1;
}

function jsonCounters(
  o: DataView,
  at: number,
  v: DataView,
  s: Int32Array,
  base: number,
  key: Words,
  j: JsonPieces,
): number {
  at = put(o, at, key);
  at = counter(o, at, v, s[base + 1]!);
  at = put(o, at, j.bytes);
  at = counter(o, at, v, s[base + 2]!);
  o.setUint8(at, 125);
  return at + 1;
}

/** The numbers of the bits set in the label bit set at `a` (`len` bytes), and the `]`. */
function jsonBits(o: DataView, at: number, b: Uint8Array, a: number, len: number): number {
  let first = true;
  for (const n of setBits(b, a, len)) {
    if (!first) o.setUint8(at++, 44);
    at = dec(o, at, n);
    first = false;
  }
  o.setUint8(at, 93);
  return at + 1;
}
