/**
 * The load tool's command line: the options every scenario has (users, actions, pacing, thresholds,
 * outputs, instances, Kubernetes), then the scenario's own. Every option can also come from the
 * environment, `TIERLOAD_USERS=1000` for `--users 1000`; the command line wins.
 *
 *   const options = parseLoadOptions(shop, process.argv);
 */
import { InvalidArgumentError, Option } from "commander";
import { arrivalPlan, countOf, parseStage, parseStages } from "./arrivals.ts";
import { command, duration, EXIT, fromEnvironment, httpUrl, integer, number, scriptArgs, unwritable } from "./cli.ts";
import { threshold } from "./thresholds.ts";
import { instanceName } from "./merge.ts";
import type { AnyScenario, LoadOptions } from "./scenario.ts";

export type { LoadOptions } from "./scenario.ts";

/** The command for `scenario`: the tool's options, then the scenario's. */
export function loadCommand(scenario: AnyScenario) {
  const program = command(scenario.name)
    .description(scenario.description)
    .option(
      "-u, --users <n>",
      "simultaneous users (open model: the users who arrive in all)",
      integer(1, 100_000),
      1000,
    )
    .option("-a, --actions <n>", "actions per user", integer(0, 1_000_000), 10)
    .option(
      "--instance <id>",
      "names this run's users <id>_<i>, so several runs can share an application",
      Date.now().toString(36),
    )
    .option(
      "--ramp-up <time>",
      "spread the users' starts over this long (30s, 2m; bare number: seconds)",
      duration("s"),
      0,
    )
    .option(
      "--think-time <time>",
      "mean pause before each of a user's actions, uniform from 0.5x to 1.5x (500ms, 2s; bare number: ms)",
      duration("ms"),
      0,
    )
    .option(
      "--max-duration <time>",
      "stop starting actions after this long (5m, 1h30m; bare number: seconds)",
      duration("s", 1),
    )
    .option(
      "--arrival-rate <rate>",
      "open model: new users a second, each on its whole journey (50; a ramp: 10:200/60s is 10 to 200 over 60 s)",
      (value: string) => validated(value, (v) => parseStage(v, false)),
    )
    .option(
      "--stages <list>",
      "open model: rates one after another, rate/time or from:to/time each (10/30s,10:100/1m,100/60s; bare: seconds)",
      (value: string) => validated(value, parseStages),
    )
    .option(
      "--duration <time>",
      "with a steady --arrival-rate: arrive for this long (30s, 5m; bare number: seconds; default: until --users)",
      duration("s", 0.001),
    )
    .option(
      "--max-active <n>",
      "open model: the most users in flight at once; an arrival beyond is dropped",
      integer(1, 100_000),
      1000,
    )
    .option(
      "--max-lateness <time>",
      "open model: an arrival the generator starts later than this after it was due is dropped (bare number: ms)",
      duration("ms"),
      1000,
    )
    .option(
      "--max-dropped <fraction>",
      "open model: fail (exit 1) when more than this share of arrivals is dropped (default 0)",
      number(0, 1),
    )
    .option(
      "--pace <time>",
      "each of a user's repeated actions is due this long after the last one's due time (500ms, 5s; bare number: ms)",
      duration("ms", 1),
    )
    .addOption(
      new Option(
        "--judge-latency <which>",
        "the latency thresholds judge where an action has a due time: from it (corrected), or from the start",
      ).choices(["corrected", "uncorrected"]).default("corrected"),
    )
    .option("--seed <n>", "random seed, for a run that makes the same choices", integer(0, 2 ** 32 - 1), randomSeed())
    .option(
      "--url <url>",
      `the application to load${scenario.start ? " (default: start one for this run)" : ""}`,
      httpUrl,
    )
    .option(
      "--database-url <url>",
      "PostgreSQL to sample for client backends (automatic for an application started here)",
    )
    .option("--timeout <time>", "time limit of each request (30s, 2m; bare number: ms)", duration("ms", 1), 300_000)
    .option("--json <file>", "write the full results, histograms included, to this file (- for stdout)")
    .option("--report <file>", "write a self-contained HTML report with charts (with --merge: from saved JSON)")
    .option("--csv <prefix>", "write PREFIX_stats.csv, PREFIX_failures.csv and PREFIX_stats_history.csv")
    .option(
      "--metrics-port <n>",
      "serve live metrics for Prometheus at http://HOST:N/metrics (0: a free port)",
      integer(0, 65535),
    )
    .option("--metrics-host <host>", "the address the metrics are served on", "127.0.0.1")
    .option(
      "--metrics-hold <time>",
      "after the run, wait this long at most for a scrape of the final values (bare number: seconds)",
      duration("s"),
      15,
    )
    .option("-q, --quiet", "print the report only: no progress, no log lines")
    .option("-v, --verbose", "print each failure as it happens, besides the report")
    .option(
      "--threshold <rule>",
      "fail (exit 1) unless [action:]statistic<limit holds: login:p95<500ms, *:p99<2s, errors<1% (repeatable)",
      threshold,
    )
    .option("--max-error-rate <fraction>", "the same as --threshold 'errors<FRACTION'", number(0, 1))
    .option("--max-p99 <time>", "the same as --threshold '*:p99<TIME' (2s, 500ms; bare number: ms)", duration("ms"))
    .option(
      "--workers <n>",
      "worker threads the users run in (default 1; the report says when one thread was the limit)",
      integer(1, 256),
    )
    .option(
      "--merge <files...>",
      "merge the results of several instances instead of running: JSON files, or logs (- for stdin)",
    )
    .option(
      "--instances <n>",
      "this run is one of N started together, each on its share of --users",
      integer(1, 10_000),
    )
    .option(
      "--index <k>",
      "which of the --instances this is (default: $JOB_COMPLETION_INDEX, set by Kubernetes)",
      integer(0),
    )
    .option(
      "--start-at <time>",
      "begin the users at this moment (ISO 8601); a late start begins at once, and says by how much",
      moment,
    )
    .option(
      "--kubernetes-job",
      "print a Kubernetes Indexed Job that runs --instances pods of this run against --url, and exit",
    )
    .option("--image <ref>", "with --kubernetes-job: the container image (built from Containerfile)", "tierload:latest")
    .option(
      "--start-in <time>",
      "with --kubernetes-job: the pods begin together this long after the YAML is made (bare number: seconds)",
      duration("s", 0, 30 * 24 * 3600),
      90,
    );
  // --help shows each default time with its unit.
  const shown: Record<string, string> = {
    "--ramp-up": "0s",
    "--think-time": "0ms",
    "--timeout": "5m",
    "--start-in": "90s",
    "--max-lateness": "1s",
  };
  for (const option of program.options) {
    if (option.long && shown[option.long]) option.defaultValueDescription = shown[option.long];
  }
  scenario.options?.(program);
  return program.addHelpText(
    "after",
    `
Every option can also be set in the environment: TIERLOAD_USERS=1000 for --users 1000 (the command line wins).
Verdict: PASS only when every action succeeded (or --max-error-rate allows the share that failed),
the run went to its end, no --max-p99 was breached, no arrival was dropped (or --max-dropped allows
the share)${scenario.check ? ", and the end-state check passed" : ""}.
Two models. Closed (the default): --users start together (or over --ramp-up), each next action waits for
the last, so a slow application is asked less: it hides its stalls. Open (--arrival-rate or --stages): new
users arrive at the rate whatever the application does, at most --max-active in flight; an arrival that
cannot start (all busy, or the generator late by --max-lateness) is dropped and counted. With arrivals or
--pace, each action is timed from its due time too (corrected, as wrk2 does): latency thresholds judge that.
See docs/open-model.md.
Exit status: 0 PASS, 1 FAIL, 2 usage error, 130 interrupted (one Ctrl-C lets the actions in flight
finish, then prints the report and writes the JSON; a second quits at once).`,
  );
}

