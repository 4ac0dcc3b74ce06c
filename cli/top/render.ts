/**
 * A frame of `ctnl top` as lines of text: the header (what the table holds,
 * how it is sorted and filtered, what is off), the column headings and one
 * line per row, laid out for a width and a height. Columns that do not fit
 * are dropped, least useful first; addresses that do not fit are cut with
 * `…`. Styling (SGR) only when `color` is on: NO_COLOR and pipes get plain
 * text, and the selected row is marked with `>` either way.
 *
 * @module
 */

import { type Frame, SORT_KEYS, type SortKey, type TopRow } from "./rows.ts";
import { bytesText, countText, durationText } from "./units.ts";

/** What the screen shows besides the frame: the view's settings and its prompt. */
export interface View {
  readonly frame: Frame | undefined;
  readonly sort: SortKey;
  readonly reverse: boolean;
  readonly filter: string;
  readonly paused: boolean;
  /** Seconds between refreshes. */
  readonly interval: number;
  /** The `--by` keys, as written. */
  readonly by: readonly string[];
  /** The key of the selected row. */
  readonly selected: string | undefined;
  /** A question or the filter being typed (interactive only). */
  readonly prompt: string | undefined;
  /** The last message (a deletion, an error). */
  readonly message: string | undefined;
}

/** How the lines are made. */
export interface Style {
  /** SGR styling (not with NO_COLOR or when stdout is not a terminal). */
  readonly color: boolean;
  /** Keys are read: show the key help, the prompt line and the selection. */
  readonly interactive: boolean;
}

/** Lines above the rows: header, settings, notes or keys, prompt, column headings. */
export const HEADER_LINES = 5;

interface Column {
  readonly title: string;
  /** The sort key it shows. */
  readonly sort: SortKey | undefined;
  readonly right: boolean;
  /** Flexible columns take what is left; fixed ones their width. */
  readonly flex: boolean;
  readonly width: number;
  /** Dropped first when the screen is narrow: highest number first; 0 never. */
  readonly drop: number;
  cell(row: TopRow): string;
}

const dash = (n: number | undefined, text: (n: number) => string) =>
  n === undefined ? "-" : text(n);

function fixed(
  title: string,
  sort: SortKey | undefined,
  width: number,
  drop: number,
  cell: (row: TopRow) => string,
): Column {
  return { title, sort, right: true, flex: false, width, drop, cell };
}

function flex(title: string, sort: SortKey | undefined, cell: (row: TopRow) => string): Column {
  return { title, sort, right: false, flex: true, width: 0, drop: 0, cell };
}

const counted = (row: TopRow, text: string) => row.accounted ? text : "-";

function columns(by: readonly string[]): Column[] {
  const rates = [
    fixed("BYTES/S", "rate", 7, 0, (r) => dash(r.bytesRate, bytesText)),
    fixed("PKTS/S", "prate", 6, 3, (r) => dash(r.packetsRate, countText)),
    fixed("BYTES", "bytes", 6, 0, (r) => counted(r, bytesText(r.bytes))),
  ];
  if (by.length > 0) {
    return [
      fixed("FLOWS", "flows", 6, 0, (r) => countText(r.flows)),
      ...by.map((key, i) => flex(key.toUpperCase(), "group", (r) => r.group[i] ?? "")),
      ...rates,
      fixed("PACKETS", "packets", 7, 2, (r) => counted(r, countText(r.packets))),
    ];
  }
  return [
    { ...fixed("PROTO", "proto", 6, 0, (r) => r.proto), right: false },
    { ...fixed("STATE", "state", 11, 4, (r) => r.state), right: false },
    flex("SOURCE", "src", (r) => r.src),
    flex("DESTINATION", "dst", (r) => r.dst),
    ...rates,
    fixed("AGE", "age", 6, 5, (r) => dash(r.age, durationText)),
    fixed("TIMEOUT", "timeout", 7, 1, (r) => dash(r.timeout, String)),
  ];
}

/** The narrowest a flexible column gets before fixed ones are dropped (an IPv4 address:port). */
const FLEX_MIN = 21;

function fit(text: string, width: number, right: boolean): string {
  if (text.length > width) {
    return width <= 1 ? text.slice(0, width) : text.slice(0, width - 1) + "…";
  }
  return right ? text.padStart(width) : text.padEnd(width);
}

function sortText(sort: SortKey, reverse: boolean): string {
  const { column, numeric } = SORT_KEYS.find((s) => s.key === sort)!;
  const order = numeric !== reverse ? "biggest first" : numeric ? "smallest first" : "A to Z";
  return `${column.toLowerCase()}, ${numeric || !reverse ? order : "Z to A"}`;
}

