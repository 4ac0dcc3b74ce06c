/**
 * The listing extras conntrack has not: `--older-than`, `--younger-than`
 * (start timestamps), `--idle` (time since the last packet, from the
 * timeout), `--bytes-gt` (counters), evaluated in ctnl on each flow.
 *
 * @module
 */

import type { Conntrack, Flow, TimeoutPolicy } from "../mod.ts";
import { fullTimeout } from "../src/timeouts.ts";
import { UsageError } from "./errors.ts";

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * Seconds of a duration: `90`, `90s`, `5m`, `1h30m`, `2d`.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./extras.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(parseDuration("1h30m", "--older-than"), 5400);
 * equal(parseDuration("45", "--idle"), 45);
 * ```
 */
export function parseDuration(text: string, option: string): number {
  if (/^\d+$/.test(text)) return Number(text);
  const parts = [...text.matchAll(/(\d+)([smhdw])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    throw new UsageError(`invalid duration "${text}" for ${option} (e.g. 90, 90s, 5m, 1h30m, 2d)`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0);
}

const SIZES: Record<string, bigint> = {
  "": 1n,
  k: 1000n,
  M: 1000n ** 2n,
  G: 1000n ** 3n,
  T: 1000n ** 4n,
  Ki: 1024n,
  Mi: 1024n ** 2n,
  Gi: 1024n ** 3n,
  Ti: 1024n ** 4n,
};

/**
 * Bytes of a size: `1500`, `10k`, `2M` (powers of 1000), `64Ki`, `1Gi` (of
 * 1024); a trailing `B` is allowed.
 *
 * @example
 * ```ts
 * import { parseSize } from "./extras.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(parseSize("10k", "--bytes-gt"), 10000n);
 * equal(parseSize("1MiB", "--bytes-gt"), 1048576n);
 * ```
 */
export function parseSize(text: string, option: string): bigint {
  const m = /^(\d{1,20})(k|M|G|T|Ki|Mi|Gi|Ti)?B?$/.exec(text);
  if (m === null) {
    throw new UsageError(`invalid size "${text}" for ${option} (e.g. 1500, 10k, 2M, 64Ki)`);
  }
  return BigInt(m[1]!) * SIZES[m[2] ?? ""]!;
}

/** The extras of one command line, parsed. */
export interface Extras {
  /** Started at least this many seconds ago. */
  olderThan?: number;
  /** Started less than this many seconds ago. */
  youngerThan?: number;
  /** No packet for at least this many seconds. */
  idle?: number;
  /** More than this many bytes, both directions together. */
  bytesGt?: bigint;
}

/** The option keys of the extras. */
export const EXTRA_OPTIONS = ["olderThan", "youngerThan", "idle", "bytesGt"] as const;

/** Reads the extras from the parsed option values. */
export function parseExtras(values: ReadonlyMap<string, string>): Extras {
  const extras: Extras = {};
  const older = values.get("olderThan");
  if (older !== undefined) extras.olderThan = parseDuration(older, "--older-than");
  const younger = values.get("youngerThan");
  if (younger !== undefined) extras.youngerThan = parseDuration(younger, "--younger-than");
  const idle = values.get("idle");
  if (idle !== undefined) extras.idle = parseDuration(idle, "--idle");
  const bytes = values.get("bytesGt");
  if (bytes !== undefined) extras.bytesGt = parseSize(bytes, "--bytes-gt");
  return extras;
}

/**
 * The full timeout of a flow's state, in seconds: what its timeout was set
 * to at its last packet. `undefined` where ctnl cannot tell.
 */
export type FullTimeout = (flow: Flow) => number | undefined;

/**
 * The test of the extras, with what it could not decide counted: flows
 * without a start timestamp (for the age tests), without counters, or
 * whose state's timeout is unknown, do not match.
 */
export class ExtrasMatcher {
  readonly #extras: Extras;
  readonly #fullTimeout: FullTimeout | undefined;
  /** Flows left out because they had no start timestamp. */
  noTimestamp = 0;
  /** Flows left out because they had no counters. */
  noCounters = 0;
  /** Flows left out because the full timeout of their state is unknown. */
  noTimeout = 0;
  /** Now, in ns since the epoch (the start timestamps' clock). */
  nowNs: bigint = BigInt(Date.now()) * 1_000_000n;

  constructor(extras: Extras, fullTimeout?: FullTimeout) {
    this.#extras = extras;
    this.#fullTimeout = fullTimeout;
  }

  /** Whether any extra was given. */
  get active(): boolean {
    return Object.keys(this.#extras).length > 0;
  }

  /** Whether `flow` passes every extra. */
  test(flow: Flow): boolean {
    const e = this.#extras;
    if (e.olderThan !== undefined || e.youngerThan !== undefined) {
      const start = flow.timestampStart;
      if (start === undefined) {
        this.noTimestamp++;
        return false;
      }
      const age = Number(this.nowNs - start) / 1e9;
      if (e.olderThan !== undefined && age < e.olderThan) return false;
      if (e.youngerThan !== undefined && age >= e.youngerThan) return false;
    }
    if (e.bytesGt !== undefined) {
      const o = flow.countersOrig;
      const r = flow.countersReply;
      if (o === undefined && r === undefined) {
        this.noCounters++;
        return false;
      }
      if ((o?.bytes ?? 0n) + (r?.bytes ?? 0n) <= e.bytesGt) return false;
    }
    if (e.idle !== undefined) {
      const full = this.#fullTimeout?.(flow);
      if (full === undefined || flow.timeout === undefined) {
        this.noTimeout++;
        return false;
      }
      if (full - flow.timeout < e.idle) return false;
    }
    return true;
  }

  /** One warning line per kind of flow left out undecided, for stderr. */
  warnings(): string[] {
    const out: string[] = [];
    if (this.noTimestamp > 0) {
      out.push(
        `ctnl: warning: ${this.noTimestamp} entries have no start timestamp and were left out ` +
          "(sysctl -w net.netfilter.nf_conntrack_timestamp=1; new connections get one)",
      );
    }
    if (this.noCounters > 0) {
      out.push(
        `ctnl: warning: ${this.noCounters} entries have no counters and were left out ` +
          "(sysctl -w net.netfilter.nf_conntrack_acct=1; new connections get them)",
      );
    }
    if (this.noTimeout > 0) {
      out.push(
        `ctnl: warning: ${this.noTimeout} entries have a state whose timeout ctnl does not ` +
          "know and were left out of --idle",
      );
    }
    return out;
  }
}

/** The protocols with a timeout policy of their own; the rest use the generic one (255). */
const POLICY_PROTOCOLS = [6, 17, 1, 58, 132, 47, 136, 33, 255];

/**
 * The extras of the command line, with `--idle`'s timeouts read from the
 * namespace's default policies (one request per protocol, before the dump).
 */
export async function listingExtras(
  values: ReadonlyMap<string, string>,
  ct: Conntrack,
): Promise<ExtrasMatcher> {
  const extras = parseExtras(values);
  if (extras.idle === undefined) return new ExtrasMatcher(extras);
  const policies = new Map<number, TimeoutPolicy>();
  for (const protocol of POLICY_PROTOCOLS) {
    try {
      policies.set(protocol, await ct.timeoutPolicy(protocol));
    } catch {
      // Not tracked by a protocol of its own in this kernel (EOPNOTSUPP): the generic policy.
    }
  }
  const generic = policies.get(255);
  return new ExtrasMatcher(extras, (flow) => {
    const policy = policies.get(flow.orig.protocol ?? 255) ?? generic;
    return policy === undefined ? undefined : fullTimeout(flow, policy);
  });
}
