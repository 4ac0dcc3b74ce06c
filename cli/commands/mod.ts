/**
 * The command registry: every command, in the order the main help lists
 * them. Adding a command is a file in this folder and a line here.
 *
 * @module
 */

import type { Command } from "../context.ts";
import { dump } from "./dump.ts";
import { get } from "./get.ts";
import { stats } from "./stats.ts";
import { count } from "./count.ts";
import { summary } from "./summary.ts";
import { events } from "./events.ts";
import { del } from "./delete.ts";
import { flush } from "./flush.ts";
import { create } from "./create.ts";
import { update } from "./update.ts";
import { add } from "./add.ts";
import { load } from "./load.ts";
import { top } from "./top.ts";
import { completions } from "./completions.ts";
import { exporter } from "./exporter.ts";

/** Every command ctnl has. */
export const COMMANDS: readonly Command[] = [
  dump,
  get,
  stats,
  count,
  summary,
  top,
  events,
  del,
  flush,
  create,
  update,
  add,
  load,
  completions,
  exporter,
];
