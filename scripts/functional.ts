/**
 * The functional suite: test cases that read like the user's steps (tier 1), written against the
 * forum adapter (lib/forum.ts). With no --url it starts the reference forum and stops it after.
 *
 *   npx tsx scripts/functional.ts                       # or: deno run -A scripts/functional.ts
 *   npx tsx scripts/functional.ts --url http://localhost:8080/myapp/ --grep title --reporter junit > results.xml
 *
 * Each case signs up its own users, so cases are independent and run in any order.
 */
import assert from "node:assert/strict";
import { Option } from "commander";
import { command, EXIT, isMain, runMain, scriptArgs } from "../lib/cli.ts";
import {
  createThread,
  getForumId,
  getNumPosts,
  getNumThreads,
  getPosts,
  getStatedNumPosts,
  getStatedNumThreads,
  getThreadId,
  getThreadTitle,
  login,
  logout,
  postReplies,
  postReply,
  postReplyDirectly,
  signup,
  StepError,
  visit,
  whoAmI,
} from "../lib/forum.ts";
import { escapeHtml } from "../lib/web.ts";
import { startForum } from "./forum-server.ts";

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

/** What a case gets: the forum's URL, fresh users (signed up, answering their login) and names. */
export interface World {
  url: string;
  freshUser(): Promise<[username: string, password: string]>;
  /** A username nobody has. */
  newUsername(): string;
  /** `text` made unique to this run, for titles that must be found again. */
  unique(text: string): string;
}

export interface Case {
  name: string;
  run(world: World): Promise<void>;
}

export const cases: Case[] = [];
const test = (name: string, run: Case["run"]) => cases.push({ name, run });

test("creating a thread adds one to the forum's thread count", async ({ url, freshUser }) => {
  const session = await login(url, ...await freshUser());
  const other = await getForumId(session, "Other");
  const before = await getNumThreads(session, other);
  await createThread(session, other, "New Thread", "Newly added thread post");
  const after = await getNumThreads(session, other);
  assert.equal(after, before + 1);
});

test("a new user is logged in right after signing up", async ({ url, newUsername }) => {
  const username = newUsername();
  const session = await signup(url, username, "s3cret!");
  assert.equal(await whoAmI(session), username);
});

test("the seed's user p1 logs in with password p1", async ({ url }) => {
  const session = await login(url, "p1", "p1");
  assert.equal(await whoAmI(session), "p1");
});

test("a wrong password is refused with the forum's message", async ({ url, freshUser }) => {
  const [username] = await freshUser();
  await assert.rejects(
    login(url, username, "not-the-password"),
    /answered 403 Forbidden: "Wrong username or password"/,
  );
});

test("a taken username cannot be signed up again", async ({ url, freshUser }) => {
  const [username] = await freshUser();
  await assert.rejects(
    signup(url, username, "other"),
    new RegExp(`answered 409 Conflict: "The username \\"${username}\\" is taken"`),
  );
});

test("logging out ends the session", async ({ url, freshUser }) => {
  const session = await login(url, ...await freshUser());
  const other = await getForumId(session, "Other");
  await logout(session);
  assert.equal(await whoAmI(session), null);
  await assert.rejects(
    createThread(session, other, "After logout", "x"),
    /the page offers no form to create the thread/,
  );
});

test("an anonymous visitor cannot post a reply", async ({ url }) => {
  const visitor = visit(url);
  const threadId = await getThreadId(visitor, await getForumId(visitor, "General"), "Welcome to General");
  const before = await getNumPosts(visitor, threadId);
  await assert.rejects(
    postReplyDirectly(visitor, threadId, "sneaky", true),
    /answered 403 Forbidden: "You must log in to reply"/,
  );
  assert.equal(await getNumPosts(visitor, threadId), before);
});

test("a reply adds one post to the thread, and the stated count agrees", async ({ url, freshUser, unique }) => {
  const session = await login(url, ...await freshUser());
  const threadId = await createThread(session, await getForumId(session, "General"), unique("Replies"), "Start");
  const before = await getNumPosts(session, threadId);
  await postReply(session, threadId, "One more");
  assert.equal(await getNumPosts(session, threadId), before + 1);
  assert.equal(await getStatedNumPosts(session, threadId), before + 1);
});

test("a forum's stated thread count agrees with the threads it lists", async ({ url, freshUser, unique }) => {
  const session = await login(url, ...await freshUser());
  const forum = await getForumId(session, "Announcements");
  await createThread(session, forum, unique("Counted"), "x");
  assert.equal(await getStatedNumThreads(session, forum), await getNumThreads(session, forum));
});

test("a new thread is found under its title, with its first post by its author", async ({ url, freshUser, unique }) => {
  const [username, password] = await freshUser();
  const session = await login(url, username, password);
  const general = await getForumId(session, "General");
  const title = unique("Findable");
  const threadId = await createThread(session, general, title, "The first post");
  assert.equal(await getThreadId(session, general, title), threadId);
  assert.deepEqual((await getPosts(session, threadId)).map((p) => [p.author, p.body]), [[username, "The first post"]]);
});

