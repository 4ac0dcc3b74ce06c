/**
 * The transcoder: `conntrack -L` text written straight from an entry
 * message's bytes into an output buffer — addresses, ports, state names and
 * numbers as ASCII in place, with no `Flow`, string or line per entry. It
 * reads the fields where the attribute walk of src/scan.ts found them, the
 * walk the fast decoder builds its `Flow` from, and writes them as
 * src/format.ts's {@link formatFlow} does; an entry the walk does not take
 * is decoded and formatted (the caller's fallback). tests/unit/transcode_test.ts
 * checks that it writes `formatFlow`'s bytes on captured dumps and on
 * mutations of them.
 *
 * @module
 */

import { formatIPv6 } from "./address.ts";
import { CT_STATUS } from "./constants.ts";
import { ctime, type FormatOptions } from "./format.ts";
import { protocolInfo, TCP_STATES } from "./protocols.ts";
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

/**
 * Writes entries as `conntrack -L` text lines. One writer per output; it
 * keeps its walk's slots, so it writes one entry at a time.
 */
export class FlowTextWriter {
  readonly #sink: ByteSink;
  readonly #options: FormatOptions;
  readonly #slots = new Int32Array(S.SLOTS);
  readonly #labelRoom: number;
  /** Label names are all ASCII (else an entry with labels takes the decoder's path). */
  readonly #asciiNames: boolean;
  #b: Uint8Array = new Uint8Array(0);
  #v: DataView = new DataView(new ArrayBuffer(0));
  #out: Uint8Array = new Uint8Array(0);
  #at = 0;

  /** A writer into `sink` in the format `options` give (`now` is read at each line). */
  constructor(sink: ByteSink, options: FormatOptions) {
    this.#sink = sink;
    this.#options = options;
    let names = 16, ascii = true;
    for (const name of options.labelNames ?? []) {
      names += (name?.length ?? 0) + 1;
      if (name !== undefined && !/^[\x20-\x7e]*$/.test(name)) ascii = false;
    }
    this.#labelRoom = names;
    this.#asciiNames = ascii;
  }

  /**
   * Writes the line of the entry message at `offset` (`length` bytes) of
   * `bytes`, and its newline; false, writing nothing, for an entry the
   * walk leaves to the checked decoder.
   */
  write(bytes: Uint8Array, view: DataView, offset: number, length: number): boolean {
    if (this.#options.eventType) return false; // events: the decoder's path
    const slots = this.#slots;
    if (!S.scanEntry(bytes, view, offset, length, slots)) return false;
    if (!this.#asciiNames && slots[S.S_LABELS]! >= 0) return false;
    this.#sink.room(MAX_LINE);
    this.#b = bytes;
    this.#v = view;
    this.#out = this.#sink.buffer;
    this.#at = this.#sink.used;
    this.#line(slots);
    this.#out[this.#at++] = 10;
    this.#sink.used = this.#at;
    return true;
  }

  #bytes(text: Uint8Array): void {
    const out = this.#out;
    let at = this.#at;
    for (let i = 0; i < text.length; i++) out[at++] = text[i]!;
    this.#at = at;
  }

  /** ASCII `text`. */
  #str(text: string): void {
    const out = this.#out;
    let at = this.#at;
    for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
    this.#at = at;
  }

  /** An unsigned integer below 2^53 in decimal. */
  #dec(n: number): void {
    const out = this.#out;
    if (n < 10) {
      out[this.#at++] = 48 + n;
      return;
    }
    let digits = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
    let at = this.#at + digits;
    this.#at = at;
    while (n >= 10) {
      const q = Math.floor(n / 10);
      out[--at] = 48 + n - q * 10;
      n = q;
    }
    out[--at] = 48 + n;
  }

