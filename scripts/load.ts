/**
 * The load test: the seed's loop with every user at once. Each of N users signs up, logs in, then
 * acts M times (9 in 10 a reply to an existing thread, otherwise a new thread), through the same
 * adapter as the functional suite (lib/forum.ts). With no --url it starts the reference forum in its
 * own process, with a pool of 1000 PostgreSQL connections, and watches PostgreSQL hold them.
 *
 *   npx tsx scripts/load.ts                      # or: deno run -A scripts/load.ts (npm start, deno task start)
 *   npx tsx scripts/load.ts --users 200 --actions 5 --json run.json --max-error-rate 0.01 --max-p99 2000
 *   npx tsx scripts/load.ts --merge a.json b.json --json all.json
 *   npx tsx scripts/load.ts --kubernetes-job --url http://app/myapp/ --users 3000 --instances 3 > job.yaml
 *
 * The users run in worker threads (--workers); several machines or pods share one run with --instances,
 * each taking its share of the users, and --merge combines what they print.
 * Progress goes to stderr (live on a terminal), the report to stdout, the full results to --json.
 */
import { writeFileSync } from "node:fs";
import { availableParallelism, cpus, platform } from "node:os";
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { command, EXIT, integer, isMain, number, runMain, scriptArgs, unwritable } from "../lib/cli.ts";
import {
  createNewThread,
  getForumId,
  getPostCounts,
  getStatedNumThreads,
  login,
  postToExistingThread,
  readThread,
  type Session,
  signup,
  visit,
  type Written,
} from "../lib/forum.ts";
import { InvalidArgumentError } from "commander";
import { jobManifest } from "../lib/kubernetes.ts";
import { openFileLimits, startWorker } from "../lib/process.ts";
import { formatReport, type Progress, progressLine, progressOf, renderReport, sumProgress } from "../lib/report.ts";
import {
  buildResults,
  BUSY_SHARE,
  combine,
  instanceName,
  type LoopLoad,
  merge,
  mergeTimelines,
  type NothingLost,
  type PgSampler,
  readResultsFrom,
  Recorder,
  redactUrl,
  type Results,
  samplePostgres,
  watchEventLoop,
  watchMachine,
} from "../lib/results.ts";
import { spawnForum } from "./forum-server.ts";

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

export interface LoadOptions {
  users: number;
  actions: number;
  replyShare: number;
  instance: string;
  rampUp: number;
  thinkTime: number;
  maxDuration?: number;
  seed: number;
  url?: string;
  databaseUrl?: string;
  forum: string;
  pool: number;
  timeout: number;
  json?: string;
  report?: string;
  maxErrorRate?: number;
  maxP99?: number;
  workers?: number;
  merge?: string[];
  instances?: number;
  index?: number;
  startAt?: number;
  kubernetesJob?: boolean;
  image: string;
  startIn: number;
}

