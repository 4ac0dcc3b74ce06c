/**
 * Where the CLI writes: the writers it is given (stdout, stderr) and the
 * line writers over them.
 *
 * @module
 */

/**
 * Something bytes are written to synchronously, as `Deno.stdout` is: what
 * `main` writes to.
 *
 * @example Collect what `ctnl` prints
 * ```ts
 * import { main, type SyncWriter } from "@ctnl/conntrack/cli";
 * import { strictEqual } from "node:assert/strict";
 *
 * let text = "";
 * const stderr: SyncWriter = {
 *   writeSync(p) {
 *     text += new TextDecoder().decode(p);
 *     return p.length;
 *   },
 * };
 * strictEqual(await main(["dump", "-p", "frob"], { stderr }), 2);
 * strictEqual(text.startsWith('ctnl: unknown protocol "frob"'), true);
 * ```
 */
export interface SyncWriter {
  /** Writes some of `p` and returns how many bytes it wrote. */
  writeSync(p: Uint8Array): number;
}

/** The CLI's output streams: data on `stdout`, messages on `stderr`. */
export interface Io {
  /** Where data goes (default `Deno.stdout`). */
  readonly stdout: SyncWriter;
  /** Where messages go (default `Deno.stderr`). */
  readonly stderr: SyncWriter;
}

import type { Flow, FormatOptions } from "../mod.ts";
import type { ByteSink } from "../src/transcode.ts";
import { formatSave } from "./save.ts";
import { formatXml, XML_FOOTER, XML_HEADER, type XmlOptions } from "./xml.ts";

const encoder = new TextEncoder();
const FLUSH_AT = 64 * 1024;

function writeAll(file: SyncWriter, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
}

/** Buffers lines for `file` and writes them in ~64 KiB chunks. */
export class LineWriter implements ByteSink {
  readonly #file: SyncWriter;
  // One reused buffer: lines are encoded (or transcoded, src/transcode.ts)
  // straight into it and written out in large chunks, so output allocates
  // nothing per line or per chunk.
  /** The buffer lines are written into (a {@link ByteSink}'s). */
  buffer: Uint8Array = new Uint8Array(4 * FLUSH_AT);
  /** Bytes of {@link buffer} waiting to be written. */
  used = 0;

  constructor(file: SyncWriter) {
    this.#file = file;
  }

  line(text: string): void {
    const most = text.length * 3 + 1; // UTF-8 bytes at most
    if (this.used + most > this.buffer.length) {
      this.flush();
      if (most > this.buffer.length) {
        writeAll(this.#file, encoder.encode(text + "\n"));
        return;
      }
    }
    this.used += encoder.encodeInto(text, this.buffer.subarray(this.used)).written;
    this.buffer[this.used++] = 10;
  }

  /** Makes room for `n` more bytes: writes out what is waiting when it would not fit. */
  room(n: number): void {
    if (this.used + n <= this.buffer.length) return;
    this.flush();
    if (n > this.buffer.length) this.buffer = new Uint8Array(n);
  }

  flush(): void {
    if (this.used === 0) return;
    const used = this.used;
    this.used = 0;
    writeAll(this.#file, this.buffer.subarray(0, used));
  }
}

/** Writes `text` as one line (line breaks in it become spaces) to `file`, ignoring failures. */
export function messageLine(file: SyncWriter, text: string): void {
  try {
    writeAll(file, encoder.encode(text.replace(/\s*\n\s*/g, " ") + "\n"));
  } catch {
    // Nowhere left to report it.
  }
}

/**
 * Event lines for `file`. They are written as soon as the stream goes idle
 * (a zero-delay timer, which only runs once the event loop has nothing
 * else to do) or when 64 KiB are waiting: a reader at the other end of a
 * pipe sees each event as it happens, and a burst still goes out in large
 * writes. A failed write from the timer is kept in `error` and reported
 * through `onError`.
 */
export class EventWriter {
  #text = "";
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #file: SyncWriter;
  readonly #onError: () => void;
  /** The error of a write made from the idle timer, if one failed. */
  error: unknown = undefined;

  constructor(file: SyncWriter, onError: () => void) {
    this.#file = file;
    this.#onError = onError;
  }

  line(text: string): void {
    this.#text += text + "\n";
    if (this.#text.length >= FLUSH_AT) this.flush();
    else this.#timer ??= setTimeout(this.#idle, 0);
  }

  #idle = (): void => {
    this.#timer = undefined;
    try {
      this.flush();
    } catch (error) {
      this.error ??= error;
      this.#onError();
    }
  };

  flush(): void {
    this.close();
    if (this.#text === "") return;
    const bytes = encoder.encode(this.#text);
    this.#text = "";
    writeAll(this.#file, bytes);
  }

  /** Cancels the pending idle write (the text stays). */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Writes `text` to `file`. */
export function writeText(file: SyncWriter, text: string): void {
  writeAll(file, encoder.encode(text));
}

/** How a listing prints its flows: each flow's line, and what comes after the last. */
export interface Listing {
  /** The line of one flow (the first `-o xml` line carries the XML header before it). */
  text(flow: Flow): string;
  /** Writes what follows the last flow: `</conntrack>` after XML that had a flow. */
  end(out: LineWriter): void;
}

/**
 * The listing `-o` asks for: `-o save` lines, `-o xml` elements between
 * conntrack's header and footer (none at all for an empty table, as
 * conntrack), or `text` (the default format or JSON).
 */
export function listing(
  outputs: ReadonlySet<string>,
  format: FormatOptions,
  text: (flow: Flow) => string,
): Listing {
  if (outputs.has("save")) return { text: (flow) => formatSave(flow), end() {} };
  if (!outputs.has("xml")) return { text, end() {} };
  let started = false;
  const options: XmlOptions = { ktimestamp: format.ktimestamp, labelNames: format.labelNames };
  return {
    text(flow) {
      options.now = format.now;
      if (started) return formatXml(flow, options);
      started = true;
      return `${XML_HEADER}\n${formatXml(flow, options)}`;
    },
    end(out) {
      if (started) out.line(XML_FOOTER);
    },
  };
}

/**
 * The line of an entry that get, delete or update prints with `-o save` or
 * `-o xml`, as conntrack prints it: save lines start with `-D` for a
 * deleted entry, else `-A`; XML has no header, but for get, which has one
 * and no footer (conntrack prints `</conntrack>` only after a listing).
 * Undefined without those keywords.
 */
export function commandOutput(
  outputs: ReadonlySet<string>,
  command: string | undefined,
  format: FormatOptions,
): ((flow: Flow) => string) | undefined {
  if (outputs.has("save")) {
    const type = command === "delete" ? "destroy" : "new";
    return (flow) => formatSave(flow, type);
  }
  if (!outputs.has("xml")) return undefined;
  const options: XmlOptions = { ktimestamp: format.ktimestamp, labelNames: format.labelNames };
  let header = command === "get";
  return (flow) => {
    const xml = formatXml(flow, options);
    if (!header) return xml;
    header = false;
    return `${XML_HEADER}\n${xml}`;
  };
}
