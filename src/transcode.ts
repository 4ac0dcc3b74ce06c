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

function pad8(name: string): string {
  return name.length >= 8 ? name : name + "        ".slice(name.length);
}

/** `"%-8s %u"` of each layer-4 protocol number, as bytes. */
const L4_PREFIX: readonly Uint8Array[] = Array.from(
  { length: 256 },
  (_, n) => ascii(`${pad8(protocolInfo(n).name)} ${n}`),
);
const TCP_STATE_BYTES: readonly Uint8Array[] = TCP_STATES.map((s) => ascii(` ${s}`));
const NONE = ascii(" NONE");

function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

const NSEC = 1_000_000_000n;

// The entry being written: one at a time (writing is synchronous), so the
// writers share this state rather than pass it to every helper. One object,
// not module-level variables: V8 handles its fields far better (measured:
// 1.3 µs an entry with `let`s, 0.9 µs with this).
const W: { out: Uint8Array; at: number; b: Uint8Array; v: DataView; slots: Int32Array } = {
  out: new Uint8Array(0),
  at: 0,
  b: new Uint8Array(0),
  v: new DataView(new ArrayBuffer(0)),
  slots: new Int32Array(S.SLOTS),
};

function bytes(text: Uint8Array): void {
  for (let i = 0; i < text.length; i++) W.out[W.at++] = text[i]!;
}

/** ASCII `text`. */
function str(text: string): void {
  for (let i = 0; i < text.length; i++) W.out[W.at++] = text.charCodeAt(i);
}

/** An unsigned integer below 2^53 in decimal. */
function dec(n: number): void {
  if (n < 10) {
    W.out[W.at++] = 48 + n;
    return;
  }
  if (n < 0x80000000) {
    let digits = 1;
    for (let x = n; x >= 10; x = (x / 10) | 0) digits++;
    let i = W.at + digits;
    W.at = i;
    while (n >= 10) {
      const q = (n / 10) | 0;
      W.out[--i] = 48 + n - q * 10;
      n = q;
    }
    W.out[--i] = 48 + n;
    return;
  }
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  let i = W.at + digits;
  W.at = i;
  while (n >= 10) {
    const q = Math.floor(n / 10);
    W.out[--i] = 48 + n - q * 10;
    n = q;
  }
  W.out[--i] = 48 + n;
}

/** The big-endian u64 at `offset` in decimal. */
function dec64(offset: number): void {
  const hi = W.v.getUint32(offset, false);
  if (hi < 0x200000) dec(hi * 4294967296 + W.v.getUint32(offset + 4, false));
  else str(W.v.getBigUint64(offset, false).toString());
}

/** The u32 of slot `slot` (present). */
function u32(slot: number): number {
  return W.v.getUint32(W.slots[slot]!, false);
}

function u16(offset: number): number {
  return W.v.getUint16(offset, false);
}

/** The address of the slot pair `i` (offset, length); nothing when absent. */
function address(i: number): void {
  const a = W.slots[i]!;
  if (a < 0) return;
  if (W.slots[i + 1] === 4) {
    dec(W.b[a]!);
    W.out[W.at++] = 46;
    dec(W.b[a + 1]!);
    W.out[W.at++] = 46;
    dec(W.b[a + 2]!);
    W.out[W.at++] = 46;
    dec(W.b[a + 3]!);
  } else {
    ipv6(a);
  }
}

/** Lower-case hex digits. */
const HEX_DIGITS = ascii("0123456789abcdef");

/** A 16-bit group in hex without leading zeros. */
function hexGroup(g: number): void {
  const out = W.out;
  if (g >= 0x1000) out[W.at++] = HEX_DIGITS[g >> 12]!;
  if (g >= 0x100) out[W.at++] = HEX_DIGITS[(g >> 8) & 15]!;
  if (g >= 0x10) out[W.at++] = HEX_DIGITS[(g >> 4) & 15]!;
  out[W.at++] = HEX_DIGITS[g & 15]!;
}

/**
 * The IPv6 address at `a` as glibc's inet_ntop writes it (src/address.ts's
 * formatIPv6, written in place): the longest run of two or more zero groups
 * (the first of equal runs) as `::`; IPv4-compatible and -mapped addresses
 * (as formatIPv6 decides them) through it.
 */
