/**
 * Local time as C's `localtime()` gives it for a POSIX `TZ` string
 * (`IST-5:30`, `EST5EDT,M3.2.0,M11.1.0`, `CET-1CEST,M3.5.0,M10.5.0/3`,
 * `<+0330>-3:30`), which glibc understands and the JavaScript engine does
 * not (it falls back to UTC). Zone names it knows (`Europe/Paris`) are
 * left to it.
 *
 * @module
 */

/** A transition rule of a POSIX TZ string: `Jn`, `n` or `Mm.w.d`, with its time of day. */
type Rule =
  | { kind: "julian"; day: number; time: number }
  | { kind: "day"; day: number; time: number }
  | { kind: "month"; month: number; week: number; weekday: number; time: number };

/** A parsed POSIX TZ string; offsets in seconds east of UTC. */
export interface PosixTz {
  /** Standard time's offset. */
  std: number;
  /** Daylight time's offset and when it starts and ends, if the zone has one. */
  dst: { offset: number; start: Rule; end: Rule } | undefined;
}

/** A reader over the TZ string, glibc's tzset grammar. */
class Reader {
  at = 0;
  constructor(readonly s: string) {}

  name(): boolean {
    const s = this.s;
    if (s[this.at] === "<") {
      const end = s.indexOf(">", this.at);
      if (end < 0 || end - this.at - 1 < 3 || !/^[A-Za-z0-9+-]+$/.test(s.slice(this.at + 1, end))) {
        return false;
      }
      this.at = end + 1;
      return true;
    }
    const m = /^[A-Za-z]{3,}/.exec(s.slice(this.at));
    if (!m) return false;
    this.at += m[0].length;
    return true;
  }

  /** `[+-]hh[:mm[:ss]]` in seconds, or undefined; `maxHours` bounds the hours. */
  time(maxHours: number): number | undefined {
    const m = /^([+-]?)(\d{1,3})(?::(\d{1,2})(?::(\d{1,2}))?)?/.exec(this.s.slice(this.at));
    if (!m) return undefined;
    const hours = Number(m[2]), minutes = Number(m[3] ?? 0), seconds = Number(m[4] ?? 0);
    if (hours > maxHours || minutes > 59 || seconds > 59) return undefined;
    this.at += m[0].length;
    const value = hours * 3600 + minutes * 60 + seconds;
    return m[1] === "-" ? -value : value;
  }

  rule(): Rule | undefined {
    const rest = this.s.slice(this.at);
    let rule: Rule;
    let m: RegExpExecArray | null;
    if ((m = /^M(\d{1,2})\.(\d)\.(\d)/.exec(rest))) {
      const [month, week, weekday] = [Number(m[1]), Number(m[2]), Number(m[3])];
      if (month < 1 || month > 12 || week < 1 || week > 5 || weekday > 6) return undefined;
      rule = { kind: "month", month, week, weekday, time: 7200 };
    } else if ((m = /^J(\d{1,3})/.exec(rest))) {
      const day = Number(m[1]);
      if (day < 1 || day > 365) return undefined;
      rule = { kind: "julian", day, time: 7200 };
    } else if ((m = /^(\d{1,3})/.exec(rest))) {
      const day = Number(m[1]);
      if (day > 365) return undefined;
      rule = { kind: "day", day, time: 7200 };
    } else return undefined;
    this.at += m[0].length;
    if (this.s[this.at] === "/") {
      this.at++;
      const time = this.time(167);
      if (time === undefined) return undefined;
      rule.time = time;
    }
    return rule;
  }
}

/**
 * Parses a POSIX TZ string as glibc does (`std offset [dst [offset] [,start[/time],end[/time]]]`),
 * or returns undefined when it is not one. Without rules, daylight time
 * follows the US rules (glibc's default, `M3.2.0,M11.1.0`).
 */
