// The open model: users arriving at a rate against the reference forum, arrivals dropped when
// --max-active users are in flight (counted, failing the run), and the wrk2 demonstration: a forum
// stopped for 2 s during a paced run shows in the latencies from the due time, not in those from the start.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as hdr from "hdr-histogram-js";
import { arrivalPlan, arrivalsBy, arrivalTime, countOf, parseStages } from "../lib/arrivals.ts";
import { openShareOf } from "../lib/load-options.ts";
import {
  formatReport,
  type LoadOptions,
  merge,
  parseLoadOptions,
  readResultsFrom,
  renderReport,
  type Results,
} from "../lib/tierload.ts";
import { runLoad } from "../lib/runner.ts";
import { runtimeCommand } from "../lib/process.ts";
import { progressLine } from "../lib/report.ts";
import forumScenario from "../scripts/load.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { runScript, signalGroup, startCommand, startTestForum, waitFor } from "./helpers.ts";

const parse = (...args: string[]) => parseLoadOptions<LoadOptions>(forumScenario, ["node", "load.ts", ...args]);

/** The share of a histogram's values at or above `ms`. */
function shareAtLeast(histograms: string[], ms: number): number {
  const h = hdr.decodeFromCompressedBase64(histograms[0]);
  for (const more of histograms.slice(1)) h.add(hdr.decodeFromCompressedBase64(more));
  let below = 0, above = 100;
  for (let i = 0; i < 40; i++) {
    const p = (below + above) / 2;
    if (h.getValueAtPercentile(p) < ms * 1000) below = p;
    else above = p;
  }
  return (100 - above) / 100;
}

test("arrivals are due where the integral of the rate reaches them, and shared out among instances and threads", () => {
  const steady = [{ from: 50, to: 50, seconds: 20 }];
  assert.equal(arrivalTime(steady, 0), 0);
  assert.equal(arrivalTime(steady, 49), 0.98);
  const ramp = parseStages("0:100/10,100/5");
  assert.equal(arrivalsBy(ramp, 10), 500);
  assert.ok(Math.abs(arrivalTime(ramp, 125) - 5) < 1e-9);
  assert.ok(Math.abs(arrivalTime(ramp, 600) - 11) < 1e-9);
  assert.equal(arrivalPlan(parse("--arrival-rate", "50", "--duration", "20"))!.total, 1000);
  assert.equal(arrivalPlan(parse("--arrival-rate", "50", "--users", "30"))!.seconds, 0.6);
  assert.equal(arrivalPlan(parse("--stages", "10/30,10:100/60,0/10"))!.total, 300 + 3300);
  // Three instances of 1000 arrivals take every third one each, and their shares of --max-active add up.
  const shares = [0, 1, 2].map((index) =>
    openShareOf(parse(
      ...["--arrival-rate", "50", "--instance", "pods", "--seed", "1"],
      ...["--instances", "3", "--index", String(index), "--max-active", "10"],
    ))!
  );
  assert.deepEqual(shares.map((s) => s.users), [334, 333, 333]);
  assert.deepEqual(shares.map((s) => s.maxActive), [3, 3, 4]);
  assert.equal(countOf(1, 6, 1000), 167);
});

test("the progress line shows arrivals against the target rate, and those dropped", () => {
  const progress = {
    ...{ done: 40, failed: 0, activeUsers: 7, requestsPerSecond: 120, p99: 80, pgBackends: 3 },
    arrivals: { started: 95, dropped: 5, perSecond: 9.5 },
  };
  const started = Date.now() - 10_000;
  const line = progressLine(progress, { users: 200, steps: 3, stages: parseStages("20/20"), share: shareOf2 }, started);
  assert.match(
    line,
    /^\[10s\] 100\/200 arrivals, 5 dropped \| 9\.5\/s, target 10\.0\/s \| users 7 in flight \(max 50\)/,
  );
});

test("the progress line counts PostgreSQL's backends only when they are sampled: an app of one's own may have none", () => {
  const progress = { done: 40, failed: 0, activeUsers: 7, requestsPerSecond: 120, p99: 80 };
  const started = Date.now() - 10_000;
  const sampled = progressLine({ ...progress, pgBackends: 3 }, { users: 10, steps: 10 }, started);
  assert.match(sampled, /\| users 7\/10 \| 120 req\/s \| 0 failed \| p99 80 ms \| PostgreSQL 3$/);
  const unsampled = progressLine({ ...progress, pgBackends: null }, { users: 10, steps: 10 }, started);
  assert.match(unsampled, /\| 0 failed \| p99 80 ms$/);
});

