/**
 * Requests in bulk: creates packed into batches for {@link createBatches},
 * the delete of a dumped flow for `deleteWhere`, and how an entry is named
 * in messages.
 *
 * @module
 */

import * as C from "./constants.ts";
import { ERRNO, NetlinkError } from "./errors.ts";
import { checkUint } from "./filter.ts";
import type {
  CreateManyOptions,
  CreateSpec,
  DeleteWhereOptions,
  UpdateWhereOptions,
} from "./options.ts";
import { protocolInfo } from "./protocols.ts";
import { beginCreate, beginNamed, type EntryRef, type FlowChanges } from "./request.ts";
import type { BatchError, Transport } from "./transport.ts";
import type { Flow } from "./types.ts";

/** Requests to send in one datagram, and what to make of their ACKs. */
export interface Batch<R> {
  /** The requests, back to back. */
  bytes: Uint8Array<ArrayBuffer>;
  /** The sequence number of the first (the others follow). */
  firstSeq: number;
  /** How many requests. */
  count: number;
  /** Takes the batch's failures; returns what it achieved, or throws the failure to report. */
  settle(errors: BatchError[]): R;
}

/**
 * Packs the requests `encode` makes of `items` (sequence numbers from the
 * transport, in order) up to `batchSize` a batch; settling a batch hands
 * its items, the index of the first and the batch's failures to `settle`.
 */
export function* packBatches<T, R>(
  transport: Transport,
  items: Iterable<T>,
  batchSize: number,
  encode: (item: T, seq: number, index: number) => Uint8Array,
  settle: (items: T[], first: number, firstSeq: number, errors: BatchError[]) => R,
): Generator<Batch<R>, void, undefined> {
  let buffer = new Uint8Array(64 * 1024);
  let used = 0, index = 0, firstSeq = 0;
  let pending: T[] = [];
  const take = (): Batch<R> => {
    const first = index - pending.length, from = firstSeq, batchItems = pending;
    const bytes = buffer.slice(0, used);
    pending = [];
    used = 0;
    return {
      bytes,
      firstSeq: from,
      count: batchItems.length,
      settle: (errors) => settle(batchItems, first, from, errors),
    };
  };
  for (const item of items) {
    const seq = transport.nextSeq();
    if (pending.length === 0) firstSeq = seq;
    const msg = encode(item, seq, index);
    if (used + msg.byteLength > buffer.byteLength) {
      const bigger = new Uint8Array(Math.max(buffer.byteLength * 2, used + msg.byteLength));
      bigger.set(buffer.subarray(0, used));
      buffer = bigger;
    }
    buffer.set(msg, used);
    used += msg.byteLength;
    pending.push(item);
    index++;
    if (pending.length >= batchSize) yield take();
  }
  if (pending.length > 0) yield take();
}

/**
 * The create requests of `specs`, packed up to `batchSize` (default 256) a
 * batch. When some fail, the rest of their batch is still created, and
 * settling the batch throws a {@link NetlinkError} for the first failure
 * (naming its index in `specs`); no later batch is made.
 */
export function createBatches(
  transport: Transport,
  specs: Iterable<CreateSpec>,
  options: CreateManyOptions,
): Generator<Batch<number>, void, undefined> {
  const batchSize = checkUint(options.batchSize ?? 256, 65535, "batchSize") || 1;
  const encode = (spec: CreateSpec, seq: number, index: number) =>
    beginCreate(transport, spec, seq, `specs[${index}]`).finish();
  return packBatches(transport, specs, batchSize, encode, (items, first, from, errors) => {
    const e = errors[0];
    if (e === undefined) return items.length;
    const which = `entry #${first + ((e.seq - from) >>> 0)}`;
    throw new NetlinkError("create", e.errno, {
      extAck: e.extAck ? `${which}: ${e.extAck}` : which,
      seq: e.seq,
    });
  });
}

/**
 * The delete of a dumped `flow` (its original tuple, zone and id); settling
 * says whether it was deleted (false: it was gone already), or throws the
 * kernel's other refusals.
 */
export function deleteBatch(transport: Transport, flow: Flow): Batch<boolean> {
  const seq = transport.nextSeq();
  const bytes = beginNamed(transport, C.IPCTNL_MSG_CT_DELETE, seq, flow, {}, true).finish();
  return {
    bytes,
    firstSeq: seq,
    count: 1,
    settle(errors) {
      const e = errors[0];
      if (e === undefined) return true;
      if (e.errno === ERRNO.ENOENT) return false;
      throw new NetlinkError("delete", e.errno, { extAck: e.extAck, seq }).about(
        describeRef(flow),
      );
    },
  };
}

