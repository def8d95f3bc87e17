/**
 * What the cookie jar costs the generator per request: a forum session's Set-Cookie headers stored, then
 * the Cookie header built, as lib/fetchData.ts does for every request.
 *
 *   npx tsx bench/cookies.bench.ts                  # this tree
 *   npx tsx bench/cookies.bench.ts /path/to/tree    # another checkout (an older commit), for a ratio
 *
 * It uses createSession and cookieHeader, which every version has, and the jar's store (or the older
 * storeCookies), so the same file measures the old jar and the new one.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const tree = resolve(process.argv[2] ?? ".");
const tier3 = await import(pathToFileURL(resolve(tree, "lib/fetchData.ts")).href);
const base = new URL("http://127.0.0.1:8080/myapp/");
const pages = ["forum?id=2", "thread?id=17", "reply", "thread?id=17&page=3"].map((p) => new URL(p, base));
const answers = [
  ["csrf=Zm9vYmFyYmF6cXV4cXV1eA; Path=/myapp/; HttpOnly; SameSite=Lax"],
  ["sid=dGhpcyBpcyBhIHNlc3Npb24gdG9rZW4gb2YgNDMgY2hhcnM; Path=/myapp/; Max-Age=86400; HttpOnly; SameSite=Lax"],
];

function store(session: { cookies: { store?: (u: URL, s: string[]) => void } }, url: URL, setCookies: string[]) {
  if (session.cookies.store) session.cookies.store(url, setCookies);
  else tier3.storeCookies(session, url, setCookies);
}

/** One user's requests: the two Set-Cookie answers of signing up, then a Cookie header per request. */
function user(requests: number): number {
  const session = tier3.createSession(base.href);
  for (const setCookies of answers) store(session, pages[0], setCookies);
  let length = 0;
  for (let i = 0; i < requests; i++) length += tier3.cookieHeader(session, pages[i % pages.length]).length;
  return length;
}

const requests = 40;
for (let i = 0; i < 2000; i++) user(requests);
const rounds: number[] = [];
for (let round = 0; round < 9; round++) {
  const started = performance.now();
  for (let i = 0; i < 5000; i++) user(requests);
  rounds.push(((performance.now() - started) * 1e6) / (5000 * requests));
}
const median = rounds.sort((a, b) => a - b)[4];
console.log(`${tree}: ${median.toFixed(0)} ns of cookie jar per request (median of 9 rounds)`);
