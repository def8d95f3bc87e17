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
import { Command } from "commander";
import { integer, isMain, number, runMain } from "../lib/cli.ts";
import {
  createNewThread,
  getForumId,
  getPostCounts,
  getPosts,
  getStatedNumThreads,
  login,
  postToExistingThread,
  type Session,
  signup,
  visit,
  type Written,
} from "../lib/forum.ts";
import { openFileLimits } from "../lib/process.ts";
import { formatReport, renderReport } from "../lib/report.ts";
import {
  buildResults,
  BUSY_SHARE,
  merge,
  type NothingLost,
  type PgSampler,
  readResults,
  Recorder,
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
  return new Command("load")
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
    .option("--json <file>", "write the full results, histograms included, to this file")
    .option("--report <file>", "write a self-contained HTML report with charts (with --merge: from saved JSON)")
    .option("--max-error-rate <fraction>", "fail (exit 1) when more than this share of actions fail", number(0, 1))
    .option("--max-p99 <ms>", "fail (exit 1) when any action's p99 latency exceeds this", number(0))
    .option("--merge <files...>", "merge the JSON results of several instances instead of running")
    .addHelpText(
      "after",
      `
Exit status: 0 when the run met its thresholds and nothing was lost, 1 otherwise,
2 for a usage error, 130 when interrupted (Ctrl-C prints what ran and writes the JSON).`,
    )
    .parse(argv)
    .opts<LoadOptions>();
}

const randomSeed = () => Math.floor(Math.random() * 2 ** 32);

// ---------------------------------------------------------------------------------------------
// The users: the seed's loop, every user at once
// ---------------------------------------------------------------------------------------------

/** What the users wrote and the run counted as a success: the threads, and the replies by thread. */
interface Writes {
  threads: Set<number>;
  replies: Map<number, number[]>;
}

interface RunState {
  /** No new actions: the time cap passed, or the run was interrupted. */
  stopping: boolean;
  interrupted: boolean;
}

async function runUsers(
  options: LoadOptions,
  url: string,
  forumId: number,
  recorder: Recorder,
  state: RunState,
): Promise<Writes> {
  const writes: Writes = { threads: new Set(), replies: new Map() };
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
          if (written) remember(writes, written);
        } else {
          const written = await recorder.action("new thread", () => createNewThread(session, forumId, random));
          if (written) writes.threads.add(written.threadId);
        }
      }
    } finally {
      recorder.activeUsers--;
    }
  };
  await Promise.all(Array.from({ length: options.users }, (_, i) => user(i)));
  return writes;
}

