// The load test on small loads: its accounting, its JSON, its verdicts, and its behaviour when the
// server fails. The 1000-user run is a benchmark (bench/), not a test.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as hdr from "hdr-histogram-js";
import pg from "pg";
import { merge } from "../lib/merge.ts";
import type { Results } from "../lib/results.ts";
import { checkOpenFiles } from "../lib/load-cli.ts";
import { type LoadOptions, parseLoadOptions, runLoad as runScenario } from "../lib/tierload.ts";
import forumScenario from "../scripts/load.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { eventually, runScript, startTestForum as start } from "./helpers.ts";

type ForumRun = LoadOptions & { replyShare: number; forum: string; pool: number };

function options(url: string, databaseUrl: string | undefined, overrides: Partial<ForumRun> = {}): ForumRun {
  const parsed = parseLoadOptions<ForumRun>(forumScenario, ["node", "load.ts", "--users", "12", "--actions", "4"]);
  return { ...parsed, url, databaseUrl, ...overrides };
}

const runLoad = (o: ForumRun) => runScenario(forumScenario, o);

const actionCount = (r: Results, name: string) => r.actions[name]?.count ?? 0;

/** The replies the forum's database holds: what a run has written so far. */
async function replies(forum: RunningForum): Promise<number> {
  const client = new pg.Client({ connectionString: forum.databaseUrl });
  await client.connect();
  try {
    return (await client.query("SELECT count(*)::int AS n FROM posts")).rows[0].n;
  } finally {
    await client.end();
  }
}

