// The reference forum against the usual attacks and abuses, over real HTTP and raw sockets, on a real
// embedded PostgreSQL: log-in guessing, CSRF, framing, hostile input, slow and idle clients, shutdown.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { connect } from "node:net";
import { createSession, fetchPage, HttpError, type Page, post, queryOne, submitForm } from "../lib/fetchData.ts";
import { createThread, getForumId, getThreadTitle, login, signup } from "../lib/forum.ts";
import { databaseTrouble } from "../scripts/forum-server.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { alive, eventually, startTestForum } from "./helpers.ts";

let count = 0;
const fresh = () => `h${++count}_${Date.now().toString(36)}`;

async function status(promise: Promise<unknown>): Promise<HttpError> {
  const error = await promise.then(() => null, (e) => e);
  assert.ok(error instanceof HttpError, `expected an HTTP error, got ${error}`);
  return error;
}

/** Tries to log in; answers the forum's status (200 after the redirect home). */
async function tryLogin(url: string, username: string, password: string): Promise<number> {
  const session = createSession(url);
  const form = await fetchPage(session, "login");
  return submitForm(session, form, "//html:form[@class='login']", { username, password })
    .then((page) => page.status, (e: HttpError) => e.status);
}

/** A raw HTTP/1.1 connection: writes what it is given, keeps what comes back, tells when it closes. */
function rawConnection(url: string) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const received = { text: "" };
  socket.on("data", (chunk) => received.text += chunk);
  const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
  socket.on("error", () => {});
  return { socket, received, closed };
}

