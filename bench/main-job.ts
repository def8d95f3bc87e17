/**
 * The main job as `npm start` runs it (1000 users x 10 actions on the embedded reference forum), timed
 * from outside, once per worker-thread count given, alternating:
 *
 *   npx tsx bench/main-job.ts [workers...=1 2] [rounds=1]      e.g. npx tsx bench/main-job.ts 1 2 -- 2
 *
 * Prints, per run, the wall time of the whole script (the forum's start and stop included), the actions
 * that failed, whether nothing was lost, the generator's CPU per request and whether it saturated, the
 * machine's busy share and PostgreSQL's peak of client backends.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimeCommand } from "../lib/process.ts";
import type { Results } from "../lib/results.ts";
import { runToEnd } from "./run.ts";

const args = process.argv.slice(2);
const split = args.indexOf("--");
const workerCounts = (split < 0 ? args : args.slice(0, split)).map(Number);
const rounds = split < 0 ? 1 : Number(args[split + 1] ?? 1);
if (workerCounts.length === 0) workerCounts.push(1, 2);
const dir = mkdtempSync(join(tmpdir(), "tierload-main-"));

console.log(
  ["workers", "wall s", "actions", "failed", "nothing lost", "gen ms/req", "saturated", "machine", "pg peak"].join(
    "\t",
  ),
);
try {
  for (let round = 1; round <= rounds; round++) {
    for (const workers of workerCounts) {
      const json = join(dir, `main-${workers}-${round}.json`);
      const [command, ...rest] = runtimeCommand("scripts/load.ts", ["--workers", String(workers), "--json", json]);
      const started = performance.now();
      await runToEnd(command, rest);
      const wall = (performance.now() - started) / 1000;
      const r: Results = JSON.parse(readFileSync(json, "utf8"));
      const actions = Object.values(r.actions).filter((a) => a.kind === "action");
      console.log([
        workers,
        wall.toFixed(1),
        actions.reduce((n, a) => n + a.count, 0),
        actions.reduce((n, a) => n + a.errors, 0),
        r.check?.ok ? "yes" : "NO",
        r.generator.cpuMsPerRequest.toFixed(2),
        r.generator.saturated ? "yes" : "no",
        `${(r.generator.machineBusyShare * 100).toFixed(0)} %`,
        r.postgres.peakBackends,
      ].join("\t"));
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