/** An instance of two, with its share of --max-active 100. */
const shareOf2 = { stride: 2, maxActive: 50 };

test("open-model options that contradict each other are usage errors, all named at once; --help says both models", async () => {
  const run = await runScript("load.ts", [
    "--arrival-rate",
    "10:50/30",
    "--duration",
    "5",
    "--pace",
    "100",
    "--think-time",
    "100",
  ]);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /--duration is for a steady --arrival-rate.*; --pace and --think-time both time/);
  const bad = await runScript("load.ts", ["--arrival-rate", "fast"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /"fast" is not a rate: write 50, 50\/30/);
  const closed = await runScript("load.ts", ["--max-active", "5"]);
  assert.match(closed.stderr, /--max-active is for the open model: give --arrival-rate or --stages too/);
  const help = await runScript("load.ts", ["--help"]);
  for (const option of ["--arrival-rate", "--stages", "--duration", "--max-active", "--max-dropped", "--pace"]) {
    assert.match(help.stdout, new RegExp(option));
  }
  assert.match(help.stdout, /Two models\. Closed \(the default\)[^]*Open \(--arrival-rate or --stages\)/);
  assert.match(help.stdout, /docs\/open-model\.md/);
});

describe("arrivals at a rate against the reference forum", () => {
  let forum: RunningForum;
  const dir = mkdtempSync(join(tmpdir(), "tierload-open-"));
  before(async () => forum = await startTestForum([], { pool: 20 }));
  after(async () => {
    await forum.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a steady 10 arrivals a second keeps its rate within 5 % over 20 s, or the report says why not", async () => {
    const options = parse("--url", forum.url, "--arrival-rate", "10", "--duration", "20", "--actions", "1");
    const results = await runLoad(forumScenario, { ...options, workers: 1, instance: "steady" });
    const open = results.open!;
    assert.equal(open.planned, 200);
    const kept = open.started / open.planned;
    const report = formatReport(results);
    if (kept < 0.95) {
      assert.match(report, /short of the target by [\d.]+ %\): \d+ planned, \d+ started, \d+ dropped: .+/);
    } else assert.match(report, /Arrivals: target 10\.0\/s, achieved (9\.[5-9]|10\.0)\/s/);
    assert.equal(open.started + open.droppedBusy + open.droppedLate, open.due);
    assert.equal(results.timeline.reduce((n, t) => n + (t.arrivals ?? 0), 0), open.started);
    assert.equal(results.timeline.reduce((n, t) => n + (t.dropped ?? 0), 0), open.droppedBusy + open.droppedLate);
    assert.equal(results.actions.signup.count, open.started);
    assert.equal(results.actions.signup.corrected!.due, open.started);
    assert.equal(results.actions.login.corrected!.due, 0, "login follows signup: it is due when signup ends");
    assert.ok(kept >= 0.95, `achieved ${(100 * kept).toFixed(1)} % of the target: ${report}`);
    assert.deepEqual(results.verdict, { ok: true, reasons: [] }, report);
  });

  test("--max-active too small: arrivals are dropped, counted per second, shown, and FAIL the run", async () => {
    const json = join(dir, "dropped.json");
    const run = await runScript("load.ts", [
      ...["--url", forum.url, "--arrival-rate", "20", "--duration", "3", "--max-active", "2"],
      ...["--actions", "2", "--pace", "400", "--json", json, "--report", join(dir, "dropped.html")],
    ]);
    assert.equal(run.status, 1, run.stderr);
    const results: Results = JSON.parse(readFileSync(json, "utf8"));
    const open = results.open!;
    const dropped = open.droppedBusy + open.droppedLate;
    assert.ok(open.droppedBusy >= 30, JSON.stringify(open));
    assert.equal(open.started + dropped, 60);
    assert.equal(results.timeline.reduce((n, t) => n + (t.dropped ?? 0), 0), dropped);
    assert.match(
      run.stdout,
      new RegExp(
        `Arrivals: target 20\\.0/s, achieved [\\d.]+/s .*${dropped} dropped: ${open.droppedBusy} found all 2 users`,
      ),
    );
    assert.match(
      run.stdout,
      new RegExp(
        `Verdict: FAIL: ${dropped} of 60 arrivals dropped \\([\\d.]+ %: ${open.droppedBusy} found all 2 users`,
      ),
    );
    const html = readFileSync(join(dir, "dropped.html"), "utf8");
    assert.match(html, /Arrivals per second: target and achieved/);
    assert.match(html, /--max-active 2/);
  });

  test("--merge combines the instances of an open-model run exactly, the rate shared among them", async () => {
    const pods = await Promise.all([0, 1].map((index) => {
      const options = parse(
        ...["--url", forum.url, "--arrival-rate", "8", "--duration", "2", "--actions", "1", "--instance", "pods"],
        ...["--seed", "5", "--instances", "2", "--index", String(index), "--max-active", "20"],
      );
      return runLoad(forumScenario, { ...options, workers: 1 });
    }));
    assert.deepEqual(pods.map((p) => p.open!.planned), [8, 8]);
    assert.deepEqual(pods.map((p) => p.open!.maxActive), [10, 10]);
    const merged = merge(pods);
    assert.equal(merged.open!.planned, 16);
    assert.equal(merged.open!.started, pods[0].open!.started + pods[1].open!.started);
    for (const name of ["signup", "reply"]) {
      const both = pods.map((p) => p.actions[name]?.corrected);
      if (!both[0] || !both[1]) continue;
      assert.equal(
        hdr.decodeFromCompressedBase64(merged.actions[name].corrected!.histogram).totalCount,
        both[0].summary.count + both[1].summary.count,
      );
      assert.equal(merged.actions[name].corrected!.due, both[0].due + both[1].due);
    }
    assert.match(formatReport(merged), /Arrivals: target 8\.0\/s/);
    const tampered: Results = JSON.parse(JSON.stringify(pods[0]));
    tampered.open!.started += 1;
    const file = join(dir, "tampered.json");
    writeFileSync(file, JSON.stringify(tampered));
    assert.throws(() => readResultsFrom(file), /open must be whole counts, the due arrivals started or dropped/);
  });
});

