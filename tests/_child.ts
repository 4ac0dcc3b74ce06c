/**
 * Child processes of the tests of `ctnl events --json` and friends: their
 * stdout read as JSON lines as they come, and killing what is left.
 *
 * @module
 */

/** Kills `child` (if it is still there) and waits for it. */
export async function killChild(child: Deno.ChildProcess | undefined): Promise<void> {
  if (child === undefined) return;
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  await child.status;
}

/** The fields of an event line (`ctnl events --json`) the tests read. */
export interface EventLine {
  event: string;
  netns?: string;
  resync?: boolean;
  family: string;
  orig: {
    src: string;
    dst: string;
    protocol: number;
    srcPort?: number;
    dstPort?: number;
    icmpId?: number;
    icmpType?: number;
    icmpCode?: number;
  };
  zone?: number;
  id?: number;
  mark?: number;
  tcp?: { stateName: string };
}

/** Calls `onObject` with each JSON line of `stdout`; resolves when it ends. */
export async function readJsonLines(
  stdout: ReadableStream<Uint8Array>,
  onObject: (o: EventLine) => void,
): Promise<void> {
  let rest = "";
  for await (const chunk of stdout.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const line of lines) onObject(JSON.parse(line));
  }
}
