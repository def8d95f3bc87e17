/**
 * What a load run measures, and its JSON: the recorder the users' loop feeds, one builder of Results for
 * a run and for a merge of several, and the judge that turns Results into a verdict. (The samplers that
 * watch the machine and PostgreSQL are lib/samplers.ts; reading saved results back, lib/results-file.ts.)
 *
 *   const recorder = new Recorder();
 *   await recorder.action("checkout", () => checkOut(session, basket));
 *   const results = buildResults({ ...facts, metrics: recorder.metrics, timeline: recorder.timeline() }, thresholds);
 *
 * Latencies are kept in HDR histograms (microseconds, three significant digits), which the JSON keeps
 * compressed so that instances merge exactly.
 */
import { performance } from "node:perf_hooks";
import * as hdr from "hdr-histogram-js";
import type { RequestRecord } from "./fetchData.ts";
import { histogram, microseconds } from "./histogram.ts";
import { bucketOf, type MetricCounts } from "./metrics.ts";
import type { BackendProcesses, LoopLoad, PgFindings } from "./samplers.ts";
import { type Judged, judgeThresholds, type Threshold } from "./thresholds.ts";

/** Above this share of a core (the generator's JavaScript) or of the machine, that was the limit. */
export const BUSY_SHARE = 0.9;
/** Failures kept per action and page load, with their pages, for the report. */
const FAILURES_KEPT = 5;

type Histogram = ReturnType<typeof histogram>;

export interface Failure {
  step: string;
  message: string;
  url?: string;
  status?: number;
  excerpt?: string;
}

/** An action (signup, reply: a user's step) or a page load inside one (`GET /basket`). */
export type Kind = "action" | "page";

interface Metric {
  kind: Kind;
  count: number;
  errors: number;
  /** Bytes of body received on the wire (compressed as they came), for page loads. */
  bytes: number;
  /** Latencies from when each attempt started. */
  histogram: Histogram;
  /** Actions of a run with due times (arrivals, --pace): latencies from when each was due (corrected). */
  corrected?: Histogram;
  /** How many of the attempts had a due time (the others' two latencies are the same). */
  due: number;
  failures: Failure[];
}

/** The open model's arrivals, as they happen: how many fell due, started, and were dropped, and why. */
interface Arrivals {
  /** Arrivals the run's schedule had for these users. */
  planned: number;
  /** Arrivals that fell due (the rest, if any, came after the run stopped). */
  due: number;
  started: number;
  /** Dropped because --max-active users were in flight. */
  droppedBusy: number;
  /** Dropped because the generator would have started them later than --max-lateness. */
  droppedLate: number;
  /** How late the started ones started, after they were due. */
  lateness: Histogram;
  maxActive: number;
  maxLatenessMs: number;
  /** How long the schedule lasts, in seconds. */
  seconds: number;
}

interface Second {
  requests: number;
  errors: number;
  failedActions: number;
  histogram: Histogram;
  /** Latencies of the actions (signup, reply, ...) that ended in this second. */
  actions: Map<string, Histogram>;
  /** The same actions' latencies from when each was due (runs with due times only). */
  corrected: Map<string, Histogram>;
  activeUsers: number;
  pgBackends: number;
  /** Open model: arrivals that fell due in this second, were started, and were dropped. */
  due: number;
  arrivals: number;
  dropped: number;
  pgActive: number;
}

/** Everything a run measures, as it happens. */
export class Recorder {
  readonly metrics = new Map<string, Metric>();
  readonly seconds = new Map<number, Second>();
  activeUsers = 0;
  pgBackends = 0;
  /** The open model's arrivals; undefined in the closed model. */
  arrivals?: Arrivals;

