/**
 * The load test: the seed's loop with every user at once. Each of N users signs up, logs in, then
 * acts M times (9 in 10 a reply to an existing thread, otherwise a new thread), through the same
 * adapter as the functional suite (lib/forum.ts). With no --url it starts the reference forum in its
 * own process, with a pool of 1000 PostgreSQL connections, and watches PostgreSQL hold them.
 *
 *   npx tsx scripts/load.ts                      # or: deno run -A scripts/load.ts (npm start, deno task start)
 *   npx tsx scripts/load.ts --users 200 --actions 5 --json run.json --max-error-rate 0.01 --max-p99 2000
 *   npx tsx scripts/load.ts --merge a.json b.json --json all.json
 *
 * Progress goes to stderr (live on a terminal), the report to stdout, the full results to --json.
 */
import { writeFileSync } from "node:fs";
import { cpus, platform } from "node:os";
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
import { openFileLimits, startWorker } from "../lib/process.ts";
import { formatReport, progressLine, renderReport } from "../lib/report.ts";
import {
  buildResults,
  BUSY_SHARE,
  merge,
  type NothingLost,
  type PgSampler,
  readResults,
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
  merge?: string[];
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
    .option("--merge <files...>", "merge the JSON results of several instances instead of running")
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
  for (const [flag, path] of [["--json", options.json], ["--report", options.report]]) {
    const problem = path === "-" && flag === "--json" ? null : unwritable(path);
    if (problem) program.error(`error: ${flag} ${problem}`, { exitCode: EXIT.usage });
  }
  return options;
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
  interrupted: boolean;
  stoppedEarly?: string;
}

