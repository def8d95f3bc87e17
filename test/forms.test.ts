// Tier 3 submits like a browser: each bug found driving a real application has a case here, over real HTTP
// to an echo server that answers with what it received. test/forms-chromium.test.ts proves the rest against
// Chromium itself.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import {
  createSession,
  DEFAULT_USER_AGENT,
  fetchPage,
  FormNotFoundError,
  FormSubmissionError,
  HttpError,
  type Page,
  RequestError,
  type RequestRecord,
  submitForm,
} from "../lib/fetchData.ts";
import { excerpt, parseHtml } from "../lib/html.ts";
import { submitPageForm } from "../lib/steps.ts";

const forms: Record<string, string> = {
  select: `<form method=post action=echo><select name=sel><option>a<option selected>b</select>
    <select name=sel2><option disabled>x<option value=first>F<option>second</select></form>`,
  checkbox: `<form method=post action=echo><input type=checkbox name=cb checked><input type=checkbox name=off>
    <input type=radio name=r value=1 checked><input type=radio name=r value=2 checked></form>`,
  owners: `<input name=outside form=f value=1><form id=f method=post action=echo><input name=inside value=2>
    <input name=elsewhere form=f2 value=3></form><form id=f2></form>`,
  buttons: `<form method=post action=echo><input name=text value=t><input type=submit name=wpPreview value=Preview>
    <button name=wpSave value=Save>Save page</button><button type=button name=other>x</button></form>`,
  formaction:
    `<form method=post action=echo><button name=go formaction="echo?by=button" formmethod=get>Go</button></form>`,
  multipart: `<form method=post action=echo enctype=multipart/form-data><input name=title value="A title">
    <input type=file name=upload><textarea name=text>line 1
line 2</textarea><button name=save>Save</button></form>`,
  plain: `<form method=post action=echo enctype=text/plain><input name=a value="x y"><input name=b value="1"></form>`,
  get: `<form action="echo?stale=1#top"><input name=q value="a b&c"><input type=submit></form>`,
  latin1: `<form method=post action=echo accept-charset=windows-1252><input name=q value="Café € 日"></form>`,
  disabled: `<form method=post action=echo><button name=go disabled>Go</button><input name=a value=1>
    <fieldset disabled><legend><input name=inLegend value=2></legend><input name=inFieldset value=3></fieldset></form>`,
};

let base = "";
const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  const url = new URL(req.url!, "http://x");
  const send = (status: number, html: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "text/html; charset=utf-8", ...headers });
    res.end(html);
  };
  if (url.pathname === "/form") return send(200, `<!DOCTYPE html>${forms[url.searchParams.get("name")!]}`);
  if (url.pathname === "/gzip") {
    const html = `<!DOCTYPE html><p id=text>${"compressed ".repeat(1000)}</p>`;
    res.writeHead(200, { "content-type": "text/html", "content-encoding": "gzip" });
    return res.end(gzipSync(html));
  }
  if (url.pathname === "/bomb") {
    res.writeHead(200, { "content-type": "text/html", "content-encoding": "gzip" });
    return res.end(gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20)));
  }
  if (url.pathname === "/broken-gzip") {
    res.writeHead(200, { "content-type": "text/html", "content-encoding": "gzip" });
    return res.end("not gzip at all");
  }
  if (url.pathname === "/wiki-error") {
    return send(
      500,
      `<!DOCTYPE html><nav>Jump to navigation Jump to search Main page Recent changes Random page Help</nav>
      <main><h1>Editing Sandbox</h1><div class="mw-message-box-error">Sorry! We could not process your edit
      due to a loss of session data.</div><p>Please try again.</p></main><footer>Privacy policy</footer>`,
    );
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
    // As JSON: the HTML parser would turn the CR LF a form sends into LF.
    const body = JSON.stringify(Buffer.concat(chunks).toString("latin1"));
    const fields = { method: req.method!, url: req.url!, type: req.headers["content-type"] ?? "", body };
    const headers = JSON.stringify(req.headers);
    send(
      200,
      Object.entries(fields).map(([k, v]) => `<pre id=${k}>${escape(v)}</pre>`).join("") +
        `<pre id=headers>${escape(headers)}</pre>`,
    );
  });
});

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

/** What the echo server received when the named form was submitted. */
async function submitted(name: string, values = {}, options = {}) {
  const session = createSession(base);
  const page = await fetchPage(session, `form?name=${name}`);
  return echoed(await submitForm(session, page, "//html:form[not(@id='f2')]", values, options));
}

