/**
 * The named option and spec types of every {@link Conntrack} method.
 *
 * @module
 */

import type { DecodeOptions } from "./decode.ts";
import type { DumpFilter, Masked } from "./filter.ts";
import type { FlowChanges, NatSetup } from "./request.ts";
import type { TupleSpec } from "./tuple.ts";
import type { Flow } from "./types.ts";

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
  timeoutMs?: number | undefined;
  /**
   * Kernel release to plan filters for (default: the running kernel's,
   * from `uname`). Useful to see what an older kernel would do.
   */
  kernelRelease?: string | undefined;
  /**
   * Keep the blocking dumps' receive-ahead worker (`dumpSync`, see
   * {@link DumpOptions.prefetch}) from one big dump to the next (default
   * false: each big dump starts its own, which leaves at its end). Deno's
   * `new Worker` holds the calling thread ~10–40 ms; a program that dumps
   * with `dumpSync` again and again pays that once with this. The worker
   * leaves when the handle is closed, or 10 s after its last dump — so
   * close the handle (`using`), or a script ends up to 10 s late. The async
   * dumps need no worker.
   */
  keepWorker?: boolean | undefined;
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
  userspaceFilter?: boolean | undefined;
  /**
   * What to do when the kernel marks the dump interrupted
   * (`NLM_F_DUMP_INTR`: the table changed, the result may be inconsistent):
   * `"throw"` (default) a {@link DumpInterruptedError} after the last flow
   * (catch it and dump again for a consistent view), or `"ignore"`.
   */
  onInterrupted?: "throw" | "ignore" | undefined;
  /**
   * Receive ahead once a dump has proved not small (after about 550
   * entries), so that the kernel's work of producing the dump (done inside
   * the receive) overlaps with decoding (default true; false keeps every
   * call on this thread). The async dumps receive with `recvmmsg` on Deno's
   * blocking pool, a few datagrams a call; the blocking ones (`dumpSync`),
   * which cannot await, on a Worker (a V8 isolate of its own: ~14 MiB).
   */
  prefetch?: boolean | undefined;
  /**
   * Zero the packet and byte counters of the entries as they are listed
   * (`IPCTNL_MSG_CT_GET_CTRZERO`, conntrack's `-z`): each flow comes with
   * the counts it had, and the kernel's count starts again at 0. The kernel
   * zeroes every entry its part of the filter selects ({@link FilterPlan}
   * `kernel`); parts applied in userspace only choose what is returned.
   *
   * @example
   * ```ts ignore
   * for await (const flow of ct.dump({ family: "ipv4" }, { zero: true })) {
   *   console.log(flow.orig.src, flow.countersOrig?.bytes); // bytes since the last zeroing
   * }
   * ```
   */
  zero?: boolean | undefined;
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
  zone?: number | undefined;
  /** Whether the tuple is the original (default) or reply direction. */
  direction?: "orig" | "reply" | undefined;
  /** Zero the entry's counters as it is read (`IPCTNL_MSG_CT_GET_CTRZERO`). */
  zero?: boolean | undefined;
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
  family?: "ipv4" | "ipv6" | "all" | undefined;
  /** Only entries whose mark matches (`{ value, mask }` or a value). */
  mark?: number | Masked<number> | undefined;
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
  reply?: TupleSpec | undefined;
  /** Timeout in seconds (required by the kernel). */
  timeout: number;
  /** Zone (default 0). */
  zone?: number | undefined;
  /** Zone of the original direction only (`CTA_TUPLE_ZONE`, conntrack's `--orig-zone`). */
  origZone?: number | undefined;
  /** Zone of the reply direction only (conntrack's `--reply-zone`). */
  replyZone?: number | undefined;
  /** Source NAT to set up (conntrack's `--src-nat IP[:PORT]`). */
  snat?: NatSetup | undefined;
  /** Destination NAT to set up (conntrack's `--dst-nat IP[:PORT]`). */
  dnat?: NatSetup | undefined;
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
  types?: readonly ("new" | "update" | "destroy")[] | undefined;
  /**
   * Only events whose flow matches: applied in userspace, and what classic
   * BPF can match also in the kernel, by a socket filter on the event
   * socket (see `Conntrack.planEvents`).
   */
  filter?: DumpFilter | undefined;
  /** `false`: no socket filter, the filter runs in userspace only (default true). */
  kernelFilter?: boolean | undefined;
  /** Socket receive buffer in bytes (default 8 MiB; forced past rmem_max as root). */
  bufferSize?: number | undefined;
  /** Ask the kernel not to report overruns (`NETLINK_NO_ENOBUFS`): loss goes unnoticed. */
  noEnobufs?: boolean | undefined;
  /** Ends the stream when aborted. */
  signal?: AbortSignal | undefined;
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

/** Options for {@link Conntrack.delete}: {@link GetOptions} plus the entry's id.
 *
 * @example
 * ```ts
 * import type { DeleteOptions } from "@ctnl/conntrack";
 *
 * // Delete the entry only if it is still the one a dump saw (same id), in zone 7.
 * const options: DeleteOptions = { zone: 7, id: 3735928559 };
 * void options; // ct.delete(tuple, options)
 * ```
 */
export interface DeleteOptions extends GetOptions {
  /** Delete only the entry with this id (`CTA_ID`), as a dump reported it. */
  id?: number | undefined;
}

/** Options for {@link Conntrack.update}.
 *
 * @example
 * ```ts
 * import type { UpdateOptions } from "@ctnl/conntrack";
 *
 * const options: UpdateOptions = { zone: 7 };
 * void options; // ct.update(tuple, { mark: 1 }, options)
 * ```
 */
export interface UpdateOptions {
  /** Zone of the entry (default 0). */
  zone?: number | undefined;
}

/** Options for {@link Conntrack.createMany}.
 *
 * @example
 * ```ts
 * import type { CreateManyOptions } from "@ctnl/conntrack";
 *
 * const options: CreateManyOptions = { batchSize: 512 };
 * void options; // ct.createMany(specs, options)
 * ```
 */
export interface CreateManyOptions {
  /** Requests packed into each `sendmsg` (default 256). */
  batchSize?: number | undefined;
}

/** Options for {@link Conntrack.deleteWhere}: {@link DumpOptions} plus a callback.
 *
 * @example
 * ```ts
 * import type { DeleteWhereOptions } from "@ctnl/conntrack";
 *
 * const options: DeleteWhereOptions = { onDelete: (flow) => console.log("deleted", flow.id) };
 * void options; // ct.deleteWhere(filter, options)
 * ```
 */
export interface DeleteWhereOptions extends DumpOptions {
  /** Sees each flow once it has been deleted. */
  onDelete?: ((flow: Flow) => void) | undefined;
}

/** Options for {@link Conntrack.updateWhere}: {@link DumpOptions} plus a callback.
 *
 * @example
 * ```ts
 * import type { UpdateWhereOptions } from "@ctnl/conntrack";
 *
 * const options: UpdateWhereOptions = { onUpdate: (flow) => console.log("marked", flow.id) };
 * void options; // ct.updateWhere(filter, { mark: 1 }, options)
 * ```
 */
export interface UpdateWhereOptions extends DumpOptions {
  /** Sees each flow (as it was listed) once it has been changed. */
  onUpdate?: ((flow: Flow) => void) | undefined;
}
