// Verdicts you can trust: a run in which actions failed never says PASS, every way a run can end ends
// with a report and the right exit status, and nothing it started is left running. Each test does what
// a person does: runs the script, signals its process group as a terminal's Ctrl-C does, kills a process.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Results } from "../lib/results.ts";
import type { RunningForum } from "../scripts/forum-server.ts";
import {
  alive,
  childrenOf,
  eventually,
  runScript,
  signalGroup,
  startCommand,
  startScript,
  startTestForum,
  waitFor,
} from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "tierload-verdict-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const readJson = (file: string): Results => JSON.parse(readFileSync(file, "utf8"));

/** Every process below `pid`, children first found, so that none can be missed once it is orphaned. */
function descendants(pid: number): number[] {
  const children = childrenOf(pid);
  return [...children, ...children.flatMap(descendants)];
}

describe("against one forum", () => {
  let forum: RunningForum;
  before(async () => forum = await startTestForum());
  after(() => forum.stop());
  const small = (instance: string, ...more: string[]) => [
    "--url",
    forum.url,
    "--users",
    "6",
    "--actions",
    "4",
    "--instance",
    instance,
    ...more,
  ];

  test("two instances at once on one forum both pass, each checking its own writes; so does their merge", async () => {
    const [a, b] = [join(dir, "a1.json"), join(dir, "b1.json")];
    const runs = await Promise.all([
      runScript("load.ts", small("a1", "--json", a)),
      runScript("load.ts", small("b1", "--json", b)),
    ]);
    for (const run of runs) {
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /Nothing lost: all \d+ threads and \d+ replies .* on the forum as written, .*at least/);
      assert.match(run.stdout, /\nVerdict: PASS\n/);
    }
    assert.equal(readJson(a).check!.counts, "at least");
    const merged = await runScript("load.ts", ["--merge", a, b]);
    assert.equal(merged.status, 0, merged.stderr);
    assert.match(merged.stdout, /tierload: 12 users x 4 actions/);
    assert.match(merged.stdout, /\nVerdict: PASS\n/);
    const twice = await runScript("load.ts", ["--merge", a, a]);
    assert.equal(twice.status, 1);
    assert.match(twice.stdout, /Instances: 1 merged; found twice, counted once: a1/);
    assert.match(twice.stdout, /Verdict: FAIL: instances found more than once \(each counted once\): a1/);
  });

  test("--json - puts the results on stdout and the report on stderr; no password is printed or saved", async () => {
    const password = new URL(forum.databaseUrl).password;
    const run = await runScript("load.ts", [...small("pw"), "--database-url", forum.databaseUrl, "--json", "-"]);
    assert.equal(run.status, 0, run.stderr);
    const results: Results = JSON.parse(run.stdout);
    assert.equal(results.verdict.ok, true);
    assert.equal(results.postgres.sampled, true);
    assert.match(results.settings.databaseUrl!, /^postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres$/);
    assert.match(run.stderr, /\nVerdict: PASS\n/);
    assert.ok(!run.stdout.includes(password) && !run.stderr.includes(password), "the password was printed");
  });

  test("merge errors name the file and every field that is wrong", async () => {
    const good = join(dir, "a1.json");
    const bad = join(dir, "bad.json");
    const broken = readJson(good) as unknown as Record<string, unknown>;
    delete broken.wallSeconds;
    (broken.actions as Record<string, { histogram: string }>).reply.histogram = "garbage";
    writeFileSync(bad, JSON.stringify(broken));
    const run = await runScript("load.ts", ["--merge", good, bad]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /error: .*bad\.json is not valid tierload results: wallSeconds must be a number; /);
    assert.match(run.stderr, /actions\["reply"\]\.histogram must be an HDR histogram/);
  });

  test("a soft open-file limit below the run's need is raised up to the hard limit, not refused", async () => {
    // 300 users need 364 files; the shell's soft limit is 200 and its hard limit stays high.
    const run = await runScript("load.ts", [...small("nofile"), "--users", "300", "--actions", "0"], {
      shell: "ulimit -Sn 200",
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /Ran for [\d.]+ s: 600 actions, 0 failed/);
  });
});

test("every reply answered but not stored (planted drop-replies): FAIL, exit 1, the failures counted", async () => {
  const forum = await startTestForum(["drop-replies"]);
  try {
    const run = await runScript("load.ts", [
      ...["--url", forum.url, "--users", "10", "--actions", "3", "--reply-share", "1"],
    ]);
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stdout, /Ran for [\d.]+ s: 50 actions, 30 failed; \d+ requests, \d+ per second, 0 failed/);
    assert.match(run.stdout, /Thresholds: none set; any failed action fails the run/);
    assert.match(
      run.stdout,
      /\nVerdict: FAIL: 30 of 50 actions failed \(--max-error-rate or a threshold such as errors<1% allows a share\)\n/,
    );
  } finally {
    await forum.stop();
  }
});

