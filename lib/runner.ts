/**
 * One load run of a scenario: start the application if none is given, sample PostgreSQL, run the
 * scenario's setup, the users across worker threads (beginning together at --start-at, if given), the
 * end-state check, and measure the generator, the machine and the database throughout.
 *
 *   const results = await runLoad(shop, parseLoadOptions(shop, ["node", "load.ts", "--users", "20"]));
 */
import { cpus } from "node:os";
import { arrivalPlan, countOf, stagesInWords } from "./arrivals.ts";
import { instanceOf, loadCommand, type LoadOptions, openShareOf, shareStart } from "./load-options.ts";
import { progressLine, sumProgress } from "./report.ts";
import {
  buildResults,
  BUSY_SHARE,
  type EndCheck,
  postgresResults,
  redactUrl,
  type Results,
  type Settings,
} from "./results.ts";
import { type PgSampler, samplePostgres, watchMachine } from "./samplers.ts";
import { combine, mergeTimelines } from "./merge.ts";
import { Recorder } from "./recorder.ts";
import type { AnyScenario, CheckAnswer, StartedApp } from "./scenario.ts";
import { thresholdsOf } from "./thresholds.ts";
import { type OpenShare, type Share, type UserThread, userThreads } from "./workers.ts";
import { addCounts, bucketBounds, type MetricCounts, type MetricsServer, serveMetrics } from "./metrics.ts";

/** How long after the run's start its first arrival is due: time for every worker thread to hear of it. */
const FIRST_ARRIVAL_MS = 50;

/** Where a run's words go, and what can stop it. */
export interface RunIO {
  log?: (line: string) => void;
  /** A progress line, every `progressSeconds`. */
  progress?: (line: string) => void;
  progressSeconds?: number;
  /** Aborted: start no new actions, let those in flight finish, check and report (an interrupt). */
  signal?: AbortSignal;
  /**
   * Where this process's startup CPU is counted from: the command line gives zero (from the process's start, as
   * the OS counts it); by default, from this call.
   */
  startupFrom?: NodeJS.CpuUsage;
}

/**
 * One run. This thread starts the application if none is given, samples PostgreSQL, and keeps time; the
 * users run in `--workers` worker threads (a share each), which also run the scenario's setup before and
 * its check after, so that this thread never parses a page and is always free to answer a signal: a
 * terminal's Ctrl-C, and the wrappers that relay it (tsx's CLI sends SIGKILL to a child that has not
 * acknowledged a relayed SIGINT within 30 ms, which a busy generator never does).
 *
 *   const results = await runLoad(shop, parseLoadOptions(shop, ["node", "load.ts", "--url", url, "--users", "20"]));
 *   assert.equal(results.verdict.ok, true, results.verdict.reasons.join("; "));
 */
