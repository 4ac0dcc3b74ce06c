/**
 * The event stream of {@link Conntrack.events}: the transport's subscription
 * to the conntrack multicast groups, its messages classified (new, update,
 * destroy), decoded and filtered, and overruns reported as `lost`.
 *
 * @module
 */

import * as C from "./constants.ts";
import { decodeFlowAt, type DecodeOptions } from "./decode.ts";
import { ArgumentError, ClosedError } from "./errors.ts";
import { compileFilter, normalizeFilter } from "./filter.ts";
import { compileSocketFilter } from "./bpf.ts";
import { AttrCursor, newHeader, NLM_F_CREATE, NLM_F_EXCL } from "./netlink.ts";
import type { ConntrackEvent, EventOptions } from "./options.ts";
import type { Transport } from "./transport.ts";
// For {@link} in the docs.
import type { Conntrack as _Conntrack } from "./conntrack.ts";

/** `enum nfnetlink_groups`: NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY. */
const EVENT_GROUPS: Readonly<Record<string, number>> = { new: 1, update: 2, destroy: 3 };

/** Watches the table over `transport` (filters planned for kernel `release`). */
export async function* watchEvents(
  transport: Transport,
  release: string,
  options: EventOptions,
): AsyncGenerator<ConntrackEvent, void, undefined> {
  if (transport.closed) throw new ClosedError("events");
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
  const normalized = normalizeFilter(options.filter);
  const compiled = compileFilter(normalized, release, true);
  // The kernel part, if any; refused, userspace alone filters (it always runs).
  const socketFilter = options.kernelFilter === false
    ? undefined
    : compileSocketFilter(normalized).program;
  const family = compiled.plan.family === "all" ? undefined : compiled.plan.family;
  const match = compiled.match;
  const decodeOptions: DecodeOptions = { keepUnknown: options.keepUnknown ?? false };
  const want = new Set(types);
  const cursor = new AttrCursor();
  const h = newHeader();
  let lost = 0;
  let lossPending = false;
  const subscription = transport.subscribe(groups, { ...options, socketFilter }, h);
  const signal = options.signal;
  let onAbort = () => {};
  const aborted = signal === undefined ? undefined : new Promise<boolean>((resolve) => {
    onAbort = () => {
      resolve(true);
      subscription.wake(); // the poll waiting on the blocking pool ends at once
    };
    if (signal.aborted) resolve(true);
    // Removed again when the stream ends: a listener keeps a timeout signal's timer alive.
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    for (const m of subscription.messages) {
      if (options.signal?.aborted) return;
      if (m === "overrun") {
        // Report the loss once the backlog is read: the kernel drops
        // every event until the queue has drained, so a consumer that
        // dumps on "lost" must not do so before then.
        lost++;
        lossPending = true;
        continue;
      }
      if (m === "idle") {
        if (lossPending) {
          lossPending = false;
          yield { type: "lost", lost };
        } else {
          // Wait for readiness: poll on Deno's blocking pool, no timer loop.
          const wait = subscription.wait();
          await (aborted === undefined ? wait : Promise.race([wait, aborted]));
        }
        continue;
      }
      const msg = h.type & 0xff;
      let type: "new" | "update" | "destroy";
      if (msg === C.IPCTNL_MSG_CT_DELETE) type = "destroy";
      else if (msg === C.IPCTNL_MSG_CT_NEW) {
        type = (h.flags & (NLM_F_CREATE | NLM_F_EXCL)) !== 0 ? "new" : "update";
      } else continue;
      if (!want.has(type)) continue;
      const flow = decodeFlowAt(cursor, m.bytes, m.view, h.offset, h.length, decodeOptions);
      if (family !== undefined && flow.family !== family) continue;
      if (match !== undefined && !match(flow)) continue;
      yield { type, flow, portId: h.pid };
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    subscription.messages.return();
  }
}
