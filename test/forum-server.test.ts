// The reference forum over real HTTP, on a real embedded PostgreSQL.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import {
  cookieHeader,
  createSession,
  evaluateXPath,
  fetchOne,
  fetchPage,
  HttpError,
  type Page,
  post,
  queryOne,
  type Session,
  submitForm,
} from "../lib/fetchData.ts";
import {
  createThread,
  getActiveThreadIds,
  getForumId,
  getNumThreads,
  getPostCounts,
  getStatedNumThreads,
  getThreadId,
  getThreadIds,
  postReply,
  signup as signUp,
} from "../lib/forum.ts";
import { LIMITS, startForum } from "../scripts/forum-server.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { runScript, startScript, startTestForum, waitFor } from "./helpers.ts";

let forum: RunningForum;
let db: pg.Pool;
let userCount = 0;

before(async () => {
  forum = await startTestForum([], { pool: 40 });
  db = new pg.Pool({ connectionString: forum.databaseUrl, max: 2 });
});
after(async () => {
  await db?.end();
  await forum?.stop();
});

/** A new user, signed up and logged in, through the adapter. */
function signup(name = `user${++userCount}_${Date.now()}`, url = forum.url): Promise<Session> {
  return signUp(url, name, "secret");
}

async function expectProblem(promise: Promise<unknown>, status: number, message: RegExp): Promise<void> {
  const error = await promise.then(() => null, (e) => e);
  assert.ok(error instanceof HttpError, `expected an HTTP ${status}, got ${error}`);
  assert.equal(error.status, status, error.message);
  assert.match(error.message, message);
}

/** A new thread, started through the adapter, and its page. */
async function newThread(session: Session, forumId: number, title: string, body = "First post"): Promise<Page> {
  return fetchPage(session, "thread", { id: await createThread(session, forumId, title, body) });
}

async function rows(sql: string, params: unknown[] = []): Promise<number> {
  return Number((await db.query(sql, params)).rows[0].n);
}

describe("pages and actions", () => {
  test("the index lists the forums from the start, Other among them", async () => {
    const names = evaluateXPath(
      (await fetchPage(createSession(forum.url), "")).document,
      "//html:tr[@class='forum']/html:th[@class='name']/html:a",
    );
    assert.deepEqual((names as Element[]).map((a) => a.textContent), ["General", "Other", "Announcements"]);
  });

  test("p1 logs in with p1 and the page says so", async () => {
    const session = createSession(forum.url);
    const home = await submitForm(session, await fetchPage(session, "login"), "//html:form[@class='login']", {
      username: "p1",
      password: "p1",
    });
    assert.equal(home.url, forum.url);
    assert.equal(queryOne(home, "//html:span[@class='user']"), "p1");
  });

  test("signing up logs the new user in", async () => {
    const session = await signup("newcomer");
    assert.equal(await fetchOne(session, "", "//html:span[@class='user']"), "newcomer");
  });

  test("a new thread shows on its forum with one post, counted on both pages", async () => {
    const session = await signup();
    const before = await fetchOne(session, "forum?id=1", "//html:span[@class='thread-count']");
    const thread = await newThread(session, 1, "Hello there", "Body text");
    assert.match(thread.url, /thread\?id=\d+$/);
    assert.equal(queryOne(thread, "//html:h1[@class='title']"), "Hello there");
    assert.equal(queryOne(thread, "//html:span[@class='post-count']"), "1");
    const forumPage = await fetchPage(session, "forum?id=1");
    assert.equal(Number(queryOne(forumPage, "//html:span[@class='thread-count']")), Number(before) + 1);
    const href = queryOne(forumPage, "//html:th[@class='subject']/html:a[text()=$t]/@href", undefined, {
      t: "Hello there",
    });
    assert.equal(forum.url + href, thread.url);
  });

  test("a reply appears on the thread and its count goes up by one", async () => {
    const session = await signup();
    const thread = await newThread(session, 2, "Reply to me");
    const replied = await submitForm(session, thread, "//html:form[@class='reply']", { body: "A reply" });
    assert.equal(queryOne(replied, "//html:span[@class='post-count']"), "2");
    assert.deepEqual(
      (evaluateXPath(replied.document, "//html:div[@class='post']/html:div[@class='body']") as Node[]).map((n) =>
        n.textContent
      ),
      ["First post", "A reply"],
    );
  });

  test("logging out ends the session: the next post is refused", async () => {
    const session = await signup();
    const page = await fetchPage(session, "forum?id=1");
    await submitForm(session, page, "//html:form[@class='logout']", {});
    await expectProblem(
      submitForm(session, page, "//html:form[@class='new-thread']", { title: "x", body: "y" }),
      403,
      /You must log in to start a thread|session has expired/,
    );
  });

  test("an anonymous visitor sees no posting form, and a posted reply is refused", async () => {
    const session = createSession(forum.url);
    const page = await fetchPage(session, "thread?id=1");
    assert.equal(evaluateXPath(page.document, "count(//html:form[@class='reply'])"), 0);
    const csrf = queryOne(await fetchPage(session, "login"), "//html:input[@name='csrf']/@value");
    await expectProblem(post(session, "reply", { csrf, thread: "1", body: "hi" }), 403, /You must log in to reply/);
  });
});

