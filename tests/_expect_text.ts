/**
 * What the expectation tests compare: lines of conntrack-style output with
 * their clocks masked (an expectation's leading timeout, after any
 * `[NEW]`; a flow's timeout and `delta-time=`), for the unit and the kernel
 * tests alike.
 *
 * @module
 */

/** `text`'s or `lines`' non-empty lines, countdowns masked; sorted unless `ordered`. */
export function masked(text: string | string[], ordered = false): string[] {
  const lines = (typeof text === "string" ? text.split("\n") : text).filter((l) => l !== "")
    .map((l) =>
      l.replace(/^((?:\s*\[\w+\] )?)\d+ proto=/, "$1T proto=").replace(/^(\w+ +\d+ )\d+ /, "$1T ")
        .replace(/ delta-time=\d+/, " delta-time=T")
    );
  return ordered ? lines : lines.sort();
}
