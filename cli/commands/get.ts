import { type Flow, flowToJson, formatFlow, validateTuple } from "../../mod.ts";
import { argumentError, UsageError } from "../errors.ts";
import { getRequest } from "../filters.ts";
import { LineWriter } from "../output.ts";
import { type Context, open, summary } from "../context.ts";

export function runGet(ctx: Context): number {
  const { tuple, options, direction } = getRequest(ctx.filters);
  if (ctx.filters.family !== undefined) {
    const v6 = tuple.src.includes(":");
    if ((ctx.filters.family === "ipv6") !== v6) {
      throw new UsageError(
        `-f/--family ${ctx.filters.family} does not match the address "${tuple.src}"`,
      );
    }
  }
  try {
    validateTuple(tuple);
  } catch (error) {
    throw argumentError(error, direction);
  }
  using ct = open(ctx);
  let flow: Flow;
  try {
    flow = ct.getSync(tuple, options);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) {
      throw argumentError(error, direction);
    }
    throw error;
  }
  const out = new LineWriter();
  out.line(ctx.json ? flowToJson(flow) : formatFlow(flow, ctx.format));
  out.flush();
  summary(1);
  return 0;
}
