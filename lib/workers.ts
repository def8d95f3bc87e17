/**
 * The users' worker threads. Each loads the scenario's own file, runs a share of the users through its
 * journey and answers what they did; the first also runs the scenario's setup before and its check after,
 * so that the main thread never parses a page and is always free to answer a signal.
 *
 *   const thread = new UserThread(scenario.file);
 *   const share = await thread.ask<Share>({ run: { url, options, setup, from: 0, to: 100, window: 10 } });
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { printable } from "./cli.ts";
import { bucketBounds, type MetricCounts } from "./metrics.ts";
import { sessionDefaults } from "./fetchData.ts";
import type { LoadOptions } from "./load-options.ts";
import { startWorker } from "./process.ts";
import { type Progress, progressOf } from "./report.ts";
import { buildResults, Recorder, type Results } from "./results.ts";
import { type LoopLoad, watchEventLoop } from "./samplers.ts";
import { type AnyScenario, type CheckAnswer, scenarioAt } from "./scenario.ts";

/** What one worker's share of the users did. */
export interface Share {
  users: number;
  results: Results;
  /** The live metrics' final counts (--metrics-port). */
  metrics?: MetricCounts[];
  kept: unknown[];
  loop: LoopLoad;
}

/** What the main thread asks a worker: the scenario's setup, a share of the users, or the end-state check. */
export type Ask =
  | { setup: { url: string; options: LoadOptions } }
  | { run: { url: string; options: LoadOptions; setup: unknown; from: number; to: number; window: number } }
  | {
    check: {
      url: string;
      options: LoadOptions;
      setup: unknown;
      kept: unknown[];
      exact: boolean;
      failures: Record<string, number>;
    };
  };

type Reply = { id: number; answer: unknown } | { id: number; error: string } | { progress: Progress };

// A young generation of 128 MB (V8's default is 32-64 MB) halves the garbage collector's work on the
// pages users parse: 1.83-1.92 ms of generator CPU per request against 2.24-2.40 ms, alternating, three
// rounds (bench/vs-locust.ts's scenario, 300 users x 5 actions). Deno's default is already larger.
const YOUNG_GENERATION_MB = 128;

/** One worker thread running the scenario at `file`; its latest progress is kept for the progress line. */
export class UserThread {
  private readonly worker;
  private readonly pending = new Map<number, { resolve: (answer: never) => void; reject: (error: Error) => void }>();
  private asked = 0;
  private ended = false;
  progress: Progress = { done: 0, failed: 0, activeUsers: 0, requestsPerSecond: 0, p99: null, pgBackends: 0 };

  constructor(file: string) {
    this.worker = startWorker(import.meta.url, { tierload: "load", scenario: file }, {
      maxYoungGenerationSizeMb: YOUNG_GENERATION_MB,
    });
    this.worker.on("message", (reply: Reply) => {
      if ("progress" in reply) this.progress = reply.progress;
      else if ("error" in reply) this.settle(reply.id)?.reject(new Error(reply.error));
      else this.settle(reply.id)?.resolve(reply.answer as never);
    });
    this.worker.on("error", (error) => this.settleAll(error));
    this.worker.on("exit", (code) => {
      this.ended = true;
      this.settleAll(new Error(`The load generator's thread ended (exit ${code}) without results`));
    });
  }

  /** Asks the worker one thing; several questions may be open at once, each answered in its own promise. */
  ask<T>(request: Ask): Promise<T> {
    if (this.ended) return Promise.reject(new Error("The load generator's thread has ended"));
    const id = ++this.asked;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (answer: never) => void, reject });
      this.worker.postMessage({ id, request });
    });
  }

  /** No new actions: those in flight finish, and the share answers what it did. */
  stop(): void {
    if (!this.ended) this.worker.postMessage("stop");
  }

  end(): void {
    this.ended = true;
    void this.worker.terminate();
  }

  private settle(id: number) {
    const pending = this.pending.get(id);
    this.pending.delete(id);
    return pending;
  }

  private settleAll(error: Error) {
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(error);
  }
}

// ---------------------------------------------------------------------------------------------
// The worker's side
// ---------------------------------------------------------------------------------------------

interface RunState {
  /** No new actions: the time cap passed, the run was interrupted, or it cannot go on. */
  stopping: boolean;
}

