/**
 * Mixed batches of changes for {@link Conntrack.applyMany}: creates, and
 * updates and deletes of entries named by a tuple, in order, many to a
 * datagram, every ACK checked and every refusal reported by its index.
 *
 * @module
 */

import * as C from "./constants.ts";
import { NetlinkError } from "./errors.ts";
import { checkUint } from "./filter.ts";
import { AttrCursor, Encoder, NLM_F_CREATE, NLMSG_HDRLEN } from "./netlink.ts";
import type { CreateSpec, DeleteOptions, UpdateOptions } from "./options.ts";
import {
  beginCreate,
  beginNamed,
  encodeChanges,
  type EntryRef,
  type FlowChanges,
  type RequestStart,
} from "./request.ts";
import { type Batch, describeRef, packBatches } from "./bulk.ts";
import type { Transport } from "./transport.ts";
import { decodeTuple } from "./tuple.ts";

/**
 * One change for {@link Conntrack.applyMany}: create an entry (as
 * `create`), or change or delete the entry a tuple or dumped flow names
 * (as `update` and `delete`, with their options).
 *
 * @example
 * ```ts
 * import type { BulkChange } from "@ctnl/conntrack";
 *
 * const tuple = { src: "10.0.0.1", dst: "10.0.0.2", protocol: "udp", srcPort: 5000, dstPort: 53 };
 * const changes: BulkChange[] = [
 *   { create: { orig: tuple, timeout: 60 } },
 *   { update: tuple, changes: { mark: 7 } },
 *   { delete: tuple, options: { zone: 0 } },
 * ];
 * void changes; // await ct.applyMany(changes)
 * ```
 */
export type BulkChange =
  | { readonly create: CreateSpec }
  | {
    readonly update: EntryRef;
    readonly changes: FlowChanges;
    readonly options?: UpdateOptions | undefined;
  }
  | { readonly delete: EntryRef; readonly options?: DeleteOptions | undefined };

/**
 * Options for {@link Conntrack.applyMany}.
 *
 * @example
 * ```ts
 * import type { ApplyManyOptions } from "@ctnl/conntrack";
 *
 * const failed: number[] = [];
 * const options: ApplyManyOptions = { batchSize: 512, onError: (_error, index) => failed.push(index) };
 * void options; // await ct.applyMany(changes, options)
 * ```
 */
export interface ApplyManyOptions {
  /** Requests packed into each `sendmsg` (default 256). */
  batchSize?: number | undefined;
  /**
   * Sees each change the kernel refused (a {@link NetlinkError} whose
   * `operation` is `"create"`, `"update"` or `"delete"`, naming the entry)
   * with its index in the changes; the others go on. Without it, the first
   * refusal is thrown once its batch is done and no later batch is sent.
   */
  onError?: ((error: NetlinkError, index: number) => void) | undefined;
}

type Kind = "create" | "update" | "delete";

/** The request of one change (sequence `seq`), a view of the encoder `transport` begins in. */
function encode(transport: RequestStart, change: BulkChange, seq: number, at: string): Uint8Array {
  if (change === null || typeof change !== "object") {
    throw new TypeError(`Cannot apply ${at}: ${String(change)} is not a change`);
  }
  if ("create" in change) {
    return beginCreate(transport, change.create, seq, `${at}.create`).finish();
  }
  if ("update" in change) {
    const zone = change.options?.zone;
    const options: DeleteOptions = zone === undefined ? {} : { zone };
    const enc = beginNamed(transport, C.IPCTNL_MSG_CT_NEW, seq, change.update, options);
    encodeChanges(enc, change.changes, `${at}.changes`);
    return enc.finish();
  }
  if ("delete" in change) {
    const options = change.options ?? {};
    return beginNamed(transport, C.IPCTNL_MSG_CT_DELETE, seq, change.delete, options, true)
      .finish();
  }
  throw new TypeError(`Cannot apply ${at}: it has no create, update or delete`);
}

function kindOf(change: BulkChange): Kind {
  return "create" in change ? "create" : "update" in change ? "update" : "delete";
}

function subjectOf(change: BulkChange): string {
  if ("create" in change) return describeRef(change.create.orig);
  return describeRef("update" in change ? change.update : change.delete);
}

/**
 * The requests of `changes`, in order, up to `batchSize` a batch. Settling
 * a batch returns how many changes the kernel accepted; each refusal goes
 * to `onError`, or, without it, the first is thrown.
 */
export function applyBatches(
  transport: Transport,
  changes: Iterable<BulkChange>,
  options: ApplyManyOptions,
): Generator<Batch<number>, void, undefined> {
  const batchSize = checkUint(options.batchSize ?? 256, 65535, "batchSize") || 1;
  const onError = options.onError;
  const request = (change: BulkChange, seq: number, index: number) =>
    encode(transport, change, seq, `changes[${index}]`);
  return packBatches(transport, changes, batchSize, request, (items, first, from, errors) => {
    for (const e of errors) {
      const rel = (e.seq - from) >>> 0;
      const change = items[rel]!;
      const error = new NetlinkError(kindOf(change), e.errno, { extAck: e.extAck, seq: e.seq })
        .about(subjectOf(change));
      if (onError === undefined) throw error;
      onError(error, first + rel);
    }
    return items.length - errors.length;
  });
}

