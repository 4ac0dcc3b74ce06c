/**
 * Parses `conntrack -L -o extended,id,ktimestamp` lines into fields, so the
 * library's flows can be compared with conntrack-tools field by field.
 *
 * @module
 */

/** One direction as conntrack prints it. */
export interface TextTuple {
  src: string;
  dst: string;
  sport?: number;
  dport?: number;
  type?: number;
  code?: number;
  id?: number;
  zone?: number;
  packets?: string;
  bytes?: string;
}

/** One parsed `conntrack -L` line. */
export interface TextEntry {
  l3: string;
  l3num: number;
  l4: string;
  l4num: number;
  timeout?: number;
  state?: string;
  orig: TextTuple;
  reply: TextTuple;
  unreplied: boolean;
  assured: boolean;
  offload: boolean;
  mark?: number;
  zone?: number;
  secctx?: string;
  deltaTime?: number;
  start?: string;
  stop?: string;
  helper?: string;
  use?: number;
  id?: number;
}

/** The keys after the tuples, and the field of {@link TextEntry} each fills. */
const NUMBER_KEYS = {
  mark: "mark",
  zone: "zone",
  "delta-time": "deltaTime",
  use: "use",
  id: "id",
} as const satisfies Record<string, keyof TextEntry>;
const TEXT_KEYS = { secctx: "secctx", helper: "helper" } as const satisfies Record<
  string,
  keyof TextEntry
>;

/** Parses one line of `conntrack -L -o extended[,id][,ktimestamp]`. */
export function parseConntrackLine(line: string): TextEntry {
  let rest = line;
  let start: string | undefined, stop: string | undefined;
  rest = rest.replace(/\[start=([^\]]*)\]/, (_m, v) => {
    start = v;
    return "";
  });
  rest = rest.replace(/\[stop=([^\]]*)\]/, (_m, v) => {
    stop = v;
    return "";
  });
  const tokens = rest.trim().split(/\s+/);
  let i = 0;
  const next = () => tokens[i++]!;
  const entry: TextEntry = {
    l3: next(),
    l3num: Number(next()),
    l4: next(),
    l4num: Number(next()),
    orig: { src: "", dst: "" },
    reply: { src: "", dst: "" },
    unreplied: false,
    assured: false,
    offload: false,
  };
  if (start !== undefined) entry.start = start;
  if (stop !== undefined) entry.stop = stop;
  if (/^\d+$/.test(tokens[i] ?? "")) entry.timeout = Number(next());
  if (/^[A-Z_0-9]+$/.test(tokens[i] ?? "")) entry.state = next();
  let tuple: TextTuple | undefined;
  let tuplesDone = false;
  let srcCount = 0;
  for (; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (tok === "[UNREPLIED]") {
      entry.unreplied = true;
      continue;
    }
    if (tok === "[ASSURED]") {
      entry.assured = true;
      continue;
    }
    if (tok === "[OFFLOAD]" || tok === "[HW_OFFLOAD]") {
      entry.offload = true;
      continue;
    }
    const eq = tok.indexOf("=");
    if (eq < 0) throw new Error(`unexpected token "${tok}" in: ${line}`);
    const key = tok.slice(0, eq);
    const value = tok.slice(eq + 1);
    if (key === "src" && !tuplesDone) {
      srcCount++;
      tuple = srcCount === 1 ? entry.orig : entry.reply;
      tuple.src = value;
      continue;
    }
    if (["mark", "use", "secctx", "zone", "delta-time", "helper"].includes(key)) tuplesDone = true;
    if (!tuplesDone && tuple) {
      switch (key) {
        case "dst":
          tuple.dst = value;
          break;
        case "sport":
        case "dport":
        case "type":
        case "code":
        case "id":
          tuple[key] = Number(value);
          break;
        case "zone-orig":
        case "zone-reply":
          tuple.zone = Number(value);
          break;
        case "packets":
        case "bytes":
          tuple[key] = value;
          break;
        default:
          throw new Error(`unexpected tuple key "${key}" in: ${line}`);
      }
      continue;
    }
    if (Object.hasOwn(NUMBER_KEYS, key)) {
      entry[NUMBER_KEYS[key as keyof typeof NUMBER_KEYS]] = Number(value);
    } else if (Object.hasOwn(TEXT_KEYS, key)) {
      entry[TEXT_KEYS[key as keyof typeof TEXT_KEYS]] = value;
    } else throw new Error(`unexpected key "${key}" in: ${line}`);
  }
  return entry;
}

/** Parses the stdout of `conntrack -L …` into entries. */
export function parseConntrackOutput(stdout: string): TextEntry[] {
  return stdout.split("\n").filter((l) => l.trim() !== "").map(parseConntrackLine);
}
