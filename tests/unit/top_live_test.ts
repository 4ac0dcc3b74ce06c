/**
 * The live view's state machine without a terminal or a kernel: a fake
 * screen (keys in, frames out) and a fake table (dump, delete). Keys change
 * the sort, pause, select and delete with confirmation; the screen is given
 * back exactly once however the run ends — `q`, end of input, or an error
 * thrown by the table in the middle of a refresh.
 */

import assert from "node:assert/strict";
import { ERRNO, type Flow, NetlinkError, newFlow } from "../../mod.ts";
import { runTop, type TopIo, type TopSettings } from "../../cli/top/app.ts";
import type { TopScreen } from "../../cli/top/terminal.ts";

class FakeScreen implements TopScreen {
  frames: string[][] = [];
  restored = 0;
  drawnAfterRestore = 0;
  #keys: (string[] | null)[] = [];
  #wakeKeys: (() => void) | undefined;
  #wakeDraw: (() => void) | undefined;

  size() {
    return { columns: 140, rows: 20 };
  }
  draw(lines: readonly string[]) {
    if (this.restored > 0) this.drawnAfterRestore++;
    this.frames.push([...lines]);
    this.#wakeDraw?.();
  }
  write() {}
  async keys(): Promise<string[] | null> {
    while (this.#keys.length === 0) await new Promise<void>((r) => this.#wakeKeys = r);
    return this.#keys.shift()!;
  }
  press(...keys: string[]) {
    this.#keys.push(keys);
    this.#wakeKeys?.();
  }
  end() {
    this.#keys.push(null);
    this.#wakeKeys?.();
  }
  restore() {
    this.restored++;
  }
  get last(): string[] {
    return this.frames.at(-1) ?? [];
  }
  /** Waits for a frame that passes `test`. */
  async until(what: string, test: (lines: string[]) => boolean): Promise<string[]> {
    const end = Date.now() + 5000;
    while (!test(this.last)) {
      if (Date.now() > end) throw new Error(`no frame with ${what}:\n${this.last.join("\n")}`);
      await new Promise<void>((r) => {
        this.#wakeDraw = r;
        setTimeout(r, 50);
      });
    }
    return this.last;
  }
}

function flow(id: number, bytes: number): Flow {
  const f = newFlow("ipv4");
  f.id = id;
  f.orig = {
    ...f.orig,
    src: "10.0.0.1",
    dst: `10.0.0.${id}`,
    protocol: 17,
    srcPort: 1000 + id,
    dstPort: 53,
  };
  f.countersOrig = { bytes: BigInt(bytes), packets: BigInt(bytes / 100) };
  f.countersReply = { bytes: 0n, packets: 0n };
  f.timeout = 30;
  return f;
}

/** A table: every pass grows flow i by i kB; `failOn` makes that pass throw midway. */
class FakeTable {
  flows = [1, 2, 3, 4, 5].map((i) => flow(i, 0));
  passes = 0;
  deleted: Flow[] = [];
  failOn: number | undefined;
  deleteError: unknown;