describe("on one forum", () => {
  let forum: RunningForum;
  before(async () => forum = await startTestForum());
  after(() => forum.stop());

  test("a user guessed at: from the 5th wrong password on, 429 with Retry-After, even for the right one", async () => {
    const name = fresh();
    await signup(forum.url, name, "right-password");
    for (let i = 0; i < 5; i++) assert.equal(await tryLogin(forum.url, name, `wrong ${i}`), 403);
    const session = createSession(forum.url);
    const form = await fetchPage(session, "login");
    const refused = await status(
      submitForm(session, form, "//html:form[@class='login']", { username: name, password: "right-password" }),
    );
    assert.equal(refused.status, 429);
    assert.match(
      refused.message,
      new RegExp(`Too many failed log-ins for "${name}" or from your address: try again in \\d+ s`),
    );
    // Another user, from the same address, is not held up by it.
    const other = fresh();
    await signup(forum.url, other, "pw-other");
    assert.equal(await tryLogin(forum.url, other, "pw-other"), 200);
  });

  test("a CSRF token is bound to the session: another session's, or a cookie and token chosen together, fail", async () => {
    const alice = await login(forum.url, ...await user());
    const bob = await login(forum.url, ...await user());
    const forumId = await getForumId(alice, "General");
    const threadId = await createThread(alice, forumId, fresh(), "x");
    const aliceToken = tokenOn(await fetchPage(alice, "thread", { id: threadId }));
    const refused = await status(post(bob, "reply", { csrf: aliceToken, thread: threadId, body: "forged" }));
    assert.equal(refused.status, 403);
    // The old double-submit check passed when the cookie and the field merely agreed.
    const chosen = "A".repeat(24);
    const planted = createSession(forum.url, { cookie: `csrf=${chosen}` });
    const form = await fetchPage(planted, "login");
    assert.notEqual(tokenOn(form), chosen);
    assert.equal((await status(post(planted, "login", { csrf: chosen, username: "p1", password: "p1" }))).status, 403);
  });

  test("logging in rotates the CSRF token", async () => {
    const session = createSession(forum.url);
    const before = tokenOn(await fetchPage(session, "login"));
    const [name, password] = await user();
    const home = await submitForm(session, await fetchPage(session, "login"), "//html:form[@class='login']", {
      username: name,
      password,
    });
    assert.notEqual(tokenOn(home), before);
  });

  test("pages may not be framed, load nothing from elsewhere, and set <base> only to the forum", async () => {
    const response = await fetch(forum.url);
    await response.arrayBuffer();
    assert.equal(response.headers.get("x-frame-options"), "DENY");
    const csp = response.headers.get("content-security-policy")!;
    for (const part of ["default-src 'none'", "frame-ancestors 'none'", "base-uri 'self'", "form-action 'self'"]) {
      assert.ok(csp.includes(part), `${part} missing from ${csp}`);
    }
  });

  test("hostile input: control characters, a NUL in a username, '=' in a value, prototype names as pages", async () => {
    const session = await login(forum.url, ...await user());
    const forumId = await getForumId(session, "Other");
    for (const bad of ["a\u007fb", "a\u0085b", "a\u009bb"]) {
      const refused = await status(createThread(session, forumId, bad, "x").catch((e) => Promise.reject(e.cause)));
      assert.equal(refused.status, 400);
      assert.match(refused.message, /Title contains control characters/);
    }
    const nul = await status(
      post(createSession(forum.url), "login", { csrf: "x", username: "a\u0000b", password: "x" }),
    );
    assert.equal(nul.status, 403, "the CSRF check comes first");
    const visitor = createSession(forum.url);
    const csrf = tokenOn(await fetchPage(visitor, "login"));
    const withNul = await status(post(visitor, "login", { csrf, username: "a\u0000b", password: "x" }));
    assert.equal(withNul.status, 400);
    assert.match(withNul.message, /Username contains control characters/);
    // A value with an unencoded '=' keeps everything after the first one.
    const page = await fetchPage(session, "forum", { id: forumId });
    const raw = await fetch(forum.url + "new-thread", {
      method: "POST",
      redirect: "manual",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        cookie: session.cookies.header(new URL(forum.url)),
      },
      body: `csrf=${encodeURIComponent(tokenOn(page))}&forum=${forumId}&title=a=b=c&body=x`,
    });
    assert.equal(raw.status, 303);
    const threadId = Number(/id=(\d+)/.exec(raw.headers.get("location")!)![1]);
    assert.equal(await getThreadTitle(session, threadId), "a=b=c");
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "__defineGetter__"]) {
      assert.equal((await status(fetchPage(session, name))).status, 404, name);
    }
  });

  test("a form over the size limit gets its 413 and the connection closes, unread", async () => {
    const { socket, received, closed } = rawConnection(forum.url);
    const path = new URL("login", forum.url).pathname;
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
        `Content-Length: 10000000\r\n\r\n${"a".repeat(200_000)}`,
    );
    await closed;
    assert.match(received.text, /^HTTP\/1\.1 413 /);
    assert.match(received.text, /connection: close/i);
  });

  test("a lost database connection is a 503 the visitor may retry, not a 500", () => {
    const terminated = Object.assign(new Error("terminating connection due to administrator command"), {
      code: "57P01",
    });
    assert.match(databaseTrouble(terminated)!, /busy or its connection was lost \(57P01\): try again/);
    assert.match(databaseTrouble(new Error("Connection terminated unexpectedly"))!, /connection was lost/);
    assert.equal(databaseTrouble(new Error("syntax error")), null);
  });

  let users = 0;
  async function user(): Promise<[string, string]> {
    const name = `u${++users}_${Date.now().toString(36)}`;
    await signup(forum.url, name, `pw-${name}`);
    return [name, `pw-${name}`];
  }
});

function tokenOn(page: Page): string {
  return queryOne(page, "(//html:input[@name='csrf'])[1]/@value");
}

