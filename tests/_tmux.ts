/**
 * A real terminal for tests: a tmux server of its own (`tmux -L NAME`, so
 * nobody else's sessions are touched), one window of a fixed size running a
 * plain bash, keys sent with `send-keys`, the screen read with
 * `capture-pane -p`.
 *
 * @module
 */

import { must, run } from "./_ns.ts";

/** One tmux server with one session, killed by {@link Tmux.close}. */
export class Tmux {
  readonly socket: string;

  private constructor(socket: string) {
    this.socket = socket;
  }

  /** Starts a server and a `columns`×`rows` session running `bash --norc` with the prompt `$ `. */
  static async start(columns: number, rows: number): Promise<Tmux> {
    const t = new Tmux(`ctnl-test-top-${Deno.pid}-${Math.floor(Math.random() * 1e6)}`);
    await must([
      "tmux",
      "-L",
      t.socket,
      "-f",
      "/dev/null",
      "new-session",
      "-d",
      "-s",
      "t",
      "-x",
      String(columns),
      "-y",
      String(rows),
      "env",
      "-i",
      `PATH=${Deno.env.get("PATH")}`,
      "TERM=xterm-256color",
      "LANG=C.UTF-8",
      ...["HOME", "DENO_DIR"].flatMap((k) => {
        const v = Deno.env.get(k);
        return v === undefined ? [] : [`${k}=${v}`];
      }),
      "PS1=$ ",
      "bash",
      "--norc",
      "--noprofile",
    ]);
    await t.tmux("set-option", "-g", "window-size", "manual");
    return t;
  }

  /** Runs a tmux command on this server. */
  tmux(...args: string[]): Promise<string> {
    return must(["tmux", "-L", this.socket, ...args]);
  }

  /** Types `keys` (tmux key names: `Enter`, `Up`, `C-c`, or text with `-l`). */
  async keys(...keys: string[]): Promise<void> {
    await this.tmux("send-keys", "-t", "t", ...keys);
  }

  /** Types `text` literally, then Enter. */
  async line(text: string): Promise<void> {
    await this.tmux("send-keys", "-t", "t", "-l", text);
    await this.tmux("send-keys", "-t", "t", "Enter");
  }

  /** The screen's lines (trailing blank lines dropped); with `escapes`, SGR included. */
  async screen(escapes = false): Promise<string[]> {
    const text = await this.tmux("capture-pane", "-p", ...(escapes ? ["-e"] : []), "-t", "t");
    return text.replace(/\n+$/, "").split("\n");
  }

  /** A pane format variable: `alternate_on`, `cursor_flag`, `pane_width`, `pane_pid`. */
  async pane(name: string): Promise<string> {
    return (await this.tmux("display-message", "-p", "-t", "t", `#{${name}}`)).trim();
  }

  /**
   * Waits until `test` holds for the screen, seen the same twice in a row
   * (looking every `every` ms); throws with the screen after `ms`.
   */
  async until(
    what: string,
    test: (lines: string[]) => boolean,
    ms = 20_000,
    every = 200,
  ): Promise<string[]> {
    const end = Date.now() + ms;
    let lines: string[] = [];
    while (Date.now() < end) {
      lines = await this.screen();
      if (test(lines)) {
        // A capture may catch a frame half drawn: trust it only if the next one is the same.
        await new Promise((r) => setTimeout(r, 30));
        const again = await this.screen();
        if (again.join("\n") === lines.join("\n")) return lines;
        continue;
      }
      await new Promise((r) => setTimeout(r, every));
    }
    throw new Error(`timed out waiting for ${what}; the screen:\n${lines.join("\n")}`);
  }

  /** Resizes the window. */
  async resize(columns: number, rows: number): Promise<void> {
    await this.tmux("resize-window", "-t", "t", "-x", String(columns), "-y", String(rows));
  }

  /** Kills this server (and what runs in it) and removes its socket. */
  async close(): Promise<void> {
    const path = (await run(["tmux", "-L", this.socket, "display-message", "-p", "#{socket_path}"]))
      .stdout.trim();
    await run(["tmux", "-L", this.socket, "kill-server"]);
    if (path.endsWith(`/${this.socket}`)) await Deno.remove(path).catch(() => {});
  }
}