describe("bad input gets a 4xx page with a clear message and writes nothing", () => {
  let session: Session;
  let csrf: string;
  before(async () => {
    session = await signup();
    csrf = queryOne(
      await fetchPage(session, "forum?id=1"),
      "//html:form[@class='new-thread']//html:input[@name='csrf']/@value",
    );
  });
  const threadRows = () => rows("SELECT count(*) AS n FROM threads");
  const postRows = () => rows("SELECT count(*) AS n FROM posts");

  const cases: [string, Record<string, string>, number, RegExp][] = [
    ["a missing title", { forum: "1", body: "b" }, 400, /Title is required/],
    ["an empty title", { forum: "1", title: "   ", body: "b" }, 400, /Title is required/],
    [
      "an oversize title",
      { forum: "1", title: "x".repeat(LIMITS.title.max + 1), body: "b" },
      400,
      /Title must be at most 200 characters/,
    ],
    [
      "an oversize body",
      { forum: "1", title: "t", body: "x".repeat(LIMITS.body.max + 1) },
      400,
      /Message must be at most 10000/,
    ],
    ["an unknown forum", { forum: "999999", title: "t", body: "b" }, 404, /There is no forum with id 999999/],
    [
      "a non-numeric forum id",
      { forum: "1 OR 1=1", title: "t", body: "b" },
      400,
      /forum id must be a number, not "1 OR 1=1"/,
    ],
    ["a NUL character", { forum: "1", title: "a\u0000b", body: "b" }, 400, /Title contains control characters/],
  ];
  for (const [what, form, status, message] of cases) {
    test(`new thread with ${what}: ${status}`, async () => {
      const before = await threadRows();
      await expectProblem(post(session, "new-thread", { csrf, ...form }), status, message);
      assert.equal(await threadRows(), before);
    });
  }

  test("a reply to an unknown or non-numeric thread: 404 and 400, no post written", async () => {
    const before = await postRows();
    await expectProblem(post(session, "reply", { csrf, thread: "424242", body: "b" }), 404, /no thread with id 424242/);
    await expectProblem(post(session, "reply", { csrf, thread: "abc", body: "b" }), 400, /thread id must be a number/);
    assert.equal(await postRows(), before);
  });

  test("pages for unknown, missing and non-numeric ids", async () => {
    await expectProblem(fetchPage(session, "forum?id=31337"), 404, /There is no forum with id 31337/);
    await expectProblem(fetchPage(session, "thread"), 400, /Which thread\? The id is missing/);
    await expectProblem(fetchPage(session, "thread?id=-1"), 400, /must be a number/);
    await expectProblem(fetchPage(session, "nope"), 404, /There is no page/);
    await expectProblem(fetchPage(session, "thread?id=1&page=x"), 400, /The page id must be a number, not "x"/);
    await expectProblem(fetchPage(session, "thread?id=1&page=9"), 404, /Thread 1 has 1 page, not 9/);
  });

  test("invalid UTF-8 in a form: 400", async () => {
    const response = await fetch(forum.url + "new-thread", {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        cookie: cookieHeader(session, new URL(forum.url)),
      },
      body: `csrf=${csrf}&forum=1&title=%C3%28&body=x`,
    });
    assert.equal(response.status, 400);
    assert.match(await response.text(), /The form is not valid UTF-8/);
  });

  test("a form over the size limit: 413", async () => {
    await expectProblem(
      post(session, "reply", { csrf, thread: "1", body: "x".repeat(LIMITS.requestBytes) }),
      413,
      /larger than 64 KB/,
    );
  });

  test("a duplicate username: 409, and the first account still logs in", async () => {
    const name = `dup${Date.now()}`;
    await signup(name);
    const other = createSession(forum.url);
    await expectProblem(
      submitForm(other, await fetchPage(other, "signup"), "//html:form[@class='signup']", {
        username: name,
        password: "other",
        email: "x@example.org",
      }),
      409,
      new RegExp(`The username "${name}" is taken`),
    );
    assert.equal(await rows("SELECT count(*) AS n FROM users WHERE username = $1", [name]), 1);
  });

  test("a wrong password: 403 with the message, no session", async () => {
    const other = createSession(forum.url);
    await expectProblem(
      submitForm(other, await fetchPage(other, "login"), "//html:form[@class='login']", {
        username: "p1",
        password: "wrong",
      }),
      403,
      /Wrong username or password/,
    );
    assert.equal(other.cookies.has("sid"), false);
  });

  test("a forged session cookie is treated as logged out and removed", async () => {
    const forged = createSession(forum.url, { cookie: `sid=${"A".repeat(43)}` });
    const page = await fetchPage(forged, "forum?id=1");
    assert.equal(evaluateXPath(page.document, "count(//html:span[@class='user'])"), 0);
    assert.equal(forged.cookies.has("sid"), false);
  });

  test("an expired session: posting says to log in again", async () => {
    const victim = await signup();
    const page = await fetchPage(victim, "forum?id=1");
    await db.query("UPDATE sessions SET expires_at = now() - interval '1 minute'");
    await expectProblem(
      submitForm(victim, page, "//html:form[@class='new-thread']", { title: "late", body: "late" }),
      403,
      /Your session has expired or is not valid: log in again to start a thread/,
    );
    await db.query("UPDATE sessions SET expires_at = now() + interval '1 hour'");
  });

  test("a POST without the CSRF token, or with another visitor's, is refused", async () => {
    const before = await threadRows();
    await expectProblem(
      post(session, "new-thread", { forum: "1", title: "t", body: "b" }),
      403,
      /CSRF token is missing/,
    );
    await expectProblem(
      post(session, "new-thread", { csrf: "x".repeat(24), forum: "1", title: "t", body: "b" }),
      403,
      /CSRF/,
    );
    assert.equal(await threadRows(), before);
  });

  test("text a user types is shown as text, never as markup", async () => {
    const hostile = `<script>alert("x")</script> & 'quotes' "too"`;
    const thread = await newThread(session, 1, hostile, hostile);
    assert.equal(evaluateXPath(thread.document, "count(//html:script)"), 0);
    assert.equal(queryOne(thread, "//html:h1[@class='title']"), hostile);
    assert.equal(queryOne(thread, "//html:div[@class='body']"), hostile);
  });
});

