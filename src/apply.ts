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
import type { CreateSpec, DeleteOptions, UpdateOptions } from "./options.ts";
import {
  beginCreate,
  beginNamed,
  encodeChanges,
  type EntryRef,
  type FlowChanges,
} from "./request.ts";
import { type Batch, describeRef, packBatches } from "./bulk.ts";
import type { Transport } from "./transport.ts";

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

/** The request of one change (sequence `seq`), copied out of the transport's encoder. */
function encode(transport: Transport, change: BulkChange, seq: number, at: string): Uint8Array {
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
