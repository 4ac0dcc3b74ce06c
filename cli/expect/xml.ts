/**
 * conntrack's XML for expectations (`conntrack -L expect -o xml`, `-G`,
 * `-E expect -o xml`): one `<flow>` element per line, as
 * libnetfilter_conntrack 1.0.9's `__snprintf_expect_xml` writes it, after
 * the header `<?xml …?>` and `<expect>`, and `</expect>` after a listing or
 * an event stream that printed one.
 *
 * @module
 */

import type { Expectation, Tuple } from "../../mod.ts";
import { protocolInfo } from "../../src/protocols.ts";
import { layer4Fields, whenText } from "../xml.ts";

/** The two lines conntrack prints before the first expectation. */
export const EXPECT_XML_HEADER = '<?xml version="1.0" encoding="utf-8"?>\n<expect>';
/** The line after the last one (a listing, events; not get). */
export const EXPECT_XML_FOOTER = "</expect>";

/** What an expectation element includes besides the expectation. */
export interface ExpectXmlOptions {
  /** The event: `<flow type="new">`; none for a listed expectation. */
  type?: "new" | "destroy" | undefined;
  /** `-o timestamp`: `<when>` of this moment, in local time. */
  when?: Date | undefined;
}

/** `__snprintf_addr_xml` of both addresses. */
function addresses(t: Tuple): string {
  return `<src>${t.src ?? ""}</src><dst>${t.dst ?? ""}</dst>`;
}

/** One expectation as conntrack's XML element (without a newline). */
export function formatExpectationXml(e: Expectation, options: ExpectXmlOptions = {}): string {
  const n = e.tuple.protocol ?? 0;
  const l3 = e.family === "ipv4"
    ? '<layer3 protonum="2" protoname="ipv4">'
    : '<layer3 protonum="10" protoname="ipv6">';
  const name = protocolInfo(n).tuple === "none" ? "unknown" : protocolInfo(n).name;
  let s = options.type === undefined ? "<flow>" : `<flow type="${options.type}">`;
  s += `${l3}<expected>${addresses(e.tuple)}</expected><mask>${addresses(e.mask)}</mask>` +
    `<master>${addresses(e.master)}</master></layer3>`;
  s += `<layer4 protonum="${n}" protoname="${name}"><expected>${layer4Fields(e.tuple)}</expected>` +
    `<mask>${layer4Fields(e.mask)}</mask><master>${layer4Fields(e.master)}</master></layer4>`;
  s += "<meta>";
  if (e.helper !== undefined) s += `<helper-name>${e.helper}</helper-name>`;
  if (e.timeout !== undefined) s += `<timeout>${e.timeout}</timeout>`;
  if (e.class !== undefined) s += `<class>${e.class}</class>`;
  if (e.zone !== undefined) s += `<zone>${e.zone}</zone>`;
  if (options.when !== undefined) s += whenText(Math.floor(options.when.getTime() / 1000));
  for (const flag of e.flagNames) s += `<${flag.toLowerCase()}/>`;
  return `${s}</meta></flow>`;
}
