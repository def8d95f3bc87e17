// Live metrics, read by a real Prometheus (Debian's): it scrapes a run through --metrics-port, and what its
// HTTP API holds afterwards equals the run's own counts, action by action and outcome by outcome.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bucketBounds, exposition } from "../lib/metrics.ts";
import { freePort } from "../lib/process.ts";
import type { Results } from "../lib/results.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { eventually, startCommand, startScript, startTestForum, waitFor } from "./helpers.ts";

const PROMETHEUS = "/usr/bin/prometheus";

test("the exposition format: cumulative buckets up to +Inf, escaped label values, seconds", () => {
  const text = exposition({
    metrics: [{ name: 'GET /a"b\\c', kind: "page", count: 3, errors: 1, sumMs: 1500, buckets: [1, 0, 2] }],
    activeUsers: 2,
    pgBackends: 7,
  }, [1, 2.5]);
  assert.match(text, /^tierload_page_loads_total\{name="GET \/a\\"b\\\\c",outcome="ok"\} 2$/m);
  assert.match(text, /^tierload_page_loads_total\{name="GET \/a\\"b\\\\c",outcome="failed"\} 1$/m);
  assert.match(text, /^tierload_page_load_duration_seconds_bucket\{name=".*",le="0.001"\} 1$/m);
  assert.match(text, /^tierload_page_load_duration_seconds_bucket\{name=".*",le="0.0025"\} 1$/m);
  assert.match(text, /^tierload_page_load_duration_seconds_bucket\{name=".*",le="\+Inf"\} 3$/m);
  assert.match(text, /^tierload_page_load_duration_seconds_sum\{name=".*"\} 1.5$/m);
  assert.match(text, /^tierload_active_users 2$/m);
  assert.deepEqual(bucketBounds(120_000).slice(0, 4), [1, 2.5, 5, 10]);
  assert.equal(bucketBounds(120_000).at(-1), 250_000);
});

const missing = existsSync(PROMETHEUS) ? false : "Prometheus is not installed (apt-get install prometheus)";

describe("a run scraped by Prometheus", { skip: missing }, () => {
  let forum: RunningForum;
  const dir = mkdtempSync(join(tmpdir(), "tierload-prometheus-"));
  before(async () => forum = await startTestForum());
  after(async () => {
    await forum?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("what Prometheus scraped equals the run's own counts", async () => {
    // Prometheus first, scraping the port the run will serve on, so that it is up (it can take seconds on a busy
    // machine) before the run begins.
    const [target, port] = [await freePort(), await freePort()];
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tierload\n    static_configs:\n      - targets: ["127.0.0.1:${target}"]\n`,
    );
    const prometheus = startCommand([
      PROMETHEUS,
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ], { timeoutMs: 180_000 });
    try {
      await eventually(
        "Prometheus to be ready",
        () => fetch(`http://127.0.0.1:${port}/-/ready`).then((answer) => answer.ok, () => false),
        60_000,
      ).catch((error) => {
        throw new Error(`${error.message}: ${prometheus.output.stderr.slice(-2000)}`);
      });
      const json = join(dir, "run.json");
      const run = startScript("load.ts", [
        ...["--url", forum.url, "--users", "4", "--actions", "12", "--think-time", "250", "--json", json],
        ...["--metrics-port", String(target), "--metrics-hold", "30s"],
      ]);
      await waitFor(run, "stderr", `Metrics for Prometheus: http://127.0.0.1:${target}/metrics`);
      const { status, stderr } = await run.done;
      assert.equal(status, 0, stderr);
      const results: Results = JSON.parse(readFileSync(json, "utf8"));
      // Each series' last value over the last minutes: once the run stops serving, Prometheus's next scrape fails and
      // marks its series stale, so that a query of "now" finds none of them.
      const query = async (metric: string) => {
        const q = `last_over_time(${metric}[5m])`;
        const answer = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
        const body = await answer.json();
        return new Map<string, number>(
          body.data.result.map((r: { metric: Record<string, string>; value: [number, string] }) => [
            `${r.metric.name}|${r.metric.outcome ?? ""}`,
            Number(r.value[1]),
          ]),
        );
      };
      let scraped = new Map<string, number>();
      await eventually("Prometheus to hold the final counts", async () => {
        scraped = await query("tierload_actions_total");
        return (scraped.get("reply|ok") ?? 0) + (scraped.get("new thread|ok") ?? 0) === 4 * 12;
      }, 30_000).catch((error) => {
        throw new Error(`${error.message}: ${JSON.stringify([...scraped])}`);
      });
      for (const [name, a] of Object.entries(results.actions).filter(([, a]) => a.kind === "action")) {
        assert.equal(scraped.get(`${name}|ok`), a.count - a.errors, name);
        assert.equal(scraped.get(`${name}|failed`), a.errors, name);
      }
      const pages = await query("tierload_page_load_duration_seconds_count");
      for (const [name, a] of Object.entries(results.actions).filter(([, a]) => a.kind === "page")) {
        assert.equal(pages.get(`${name}|`), a.count, name);
      }
    } finally {
      prometheus.child.kill("SIGTERM");
      await prometheus.done;
    }
  });
});
