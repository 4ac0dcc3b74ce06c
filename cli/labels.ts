/**
 * Connection label names, from the file conntrack-tools reads them from.
 *
 * @module
 */

import { messageLine, type SyncWriter } from "./output.ts";
import { LABEL_FILE } from "./context.ts";

/**
 * Label names by bit from connlabel.conf, read as libnetfilter_conntrack
 * does: `BIT NAME` lines (BIT as strtoul base 0, below 1024), `#` comments,
 * names of letters, digits, spaces and dashes, the first of a bit or name
 * wins. Undefined when no line defines a label.
 */
export function parseLabelMap(text: string): (string | undefined)[] | undefined {
  const names: (string | undefined)[] = [];
  const seen = new Set<string>();
  let added = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^[ \t\v\f\r]*(?:0[xX]([0-9a-fA-F]+)|([1-9][0-9]*)|(0[0-7]*))/.exec(line);
    if (!m) continue;
    const bit = m[1] !== undefined
      ? parseInt(m[1], 16)
      : m[2] !== undefined
      ? Number(m[2])
      : parseInt(m[3]!, 8);
    if (!(bit < 1024) || names[bit] !== undefined) continue;
    const name = line.slice(m[0].length).replace(/^[ \t\v\f\r]+|[ \t\v\f\r]+$/g, "");
    if (name === "" || !/^[A-Za-z0-9 -]+$/.test(name) || seen.has(name)) continue;
    names[bit] = name;
    seen.add(name);
    added++;
  }
  return added > 0 ? names : undefined;
}

/** The label names of {@link LABEL_FILE}, with a warning on `stderr` when there are none. */
export function loadLabelMap(stderr: SyncWriter): (string | undefined)[] | undefined {
  const state = Deno.permissions.querySync({ name: "read", path: LABEL_FILE }).state;
  if (state !== "granted") {
    messageLine(
      stderr,
      `ctnl: warning: label names not loaded: reading ${LABEL_FILE} needs --allow-read=${LABEL_FILE}`,
    );
    return undefined;
  }
  try {
    const map = parseLabelMap(Deno.readTextFileSync(LABEL_FILE));
    if (map === undefined) messageLine(stderr, `ctnl: warning: no label names in ${LABEL_FILE}`);
    return map;
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "No such file or directory"
      : error instanceof Error
      ? error.message
      : String(error);
    messageLine(stderr, `ctnl: warning: label names not loaded: ${LABEL_FILE}: ${why}`);
    return undefined;
  }
}
