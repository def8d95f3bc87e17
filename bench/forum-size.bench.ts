/**
 * Cost per request as the forum grows: the same load on a forum of 100 threads and on one of 10,000,
 * each a fresh forum, alternating. Now that the forum pages its thread list, neither the generator nor
 * the forum should pay for threads nobody looks at.
 *
 *   npx tsx bench/forum-size.bench.ts [users=200] [actions=5] [rounds=2]
 *
 * The forum runs in this process (so this process's CPU during the run is the forum's, PostgreSQL
 * excluded); the generator is scripts/load.ts with one worker thread, whose JSON gives its own CPU.
 * The threads are seeded straight into PostgreSQL, as the forum itself writes them (a first post each,
 * the forum's count kept), so that a 10,000-thread forum takes seconds to make, not minutes.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { runtimeCommand } from "../lib/process.ts";
import type { Results } from "../lib/results.ts";
import { startForum } from "../scripts/forum-server.ts";
import { runToEnd } from "./run.ts";

const [users = 200, actions = 5, rounds = 2] = process.argv.slice(2).map(Number);
const SIZES = [100, 10_000];
const dir = mkdtempSync(join(tmpdir(), "tierload-size-"));

async function seed(databaseUrl: string, threads: number): Promise<void> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const existing = (await db.query(
      "SELECT count(*)::int AS n FROM threads t JOIN forums f ON f.id = t.forum_id WHERE f.name = 'Other'",
    )).rows[0].n;
    await db.query(
      `WITH f AS (SELECT id FROM forums WHERE name = 'Other'), u AS (SELECT id FROM users WHERE username = 'p1'),
            t AS (INSERT INTO threads (forum_id, title, author_id, post_count, last_post_id)
                  SELECT f.id, 'Seeded thread ' || g, u.id, 1, nextval('posts_id_seq') FROM f, u, generate_series(1, $1) g
                  RETURNING id, author_id, last_post_id)
       INSERT INTO posts (id, thread_id, author_id, body) SELECT last_post_id, id, author_id, 'A seeded post.' FROM t`,
      [threads - existing],
    );
    await db.query("UPDATE forums SET thread_count = (SELECT count(*) FROM threads WHERE forum_id = forums.id)");
  } finally {
    await db.end();
  }
}

interface Cost {
  generatorMs: number;
  forumMs: number;
  requests: number;
  failed: number;
}

async function measure(threads: number, round: number): Promise<Cost> {
  const forum = await startForum({ port: 0, log: () => {} });
  try {
    await seed(forum.databaseUrl, threads);
    const json = join(dir, `${threads}-${round}.json`);
    const [command, ...args] = runtimeCommand("scripts/load.ts", [
      ...["--url", forum.url, "--users", String(users), "--actions", String(actions), "--workers", "1"],
      ...["--instance", `size${threads}r${round}`, "--seed", String(round), "--json", json],
    ]);
    const cpu = process.cpuUsage();
    await runToEnd(command, args);
    const used = process.cpuUsage(cpu);
    const r: Results = JSON.parse(readFileSync(json, "utf8"));
    const requests = Object.values(r.actions).filter((a) => a.kind === "page").reduce((n, a) => n + a.count, 0);
    const failed = Object.values(r.actions).filter((a) => a.kind === "action").reduce((n, a) => n + a.errors, 0);
    return {
      generatorMs: r.generator.cpuMsPerRequest,
      forumMs: (used.user + used.system) / 1000 / requests,
      requests,
      failed,
    };
  } finally {
    await forum.stop();
  }
}

const costs = new Map<number, Cost[]>(SIZES.map((size) => [size, []]));
try {
  for (let round = 1; round <= rounds; round++) {
    for (const size of SIZES) costs.get(size)!.push(await measure(size, round));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`${users} users x ${actions} actions, ${rounds} rounds, medians; CPU ms per request`);
console.log(["threads", "requests", "failed actions", "generator", "forum"].join("\t"));
const medians = new Map<number, { generator: number; forum: number }>();
for (const [size, all] of costs) {
  const m = { generator: median(all.map((c) => c.generatorMs)), forum: median(all.map((c) => c.forumMs)) };
  medians.set(size, m);
  console.log([
    size,
    median(all.map((c) => c.requests)),
    all.reduce((n, c) => n + c.failed, 0),
    m.generator.toFixed(3),
    m.forum.toFixed(3),
  ].join("\t"));
}
const [small, large] = SIZES.map((size) => medians.get(size)!);
console.log(
  `10,000 threads against 100: generator ${(large.generator / small.generator).toFixed(2)}x, forum ${
    (large.forum / small.forum).toFixed(2)
  }x`,
);
