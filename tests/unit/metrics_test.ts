/**
 * The exposition formats without a kernel: names, types, units, escaping,
 * `# EOF`, content negotiation, the families of a collected table, and
 * `ctnl exporter`'s --listen parsing.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  type ConntrackMetrics,
  type CpuStats,
  formatOpenMetrics,
  formatPrometheus,
  mergeFamilies,
  metricFamilies,
  type MetricFamily,
  wantsOpenMetrics,
} from "../../mod.ts";
import { parseListen } from "../../cli/commands/exporter.ts";
import { UsageError } from "../../cli/errors.ts";

function cpu(n: number, found: number): CpuStats {
  return {
    cpu: n,
    searched: undefined,
    found,
    new: undefined,
    invalid: 0,
    ignore: undefined,
    delete: undefined,
    deleteList: undefined,
    insert: 2,
    insertFailed: 0,
    drop: 1,
    earlyDrop: 0,
    error: 0,
    searchRestart: 0,
    clashResolve: 0,
    chainTooLong: undefined, // an older kernel: left out
  };
}

const METRICS: ConntrackMetrics = {
  entries: 5,
  maxEntries: 262144,
  cpus: [cpu(0, 3), cpu(1, 4)],
  expectations: undefined,
  flows: [
    { family: "ipv4", protocol: "tcp", state: "ESTABLISHED", count: 3 },
    { family: "ipv6", protocol: "udp", state: "", count: 2 },
  ],
  zones: [{ key: 0, count: 4 }, { key: 7, count: 1 }],
  marks: undefined,
  topSources: [{ key: "10.0.0.1", count: 4 }],
  topDestinations: undefined,
  dumped: 5,
  interrupted: false,
  durationSeconds: 0.25,
};

Deno.test("metricFamilies: sums over CPUs beside a per-CPU family; absent stats and families left out", () => {
  const fams = metricFamilies(METRICS);
  const byName = new Map(fams.map((f) => [f.name, f]));
  assert.deepEqual(byName.get("conntrack_stat_found")?.samples, [{ labels: {}, value: 7 }]);
  assert.deepEqual(byName.get("conntrack_cpu_stat_found")?.samples.map((s) => s.labels.cpu), [
    "0",
    "1",
  ]);
  assert.equal(byName.get("conntrack_stat_drop")?.type, "counter");
  assert.equal(byName.has("conntrack_stat_chain_toolong"), false);
  assert.equal(byName.has("conntrack_mark_flows"), false);
  assert.equal(byName.has("conntrack_expectations"), false);
  assert.equal(byName.has("conntrack_top_destination_flows"), false);
  assert.deepEqual(
    byName.get("conntrack_zone_flows")?.samples.map((s) => [s.labels.zone, s.value]),
    [
      ["0", 4],
      ["7", 1],
    ],
  );
  assert.equal(byName.get("conntrack_dump_duration_seconds")?.unit, "seconds");
});

Deno.test("formatPrometheus: 0.0.4 text, counters named _total on HELP, TYPE and samples, labels escaped", () => {
  const f: MetricFamily[] = [{
    name: "x_events",
    type: "counter",
    help: "Back\\slash and\nnewline",
    samples: [{ labels: { a: 'q"uote', b: "back\\slash", c: "new\nline" }, value: 3 }],
  }];
  assert.equal(
    formatPrometheus(f),
    "# HELP x_events_total Back\\\\slash and\\nnewline\n" +
      "# TYPE x_events_total counter\n" +
      'x_events_total{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 3\n',
  );
  const text = formatPrometheus(metricFamilies(METRICS, { netns: "blue" }));
  assert.match(text, /^conntrack_flows\{netns="blue",family="ipv6",protocol="udp",state=""\} 2$/m);
  assert.doesNotMatch(text, /# UNIT|# EOF/);
});

Deno.test("formatOpenMetrics: TYPE, UNIT, HELP under the family name, _total samples, # EOF once at the end", () => {
  const text = formatOpenMetrics(metricFamilies(METRICS));
  assert.ok(text.endsWith("\n# EOF\n"));
  assert.equal(text.split("# EOF").length, 2);
  assert.match(
    text,
    /^# TYPE conntrack_stat_found counter\n# HELP conntrack_stat_found .*\nconntrack_stat_found_total 7$/m,
  );
  assert.match(
    text,
    /^# TYPE conntrack_dump_duration_seconds gauge\n# UNIT conntrack_dump_duration_seconds seconds\n/m,
  );
  assert.doesNotMatch(text, /^# (TYPE|HELP) \S+_total /m);
  assert.equal(
    formatOpenMetrics([{
      name: "g",
      type: "gauge",
      help: 'a "b"',
      samples: [{ labels: {}, value: NaN }],
    }]),
    '# TYPE g gauge\n# HELP g a \\"b\\"\ng NaN\n# EOF\n',
  );
});

Deno.test("mergeFamilies: one family per name, samples of every list in order", () => {
  const a = metricFamilies(METRICS, { netns: "a" });
  const b = metricFamilies(METRICS, { netns: "b" });
  const merged = mergeFamilies(a, b);
  assert.equal(merged.length, a.length);
  const entries = merged.find((f) => f.name === "conntrack_entries")!;
  assert.deepEqual(entries.samples.map((s) => s.labels.netns), ["a", "b"]);
  assert.equal(
    a.find((f) => f.name === "conntrack_entries")!.samples.length,
    1,
    "inputs unchanged",
  );
});

Deno.test("wantsOpenMetrics: Prometheus' Accept header, quality values, text and wildcards", () => {
  const prometheus =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
  assert.equal(wantsOpenMetrics(prometheus), true);
  assert.equal(wantsOpenMetrics("text/plain;version=0.0.4"), false);
  assert.equal(wantsOpenMetrics("*/*"), false);
  assert.equal(wantsOpenMetrics("text/plain, application/openmetrics-text;q=0.9"), false);
  assert.equal(wantsOpenMetrics("application/openmetrics-text;q=0"), false);
  assert.equal(wantsOpenMetrics(""), false);
});

Deno.test("parseListen: HOST:PORT, [V6]:PORT, :PORT, PORT; anything else is a usage error", () => {
  assert.deepEqual(parseListen("0.0.0.0:9883"), { hostname: "0.0.0.0", port: 9883 });
  assert.deepEqual(parseListen("[::]:1"), { hostname: "::", port: 1 });
  assert.deepEqual(parseListen("localhost:80"), { hostname: "localhost", port: 80 });
  for (const bad of ["", ":", "host:", "a:b", "1.2.3.4:65536", "::1:80", "[::1]"]) {
    assert.throws(() => parseListen(bad), UsageError, bad);
  }
});
