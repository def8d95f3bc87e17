// The seed's setup holds its connections: the reference forum's fixed pool opens them all at start and
// keeps them, every one serves queries (an idle one is reused oldest-first), the run reports what
// PostgreSQL held and used, and a pool that PostgreSQL will not fill fails the run, naming why.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { openFixedPool } from "../lib/fixed-pool.ts";
import { startEmbeddedPostgres } from "../lib/postgres.ts";
import { merge } from "../lib/merge.ts";
import type { Results } from "../lib/results.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { runScript, startTestForum } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "tierload-pool-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const readJson = (file: string): Results => JSON.parse(readFileSync(file, "utf8"));

/** An embedded PostgreSQL of its own, in a directory the postgres user can reach (as root, it runs as that user). */
async function postgres(maxConnections: number) {
  const home = mkdtempSync(join(tmpdir(), "tierload-pool-pg-"));
  const database = await startEmbeddedPostgres(home, maxConnections, () => {});
  return {
    url: database.url,
    stop: async () => {
      await database.stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** The client backends connected now, besides the asking one. */
async function backends(databaseUrl: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query(
      "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    );
    return rows.map((row) => row.pid);
  } finally {
    await client.end();
  }
}

describe("against a forum with a fixed pool of 8", () => {
  let forum: RunningForum;
  before(async () => forum = await startTestForum([], { pool: 8 }));
  after(() => forum.stop());

  test("the fixed pool opens every connection at start and holds them while it serves", async () => {
    assert.deepEqual(forum.pool, { size: 8, mode: "fixed", held: 8 });
    const before = await backends(forum.databaseUrl);
    assert.equal(before.length, 8);
    await Promise.all(Array.from({ length: 40 }, () => fetch(forum.url).then((r) => r.text())));
    assert.deepEqual((await backends(forum.databaseUrl)).sort(), before.sort());
  });

  test("a --database-url that cannot be reached is reported as not sampled, saying why", async () => {
    const args = ["--url", forum.url, "--database-url", "postgresql://postgres:secret@127.0.0.1:1/postgres"];
    const run = await runScript("load.ts", [...args, "--users", "1", "--actions", "1"]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(
      run.stdout,
      /PostgreSQL: not sampled \(cannot connect to postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/postgres: .*ECONNREFUSED/,
    );
  });
});

test("an idle connection is reused oldest-first: one query after another goes round every connection", async () => {
  const database = await postgres(20);
  try {
    const { pool, shortfall } = await openFixedPool({ connectionString: database.url }, 5);
    try {
      assert.equal(shortfall, undefined);
      const pids: number[] = [];
      for (let i = 0; i < 10; i++) pids.push((await pool.query("SELECT pg_backend_pid() AS pid")).rows[0].pid);
      assert.equal(new Set(pids).size, 5);
      assert.deepEqual(pids.slice(5), pids.slice(0, 5));
    } finally {
      await pool.end();
    }
  } finally {
    await database.stop();
  }
});

test("a run holds the fixed pool throughout and every connection serves it; the merge unites the servers' backends", async () => {
  const json = join(dir, "held.json");
  const run = await runScript("load.ts", ["--pool", "6", "--users", "4", "--actions", "3", "--json", json]);
  assert.equal(run.status, 0, run.stdout + run.stderr);
  const r = readJson(json);
  assert.deepEqual(r.postgres.pool, { size: 6, mode: "fixed", held: 6 });
  assert.deepEqual(r.postgres.held, { min: 6, max: 6 });
  assert.equal(r.postgres.served, 6);
  // A short run's statements take a millisecond or two: a look (every 200 ms) may catch none running.
  assert.ok(r.postgres.activePeak! >= 0 && r.postgres.activePeak! <= 6);
  // The backends read from /proc at the look with the most memory: a loaded machine may have a backend between
  // states at that look, so at least one and at most the pool's six.
  const processes = r.postgres.processes!;
  assert.ok(processes.count >= 1 && processes.count <= 6 && processes.pssBytes > 0, JSON.stringify(processes));
  assert.ok(r.postgres.processes!.files.min > 0);
  assert.ok(r.timeline.some((t) => t.pgBackends === 6 && t.pgActive !== undefined));
  assert.match(
    run.stdout,
    /PostgreSQL: held 6 connections throughout \(the application's pool: 6, fixed\), 6 served the run's queries, at most \d+ active at once, max_connections 106; backends' memory [\d.]+ MB PSS \([1-6] backends?, [\d.]+ MB each\), open files per backend \d+ \/ \d+ \/ \d+/,
  );
  assert.match(run.stdout, /Verdict: PASS/);

  // Another instance of the same server, one backend more: the union; another server: they add up.
  const pids = r.postgres.servedPids!;
  const same = {
    ...r,
    instances: ["b"],
    postgres: { ...r.postgres, servedPids: [...pids, 1], held: { min: 5, max: 7 } },
  };
  const one = merge([r, same]).postgres;
  assert.equal(one.served, 7);
  assert.deepEqual(one.held, { min: 5, max: 7 });
  const other = { ...r, instances: ["c"], postgres: { ...r.postgres, server: "elsewhere" } };
  const two = merge([r, other]).postgres;
  assert.equal(two.served, 12);
  assert.match(two.note!, /the instances sampled 2 servers: served adds up/);
});

test("a fixed pool larger than max_connections fails the run, naming the shortfall and its cause", async () => {
  const database = await postgres(10);
  try {
    const json = join(dir, "short.json");
    const run = await runScript("load.ts", ["--pool", "20", "--users", "2", "--actions", "1", "--json", json], {
      env: { DATABASE_URL: database.url },
    });
    assert.equal(run.status, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /forum: error: The pool holds \d+ of its 20 PostgreSQL connections/);
    const r = readJson(json);
    assert.equal(r.postgres.pool!.size, 20);
    const reason = r.verdict.reasons.find((line) => line.startsWith("the fixed pool of 20 connections"));
    assert.ok(reason, r.verdict.reasons.join("\n"));
    assert.match(reason, /PostgreSQL refused the next: "sorry, too many clients already" \(max_connections is 10\)/);
    assert.match(run.stdout, /Verdict: FAIL: .*the fixed pool of 20 connections/);
  } finally {
    await database.stop();
  }
});