function ipv6(a: number): void {
  const b = W.b;
  const run = zeroRun(b, a);
  const bestBase = run < 0 ? -1 : run >> 4, bestLen = run & 15;
  if (bestBase === 0 && (bestLen === 6 || bestLen === 5)) {
    str(formatIPv6(b, a)); // ::a.b.c.d, ::ffff:a.b.c.d and their neighbours: rare
    return;
  }
  const out = W.out;
  for (let i = 0; i < 8; i++) {
    if (bestBase !== -1 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out[W.at++] = 58;
      continue;
    }
    if (i !== 0) out[W.at++] = 58;
    hexGroup((b[a + 2 * i]! << 8) | b[a + 2 * i + 1]!);
  }
  if (bestBase !== -1 && bestBase + bestLen === 8) out[W.at++] = 58;
}

/** A u8 / u16 field, 0 when absent (formatFlow's `?? 0`). */
function field8(slot: number): number {
  const a = W.slots[slot]!;
  return a < 0 ? 0 : W.b[a]!;
}

function field16(slot: number): number {
  const a = W.slots[slot]!;
  return a < 0 ? 0 : u16(a);
}

/** Starts writing an entry into `sink` with room for `n` bytes. */
function begin(sink: ByteSink, n: number, bs: Uint8Array, view: DataView, s: Int32Array): void {
  sink.room(n);
  W.out = sink.buffer;
  W.at = sink.used;
  W.b = bs;
  W.v = view;
  W.slots = s;
}

/** Makes room for `n` more bytes in the middle of an entry. */
function more(sink: ByteSink, n: number): void {
  sink.used = W.at;
  sink.room(n);
  W.out = sink.buffer;
  W.at = sink.used;
}

