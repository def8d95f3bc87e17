/**
 * What a load run measures as it happens: each action a user's journey times (`act`), each page load tier 3
 * reports, second by second, and the open model's arrivals. One recorder per worker thread; its metrics go into
 * the Results that lib/results.ts builds.
 *
 *   const recorder = new Recorder();
 *   sessionDefaults.onRequest = recorder.requestObserver();
 *   await recorder.action("checkout", () => checkOut(session, basket));
 */
import { performance } from "node:perf_hooks";
import * as hdr from "hdr-histogram-js";
import type { RequestRecord } from "./fetchData.ts";
import { histogram, microseconds } from "./histogram.ts";
import { bucketOf, type MetricCounts } from "./metrics.ts";
import {
  type Failure,
  FAILURES_KEPT,
  type Histogram,
  type Kind,
  type Metric,
  metricOf,
  type OpenResults,
  percentile,
  type Results,
} from "./results.ts";

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
  /** The p99 in ms, kept once asked: the progress line asks it of past seconds, which no longer change. */
  p99?: number;
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

/** A failure as the report shows it; errors that name their step, URL, status and page (StepError) keep them. */
function failureOf(error: unknown): Failure {
  const { step, url, status, excerpt } = (error ?? {}) as Partial<Failure>;
  const message = error instanceof Error ? error.message : String(error);
  return { step: typeof step === "string" ? step : "(unknown)", message, url, status, excerpt };
}
