/**
 * The {@link Conntrack} handle: the operations on the conntrack table, each a
 * short function over the {@link Transport} of src/transport.ts — build the
 * request, hand it over, decode what comes back. Every operation has two
 * forms: the one that returns a Promise (or an async iterable) waits for
 * the kernel without holding the event loop; the `…Sync` one blocks.
 *
 * @module
 */

import { kernelRelease } from "../ffi/libc.ts";
import {
  createBatches,
  deleteWhere,
  deleteWhereSync,
  describeRef,
  updateWhere,
  updateWhereSync,
} from "./bulk.ts";
import { ArgumentError, DumpInterruptedError, ERRNO, NetlinkError } from "./errors.ts";
import {
  applyBatches,
  type ApplyManyOptions,
  type BulkChange,
  preparedBatches,
  PreparedChanges,
} from "./apply.ts";
import { watchEvents } from "./events.ts";
import { compileSocketFilter, type EventPlan, planEventFilter } from "./bpf.ts";
import { BatchStream } from "./stream.ts";
import {
  deleteRequest,
  dumpRequest,
  flushRequest,
  getRequest,
  type Prepared,
  updateRequest,
} from "./prepare.ts";
import { globalRequest, statsRequest } from "./stats.ts";
import {
  type CompiledFilter,
  compileFilter,
  type DumpFilter,
  type FilterPlan,
  normalizeFilter,
} from "./filter.ts";
import { scanEntry, SLOTS } from "./scan.ts";
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
  UpdateWhereOptions,
} from "./options.ts";
import { beginCreate, type EntryRef, type FlowChanges } from "./request.ts";
import { kernelSockets, type Socket, type SocketFactory } from "./sockets.ts";
import { type Decoder, Transport } from "./transport.ts";
import type { CpuStats, Family, Flow, GlobalStats } from "./types.ts";
import { type TimeoutPolicy, timeoutPolicyRequest } from "./timeouts.ts";
import type { DecodeOptions } from "./decode.ts";
import {
  all,
  allSync,
  type ConntrackList,
  type Expectations,
  listRequest,
  newExpectations,
} from "./expect.ts";

/** The error of a request that named `ref`, saying which entry. */
function named(error: unknown, ref: EntryRef): unknown {
  if (!(error instanceof NetlinkError) || error.subject !== undefined) return error;
  return error.about(describeRef(ref));
}

const registry = new FinalizationRegistry<Socket>((sock) => sock.close());

/**
 * Opens a handle whose sockets come from `open`, a fake kernel in the unit
 * tests (tests/_fake_kernel.ts). Not part of mod.ts.
 */
export let openWithSockets: (open: SocketFactory, options?: OpenOptions) => Conntrack;

/**
 * The decoder of a message dump: hands each entry's message to `visit` (when
 * `match`, a userspace filter, takes its decoded entry) and answers 1, or 0.
 */
