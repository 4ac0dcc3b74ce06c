/**
 * Netlink framing: `nlmsghdr`, `nlattr`, alignment, the attribute cursor used
 * by every decoder, the request encoder, and `NLMSG_ERROR` parsing.
 *
 * @module
 */

import { DecodeError } from "./errors.ts";

/** Length of `struct nlmsghdr`. */
export const NLMSG_HDRLEN = 16;
/** Length of `struct nlattr`. */
export const NLA_HDRLEN = 4;
/** `NLA_F_NESTED` flag bit in `nla_type`. */
export const NLA_F_NESTED = 0x8000;
/** `NLA_F_NET_BYTEORDER` flag bit in `nla_type`. */
export const NLA_F_NET_BYTEORDER = 0x4000;
/** Mask that removes the flag bits from `nla_type`. */
export const NLA_TYPE_MASK = 0x3fff;

/** `NLMSG_NOOP` control message type. */
export const NLMSG_NOOP = 1;
/** `NLMSG_ERROR` control message type (also ACKs). */
export const NLMSG_ERROR = 2;
/** `NLMSG_DONE` control message type (end of a dump). */
export const NLMSG_DONE = 3;
/** `NLMSG_OVERRUN` control message type. */
export const NLMSG_OVERRUN = 4;

/** `NLM_F_REQUEST` flag. */
export const NLM_F_REQUEST = 0x1;
/** `NLM_F_MULTI` flag. */
export const NLM_F_MULTI = 0x2;
/** `NLM_F_ACK` flag. */
export const NLM_F_ACK = 0x4;
/** `NLM_F_DUMP_INTR` flag: the dump was interrupted by a change. */
export const NLM_F_DUMP_INTR = 0x10;
/** `NLM_F_ROOT` flag. */
export const NLM_F_ROOT = 0x100;
/** `NLM_F_MATCH` flag. */
export const NLM_F_MATCH = 0x200;
/** `NLM_F_DUMP` = `NLM_F_ROOT | NLM_F_MATCH`. */
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
/** Create only: fail if it exists (new requests). */
export const NLM_F_EXCL = 0x200;
/** Create if it does not exist (new requests). */
export const NLM_F_CREATE = 0x400;
/** `NLM_F_CAPPED` (on NLMSG_ERROR): the echoed request is only its header. */
export const NLM_F_CAPPED = 0x100;
/** `NLM_F_ACK_TLVS` (on NLMSG_ERROR): extended-ack attributes follow. */
export const NLM_F_ACK_TLVS = 0x200;

/** `NLMSGERR_ATTR_MSG`: extended-ack text. */
const NLMSGERR_ATTR_MSG = 1;

/** Rounds up to a multiple of 4, as the kernel's `NLMSG_ALIGN`. */
export function NLMSG_ALIGN(len: number): number {
  return (len + 3) & ~3;
}

/** Rounds up to a multiple of 4, as the kernel's `NLA_ALIGN`. */
export function NLA_ALIGN(len: number): number {
  return (len + 3) & ~3;
}

/** Names of one attribute set's members, for error paths. */
export interface AttrSet {
  /** Name of the set, e.g. `"ctattr_tuple"`. */
  readonly name: string;
  /** Member names by attribute number. */
  readonly names: readonly string[];
}

const MAX_DEPTH = 16;

const NO_SET: AttrSet = { name: "", names: [] };

/**
 * Walks the attributes of one nesting level of a message, with a stack for
 * nested levels. One cursor is reused for a whole message; nothing is copied
 * on the way down and nothing is allocated per attribute (the stack is
 * preallocated). Every read checks its length first and throws a
 * {@link DecodeError} naming the attribute path and byte offset.
 *
 * ```
 * cur.reset(bytes, start, end, SET);
 * while (cur.next()) {
 *   switch (cur.type) { case 1: x = cur.u32be(); break; ... }
 * }
 * ```
 */
export class AttrCursor {
  /** The bytes being decoded. */
  bytes: Uint8Array = new Uint8Array(0);
  /** A view over {@link bytes}. */
  view: DataView = new DataView(new ArrayBuffer(0));
  /** Offset of the next attribute header. */
  pos = 0;
  /** End of the current level. */
  end = 0;
  /** Current attribute's type, flag bits masked off. */
  type = 0;
  /** Current attribute's raw type field (with flag bits). */
  rawType = 0;
  /** Offset of the current attribute's payload. */
  dataStart = 0;
  /** Length of the current attribute's payload. */
  dataLen = 0;
  #set: AttrSet = NO_SET;
  #depth = 0;
  #stackPos = new Int32Array(MAX_DEPTH);
  #stackEnd = new Int32Array(MAX_DEPTH);
  #stackType = new Int32Array(MAX_DEPTH);
  #stackSet: AttrSet[] = new Array<AttrSet>(MAX_DEPTH).fill(NO_SET);