function remember(writes: Writes, written: Written): void {
  const list = writes.replies.get(written.threadId) ?? [];
  list.push(written.postId!);
  writes.replies.set(written.threadId, list);
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
// Nothing lost: what the run counted as written is on the forum's pages, and counts moved by that
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

async function checkNothingLost(
  session: Session,
  forumId: number,
  before: Snapshot,
  writes: Writes,
  failedWrites: number,
): Promise<NothingLost> {
  const after = await snapshot(session, forumId);
  const missingThreads = [...writes.threads].filter((id) => !after.postCounts.has(id));
  const countDifferences: NothingLost["countDifferences"] = [];
  for (const [threadId, shown] of after.postCounts) {
    const expected = (before.postCounts.get(threadId) ?? 0) + (writes.replies.get(threadId)?.length ?? 0) +
      (writes.threads.has(threadId) ? 1 : 0);
    if (shown !== expected) countDifferences.push({ threadId, expected, shown });
  }
  const missingReplies: NothingLost["missingReplies"] = [];
  const threads = [...writes.replies.keys()];
  const readers = Array.from({ length: Math.min(20, threads.length) }, async () => {
    for (let threadId = threads.pop(); threadId !== undefined; threadId = threads.pop()) {
      const present = new Set((await getPosts(session, threadId)).map((p) => p.id));
      for (const postId of writes.replies.get(threadId)!) {
        if (!present.has(postId)) missingReplies.push({ threadId, postId });
      }
    }
  });
  await Promise.all(readers);
  const statedThreads = { expected: before.statedThreads + writes.threads.size, shown: after.statedThreads };
  const ok = missingThreads.length === 0 && missingReplies.length === 0 && countDifferences.length === 0 &&
    statedThreads.expected === statedThreads.shown;
  return {
    ok,
    threadsCreated: writes.threads.size,
    repliesPosted: repliesIn(writes),
    missingThreads,
    missingReplies: missingReplies.slice(0, 20),
    countDifferences: countDifferences.slice(0, 20),
    statedThreads,
    note: !ok && failedWrites > 0
      ? `${failedWrites} writes failed; one that failed after the server stored it (a timeout, say) shows here as a difference`
      : undefined,
  };
}

const repliesIn = (writes: Writes) => [...writes.replies.values()].reduce((n, list) => n + list.length, 0);

// ---------------------------------------------------------------------------------------------
// The run: start what is needed, run the users, check, measure
// ---------------------------------------------------------------------------------------------

export async function runLoad(options: LoadOptions, log: (line: string) => void = () => {}): Promise<Results> {
  const embedded = options.url ? null : await spawnForum(options.pool);
  const url = options.url ?? embedded!.url;
  const recorder = new Recorder();
  const state: RunState = { stopping: false, interrupted: false };
  let sampler: PgSampler | null = null;
  let signals = 0;
  const onSignal = () => {
    // One handler counts: a listener added while a signal is dispatched runs for it too under Deno.
    if (++signals > 1) process.exit(130);
    state.stopping = state.interrupted = true;
    log("Interrupted: no new actions; finishing those in flight (Ctrl-C again to quit now)");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
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
      `Loading ${url} with ${options.users} users x ${options.actions} actions (seed ${options.seed}, instance ${options.instance})`,
    );

    const started = Date.now();
    const cap = options.maxDuration ? setTimeout(() => state.stopping = true, options.maxDuration * 1000) : undefined;
    const progress = setInterval(() => {
      recorder.second();
      if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${progressLine(recorder, options, started)}`);
    }, 1000);
    const lag = watchEventLoop();
    const cpuBefore = process.cpuUsage();
    const machineBusy = watchMachine();
    const writes = await runUsers(options, url, forumId, recorder, state);
    const endedAt = Date.now();
    const cpu = process.cpuUsage(cpuBefore);
    const eventLoop = lag.stop();
    clearInterval(progress);
    clearTimeout(cap);
    if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
    await sampler?.stop();

    const failedWrites = ["reply", "new thread"].reduce((n, name) => n + (recorder.metrics.get(name)?.errors ?? 0), 0);
    log("Checking that nothing was lost");
    const nothingLost = await checkNothingLost(observer, forumId, before, writes, failedWrites).catch(
      (error): NothingLost => ({
        ok: false,
        threadsCreated: writes.threads.size,
        repliesPosted: repliesIn(writes),
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
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await sampler?.stop();
    await embedded?.stop();
  }
}

function progressLine(recorder: Recorder, options: LoadOptions, started: number): string {
  const seconds = (Date.now() - started) / 1000;
  const last = recorder.seconds.get(Math.floor(Date.now() / 1000) - 1);
  const p99 = last ? (last.histogram.getValueAtPercentile(99) / 1000).toFixed(0) : "-";
  return `[${seconds.toFixed(0)}s] users ${recorder.activeUsers}/${options.users} active | ${
    last?.requests ?? 0
  } req/s | ` +
    `errors ${recorder.errors("action")} | p99 ${p99} ms | PostgreSQL backends ${recorder.pgBackends}`;
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
    if (refusal) {
      process.stderr.write(`error: ${refusal}\n`);
      process.exitCode = 1;
      return;
    }
    results = await runLoad(options, log);
  }
  console.log(formatReport(results));
  if (options.json) {
    writeFileSync(options.json, JSON.stringify(results, null, 1));
    log(`Results written to ${options.json}`);
  }
  if (options.report) {
    writeFileSync(options.report, renderReport(results));
    log(`Report written to ${options.report}`);
  }
  process.exitCode = results.interrupted ? 130 : results.verdict.ok ? 0 : 1;
}

if (isMain(import.meta)) runMain(main);
