/**
 * What a load run measures, and its JSON: the recorder the users' loop feeds, the samplers that watch
 * the generator, the machine and PostgreSQL, one builder of Results for a run and for a merge of
 * several, and the judge that turns Results into a verdict.
 *
 *   const recorder = new Recorder();
 *   await recorder.action("reply", () => postToExistingThread(session, forumId));
 *   const results = buildResults({ ...facts, metrics: recorder.metrics, timeline: recorder.timeline() }, thresholds);
 *
 * Latencies are kept in HDR histograms (microseconds, three significant digits), which the JSON keeps
 * compressed so that instances merge exactly.
 */
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import * as hdr from "hdr-histogram-js";
import pg from "pg";
import type { RequestRecord } from "./fetchData.ts";

/** Above this share of a core (the generator's JavaScript) or of the machine, that was the limit. */
export const BUSY_SHARE = 0.9;
/** Failures kept per action and page load, with their pages, for the report. */
const FAILURES_KEPT = 5;

/** Latencies in microseconds, up to an hour; `packed` for the many small per-second histograms. */
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

/** An action (signup, reply: a user's step) or a page load inside one (`GET /forum`). */
export type Kind = "action" | "page";

interface Metric {
  kind: Kind;
  count: number;
  errors: number;
  histogram: Histogram;
  failures: Failure[];
}

interface Second {
  requests: number;
  errors: number;
  failedActions: number;
  histogram: Histogram;
  /** Latencies of the actions (signup, reply, ...) that ended in this second. */
  actions: Map<string, Histogram>;
  activeUsers: number;
  pgBackends: number;
}

const microseconds = (ms: number) => Math.max(1, Math.round(ms * 1000));

/** Everything a run measures, as it happens. */
export class Recorder {
  readonly metrics = new Map<string, Metric>();
  readonly seconds = new Map<number, Second>();
  activeUsers = 0;
  pgBackends = 0;