  /**
   * `corrected`: the run has due times (arrivals, --pace), so each action is also timed from when it was
   * due; `arrivals`: the open model's schedule for these users.
   */
  constructor(
    readonly keepsCorrected = false,
    arrivals?: { planned: number; maxActive: number; maxLatenessMs: number; seconds: number },
  ) {
    if (arrivals) {
      this.arrivals = { ...arrivals, due: 0, started: 0, droppedBusy: 0, droppedLate: 0, lateness: histogram() };
    }
  }
  pgActive = 0;
  /** Bucket bounds in ms, when live metrics count each latency into buckets (--metrics-port). */
  bounds?: number[];
  private readonly live = new Map<string, MetricCounts>();
  /** Told of each failure as it happens (--verbose). */
  onFailure?: (name: string, failure: Failure) => void;

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
        corrected: new Map(),
        activeUsers: 0,
        pgBackends: 0,
        due: 0,
        arrivals: 0,
        dropped: 0,
        pgActive: 0,
      };
      this.seconds.set(now, second);
    }
    second.activeUsers = Math.max(second.activeUsers, this.activeUsers);
    second.pgBackends = Math.max(second.pgBackends, this.pgBackends);
    second.pgActive = Math.max(second.pgActive, this.pgActive);
    return second;
  }

  /** A session observer (tier 3's `onRequest`) recording each page load under its name. */
  requestObserver(): (record: RequestRecord) => void {
    return (record) => {
      const failed = record.error !== undefined || record.status >= 400;
      const failure = failed
        ? {
          step: `${record.method} ${record.url}`,
          message: record.error?.message ?? `answered ${record.status}`,
          url: record.url,
          status: record.status || undefined,
        }
        : undefined;
      this.add(record.name, "page", record.ms, failure);
      this.metrics.get(record.name)!.bytes += record.bytes;
      const second = this.second();
      second.requests++;
      if (failed) second.errors++;
      second.histogram.recordValue(microseconds(record.ms));
    };
  }

  /**
   * Times an adapter call as the action `name`; a failure is counted and kept, never thrown. `due` (in
   * performance.now()'s time) is when the action should have started: its user's arrival, or its --pace
   * slot; the corrected latency runs from then, the other from when it did start.
   */
  async action<T>(name: string, call: () => Promise<T>, due?: number): Promise<T | undefined> {
    const started = performance.now();
    const from = Math.min(due ?? started, started);
    try {
      const result = await call();
      const ended = performance.now();
      this.add(name, "action", ended - started, undefined, due === undefined ? undefined : ended - from);
      return result;
    } catch (error) {
      const ended = performance.now();
      this.add(name, "action", ended - started, failureOf(error), due === undefined ? undefined : ended - from);
      return undefined;
    }
  }

  /** An arrival that fell due: started `lateMs` after it was due, or dropped (the generator was `busy` or late). */
  arrival(outcome: "started" | "busy" | "late", lateMs: number): void {
    const a = this.arrivals!;
    const second = this.second();
    a.due++;
    second.due++;
    if (outcome === "started") {
      a.started++;
      second.arrivals++;
      a.lateness.recordValue(microseconds(Math.max(lateMs, 0)));
    } else {
      second.dropped++;
      if (outcome === "busy") a.droppedBusy++;
      else a.droppedLate++;
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
      ...(this.arrivals ? { due: s.due, arrivals: s.arrivals, dropped: s.dropped } : {}),
      pgActive: s.pgActive,
      actions: Object.fromEntries(
        [...s.actions].map(([name, h]) => {
          const c = s.corrected.get(name);
          const corrected = c ? { correctedP50: percentile(c, 50), correctedP99: percentile(c, 99) } : {};
          return [name, { count: h.totalCount, p50: percentile(h, 50), p99: percentile(h, 99), ...corrected }];
        }),
      ),
    }));
  }

  /** The live metrics' counts so far (--metrics-port), by name. */
  counts(): MetricCounts[] {
    return [...this.live.values()];
  }

  /** The open model's arrivals as the JSON keeps them; undefined in the closed model. */
  arrivalResults(): OpenResults | undefined {
    const a = this.arrivals;
    if (!a) return undefined;
    const { lateness, ...counts } = a;
    return { ...counts, lateness: hdr.encodeIntoCompressedBase64(lateness) };
  }

  private add(name: string, kind: Kind, ms: number, failure?: Failure, correctedMs?: number): void {
    if (this.bounds) {
      let live = this.live.get(name);
      if (!live) this.live.set(name, live = { name, kind, count: 0, errors: 0, sumMs: 0, buckets: [] });
      live.count++;
      if (failure) live.errors++;
      live.sumMs += ms;
      const bucket = bucketOf(this.bounds, ms);
      live.buckets[bucket] = (live.buckets[bucket] ?? 0) + 1;
    }
    const metric = metricOf(this.metrics, name, kind);
    metric.count++;
    metric.histogram.recordValue(microseconds(ms));
    if (kind === "action") {
      const second = this.second();
      if (!second.actions.has(name)) second.actions.set(name, histogram(true));
      second.actions.get(name)!.recordValue(microseconds(ms));
      if (failure) second.failedActions++;
      if (this.keepsCorrected) {
        if (correctedMs !== undefined) metric.due++;
        metric.corrected ??= histogram();
        metric.corrected.recordValue(microseconds(correctedMs ?? ms));
        if (!second.corrected.has(name)) second.corrected.set(name, histogram(true));
        second.corrected.get(name)!.recordValue(microseconds(correctedMs ?? ms));
      }
    }
    if (failure) {
      this.onFailure?.(name, failure);
      metric.errors++;
      if (metric.failures.length < FAILURES_KEPT) metric.failures.push(failure);
    }
  }
}