function visitor(
  compiled: CompiledFilter,
  decode: Decoder<Flow>,
  visit: (bytes: Uint8Array, view: DataView, offset: number, length: number) => void,
): Decoder<number> {
  const { match, matchSlots } = compiled;
  const slots = new Int32Array(SLOTS);
  return (c, bytes, view, h) => {
    if (match !== undefined) {
      // On the bytes when the walk takes the entry and every part has a slot form; else decoded.
      const taken = matchSlots !== undefined && scanEntry(bytes, view, h.offset, h.length, slots);
      if (taken ? !matchSlots(bytes, view, slots) : !match(decode(c, bytes, view, h))) return 0;
    }
    visit(bytes, view, h.offset, h.length);
    return 1;
  };
}

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
  /** Transports for operations started while the first is busy with a dump. */
  #spare: Transport[] = [];
  #release: string;
  #releaseNetns: () => void;
  #bigBuffer = false;
  /** The socket factory (planEvents tries its socket filter on a socket of it). */
  #open: SocketFactory;

  private constructor(options: OpenOptions, open?: SocketFactory) {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const sockets = open === undefined
      ? kernelSockets(options.netns, timeoutMs)
      : { open, release: () => {} };
    this.#releaseNetns = sockets.release;
    this.#open = sockets.open;
    try {
      this.#transport = new Transport(sockets.open, timeoutMs, (sock) => {
        registry.unregister(this);
        if (sock !== undefined) registry.register(this, sock, this);
      }, options.keepWorker === true);
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
    for (const t of this.#spare) t.close();
    this.#spare = [];
    this.#releaseNetns();
  }

  /** Closes the handle (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * The transport for a new operation: the handle's own, or — while a dump
   * streams on it (inside its `for await` loop, say) — a spare one with a
   * socket of its own, so that one handle serves several operations at once.
   */
  #free(): Transport {
    const main = this.#transport;
    if (main.closed || !main.busy) return main;
    let spare = this.#spare.find((t) => !t.busy);
    if (spare === undefined) {
      spare = main.sibling();
      this.#spare.push(spare);
    }
    return spare;
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
   * Shows where each part of an event filter runs: in the event socket's
   * classic BPF filter (checked again in userspace), or in userspace only.
   * It attaches the program to a throwaway socket, so a kernel that refuses
   * it shows here as every part in userspace, with the reason.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * console.log(ct.planEvents({ filter: { orig: { protocol: "tcp", dstPort: 443 } } }));
   * // { family: "all", kernel: ["orig.protocol", "orig.dstPort"], userspace: [], instructions: 68 }
   * ```
   */
  planEvents(options: EventOptions = {}): EventPlan {
    const compiled = compileSocketFilter(normalizeFilter(options.filter));
    if (compiled.program === undefined) return compiled.plan;
    if (options.kernelFilter === false) {
      return planEventFilter(compiled, "userspace filtering requested (kernelFilter: false)");
    }
    const sock = this.#open("events");
    let code: number;
    try {
      code = sock.attachFilter?.(compiled.program) ?? -1;
    } finally {
      sock.close();
    }
    if (code === 0) return compiled.plan;
    return planEventFilter(
      compiled,
      code < 0
        ? "this socket cannot take a socket filter"
        : `the kernel refused the socket filter (errno ${code})`,
    );
  }

  /**
   * Streams every entry (or those `filter` selects) synchronously, in
   * constant memory: one receive buffer, one flow at a time. It blocks the
   * thread while it waits for the kernel: {@link dump} does not.
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
    const p = dumpRequest(this.#free(), this.#release, filter, options);
    // Filtered inside the exchange and delegated: one generator step per flow.
    yield* p.transport.exchange(p.operation, p.request, p.seq, p.replyType, p.decode, p.options);
    if (p.interrupted.value && options.onInterrupted !== "ignore") {
      throw new DumpInterruptedError("dump");
    }
  }

  /**
   * Hands every entry's message (or those `filter` selects) to `visit`
   * undecoded — the bytes, a view of them, the message's offset and length,
   * valid during the call — and returns how many it handed over: for
   * writers that work on the bytes (the CLI transcodes them to text, see
   * `FlowTextWriter`). A filter part that runs in userspace is matched on
   * the decoded entry first. Blocks as {@link dumpSync} does.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * let bytes = 0;
   * const n = ct.dumpMessagesSync({ family: "ipv4" }, {}, (_b, _v, _offset, length) => {
   *   bytes += length;
   * });
   * console.log(n, bytes);
   * ```
   */
  dumpMessagesSync(
    filter: DumpFilter | undefined,
    options: DumpOptions,
    visit: (bytes: Uint8Array, view: DataView, offset: number, length: number) => void,
  ): number {
    const p = dumpRequest(this.#free(), this.#release, filter, options);
    const each = visitor(p.compiled, p.decode, visit);
    const options_ = { ...p.options, keep: undefined };
    let n = 0;
    for (
      const _ of p.transport.exchange(p.operation, p.request, p.seq, p.replyType, each, options_)
    ) n += _;
    if (p.interrupted.value && options.onInterrupted !== "ignore") {
      throw new DumpInterruptedError("dump");
    }
    return n;
  }

  /**
   * {@link dumpMessagesSync} without holding the event loop: the kernel's
   * datagrams are received ahead on Deno's blocking pool while `visit` runs
   * on the ones already here, and other tasks get a turn every few
   * milliseconds. Resolves to how many entries `visit` was handed.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * let bytes = 0;
   * const n = await ct.dumpMessages({ family: "ipv6" }, {}, (_b, _v, _offset, length) => {
   *   bytes += length;
   * });
   * console.log(n, bytes);
   * ```
   */
  async dumpMessages(
    filter: DumpFilter | undefined,
    options: DumpOptions,
    visit: (bytes: Uint8Array, view: DataView, offset: number, length: number) => void,
  ): Promise<number> {
    const p = dumpRequest(this.#free(), this.#release, filter, options);
    const each = visitor(p.compiled, p.decode, visit);
    const options_ = { ...p.options, keep: undefined };
    let n = 0;
    for await (
      const batch of p.transport.exchangeAsync(
        p.operation,
        p.request,
        p.seq,
        p.replyType,
        each,
        options_,
      )
    ) {
      for (let i = 0; i < batch.length; i++) n += batch[i]!;
    }
    if (p.interrupted.value && options.onInterrupted !== "ignore") {
      throw new DumpInterruptedError("dump");
    }
    return n;
  }

  /**
   * Streams every entry (or those `filter` selects) as an async iterable,
   * without holding the event loop: it waits for the kernel with `poll` on
   * Deno's blocking pool (or the receive-ahead worker), and gives other
   * tasks a turn every few milliseconds of decoding. Breaking out of the
   * loop early is fine: the handle stays usable; other operations on the
   * handle inside the loop run on a second socket. {@link dumpSync} is the
   * blocking form.
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
  dump(filter?: DumpFilter, options: DumpOptions = {}): AsyncIterableIterator<Flow> {
    let interrupted = false;
    return new BatchStream(() => {
      const p = dumpRequest(this.#free(), this.#release, filter, options);
      const it = p.transport.exchangeAsync(
        p.operation,
        p.request,
        p.seq,
        p.replyType,
        p.decode,
        p.options,
      );
      return (async function* () {
        yield* it;
        interrupted = p.interrupted.value;
      })();
    }, () => {
      if (interrupted && options.onInterrupted !== "ignore") throw new DumpInterruptedError("dump");
    });
  }

  /** The last value an exchange yields (or throws the kernel's error), blocking. */
  #oneSync<T>(p: Prepared<T>): T | undefined {
    let last: T | undefined;
    for (const v of p.transport.exchange(p.operation, p.request, p.seq, p.replyType, p.decode)) {
      last = v;
    }
    return last;
  }

  /** {@link #oneSync} without blocking. */
  async #one<T>(p: Prepared<T>): Promise<T | undefined> {
    let last: T | undefined;
    const it = p.transport.exchangeAsync(p.operation, p.request, p.seq, p.replyType, p.decode);
    for await (const batch of it) last = batch.at(-1) ?? last;
    return last;
  }

  /** The flow a get found, or its ENOENT. */
  #found(flow: Flow | undefined, ref: EntryRef, seq: number): Flow {
    if (flow !== undefined) return flow;
    throw new NetlinkError("get", ERRNO.ENOENT, { extAck: "no entry in the reply", seq })
      .about(describeRef(ref));
  }

  /**
   * Gets one entry — named by a tuple (original direction by default), or
   * by a dumped `Flow` or its `orig` tuple, zone included — without
   * blocking. A missing entry is a {@link NetlinkError} with code `ENOENT`
   * whose message names the tuple. {@link getSync} blocks.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * const flow = await ct.get({
   *   src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 40000, dstPort: 80,
   * });
   * console.log(flow.tcp?.stateName, (await ct.get(flow)).timeout);
   * ```
   */
  async get(ref: EntryRef, options: GetOptions = {}): Promise<Flow> {
    try {
      const p = getRequest(this.#free(), ref, options);
      return this.#found(await this.#one(p), ref, p.seq);
    } catch (error) {
      throw named(error, ref);
    }
  }

  /** {@link get}, blocking while it waits for the kernel. */
  getSync(ref: EntryRef, options: GetOptions = {}): Flow {
    try {
      const p = getRequest(this.#free(), ref, options);
      return this.#found(this.#oneSync(p), ref, p.seq);
    } catch (error) {
      throw named(error, ref);
    }
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
  async create(spec: CreateSpec): Promise<void> {
    const t = this.#free();
    const seq = t.nextSeq();
    await t.ackAsync("create", beginCreate(t, spec, seq, "flow").finish(), seq);
  }

  /** {@link create}, blocking while it waits for the kernel. */
  createSync(spec: CreateSpec): void {
    const t = this.#free();
    const seq = t.nextSeq();
    t.ack("create", beginCreate(t, spec, seq, "flow").finish(), seq);
  }

  /** The transport for a batch of creates, its receive buffer made room for the ACKs. */
  #batchTransport(): Transport {
    const t = this.#free();
    if (t === this.#transport && !this.#bigBuffer) {
      t.growReceiveBuffer(4 << 20); // a batch's ACKs arrive all at once
      this.#bigBuffer = true;
    } else if (t !== this.#transport) t.growReceiveBuffer(4 << 20);
    return t;
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
  async createMany(specs: Iterable<CreateSpec>, options: CreateManyOptions = {}): Promise<number> {
    const t = this.#batchTransport();
    let created = 0;
    for (const batch of createBatches(t, specs, options)) {
      const errors = await t.batchAsync("create", batch.bytes, batch.firstSeq, batch.count);
      created += batch.settle(errors);
    }
    return created;
  }

  /** {@link createMany}, blocking while it waits for the kernel. */
  createManySync(specs: Iterable<CreateSpec>, options: CreateManyOptions = {}): number {
    const t = this.#batchTransport();
    let created = 0;
    for (const batch of createBatches(t, specs, options)) {
      created += batch.settle(t.batch("create", batch.bytes, batch.firstSeq, batch.count));
    }
    return created;
  }

  /**
   * Applies creates, updates and deletes ({@link BulkChange}) in their
   * order, packing up to `batchSize` requests (default 256) into each
   * `sendmsg` and checking every ACK, as {@link createMany} does. Returns
   * how many the kernel accepted; each refusal goes to `onError` with its
   * index (or, without it, the first is thrown after its batch). Changes
   * checked and encoded beforehand ({@link PreparedChanges}) are sent from
   * their buffer.
   *
   * @example Replay a list of changes, reporting each failure
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * const t = { src: "10.0.0.1", dst: "10.0.0.2", protocol: "udp", srcPort: 5000, dstPort: 53 };
   * const done = await ct.applyMany([{ create: { orig: t, timeout: 60 } }, { delete: t }], {
   *   onError: (error, index) => console.error(index, error.message),
   * });
   * ```
   */
  async applyMany(
    changes: Iterable<BulkChange> | PreparedChanges,
    options: ApplyManyOptions = {},
  ): Promise<number> {
    const t = this.#batchTransport();
    let done = 0;
    for (const batch of batchesOf(t, changes, options)) {
      done += batch.settle(await t.batchAsync("create", batch.bytes, batch.firstSeq, batch.count));
    }
    return done;
  }

  /** {@link applyMany}, blocking while it waits for the kernel. */
  applyManySync(
    changes: Iterable<BulkChange> | PreparedChanges,
    options: ApplyManyOptions = {},
  ): number {
    const t = this.#batchTransport();
    let done = 0;
    for (const batch of batchesOf(t, changes, options)) {
      done += batch.settle(t.batch("create", batch.bytes, batch.firstSeq, batch.count));
    }
    return done;
  }

  /**
   * Changes an existing entry (conntrack `-U`): mark, timeout, status bits,
   * labels, TCP state — named by a tuple or a dumped `Flow` (its zone
   * kept). A missing entry is `ENOENT`. {@link updateSync} blocks.
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
  async update(ref: EntryRef, changes: FlowChanges, options: UpdateOptions = {}): Promise<void> {
    try {
      const p = updateRequest(this.#free(), ref, changes, options);
      await p.transport.ackAsync("update", p.request, p.seq);
    } catch (error) {
      throw named(error, ref);
    }
  }

  /** {@link update}, blocking while it waits for the kernel. */
  updateSync(ref: EntryRef, changes: FlowChanges, options: UpdateOptions = {}): void {
    try {
      const p = updateRequest(this.#free(), ref, changes, options);
      p.transport.ack("update", p.request, p.seq);
    } catch (error) {
      throw named(error, ref);
    }
  }

  /**
   * Deletes one entry (conntrack `-D` with a full tuple), named by a tuple,
   * or by a dumped `Flow` (its original tuple, zone and id: only that very
   * entry). A missing entry is a {@link NetlinkError} with code `ENOENT`.
   * {@link deleteSync} blocks.
   *
   * @example Delete what a dump found, zones and all
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * for (const flow of ct.dumpSync({ zone: 7 })) await ct.delete(flow);
   * await ct.delete({ src: "10.0.0.1", dst: "10.0.0.2", protocol: "tcp", srcPort: 4000, dstPort: 80 });
   * ```
   */
  async delete(ref: EntryRef, options: DeleteOptions = {}): Promise<void> {
    try {
      const p = deleteRequest(this.#free(), ref, options);
      await p.transport.ackAsync("delete", p.request, p.seq);
    } catch (error) {
      throw named(error, ref);
    }
  }

  /** {@link delete}, blocking while it waits for the kernel. */
  deleteSync(ref: EntryRef, options: DeleteOptions = {}): void {
    try {
      const p = deleteRequest(this.#free(), ref, options);
      p.transport.ack("delete", p.request, p.seq);
    } catch (error) {
      throw named(error, ref);
    }
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
  deleteWhere(filter: DumpFilter, options: DeleteWhereOptions = {}): Promise<number> {
    return deleteWhere(this.dump(filter, options), this.#transport.sibling(), options);
  }

  /** {@link deleteWhere}, blocking while it waits for the kernel. */
  deleteWhereSync(filter: DumpFilter, options: DeleteWhereOptions = {}): number {
    return deleteWhereSync(this.dumpSync(filter, options), this.#transport.sibling(), options);
  }

  /**
   * Changes every entry `filter` selects (conntrack `-U` with a filter), in
   * one streaming pass: a dump, and an update of each entry (by its tuple,
   * zone and id) on a second socket. `changes` is the same for every entry,
   * or a function of the entry (return `undefined` to leave it alone).
   * Entries that vanish meanwhile are not counted; returns how many were
   * changed. `onUpdate` sees each changed flow as it was listed.
   *
   * @example Mark every connection from 10.0.0.1
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * const n = await ct.updateWhere({ orig: { src: "10.0.0.1" } }, { mark: 7 });
   * ```
   */
  updateWhere(
    filter: DumpFilter,
    changes: FlowChanges | ((flow: Flow) => FlowChanges | undefined),
    options: UpdateWhereOptions = {},
  ): Promise<number> {
    return updateWhere(this.dump(filter, options), changes, (f, c) => this.update(f, c), options);
  }

  /** {@link updateWhere}, blocking while it waits for the kernel. */
  updateWhereSync(
    filter: DumpFilter,
    changes: FlowChanges | ((flow: Flow) => FlowChanges | undefined),
    options: UpdateWhereOptions = {},
  ): number {
    const update = (f: Flow, c: FlowChanges) => this.updateSync(f, c);
    return updateWhereSync(this.dumpSync(filter, options), changes, update, options);
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
  async flush(options: FlushOptions = {}): Promise<void> {
    const p = flushRequest(this.#free(), options);
    await p.transport.ackAsync("flush", p.request, p.seq);
  }

  /** {@link flush}, blocking while it waits for the kernel. */
  flushSync(options: FlushOptions = {}): void {
    const p = flushRequest(this.#free(), options);
    p.transport.ack("flush", p.request, p.seq);
  }

  /**
   * Watches the table live: an async iterable of `{ type, flow }` for new,
   * updated and destroyed entries (conntrack `-E`), on its own socket
   * subscribed to the conntrack multicast groups, so this handle stays free
   * for dumps and changes meanwhile.
   *
   * It never blocks the event loop: while idle it waits for the socket to
   * become readable with `poll` on Deno's blocking pool (no timer, no busy
   * loop), then drains what came with non-blocking receives.
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
  async stats(): Promise<CpuStats[]> {
    const p = statsRequest(this.#free());
    const out: CpuStats[] = [];
    const it = p.transport.exchangeAsync(p.operation, p.request, p.seq, p.replyType, p.decode);
    for await (const batch of it) out.push(...batch);
    return out;
  }

  /** {@link stats}, blocking while it waits for the kernel. */
  statsSync(): CpuStats[] {
    const p = statsRequest(this.#free());
    return [...p.transport.exchange(p.operation, p.request, p.seq, p.replyType, p.decode)];
  }

  /** The stats a reply held, or the error that it held none. */
  #stats(stats: GlobalStats | undefined): GlobalStats {
    if (stats !== undefined) return stats;
    throw new NetlinkError("count", ERRNO.ENODATA, { extAck: "no stats in the reply" });
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
  async globalStats(): Promise<GlobalStats> {
    return this.#stats(await this.#one(globalRequest(this.#free())));
  }

  /** {@link globalStats}, blocking while it waits for the kernel. */
  globalStatsSync(): GlobalStats {
    return this.#stats(this.#oneSync(globalRequest(this.#free())));
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

  /** {@link count}, blocking while it waits for the kernel. */
  countSync(): number {
    return this.globalStatsSync().entries;
  }

  /**
   * The namespace's default timeouts of `protocol` (seconds per state), as
   * `/proc/sys/net/netfilter/nf_conntrack_*_timeout*` has them, from the
   * cttimeout subsystem; see {@link fullTimeout} for what they say of a flow.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * console.log((await ct.timeoutPolicy("tcp")).timeouts.ESTABLISHED); // 432000
   * ```
   */
  async timeoutPolicy(protocol: number | string, family?: Family): Promise<TimeoutPolicy> {
    return this.#policy(await this.#one(timeoutPolicyRequest(this.#free(), protocol, family)));
  }

  /** {@link timeoutPolicy}, blocking while it waits for the kernel. */
  timeoutPolicySync(protocol: number | string, family?: Family): TimeoutPolicy {
    return this.#policy(this.#oneSync(timeoutPolicyRequest(this.#free(), protocol, family)));
  }

  #policy(policy: TimeoutPolicy | undefined): TimeoutPolicy {
    if (policy === undefined) throw new NetlinkError("get", ERRNO.ENOENT, { extAck: "no policy" });
    return policy;
  }

  #expectations: Expectations | undefined;

  /**
   * The expectation table of this handle's namespace, on this handle's
   * sockets (see {@link Expectations}: dump, get, create, delete, flush,
   * count, stats, events).
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * for await (const e of ct.expectations.dump()) console.log(e.helper, e.tuple.dstPort);
   * ```
   */
  get expectations(): Expectations {
    return this.#expectations ??= newExpectations({
      free: () => this.#free(),
      main: this.#transport,
    });
  }

  /**
   * Streams the dying list (entries destroyed but still referenced, e.g.
   * whose destroy event is not yet delivered) or the unconfirmed list
   * (entries not yet inserted), filtered in ctnl, without blocking.
   *
   * @example
   * ```ts ignore
   * import { Conntrack } from "@ctnl/conntrack";
   *
   * using ct = Conntrack.open();
   * for await (const flow of ct.dumpList("dying")) console.log(flow.orig.src);
   * ```
   */
  dumpList(
    list: ConntrackList,
    filter?: DumpFilter,
    options: DecodeOptions = {},
  ): AsyncIterableIterator<Flow> {
    return all(() => listRequest(this.#free(), this.#release, list, filter, options));
  }

  /** {@link dumpList}, blocking while it waits for the kernel. */
  dumpListSync(
    list: ConntrackList,
    filter?: DumpFilter,
    options: DecodeOptions = {},
  ): Generator<Flow, void, undefined> {
    return allSync(listRequest(this.#free(), this.#release, list, filter, options));
  }
}

/** The batches of {@link Conntrack.applyMany}'s changes: prepared ones from their buffer. */
function batchesOf(
  t: Transport,
  changes: Iterable<BulkChange> | PreparedChanges,
  options: ApplyManyOptions,
) {
  return changes instanceof PreparedChanges
    ? preparedBatches(t, changes, options)
    : applyBatches(t, changes, options);
}
