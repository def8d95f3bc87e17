/**
 * What each load generator spends to run the same scenario: scripts/load.ts against Locust
 * (bench/locustfile.py) with each of its clients, HttpUser (python-requests) and FastHttpUser
 * (geventhttpclient, the one Locust recommends for load), on the same reference forum, in the same
 * session, alternating.
 *
 *   apt-get install -y python3-locust python3-lxml      # once; not needed by the tests
 *   npx tsx bench/vs-locust.ts [users=300] [actions=5] [rounds=3]
 *
 * Prints, per tool, the actions and HTTP requests it completed per CPU-second of its own process, and
 * tierload's ratio to each Locust client.
 * Each run gets a fresh forum (pages grow as a run posts, and both tools must meet the same pages);
 * the forum runs in this process, so neither generator pays for it.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startForum } from "../scripts/forum-server.ts";
import { runtimeCommand } from "../lib/process.ts";
import type { Results } from "../lib/results.ts";
import { runToEnd } from "./run.ts";

const [users = 300, actions = 5, rounds = 3] = process.argv.slice(2).map(Number);
const dir = mkdtempSync(join(tmpdir(), "tierload-vs-"));

interface Cost {
  cpuSeconds: number;
  requests: number;
  actions: number;
  failures: number;
}

async function ours(url: string, round: number): Promise<Cost> {
  const json = join(dir, `ours-${round}.json`);
  const args = [
    ...["--url", url, "--users", String(users), "--actions", String(actions), "--instance", `vs${round}`],
    ...["--workers", "1"],
  ];
  const [command, ...rest] = runtimeCommand("scripts/load.ts", [...args, "--json", json]);
  await runToEnd(command, rest);
  const r: Results = JSON.parse(readFileSync(json, "utf8"));
  const entries = Object.values(r.actions);
  const sum = (kind: string, key: "count" | "errors") =>
    entries.filter((a) => a.kind === kind).reduce((n, a) => n + a[key], 0);
  return {
    cpuSeconds: r.generator.cpuSeconds,
    requests: sum("page", "count"),
    actions: sum("action", "count"),
    failures: sum("action", "errors"),
  };
}

async function locust(userClass: string, url: string, round: number): Promise<Cost> {
  const report = join(dir, `${userClass}-${round}.json`);
  await runToEnd("locust", [
    "-f",
    "bench/locustfile.py",
    "--headless",
    "-u",
    String(users),
    "-r",
    String(users),
    "--host",
    url,
    "--only-summary",
    "--loglevel",
    "WARNING",
    userClass,
  ], {
    USERS: String(users),
    ACTIONS: String(actions),
    INSTANCE: `lvs${round}`,
    CPU_REPORT: report,
  });
  return JSON.parse(readFileSync(report, "utf8"));
}

async function onFreshForum(measure: (url: string) => Promise<Cost>): Promise<Cost> {
  const forum = await startForum({ port: 0, log: () => {} });
  try {
    return await measure(forum.url);
  } finally {
    await forum.stop();
  }
}

const OURS = "tierload (load.ts)";
const tools: Record<string, (url: string, round: number) => Promise<Cost>> = {
  [OURS]: ours,
  "Locust HttpUser": (url, round) => locust("ForumUser", url, round),
  "Locust FastHttpUser": (url, round) => locust("FastForumUser", url, round),
};
const results: Record<string, Cost[]> = Object.fromEntries(Object.keys(tools).map((tool) => [tool, []]));
try {
  for (let round = 1; round <= rounds; round++) {
    for (const [tool, measure] of Object.entries(tools)) {
      results[tool].push(await onFreshForum((url) => measure(url, round)));
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`${users} users x ${actions} actions, ${rounds} rounds, medians`);
console.log(["tool", "CPU-s", "actions", "requests", "failed", "actions/CPU-s", "requests/CPU-s"].join("\t"));
const perCpu: Record<string, number> = {};
for (const [tool, costs] of Object.entries(results)) {
  const rate = median(costs.map((c) => c.actions / c.cpuSeconds));
  perCpu[tool] = median(costs.map((c) => c.requests / c.cpuSeconds));
  console.log([
    tool,
    median(costs.map((c) => c.cpuSeconds)).toFixed(1),
    median(costs.map((c) => c.actions)),
    median(costs.map((c) => c.requests)),
    median(costs.map((c) => c.failures)),
    rate.toFixed(1),
    perCpu[tool].toFixed(1),
  ].join("\t"));
}
for (const tool of Object.keys(tools).filter((tool) => tool !== OURS)) {
  console.log(`tierload does ${(perCpu[OURS] / perCpu[tool]).toFixed(2)}x ${tool}'s requests per CPU-second`);
}