  /** Starts walking `bytes[start, end)` as the attribute set `set`. */
  reset(bytes: Uint8Array, view: DataView, start: number, end: number, set: AttrSet): void {
    this.bytes = bytes;
    this.view = view;
    this.pos = start;
    this.end = end;
    this.#set = set;
    this.#depth = 0;
    this.type = 0;
    this.rawType = 0;
  }

  /** Advances to the next attribute; false at the end of the level. */
  next(): boolean {
    const pos = this.pos;
    const end = this.end;
    if (pos >= end) return false;
    if (end - pos < NLA_HDRLEN) {
      this.type = -1;
      throw this.error(`${end - pos} trailing bytes are too short for an attribute header`, pos);
    }
    const view = this.view;
    const len = view.getUint16(pos, true);
    const raw = view.getUint16(pos + 2, true);
    this.rawType = raw;
    this.type = raw & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN) throw this.error(`attribute length ${len} is too short`, pos);
    if (len > end - pos) {
      throw this.error(`attribute length ${len} runs past the end (${end - pos} left)`, pos);
    }
    this.dataStart = pos + NLA_HDRLEN;
    this.dataLen = len - NLA_HDRLEN;
    const next = pos + ((len + 3) & ~3);
    this.pos = next > end ? end : next;
    return true;
  }

  /** Enters the current attribute as a nest of `set`. */
  enter(set: AttrSet): void {
    const d = this.#depth;
    if (d >= MAX_DEPTH) throw this.error("nesting is too deep", this.pos);
    this.#stackPos[d] = this.pos;
    this.#stackEnd[d] = this.end;
    this.#stackType[d] = this.type;
    this.#stackSet[d] = this.#set;
    this.#depth = d + 1;
    this.pos = this.dataStart;
    this.end = this.dataStart + this.dataLen;
    this.#set = set;
  }

  /** Leaves the current nest, back to the attribute after it. */
  leave(): void {
    const d = this.#depth - 1;
    if (d < 0) {
      this.pos = this.end;
      this.type = 0;
      return;
    }
    this.#depth = d;
    this.pos = this.#stackPos[d]!;
    this.end = this.#stackEnd[d]!;
    this.type = this.#stackType[d]!;
    this.#set = this.#stackSet[d]!;
  }

  /** The current attribute's path, e.g. `CTA_TUPLE_ORIG.CTA_TUPLE_IP`. */
  path(): string {
    const parts: string[] = [];
    for (let i = 0; i < this.#depth; i++) {
      const set = this.#stackSet[i]!;
      const type = this.#stackType[i]!;
      parts.push(set.names[type] ?? `${set.name}[${type}]`);
    }
    if (this.type >= 0) {
      parts.push(this.#set.names[this.type] ?? `${this.#set.name}[${this.type}]`);
    } else {
      parts.push(this.#set.name);
    }
    return parts.join(".");
  }

  /** Builds a {@link DecodeError} for the current attribute. */
  error(reason: string, offset: number = this.dataStart - NLA_HDRLEN): DecodeError {
    return new DecodeError(this.path(), offset, reason);
  }

  #lengthError(size: number): DecodeError {
    return this.error(
      `length ${this.dataLen} is ${this.dataLen < size ? "too short" : "too long"}, want ${size}`,
    );
  }

  /** Reads a u8 payload. */
  u8(): number {
    if (this.dataLen !== 1) throw this.#lengthError(1);
    return this.bytes[this.dataStart]!;
  }

  /** Reads a big-endian u16 payload. */
  u16be(): number {
    if (this.dataLen !== 2) throw this.#lengthError(2);
    return this.view.getUint16(this.dataStart, false);
  }

  /** Reads a big-endian u32 payload. */
  u32be(): number {
    if (this.dataLen !== 4) throw this.#lengthError(4);
    return this.view.getUint32(this.dataStart, false);
  }

  /** Reads a big-endian u64 payload. */
  u64be(): bigint {
    if (this.dataLen !== 8) throw this.#lengthError(8);
    return this.view.getBigUint64(this.dataStart, false);
  }

  /** Checks the payload is exactly `size` bytes and returns its offset. */
  fixed(size: number): number {
    if (this.dataLen !== size) throw this.#lengthError(size);
    return this.dataStart;
  }

  /** Copies the payload out. */
  copy(): Uint8Array {
    return this.bytes.slice(this.dataStart, this.dataStart + this.dataLen);
  }

  /** Reads a NUL-terminated (or unterminated) string payload. */
  string(): string {
    let end = this.dataStart + this.dataLen;
    const nul = this.bytes.indexOf(0, this.dataStart);
    if (nul >= 0 && nul < end) end = nul;
    // A copy: the bytes may be a SharedArrayBuffer (receive-ahead slots),
    // which TextDecoder does not take.
    return DECODER.decode(this.bytes.slice(this.dataStart, end));
  }
}