export function parsePosixTz(tz: string): PosixTz | undefined {
  const r = new Reader(tz);
  if (!r.name()) return undefined;
  const stdWest = r.time(24);
  if (stdWest === undefined) return undefined;
  const std = -stdWest;
  if (r.at === tz.length) return { std, dst: undefined };
  if (!r.name()) return undefined;
  let offset = std + 3600;
  if (r.at < tz.length && tz[r.at] !== ",") {
    const west = r.time(24);
    if (west === undefined) return undefined;
    offset = -west;
  }
  let start: Rule = { kind: "month", month: 3, week: 2, weekday: 0, time: 7200 };
  let end: Rule = { kind: "month", month: 11, week: 1, weekday: 0, time: 7200 };
  if (r.at < tz.length) {
    r.at++; // ","
    const a = r.rule();
    if (a === undefined || tz[r.at] !== ",") return undefined;
    r.at++;
    const b = r.rule();
    if (b === undefined || r.at !== tz.length) return undefined;
    [start, end] = [a, b];
  }
  return { std, dst: { offset, start, end } };
}

const DAY = 86400;

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** Seconds from the start of `year` (UTC) to local midnight of the rule's day, plus its time. */
function ruleSeconds(rule: Rule, year: number): number {
  switch (rule.kind) {
    case "julian": {
      // 1..365, February 29 never counted.
      const day = rule.day - 1 + (isLeap(year) && rule.day >= 60 ? 1 : 0);
      return day * DAY + rule.time;
    }
    case "day":
      return rule.day * DAY + rule.time;
    case "month": {
      const first = Date.UTC(year, rule.month - 1, 1) / 1000;
      const firstWeekday = new Date(first * 1000).getUTCDay();
      let mday = 1 + ((rule.weekday - firstWeekday + 7) % 7) + (rule.week - 1) * 7;
      const days = new Date(Date.UTC(year, rule.month, 0)).getUTCDate();
      while (mday > days) mday -= 7;
      return first - Date.UTC(year, 0, 1) / 1000 + (mday - 1) * DAY + rule.time;
    }
  }
}

/** The offset east of UTC in effect at `seconds` since the epoch. */
export function posixOffset(tz: PosixTz, seconds: number): number {
  const dst = tz.dst;
  if (dst === undefined) return tz.std;
  const year = new Date((seconds + tz.std) * 1000).getUTCFullYear();
  const yearStart = Date.UTC(year, 0, 1) / 1000;
  // The start is given in standard time, the end in daylight time.
  const start = yearStart + ruleSeconds(dst.start, year) - tz.std;
  const end = yearStart + ruleSeconds(dst.end, year) - dst.offset;
  const inDst = start < end
    ? seconds >= start && seconds < end
    : !(seconds >= end && seconds < start);
  return inDst ? dst.offset : tz.std;
}

/** Local calendar fields, as `struct tm` has them (month 0-11, weekday 0 = Sunday). */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  weekday: number;
  hours: number;
  minutes: number;
  seconds: number;
}

let zone: PosixTz | null | undefined;

/**
 * The POSIX TZ string the process runs under, when the JavaScript engine
 * cannot use it (not a zone name it knows); null otherwise, or when `TZ`
 * may not be read (no `--allow-env=TZ`: then the engine's idea holds).
 */
function posixZone(): PosixTz | null {
  if (zone !== undefined) return zone;
  zone = null;
  try {
    if (Deno.permissions.querySync({ name: "env", variable: "TZ" }).state !== "granted") {
      return zone;
    }
    const tz = Deno.env.get("TZ");
    if (tz === undefined || tz === "" || tz.startsWith(":")) return zone;
    try {
      new Intl.DateTimeFormat("en", { timeZone: tz });
      return zone; // a zone name the engine knows
    } catch { /* not one: glibc reads it as a POSIX string */ }
    zone = parsePosixTz(tz) ?? null;
  } catch { /* no permissions API: keep the engine's */ }
  return zone;
}

/** `seconds` since the epoch in local time, as C's `localtime()` gives it. */
export function localTime(seconds: number): LocalTime {
  const tz = posixZone();
  if (tz === null) {
    const d = new Date(seconds * 1000);
    return {
      year: d.getFullYear(),
      month: d.getMonth(),
      day: d.getDate(),
      weekday: d.getDay(),
      hours: d.getHours(),
      minutes: d.getMinutes(),
      seconds: d.getSeconds(),
    };
  }
  const d = new Date((seconds + posixOffset(tz, seconds)) * 1000);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth(),
    day: d.getUTCDate(),
    weekday: d.getUTCDay(),
    hours: d.getUTCHours(),
    minutes: d.getUTCMinutes(),
    seconds: d.getUTCSeconds(),
  };
}
