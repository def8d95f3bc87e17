// Conformance of the WebAssembly parser (lib/native-html.ts) on the html5lib tree-construction document
// cases (scripting off), against today's parseHtml (parse5 into linkedom) on the same cases; the cases where the
// two differ are printed. Data: test/html5lib-tests, MIT, see its LICENSE and SOURCE.txt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { documentCases, dump, NAMESPACE_DESIGNATORS } from "./html5lib-cases.ts";
import { parseHtml } from "../lib/fetchData.ts";
import { COMMENT, DOCTYPE, ELEMENT, type FlatTree, parseFlat, TEXT } from "../lib/native-html.ts";

const XHTML = "http://www.w3.org/1999/xhtml";

/** The html5lib dump of a flat tree: one line a node, two spaces of indent per ancestor, attributes sorted. */
export function dumpFlat(tree: FlatTree): string {
  const lines: string[] = [];
  const walk = (parent: number, depth: number) => {
    const indent = "| " + "  ".repeat(depth);
    for (let node = tree.first[parent]; node !== -1; node = tree.next[node]) {
      const kind = tree.kind[node];
      if (kind === ELEMENT) {
        const name = tree.name[node];
        const ns = tree.namespaceOf(name);
        lines.push(`${indent}<${NAMESPACE_DESIGNATORS[ns] ?? ""}${tree.localName(name)}>`);
        const attributes: string[] = [];
        for (let i = 0; i < tree.attrCount[node]; i++) {
          const id = tree.attrName(node, i);
          const attrNs = tree.namespaceOf(id);
          const shown = attrNs ? `${NAMESPACE_DESIGNATORS[attrNs]}${tree.localName(id)}` : tree.names[id];
          attributes.push(`${shown}="${tree.attrValue(node, i)}"`);
        }
        for (const attribute of attributes.sort()) lines.push(`${indent}  ${attribute}`);
        if (tree.localName(name) === "template" && ns === XHTML) {
          lines.push(`${indent}  content`);
          walk(tree.textStart[node], depth + 2);
        }
        walk(node, depth + 1);
      } else if (kind === TEXT) lines.push(`${indent}"${tree.data(node)}"`);
      else if (kind === COMMENT) lines.push(`${indent}<!-- ${tree.data(node)} -->`);
      else if (kind === DOCTYPE) {
        const [publicId, systemId] = [tree.attrValue(node, 0), tree.attrValue(node, 1)];
        const ids = publicId || systemId ? ` "${publicId}" "${systemId}"` : "";
        lines.push(`| <!DOCTYPE ${tree.data(node)}${ids}>`);
      }
    }
  };
  walk(0, 0);
  return lines.join("\n");
}

function passes(dump: () => string, expected: string): boolean {
  try {
    return dump() === expected;
  } catch {
    return false;
  }
}

test("parseFlat() builds the browser's tree in at least as many html5lib document cases as parseHtml", () => {
  const cases = documentCases();
  const flat = new Set(cases.filter((c) => passes(() => dumpFlat(parseFlat(c.data)), c.expected)).map((c) => c.name));
  const today = new Set(
    cases.filter((c) => passes(() => dump(parseHtml(c.data)), c.expected)).map((c) => c.name),
  );
  const onlyFlat = cases.filter((c) => flat.has(c.name) && !today.has(c.name)).map((c) => c.name);
  const onlyToday = cases.filter((c) => today.has(c.name) && !flat.has(c.name)).map((c) => c.name);
  const neither = cases.filter((c) => !today.has(c.name) && !flat.has(c.name)).map((c) => c.name);
  console.log(
    `html5lib tree construction, ${cases.length} document cases: parseFlat ${flat.size}, parseHtml ${today.size}`,
  );
  console.log(`passed by parseFlat only (${onlyFlat.length}): ${onlyFlat.join(" ")}`);
  console.log(`passed by parseHtml only (${onlyToday.length}): ${onlyToday.join(" ")}`);
  console.log(`passed by neither (${neither.length}): ${neither.join(" ")}`);
  assert.equal(cases.length, 1592);
  assert.ok(flat.size >= 1567, `parseFlat passed only ${flat.size}; passed by parseHtml only: ${onlyToday.join(" ")}`);
});

test("parseFlat() answers links, attributes and text of a forum page", () => {
  const tree = parseFlat(
    `<!DOCTYPE html><table><tr class="thread"><th class="subject"><a href="thread?id=7">Tom &amp; Jerry</a>` +
      `</th></tr></table>`,
  );
  const names = Array.from({ length: tree.count }, (_, n) => tree.kind[n] === ELEMENT ? tree.nodeName(n) : "");
  const a = names.indexOf("a");
  assert.equal(tree.getAttribute(a, "href"), "thread?id=7");
  assert.equal(tree.data(tree.first[a]), "Tom & Jerry");
  assert.equal(tree.first[a], tree.last[a], "adjacent text is one node");
  assert.deepEqual(
    [names.indexOf("tbody"), names.indexOf("table")],
    [tree.parent[names.indexOf("tr")], tree.parent[names.indexOf("tbody")]],
    "tbody is implied",
  );
  assert.equal(tree.kind[tree.first[0]], DOCTYPE);
  assert.equal(tree.quirks, 0);
});

test("parseFlat() keeps each tree after later parses, and takes invalid and non-ASCII text", () => {
  const first = parseFlat("<p title='é😀'>one</p>");
  parseFlat("<div>two</div>".repeat(1000));
  const p = Array.from({ length: first.count }, (_, n) => n).find((n) => first.nodeName(n) === "p")!;
  assert.equal(first.getAttribute(p, "title"), "é😀");
  assert.equal(first.data(first.first[p]), "one");
  const lone = parseFlat("<p>\ud800x</p>");
  assert.equal(lone.data(lone.count - 1), "\ufffdx");
});