function metricOf(metrics: Map<string, Metric>, name: string, kind: Kind): Metric {
  let metric = metrics.get(name);
  if (!metric) {
    metrics.set(name, metric = { kind, count: 0, errors: 0, bytes: 0, histogram: histogram(), due: 0, failures: [] });
  }
  return metric;
}

/** A failure as the report shows it; errors that name their step, URL, status and page (StepError) keep them. */
function failureOf(error: unknown): Failure {
  const { step, url, status, excerpt } = (error ?? {}) as Partial<Failure>;
  const message = error instanceof Error ? error.message : String(error);
  return { step: typeof step === "string" ? step : "(unknown)", message, url, status, excerpt };
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
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * A scenario's end-state check, as the results keep it: is the application's state what the run says it
 * did? Exactly, where the run was the application's only writer (an application the tool started, one
 * instance), or at least, elsewhere (another instance, or real users, may write too).
 */
export interface EndCheck {
  /** What the check is called in the report: "Nothing lost". */
  name: string;
  /** False when the check could not run (the application was gone, say): then `note` says why. */
  checked: boolean;
  ok: boolean;
  counts: "exact" | "at least";
  /** What the run counted, by kind (`{ threads: 12, replies: 108 }`): these add up in a merge. */
  counted: Record<string, number>;
  /**
   * The finding when it passed, `{kind}` standing for each counted number and `{how}` for the tool's words
   * on exact or at-least counts: "all {orders} orders the run counted are in the shop, counted {how}".
   */
  summary: string;
  /** What is wrong, a line each (the first 20 are kept). */
  findings: string[];
  note?: string;
}

/**
 * The run's settings as the JSON keeps them: the tool's options (less where its own output went), and the
 * scenario's own options under the scenario's name (`settings.shop.basketSize`).
 */
export interface Settings {
  scenario?: string;
  /** The scenario's options in the report's headline: "reply share 0.9". */
  about?: string;
  /** What the report calls an application the tool started: "the shop started for the run". */
  app?: string;
  users?: number;
  actions?: number;
  instance?: string;
  rampUp?: number;
  thinkTime?: number;
  maxDuration?: number;
  seed?: number;
  databaseUrl?: string;
  timeout?: number;
  maxErrorRate?: number;
  maxP99?: number;
  arrivalRate?: string;
  stages?: string;
  maxActive?: number;
  maxDropped?: number;
  pace?: number;
  judgeLatency?: "corrected" | "uncorrected";
  /** Every threshold the verdict applies: --threshold, and the shorthands --max-p99 and --max-error-rate. */
  thresholds?: Threshold[];
  url: string;
  embedded: boolean;
  [scenarioOptions: string]: unknown;
}

export interface ActionResult {
  kind: Kind;
  count: number;
  errors: number;
  /** For page loads: bytes of body received on the wire. */
  bytes?: number;
  /** Latencies from when each attempt started. */
  histogram: string;
  summary: Summary;
  /**
   * In a run with due times (arrivals, --pace): the same attempts' latencies from when each was due, so
   * that the time an action waited for a stalled application to free its user counts (as wrk2 measures).
   */
  corrected?: { histogram: string; summary: Summary; due: number };
  failures: Failure[];
}

