// The command line load testers expect: times with units, thresholds per action and statistic (and the
// trap of one that names an action that never ran), CSV files, --version, --quiet and --verbose.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseLoadOptions } from "../lib/tierload.ts";
import forumScenario from "../scripts/load.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { runScript, startTestForum } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "tierload-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("times take units; a bare number keeps each option's old unit", () => {
  const o = parseLoadOptions(forumScenario, [
    ...["node", "load.ts", "--max-duration", "5m", "--think-time", "250ms", "--timeout", "2m", "--ramp-up", "1m30s"],
    ...["--max-p99", "2s", "--start-in", "1h"],
  ]);
  assert.deepEqual([o.maxDuration, o.thinkTime, o.timeout, o.rampUp, o.maxP99, o.startIn], [
    300,
    250,
    120_000,
    90,
    2000,
    3600,
  ]);
  const bare = parseLoadOptions(forumScenario, ["node", "load.ts", "--max-duration", "90", "--think-time", "40"]);
  assert.deepEqual([bare.maxDuration, bare.thinkTime], [90, 40]);
});

test("a time without a unit the tool knows is a usage error naming the option and the forms it takes", async () => {
  const run = await runScript("load.ts", ["--think-time", "5 minutes"]);
  assert.equal(run.status, 2);
  assert.match(
    run.stderr,
    /option '--think-time <time>' argument '5 minutes' is invalid\. expected a time such as 250ms, 30s, 5m or 1h30m \(a bare number is in milliseconds\)/,
  );
  const help = await runScript("load.ts", ["--help"]);
  assert.match(help.stdout, /--think-time <time> +mean pause [^]*?bare\s+number: ms\) \(default: 0ms\)/);
  assert.match(help.stdout, /--timeout <time> [^]*?\(default: 5m\)/);
  assert.match(help.stdout, /--threshold <rule>/);
});

test("--version prints the version; a threshold that is not one is a usage error", async () => {
  const version = await runScript("load.ts", ["--version"]);
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^tierload \d+\.\d+\.\d+\n$/);
  const bad = await runScript("load.ts", ["--threshold", "reply:p97<1s"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /"reply:p97<1s" is not a threshold: write \[action:\]statistic<limit/);
});

test("a --url that is not an http or https URL is a usage error, before an application is started", async () => {
  for (const url of ["not a url", "", "localhost:8080", "ftp://127.0.0.1/"]) {
    const run = await runScript("load.ts", ["--url", url]);
    assert.equal(run.status, 2, url);
    assert.match(run.stderr, /argument '.*' is invalid\. expected an http:\/\/ or https:\/\/ URL, such as http:/);
    assert.doesNotMatch(run.stderr, /Starting the application/);
  }
});

describe("a small run with thresholds, CSV and --quiet", () => {
  let forum: RunningForum;
  let run: Awaited<ReturnType<typeof runScript>>;
  const prefix = join(dir, "run");
  before(async () => {
    forum = await startTestForum();
    run = await runScript("load.ts", [
      ...["--url", forum.url, "--users", "3", "--actions", "4", "--reply-share", "1", "--quiet", "--csv", prefix],
      ...["--threshold", "reply:p95<60s", "--threshold", "signup:p99<1ms", "--threshold", "errors<100%"],
      ...["--threshold", "replies:p99<1s", "--threshold", "*:max<1h"],
    ]);
  });
  after(() => forum?.stop());

  test("each threshold is held or breached with what was measured; one naming no action that ran fails", () => {
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stdout, /reply:p95<60s held \(p95 [\d.]+ ms\)/);
    assert.match(run.stdout, /\*:max<1h held \(max [\d.]+ ms\)/);
    assert.match(run.stdout, /errors<100% held \(errors 0 % \(0 of 18\)\)/);
    assert.match(run.stdout, /replies:p99<1s BREACHED \(no action "replies" ran\)/);
    assert.match(
      run.stdout,
      /Verdict: FAIL: .*replies:p99<1s names an action that never ran \(ran: signup, login, reply\)/,
    );
  });

  test("a threshold with a unit the tool does not know is refused before the run", async () => {
    const refused = await runScript("load.ts", ["--url", forum.url, "--threshold", "signup:p99<1us"]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /expected a time such as 250ms/);
  });

  test("the generator's CPU counts this process from its start, as the OS does: startup and run apart", () => {
    const [, total, startup, running, perRequest] =
      /Generator: ([\d.]+) CPU-s \(([\d.]+) starting, ([\d.]+) running\), ([\d.]+) ms per request/
        .exec(run.stdout)!;
    assert.ok(Math.abs(Number(total) - Number(startup) - Number(running)) <= 0.11, run.stdout);
    // Loading the runtime's modules alone takes more than a tenth of a CPU-second under either runtime.
    assert.ok(Number(startup) > 0.1, `startup ${startup} CPU-s`);
    const requests = Number(/Ran for [\d.]+ s: \d+ actions, \d+ failed; (\d+) requests/.exec(run.stdout)![1]);
    // The total is printed to a tenth of a CPU-second and the figure per request to a hundredth of a ms: within those.
    const rounding = (0.05 * 1000) / requests + 0.005;
    assert.ok(Math.abs(Number(perRequest) - (Number(total) * 1000) / requests) <= rounding + 1e-9, run.stdout);
  });

  test("p95 is in the table; --quiet prints the report and nothing else", () => {
    assert.match(run.stdout, /count +errors +per s +min +p50 +p90 +p95 +p99 +max +ms/);
    assert.equal(run.stderr, "");
  });

  test("--csv writes stats, failures and the per-second history a spreadsheet opens", () => {
    const rows = (suffix: string) => readFileSync(`${prefix}_${suffix}.csv`, "utf8").trimEnd().split("\r\n");
    const stats = rows("stats");
    assert.equal(stats[0], "Type,Name,Count,Failures,Per second,Min ms,Median ms,p90 ms,p95 ms,p99 ms,Max ms,Mean ms");
    assert.ok(stats.some((row) => row.startsWith("action,reply,12,0,")), stats.join("\n"));
    assert.ok(stats.some((row) => row.startsWith("page,GET /thread,")));
    assert.deepEqual(rows("failures"), ["Type,Name,Step,Message,URL,Status,Page"]);
    const history = rows("stats_history");
    assert.match(history[0], /^Timestamp,Requests,Failed requests,/);
    assert.ok(history.length >= 2);
    assert.match(history[1], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z,\d+,0,/);
  });
});
