import $ from "@david/dax";
const c = await $`${[Deno.execPath(), "run", "/work/wt-tests/tmpx/s.ts", "x"]}`.noThrow().stdout(
  "piped",
);
console.log(c.stdout);
const d = await $`${["ps", "-o", "pid,args", "-p", String(Deno.pid)]}`.noThrow().stdout("piped");
console.log(d.stdout);
