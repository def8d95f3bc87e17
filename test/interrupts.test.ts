// Every way a run can end ends with a report and the right exit status, and nothing it started is left
// running: the application killed mid-run, Ctrl-C under npm start, during the application's start, during a
// --start-at wait, and in the functional suite. Each test does what a person does: runs the script, signals its
// process group as a terminal's Ctrl-C does, kills a process.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimeCommand } from "../lib/process.ts";
import type { Results } from "../lib/results.ts";
import {
  alive,
  childrenOf,
  eventually,
  signalGroup,
  startCommand,
  startScript,
  startTestForum,
  waitFor,
} from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "tierload-interrupts-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const readJson = (file: string): Results => JSON.parse(readFileSync(file, "utf8"));

/** Every process below `pid`, children first found, so that none can be missed once it is orphaned. */
function descendants(pid: number): number[] {
  const children = childrenOf(pid);
  return [...children, ...children.flatMap(descendants)];
}

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

test("Ctrl-C that the starting application dies of too: the run ends interrupted, exit 130, its check not run", async () => {
  // An application in the terminal's process group (or a child not yet in a group of its own) gets the same
  // Ctrl-C: this one's start fails on it, as the forum's did once in CI (its SIGINT came before setsid).
  const file = new URL("./fixtures/dies-on-ctrl-c.ts", import.meta.url).pathname;
  const run = startCommand(runtimeCommand(file, ["--users", "2", "--actions", "1"]), { group: true });
  await waitFor(run, "stderr", "starting");
  signalGroup(run.child, "SIGINT");
  const { status, stdout, stderr } = await run.done;
  assert.equal(status, 130, stderr);
  assert.match(stderr, /the application ended \(SIGINT\) before it was ready: no action runs/);
  assert.match(stdout, /Interrupted after [\d.]+ s: 0 actions/);
  assert.match(stdout, /Nothing lost: not checked \(the application did not start: the application ended \(SIGINT\)/);
  assert.match(stdout, /\nVerdict: INTERRUPTED: what ran failed: no action was attempted/);
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