async function runUsers(
  options: LoadOptions,
  url: string,
  forumId: number,
  recorder: Recorder,
  state: RunState,
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
  await Promise.all(Array.from({ length: options.users }, (_, i) => user(i)));
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
// The run: start what is needed, run the users, check, measure
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

/** One run, in this thread: start the forum if none is given, run the users, check that nothing was lost. */
export async function runLoad(options: LoadOptions, io: RunIO = {}): Promise<Results> {
  const log = io.log ?? (() => {});
  const embedded = options.url ? null : await spawnForum(options.pool);
  const url = options.url ?? embedded!.url;
  const recorder = new Recorder();
  const state: RunState = { stopping: false, interrupted: false };
  let sampler: PgSampler | null = null;
  io.signal?.addEventListener("abort", () => state.stopping = state.interrupted = true);
  let stoppingForum = false;
  void embedded?.ended.then((how) => {
    if (stoppingForum) return;
    state.stopping = true;
    state.stoppedEarly ??= `the reference forum's process ended (${how})`;
    log(`error: ${state.stoppedEarly}: no new actions`);
  });
  try {
    const databaseUrl = options.databaseUrl ?? embedded?.databaseUrl;
    sampler = databaseUrl
      ? await samplePostgres(databaseUrl, recorder).catch((error) => {
        log(`warning: cannot sample PostgreSQL: ${error.message}`);
        return null;
      })
      : null;
    const observer = visit(url, { timeoutMs: options.timeout });
    const forumId = await getForumId(observer, options.forum);
    const before = await snapshot(observer, forumId);
    log(
      `Loading ${
        redactUrl(url)
      } with ${options.users} users x ${options.actions} actions (seed ${options.seed}, instance ${options.instance})`,
    );

    const started = Date.now();
    const cap = options.maxDuration ? setTimeout(() => state.stopping = true, options.maxDuration * 1000) : undefined;
    const progress = setInterval(() => {
      recorder.second();
      io.progress?.(progressLine(recorder, options, started, io.progressSeconds ?? 10));
    }, (io.progressSeconds ?? 10) * 1000);
    const lag = watchEventLoop();
    const cpuBefore = process.cpuUsage();
    const machineBusy = watchMachine();
    const writes = await runUsers(options, url, forumId, recorder, state);
    const endedAt = Date.now();
    const cpu = process.cpuUsage(cpuBefore);
    const eventLoop = lag.stop();
    clearInterval(progress);
    clearTimeout(cap);
    await sampler?.stop();

    log("Checking that nothing was lost");
    const counts = embedded ? "exact" : "at least";
    const failedWrites = ["reply", "new thread"].reduce((n, name) => n + (recorder.metrics.get(name)?.errors ?? 0), 0);
    const nothingLost = await checkNothingLost(observer, forumId, before, writes, counts, failedWrites).catch(
      (error): NothingLost => ({
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
      }),
    );

    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const coreShare = endedAt > started ? cpuSeconds / ((endedAt - started) / 1000) : 0;
    const { merge: _, json: __, report: ___, ...settings } = options;
    return buildResults({
      settings: { ...settings, url, embedded: embedded !== null },
      instances: [options.instance],
      startedAt: started,
      endedAt,
      interrupted: state.interrupted,
      stoppedEarly: state.stoppedEarly,
      metrics: recorder.metrics,
      timeline: recorder.timeline(),
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
        eventLoopLagP99Ms: eventLoop.p99Ms,
        eventLoopLagMaxMs: eventLoop.maxMs,
        // JavaScript runs on one core: near all of it means the generator was the limit.
        saturated: coreShare > BUSY_SHARE,
        cores: cpus().length,
        machineBusyShare: machineBusy(),
      },
      nothingLost,
    }, options);
  } finally {
    await sampler?.stop();
    stoppingForum = true;
    await embedded?.stop();
  }
}

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
  if (options.merge) {
    results = merge(options.merge.map((file) => readResults(file)), options);
  } else {
    const refusal = checkOpenFiles(options.users);
    if (refusal) throw new Error(refusal);
    results = await runInWorker(options, log);
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
 * Runs the load in a worker thread, so that this thread is always free to answer a signal: a terminal's
 * Ctrl-C, and the wrappers that relay it (tsx's CLI sends SIGKILL to a child that has not acknowledged a
 * relayed SIGINT within 30 ms, which a busy generator never does). One SIGINT or SIGTERM stops new
 * actions; a second, half a second or more later, quits at once (the forum stops when our pipe to it
 * closes). Progress is a line fitted to a terminal's width, or a line of stats every 10 s elsewhere.
 */
function runInWorker(options: LoadOptions, log: (line: string) => void): Promise<Results> {
  const tty = Boolean(process.stderr.isTTY);
  const worker = startWorker(import.meta.url, { tierload: "load", options, progressSeconds: tty ? 1 : 10 });
  let interruptedAt = 0;
  const onSignal = (signal: string) => {
    if (interruptedAt && Date.now() - interruptedAt > 500) {
      log(`\n${signal} again: quitting now`);
      process.exit(EXIT.interrupted);
    }
    if (interruptedAt) return;
    interruptedAt = Date.now();
    worker.postMessage("stop");
    log(`${tty ? "\r\x1b[K" : ""}${signal}: no new actions; finishing those in flight (Ctrl-C again to quit now)`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const width = () => process.stderr.columns || 80;
  return new Promise<Results>((resolve, reject) => {
    worker.on("message", (message: WorkerMessage) => {
      if ("log" in message) log(`${tty ? "\r\x1b[K" : ""}${message.log}`);
      else if ("progress" in message) {
        const line = message.progress;
        if (!tty) log(line);
        else process.stderr.write(`\r\x1b[K${line.length < width() ? line : line.slice(0, width() - 2) + "…"}`);
      } else if ("error" in message) reject(new Error(message.error));
      else resolve(message.results);
    });
    worker.on("error", reject);
    worker.on("exit", (code) => reject(new Error(`The load generator's thread ended (exit ${code}) without results`)));
  }).finally(() => {
    void worker.terminate();
    if (tty) process.stderr.write("\r\x1b[K");
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  });
}

type WorkerMessage = { log: string } | { progress: string } | { error: string } | { results: Results };

/** The worker's side: the run, told to stop by a message, its words and its results posted back. */
async function runWorker(): Promise<void> {
  const post = (message: WorkerMessage) => parentPort!.postMessage(message);
  const interrupt = new AbortController();
  parentPort!.on("message", (message) => message === "stop" && interrupt.abort());
  try {
    const results = await runLoad(workerData.options, {
      log: (line) => post({ log: line }),
      progress: (line) => post({ progress: line }),
      progressSeconds: workerData.progressSeconds,
      signal: interrupt.signal,
    });
    post({ results });
  } catch (error) {
    post({ error: error instanceof Error ? error.message : String(error) });
  }
}

if (!isMainThread && workerData?.tierload === "load") void runWorker();
else if (isMain(import.meta)) runMain(main);
