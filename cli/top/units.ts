/**
 * How `ctnl top` writes numbers and endpoints in its narrow columns:
 * bytes in binary units (`1.5K` is 1536 bytes), counts in decimal ones
 * (`3.4k`), durations as `59s`, `12m03s`, `3h04m`, `2d03h`.
 *
 * (When the lead's src/units.ts lands on main, the byte and count forms
 * may move there; these are the one-letter, fixed-width forms a column needs.)
 *
 * @module
 */

const BINARY = ["", "K", "M", "G", "T", "P"];
const DECIMAL = ["", "k", "M", "G", "T", "P"];

function scaled(n: number, base: number, units: readonly string[]): string {
  let i = 0;
  while (Math.abs(n) >= base * 0.9995 && i < units.length - 1) {
    n /= base;
    i++;
  }
  if (i === 0) return String(Math.round(n));
  return `${n < 9.95 ? n.toFixed(2) : n < 99.95 ? n.toFixed(1) : n.toFixed(0)}${units[i]}`;
}

/**
 * Bytes in binary units, at most 5 characters: `512`, `1.50K`, `12.3M`, `512G`.
 *
 * @example
 * ```ts
 * import { bytesText } from "./units.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(bytesText(512), "512");
 * equal(bytesText(1536), "1.50K");
 * equal(bytesText(12.3 * 2 ** 20), "12.3M");
 * ```
 */
export function bytesText(n: number): string {
  return scaled(n, 1024, BINARY);
}

/**
 * A count in decimal units: `999`, `3.40k`, `12.0M`.
 *
 * @example
 * ```ts
 * import { countText } from "./units.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(countText(3400), "3.40k");
 * ```
 */
export function countText(n: number): string {
  return scaled(n, 1000, DECIMAL);
}

/**
 * A duration in whole seconds: `59s`, `12m03s`, `3h04m`, `2d03h`.
 *
 * @example
 * ```ts
 * import { durationText } from "./units.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(durationText(59), "59s");
 * equal(durationText(723), "12m03s");
 * equal(durationText(11040), "3h04m");
 * equal(durationText(183600), "2d03h");
 * ```
 */
export function durationText(s: number): string {
  s = Math.max(0, Math.floor(s));
  const two = (n: number) => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

/**
 * `10.0.0.1:443`, `[fd00::1]:443`, or the address alone (no port).
 *
 * @example
 * ```ts
 * import { endpoint } from "./units.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(endpoint("fd00::1", 443), "[fd00::1]:443");
 * equal(endpoint("10.0.0.1", undefined), "10.0.0.1");
 * ```
 */
export function endpoint(address: string | undefined, port: number | undefined): string {
  const a = address ?? "?";
  if (port === undefined) return a;
  return a.includes(":") ? `[${a}]:${port}` : `${a}:${port}`;
}