export async function runLoad(scenario: AnyScenario, options: LoadOptions, io: RunIO = {}): Promise<Results> {
  const startupFrom = io.startupFrom ?? process.cpuUsage();
  const log = io.log ?? (() => {});
  let interrupted = io.signal?.aborted ?? false;
  let stopping: () => void = () => {};
  const onAbort = () => {
    interrupted = true;
    stopping();
  };
  io.signal?.addEventListener("abort", onAbort);
  let app: StartedApp | null = null;
  let stoppingApp = false;
  const recorder = new Recorder();
  const me = instanceOf(options);
  const open = openShareOf(options);
  const plan = arrivalPlan(options);
  const users = open ? open.users : me.to - me.from;
  const runOptions = { ...options, instance: me.name };
  let workers: UserThread[] = [];
  let sampler: PgSampler | null = null;
  let metrics: MetricsServer | null = null;
  let samplerError: string | undefined;
  let stoppedEarly: string | undefined;
  /** Why the application this run starts did not start, when a Ctrl-C came first (then nothing runs). */
  let notStarted: string | undefined;
  try {
    if (!options.url) log(`Starting the application for this run (no --url given)`);
    app = options.url ? null : await scenario.start!(options).catch((error: Error) => {
      // A Ctrl-C reaches the terminal's whole process group, and so an application starting in it (or a child
      // not yet in a group of its own) can die of the same signal: the run was interrupted, it did not fail.
      if (!interrupted) throw error;
      notStarted = error.message;
      log(`${notStarted}: no action runs`);
      return null;
    });
    const url = options.url ?? app?.url ?? "";
    workers = await userThreads(
      scenario.file,
      Math.min(options.workers ?? 1, users, open?.maxActive ?? users),
    );
    stopping = () => workers.forEach((w) => w.stop());
    if (interrupted) stopping();
    void app?.ended?.then((how) => {
      if (stoppingApp) return;
      stoppedEarly ??= `${app!.name ?? "the application"}'s process ended (${how})`;
      stopping();
      log(`error: ${stoppedEarly}: no new actions`);
    });
    const databaseUrl = options.databaseUrl ?? app?.databaseUrl;
    sampler = databaseUrl
      ? await samplePostgres(databaseUrl, (sample) => {
        recorder.pgBackends = sample.held;
        recorder.pgActive = sample.active;
        recorder.second();
      }).catch((error) => {
        samplerError = `cannot connect to ${redactUrl(databaseUrl)}: ${error.message}`;
        log(`warning: cannot sample PostgreSQL: ${samplerError}`);
        return null;
      })
      : null;
    let finalCounts: MetricCounts[] | null = null;
    metrics = options.metricsPort === undefined ? null : await serveMetrics(
      { port: options.metricsPort, host: options.metricsHost },
      () => ({
        metrics: finalCounts ?? addCounts(workers.map((w) => w.progress.metrics ?? [])),
        activeUsers: finalCounts ? 0 : workers.reduce((n, w) => n + w.progress.activeUsers, 0),
        pgBackends: recorder.pgBackends,
      }),
      bucketBounds(options.timeout),
    );
    if (metrics) log(`Metrics for Prometheus: ${metrics.url}`);
    const [lead] = workers;
    const setup = scenario.setup && !notStarted ? await lead.ask<unknown>({ setup: { url, options } }) : undefined;
    const share = options.instances === undefined
      ? ""
      : open
      ? `, every ${open.stride}th arrival from ${open.first}: ${users} of ${open.runUsers}`
      : `, users ${me.from}-${me.to - 1} of ${options.users}`;
    const model = plan
      ? `users arriving at ${stagesInWords(plan.stages)} (${plan.total} in all, at most ${options.maxActive} ` +
        `in flight)`
      : `${users} users`;
    if (!notStarted) {
      log(
        `Loading ${redactUrl(url)} with ${model} x ${options.actions} actions${
          options.pace ? `, one every ${options.pace} ms` : ""
        } (seed ${options.seed}, instance ${me.name}${share}${
          workers.length > 1 ? `, ${workers.length} worker threads` : ""
        })`,
      );
    }
    if (options.startAt !== undefined && !interrupted) await untilStart(options.startAt, log, io.signal);

    const started = Date.now();
    const cap = options.maxDuration ? setTimeout(stopping, options.maxDuration * 1000) : undefined;
    const window = io.progressSeconds ?? 10;
    const goal = { users, steps: scenario.steps?.(options) ?? options.actions, stages: plan?.stages, share: open };
    const progress = setInterval(() => {
      recorder.second();
      const backends = sampler ? recorder.pgBackends : null;
      io.progress?.(progressLine(sumProgress(workers.map((w) => w.progress), backends), goal, started));
    }, window * 1000);
    const cpuBefore = process.cpuUsage();
    const startup = process.cpuUsage(startupFrom);
    const machineBusy = watchMachine();
    // Open model: this instance's arrivals are dealt out among its threads in turn, as its rate and
    // its share of --max-active are.
    const openShare = (k: number): OpenShare | undefined =>
      open
        ? {
          first: open.first + open.stride * k,
          stride: open.stride * workers.length,
          total: open.total,
          start: started + FIRST_ARRIVAL_MS,
          stages: plan!.stages,
          seconds: plan!.seconds,
          maxActive: shareStart(open.maxActive, workers.length, k + 1) - shareStart(open.maxActive, workers.length, k),
          maxLatenessMs: options.maxLateness,
        }
        : undefined;
    const shares = await Promise.all(workers.map((worker, k) => {
      const arrivals = openShare(k);
      const from = arrivals ? 0 : me.from + shareStart(users, workers.length, k);
      const to = arrivals ? countOf(arrivals.first, arrivals.stride, arrivals.total) : me.from +
        shareStart(users, workers.length, k + 1);
      return worker.ask<Share>({ run: { url, options: runOptions, setup, from, to, window, open: arrivals } });
    }));
    const endedAt = Date.now();
    const cpu = process.cpuUsage(cpuBefore);
    finalCounts = addCounts(shares.map((share) => share.metrics ?? []));
    metrics?.ended();
    clearInterval(progress);
    clearTimeout(cap);
    await sampler?.stop();

    const combined = combine(shares.map((share) => share.results));
    const check = !scenario.check
      ? null
      : notStarted
      ? notChecked(scenario, "exact", `the application did not start: ${notStarted}`)
      : await endCheck(scenario, lead, {
        url,
        options,
        setup,
        kept: shares.flatMap((share) => share.kept),
        exact: app !== null && options.instances === undefined,
        failures: Object.fromEntries(
          [...combined.metrics].filter(([, m]) => m.kind === "action" && m.errors > 0).map(([n, m]) => [n, m.errors]),
        ),
      }, log);

    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const coreShare = endedAt > started ? cpuSeconds / ((endedAt - started) / 1000) : 0;
    const loops = shares.map((share) => share.loop);
    return buildResults({
      ...combined,
      settings: settingsOf(scenario, options, {
        users,
        url: notStarted ? "(the application, which did not start)" : url,
        embedded: app !== null,
        app: app?.name,
      }),
      instances: [me.name],
      instanceDetails: [{
        instance: me.name,
        ...(options.instances === undefined ? {} : {
          run: options.instance,
          index: options.index,
          of: options.instances,
          users: open ? open.runUsers : options.users,
        }),
        ...(options.startAt === undefined
          ? {}
          : { plannedStart: options.startAt, startSkewMs: started - options.startAt }),
      }],
      startedAt: started,
      endedAt,
      interrupted,
      stoppedEarly,
      timeline: mergeTimelines([combined.timeline, recorder.timeline()]),
      postgres: postgresResults(sampler?.findings() ?? null, samplerError, app?.pool),
      generator: {
        cpuSeconds,
        startupCpuSeconds: (startup.user + startup.system) / 1e6,
        coreShare,
        eventLoopLagP99Ms: Math.max(...loops.map((l) => l.eventLoopLagP99Ms)),
        eventLoopLagMaxMs: Math.max(...loops.map((l) => l.eventLoopLagMaxMs)),
        // JavaScript runs on one core per thread: a worker busy nearly all the time was the limit. Where
        // the runtime does not measure that (Deno), the process's CPU per worker thread stands for it.
        saturated: loops.some((l) => l.busyShare !== null && l.busyShare > BUSY_SHARE) ||
          (loops.every((l) => l.busyShare === null) && coreShare / workers.length > BUSY_SHARE),
        cores: cpus().length,
        machineBusyShare: machineBusy(),
        workers: workers.length > 1 ? loops.map((loop, k) => ({ ...loop, users: shares[k].users })) : undefined,
      },
      check,
    }, thresholdsOf(options));
  } finally {
    io.signal?.removeEventListener("abort", onAbort);
    await metrics?.stop(
      interrupted ? 0 : options.metricsHold * 1000,
      () => log(`Waiting at most ${options.metricsHold} s for a scrape of the final metrics (--metrics-hold)`),
    );
    workers.forEach((w) => w.end());
    await sampler?.stop();
    stoppingApp = true;
    await app?.stop();
  }
}

