import type { FlushOptions } from "../../mod.ts";
import { put } from "../filters.ts";
import { stderrLine } from "../output.ts";
import { type Context, open, SUMMARY_PREFIX } from "../context.ts";

export async function runFlush(ctx: Context): Promise<number> {
  const options: FlushOptions = {};
  put(options, "family", ctx.filters.family);
  put(options, "mark", ctx.filters.mark);
  using ct = open(ctx);
  await ct.flush(options);
  stderrLine(`${SUMMARY_PREFIX}connection tracking table has been emptied.`);
  return 0;
}
