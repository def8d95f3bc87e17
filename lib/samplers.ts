/**
 * What watches a load run besides its recorder: the machine's CPUs, the generator's event loop (lag and
 * utilization, per thread), and PostgreSQL's client backends: held, active, which served, their memory and files.
 *
 *   const busy = watchMachine();   // ... the run ...   busy() // 0.97
 */
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { cpus, platform } from "node:os";
import { performance } from "node:perf_hooks";
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
 * Event-loop lag (how late a 100 ms timer fires) and how busy the thread that calls it was: the share of the
 * time it ran on a CPU, from its own line in /proc (Linux), else its event loop's utilization (which also
 * counts the time the thread waited for a CPU, so a busy machine looks like a busy generator). High lag or a
 * thread near fully busy means the generator, not the app, is slow.
 */
export function watchEventLoop(): { stop(): LoopLoad } {
  const lag = histogram();
  const utilization = performance.eventLoopUtilization();
  const started = performance.now();
  const cpuBefore = threadCpuSeconds();
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
      const cpu = threadCpuSeconds();
      const seconds = (performance.now() - started) / 1000;
      return {
        // HDR answers a bucket's highest value, which may pass the true maximum.
        eventLoopLagP99Ms: Math.min(lag.getValueAtPercentile(99), lag.maxValue) / 1000,
        eventLoopLagMaxMs: lag.maxValue / 1000,
        busyShare: cpu !== null && cpuBefore !== null && seconds > 0
          ? Math.min(1, (cpu - cpuBefore) / seconds)
          : used.idle + used.active > 0
          ? used.utilization
          : null,
      };
    },
  };
}

/**
 * The CPU-seconds (user and system) the calling thread has run, from /proc/thread-self/stat (in the clock ticks
 * of 1/100 s that Linux reports there); null where there is no such file.
 */
function threadCpuSeconds(): number | null {
  try {
    const stat = readFileSync("/proc/thread-self/stat", "utf8");
    // The name (2nd field) is in parentheses and may hold spaces: the fields after it start at the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** One look at PostgreSQL's client backends: how many are connected, and how many are running a statement. */
export interface PgSample {
  held: number;
  active: number;
}

/** The client backends' processes, read from /proc at the look where their memory summed highest. */
export interface BackendProcesses {
  /** Backends read. */
  count: number;
  /** Their proportional set sizes summed (smaps_rollup's Pss): memory shared between them counted once. */
  pssBytes: number;
  /** Open files per backend (the entries of /proc/<pid>/fd). */
  files: { min: number; median: number; max: number };
}

/** What the sampler found over a run. */
export interface PgFindings {
  maxConnections: number;
  /** Client backends connected (the samplers' own excluded), fewest and most over the run. */
  held: { min: number; max: number };
  /** The most client backends in state 'active' at one look. */
  activePeak: number;
  /**
   * The client backends that ran at least one statement during the run (their query_start moved past
   * the sampler's start), by process id: the merge unites them for instances of one server.
   */
  servedPids: number[];
  /** Which server run the process ids belong to: its address, port and start time. */
  server: string;
  /** Backends whose activity the sampler's role may not see (it lacks pg_read_all_stats): served misses them. */
  hidden: number;
  processes?: BackendProcesses;
  /** Why the backends' processes were not read (the database is not on this machine, say). */
  processesError?: string;
  /** The first failed look, if any. */
  error?: string;
}

export interface PgSampler {
  /** Looks a last time (and reads the processes), then closes its connection. */
  stop(): Promise<void>;
  findings(): PgFindings;
}

/** What the sampler calls itself, so that every instance's sampler leaves the others out of its counts. */
const SAMPLER_NAME = "tierload-sampler";
/** How often the backends' processes are read: a look at 1000 of them costs about 0.35 CPU-s (measured here). */
const PROCESSES_EVERY_MS = 30_000;

const SAMPLE = `
SELECT count(*)::int AS held,
  count(*) FILTER (WHERE state = 'active')::int AS active,
  count(*) FILTER (WHERE query = '<insufficient privilege>')::int AS hidden,
  coalesce(array_agg(pid) FILTER (WHERE query_start >= greatest($1::timestamptz, $2::timestamptz)), '{}') AS served,
  CASE WHEN $3::boolean THEN coalesce(array_agg(pid), '{}') END AS pids,
  (clock_timestamp() - interval '2 seconds')::text AS since
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND application_name <> '${SAMPLER_NAME}'`;

/**
 * Looks at PostgreSQL's client backends five times a second (every sampler's own connection left out),
 * telling `onSample`: held and active, and which backends ran a statement since the last look (a
 * backend's query_start is when its latest statement began: one that moved past the sampler's start
 * served the run, which is exact for every backend alive at some look after its statement began).
 * Where the database is on this machine, every 30 s and at the end it reads the backends' memory and
 * open files from /proc.
 */
export async function samplePostgres(databaseUrl: string, onSample: (sample: PgSample) => void): Promise<PgSampler> {
  // Imported here: the event-loop watch, which every worker thread runs, needs no database driver.
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: databaseUrl, application_name: SAMPLER_NAME });
  client.on("error", () => {});
  await client.connect();
  const facts = (await client.query(
    `SELECT current_setting('max_connections')::int AS max, clock_timestamp()::text AS start,
       coalesce(host(inet_server_addr()), 'local socket') || ':' || coalesce(inet_server_port()::text, '') ||
         ', started ' || pg_postmaster_start_time() AS server`,
  )).rows[0];
  const local = localProcesses(databaseUrl);
  let since: string = facts.start;
  let lastProcesses = 0;
  let min = Infinity;
  let max = 0;
  let activePeak = 0;
  let hidden = 0;
  let error: string | undefined;
  let processes: BackendProcesses | undefined;
  let processesError = typeof local === "string" ? local : undefined;
  const served = new Set<number>();
  let busy: Promise<void> = Promise.resolve();
  let sampling = false;

  const look = async (final = false) => {
    const readProcesses = processesError === undefined && (final || Date.now() - lastProcesses >= PROCESSES_EVERY_MS);
    try {
      const row = (await client.query(SAMPLE, [facts.start, since, readProcesses])).rows[0];
      since = row.since;
      min = Math.min(min, row.held);
      max = Math.max(max, row.held);
      activePeak = Math.max(activePeak, row.active);
      hidden = Math.max(hidden, row.hidden);
      for (const pid of row.served) served.add(pid);
      onSample({ held: row.held, active: row.active });
      if (readProcesses) {
        lastProcesses = Date.now();
        const read = await readBackends(row.pids);
        if (typeof read === "string") processesError = read;
        else if (read && read.pssBytes > (processes?.pssBytes ?? -1)) processes = read;
      }
    } catch (e) {
      error ??= (e as Error).message;
    }
  };
  const timer = setInterval(() => {
    if (sampling) return;
    sampling = true;
    busy = look().finally(() => sampling = false);
  }, 200);
  let stopped: Promise<void> | null = null;
  return {
    stop() {
      stopped ??= (async () => {
        clearInterval(timer);
        await busy;
        await look(true);
        await client.end().catch(() => {});
      })();
      return stopped;
    },
    findings: () => ({
      maxConnections: facts.max,
      held: { min: min === Infinity ? 0 : min, max },
      activePeak,
      servedPids: [...served].sort((a, b) => a - b),
      server: facts.server,
      hidden,
      processes,
      processesError: processes ? undefined : processesError ?? (local === true ? "no backend was read" : undefined),
      error,
    }),
  };
}