/** The options of a run of `scenario` from the process's arguments; a usage error exits 2 with the reason. *
 *   const options = parseLoadOptions(shop, ["node", "load.ts", "--url", url, "--users", "20"]);
 */
export function parseLoadOptions<O extends object>(scenario: AnyScenario, argv: string[]): LoadOptions & O {
  const program = loadCommand(scenario).parse(scriptArgs(argv));
  fromEnvironment(program);
  const values = program.opts();
  const given = Object.keys(values).filter((key) => {
    const source = program.getOptionValueSource(key);
    return source === "cli" || source === "env";
  });
  const options = { ...values, given } as LoadOptions & O;
  const usage = (message: string) => program.error(`error: ${message}`, { exitCode: EXIT.usage });
  const outputs = [
    ["--json", options.json],
    ["--report", options.report],
    ["--csv", options.csv && `${options.csv}_stats.csv`],
  ].flatMap(([flag, path]) => {
    const problem = path === "-" && flag === "--json" ? null : unwritable(path);
    return problem ? [`${flag} ${problem}`] : [];
  });
  if (outputs.length) usage(outputs.join("; "));
  if (options.kubernetesJob) {
    if (!options.url) usage("--kubernetes-job needs --url: the pods load an application, not one of their own");
    options.instances ??= 1;
  } else if (options.instances !== undefined) {
    const problems: string[] = [];
    const index = options.index ?? process.env.JOB_COMPLETION_INDEX;
    if (index === undefined || !/^\d+$/.test(String(index)) || Number(index) >= options.instances) {
      problems.push(
        `--instances ${options.instances} needs --index (or JOB_COMPLETION_INDEX) from 0 to ${
          options.instances - 1
        }, not ${index ?? "none"}`,
      );
    }
    // Left to their defaults (a time-based id, a random seed), each instance would be a run of its own.
    const unshared = ["--instance", "--seed"].filter((flag) => !given.includes(flag.slice(2)));
    if (unshared.length) {
      problems.push(
        `--instances ${options.instances} needs ${unshared.join(" and ")}, the same for every instance, so that ` +
          "--merge takes them for one run (the Kubernetes Job passes both)",
      );
    }
    if (problems.length) usage(problems.join("; "));
    options.index = Number(index);
    if (options.users < options.instances) {
      usage(`--users ${options.users} cannot be shared among --instances ${options.instances}`);
    }
  }
  const problems = openModelProblems(options);
  if (problems.length) usage(problems.join("; "));
  if (!options.url && !scenario.start && !options.merge) {
    usage(`--url is needed: the scenario ${JSON.stringify(scenario.name)} starts no application of its own`);
  }
  return options;
}

