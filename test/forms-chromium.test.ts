// The proof that submitForm sends what a browser sends: generated forms (test/form-generator.ts) are submitted
// by headless Chromium and by submitForm to one local echo server, which compares what arrived byte for byte.
// Chromium starts once for the file. Run one form alone: FORM_SEED=17 node --import tsx --test <this file>.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { existsSync } from "node:fs";
import type { Browser, BrowserContext, Page as BrowserPage } from "playwright-core";
import { createSession, fetchPage, FormSubmissionError, submitForm } from "../lib/fetchData.ts";
import { type GeneratedForm, generateForm } from "./form-generator.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find(existsSync);
const FORMS = process.env.FORM_SEED ? [Number(process.env.FORM_SEED)] : Array.from({ length: 120 }, (_, i) => i + 1);

/** One request as the echo server saw it. */
interface Arrival {
  method: string;
  url: string;
  headerNames: string[];
  contentType: string;
  body: Buffer;
}

const pages = new Map<string, GeneratedForm>();
const arrivals: Arrival[] = [];
let notify: (() => void) | undefined;
let base = "";

const server = createServer((req: IncomingMessage, res) => {
  const path = new URL(req.url!, "http://x").pathname;
  if (path === "/favicon.ico") {
    res.writeHead(404);
    return res.end();
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    arrivals.push({
      method: req.method!,
      url: req.url!,
      headerNames: [...new Set(req.rawHeaders.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase()))].sort(),
      contentType: req.headers["content-type"] ?? "",
      body: Buffer.concat(chunks),
    });
    notify?.();
    const form = pages.get(path);
    if (form) {
      res.writeHead(200, { "content-type": `text/html; charset=${form.encoding}`, "set-cookie": "sid=s1; Path=/" });
      return res.end(form.html.replaceAll("PORT", String((server.address() as AddressInfo).port)));
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!DOCTYPE html><title>Got it</title><p>ok</p><form method=post action=/posted><button>Go</button></form>`);
  });
});

/** The next request to arrive, within five seconds. */
async function nextArrival(what: string): Promise<Arrival> {
  const deadline = Date.now() + 5000;
  while (arrivals.length === 0) {
    if (Date.now() > deadline) throw new Error(`${what} sent nothing within 5 s`);
    await new Promise<void>((resolve) => {
      notify = resolve;
      setTimeout(resolve, 50);
    });
  }
  return arrivals.shift()!;
}

/** Method, URL, content type without its boundary, and the fields: the body, or multipart's parts one by one. */
function decoded(arrival: Arrival) {
  const [type, ...params] = arrival.contentType.split(";").map((p) => p.trim());
  const boundary = params.find((p) => p.startsWith("boundary="))?.slice("boundary=".length);
  const body = arrival.body.toString("latin1");
  const fields = boundary
    ? body.split(`--${boundary}`).slice(1, -1).map((part) => part.replace(/^\r\n/, "").replace(/\r\n$/, ""))
    : [body];
  return { method: arrival.method, url: arrival.url, contentType: type.toLowerCase(), fields };
}

/** What the browser says of the target form: its default button, its named ones, the inputs a user can use. */
interface Plan {
  defaultButton: { id: string; disabled: boolean } | null;
  named: string[];
  usable: string[];
}

// Run in the page, as source text (a compiled function would carry the transpiler's helpers): given a button's
// name, clicks it; given null, answers the Plan.
const IN_BROWSER = `function (click) {
  const target = document.getElementById("target");
  const owned = (e) => e.form === target;
  const enabled = (e) => !e.matches(":disabled");
  const buttons = Array.from(document.querySelectorAll("button, input"))
    .filter((e) => owned(e) && ["submit", "image"].includes(e.type));
  if (click !== null) return buttons.find((b) => b.name === click).click();
  const unique = (b) => b.name && buttons.filter((o) => o.name === b.name).length === 1;
  return {
    defaultButton: buttons[0] ? { id: buttons[0].id, disabled: !enabled(buttons[0]) } : null,
    named: buttons.filter((b) => enabled(b) && unique(b)).map((b) => b.name),
    usable: Array.from(document.querySelectorAll("input"))
      .filter((e) => owned(e) && enabled(e) && !e.closest("datalist")).map((e) => e.id),
  };
}`;

if (!CHROMIUM) {
  test("submitForm sends what Chromium sends: skipped, Chromium is not installed (apt-get install chromium)", {
    skip: true,
  }, () => {});
} else {
  let browser: Browser;
  let context: BrowserContext;

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    for (const seed of FORMS) pages.set(`/form/${seed}`, generateForm(seed));
    const { chromium } = await import("playwright-core");
    // Headless, with the flags that keep Chromium off the network; Playwright gives it a fresh profile.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    context = await browser.newContext();
    context.setDefaultTimeout(10_000);
  });

  after(async () => {
    await browser?.close();
    server.closeAllConnections();
    server.close();
  });

  // One tab for the cases, each waiting for its submission's answer to load; after a failure, a new tab, so that
  // no navigation the failed case started can reach the next one.
  let shared: BrowserPage | undefined;
  const withTab = (run: (tab: BrowserPage) => Promise<void>) => async () => {
    shared ??= await context.newPage();
    try {
      await run(shared);
    } catch (error) {
      await shared.close();
      shared = undefined;
      throw error;
    }
  };

  test(
    "a navigation sends the header names Chromium sends, a form's POST too",
    withTab(async (tab) => {
      const path = "/form/headers";
      pages.set(path, {
        ...generateForm(0),
        html:
          `<!DOCTYPE html><form id=target method=post action=/posted><input name=a value=1><button>Go</button></form>`,
      });
      await tab.goto(base + "form/headers");
      arrivals.length = 0;
      await tab.goto(base + "navigated");
      const browserNavigation = await nextArrival("Chromium's navigation");
      await tab.goto(base + "form/headers");
      arrivals.length = 0;
      await Promise.all([tab.waitForEvent("load"), tab.click("button")]);
      const browserPost = await nextArrival("Chromium's form");

      const session = createSession(base);
      const form = await fetchPage(session, "form/headers");
      arrivals.length = 0;
      await fetchPage(session, "navigated");
      const ownNavigation = await nextArrival("fetchPage");
      await submitForm(session, form, "//html:form[@id='target']");
      const ownPost = await nextArrival("submitForm");
      assert.deepEqual(ownNavigation.headerNames, browserNavigation.headerNames, "a GET navigation");
      assert.deepEqual(ownPost.headerNames, browserPost.headerNames, "a form's POST");
    }),
  );

  for (const seed of FORMS) {
    test(
      `generated form ${seed} is sent as Chromium sends it`,
      withTab(async (tab) => {
        const form = pages.get(`/form/${seed}`)!;
        const url = `${base}form/${seed}`;
        await tab.goto(url);
        const plan = await tab.evaluate(`(${IN_BROWSER})(null)`) as Plan;
        const typed = form.typed.filter((t) => plan.usable.includes(t.id));
        const files = form.files.filter((f) => plan.usable.includes(f.id));
        const values: Record<string, string | File[]> = {};
        for (const t of typed) values[t.name] = t.value;
        for (const f of files) {
          values[f.name] = f.files.map((file) =>
            new File([Buffer.from(file.content, "latin1")], file.name, {
              type: file.mimeType,
            })
          );
        }
        let mode = form.mode;
        if (mode === "button" && plan.named.length === 0) mode = "script";
        if (mode === "enter" && !plan.defaultButton) mode = "script";
        const submitter = mode === "button"
          ? plan.named[seed % plan.named.length]
          : mode === "script"
          ? null
          : undefined;

        const session = createSession(base);
        const page = await fetchPage(session, url);
        if (mode === "enter" && plan.defaultButton!.disabled) {
          // Enter does nothing then; submitForm says why it cannot do as Enter does.
          await assert.rejects(
            submitForm(session, page, "//html:form[@id='target']", values, { submitter }),
            (e: Error) => e instanceof FormSubmissionError && /default button .* is disabled/.test(e.message),
          );
          return;
        }
        for (const t of typed) {
          await tab.evaluate(`document.getElementById(${JSON.stringify(t.id)}).value = ${JSON.stringify(t.value)}`);
        }
        for (const f of files) {
          await tab.setInputFiles(
            `#${f.id}`,
            f.files.map((file) => ({
              name: file.name,
              mimeType: file.mimeType,
              buffer: Buffer.from(file.content, "latin1"),
            })),
          );
        }
        // What arrived so far was the form's page; its action may be that page's own URL.
        arrivals.length = 0;
        // The answer must have loaded before the tab closes: closing a tab mid-navigation can hang.
        const loaded = tab.waitForEvent("load");
        loaded.catch(() => {}); // when an earlier step fails, its own error is the one to see
        if (mode === "enter") {
          await tab.focus("#enter");
          await tab.keyboard.press("Enter");
        } else if (mode === "button") {
          await tab.evaluate(`(${IN_BROWSER})(${JSON.stringify(submitter)})`);
        } else {
          await tab.evaluate(`document.getElementById("target").submit()`);
        }
        const about = `\nmode ${mode}, submitter ${JSON.stringify(submitter)}, typed ${JSON.stringify(typed)}, ` +
          `files ${JSON.stringify(files)}, encoding ${form.encoding}\n${form.html}`;
        const expected = decoded(await nextArrival(`Chromium, for form ${seed}${about}`));
        await loaded;
        arrivals.length = 0;
        await submitForm(session, page, "//html:form[@id='target']", values, { submitter });
        const actual = decoded(await nextArrival(`submitForm, for form ${seed}${about}`));
        assert.deepEqual(actual, expected, `form ${seed} was sent differently${about}`);
      }),
    );
  }
}
