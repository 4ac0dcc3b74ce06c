/**
 * `deno task bundle`: `dist/ctnl.js`, the CLI as one executable file.
 *
 * It runs `deno bundle` on cli.ts, puts a `#!/usr/bin/env -S deno run …`
 * line with the CLI's permissions first and makes the file executable, so
 * that `./dist/ctnl.js dump` works from anywhere Deno is on PATH.
 *
 * ```sh
 * deno task bundle                 # = deno run -A tools/bundle.ts [OUT]
 * sudo ./dist/ctnl.js dump
 * ```
 *
 * @module
 */

/** The permissions and V8 flags of `deno task ctnl` (deno.json), for the shebang line. */
export const SHEBANG = "#!/usr/bin/env -S deno run --allow-ffi " +
  "--allow-read=/etc/xtables/connlabel.conf";

/** Bundles cli.ts to `out` with the shebang line first, mode 0755. */
export async function bundle(out: string): Promise<void> {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--quiet", "-o", out, cli],
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (code !== 0) {
    throw new Error(`deno bundle failed (exit ${code}): ${new TextDecoder().decode(stderr)}`);
  }
  const text = await Deno.readTextFile(out);
  const body = text.startsWith("#!") ? text.slice(text.indexOf("\n") + 1) : text;
  await Deno.writeTextFile(out, `${SHEBANG}\n${body}`);
  await Deno.chmod(out, 0o755);
}

if (import.meta.main) {
  const out = Deno.args[0] ?? new URL("../dist/ctnl.js", import.meta.url).pathname;
  try {
    await bundle(out);
    console.error(`wrote ${out}`);
  } catch (error) {
    console.error(`bundle: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