/** True when the database's processes can be read here (/proc, a loopback or socket address); else why not. */
function localProcesses(databaseUrl: string): true | string {
  if (platform() !== "linux") return `its processes are read from /proc, which ${platform()} has not`;
  let host = "";
  try {
    const url = new URL(databaseUrl);
    host = url.searchParams.get("host") ?? decodeURIComponent(url.hostname).replace(/^\[|\]$/g, "");
  } catch {
    return "its address could not be read from --database-url";
  }
  const local = host === "" || host.startsWith("/") || host === "localhost" || /^127\./.test(host) || host === "::1";
  return local ? true : `the database at ${host} is not on this machine`;
}

/**
 * The memory (PSS) and open files of the backends `pids`, from /proc: null when none could be read (all
 * ended), a reason when they are not this machine's or may not be read.
 */
async function readBackends(pids: number[]): Promise<BackendProcesses | string | null> {
  const read: { pss: number; files: number }[] = [];
  let problem: string | null = null;
  const one = async (pid: number) => {
    try {
      const comm = (await readFile(`/proc/${pid}/comm`, "utf8")).trim();
      if (comm !== "postgres") {
        problem ??= `backend ${pid} is not a postgres process here ("${comm}"): the database runs in another ` +
          `machine or container`;
        return;
      }
      const rollup = await readFile(`/proc/${pid}/smaps_rollup`, "utf8");
      const files = (await readdir(`/proc/${pid}/fd`)).length;
      read.push({ pss: Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024, files });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "ENOENT" || code === "ESRCH") return; // it ended since the look
      problem ??= `cannot read /proc/${pid} (${code ?? (error as Error).message}): run as root or as the ` +
        `database's user`;
    }
  };
  for (let i = 0; i < pids.length && !problem; i += 64) await Promise.all(pids.slice(i, i + 64).map(one));
  if (problem) return problem;
  if (read.length === 0) return null;
  const files = read.map((r) => r.files).sort((a, b) => a - b);
  return {
    count: read.length,
    pssBytes: read.reduce((n, r) => n + r.pss, 0),
    files: { min: files[0], median: files[Math.floor(files.length / 2)], max: files.at(-1)! },
  };
}