test("an unknown username costs a log-in as much time as a known one", async () => {
  // At the default scrypt cost a hash takes tens of ms, an unknown name's lookup well under 1 ms.
  const forum = await startTestForum([], { scryptCost: 16384 });
  try {
    const name = fresh();
    await signup(forum.url, name, "pw");
    const stranger = fresh();
    const timed = async (username: string, i: number) => {
      const started = performance.now();
      assert.equal(await tryLogin(forum.url, username, `wrong-${i}`), 403);
      return performance.now() - started;
    };
    // The first log-ins warm the server up (about three times slower); then alternating, so that a machine busy
    // for a while slows both alike; medians of five (the sixth failure would lock the known name out).
    for (let i = 0; i < 2; i++) await timed(fresh(), i);
    const known: number[] = [], unknown: number[] = [];
    for (let i = 0; i < 5; i++) {
      known.push(await timed(name, i));
      unknown.push(await timed(stranger, i));
    }
    const median = (times: number[]) => times.sort((a, b) => a - b)[2];
    assert.ok(
      median(unknown) > median(known) / 2,
      `unknown ${unknown.map((t) => t.toFixed(1))} ms against known ${known.map((t) => t.toFixed(1))} ms`,
    );
  } finally {
    await forum.stop();
  }
});

test("one address guessing across many names: after 50 failures every log-in from it waits", async () => {
  const forum = await startTestForum();
  try {
    for (let i = 0; i < 50; i++) assert.equal(await tryLogin(forum.url, `nobody${i}`, "x"), 403);
    assert.equal(await tryLogin(forum.url, "p1", "p1"), 429);
  } finally {
    await forum.stop();
  }
});

test("slow, idle and surplus connections are bounded", async () => {
  const forum = await startTestForum([], { connections: { headersMs: 1000, requestMs: 1500, idleMs: 500, max: 3 } });
  try {
    const path = new URL(forum.url).pathname;
    // A body dripped a byte at a time: answered 408 (or cut) once the request deadline passes.
    const drip = rawConnection(forum.url);
    drip.socket.write(`POST ${path}login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n`);
    drip.socket.write(`Content-Length: 100\r\n\r\n`);
    const dripping = setInterval(() => drip.socket.write("a"), 200);
    await drip.closed;
    clearInterval(dripping);
    assert.match(drip.received.text, /^$|^HTTP\/1\.1 408 /);
    // An idle keep-alive connection is closed after idleMs.
    const idle = rawConnection(forum.url);
    idle.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await idle.closed;
    assert.match(idle.received.text, /^HTTP\/1\.1 200 /);
    // Beyond the cap, a new connection is closed at once.
    // (Each held connection is answered once first, so the forum has surely accepted it.)
    const held = [rawConnection(forum.url), rawConnection(forum.url), rawConnection(forum.url)];
    for (const c of held) c.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await eventually("the held connections' answers", () => held.every((c) => c.received.text.includes("</html>")));
    const surplus = rawConnection(forum.url);
    surplus.socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await surplus.closed;
    assert.equal(surplus.received.text, "");
    for (const c of held) c.socket.destroy();
  } finally {
    await forum.stop();
  }
});

test("stopping with the database frozen (SIGSTOP) still ends, and PostgreSQL goes too", async () => {
  const forum = await startTestForum();
  const port = new URL(forum.databaseUrl).port;
  const ps = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" });
  // The postmaster itself, not the sh watchdog whose arguments name it too.
  const postmaster = ps.split("\n").find((line) =>
    /^\s*\d+ \S*\/postgres -D /.test(line) && line.includes(`-p ${port} `)
  )!;
  const pid = Number(postmaster.trim().split(/\s+/)[0]);
  process.kill(pid, "SIGSTOP");
  await forum.stop(1000);
  await eventually("PostgreSQL to end", () => !alive(pid));
});

test("a client that goes away mid-request is not logged as an error", async () => {
  const lines: string[] = [];
  const forum = await startTestForum([], { log: (line) => lines.push(line) });
  try {
    // "Expect: 100-continue": the forum says "100 Continue" once its handler has the request.
    const { socket, received, closed } = rawConnection(forum.url);
    socket.write(`POST ${new URL(forum.url).pathname}reply HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n`);
    socket.write(`Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n`);
    await eventually("100 Continue", () => received.text.startsWith("HTTP/1.1 100 Continue"));
    socket.write("body=abc");
    socket.destroy();
    await closed;
    await forum.stop();
    assert.deepEqual(lines.filter((line) => line.startsWith("error")), []);
  } finally {
    await forum.stop();
  }
});
