/**
 * Tier 2: the forum adapter. Functions named after what a user does, for test cases and load tests
 * to call; the only file that knows the forum's URLs, form fields and markup (see the README's
 * contract). Every action confirms its effect, or throws a StepError naming the step, the user and
 * what the server said.
 *
 *   const session = await login("http://localhost:8080/myapp/", "p1", "p1");
 *   const other = await getForumId(session, "Other");
 *   await createThread(session, other, "New Thread", "Newly added thread post");
 */
import {
  createSession,
  fetchData,
  fetchOne,
  fetchPage,
  type Page,
  type Params,
  post,
  queryAll,
  queryOne,
  queryRows,
  type Session,
  type SessionOptions,
} from "./fetchData.ts";
import { actAs, confirm, step, submitPageForm, usernameOf, userOf } from "./steps.ts";

export type { Session, SessionOptions } from "./fetchData.ts";
export { StepError } from "./steps.ts";

/** Submits the page's form of class `kind`, or says plainly that the page offers none (not logged in, say). */
function submit(session: Session, page: Page, kind: string, values: Params, what: string, who?: string): Promise<Page> {
  return submitPageForm(session, page, `//html:form[@class='${kind}']`, values, what, who);
}

function idFrom(url: string, what: string): number {
  const match = /[?&]id=(\d+)/.exec(url);
  if (!match) throw new Error(`no ${what} id in ${url}`);
  return Number(match[1]);
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

/** An anonymous visitor of the forum at `baseUrl`. */
export function visit(baseUrl: string, options?: SessionOptions): Session {
  return createSession(baseUrl, options);
}

/** Who the forum says is logged in on this session, or null. */
export async function whoAmI(session: Session): Promise<string | null> {
  const name = await fetchData(session, "", "string(//html:span[@class='user'])");
  return name === "" ? null : String(name);
}

export interface SignupOptions extends SessionOptions {
  /** Default: `<username>@example.org`. */
  email?: string;
}

/** Signs up a new user and answers the session, logged in as that user. */
export function signup(
  baseUrl: string,
  username: string,
  password: string,
  options: SignupOptions = {},
): Promise<Session> {
  const session = visit(baseUrl, options);
  const who = JSON.stringify(username);
  return step(session, "sign up", async () => {
    const form = await fetchPage(session, "signup");
    const email = options.email ?? `${username}@example.org`;
    const home = await submit(session, form, "signup", { username, password, email }, "sign up", who);
    confirmLoggedIn(session, home, username, "sign up");
    return session;
  }, who);
}

/** Logs in and answers the session; a refused login throws with the server's message. */
export function login(baseUrl: string, username: string, password: string, options?: SessionOptions): Promise<Session> {
  const session = visit(baseUrl, options);
  const who = JSON.stringify(username);
  return step(session, "log in", async () => {
    const form = await fetchPage(session, "login");
    const home = await submit(session, form, "login", { username, password }, "log in", who);
    confirmLoggedIn(session, home, username, "log in");
    return session;
  }, who);
}

function confirmLoggedIn(session: Session, page: Page, username: string, what: string): void {
  const shown = queryAll(page, "//html:span[@class='user']");
  const seen = `the page shows ${shown.length ? `"${shown[0]}"` : "nobody"} logged in`;
  confirm(shown.length === 1 && shown[0] === username, what, JSON.stringify(username), seen, page);
  actAs(session, username);
}

/** Logs out; confirms the forum no longer shows the user as logged in. */
export function logout(session: Session): Promise<void> {
  return step(session, "log out", async () => {
    const after = await submit(session, await fetchPage(session, ""), "logout", {}, "log out");
    const shown = queryAll(after, "//html:span[@class='user']").length;
    confirm(shown === 0, "log out", userOf(session), "the page still shows a user logged in", after);
    actAs(session, null);
  });
}

// ---------------------------------------------------------------------------------------------
// Forums and threads
// ---------------------------------------------------------------------------------------------

/** The id of the forum called `name`. */
export function getForumId(session: Session, name: string): Promise<number> {
  return step(session, `find the forum ${JSON.stringify(name)}`, async () => {
    const href = await fetchOne(
      session,
      "",
      "//html:tr[@class='forum']/html:th[@class='name']/html:a[text()=$name]/@href",
      undefined,
      undefined,
      { name },
    );
    return idFrom(href, "forum");
  });
}

/**
 * Each page of a forum's thread list in turn, most recently active threads first, following its
 * "next" links. A thread that becomes active while the pages are read moves to the first page, so a
 * reader that needs every thread reads them when nobody writes (as the load test's check does).
 */
async function* forumPages(session: Session, forumId: number): AsyncGenerator<Page> {
  for (
    let page: Page | null = await fetchPage(session, "forum", { id: forumId });
    page;
    page = await nextPage(session, page)
  ) {
    yield page;
  }
}

/** The number of threads a forum lists, counted across all of its pages (the seed's get_num_threads). */
export function getNumThreads(session: Session, forumId: number): Promise<number> {
  return step(session, `count the threads of forum ${forumId}`, async () => {
    let count = 0;
    for await (const page of forumPages(session, forumId)) count += queryAll(page, "//html:tr[@class='thread']").length;
    return count;
  });
}

/** The thread count the forum's pages state, which must agree with the rows listed. */
export function getStatedNumThreads(session: Session, forumId: number): Promise<number> {
  return statedCount(session, `read the thread count of forum ${forumId}`, "forum", forumId, "thread-count");
}

/** A count a page states in `<span class="NAME">`. */
function statedCount(session: Session, what: string, page: string, id: number, name: string): Promise<number> {
  return step(
    session,
    what,
    async () => Number(await fetchOne(session, page, "//html:span[@class=$name]", undefined, { id }, { name })),
  );
}

const THREAD_LINKS = "//html:th[@class='subject']/html:a";

/** The id of the thread titled exactly `title` in a forum, from whichever page lists it. */
export function getThreadId(session: Session, forumId: number, title: string): Promise<number> {
  return step(session, `find the thread ${JSON.stringify(title)} in forum ${forumId}`, async () => {
    for await (const page of forumPages(session, forumId)) {
      const [href] = queryAll(page, `${THREAD_LINKS}[text()=$title]/@href`, { title });
      if (href) return idFrom(href, "thread");
    }
    throw new Error(`no page of forum ${forumId} lists a thread titled ${JSON.stringify(title)}`);
  });
}

/** The ids of every thread a forum lists, in order, from all of its pages. */
export function getThreadIds(session: Session, forumId: number): Promise<number[]> {
  return step(session, `list the threads of forum ${forumId}`, async () => {
    const ids: number[] = [];
    for await (const page of forumPages(session, forumId)) ids.push(...threadIdsOn(page));
    return ids;
  });
}

/** The ids of the threads on a forum's first page: its most recently active, where users go first. */
export function getActiveThreadIds(session: Session, forumId: number): Promise<number[]> {
  return step(
    session,
    `list the active threads of forum ${forumId}`,
    async () => threadIdsOn(await fetchPage(session, "forum", { id: forumId })),
  );
}

function threadIdsOn(page: Page): number[] {
  return queryAll(page, `${THREAD_LINKS}/@href`).map((href) => idFrom(href, "thread"));
}

/** Every thread's post count as a forum's pages list it, by thread id. */
export function getPostCounts(session: Session, forumId: number): Promise<Map<number, number>> {
  return step(session, `read the post counts of forum ${forumId}`, async () => {
    const counts = new Map<number, number>();
    for await (const page of forumPages(session, forumId)) {
      const rows = queryRows(page, "//html:tr[@class='thread']", {
        href: "html:th[@class='subject']/html:a/@href",
        posts: "html:td[@class='posts']",
      });
      for (const row of rows) counts.set(idFrom(row.href, "thread"), Number(row.posts));
    }
    return counts;
  });
}

/** A thread's title, as its page shows it. */
export function getThreadTitle(session: Session, threadId: number): Promise<string> {
  return step(
    session,
    `read the title of thread ${threadId}`,
    () => fetchOne(session, "thread", "//html:h1[@class='title']", undefined, { id: threadId }),
  );
}

export interface Post {
  id: number;
  author: string;
  body: string;
}

/** The posts of a thread, in order, from all of its pages. */
export async function getPosts(session: Session, threadId: number): Promise<Post[]> {
  return (await readThread(session, threadId)).posts;
}

export interface Thread {
  title: string;
  posts: Post[];
}

/** A thread as its pages show it: its title and every post, in order, from all of its pages. */
export function readThread(session: Session, threadId: number): Promise<Thread> {
  return step(session, `read thread ${threadId}`, async () => {
    const first = await fetchPage(session, "thread", { id: threadId });
    const thread = { title: queryOne(first, "//html:h1[@class='title']"), posts: [] as Post[] };
    for (let page: Page | null = first; page; page = await nextPage(session, page)) thread.posts.push(...postsOn(page));
    return thread;
  });
}

async function nextPage(session: Session, page: Page): Promise<Page | null> {
  const [next] = queryAll(page, "//html:nav[@class='pages']/html:a[@class='next']/@href");
  return next ? await fetchPage(session, new URL(next, page.url).href) : null;
}

function postsOn(page: Page): Post[] {
  const rows = queryRows(page, "//html:div[@class='post']", {
    id: "@id",
    author: "html:span[@class='author']",
    body: "html:div[@class='body']",
  });
  return rows.map((row) => ({
    id: Number(/^post-(\d+)$/.exec(row.id)?.[1] ?? NaN),
    author: row.author,
    body: row.body,
  }));
}

/** The number of posts a thread's pages list. */
export async function getNumPosts(session: Session, threadId: number): Promise<number> {
  return (await getPosts(session, threadId)).length;
}

/** The post count a thread's page states. */
export function getStatedNumPosts(session: Session, threadId: number): Promise<number> {
  return statedCount(session, `read the post count of thread ${threadId}`, "thread", threadId, "post-count");
}

/** Starts a thread and answers its id; confirms the new thread's page shows the title and the post. */
export function createThread(session: Session, forumId: number, title: string, body: string): Promise<number> {
  const what = `create the thread ${JSON.stringify(title)} in forum ${forumId}`;
  return step(session, what, async () => {
    const forum = await fetchPage(session, "forum", { id: forumId });
    const thread = await submit(session, forum, "new-thread", { title, body }, what);
    const shownTitle = queryAll(thread, "//html:h1[@class='title']")[0];
    const who = userOf(session);
    confirm(
      /[?&]id=\d+/.test(thread.url) && shownTitle === title.trim(),
      what,
      who,
      "the thread did not appear",
      thread,
    );
    const [first] = postsOn(thread);
    confirm(first?.body === body.trim(), what, who, "its first post did not appear", thread);
    return idFrom(thread.url, "thread");
  });
}

/** Replies to a thread and answers the new post's id; confirms the reply is on the thread's page. */
export function postReply(session: Session, threadId: number, body: string): Promise<number> {
  const what = `reply to thread ${threadId}`;
  return step(session, what, async () => {
    const thread = await fetchPage(session, "thread", { id: threadId });
    const after = await submit(session, thread, "reply", { body }, what);
    const postId = Number(/#post-(\d+)$/.exec(after.url)?.[1]);
    const shown = postsOn(after).find((p) => p.id === postId);
    confirm(shown?.body === body.trim(), what, userOf(session), "the reply did not appear on the thread", after);
    return postId;
  });
}

/** Posts each of `bodies` as a reply, in order; answers the new posts' ids. */
export async function postReplies(session: Session, threadId: number, bodies: string[]): Promise<number[]> {
  const ids: number[] = [];
  for (const body of bodies) ids.push(await postReply(session, threadId, body));
  return ids;
}

/**
 * Sends a reply the way a script or another site would, straight to the forum without its form:
 * with the visitor's CSRF token only when `withToken`. For checking that the forum refuses it.
 */
export function postReplyDirectly(session: Session, threadId: number, body: string, withToken: boolean): Promise<void> {
  return step(session, `reply to thread ${threadId} without the form`, async () => {
    const form: Record<string, string | number> = { thread: threadId, body };
    if (withToken) form.csrf = queryOne(await fetchPage(session, "login"), "//html:input[@name='csrf']/@value");
    await post(session, "reply", form);
  });
}

// ---------------------------------------------------------------------------------------------
// What the load test's users do (the seed's post_to_existing_thread and create_new_thread)
// ---------------------------------------------------------------------------------------------

/** What a load test's action wrote, as it wrote it: enough to find it again on the forum. */
export interface Written {
  threadId: number;
  /** The reply's post id; none for a new thread. */
  postId?: number;
  /** The new thread's title; none for a reply. */
  title?: string;
  body: string;
  author: string;
}

/**
 * Replies to a thread picked at random from the forum's first page (its most recently active threads,
 * where real users reply); answers what it wrote, and where.
 */
export function postToExistingThread(
  session: Session,
  forumId: number,
  random: () => number = Math.random,
): Promise<Written> {
  return step(session, `reply to a thread of forum ${forumId}`, async () => {
    const threads = await getActiveThreadIds(session, forumId);
    if (threads.length === 0) throw new Error(`forum ${forumId} has no threads to reply to`);
    const threadId = threads[Math.floor(random() * threads.length)];
    const author = usernameOf(session) ?? "";
    const body = `Reply ${Math.floor(random() * 1e12).toString(36)} from ${author}`;
    return { threadId, postId: await postReply(session, threadId, body), body, author };
  });
}

/** Starts a thread with a fresh title in the forum; answers what it wrote, and where. */
export async function createNewThread(
  session: Session,
  forumId: number,
  random: () => number = Math.random,
): Promise<Written> {
  const author = usernameOf(session) ?? "";
  const title = `Thread ${Math.floor(random() * 1e12).toString(36)} by ${author}`;
  const body = `Started by ${author}.`;
  return { threadId: await createThread(session, forumId, title, body), title, body, author };
}

// ---------------------------------------------------------------------------------------------
// The end state: is every write a load test counted on the forum, and did the counts move by that?
// ---------------------------------------------------------------------------------------------

/** A forum's counts as its pages state them: each thread's posts, by id, and the forum's thread count. */
export interface ForumCounts {
  postCounts: [threadId: number, posts: number][];
  statedThreads: number;
}

/** The forum's counts now (JSON-able: a load test reads them before its users start). */
export async function getForumCounts(session: Session, forumId: number): Promise<ForumCounts> {
  return {
    postCounts: [...await getPostCounts(session, forumId)],
    statedThreads: await getStatedNumThreads(session, forumId),
  };
}

/**
 * What is wrong with the forum against what was written since `before`, a line each (none: nothing lost).
 * Reads back every thread written to and finds each write by its content (title, body, author), so that
 * runs sharing a forum each check only their own. The counts must have moved by what was written: exactly
 * when `exact` (the only writer), by at least that otherwise (nothing is ever deleted, so fewer is a loss).
 */
export async function findLostWrites(
  session: Session,
  forumId: number,
  before: ForumCounts,
  writes: Written[],
  exact: boolean,
): Promise<string[]> {
  const after = await getPostCounts(session, forumId);
  const findings: string[] = [];
  const created = new Map(writes.filter((w) => w.postId === undefined).map((w) => [w.threadId, w]));
  const repliesTo = new Map<number, Written[]>();
  for (const w of writes) {
    if (w.postId !== undefined) repliesTo.set(w.threadId, [...repliesTo.get(w.threadId) ?? [], w]);
  }
  const threadIds = [...new Set(writes.map((w) => w.threadId))];
  const readers = Array.from({ length: Math.min(20, threadIds.length) }, async () => {
    for (let id = threadIds.pop(); id !== undefined; id = threadIds.pop()) {
      const thread = await readThread(session, id);
      const written = created.get(id);
      const first = thread.posts[0];
      if (
        written && (thread.title !== written.title || first?.body !== written.body || first.author !== written.author)
      ) {
        findings.push(`thread ${id} is missing or changed`);
      }
      const posts = new Map(thread.posts.map((p) => [p.id, p]));
      for (const reply of repliesTo.get(id) ?? []) {
        const shown = posts.get(reply.postId!);
        if (shown?.body !== reply.body || shown.author !== reply.author) {
          findings.push(`reply ${reply.postId} to thread ${id} is missing or changed`);
        }
      }
    }
  });
  await Promise.all(readers);
  const disagrees = (expected: number, shown: number) => shown < expected || (exact && shown > expected);
  const postsBefore = new Map(before.postCounts);
  for (const [threadId, shown] of after) {
    const expected = (postsBefore.get(threadId) ?? 0) + (repliesTo.get(threadId)?.length ?? 0) +
      (created.has(threadId) ? 1 : 0);
    if (disagrees(expected, shown)) findings.push(`thread ${threadId} shows ${shown} posts, ${expected} expected`);
  }
  for (const id of created.keys()) if (!after.has(id)) findings.push(`thread ${id} is not listed on the forum`);
  const statedThreads = await getStatedNumThreads(session, forumId);
  const expectedThreads = before.statedThreads + created.size;
  if (disagrees(expectedThreads, statedThreads)) {
    findings.push(`the forum states ${statedThreads} threads, ${expectedThreads} expected`);
  }
  return findings;
}
