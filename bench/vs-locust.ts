/**
 * What each load generator spends to run the same scenario, as a user would measure it: the whole process's CPU
 * from the OS (/usr/bin/time: user + system, startup included), each with its default settings. tierload runs
 * scripts/load.ts as the README does (npx tsx, and Deno); Locust runs bench/locustfile.py with each of its
 * clients, HttpUser (python-requests) and FastHttpUser (geventhttpclient, the one Locust recommends for load),
 * parsing with lxml. Each run gets a fresh reference forum (pages grow as a run posts, and every tool must meet
 * the same pages), in this process, so no generator pays for it; the tools alternate within each round.
 *
 *   apt-get install -y python3-locust python3-lxml      # once; not needed by the tests
 *   npx tsx bench/vs-locust.ts [users=300] [actions=5] [rounds=3]
 *
 * Prints, per tool, the HTTP requests it completed per CPU-second, and tierload's ratio to each Locust client.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startForum } from "../scripts/forum-server.ts";
import type { Results } from "../lib/results.ts";
import { runToEnd } from "./run.ts";

const [users = 300, actions = 5, rounds = 3] = process.argv.slice(2).map(Number);
const dir = mkdtempSync(join(tmpdir(), "tierload-vs-"));

interface Cost {
  cpuSeconds: number;
  requests: number;
  failures: number;
}

/** Runs `command` under /usr/bin/time; answers the user + system CPU-seconds of it and all it waited for. */
async function timed(name: string, command: string[], env: Record<string, string> = {}): Promise<number> {
  const file = join(dir, `${name}.time`);
  const status = await runToEnd("/usr/bin/time", ["-f", "%U %S", "-o", file, ...command], env);
  if (status !== 0) throw new Error(`${command.join(" ")} exited ${status}`);
  const [user, system] = readFileSync(file, "utf8").trim().split("\n").at(-1)!.split(" ").map(Number);
  return user + system;
}

function ours(runtime: "node" | "deno") {
  return async (url: string, round: number): Promise<Cost> => {
    const json = join(dir, `${runtime}-${round}.json`);
    const args = ["--url", url, "--users", String(users), "--actions", String(actions), "--json", json];
    const command = runtime === "node"
      ? ["npx", "tsx", "scripts/load.ts", ...args]
      : ["node_modules/.bin/deno", "run", "-A", "scripts/load.ts", ...args];
    const cpuSeconds = await timed(`${runtime}-${round}`, command);
    const r: Results = JSON.parse(readFileSync(json, "utf8"));
    const entries = Object.values(r.actions);
    const sum = (kind: string, key: "count" | "errors") =>
      entries.filter((a) => a.kind === kind).reduce((n, a) => n + a[key], 0);
    return { cpuSeconds, requests: sum("page", "count"), failures: sum("action", "errors") };
  };
}

function locust(userClass: string) {
  return async (url: string, round: number): Promise<Cost> => {
    const report = join(dir, `${userClass}-${round}.json`);
    const command = ["locust", "-f", "bench/locustfile.py", "--headless", "-u", String(users), "-r", String(users)];
    const cpuSeconds = await timed(`${userClass}-${round}`, [
      ...command,
      ...["--host", url, "--only-summary", "--loglevel", "WARNING", userClass],
    ], { USERS: String(users), ACTIONS: String(actions), INSTANCE: `l${userClass}${round}`, CPU_REPORT: report });
    const { requests, failures } = JSON.parse(readFileSync(report, "utf8"));
    return { cpuSeconds, requests, failures };
  };
}

async function onFreshForum(measure: (url: string) => Promise<Cost>): Promise<Cost> {
  const forum = await startForum({ port: 0, log: () => {} });
  try {
    return await measure(forum.url);
  } finally {
    await forum.stop();
  }
}

const OURS = ["tierload, Node (npx tsx)", "tierload, Deno"];
const tools: Record<string, (url: string, round: number) => Promise<Cost>> = {
  [OURS[0]]: ours("node"),
  [OURS[1]]: ours("deno"),
  "Locust HttpUser": locust("ForumUser"),
  "Locust FastHttpUser": locust("FastForumUser"),
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

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b), middle = sorted.length / 2;
  return Number.isInteger(middle) ? (sorted[middle - 1] + sorted[middle]) / 2 : sorted[Math.floor(middle)];
};
console.log(`${users} users x ${actions} actions, ${rounds} rounds; CPU-s by /usr/bin/time (user + system), medians`);
console.log(["tool", "CPU-s", "requests", "failed", "requests/CPU-s", "each round"].join("\t"));
const perCpu: Record<string, number> = {};
for (const [tool, costs] of Object.entries(results)) {
  const rates = costs.map((c) => c.requests / c.cpuSeconds);
  perCpu[tool] = median([...rates]);
  console.log([
    tool,
    median(costs.map((c) => c.cpuSeconds)).toFixed(1),
    median(costs.map((c) => c.requests)),
    median(costs.map((c) => c.failures)),
    perCpu[tool].toFixed(1),
    rates.map((r) => r.toFixed(0)).join(" "),
  ].join("\t"));
}
for (const own of OURS) {
  for (const tool of Object.keys(tools).filter((name) => !OURS.includes(name))) {
    console.log(`${own} does ${(perCpu[own] / perCpu[tool]).toFixed(2)}x ${tool}'s requests per CPU-second`);
  }
}
