/**
 * The reference forum's capacity on this machine, with the forum in its own process:
 *
 *   npx tsx bench/forum-server.bench.ts [seconds=10] [concurrency=64]
 *
 * 1. GET forum?id=N and POST reply (each answered 303) from `concurrency` loops for `seconds` each:
 *    requests per second, and the client's own CPU per request for reference.
 * 2. 1000 replies to one thread sent at once: the peak of PostgreSQL client backends (and of those
 *    busy at the same moment) from pg_stat_activity, sampled every 50 ms, against max_connections.
 */
import pg from "pg";
import { cookieHeader } from "../lib/fetchData.ts";
import { createThread, getForumId, signup } from "../lib/forum.ts";
import { spawnForum } from "../scripts/forum-process.ts";

const [seconds = 10, concurrency = 64] = process.argv.slice(2).map(Number);

async function rate(name: string, send: (i: number) => Promise<Response>, expected: number) {
  let done = 0;
  let wrong = 0;
  const until = performance.now() + seconds * 1000;
  const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      const response = await send(done);
      await response.arrayBuffer();
      if (response.status !== expected) wrong++;
      done++;
    }
  }));
  const used = process.cpuUsage(cpu);
  console.log(
    `${name.padEnd(14)} ${(done / seconds).toFixed(0).padStart(6)} req/s  ${wrong} unexpected statuses  ` +
      `client ${((used.user + used.system) / 1000 / done).toFixed(2)} ms CPU per request`,
  );
}

const forum = await spawnForum(1000);
try {
  const session = await signup(forum.url, `bench_${Date.now().toString(36)}`, "bench-password");
  const forumId = await getForumId(session, "General");
  const threadId = await createThread(session, forumId, "Benchmark thread", "First");
  const cookie = cookieHeader(session, new URL(forum.url));
  const csrf = session.cookies.get("csrf")!.value;

  const forumPage = () => fetch(`${forum.url}forum?id=${forumId}`, { headers: { cookie } });
  const reply = (i: number) =>
    fetch(`${forum.url}reply`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ csrf, thread: String(threadId), body: `bench reply ${i}` }),
    });

  console.log(`forum at ${forum.url}, ${concurrency} concurrent loops, ${seconds} s each`);
  await rate("GET forum", forumPage, 200);
  await rate("POST reply", reply, 303);

  const db = new pg.Client({ connectionString: forum.databaseUrl });
  await db.connect();
  let peak = 0;
  let peakBusy = 0;
  let sampling = false;
  const sampler = setInterval(async () => {
    if (sampling) return;
    sampling = true;
    const { rows } = await db.query(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE state <> 'idle')::int AS busy FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
    );
    peak = Math.max(peak, rows[0].n);
    peakBusy = Math.max(peakBusy, rows[0].busy);
    sampling = false;
  }, 50);
  const started = performance.now();
  const statuses = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => reply(i).then(async (r) => (await r.arrayBuffer(), r.status))),
  );
  clearInterval(sampler);
  await new Promise((resolve) => setTimeout(resolve, 100));
  await db.end();
  console.log(
    `1000 replies at once: ${((performance.now() - started) / 1000).toFixed(1)} s, ${
      statuses.filter((s) => s === 303).length
    } answered 303; ` +
      `PostgreSQL peak ${peak} client backends (${peakBusy} busy at once), max_connections ${forum.maxConnections}`,
  );
} finally {
  await forum.stop();
}