/** What is wrong with the open model's options (and --pace), every problem at once. */
function openModelProblems(options: LoadOptions): string[] {
  const problems: string[] = [];
  const given = (key: keyof LoadOptions) => options.given.includes(key);
  const open = options.arrivalRate !== undefined || options.stages !== undefined;
  if (options.arrivalRate !== undefined && options.stages !== undefined) {
    problems.push("--arrival-rate and --stages both say the rate: give one");
  }
  if (!open) {
    for (
      const [key, flag] of [["maxActive", "--max-active"], ["maxLateness", "--max-lateness"], [
        "maxDropped",
        "--max-dropped",
      ], ["duration", "--duration"]] as const
    ) {
      if (given(key)) problems.push(`${flag} is for the open model: give --arrival-rate or --stages too`);
    }
  } else if (options.duration !== undefined && (options.stages !== undefined || options.arrivalRate!.includes("/"))) {
    problems.push("--duration is for a steady --arrival-rate: a ramp and --stages say how long they last");
  }
  if (options.pace !== undefined && options.thinkTime > 0) {
    problems.push("--pace and --think-time both time a user's actions: give one");
  }
  if (problems.length || !open) return problems;
  const plan = arrivalPlan(options)!;
  if (plan.total === 0 || plan.stages.every((s) => s.from === 0 && s.to === 0)) {
    problems.push(`--arrival-rate ${options.arrivalRate ?? options.stages} brings no users`);
  } else if (options.instances !== undefined) {
    if (plan.total < options.instances) {
      problems.push(`${plan.total} arrivals cannot be shared among --instances ${options.instances}`);
    }
    if (options.maxActive < options.instances) {
      problems.push(`--max-active ${options.maxActive} cannot be shared among --instances ${options.instances}`);
    }
  }
  return problems;
}

/** A value the parser accepts, or commander's usage error saying why not. */
function validated<T>(value: string, parse: (value: string) => T): string {
  try {
    parse(value);
    return value;
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** An ISO 8601 moment (or milliseconds since 1970), as milliseconds. */
function moment(value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  // Beyond ±8.64e15 ms (about 275,000 years) a Date cannot say the moment.
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) {
    throw new InvalidArgumentError(`"${value}" is not a moment (ISO 8601, e.g. 2026-11-25T18:00:00Z)`);
  }
  return ms;
}

const randomSeed = () => Math.floor(Math.random() * 2 ** 32);

/** This instance's users, as [first, end) in the run's numbering, and its name (users are <name>_<i>). */
export function instanceOf(options: LoadOptions): { from: number; to: number; name: string } {
  if (options.instances === undefined) return { from: 0, to: options.users, name: options.instance };
  const k = options.index!;
  return {
    from: shareStart(options.users, options.instances, k),
    to: shareStart(options.users, options.instances, k + 1),
    name: instanceName(options.instance, k),
  };
}

/**
 * This instance's part of an open-model run: the run's arrivals k with k % instances == index (so each
 * instance takes an even share of the rate), its share of --max-active, and its name; null for the closed model.
 */
export function openShareOf(
  options: LoadOptions,
): { first: number; stride: number; total: number; users: number; maxActive: number; runUsers: number } | null {
  const plan = arrivalPlan(options);
  if (!plan) return null;
  const n = options.instances ?? 1, k = options.index ?? 0;
  return {
    first: k,
    stride: n,
    total: plan.total,
    users: countOf(k, n, plan.total),
    maxActive: shareStart(options.maxActive, n, k + 1) - shareStart(options.maxActive, n, k),
    runUsers: plan.total,
  };
}

/** The most users this instance has in flight at once: its users in the closed model, --max-active's share in the open. */
export function usersInFlight(options: LoadOptions): number {
  const open = openShareOf(options);
  if (open) return Math.min(open.users, open.maxActive);
  const me = instanceOf(options);
  return me.to - me.from;
}

/** Where share `k` of `n` starts in the users' numbering: shares differ by at most one user. */
export function shareStart(users: number, n: number, k: number): number {
  return Math.floor((users * k) / n);
}