/** The open model's arrivals: planned, due, started and dropped (and why), and how late they started. */
export interface OpenResults {
  planned: number;
  due: number;
  started: number;
  droppedBusy: number;
  droppedLate: number;
  /** How late the started arrivals started after they were due: an HDR histogram (compressed, base64). */
  lateness: string;
  /** The most users in flight at once these instances allowed (their shares of --max-active). */
  maxActive: number;
  maxLatenessMs: number;
  /** How long the schedule lasts, in seconds. */
  seconds: number;
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
  /** Why the run stopped before its users were done, other than an interrupt (the application died, say). */
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
    /** PostgreSQL's client backends connected (held), the most at one look in this second. */
    pgBackends: number;
    /** Open model: arrivals that fell due in this second, were started, and were dropped. */
    due?: number;
    arrivals?: number;
    dropped?: number;
    /** Of them, the most running a statement at one look (state 'active'); results before 2026-12 lack it. */
    pgActive?: number;
    /** Per action, the actions that ended in this second (and, in runs with due times, their corrected latencies). */
    actions: Record<string, { count: number; p50: number; p99: number; correctedP50?: number; correctedP99?: number }>;
  }[];
  /** The open model's arrivals; absent in the closed model. */
  open?: OpenResults;
  postgres: PostgresResults;
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
  /** The scenario's end-state check; null when the scenario has none. */
  check: EndCheck | null;
  /** Each instance: its place in a run of several started together, and when it began its users. */
  instanceDetails?: InstanceDetail[];
  /** For a merge: what was expected against what was found. */
  merged?: MergeCheck;
  /** Each threshold, held or breached, with what was measured. */
  thresholds: Judged[];
  verdict: { ok: boolean; reasons: string[] };
}

/**
 * The connections an application declares it holds (StartedApp's `pool`): a fixed pool opens them all at
 * start and must hold them throughout the run; an on-demand pool opens them as requests need them.
 */
export interface PoolDeclaration {
  size: number;
  mode: "fixed" | "on-demand";
  /** The connections it held when it was ready. */
  held?: number;
  /** Why it holds fewer than its size, in the application's words (max_connections, open files, ...). */
  shortfall?: string;
}

/** What PostgreSQL showed during the run; every field but the first three is missing from older results. */
export interface PostgresResults {
  sampled: boolean;
  /** The most client backends connected at one look (held.max). */
  peakBackends: number;
  maxConnections: number;
  /** The connections the application the tool started declared it holds. */
  pool?: PoolDeclaration;
  /** Client backends connected, fewest and most over the run (the samplers' own left out). */
  held?: { min: number; max: number };
  /** Distinct backends that ran at least one statement during the run (query_start moved past its start). */
  served?: number;
  /** Their process ids, when one server was sampled: a merge unites them exactly. */
  servedPids?: number[];
  /** The server run sampled (address, port, start time), or "N servers" in a merge of several. */
  server?: string;
  /** The most backends in state 'active' at one look. */
  activePeak?: number;
  /** Backends whose activity the sampler's role may not see: `served` leaves them out. */
  hidden?: number;
  /** The backends' memory and open files, read from /proc where the database is on this machine. */
  processes?: BackendProcesses;
  /** Why the backends' processes were not read. */
  processesError?: string;
  /** Why PostgreSQL was not sampled (a --database-url that could not be reached), or its first failed look. */
  error?: string;
  /** In a merge: what could not be combined exactly. */
  note?: string;
}

/** The results' PostgreSQL part for one run: what the sampler found (or why there was none) and the app's pool. */
export function postgresResults(
  findings: PgFindings | null,
  error: string | undefined,
  pool: PoolDeclaration | undefined,
): PostgresResults {
  if (!findings) return { sampled: false, peakBackends: 0, maxConnections: 0, pool, error };
  const { servedPids, ...rest } = findings;
  return { sampled: true, peakBackends: findings.held.max, ...rest, pool, served: servedPids.length, servedPids };
}

/** One instance of a run: which of how many (--instances, --index), and its start against the planned one. */
export interface InstanceDetail {
  instance: string;
  /** The run it belongs to (--instance), its index in it, how many instances and users the run has in all. */
  run?: string;
  index?: number;
  of?: number;
  users?: number;
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
  open?: OpenResults;
  postgres: Results["postgres"];
  generator: Omit<Results["generator"], "cpuMsPerRequest">;
  check: EndCheck | null;
  instanceDetails?: InstanceDetail[];
  merged?: MergeCheck;
}

