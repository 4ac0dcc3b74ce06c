/**
 * `--sort` on a finite listing, in bounded memory: each line is held with a
 * key that sorts as text; past {@link RUN_LINES} lines a sorted run goes to
 * a temporary file, and the runs are merged at the end (as GNU sort does).
 * With `--top N` only the N first are kept, in memory.
 *
 * @module
 */

import type { Flow } from "../mod.ts";
import { parseIPv4, parseIPv6 } from "../src/address.ts";
import { FailError, UsageError } from "./errors.ts";
import type { LineWriter } from "./output.ts";
import type { Context } from "./context.ts";

/** Lines held in memory before a sorted run is written out. */
export const RUN_LINES = 100_000;

const MAX64 = (1n << 64n) - 1n;
const LAST = "~"; // after every digit and hex letter: missing values sort last

function up(v: bigint | number | undefined): string {
  return v === undefined ? LAST : BigInt(v).toString().padStart(20, "0");
}

function down(v: bigint | number | undefined): string {
  return v === undefined ? LAST : (MAX64 - BigInt(v)).toString().padStart(20, "0");
}

function address(a: string | undefined): string {
  if (a === undefined) return LAST;
  const bytes = parseIPv4(a);
  if (bytes !== undefined) {
    return "4" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  const v6 = parseIPv6(a);
  return v6 === undefined
    ? LAST
    : "6" + [...v6].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const bytesOf = (f: Flow) =>
  f.countersOrig === undefined && f.countersReply === undefined
    ? undefined
    : (f.countersOrig?.bytes ?? 0n) + (f.countersReply?.bytes ?? 0n);
const packetsOf = (f: Flow) =>
  f.countersOrig === undefined && f.countersReply === undefined
    ? undefined
    : (f.countersOrig?.packets ?? 0n) + (f.countersReply?.packets ?? 0n);

/** The sort keys, each with its order: largest first for sizes and age, else ascending. */
const KEYS: Record<string, (f: Flow) => string> = {
  bytes: (f) => down(bytesOf(f)),
  packets: (f) => down(packetsOf(f)),
  // The oldest first: the smallest start timestamp.
  age: (f) => up(f.timestampStart),
  // The first to expire first.
  timeout: (f) => up(f.timeout),
  src: (f) => address(f.orig.src),
  dst: (f) => address(f.orig.dst),
  sport: (f) => up(f.orig.srcPort),
  dport: (f) => up(f.orig.dstPort),
  proto: (f) => up(f.orig.protocol),
  mark: (f) => up(f.mark ?? 0),
  zone: (f) => up(f.zone ?? 0),
  id: (f) => up(f.id),
};

/** The names `--sort` takes on a listing. */
export const SORT_KEYS: readonly string[] = Object.keys(KEYS);

/** The sort key function of `--sort KEY[,KEY…]`; throws a usage error for an unknown key. */
export function sortKey(spec: string): (flow: Flow) => string {
  const parts = spec.split(",").map((s) => s.trim());
  const fns = parts.map((p) => {
    const fn = KEYS[p];
    if (fn === undefined) {
      throw new UsageError(`invalid --sort "${spec}" (keys: ${SORT_KEYS.join(", ")})`);
    }
    return fn;
  });
  return fns.length === 1 ? fns[0]! : (f) => fns.map((fn) => fn(f)).join("\x01");
}

/** Runs of sorted `key\tline` records in temporary files. */
class Runs {
  readonly files: string[] = [];

  write(records: string[]): void {
    const write = Deno.permissions.querySync({ name: "write", path: "/tmp" }).state;
    const read = Deno.permissions.querySync({ name: "read", path: "/tmp" }).state;
    if (write !== "granted" || read !== "granted") {
      throw new FailError(
        `sorting more than ${RUN_LINES} entries writes sorted runs to temporary files: ` +
          "add --allow-read=/tmp --allow-write=/tmp (or give --top N)",
      );
    }
    const path = Deno.makeTempFileSync({ prefix: "ctnl-sort-" });
    this.files.push(path);
    Deno.writeTextFileSync(path, records.join("\n") + "\n");
  }

  remove(): void {
    for (const f of this.files) {
      try {
        Deno.removeSync(f);
      } catch { /* already gone */ }
    }
  }
}

/** Reads one run's records in order, a chunk at a time. */
class RunReader {
  readonly #file: Deno.FsFile;
  readonly #decoder = new TextDecoder();
  readonly #chunk = new Uint8Array(256 * 1024);
  #pending = "";
  #lines: string[] = [];
  #at = 0;
  #eof = false;
  current: string | undefined;

  constructor(path: string) {
    this.#file = Deno.openSync(path);
    this.advance();
  }

  advance(): void {
    while (this.#at >= this.#lines.length && !this.#eof) {
      const n = this.#file.readSync(this.#chunk);
      if (n === null) {
        this.#eof = true;
        this.#lines = this.#pending === "" ? [] : [this.#pending];
      } else {
        const text = this.#pending +
          this.#decoder.decode(this.#chunk.subarray(0, n), { stream: true });
        const lines = text.split("\n");
        this.#pending = lines.pop()!;
        this.#lines = lines;
      }
      this.#at = 0;
    }
    this.current = this.#at < this.#lines.length ? this.#lines[this.#at++] : undefined;
    if (this.current === undefined) this.#file.close();
  }
}

function keyOfRecord(record: string): string {
  return record.slice(0, record.indexOf("\t"));
}

/**
 * Collects the lines of a listing with their sort keys and writes them out
 * sorted. Ties keep the kernel's order.
 */
export class SortedLines {
  readonly #key: (flow: Flow) => string;
  readonly #top: number;
  readonly #runLines: number;
  #records: string[] = [];
  #seq = 0;
  readonly #runs = new Runs();

  /** `top`: keep only the first N; `runLines`: records held before a run is written. */
  constructor(spec: string, top = Infinity, runLines = RUN_LINES) {
    this.#key = sortKey(spec);
    this.#top = top;
    this.#runLines = runLines;
  }

  /** Adds `line`, the text of `flow`. */
  add(flow: Flow, line: string): void {
    // The sequence number keeps ties in arrival order (a stable sort of runs and merge).
    const record = `${this.#key(flow)}\x02${(this.#seq++).toString(36).padStart(8, "0")}\t${line}`;
    this.#records.push(record);
    if (this.#records.length >= 2 * this.#top && this.#top !== Infinity) this.#trim();
    else if (this.#records.length >= this.#runLines && this.#top === Infinity) {
      this.#records.sort();
      this.#runs.write(this.#records);
      this.#records = [];
    }
  }

  #trim(): void {
    this.#records.sort();
    this.#records.length = this.#top;
  }

  /** Writes the lines in order to `out`; returns how many. Removes the runs. */
  finish(out: LineWriter): number {
    try {
      this.#records.sort();
      if (this.#top !== Infinity && this.#records.length > this.#top) this.#trim();
      if (this.#runs.files.length === 0) {
        for (const r of this.#records) out.line(r.slice(r.indexOf("\t") + 1));
        return this.#records.length;
      }
      return this.#merge(out);
    } finally {
      this.#runs.remove();
    }
  }

  #merge(out: LineWriter): number {
    const readers = this.#runs.files.map((f) => new RunReader(f));
    let memory = 0;
    let n = 0;
    for (;;) {
      let best: RunReader | undefined;
      let bestKey = "";
      for (const r of readers) {
        if (r.current === undefined) continue;
        const k = keyOfRecord(r.current);
        if (best === undefined || k < bestKey) [best, bestKey] = [r, k];
      }
      const m = this.#records[memory];
      if (m !== undefined && (best === undefined || keyOfRecord(m) < bestKey)) {
        out.line(m.slice(m.indexOf("\t") + 1));
        memory++;
      } else if (best !== undefined) {
        out.line(best.current!.slice(best.current!.indexOf("\t") + 1));
        best.advance();
      } else return n;
      n++;
    }
  }
}

/** The options of a sorted listing. */
export const SORT_OPTIONS = [
  {
    key: "sort",
    placeholder: "KEY[,KEY…]",
    help: "Sorted (bytes, packets, age: largest first; timeout: soonest\n" +
      "first; src, dst, sport, dport, proto, mark, zone, id: ascending);\n" +
      `more than ${RUN_LINES} entries need --allow-read=/tmp --allow-write=/tmp`,
  },
  { key: "top", help: "With --sort: only the first N" },
] as const;

/** The sorter `--sort`/`--top` ask for on a listing, or undefined; usage errors first. */
export function listingSort(ctx: Context): SortedLines | undefined {
  const spec = ctx.parsed.values.get("sort");
  const topText = ctx.parsed.values.get("top");
  if (spec === undefined) {
    if (topText !== undefined) throw new UsageError("--top needs --sort");
    return undefined;
  }
  if (ctx.outputs.has("xml")) throw new UsageError("--sort cannot be used with -o xml");
  let top = Infinity;
  if (topText !== undefined) {
    if (!/^[1-9][0-9]{0,8}$/.test(topText)) {
      throw new UsageError(`invalid --top "${topText}" (a positive integer)`);
    }
    top = Number(topText);
  }
  return new SortedLines(spec, top);
}