const DECODER = new TextDecoder();

/** Header fields of one netlink message. */
export interface MessageHeader {
  /** Offset of the message in the datagram. */
  offset: number;
  /** `nlmsg_len`. */
  length: number;
  /** `nlmsg_type`. */
  type: number;
  /** `nlmsg_flags`. */
  flags: number;
  /** `nlmsg_seq`. */
  seq: number;
  /** `nlmsg_pid`. */
  pid: number;
}

/**
 * Reads the header of the message at `offset` of a datagram of `end` bytes,
 * into `out`, checking its length. Returns the offset of the next message.
 */
export function readHeader(
  view: DataView,
  offset: number,
  end: number,
  out: MessageHeader,
): number {
  if (end - offset < NLMSG_HDRLEN) {
    throw new DecodeError(
      "nlmsghdr",
      offset,
      `${end - offset} bytes are too short for a message header`,
    );
  }
  const length = view.getUint32(offset, true);
  if (length < NLMSG_HDRLEN) {
    throw new DecodeError("nlmsghdr", offset, `message length ${length} is too short`);
  }
  if (length > end - offset) {
    throw new DecodeError(
      "nlmsghdr",
      offset,
      `message length ${length} runs past the end (${end - offset} left)`,
    );
  }
  out.offset = offset;
  out.length = length;
  out.type = view.getUint16(offset + 4, true);
  out.flags = view.getUint16(offset + 6, true);
  out.seq = view.getUint32(offset + 8, true);
  out.pid = view.getUint32(offset + 12, true);
  const next = offset + NLMSG_ALIGN(length);
  return next > end ? end : next;
}

/** A fresh, zeroed {@link MessageHeader}. */
export function newHeader(): MessageHeader {
  return { offset: 0, length: 0, type: 0, flags: 0, seq: 0, pid: 0 };
}

/**
 * Splits a datagram into its netlink messages, each a view (not a copy)
 * including its header. Throws {@link DecodeError} on a bad length.
 *
 * @example Split a datagram
 * ```ts
 * import { decodeMessages } from "@ctnl/conntrack";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 *
 * // One NLMSG_DONE message: length 20, type 3, int error 0.
 * const done = new Uint8Array([20, 0, 0, 0, 3, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
 * assertEquals([...decodeMessages(done)].map((m) => m.length), [20]);
 * ```
 */
export function* decodeMessages(datagram: Uint8Array): Generator<Uint8Array> {
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const header = newHeader();
  let offset = 0;
  while (offset < datagram.byteLength) {
    const next = readHeader(view, offset, datagram.byteLength, header);
    yield datagram.subarray(offset, offset + header.length);
    offset = next;
  }
}

/** A parsed `NLMSG_ERROR`: `errno` 0 is an ACK. */
export interface ErrorMessage {
  /** Positive errno; 0 for an ACK. */
  errno: number;
  /** The extended-ack text, if any. */
  extAck: string | undefined;
}

const ERRMSG_SET: AttrSet = {
  name: "nlmsgerr_attrs",
  names: ["NLMSGERR_ATTR_UNUSED", "NLMSGERR_ATTR_MSG", "NLMSGERR_ATTR_OFFS"],
};

/**
 * Parses the payload of an `NLMSG_ERROR` message whose header is `header`.
 */
export function readError(
  bytes: Uint8Array,
  view: DataView,
  header: MessageHeader,
  cursor: AttrCursor,
): ErrorMessage {
  const start = header.offset + NLMSG_HDRLEN;
  const end = header.offset + header.length;
  if (end - start < 4 + NLMSG_HDRLEN) {
    throw new DecodeError("nlmsgerr", start, `length ${end - start} is too short, want 20`);
  }
  const error = view.getInt32(start, true);
  let extAck: string | undefined;
  if ((header.flags & NLM_F_ACK_TLVS) !== 0) {
    let tlv = start + 4;
    if ((header.flags & NLM_F_CAPPED) !== 0) tlv += NLMSG_HDRLEN;
    else {
      const echoed = view.getUint32(start + 4, true);
      if (echoed < NLMSG_HDRLEN || echoed > end - tlv) {
        throw new DecodeError("nlmsgerr", start + 4, `echoed request length ${echoed} is invalid`);
      }
      tlv += NLMSG_ALIGN(echoed);
    }
    if (tlv <= end) {
      cursor.reset(bytes, view, tlv, end, ERRMSG_SET);
      while (cursor.next()) {
        if (cursor.type === NLMSGERR_ATTR_MSG) extAck = cursor.string();
      }
    }
  }
  return { errno: -error, extAck };
}

