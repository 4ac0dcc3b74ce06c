/**
 * The requests of the {@link Conntrack} operations, prepared for a
 * transport: the request bytes, their sequence number and how to decode the
 * reply, so that the blocking and the asynchronous form of each operation
 * share everything but the waiting.
 *
 * @module
 */

import * as C from "./constants.ts";
import { decodeFlowAt, type DecodeOptions } from "./decode.ts";
import { ArgumentError } from "./errors.ts";
import { type CompiledFilter, compileFilter, type DumpFilter, normalizeFilter } from "./filter.ts";
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from "./netlink.ts";
import type {
  DeleteOptions,
  DumpOptions,
  FlushOptions,
  GetOptions,
  UpdateOptions,
} from "./options.ts";
import { beginNamed, encodeChanges, type EntryRef, type FlowChanges } from "./request.ts";
import type { Decoder, ExchangeOptions, Transport } from "./transport.ts";
import type { Flow } from "./types.ts";
// For {@link} in the docs.

/**
 * Datagrams a dump receives before it spawns a worker to receive ahead
 * (about 550 entries): smaller dumps never start one. The worker boots while
 * the dump goes on, and takes over when it is ready.
 */
const PREFETCH_AFTER = 4;

/** The flow decoder of an exchange, with `options`. */
export function flowDecoder(options: DecodeOptions): Decoder<Flow> {
  const decodeOptions: DecodeOptions = { keepUnknown: options.keepUnknown ?? false };
  return (c, bytes, view, h) => decodeFlowAt(c, bytes, view, h.offset, h.length, decodeOptions);
}

/** Checks the `zero` option of a dump or get. */
function zeroing(zero: unknown): boolean {
  if (zero === undefined || zero === false) return false;
  if (zero === true) return true;
  throw new ArgumentError("zero", zero, `${String(zero)} is not a boolean`);
}

/** A request prepared for a transport: its bytes, sequence number and what the reply holds. */
export interface Prepared<T> {
  transport: Transport;
  operation: "dump" | "get" | "stats" | "count";
  request: Uint8Array<ArrayBuffer>;
  seq: number;
  replyType: number;
  decode: Decoder<T>;
  options: ExchangeOptions<T>;
}

/** The dump request for `filter`, compiled for this kernel. */
export function dumpRequest(
  transport: Transport,
  release: string,
  filter: DumpFilter | undefined,
  options: DumpOptions,
): Prepared<Flow> & {
  compiled: CompiledFilter;
  interrupted: { value: boolean };
} {
  const compiled = compileFilter(normalizeFilter(filter), release, options.userspaceFilter);
  const family = compiled.plan.family;
  const af = family === "ipv4" ? C.AF_INET : family === "ipv6" ? C.AF_INET6 : C.AF_UNSPEC;

  const seq = transport.nextSeq();
  const type = zeroing(options.zero) ? C.IPCTNL_MSG_CT_GET_CTRZERO : C.IPCTNL_MSG_CT_GET;
  const enc = transport.begin(type, NLM_F_REQUEST | NLM_F_DUMP, seq, af);
  compiled.encode(enc);
  const interrupted = { value: false };
  return {
    transport,
    operation: "dump",
    request: enc.finish(),
    seq,
    replyType: C.IPCTNL_MSG_CT_NEW,
    decode: flowDecoder(options),
    options: {
      keep: compiled.match,
      prefetchAfter: options.prefetch === false ? -1 : PREFETCH_AFTER,
      interrupted,
    },
    compiled,
    interrupted,
  };
}
/** The get request for `ref`. */
export function getRequest(
  transport: Transport,
  ref: EntryRef,
  options: GetOptions,
): Prepared<Flow> {
  const seq = transport.nextSeq();
  const type = zeroing(options.zero) ? C.IPCTNL_MSG_CT_GET_CTRZERO : C.IPCTNL_MSG_CT_GET;
  const enc = beginNamed(transport, type, seq, ref, options);
  const decode = flowDecoder(options);
  return {
    transport,
    operation: "get",
    request: enc.finish(),
    seq,
    replyType: C.IPCTNL_MSG_CT_NEW,
    decode,
    options: {},
  };
}
/** The update request for `ref`. */
export function updateRequest(
  transport: Transport,
  ref: EntryRef,
  changes: FlowChanges,
  options: UpdateOptions,
) {
  if (changes === null || typeof changes !== "object") {
    throw new ArgumentError("changes", changes, `${String(changes)} is not an object`);
  }

  const seq = transport.nextSeq();
  const zone: DeleteOptions = options.zone === undefined ? {} : { zone: options.zone };
  const enc = beginNamed(transport, C.IPCTNL_MSG_CT_NEW, seq, ref, zone);
  encodeChanges(enc, changes, "changes");
  return { transport, request: enc.finish(), seq };
}
/** The delete request for `ref`. */
export function deleteRequest(transport: Transport, ref: EntryRef, options: DeleteOptions) {
  const seq = transport.nextSeq();
  const enc = beginNamed(transport, C.IPCTNL_MSG_CT_DELETE, seq, ref, options, true);
  return { transport, request: enc.finish(), seq };
}
/** The flush request for `options`. */
export function flushRequest(transport: Transport, options: FlushOptions) {
  const f = normalizeFilter({
    ...(options.family ? { family: options.family } : {}),
    ...(options.mark !== undefined ? { mark: options.mark } : {}),
  });

  const seq = transport.nextSeq();
  // Version 1 makes the kernel honour nfgen_family (version 0 flushes all).
  const version = f.af === C.AF_UNSPEC ? 0 : 1;
  const flags = NLM_F_REQUEST | NLM_F_ACK;
  const enc = transport.begin(C.IPCTNL_MSG_CT_DELETE, flags, seq, f.af, version);
  if (f.mark) enc.u32be(C.CTA_MARK, f.mark.value).u32be(C.CTA_MARK_MASK, f.mark.mask);
  return { transport, request: enc.finish(), seq };
}
