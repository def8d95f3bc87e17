// The flat evaluator (lib/xpath-flat.ts over lib/native-html.ts's tree) against today's path
// (lib/html.ts's evaluateXPath over parseHtml): every XPath query of the project on the reference forum's
// real pages, and a seeded generated set over generated documents and html5lib's. Equal answers required:
// node-sets by their nodes' string values in order, numbers, strings and booleans as they are.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { evaluateXPath, EXCERPT_QUERIES, parseHtml, stringValue, type Variables } from "../lib/html.ts";
import { parseFlat } from "../lib/native-html.ts";
import { evaluateFlat, flatQueryType, flatString } from "../lib/xpath-flat.ts";
import { createSession, fetchPage, queryAll, queryOne, queryRows } from "../lib/fetchData.ts";
import { createThread, getForumId, postReply, signup } from "../lib/forum.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { startTestForum } from "./helpers.ts";
import { documentCases } from "./html5lib-cases.ts";

/** The XPath queries in lib/, scripts/, examples/ and test/ (grep for `html:`, `//` and `@` in strings). */
const PROJECT_QUERIES = [
  "(//html:input[@name='csrf'])[1]/@value",
  "(//html:td)[last()] | (//html:td)[2]",
  ".//html:td",
  ".//input[@type='hidden']",
  "//*[@role='alert' or contains(concat(' ', normalize-space(@class), ' '), ' error ') or " +
  "contains(concat(' ', normalize-space(@class), ' '), ' errornote ') or " +
  "contains(concat(' ', normalize-space(@class), ' '), ' errorlist ')][normalize-space()]",
  "//TABLE//TD",
  "//div[@class='post']/div[@class='body']/text()",
  "//form[@class=$c]",
  "//html:a/@href",
  "//html:div",
  "//html:div[@class='body']",
  "//html:div[@class='post']",
  "//html:div[@class='post']/html:div[@class='body']",
  "//html:div[@class='post']/@id",
  "//html:div[@class='post']/html:span[@class='author']",
  "(//html:div[@class='post'])/html:div[@class='body']",
  "(//html:tr[@class='thread'])/html:th[@class='subject']/html:a/@href",
  "(//html:tr[@class='thread'])/html:td[@class='posts']",
  "//html:figure/html:figcaption",
  "//html:form",
  "//html:form[@class='login']",
  "//html:form[@class='logout']",
  "//html:form[@class='new-thread']",
  "//html:form[@class='new-thread']//html:input[@name='csrf']/@value",
  "//html:form[@class='reply']",
  "//html:form[@class='signup']",
  "//html:h1[@class='title']",
  "//html:h1[text()=$missing]",
  "//html:input[@name='csrf']/@value",
  "//html:li",
  "//html:nav[@class='pages']",
  "//html:nav[@class='pages']/html:a[@class='next']/@href",
  "//html:nothing",
  "//html:p = '3'",
  "//html:p | .//html:td | //html:h1 | //html:table[@id='t2']//html:td",
  "//html:p | //html:table[@id='t2']//html:td | //html:h1",
  "//html:p",
  "//html:span[@class=$name]",
  "//html:span[@class='page-count']",
  "//html:span[@class='post-count']",
  "//html:span[@class='thread-count']",
  "//html:span[@class='user']",
  "string(//html:span[@class='user'])",
  "//html:table/@id",
  "//html:table/html:tbody/html:tr[1]/html:td[2]",
  "//html:tbody/html:tr/html:th",
  "//html:td",
  "//html:td[1]",
  "//html:td[not(html:table)]",
  "//html:td[position()=2]",
  "//html:th[@class='subject']/html:a",
  "//html:th[@class='subject']/html:a[text()=$t]/@href",
  "//html:th[@class='subject']/html:a[text()=$title]/@href",
  "//html:tr/html:td[1]",
  "//html:tr[@class='forum']/html:th[@class='name']/html:a",
  "//html:tr[@class='forum']/html:th[@class='name']/html:a[text()=$name]/@href",
  "//html:tr[@class='thread']",
  "//th[@class='subject']/a/@href",
  "//tr[@class='forum']/th[@class='name']/a[text()=$n]/@href",
  "//x:tr",
  "@id",
  "ancestor::html:table/@id | .//html:td",
  "boolean(//html:p)",
  "count(//*[local-name()='polyline'][string-length(@points) > 0]) >= 5",
  "count(//html:a)",
  "count(//html:a/text())",
  "count(//html:a[@class='next'])",
  "count(//html:a[text()=$t])",
  "count(//html:circle)",
  "count(//html:div)",
  "count(//html:div[@class='post'])",
  "count(//html:figure[@class='chart']//*[local-name()='svg'])",
  "count(//html:form[@class='reply'])",
  "count(//html:input[@disabled])",
  "count(//html:tr[@class='thread'])",
  "count(//html:figure[@class='chart']/*[local-name()='svg'])",
  ...EXCERPT_QUERIES,
];

