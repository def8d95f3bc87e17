/**
 * What the WebAssembly parser (lib/native-html.ts, html5ever) costs against today's parse, on the reference
 * forum's real pages and on a large page, timed in alternating batches in one process.
 *
 *   npx tsx bench/native-html.bench.ts        (or: npx deno run -A bench/native-html.bench.ts)
 *
 * The forum runs here on an embedded PostgreSQL just long enough to make its pages: a forum page listing 50
 * threads and a thread page of 50 posts. The large page is fetchData.bench.ts's forum-like table of 1000 rows
 * (about 150 KB). For each page, per call:
 *   wasm_ms       bytes into the module and its parse into flat arrays in the module's memory
 *   parseFlat_ms  all of parseFlat: the same, plus the copy into typed arrays JavaScript owns and walks
 *   parse5_ms     parse5's bare parse (its own plain-object tree)
 *   parseHtml_ms  today's parse: parse5's tree construction into linkedom nodes
 */
import { readFileSync } from "node:fs";
import { parse } from "parse5";
import { fetchPage, parseHtml } from "../lib/fetchData.ts";
import { createThread, getForumId, login, postReplies } from "../lib/forum.ts";
import { parseFlat } from "../lib/native-html.ts";
import { startForum } from "../scripts/forum-server.ts";

function largePage(rows: number): string {
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

/** The forum's own pages: its list of 50 threads, and a thread of 50 posts. */
async function forumPages(): Promise<Record<string, string>> {
  const forum = await startForum({ port: 0, pool: 20, scryptCost: 1024, log: () => {} });
  try {
    const session = await login(forum.url, "p1", "p1");
    const forumId = await getForumId(session, "Other");
    let threadId = 0;
    for (let i = 0; i < 50; i++) {
      threadId = await createThread(session, forumId, `Thread ${i}: "quotes" & <angles>`, `The first post of ${i}.`);
    }
    await postReplies(
      session,
      threadId,
      Array.from({ length: 49 }, (_, i) => `Reply ${i}, with a few words of text & an entity, as users write.`),
    );
    return {
      forum: (await fetchPage(session, "forum", { id: forumId })).body,
      thread: (await fetchPage(session, "thread", { id: threadId })).body,
    };
  } finally {
    await forum.stop();
  }
}

/** The module by itself, to time the parse without the copy out. */
const wasm = new WebAssembly.Instance(
  new WebAssembly.Module(
    readFileSync(new URL("../native/html5ever-flat.wasm", import.meta.url)) as Uint8Array<ArrayBuffer>,
  ),
  {},
).exports as unknown as { memory: WebAssembly.Memory; input(len: number): number; parse(len: number): number };
const encoder = new TextEncoder();

function wasmParse(html: string): number {
  const ptr = wasm.input(html.length * 3);
  const { written } = encoder.encodeInto(html, new Uint8Array(wasm.memory.buffer, ptr, html.length * 3));
  const header = wasm.parse(written);
  // The parse may grow the memory, which detaches the old buffer: read it afterwards.
  return new Uint32Array(wasm.memory.buffer, header, 1)[0];
}

/** Milliseconds per call of each function, timed in alternating batches; medians over the rounds. */
function race(fns: Record<string, () => unknown>, rounds = 21): Record<string, number> {
  const names = Object.keys(fns);
  for (const name of names) for (let i = 0; i < 5; i++) fns[name]();
  const t = performance.now();
  fns[names[names.length - 1]]();
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

const pages = { ...await forumPages(), large: largePage(1000) };
const header = [
  "page",
  "KB",
  "nodes",
  "wasm_ms",
  "parseFlat_ms",
  "parse5_ms",
  "parseHtml_ms",
  "flat/parse5",
  "flat/parseHtml",
];
const deno = (process.versions as Record<string, string | undefined>).deno;
console.log(deno ? `# Deno ${deno}` : `# Node ${process.version}`);
console.log(header.join("\t"));
for (const [name, html] of Object.entries(pages)) {
  const nodes = parseFlat(html).count;
  if (wasmParse(html) !== nodes) throw new Error(`The module's node count for the ${name} page differs`);
  const ms = race({
    wasm: () => wasmParse(html),
    parseFlat: () => parseFlat(html),
    parse5: () => parse(html),
    parseHtml: () => parseHtml(html),
  });
  console.log([
    name,
    (new TextEncoder().encode(html).length / 1024).toFixed(1),
    String(nodes),
    ms.wasm.toFixed(3),
    ms.parseFlat.toFixed(3),
    ms.parse5.toFixed(3),
    ms.parseHtml.toFixed(3),
    (ms.parseFlat / ms.parse5).toFixed(2),
    (ms.parseFlat / ms.parseHtml).toFixed(2),
  ].join("\t"));
}