  /** The current second's bucket, which also notes the users active and PostgreSQL's backends now. */
  second(): Second {
    const now = Math.floor(Date.now() / 1000);
    let second = this.seconds.get(now);
    if (!second) {
      second = {
        requests: 0,
        errors: 0,
        failedActions: 0,
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

  /** A session observer recording each page load, named by method and path under `baseUrl`. */
  requestObserver(baseUrl: string): (record: RequestRecord) => void {
    return (record) => {
      const path = record.url.startsWith(baseUrl)
        ? record.url.slice(baseUrl.length).split(/[?#]/)[0]
        : new URL(record.url).pathname.slice(1);
      const failed = record.error !== undefined || record.status >= 400;
      const failure = failed
        ? {
          step: `${record.method} ${record.url}`,
          message: record.error?.message ?? `answered ${record.status}`,
          url: record.url,
          status: record.status || undefined,
        }
        : undefined;
      this.add(`${record.method} /${path}`, "page", record.ms, failure);
      const second = this.second();
      second.requests++;
      if (failed) second.errors++;
      second.histogram.recordValue(microseconds(record.ms));
    };
  }

  /** Times an adapter call as the action `name`; a failure is counted and kept, never thrown. */
  async action<T>(name: string, call: () => Promise<T>): Promise<T | undefined> {
    const started = performance.now();
    try {
      const result = await call();
      this.add(name, "action", performance.now() - started);
      return result;
    } catch (error) {
      this.add(name, "action", performance.now() - started, failureOf(error));
      return undefined;
    }
  }

  /** Attempts so far, of actions or of page loads. */
  count(kind: Kind): number {
    return [...this.metrics.values()].filter((m) => m.kind === kind).reduce((n, m) => n + m.count, 0);
  }

  /** Errors so far, of actions or of page loads. */
  errors(kind: Kind): number {
    return [...this.metrics.values()].filter((m) => m.kind === kind).reduce((n, m) => n + m.errors, 0);
  }

  /** The per-second timeline as the JSON keeps it. */
  timeline(): Results["timeline"] {
    return [...this.seconds].sort(([a], [b]) => a - b).map(([t, s]) => ({
      t,
      requests: s.requests,
      errors: s.errors,
      failedActions: s.failedActions,
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

  private add(name: string, kind: Kind, ms: number, failure?: Failure): void {
    const metric = metricOf(this.metrics, name, kind);
    metric.count++;
    metric.histogram.recordValue(microseconds(ms));
    if (kind === "action") {
      const second = this.second();
      if (!second.actions.has(name)) second.actions.set(name, histogram(true));
      second.actions.get(name)!.recordValue(microseconds(ms));
      if (failure) second.failedActions++;
    }
    if (failure) {
      metric.errors++;
      if (metric.failures.length < FAILURES_KEPT) metric.failures.push(failure);
    }
  }
}

function metricOf(metrics: Map<string, Metric>, name: string, kind: Kind): Metric {
  let metric = metrics.get(name);
  if (!metric) metrics.set(name, metric = { kind, count: 0, errors: 0, histogram: histogram(), failures: [] });
  return metric;
}

/** A failure as the report shows it; errors that name their step, URL, status and page (StepError) keep them. */
function failureOf(error: unknown): Failure {
  const { step, url, status, excerpt } = (error ?? {}) as Partial<Failure>;
  const message = error instanceof Error ? error.message : String(error);
  return { step: typeof step === "string" ? step : "(unknown)", message, url, status, excerpt };
}

// ---------------------------------------------------------------------------------------------
// Samplers: the machine, the generator's event loop, PostgreSQL's client backends
// ---------------------------------------------------------------------------------------------

/** Answers, when called, the share of the machine's CPU time that was busy since this call. */
export function watchMachine(): () => number {
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

/** How one thread's event loop fared: its lag, and the share of the time it was busy (null where unmeasured). */
export interface LoopLoad {
  eventLoopLagP99Ms: number;
  eventLoopLagMaxMs: number;
  /** The event loop's utilization; Deno does not measure it (it answers zeros), so null there. */
  busyShare: number | null;
}

/**
 * Event-loop lag (how late a 100 ms timer fires) and utilization, of the thread that calls it. High lag
 * or near-full utilization means the generator, not the app, is slow.
 */
export function watchEventLoop(): { stop(): LoopLoad } {
  const lag = histogram();
  const utilization = performance.eventLoopUtilization();
  let expected = performance.now() + 100;
  const timer = setInterval(() => {
    const now = performance.now();
    lag.recordValue(microseconds(now - expected));
    expected = now + 100;
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      const used = performance.eventLoopUtilization(utilization);
      return {
        eventLoopLagP99Ms: lag.getValueAtPercentile(99) / 1000,
        eventLoopLagMaxMs: lag.maxValue / 1000,
        busyShare: used.idle + used.active > 0 ? used.utilization : null,
      };
    },
  };
}

export interface PgSampler {
  maxConnections: number;
  peak: number;
  error?: string;
  stop(): Promise<void>;
}

/** Counts client backends in pg_stat_activity five times a second (its own connection excluded). */
export async function samplePostgres(databaseUrl: string, recorder: Recorder): Promise<PgSampler> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {});
  await client.connect();
  let busy: Promise<void> = Promise.resolve();
  let sampling = false;
  const timer = setInterval(() => {
    if (sampling) return;
    sampling = true;
    busy = client.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    ).then((result) => {
      recorder.pgBackends = result.rows[0].n;
      sampler.peak = Math.max(sampler.peak, recorder.pgBackends);
      recorder.second();
    }, (error) => {
      sampler.error ??= error.message;
    }).finally(() => sampling = false);
  }, 200);
  const sampler: PgSampler = {
    maxConnections: Number((await client.query("SHOW max_connections")).rows[0].max_connections),
    peak: 0,
    async stop() {
      clearInterval(timer);
      await busy;
      await client.end().catch(() => {});
    },
  };
  return sampler;
}

// ---------------------------------------------------------------------------------------------
// Results: the JSON, built once for a run or a merge, and judged
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

/**
 * The nothing-lost check: every thread and reply the run counted as a success is on the forum, as it was
 * written (title, body, author), and the forum's counts moved by what the run wrote: exactly, where the
 * run was the forum's only writer (the reference forum it started), and by at least that elsewhere
 * (another instance, or real users, may write too; nothing is ever deleted).
 */
export interface NothingLost {
  /** False when the check could not run (the forum was gone, say): then `note` says why, and nothing was found. */
  checked: boolean;
  ok: boolean;
  counts: "exact" | "at least";
  threadsCreated: number;
  repliesPosted: number;
  missingThreads: number[];
  missingReplies: { threadId: number; postId: number }[];
  countDifferences: { threadId: number; expected: number; shown: number }[];
  /** The forum's stated thread count after the run; shown is null when it could not be read. */
  statedThreads: { expected: number; shown: number | null };
  note?: string;
}

/** The run's settings as the JSON keeps them: the options, less where its own output went. */
export interface Settings {
  users?: number;
  actions?: number;
  replyShare?: number;
  instance?: string;
  rampUp?: number;
  thinkTime?: number;
  maxDuration?: number;
  seed?: number;
  databaseUrl?: string;
  forum?: string;
  pool?: number;
  timeout?: number;
  maxErrorRate?: number;
  maxP99?: number;
  url: string;
  embedded: boolean;
}

export interface Thresholds {
  maxErrorRate?: number;
  maxP99?: number;
}

export interface ActionResult {
  kind: Kind;
  count: number;
  errors: number;
  histogram: string;
  summary: Summary;
  failures: Failure[];
}

export interface Results {
  tool: "tierload";
  format: 1;
  settings: Settings;
  instances: string[];
  startedAt: number;
  endedAt: number;
  wallSeconds: number;
  interrupted: boolean;
  /** Why the run stopped before its users were done, other than an interrupt (the forum died, say). */
  stoppedEarly?: string;
  /** Actions and, told apart by `kind`, the page loads inside them. */
  actions: Record<string, ActionResult>;
  timeline: {
    t: number;
    requests: number;
    /** Requests that failed (no answer, or 4xx/5xx). */
    errors: number;
    /** Actions that failed, whether or not a request did (an answered reply that is not on the thread). */
    failedActions: number;
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
    /** With --workers above 1: each worker thread's users and event loop. */
    workers?: (LoopLoad & { users: number })[];
  };
  nothingLost: NothingLost | null;
  /** Each instance: its place in a run of several started together, and when it began its users. */
  instanceDetails?: InstanceDetail[];
  /** For a merge: what was expected against what was found. */
  merged?: MergeCheck;
  verdict: { ok: boolean; reasons: string[] };
}

/** One instance of a run: which of how many (--instances, --index), and its start against the planned one. */
export interface InstanceDetail {
  instance: string;
  /** The run it belongs to (--instance), its index in it, and how many instances the run has. */
  run?: string;
  index?: number;
  of?: number;
  /** The moment planned for every instance to begin (--start-at), and how late this one began, in ms. */
  plannedStart?: number;
  startSkewMs?: number;
}

/** What a merge found against what the runs it merged said they had. */
export interface MergeCheck {
  found: number;
  /** The instances the runs had, when they said (--instances); else null. */
  expected: number | null;
  /** Instances a run had and the merge did not find, as `run` index names. */
  missing: string[];
  /** Instances found more than once: each is counted once. */
  duplicates: string[];
}

/** What one run, or a merge of several, knows; buildResults derives the rest. */
export interface Facts {
  settings: Settings;
  instances: string[];
  startedAt: number;
  endedAt: number;
  interrupted: boolean;
  stoppedEarly?: string;
  metrics: Map<string, Metric>;
  timeline: Results["timeline"];
  postgres: Results["postgres"];
  generator: Omit<Results["generator"], "cpuMsPerRequest">;
  nothingLost: NothingLost | null;
  instanceDetails?: InstanceDetail[];
  merged?: MergeCheck;
}

/** Results from what a run or a merge knows: summaries, the generator's cost per request, the verdict. */
export function buildResults(facts: Facts, thresholds: Thresholds): Results {
  const { metrics, generator, settings, ...rest } = facts;
  const wallSeconds = (facts.endedAt - facts.startedAt) / 1000;
  const actions = Object.fromEntries([...metrics].map(([name, m]) => [name, {
    kind: m.kind,
    count: m.count,
    errors: m.errors,
    histogram: hdr.encodeIntoCompressedBase64(m.histogram),
    summary: summarize(m.histogram, m.count, m.errors, wallSeconds),
    failures: m.failures,
  }]));
  const requests = [...metrics.values()].filter((m) => m.kind === "page").reduce((n, m) => n + m.count, 0);
  const cpuMsPerRequest = requests ? (generator.cpuSeconds * 1000) / requests : 0;
  const unjudged = {
    tool: "tierload" as const,
    format: 1 as const,
    settings: {
      ...settings,
      url: redactUrl(settings.url),
      databaseUrl: settings.databaseUrl && redactUrl(settings.databaseUrl),
    },
    ...rest,
    wallSeconds,
    actions,
  };
  const results = { ...unjudged, generator: { ...generator, cpuMsPerRequest }, verdict: { ok: true, reasons: [] } };
  return { ...results, verdict: judge(results, thresholds) };
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

/** An action's latency in ms at each of `percentiles`, read from its HDR histogram: its distribution. */
export function distribution(action: ActionResult, percentiles: number[]): number[] {
  const h = hdr.decodeFromCompressedBase64(action.histogram);
  return percentiles.map((p) => percentile(h, p));
}

/** The results' entries of one kind: the actions, or the page loads. */
export function entriesOf(results: Pick<Results, "actions">, kind: Kind): [string, ActionResult][] {
  return Object.entries(results.actions).filter(([, a]) => a.kind === kind);
}

/**
 * The verdict: a run passes only when every action it attempted succeeded (or as many as
 * --max-error-rate allows), it ran to the end, no --max-p99 was breached, and the nothing-lost check
 * ran and found everything. A check that could not run fails the verdict as "not checked", never as a
 * finding.
 */
function judge(results: Omit<Results, "verdict">, thresholds: Thresholds): Results["verdict"] {
  const reasons: string[] = [];
  const actions = entriesOf(results, "action");
  const attempted = actions.reduce((n, [, a]) => n + a.count, 0);
  const failed = actions.reduce((n, [, a]) => n + a.errors, 0);
  if (attempted === 0) reasons.push("no action was attempted");
  if (thresholds.maxErrorRate === undefined) {
    if (failed > 0) reasons.push(`${failed} of ${attempted} actions failed (--max-error-rate allows a share)`);
  } else if (attempted > 0 && failed / attempted > thresholds.maxErrorRate) {
    reasons.push(`error rate ${(failed / attempted).toFixed(4)} is above --max-error-rate ${thresholds.maxErrorRate}`);
  }
  if (thresholds.maxP99 !== undefined) {
    for (const [name, a] of actions) {
      if (a.summary.p99 > thresholds.maxP99) {
        reasons.push(`${name} p99 ${a.summary.p99} ms is above --max-p99 ${thresholds.maxP99} ms`);
      }
    }
  }
  if (results.stoppedEarly) reasons.push(`the run stopped early: ${results.stoppedEarly}`);
  const merged = results.merged;
  if (merged?.missing.length) {
    reasons.push(
      `${merged.missing.length} of ${merged.expected} instances missing from the merge: ${merged.missing.join(", ")}`,
    );
  }
  if (merged?.duplicates.length) {
    reasons.push(`instances found more than once (each counted once): ${merged.duplicates.join(", ")}`);
  }
  const lost = results.nothingLost;
  if (!lost) reasons.push("nothing-lost not checked");
  else if (!lost.checked) reasons.push(`nothing-lost not checked: ${lost.note}`);
  else if (!lost.ok) reasons.push("writes the run counted are missing from the forum, or its counts disagree");
  return { ok: reasons.length === 0, reasons };
}

/** A URL without its password (`postgresql://user:***@host/db`), for anything printed or saved. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.password) return url;
    parsed.password = "***";
    return parsed.href;
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, "//$1:***@");
  }
}

/** Merges the results of several instances: histograms and counts exactly, the timeline by second. */
export function merge(all: Results[], thresholds: Thresholds): Results {
  if (all.length === 0) throw new Error("Nothing to merge");
  const seen = new Set<string>();
  const duplicates: string[] = [];
  const unique = all.filter((result) => {
    const again = result.instances.filter((instance) => seen.has(instance));
    duplicates.push(...again);
    result.instances.forEach((instance) => seen.add(instance));
    return again.length === 0;
  });
  const details: InstanceDetail[] = unique.flatMap((r) =>
    r.instanceDetails ?? r.instances.map((instance) => ({ instance }))
  );
  const missing: string[] = [];
  let expected: number | null = null;
  for (const run of new Set(details.map((d) => d.run).filter((run) => run !== undefined))) {
    const of = Math.max(...details.filter((d) => d.run === run).map((d) => d.of ?? 0));
    const indices = new Set(details.filter((d) => d.run === run).map((d) => d.index));
    for (let index = 0; index < of; index++) if (!indices.has(index)) missing.push(instanceName(run, index));
    expected = (expected ?? 0) + of;
  }
  const found = details.length;
  if (expected !== null) expected += details.filter((d) => d.run === undefined).length;
  return buildResults({
    ...combine(unique),
    instanceDetails: details,
    merged: { found, expected, missing, duplicates: [...new Set(duplicates)] },
  }, thresholds);
}

/** The instance name of index `index` in a run of several started together: users are load_user_<name>_<i>. */
export function instanceName(run: string, index: number): string {
  return `${run}-${index}`;
}

/**
 * What several results know together: histograms and counts exactly, the timeline by second, the
 * generators' costs. For instances merged by --merge, and for the worker threads of one run.
 */
export function combine(all: Results[]): Facts {
  const metrics = new Map<string, Metric>();
  for (const result of all) {
    for (const [name, a] of Object.entries(result.actions)) {
      const m = metricOf(metrics, name, a.kind);
      m.count += a.count;
      m.errors += a.errors;
      m.histogram.add(hdr.decodeFromCompressedBase64(a.histogram));
      m.failures.push(...a.failures.slice(0, FAILURES_KEPT - m.failures.length));
    }
  }
  const timeline = mergeTimelines(all.map((r) => r.timeline));
  const lost = all.map((r) => r.nothingLost).filter((n): n is NothingLost => n !== null);
  const worst = (pick: (g: Results["generator"]) => number) => Math.max(...all.map((r) => pick(r.generator)));
  return {
    settings: { ...all[0].settings, users: all.reduce((n, r) => n + (r.settings.users ?? 0), 0) },
    instances: all.flatMap((r) => r.instances),
    startedAt: Math.min(...all.map((r) => r.startedAt)),
    endedAt: Math.max(...all.map((r) => r.endedAt)),
    interrupted: all.some((r) => r.interrupted),
    stoppedEarly: all.map((r) => r.stoppedEarly).filter(Boolean).join("; ") || undefined,
    metrics,
    timeline,
    postgres: {
      sampled: all.some((r) => r.postgres.sampled),
      peakBackends: Math.max(...all.map((r) => r.postgres.peakBackends), ...timeline.map((t) => t.pgBackends)),
      maxConnections: Math.max(...all.map((r) => r.postgres.maxConnections)),
    },
    generator: {
      cpuSeconds: all.reduce((n, r) => n + r.generator.cpuSeconds, 0),
      coreShare: worst((g) => g.coreShare),
      eventLoopLagP99Ms: worst((g) => g.eventLoopLagP99Ms),
      eventLoopLagMaxMs: worst((g) => g.eventLoopLagMaxMs),
      saturated: all.some((r) => r.generator.saturated),
      cores: all[0].generator.cores,
      machineBusyShare: worst((g) => g.machineBusyShare),
    },
    nothingLost: lost.length < all.length ? null : {
      checked: lost.every((n) => n.checked),
      ok: lost.every((n) => n.ok),
      counts: lost.length === 1 ? lost[0].counts : "at least",
      threadsCreated: lost.reduce((n, l) => n + l.threadsCreated, 0),
      repliesPosted: lost.reduce((n, l) => n + l.repliesPosted, 0),
      missingThreads: lost.flatMap((l) => l.missingThreads),
      missingReplies: lost.flatMap((l) => l.missingReplies),
      countDifferences: lost.flatMap((l) => l.countDifferences),
      statedThreads: lost[lost.length - 1].statedThreads,
      note: lost.length > 1
        ? ["each instance checked its own writes", ...lost.map((l) => l.note).filter(Boolean)].join("; ")
        : lost[0].note,
    },
  };
}

/** The instances' timelines second by second: counts add up; percentiles of separate instances do not, so the worst is kept. */
export function mergeTimelines(timelines: Results["timeline"][]): Results["timeline"] {
  const merged = new Map<number, Results["timeline"][number]>();
  for (const point of timelines.flat()) {
    const t = merged.get(point.t);
    if (!t) {
      merged.set(point.t, { ...point, actions: { ...point.actions } });
      continue;
    }
    for (const [name, a] of Object.entries(point.actions ?? {})) {
      const mine = t.actions[name];
      t.actions[name] = mine
        ? { count: mine.count + a.count, p50: Math.max(mine.p50, a.p50), p99: Math.max(mine.p99, a.p99) }
        : { ...a };
    }
    t.requests += point.requests;
    t.errors += point.errors;
    t.failedActions = (t.failedActions ?? 0) + (point.failedActions ?? 0);
    t.activeUsers += point.activeUsers;
    t.p50 = Math.max(t.p50, point.p50);
    t.p99 = Math.max(t.p99, point.p99);
    t.max = Math.max(t.max, point.max);
    t.pgBackends = Math.max(t.pgBackends, point.pgBackends);
  }
  return [...merged.values()].sort((a, b) => a.t - b.t);
}

/**
 * Results read back for `--merge`: a file saved by `--json FILE`, or text in which each results line is
 * one JSON line (`--json -`, as pods log it; `kubectl logs` of several pods, stdin as "-"). Other lines
 * are ignored; every problem is named with its source, line and field.
 */
export function readResultsFrom(source: string): Results[] {
  const name = source === "-" ? "standard input" : source;
  let text: string;
  try {
    text = readFileSync(source === "-" ? 0 : source, "utf8");
  } catch (error) {
    throw new Error(`Cannot read results from ${name}: ${(error as Error).message}`);
  }
  const whole = parseJson(text);
  if (whole !== undefined) return [validated(whole, name)];
  const found = text.split("\n").flatMap((line, i) => {
    if (!line.startsWith("{") || !line.includes('"tool":"tierload"')) return [];
    const parsed = parseJson(line);
    if (parsed === undefined) throw new Error(`${name} line ${i + 1} is a results line cut short or corrupted`);
    return [validated(parsed, `${name} line ${i + 1}`)];
  });
  if (found.length === 0) {
    throw new Error(
      `${name} holds no tierload results: neither a results file (--json FILE) nor log lines of --json -`,
    );
  }
  return found;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function validated(parsed: unknown, where: string): Results {
  const r = parsed as Results;
  if (r?.tool !== "tierload" || r.format !== 1) {
    throw new Error(`${where} is not a tierload results file (format 1): it lacks "tool": "tierload" and "format": 1`);
  }
  const problems = resultProblems(r);
  if (problems.length) throw new Error(`${where} is not valid tierload results: ${problems.join("; ")}`);
  return r;
}

function resultProblems(r: Results): string[] {
  const problems: string[] = [];
  const expect = (ok: boolean, field: string, what: string) => ok || problems.push(`${field} must be ${what}`);
  const isNumber = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
  expect(isObject(r.settings) && typeof r.settings.url === "string", "settings.url", "a string");
  expect(Array.isArray(r.instances) && r.instances.every((i) => typeof i === "string"), "instances", "a list of names");
  for (const field of ["startedAt", "endedAt", "wallSeconds"] as const) expect(isNumber(r[field]), field, "a number");
  expect(Array.isArray(r.timeline), "timeline", "a list");
  expect(isObject(r.postgres) && isNumber(r.postgres.peakBackends), "postgres.peakBackends", "a number");
  expect(isObject(r.generator) && isNumber(r.generator.cpuSeconds), "generator.cpuSeconds", "a number");
  if (!expect(isObject(r.actions), "actions", "an object")) return problems;
  for (const [name, a] of Object.entries(r.actions)) {
    const at = `actions[${JSON.stringify(name)}]`;
    if (!expect(isObject(a), at, "an object")) continue;
    expect(a.kind === "action" || a.kind === "page", `${at}.kind`, '"action" or "page"');
    expect(isNumber(a.count) && isNumber(a.errors), `${at}.count and .errors`, "numbers");
    expect(Array.isArray(a.failures), `${at}.failures`, "a list");
    expect(holdsCount(a.histogram, a.count), `${at}.histogram`, "an HDR histogram (compressed, base64) of its count");
  }
  return problems;
}

function holdsCount(histogram: unknown, count: number): boolean {
  try {
    return typeof histogram === "string" && hdr.decodeFromCompressedBase64(histogram).totalCount === count;
  } catch {
    return false;
  }
}
