// Conformance: parseHtml builds the tree a browser builds, on the html5lib tree-construction cases
// (document cases, scripting off). Data: test/html5lib-tests, MIT, see its LICENSE and SOURCE.txt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type Case, documentCases, dump } from "./html5lib-cases.ts";
import { parseHtml } from "../lib/fetchData.ts";

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

/**
 * The 25 document cases parseHtml does not build as the tests expect today (1567 of 1592 pass: the 98.4 %
 * the README states). Pinned, so that any new miss fails, and any fix is seen and unpinned.
 */
const KNOWN_MISSES = [
  ...["menuitem-element.dat:14", "tests1.dat:30", "tests1.dat:100", "tests7.dat:34"],
  ...["tests10.dat:4", "tests10.dat:5", "tests10.dat:17", "tests10.dat:18", "tests18.dat:14", "tests18.dat:15"],
  ...["tests9.dat:5", "tests9.dat:6", "tests9.dat:18", "tests9.dat:19"],
  ...["webkit02.dat:36", "webkit02.dat:38", "webkit02.dat:39", "webkit02.dat:40", "webkit02.dat:41"],
  ...["webkit02.dat:42", "webkit02.dat:43", "webkit02.dat:45", "webkit02.dat:46", "webkit02.dat:47", "webkit02.dat:48"],
];

test("parseHtml() builds the browser's tree in every html5lib document case but the pinned misses", () => {
  const { passed, total, failures } = conformance();
  console.log(
    `html5lib tree construction: ${passed}/${total} document cases (${((passed / total) * 100).toFixed(1)} %)`,
  );
  assert.ok(total > 1000, `expected the whole suite, found ${total} cases`);
  const missed = failures.map((c) => c.name);
  const newMisses = failures.filter((c) => !KNOWN_MISSES.includes(c.name));
  assert.deepEqual(
    newMisses.map((c) => c.name),
    [],
    `new misses; the first:\n${newMisses[0]?.data}\nexpected:\n${newMisses[0]?.expected}`,
  );
  assert.deepEqual(KNOWN_MISSES.filter((id) => !missed.includes(id)), [], "pinned misses that now pass: unpin them");
});
