/**
 * What create and update set (`-t`, `-m`, `-u`, `--state`) and how update
 * applies it to a listed entry, as conntrack does.
 *
 * @module
 */

import type { Flow, FlowChanges } from "../mod.ts";
import { labelBits } from "../src/format.ts";
import { protocolInfo, TCP_STATES } from "../src/protocols.ts";
import { UsageError } from "./errors.ts";
import { decimal } from "./values.ts";
import type { Context } from "./context.ts";
import { labelBits as labelNames } from "./labels.ts";

/** What create and update set: parsed from -t, -m, -u and --state. */
export interface Changes {
  timeout: number | undefined;
  mark: { value: number; mask: number } | undefined;
  status: number | undefined;
  tcpState: string | undefined;
  /** `--label-add`: label bits to set. */
  labelsAdd: number[] | undefined;
  /** `--label-del`: label bits to clear, or all. */
  labelsDel: number[] | "all" | undefined;
}

/** The changes of create or update, checked as conntrack checks them. */
export function parseChanges(ctx: Context, command: "create" | "update"): Changes {
  const f = ctx.filters;
  const timeout = ctx.parsed.values.get("timeout");
  const changes: Changes = {
    timeout: timeout === undefined ? undefined : decimal("timeout", timeout, 0xffffffff, "timeout"),
    mark: f.mark,
    status: f.status?.value,
    tcpState: isTcp(f.protocol) ? f.state : undefined,
    labelsAdd: undefined,
    labelsDel: undefined,
  };
  if (ctx.parsed.lists.size > 0 || ctx.parsed.flags.has("labelDel")) {
    Object.assign(changes, labelChanges(ctx));
  }
  if (command === "create" && f.mark !== undefined && f.mark.mask !== 0xffffffff) {
    throw new UsageError(`-m/--mark with create takes a value, not VALUE/MASK`);
  }
  if (f.status !== undefined && f.status.value !== f.status.mask) {
    throw new UsageError(
      `-u/--status with ${command} names flags to set; "!FLAG" and UNREPLIED only select (dump, delete, events)`,
    );
  }
  // update sets a TCP state only; create also an SCTP or DCCP one (createSpec).
  const name = f.protocol === undefined ? undefined : protocolInfo(f.protocol).name;
  const protoinfo = command === "create" && (name === "sctp" || name === "dccp");
  if (f.state !== undefined && !isTcp(f.protocol) && !protoinfo) {
    throw new UsageError(`--state with ${command} needs -p tcp`);
  }
  return changes;
}

/** `--label-add` and `--label-del` (bare: every label), as conntrack parses them. */
function labelChanges(ctx: Context): Pick<Changes, "labelsAdd" | "labelsDel"> {
  const { lists, flags } = ctx.parsed;
  const add = lists.get("labelAdd");
  const del = lists.get("labelDel");
  const delAll = flags.has("labelDel"); // with --label-add: refused by parseFilters
  return {
    labelsAdd: add === undefined ? undefined : labelNames("labelAdd", add),
    labelsDel: delAll ? "all" : del === undefined ? undefined : labelNames("labelDel", del),
  };
}

/** The labels after `changes` (undefined: none), as conntrack -U computes them. */
function labelsAfter(flow: Flow, changes: Changes): Set<number> | undefined {
  const have = new Set(flow.labels === undefined ? [] : labelBits(flow.labels));
  if (changes.labelsAdd !== undefined) { for (const bit of changes.labelsAdd) have.add(bit); }
  // conntrack -U --label-del leaves an entry without labels alone.
  else if (flow.labels === undefined) return undefined;
  else if (changes.labelsDel === "all") have.clear();
  else if (changes.labelsDel !== undefined) {
    for (const bit of changes.labelsDel) {
      have.delete(bit);
    }
  }
  return have;
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
  if (changes.labelsAdd !== undefined || changes.labelsDel !== undefined) {
    const before = flow.labels === undefined ? [] : labelBits(flow.labels);
    const after = labelsAfter(flow, changes);
    if (
      after !== undefined && (after.size !== before.length || before.some((b) => !after.has(b)))
    ) {
      if (changes.labelsAdd !== undefined) out.labels = changes.labelsAdd;
      else out.labelsRemove = changes.labelsDel!;
      changed = true;
    }
  }
  return changed ? out : undefined;
}

/** Whether `protocol` is the one whose states the library can set (tcpState: TCP_STATES). */
export function isTcp(protocol: number | undefined): boolean {
  return protocol !== undefined && protocolInfo(protocol).states === TCP_STATES;
}