test("wrk2's demonstration: the forum stopped for 2 s in a paced run shows from the due time, not from the start", async () => {
  // The forum in a process group of its own (its PostgreSQL with it), so that SIGSTOP stops all of it.
  const server = startCommand(
    runtimeCommand("scripts/forum-server.ts", ["--port", "0", "--scrypt-cost", "1024", "--pool", "20"]),
    { group: true, timeoutMs: 180_000 },
  );
  try {
    const url = (await waitFor(server, "stdout", "\n")).trim();
    const options = parse("--url", url, "--users", "10", "--actions", "40", "--pace", "500");
    // 10 users x 40 actions a 500 ms apart: 20 s once signed up and logged in. The stall begins once a fifth of
    // the paced actions are done (whenever the sign-ups took), and lasts 2 s.
    let stall: Promise<void> | undefined;
    const results = await runLoad(forumScenario, { ...options, workers: 1, instance: "stall" }, {
      progressSeconds: 1,
      progress: (line) => {
        const done = Number(/^\[[^\]]*\] (\d+)\//.exec(line)?.[1] ?? 0);
        if (stall || done < 10 * 2 + 80) return;
        signalGroup(server.child, "SIGSTOP");
        stall = new Promise((resolve) =>
          setTimeout(() => {
            signalGroup(server.child, "SIGCONT");
            resolve();
          }, 2000)
        );
      },
    });
    assert.ok(stall, "the run ended before a fifth of its paced actions were done");
    await stall;
    const paced = ["reply", "new thread"].map((name) => results.actions[name]).filter(Boolean);
    const corrected = shareAtLeast(paced.map((a) => a.corrected!.histogram), 1000);
    const uncorrected = hdr.decodeFromCompressedBase64(paced[0].histogram);
    for (const a of paced.slice(1)) uncorrected.add(hdr.decodeFromCompressedBase64(a.histogram));
    const p90 = uncorrected.getValueAtPercentile(90) / 1000;
    const report = formatReport(results);
    // A tenth of the actions fell due during the stall. Those due in its first second waited 1 s or more
    // at the least (5 %), as did those in flight when it began; those due later, as long as the forum took
    // to catch up (9.5 and 12.3 % in two runs). From their start, only the (at most 10) in flight waited.
    assert.ok(
      corrected >= 0.05,
      `${(100 * corrected).toFixed(1)} % of the actions took 1 s or more from due:\n${report}`,
    );
    assert.ok(p90 < 1000, `the uncorrected p90 is ${p90} ms:\n${report}`);
    assert.ok(results.actions.reply.corrected!.summary.p99 >= 1000, report);
    assert.match(report, /^reply, from due +\d+/m);
    assert.match(report, /The "from due" rows count from when it was due \(its --pace slot\)/);
    assert.match(renderReport(results), /<tr class="action due"><th>reply, from due<\/th>/);
  } finally {
    signalGroup(server.child, "SIGCONT");
    signalGroup(server.child, "SIGTERM");
    await server.done;
  }
});
