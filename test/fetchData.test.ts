// Tier 3 over real HTTP: a small node:http server on a free loopback port plays each situation.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  createSession,
  fetchData,
  fetchOne,
  fetchPage,
  HttpError,
  post,
  queryOne,
  queryRows,
  RequestError,
  type RequestRecord,
  submitForm,
} from "../lib/fetchData.ts";
import { evaluateXPath, fastNodes, matchAll, parseHtml, stringValue } from "../lib/html.ts";
import { step, StepError } from "../lib/steps.ts";

const texts = (value: unknown) => (value as Node[]).map(stringValue);
const names = (value: unknown) => (value as Element[]).map((n) => n.localName);

describe("parseHtml() builds the tree a browser builds", () => {
  const doctypes = {
    "HTML5": "<!DOCTYPE html>",
    "lower case": "<!doctype html>",
    "HTML 4.01": '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">',
    "none": "",
    "a BOM first": "\uFEFF<!DOCTYPE html>",
    "a comment first": "<!-- generated --><!DOCTYPE html>",
  };
  for (const [name, doctype] of Object.entries(doctypes)) {
    test(`XPath finds the page with ${name} doctype`, () => {
      const doc = parseHtml(`${doctype}<title>T</title><table><tr class="thread"><td>1</td></tr></table>`);
      assert.equal(evaluateXPath(doc, "count(//html:tr[@class='thread'])"), 1);
      assert.equal(evaluateXPath(doc, "string(/html/head/title)"), "T");
    });
  }

  test("a table without tbody gets one, so XPath copied from developer tools works", () => {
    const doc = parseHtml("<table><tr><td>a1<td>a2<tr><td>b1<td>b2</table>");
    assert.deepEqual(texts(evaluateXPath(doc, "/html/body/table/tbody/tr[2]/td[1]")), ["b1"]);
    assert.deepEqual(texts(evaluateXPath(doc, "//html:table/html:tbody/html:tr[1]/html:td[2]")), ["a2"]);
  });

  test("a table with an explicit tbody and thead keeps them", () => {
    const doc = parseHtml("<table><thead><tr><th>h</th></tr></thead><tbody><tr><td>x</td></tr></tbody></table>");
    assert.deepEqual(names(evaluateXPath(doc, "/html/body/table/*")), ["thead", "tbody"]);
  });

  test("unclosed td, tr, p and li are closed where a browser closes them", () => {
    const doc = parseHtml("<p>one<p>two<ul><li>a<li>b</ul><table><tr><td>1<td>2<tr><td>3</table>");
    assert.equal(evaluateXPath(doc, "count(/html/body/p)"), 2);
    assert.deepEqual(texts(evaluateXPath(doc, "//html:li")), ["a", "b"]);
    assert.equal(evaluateXPath(doc, "count(//html:tr)"), 2);
    assert.equal(evaluateXPath(doc, "count(//html:tr[1]/html:td)"), 2);
  });

  test("misnested formatting is mended by the adoption agency", () => {
    const doc = parseHtml("<p>1<b>2<i>3</b>4</i>5</p>");
    assert.equal(evaluateXPath(doc, "string(/html/body/p/html:i)"), "4");
    assert.equal(evaluateXPath(doc, "string(//html:b/html:i)"), "3");
  });

  test("content misplaced in a table is fostered out before it", () => {
    const doc = parseHtml("<table><tr><td>in</td></tr>out</table>");
    assert.deepEqual(
      (evaluateXPath(doc, "/html/body/node()") as Node[]).map((n) => n.nodeName.toLowerCase()),
      ["#text", "table"],
    );
    assert.equal(evaluateXPath(doc, "string(/html/body/text())"), "out");
  });

  test("upper-case tags and attributes are matched in lower case", () => {
    const doc = parseHtml('<TABLE CLASS="Threads"><TR ID=r1><TD>x</TD></TR></TABLE>');
    assert.deepEqual(texts(evaluateXPath(doc, "//html:table[@class='Threads']//html:tr[@id='r1']/html:td")), ["x"]);
    assert.deepEqual(texts(evaluateXPath(doc, "//TABLE//TD")), ["x"]);
  });

  test("entities in text and attributes are decoded and text is one node", () => {
    const doc = parseHtml(
      '<a title="Tom &amp; Jerry&#39;s &quot;show&quot;" href="x?a=1&amp;b=2">Tom &amp; Jerry &lt;3 &eacute;</a>',
    );
    assert.equal(evaluateXPath(doc, "count(//html:a[text()=$t])", { t: "Tom & Jerry <3 é" }), 1);
    assert.equal(evaluateXPath(doc, "count(//html:a/text())"), 1);
    assert.equal(evaluateXPath(doc, "string(//html:a[@title=$t]/@href)", { t: `Tom & Jerry's "show"` }), "x?a=1&b=2");
  });

  test("empty and valueless attributes are present with an empty value", () => {
    const doc = parseHtml('<input disabled><input value=""><input>');
    assert.equal(evaluateXPath(doc, "count(//html:input[@disabled])"), 1);
    assert.equal(evaluateXPath(doc, "count(//html:input[@value=''])"), 1);
    assert.equal(evaluateXPath(doc, "string(//html:input/@disabled)"), "");
  });

  test("svg and math keep their namespaces; html: does not match them", () => {
    const doc = parseHtml("<svg><circle r=1></circle></svg><math><mi>x</mi></math>");
    assert.equal(evaluateXPath(doc, "count(//html:circle)"), 0);
    assert.equal(
      evaluateXPath(doc, "namespace-uri(//*[local-name()='circle'])"),
      "http://www.w3.org/2000/svg",
    );
    assert.equal(evaluateXPath(doc, "namespace-uri(//*[local-name()='mi'])"), "http://www.w3.org/1998/Math/MathML");
  });

  test("the doctype is kept on the document", () => {
    const doc = parseHtml('<!DOCTYPE html PUBLIC "-//W3C//DTD HTML 4.01//EN" ""><p>x');
    assert.equal(doc.doctype?.name, "html");
    assert.equal(doc.doctype?.publicId, "-//W3C//DTD HTML 4.01//EN");
  });

  test("nodes are built by parseHtml's own constructors for this linkedom version", () => {
    assert.equal(fastNodes(), true, "linkedom changed its node fields: update the constructors in lib/html.ts");
    const doc = parseHtml('<p class="a b">x</p>');
    const p = doc.querySelector("p")!;
    assert.equal(p.classList.contains("b"), true);
    assert.equal(p.textContent, "x");
    assert.equal(p.outerHTML, '<p class="a b">x</p>');
  });
});

