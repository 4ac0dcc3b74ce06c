/**
 * The {@link Conntrack} handle: one netlink socket and the operations on it
 * (get, dump, stats, count).
 *
 * @module
 */

import { closeFd, NetlinkSocket, openFd } from "../ffi/socket.ts";
import { PrefetchJob } from "../ffi/prefetch.ts";
import { kernelRelease } from "../ffi/libc.ts";
import * as C from "./constants.ts";
import {
  decodeCpuStatsAt,
  decodeFlowAt,
  decodeGlobalStatsAt,
  type DecodeOptions,
} from "./decode.ts";
import { ArgumentError, DecodeError, NetlinkError, type Operation } from "./errors.ts";
import {
  checkUint,
  compileFilter,
  type DumpFilter,
  type FilterPlan,
  type Masked,
  normalizeFilter,
} from "./filter.ts";
import {
  encodeChanges,
  encodeTuple,
  type FlowChanges,
  invertTuple,
  type ParsedTuple,
  parseTuple,
  type TupleSpec,
} from "./request.ts";
import {
  AttrCursor,
  Encoder,
  type MessageHeader,
  newHeader,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_NOOP,
  readError,
  readHeader,
} from "./netlink.ts";
import type { CpuStats, Flow, GlobalStats } from "./types.ts";

/** Options for {@link Conntrack.open}.
 *
 * @example
 * ```ts
 * import type { OpenOptions } from "@ctnl/conntrack";
 *
 * const options: OpenOptions = { netns: "blue", timeoutMs: 5000, kernelRelease: "5.10.0" };
 * void options; // Conntrack.open(options)
 * ```
 */
export interface OpenOptions {
  /**
   * Network namespace to work in: a name under `/run/netns` (as `ip netns`
   * makes), a path (`/proc/1234/ns/net`), or an open namespace file
   * descriptor. Default: the caller's namespace.
   */
  netns?: string | number | undefined;
  /** How long a receive may wait for the kernel, in ms (default 10000). */
  timeoutMs?: number;
  /**
   * Kernel release to plan filters for (default: the running kernel's,
   * from `uname`). Useful to see what an older kernel would do.
   */
  kernelRelease?: string;
}

/** Options for {@link Conntrack.dump}.
 *
 * @example
 * ```ts
 * import type { DumpOptions } from "@ctnl/conntrack";
 *
 * // Everything but the family checked in userspace; interrupted dumps accepted.
 * const options: DumpOptions = { userspaceFilter: true, onInterrupted: "ignore" };
 * void options; // ct.dump(filter, options)
 * ```
 */
export interface DumpOptions extends DecodeOptions {
  /** Apply every filter part in userspace (the kernel only selects the family). */
  userspaceFilter?: boolean;
  /**
   * What to do when the kernel marks the dump interrupted
   * (`NLM_F_DUMP_INTR`: the table changed, the result may be inconsistent):
   * `"throw"` (default) a {@link DumpInterruptedError} after the last flow
   * (catch it and dump again for a consistent view), or `"ignore"`.
   */
  onInterrupted?: "throw" | "ignore";
  /**
   * Receive ahead on a worker thread once a dump has proved not small
   * (after about 550 entries), so the kernel's work of producing the dump
   * overlaps with decoding (default true; false keeps every call on this
   * thread).
   */
  prefetch?: boolean;
}

/** Options for {@link Conntrack.get}.
 *
 * @example
 * ```ts
 * import type { GetOptions } from "@ctnl/conntrack";
 *
 * // Look the entry up by its reply tuple, in zone 7.
 * const options: GetOptions = { zone: 7, direction: "reply" };
 * void options; // ct.get(tuple, options)
 * ```
 */
export interface GetOptions extends DecodeOptions {
  /** Zone to look in (default 0). */
  zone?: number;
  /** Whether the tuple is the original (default) or reply direction. */
  direction?: "orig" | "reply";
}

/**
 * A dump was interrupted: the kernel flagged `NLM_F_DUMP_INTR`, so some
 * entries may be missing or repeated. Retry the dump if you need a
 * consistent view.
 *
 * @example
 * ```ts
 * import { DumpInterruptedError } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * const e = new DumpInterruptedError("dump");
 * equal(e.code, "EINTR");
 * equal(e instanceof Error, true);
 * ```
 */
export class DumpInterruptedError extends NetlinkError {
  /** Builds the error for `operation`. */
  constructor(operation: Operation) {
    super(operation, 4, { extAck: "dump interrupted by a table change (NLM_F_DUMP_INTR)" });
    this.name = "DumpInterruptedError";
  }
}

/** Options for {@link Conntrack.flush}.
 *
 * @example
 * ```ts
 * import type { FlushOptions } from "@ctnl/conntrack";
 *
 * const options: FlushOptions = { family: "ipv6", mark: { value: 0x10, mask: 0xf0 } };
 * void options; // ct.flush(options)
 * ```
 */
export interface FlushOptions {
  /** Only this family's entries (default: all). */
  family?: "ipv4" | "ipv6" | "all";
  /** Only entries whose mark matches (`{ value, mask }` or a value). */
  mark?: number | Masked<number>;
}

