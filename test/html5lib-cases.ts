// The html5lib tree-construction suite's document cases (no fragment, not scripting-only), as
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
