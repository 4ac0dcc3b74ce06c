/**
 * Human units for counts and sizes: `3.4k`, `1.2M` (powers of 1000) and
 * `1.2 KiB`, `3.0 GiB` (powers of 1024), one decimal below 10 and none above.
 *
 * @module
 */

function scaled(value: bigint | number, base: number, units: readonly string[], sep: string) {
  let n = typeof value === "bigint" ? Number(value) : value;
  if (!Number.isFinite(n) || Math.abs(n) < base) {
    return typeof value === "bigint" ? value.toString() : String(Math.round(n));
  }
  let i = -1;
  while (Math.abs(n) >= base && i < units.length - 1) {
    n /= base;
    i++;
  }
  // 999.96k rounds to "1000k": step up instead.
  let digits = Math.abs(n) < 10 ? n.toFixed(1) : Math.round(n).toString();
  if (Number(digits) >= base && i < units.length - 1) {
    n /= base;
    i++;
    digits = n.toFixed(1);
  }
  return `${digits}${sep}${units[i]}`;
}

/**
 * A count in powers of 1000: `999`, `3.4k`, `12M`.
 *
 * @example
 * ```ts
 * import { humanCount } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal(humanCount(999), "999");
 * equal(humanCount(3400), "3.4k");
 * equal(humanCount(12_345_678n), "12M");
 * ```
 */
export function humanCount(value: bigint | number): string {
  return scaled(value, 1000, ["k", "M", "G", "T", "P", "E"], "");
}

/**
 * A size in bytes in powers of 1024: `512 B`, `1.2 KiB`, `3.0 GiB`.
 *
 * @example
 * ```ts
 * import { humanBytes } from "@ctnl/conntrack";
 * import { equal } from "node:assert/strict";
 *
 * equal(humanBytes(512), "512 B");
 * equal(humanBytes(1260n), "1.2 KiB");
 * equal(humanBytes(3n * 1024n ** 3n), "3.0 GiB");
 * ```
 */
export function humanBytes(value: bigint | number): string {
  const text = scaled(value, 1024, ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"], " ");
  return /[KMGTPE]iB$/.test(text) ? text : `${text} B`;
}
