/**
 * Live metrics while a run goes, in Prometheus' text exposition format (`--metrics-port`), for a Prometheus or
 * Grafana that watches the run: counters of actions and page loads by name and outcome, their latency
 * histograms (buckets from 1 ms up to the request timeout), the users active, PostgreSQL's backends.
 *
 *   const server = await serveMetrics({ port: 9464 }, () => snapshot);  // http://127.0.0.1:9464/metrics
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** One action's or page load's counts so far: attempts, failures, the sum of latencies, counts per bucket. */
export interface MetricCounts {
  name: string;
  kind: "action" | "page";
  count: number;
  errors: number;
  sumMs: number;
  /** Counts per bucket of `bucketBounds` (not cumulative), the last for above every bound. */
  buckets: number[];
}

export interface MetricsSnapshot {
  metrics: MetricCounts[];
  activeUsers: number;
  pgBackends: number;
}

/** Bucket upper bounds in ms, 1-2.5-5 steps from 1 ms to the first at or above `timeoutMs`: the range latencies take. */
export function bucketBounds(timeoutMs: number): number[] {
  const bounds: number[] = [];
  for (let decade = 1; bounds.length === 0 || bounds[bounds.length - 1] < timeoutMs; decade *= 10) {
    for (const step of [1, 2.5, 5]) {
      if (bounds.length === 0 || bounds[bounds.length - 1] < timeoutMs) bounds.push(step * decade);
    }
  }
  return bounds;
}

/** The bucket of `ms` among `bounds`: the first bound at or above it, else the last (above every bound). */
export function bucketOf(bounds: number[], ms: number): number {
  let i = 0;
  while (i < bounds.length && ms > bounds[i]) i++;
  return i;
}

/** Several threads' counts as one: by name, every count added. */
export function addCounts(all: MetricCounts[][]): MetricCounts[] {
  const byName = new Map<string, MetricCounts>();
  for (const m of all.flat()) {
    const mine = byName.get(m.name);
    if (!mine) byName.set(m.name, { ...m, buckets: [...m.buckets] });
    else {
      mine.count += m.count;
      mine.errors += m.errors;
      mine.sumMs += m.sumMs;
      m.buckets.forEach((n, i) => mine.buckets[i] = (mine.buckets[i] ?? 0) + n);
    }
  }
  return [...byName.values()];
}

/** A label value as the exposition format writes it. */
function label(value: string): string {
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`;
}

/** The snapshot in Prometheus' text exposition format (version 0.0.4). */
export function exposition(snapshot: MetricsSnapshot, bounds: number[]): string {
  const lines: string[] = [];
  for (const [kind, noun] of [["action", "actions"], ["page", "page_loads"]] as const) {
    const metrics = snapshot.metrics.filter((m) => m.kind === kind);
    const what = kind === "action" ? "Actions (a user's steps)" : "Page loads (requests, each redirect hop apart)";
    lines.push(`# HELP tierload_${noun}_total ${what} ended, by name and outcome.`);
    lines.push(`# TYPE tierload_${noun}_total counter`);
    for (const m of metrics) {
      lines.push(`tierload_${noun}_total{name=${label(m.name)},outcome="ok"} ${m.count - m.errors}`);
      lines.push(`tierload_${noun}_total{name=${label(m.name)},outcome="failed"} ${m.errors}`);
    }
    const histogram = `tierload_${kind === "action" ? "action" : "page_load"}_duration_seconds`;
    lines.push(`# HELP ${histogram} ${what}: latency in seconds.`);
    lines.push(`# TYPE ${histogram} histogram`);
    for (const m of metrics) {
      let cumulative = 0;
      bounds.forEach((bound, i) => {
        cumulative += m.buckets[i] ?? 0;
        lines.push(`${histogram}_bucket{name=${label(m.name)},le="${bound / 1000}"} ${cumulative}`);
      });
      lines.push(`${histogram}_bucket{name=${label(m.name)},le="+Inf"} ${m.count}`);
      lines.push(`${histogram}_sum{name=${label(m.name)}} ${m.sumMs / 1000}`);
      lines.push(`${histogram}_count{name=${label(m.name)}} ${m.count}`);
    }
  }
  lines.push("# HELP tierload_active_users Users on their journey now.", "# TYPE tierload_active_users gauge");
  lines.push(`tierload_active_users ${snapshot.activeUsers}`);
  lines.push("# HELP tierload_postgresql_backends PostgreSQL client backends at the last sample.");
  lines.push("# TYPE tierload_postgresql_backends gauge", `tierload_postgresql_backends ${snapshot.pgBackends}`);
  return lines.join("\n") + "\n";
}

export interface MetricsServer {
  url: string;
  /** Marks the run as ended: the values are final from now on. */
  ended(): void;
  /**
   * Stops serving, after waiting (at most `holdMs`) for one scrape of the final values, so that a Prometheus
   * watching the run holds the run's own totals.
   */
  stop(holdMs: number, onWait?: () => void): Promise<void>;
}

/** Serves `snapshot()` at http://host:port/metrics; port 0 takes a free one. */
export async function serveMetrics(
  { port, host = "127.0.0.1" }: { port: number; host?: string },
  snapshot: () => MetricsSnapshot,
  bounds: number[],
): Promise<MetricsServer> {
  let ended = false;
  let finalServed = false;
  let finalScrape: () => void = () => {};
  const scrapedAfterEnd = new Promise<void>((resolve) => finalScrape = resolve);
  const server = createServer((req, res) => {
    if (req.method !== "GET" || !req.url?.startsWith("/metrics")) {
      res.writeHead(404, { "content-type": "text/plain" }).end("tierload serves /metrics only\n");
      return;
    }
    const body = exposition(snapshot(), bounds);
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(body);
    if (ended) {
      finalServed = true;
      finalScrape();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) => reject(new Error(`Cannot serve metrics on ${host}:${port}: ${error.message}`)));
    server.listen(port, host, resolve);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}/metrics`,
    ended: () => ended = true,
    async stop(holdMs, onWait) {
      ended = true;
      if (!finalServed && holdMs > 0) {
        onWait?.();
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([scrapedAfterEnd, new Promise((resolve) => timer = setTimeout(resolve, holdMs))]);
        clearTimeout(timer);
      }
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