  /** The big-endian u64 at `at` in decimal. */
  #dec64(at: number): void {
    const v = this.#v;
    const hi = v.getUint32(at, false);
    if (hi < 0x200000) this.#dec(hi * 4294967296 + v.getUint32(at + 4, false));
    else this.#str(v.getBigUint64(at, false).toString());
  }

  /** The u32 of slot `slot` (which must be present). */
  #u32(slot: number): number {
    return this.#v.getUint32(this.#slots[slot]!, false);
  }

  #u16(at: number): number {
    return this.#v.getUint16(at, false);
  }

  /** The address of the slot pair `i` (offset, length); nothing when absent. */
  #address(i: number): void {
    const at = this.#slots[i]!;
    if (at < 0) return;
    const b = this.#b;
    if (this.#slots[i + 1] === 4) {
      this.#dec(b[at]!);
      this.#out[this.#at++] = 46;
      this.#dec(b[at + 1]!);
      this.#out[this.#at++] = 46;
      this.#dec(b[at + 2]!);
      this.#out[this.#at++] = 46;
      this.#dec(b[at + 3]!);
    } else {
      this.#str(formatIPv6(b, at));
    }
  }

  /** A field of the tuple at `base`, 0 when absent (as formatFlow's `?? 0`). */
  #field8(slot: number): number {
    const at = this.#slots[slot]!;
    return at < 0 ? 0 : this.#b[at]!;
  }

  #field16(slot: number): number {
    const at = this.#slots[slot]!;
    return at < 0 ? 0 : this.#u16(at);
  }

  /** One direction's addresses and layer-4 fields, each piece led by a space. */
  #tuple(base: number): void {
    this.#str(" src=");
    this.#address(base + S.T_SRC);
    this.#str(" dst=");
    this.#address(base + S.T_DST);
    const p = this.#slots[base + S.T_PROTO]!;
    if (p < 0) return;
    switch (this.#b[p]) {
      case 6:
      case 17:
      case 136:
      case 132:
      case 33:
        this.#str(" sport=");
        this.#dec(this.#field16(base + S.T_SPORT));
        this.#str(" dport=");
        this.#dec(this.#field16(base + S.T_DPORT));
        return;
      case 47:
        this.#str(" srckey=0x");
        this.#str(this.#field16(base + S.T_SPORT).toString(16));
        this.#str(" dstkey=0x");
        this.#str(this.#field16(base + S.T_DPORT).toString(16));
        return;
      case 1:
      case 58:
        this.#str(" type=");
        this.#dec(this.#field8(base + S.T_ICMP_TYPE));
        this.#str(" code=");
        this.#dec(this.#field8(base + S.T_ICMP_CODE));
        this.#str(" id=");
        this.#dec(this.#field16(base + S.T_ICMP_ID));
        return;
    }
  }

  #counters(base: number): void {
    const slots = this.#slots;
    if (slots[base]! < 0) return;
    this.#str(" packets=");
    if (slots[base + 1]! < 0) this.#str("0");
    else this.#dec64(slots[base + 1]!);
    this.#str(" bytes=");
    if (slots[base + 2]! < 0) this.#str("0");
    else this.#dec64(slots[base + 2]!);
  }

  /** The line, as {@link formatFlow} writes it (see there for each piece). */
  #line(slots: Int32Array): void {
    const options = this.#options;
    const b = this.#b;
    if (options.extended) {
      this.#str(slots[S.S_FAMILY] === 2 ? "ipv4     2 " : "ipv6     10 ");
    }
    const proto = slots[S.ORIG + S.T_PROTO]!;
    this.#bytes(L4_PREFIX[proto < 0 ? 0 : b[proto]!]!);
    if (slots[S.S_TIMEOUT]! >= 0) {
      this.#out[this.#at++] = 32;
      this.#dec(this.#u32(S.S_TIMEOUT));
    }
    if (slots[S.S_TCP]! >= 0) this.#bytes(TCP_STATE_BYTES[b[slots[S.S_TCP_STATE]!]!] ?? NONE);
    this.#tuple(S.ORIG);
    if (slots[S.ORIG + S.T_ZONE]! >= 0) {
      this.#str(" zone-orig=");
      this.#dec(this.#u16(slots[S.ORIG + S.T_ZONE]!));
    }
    this.#counters(S.S_COUNTERS_ORIG);
    const status = slots[S.S_STATUS]! < 0 ? 0 : this.#u32(S.S_STATUS);
    if ((status & CT_STATUS.SEEN_REPLY) === 0) this.#str(" [UNREPLIED]");
    this.#tuple(S.REPLY);
    if (slots[S.REPLY + S.T_ZONE]! >= 0) {
      this.#str(" zone-reply=");
      this.#dec(this.#u16(slots[S.REPLY + S.T_ZONE]!));
    }
    this.#counters(S.S_COUNTERS_REPLY);
    if (status & CT_STATUS.HW_OFFLOAD) this.#str(" [HW_OFFLOAD]");
    else if (status & CT_STATUS.OFFLOAD) this.#str(" [OFFLOAD]");
    else if (status & CT_STATUS.ASSURED) this.#str(" [ASSURED]");
    if (slots[S.S_MARK]! >= 0) {
      this.#str(" mark=");
      this.#dec(this.#u32(S.S_MARK));
    }
    if (slots[S.S_SECMARK]! >= 0) {
      this.#str(" secmark=");
      this.#dec(this.#u32(S.S_SECMARK));
    }
    if (slots[S.S_ZONE]! >= 0) {
      this.#str(" zone=");
      this.#dec(this.#u16(slots[S.S_ZONE]!));
    }
    if (slots[S.S_TIMESTAMP_START]! >= 0) this.#times(slots);
    if (slots[S.S_USE]! >= 0) {
      this.#str(" use=");
      this.#dec(this.#u32(S.S_USE));
    }
    if (options.id && slots[S.S_ID]! >= 0) {
      this.#str(" id=");
      this.#dec(this.#u32(S.S_ID));
    }
    const names = options.labelNames;
    if (names !== undefined && slots[S.S_LABELS]! >= 0) this.#labels(names, slots);
  }

  /** `delta-time=` and, with `ktimestamp`, `[start=…] [stop=…]`. */
  #times(slots: Int32Array): void {
    const v = this.#v;
    const start = v.getBigUint64(slots[S.S_TIMESTAMP_START]!, false);
    const stopAt = slots[S.S_TIMESTAMP_STOP]!;
    const stop = stopAt < 0 ? 0n : v.getBigUint64(stopAt, false);
    const startSec = Number(start / NSEC);
    const endSec = stop === 0n
      ? (this.#options.now ?? Math.floor(Date.now() / 1000))
      : Number(stop / NSEC);
    const delta = endSec - startSec;
    this.#str(" delta-time=");
    this.#str(String(delta >= 0 ? delta : BigInt.asUintN(64, BigInt(delta))));
    if (this.#options.ktimestamp) {
      this.#str(` [start=${ctime(startSec)}]`);
      if (stop !== 0n) this.#str(` [stop=${ctime(Number(stop / NSEC))}]`);
    }
  }

  /** `labels=name,…` (only named bits; bare `labels` when none has a name). */
  #labels(names: readonly (string | undefined)[], slots: Int32Array): void {
    this.#sink.used = this.#at;
    this.#sink.room(this.#labelRoom);
    this.#out = this.#sink.buffer;
    this.#at = this.#sink.used;
    const at = slots[S.S_LABELS]!, len = slots[S.S_LABELS_LEN]!;
    this.#str(" labels");
    let first = true;
    for (let i = 0; i < len; i++) {
      const byte = this.#b[at + i]!;
      if (byte === 0) continue;
      for (let bit = 0; bit < 8; bit++) {
        if ((byte & (1 << bit)) === 0) continue;
        const name = names[i * 8 + bit];
        if (!name) continue;
        this.#out[this.#at++] = first ? 61 : 44; // "=" then ","
        this.#str(name);
        first = false;
      }
    }
  }
}