/** One question, answered both ways: undefined when the flat evaluator leaves it to evaluateXPath. */
function both(html: string, query: string, variables: Variables) {
  const tree = parseFlat(html);
  let today: unknown;
  try {
    const value = evaluateXPath(parseHtml(html), query, variables);
    today = Array.isArray(value) ? value.map(stringValue) : value;
  } catch (error) {
    today = { error: (error as Error).message };
  }
  const value = evaluateFlat(tree, query, variables);
  const flat = value === undefined ? undefined : Array.isArray(value) ? value.map((n) => flatString(tree, n)) : value;
  return { today, flat };
}

const VARIABLES: Variables = {
  title: 'Tom & Jerry\'s "day"',
  name: "user",
  t: 'Tom & Jerry\'s "day"',
  n: "Other",
  c: "reply",
  missing: "nothing",
};

let forum: RunningForum;
const pages: { name: string; body: string }[] = [];

before(async () => {
  forum = await startTestForum();
  const session = await signup(forum.url, "xpath_flat", "password-1");
  const forumId = await getForumId(session, "Other");
  const threadId = await createThread(session, forumId, VARIABLES.title as string, "first <post> & more");
  await postReply(session, threadId, "a reply\n\nwith two paragraphs");
  const anonymous = createSession(forum.url);
  for (
    const [name, who, url] of [
      ["home", session, ""],
      ["forum", session, `forum?id=${forumId}`],
      ["thread", session, `thread?id=${threadId}`],
      ["login", anonymous, "login"],
      ["signup", anonymous, "signup"],
      ["home, anonymous", anonymous, ""],
    ] as const
  ) {
    pages.push({ name, body: (await fetchPage(who, url)).body });
  }
});

after(() => forum?.stop());

test("every query of the project answers the same on the reference forum's pages", () => {
  let answered = 0;
  for (const page of pages) {
    for (const query of PROJECT_QUERIES) {
      const { today, flat } = both(page.body, query, VARIABLES);
      if (flat === undefined) continue;
      answered++;
      assert.deepEqual(flat, today, `${query} on the ${page.name} page`);
    }
  }
  // Only //x:tr (an unbound prefix) and the relative queries' position-free forms are left to evaluateXPath.
  const left = PROJECT_QUERIES.filter((q) => flatQueryType(q) === null);
  assert.deepEqual(left, ["//x:tr"]);
  assert.equal(answered, pages.length * (PROJECT_QUERIES.length - left.length));
});

test("queryAll, queryOne and queryRows answer from the flat tree what they answered from the document", () => {
  for (const { name, body } of pages) {
    const page = { url: name, status: 200, statusText: "OK", body } as Parameters<typeof queryAll>[0];
    let document: Document | undefined;
    Object.defineProperty(page, "document", { get: () => document ??= parseHtml(body) });
    const rows = queryRows(page, "//html:div[@class='post']", {
      id: "@id",
      author: "html:span[@class='author']",
      body: "html:div[@class='body']",
    });
    assert.equal(document, undefined, `queryRows on ${name} built a linkedom document`);
    const doc = parseHtml(body);
    const posts = evaluateXPath(doc, "//html:div[@class='post']") as Element[];
    assert.deepEqual(
      rows,
      posts.map((post) => ({
        id: post.getAttribute("id") ?? "",
        author: (evaluateXPath(post, "html:span[@class='author']") as Node[]).map(stringValue)[0]?.trim() ?? "",
        body: (evaluateXPath(post, "html:div[@class='body']") as Node[]).map(stringValue)[0]?.trim() ?? "",
      })),
    );
    assert.deepEqual(
      queryAll(page, "//html:a/@href"),
      (evaluateXPath(doc, "//html:a/@href") as Node[]).map((n) => stringValue(n).trim()),
    );
    assert.equal(queryOne(page, "count(//html:a)"), String(evaluateXPath(doc, "count(//html:a)")));
    assert.equal(document, undefined, `queries on ${name} built a linkedom document`);
  }
});

// ---------------------------------------------------------------------------------------------
// The generated set
// ---------------------------------------------------------------------------------------------

