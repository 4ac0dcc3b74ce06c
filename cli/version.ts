/**
 * ctnl's version: one constant, kept equal to deno.json's `version` by
 * `tests/unit/version_test.ts` (bump both together). The CLI imports this
 * instead of deno.json, so a bundle or a compiled binary carries one string,
 * not the whole configuration file.
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * import assert from "node:assert/strict";
 * assert.match(VERSION, /^\d+\.\d+\.\d+/);
 * ```
 *
 * @module
 */

/** ctnl's version, as deno.json has it. */
export const VERSION = "0.1.0";