export function parseOptions(argv: string[]): LoadOptions {
  const program = command("load")
    .description("Load-test a forum with simultaneous users who sign up, log in and post, through lib/forum.ts.")
    .option("-u, --users <n>", "simultaneous users", integer(1, 100_000), 1000)
    .option("-a, --actions <n>", "actions per user", integer(0, 1_000_000), 10)
    .option("--reply-share <fraction>", "share of actions that reply to an existing thread", number(0, 1), 0.9)
    .option(
      "--instance <id>",
      "names users load_user_<id>_<i>, so several runs can share a forum",
      Date.now().toString(36),
    )
    .option("--ramp-up <seconds>", "spread the users' starts over this long", number(0), 0)
    .option("--think-time <ms>", "mean pause between a user's actions (uniform, 0.5x to 1.5x)", number(0), 0)
    .option("--max-duration <seconds>", "stop starting actions after this long", number(1))
    .option("--seed <n>", "random seed, for a run that picks the same threads", integer(0, 2 ** 32 - 1), randomSeed())
    .option("--url <url>", "the forum to load (default: start the reference forum in its own process)")
    .option("--database-url <url>", "PostgreSQL to sample for client backends (automatic for the reference forum)")
    .option("--forum <name>", "the forum whose threads users reply to and start", "Other")
    .option("--pool <n>", "the reference forum's PostgreSQL pool", integer(1, 10_000), 1000)
    .option("--timeout <ms>", "time limit of each request", number(1), 120_000)
    .option("--json <file>", "write the full results, histograms included, to this file (- for stdout)")
    .option("--report <file>", "write a self-contained HTML report with charts (with --merge: from saved JSON)")
    .option("--max-error-rate <fraction>", "fail (exit 1) when more than this share of actions fail", number(0, 1))
    .option("--max-p99 <ms>", "fail (exit 1) when any action's p99 latency exceeds this", number(0))
    .option(
      "--workers <n>",
      "worker threads the users run in (default: 1 beside the embedded forum, one per core against --url)",
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
      "--start-in <seconds>",
      "with --kubernetes-job: the pods begin together this long after the YAML is made",
      number(0),
      90,
    )
    .addHelpText(
      "after",
      `
Verdict: PASS only when every action succeeded (or --max-error-rate allows the share that failed),
the run went to its end, no --max-p99 was breached, and every write it counted is on the forum.
Exit status: 0 PASS, 1 FAIL, 2 usage error, 130 interrupted (one Ctrl-C lets the actions in flight
finish, then prints the report and writes the JSON; a second quits at once).`,
    )
    .parse(scriptArgs(argv));
  const options = program.opts<LoadOptions>();
  const usage = (message: string) => program.error(`error: ${message}`, { exitCode: EXIT.usage });
  for (const [flag, path] of [["--json", options.json], ["--report", options.report]]) {
    const problem = path === "-" && flag === "--json" ? null : unwritable(path);
    if (problem) usage(`${flag} ${problem}`);
  }
  if (options.kubernetesJob) {
    if (!options.url) usage("--kubernetes-job needs --url: the pods load an application, not a forum of their own");
    options.instances ??= 1;
  } else if (options.instances !== undefined) {
    const index = options.index ?? process.env.JOB_COMPLETION_INDEX;
    if (index === undefined || !/^\d+$/.test(String(index)) || Number(index) >= options.instances) {
      usage(
        `--instances ${options.instances} needs --index (or JOB_COMPLETION_INDEX) from 0 to ${
          options.instances - 1
        }, not ${index ?? "none"}`,
      );
    }
    options.index = Number(index);
    if (options.users < options.instances) {
      usage(`--users ${options.users} cannot be shared among --instances ${options.instances}`);
    }
  }
  return options;
}

/** An ISO 8601 moment (or milliseconds since 1970), as milliseconds. */
function moment(value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new InvalidArgumentError(`"${value}" is not a moment (ISO 8601, e.g. 2026-11-25T18:00:00Z)`);
  }
  return ms;
}

/** This instance's users, as [first, end) in the run's numbering, and its name (users are load_user_<name>_<i>). */
function instanceOf(options: LoadOptions): { from: number; to: number; name: string } {
  if (options.instances === undefined) return { from: 0, to: options.users, name: options.instance };
  const k = options.index!;
  return {
    from: shareStart(options.users, options.instances, k),
    to: shareStart(options.users, options.instances, k + 1),
    name: instanceName(options.instance, k),
  };
}

const randomSeed = () => Math.floor(Math.random() * 2 ** 32);

// ---------------------------------------------------------------------------------------------
// The users: the seed's loop, every user at once
// ---------------------------------------------------------------------------------------------

/** What the users wrote and the run counted as a success: the new threads by id, and the replies. */
interface Writes {
  threads: Map<number, Written>;
  replies: Written[];
}

interface RunState {
  /** No new actions: the time cap passed, the run was interrupted, or it cannot go on. */
  stopping: boolean;
}