/** Results from what a run or a merge knows: summaries, the generator's cost per request, the verdict. */
export function buildResults(facts: Facts, thresholds: Threshold[]): Results {
  const { metrics, generator, settings, ...rest } = facts;
  const wallSeconds = (facts.endedAt - facts.startedAt) / 1000;
  const actions = Object.fromEntries([...metrics].map(([name, m]) => [name, {
    kind: m.kind,
    count: m.count,
    errors: m.errors,
    ...(m.kind === "page" ? { bytes: m.bytes } : {}),
    histogram: hdr.encodeIntoCompressedBase64(m.histogram),
    summary: summarize(m.histogram, m.count, m.errors, wallSeconds),
    ...(m.corrected
      ? {
        corrected: {
          histogram: hdr.encodeIntoCompressedBase64(m.corrected),
          summary: summarize(m.corrected, m.count, m.errors, wallSeconds),
          due: m.due,
        },
      }
      : {}),
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
  // Latency thresholds judge an action's latencies from its due time where it has one (--judge-latency).
  const fromDue = settings.judgeLatency !== "uncorrected";
  const measured = Object.fromEntries(
    Object.entries(actions).filter(([, a]) => a.kind === "action").map((
      [name, a],
    ) => [name, fromDue && a.corrected?.due ? a.corrected.summary : a.summary]),
  );
  const { judged, reasons } = judgeThresholds(measured, thresholds);
  const results = {
    ...unjudged,
    settings: { ...unjudged.settings, thresholds },
    generator: { ...generator, cpuMsPerRequest },
    thresholds: judged,
  };
  return { ...results, verdict: judge(results, reasons) };
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
    p95: percentile(h, 95),
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
 * The verdict: a run passes only when every action it attempted succeeded (or as many as an errors
 * threshold allows), it ran to the end, every threshold held, and the scenario's end-state
 * check (where it has one) ran and passed. A check that could not run fails the verdict as "not checked",
 * never as a finding.
 */
function judge(results: Omit<Results, "verdict">, thresholdReasons: string[]): Results["verdict"] {
  const reasons: string[] = [];
  const attempted = entriesOf(results, "action").reduce((n, [, a]) => n + a.count, 0);
  if (attempted === 0) reasons.push("no action was attempted");
  reasons.push(...thresholdReasons);
  const open = results.open;
  if (open) {
    const dropped = open.droppedBusy + open.droppedLate;
    const allowed = results.settings.maxDropped ?? 0;
    if (open.due > 0 && dropped / open.due > allowed) {
      const share = `${((100 * dropped) / open.due).toFixed(1)} %`;
      reasons.push(
        `${dropped} of ${open.due} arrivals dropped (${share}: ${droppedWhy(open)}), above ${
          results.settings.maxDropped === undefined
            ? "none allowed (--max-dropped allows a share)"
            : `--max-dropped ${allowed}`
        }`,
      );
    }
  }
  if (results.stoppedEarly) reasons.push(`the run stopped early: ${results.stoppedEarly}`);
  const pool = poolReason(results.postgres);
  if (pool) reasons.push(pool);
  const merged = results.merged;
  if (merged?.missing.length) {
    reasons.push(
      `${merged.missing.length} of ${merged.expected} instances missing from the merge: ${merged.missing.join(", ")}`,
    );
  }
  if (merged?.duplicates.length) {
    reasons.push(`instances found more than once (each counted once): ${merged.duplicates.join(", ")}`);
  }
  const check = results.check;
  if (check && !check.checked) reasons.push(`${check.name}: not checked: ${check.note}`);
  else if (check && !check.ok) {
    const more = check.findings.length > 3 ? `; and ${check.findings.length - 3} more` : "";
    reasons.push(`${check.name}: the check failed: ${check.findings.slice(0, 3).join("; ")}${more}`);
  }
  return { ok: reasons.length === 0, reasons };
}

/** Why arrivals were dropped, in words: "12 found --max-active 20 users in flight, 1 would have started late". */
export function droppedWhy(open: OpenResults): string {
  return [
    open.droppedBusy ? `${open.droppedBusy} found all ${open.maxActive} users (--max-active) in flight` : "",
    open.droppedLate
      ? `${open.droppedLate} would have started more than ${open.maxLatenessMs} ms late (--max-lateness): the generator fell behind`
      : "",
  ].filter(Boolean).join(", ") || "none";
}

/** How late the open model's arrivals started after they were due, in ms: p50, p99 and max. */
export function lateness(open: OpenResults): { p50: number; p99: number; max: number } {
  const h = hdr.decodeFromCompressedBase64(open.lateness);
  return { p50: percentile(h, 50), p99: percentile(h, 99), max: h.maxValue / 1000 };
}

/**
 * A fixed pool passes only when its connections were held throughout the run: the fewest held at any
 * look was at least its size. Otherwise the reason names the shortfall and its cause, in the
 * application's words where it gave them.
 */
function poolReason(p: PostgresResults): string | null {
  const pool = p.pool;
  if (pool?.mode !== "fixed") return null;
  const cause = pool.shortfall ??
    (p.maxConnections > 0 && p.maxConnections < pool.size
      ? `max_connections is ${p.maxConnections}, below the pool's size`
      : "the application's log may say why");
  if (!p.sampled || !p.held) {
    const at = pool.held !== undefined && pool.held < pool.size ? `; it held ${pool.held} at start: ${cause}` : "";
    return `the fixed pool of ${pool.size} connections: not checked (PostgreSQL was not sampled${
      p.error ? `: ${p.error}` : ""
    })${at}`;
  }
  if (p.held.min >= pool.size) return null;
  const held = p.held.min === p.held.max ? `${p.held.min}` : `${p.held.min} to ${p.held.max}`;
  return `the fixed pool of ${pool.size} connections was not held throughout: ${held} held: ${cause}`;
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

/**
 * Merges the results of several instances: histograms and counts exactly, the timeline by second. The
 * merge judges with the thresholds the instances ran with, which must agree, unless `told` gives the
 * thresholds to use instead (the merge's own --max-p99, --max-error-rate). Results that cannot belong to
 * one test are refused, saying which differ: another scenario, URL or actions per user; and, within one
 * run of several instances, another seed, or shares that do not add up to the run's users.
 *
 *   const all = merge(["a.json", "b.json"].flatMap((file) => readResultsFrom(file)));
 */
export function merge(all: Results[], told: Threshold[] | null = null): Results {
  if (all.length === 0) throw new Error("Nothing to merge");
  const seen = new Set<string>();
  const duplicates: string[] = [];
  const unique = all.filter((result) => {
    const again = result.instances.filter((instance) => seen.has(instance));
    duplicates.push(...again);
    result.instances.forEach((instance) => seen.add(instance));
    return again.length === 0;
  });
  refuseMismatches(unique);
  const thresholds = mergeThresholds(unique, told);
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
  const combined = combine(unique);
  return buildResults({
    ...combined,
    settings: {
      ...combined.settings,
      maxP99: told ? undefined : combined.settings.maxP99,
      maxErrorRate: told ? undefined : combined.settings.maxErrorRate,
    },
    instanceDetails: details,
    merged: { found, expected, missing, duplicates: [...new Set(duplicates)] },
  }, thresholds);
}

/**
 * The thresholds a merge judges with: those it is told (the merge's own --threshold, --max-p99,
 * --max-error-rate), else the instances' own, which must agree.
 */
function mergeThresholds(all: Results[], told: Threshold[] | null): Threshold[] {
  if (told) return told;
  const texts = (r: Results) => (r.settings.thresholds ?? []).map((t) => t.text).join(", ") || "none";
  const each = new Map(all.flatMap((r) => r.instances.map((i) => [i, texts(r)] as const)));
  if (new Set(each.values()).size > 1) {
    throw new Error(
      `The instances ran with different thresholds (${[...each].map(([i, t]) => `${i}: ${t}`).join("; ")}): ` +
        "give the merge its own (--threshold, --max-p99, --max-error-rate) to judge them all by one",
    );
  }
  return all[0].settings.thresholds ?? [];
}

/** Throws, naming the field and the instances, when results cannot be parts of one test. */
function refuseMismatches(all: Results[]): void {
  const differ = (what: string, pick: (r: Results) => unknown, among: Results[]) => {
    const values = new Map(among.flatMap((r) => r.instances.map((i) => [i, JSON.stringify(pick(r))] as const)));
    if (new Set(values.values()).size > 1) {
      const each = [...values].map(([i, v]) => `${i}: ${v ?? "none"}`).join(", ");
      throw new Error(`Cannot merge results that differ in ${what} (${each}): they are not parts of one test`);
    }
  };
  differ("scenario", (r) => r.settings.scenario, all);
  differ("URL", (r) => r.settings.url, all);
  differ("actions per user", (r) => r.settings.actions, all);
  differ("the model (closed, or open with its rate)", (r) => r.settings.stages ?? r.settings.arrivalRate, all);
  differ("--pace", (r) => r.settings.pace, all);
  // Results written before --judge-latency judged as its default does.
  differ("--judge-latency", (r) => r.settings.judgeLatency ?? "corrected", all);
  differ("--max-dropped", (r) => r.settings.maxDropped, all);
  const runs = new Map<string, Results[]>();
  for (const r of all) {
    for (const d of r.instanceDetails ?? []) if (d.run !== undefined) runs.set(d.run, [...runs.get(d.run) ?? [], r]);
  }
  for (const [run, members] of runs) {
    differ(`seed within the run ${JSON.stringify(run)}`, (r) => r.settings.seed, members);
    differ(`the number of instances within the run ${JSON.stringify(run)}`, (r) => r.instanceDetails?.[0]?.of, members);
    const total = members[0].instanceDetails?.[0]?.users;
    const shares = members.reduce((n, r) => n + (r.settings.users ?? 0), 0);
    const complete = members.length === members[0].instanceDetails?.[0]?.of;
    if (total !== undefined && (shares > total || (complete && shares !== total))) {
      throw new Error(`The instances of the run ${JSON.stringify(run)} ran ${shares} users in all, not its ${total}`);
    }
  }
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
      m.bytes += a.bytes ?? 0;
      m.histogram.add(hdr.decodeFromCompressedBase64(a.histogram));
      if (a.corrected) {
        m.corrected ??= histogram();
        m.corrected.add(hdr.decodeFromCompressedBase64(a.corrected.histogram));
        m.due += a.corrected.due;
      }
      m.failures.push(...a.failures.slice(0, FAILURES_KEPT - m.failures.length));
    }
  }
  const timeline = mergeTimelines(all.map((r) => r.timeline));
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
    open: combineArrivals(all.map((r) => r.open)),
    postgres: combinePostgres(all.map((r) => r.postgres), timeline),
    generator: {
      cpuSeconds: all.reduce((n, r) => n + r.generator.cpuSeconds, 0),
      coreShare: worst((g) => g.coreShare),
      eventLoopLagP99Ms: worst((g) => g.eventLoopLagP99Ms),
      eventLoopLagMaxMs: worst((g) => g.eventLoopLagMaxMs),
      saturated: all.some((r) => r.generator.saturated),
      cores: all[0].generator.cores,
      machineBusyShare: worst((g) => g.machineBusyShare),
    },
    check: combineChecks(all.map((r) => r.check)),
  };
}

/** The arrivals of several instances or threads as one: counts and lateness add up, exactly. */
function combineArrivals(all: (OpenResults | undefined)[]): OpenResults | undefined {
  const present = all.filter((o): o is OpenResults => o !== undefined);
  if (present.length === 0) return undefined;
  const sum = (key: "planned" | "due" | "started" | "droppedBusy" | "droppedLate" | "maxActive") =>
    present.reduce((n, o) => n + o[key], 0);
  const late = histogram();
  for (const o of present) late.add(hdr.decodeFromCompressedBase64(o.lateness));
  return {
    planned: sum("planned"),
    due: sum("due"),
    started: sum("started"),
    droppedBusy: sum("droppedBusy"),
    droppedLate: sum("droppedLate"),
    lateness: hdr.encodeIntoCompressedBase64(late),
    maxActive: sum("maxActive"),
    maxLatenessMs: Math.max(...present.map((o) => o.maxLatenessMs)),
    seconds: Math.max(...present.map((o) => o.seconds)),
  };
}

/**
 * What several instances saw of PostgreSQL. Instances that sampled one server combine exactly: held is
 * the fewest and most at any of their looks, the active peak the most at one look, served the union of
 * the backends' process ids, memory and files the look with the most memory. Served backends of
 * different servers add up; their held and active counts, looked at in different moments, cannot, so
 * the merge gives the largest server's and says so.
 */
function combinePostgres(all: PostgresResults[], timeline: Results["timeline"]): PostgresResults {
  const sampled = all.filter((p) => p.sampled);
  const pools = new Set(all.map((p) => JSON.stringify(p.pool ?? null)));
  const combined: PostgresResults = {
    sampled: sampled.length > 0,
    peakBackends: Math.max(...all.map((p) => p.peakBackends), ...timeline.map((t) => t.pgBackends)),
    maxConnections: Math.max(...all.map((p) => p.maxConnections)),
    pool: pools.size === 1 ? all[0].pool : undefined,
    error: all.map((p) => p.error).find(Boolean),
  };
  const detailed = sampled.filter((p) => p.held);
  if (detailed.length === 0) return combined;
  const servers = new Map<string, PostgresResults[]>();
  for (const p of detailed) servers.set(p.server ?? "", [...servers.get(p.server ?? "") ?? [], p]);
  const perServer = [...servers.values()].map((ps) => {
    const pids = ps.every((p) => p.servedPids) ? new Set(ps.flatMap((p) => p.servedPids!)) : null;
    const biggest = ps.filter((p) => p.processes).sort((a, b) => b.processes!.pssBytes - a.processes!.pssBytes)[0];
    return {
      held: { min: Math.min(...ps.map((p) => p.held!.min)), max: Math.max(...ps.map((p) => p.held!.max)) },
      activePeak: Math.max(...ps.map((p) => p.activePeak ?? 0)),
      served: pids ? pids.size : Math.max(...ps.map((p) => p.served ?? 0)),
      exactServed: pids !== null,
      servedPids: pids ? [...pids].sort((a, b) => a - b) : undefined,
      hidden: Math.max(...ps.map((p) => p.hidden ?? 0)),
      processes: biggest?.processes,
      processesError: biggest ? undefined : ps.map((p) => p.processesError).find(Boolean),
    };
  });
  const largest = perServer.sort((a, b) => b.held.max - a.held.max)[0];
  const notes = [
    ...(perServer.some((s) => !s.exactServed)
      ? ["served is the largest instance's, as results without the backends' ids cannot be united"]
      : []),
    ...(perServer.length > 1
      ? [
        `the instances sampled ${perServer.length} servers: served adds up; held, the active peak, memory and ` +
        `files are the largest server's, as looks at different servers cannot be added`,
      ]
      : []),
  ];
  const { exactServed: _, ...figures } = largest;
  return {
    ...combined,
    ...figures,
    served: perServer.reduce((n, s) => n + s.served, 0),
    servedPids: perServer.length === 1 ? largest.servedPids : undefined,
    server: perServer.length === 1 ? detailed[0].server : `${perServer.length} servers`,
    note: notes.length ? notes.join("; ") : undefined,
  };
}

/**
 * The instances' end-state checks as one: each instance checked its own writes, so counts add up and the
 * counts are "at least" (others wrote too); an instance without the check the others have was not checked.
 */
function combineChecks(checks: (EndCheck | null)[]): EndCheck | null {
  const present = checks.filter((c): c is EndCheck => c !== null);
  if (present.length === 0) return null;
  if (checks.length === 1) return present[0];
  const counted: Record<string, number> = {};
  for (const check of present) {
    for (const [kind, n] of Object.entries(check.counted)) counted[kind] = (counted[kind] ?? 0) + n;
  }
  const unchecked = checks.length - present.length;
  const notes = [
    "each instance checked its own writes",
    ...(unchecked ? [`${unchecked} of ${checks.length} instances have no end-state check`] : []),
    ...present.map((c) => c.note).filter(Boolean),
  ];
  return {
    name: present[0].name,
    checked: unchecked === 0 && present.every((c) => c.checked),
    ok: present.every((c) => c.ok),
    counts: "at least",
    counted,
    summary: present[0].summary,
    findings: present.flatMap((c) => c.findings).slice(0, 20),
    note: notes.join("; "),
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
      const worst = (key: "correctedP50" | "correctedP99") =>
        mine?.[key] === undefined && a[key] === undefined ? {} : { [key]: Math.max(mine?.[key] ?? 0, a[key] ?? 0) };
      t.actions[name] = mine
        ? {
          count: mine.count + a.count,
          p50: Math.max(mine.p50, a.p50),
          p99: Math.max(mine.p99, a.p99),
          ...worst("correctedP50"),
          ...worst("correctedP99"),
        }
        : { ...a };
    }
    for (const key of ["due", "arrivals", "dropped"] as const) {
      if (point[key] !== undefined) t[key] = (t[key] ?? 0) + point[key];
    }
    t.requests += point.requests;
    t.errors += point.errors;
    t.failedActions = (t.failedActions ?? 0) + (point.failedActions ?? 0);
    t.activeUsers += point.activeUsers;
    t.p50 = Math.max(t.p50, point.p50);
    t.p99 = Math.max(t.p99, point.p99);
    t.max = Math.max(t.max, point.max);
    t.pgBackends = Math.max(t.pgBackends, point.pgBackends);
    if (point.pgActive !== undefined) t.pgActive = Math.max(t.pgActive ?? 0, point.pgActive);
  }
  return [...merged.values()].sort((a, b) => a.t - b.t);
}
