/**
 * cli/version.ts holds the version the CLI prints; deno.json holds the one
 * JSR publishes. They must be the same string.
 */

import assert from "node:assert/strict";
import { VERSION } from "../../cli/version.ts";
import denoJson from "../../deno.json" with { type: "json" };

Deno.test("cli/version.ts's VERSION is deno.json's version", () => {
  assert.equal(VERSION, denoJson.version);
});
