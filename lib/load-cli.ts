/**
 * The load tool as a program: `scenario()` makes a user's file runnable, and `main` is what it runs:
 * a run with a terminal's words (progress, Ctrl-C), a merge of saved results, or a Kubernetes Job;
 * then the report on stdout, the JSON and the HTML report where asked, and the exit status.
 *
 *   export default scenario(import.meta, { name: "shop", description: "...", user: async (u) => { ... } });
 *
 *   npx tsx my-scenario.ts --users 200 --actions 5 --json run.json --report run.html
 *   npx tsx my-scenario.ts --merge a.json b.json --json all.json
 *   npx tsx my-scenario.ts --kubernetes-job --url http://app/ --users 3000 --instances 3 > job.yaml
 */
import { writeFileSync } from "node:fs";
import { platform } from "node:os";
import { isAbsolute, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { environmentName, EXIT, isMain, moduleUrl, runMain } from "./cli.ts";
import { jobManifest } from "./kubernetes.ts";
import { loadCommand, type LoadOptions, parseLoadOptions, usersInFlight } from "./load-options.ts";
import { openFileLimits, whenOrphaned } from "./process.ts";
import { formatReport } from "./report.ts";
import { renderReport } from "./report-html.ts";
import { merge } from "./merge.ts";
import { redactUrl, type Results } from "./results.ts";
import { readResultsFrom } from "./results-file.ts";
import { runLoad } from "./runner.ts";
import { writeCsv } from "./csv.ts";
import { thresholdsOf } from "./thresholds.ts";
import { type AnyScenario, type LoadedScenario, register, type Scenario } from "./scenario.ts";

/**
 * Defines the scenario of the file whose `import.meta` is given, and runs the load tool on it when that
 * file is the program (not when a test or a worker thread imports it).
 *
 *   export default scenario(import.meta, { name: "shop", description: "...", user: async (u) => { ... } });
 */
export function scenario<O extends object = Record<string, never>, S = undefined, K = never>(
  meta: ImportMeta,
  definition: Scenario<O, S, K>,
): LoadedScenario<O, S, K> {
  const loaded = { ...definition, file: moduleUrl(meta) };
  register(loaded as AnyScenario);
  if (isMain(meta)) runMain(() => main(loaded as AnyScenario));
  return loaded;
}

/** The load tool on `scenario`, as its file's command line asks. *
 *   await main(shop, ["node", "load.ts", "--users", "20", "--report", "run.html"]); // as `npx tsx shop.ts ...`
 */
export async function main(scenario: AnyScenario, argv = process.argv): Promise<void> {
  const options = parseLoadOptions(scenario, argv);
  const log = options.quiet ? () => {} : (line: string) => process.stderr.write(line + "\n");
  let results: Results;
  if (options.kubernetesJob) {
    console.log(kubernetesJob(scenario, options));
    return;
  }
  if (options.merge) {
    // The merge judges by the instances' own thresholds, unless it is given its own.
    const told = ["threshold", "maxP99", "maxErrorRate"].some((key) => options.given.includes(key));
    results = merge(options.merge.flatMap((source) => readResultsFrom(source)), told ? thresholdsOf(options) : null);
  } else {
    const refusal = checkOpenFiles(usersInFlight(options));
    if (refusal) throw new Error(refusal);
    results = await runWithSignals(scenario, options, log);
  }
  // With the JSON on stdout, the report a person reads goes to stderr.
  (options.json === "-" ? (line: string) => process.stderr.write(line + "\n") : console.log)(formatReport(results));
  if (options.json === "-") console.log(JSON.stringify(results));
  else if (options.json) {
    writeFileSync(options.json, JSON.stringify(results, null, 1));
    log(`Results written to ${options.json}`);
  }
  if (options.report) {
    writeFileSync(options.report, renderReport(results));
    log(`Report written to ${options.report}`);
  }
  if (options.csv) log(`CSV written to ${writeCsv(options.csv, results).join(", ")}`);
  process.exitCode = results.interrupted ? EXIT.interrupted : results.verdict.ok ? EXIT.ok : EXIT.failed;
}

/**
 * The run, with a terminal's words: one SIGINT or SIGTERM stops new actions; a second, half a second or
 * more later, quits at once (an application started here stops when our pipe to it closes). Progress is a
 * line fitted to a terminal's width, or a line of stats every 10 s elsewhere.
 */
async function runWithSignals(scenario: AnyScenario, options: LoadOptions, log: (line: string) => void) {
  const tty = Boolean(process.stderr.isTTY);
  const interrupt = new AbortController();
  let interruptedAt = 0;
  const onSignal = (signal: string) => {
    if (interruptedAt && Date.now() - interruptedAt > 500) {
      log(`\n${signal} again: quitting now`);
      process.exit(EXIT.interrupted);
    }
    if (interruptedAt) return;
    interruptedAt = Date.now();
    interrupt.abort();
    log(`${tty ? "\r\x1b[K" : ""}${signal}: no new actions; finishing those in flight (Ctrl-C again to quit now)`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // A wrapper killed outright (kill -9 of npx tsx, npm start) leaves this run orphaned: it stops as on a signal.
  const stopWatching = whenOrphaned(() => onSignal("parent process gone"));
  const width = () => process.stderr.columns || 80;
  try {
    return await runLoad(scenario, options, {
      log: (line) => log(`${tty ? "\r\x1b[K" : ""}${line}`),
      progress: options.quiet ? undefined : (line) => {
        if (!tty) log(line);
        else process.stderr.write(`\r\x1b[K${line.length < width() ? line : line.slice(0, width() - 2) + "…"}`);
      },
      progressSeconds: tty ? 1 : 10,
      signal: interrupt.signal,
      startupFrom: { user: 0, system: 0 },
    });
  } finally {
    if (tty) process.stderr.write("\r\x1b[K");
    stopWatching();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

// ---------------------------------------------------------------------------------------------
// Beyond one machine: the run as a Kubernetes Indexed Job
// ---------------------------------------------------------------------------------------------

/** Options the Job sets for every pod itself, or that belong to making the Job, not to running it. */
const SET_BY_THE_JOB = new Set([
  "kubernetesJob",
  "image",
  "startIn",
  "instances",
  "index",
  "startAt",
  "json",
  "report",
  "merge",
  "workers",
  "seed",
  "instance",
]);

/**
 * The Job for these options: --instances pods, each running the scenario's own file with every option it
 * was given here (the seed and the run's name pinned, so every pod makes the same choices and its users'
 * names differ), its share of --users taken from its index, all beginning --start-in seconds from now,
 * each printing its results as its last line of output (--json -) for the merge to read from the logs.
 * An option whose value holds a password (a URL's, or an option named like one) reaches the pods through
 * a Kubernetes Secret and the environment, never through the YAML.
 *
 *   writeFileSync("job.yaml", kubernetesJob(shop, parseLoadOptions(shop, ["node", "load.ts", "--kubernetes-job", "--url", url])));
 */
export function kubernetesJob(scenario: AnyScenario, options: LoadOptions): string {
  const script = relative(process.cwd(), fileURLToPath(scenario.file));
  if (script.startsWith("..") || isAbsolute(script)) {
    throw new Error(
      `The scenario ${script} is outside this directory (${process.cwd()}): run --kubernetes-job from the ` +
        "directory the image is built from, which holds the scenario's file",
    );
  }
  const values = options as unknown as Record<string, unknown>;
  const args: string[] = [];
  const secrets: { env: string; key: string; shown: string }[] = [];
  for (const option of loadCommand(scenario).options) {
    const key = option.attributeName();
    if (!options.given.includes(key) || SET_BY_THE_JOB.has(key) || !option.long) continue;
    const value = values[key];
    if (typeof value === "boolean") {
      if (value) args.push(option.long);
    } else if (Array.isArray(value)) {
      for (const item of value) args.push(option.long, typeof item === "object" ? item.text : String(item));
    } else if (isSecret(key, String(value))) {
      const shown = redactUrl(String(value));
      secrets.push({
        env: environmentName(option.long),
        key: option.long.slice(2),
        shown: shown === value ? "***" : shown,
      });
    } else args.push(option.long, String(value));
  }
  const instances = options.instances!;
  args.push(
    ...["--seed", String(options.seed), "--instance", options.instance, "--instances", String(instances)],
    ...["--start-at", new Date(Date.now() + options.startIn * 1000).toISOString()],
    ...["--workers", String(options.workers ?? 1), "--json", "-"],
  );
  const perPod = Math.ceil(options.users / instances);
  return jobManifest({
    run: options.instance,
    instances,
    image: options.image,
    script,
    args,
    secrets,
    cpu: String(options.workers ?? 1),
    memory: `${POD_MEMORY_MB.base + Math.ceil((perPod / 1000) * POD_MEMORY_MB.per1000Users)}Mi`,
  });
}

/** A value the YAML must not hold: a URL with a password, or any value of an option named like a secret. */
function isSecret(key: string, value: string): boolean {
  if (/password|secret|token/i.test(key)) return true;
  try {
    return new URL(value).password !== "";
  } catch {
    return false;
  }
}

/** What a pod's memory limit allows for: the runtime, and the users (measured; see the README). */
const POD_MEMORY_MB = { base: 256, per1000Users: 1024 };

/** Refuses a run the open-file limit cannot hold, saying what is needed and how to get it. */
export function checkOpenFiles(users: number, limits = openFileLimits()): string | null {
  // One connection per simultaneous user, the sampler, stdio and the runtime's own.
  const needed = users + 64;
  if (!limits || limits.soft >= needed) return null;
  const raise = limits.hard >= needed
    ? `raise it for this shell with: ulimit -n ${needed}`
    : `the hard limit is ${limits.hard}, so raise that first`;
  const mac = platform() === "darwin"
    ? " On a Mac, scripts/tune-macos.ts computes and writes the limits for 1000 PostgreSQL connections."
    : "";
  return `This run needs about ${needed} open files (one connection per user, plus some) but the limit is ${limits.soft}: ${raise}.${mac}`;
}