describe("a forum's threads, page by page", () => {
  test("most recently active first, three to a page, counted and found across pages", async () => {
    // A second web server on the same database, with pages small enough to need several.
    const paged = await startForum({ databaseUrl: forum.databaseUrl, port: 0, threadsPerPage: 3, log: () => {} });
    try {
      const session = await signup(undefined, paged.url);
      const forumId = await getForumId(session, "Announcements");
      const created: number[] = [];
      for (let i = 0; i < 7; i++) created.push(await createThread(session, forumId, `Paged ${i}`, `Post ${i}`));
      const inOrder = (await db.query(
        "SELECT id FROM threads WHERE forum_id = $1 ORDER BY last_post_id DESC",
        [forumId],
      )).rows.map((r) => r.id);

      assert.deepEqual(await getActiveThreadIds(session, forumId), created.slice(-3).reverse());
      assert.deepEqual(await getThreadIds(session, forumId), inOrder);
      assert.equal(await getNumThreads(session, forumId), inOrder.length);
      assert.equal(await getStatedNumThreads(session, forumId), inOrder.length);
      assert.equal((await getPostCounts(session, forumId)).size, inOrder.length);
      assert.equal(await getThreadId(session, forumId, "Paged 0"), created[0]);

      const pages = Math.ceil(inOrder.length / 3);
      const first = await fetchPage(session, "forum", { id: forumId });
      assert.equal(queryOne(first, "//html:nav[@class='pages']"), `Page 1 of ${pages} next`);
      const last = await fetchPage(session, "forum", { id: forumId, page: pages });
      assert.equal(queryOne(last, "//html:nav[@class='pages']"), `Page ${pages} of ${pages} prev`);
      await expectProblem(
        fetchPage(session, "forum", { id: forumId, page: pages + 1 }),
        404,
        new RegExp(`Forum ${forumId} has ${pages} pages, not ${pages + 1}`),
      );
      await expectProblem(
        fetchPage(session, "forum", { id: forumId, page: 99 }),
        404,
        new RegExp(`Forum ${forumId} has ${pages} pages, not 99`),
      );
      await expectProblem(fetchPage(session, "forum", { id: forumId, page: 0 }), 404, /Pages are numbered from 1/);

      await postReply(session, created[0], "Back to the top");
      assert.equal((await getActiveThreadIds(session, forumId))[0], created[0]);
    } finally {
      await paged.stop();
    }
  });
});