/** The worker: the scenario's file loaded, requests answered as they come, told to stop by a message. */
function runWorker(file: string): void {
  const post = (reply: Reply) => parentPort!.postMessage(reply);
  const state: RunState = { stopping: false };
  const loading = scenarioAt(file);
  loading.catch(() => {});
  parentPort!.on("message", async (message: { id: number; request: Ask } | "stop") => {
    if (message === "stop") {
      state.stopping = true;
      return;
    }
    try {
      const scenario = await loading;
      post({
        id: message.id,
        answer: await answer(scenario, message.request, state, (progress) => post({ progress })),
      });
    } catch (error) {
      post({ id: message.id, error: error instanceof Error ? error.message : String(error) });
    }
  });
}

async function answer(
  scenario: AnyScenario,
  request: Ask,
  state: RunState,
  progress: (p: Progress) => void,
): Promise<unknown> {
  if ("setup" in request) {
    const { url, options } = request.setup;
    sessionDefaults.timeoutMs = options.timeout;
    return await scenario.setup?.({ url, options });
  }
  if ("check" in request) {
    const { url, options, setup, kept, exact, failures } = request.check;
    sessionDefaults.timeoutMs = options.timeout;
    return await scenario.check!({ url, options, setup, kept, exact, failures }) satisfies CheckAnswer;
  }
  const { url, options, setup, from, to, window } = request.run;
  const recorder = new Recorder();
  if (options.metricsPort !== undefined) recorder.bounds = bucketBounds(options.timeout);
  if (options.verbose) {
    recorder.onFailure = (name, f) => process.stderr.write(printable(`failed: ${name}: ${f.message}`) + "\n");
  }
  const ticks = setInterval(() => progress(progressOf(recorder, window)), 1000);
  const lag = watchEventLoop();
  const started = Date.now();
  Object.assign(sessionDefaults, { timeoutMs: options.timeout, onRequest: recorder.requestObserver() });
  const kept = await runUsers(scenario, options, url, setup, recorder, state, from, to).finally(() => {
    delete sessionDefaults.onRequest;
  });
  const loop = lag.stop();
  clearInterval(ticks);
  const results = buildResults({
    settings: { ...options, url, embedded: false },
    instances: [options.instance],
    startedAt: started,
    endedAt: Date.now(),
    interrupted: false,
    metrics: recorder.metrics,
    timeline: recorder.timeline(),
    postgres: { sampled: false, peakBackends: 0, maxConnections: 0 },
    generator: { cpuSeconds: 0, coreShare: 0, ...loop, saturated: false, cores: 0, machineBusyShare: 0 },
    check: null,
  }, []);
  const metrics = recorder.bounds ? recorder.counts() : undefined;
  return { users: to - from, results, kept, loop, metrics } satisfies Share;
}

/** Users `from` to `to` of the run, each on its journey at once (or over --ramp-up); answers what they kept. */
async function runUsers(
  scenario: AnyScenario,
  options: LoadOptions,
  url: string,
  setup: unknown,
  recorder: Recorder,
  state: RunState,
  from: number,
  to: number,
): Promise<unknown[]> {
  const kept: unknown[] = [];
  const user = async (index: number) => {
    const random = seededRandom(options.seed ^ Math.imul(index + 1, 0x9e3779b1));
    if (options.rampUp > 0) await sleep((index / options.users) * options.rampUp * 1000);
    if (state.stopping) return;
    recorder.activeUsers++;
    try {
      await scenario.user({
        url,
        options,
        setup,
        index,
        name: `${options.instance}_${index}`,
        random,
        get stopping() {
          return state.stopping;
        },
        act: (name, call) => state.stopping ? Promise.resolve(undefined) : recorder.action(name, call),
        keep: (item) => item !== undefined && kept.push(item),
        async repeat(action) {
          for (let n = 0; n < options.actions && !state.stopping; n++) {
            if (options.thinkTime > 0) await sleep(options.thinkTime * (0.5 + random()));
            if (state.stopping) break;
            await action(n);
          }
        },
      });
    } catch (error) {
      // The journey itself threw, outside any act(): counted as a failed action of its own, not lost.
      await recorder.action("journey", () => Promise.reject(error));
    } finally {
      recorder.activeUsers--;
    }
  };
  await Promise.all(Array.from({ length: to - from }, (_, i) => user(from + i)));
  return kept;
}

/** mulberry32: a small seeded generator, so a run's choices can be repeated. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

if (!isMainThread && workerData?.tierload === "load") runWorker(workerData.scenario);
