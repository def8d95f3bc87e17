// Conformance: parseHtml builds the tree a browser builds, on the html5lib tree-construction cases
// (document cases, scripting off). Data: test/html5lib-tests, MIT, see its LICENSE and SOURCE.txt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Case, documentCases } from "./html5lib-cases.ts";
import { parseHtml } from "../lib/fetchData.ts";

const NAMESPACE_DESIGNATORS: Record<string, string> = {
  "http://www.w3.org/2000/svg": "svg ",
  "http://www.w3.org/1998/Math/MathML": "math ",
  "http://www.w3.org/1999/xlink": "xlink ",
  "http://www.w3.org/XML/1998/namespace": "xml ",
  "http://www.w3.org/2000/xmlns/": "xmlns ",
};

/** The html5lib dump format: one line a node, two spaces of indent per ancestor, attributes sorted. */
export function dump(document: Document): string {
  const lines: string[] = [];
  const doctype = document.doctype;
  if (doctype) {
    const ids = doctype.publicId || doctype.systemId ? ` "${doctype.publicId}" "${doctype.systemId}"` : "";
    lines.push(`| <!DOCTYPE ${doctype.name}${ids}>`);
  }
  const walk = (parent: Node, depth: number) => {
    const indent = "| " + "  ".repeat(depth);
    for (let node = parent.firstChild; node; node = node.nextSibling) {
      if (node.nodeType === 1) {
        const element = node as Element;
        lines.push(`${indent}<${NAMESPACE_DESIGNATORS[element.namespaceURI ?? ""] ?? ""}${element.localName}>`);
        const attributes = Array.from(
          element.attributes,
          (a) =>
            a.namespaceURI
              ? `${NAMESPACE_DESIGNATORS[a.namespaceURI]}${a.localName}` + `="${a.value}"`
              : `${a.name}="${a.value}"`,
        );
        for (const attribute of attributes.sort()) lines.push(`${indent}  ${attribute}`);
        if (element.localName === "template" && element.namespaceURI === "http://www.w3.org/1999/xhtml") {
          lines.push(`${indent}  content`);
          walk((element as HTMLTemplateElement).content, depth + 2);
        }
        walk(element, depth + 1);
      } else if (node.nodeType === 3) lines.push(`${indent}"${(node as Text).data}"`);
      else if (node.nodeType === 8) lines.push(`${indent}<!-- ${(node as Comment).data} -->`);
    }
  };
  walk(document, 0);
  return lines.join("\n");
}

/** Runs every document case; answers the pass count and the failures. */
export function conformance(): { passed: number; total: number; failures: Case[] } {
  const cases = documentCases();
  const failures = cases.filter((c) => {
    try {
      return dump(parseHtml(c.data)) !== c.expected;
    } catch {
      return true;
    }
  });
  return { passed: cases.length - failures.length, total: cases.length, failures };
}

test("parseHtml() builds the browser's tree in at least 95 % of the html5lib document cases", () => {
  const { passed, total, failures } = conformance();
  const share = passed / total;
  console.log(`html5lib tree construction: ${passed}/${total} document cases (${(share * 100).toFixed(1)} %)`);
  assert.ok(total > 1000, `expected the whole suite, found ${total} cases`);
  assert.ok(share >= 0.95, `only ${passed}/${total}; first failure in ${failures[0]?.file}:\n${failures[0]?.data}`);
});
