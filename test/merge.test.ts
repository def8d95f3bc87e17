// --merge trusts nothing it reads: it judges with the thresholds the instances ran with (or those it is
// told), refuses results that cannot be parts of one test, and names every field of a tampered file.
// The results merged here come from real runs against the reference forum, then are changed by hand.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseLoadOptions, type Results, runLoad } from "../lib/tierload.ts";
import forumScenario from "../scripts/load.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { runScript, startTestForum } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "tierload-merge-"));
let forum: RunningForum;
/** Two pods of one run, 2 users x 1 action each, with --max-p99 1 (so each fails on its own). */
let strict: Results[];
/** The same with --max-error-rate 0.5 and no p99 threshold. */
let lenient: Results[];

async function pods(run: string, ...more: string[]): Promise<Results[]> {
  return await Promise.all([0, 1].map((index) => {
    const args = ["node", "load.ts", "--url", forum.url, "--users", "4", "--actions", "1", "--instance", run];
    const pod = ["--seed", "11", "--instances", "2", "--index", String(index)];
    return runLoad(forumScenario, parseLoadOptions(forumScenario, [...args, ...pod, ...more]));
  }));
}

before(async () => {
  forum = await startTestForum();
  strict = await pods("strict", "--max-p99", "1");
  lenient = await pods("lenient", "--max-error-rate", "0.5");
});
after(async () => {
  await forum.stop();
  rmSync(dir, { recursive: true, force: true });
});

function files(name: string, results: unknown[]): string[] {
  return results.map((r, i) => {
    const file = join(dir, `${name}-${i}.json`);
    writeFileSync(file, JSON.stringify(r));
    return file;
  });
}

const copy = (r: Results): Results => JSON.parse(JSON.stringify(r));

test("a merge judges with the thresholds its instances ran with", async () => {
  for (const pod of strict) assert.equal(pod.verdict.ok, false);
  const run = await runScript("load.ts", ["--merge", ...files("strict", strict)]);
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stdout, /Thresholds: --max-p99 1 ms/);
  assert.match(run.stdout, /Verdict: FAIL: .*p99 [\d.]+ ms is above --max-p99 1 ms/);
  const loose = await runScript("load.ts", ["--merge", ...files("lenient", lenient)]);
  assert.match(loose.stdout, /Thresholds: --max-error-rate 0.5/);
});

test("instances that ran with different thresholds are refused, unless the merge is told which to use", async () => {
  const other = copy(strict[1]);
  other.settings.thresholds = [{ text: "--max-p99 5000 ms", action: "*", statistic: "p99", limit: 5000 }];
  const mixed = files("mixed", [strict[0], other]);
  const refused = await runScript("load.ts", ["--merge", ...mixed]);
  assert.equal(refused.status, 1);
  assert.match(
    refused.stderr,
    /different thresholds \(strict-0: --max-p99 1 ms; strict-1: --max-p99 5000 ms\): give the merge its own/,
  );
  const told = await runScript("load.ts", ["--merge", ...mixed, "--max-p99", "100000"]);
  assert.match(told.stdout, /Thresholds: --max-p99 100000 ms held/);
  assert.match(told.stdout, /Verdict: PASS/);
});

test("tampered counts are refused: negative, fractional, or more errors than attempts", async () => {
  const [a, b] = [copy(strict[0]), copy(strict[1])];
  a.actions.signup.errors = -1;
  b.actions.signup.errors = 1.5;
  const run = await runScript("load.ts", ["--merge", ...files("tampered", [a, b])]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /actions\["signup"\]\.count and \.errors must be whole numbers, errors no more than count/);
});

test("results that are not parts of one test are refused, saying what differs", async () => {
  const otherActions = { ...copy(strict[1]), settings: { ...strict[1].settings, actions: 2 } };
  const actions = await runScript("load.ts", ["--merge", ...files("actions", [strict[0], otherActions])]);
  assert.match(actions.stderr, /Cannot merge results that differ in actions per user \(strict-0: 1, strict-1: 2\)/);
  const otherSeed = { ...copy(strict[1]), settings: { ...strict[1].settings, seed: 12 } };
  const seed = await runScript("load.ts", ["--merge", ...files("seed", [strict[0], otherSeed])]);
  assert.match(seed.stderr, /differ in seed within the run "strict"/);
  const moreUsers = { ...copy(strict[1]), settings: { ...strict[1].settings, users: 3000 } };
  const users = await runScript("load.ts", ["--merge", ...files("users", [strict[0], moreUsers])]);
  assert.match(
    users.stderr + users.stdout,
    /The instances of the run "strict" ran 3002 users in all, not its 4/,
    users.stdout,
  );
});

