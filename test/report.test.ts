// The HTML report of a small real run: its structure, then Chromium rendering it (light, dark, narrow).
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { evaluateXPath, parseHtml } from "../lib/html.ts";
import { renderReport } from "../lib/report-html.ts";
import type { Results } from "../lib/results.ts";
import { parseLoadOptions, runLoad } from "../lib/tierload.ts";
import forumScenario from "../scripts/load.ts";
import { startTestForum } from "./helpers.ts";

const OUTPUT = resolve("test-output");
const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find(existsSync);
let results: Results;
let file: string;

before(async () => {
  const forum = await startTestForum();
  try {
    const options = parseLoadOptions(forumScenario, [
      "node",
      "load.ts",
      "--users",
      "8",
      "--actions",
      "4",
      "--think-time",
      "100",
    ]);
    results = await runLoad(forumScenario, { ...options, url: forum.url, databaseUrl: forum.databaseUrl });
  } finally {
    await forum.stop();
  }
  mkdirSync(OUTPUT, { recursive: true });
  file = join(OUTPUT, "report.html");
  writeFileSync(file, renderReport(results));
});

test("the report holds the verdict, a row per action and page load, five charts and the failures", () => {
  const doc = parseHtml(readFileSync(file, "utf8"));
  assert.match(String(evaluateXPath(doc, "string(//html:h1)")), /tierload: 8 users x 4 actions PASS/);
  const rows = (evaluateXPath(doc, "//html:tbody/html:tr/html:th") as Node[]).map((n) => n.textContent);
  for (const name of Object.keys(results.actions)) assert.ok(rows.includes(name), `${name} missing from the table`);
  assert.deepEqual(
    (evaluateXPath(doc, "//html:figure/html:figcaption") as Node[]).map((n) => n.textContent),
    [
      "Requests and failures per second",
      "Latency per action, p50 (solid) and p99 (dashed), log scale",
      "Active users",
      "PostgreSQL connections, held and active",
      "Latency distribution per action",
    ],
  );
  assert.equal(evaluateXPath(doc, "count(//*[local-name()='polyline'][string-length(@points) > 0]) >= 5"), true);
  assert.match(String(evaluateXPath(doc, "string(//html:section[html:h2='First failures'])")), /None\./);
});

test("the report is self-contained: nothing to fetch, no script", () => {
  const html = readFileSync(file, "utf8");
  assert.doesNotMatch(html, /<script|\ssrc=|<link|https?:\/\/(?!127\.0\.0\.1)(?!www\.w3\.org\/2000\/svg)/);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
});

test("a report from saved JSON escapes what it shows", () => {
  const hostile: Results = JSON.parse(JSON.stringify(results));
  hostile.actions.reply.failures = [{ step: "x", message: `<img src=x onerror=alert(1)> & "quoted"` }];
  const html = renderReport(hostile);
  assert.ok(html.includes("&#60;img src=x onerror=alert(1)&#62; &#38; &#34;quoted&#34;"));
  assert.doesNotMatch(html, /<img/);
});

test("Chromium renders it, light, dark and narrow, without a console error", async (t) => {
  if (!CHROMIUM) return t.skip("no Chromium here (apt-get install chromium); .ci/run installs it");
  const profile = mkdtempSync(join(tmpdir(), "tierload-chromium-"));
  const chromium = (args: string[]) =>
    new Promise<{ stdout: string; stderr: string }>((done) => {
      const child = spawn(CHROMIUM, [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        `--user-data-dir=${profile}`,
        "--enable-logging=stderr",
        "--v=0",
        ...args,
        pathToFileURL(file).href,
      ], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c) => stdout += c);
      child.stderr.on("data", (c) => stderr += c);
      child.on("close", () => done({ stdout, stderr }));
    });
  try {
    const dom = await chromium(["--dump-dom"]);
    const rendered = parseHtml(dom.stdout);
    assert.equal(
      evaluateXPath(rendered, "count(//html:figure[@class='chart']/*[local-name()='svg'])"),
      5,
      dom.stderr.slice(-2000),
    );
    assert.doesNotMatch(dom.stderr, /CONSOLE|Uncaught|Refused to/, "the page logged to the console");
    for (
      const [name, args] of Object.entries({
        light: ["--window-size=1200,2600"],
        dark: ["--window-size=1200,2600", "--force-dark-mode"],
        narrow: ["--window-size=420,3200"],
      })
    ) {
      const png = join(OUTPUT, `report-${name}.png`);
      rmSync(png, { force: true });
      const shot = await chromium([...args, "--hide-scrollbars", `--screenshot=${png}`]);
      assert.ok(existsSync(png), `no ${name} screenshot: ${shot.stderr.slice(-1000)}`);
      assert.deepEqual([...readFileSync(png).subarray(1, 4)], [0x50, 0x4e, 0x47]);
      assert.doesNotMatch(shot.stderr, /CONSOLE|Uncaught/);
    }
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
});