describe("evaluateXPath()", () => {
  const doc = parseHtml(`<h1>Forums</h1>
    <table id=t1><tr><td>1</td><td><table id=inner><tr><td>2</td></tr></table></td></tr></table>
    <p>3</p><table id=t2><tr><td>4</td></tr></table>`);

  test("node-sets come back in document order across depths and tables", () => {
    assert.deepEqual(texts(evaluateXPath(doc, "//html:td[not(html:table)]")), ["1", "2", "4"]);
    assert.deepEqual(texts(evaluateXPath(doc, "//html:p | //html:table[@id='t2']//html:td | //html:h1")), [
      "Forums",
      "3",
      "4",
    ]);
    assert.deepEqual(texts(evaluateXPath(doc, "(//html:td)[last()] | (//html:td)[2]")), ["2", "4"]);
  });

  test("positional predicates after // keep their per-parent meaning", () => {
    assert.deepEqual(texts(evaluateXPath(doc, "//html:tr/html:td[1]")), ["1", "2", "4"]);
    assert.deepEqual(texts(evaluateXPath(doc, "//html:td[1]")), ["1", "2", "4"]);
    assert.deepEqual(texts(evaluateXPath(doc, "//html:td[position()=2]")), ["2"]);
  });

  test("every result type: number, string, boolean, node-set, attributes", () => {
    assert.equal(evaluateXPath(doc, "count(//html:table)"), 3);
    assert.equal(evaluateXPath(doc, "string(//html:h1)"), "Forums");
    assert.equal(evaluateXPath(doc, "boolean(//html:p)"), true);
    assert.equal(evaluateXPath(doc, "//html:p = '3'"), true);
    assert.equal(evaluateXPath(doc, "1 div 0"), Infinity);
    assert.deepEqual(texts(evaluateXPath(doc, "//html:table/@id")), ["t1", "inner", "t2"]);
    assert.deepEqual(evaluateXPath(doc, "//html:nothing"), []);
  });

  test("a value with both quotes goes in as a variable and cannot inject", () => {
    const tricky = `It's "quoted"`;
    const page = parseHtml(`<a>${tricky.replace(/"/g, "&quot;")}</a><a>x</a>`);
    assert.equal(evaluateXPath(page, "count(//html:a[text()=$t])", { t: tricky }), 1);
    assert.equal(evaluateXPath(page, "count(//html:a[text()=$t])", { t: "' or '1'='1" }), 0);
  });

  test("a syntax error names the query and where parsing stopped", () => {
    assert.throws(
      () => evaluateXPath(doc, "//html:tr[@class='thread'"),
      /^Error: Invalid XPath "\/\/html:tr\[@class='thread'": it ends too soon, after "thread"$/,
    );
    assert.throws(
      () => evaluateXPath(doc, "//html:tr[@class='a' and]/html:td"),
      /^Error: Invalid XPath ".*": unexpected "]" at character 25$/,
    );
    assert.throws(() => evaluateXPath(doc, "///html:p"), /: unexpected "\/" at character 3$/);
    assert.throws(() => evaluateXPath(doc, "  "), /^Error: Invalid XPath " {2}": it is empty$/);
    assert.throws(() => evaluateXPath(doc, "//p[@a='x]"), /^Error: Invalid XPath .*: Unterminated string literal/);
    assert.throws(() => evaluateXPath(doc, "//x:tr"), /Cannot evaluate XPath "\/\/x:tr": .*x/);
    assert.throws(() => evaluateXPath(doc, "//html:h1[text()=$missing]"), /Cannot evaluate XPath .*missing/);
  });

  test("a query on an element that reaches outside it still answers in document order", () => {
    const inner = (evaluateXPath(doc, "//html:table[@id='inner']") as Node[])[0];
    assert.deepEqual(
      texts(evaluateXPath(inner, "//html:p | .//html:td | //html:h1 | //html:table[@id='t2']//html:td")),
      [
        "Forums",
        "2",
        "3",
        "4",
      ],
    );
    assert.deepEqual(texts(evaluateXPath(inner, "ancestor::html:table/@id | .//html:td")), ["t1", "2"]);
  });

  test("a node-set of 300 000 nodes comes back whole, from the document or from an element", () => {
    const big = parseHtml("<div>" + "<p>x</p>".repeat(300_000) + "</div>");
    assert.equal((evaluateXPath(big, "//html:p") as Node[]).length, 300_000);
    const div = (evaluateXPath(big, "//html:div") as Node[])[0];
    assert.equal((evaluateXPath(div, "html:p | //html:div") as Node[]).length, 300_001);
  });

  test("a query on a part of the page answers relative to it", () => {
    const inner = (evaluateXPath(doc, "//html:table[@id='inner']") as Node[])[0];
    assert.deepEqual(texts(evaluateXPath(inner, ".//html:td")), ["2"]);
    assert.equal(evaluateXPath(inner, "count(ancestor::html:table)"), 1);
  });
});

