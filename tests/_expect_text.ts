/**
 * What the expectation tests compare: lines of conntrack-style output with
 * their countdowns masked (an expectation's leading timeout, after any
 * `[NEW]`; a flow's timeout), for the unit and the kernel tests alike.
 *
 * @module
 */

/** `text`'s or `lines`' non-empty lines, countdowns masked; sorted unless `ordered`. */
export function masked(text: string | string[], ordered = false): string[] {
  const lines = (typeof text === "string" ? text.split("\n") : text).filter((l) => l !== "")
    .map((l) =>
      l.replace(/^((?:\s*\[\w+\] )?)\d+ proto=/, "$1T proto=").replace(/^(\w+ +\d+ )\d+ /, "$1T ")
    );
  return ordered ? lines : lines.sort();
}
