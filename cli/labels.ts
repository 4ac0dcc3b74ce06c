/**
 * Connection label names, from the file conntrack-tools reads them from.
 *
 * @module
 */

import { messageLine, type SyncWriter } from "./output.ts";
import { LABEL_FILE } from "./context.ts";
import { UsageError } from "./errors.ts";
import { optionName, type Parsed } from "./options.ts";

/**
 * Label names by bit from connlabel.conf, read as libnetfilter_conntrack
 * does: `BIT NAME` lines (BIT as strtoul base 0, a sign allowed, below 1024), `#` comments,
 * names of letters, digits, spaces and dashes, the first of a bit or name
 * wins. Undefined when no line defines a label.
 */
export function parseLabelMap(text: string): (string | undefined)[] | undefined {
  const names: (string | undefined)[] = [];
  const seen = new Set<string>();
  let added = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    // strtoul(line, &end, 0): spaces, a sign, then decimal, 0x hex or 0 octal.
    const m = /^[ \t\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+)|([1-9][0-9]*)|(0[0-7]*))/.exec(line);
    if (!m) continue;
    const magnitude = m[2] !== undefined
      ? parseInt(m[2], 16)
      : m[3] !== undefined
      ? Number(m[3])
      : parseInt(m[4]!, 8);
    // A negative value wraps around to a huge one, which is no label bit.
    const bit = m[1] === "-" && magnitude !== 0 ? Infinity : magnitude;
    if (!(bit < 1024) || names[bit] !== undefined) continue;
    const name = line.slice(m[0].length).replace(/^[ \t\v\f\r]+|[ \t\v\f\r]+$/g, "");
    if (name === "" || !/^[A-Za-z0-9 -]+$/.test(name) || seen.has(name)) continue;
    names[bit] = name;
    seen.add(name);
    added++;
  }
  return added > 0 ? names : undefined;
}

/** The label names of {@link LABEL_FILE}, or why there are none. */
function readLabelMap(): { names: (string | undefined)[] | undefined; why: string | undefined } {
  const state = Deno.permissions.querySync({ name: "read", path: LABEL_FILE }).state;
  if (state !== "granted") {
    return {
      names: undefined,
      why: `label names not loaded: reading ${LABEL_FILE} needs --allow-read=${LABEL_FILE}`,
    };
  }
  try {
    const names = parseLabelMap(Deno.readTextFileSync(LABEL_FILE));
    return { names, why: names === undefined ? `no label names in ${LABEL_FILE}` : undefined };
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "No such file or directory"
      : error instanceof Error
      ? error.message
      : String(error);
    return { names: undefined, why: `label names not loaded: ${LABEL_FILE}: ${why}` };
  }
}

/**
 * Whether the command line names labels (`-l`, `--label-add`,
 * `--label-del`): then conntrack loads the label names and prints them in
 * listings and updates, as with `-o labels`.
 */
export function usesLabels(parsed: Pick<Parsed, "lists" | "flags">): boolean {
  return ["label", "labelAdd", "labelDel"].some((key) =>
    parsed.lists.has(key) || parsed.flags.has(key)
  );
}

/** The label names of {@link LABEL_FILE}, with a warning on `stderr` when there are none. */
export function loadLabelMap(stderr: SyncWriter): (string | undefined)[] | undefined {
  const { names, why } = readLabelMap();
  if (why !== undefined) messageLine(stderr, `ctnl: warning: ${why}`);
  return names;
}

/**
 * The label bits that the `LABEL[,LABEL…]` lists of option `key` name (as
 * conntrack's `-l`, `--label-add`, `--label-del`); an unknown name is a
 * {@link UsageError}, as conntrack's "unknown label".
 */
export function labelBits(key: string, lists: readonly string[]): number[] {
  let names: (string | undefined)[] | undefined;
  let why: string | undefined;
  const bits = new Set<number>();
  for (const list of lists) {
    for (const name of list.split(",")) {
      if (names === undefined && why === undefined) ({ names, why } = readLabelMap());
      const bit = names?.indexOf(name) ?? -1;
      if (bit < 0) {
        throw new UsageError(
          `unknown label "${name}" for ${optionName(key)}${why === undefined ? "" : ` (${why})`}`,
        );
      }
      bits.add(bit);
    }
  }
  return [...bits].sort((a, b) => a - b);
}
