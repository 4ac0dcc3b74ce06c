import { DumpInterruptedError, flowToJson, formatFlow, validateFilter } from "../../mod.ts";
import { argumentError } from "../errors.ts";
import { dumpFilter } from "../filters.ts";
import { LineWriter, stderrLine } from "../output.ts";
import { type Context, open, stateMatcher, summary } from "../context.ts";

export function runDump(ctx: Context): number {
  const filter = dumpFilter(ctx.filters);
  try {
    validateFilter(filter); // bad parameters are exit 2 before anything is opened
  } catch (error) {
    throw argumentError(error, "orig");
  }
  using ct = open(ctx);
  const out = new LineWriter();
  const keep = stateMatcher(ctx.filters.state);
  const format = ctx.format;
  let n = 0;
  let interrupted = false;
  try {
    format.now = Math.floor(Date.now() / 1000);
    for (const flow of ct.dumpSync(filter)) {
      if (keep !== undefined && !keep(flow)) continue;
      out.line(ctx.json ? flowToJson(flow) : formatFlow(flow, format));
      if ((++n & 1023) === 0) format.now = Math.floor(Date.now() / 1000);
    }
  } catch (error) {
    if (!(error instanceof DumpInterruptedError)) {
      // Show what came before the failure, as conntrack does, then report it.
      if (!(error instanceof Deno.errors.BrokenPipe)) out.flush();
      throw error;
    }
    interrupted = true;
  }
  out.flush();
  if (interrupted) {
    stderrLine(
      "ctnl: warning: the table changed during the dump (NLM_F_DUMP_INTR); entries may be missing or repeated",
    );
  }
  summary(n);
  return 0;
}
