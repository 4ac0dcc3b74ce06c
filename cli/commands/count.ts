import { LineWriter } from "../output.ts";
import { type Context, open } from "../context.ts";

export async function runCount(ctx: Context): Promise<number> {
  using ct = open(ctx);
  const stats = await ct.globalStats();
  const out = new LineWriter();
  out.line(ctx.json ? JSON.stringify(stats) : String(stats.entries));
  out.flush();
  return 0;
}
