/**
 * What the parser says about an option it does not know: the closest
 * option it does know ("did you mean `--dport`?", by edit distance), or,
 * for an option of conntrack-tools 1.4.7 that ctnl does not take yet, that
 * it is not supported yet and what to use instead.
 *
 * {@link UNSUPPORTED} is the one list of conntrack's options ctnl lacks:
 * when an option is added to the option table (cli/options.ts), its entry
 * here is dead (the parser finds the real option first) and
 * tests/unit/cli_suggest_test.ts names it, to be removed.
 *
 * @module
 */

/** An option of conntrack 1.4.7 that ctnl does not take yet. */
export interface Unsupported {
  /** Long names, without the dashes. */
  readonly long: readonly string[];
  /** conntrack's one-letter form, if it has one. */
  readonly short?: string;
  /** What to use instead, as a phrase after "use". */
  readonly instead: string;
}

/**
 * conntrack-tools 1.4.7's options (conntrack.c `original_opts` and the
 * protocol extensions' options) that ctnl does not take yet.
 */
export const UNSUPPORTED: readonly Unsupported[] = [
  { long: ["id"], short: "i", instead: "ctnl dump -o id to see ids, or conntrack -i" },
  {
    long: ["mask-key-src", "mask-key-dst", "tuple-key-src", "tuple-key-dst"],
    instead: "conntrack -p gre for GRE keys of expectations",
  },
];

/**
 * The edit distance between `a` and `b` (insertions, deletions,
 * substitutions and swaps of two neighbours, each 1).
 *
 * @example
 * ```ts
 * import { editDistance } from "./suggest.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(editDistance("dprot", "dport"), 1); // a swap
 * equal(editDistance("sprt", "sport"), 1);
 * equal(editDistance("famly", "family"), 1);
 * equal(editDistance("zone", "mark"), 4);
 * ```
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      }
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/**
 * The closest of `names` to `name` (all of them, if several are as close),
 * if they are close enough to be a typo: at most 1 edit for names of up
 * to 4 letters, 2 up to 8, else 3.
 *
 * @example
 * ```ts
 * import { closest } from "./suggest.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * deepEqual(closest("dprot", ["sport", "dport", "proto"]), ["dport"]);
 * deepEqual(closest("stauts", ["status", "stats", "state"]), ["status", "stats"]);
 * deepEqual(closest("frobnicate", ["sport", "dport"]), []);
 * ```
 */
export function closest(name: string, names: readonly string[]): string[] {
  const most = name.length <= 4 ? 1 : name.length <= 8 ? 2 : 3;
  let best: string[] = [], bestDistance = most + 1;
  for (const candidate of new Set(names)) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) [best, bestDistance] = [[candidate], d];
    else if (d === bestDistance) best.push(candidate);
  }
  return best.slice(0, 3);
}

/** ` (did you mean --a or --b?)`, or nothing. */
function didYouMean(names: readonly string[]): string {
  if (names.length === 0) return "";
  const list = names.map((n) => `--${n}`);
  const text = list.length === 1 ? list[0] : `${list.slice(0, -1).join(", ")} or ${list.at(-1)}`;
  return ` (did you mean ${text}?)`;
}

function unsupportedLong(name: string): Unsupported | undefined {
  const exact = UNSUPPORTED.find((u) => u.long.includes(name));
  if (exact !== undefined || name.length < 2) return exact;
  // As getopt_long would: an unambiguous prefix names the option.
  const hits = UNSUPPORTED.filter((u) => u.long.some((l) => l.startsWith(name)));
  return hits.length === 1 ? hits[0] : undefined;
}

/**
 * The message for an unknown long option `--name`, given the long names
 * ctnl knows: not supported yet (with what to use), or did you mean, or
 * just unknown.
 *
 * @example
 * ```ts
 * import { unknownLong } from "./suggest.ts";
 * import { equal, match } from "node:assert/strict";
 *
 * equal(unknownLong("dprot", ["sport", "dport"]), "unknown option --dprot (did you mean --dport?)");
 * match(unknownLong("id", ["src"]), /^option --id is not supported yet; use ctnl dump -o id/);
 * ```
 */
export function unknownLong(name: string, known: readonly string[]): string {
  const unsupported = unsupportedLong(name);
  if (unsupported !== undefined) {
    return `option --${unsupported.long.find((l) => l.startsWith(name)) ?? name} is not ` +
      `supported yet; use ${unsupported.instead}`;
  }
  return `unknown option --${name}${didYouMean(closest(name, known))}`;
}

/**
 * The message for an unknown one-letter option `-x`: not supported yet
 * (conntrack has it), or unknown — with the long option of that name
 * when `x` is one (`-dport` for `--dport`).
 *
 * @example
 * ```ts
 * import { unknownShort } from "./suggest.ts";
 * import { equal, match } from "node:assert/strict";
 *
 * match(unknownShort("i", "-i", []), /^option -i\/--id is not supported yet; use /);
 * equal(unknownShort("x", "-x", []), "unknown option -x");
 * equal(unknownShort("o", "-dport", ["dport"]), "unknown option -o (did you mean --dport?)");
 * ```
 */
export function unknownShort(letter: string, arg: string, known: readonly string[]): string {
  const unsupported = UNSUPPORTED.find((u) => u.short === letter);
  if (unsupported !== undefined && arg.length === 2) {
    return `option -${letter}/--${
      unsupported.long[0]
    } is not supported yet; use ${unsupported.instead}`;
  }
  // `-dport 22`: a long option written with one dash.
  const word = arg.slice(1);
  const near = word.length <= 2 ? [] : known.includes(word) ? [word] : closest(word, known);
  return `unknown option -${letter}${didYouMean(near)}`;
}