describe("the regex stage", () => {
  const doc = parseHtml('<a href="thread?id=12">A</a><a href="thread?id=7">B</a><a href="forum">C</a>');
  test("matches keep their groups, and values that do not match are left out", () => {
    const matches = matchAll(evaluateXPath(doc, "//html:a/@href"), /id=(\d+)/);
    assert.deepEqual(matches.map((m) => m[1]), ["12", "7"]);
  });
  test("no match answers an empty list", () => {
    assert.deepEqual(matchAll(evaluateXPath(doc, "//html:a/@href"), "nothing"), []);
  });
  test("a number or string result is matched as text", () => {
    assert.equal(matchAll(evaluateXPath(doc, "count(//html:a)"), /^\d$/)[0][0], "3");
  });
});

describe("over HTTP", () => {
  let base = "";
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url!, "http://x");
    const html = (status: number, body: string, headers: Record<string, string | string[]> = {}) => {
      res.writeHead(status, { "content-type": "text/html; charset=utf-8", ...headers });
      res.end(body);
    };
    switch (url.pathname) {
      case "/app/forum":
        return html(200, `<table><tr class=thread><td>${url.searchParams.get("id")}</td></tr></table>`);
      case "/app/echo":
        return html(200, `<p class=cookie>${req.headers.cookie ?? ""}</p><p class=query>${url.search}</p>`);
      case "/app/set":
        return html(200, "ok", {
          "set-cookie": ["sid=abc; Path=/app; HttpOnly", "lang=en; Max-Age=3600", "other=1; Path=/elsewhere"],
        });
      case "/app/drop":
        return html(200, "ok", { "set-cookie": ["lang=; Max-Age=0", "sid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"] });
      case "/app/broken":
        return html(500, "<h1>Internal error</h1><p class=error>database is down</p>");
      case "/app/private":
        return html(302, "", { location: "login?next=private" });
      case "/app/bad-location":
        return html(302, "", { location: "http://[::1" });
      case "/app/secret":
        return html(200, "ok", { "set-cookie": "sid=SECRET; Path=/" });
      case "/app/elsewhere":
        return html(302, "", { location: url.searchParams.get("to")! });
      case "/app/plant":
        return html(200, "ok", {
          "set-cookie": ["sid=PLANTED; Path=/; Domain=127.0.0.1", "csrf=x; Domain=0.1; Path=/"],
        });
      case "/app/huge":
        if (url.searchParams.has("chunked")) {
          res.writeHead(200, { "content-type": "text/html" });
          res.write("x".repeat(700_000));
          return res.end("y".repeat(700_000));
        }
        return html(200, "<p>" + "x".repeat(3 * 1024 * 1024), { "content-length": String(3 * 1024 * 1024 + 3) });
      case "/app/login":
        if (req.method === "POST") {
          let body = "";
          req.on("data", (c) => body += c);
          req.on("end", () => {
            const form = new URLSearchParams(body);
            if (form.get("csrf") !== "t0k") return html(403, "<p class=error>Missing CSRF token</p>");
            html(303, "", { location: "home", "set-cookie": `user=${form.get("user")}; Path=/` });
          });
          return;
        }
        return html(
          200,
          `<h1>Log in</h1><form method=post action=login><input type=hidden name=csrf value=t0k>
          <input name=user><input type=submit name=go value=Go></form>`,
        );
      case "/app/home":
        return html(200, `<p class=who>${req.headers.cookie}</p>`);
      case "/app/latin1":
        res.writeHead(200, { "content-type": "text/html; charset=windows-1252" });
        return res.end(
          Buffer.from([0x3c, 0x70, 0x3e, 0x43, 0x61, 0x66, 0xe9, 0x20, 0x80, 0x35, 0x3c, 0x2f, 0x70, 0x3e]),
        );
      case "/app/meta1252":
        res.writeHead(200, { "content-type": "text/html" });
        return res.end(
          Buffer.concat([Buffer.from('<meta charset="windows-1252"><p>'), Buffer.from([0x93, 0x68, 0x69, 0x94])]),
        );
      case "/app/posts":
        return html(
          200,
          `<div class=post id=post-1><span class=author>ann</span><div class=body>first</div></div>
          <div class=post id=post-2><div class=body>no author</div></div>
          <div class=post id=post-3><span class=author>bob</span><div class=body>third</div></div>`,
        );
      case "/app/typed":
        res.writeHead(Number(url.searchParams.get("status") ?? 200), { "content-type": url.searchParams.get("type")! });
        return res.end(url.searchParams.get("body"));
      case "/app/untyped":
        res.writeHead(200);
        return res.end("<p class=sniffed>markup</p>");
      case "/app/slow":
        return setTimeout(() => html(200, "late"), 2000).unref();
      default:
        return html(404, "<p>no such page</p>");
    }
  });
  // The same application on a second loopback host, for what one host's cookies may do to another's.
  const other = createServer((req, res) => server.emit("request", req, res));
  let otherBase = "";
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/app/`;
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.2", resolve));
    otherBase = `http://127.0.0.2:${(other.address() as AddressInfo).port}/app/`;
  });
  after(() => {
    for (const s of [server, other]) {
      s.closeAllConnections();
      s.close();
    }
  });

  test("a session cookie set by one host is not sent to another after a redirect, nor planted by it", async () => {
    const session = createSession(base);
    await fetchPage(session, "secret");
    const echoed = await fetchOne(session, "elsewhere", "//html:p[@class='cookie']", undefined, {
      to: otherBase + "echo",
    });
    assert.equal(echoed, "", "127.0.0.1's sid went to 127.0.0.2");
    await fetchPage(session, otherBase + "plant");
    assert.equal(await fetchOne(session, "echo", "//html:p[@class='cookie']"), "sid=SECRET");
  });

  test("an answer over the size limit fails its request, naming the URL and the size", async () => {
    const session = createSession(base, { maxResponseBytes: 1024 * 1024 });
    await assert.rejects(
      fetchPage(session, "huge"),
      /GET http:\/\/127\.0\.0\.1:\d+\/app\/huge failed: the answer is larger than the limit of 1 MiB \(Content-Length 3 MiB; maxResponseBytes\)/,
    );
    await assert.rejects(
      fetchPage(session, "huge?chunked"),
      /huge\?chunked failed: the answer is larger than the limit of 1 MiB \(more than that arrived/,
    );
    assert.equal((await fetchPage(createSession(base), "huge")).body.length, 3 * 1024 * 1024 + 3);
  });

  test("a redirect to a malformed Location is a RequestError naming the URL and the header", async () => {
    const error = await fetchPage(createSession(base), "bad-location").catch((e) => e);
    assert.ok(error instanceof RequestError);
    assert.match(error.message, /GET .*\/app\/bad-location failed: its Location header is not a URL: "http:\/\/\[::1"/);
  });

  test("a URL that is not one is an error quoting it, under either runtime, and nothing is sent", async () => {
    assert.throws(
      () => createSession("localhost"),
      /^Error: Cannot create a session for "localhost": it is not an absolute URL$/,
    );
    const records: RequestRecord[] = [];
    const session = createSession(base, { onRequest: (r) => records.push(r) });
    await assert.rejects(fetchPage(session, "http://"), /^Error: Cannot GET "http:\/\/": it is not a URL$/);
    await assert.rejects(post(session, "http://[::1", {}), /^Error: Cannot POST "http:\/\/\[::1": it is not a URL$/);
    await assert.rejects(
      fetchPage("sid=1", "forum?id=1"),
      /^Error: Cannot request "forum\?id=1" with a cookie string as the session: it needs an absolute URL$/,
    );
    assert.deepEqual(records, []);
  });

  test("fetchData() answers the seed's count query, params in the query string", async () => {
    const session = createSession(base);
    assert.equal(await fetchData(session, "forum", "count(//html:tr[@class='thread'])", undefined, { id: 3 }), 1);
    assert.deepEqual((await fetchData(session, "forum", "//html:td", /(\d)/, { id: 7 }))[0][1], "7");
    assert.equal(
      await fetchOne(session, "echo", "//html:p[@class='query']", undefined, { a: "x y", b: "&" }),
      "?a=x+y&b=%26",
    );
  });

  test("cookies: several kept, scoped by path, removed by Max-Age=0 or a past Expires", async () => {
    const session = createSession(base);
    await fetchPage(session, "set");
    assert.equal(await fetchOne(session, "echo", "//html:p[@class='cookie']"), "sid=abc; lang=en");
    await fetchPage(session, "drop");
    assert.equal(await fetchOne(session, "echo", "//html:p[@class='cookie']"), "");
  });

  test("a raw cookie string works as the session, as in the seed", async () => {
    assert.equal(await fetchOne("sid=raw; x=1", base + "echo", "//html:p[@class='cookie']"), "sid=raw; x=1");
  });

  test("a non-200 throws an error with the method, URL, status and the page's text, its error first", async () => {
    const error = await fetchData(createSession(base), "broken", "//html:p").catch((e) => e);
    assert.ok(error instanceof HttpError);
    assert.equal(error.status, 500);
    assert.equal(error.url, base + "broken");
    assert.match(
      error.message,
      /^GET http:\/\/127\.0\.0\.1:\d+\/app\/broken answered 500 Internal Server Error: database is down Internal error$/,
    );
    assert.match(error.page.body, /<p class=error>database is down/);
  });

  test("an answer that is not markup is not queried as a page: the error names its URL and type", async () => {
    const session = createSession(base);
    for (const type of ["application/json", "application/octet-stream", "text/plain; charset=utf-8", "image/png"]) {
      const params = { type, body: "<p>looks like a tag</p>" };
      await assert.rejects(
        fetchData(session, "typed", "//html:p", undefined, params),
        new RegExp(`^Error: http://127\\.0\\.0\\.1:\\d+/app/typed\\?\\S+ answered ${type.split(";")[0]}, not HTML: `),
      );
      await assert.rejects(fetchOne(session, "typed", "count(//html:p)", undefined, params), /not HTML/);
      const page = await fetchPage(session, "typed", params);
      assert.throws(() => queryRows(page, "//html:p", { t: "." }), /not HTML/);
      assert.throws(() => page.document, /not HTML/);
    }
    assert.equal(
      await fetchOne(session, "typed", "//html:x", undefined, { type: "application/xhtml+xml", body: "<x>1</x>" }),
      "1",
    );
    assert.equal(await fetchOne(session, "untyped", "//html:p[@class='sniffed']"), "markup");
    const failed = await fetchPage(session, "typed", {
      status: 503,
      type: "text/plain",
      body: "  down for\n maintenance ",
    })
      .catch((e) => e);
    assert.ok(failed instanceof HttpError);
    assert.match(failed.message, / answered 503 Service Unavailable: down for maintenance$/);
  });

  test("a long URL is cut short in messages, its length said, and kept whole in the error's url", async () => {
    const session = createSession(base);
    const long = "x".repeat(5000);
    const error = await fetchPage(session, "broken", { q: long }).catch((e) => e);
    assert.ok(error instanceof HttpError);
    assert.equal(error.url, `${base}broken?q=${long}`);
    assert.match(
      error.message,
      /^GET http:\/\/127\.0\.0\.1:\d+\/app\/broken\?q=x+… \(50\d\d characters\) answered 500 /,
    );
    assert.ok(error.message.length < 500, error.message);
    const failed = await step(session, "look", () => fetchPage(session, "broken", { q: long })).catch((e) => e);
    assert.ok(failed instanceof StepError);
    assert.match(failed.message, /\(GET http:\S+… \(50\d\d characters\)\)$/);
    assert.ok(failed.message.length < 700, failed.message);
  });

  test("a redirect is followed and the final URL shows the bounce to the login page", async () => {
    const page = await fetchPage(createSession(base), "private");
    assert.equal(page.url, base + "login?next=private");
    assert.equal(evaluateXPath(page.document, "string(//html:h1)"), "Log in");
  });

  test("submitForm() posts the form's hidden fields, follows the 303 and keeps its cookie", async () => {
    const session = createSession(base);
    const form = await fetchPage(session, "login");
    const home = await submitForm(session, form, "//html:form", { user: "p1" });
    assert.equal(home.url, base + "home");
    assert.equal(queryOne(home, "//html:p[@class='who']"), "user=p1");
  });

  test("post() without the hidden token is refused with the server's message", async () => {
    await assert.rejects(
      post(createSession(base), "login", { user: "p1" }),
      /POST .*\/app\/login answered 403 Forbidden: Missing CSRF token/,
    );
  });

  test("a windows-1252 page is decoded by its header or its meta tag", async () => {
    const session = createSession(base);
    assert.equal(await fetchOne(session, "latin1", "//html:p"), "Café €5");
    assert.equal(await fetchOne(session, "meta1252", "//html:p"), "\u201chi\u201d");
  });

  test("fetchOne() names the URL, query and regex when it finds none or several", async () => {
    const session = createSession(base);
    await assert.rejects(fetchOne(session, "forum?id=1", "//html:td", /id=(\d+)/), (e: Error) => {
      assert.match(
        e.message,
        /Expected exactly one result on http:.*\/app\/forum\?id=1 for \/\/html:td cut by \/id=\(\\d\+\)\/, found 0/,
      );
      return true;
    });
    await assert.rejects(fetchOne(session, "echo", "//html:p"), /found 2: "", "\?"|found 2/);
  });

  test("queryRows() keeps each row's values together, even when a row lacks one", async () => {
    const page = await fetchPage(createSession(base), "posts");
    const rows = queryRows(page, "//html:div[@class='post']", {
      id: "@id",
      author: "html:span[@class='author']",
      body: "html:div[@class='body']",
    });
    assert.deepEqual(rows, [
      { id: "post-1", author: "ann", body: "first" },
      { id: "post-2", author: "", body: "no author" },
      { id: "post-3", author: "bob", body: "third" },
    ]);
    assert.throws(
      () => queryRows(page, "count(//html:div)", { id: "@id" }),
      /row query count\(\/\/html:div\) .* selects no nodes/,
    );
    for (const field of ["count(.)", "//html:span", ""]) {
      assert.throws(
        () => queryRows(page, "//html:div[@class='post']", { id: "@id", author: field }),
        (e: Error) =>
          e.message.startsWith(
            `Cannot read the field "author" (${field}) of the rows //html:div[@class='post'] on ${page.url} ` +
              `(a field is a path inside its row, such as @id or html:td[2]): Invalid XPath`,
          ),
      );
    }
  });

  test("a request has a timeout and names what it was waiting for", async () => {
    const records: RequestRecord[] = [];
    const session = createSession(base, { timeoutMs: 200, onRequest: (r) => records.push(r) });
    const error = await fetchPage(session, "slow").catch((e) => e);
    assert.ok(error instanceof RequestError);
    assert.match(error.message, /GET .*\/app\/slow failed: no answer within 200 ms/);
    assert.equal(records.length, 1);
    assert.equal(records[0].status, 0);
  });

  test("a refused connection is a RequestError naming the URL", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(
      fetchPage(createSession(`http://127.0.0.1:${port}/`), "x"),
      /GET http:\/\/127\.0\.0\.1:\d+\/x failed: /,
    );
  });

  test("the session reports every request, redirects included, to its observer", async () => {
    const records: RequestRecord[] = [];
    await fetchPage(createSession(base, { onRequest: (r) => records.push(r) }), "private");
    assert.deepEqual(records.map((r) => r.status), [302, 200]);
    assert.ok(records.every((r) => r.ms >= 0));
  });
});
