/**
 * POSIX TZ strings applied as glibc applies them (the values below are what
 * `TZ=… date -d @SECONDS` printed with glibc), for `-o ktimestamp` and the
 * XML `<when>`.
 */

import assert from "node:assert/strict";
import { parsePosixTz, posixOffset } from "../../src/tz.ts";

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `date '+%a %b %e %H:%M:%S %Y'` of `seconds` under `tz`. */
function dateText(tz: string, seconds: number): string {
  const zone = parsePosixTz(tz);
  assert(zone, tz);
  const d = new Date((seconds + posixOffset(zone, seconds)) * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${
    p(d.getUTCHours())
  }:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

const GLIBC: [string, number, string][] = [
  ["IST-5:30", 1700000000, "Wed Nov 15 03:43:20 2023"],
  ["IST-5:30", 1720000000, "Wed Jul  3 15:16:40 2024"],
  ["CET-1CEST,M3.5.0,M10.5.0/3", 1700000000, "Tue Nov 14 23:13:20 2023"],
  ["CET-1CEST,M3.5.0,M10.5.0/3", 1720000000, "Wed Jul  3 11:46:40 2024"],
  ["CET-1CEST,M3.5.0,M10.5.0/3", 1711846799, "Sun Mar 31 01:59:59 2024"],
  ["CET-1CEST,M3.5.0,M10.5.0/3", 1711846800, "Sun Mar 31 03:00:00 2024"],
  ["<+0330>-3:30", 1700000000, "Wed Nov 15 01:43:20 2023"],
  ["EST5EDT,M3.2.0,M11.1.0", 1700000000, "Tue Nov 14 17:13:20 2023"],
  ["EST5EDT,M3.2.0,M11.1.0", 1720000000, "Wed Jul  3 05:46:40 2024"],
  ["AEST-10AEDT,M10.1.0,M4.1.0/3", 1700000000, "Wed Nov 15 09:13:20 2023"],
  ["AEST-10AEDT,M10.1.0,M4.1.0/3", 1720000000, "Wed Jul  3 19:46:40 2024"],
  ["AEST-10AEDT,M10.1.0,M4.1.0/3", 1711846800, "Sun Mar 31 12:00:00 2024"],
];

Deno.test("POSIX TZ strings give glibc's local time", () => {
  for (const [tz, seconds, text] of GLIBC) {
    assert.equal(dateText(tz, seconds), text, `${tz} ${seconds}`);
  }
});

Deno.test("what is not a POSIX TZ string is refused", () => {
  for (
    const tz of [
      "",
      "IS-5",
      "IST",
      "IST-25",
      "<+03>",
      "CET-1CEST,M3.5.0",
      "CET-1CEST,M13.1.0,M10.5.0",
      "EST5EDT,",
    ]
  ) {
    assert.equal(parsePosixTz(tz), undefined, tz);
  }
  assert.deepEqual(parsePosixTz("IST-5:30"), { std: 19800, dst: undefined });
  assert.equal(parsePosixTz("EST5EDT")?.dst?.offset, -4 * 3600); // US rules by default
});