/** Where {@link PreparedChanges} begins each request: its own encoder, as a transport's. */
class Scratch implements RequestStart {
  readonly encoder = new Encoder(512);
  begin(msg: number, flags: number, seq: number, family: number, version = 0): Encoder {
    return this.encoder.begin((C.NFNL_SUBSYS_CTNETLINK << 8) | msg, flags, seq, family, 0, version);
  }
}

/**
 * Changes for {@link Conntrack.applyMany}, checked and encoded as they are
 * added: each request goes straight into one buffer, so a million changes
 * keep no object each (what `ctnl load` does with a file). The requests
 * are sent from that buffer, their sequence numbers written in as they go.
 * A bad change throws at {@link PreparedChanges.add}, as `applyMany` would
 * before sending it.
 *
 * @example
 * ```ts
 * import { PreparedChanges } from "@ctnl/conntrack";
 * import { equal, throws } from "node:assert/strict";
 *
 * const changes = new PreparedChanges();
 * const orig = { src: "10.0.0.1", dst: "10.0.0.2", protocol: "udp", srcPort: 5000, dstPort: 53 };
 * changes.add({ create: { orig, timeout: 60 } });
 * changes.add({ delete: orig });
 * equal(changes.length, 2);
 * throws(() => changes.add({ create: { orig, timeout: -1 } }), RangeError);
 * equal(changes.length, 2);
 * // await ct.applyMany(changes, { onError: (error, index) => … })
 * ```
 */
export class PreparedChanges {
  #scratch = new Scratch();
  #bytes = new Uint8Array(64 * 1024);
  #view = new DataView(this.#bytes.buffer);
  #used = 0;
  /** Where request `i` starts; `#starts[length]` is the end. */
  #starts = new Uint32Array(1025);
  #count = 0;

  /** How many changes were added. */
  get length(): number {
    return this.#count;
  }

  /**
   * Checks and encodes `change`; returns its index. A bad change throws
   * (`TypeError`, `RangeError`: {@link ArgumentError}) and is not added.
   */
  add(change: BulkChange): number {
    const msg = encode(this.#scratch, change, 0, `changes[${this.#count}]`);
    const at = this.#used, end = at + msg.byteLength;
    if (end > this.#bytes.byteLength) {
      const bigger = new Uint8Array(Math.max(this.#bytes.byteLength * 2, end));
      bigger.set(this.#bytes.subarray(0, at));
      this.#bytes = bigger;
      this.#view = new DataView(bigger.buffer);
    }
    this.#bytes.set(msg, at);
    this.#used = end;
    if (this.#count + 1 >= this.#starts.length) {
      const more = new Uint32Array(this.#starts.length * 2);
      more.set(this.#starts);
      this.#starts = more;
    }
    this.#starts[++this.#count] = end;
    return this.#count - 1;
  }

  /**
   * The requests `from` to `to` (exclusive), their sequence numbers set
   * from `firstSeq` on: a view of the buffer, valid until the next call.
   */
  requests(from: number, to: number, firstSeq: number): Uint8Array<ArrayBuffer> {
    let seq = firstSeq;
    for (let i = from; i < to; i++) {
      this.#view.setUint32(this.#starts[i]! + 8, seq, true);
      seq = (seq + 1) >>> 0 || 1;
    }
    return this.#bytes.subarray(this.#starts[from]!, this.#starts[to]!);
  }

  /** What request `i` does: a create, an update or a delete. */
  kind(i: number): "create" | "update" | "delete" {
    const at = this.#starts[i]!;
    const type = this.#view.getUint16(at + 4, true) & 0xff;
    if (type === C.IPCTNL_MSG_CT_DELETE) return "delete";
    return (this.#view.getUint16(at + 6, true) & NLM_F_CREATE) !== 0 ? "create" : "update";
  }

  /**
   * The entry request `i` names, as messages name it (decoded from its
   * request): its original tuple, as {@link applyMany} names a change's.
   */
  subject(i: number): string {
    const at = this.#starts[i]!, end = this.#starts[i + 1]!;
    const c = new AttrCursor();
    c.reset(this.#bytes, this.#view, at + NLMSG_HDRLEN + 4, end, C.SETS.ct);
    while (c.next()) if (c.type === C.CTA_TUPLE_ORIG) return describeRef(decodeTuple(c));
    return "?";
  }
}

/**
 * The batches of `prepared`, up to `batchSize` a batch, as
 * {@link applyBatches} makes them of changes.
 */
export function* preparedBatches(
  transport: Transport,
  prepared: PreparedChanges,
  options: ApplyManyOptions,
): Generator<Batch<number>, void, undefined> {
  const batchSize = checkUint(options.batchSize ?? 256, 65535, "batchSize") || 1;
  const onError = options.onError;
  for (let from = 0; from < prepared.length; from += batchSize) {
    const to = Math.min(prepared.length, from + batchSize);
    const firstSeq = transport.nextSeq();
    for (let i = from + 1; i < to; i++) transport.nextSeq();
    yield {
      bytes: prepared.requests(from, to, firstSeq),
      firstSeq,
      count: to - from,
      settle(errors) {
        for (const e of errors) {
          const index = from + ((e.seq - firstSeq) >>> 0);
          const error = new NetlinkError(prepared.kind(index), e.errno, {
            extAck: e.extAck,
            seq: e.seq,
          }).about(prepared.subject(index));
          if (onError === undefined) throw error;
          onError(error, index);
        }
        return to - from - errors.length;
      },
    };
  }
}