function echoed(page: Page) {
  const field = (id: string) => page.document.getElementById(id)?.textContent ?? "";
  return {
    method: field("method"),
    url: field("url"),
    type: field("type"),
    body: JSON.parse(field("body")) as string,
    headers: JSON.parse(field("headers")),
  };
}

describe("submitForm() sends what a browser sends", () => {
  test("a select sends its selected option, or its first enabled one when none is selected", async () => {
    assert.equal((await submitted("select")).body, "sel=b&sel2=first");
  });

  test("a checked checkbox without a value sends on; of two checked radios, the last", async () => {
    assert.equal((await submitted("checkbox")).body, "cb=on&r=2");
  });

  test("the form attribute decides the owner: a control outside is sent, one owned by another form is not", async () => {
    assert.equal((await submitted("owners")).body, "outside=1&inside=2");
  });

  test("the default button is sent as Enter would send it; a submitter is chosen by name or by label", async () => {
    assert.equal((await submitted("buttons")).body, "text=t&wpPreview=Preview");
    assert.equal((await submitted("buttons", {}, { submitter: "wpSave" })).body, "text=t&wpSave=Save");
    assert.equal((await submitted("buttons", {}, { submitter: "Save page" })).body, "text=t&wpSave=Save");
    assert.equal((await submitted("buttons", {}, { submitter: null })).body, "text=t");
  });

  test("an unknown or disabled submitter is an error naming the buttons there are", async () => {
    await assert.rejects(
      submitted("buttons", {}, { submitter: "wpDelete" }),
      (e: Error) =>
        e instanceof FormSubmissionError &&
        /Cannot submit the form .* on http:.*: it has no submit button "wpDelete"; its submit buttons: "wpPreview", "wpSave"/
          .test(e.message),
    );
    await assert.rejects(submitted("disabled"), /its default button "go" is disabled, so Enter would not submit it/);
  });

  test("a form query that finds no form, several, or something else is an error naming it, and nothing is sent", async () => {
    const records: RequestRecord[] = [];
    const session = createSession(base, { onRequest: (r) => records.push(r) });
    const page = await fetchPage(session, "form?name=owners");
    const refused = (query: string, found: string) =>
      assert.rejects(
        submitForm(session, page, query),
        (e: Error) =>
          e instanceof FormNotFoundError &&
          e.message === `Cannot submit the form ${query} on ${page.url}: found ${found}`,
      );
    await refused("//html:form[@id='nope']", "0 matches");
    await refused("//html:form", "2 matches");
    await refused("count(//html:form)", "a number, not a node");
    await refused("//html:input[@name='inside']", "<input>, not a <form>");
    await refused("//html:form[@id='f']/@id", "id, not a <form>");
    assert.equal(records.length, 1);
  });

  test("disabled controls and those in a disabled fieldset are left out, but not those in its legend", async () => {
    assert.equal((await submitted("disabled", {}, { submitter: null })).body, "a=1&inLegend=2");
  });

  test("the submitter's formaction and formmethod win over the form's", async () => {
    const got = await submitted("formaction");
    assert.equal(got.method, "GET");
    assert.equal(got.url, "/echo?go=");
  });

  test("enctype=multipart/form-data is posted as multipart, files from values", async () => {
    const file = new File(["file body"], "notes.txt", { type: "text/plain" });
    const got = await submitted("multipart", { upload: file });
    const boundary = /^multipart\/form-data; boundary=(.+)$/.exec(got.type)![1];
    assert.equal(
      got.body,
      [
        `--${boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\nA title\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="upload"; filename="notes.txt"\r\n`,
        `Content-Type: text/plain\r\n\r\nfile body\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nline 1\r\nline 2\r\n`,
        `--${boundary}\r\nContent-Disposition: form-data; name="save"\r\n\r\n\r\n`,
        `--${boundary}--\r\n`,
      ].join(""),
    );
  });

  test("an empty file input sends an empty file; text/plain sends lines", async () => {
    assert.match(
      (await submitted("multipart")).body,
      /name="upload"; filename=""\r\nContent-Type: application\/octet-stream/,
    );
    const plain = await submitted("plain");
    assert.equal(plain.type, "text/plain");
    assert.equal(plain.body, "a=x y\r\nb=1\r\n");
  });

  test("a GET form replaces the action's query; its fragment stays on the page's URL and is not sent", async () => {
    const session = createSession(base);
    const page = await submitForm(session, await fetchPage(session, "form?name=get"), "//html:form");
    assert.equal(echoed(page).url, "/echo?q=a+b%26c");
    assert.equal(page.url, `${base}echo?q=a+b%26c#top`);
  });

  test("accept-charset encodes in its charset, what it cannot hold as a character reference", async () => {
    assert.equal((await submitted("latin1")).body, "q=Caf%E9+%80+%26%2326085%3B");
  });

  test("values replace the form's own at their place, add new names at the end, and null removes one", async () => {
    assert.equal(
      (await submitted("buttons", { text: "new", extra: 1, wpPreview: null })).body,
      "text=new&extra=1",
    );
  });

  test("the form is read from the page's flat tree, building no DOM; a query left to the DOM finds the same", async () => {
    const session = createSession(base);
    const page = await fetchPage(session, "form?name=owners");
    const sent = echoed(await submitForm(session, page, "//html:form[@id='f']"));
    assert.equal(typeof Object.getOwnPropertyDescriptor(page, "document")?.get, "function", "page.document was built");
    assert.equal(sent.body, "outside=1&inside=2");
    // The flat evaluator leaves the following axis to the xpath package, over page.document.
    const viaDom = echoed(await submitForm(session, page, "//html:input[@name='outside']/following::html:form[1]"));
    assert.equal(typeof Object.getOwnPropertyDescriptor(page, "document")?.get, "undefined");
    assert.deepEqual(viaDom, sent);
  });

  test("a page whose DOM a caller changed is submitted as changed", async () => {
    const session = createSession(base);
    const page = await fetchPage(session, "form?name=owners");
    page.document.querySelector("input[name=inside]")!.setAttribute("value", "changed");
    assert.equal(echoed(await submitForm(session, page, "//html:form[@id='f']")).body, "outside=1&inside=changed");
  });

  test("submitPageForm() takes the same values: null unchecks a checkbox, an array sends a name per value", async () => {
    const session = createSession(base);
    const page = await fetchPage(session, "form?name=checkbox");
    const sent = await submitPageForm(session, page, "//html:form", { cb: null, tag: ["a", "b"] }, "save the tags");
    assert.equal(echoed(sent).body, "r=2&tag=a&tag=b");
  });
});