  dump(): AsyncIterableIterator<Flow> {
    const pass = ++this.passes;
    this.flows = this.flows.map((f) => flow(f.id!, Number(f.countersOrig!.bytes) + f.id! * 1000));
    const flows = this.flows, failOn = this.failOn;
    return (async function* () {
      for (const [i, f] of flows.entries()) {
        if (pass === failOn && i === 2) throw new Error("the table went away");
        yield f;
      }
    })();
  }
  delete(ref: unknown): Promise<void> {
    if (this.deleteError !== undefined) return Promise.reject(this.deleteError);
    const f = ref as Flow;
    this.deleted.push(f);
    this.flows = this.flows.filter((x) => x.id !== f.id);
    return Promise.resolve();
  }
}

const SETTINGS: TopSettings = {
  interval: 0.05,
  once: false,
  rows: undefined,
  sort: "rate",
  by: [],
  groupBy: [],
  filter: {},
  keep: undefined,
};

function start(table: FakeTable, screen: FakeScreen): Promise<number> {
  const stdout = { writeSync: (p: Uint8Array) => p.length };
  const io: TopIo = {
    ct: table as unknown as TopIo["ct"],
    stdout,
    interactive: true,
    color: false,
    size: undefined,
    screen: () => screen,
  };
  return runTop(SETTINGS, io);
}

const rowsOf = (lines: string[]) => lines.slice(5);
const ready = (l: string[]) => l[1] === "sort: bytes/s, biggest first" && rowsOf(l).length === 5;

Deno.test("live: sort, select, delete with confirmation, pause, quit; the screen given back once", async () => {
  const table = new FakeTable(), screen = new FakeScreen();
  const done = start(table, screen);
  let lines = await screen.until("rates", ready);
  // Flow i grows by i kB a pass: busiest first, flow 5 selected.
  assert.match(rowsOf(lines)[0]!, /^> udp +10\.0\.0\.1:1005 +10\.0\.0\.5:53 /);
  screen.press("s");
  await screen.until("sort by pkts/s", (l) => l[1]!.startsWith("sort: pkts/s"));
  screen.press("r");
  lines = await screen.until("reversed", (l) => l[1]!.startsWith("sort: pkts/s, smallest first"));
  assert.match(rowsOf(lines)[0]!, /10\.0\.0\.1:53 /);
  screen.press("S", "r"); // back to bytes/s, biggest first
  await screen.until("bytes/s again", ready);
  // Down one row (flow 4), d asks, n keeps it, d y deletes it.
  screen.press("j");
  lines = await screen.until("flow 4 selected", (l) => rowsOf(l)[1]?.startsWith(">") ?? false);
  assert.match(rowsOf(lines)[1]!, /10\.0\.0\.4:53/);
  screen.press("d");
  lines = await screen.until("the question", (l) => l[3]!.startsWith("Delete this flow? [y/N] "));
  assert.match(lines[3]!, /src=10\.0\.0\.1 dst=10\.0\.0\.4 sport=1004 dport=53/);
  screen.press("n");
  await screen.until("not deleted", (l) => l[3] === "not deleted");
  assert.equal(table.deleted.length, 0);
  screen.press("d");
  await screen.until("the question", (l) => l[3]!.startsWith("Delete this flow? [y/N] "));
  screen.press("y");
  lines = await screen.until(
    "deleted",
    (l) => l[3] === "deleted flow id 4" && rowsOf(l).length === 4,
  );
  assert.deepEqual(table.deleted.map((f) => f.id), [4]);
  assert(!lines.some((l) => l.includes("10.0.0.4:53")));
  // Pause: the table is not read.
  screen.press(" ");
  await screen.until("PAUSED", (l) => l[0]!.includes(" - PAUSED - "));
  const passes = table.passes;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(table.passes, passes, "no pass while paused");
  screen.press(" ");
  await screen.until("running", (l) => !l[0]!.includes("PAUSED"));
  assert(table.passes > passes);
  screen.press("q");
  assert.equal(await done, 0);
  assert.equal(screen.restored, 1);
  assert.equal(screen.drawnAfterRestore, 0);
});

Deno.test("live: an error in the middle of a refresh gives the screen back, then is thrown", async () => {
  const table = new FakeTable(), screen = new FakeScreen();
  table.failOn = 3;
  await assert.rejects(start(table, screen), /the table went away/);
  assert.equal(screen.restored, 1);
  assert.equal(screen.drawnAfterRestore, 0);
});

Deno.test("live: the end of input quits; a flow already gone is said so", async () => {
  const table = new FakeTable(), screen = new FakeScreen();
  table.deleteError = new NetlinkError("delete", ERRNO.ENOENT, {});
  const done = start(table, screen);
  await screen.until("rates", ready);
  screen.press("d");
  await screen.until("the question", (l) => l[3]!.startsWith("Delete this flow?"));
  screen.press("y");
  await screen.until("gone", (l) => l[3] === "the flow was already gone");
  screen.end();
  assert.equal(await done, 0);
  assert.equal(screen.restored, 1);
});