/** What {@link Conntrack.create} makes: tuples plus the fields to set.
 *
 * @example
 * ```ts
 * import type { CreateSpec } from "@ctnl/conntrack";
 *
 * const spec: CreateSpec = {
 *   orig: { src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 4000, dstPort: 80 },
 *   timeout: 120,
 *   tcpState: "ESTABLISHED",
 *   status: ["ASSURED", "SEEN_REPLY"],
 *   mark: 7,
 * };
 * void spec; // ct.create(spec) creates it
 * ```
 */
export interface CreateSpec extends FlowChanges {
  /** The original-direction tuple. */
  orig: TupleSpec;
  /** The reply-direction tuple (default: the inverse of `orig`). */
  reply?: TupleSpec;
  /** Timeout in seconds (required by the kernel). */
  timeout: number;
  /** Zone (default 0). */
  zone?: number;
}

/** Options for {@link Conntrack.events}.
 *
 * @example
 * ```ts
 * import type { EventOptions } from "@ctnl/conntrack";
 *
 * const options: EventOptions = {
 *   types: ["destroy"],
 *   filter: { orig: { protocol: "tcp" } },
 *   bufferSize: 32 << 20,
 *   signal: AbortSignal.timeout(60_000),
 * };
 * void options; // ct.events(options)
 * ```
 */
export interface EventOptions extends DecodeOptions {
  /** Which events to watch (default all three). */
  types?: readonly ("new" | "update" | "destroy")[];
  /** Only events whose flow matches (applied in userspace). */
  filter?: DumpFilter;
  /** Socket receive buffer in bytes (default 8 MiB; forced past rmem_max as root). */
  bufferSize?: number;
  /** Ask the kernel not to report overruns (`NETLINK_NO_ENOBUFS`): loss goes unnoticed. */
  noEnobufs?: boolean;
  /** How long to sleep while idle, in ms (default 10). */
  pollIntervalMs?: number;
  /** Ends the stream when aborted. */
  signal?: AbortSignal;
}

/**
 * One event: a flow that was created, updated or destroyed; or `lost`, when
 * the kernel dropped events because the receive buffer overran (`lost` is
 * the running count of such overruns).
 *
 * @example
 * ```ts
 * import type { ConntrackEvent } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * function describe(e: ConntrackEvent): string {
 *   return e.type === "lost" ? `lost (${e.lost} overruns)` : `${e.type} ${e.flow.orig.src}`;
 * }
 * equal(describe({ type: "lost", lost: 2 }), "lost (2 overruns)");
 * ```
 */
export type ConntrackEvent =
  | {
    type: "new" | "update" | "destroy";
    flow: Flow;
    /** Netlink port id of the process whose request caused the event (0: the kernel itself). */
    portId: number;
  }
  | { type: "lost"; lost: number };

/** `enum nfnetlink_groups`: NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY. */
const EVENT_GROUPS: Readonly<Record<string, number>> = { new: 1, update: 2, destroy: 3 };

/**
 * Datagrams a dump receives before it spawns a worker to receive ahead
 * (about 550 entries): smaller dumps never start one. The worker boots while
 * the dump goes on, and takes over when it is ready.
 */
const PREFETCH_AFTER = 4;

const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;

function familyNumber(t: ParsedTuple): number {
  return t.family === "ipv6" ? C.AF_INET6 : C.AF_INET;
}

/** A dumped flow's original tuple, for deleting it. */
function flowTuple(flow: Flow): ParsedTuple {
  const o = flow.orig;
  return parseTuple({
    src: o.src!,
    dst: o.dst!,
    protocol: o.protocol ?? 0,
    ...(o.srcPort !== undefined ? { srcPort: o.srcPort, dstPort: o.dstPort! } : {}),
    ...(o.icmpType !== undefined
      ? { icmpType: o.icmpType, icmpCode: o.icmpCode ?? 0, icmpId: o.icmpId ?? 0 }
      : {}),
  });
}

const noReply: Decoder<never> = (_c, _bytes, _view, h) => {
  throw new DecodeError(
    "nlmsghdr",
    h.offset,
    `unexpected reply message type 0x${h.type.toString(16)}`,
  );
};

/** Runs `fn` now; its result or error as a promise. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}

const registry = new FinalizationRegistry<NetlinkSocket>((sock) => sock.close());

type Decoder<T> = (c: AttrCursor, bytes: Uint8Array, view: DataView, h: MessageHeader) => T;

/**
 * A handle on the conntrack table of one network namespace, owning one
 * netlink socket. Close it with `close()` or let `using` do it.
 *
 * @example Dump, get and count (needs root and `--allow-ffi`)
 * ```ts ignore
 * import { Conntrack } from "@ctnl/conntrack";
 *
 * using ct = Conntrack.open();
 * for await (const flow of ct.dump({ orig: { protocol: "tcp", dstPort: 443 } })) {
 *   console.log(flow.orig.src, flow.tcp?.stateName);
 * }
 * console.log(await ct.count());
 * ```
 */
