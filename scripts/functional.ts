/**
 * The forum's functional cases: test cases that read like the user's steps (tier 1), written against the
 * forum adapter (lib/forum.ts). With no --url the reference forum is started for the run and stopped
 * after. The runner itself (--grep, --list, --reporter, Ctrl-C) is lib/suite.ts's.
 *
 *   npx tsx scripts/functional.ts                       # or: deno run -A scripts/functional.ts
 *   npx tsx scripts/functional.ts --url http://localhost:8080/myapp/ --grep title --reporter junit > results.xml
 *
 * Each case signs up its own users, so cases are independent and run in any order.
 */
import assert from "node:assert/strict";
import { suite } from "../lib/tierload.ts";
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
  visit,
  whoAmI,
} from "../lib/forum.ts";
import { startForum } from "./forum-server.ts";

/** What a case gets: the forum's URL, fresh users (signed up, answering their login) and names. */
export interface World {
  url: string;
  freshUser(): Promise<[username: string, password: string]>;
  /** A username nobody has. */
  newUsername(): string;
  /** `text` made unique to this run, for titles that must be found again. */
  unique(text: string): string;
}

export const forum = suite<World>(import.meta, {
  name: "functional",
  description: "Run the forum's functional test cases: signing up, logging in, threads, replies, escaping, CSRF.",
  // Cases run one at a time: a small pool serves them (the load test holds the thousand connections).
  start: () => startForum({ port: 0, pool: 10, log: () => {} }),
  world: ({ url, unique, newName }) => ({
    url,
    unique,
    newUsername: () => newName("u"),
    async freshUser() {
      const username = newName("u");
      await signup(url, username, "pw-" + username);
      return [username, "pw-" + username];
    },
  }),
});
const test = forum.test;

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
