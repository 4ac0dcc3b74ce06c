/**
 * The {@link Conntrack} handle: the operations on the conntrack table, each a
 * short function over the {@link Transport} of src/transport.ts — build the
 * request, hand it over, decode what comes back.
 *
 * @module
 */

import { kernelRelease } from "../ffi/libc.ts";
import * as C from "./constants.ts";
import {
  decodeCpuStatsAt,
  decodeFlowAt,
  decodeGlobalStatsAt,
  type DecodeOptions,
} from "./decode.ts";
import { ArgumentError, DumpInterruptedError, ERRNO, NetlinkError } from "./errors.ts";
import {
  checkUint,
  compileFilter,
  type DumpFilter,
  type FilterPlan,
  normalizeFilter,
} from "./filter.ts";
import { NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from "./netlink.ts";
import { watchEvents } from "./events.ts";
import type {
  ConntrackEvent,
  CreateManyOptions,
  CreateSpec,
  DeleteOptions,
  DeleteWhereOptions,
  DumpOptions,
  EventOptions,
  FlushOptions,
  GetOptions,
  OpenOptions,
  UpdateOptions,
} from "./options.ts";
import { beginCreate, beginNamed, encodeChanges, type FlowChanges } from "./request.ts";
import {
  type Decoder,
  kernelSockets,
  type Socket,
  type SocketFactory,
  Transport,
} from "./transport.ts";
import { type TupleSpec, tupleSpecOf } from "./tuple.ts";
import type { CpuStats, Flow, GlobalStats } from "./types.ts";

/**
 * Datagrams a dump receives before it spawns a worker to receive ahead
 * (about 550 entries): smaller dumps never start one. The worker boots while
 * the dump goes on, and takes over when it is ready.
 */
const PREFETCH_AFTER = 4;

/** Runs `fn` now; its result or error as a promise. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}

/** The flow decoder of an exchange, with `options`. */
function flowDecoder(options: DecodeOptions): Decoder<Flow> {
  const decodeOptions: DecodeOptions = { keepUnknown: options.keepUnknown ?? false };
  return (c, bytes, view, h) => decodeFlowAt(c, bytes, view, h.offset, h.length, decodeOptions);
}

/** The zone a decoded flow is in (undefined: zone 0). */
function zoneOf(flow: Flow): number | undefined {
  return flow.zone ?? flow.orig.zone;
}

const registry = new FinalizationRegistry<Socket>((sock) => sock.close());

/**
 * Opens a handle whose sockets come from `open`, a fake kernel in the unit
 * tests (tests/_fake_kernel.ts). Not part of mod.ts.
 */
export let openWithSockets: (open: SocketFactory, options?: OpenOptions) => Conntrack;

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
  #transport: Transport;
  #release: string;
  #releaseNetns: () => void;
  #bigBuffer = false;

  private constructor(options: OpenOptions, open?: SocketFactory) {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const sockets = open === undefined
      ? kernelSockets(options.netns, timeoutMs)
      : { open, release: () => {} };
    this.#releaseNetns = sockets.release;
    try {
      this.#transport = new Transport(sockets.open, timeoutMs, (sock) => {
        registry.unregister(this);
        if (sock !== undefined) registry.register(this, sock, this);
      });
      this.#release = options.kernelRelease ?? kernelRelease();
    } catch (error) {
      sockets.release();
      throw error;
    }
  }

  static {
    openWithSockets = (open, options = {}) => new Conntrack(options, open);
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

  /** True once {@link close} has been called. */
  get closed(): boolean {
    return this.#transport.closed;
  }

  /** The netlink port id of this handle's socket (0 while it has none), for tracing. */
  get portId(): number {
    return this.#transport.portId;
  }

  /** The sequence number of the last request this handle sent, for tracing. */
  get seq(): number {
    return this.#transport.seq;
  }

  /** The kernel release filters are planned for. */
  get kernelRelease(): string {
    return this.#release;
  }

  /** Closes the socket. Calling it again does nothing. */
  close(): void {
    if (this.#transport.closed) return;
    registry.unregister(this);
    this.#transport.close();
    this.#releaseNetns();
  }

  /** Closes the handle (for `using`). */
  [Symbol.dispose](): void {
    this.close();
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
    const family = compiled.plan.family;
    const af = family === "ipv4" ? C.AF_INET : family === "ipv6" ? C.AF_INET6 : C.AF_UNSPEC;
    const t = this.#transport;
    const seq = t.nextSeq();
    const enc = t.begin(C.IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, seq, af);
    compiled.encode(enc);
    const interrupted = { value: false };
    // Filtered inside the exchange and delegated: one generator step per flow.
    yield* t.exchange("dump", enc.finish(), seq, C.IPCTNL_MSG_CT_NEW, flowDecoder(options), {
      keep: compiled.match,
      prefetchAfter: options.prefetch === false ? -1 : PREFETCH_AFTER,
      interrupted,
    });
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
    return settle(() => this.getSync(tuple, options));
  }

  /** {@link get}, synchronously. */
  getSync(tuple: TupleSpec, options: GetOptions = {}): Flow {
    const t = this.#transport;
    const seq = t.nextSeq();
    const enc = beginNamed(this.#transport, C.IPCTNL_MSG_CT_GET, seq, tuple, options);
    let found: Flow | undefined;
    for (
      const flow of t.exchange("get", enc.finish(), seq, C.IPCTNL_MSG_CT_NEW, flowDecoder(options))
    ) {
      found = flow;
    }
    if (found === undefined) {
      throw new NetlinkError("get", ERRNO.ENOENT, { extAck: "no entry in the reply", seq });
    }
    return found;
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
    return settle(() => this.createSync(spec));
  }

  /** {@link create}, synchronously. */
  createSync(spec: CreateSpec): void {
    const seq = this.#transport.nextSeq();
    this.#transport.ack("create", beginCreate(this.#transport, spec, seq, "flow").finish(), seq);
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
  createMany(specs: Iterable<CreateSpec>, options: CreateManyOptions = {}): Promise<number> {
    return settle(() => this.createManySync(specs, options));
  }

  /** {@link createMany}, synchronously. */
  createManySync(specs: Iterable<CreateSpec>, options: CreateManyOptions = {}): number {
    const batchSize = checkUint(options.batchSize ?? 256, 65535, "batchSize") || 1;
    const t = this.#transport;
    if (!this.#bigBuffer) {
      t.growReceiveBuffer(4 << 20); // room for a batch's ACKs, which arrive all at once
      this.#bigBuffer = true;
    }
    let batch = new Uint8Array(64 * 1024);
    let used = 0, index = 0, created = 0, firstSeq = 0, inBatch = 0;
    let firstError: NetlinkError | undefined;
    const flush = () => {
      if (inBatch === 0) return;
      const errors = t.batch("create", batch.slice(0, used), firstSeq, inBatch);
      created += inBatch - errors.length;
      const e = errors[0];
      if (!firstError && e !== undefined) {
        const which = `entry #${index - inBatch + (e.seq - firstSeq)}`;
        firstError = new NetlinkError("create", e.errno, {
          extAck: e.extAck ? `${which}: ${e.extAck}` : which,
          seq: e.seq,
        });
      }
      used = 0;
      inBatch = 0;
    };
    for (const spec of specs) {
      const seq = t.nextSeq();
      if (inBatch === 0) firstSeq = seq;
      const msg = beginCreate(this.#transport, spec, seq, `specs[${index}]`).finish();
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
  update(tuple: TupleSpec, changes: FlowChanges, options: UpdateOptions = {}): Promise<void> {
    return settle(() => this.updateSync(tuple, changes, options));
  }

  /** {@link update}, synchronously. */
  updateSync(tuple: TupleSpec, changes: FlowChanges, options: UpdateOptions = {}): void {
    const seq = this.#transport.nextSeq();
    const named: DeleteOptions = options.zone === undefined ? {} : { zone: options.zone };
    const enc = beginNamed(this.#transport, C.IPCTNL_MSG_CT_NEW, seq, tuple, named);
    if (changes === null || typeof changes !== "object") {
      throw new ArgumentError("changes", changes, `${String(changes)} is not an object`);
    }
    encodeChanges(enc, changes, "changes");
    this.#transport.ack("update", enc.finish(), seq);
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
  delete(tuple: TupleSpec, options: DeleteOptions = {}): Promise<void> {
    return settle(() => this.deleteSync(tuple, options));
  }

  /** {@link delete}, synchronously. */
  deleteSync(tuple: TupleSpec, options: DeleteOptions = {}): void {
    const seq = this.#transport.nextSeq();
    const enc = beginNamed(this.#transport, C.IPCTNL_MSG_CT_DELETE, seq, tuple, options);
    this.#transport.ack("delete", enc.finish(), seq);
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
  async deleteWhere(filter: DumpFilter, options: DeleteWhereOptions = {}): Promise<number> {
    const other = this.#transport.sibling();
    let deleted = 0;
    try {
      for await (const flow of this.dump(filter, options)) {
        const seq = other.nextSeq();
        const named: DeleteOptions = {};
        const zone = zoneOf(flow);
        if (zone !== undefined) named.zone = zone;
        if (flow.id !== undefined) named.id = flow.id;
        const enc = beginNamed(other, C.IPCTNL_MSG_CT_DELETE, seq, tupleSpecOf(flow.orig), named);
        const e = other.batch("delete", enc.finish(), seq, 1)[0];
        if (e === undefined) {
          deleted++;
          options.onDelete?.(flow);
        } else if (e.errno !== ERRNO.ENOENT) {
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
    return settle(() => this.flushSync(options));
  }

  /** {@link flush}, synchronously. */
  flushSync(options: FlushOptions = {}): void {
    const f = normalizeFilter({
      ...(options.family ? { family: options.family } : {}),
      ...(options.mark !== undefined ? { mark: options.mark } : {}),
    });
    const t = this.#transport;
    const seq = t.nextSeq();
    // Version 1 makes the kernel honour nfgen_family (version 0 flushes all).
    const version = f.af === C.AF_UNSPEC ? 0 : 1;
    const enc = t.begin(C.IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, seq, f.af, version);
    if (f.mark) enc.u32be(C.CTA_MARK, f.mark.value).u32be(C.CTA_MARK_MASK, f.mark.mask);
    t.ack("flush", enc.finish(), seq);
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
    yield* watchEvents(this.#transport, this.#release, options);
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
    return settle(() => this.statsSync());
  }

  /** {@link stats}, synchronously. */
  statsSync(): CpuStats[] {
    const t = this.#transport;
    const seq = t.nextSeq();
    const request = t.begin(
      C.IPCTNL_MSG_CT_GET_STATS_CPU,
      NLM_F_REQUEST | NLM_F_DUMP,
      seq,
      C.AF_UNSPEC,
    )
      .finish();
    return [...t.exchange("stats", request, seq, C.IPCTNL_MSG_CT_GET_STATS_CPU, decodeCpuStatsAt)];
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
    return settle(() => this.globalStatsSync());
  }

  /** {@link globalStats}, synchronously. */
  globalStatsSync(): GlobalStats {
    const t = this.#transport;
    const seq = t.nextSeq();
    const request = t.begin(C.IPCTNL_MSG_CT_GET_STATS, NLM_F_REQUEST | NLM_F_ACK, seq, C.AF_UNSPEC)
      .finish();
    let stats: GlobalStats | undefined;
    for (
      const s of t.exchange("count", request, seq, C.IPCTNL_MSG_CT_GET_STATS, decodeGlobalStatsAt)
    ) {
      stats = s;
    }
    if (stats === undefined) {
      throw new NetlinkError("count", ERRNO.ENODATA, { extAck: "no stats in the reply" });
    }
    return stats;
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

  /** {@link count}, synchronously. */
  countSync(): number {
    return this.globalStatsSync().entries;
  }
}
