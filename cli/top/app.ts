/**
 * `ctnl top` at run time: one frame (`--once`), frames on a pipe, or the
 * live screen with its keys. The table is read with the async dump, so keys,
 * resizes and signals are answered while a large table streams in.
 *
 * @module
 */

import type { Conntrack, DumpFilter, Flow } from "../../mod.ts";
import { formatFlow } from "../../src/format.ts";
import { isArgumentError, NetlinkError } from "../../src/errors.ts";
import { isNotFound } from "../errors.ts";
import { type SyncWriter, writeText } from "../output.ts";
import { CounterSamples } from "./rates.ts";
import { collect, compareRows, type Frame, type GroupKey, type SortKey, sortKeys } from "./rows.ts";
import { HEADER_LINES, renderLines, type View } from "./render.ts";
import { Screen, type TopScreen } from "./terminal.ts";

/** What `ctnl top` was asked for. */
export interface TopSettings {
  /** Seconds between refreshes. */
  readonly interval: number;
  /** One frame (after one interval, so that it has rates), then exit. */
  readonly once: boolean;
  /** Rows to show; default the screen's height (20 when stdout is not a terminal). */
  readonly rows: number | undefined;
  readonly sort: SortKey;
  /** `--by`, as written and as extractors. */
  readonly by: readonly string[];
  readonly groupBy: readonly GroupKey[];
  /** The dump filter the options make. */
  readonly filter: DumpFilter;
  /** The tests the kernel cannot do (`--state`, `--older-than`, …), made afresh for each pass. */
  readonly keep: (() => (flow: Flow) => boolean) | undefined;
}

/** Where `ctnl top` runs: its table handle and its output. */
export interface TopIo {
  /** The table: what `top` dumps and deletes from. */
  readonly ct: Pick<Conntrack, "dump" | "delete">;
  readonly stdout: SyncWriter;
  /** Keys are read and the screen is taken over. */
  readonly interactive: boolean;
  /** SGR styling (a terminal, and no NO_COLOR). */
  readonly color: boolean;
  /** The screen's size when stdout is a terminal. */
  readonly size: (() => { columns: number; rows: number }) | undefined;
  /** The screen to take over when interactive (default: the terminal, {@link Screen.open}). */
  readonly screen?: () => TopScreen;
}

/** Rows when stdout is not a terminal and `--rows` is not given. */
const PIPE_ROWS = 20;
/** The width of a line when stdout is not a terminal: nothing is cut. */
const PIPE_COLUMNS = 1000;