test("a thread longer than one page keeps every post, in order", async ({ url, freshUser, unique }) => {
  const session = await login(url, ...await freshUser());
  const threadId = await createThread(session, await getForumId(session, "General"), unique("Long"), "post 0");
  const replies = Array.from({ length: 55 }, (_, i) => `post ${i + 1}`);
  await postReplies(session, threadId, replies);
  assert.deepEqual((await getPosts(session, threadId)).map((p) => p.body), ["post 0", ...replies]);
  assert.equal(await getStatedNumPosts(session, threadId), 56);
});

// Variations are rows run through one case.
const titles: [string, string][] = [
  ["quotes", `It's a "quoted" title`],
  ["an ampersand", "Tom & Jerry &amp; friends"],
  ["non-ASCII text", "Grüße aus Köln – 東京 🎉"],
  ["markup", `<script>alert("x")</script><b>bold</b>`],
];
for (const [what, typed] of titles) {
  test(`a title with ${what} comes back exactly as typed`, async ({ url, freshUser, unique }) => {
    const session = await login(url, ...await freshUser());
    const general = await getForumId(session, "General");
    const title = unique(typed);
    const threadId = await createThread(session, general, title, typed);
    assert.equal(await getThreadTitle(session, threadId), title);
    assert.equal(await getThreadId(session, general, title), threadId);
    assert.equal((await getPosts(session, threadId))[0].body, typed);
  });
}

const refusedTitles: [string, string, RegExp][] = [
  ["an empty title", "", /answered 400 Bad Request: "Title is required"/],
  ["a blank title", "   ", /answered 400 Bad Request: "Title is required"/],
  ["an oversize title", "x".repeat(201), /answered 400 Bad Request: "Title must be at most 200 characters"/],
];
for (const [what, title, message] of refusedTitles) {
  test(`${what} is refused with the forum's message`, async ({ url, freshUser }) => {
    const session = await login(url, ...await freshUser());
    const other = await getForumId(session, "Other");
    const before = await getNumThreads(session, other);
    await assert.rejects(createThread(session, other, title, "body"), message);
    assert.equal(await getNumThreads(session, other), before);
  });
}

test("a reply posted without the CSRF token is refused", async ({ url, freshUser, unique }) => {
  const session = await login(url, ...await freshUser());
  const threadId = await createThread(session, await getForumId(session, "Other"), unique("CSRF"), "x");
  await assert.rejects(
    postReplyDirectly(session, threadId, "forged", false),
    /answered 403 Forbidden: "The form's CSRF token is missing/,
  );
  assert.equal(await getNumPosts(session, threadId), 1);
});

test("two users' sessions do not mix", async ({ url, freshUser, unique }) => {
  const [alice, alicePassword] = await freshUser();
  const [bob, bobPassword] = await freshUser();
  const aliceSession = await login(url, alice, alicePassword);
  const bobSession = await login(url, bob, bobPassword);
  const threadId = await createThread(
    aliceSession,
    await getForumId(aliceSession, "Other"),
    unique("Shared"),
    "from alice",
  );
  await postReply(bobSession, threadId, "from bob");
  assert.equal(await whoAmI(aliceSession), alice);
  assert.equal(await whoAmI(bobSession), bob);
  assert.deepEqual((await getPosts(aliceSession, threadId)).map((p) => p.author), [alice, bob]);
});

test("an unknown thread is a 404 with the forum's message", async ({ url }) => {
  await assert.rejects(
    getThreadTitle(visit(url), 987654321),
    /answered 404 Not Found: "There is no thread with id 987654321"/,
  );
});

// ---------------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------------

export interface Result {
  name: string;
  ms: number;
  error?: unknown;
}

/**
 * Runs the cases whose names match `grep` against the forum at `url`, one after another, until they are
 * done or `stop()` says to stop (then the case in flight finishes first).
 */
export async function runCases(
  url: string,
  grep?: RegExp,
  onResult?: (result: Result) => void,
  stop: () => boolean = () => false,
): Promise<Result[]> {
  const run = Date.now().toString(36);
  let counter = 0;
  const world: World = {
    url,
    unique: (text) => `${text} [${run}-${++counter}]`,
    newUsername: () => `u${run}_${++counter}`,
    async freshUser() {
      const username = world.newUsername();
      await signup(url, username, "pw-" + username);
      return [username, "pw-" + username];
    },
  };
  const results: Result[] = [];
  for (const testCase of selected(grep)) {
    if (stop()) break;
    const started = performance.now();
    let error: unknown;
    try {
      await testCase.run(world);
    } catch (caught) {
      error = caught;
    }
    const result = { name: testCase.name, ms: performance.now() - started, error };
    results.push(result);
    onResult?.(result);
  }
  return results;
}