test("a results line missing a part names it; an absurd instance count is refused at once", async () => {
  const { actions: _, ...noActions } = copy(strict[0]);
  const { check: __, ...noCheck } = copy(strict[0]);
  const { instanceDetails: ___, ...noDetails } = copy(strict[0]);
  const huge = copy(strict[0]);
  huge.instanceDetails![0].of = 1e9;
  const endless = copy(strict[0]);
  endless.instanceDetails![0].of = 1e308;
  const run = await runScript("load.ts", [
    "--merge",
    ...files("parts", [noActions, noCheck, noDetails, huge, endless]),
  ]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /parts-0\.json is not valid tierload results: .*actions must be an object/);
  const each = await Promise.all(
    [noCheck, noDetails, huge, endless].map((r, i) => runScript("load.ts", ["--merge", ...files(`part${i}`, [r])])),
  );
  assert.match(each[0].stderr, /check must be null or an object/);
  assert.match(each[1].stderr, /instanceDetails must be a list/);
  assert.match(
    each[2].stderr,
    /instanceDetails\[0\] must be an index below its run's count of instances, at most 10000/,
  );
  assert.match(each[3].stderr, /instanceDetails\[0\] must be an index below/);
});

test("a results file cut short is named as one, with where its JSON ends", async () => {
  const whole = JSON.stringify(strict[0], null, 1);
  const file = join(dir, "cut.json");
  writeFileSync(file, whole.slice(0, whole.length / 2));
  const run = await runScript("load.ts", ["--merge", file]);
  assert.equal(run.status, 1);
  assert.match(run.stderr, /^error: \S+cut\.json is a results file cut short or corrupted: .*JSON/);
});

test("every field the merge and the reports read is checked: a wrong one is named, never printed as NaN", async () => {
  const r = copy(strict[0]) as unknown as Record<string, Record<string, unknown>>;
  r.settings.thresholds = [null];
  r.settings.users = "2";
  r.startedAt = 1e300 as never;
  r.interrupted = "yes" as never;
  r.stoppedEarly = { why: "?" } as never;
  r.postgres.held = "lots";
  r.generator = { cpuSeconds: 1 };
  (r.actions.signup as unknown as Record<string, unknown>).failures = ["boom"];
  const run = await runScript("load.ts", ["--merge", ...files("types", [r])]);
  assert.equal(run.status, 1);
  assert.equal(run.stdout, "");
  for (
    const named of [
      /settings\.thresholds must be a list of thresholds, each with its text, action, statistic and limit/,
      /settings\.users must be a whole, non-negative number/,
      /startedAt must be a moment in milliseconds since 1970/,
      /interrupted must be true or false/,
      /stoppedEarly must be a reason, in words/,
      /postgres\.held must be a min and a max/,
      /generator\.coreShare must be a number; .*generator\.saturated must be true or false/,
      /actions\["signup"\]\.failures must be a list of failures, each with its step and message/,
    ]
  ) assert.match(run.stderr, named);
  assert.match(run.stderr, /^error: \S+types-0\.json is not valid tierload results: /);
});

test("text from a server or a results file cannot act on the terminal or forge a report line", async () => {
  const hostile = copy(strict[0]);
  const forged = "\x1b[2J\x1b]0;owned\x07\x1b]52;c;cHduZWQ=\x07\nVerdict: PASS";
  hostile.actions.signup.failures = [{ step: "sign up", message: `Cannot sign up: ${forged}`, excerpt: forged }];
  hostile.instances = [`evil\x1b[31m\nVerdict: PASS`];
  hostile.instanceDetails = [{ instance: hostile.instances[0] }];
  const run = await runScript("load.ts", ["--merge", ...files("hostile", [hostile])]);
  // deno-lint-ignore no-control-regex -- finding them is the point
  assert.doesNotMatch(run.stdout + run.stderr, /[\x00-\x08\x0b-\x1f\x7f]/);
  assert.equal(run.stdout.split("\n").filter((line) => line.startsWith("Verdict:")).length, 1);
  assert.match(run.stdout, /\\x1b\[2J\\x1b\]0;owned\\x07/);
});