function flows(s: TopSettings, ct: TopIo["ct"]): AsyncIterable<Flow> {
  const stream = ct.dump(s.filter, { onInterrupted: "ignore" });
  const keep = s.keep?.();
  if (keep === undefined) return stream;
  return (async function* () {
    for await (const flow of stream) if (keep(flow)) yield flow;
  })();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `ctnl top`; returns the exit status (0 on `q`, 130 on SIGINT, 143 on
 * SIGTERM). The terminal is restored however it ends.
 */
export async function runTop(s: TopSettings, io: TopIo): Promise<number> {
  if (io.interactive) return await new Live(s, io).run();
  const samples = new CounterSamples();
  const size = io.size?.();
  const columns = size?.columns ?? PIPE_COLUMNS;
  const rows = s.rows ?? (size ? Math.max(1, size.rows - HEADER_LINES) : PIPE_ROWS);
  const options = { limit: rows, sort: s.sort, reverse: false, by: s.groupBy };
  // The first pass only samples the counters; the frames after it have rates.
  await collect(flows(s, io.ct), samples, options);
  for (let first = true;; first = false) {
    await sleep(s.interval * 1000);
    const frame = await collect(flows(s, io.ct), samples, options);
    const view = viewOf(s, frame);
    const lines = renderLines(view, columns, Infinity, { color: io.color, interactive: false });
    writeText(io.stdout, (first ? "" : "\n") + lines.join("\n") + "\n");
    if (s.once) return 0;
  }
}

function viewOf(s: TopSettings, frame: Frame | undefined): View {
  return {
    frame,
    sort: s.sort,
    reverse: false,
    filter: "",
    paused: false,
    interval: s.interval,
    by: s.by,
    selected: undefined,
    prompt: undefined,
    message: undefined,
  };
}

type Mode = { kind: "normal" } | { kind: "filter"; text: string } | {
  kind: "confirm";
  flow: Flow;
  question: string;
};

/** The live screen: its state, its refresh loop and its keys. */
class Live {
  readonly #s: TopSettings;
  readonly #io: TopIo;
  readonly #samples = new CounterSamples();
  #screen: TopScreen | undefined;
  #frame: Frame | undefined;
  #sort: SortKey;
  #reverse = false;
  #filter = "";
  #paused = false;
  #selected: string | undefined;
  /** The user moved the selection: it follows its flow; before that it stays on the first row. */
  #following = false;
  #mode: Mode = { kind: "normal" };
  #message: string | undefined;
  #status: number | undefined; // set: quit with this status
  #failure: { error: unknown } | undefined;
  #wake: (() => void) | undefined;
  #refreshNow = false;
  /** Bumped when the sort or the filter changes: a pass begun before is thrown away. */
  #generation = 0;

  constructor(s: TopSettings, io: TopIo) {
    this.#s = s;
    this.#io = io;
    this.#sort = s.sort;
  }

  #quit(status: number): void {
    this.#status ??= status;
    this.#wake?.();
  }

  #fail(error: unknown): void {
    this.#failure ??= { error };
    this.#quit(1);
  }

  #size(): { columns: number; rows: number } {
    return this.#screen?.size() ?? { columns: 80, rows: 24 };
  }

  #limit(): number {
    return this.#s.rows ?? Math.max(1, this.#size().rows - HEADER_LINES);
  }

  #draw = (): void => {
    if (this.#screen === undefined || this.#status !== undefined) return;
    const { columns, rows } = this.#size();
    const mode = this.#mode;
    const prompt = mode.kind === "filter"
      ? `filter (Enter to apply, Esc to cancel): ${mode.text}_`
      : mode.kind === "confirm"
      ? mode.question
      : undefined;
    const view: View = {
      frame: this.#frame,
      sort: this.#sort,
      reverse: this.#reverse,
      filter: this.#filter,
      paused: this.#paused,
      interval: this.#s.interval,
      by: this.#s.by,
      selected: this.#selected,
      prompt,
      message: this.#message,
    };
    const lines = renderLines(view, columns, rows, { color: this.#io.color, interactive: true });
    this.#screen.draw(lines.slice(0, rows));
  };

  /** Fetches a new frame at once (after a sort, filter or deletion). */
  #refresh(): void {
    this.#generation++;
    this.#refreshNow = true;
    this.#wake?.();
  }

  async run(): Promise<number> {
    const signals: [Deno.Signal, () => void][] = [
      ["SIGWINCH", this.#draw],
      ["SIGINT", () => this.#quit(130)],
      ["SIGTERM", () => this.#quit(143)],
    ];
    this.#screen = this.#io.screen?.() ?? Screen.open();
    try {
      for (const [signal, handler] of signals) Deno.addSignalListener(signal, handler);
      this.#draw();
      this.#readKeys().catch((error) => this.#fail(error));
      while (this.#status === undefined) {
        if (!this.#paused || this.#frame === undefined) {
          this.#refreshNow = false;
          const generation = this.#generation;
          const frame = await collect(flows(this.#s, this.#io.ct), this.#samples, {
            limit: this.#limit(),
            sort: this.#sort,
            reverse: this.#reverse,
            filter: this.#filter,
            by: this.#s.groupBy,
            stop: () => this.#status !== undefined,
          });
          if (this.#status !== undefined) break;
          if (generation !== this.#generation) continue;
          this.#frame = frame;
          this.#select(0);
        }
        this.#draw();
        if (this.#refreshNow) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.#s.interval * 1000);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
    } finally {
      for (const [signal, handler] of signals) {
        try {
          Deno.removeSignalListener(signal, handler);
        } catch { /* never added */ }
      }
      this.#screen.restore();
    }
    if (this.#failure !== undefined) throw this.#failure.error;
    return this.#status ?? 0;
  }

  /** Moves the selection by `by` rows (0: keep it on a row that is still there). */
  #select(by: number): void {
    const rows = this.#frame?.rows ?? [];
    if (rows.length === 0) {
      this.#selected = undefined;
      return;
    }
    if (by !== 0) this.#following = true;
    const at = this.#following ? rows.findIndex((r) => r.key === this.#selected) : 0;
    const i = Math.min(rows.length - 1, Math.max(0, (at < 0 ? 0 : at) + by));
    this.#selected = rows[i]!.key;
  }

  async #readKeys(): Promise<void> {
    while (this.#status === undefined) {
      const keys = await this.#screen!.keys();
      if (keys === null) return this.#quit(0);
      for (const key of keys) await this.#key(key);
      this.#draw();
    }
  }

  /** Re-sorts the rows on screen at once; the next frame (fetched now) has the new order. */
  #resort(): void {
    this.#frame?.rows.sort(compareRows(this.#sort, this.#reverse));
    if (!this.#paused) this.#refresh();
  }

  async #key(key: string): Promise<void> {
    const mode = this.#mode;
    if (key === "ctrl-c") return this.#quit(0);
    if (mode.kind === "filter") {
      if (key === "enter") {
        this.#filter = mode.text;
        this.#following = false;
        this.#mode = { kind: "normal" };
        this.#paused = false;
        this.#refresh();
      } else if (key === "escape") {
        this.#mode = { kind: "normal" };
      } else if (key === "backspace") {
        this.#mode = { kind: "filter", text: mode.text.slice(0, -1) };
      } else if ([...key].length === 1) {
        this.#mode = { kind: "filter", text: mode.text + key };
      }
      return;
    }
    if (mode.kind === "confirm") {
      this.#mode = { kind: "normal" };
      if (key === "y" || key === "Y") await this.#delete(mode.flow);
      else this.#message = "not deleted";
      return;
    }
    this.#message = undefined;
    const keys = sortKeys(this.#s.by.length > 0);
    const page = Math.max(1, this.#size().rows - HEADER_LINES);
    switch (key) {
      case "q":
        return this.#quit(0);
      case "s":
      case "tab":
      case "S": {
        const step = key === "S" ? keys.length - 1 : 1;
        this.#sort = keys[(keys.indexOf(this.#sort) + step) % keys.length]!;
        return this.#resort();
      }
      case "r":
        this.#reverse = !this.#reverse;
        return this.#resort();
      case "/":
        this.#mode = { kind: "filter", text: this.#filter };
        return;
      case " ":
      case "p":
        this.#paused = !this.#paused;
        if (!this.#paused) this.#refresh();
        return;
      case "up":
      case "k":
        return this.#select(-1);
      case "down":
      case "j":
        return this.#select(1);
      case "pageup":
        return this.#select(-page);
      case "pagedown":
        return this.#select(page);
      case "home":
        return this.#select(-Infinity);
      case "end":
        return this.#select(Infinity);
      case "d": {
        const flow = this.#frame?.rows.find((r) => r.key === this.#selected)?.flow;
        if (flow === undefined) {
          this.#message = this.#s.by.length > 0
            ? "a group is not one flow: run without --by to delete"
            : "no flow selected";
          return;
        }
        const question = `Delete this flow? [y/N] ${formatFlow(flow, {}).replace(/\s+/g, " ")}`;
        this.#mode = { kind: "confirm", flow, question };
        return;
      }
      case "ctrl-l":
        return this.#screen?.write("\x1b[2J");
    }
  }

  async #delete(flow: Flow): Promise<void> {
    try {
      await this.#io.ct.delete(flow);
      this.#message = `deleted flow id ${flow.id}`;
    } catch (error) {
      if (isNotFound(error)) this.#message = "the flow was already gone";
      else if (error instanceof NetlinkError || isArgumentError(error)) {
        this.#message = `cannot delete it: ${error.message}`;
      } else throw error;
    }
    this.#refresh();
  }
}
