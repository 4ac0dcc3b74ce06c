/**
 * `ctnl add`: make an entry unless it exists, as `conntrack -A`.
 *
 * @module
 */

import { ERRNO, NetlinkError } from "../../src/errors.ts";
import { argumentError } from "../errors.ts";
import type { CommandBody, Context } from "../context.ts";
import { optionKeys } from "../help.ts";
import { optionHelp } from "../options.ts";
import { CREATE_OPTIONS, createSpec } from "./create.ts";

async function run(ctx: Context): Promise<number> {
  const spec = createSpec(ctx);
  using ct = ctx.open();
  let added = 1;
  try {
    await ct.create(spec);
  } catch (error) {
    // conntrack -A: an entry that exists already is not an error, and not counted.
    if (error instanceof NetlinkError && error.errno === ERRNO.EEXIST) added = 0;
    else throw argumentError(error, "orig");
  }
  ctx.summary(added, "flow entries have been added");
  return 0;
}

/** `ctnl add`, `ctnl -A`, `ctnl --add`. */
export const add: CommandBody = {
  summary: "Create an entry unless it exists (conntrack -A)",
  options: optionKeys(CREATE_OPTIONS),
  help: `Usage: ctnl add [the options of create]     (also: ctnl -A, --add)

Creates an entry as create does (the same options, see ctnl help create),
except that an entry that exists already is left as it is and is no error:
"0 flow entries have been added." and exit 0, as conntrack -A does (it does
not update the entry). "1 flow entries have been added." when it was made.

Options (as create's):
${optionHelp(CREATE_OPTIONS)}

Examples:
  ctnl add -p udp -s 10.0.0.1 -d 10.0.0.2 --sport 5000 --dport 53 -t 120
  ctnl add -p tcp -s 10.0.0.1 -d 10.0.0.2 --sport 4000 --dport 80 -t 60 --state ESTABLISHED
`,
  run,
};