describe("requests carry a browser's headers and take compressed answers", () => {
  test("User-Agent names tierload unless the session sets its own; Accept and Accept-Encoding are sent", async () => {
    const session = createSession(base);
    const got = echoed(await fetchPage(session, "echo"));
    assert.equal(got.headers["user-agent"], DEFAULT_USER_AGENT);
    assert.match(DEFAULT_USER_AGENT, /tierload/);
    assert.equal(got.headers["accept-encoding"], "gzip, deflate, br");
    assert.match(got.headers.accept, /^text\/html/);
    const own = echoed(await fetchPage(createSession(base, { userAgent: "MyBot/1.0" }), "echo"));
    assert.equal(own.headers["user-agent"], "MyBot/1.0");
  });

  test("a form's POST sends its page as Referer and its origin as Origin", async () => {
    const got = await submitted("select");
    assert.equal(got.headers.referer, `${base}form?name=select`);
    assert.equal(got.headers.origin, base.slice(0, -1));
  });

  test("a gzipped answer is decompressed, and the record counts the bytes on the wire", async () => {
    const records: RequestRecord[] = [];
    const page = await fetchPage(createSession(base, { onRequest: (r) => records.push(r) }), "gzip");
    assert.equal(page.document.getElementById("text")!.textContent, "compressed ".repeat(1000));
    assert.ok(records[0].bytes > 0 && records[0].bytes < 200, `${records[0].bytes} bytes on the wire`);
  });

  test("a gzip bomb fails on what it grows to, naming the URL", async () => {
    await assert.rejects(
      fetchPage(createSession(base, { maxResponseBytes: 1024 * 1024 }), "bomb"),
      (e: Error) =>
        e instanceof RequestError &&
        /^GET http:\/\/127\.0\.0\.1:\d+\/bomb failed: the answer is larger than the limit of 1 MiB once decompressed \(gzip, \d+ bytes on the wire; maxResponseBytes\)$/
          .test(e.message),
    );
    await assert.rejects(
      fetchPage(createSession(base), "broken-gzip"),
      /broken-gzip failed: the answer's gzip body cannot be decompressed/,
    );
  });
});

describe("failure excerpts", () => {
  test("the error message and the main content come before the site's navigation", async () => {
    const error = await fetchPage(createSession(base), "wiki-error").catch((e) => e);
    assert.ok(error instanceof HttpError);
    assert.match(
      error.message,
      /answered 500 Internal Server Error: Sorry! We could not process your edit due to a loss/,
    );
    assert.equal(
      excerpt(parseHtml("<nav>Menu</nav><main><h1>Title</h1><p role=alert>Refused</p></main><footer>End</footer>")),
      "Refused Title Menu End",
    );
    assert.equal(excerpt(parseHtml("<p>plain page</p>")), "plain page");
  });
});
