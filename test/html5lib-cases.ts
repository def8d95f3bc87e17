// The html5lib tree-construction suite's document cases (no fragment, not scripting-only) and its dump format, as
// test/html5lib.test.ts, test/native-html.test.ts and test/xpath-flat.test.ts read them.
// Data: test/html5lib-tests, MIT, see its LICENSE and SOURCE.txt.
import { readdirSync, readFileSync } from "node:fs";

const DIR = new URL("./html5lib-tests/tree-construction/", import.meta.url);

export interface Case {
  /** file:index, the index counting every case of the file from 1. */
  name: string;
  file: string;
  data: string;
  expected: string;
}

export function documentCases(): Case[] {
  const cases: Case[] = [];
  for (const file of readdirSync(DIR).filter((f) => f.endsWith(".dat")).sort()) {
    const text = readFileSync(new URL(file, DIR), "utf8");
    text.split(/^#data\n/m).slice(1).forEach((block, index) => {
      const sections = new Map<string, string>();
      let name = "#data";
      const lines: string[] = [];
      for (const line of block.split("\n")) {
        if (/^#(errors|new-errors|document-fragment|script-off|script-on|document)$/.test(line)) {
          sections.set(name, lines.join("\n"));
          lines.length = 0;
          name = line;
        } else lines.push(line);
      }
      sections.set(name, lines.join("\n"));
      if (sections.has("#document-fragment") || sections.has("#script-on")) return;
      cases.push({
        name: `${file}:${index + 1}`,
        file,
        data: sections.get("#data")!,
        expected: sections.get("#document")!.replace(/\n+$/, ""),
      });
    });
  }
  return cases;
}

/** Namespaces as the html5lib dump names them. */
export const NAMESPACE_DESIGNATORS: Record<string, string> = {
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
