/**
 * The users' worker threads. Each loads the scenario's own file, runs a share of the users through its
 * journey and answers what they did; the first also runs the scenario's setup before and its check after,
 * so that the main thread never parses a page and is always free to answer a signal.
 *
 *   const [thread] = await userThreads(scenario.file, 1);
 *   const share = await thread.ask<Share>({ run: { url, options, setup, from: 0, to: 100, window: 10 } });
 */
import { performance } from "node:perf_hooks";
import { parentPort, Worker } from "node:worker_threads";
import { arrivalTime, type Stage } from "./arrivals.ts";
import { printable } from "./cli.ts";
import { bucketBounds, type MetricCounts } from "./metrics.ts";
import { sessionDefaults } from "./fetchData.ts";
import type { LoadOptions } from "./load-options.ts";
import { workerModule } from "./worker-module.ts";
import { type Progress, progressOf } from "./report.ts";
import { buildResults, type Results } from "./results.ts";
import { Recorder } from "./recorder.ts";
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
  | {
    run: {
      url: string;
      options: LoadOptions;
      setup: unknown;
      from: number;
      to: number;
      window: number;
      open?: OpenShare;
    };
  }
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

/**
 * A worker's part of an open-model run: the run's arrivals k = first, first + stride, ... below total,
 * each due `arrivalTime(stages, k)` seconds after `start` (ms since 1970), at most `maxActive` in flight.
 */
export interface OpenShare {
  first: number;
  stride: number;
  total: number;
  start: number;
  stages: Stage[];
  seconds: number;
  maxActive: number;
  maxLatenessMs: number;
}

type Reply = { id: number; answer: unknown } | { id: number; error: string } | { progress: Progress };

// A young generation of 128 MB (V8's default is 32-64 MB) halves the garbage collector's work on the
// pages users parse: 1.83-1.92 ms of generator CPU per request against 2.24-2.40 ms, alternating, three
// rounds (bench/vs-locust.ts's scenario, 300 users x 5 actions). Deno's default is already larger.
const YOUNG_GENERATION_MB = 128;

/** `count` worker threads, each running the scenario at `file` (its module prepared once, for all of them). */
export async function userThreads(file: string, count: number): Promise<UserThread[]> {
  const module = await workerModule(import.meta.url, "runWorker", [file]);
  return Array.from({ length: count }, () => new UserThread(module, file));
}

/** One worker thread running the scenario at `file`; its latest progress is kept for the progress line. */
export class UserThread {
  private readonly worker;
  private readonly pending = new Map<number, { resolve: (answer: never) => void; reject: (error: Error) => void }>();
  private asked = 0;
  private ended = false;
  progress: Progress = { done: 0, failed: 0, activeUsers: 0, requestsPerSecond: 0, p99: null, pgBackends: 0 };