/** What a person needs to see of a failure: the step, the URL, the status and the page. */
export function describeFailure(error: unknown): string[] {
  if (error instanceof StepError) {
    return [
      `step:   ${error.step} (as ${error.user})`,
      `error:  ${error.message}`,
      ...(error.url ? [`url:    ${error.url}`] : []),
      ...(error.status ? [`status: ${error.status}`] : []),
      ...(error.excerpt ? [`page:   ${error.excerpt}`] : []),
    ];
  }
  if (error instanceof assert.AssertionError) {
    const step = error.stack?.split("\n").find((line) => line.includes("functional.ts"))?.trim();
    return [`check:  ${error.message.split("\n").filter(Boolean).join(" ")}`, ...(step ? [`where:  ${step}`] : [])];
  }
  return [`error:  ${error instanceof Error ? error.message : String(error)}`];
}

// deno-lint-ignore no-control-regex -- XML 1.0 cannot carry these at all
const xml = (text: string) => escapeHtml(text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, ""));

export function formatJunit(results: Result[], seconds: number): string {
  const failures = results.filter((r) => r.error).length;
  const cases = results.map((r) => {
    const open = `  <testcase classname="functional" name="${xml(r.name)}" time="${(r.ms / 1000).toFixed(3)}"`;
    if (!r.error) return `${open}/>`;
    const lines = describeFailure(r.error);
    return `${open}>\n    <failure message="${xml(lines[0])}">${xml(lines.join("\n"))}</failure>\n  </testcase>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="${results.length}" failures="${failures}" time="${seconds.toFixed(3)}">
<testsuite name="functional" tests="${results.length}" failures="${failures}" time="${seconds.toFixed(3)}">
${cases.join("\n")}
</testsuite>
</testsuites>`;
}

function selected(grep?: RegExp): Case[] {
  return cases.filter((c) => !grep || grep.test(c.name));
}

function summary(results: Result[]): string {
  const failed = results.filter((r) => r.error).length;
  return `${results.length - failed} passed, ${failed} failed`;
}

export async function main(argv = process.argv): Promise<void> {
  const program = command("functional")
    .description("Run the forum's functional test cases: signing up, logging in, threads, replies, escaping, CSRF.")
    .option("--url <url>", "the forum to test (default: start the reference forum on a free port)")
    .option("--grep <pattern>", "run only the cases whose names match this regular expression")
    .addOption(new Option("--reporter <kind>", "how to report").choices(["spec", "tap", "junit"]).default("spec"))
    .option("--list", "list the cases and exit")
    .addHelpText(
      "after",
      `
Exit status: 0 when every case passed, 1 when any failed, 2 for a usage error, 130 when interrupted
(Ctrl-C: the case in flight finishes, the report shows what ran; a second Ctrl-C quits at once).
The spec reporter prints one line per case and a last line "N passed, N failed";
tap and junit print their format on stdout and that line on stderr.`,
    )
    .parse(scriptArgs(argv));
  const options = program.opts<{ url?: string; grep?: string; reporter: "spec" | "tap" | "junit"; list?: boolean }>();
  let grep: RegExp | undefined;
  try {
    grep = options.grep ? new RegExp(options.grep, "i") : undefined;
  } catch (error) {
    program.error(`error: --grep is not a regular expression: ${(error as Error).message}`, { exitCode: 2 });
  }
  if (options.list) {
    for (const c of selected(grep)) console.log(c.name);
    return;
  }
  const forum = options.url ? null : await startForum({ port: 0, log: () => {} });
  const url = options.url ?? forum!.url;
  process.stderr.write(`Testing ${url}${forum ? " (the reference forum, started for this run)" : ""}\n`);
  let interrupted = false;
  const onSignal = (signal: string) => {
    // A second one quits at once; the embedded PostgreSQL stops when our pipe to it closes.
    if (interrupted) process.exit(EXIT.interrupted);
    interrupted = true;
    process.stderr.write(`${signal}: stopping after the case in flight (Ctrl-C again to quit now)\n`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const started = performance.now();
  let index = 0;
  if (options.reporter === "tap") console.log("TAP version 13");
  const results = await runCases(url, grep, (result) => {
    index++;
    const ms = `${Math.round(result.ms)} ms`;
    const details = result.error ? describeFailure(result.error) : [];
    if (options.reporter === "spec") {
      console.log(`${result.error ? "✗" : "✓"} ${result.name} (${ms})`);
      for (const line of details) console.log(`    ${line}`);
    } else if (options.reporter === "tap") {
      console.log(`${result.error ? "not ok" : "ok"} ${index} - ${result.name} # time=${ms}`);
      if (details.length) console.log(`  ---\n${details.map((l) => `  # ${l}`).join("\n")}\n  ...`);
    }
  }, () => interrupted).finally(() => forum?.stop());
  const seconds = (performance.now() - started) / 1000;
  if (options.reporter === "tap") console.log(`1..${results.length}`);
  if (options.reporter === "junit") console.log(formatJunit(results, seconds));
  const notRun = selected(grep).length - results.length;
  if (interrupted) process.stderr.write(`Interrupted: ${notRun} case${notRun === 1 ? "" : "s"} not run\n`);
  (options.reporter === "spec" ? console.log : (line: string) => process.stderr.write(line + "\n"))(summary(results));
  process.exitCode = interrupted
    ? EXIT.interrupted
    : results.length > 0 && results.every((r) => !r.error)
    ? EXIT.ok
    : EXIT.failed;
}

if (isMain(import.meta)) runMain(main);