/** An entry as messages name it: `udp 10.0.0.1:5353 -> 10.0.0.2:53 zone 7`. */
export function describeRef(ref: EntryRef): string {
  const flow = "orig" in ref && "reply" in ref ? ref : undefined;
  const t = flow === undefined ? ref as Exclude<EntryRef, Flow> : flow.orig;
  const zone = flow?.zone ?? flow?.orig.zone ?? (flow === undefined ? t.zone : undefined);
  const number = typeof t.protocol === "number" ? t.protocol : undefined;
  const proto = number === undefined ? String(t.protocol) : protocolInfo(number).name;
  const port = (p: number | undefined) => (p === undefined ? "" : `:${p}`);
  const v6 = (a: string | undefined) => (a?.includes(":") ? `[${a}]` : String(a));
  const icmp = t.icmpType === undefined
    ? ""
    : ` type ${t.icmpType} code ${t.icmpCode} id ${t.icmpId}`;
  const where = zone === undefined || zone === 0 ? "" : ` zone ${zone}`;
  const src = t.srcPort === undefined ? String(t.src) : v6(t.src) + port(t.srcPort);
  const dst = t.dstPort === undefined ? String(t.dst) : v6(t.dst) + port(t.dstPort);
  return `${proto} ${src} -> ${dst}${icmp}${where}`;
}

/** Deletes each flow of `flows` on `other` (closed afterwards); how many were deleted. */
export async function deleteWhere(
  flows: AsyncIterable<Flow>,
  other: Transport,
  options: DeleteWhereOptions,
): Promise<number> {
  let deleted = 0;
  try {
    for await (const flow of flows) {
      const batch = deleteBatch(other, flow);
      if (batch.settle(await other.batchAsync("delete", batch.bytes, batch.firstSeq, 1))) {
        deleted++;
        options.onDelete?.(flow);
      }
    }
  } finally {
    other.close();
  }
  return deleted;
}

/** {@link deleteWhere}, blocking. */
export function deleteWhereSync(
  flows: Iterable<Flow>,
  other: Transport,
  options: DeleteWhereOptions,
): number {
  let deleted = 0;
  try {
    for (const flow of flows) {
      const batch = deleteBatch(other, flow);
      if (batch.settle(other.batch("delete", batch.bytes, batch.firstSeq, 1))) {
        deleted++;
        options.onDelete?.(flow);
      }
    }
  } finally {
    other.close();
  }
  return deleted;
}

/** The changes for `flow`: the same for all, or what the function says (undefined: none). */
function changesFor(
  changes: FlowChanges | ((flow: Flow) => FlowChanges | undefined),
  flow: Flow,
): FlowChanges | undefined {
  return typeof changes === "function" ? changes(flow) : changes;
}

/** Whether `error` says the entry was gone (deleted meanwhile): skipped, not counted. */
function gone(error: unknown): boolean {
  return error instanceof NetlinkError && error.code === "ENOENT";
}

/** Updates each flow of `flows` with `update`; how many were changed. */
export async function updateWhere(
  flows: AsyncIterable<Flow>,
  changes: FlowChanges | ((flow: Flow) => FlowChanges | undefined),
  update: (flow: Flow, changes: FlowChanges) => Promise<void>,
  options: UpdateWhereOptions,
): Promise<number> {
  let updated = 0;
  for await (const flow of flows) {
    const wanted = changesFor(changes, flow);
    if (wanted === undefined) continue;
    try {
      await update(flow, wanted);
    } catch (error) {
      if (gone(error)) continue;
      throw error;
    }
    updated++;
    options.onUpdate?.(flow);
  }
  return updated;
}

/** {@link updateWhere}, blocking. */
export function updateWhereSync(
  flows: Iterable<Flow>,
  changes: FlowChanges | ((flow: Flow) => FlowChanges | undefined),
  update: (flow: Flow, changes: FlowChanges) => void,
  options: UpdateWhereOptions,
): number {
  let updated = 0;
  for (const flow of flows) {
    const wanted = changesFor(changes, flow);
    if (wanted === undefined) continue;
    try {
      update(flow, wanted);
    } catch (error) {
      if (gone(error)) continue;
      throw error;
    }
    updated++;
    options.onUpdate?.(flow);
  }
  return updated;
}