/** A small seeded generator (mulberry32), so that a failure names a case that can be run again. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TAGS = ["div", "p", "span", "a", "table", "tr", "td", "ul", "li", "b", "form", "input"];
const CLASSES = ["x", "y", "post", "x y", " x ", ""];
const WORDS = ["a", "b", "Tom & Jerry", " spaced  out ", "3", "x", "", "é"];

function generateDocument(next: () => number, depth = 0): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)];
  let html = "";
  const children = depth > 4 ? 1 : 1 + Math.floor(next() * 4);
  for (let i = 0; i < children; i++) {
    const r = next();
    if (r < 0.3) html += pick(WORDS).replace("&", "&amp;");
    else if (r < 0.35) html += `<!--${pick(WORDS)}-->`;
    else {
      const tag = pick(TAGS);
      const attributes = (next() < 0.5 ? ` class="${pick(CLASSES)}"` : "") + (next() < 0.3 ? ` id="i${i}"` : "") +
        (next() < 0.2 ? ` title="${pick(WORDS)}"` : "");
      html += `<${tag}${attributes}>${generateDocument(next, depth + 1)}</${tag}>`;
    }
  }
  return html;
}

function generateQuery(next: () => number): string {
  const pick = <T>(xs: T[]) => xs[Math.floor(next() * xs.length)];
  const name = () =>
    pick(["html:div", "html:p", "html:span", "html:td", "html:tr", "html:li", "*", "*", "div", "P", "html:b"]);
  const literal = () => `'${pick(WORDS)}'`;
  const predicate = (): string =>
    pick([
      () => `@class=${literal()}`,
      () => `@class`,
      () => `not(@id)`,
      () => `normalize-space()`,
      () => `1`,
      () => `*`,
      () => `@id!='i1'`,
      () => `text()=${literal()}`,
      () => `${1 + Math.floor(next() * 3)}`,
      () => `last()`,
      () => `position()>1`,
      () => `position()=last()`,
      () => `not(${predicate()})`,
      () => `${predicate()} and ${predicate()}`,
      () => `${predicate()} or ${predicate()}`,
      () => `contains(., ${literal()})`,
      () => `starts-with(normalize-space(), ${literal()})`,
      () => `contains(concat(' ', normalize-space(@class), ' '), ' x ')`,
      () => `count(${name()}) > 0`,
      () => `${name()}`,
      () => `. = $v`,
      () => `string-length(@title) >= 1`,
      () => `../@class = 'x'`,
    ])();
  const step = () => {
    const axis = pick(["", "", "", "descendant::", "descendant-or-self::", "self::", "parent::", "ancestor::"]);
    const test = axis === "" ? pick([name(), name(), "text()", "node()", "@class", "@*"]) : name();
    return test + (next() < 0.4 ? `[${predicate()}]` : "") + (next() < 0.05 ? `[${predicate()}]` : "");
  };
  let path = (next() < 0.7 ? "//" : "/html:html/html:body/") + step();
  for (let i = Math.floor(next() * next() * 3); i > 0; i--) path += (next() < 0.7 ? "/" : "//") + step();
  if (path.includes("@") && /\/@[^/]*\//.test(path)) path = path.replace(/\/@[^/]*\//, "/");
  return pick([
    () => path,
    () => path,
    () => `count(${path})`,
    () => `string(${path})`,
    () => `normalize-space(${path})`,
    () => `boolean(${path})`,
    () => `(${path})[${1 + Math.floor(next() * 2)}]`,
    () => `(${path})[last()]`,
    () => `${path} | //html:p`,
    () => `${path} = ${literal()}`,
    () => `${path} != ${literal()}`,
    () => `concat(${path}, '-', count(${path}))`,
    () => `$v`,
  ])();
}

test("a seeded generated set of queries answers the same over generated and html5lib documents", () => {
  const next = random(25);
  const html5lib = documentCases();
  const documents = [
    ...Array.from({ length: 30 }, () => `<!DOCTYPE html><title>t</title>${generateDocument(next)}`),
    ...Array.from({ length: 30 }, () => html5lib[Math.floor(next() * html5lib.length)].data),
  ];
  let answered = 0, total = 0, nonEmpty = 0;
  for (let i = 0; i < 400; i++) {
    const query = generateQuery(next);
    const html = documents[i % documents.length];
    const variables = { v: next() < 0.5 ? "x" : 3 };
    const { today, flat } = both(html, query, variables);
    total++;
    if (flat === undefined) continue;
    answered++;
    if (Array.isArray(flat) ? flat.length > 0 : flat !== 0 && flat !== "" && flat !== false) nonEmpty++;
    assert.deepEqual(flat, today, `case ${i}: ${query} with ${JSON.stringify(variables)} on ${JSON.stringify(html)}`);
  }
  // The generator writes what adapters write; nearly all of it is answered without evaluateXPath.
  assert.ok(answered >= total * 0.9, `only ${answered} of ${total} generated queries were answered from the flat tree`);
  // and most of it finds something, so that the comparison is not of empty answers.
  assert.ok(nonEmpty >= answered * 0.4, `only ${nonEmpty} of ${answered} generated queries found anything`);
  console.log(`# ${answered} of ${total} answered from the flat tree, ${nonEmpty} of them not empty`);
});