/** The header lines (without the column headings). */
function header(view: View, style: Style): string[] {
  const f = view.frame;
  const clock = new Date(f?.at ?? Date.now()).toTimeString().slice(0, 8);
  const protos = f === undefined
    ? ""
    : [...f.protocols].sort((a, b) => b[1] - a[1]).map(([p, n]) => `${p} ${n}`).join(", ");
  const flows = f === undefined
    ? "reading the table…"
    : `${f.total} flows${protos && `: ${protos}`}`;
  const lines = [
    `ctnl top - ${clock}${view.paused ? " - PAUSED" : ""} - ${flows} - every ${view.interval}s`,
  ];
  let settings = `sort: ${sortText(view.sort, view.reverse)}`;
  if (view.by.length > 0) settings += ` - by: ${view.by.join(",")}`;
  if (view.filter !== "") settings += ` - filter: "${view.filter}" (${f?.matched ?? 0} match)`;
  if (f !== undefined && f.seconds === undefined) settings += " - rates from the next refresh";
  lines.push(settings);
  const notes: string[] = [];
  if (f !== undefined && f.total > 0 && f.counted === 0) {
    notes.push("accounting off (net.netfilter.nf_conntrack_acct=1 for rates)");
  }
  if (f !== undefined && f.total > 0 && f.stamped === 0 && view.by.length === 0) {
    notes.push("timestamps off (nf_conntrack_timestamp=1 for ages)");
  }
  if (style.interactive) {
    lines.push(
      notes.length > 0 ? notes.join("; ") : "keys: s/S sort  r reverse  / filter  " +
        "space pause  up/down select  d delete  q quit",
    );
    lines.push(view.prompt ?? view.message ?? "");
  } else {
    lines.push(...notes);
  }
  return lines;
}

/**
 * The lines of one screen, each at most `width` characters (plus SGR with
 * `color`), at most `height` lines when interactive.
 *
 * @example A frame as plain text
 * ```ts
 * import { renderLines } from "./render.ts";
 * import { collect } from "./rows.ts";
 * import { CounterSamples } from "./rates.ts";
 * import { newFlow } from "../../src/flow.ts";
 * import { match } from "node:assert/strict";
 *
 * const flow = newFlow("ipv4");
 * flow.orig = { ...flow.orig, src: "10.0.0.1", dst: "10.0.0.2", protocol: 17, srcPort: 5000, dstPort: 53 };
 * flow.id = 1;
 * flow.timeout = 30;
 * const options = { limit: 10, sort: "rate", reverse: false } as const;
 * const frame = await collect([flow], new CounterSamples(), options);
 * const view = {
 *   frame, sort: "rate", reverse: false, filter: "", paused: false, interval: 2, by: [],
 *   selected: undefined, prompt: undefined, message: undefined,
 * } as const;
 * const lines = renderLines(view, 120, 10, { color: false, interactive: false });
 * match(lines.at(-1)!, /^  udp +10\.0\.0\.1:5000 +10\.0\.0\.2:53 +- +- +- +- +30$/);
 * ```
 */
export function renderLines(view: View, width: number, height: number, style: Style): string[] {
  const sgr = (code: string, text: string) => style.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  const lines = header(view, style).map((l) => fit(l, width, false).trimEnd());
  if (style.color) lines[0] = sgr("1", lines[0]!);
  const rows = view.frame?.rows ?? [];
  const shown = style.interactive ? rows.slice(0, Math.max(0, height - HEADER_LINES)) : rows;
  // Lay the columns out: drop fixed ones until the flexible ones get FLEX_MIN.
  let cols = columns(view.by);
  const mark = (c: Column) => c.title + (c.sort === view.sort ? (view.reverse ? "^" : "v") : "");
  const widthOf = (c: Column) => Math.max(c.width, mark(c).length);
  for (;;) {
    const fixedWidth = cols.filter((c) => !c.flex).reduce((a, c) => a + widthOf(c) + 1, 2);
    const flexCount = cols.filter((c) => c.flex).length;
    const droppable = cols.filter((c) => c.drop > 0).sort((a, b) => b.drop - a.drop)[0];
    if (width - fixedWidth >= flexCount * (FLEX_MIN + 1) || droppable === undefined) break;
    cols = cols.filter((c) => c !== droppable);
  }
  const fixedWidth = cols.filter((c) => !c.flex).reduce((a, c) => a + widthOf(c) + 1, 2);
  const flexCols = cols.filter((c) => c.flex);
  const need = flexCols.map((c) =>
    shown.reduce((m, r) => Math.max(m, c.cell(r).length), mark(c).length)
  );
  const room = Math.max(0, width - fixedWidth - flexCols.length);
  const share = need.reduce((a, b) => a + b, 0) <= room
    ? need
    : need.map(() => Math.max(1, Math.floor(room / Math.max(1, flexCols.length))));
  const widths = cols.map((c) => c.flex ? share[flexCols.indexOf(c)]! : widthOf(c));
  const line = (cells: string[], marker: string) =>
    (marker + " " + cells.map((t, i) => fit(t, widths[i]!, cols[i]!.right)).join(" "))
      .slice(0, width).trimEnd();
  const titles = line(cols.map(mark), " ");
  lines.push(style.color ? sgr("7", titles.padEnd(width)) : titles);
  for (const row of shown) {
    const selected = style.interactive && row.key === view.selected;
    const text = line(cols.map((c) => c.cell(row)), selected ? ">" : " ");
    lines.push(selected && style.color ? sgr("7", text.padEnd(width)) : text);
  }
  return lines;
}
