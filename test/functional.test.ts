// The functional suite passes on the reference forum, and fails, in the right cases and with messages
// that point at the fault, on forums with planted bugs. A suite that cannot fail proves nothing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { RequestError, type Result, StepError } from "../lib/tierload.ts";
import { forum as suite } from "../scripts/functional.ts";

const { cases, describeFailure, formatJunit } = suite;
const runCases = suite.run;
import type { Fault } from "../scripts/forum-server.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { runScript, startTestForum as start } from "./helpers.ts";

function failuresOf(results: Result[]): Map<string, string> {
  return new Map(results.filter((r) => r.error).map((r) => [r.name, describeFailure(r.error).join("\n")]));
}

describe("on the reference forum", () => {
  let forum: RunningForum;
  before(async () => forum = await start());
  after(() => forum.stop());

  test("every case passes, and there are at least 15, the seed's first", async () => {
    const results = await runCases(forum.url);
    assert.deepEqual([...failuresOf(results)], []);
    assert.ok(results.length >= 15, `only ${results.length} cases`);
    assert.equal(results[0].name, "creating a thread adds one to the forum's thread count");
  });

  test("the script run from outside prints JUnit XML, the summary on stderr, and exits 0", async () => {
    const run = await runScript("functional.ts", [
      "--url",
      forum.url,
      "--grep",
      "p1|wrong password",
      "--reporter",
      "junit",
    ]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites tests="2" failures="0"/);
    assert.match(
      run.stdout,
      /<testcase classname="functional" name="the seed&#39;s user p1 logs in with password p1" time="[\d.]+"\/>/,
    );
    assert.match(run.stderr, /\n2 passed, 0 failed\n$/);
  });

  test("a --grep that is not a regular expression is a usage error: exit 2", async () => {
    const run = await runScript("functional.ts", ["--url", forum.url, "--grep", "("]);
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--grep is not a regular expression/);
  });
});

test("a --url that is not an http or https URL is a usage error: exit 2, no case run, no forum started", async () => {
  for (const url of ["not a url", "", "ftp://127.0.0.1/"]) {
    const run = await runScript("functional.ts", ["--url", url]);
    assert.equal(run.status, 2, url);
    assert.match(run.stderr, /expected an http:\/\/ or https:\/\/ URL/);
    assert.equal(run.stdout, "");
  }
});

const planted: [Fault, Record<string, RegExp>][] = [
  ["drop-replies", {
    "a reply adds one post to the thread, and the stated count agrees":
      /step: +reply to thread \d+ \(as "u\w+"\)\nerror: +Cannot reply to thread \d+ as "u\w+": the reply did not appear on the thread/,
    "two users' sessions do not mix": /the reply did not appear on the thread/,
    "a thread longer than one page keeps every post, in order": /the reply did not appear on the thread/,
  }],
  ["unescaped-titles", {
    "a title with an ampersand comes back exactly as typed":
      /the thread did not appear|Expected values to be strictly equal/,
    "a title with markup comes back exactly as typed":
      /create the thread "<script>alert\(\\"x\\"\)<\/script><b>bold<\/b> \[[\w-]+\]" .*the thread did not appear/,
  }],
  ["stale-counts", {
    "a reply adds one post to the thread, and the stated count agrees":
      /check: +Expected values to be strictly equal: 1 !== 2/,
    // The stated count drives the paging: the 51st post lands on a page the count says is the last.
    "a thread longer than one page keeps every post, in order":
      /the reply did not appear on the thread \(.*page=1#post-\d+\)\n.*\n.*\npage: .* 1 posts Page 1 of 1/,
  }],
];

for (const [fault, expected] of planted) {
  test(`with the bug "${fault}" planted, exactly the cases that meet it fail, pointing at it`, async () => {
    const forum = await start([fault]);
    try {
      const failures = failuresOf(await runCases(forum.url));
      assert.deepEqual([...failures.keys()].sort(), Object.keys(expected).sort());
      for (const [name, message] of Object.entries(expected)) assert.match(failures.get(name)!, message);
    } finally {
      await forum.stop();
    }
  });
}

test("a failing run exits 1 and its report shows the step, URL, status and page", async () => {
  const forum = await start(["drop-replies"]);
  try {
    const run = await runScript("functional.ts", ["--url", forum.url, "--grep", "reply adds"]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stdout, /^✗ a reply adds one post to the thread, and the stated count agrees \(\d+ ms\)$/m);
    assert.match(run.stdout, /^ {4}url: +http:\/\/127\.0\.0\.1:\d+\/myapp\/thread\?id=\d+$/m);
    assert.match(run.stdout, /^ {4}status: 200$/m);
    // The page's main content first, then its navigation (who is logged in).
    assert.match(run.stdout, /^ {4}page: +General .*1 posts.* Forums Logged in as u\w+/m);
    assert.match(run.stdout, /\n0 passed, 1 failed\n$/);
  } finally {
    await forum.stop();
  }
});

test("the JUnit report escapes names and messages", () => {
  const report = formatJunit([{ name: `<"&'>`, ms: 1, error: new Error("bad <thing> & \u0001") }], 0.001);
  assert.match(report, /name="&#60;&#34;&#38;&#39;&#62;"/);
  assert.match(
    report,
    /<failure message="error: +bad &#60;thing&#62; &#38; \\x01">/,
    "a control character shown, not sent",
  );
  assert.ok(cases.length >= 15);
});

test("a failure's long URL is shown cut short, with its length", () => {
  const url = `http://127.0.0.1:8080/search?q=${"x".repeat(5000)}`;
  const lines = describeFailure(new StepError("search", '"p1"', "no results", new RequestError("GET", url, "reset")));
  assert.match(lines[2], /^url: +http:\/\/127\.0\.0\.1:8080\/search\?q=x+… \(5031 characters\)$/);
});

test("a failure's words from the server are shown, not obeyed: no escape reaches the terminal", () => {
  const page = "\x1b[2J\x1b]52;c;cHduZWQ=\x07\n1 passed, 0 failed";
  const lines = describeFailure(new Error(`Cannot log in: the server said ${page}`));
  assert.equal(lines.length, 1);
  // deno-lint-ignore no-control-regex -- finding them is the point
  assert.doesNotMatch(lines[0], /[\x00-\x1f]/);
  assert.match(lines[0], /\\x1b\[2J/);
});