  constructor(module: string, file: string) {
    this.worker = new Worker(new URL(module), {
      workerData: { scenario: file } satisfies WorkerData,
      resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB },
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

/** What a worker thread is started with. */
interface WorkerData {
  /** The scenario's file URL. */
  scenario: string;
}

/** The worker: the scenario's file loaded, requests answered as they come, told to stop by a message. */
export function runWorker({ scenario: file }: WorkerData): void {
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
  const { url, options, setup, from, to, window, open } = request.run;
  const recorder = new Recorder(
    open !== undefined || options.pace !== undefined,
    open && { planned: to - from, maxActive: open.maxActive, maxLatenessMs: open.maxLatenessMs, seconds: open.seconds },
  );
  if (options.metricsPort !== undefined) recorder.bounds = bucketBounds(options.timeout);
  if (options.verbose) {
    recorder.onFailure = (name, f) => process.stderr.write(printable(`failed: ${name}: ${f.message}`) + "\n");
  }
  const ticks = setInterval(() => progress(progressOf(recorder, window)), 1000);
  const lag = watchEventLoop();
  const started = Date.now();
  Object.assign(sessionDefaults, { timeoutMs: options.timeout, onRequest: recorder.requestObserver() });
  const run = { scenario, options, url, setup, recorder, state };
  const kept = await (open ? arriveUsers(run, open) : runUsers(run, from, to)).finally(() => {
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
    open: recorder.arrivalResults(),
    postgres: { sampled: false, peakBackends: 0, maxConnections: 0 },
    generator: { cpuSeconds: 0, coreShare: 0, ...loop, saturated: false, cores: 0, machineBusyShare: 0 },
    check: null,
  }, []);
  const metrics = recorder.bounds ? recorder.counts() : undefined;
  return { users: to - from, results, kept, loop, metrics } satisfies Share;
}

/** What every user of a worker's share runs with. */
interface UserRun {
  scenario: AnyScenario;
  options: LoadOptions;
  url: string;
  setup: unknown;
  recorder: Recorder;
  state: RunState;
}

/** The closed model: users `from` to `to` of the run, each on its journey at once (or over --ramp-up). */
async function runUsers(run: UserRun, from: number, to: number): Promise<unknown[]> {
  const { options, state } = run;
  const kept: unknown[] = [];
  const user = async (index: number) => {
    if (options.rampUp > 0) await sleep((index / options.users) * options.rampUp * 1000);
    if (!state.stopping) await journey(run, index, kept);
  };
  await Promise.all(Array.from({ length: to - from }, (_, i) => user(from + i)));
  return kept;
}

/**
 * The open model: this worker's arrivals, each user starting its journey when it is due, whatever the
 * users before it are doing. An arrival that finds `maxActive` users in flight, or that the generator
 * reaches more than `maxLatenessMs` after it was due, is dropped and counted, never started late.
 */
async function arriveUsers(run: UserRun, open: OpenShare): Promise<unknown[]> {
  const { recorder, state } = run;
  const kept: unknown[] = [];
  const inFlight = new Set<Promise<void>>();
  const now = () => performance.timeOrigin + performance.now();
  for (let k = open.first; k < open.total && !state.stopping; k += open.stride) {
    const due = open.start + arrivalTime(open.stages, k) * 1000;
    // Waits a quarter second at a time at most, so that a stop is heeded between sparse arrivals.
    for (let wait = due - now(); wait > 0 && !state.stopping; wait = due - now()) await sleep(Math.min(wait, 250));
    if (state.stopping) break;
    const late = now() - due;
    if (late > open.maxLatenessMs) recorder.arrival("late", late);
    else if (inFlight.size >= open.maxActive) recorder.arrival("busy", late);
    else {
      recorder.arrival("started", late);
      const user: Promise<void> = journey(run, k, kept, due - performance.timeOrigin).finally(() =>
        inFlight.delete(user)
      );
      inFlight.add(user);
    }
  }
  while (inFlight.size) await Promise.all(inFlight);
  return kept;
}

/**
 * One user's journey. `due` (performance.now()'s time) is when its first action should start: its
 * arrival, in the open model; with --pace each repeated action is due at its slot. The action that starts
 * next takes the due time, so its corrected latency runs from then.
 */
async function journey(run: UserRun, index: number, kept: unknown[], due?: number): Promise<void> {
  const { scenario, options, url, setup, recorder, state } = run;
  const random = seededRandom(options.seed ^ Math.imul(index + 1, 0x9e3779b1));
  let next = due;
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
      act: (name, call) => {
        if (state.stopping) return Promise.resolve(undefined);
        const dueAt = next;
        next = undefined;
        return recorder.action(name, call, dueAt);
      },
      keep: (item) => item !== undefined && kept.push(item),
      async repeat(action) {
        const first = next ?? performance.now();
        for (let n = 0; n < options.actions && !state.stopping; n++) {
          if (options.pace !== undefined) {
            const slot = first + n * options.pace;
            const wait = slot - performance.now();
            if (wait > 0) await sleep(wait);
            next = slot;
          } else if (options.thinkTime > 0) await sleep(options.thinkTime * (0.5 + random()));
          if (state.stopping) break;
          await action(n);
          next = undefined;
        }
      },
    });
  } catch (error) {
    // The journey itself threw, outside any act(): counted as a failed action of its own, not lost.
    await recorder.action("journey", () => Promise.reject(error));
  } finally {
    recorder.activeUsers--;
  }
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