describe("under concurrent writers", () => {
  test("no reply or thread is lost or counted twice", async () => {
    const writers = await Promise.all(Array.from({ length: 20 }, () => signup()));
    const thread = await newThread(writers[0], 3, "Busy thread");
    const threadId = Number(/id=(\d+)/.exec(thread.url)![1]);
    const threadsBefore = await rows("SELECT thread_count AS n FROM forums WHERE id = 3");
    await Promise.all(writers.flatMap((writer, i) => [
      ...Array.from({ length: 5 }, async () => {
        const page = await fetchPage(writer, "thread", { id: threadId });
        await submitForm(writer, page, "//html:form[@class='reply']", { body: `from ${i}` });
      }),
      newThread(writer, 3, `Thread of writer ${i}`),
    ]));
    // 101 posts: three pages of at most 50, the last holding one.
    const first = await fetchPage(writers[0], "thread", { id: threadId });
    assert.equal(queryOne(first, "//html:span[@class='post-count']"), "101");
    assert.equal(queryOne(first, "//html:span[@class='page-count']"), "3");
    assert.equal(evaluateXPath(first.document, "count(//html:div[@class='post'])"), 50);
    const last = await fetchPage(writers[0], "thread", { id: threadId, page: 3 });
    assert.equal(evaluateXPath(last.document, "count(//html:div[@class='post'])"), 1);
    assert.equal(evaluateXPath(last.document, "count(//html:a[@class='next'])"), 0);
    assert.equal(await rows("SELECT count(*) AS n FROM posts WHERE thread_id = $1", [threadId]), 101);
    const forumPage = await fetchPage(writers[0], "forum", { id: 3 });
    assert.equal(Number(queryOne(forumPage, "//html:span[@class='thread-count']")), threadsBefore + 20);
    assert.equal(evaluateXPath(forumPage.document, "count(//html:tr[@class='thread'])"), threadsBefore + 20);
  });
});

describe("starting and stopping", () => {
  test("a restart on the same data directory keeps the data, and stopping leaves no postgres behind", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tierload-test-"));
    try {
      const first = await startTestForum([], { pool: 5, dataDir: dir });
      const keeper = await signup("keeper", first.url);
      await newThread(keeper, 1, "Kept across restarts");
      await first.stop();
      assert.equal(postgresProcessesFor(dir), 0);
      const second = await startTestForum([], { pool: 5, dataDir: dir });
      try {
        const forumPage = await fetchPage(createSession(second.url), "forum?id=1");
        assert.equal(evaluateXPath(forumPage.document, "count(//html:a[text()='Kept across restarts'])"), 1);
        assert.equal(evaluateXPath(forumPage.document, "count(//html:a[text()='Welcome to General'])"), 1);
        // The key that signs sessions is kept with the data: a restart logs nobody out.
        assert.equal(await fetchOne(keeper, second.url, "string(//html:span[@class='user'])"), "keeper");
      } finally {
        await second.stop();
      }
      assert.equal(postgresProcessesFor(dir), 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a start-up failure cleans up after itself", async () => {
    await assert.rejects(
      startTestForum([], { databaseUrl: "postgresql://nobody:x@127.0.0.1:1/none" }),
      /ECONNREFUSED|connect/,
    );
  });

  test("the script prints its URL, serves, and stops on SIGTERM with nothing left behind", async () => {
    const run = startScript("forum-server.ts", ["--port", "0", "--pool", "5", "--json"]);
    await waitFor(run, "stdout", "\n");
    const { url, databaseUrl } = JSON.parse(run.output.stdout);
    const dataDir = /tierload-pg-\w+/.exec(run.output.stderr)?.[0] ?? "";
    assert.ok(dataDir, run.output.stderr);
    assert.equal(await fetchOne(createSession(url), "forum?id=2", "string(//html:h1)"), "Other");
    run.child.kill("SIGTERM");
    const { status, stderr } = await run.done;
    assert.match(stderr, /SIGTERM: stopping\nstopped: nothing left running\n$/);
    // Deno's child_process reports a child it signalled as killed by the signal, whatever its exit code.
    if (!process.versions.deno) assert.equal(status, 0);
    assert.equal(postgresProcessesFor(dataDir), 0);
    await assert.rejects(new pg.Client({ connectionString: databaseUrl }).connect());
  });

  test("--help explains the options", async () => {
    const { status, stdout } = await runScript("forum-server.ts", ["--help"]);
    assert.equal(status, 0);
    for (const option of ["--port", "--base-path", "--pool", "--database-url", "--data-dir", "--fault"]) {
      assert.match(stdout, new RegExp(option));
    }
  });
});

function postgresProcessesFor(dir: string): number {
  const lines = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).split("\n");
  return lines.filter((l) => l.includes(dir) && l.includes("postgres")).length;
}