/**
 * Builds netlink requests in one reusable buffer: header, attributes,
 * nests; `finish()` fills in `nlmsg_len`.
 */
export class Encoder {
  #buf: Uint8Array<ArrayBuffer>;
  #view: DataView;
  #len = 0;
  #nests: number[] = [];

  /** An encoder with an initial capacity of `size` bytes. */
  constructor(size = 1024) {
    this.#buf = new Uint8Array(size);
    this.#view = new DataView(this.#buf.buffer);
  }

  #reserve(n: number): number {
    const at = this.#len;
    const want = at + NLA_ALIGN(n);
    if (want > this.#buf.byteLength) {
      const bigger = new Uint8Array(Math.max(want, this.#buf.byteLength * 2));
      bigger.set(this.#buf.subarray(0, at));
      this.#buf = bigger;
      this.#view = new DataView(bigger.buffer);
    }
    // A loop, not fill(): attributes are a few bytes, and the call costs more than the loop.
    const buf = this.#buf;
    for (let i = at; i < want; i++) buf[i] = 0;
    this.#len = want;
    return at;
  }

  /** Starts a message: `nlmsghdr` plus the 4-byte `nfgenmsg`. */
  begin(type: number, flags: number, seq: number, family: number, resId = 0, version = 0): this {
    this.#len = 0;
    this.#nests.length = 0;
    const at = this.#reserve(NLMSG_HDRLEN + 4);
    this.#view.setUint16(at + 4, type, true);
    this.#view.setUint16(at + 6, flags, true);
    this.#view.setUint32(at + 8, seq, true);
    this.#view.setUint32(at + 12, 0, true);
    this.#buf[at + 16] = family;
    this.#buf[at + 17] = version; // NFNETLINK_V0, or 1 where the kernel wants it
    this.#view.setUint16(at + 18, resId, false);
    return this;
  }

  #attr(type: number, len: number): number {
    const at = this.#reserve(NLA_HDRLEN + len);
    this.#view.setUint16(at, NLA_HDRLEN + len, true);
    this.#view.setUint16(at + 2, type, true);
    return at + NLA_HDRLEN;
  }

  /** Appends a u8 attribute. */
  u8(type: number, value: number): this {
    this.#buf[this.#attr(type, 1)] = value;
    return this;
  }

  /** Appends a big-endian u16 attribute. */
  u16be(type: number, value: number): this {
    this.#view.setUint16(this.#attr(type, 2), value, false);
    return this;
  }

  /** Appends a big-endian u32 attribute. */
  u32be(type: number, value: number): this {
    this.#view.setUint32(this.#attr(type, 4), value >>> 0, false);
    return this;
  }

  /** Appends a u32 attribute in host byte order (e.g. `CTA_FILTER_*_FLAGS`). */
  u32(type: number, value: number): this {
    this.#view.setUint32(this.#attr(type, 4), value >>> 0, true);
    return this;
  }

  /** Appends a raw bytes attribute. */
  bytes(type: number, value: Uint8Array): this {
    const n = value.byteLength, at = this.#attr(type, n), buf = this.#buf;
    if (n > 16) buf.set(value, at);
    else for (let i = 0; i < n; i++) buf[at + i] = value[i]!; // addresses: cheaper than set()
    return this;
  }

  /** Opens a nest (sets `NLA_F_NESTED`). */
  nest(type: number): this {
    this.#nests.push(this.#attr(type | NLA_F_NESTED, 0) - NLA_HDRLEN);
    return this;
  }

  /** Closes the innermost nest. */
  end(): this {
    const at = this.#nests.pop();
    if (at === undefined) throw new Error("Encoder.end() without nest()");
    this.#view.setUint16(at, this.#len - at, true);
    return this;
  }

  /** Finishes the message and returns it (a view valid until the next begin). */
  finish(): Uint8Array<ArrayBuffer> {
    if (this.#nests.length !== 0) throw new Error("Encoder.finish() with an open nest");
    this.#view.setUint32(0, this.#len, true);
    return this.#buf.subarray(0, this.#len);
  }
}
