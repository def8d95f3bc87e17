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
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, platform } from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Command, InvalidArgumentError } from "commander";
import * as hdr from "hdr-histogram-js";
import pg from "pg";
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
  StepError,
  visit,
  type Written,
} from "../lib/forum.ts";
import type { RequestRecord } from "../lib/fetchData.ts";
import { renderReport } from "./load-report.ts";

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

const number = (min: number, max = Infinity, integer = false) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new InvalidArgumentError(
      `expected ${integer ? "an integer" : "a number"} from ${min}${max < Infinity ? ` to ${max}` : " up"}`,
    );
  }
  return n;
};

export function parseOptions(argv: string[]): LoadOptions {
  return new Command("load")
    .description("Load-test a forum with simultaneous users who sign up, log in and post, through lib/forum.ts.")
    .option("-u, --users <n>", "simultaneous users", number(1, 100_000, true), 1000)
    .option("-a, --actions <n>", "actions per user", number(0, 1_000_000, true), 10)
    .option("--reply-share <fraction>", "share of actions that reply to an existing thread", number(0, 1), 0.9)
    .option(
      "--instance <id>",
      "names users load_user_<id>_<i>, so several runs can share a forum",
      Date.now().toString(36),
    )
    .option("--ramp-up <seconds>", "spread the users' starts over this long", number(0), 0)
    .option("--think-time <ms>", "mean pause between a user's actions (uniform, 0.5x to 1.5x)", number(0), 0)
    .option("--max-duration <seconds>", "stop starting actions after this long", number(1))
    .option(
      "--seed <n>",
      "random seed, for a run that picks the same threads",
      number(0, 2 ** 32 - 1, true),
      Math.floor(Math.random() * 2 ** 32),
    )
    .option("--url <url>", "the forum to load (default: start the reference forum in its own process)")
    .option("--database-url <url>", "PostgreSQL to sample for client backends (automatic for the reference forum)")
    .option("--forum <name>", "the forum whose threads users reply to and start", "Other")
    .option("--pool <n>", "the reference forum's PostgreSQL pool", number(1, 10_000, true), 1000)
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

// ---------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------

/** Latencies in microseconds, up to an hour, to three significant digits. */
function histogram(packed = false) {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: packed ? 2 : 3,
    bitBucketSize: packed ? "packed" : 32,
  });
}
type Histogram = ReturnType<typeof histogram>;

export interface Failure {
  step: string;
  message: string;
  url?: string;
  status?: number;
  excerpt?: string;
}

interface Metric {
  kind: "action" | "page";
  count: number;
  errors: number;
  histogram: Histogram;
  failures: Failure[];
}

interface Second {
  requests: number;
  errors: number;
  histogram: Histogram;
  /** Latencies of the actions (signup, reply, ...) that ended in this second. */
  actions: Map<string, Histogram>;
  activeUsers: number;
  pgBackends: number;
}

const FAILURES_KEPT = 5;

/** Everything a run measures, as it happens. */
class Recorder {
  readonly metrics = new Map<string, Metric>();
  readonly seconds = new Map<number, Second>();
  activeUsers = 0;
  pgBackends = 0;

  metric(name: string, kind: Metric["kind"]): Metric {
    let metric = this.metrics.get(name);
    if (!metric) this.metrics.set(name, metric = { kind, count: 0, errors: 0, histogram: histogram(), failures: [] });
    return metric;
  }

  second(): Second {
    const now = Math.floor(Date.now() / 1000);
    let second = this.seconds.get(now);
    if (!second) {
      second = {
        requests: 0,
        errors: 0,
        histogram: histogram(true),
        actions: new Map(),
        activeUsers: 0,
        pgBackends: 0,
      };
      this.seconds.set(now, second);
    }
    second.activeUsers = Math.max(second.activeUsers, this.activeUsers);
    second.pgBackends = Math.max(second.pgBackends, this.pgBackends);
    return second;
  }

