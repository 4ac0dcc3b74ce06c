console.log(
  Deno.permissions.querySync({ name: "ffi" }).state,
  Deno.args,
  Deno.env.get("DENO_AUTO_APPROVE") ?? "",
);
