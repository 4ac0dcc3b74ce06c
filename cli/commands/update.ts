import {
  type Conntrack,
  type Flow,
  flowToJson,
  formatFlow,
  type GetOptions,
  validateFilter,
} from "../../mod.ts";
import { argumentError, FailError, isNotFound, UsageError } from "../errors.ts";
import {
  checkFamily,
  checkTuple,
  dumpFilter,
  type Filters,
  getRequest,
  put,
  tupleOf,
  zoneOf,
} from "../filters.ts";
import { LineWriter } from "../output.ts";
import { changeFormat, type Context, open, summary } from "../context.ts";
import { changesFor, parseChanges } from "../changes.ts";

/**
 * The one entry update names when it is given one complete tuple (as get
 * takes it) and nothing else to select by; undefined otherwise.
 */
export function namedTuple(f: Filters): ReturnType<typeof getRequest> | undefined {
  const given = (values: (number | string | undefined)[]) => values.some((v) => v !== undefined);
  const orig = given([f.src, f.dst, f.sport, f.dport]);
  const reply = given([f.replySrc, f.replyDst, f.replySport, f.replyDport]);
  if (orig === reply) return undefined;
  try {
    return getRequest(f);
  } catch {
    return undefined;
  }
}

export async function runUpdate(ctx: Context): Promise<number> {
  const changes = parseChanges(ctx, "update");
  if (Object.values(changes).every((v) => v === undefined)) {
    throw new UsageError(
      "update needs something to change: -m/--mark, -t/--timeout, -u/--status or --state",
    );
  }
  // -m, -u and --state are what to set; the rest selects the entries.
  const selection: Filters = {
    ...ctx.filters,
    mark: undefined,
    status: undefined,
    state: undefined,
  };
  const named = namedTuple(selection);
  const format = changeFormat(ctx, true);
  const out = new LineWriter();
  const print = (flow: Flow) => out.line(ctx.json ? flowToJson(flow) : formatFlow(flow, format));
  /** Updates the entry `flow` was listed from and prints it as it is now. */
  const updateOne = async (ct: Conntrack, flow: Flow): Promise<boolean> => {
    const wanted = changesFor(flow, changes);
    if (wanted === undefined) return false; // unchanged: conntrack sends nothing and counts nothing
    const tuple = tupleOf(flow.orig);
    const options: GetOptions = {};
    put(options, "zone", zoneOf(flow));
    try {
      await ct.update(tuple, wanted, options);
      print(ct.getSync(tuple, options));
    } catch (error) {
      if (isNotFound(error)) return false; // gone meanwhile
      throw error;
    }
    return true;
  };
  let updated = 0;
  if (named !== undefined) {
    checkFamily(selection, named.tuple);
    checkTuple(named.tuple, named.direction);
    using ct = open(ctx);
    let flow: Flow;
    try {
      flow = ct.getSync(named.tuple, named.options);
    } catch (error) {
      if (isNotFound(error)) throw new FailError("Operation failed: such conntrack doesn't exist");
      throw error;
    }
    if (await updateOne(ct, flow)) updated = 1;
  } else {
    const filter = dumpFilter(selection);
    try {
      validateFilter(filter);
    } catch (error) {
      throw argumentError(error, "orig");
    }
    using ct = open(ctx);
    using other = open(ctx);
    try {
      for (const flow of ct.dumpSync(filter, { onInterrupted: "ignore" })) {
        if (await updateOne(other, flow)) updated++;
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BrokenPipe)) out.flush();
      throw error;
    }
  }
  out.flush();
  summary(updated, "flow entries have been updated");
  return updated === 0 ? 1 : 0;
}