/** The scenario's end-state check, run by the lead worker; one that cannot run is "not checked", never passed. */
async function endCheck(
  scenario: AnyScenario,
  lead: UserThread,
  context: { url: string; options: LoadOptions; setup: unknown; kept: unknown[]; exact: boolean } & {
    failures: Record<string, number>;
  },
  log: (line: string) => void,
): Promise<EndCheck> {
  const counts = context.exact ? "exact" : "at least";
  const name = scenario.checkName ?? "End state";
  log(`Checking the end state: ${name}`);
  try {
    const answer = await lead.ask<CheckAnswer>({ check: context });
    return { name, counts, ...answer, findings: answer.findings.slice(0, 20), checked: true };
  } catch (error) {
    return notChecked(scenario, counts, `the check could not run: ${(error as Error).message}`);
  }
}

/** The end-state check that did not run, and why. */
function notChecked(scenario: AnyScenario, counts: EndCheck["counts"], note: string): EndCheck {
  const name = scenario.checkName ?? "End state";
  return { name, checked: false, ok: false, counts, counted: {}, summary: "", findings: [], note };
}

let toolKeys: Set<string> | undefined;

/**
 * The results' settings: the tool's options (less where its output went), and the scenario's own options
 * under the scenario's name.
 */
export function settingsOf(scenario: AnyScenario, options: LoadOptions, facts: Partial<Settings>): Settings {
  toolKeys ??= new Set(loadCommand({ ...scenario, options: undefined }).options.map((o) => o.attributeName()));
  const { merge: _, json: __, report: ___, given: ____, ...all } = options;
  const tool = Object.fromEntries(Object.entries(all).filter(([key]) => toolKeys!.has(key)));
  const own = Object.fromEntries(Object.entries(all).filter(([key]) => !toolKeys!.has(key)));
  return {
    ...tool,
    scenario: scenario.name,
    about: scenario.about?.(options),
    [scenario.name]: own,
    url: facts.url!,
    embedded: false,
    ...facts,
  };
}

/**
 * Waits for the moment every instance of a run begins. One that comes up after it (an image pulled late,
 * a pod scheduled late) begins at once and says by how much; the results keep the skew either way.
 */
async function untilStart(startAt: number, log: (line: string) => void, signal?: AbortSignal): Promise<void> {
  const wait = startAt - Date.now();
  if (wait < 0) {
    log(`Late: beginning at once, ${(-wait / 1000).toFixed(1)} s after the planned start (--start-at)`);
    return;
  }
  log(`Waiting ${(wait / 1000).toFixed(1)} s for the planned start, ${new Date(startAt).toISOString()}`);
  // A timer waits at most 2^31 - 1 ms (about 24.8 days): longer waits are taken in turns.
  while (!signal?.aborted && Date.now() < startAt) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.min(startAt - Date.now(), 2 ** 31 - 1));
      signal?.addEventListener("abort", done);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      }
    });
  }
}
