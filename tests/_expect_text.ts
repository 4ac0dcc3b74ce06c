/**
 * What the expectation tests compare: lines of conntrack-style output with
 * their clocks masked (an expectation's leading timeout, after any
 * `[NEW]`, or its XML `<timeout>`; a flow's timeout and `delta-time=`; an
 * XML `<when>`), for the unit and the kernel tests alike.
 *
 * @module
 */

/** `text`'s or `lines`' non-empty lines, countdowns masked; sorted unless `ordered`. */
export function masked(text: string | string[], ordered = false): string[] {
  const lines = (typeof text === "string" ? text.split("\n") : text).filter((l) => l !== "")
    .map((l) =>
      l.replace(/^((?:\s*\[\w+\] )?)\d+ proto=/, "$1T proto=").replace(/^(\w+ +\d+ )\d+ /, "$1T ")
        .replace(/ delta-time=\d+/, " delta-time=T").replace(/<timeout>\d+</, "<timeout>T<")
        .replace(/<when>.*<\/when>/, "<when>T</when>")
    );
  return ordered ? lines : lines.sort();
}
