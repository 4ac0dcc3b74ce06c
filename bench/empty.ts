/**
 * An empty script: `deno run bench/empty.ts` is Deno's own start-up cost,
 * which `ctnl count` and `ctnl stats` are compared with.
 *
 * @module
 */