export class Conntrack implements Disposable {
  #sock: NetlinkSocket | undefined;
  #netnsFd: number | undefined;
  #ownsNetnsFd = false;
  #timeoutMs: number;
  #release: string;
  #seq: number;
  #busy = false;
  #encoder = new Encoder(512);
  #cursor = new AttrCursor();
  #header = newHeader();
  #closed = false;
  #eventSockets = new Set<NetlinkSocket>();
  #bigBuffer = false;

  private constructor(options: OpenOptions) {
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#seq = (Date.now() & 0x3fffffff) >>> 0;
    const ns = options.netns;
    if (ns !== undefined) {
      if (typeof ns === "number") {
        checkUint(ns, 0x7fffffff, "netns");
        this.#netnsFd = ns;
      } else if (typeof ns === "string" && ns.length > 0) {
        const path = ns.includes("/") ? ns : `/run/netns/${ns}`;
        try {
          this.#netnsFd = openFd(path, "open network namespace");
        } catch (error) {
          if (error instanceof NetlinkError && error.code === "ENOENT") {
            throw new NetlinkError("open network namespace", 2, {
              extAck: `${path} does not exist`,
            });
          }
          throw error;
        }
        this.#ownsNetnsFd = true;
      } else {
        throw new ArgumentError("netns", ns, `${String(ns)} is not a name, path or fd`);
      }
    }
    try {
      this.#sock = this.#openSocket();
      this.#release = options.kernelRelease ?? kernelRelease();
    } catch (error) {
      if (this.#ownsNetnsFd && this.#netnsFd !== undefined) closeFd(this.#netnsFd);
      throw error;
    }
    registry.register(this, this.#sock, this);
  }

  /**
   * Opens a handle (a netfilter netlink socket), optionally in another
   * network namespace.
   *
   * @example Open in a namespace made by `ip netns add test`
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open({ netns: "test" });
   * console.log(await ct.count());
   * ```
   */
  static open(options: OpenOptions = {}): Conntrack {
    if (options === null || typeof options !== "object") {
      throw new ArgumentError("options", options, `${String(options)} is not an object`);
    }
    return new Conntrack(options);
  }

  #openSocket(): NetlinkSocket {
    return NetlinkSocket.open({ netnsFd: this.#netnsFd, recvTimeoutMs: this.#timeoutMs });
  }

  /** True once {@link close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The netlink port id of this handle's socket (0 while it has none), for tracing. */
  get portId(): number {
    return this.#sock?.portId ?? 0;
  }

  /** The sequence number of the last request this handle sent, for tracing. */
  get seq(): number {
    return this.#seq;
  }

  /** The kernel release filters are planned for. */
  get kernelRelease(): string {
    return this.#release;
  }

  /** Closes the socket. Calling it again does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    registry.unregister(this);
    this.#sock?.close();
    this.#sock = undefined;
    for (const sock of this.#eventSockets) sock.close();
    this.#eventSockets.clear();
    if (this.#ownsNetnsFd && this.#netnsFd !== undefined) closeFd(this.#netnsFd);
    this.#netnsFd = undefined;
  }

  /** Closes the handle (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #socket(operation: Operation): NetlinkSocket {
    if (this.#closed) throw new Error(`Cannot ${operation}: the Conntrack handle is closed`);
    if (this.#busy) {
      throw new Error(
        `Cannot ${operation}: this handle is still busy with a dump; finish it or open another handle`,
      );
    }
    if (this.#sock === undefined) {
      // The previous dump was abandoned midway; its rest is still queued on
      // the old socket, so it was closed. Start afresh.
      this.#sock = this.#openSocket();
      registry.unregister(this);
      registry.register(this, this.#sock, this);
    }
    return this.#sock;
  }

  #nextSeq(): number {
    this.#seq = (this.#seq + 1) >>> 0;
    if (this.#seq === 0) this.#seq = 1;
    return this.#seq;
  }

  /**
   * Sends `request` and yields what `decode` makes of each reply message of
   * type `replyType` (only what `keep` accepts, when given), until
   * `NLMSG_DONE` (dumps) or the ACK (requests).
   * Replies with another sequence or port id, or not from the kernel, are
   * skipped.
   */
  *#exchange<T>(
    operation: Operation,
    request: Uint8Array<ArrayBuffer>,
    seq: number,
    replyType: number,
    decode: Decoder<T>,
    interrupted: { value: boolean },
    keep?: (value: T) => boolean,
    prefetchAfter = -1,
  ): Generator<T> {
    const sock = this.#socket(operation);
    sock.send(request, operation);
    this.#busy = true;
    let finished = false;
    let job: PrefetchJob | undefined;
    let booting: PrefetchJob | undefined;
    const h = this.#header;
    try {
      for (let received = 0;; received++) {
        let bytes: Uint8Array, length: number, sender: number;
        if (received === prefetchAfter) {
          // Not a small dump: a worker boots to receive ahead while we decode.
          booting = PrefetchJob.spawn(sock.fd, seq, sock.portId, this.#timeoutMs);
        } else if (booting?.ready) {
          if (booting.handOver()) job = booting;
          booting = undefined;
        }
        if (job !== undefined) {
          const got = job.next();
          if (got.errno !== 0) {
            throw new NetlinkError(operation, got.errno, {
              extAck: got.errno === 110 ? "no reply from the kernel in time" : undefined,
            });
          }
          bytes = got.bytes;
          length = got.length;
          sender = got.senderPort;
        } else {
          const got = sock.recv(operation)!;
          bytes = sock.buffer;
          length = got.length;
          sender = got.senderPort;
        }
        if (sender !== 0) continue; // not from the kernel
        const view = new DataView(bytes.buffer, bytes.byteOffset, length);
        let offset = 0;
        while (offset < length) {
          offset = readHeader(view, offset, length, h);
          if (h.seq !== seq || h.pid !== sock.portId) continue;
          if ((h.flags & NLM_F_DUMP_INTR) !== 0) interrupted.value = true;
          const type = h.type;
          if (type === NLMSG_DONE) {
            if (h.length >= NLMSG_HDRLEN + 4) {
              const error = view.getInt32(h.offset + NLMSG_HDRLEN, true);
              if (error < 0) throw new NetlinkError(operation, -error, { seq });
            }
            finished = true;
            return;
          }
          if (type === NLMSG_ERROR) {
            const e = readError(bytes, view, h, this.#cursor);
            if (e.errno !== 0) {
              finished = true;
              throw new NetlinkError(operation, e.errno, { extAck: e.extAck, seq });
            }
            finished = true;
            return;
          }
          if (type === NLMSG_NOOP) continue;
          if (type !== ((C.NFNL_SUBSYS_CTNETLINK << 8) | replyType)) {
            throw new DecodeError(
              "nlmsghdr",
              h.offset,
              `unexpected message type 0x${type.toString(16)} in ${operation} reply`,
            );
          }
          const value = decode(this.#cursor, bytes, view, h);
          if (keep === undefined || keep(value)) yield value;
        }
      }
    } finally {
      this.#busy = false;
      booting?.abort();
      job?.release();
      if (!finished) {
        // Abandoned midway (consumer stopped, or an error): the rest of the
        // reply is still queued. Drop this socket (a receiving worker drains
        // and closes it); the next call opens another.
        registry.unregister(this);
        if (job?.cancel()) sock.detach();
        else sock.close();
        if (this.#sock === sock) this.#sock = undefined;
      }
    }
  }

  /**
   * Shows where each part of `filter` would run on this kernel: in the
   * dump request, or in userspace (with the reason).
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * console.log(ct.planDump({ family: "ipv6", orig: { src: "fd00::1" } }));
   * // { family: "ipv6", kernel: ["family"], userspace: [{ part: "orig.src", reason: "…inverted" }] }
   * ```
   */
  planDump(filter?: DumpFilter, options: DumpOptions = {}): FilterPlan {
    return compileFilter(normalizeFilter(filter), this.#release, options.userspaceFilter).plan;
  }

  /**
   * Streams every entry (or those `filter` selects) synchronously, in
   * constant memory: one receive buffer, one flow at a time.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * for (const flow of ct.dumpSync({ family: "ipv4", mark: 42 })) console.log(flow.orig);
   * ```
   */
  *dumpSync(filter?: DumpFilter, options: DumpOptions = {}): Generator<Flow, void, undefined> {
    const compiled = compileFilter(normalizeFilter(filter), this.#release, options.userspaceFilter);
    const af = compiled.plan.family === "ipv4"
      ? C.AF_INET
      : compiled.plan.family === "ipv6"
      ? C.AF_INET6
      : C.AF_UNSPEC;
    const decodeOptions: DecodeOptions = { keepUnknown: options.keepUnknown ?? false };
    const decode: Decoder<Flow> = (c, bytes, view, h) =>
      decodeFlowAt(c, bytes, view, h.offset, h.length, decodeOptions);
    const match = compiled.match;
    const seq = this.#nextSeq();
    this.#encoder.begin(
      (C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_GET,
      NLM_F_REQUEST | NLM_F_DUMP,
      seq,
      af,
    );
    compiled.encode(this.#encoder);
    const request = this.#encoder.finish();
    const interrupted = { value: false };
    // Filtered inside #exchange and delegated: one generator step per flow.
    const prefetchAfter = options.prefetch === false ? -1 : PREFETCH_AFTER;
    yield* this.#exchange(
      "dump",
      request,
      seq,
      C.IPCTNL_MSG_CT_NEW,
      decode,
      interrupted,
      match,
      prefetchAfter,
    );
    if (interrupted.value && options.onInterrupted !== "ignore") {
      throw new DumpInterruptedError("dump");
    }
  }

  /**
   * Streams every entry (or those `filter` selects) as an async iterable.
   * Breaking out of the loop early is fine: the handle stays usable.
   *
   * @example Established TCP flows to port 22
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * const filter = { orig: { protocol: "tcp", dstPort: 22 }, status: ["ASSURED"] } as const;
   * for await (const flow of ct.dump(filter)) console.log(flow.orig.src);
   * ```
   */
  async *dump(
    filter?: DumpFilter,
    options: DumpOptions = {},
  ): AsyncGenerator<Flow, void, undefined> {
    yield* this.dumpSync(filter, options);
  }

  /**
   * Gets one entry by its tuple (original direction by default) in a zone.
   * A missing entry is a {@link NetlinkError} with code `ENOENT`.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * const flow = await ct.get({
   *   src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 40000, dstPort: 80,
   * });
   * console.log(flow.tcp?.stateName);
   * ```
   */
  get(tuple: TupleSpec, options: GetOptions = {}): Promise<Flow> {
    try {
      return Promise.resolve(this.getSync(tuple, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** {@link get}, synchronously. */
  getSync(tuple: TupleSpec, options: GetOptions = {}): Flow {
    const seq = this.#nextSeq();
    this.#encodeGet(tuple, options, seq);
    const request = this.#encoder.finish();
    const decodeOptions: DecodeOptions = { keepUnknown: options.keepUnknown ?? false };
    let found: Flow | undefined;
    for (
      const flow of this.#exchange(
        "get",
        request,
        seq,
        C.IPCTNL_MSG_CT_NEW,
        (c, bytes, view, h) => decodeFlowAt(c, bytes, view, h.offset, h.length, decodeOptions),
        { value: false },
      )
    ) found = flow;
    if (found === undefined) {
      throw new NetlinkError("get", 2, { extAck: "no entry in the reply", seq });
    }
    return found;
  }

  #encodeGet(tuple: TupleSpec, options: GetOptions, seq: number): void {
    const t = parseTuple(tuple);
    const zone = options.zone === undefined ? undefined : checkUint(options.zone, 65535, "zone");
    const direction = options.direction ?? "orig";
    if (direction !== "orig" && direction !== "reply") {
      throw new ArgumentError(
        "direction",
        direction,
        `"${String(direction)}" is not "orig" or "reply"`,
      );
    }
    const enc = this.#encoder.begin(
      (C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_GET,
      NLM_F_REQUEST | NLM_F_ACK,
      seq,
      t.family === "ipv6" ? C.AF_INET6 : C.AF_INET,
    );
    encodeTuple(enc, direction === "orig" ? C.CTA_TUPLE_ORIG : C.CTA_TUPLE_REPLY, t);
    if (zone !== undefined) enc.u16be(C.CTA_ZONE, zone);
  }

  /** Sends `request` and waits for its ACK (or throws the kernel's error). */
  #ack(operation: Operation, request: Uint8Array<ArrayBuffer>, seq: number): void {
    for (const _ of this.#exchange(operation, request, seq, -1, noReply, { value: false })) {
      // An ACKed request has no reply messages.
    }
  }

  #header0(msg: number, flags: number, seq: number, family: number, version = 0): Encoder {
    return this.#encoder.begin(
      (C.NFNL_SUBSYS_CTNETLINK << 8) | msg,
      flags,
      seq,
      family,
      0,
      version,
    );
  }

  #encodeCreate(spec: CreateSpec, seq: number, argument: string): void {
    if (spec === null || typeof spec !== "object") {
      throw new ArgumentError(argument, spec, `${String(spec)} is not an object`);
    }
    if (spec.timeout === undefined) throw new ArgumentError(argument, spec, `timeout is required`);
    const orig = parseTuple(spec.orig, `${argument}.orig`);
    const reply = spec.reply === undefined
      ? invertTuple(orig)
      : parseTuple(spec.reply, `${argument}.reply`);
    if (reply.family !== orig.family || reply.protocol !== orig.protocol) {
      throw new ArgumentError(argument, spec, `orig and reply differ in family or protocol`);
    }
    const zone = spec.zone === undefined
      ? undefined
      : checkUint(spec.zone, 65535, `${argument}.zone`);
    const enc = this.#header0(
      C.IPCTNL_MSG_CT_NEW,
      NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
      seq,
      familyNumber(orig),
    );
    encodeTuple(enc, C.CTA_TUPLE_ORIG, orig);
    encodeTuple(enc, C.CTA_TUPLE_REPLY, reply);
    if (zone !== undefined) enc.u16be(C.CTA_ZONE, zone);
    encodeChanges(enc, spec, argument, true);
  }

  /**
   * Creates one entry (conntrack `-I`). The reply tuple defaults to the
   * inverse of the original; `timeout` is required. An existing entry is a
   * {@link NetlinkError} with code `EEXIST`.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open({ netns: "test" });
   * await ct.create({
   *   orig: { src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 4000, dstPort: 80 },
   *   timeout: 120, tcpState: "ESTABLISHED", status: ["ASSURED", "SEEN_REPLY"], mark: 7,
   * });
   * ```
   */
  create(spec: CreateSpec): Promise<void> {
    return settle(() => {
      const seq = this.#nextSeq();
      this.#encodeCreate(spec, seq, "flow");
      this.#ack("create", this.#encoder.finish(), seq);
    });
  }

  /**
   * Creates many entries, packing up to `batchSize` requests (default 256)
   * into each `sendmsg` and checking every ACK. Returns how many were
   * created. When some fail, the rest of their batch is still created and a
   * {@link NetlinkError} for the first failure (naming its index) is thrown
   * after that batch.
   *
   * @example Fill a test table
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open({ netns: "bench" });
   * const specs = Array.from({ length: 1000 }, (_, i) => ({
   *   orig: { src: "10.1.0.1", dst: "10.2.0.1", protocol: "udp", srcPort: 1024 + i, dstPort: 53 },
   *   timeout: 600,
   * }));
   * console.log(await ct.createMany(specs)); // 1000
   * ```
   */
  createMany(specs: Iterable<CreateSpec>, options: { batchSize?: number } = {}): Promise<number> {
    return settle(() => this.createManySync(specs, options));
  }

  /** {@link createMany}, synchronously. */
  createManySync(specs: Iterable<CreateSpec>, options: { batchSize?: number } = {}): number {
    const batchSize = checkUint(options.batchSize ?? 256, 65535, "batchSize") || 1;
    const sock = this.#socket("create");
    if (!this.#bigBuffer) {
      // Room for a batch's ACKs, which arrive all at once.
      sock.setReceiveBuffer(4 << 20);
      this.#bigBuffer = true;
    }
    let batch = new Uint8Array(64 * 1024);
    let used = 0;
    let index = 0;
    let created = 0;
    let firstError: NetlinkError | undefined;
    let firstSeq = 0;
    let inBatch = 0;
    const flush = () => {
      if (inBatch === 0) return;
      const errors = this.#sendBatch(sock, batch.subarray(0, used), firstSeq, inBatch);
      created += inBatch - errors.length;
      if (!firstError && errors.length > 0) {
        const [seq, error] = errors[0]!;
        firstError = new NetlinkError("create", error.errno, {
          extAck: `entry #${index - inBatch + (seq - firstSeq)}${
            error.extAck ? `: ${error.extAck}` : ""
          }`,
          seq,
        });
      }
      used = 0;
      inBatch = 0;
    };
    for (const spec of specs) {
      const seq = this.#nextSeq();
      if (inBatch === 0) firstSeq = seq;
      this.#encodeCreate(spec, seq, `specs[${index}]`);
      const msg = this.#encoder.finish();
      if (used + msg.byteLength > batch.byteLength) {
        const bigger = new Uint8Array(Math.max(batch.byteLength * 2, used + msg.byteLength));
        bigger.set(batch.subarray(0, used));
        batch = bigger;
      }
      batch.set(msg, used);
      used += msg.byteLength;
      inBatch++;
      index++;
      if (inBatch >= batchSize) {
        flush();
        if (firstError) throw firstError;
      }
    }
    flush();
    if (firstError) throw firstError;
    return created;
  }

  /** Sends a batch of `count` ACKed requests (seqs from `firstSeq`); returns the errors. */
  #sendBatch(
    sock: NetlinkSocket,
    bytes: Uint8Array,
    firstSeq: number,
    count: number,
  ): [number, { errno: number; extAck: string | undefined }][] {
    sock.send(bytes.slice(), "create");
    const errors: [number, { errno: number; extAck: string | undefined }][] = [];
    let acked = 0;
    const h = this.#header;
    while (acked < count) {
      const got = sock.recv("create")!;
      if (got.senderPort !== 0) continue;
      const buf = sock.buffer;
      const view = new DataView(buf.buffer, 0, got.length);
      for (let offset = 0; offset < got.length;) {
        offset = readHeader(view, offset, got.length, h);
        const rel = (h.seq - firstSeq) >>> 0;
        if (h.pid !== sock.portId || rel >= count || h.type !== NLMSG_ERROR) continue;
        const e = readError(buf, view, h, this.#cursor);
        if (e.errno !== 0) errors.push([h.seq, e]);
        acked++;
      }
    }
    return errors;
  }

  /**
   * Changes an existing entry (conntrack `-U`): mark, timeout, status bits,
   * labels, TCP state. A missing entry is `ENOENT`.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * await ct.update(
   *   { src: "10.0.0.1", dst: "10.0.0.2", protocol: "udp", srcPort: 5000, dstPort: 53 },
   *   { mark: 42, timeout: 60 },
   * );
   * ```
   */
  update(tuple: TupleSpec, changes: FlowChanges, options: { zone?: number } = {}): Promise<void> {
    return settle(() => {
      const t = parseTuple(tuple);
      if (changes === null || typeof changes !== "object") {
        throw new ArgumentError("changes", changes, `${String(changes)} is not an object`);
      }
      const seq = this.#nextSeq();
      const enc = this.#header0(
        C.IPCTNL_MSG_CT_NEW,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        familyNumber(t),
      );
      encodeTuple(enc, C.CTA_TUPLE_ORIG, t);
      if (options.zone !== undefined) enc.u16be(C.CTA_ZONE, checkUint(options.zone, 65535, "zone"));
      encodeChanges(enc, changes, "changes");
      this.#ack("update", enc.finish(), seq);
    });
  }

  /**
   * Deletes one entry by tuple (conntrack `-D` with a full tuple). A
   * missing entry is a {@link NetlinkError} with code `ENOENT`.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * await ct.delete({ src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 4000, dstPort: 80 });
   * ```
   */
  delete(tuple: TupleSpec, options: GetOptions & { id?: number } = {}): Promise<void> {
    return settle(() => {
      const seq = this.#nextSeq();
      const t = parseTuple(tuple);
      const direction = options.direction ?? "orig";
      const enc = this.#header0(
        C.IPCTNL_MSG_CT_DELETE,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        familyNumber(t),
      );
      encodeTuple(enc, direction === "reply" ? C.CTA_TUPLE_REPLY : C.CTA_TUPLE_ORIG, t);
      if (options.zone !== undefined) enc.u16be(C.CTA_ZONE, checkUint(options.zone, 65535, "zone"));
      if (options.id !== undefined) enc.u32be(C.CTA_ID, checkUint(options.id, 0xffffffff, "id"));
      this.#ack("delete", enc.finish(), seq);
    });
  }

  /**
   * Deletes every entry `filter` selects, in one streaming pass (a dump on
   * this handle, deletes on a second socket), and returns how many it
   * deleted. Entries that vanish on their own meanwhile are not counted.
   * `onDelete` sees each deleted flow (the CLI prints them).
   *
   * @example Kill every connection to port 22
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * const n = await ct.deleteWhere({ orig: { protocol: "tcp", dstPort: 22 } });
   * ```
   */
  async deleteWhere(
    filter: DumpFilter,
    options: DumpOptions & { onDelete?: (flow: Flow) => void } = {},
  ): Promise<number> {
    const other = this.#openSocket();
    const enc = new Encoder(256);
    let deleted = 0;
    try {
      for await (const flow of this.dump(filter, options)) {
        const t = flowTuple(flow);
        const seq = this.#nextSeq();
        enc.begin(
          (C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_DELETE,
          NLM_F_REQUEST | NLM_F_ACK,
          seq,
          familyNumber(t),
        );
        encodeTuple(enc, C.CTA_TUPLE_ORIG, t);
        const zone = flow.zone ?? flow.orig.zone;
        if (zone !== undefined) enc.u16be(C.CTA_ZONE, zone);
        if (flow.id !== undefined) enc.u32be(C.CTA_ID, flow.id);
        const errors = this.#sendBatch(other, enc.finish(), seq, 1);
        const e = errors[0]?.[1];
        if (e === undefined) {
          deleted++;
          options.onDelete?.(flow);
        } else if (e.errno !== 2) {
          throw new NetlinkError("delete", e.errno, { extAck: e.extAck, seq });
        }
      }
    } finally {
      other.close();
    }
    return deleted;
  }

  /**
   * Empties the table (conntrack `-F`), or only one family's entries, or
   * only those whose mark matches.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open({ netns: "test" });
   * await ct.flush({ family: "ipv6" });
   * ```
   */
  flush(options: FlushOptions = {}): Promise<void> {
    return settle(() => {
      const f = normalizeFilter({
        ...(options.family ? { family: options.family } : {}),
        ...(options.mark !== undefined ? { mark: options.mark } : {}),
      });
      const seq = this.#nextSeq();
      // Version 1 makes the kernel honour nfgen_family (version 0 flushes all).
      const enc = this.#header0(
        C.IPCTNL_MSG_CT_DELETE,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        f.af,
        f.af === C.AF_UNSPEC ? 0 : 1,
      );
      if (f.mark) enc.u32be(C.CTA_MARK, f.mark.value).u32be(C.CTA_MARK_MASK, f.mark.mask);
      this.#ack("flush", enc.finish(), seq);
    });
  }

  /**
   * Watches the table live: an async iterable of `{ type, flow }` for new,
   * updated and destroyed entries (conntrack `-E`), on its own socket
   * subscribed to the conntrack multicast groups, so this handle stays free
   * for dumps and changes meanwhile.
   *
   * It never blocks the event loop: it polls the socket without waiting and
   * sleeps `pollIntervalMs` (default 10) while idle, then drains what came.
   * When the kernel had to drop events (the receive buffer overran:
   * `ENOBUFS`), a `{ type: "lost", lost }` event with the running count is
   * yielded as soon as the backlog queued before it has been read (the
   * kernel delivers nothing more until then), and the stream goes on: dump
   * the table right then to resynchronise. The
   * stream ends when the consumer stops iterating, on `signal`, or when the
   * handle is closed.
   *
   * @example Print connections as they close
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * for await (const event of ct.events({ types: ["destroy"] })) {
   *   if (event.type === "lost") console.warn(`lost events: ${event.lost}`);
   *   else console.log(event.flow.orig.src, event.flow.countersOrig?.bytes);
   * }
   * ```
   */
  async *events(options: EventOptions = {}): AsyncGenerator<ConntrackEvent, void, undefined> {
    if (this.#closed) throw new Error("Cannot watch events: the Conntrack handle is closed");
    const types = options.types ?? ["new", "update", "destroy"];
    const groups: number[] = [];
    for (const type of types) {
      const group = EVENT_GROUPS[type];
      if (group === undefined) {
        throw new ArgumentError(
          "types",
          type,
          `"${String(type)}" is not "new", "update" or "destroy"`,
        );
      }
      groups.push(group);
    }
    const compiled = compileFilter(normalizeFilter(options.filter), this.#release, true);
    const family = compiled.plan.family === "all" ? undefined : compiled.plan.family;
    const match = compiled.match;
    const interval = options.pollIntervalMs ?? 10;
    checkUint(interval, 60_000, "pollIntervalMs");
    const sock = NetlinkSocket.open({ netnsFd: this.#netnsFd }, 1 << 17);
    this.#eventSockets.add(sock);
    const decodeOptions: DecodeOptions = { keepUnknown: options.keepUnknown ?? false };
    const cursor = new AttrCursor();
    const h = newHeader();
    let lost = 0;
    let lossPending = false;
    try {
      sock.setReceiveBuffer(options.bufferSize ?? 8 << 20);
      if (options.noEnobufs) sock.disableEnobufs();
      for (const group of groups) sock.joinGroup(group);
      const want = new Set(types);
      for (;;) {
        if (sock.fd < 0 || options.signal?.aborted) return;
        let got;
        try {
          got = sock.recv("events", true);
        } catch (error) {
          if (sock.fd < 0) return;
          if (error instanceof NetlinkError && error.code === "ENOBUFS") {
            // Report the loss once the backlog is read: the kernel drops
            // every event until the queue has drained, so a consumer that
            // dumps on "lost" must not do so before then.
            lost++;
            lossPending = true;
            continue;
          }
          throw error;
        }
        if (got === undefined) {
          if (lossPending) {
            lossPending = false;
            yield { type: "lost", lost };
            continue;
          }
          await new Promise((resolve) => setTimeout(resolve, interval));
          continue;
        }
        if (got.senderPort !== 0) continue;
        const bytes = sock.buffer;
        const view = new DataView(bytes.buffer, 0, got.length);
        for (let offset = 0; offset < got.length;) {
          offset = readHeader(view, offset, got.length, h);
          if (h.type >> 8 !== C.NFNL_SUBSYS_CTNETLINK) continue;
          const msg = h.type & 0xff;
          let type: "new" | "update" | "destroy";
          if (msg === C.IPCTNL_MSG_CT_DELETE) type = "destroy";
          else if (msg === C.IPCTNL_MSG_CT_NEW) {
            type = (h.flags & (NLM_F_CREATE | NLM_F_EXCL)) !== 0 ? "new" : "update";
          } else continue;
          if (!want.has(type)) continue;
          const flow = decodeFlowAt(cursor, bytes, view, h.offset, h.length, decodeOptions);
          if (family !== undefined && flow.family !== family) continue;
          if (match !== undefined && !match(flow)) continue;
          yield { type, flow, portId: h.pid };
        }
      }
    } finally {
      this.#eventSockets.delete(sock);
      sock.close();
    }
  }

  /**
   * Per-CPU statistics (`IPCTNL_MSG_CT_GET_STATS_CPU`), one entry per CPU
   * with its number, as `conntrack -S` shows them.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * for (const s of await ct.stats()) console.log(s.cpu, s.found, s.insertFailed);
   * ```
   */
  stats(): Promise<CpuStats[]> {
    try {
      const seq = this.#nextSeq();
      const request = this.#encoder.begin(
        (C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_GET_STATS_CPU,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        C.AF_UNSPEC,
      ).finish();
      const out = [
        ...this.#exchange("stats", request, seq, C.IPCTNL_MSG_CT_GET_STATS_CPU, decodeCpuStatsAt, {
          value: false,
        }),
      ];
      return Promise.resolve(out);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Global statistics (`IPCTNL_MSG_CT_GET_STATS`): entries in the table and
   * the table's maximum.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * const { entries, maxEntries } = await ct.globalStats();
   * ```
   */
  globalStats(): Promise<GlobalStats> {
    try {
      const seq = this.#nextSeq();
      const request = this.#encoder.begin(
        (C.NFNL_SUBSYS_CTNETLINK << 8) | C.IPCTNL_MSG_CT_GET_STATS,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        C.AF_UNSPEC,
      ).finish();
      let stats: GlobalStats | undefined;
      for (
        const s of this.#exchange(
          "count",
          request,
          seq,
          C.IPCTNL_MSG_CT_GET_STATS,
          decodeGlobalStatsAt,
          {
            value: false,
          },
        )
      ) stats = s;
      if (stats === undefined) {
        throw new NetlinkError("count", 61, { extAck: "no stats in the reply" });
      }
      return Promise.resolve(stats);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The number of entries in the table, as `conntrack -C` prints it.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * console.log(await ct.count());
   * ```
   */
  async count(): Promise<number> {
    return (await this.globalStats()).entries;
  }
}