  /** A page load, as tier 3 reports it: named by method and path, an error when not 2xx/3xx. */
  request = (record: RequestRecord, baseUrl: string): void => {
    const path = record.url.startsWith(baseUrl)
      ? record.url.slice(baseUrl.length).split(/[?#]/)[0]
      : new URL(record.url).pathname;
    const failed = record.error !== undefined || record.status >= 400;
    this.add(`${record.method} /${path}`, "page", record.ms, failed ? pageFailure(record) : undefined);
    const second = this.second();
    second.requests++;
    if (failed) second.errors++;
    second.histogram.recordValue(Math.max(1, Math.round(record.ms * 1000)));
  };

  add(name: string, kind: Metric["kind"], ms: number, failure?: Failure): void {
    const metric = this.metric(name, kind);
    const us = Math.max(1, Math.round(ms * 1000));
    metric.count++;
    metric.histogram.recordValue(us);
    if (kind === "action") {
      const actions = this.second().actions;
      if (!actions.has(name)) actions.set(name, histogram(true));
      actions.get(name)!.recordValue(us);
    }
    if (failure) {
      metric.errors++;
      if (metric.failures.length < FAILURES_KEPT) metric.failures.push(failure);
    }
  }

  /** Times an adapter call as the action `name`; a failure is counted and kept, never thrown. */
  async action<T>(name: string, call: () => Promise<T>): Promise<T | undefined> {
    const started = performance.now();
    try {
      const result = await call();
      this.add(name, "action", performance.now() - started);
      return result;
    } catch (error) {
      this.add(name, "action", performance.now() - started, actionFailure(error));
      return undefined;
    }
  }
}

function pageFailure(record: RequestRecord): Failure {
  return {
    step: `${record.method} ${record.url}`,
    message: record.error?.message ?? `answered ${record.status}`,
    url: record.url,
    status: record.status || undefined,
  };
}

function actionFailure(error: unknown): Failure {
  if (error instanceof StepError) {
    return { step: error.step, message: error.message, url: error.url, status: error.status, excerpt: error.excerpt };
  }
  return { step: "(unknown)", message: error instanceof Error ? error.message : String(error) };
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
// The run: the seed's loop, every user at once
// ---------------------------------------------------------------------------------------------

interface Writes {
  threads: Set<number>;
  replies: Map<number, number[]>;
}

interface RunState {
  /** No new actions: the time cap passed, or the run was interrupted. */
  stopping: boolean;
  interrupted: boolean;
  started: number;
}

async function runUsers(
  options: LoadOptions,
  url: string,
  forumId: number,
  recorder: Recorder,
  state: RunState,
): Promise<Writes> {
  const writes: Writes = { threads: new Set(), replies: new Map() };
  const sessionOptions = { timeoutMs: options.timeout, onRequest: (r: RequestRecord) => recorder.request(r, url) };
  const password = "load-password";

  const user = async (i: number) => {
    const random = seededRandom(options.seed ^ Math.imul(i + 1, 0x9e3779b1));
    if (options.rampUp > 0) await sleep((i / options.users) * options.rampUp * 1000);
    if (state.stopping) return;
    recorder.activeUsers++;
    try {
      const username = `load_user_${options.instance}_${i}`;
      const signedUp = await recorder.action(
        "signup",
        () => signup(url, username, password, `${username}@example.org`, sessionOptions),
      );
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

// ---------------------------------------------------------------------------------------------
// Nothing lost: what the run counted as written is on the forum's pages, and counts moved by that
// ---------------------------------------------------------------------------------------------

export interface NothingLost {
  ok: boolean;
  threadsCreated: number;
  repliesPosted: number;
  missingThreads: number[];
  missingReplies: { threadId: number; postId: number }[];
  countDifferences: { threadId: number; expected: number; shown: number }[];
  /** The forum's stated thread count after the run; shown is null when it could not be read. */
  statedThreads: { expected: number; shown: number | null };
  note?: string;
}

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
  const repliesPosted = [...writes.replies.values()].reduce((n, list) => n + list.length, 0);
  const statedThreads = { expected: before.statedThreads + writes.threads.size, shown: after.statedThreads };
  const ok = missingThreads.length === 0 && missingReplies.length === 0 && countDifferences.length === 0 &&
    statedThreads.expected === statedThreads.shown;
  return {
    ok,
    threadsCreated: writes.threads.size,
    repliesPosted,
    missingThreads,
    missingReplies: missingReplies.slice(0, 20),
    countDifferences: countDifferences.slice(0, 20),
    statedThreads,
    note: !ok && failedWrites > 0
      ? `${failedWrites} writes failed; one that failed after the server stored it (a timeout, say) shows here as a difference`
      : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// The generator's own cost, and PostgreSQL's client backends
// ---------------------------------------------------------------------------------------------

/** Answers, when called, the share of the machine's CPU time that was busy since this call. */
function watchMachine(): () => number {
  const totals = () =>
    cpus().reduce((t, { times }) => {
      const busy = times.user + times.nice + times.sys + times.irq;
      return { busy: t.busy + busy, all: t.all + busy + times.idle };
    }, { busy: 0, all: 0 });
  const start = totals();
  return () => {
    const end = totals();
    return end.all > start.all ? (end.busy - start.busy) / (end.all - start.all) : 0;
  };
}

/** Event-loop lag: how late a 100 ms timer fires. High lag means the generator, not the app, is slow. */
function watchEventLoop(): { stop(): Histogram } {
  const lag = histogram();
  let expected = performance.now() + 100;
  const timer = setInterval(() => {
    const now = performance.now();
    lag.recordValue(Math.max(1, Math.round((now - expected) * 1000)));
    expected = now + 100;
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      return lag;
    },
  };
}

interface PgSampler {
  maxConnections: number;
  peak: number;
  error?: string;
  stop(): Promise<void>;
}

/** Counts client backends in pg_stat_activity five times a second (its own connection excluded). */
async function samplePostgres(databaseUrl: string, recorder: Recorder): Promise<PgSampler> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {});
  await client.connect();
  const sampler: PgSampler = {
    maxConnections: Number((await client.query("SHOW max_connections")).rows[0].max_connections),
    peak: 0,
    stop: async () => {
      clearInterval(timer);
      await busy;
      await client.end().catch(() => {});
    },
  };
  let busy: Promise<void> = Promise.resolve();
  let sampling = false;
  const timer = setInterval(() => {
    if (sampling) return;
    sampling = true;
    busy = client.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
      .then((result) => {
        recorder.pgBackends = result.rows[0].n;
        sampler.peak = Math.max(sampler.peak, recorder.pgBackends);
        recorder.second();
      }, (error) => {
        sampler.error ??= error.message;
      })
      .finally(() => sampling = false);
  }, 200);
  return sampler;
}

// ---------------------------------------------------------------------------------------------
// Results: the JSON, its merge, and the report
// ---------------------------------------------------------------------------------------------

export interface Summary {
  count: number;
  errors: number;
  perSecond: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface Results {
  tool: "tierload";
  format: 1;
  settings: Partial<LoadOptions> & { url: string; embedded: boolean };
  instances: string[];
  startedAt: number;
  endedAt: number;
  wallSeconds: number;
  interrupted: boolean;
  actions: Record<
    string,
    { kind: Metric["kind"]; count: number; errors: number; histogram: string; summary: Summary; failures: Failure[] }
  >;
  timeline: {
    t: number;
    requests: number;
    errors: number;
    p50: number;
    p99: number;
    max: number;
    activeUsers: number;
    pgBackends: number;
    /** Per action, the actions that ended in this second. */
    actions: Record<string, { count: number; p50: number; p99: number }>;
  }[];
  postgres: { sampled: boolean; peakBackends: number; maxConnections: number; pool?: number; error?: string };
  generator: {
    cpuSeconds: number;
    cpuMsPerRequest: number;
    coreShare: number;
    eventLoopLagP99Ms: number;
    eventLoopLagMaxMs: number;
    saturated: boolean;
    cores: number;
    /** How busy all of the machine's cores were: generator, app and database share them. */
    machineBusyShare: number;
  };
  nothingLost: NothingLost | null;
  verdict: { ok: boolean; reasons: string[] };
}

/** A percentile in ms; HDR answers a bucket's highest value, which may pass the true maximum. */
function percentile(h: Histogram, p: number): number {
  return Math.round(Math.min(h.getValueAtPercentile(p), h.maxValue)) / 1000;
}

function summarize(h: Histogram, count: number, errors: number, seconds: number): Summary {
  return {
    count,
    errors,
    perSecond: seconds > 0 ? count / seconds : 0,
    min: h.totalCount ? h.minNonZeroValue / 1000 : 0,
    p50: percentile(h, 50),
    p90: percentile(h, 90),
    p99: percentile(h, 99),
    max: h.maxValue / 1000,
    mean: Math.round(h.mean) / 1000,
  };
}

function actionsOf(metrics: Map<string, Metric>, seconds: number): Results["actions"] {
  const entries = [...metrics].map(([name, m]) =>
    [name, {
      kind: m.kind,
      count: m.count,
      errors: m.errors,
      histogram: hdr.encodeIntoCompressedBase64(m.histogram),
      summary: summarize(m.histogram, m.count, m.errors, seconds),
      failures: m.failures,
    }] as const
  );
  return Object.fromEntries(entries);
}

function timelineOf(seconds: Map<number, Second>): Results["timeline"] {
  return [...seconds].sort(([a], [b]) => a - b).map(([t, s]) => ({
    t,
    requests: s.requests,
    errors: s.errors,
    p50: percentile(s.histogram, 50),
    p99: percentile(s.histogram, 99),
    max: s.histogram.maxValue / 1000,
    activeUsers: s.activeUsers,
    pgBackends: s.pgBackends,
    actions: Object.fromEntries(
      [...s.actions].map((
        [name, h],
      ) => [name, { count: h.totalCount, p50: percentile(h, 50), p99: percentile(h, 99) }]),
    ),
  }));
}

/** The thresholds and the nothing-lost check, as a pass or fail with the reasons. */
function judge(
  results: Omit<Results, "verdict">,
  options: Pick<LoadOptions, "maxErrorRate" | "maxP99">,
): Results["verdict"] {
  const reasons: string[] = [];
  const actions = Object.entries(results.actions).filter(([, a]) => a.kind === "action");
  const attempted = actions.reduce((n, [, a]) => n + a.count, 0);
  const failed = actions.reduce((n, [, a]) => n + a.errors, 0);
  if (options.maxErrorRate !== undefined && attempted > 0 && failed / attempted > options.maxErrorRate) {
    reasons.push(`error rate ${(failed / attempted).toFixed(4)} is above --max-error-rate ${options.maxErrorRate}`);
  }
  if (options.maxP99 !== undefined) {
    for (const [name, a] of actions) {
      if (a.summary.p99 > options.maxP99) {
        reasons.push(`${name} p99 ${a.summary.p99} ms is above --max-p99 ${options.maxP99} ms`);
      }
    }
  }
  if (results.nothingLost && !results.nothingLost.ok) reasons.push("the nothing-lost check found differences");
  return { ok: reasons.length === 0, reasons };
}

/** Merges the results of several instances: histograms and counts exactly, the timeline by second. */
export function merge(all: Results[], options: Pick<LoadOptions, "maxErrorRate" | "maxP99">): Results {
  if (all.length === 0) throw new Error("Nothing to merge");
  const startedAt = Math.min(...all.map((r) => r.startedAt));
  const endedAt = Math.max(...all.map((r) => r.endedAt));
  const wallSeconds = (endedAt - startedAt) / 1000;
  const metrics = new Map<string, Metric>();
  for (const result of all) {
    for (const [name, a] of Object.entries(result.actions)) {
      let m = metrics.get(name);
      if (!m) metrics.set(name, m = { kind: a.kind, count: 0, errors: 0, histogram: histogram(), failures: [] });
      m.count += a.count;
      m.errors += a.errors;
      m.histogram.add(hdr.decodeFromCompressedBase64(a.histogram));
      m.failures.push(...a.failures.slice(0, FAILURES_KEPT - m.failures.length));
    }
  }
  const timeline = new Map<number, Results["timeline"][number]>();
  for (const point of all.flatMap((r) => r.timeline)) {
    const t = timeline.get(point.t);
    if (!t) timeline.set(point.t, { ...point, actions: { ...point.actions } });
    else {
      for (const [name, a] of Object.entries(point.actions ?? {})) {
        const mine = t.actions[name];
        t.actions[name] = mine
          ? { count: mine.count + a.count, p50: Math.max(mine.p50, a.p50), p99: Math.max(mine.p99, a.p99) }
          : { ...a };
      }
      t.requests += point.requests;
      t.errors += point.errors;
      t.activeUsers += point.activeUsers;
      // Percentiles of separate instances do not add up; the worst is kept, per second.
      t.p50 = Math.max(t.p50, point.p50);
      t.p99 = Math.max(t.p99, point.p99);
      t.max = Math.max(t.max, point.max);
      t.pgBackends = Math.max(t.pgBackends, point.pgBackends);
    }
  }
  const requests = [...metrics.values()].filter((m) => m.kind === "page").reduce((n, m) => n + m.count, 0);
  const cpuSeconds = all.reduce((n, r) => n + r.generator.cpuSeconds, 0);
  const lost = all.map((r) => r.nothingLost).filter((n): n is NothingLost => n !== null);
  const merged: Omit<Results, "verdict"> = {
    tool: "tierload",
    format: 1,
    settings: { ...all[0].settings, users: all.reduce((n, r) => n + (r.settings.users ?? 0), 0) },
    instances: all.flatMap((r) => r.instances),
    startedAt,
    endedAt,
    wallSeconds,
    interrupted: all.some((r) => r.interrupted),
    actions: actionsOf(metrics, wallSeconds),
    timeline: [...timeline.values()].sort((a, b) => a.t - b.t),
    postgres: {
      sampled: all.some((r) => r.postgres.sampled),
      peakBackends: Math.max(
        ...all.map((r) => r.postgres.peakBackends),
        ...[...timeline.values()].map((t) => t.pgBackends),
      ),
      maxConnections: Math.max(...all.map((r) => r.postgres.maxConnections)),
    },
    generator: {
      cpuSeconds,
      cpuMsPerRequest: requests ? (cpuSeconds * 1000) / requests : 0,
      coreShare: Math.max(...all.map((r) => r.generator.coreShare)),
      eventLoopLagP99Ms: Math.max(...all.map((r) => r.generator.eventLoopLagP99Ms)),
      eventLoopLagMaxMs: Math.max(...all.map((r) => r.generator.eventLoopLagMaxMs)),
      saturated: all.some((r) => r.generator.saturated),
      cores: all[0].generator.cores,
      machineBusyShare: Math.max(...all.map((r) => r.generator.machineBusyShare)),
    },
    nothingLost: lost.length === 0 ? null : {
      ok: lost.every((n) => n.ok),
      threadsCreated: lost.reduce((n, l) => n + l.threadsCreated, 0),
      repliesPosted: lost.reduce((n, l) => n + l.repliesPosted, 0),
      missingThreads: lost.flatMap((l) => l.missingThreads),
      missingReplies: lost.flatMap((l) => l.missingReplies),
      countDifferences: lost.flatMap((l) => l.countDifferences),
      statedThreads: lost[lost.length - 1].statedThreads,
      note: lost.length > 1
        ? "each instance checked its own writes; counts moved by other instances' writes too"
        : lost[0].note,
    },
  };
  return { ...merged, verdict: judge(merged, options) };
}

const pad = (text: string | number, width: number) => String(text).padStart(width);

/** The report a person reads: headline, per-action table, PostgreSQL, nothing lost, generator, verdict. */
export function formatReport(r: Results): string {
  const lines: string[] = [];
  const actions = Object.entries(r.actions).sort((
    [, a],
    [, b],
  ) => (a.kind === b.kind ? 0 : a.kind === "action" ? -1 : 1));
  const pages = actions.filter(([, a]) => a.kind === "page");
  const requests = pages.reduce((n, [, a]) => n + a.count, 0);
  const pageErrors = pages.reduce((n, [, a]) => n + a.errors, 0);
  const s = r.settings;
  lines.push(
    `tierload: ${s.users} users x ${s.actions} actions (reply share ${s.replyShare}) against ${s.url}${
      s.embedded ? " (the reference forum)" : ""
    }`,
    `${r.interrupted ? "Interrupted after" : "Ran for"} ${r.wallSeconds.toFixed(1)} s: ${requests} requests, ${
      (requests / r.wallSeconds || 0).toFixed(0)
    } per second, ${pageErrors} failed`,
    "",
    `${"".padEnd(22)}${pad("count", 7)}${pad("errors", 8)}${pad("per s", 8)}${pad("min", 9)}${pad("p50", 9)}${
      pad("p90", 9)
    }${pad("p99", 9)}${pad("max", 9)}  ms`,
  );
  for (const [name, a] of actions) {
    const m = a.summary;
    const f = (v: number) => pad(v < 10 ? v.toFixed(2) : v.toFixed(0), 9);
    lines.push(
      `${(a.kind === "page" ? "  " : "") + name}`.padEnd(22) + pad(m.count, 7) + pad(m.errors, 8) +
        pad(m.perSecond.toFixed(1), 8) +
        f(m.min) + f(m.p50) + f(m.p90) + f(m.p99) + f(m.max),
    );
  }
  lines.push("");
  const p = r.postgres;
  if (p.sampled) {
    const held = p.pool !== undefined && p.peakBackends >= p.pool
      ? `: ${s.users} users held ${p.peakBackends} connections`
      : "";
    lines.push(
      `PostgreSQL: peak ${p.peakBackends} client backends, max_connections ${p.maxConnections}${
        p.pool ? `, pool ${p.pool}` : ""
      }${held}`,
    );
  } else {lines.push(
      `PostgreSQL: not sampled${p.error ? ` (${p.error})` : " (give --database-url to sample pg_stat_activity)"}`,
    );}
  const n = r.nothingLost;
  if (n) {
    lines.push(
      n.ok
        ? `Nothing lost: all ${n.threadsCreated} threads and ${n.repliesPosted} replies the run counted are on the forum, and its counts moved by exactly that (${n.statedThreads.shown} threads)`
        : n.statedThreads.shown === null
        ? `Nothing lost: NOT CHECKED, ${n.note}`
        : `LOST OR MISCOUNTED: ${n.missingThreads.length} threads and ${n.missingReplies.length} replies missing, ${n.countDifferences.length} threads with other post counts than written, thread count ${n.statedThreads.shown} (expected ${n.statedThreads.expected})${
          n.note ? `; ${n.note}` : ""
        }`,
    );
  }
  const g = r.generator;
  lines.push(
    `Generator: ${g.cpuSeconds.toFixed(1)} CPU-s, ${g.cpuMsPerRequest.toFixed(2)} ms per request, ${
      (g.coreShare * 100).toFixed(0)
    } % of one core; event-loop lag p99 ${g.eventLoopLagP99Ms.toFixed(0)} ms, max ${
      g.eventLoopLagMaxMs.toFixed(0)
    } ms` +
      (g.saturated
        ? "\n  SATURATED: the generator itself was the bottleneck, so its latencies measure it, not the forum"
        : "") +
      `\nMachine: ${g.cores} cores, ${(g.machineBusyShare * 100).toFixed(0)} % busy` +
      (g.machineBusyShare > 0.9
        ? ": the CPUs were the limit, shared by the generator, the app and the database; latencies include waiting for a CPU"
        : ""),
  );
  const failures = actions.flatMap(([name, a]) => a.kind === "action" ? a.failures.map((f) => ({ name, ...f })) : []);
  if (failures.length) {
    lines.push("", "First failures:");
    for (const f of failures) {
      lines.push(`  ${f.name}: ${f.message}`);
      if (f.excerpt) lines.push(`    page: ${f.excerpt.slice(0, 200)}`);
    }
  }
  lines.push("", r.verdict.ok ? "Verdict: PASS" : `Verdict: FAIL: ${r.verdict.reasons.join("; ")}`);
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// The embedded forum, file descriptors, progress
// ---------------------------------------------------------------------------------------------

interface EmbeddedForum {
  url: string;
  databaseUrl: string;
  maxConnections: number;
  stop(): Promise<void>;
}

/**
 * Starts scripts/forum-server.ts in its own process (so its CPU is not the generator's), with its
 * open-file limit raised to the hard limit, and answers once it prints its URL.
 */
export async function startEmbeddedForum(pool: number): Promise<EmbeddedForum> {
  const script = fileURLToPath(new URL("./forum-server.ts", import.meta.url));
  const runtime = process.versions.deno ? [process.execPath, "run", "-A"] : [process.execPath, ...process.execArgv];
  const command = [...runtime, script, "--port", "0", "--pool", String(pool), "--json"];
  const child: ChildProcess = platform() === "win32"
    ? spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "pipe"] })
    : spawn("sh", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', "forum", ...command], {
      stdio: ["ignore", "pipe", "pipe"],
    });
  let stderr = "";
  child.stderr!.on("data", (chunk) => {
    stderr += chunk;
    for (const line of String(chunk).split("\n")) {
      if (line.startsWith("error")) process.stderr.write(`forum: ${line}\n`);
    }
  });
  const ready = await new Promise<{ url: string; databaseUrl: string; maxConnections: number }>((resolve, reject) => {
    let stdout = "";
    child.stdout!.on("data", (chunk) => {
      stdout += chunk;
      if (stdout.includes("\n")) resolve(JSON.parse(stdout.split("\n")[0]));
    });
    child.once(
      "exit",
      (code) => reject(new Error(`The reference forum did not start (exit ${code}): ${stderr.trim().slice(-1000)}`)),
    );
  });
  return {
    ...ready,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** The soft and hard limits on open files, as a shell started from here sees them. */
function openFileLimits(): { soft: number; hard: number } | null {
  if (platform() === "win32") return null;
  const read = (flag: string) => Number(spawnSync("sh", ["-c", `ulimit ${flag}`], { encoding: "utf8" }).stdout.trim());
  const soft = read("-Sn");
  const hard = read("-Hn");
  return Number.isFinite(soft) ? { soft, hard: Number.isFinite(hard) ? hard : Infinity } : null;
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

function progressLine(recorder: Recorder, options: LoadOptions, started: number): string {
  const seconds = (Date.now() - started) / 1000;
  const now = Math.floor(Date.now() / 1000);
  const last = recorder.seconds.get(now - 1);
  const errors = [...recorder.metrics.values()].filter((m) => m.kind === "action").reduce((n, m) => n + m.errors, 0);
  const p99 = last ? (last.histogram.getValueAtPercentile(99) / 1000).toFixed(0) : "-";
  return `[${seconds.toFixed(0)}s] users ${recorder.activeUsers}/${options.users} active | ${
    last?.requests ?? 0
  } req/s | ` +
    `errors ${errors} | p99 ${p99} ms | PostgreSQL backends ${recorder.pgBackends}`;
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

export async function runLoad(options: LoadOptions, log: (line: string) => void = () => {}): Promise<Results> {
  const embedded = options.url ? null : await startEmbeddedForum(options.pool);
  const url = options.url ?? embedded!.url;
  const recorder = new Recorder();
  const state: RunState = { stopping: false, interrupted: false, started: Date.now() };
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

    const cap = options.maxDuration ? setTimeout(() => state.stopping = true, options.maxDuration * 1000) : undefined;
    const progress = setInterval(() => {
      recorder.second();
      if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${progressLine(recorder, options, state.started)}`);
    }, 1000);
    const lag = watchEventLoop();
    const cpuBefore = process.cpuUsage();
    const machineBusy = watchMachine();
    const startedAt = Date.now();
    const writes = await runUsers(options, url, forumId, recorder, state);
    const endedAt = Date.now();
    const cpu = process.cpuUsage(cpuBefore);
    const lagHistogram = lag.stop();
    clearInterval(progress);
    clearTimeout(cap);
    if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
    await sampler?.stop();

    const failedWrites = ["reply", "new thread"].reduce((n, name) => n + (recorder.metrics.get(name)?.errors ?? 0), 0);
    log("Checking that nothing was lost");
    const nothingLost = await checkNothingLost(observer, forumId, before, writes, failedWrites).catch((
      error,
    ): NothingLost => ({
      ok: false,
      threadsCreated: writes.threads.size,
      repliesPosted: [...writes.replies.values()].reduce((n, list) => n + list.length, 0),
      missingThreads: [],
      missingReplies: [],
      countDifferences: [],
      statedThreads: { expected: before.statedThreads + writes.threads.size, shown: null },
      note: `the check could not run: ${error.message}`,
    }));

    const wallSeconds = (endedAt - startedAt) / 1000;
    const requests = [...recorder.metrics.values()].filter((m) => m.kind === "page").reduce((n, m) => n + m.count, 0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const coreShare = wallSeconds > 0 ? cpuSeconds / wallSeconds : 0;
    const lagP99 = lagHistogram.getValueAtPercentile(99) / 1000;
    const partial: Omit<Results, "verdict"> = {
      tool: "tierload",
      format: 1,
      settings: { ...options, url, embedded: embedded !== null, merge: undefined, json: undefined, report: undefined },
      instances: [options.instance],
      startedAt,
      endedAt,
      wallSeconds,
      interrupted: state.interrupted,
      actions: actionsOf(recorder.metrics, wallSeconds),
      timeline: timelineOf(recorder.seconds),
      postgres: {
        sampled: sampler !== null,
        peakBackends: sampler?.peak ?? 0,
        maxConnections: sampler?.maxConnections ?? 0,
        pool: embedded ? options.pool : undefined,
        error: sampler?.error,
      },
      generator: {
        cpuSeconds,
        cpuMsPerRequest: requests ? (cpuSeconds * 1000) / requests : 0,
        coreShare,
        eventLoopLagP99Ms: lagP99,
        eventLoopLagMaxMs: lagHistogram.maxValue / 1000,
        // JavaScript runs on one core: near all of it means the generator was the limit.
        saturated: coreShare > 0.9,
        cores: cpus().length,
        machineBusyShare: machineBusy(),
      },
      nothingLost,
    };
    return { ...partial, verdict: judge(partial, options) };
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await sampler?.stop();
    await embedded?.stop();
  }
}

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

function readResults(file: string): Results {
  let parsed: Results;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`Cannot read results from ${file}: ${(error as Error).message}`);
  }
  if (parsed?.tool !== "tierload" || parsed.format !== 1 || typeof parsed.actions !== "object") {
    throw new Error(`${file} is not a tierload results file (format 1)`);
  }
  return parsed;
}

if ((import.meta as { main?: boolean }).main ?? import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : error}\n`);
    process.exitCode = 1;
  });
}
