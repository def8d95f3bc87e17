/**
 * What watches a load run besides its recorder: the machine's CPUs, the generator's event loop (lag and
 * utilization, per thread), and PostgreSQL's client backends.
 *
 *   const busy = watchMachine();   // ... the run ...   busy() // 0.97
 */
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import pg from "pg";
import { histogram, microseconds } from "./histogram.ts";

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

/** Counts client backends in pg_stat_activity five times a second (its own connection excluded), telling `onSample`. */
export async function samplePostgres(databaseUrl: string, onSample: (backends: number) => void): Promise<PgSampler> {
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
      const backends: number = result.rows[0].n;
      sampler.peak = Math.max(sampler.peak, backends);
      onSample(backends);
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
