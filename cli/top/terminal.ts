/**
 * The terminal under `ctnl top`, with plain ANSI escapes: raw mode, the
 * alternate screen, the hidden cursor, its size, keys as names, and the way
 * back (idempotent: on quit, Ctrl-C, SIGTERM and errors alike).
 *
 * @module
 */

/**
 * The key names in `bytes` (what one read of a raw terminal gave): printable
 * characters as themselves, and `up`, `down`, `pageup`, `pagedown`, `home`,
 * `end`, `enter`, `escape`, `backspace`, `tab`, `ctrl-c`, `ctrl-l`.
 *
 * @example
 * ```ts
 * import { parseKeys } from "./terminal.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * deepEqual(parseKeys(new TextEncoder().encode("q\x1b[A\x1b[6~\r\x1b\x03")), [
 *   "q", "up", "pagedown", "enter", "escape", "ctrl-c",
 * ]);
 * ```
 */
export function parseKeys(bytes: Uint8Array): string[] {
  const text = new TextDecoder().decode(bytes);
  const keys: string[] = [];
  const CSI: Record<string, string> = {
    "A": "up",
    "B": "down",
    "H": "home",
    "F": "end",
    "5~": "pageup",
    "6~": "pagedown",
    "1~": "home",
    "4~": "end",
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "\x1b") {
      const m = /^[[O]([0-9;]*[A-Za-z~])/.exec(text.slice(i + 1));
      if (m) {
        keys.push(CSI[m[1]!] ?? "unknown");
        i += m[0].length;
      } else {
        keys.push("escape");
      }
      continue;
    }
    const code = c.charCodeAt(0);
    if (c === "\r" || c === "\n") keys.push("enter");
    else if (code === 0x7f || code === 0x08) keys.push("backspace");
    else if (c === "\t") keys.push("tab");
    else if (code === 0x03) keys.push("ctrl-c");
    else if (code === 0x0c) keys.push("ctrl-l");
    else if (code >= 0x20) keys.push(c);
  }
  return keys;
}

const encoder = new TextEncoder();
const ENTER = "\x1b[?1049h\x1b[?25l"; // alternate screen, hide the cursor
const LEAVE = "\x1b[0m\x1b[?25h\x1b[?1049l"; // attributes off, show the cursor, main screen

/** What the live view draws on and reads keys from: the terminal ({@link Screen}), or a test's. */
export interface TopScreen {
  /** Columns and rows. */
  size(): { columns: number; rows: number };
  /** Draws `lines` from the top left. */
  draw(lines: readonly string[]): void;
  /** Writes raw text (escape sequences). */
  write(text: string): void;
  /** The next keys; null at the end of input. */
  keys(): Promise<string[] | null>;
  /** Gives the terminal back as it was; safe to call twice. */
  restore(): void;
}

/** The terminal on stdin and stdout, taken over until {@link Screen.restore}. */
export class Screen implements TopScreen {
  #restored = false;

  private constructor() {}

  /** Raw mode on stdin, the alternate screen, the cursor hidden. */
  static open(): Screen {
    Deno.stdin.setRaw(true, { cbreak: false });
    const screen = new Screen();
    screen.write(ENTER);
    return screen;
  }

  /** Columns and rows (80×24 if the terminal does not say). */
  size(): { columns: number; rows: number } {
    try {
      const { columns, rows } = Deno.consoleSize();
      if (columns > 0 && rows > 0) return { columns, rows };
    } catch { /* not a terminal any more */ }
    return { columns: 80, rows: 24 };
  }

  /**
   * Draws `lines` from the top left, clearing what is left of each line and
   * below, as one synchronized update (mode 2026: terminals that know it
   * show the frame whole, the others ignore it).
   */
  draw(lines: readonly string[]): void {
    this.write(`\x1b[?2026h\x1b[H${lines.join("\x1b[K\r\n")}\x1b[K\x1b[J\x1b[?2026l`);
  }

  write(text: string): void {
    const bytes = encoder.encode(text);
    let offset = 0;
    while (offset < bytes.length) offset += Deno.stdout.writeSync(bytes.subarray(offset));
  }

  /** Reads the next keys (waits without blocking the event loop); null at the end of input. */
  async keys(): Promise<string[] | null> {
    const buf = new Uint8Array(256);
    const n = await Deno.stdin.read(buf);
    return n === null ? null : parseKeys(buf.subarray(0, n));
  }

  /** Main screen, cursor shown, raw mode off. Safe to call twice. */
  restore(): void {
    if (this.#restored) return;
    this.#restored = true;
    try {
      this.write(LEAVE);
    } catch { /* stdout gone */ }
    try {
      Deno.stdin.setRaw(false);
    } catch { /* stdin gone */ }
  }
}
