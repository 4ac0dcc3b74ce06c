import denoJson from "../deno.json" with { type: "json" };
import { Conntrack, type Flow, type FormatOptions } from "../mod.ts";
import { FailError } from "./errors.ts";
import type { Parsed } from "./options.ts";
import type { OutputKeyword } from "./values.ts";
import type { Filters } from "./filters.ts";
import { stderrLine } from "./output.ts";

export const VERSION: string = denoJson.version;
/** Prefix of the summary line, laid out as conntrack's `conntrack v1.4.7 (conntrack-tools): `. */
export const SUMMARY_PREFIX = `ctnl v${VERSION} (@ctnl/conntrack): `;
export const LABEL_FILE = "/etc/xtables/connlabel.conf";

export interface Context {
  parsed: Parsed;
  filters: Filters;
  json: boolean;
  outputs: Set<OutputKeyword>;
  format: FormatOptions;
}

export function open(ctx: Context): Conntrack {
  const state = Deno.permissions.querySync({ name: "ffi" }).state;
  if (state !== "granted") {
    throw new FailError(
      "needs FFI access to reach netlink: run it as `deno run --allow-ffi …` (or `deno task ctnl …`)",
    );
  }
  const netns = ctx.parsed.values.get("netns");
  return Conntrack.open(netns === undefined ? {} : { netns });
}

/** The summary line on stderr: `ctnl v… (@ctnl/conntrack): N flow entries have been shown.` */
export function summary(n: number, what = "flow entries have been shown"): void {
  stderrLine(`${SUMMARY_PREFIX}${n} ${what}.`);
}

export function stateMatcher(state: string | undefined): ((flow: Flow) => boolean) | undefined {
  if (state === undefined) return undefined;
  return (flow) => (flow.tcp ?? flow.sctp ?? flow.dccp)?.stateName === state;
}

/**
 * What delete and update print of an entry: conntrack's default format
 * with `-o extended` and `-o id` (and, for update, `-o labels`); the other
 * `-o` keywords are accepted and have no effect there, as in conntrack.
 */
export function changeFormat(ctx: Context, labels: boolean): FormatOptions {
  const format: FormatOptions = {
    extended: ctx.format.extended ?? false,
    id: ctx.format.id ?? false,
  };
  if (labels && ctx.format.labelNames !== undefined) format.labelNames = ctx.format.labelNames;
  return format;
}
