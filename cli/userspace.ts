/**
 * conntrack's `[USERSPACE] portid=N progname=NAME` suffix of an event a
 * program caused: the netlink port id the kernel names as the sender, and
 * the name of the process holding that socket, found as conntrack-tools
 * 1.4.7 finds it (`get_progname`): the socket's inode from
 * `/proc/net/netlink`, then the process with `socket:[INODE]` among its
 * file descriptors (first the one whose pid is the port id), then the
 * name in its `/proc/PID/stat`. Deno opens `/proc` only with `--allow-all`; without it
 * (or for a process gone meanwhile) the suffix has no progname, as with
 * conntrack when it cannot tell.
 *
 * @module
 */

const NETLINK_NETFILTER = 12;

/** Reads a text file, or undefined when it cannot be read. */
function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

/** The inode of the netfilter netlink socket bound to `portId` in a `/proc/…/net/netlink` table. */
function socketInode(table: string, portId: number): string | undefined {
  // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
  for (const line of table.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || Number(f[1]) !== NETLINK_NETFILTER) continue;
    if (Number(f[2]) === portId) return f[9];
  }
  return undefined;
}

/** The name in `/proc/PID/stat` (between the first `(` and the next `)`). */
function processName(pid: string): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  const m = stat === undefined ? null : /^\d+ \(([^)]*)/.exec(stat);
  return m ? m[1] : undefined;
}

/** Whether process `pid` has `socket:[inode]` open. */
function holds(pid: string, inode: string): boolean {
  const wanted = `socket:[${inode}]`;
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
      if (!entry.isSymlink) continue;
      try {
        if (Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`) === wanted) return true;
      } catch { /* closed meanwhile */ }
    }
  } catch { /* gone, or not ours to read */ }
  return false;
}

/** The pids in /proc (above 1), except `skip`. */
function* pids(skip: string): Generator<string> {
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      if (entry.isDirectory && /^\d+$/.test(entry.name) && Number(entry.name) > 1) {
        if (entry.name !== skip) yield entry.name;
      }
    }
  } catch { /* no /proc */ }
}

/** The inode number of a file, or undefined. */
function inodeOf(path: string): number | undefined {
  try {
    return Deno.statSync(path).ino ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * Finds the name of the program behind netlink port ids, as conntrack
 * does, remembering the last answer (per port id and socket inode).
 */
export class ProgramNames {
  #last: { portId: number; inode: string; name: string | undefined } | undefined;
  readonly #netns: string | undefined;
  #tablePid: string | undefined;

  /** `netns`: the path of the namespace the events come from (undefined: ctnl's own). */
  constructor(netns: string | undefined) {
    this.#netns = netns;
  }

  /** `/proc/PID/net/netlink` of a process in the events' namespace (ctnl's own by default). */
  #table(portId: number): string | undefined {
    if (this.#netns === undefined) return readText("/proc/self/net/netlink");
    const ns = inodeOf(this.#netns);
    if (ns === undefined) return undefined;
    const inNs = (pid: string) => inodeOf(`/proc/${pid}/ns/net`) === ns;
    if (this.#tablePid === undefined || !inNs(this.#tablePid)) {
      this.#tablePid = undefined;
      const first = String(portId);
      if (inNs(first)) this.#tablePid = first;
      else for (const pid of pids(first)) if (inNs(pid)) this.#tablePid = pid;
    }
    return this.#tablePid === undefined
      ? undefined
      : readText(`/proc/${this.#tablePid}/net/netlink`);
  }

  /** The program holding the netfilter netlink socket `portId`, or undefined. */
  name(portId: number): string | undefined {
    const table = this.#table(portId);
    const inode = table === undefined ? undefined : socketInode(table, portId);
    if (inode === undefined) return undefined;
    const last = this.#last;
    if (last !== undefined && last.portId === portId && last.inode === inode) return last.name;
    let name: string | undefined;
    // Many programs' first netlink port id is their pid.
    const first = String(portId);
    if (holds(first, inode)) name = processName(first);
    else {
      for (const pid of pids(first)) {
        if (holds(pid, inode)) {
          name = processName(pid);
          break;
        }
      }
    }
    this.#last = { portId, inode, name };
    return name;
  }

  /** conntrack's suffix for an event sent by `portId` (0: the kernel, no suffix). */
  suffix(portId: number): string {
    if (portId === 0) return "";
    const name = this.name(portId);
    return name === undefined
      ? ` [USERSPACE] portid=${portId}`
      : ` [USERSPACE] portid=${portId} progname=${name}`;
  }
}
