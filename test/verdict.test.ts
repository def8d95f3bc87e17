// Verdicts you can trust: a run in which actions failed never says PASS, instances merge to what they did, and a
// usage error is one. How runs end (signals, a killed application) is test/interrupts.test.ts.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Results } from "../lib/results.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { runScript, startTestForum } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "tierload-verdict-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const readJson = (file: string): Results => JSON.parse(readFileSync(file, "utf8"));

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
    [
      "load.ts",
      ["--json", join(dir, "missing", "x.json"), "--report", dir, "--csv", join(dir, "gone", "run")],
      /--json .* does not exist; --report .* is a directory; --csv .*gone\/run_stats\.csv cannot be written/,
    ],
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
