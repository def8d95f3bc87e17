/**
 * How fast tier 3 turns a page into answers, against references measured in the same run.
 *
 *   npx tsx bench/fetchData.bench.ts          (or: deno run -A bench/fetchData.bench.ts)
 *
 * For forum-like pages of 10 to 5000 threads: parse5's bare parse (its own plain-object tree) and
 * linkedom's own parser as references, then parseHtml, then the two queries the adapter runs most.
 * Targets (issue 2): parseHtml within 2x of parse5's bare parse; each query no slower than the parse;
 * cost per KB flat across sizes. Then what a page costs the load test (issue 25): a parse and both queries,
 * today's (parseHtml, evaluateXPath) and the flat tree's (parseFlat, evaluateFlat), against parse5's bare parse.
 */
import { parse } from "parse5";
import { DOMParser } from "linkedom";
import { evaluateXPath, parseHtml } from "../lib/fetchData.ts";
import { parseFlat } from "../lib/native-html.ts";
import { evaluateFlat } from "../lib/xpath-flat.ts";

export function forumPage(rows: number): string {
  const threads = Array.from(
    { length: rows },
    (_, i) =>
      `<tr class="thread"><th class="subject"><a href="thread?id=${i}">Thread &amp; number ${i}</a></th>` +
      `<td class="author">user${i % 97}</td><td class="posts">${i % 13}</td></tr>`,
  ).join("\n");
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Other - forum</title></head>
<body><nav><a href="./">Forums</a> <a href="logout">Log out</a></nav><h1 class="forum-name">Other</h1>
<table class="threads"><thead><tr><th>Subject</th><th>Author</th><th>Posts</th></tr></thead>
<tbody>${threads}</tbody></table></body></html>`;
}

/** Milliseconds per call of each function, timed in alternating batches; medians over the rounds. */
function race(fns: Record<string, () => unknown>, rounds = 15): Record<string, number> {
  const names = Object.keys(fns);
  for (const name of names) for (let i = 0; i < 3; i++) fns[name]();
  const t = performance.now();
  fns[names[0]]();
  const batch = Math.max(1, Math.ceil(20 / (performance.now() - t)));
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const start = performance.now();
      for (let i = 0; i < batch; i++) fns[name]();
      samples[name].push((performance.now() - start) / batch);
    }
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return Object.fromEntries(names.map((n) => [n, median(samples[n])]));
}

const rows: string[][] = [];
for (const size of [10, 100, 1000, 5000]) {
  const html = forumPage(size);
  const kb = html.length / 1024;
  const doc = parseHtml(html);
  const title = `Thread & number ${Math.floor(size / 2)}`;
  const COUNT = "count(//html:tr[@class='thread'])";
  const LOOKUP = "//html:th[@class='subject']/html:a[text()=$title]/@href";
  if (evaluateXPath(doc, COUNT) !== size) throw new Error("count is wrong");
  if (evaluateFlat(parseFlat(html), COUNT) !== size) throw new Error("the flat count is wrong");
  // linkedom's own parser leaves garbage that the next batch would pay for: it races on its own.
  const ms = {
    ...race({ linkedom: () => new DOMParser().parseFromString(html, "text/html") }),
    ...race({
      parse5: () => parse(html),
      parseHtml: () => parseHtml(html),
      count: () => evaluateXPath(doc, "count(//html:tr[@class='thread'])"),
      lookup: () => evaluateXPath(doc, LOOKUP, { title }),
      today: () => {
        const d = parseHtml(html);
        evaluateXPath(d, COUNT);
        evaluateXPath(d, LOOKUP, { title });
      },
      flat: () => {
        const tree = parseFlat(html);
        evaluateFlat(tree, COUNT);
        evaluateFlat(tree, LOOKUP, { title });
      },
    }),
  };
  rows.push([
    String(size),
    kb.toFixed(0),
    ms.parse5.toFixed(2),
    ms.linkedom.toFixed(2),
    ms.parseHtml.toFixed(2),
    (ms.parseHtml / ms.parse5).toFixed(2),
    (ms.parseHtml / kb * 1000).toFixed(0),
    (ms.parse5 / kb * 1000).toFixed(0),
    ms.count.toFixed(2),
    ms.lookup.toFixed(2),
    (Math.max(ms.count, ms.lookup) / ms.parseHtml).toFixed(2),
    (ms.today / ms.parse5).toFixed(2),
    (ms.flat / ms.parse5).toFixed(2),
  ]);
}
const header = [
  "rows",
  "KB",
  "parse5_ms",
  "linkedom_ms",
  "parseHtml_ms",
  "x_parse5",
  "us/KB",
  "parse5_us/KB",
  "count_ms",
  "lookup_ms",
  "query/parse",
  "page_today/parse5",
  "page_flat/parse5",
];
console.log(header.join("\t"));
for (const row of rows) console.log(row.join("\t"));