async function runUsers(
  options: LoadOptions,
  url: string,
  forumId: number,
  recorder: Recorder,
  state: RunState,
  from = 0,
  to = options.users,
): Promise<Writes> {
  const writes: Writes = { threads: new Map(), replies: [] };
  const sessionOptions = { timeoutMs: options.timeout, onRequest: recorder.requestObserver(url) };
  const password = "load-password";

  const user = async (i: number) => {
    const random = seededRandom(options.seed ^ Math.imul(i + 1, 0x9e3779b1));
    if (options.rampUp > 0) await sleep((i / options.users) * options.rampUp * 1000);
    if (state.stopping) return;
    recorder.activeUsers++;
    try {
      const username = `load_user_${options.instance}_${i}`;
      const signedUp = await recorder.action("signup", () => signup(url, username, password, sessionOptions));
      if (!signedUp || state.stopping) return;
      const session = await recorder.action("login", () => login(url, username, password, sessionOptions));
      if (!session) return;
      for (let action = 0; action < options.actions && !state.stopping; action++) {
        if (options.thinkTime > 0) await sleep(options.thinkTime * (0.5 + random()));
        if (state.stopping) break;
        if (random() < options.replyShare) {
          const written = await recorder.action("reply", () => postToExistingThread(session, forumId, random));
          if (written) writes.replies.push(written);
        } else {
          const written = await recorder.action("new thread", () => createNewThread(session, forumId, random));
          if (written) writes.threads.set(written.threadId, written);
        }
      }
    } finally {
      recorder.activeUsers--;
    }
  };
  await Promise.all(Array.from({ length: to - from }, (_, i) => user(from + i)));
  return writes;
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

// ---------------------------------------------------------------------------------------------
// Nothing lost: every write the run counted is on the forum as written, and the counts agree
// ---------------------------------------------------------------------------------------------

interface Snapshot {
  postCounts: Map<number, number>;
  statedThreads: number;
}

async function snapshot(session: Session, forumId: number): Promise<Snapshot> {
  return {
    postCounts: await getPostCounts(session, forumId),
    statedThreads: await getStatedNumThreads(session, forumId),
  };
}

/**
 * Reads back, through the adapter, every thread the run wrote to, and finds each of its own writes by
 * content (title, body, author), so that instances sharing a forum each check only their own. The
 * forum's counts must have moved by what the run wrote: exactly when it is the only writer, by at
 * least that otherwise (nothing is ever deleted, so fewer is always a loss).
 */
async function checkNothingLost(
  session: Session,
  forumId: number,
  before: Snapshot,
  writes: Writes,
  counts: NothingLost["counts"],
  failedWrites: number,
): Promise<NothingLost> {
  const after = await snapshot(session, forumId);
  const missingThreads = [...writes.threads.keys()].filter((id) => !after.postCounts.has(id));
  const missingReplies: NothingLost["missingReplies"] = [];
  const threadIds = [...new Set([...writes.threads.keys(), ...writes.replies.map((r) => r.threadId)])];
  const repliesTo = new Map<number, Written[]>();
  for (const reply of writes.replies) repliesTo.set(reply.threadId, [...repliesTo.get(reply.threadId) ?? [], reply]);
  const readers = Array.from({ length: Math.min(20, threadIds.length) }, async () => {
    for (let id = threadIds.pop(); id !== undefined; id = threadIds.pop()) {
      const thread = await readThread(session, id);
      const created = writes.threads.get(id);
      const first = thread.posts[0];
      if (
        created && (thread.title !== created.title || first?.body !== created.body || first.author !== created.author)
      ) {
        if (!missingThreads.includes(id)) missingThreads.push(id);
      }
      const posts = new Map(thread.posts.map((p) => [p.id, p]));
      for (const reply of repliesTo.get(id) ?? []) {
        const shown = posts.get(reply.postId!);
        if (shown?.body !== reply.body || shown.author !== reply.author) {
          missingReplies.push({ threadId: id, postId: reply.postId! });
        }
      }
    }
  });
  await Promise.all(readers);
  const disagrees = (expected: number, shown: number) => shown < expected || (counts === "exact" && shown > expected);
  const countDifferences: NothingLost["countDifferences"] = [];
  for (const [threadId, shown] of after.postCounts) {
    const expected = (before.postCounts.get(threadId) ?? 0) + (repliesTo.get(threadId)?.length ?? 0) +
      (writes.threads.has(threadId) ? 1 : 0);
    if (disagrees(expected, shown)) countDifferences.push({ threadId, expected, shown });
  }
  const statedThreads = { expected: before.statedThreads + writes.threads.size, shown: after.statedThreads };
  const ok = missingThreads.length === 0 && missingReplies.length === 0 && countDifferences.length === 0 &&
    !disagrees(statedThreads.expected, statedThreads.shown);
  return {
    checked: true,
    ok,
    counts,
    threadsCreated: writes.threads.size,
    repliesPosted: writes.replies.length,
    missingThreads: missingThreads.slice(0, 20),
    missingReplies: missingReplies.slice(0, 20),
    countDifferences: countDifferences.slice(0, 20),
    statedThreads,
    note: !ok && failedWrites > 0
      ? `${failedWrites} writes failed; one that failed after the server stored it (a timeout, say) shows here as a difference`
      : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// The run: start what is needed, run the users in worker threads, check, measure
// ---------------------------------------------------------------------------------------------

/** Where a run's words go, and what can stop it. */
export interface RunIO {
  log?: (line: string) => void;
  /** A progress line, every `progressSeconds`. */
  progress?: (line: string) => void;
  progressSeconds?: number;
  /** Aborted: start no new actions, let those in flight finish, check and report (an interrupt). */
  signal?: AbortSignal;
}

/**
 * One run. This thread starts the forum if none is given, samples PostgreSQL, and keeps time; the
 * users run in `--workers` worker threads (a share each), which also read the forum before and check
 * it after, so that this thread never parses a page and is always free to answer a signal: a
 * terminal's Ctrl-C, and the wrappers that relay it (tsx's CLI sends SIGKILL to a child that has not
 * acknowledged a relayed SIGINT within 30 ms, which a busy generator never does).
 */
export async function runLoad(options: LoadOptions, io: RunIO = {}): Promise<Results> {
  const log = io.log ?? (() => {});
  const embedded = options.url ? null : await spawnForum(options.pool);
  const url = options.url ?? embedded!.url;
  const recorder = new Recorder();
  const me = instanceOf(options);
  const users = me.to - me.from;
  const runOptions = { ...options, instance: me.name };
  const workers = Array.from(
    { length: Math.min(options.workers ?? defaultWorkers(options.url), users) },
    () => new UserThread(),
  );
  let sampler: PgSampler | null = null;
  let interrupted = false;
  let stoppedEarly: string | undefined;
  const stop = () => workers.forEach((w) => w.stop());
  io.signal?.addEventListener("abort", () => {
    interrupted = true;
    stop();
  });
  let stoppingForum = false;
  void embedded?.ended.then((how) => {
    if (stoppingForum) return;
    stoppedEarly ??= `the reference forum's process ended (${how})`;
    stop();
    log(`error: ${stoppedEarly}: no new actions`);
  });
  try {
    const databaseUrl = options.databaseUrl ?? embedded?.databaseUrl;
    sampler = databaseUrl
      ? await samplePostgres(databaseUrl, recorder).catch((error) => {
        log(`warning: cannot sample PostgreSQL: ${error.message}`);
        return null;
      })
      : null;
    const [lead] = workers;
    const { forumId, before } = await lead.ask<Prepared>({ prepare: { url, options } });
    const share = options.instances === undefined ? "" : `, users ${me.from}-${me.to - 1} of ${options.users}`;
    log(
      `Loading ${redactUrl(url)} with ${users} users x ${options.actions} actions (seed ${options.seed}, ` +
        `instance ${me.name}${share}${workers.length > 1 ? `, ${workers.length} worker threads` : ""})`,
    );
    if (options.startAt !== undefined) await untilStart(options.startAt, log, io.signal);

    const started = Date.now();
    const cap = options.maxDuration ? setTimeout(stop, options.maxDuration * 1000) : undefined;
    const window = io.progressSeconds ?? 10;
    const progress = setInterval(() => {
      recorder.second();
      const now = sumProgress(workers.map((w) => w.progress), recorder.pgBackends);
      io.progress?.(progressLine(now, options, started));
    }, window * 1000);
    const cpuBefore = process.cpuUsage();
    const machineBusy = watchMachine();
    const shares = await Promise.all(workers.map((worker, k) =>
      worker.ask<Share>({
        run: {
          url,
          options: runOptions,
          forumId,
          from: me.from + shareStart(users, workers.length, k),
          to: me.from + shareStart(users, workers.length, k + 1),
          window,
        },
      })
    ));
    const endedAt = Date.now();
    const cpu = process.cpuUsage(cpuBefore);
    clearInterval(progress);
    clearTimeout(cap);
    await sampler?.stop();

    log("Checking that nothing was lost");
    const writes: Writes = {
      threads: new Map(shares.flatMap((share) => share.writes.threads)),
      replies: shares.flatMap((share) => share.writes.replies),
    };
    const counts = embedded ? "exact" : "at least";
    const combined = combine(shares.map((share) => share.results));
    const failedWrites = ["reply", "new thread"].reduce((n, name) => n + (combined.metrics.get(name)?.errors ?? 0), 0);
    const nothingLost = await lead.ask<NothingLost>({
      check: { url, options, forumId, before, writes: { threads: [...writes.threads], replies: writes.replies } },
      counts,
      failedWrites,
    }).catch((error): NothingLost => ({
      checked: false,
      ok: false,
      counts,
      threadsCreated: writes.threads.size,
      repliesPosted: writes.replies.length,
      missingThreads: [],
      missingReplies: [],
      countDifferences: [],
      statedThreads: { expected: before.statedThreads + writes.threads.size, shown: null },
      note: `the check could not run: ${error.message}`,
    }));

    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const coreShare = endedAt > started ? cpuSeconds / ((endedAt - started) / 1000) : 0;
    const loops = shares.map((share) => share.loop);
    const { merge: _, json: __, report: ___, ...settings } = options;
    return buildResults({
      ...combined,
      settings: { ...settings, users, url, embedded: embedded !== null },
      instances: [me.name],
      instanceDetails: [{
        instance: me.name,
        ...(options.instances === undefined
          ? {}
          : { run: options.instance, index: options.index, of: options.instances }),
        ...(options.startAt === undefined
          ? {}
          : { plannedStart: options.startAt, startSkewMs: started - options.startAt }),
      }],
      startedAt: started,
      endedAt,
      interrupted,
      stoppedEarly,
      timeline: mergeTimelines([combined.timeline, recorder.timeline()]),
      postgres: {
        sampled: sampler !== null,
        peakBackends: sampler?.peak ?? 0,
        maxConnections: sampler?.maxConnections ?? 0,
        pool: embedded ? options.pool : undefined,
        error: sampler?.error,
      },
      generator: {
        cpuSeconds,
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
      nothingLost,
    }, options);
  } finally {
    workers.forEach((w) => w.end());
    await sampler?.stop();
    stoppingForum = true;
    await embedded?.stop();
  }
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
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, wait);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Beside the embedded forum, one worker thread (the forum and PostgreSQL need the other cores); else one per core. */
function defaultWorkers(url: string | undefined): number {
  return url ? availableParallelism() : 1;
}

/** Where worker `k` of `n` starts in the users' numbering: shares differ by at most one user. */
function shareStart(users: number, n: number, k: number): number {
  return Math.floor((users * k) / n);
}

// ---------------------------------------------------------------------------------------------
// Worker threads: each runs a share of the users; the first also reads the forum before and checks it after
// ---------------------------------------------------------------------------------------------

/** The forum as the lead worker found it before the run. */
interface Prepared {
  forumId: number;
  before: { postCounts: [number, number][]; statedThreads: number };
}

/** What one worker's share of the users did. */
interface Share {
  users: number;
  results: Results;
  writes: { threads: [number, Written][]; replies: Written[] };
  loop: LoopLoad;
}

/** What this thread asks a worker: read the forum before the run, run a share of the users, or check after. */
type Ask =
  | { prepare: { url: string; options: LoadOptions } }
  | { run: { url: string; options: LoadOptions; forumId: number; from: number; to: number; window: number } }
  | {
    check: { url: string; options: LoadOptions; forumId: number; before: Prepared["before"]; writes: Share["writes"] };
    counts: NothingLost["counts"];
    failedWrites: number;
  };

type Reply = { answer: unknown } | { error: string } | { progress: Progress };

// A young generation of 128 MB (V8's default is 32-64 MB) halves the garbage collector's work on the
// pages users parse: 1.83-1.92 ms of generator CPU per request against 2.24-2.40 ms, alternating, three
// rounds (bench/vs-locust.ts's scenario, 300 users x 5 actions). Deno's default is already larger.
const YOUNG_GENERATION_MB = 128;

/** One worker thread, asked one thing at a time; its latest progress is kept for the progress line. */
class UserThread {
  private readonly worker = startWorker(import.meta.url, { tierload: "load" }, {
    maxYoungGenerationSizeMb: YOUNG_GENERATION_MB,
  });
  private pending: { resolve: (answer: never) => void; reject: (error: Error) => void } | null = null;
  private ended = false;
  progress: Progress = { done: 0, failed: 0, activeUsers: 0, requestsPerSecond: 0, p99: null, pgBackends: 0 };

  constructor() {
    this.worker.on("message", (reply: Reply) => {
      if ("progress" in reply) this.progress = reply.progress;
      else if ("error" in reply) this.settle()?.reject(new Error(reply.error));
      else this.settle()?.resolve(reply.answer as never);
    });
    this.worker.on("error", (error) => this.settle()?.reject(error));
    this.worker.on("exit", (code) => {
      this.ended = true;
      this.settle()?.reject(new Error(`The load generator's thread ended (exit ${code}) without results`));
    });
  }

  ask<T>(request: Ask): Promise<T> {
    if (this.ended) return Promise.reject(new Error("The load generator's thread has ended"));
    return new Promise<T>((resolve, reject) => {
      this.pending = { resolve: resolve as (answer: never) => void, reject };
      this.worker.postMessage(request);
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

  private settle() {
    const pending = this.pending;
    this.pending = null;
    return pending;
  }
}

/** The worker's side: requests answered in turn, told to stop by a message. */
function runWorker(): void {
  const post = (reply: Reply) => parentPort!.postMessage(reply);
  const state: RunState = { stopping: false };
  parentPort!.on("message", async (request: Ask | "stop") => {
    if (request === "stop") {
      state.stopping = true;
      return;
    }
    try {
      post({ answer: await answer(request, state, (progress) => post({ progress })) });
    } catch (error) {
      post({ error: error instanceof Error ? error.message : String(error) });
    }
  });
}

async function answer(request: Ask, state: RunState, progress: (p: Progress) => void): Promise<unknown> {
  if ("prepare" in request) {
    const { url, options } = request.prepare;
    const observer = visit(url, { timeoutMs: options.timeout });
    const forumId = await getForumId(observer, options.forum);
    const before = await snapshot(observer, forumId);
    return { forumId, before: { ...before, postCounts: [...before.postCounts] } } satisfies Prepared;
  }
  if ("run" in request) {
    const { url, options, forumId, from, to, window } = request.run;
    const recorder = new Recorder();
    const ticks = setInterval(() => progress(progressOf(recorder, window)), 1000);
    const lag = watchEventLoop();
    const started = Date.now();
    const writes = await runUsers(options, url, forumId, recorder, state, from, to);
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
      nothingLost: null,
    }, options);
    return {
      users: to - from,
      results,
      writes: { threads: [...writes.threads], replies: writes.replies },
      loop,
    } satisfies Share;
  }
  const { url, options, forumId, before, writes } = request.check;
  const observer = visit(url, { timeoutMs: options.timeout });
  return await checkNothingLost(
    observer,
    forumId,
    { postCounts: new Map(before.postCounts), statedThreads: before.statedThreads },
    { threads: new Map(writes.threads), replies: writes.replies },
    request.counts,
    request.failedWrites,
  );
}

// ---------------------------------------------------------------------------------------------
// Beyond one machine: the run as a Kubernetes Indexed Job
// ---------------------------------------------------------------------------------------------

/**
 * The Job for these options: --instances pods, each this script with the same arguments, its share of
 * --users taken from its index, all beginning at the moment --start-in seconds from now, each printing
 * its results as its last line of output (--json -) for the merge to read from the logs.
 */
function kubernetesJob(options: LoadOptions): string {
  const instances = options.instances!;
  const args = [
    ...["--url", options.url!, "--users", options.users, "--actions", options.actions],
    ...["--reply-share", options.replyShare, "--forum", options.forum, "--seed", options.seed],
    ...["--instance", options.instance, "--instances", instances],
    ...["--start-at", new Date(Date.now() + options.startIn * 1000).toISOString()],
    ...["--ramp-up", options.rampUp, "--think-time", options.thinkTime, "--timeout", options.timeout],
    ...(options.maxDuration === undefined ? [] : ["--max-duration", options.maxDuration]),
    ...(options.maxErrorRate === undefined ? [] : ["--max-error-rate", options.maxErrorRate]),
    ...(options.maxP99 === undefined ? [] : ["--max-p99", options.maxP99]),
    ...(options.databaseUrl === undefined ? [] : ["--database-url", options.databaseUrl]),
    ...["--workers", options.workers ?? 1, "--json", "-"],
  ].map(String);
  const perPod = Math.ceil(options.users / instances);
  return jobManifest({
    run: options.instance,
    instances,
    image: options.image,
    args,
    cpu: String(options.workers ?? 1),
    memory: `${POD_MEMORY_MB.base + Math.ceil((perPod / 1000) * POD_MEMORY_MB.per1000Users)}Mi`,
  });
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

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

export async function main(argv = process.argv): Promise<void> {
  const options = parseOptions(argv);
  const log = (line: string) => process.stderr.write(line + "\n");
  let results: Results;
  if (options.kubernetesJob) {
    console.log(kubernetesJob(options));
    return;
  }
  if (options.merge) {
    results = merge(options.merge.flatMap((source) => readResultsFrom(source)), options);
  } else {
    const refusal = checkOpenFiles(options.users);
    if (refusal) throw new Error(refusal);
    results = await runWithSignals(options, log);
  }
  // With the JSON on stdout, the report a person reads goes to stderr.
  (options.json === "-" ? log : console.log)(formatReport(results));
  if (options.json === "-") console.log(JSON.stringify(results));
  else if (options.json) {
    writeFileSync(options.json, JSON.stringify(results, null, 1));
    log(`Results written to ${options.json}`);
  }
  if (options.report) {
    writeFileSync(options.report, renderReport(results));
    log(`Report written to ${options.report}`);
  }
  process.exitCode = results.interrupted ? EXIT.interrupted : results.verdict.ok ? EXIT.ok : EXIT.failed;
}

/**
 * The run, with a terminal's words: one SIGINT or SIGTERM stops new actions; a second, half a second or
 * more later, quits at once (the forum stops when our pipe to it closes). Progress is a line fitted to a
 * terminal's width, or a line of stats every 10 s elsewhere.
 */
async function runWithSignals(options: LoadOptions, log: (line: string) => void): Promise<Results> {
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
  const width = () => process.stderr.columns || 80;
  try {
    return await runLoad(options, {
      log: (line) => log(`${tty ? "\r\x1b[K" : ""}${line}`),
      progress: (line) => {
        if (!tty) log(line);
        else process.stderr.write(`\r\x1b[K${line.length < width() ? line : line.slice(0, width() - 2) + "…"}`);
      },
      progressSeconds: tty ? 1 : 10,
      signal: interrupt.signal,
    });
  } finally {
    if (tty) process.stderr.write("\r\x1b[K");
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

if (!isMainThread && workerData?.tierload === "load") void runWorker();
else if (isMain(import.meta)) runMain(main);