describe("a small run against the reference forum", () => {
  let forum: RunningForum;
  let results: Results;
  const dir = mkdtempSync(join(tmpdir(), "tierload-load-"));
  before(async () => {
    forum = await start();
    results = await runLoad(options(forum.url, forum.databaseUrl, { instance: "small", seed: 7 }));
  });
  after(async () => {
    await forum.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("every attempted action is a success or a counted error", () => {
    assert.equal(actionCount(results, "signup"), 12);
    assert.equal(actionCount(results, "login"), 12);
    assert.equal(actionCount(results, "reply") + actionCount(results, "new thread"), 12 * 4);
    const errors = Object.values(results.actions).reduce((n, a) => n + a.errors, 0);
    assert.equal(errors, 0, JSON.stringify(Object.values(results.actions).flatMap((a) => a.failures)));
  });

  test("the page loads inside the actions are measured by name", () => {
    for (const page of ["GET /signup", "POST /signup", "GET /login", "POST /login", "GET /forum", "GET /thread"]) {
      assert.ok(actionCount(results, page) > 0, `${page} missing from ${Object.keys(results.actions)}`);
    }
    assert.equal(actionCount(results, "POST /reply"), actionCount(results, "reply"));
  });

  test("the end-state check passes: every write is on the forum and its counts moved by at least that", () => {
    const lost = results.check!;
    assert.equal(lost.name, "Nothing lost");
    assert.equal(lost.ok, true, JSON.stringify(lost));
    assert.equal(lost.counts, "at least");
    assert.equal(lost.counted.replies, actionCount(results, "reply"));
    assert.equal(lost.counted.threads, actionCount(results, "new thread"));
  });

  test("the JSON holds histograms, a per-second timeline, PostgreSQL's peak and the generator's cost", () => {
    const json: Results = JSON.parse(JSON.stringify(results));
    const reply = json.actions.reply;
    assert.equal(hdr.decodeFromCompressedBase64(reply.histogram).totalCount, reply.count);
    for (const key of ["min", "p50", "p90", "p99", "max", "perSecond"] as const) {
      assert.equal(typeof reply.summary[key], "number");
    }
    assert.ok(reply.summary.p50 <= reply.summary.p99 && reply.summary.p99 <= reply.summary.max);
    assert.ok(json.timeline.length >= 1);
    assert.equal(
      json.timeline.reduce((n, t) => n + t.requests, 0),
      Object.values(json.actions).filter((a) => a.kind === "page").reduce((n, a) => n + a.count, 0),
    );
    assert.ok(json.timeline.some((t) => t.activeUsers > 0));
    assert.equal(json.postgres.sampled, true);
    assert.ok(json.postgres.peakBackends >= 1 && json.postgres.maxConnections >= 50);
    assert.ok(json.generator.cpuSeconds > 0 && json.generator.cpuMsPerRequest > 0);
    assert.ok(json.generator.startupCpuSeconds! > 0, "starting the worker threads counts as startup");
    assert.ok(json.actions["GET /forum"].bytes! > 0, "bytes received on the wire, per page load");
    assert.equal(json.actions.reply.bytes, undefined, "an action's bytes are its page loads'");
    assert.equal(typeof json.generator.saturated, "boolean");
    assert.deepEqual(json.verdict, { ok: true, reasons: [] });
  });

  test("the same seed makes the same choices", async () => {
    const again = await runLoad(options(forum.url, undefined, { instance: "again", seed: 7 }));
    assert.equal(actionCount(again, "reply"), actionCount(results, "reply"));
    assert.equal(actionCount(again, "new thread"), actionCount(results, "new thread"));
  });

  test("three worker threads: shares differ by one user at most, the same choices, counts merged exactly", async () => {
    const threaded = await runLoad(options(forum.url, undefined, { instance: "threads", seed: 7, workers: 3 }));
    assert.deepEqual(threaded.generator.workers?.map((w) => w.users), [4, 4, 4]);
    assert.equal(actionCount(threaded, "signup"), 12);
    assert.equal(actionCount(threaded, "reply"), actionCount(results, "reply"));
    assert.equal(actionCount(threaded, "new thread"), actionCount(results, "new thread"));
    for (const [name, a] of Object.entries(threaded.actions)) {
      assert.equal(hdr.decodeFromCompressedBase64(a.histogram).totalCount, a.count, name);
    }
    const pageLoads = Object.values(threaded.actions).filter((a) => a.kind === "page").reduce((n, a) => n + a.count, 0);
    assert.equal(threaded.timeline.reduce((n, t) => n + t.requests, 0), pageLoads);
    assert.deepEqual(threaded.verdict, { ok: true, reasons: [] });
    const uneven = await runLoad(
      options(forum.url, undefined, { instance: "uneven", users: 5, actions: 1, workers: 3 }),
    );
    assert.deepEqual(uneven.generator.workers?.map((w) => w.users), [1, 2, 2]);
    assert.equal(actionCount(uneven, "login"), 5);
  });

  test("--merge adds the instances' counts and histograms exactly", async () => {
    const second = await runLoad(options(forum.url, undefined, { instance: "second", users: 5, actions: 4 }));
    const [a, b] = [join(dir, "a.json"), join(dir, "b.json")];
    writeFileSync(a, JSON.stringify(results));
    writeFileSync(b, JSON.stringify(second));
    const run = await runScript("load.ts", ["--merge", a, b, "--json", join(dir, "merged.json")]);
    assert.equal(run.status, 0, run.stderr);
    const merged: Results = JSON.parse(readFileSync(join(dir, "merged.json"), "utf8"));
    for (const name of ["signup", "GET /forum", "reply"]) {
      assert.equal(merged.actions[name].count, actionCount(results, name) + actionCount(second, name));
      assert.equal(
        hdr.decodeFromCompressedBase64(merged.actions[name].histogram).totalCount,
        merged.actions[name].count,
      );
    }
    assert.deepEqual(merged.instances, ["small", "second"]);
    assert.match(run.stdout, /tierload: 17 users x 4 actions/);
  });

  test("a threshold breach exits 1 and says which", async () => {
    const run = await runScript("load.ts", [
      "--url",
      forum.url,
      "--users",
      "3",
      "--actions",
      "2",
      "--max-p99",
      "0.001",
    ]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stdout, /Verdict: FAIL: signup p99 [\d.]+ ms is above --max-p99 0.001 ms/);
  });
});

test("a server that drops replies: the failures are counted, shown with the page, and breach the error rate", async () => {
  const forum = await start(["drop-replies"]);
  try {
    const results = await runLoad(options(forum.url, undefined, { replyShare: 1, maxErrorRate: 0.05 }));
    const reply = results.actions.reply;
    assert.equal(reply.count, 48);
    assert.equal(reply.errors, 48);
    assert.match(
      reply.failures[0].message,
      /Cannot reply to thread \d+ as "load_user_\w+": the reply did not appear on the thread/,
    );
    assert.match(reply.failures[0].excerpt!, /Logged in as load_user_/);
    assert.equal(reply.failures.length, 5);
    assert.equal(results.check!.ok, true);
    assert.equal(results.verdict.ok, false);
    assert.match(results.verdict.reasons[0], /error rate 0.6667 is above --max-error-rate 0.05/);
  } finally {
    await forum.stop();
  }
});

test("a server that answers 500 to everything: the run refuses to start, naming the step", async () => {
  const server = createServer((_req, res) => res.writeHead(500).end("<p class=error>database on fire</p>"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/myapp/`;
    await assert.rejects(
      runLoad(options(url, undefined)),
      /Cannot find the forum "Other" as an anonymous visitor: the server answered 500 Internal Server Error: "database on fire"/,
    );
  } finally {
    server.close();
  }
});

test("a forum that goes away mid-run: requests fail, are counted, and the run still reports", async () => {
  const forum = await start();
  const run = runLoad(options(forum.url, undefined, { users: 8, actions: 200, thinkTime: 20, timeout: 2000 }));
  await eventually("10 replies on the forum", async () => await replies(forum) >= 10);
  await forum.stop(0);
  const results = await run;
  const failed = Object.values(results.actions).filter((a) => a.kind === "action").reduce((n, a) => n + a.errors, 0);
  assert.ok(failed > 0);
  assert.match(Object.values(results.actions).flatMap((a) => a.failures)[0].message, /failed: |answered 5\d\d/);
  assert.equal(results.check!.checked, false);
  assert.match(results.check!.note!, /the check could not run/);
  assert.match(results.verdict.reasons.join("; "), /Nothing lost: not checked: the check could not run/);
});

test("too few open files: the run refuses, saying how many it needs and how to raise the limit", () => {
  const message = checkOpenFiles(1000, { soft: 256, hard: 10_240 });
  assert.match(
    message!,
    /This run needs about 1064 open files .* but the limit is 256: raise it for this shell with: ulimit -n 1064/,
  );
  assert.match(checkOpenFiles(1000, { soft: 256, hard: 512 })!, /the hard limit is 512, so raise that first/);
  assert.equal(checkOpenFiles(100, { soft: 1024, hard: 1024 }), null);
});

test("the script refuses a run its shell's open-file limit cannot hold", async () => {
  const { status, stderr } = await runScript("load.ts", ["--users", "500"], { shell: "ulimit -n 200" });
  assert.equal(status, 1);
  assert.match(stderr, /error: This run needs about 564 open files .* the limit is 200/);
});

test("--help names the options", async () => {
  const run = await runScript("load.ts", ["--help"]);
  for (
    const option of [
      "--users",
      "--actions",
      "--reply-share",
      "--instance",
      "--ramp-up",
      "--think-time",
      "--max-duration",
      "--seed",
      "--url",
      "--database-url",
      "--json",
      "--max-error-rate",
      "--max-p99",
      "--merge",
    ]
  ) {
    assert.match(run.stdout, new RegExp(option));
  }
});

test("merging nothing, or a file that is not results, is a clear error", () => {
  assert.throws(() => merge([]), /Nothing to merge/);
});
