import { type Flow, flowToJson, formatFlow, type GetOptions, validateFilter } from "../../mod.ts";
import { argumentError, isNotFound } from "../errors.ts";
import { dumpFilter, put, tupleOf, zoneOf } from "../filters.ts";
import { LineWriter } from "../output.ts";
import { changeFormat, type Context, open, stateMatcher, summary } from "../context.ts";

export async function runDelete(ctx: Context): Promise<number> {
  const filter = dumpFilter(ctx.filters);
  try {
    validateFilter(filter);
  } catch (error) {
    throw argumentError(error, "orig");
  }
  const keep = stateMatcher(ctx.filters.state);
  const format = changeFormat(ctx, false);
  using ct = open(ctx);
  const out = new LineWriter();
  const print = (flow: Flow) => out.line(ctx.json ? flowToJson(flow) : formatFlow(flow, format));
  let deleted = 0;
  try {
    if (keep === undefined) {
      deleted = await ct.deleteWhere(filter, { onDelete: print, onInterrupted: "ignore" });
    } else {
      // --state is matched here, so deleteWhere (which takes no predicate)
      // cannot be used: list on this handle, delete each match by tuple
      // and id on a second one.
      using other = open(ctx);
      for (const flow of ct.dumpSync(filter, { onInterrupted: "ignore" })) {
        if (!keep(flow)) continue;
        const options: GetOptions & { id?: number } = {};
        put(options, "zone", zoneOf(flow));
        put(options, "id", flow.id);
        try {
          await other.delete(tupleOf(flow.orig), options);
        } catch (error) {
          if (isNotFound(error)) continue; // gone meanwhile, as conntrack skips it
          throw error;
        }
        print(flow);
        deleted++;
      }
    }
  } catch (error) {
    // Show what was deleted before the failure, then report it.
    if (!(error instanceof Deno.errors.BrokenPipe)) out.flush();
    throw error;
  }
  out.flush();
  summary(deleted, "flow entries have been deleted");
  return deleted === 0 ? 1 : 0;
}
