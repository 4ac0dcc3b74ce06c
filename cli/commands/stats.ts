import { formatCpuStats } from "../../mod.ts";
import { LineWriter, statsJson } from "../output.ts";
import { type Context, open } from "../context.ts";

export async function runStats(ctx: Context): Promise<number> {
  using ct = open(ctx);
  const stats = await ct.stats();
  const out = new LineWriter();
  if (ctx.json) out.line(statsJson(stats));
  else for (const s of stats) out.line(formatCpuStats(s));
  out.flush();
  return 0;
}
