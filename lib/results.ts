/**
 * A load run's results, the JSON: what they hold, one builder of Results for a run and for a merge of
 * several, and the judge that turns Results into a verdict. (What feeds them is lib/recorder.ts; the
 * samplers, lib/samplers.ts; combining several, lib/merge.ts; reading saved ones back, lib/results-file.ts.)
 *
 *   const results = buildResults({ ...facts, metrics: recorder.metrics, timeline: recorder.timeline() }, thresholds);
 *
 * Latencies are kept in HDR histograms (microseconds, three significant digits), which the JSON keeps
 * compressed so that instances merge exactly.
 */
import * as hdr from "hdr-histogram-js";
import { histogram } from "./histogram.ts";
import type { BackendProcesses, LoopLoad, PgFindings } from "./samplers.ts";
import { type Judged, judgeThresholds, type Threshold } from "./thresholds.ts";

/** Above this share of a core (the generator's JavaScript) or of the machine, that was the limit. */
export const BUSY_SHARE = 0.9;
/** Failures kept per action and page load, with their pages, for the report. */
export const FAILURES_KEPT = 5;

export type Histogram = ReturnType<typeof histogram>;

export interface Failure {
  step: string;
  message: string;
  url?: string;
  status?: number;
  excerpt?: string;
}

/** An action (signup, reply: a user's step) or a page load inside one (`GET /basket`). */
export type Kind = "action" | "page";

export interface Metric {
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
export function metricOf(metrics: Map<string, Metric>, name: string, kind: Kind): Metric {
  let metric = metrics.get(name);
  if (!metric) {
    metrics.set(name, metric = { kind, count: 0, errors: 0, bytes: 0, histogram: histogram(), due: 0, failures: [] });
  }
  return metric;
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
    /** This process's CPU (all its threads) while its users ran. */
    cpuSeconds: number;
    /**
     * This process's CPU before its users began: the runtime, loading the modules, starting the worker threads (the
     * application's own process not included). Absent in results before 2026-12.
     */
    startupCpuSeconds?: number;
    /** Startup and run together, per page load: what the OS counts for this process, per request. */
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
  const cpuMsPerRequest = requests
    ? ((generator.cpuSeconds + (generator.startupCpuSeconds ?? 0)) * 1000) / requests
    : 0;
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
export function percentile(h: Histogram, p: number): number {
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