/** Ends the entry: its newline. */
function finish(sink: ByteSink): void {
  W.out[W.at++] = 10;
  sink.used = W.at;
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

  /** A writer into `sink` in the format `options` give (`now` is read at each line). */
  constructor(sink: ByteSink, options: FormatOptions) {
    this.#sink = sink;
    this.#options = options;
    [this.#labelRoom, this.#asciiNames] = labelRoom(options);
  }

  /**
   * Writes the line of the entry message at `offset` (`length` bytes) of
   * `bytes`, and its newline; false, writing nothing, for an entry the
   * walk leaves to the checked decoder.
   */
  write(bytes: Uint8Array, view: DataView, offset: number, length: number): boolean {
    if (this.#options.eventType) return false; // events: the decoder's path
    const s = this.#slots;
    if (!S.scanEntry(bytes, view, offset, length, s)) return false;
    if (!this.#asciiNames && s[S.S_LABELS]! >= 0) return false;
    begin(this.#sink, MAX_LINE, bytes, view, s);
    this.#line();
    finish(this.#sink);
    return true;
  }

  /** The line, as formatFlow writes it (see there for each piece). */
  #line(): void {
    const options = this.#options;
    if (options.extended) str(W.slots[S.S_FAMILY] === 2 ? "ipv4     2 " : "ipv6     10 ");
    const proto = W.slots[S.ORIG + S.T_PROTO]!;
    bytes(L4_PREFIX[proto < 0 ? 0 : W.b[proto]!]!);
    if (W.slots[S.S_TIMEOUT]! >= 0) {
      W.out[W.at++] = 32;
      dec(u32(S.S_TIMEOUT));
    }
    if (W.slots[S.S_TCP]! >= 0) bytes(TCP_STATE_BYTES[W.b[W.slots[S.S_TCP_STATE]!]!] ?? NONE);
    textTuple(S.ORIG);
    if (W.slots[S.ORIG + S.T_ZONE]! >= 0) {
      str(" zone-orig=");
      dec(u16(W.slots[S.ORIG + S.T_ZONE]!));
    }
    textCounters(S.S_COUNTERS_ORIG);
    const status = W.slots[S.S_STATUS]! < 0 ? 0 : u32(S.S_STATUS);
    if ((status & CT_STATUS.SEEN_REPLY) === 0) str(" [UNREPLIED]");
    textTuple(S.REPLY);
    if (W.slots[S.REPLY + S.T_ZONE]! >= 0) {
      str(" zone-reply=");
      dec(u16(W.slots[S.REPLY + S.T_ZONE]!));
    }
    textCounters(S.S_COUNTERS_REPLY);
    if (status & CT_STATUS.HW_OFFLOAD) str(" [HW_OFFLOAD]");
    else if (status & CT_STATUS.OFFLOAD) str(" [OFFLOAD]");
    else if (status & CT_STATUS.ASSURED) str(" [ASSURED]");
    if (W.slots[S.S_MARK]! >= 0) {
      str(" mark=");
      dec(u32(S.S_MARK));
    }
    if (W.slots[S.S_SECMARK]! >= 0) {
      str(" secmark=");
      dec(u32(S.S_SECMARK));
    }
    if (W.slots[S.S_ZONE]! >= 0) {
      str(" zone=");
      dec(u16(W.slots[S.S_ZONE]!));
    }
    if (W.slots[S.S_TIMESTAMP_START]! >= 0) this.#times();
    if (W.slots[S.S_USE]! >= 0) {
      str(" use=");
      dec(u32(S.S_USE));
    }
    if (options.id && W.slots[S.S_ID]! >= 0) {
      str(" id=");
      dec(u32(S.S_ID));
    }
    const names = options.labelNames;
    if (names !== undefined && W.slots[S.S_LABELS]! >= 0) this.#labels(names);
  }

  /** `delta-time=` and, with `ktimestamp`, `[start=…] [stop=…]`. */
  #times(): void {
    const start = W.v.getBigUint64(W.slots[S.S_TIMESTAMP_START]!, false);
    const stopAt = W.slots[S.S_TIMESTAMP_STOP]!;
    const stop = stopAt < 0 ? 0n : W.v.getBigUint64(stopAt, false);
    const startSec = Number(start / NSEC);
    const endSec = stop === 0n
      ? (this.#options.now ?? Math.floor(Date.now() / 1000))
      : Number(stop / NSEC);
    const delta = endSec - startSec;
    str(" delta-time=");
    str(String(delta >= 0 ? delta : BigInt.asUintN(64, BigInt(delta))));
    if (this.#options.ktimestamp) {
      str(` [start=${ctime(startSec)}]`);
      if (stop !== 0n) str(` [stop=${ctime(Number(stop / NSEC))}]`);
    }
  }

  /** `labels=name,…` (only named bits; bare `labels` when none has a name). */
  #labels(names: readonly (string | undefined)[]): void {
    more(this.#sink, this.#labelRoom);
    const a = W.slots[S.S_LABELS]!, len = W.slots[S.S_LABELS_LEN]!;
    str(" labels");
    let first = true;
    for (let i = 0; i < len; i++) {
      const byte = W.b[a + i]!;
      if (byte === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        if ((byte & (1 << bit)) === 0) continue;
        const name = names[i * 8 + bit];
        if (!name) continue;
        W.out[W.at++] = first ? 61 : 44; // "=" then ","
        str(name);
        first = false;
      }
    }
  }
}

/** One direction's addresses and layer-4 fields, each piece led by a space. */
function textTuple(base: number): void {
  str(" src=");
  address(base + S.T_SRC);
  str(" dst=");
  address(base + S.T_DST);
  const p = W.slots[base + S.T_PROTO]!;
  if (p < 0) return;
  switch (W.b[p]) {
    case 6:
    case 17:
    case 136:
    case 132:
    case 33:
      str(" sport=");
      dec(field16(base + S.T_SPORT));
      str(" dport=");
      dec(field16(base + S.T_DPORT));
      return;
    case 47:
      str(" srckey=0x");
      str(field16(base + S.T_SPORT).toString(16));
      str(" dstkey=0x");
      str(field16(base + S.T_DPORT).toString(16));
      return;
    case 1:
    case 58:
      str(" type=");
      dec(field8(base + S.T_ICMP_TYPE));
      str(" code=");
      dec(field8(base + S.T_ICMP_CODE));
      str(" id=");
      dec(field16(base + S.T_ICMP_ID));
      return;
  }
}

function textCounters(base: number): void {
  if (W.slots[base]! < 0) return;
  str(" packets=");
  if (W.slots[base + 1]! < 0) W.out[W.at++] = 48;
  else dec64(W.slots[base + 1]!);
  str(" bytes=");
  if (W.slots[base + 2]! < 0) W.out[W.at++] = 48;
  else dec64(W.slots[base + 2]!);
}

/** The longest JSON object before labels: a bound. */
const MAX_JSON = 2048;

/**
 * Writes entries as `flowToJson`'s lines (NDJSON, `--json`). One writer per
 * output; it keeps its walk's slots, so it writes one entry at a time.
 */
export class FlowJsonWriter {
  readonly #sink: ByteSink;
  readonly #slots = new Int32Array(S.SLOTS);

  /** A writer into `sink`. */
  constructor(sink: ByteSink) {
    this.#sink = sink;
  }

  /** As {@link FlowTextWriter.write}, in JSON. */
  write(bytes: Uint8Array, view: DataView, offset: number, length: number): boolean {
    const s = this.#slots;
    if (!S.scanEntry(bytes, view, offset, length, s)) return false;
    const labels = s[S.S_LABELS]! >= 0 ? s[S.S_LABELS_LEN]! : 0;
    const mask = s[S.S_LABELS_MASK]! >= 0 ? s[S.S_LABELS_MASK_LEN]! : 0;
    begin(this.#sink, MAX_JSON + 32 * (labels + mask), bytes, view, s);
    str(s[S.S_FAMILY] === 2 ? '{"family":"ipv4","orig":' : '{"family":"ipv6","orig":');
    jsonTuple(S.ORIG);
    str(',"reply":');
    jsonTuple(S.REPLY);
    W.out[W.at++] = 44;
    str(statusJson(s[S.S_STATUS]! < 0 ? 0 : u32(S.S_STATUS)));
    jsonU32(',"timeout":', S.S_TIMEOUT);
    jsonU32(',"mark":', S.S_MARK);
    jsonU32(',"use":', S.S_USE);
    jsonU32(',"id":', S.S_ID);
    if (s[S.S_ZONE]! >= 0) {
      str(',"zone":');
      dec(u16(s[S.S_ZONE]!));
    }
    if (s[S.S_TCP]! >= 0) jsonTcp();
    jsonCounters(',"countersOrig":', S.S_COUNTERS_ORIG);
    jsonCounters(',"countersReply":', S.S_COUNTERS_REPLY);
    jsonU32(',"secmark":', S.S_SECMARK);
    jsonU64(',"timestampStart":', S.S_TIMESTAMP_START);
    jsonU64(',"timestampStop":', S.S_TIMESTAMP_STOP);
    jsonU64(',"timestampEvent":', S.S_TIMESTAMP_EVENT);
    if (labels > 0 || s[S.S_LABELS]! >= 0) jsonBits(',"labels":[', S.S_LABELS);
    if (mask > 0 || s[S.S_LABELS_MASK]! >= 0) jsonBits(',"labelsMask":[', S.S_LABELS_MASK);
    if (s[S.S_SYNPROXY]! >= 0) {
      str(',"synproxy":{"isn":');
      dec(s[S.S_SYNPROXY_ISN]! < 0 ? 0 : u32(S.S_SYNPROXY_ISN));
      str(',"its":');
      dec(s[S.S_SYNPROXY_ITS]! < 0 ? 0 : u32(S.S_SYNPROXY_ITS));
      str(',"tsoff":');
      dec(s[S.S_SYNPROXY_TSOFF]! < 0 ? 0 : u32(S.S_SYNPROXY_TSOFF));
      W.out[W.at++] = 125;
    }
    W.out[W.at++] = 125;
    finish(this.#sink);
    return true;
  }
}

function jsonU32(key: string, slot: number): void {
  if (W.slots[slot]! < 0) return;
  str(key);
  dec(u32(slot));
}

function jsonU64(key: string, slot: number): void {
  if (W.slots[slot]! < 0) return;
  str(key);
  dec64(W.slots[slot]!);
}

/** A tuple as `flowToJson` writes it: the keys of its present fields, in the Tuple's order. */
function jsonTuple(base: number): void {
  const start = W.at; // each key is led by ","; the first "," becomes the "{"
  if (W.slots[base + S.T_SRC]! >= 0) {
    str(',"src":"');
    address(base + S.T_SRC);
    W.out[W.at++] = 34;
  }
  if (W.slots[base + S.T_DST]! >= 0) {
    str(',"dst":"');
    address(base + S.T_DST);
    W.out[W.at++] = 34;
  }
  const p = W.slots[base + S.T_PROTO]!;
  if (p >= 0) {
    // protocolName: the name `conntrack -L` prints, as flowToJson writes it.
    str(',"protocol":');
    bytes(PROTOCOL_JSON[W.b[p]!]!);
  }
  for (let i = 0; i < TUPLE_JSON_KEYS.length; i++) {
    const a = W.slots[base + TUPLE_JSON_SLOTS[i]!]!;
    if (a < 0) continue;
    bytes(TUPLE_JSON_KEYS[i]!);
    dec(i === 3 || i === 4 ? W.b[a]! : u16(a)); // icmpType, icmpCode: 8-bit
  }
  if (W.at === start) W.out[W.at++] = 123;
  else W.out[start] = 123;
  W.out[W.at++] = 125;
}

/** `N,"protocolName":"name"` of each protocol number. */
const PROTOCOL_JSON: readonly Uint8Array[] = Array.from(
  { length: 256 },
  (_, n) => ascii(`${n},"protocolName":"${protocolInfo(n).name}"`),
);

/** The tuple's number keys after the protocol, and their slots (icmpType, icmpCode: 8-bit). */
const TUPLE_JSON_KEYS: readonly Uint8Array[] = [
  ',"srcPort":',
  ',"dstPort":',
  ',"icmpId":',
  ',"icmpType":',
  ',"icmpCode":',
  ',"zone":',
].map(ascii);
const TUPLE_JSON_SLOTS: readonly number[] = [
  S.T_SPORT,
  S.T_DPORT,
  S.T_ICMP_ID,
  S.T_ICMP_TYPE,
  S.T_ICMP_CODE,
  S.T_ZONE,
];

function jsonTcp(): void {
  const state = W.b[W.slots[S.S_TCP_STATE]!]!;
  str(',"tcp":{"state":');
  dec(state);
  str(',"stateName":"');
  str(stateName(TCP_STATES, state));
  W.out[W.at++] = 34;
  let a = W.slots[S.S_TCP_WSCALE_ORIG]!;
  if (a >= 0) {
    str(',"wscaleOrig":');
    dec(W.b[a]!);
  }
  if ((a = W.slots[S.S_TCP_WSCALE_REPLY]!) >= 0) {
    str(',"wscaleReply":');
    dec(W.b[a]!);
  }
  if ((a = W.slots[S.S_TCP_FLAGS_ORIG]!) >= 0) {
    str(',"flagsOrig":{"flags":');
    dec(W.b[a]!);
    str(',"mask":');
    dec(W.b[a + 1]!);
    W.out[W.at++] = 125;
  }
  if ((a = W.slots[S.S_TCP_FLAGS_REPLY]!) >= 0) {
    str(',"flagsReply":{"flags":');
    dec(W.b[a]!);
    str(',"mask":');
    dec(W.b[a + 1]!);
    W.out[W.at++] = 125;
  }
  W.out[W.at++] = 125;
}

function jsonCounters(key: string, base: number): void {
  if (W.slots[base]! < 0) return;
  str(key);
  str('{"packets":');
  if (W.slots[base + 1]! < 0) W.out[W.at++] = 48;
  else dec64(W.slots[base + 1]!);
  str(',"bytes":');
  if (W.slots[base + 2]! < 0) W.out[W.at++] = 48;
  else dec64(W.slots[base + 2]!);
  W.out[W.at++] = 125;
}

/** The numbers of the bits set in the label bit set at `slot` (offset, length). */
function jsonBits(key: string, slot: number): void {
  str(key);
  const a = W.slots[slot]!, len = W.slots[slot + 1]!;
  let first = true;
  for (let i = 0; i < len; i++) {
    const byte = W.b[a + i]!;
    if (byte === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if ((byte & (1 << bit)) === 0) continue;
      if (!first) W.out[W.at++] = 44;
      dec(i * 8 + bit);
      first = false;
    }
  }
  W.out[W.at++] = 93;
}
