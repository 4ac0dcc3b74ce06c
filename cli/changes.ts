/**
 * What create and update set (`-t`, `-m`, `-u`, `--state`) and how update
 * applies it to a listed entry, as conntrack does.
 *
 * @module
 */

import { type Flow, type FlowChanges, protocolInfo, TCP_STATES } from "../mod.ts";
import { UsageError } from "./errors.ts";
import { decimal } from "./values.ts";
import type { Context } from "./context.ts";

/** What create and update set: parsed from -t, -m, -u and --state. */
export interface Changes {
  timeout: number | undefined;
  mark: { value: number; mask: number } | undefined;
  status: number | undefined;
  tcpState: string | undefined;
}

/** The changes of create or update, checked as conntrack checks them. */
export function parseChanges(ctx: Context, command: "create" | "update"): Changes {
  const f = ctx.filters;
  const timeout = ctx.parsed.values.get("timeout");
  const changes: Changes = {
    timeout: timeout === undefined ? undefined : decimal("timeout", timeout, 0xffffffff, "timeout"),
    mark: f.mark,
    status: f.status?.value,
    tcpState: f.state,
  };
  if (command === "create" && f.mark !== undefined && f.mark.mask !== 0xffffffff) {
    throw new UsageError(`-m/--mark with create takes a value, not VALUE/MASK`);
  }
  if (f.status !== undefined && f.status.value !== f.status.mask) {
    throw new UsageError(
      `-u/--status with ${command} names flags to set; "!FLAG" and UNREPLIED only select (dump, delete, events)`,
    );
  }
  // The library sets only a TCP state (FlowChanges.tcpState).
  if (f.state !== undefined && !isTcp(f.protocol)) {
    throw new UsageError(`--state with ${command} needs -p tcp`);
  }
  return changes;
}

/** The entry's fields after `changes`, as conntrack -U computes them; undefined when nothing changes. */
export function changesFor(flow: Flow, changes: Changes): FlowChanges | undefined {
  const out: FlowChanges = {};
  let changed = false;
  if (changes.timeout !== undefined) {
    out.timeout = changes.timeout;
    changed ||= flow.timeout !== changes.timeout;
  }
  if (changes.mark !== undefined) {
    // conntrack -U -m VALUE/MASK: the bits outside MASK are kept, VALUE is xor-ed in.
    const mark = (((flow.mark ?? 0) & ~changes.mark.mask) ^ changes.mark.value) >>> 0;
    out.mark = mark;
    changed ||= flow.mark !== mark;
  }
  if (changes.status !== undefined) {
    // Flags are only ever set; the kernel refuses to clear most of them.
    const status = (flow.status | changes.status) >>> 0;
    if (status !== flow.status) {
      out.status = status;
      changed = true;
    }
  }
  if (changes.tcpState !== undefined) {
    out.tcpState = changes.tcpState;
    changed ||= flow.tcp?.stateName !== changes.tcpState;
  }
  return changed ? out : undefined;
}

/** Whether `protocol` is the one whose states the library can set (tcpState: TCP_STATES). */
export function isTcp(protocol: number | undefined): boolean {
  return protocol !== undefined && protocolInfo(protocol).states === TCP_STATES;
}
