/**
 * Several results as one: the worker threads of a run (`combine`), and the instances of a test (`merge`,
 * for --merge), exactly: counts add up and HDR histograms merge. A merge trusts nothing it reads: it judges
 * with the instances' own thresholds, and refuses results that cannot be parts of one test.
 *
 *   const all = merge(["a.json", "b.json"].flatMap((file) => readResultsFrom(file)));
 */
import * as hdr from "hdr-histogram-js";
import { histogram } from "./histogram.ts";
import {
  buildResults,
  type EndCheck,
  type Facts,
  FAILURES_KEPT,
  type InstanceDetail,
  type Metric,
  metricOf,
  type OpenResults,
  type PostgresResults,
  type Results,
} from "./results.ts";
import type { Threshold } from "./thresholds.ts";

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
      ...(all.some((r) => r.generator.startupCpuSeconds !== undefined)
        ? { startupCpuSeconds: all.reduce((n, r) => n + (r.generator.startupCpuSeconds ?? 0), 0) }
        : {}),
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