test("usage errors exit 2 in all four scripts, with commander's message", async () => {
  const cases: [string, string[], RegExp][] = [
    ["load.ts", ["--users", "abc"], /argument 'abc' is invalid/],
    ["load.ts", ["--bogus"], /unknown option '--bogus'/],
    [
      "load.ts",
      ["--json", join(dir, "missing", "x.json")],
      /--json .* cannot be written: the directory .* does not exist/,
    ],
    ["load.ts", ["--report", dir], /--report .* is a directory/],
    ["functional.ts", ["--reporter", "xml"], /argument 'xml' is invalid/],
    ["tune-macos.ts", ["--connectoins", "5"], /unknown option '--connectoins'\n\(Did you mean --connections\?\)/],
    ["forum-server.ts", ["--prot", "1"], /unknown option '--prot'\n\(Did you mean --port\?\)/],
  ];
  for (const [script, args, message] of cases) {
    const run = await runScript(script, args);
    assert.equal(run.status, 2, `${script} ${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
});

test("the forum killed mid-run: the run stops, reports, writes its JSON, exits 1, and leaves nothing", async () => {
  const json = join(dir, "killed.json");
  const args = ["--pool", "20", "--users", "10", "--actions", "1000", "--think-time", "50", "--json", json];
  const run = startScript("load.ts", args);
  await waitFor(run, "stderr", "Loading");
  const [forumPid] = childrenOf(run.child.pid!);
  const started = [forumPid, ...descendants(forumPid)];
  process.kill(forumPid, "SIGKILL");
  const { status, stdout, stderr } = await run.done;
  assert.equal(status, 1, stderr);
  assert.match(stderr, /error: the reference forum's process ended \(signal SIGKILL\): no new actions/);
  assert.match(stdout, /Nothing lost: not checked \(the check could not run: /);
  assert.match(
    stdout,
    /\nVerdict: FAIL: .*the run stopped early: the reference forum's process ended \(signal SIGKILL\)/,
  );
  const results = readJson(json);
  assert.equal(results.check!.checked, false);
  assert.match(results.stoppedEarly!, /SIGKILL/);
  await eventually("the forum's PostgreSQL to stop", () => started.every((pid) => !alive(pid)));
});

test("Ctrl-C under npm start: in-flight actions finish, the report and JSON come out, exit 130, nothing left", async () => {
  const json = join(dir, "interrupted.json");
  const args = ["--pool", "20", "--users", "8", "--actions", "100000", "--think-time", "100", "--json", json];
  const run = startCommand(["npm", "start", "--silent", "--", ...args], { group: true });
  // Off a terminal, progress is a line of stats every 10 s: wait for the first, then press Ctrl-C.
  await waitFor(
    run,
    "stderr",
    /\[10s\] \d+\/800016 actions \(0 %(, ETA \S+)?\) \| users 8\/8 \| \d+ req\/s \| 0 failed/,
  );
  const started = descendants(run.child.pid!);
  signalGroup(run.child, "SIGINT");
  const { status, signal, stdout, stderr, atExit } = await run.done;
  assert.match(stderr, /SIGINT: no new actions; finishing those in flight/);
  assert.match(stdout, /Interrupted after [\d.]+ s: \d+ actions, 0 failed/, stderr);
  assert.match(stdout, /\nVerdict: INTERRUPTED: what ran passed\n/);
  // npm waits for the script, then ends itself by the same signal, as a wrapper should: a shell sees 130.
  assert.ok(status === 130 || signal === "SIGINT", `exit ${status}, signal ${signal}: ${stderr}`);
  assert.match(atExit.stdout, /Verdict: INTERRUPTED/, "npm gave the prompt back before the report");
  const results = readJson(json);
  assert.equal(results.interrupted, true);
  assert.equal(results.check!.ok, true, JSON.stringify(results.check));
  await eventually("every process it started to end", () => started.every((pid) => !alive(pid)));
});

test("Ctrl-C while the embedded forum starts: no action starts, the report says so, exit 130, nothing left", async () => {
  const run = startScript("load.ts", ["--pool", "20", "--users", "4", "--actions", "2"], { group: true });
  // The forum takes seconds to start (initdb, PostgreSQL, the schema); the signal comes during that.
  await waitFor(run, "stderr", "Starting the application for this run");
  const started = descendants(run.child.pid!);
  signalGroup(run.child, "SIGINT");
  const { status, stdout, stderr } = await run.done;
  assert.equal(status, 130, stderr);
  assert.match(stderr, /SIGINT: no new actions/);
  assert.match(stdout, /Interrupted after [\d.]+ s: 0 actions/);
  assert.match(stdout, /\nVerdict: INTERRUPTED: what ran failed: no action was attempted/);
  await eventually("every process it started to end", () => started.every((pid) => !alive(pid)));
});

test("Ctrl-C while waiting for --start-at: the wait ends at once, no action starts, exit 130", async () => {
  const forum = await startTestForum();
  try {
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const args = ["--url", forum.url, "--users", "2", "--actions", "1", "--start-at", later];
    const run = startScript("load.ts", args, { group: true });
    await waitFor(run, "stderr", /Waiting 3\d{3}\.\d s for the planned start/);
    signalGroup(run.child, "SIGINT");
    const { status, stdout, stderr } = await run.done;
    assert.equal(status, 130, stderr);
    assert.match(stdout, /Interrupted after [\d.]+ s: 0 actions/);
  } finally {
    await forum.stop();
  }
});

test("Ctrl-C in the functional suite: the case in flight finishes, the report shows what ran, exit 130", async () => {
  const run = startScript("functional.ts", [], { group: true });
  await waitFor(run, "stdout", /✓ .*\n/);
  signalGroup(run.child, "SIGINT");
  const { status, stdout, stderr } = await run.done;
  assert.match(stderr, /SIGINT: stopping after the case in flight/);
  assert.match(stderr, /Interrupted: \d+ cases? not run/);
  // The embedded PostgreSQL is not in the terminal's process group: the cases that ran all passed.
  assert.match(stdout, /\n\d+ passed, 0 failed\n$/);
  assert.equal(status, 130, stderr);
});
