import type { CpuStats } from "../mod.ts";

export const encoder = new TextEncoder();
export const FLUSH_AT = 64 * 1024;

export function writeAll(file: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += file.writeSync(bytes.subarray(offset));
}

/** Buffers lines for stdout and writes them in ~64 KiB chunks. */
export class LineWriter {
  // One reused buffer: lines are encoded straight into it and written out in
  // large chunks, so output allocates nothing per line or per chunk.
  #buf = new Uint8Array(4 * FLUSH_AT);
  #used = 0;

  line(text: string): void {
    const most = text.length * 3 + 1; // UTF-8 bytes at most
    if (this.#used + most > this.#buf.length) {
      this.flush();
      if (most > this.#buf.length) {
        writeAll(Deno.stdout, encoder.encode(text + "\n"));
        return;
      }
    }
    this.#used += encoder.encodeInto(text, this.#buf.subarray(this.#used)).written;
    this.#buf[this.#used++] = 10;
  }

  flush(): void {
    if (this.#used === 0) return;
    const used = this.#used;
    this.#used = 0;
    writeAll(Deno.stdout, this.#buf.subarray(0, used));
  }
}

export function stderrLine(text: string): void {
  try {
    writeAll(Deno.stderr, encoder.encode(text.replace(/\s*\n\s*/g, " ") + "\n"));
  } catch {
    // Nowhere left to report it.
  }
}

/** The text of one stats object for `--json`: undefined fields left out. */
export function statsJson(stats: CpuStats[]): string {
  return JSON.stringify({ cpus: stats });
}

/**
 * Event lines for stdout. They are written as soon as the stream goes idle
 * (a zero-delay timer, which only runs once the event loop has nothing
 * else to do) or when 64 KiB are waiting: a reader at the other end of a
 * pipe sees each event as it happens, and a burst still goes out in large
 * writes. A failed write from the timer is kept in `error` and reported
 * through `onError`.
 */
export class EventWriter {
  #text = "";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #onError: () => void;
  /** The error of a write made from the idle timer, if one failed. */
  error: unknown = undefined;

  constructor(onError: () => void) {
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
    writeAll(Deno.stdout, bytes);
  }

  /** Cancels the pending idle write (the text stays). */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

export function writeText(text: string): void {
  writeAll(Deno.stdout, encoder.encode(text));
}
