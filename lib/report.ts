/**
 * Results as a person reads them: the text report printed after a run, and the progress line while it goes.
 * The HTML page (`--report`, lib/report-html.ts) says the same things in the same words: each sentence and
 * threshold is written once, below, and the page adds charts.
 *
 *   npx tsx scripts/load.ts --report report.html                      # after a run
 *   npx tsx scripts/load.ts --merge a.json b.json --report all.html   # from saved (or merged) JSON
 */
import { parseStage, parseStages, rateAt, type Stage, stagesInWords } from "./arrivals.ts";
import { BUSY_SHARE, droppedWhy, entriesOf, lateness, type Results } from "./results.ts";
import type { Recorder } from "./recorder.ts";
import type { MetricCounts } from "./metrics.ts";
import { printableStrings } from "./cli.ts";

// ---------------------------------------------------------------------------------------------
// The sentences, shared by both reports
// ---------------------------------------------------------------------------------------------

/** What was run, against what. */
export function headline(r: Results): string {
  const s = r.settings;
  const about = s.about ? ` (${s.about})` : "";
  return `tierload: ${modelWords(r)}${about} against ${s.url}${
    s.embedded ? ` (${s.app ?? "started for this run"})` : ""
  }`;
}

/** The users and their actions: "8 users x 4 actions", or "1000 users arriving at 50/s for 20 s x 2 actions". */
export function modelWords(r: Results): string {
  const s = r.settings;
  const paced = s.pace ? `, one every ${s.pace} ms` : "";
  if (!r.open) return `${s.users} users x ${s.actions} actions${paced}`;
  const stages = stagesOf(r);
  return `${s.users} users arriving at ${stages ? stagesInWords(stages) : s.stages ?? s.arrivalRate} x ${s.actions} ` +
    `actions${paced}`;
}

/** The run's stages, from its settings (a steady rate lasting as long as its schedule); null if they do not parse. */
function stagesOf(r: Results): Stage[] | null {
  try {
    if (r.settings.stages) return parseStages(r.settings.stages);
    const { open: _, ...stage } = parseStage(String(r.settings.arrivalRate), false);
    return [{ ...stage, seconds: stage.seconds || r.open!.seconds }];
  } catch {
    return null;
  }
}

/** Below this share of its target rate, a run's arrivals fell short, and the report says why. */
const RATE_KEPT = 0.95;

/**
 * Open model: the target arrival rate against the achieved one, the arrivals dropped and why, and how
 * late the generator started those it started.
 */
export function arrivalsSentence(r: Results): { text: string; bad: boolean } | null {
  const o = r.open;
  if (!o) return null;
  const target = o.seconds > 0 ? o.planned / o.seconds : 0;
  const achieved = o.seconds > 0 ? o.started / o.seconds : 0;
  const kept = target > 0 ? achieved / target : 1;
  const dropped = o.droppedBusy + o.droppedLate;
  const notDue = o.planned - o.due;
  const late = lateness(o);
  const how = kept < RATE_KEPT
    ? `short of the target by ${(100 * (1 - kept)).toFixed(1)} %`
    : `${(100 * kept).toFixed(1)} % of it`;
  const stopped = r.stoppedEarly || r.interrupted ? "" : " (--max-duration)";
  const parts = [
    `${o.planned} planned, ${o.started} started`,
    `${dropped} dropped${dropped ? `: ${droppedWhy(o)}` : ` (--max-active ${o.maxActive})`}`,
    ...(notDue ? [`${notDue} not yet due when the run stopped${stopped}`] : []),
  ];
  const allowed = r.settings.maxDropped ?? 0;
  return {
    text: `Arrivals: target ${target.toFixed(1)}/s, achieved ${achieved.toFixed(1)}/s over ${o.seconds.toFixed(1)} s ` +
      `(${how}): ${parts.join(", ")}; those started began after their due time by p50 ${ms(late.p50)} ms, ` +
      `p99 ${ms(late.p99)} ms, max ${ms(late.max)} ms`,
    bad: kept < RATE_KEPT || (o.due > 0 && dropped / o.due > allowed),
  };
}

export const ms = (v: number | undefined) => v === undefined ? "-" : v < 10 ? v.toFixed(2) : v.toFixed(0);

/** Where actions have due times (arrivals, --pace): which latency is which, and which one the thresholds judge. */
export function latencySentence(r: Results): string | null {
  const actions = entriesOf(r, "action").filter(([, a]) => a.corrected);
  if (actions.length === 0) return null;
  const never = actions.filter(([, a]) => !a.corrected!.due).map(([name]) => name);
  const due = r.open ? `its user's arrival${r.settings.pace ? ", or its --pace slot" : ""}` : "its --pace slot";
  const judged = r.settings.judgeLatency === "uncorrected"
    ? "the other rows (--judge-latency uncorrected)"
    : 'the "from due" rows';
  return `Latency: each action is timed twice. The "from due" rows count from when it was due (${due}), so the ` +
    "time it waited for a stalled application counts, as wrk2 measures it (corrected for coordinated omission); " +
    `the other rows count from when it actually started, as a closed model sees it. latency thresholds (--threshold, --max-p99) judge ${judged}.` +
    (never.length
      ? ` Actions never due at a set time (${never.join(", ")}) have one row: both timings are the same.`
      : "");
}

/** How long it ran, and how many actions and requests, and how many of each failed. */
export function requestsSentence(r: Results): string {
  const sum = (kind: "action" | "page", key: "count" | "errors") =>
    entriesOf(r, kind).reduce((n, [, a]) => n + a[key], 0);
  const requests = sum("page", "count");
  return `${r.interrupted ? "Interrupted after" : "Ran for"} ${r.wallSeconds.toFixed(1)} s: ${
    sum("action", "count")
  } ` +
    `actions, ${sum("action", "errors")} failed; ${requests} requests, ${(requests / r.wallSeconds || 0).toFixed(0)} ` +
    `per second, ${sum("page", "errors")} failed${received(r)}${
      r.stoppedEarly ? `; stopped early: ${r.stoppedEarly}` : ""
    }`;
}

/** The bytes of body received on the wire (compressed where the server compressed), where the results count them. */
function received(r: Results): string {
  const pages = entriesOf(r, "page");
  if (pages.length === 0 || pages.some(([, a]) => a.bytes === undefined)) return "";
  const bytes = pages.reduce((n, [, a]) => n + a.bytes!, 0);
  return `; ${bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`} received`;
}

/** The thresholds the verdict applied, each held or breached with what was measured, or that none were set. */
export function thresholdsSentence(r: Results): string {
  const judged = r.thresholds ?? [];
  const errorsCovered = (r.settings.thresholds ?? []).some((t) => t.statistic === "errors" && t.action === "*");
  const failing = errorsCovered ? "" : "; any failed action fails the run";
  const corrected = entriesOf(r, "action").some(([, a]) => a.corrected?.due) &&
    r.settings.judgeLatency !== "uncorrected";
  const latency = corrected && judged.length ? "; latencies judged from each action's due time where it has one" : "";
  const dropped = r.open ? `; --max-dropped ${r.settings.maxDropped ?? "none: no arrival may be dropped"}` : "";
  if (judged.length === 0) return `Thresholds: none set${failing}${dropped}`;
  return `Thresholds: ${
    judged.map((t) => `${t.text} ${t.held ? "held" : "BREACHED"} (${t.measured})`).join(", ")
  }${latency}${failing}${dropped}`;
}

/**
 * For a merge, or an instance of a run started together: how many instances were found against how
 * many the run had, which are missing or doubled, and how late each began against the planned moment.
 */
export function instancesSentences(r: Results): { text: string; bad: boolean }[] {
  const sentences: { text: string; bad: boolean }[] = [];
  const m = r.merged;
  if (m) {
    const problems = [
      m.missing.length ? `missing: ${m.missing.join(", ")}` : "",
      m.duplicates.length ? `found twice, counted once: ${m.duplicates.join(", ")}` : "",
    ].filter(Boolean);
    sentences.push({
      text: `Instances: ${m.found} merged${m.expected === null ? "" : ` of ${m.expected} the run had`}${
        problems.length ? `; ${problems.join("; ")}` : ""
      }`,
      bad: problems.length > 0,
    });
  }
  const starts = (r.instanceDetails ?? []).filter((d) => d.startSkewMs !== undefined);
  if (starts.length) {
    const planned = new Date(starts[0].plannedStart!).toISOString();
    sentences.push({
      text: `Start skew against the planned ${planned}: ${
        starts.map((d) => `${d.instance} ${d.startSkewMs! >= 0 ? "+" : ""}${(d.startSkewMs! / 1000).toFixed(2)} s`)
          .join(", ")
      }`,
      bad: false,
    });
  }
  return sentences;
}

/**
 * What PostgreSQL held and used: connections held (fewest and most), the backends that served the run,
 * the most active at once, max_connections, the application's pool; the backends' memory and files.
 */
export function postgresSentence(r: Results): string {
  const p = r.postgres;
  const pool = p.pool ? `the application's pool: ${p.pool.size}, ${p.pool.mode}` : "";
  if (!p.sampled) {
    return `PostgreSQL: not sampled${p.error ? ` (${p.error})` : " (give --database-url to sample pg_stat_activity)"}${
      pool ? `; ${pool}` : ""
    }`;
  }
  if (!p.held) {
    return `PostgreSQL: peak ${p.peakBackends} client backends, max_connections ${p.maxConnections}`;
  }
  const held = p.held.min === p.held.max
    ? `held ${p.held.max} connections throughout`
    : `held ${p.held.min} to ${p.held.max} connections`;
  const hidden = p.hidden ? ` (${p.hidden} hidden from the sampler's role: grant it pg_read_all_stats)` : "";
  const parts = [
    `${held}${pool ? ` (${pool})` : ""}`,
    `${p.served} served the run's queries${hidden}`,
    `at most ${p.activePeak} active at once`,
    `max_connections ${p.maxConnections}`,
  ];
  const m = p.processes;
  const processes = m
    ? `backends' memory ${megabytes(m.pssBytes)} PSS (${m.count} backends, ${
      megabytes(m.pssBytes / m.count)
    } each), open files per backend ${m.files.min} / ${m.files.median} / ${m.files.max} (min / median / max)`
    : `backends' memory and files not read${p.processesError ? ` (${p.processesError})` : ""}`;
  return `PostgreSQL: ${parts.join(", ")}; ${processes}${p.note ? `; ${p.note}` : ""}`;
}

const megabytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MB`;

/** The end-state check's finding, and whether it is a bad one; a check that did not run found nothing. */
export function checkSentence(r: Results): { text: string; bad: boolean } {
  const c = r.check;
  if (!c) return { text: "End state: not checked (the scenario has no end-state check)", bad: false };
  if (!c.checked) return { text: `${c.name}: not checked (${c.note})`, bad: true };
  const how = c.counts === "exact"
    ? "exactly that (the run was the application's only writer)"
    : "at least that (others may write to it too, so counts are a lower bound)";
  const filled = c.summary.replace(
    /\{(\w+)\}/g,
    (_, key) => key === "how" ? how : String(c.counted[key] ?? `{${key}}`),
  );
  if (c.ok) return { text: `${c.name}: ${filled}`, bad: false };
  const more = c.findings.length > 5 ? `; and ${c.findings.length - 5} more` : "";
  return {
    text: `${c.name.toUpperCase()}: FAILED, counted ${c.counts === "exact" ? "exactly" : "at least"}: ${
      c.findings.slice(0, 5).join("; ")
    }${more}${c.note ? `; ${c.note}` : ""}`,
    bad: true,
  };
}

/** The worker threads a run's users ran in (the report lists them when more than one). */
function threads(g: Results["generator"]): number {
  return g.workers?.length ?? 1;
}

/** "58.0 CPU-s (1.9 starting, 56.1 running)": this process's CPU as the OS counts it; results before 2026-12 lack startup. */
function startedAndRan(g: Results["generator"]): string {
  if (g.startupCpuSeconds === undefined) return `${g.cpuSeconds.toFixed(1)} CPU-s`;
  const total = g.startupCpuSeconds + g.cpuSeconds;
  return `${total.toFixed(1)} CPU-s (${g.startupCpuSeconds.toFixed(1)} starting, ${g.cpuSeconds.toFixed(1)} running)`;
}

export function generatorSentences(r: Results): { text: string; bad: boolean }[] {
  const g = r.generator;
  const machineBusy = g.machineBusyShare > BUSY_SHARE;
  return [
    {
      text: `Generator: ${startedAndRan(g)}, ${g.cpuMsPerRequest.toFixed(2)} ms per request, ${
        (g.coreShare * 100).toFixed(0)
      } % of one core while running; event-loop lag p99 ${g.eventLoopLagP99Ms.toFixed(0)} ms, max ${
        g.eventLoopLagMaxMs.toFixed(0)
      } ms`,
      bad: false,
    },
    ...(g.workers && g.workers.length > 1
      ? [{
        text: `  ${g.workers.length} worker threads: ${
          g.workers.map((w, i) =>
            `${i + 1}: ${w.users} users, ${
              w.busyShare === null ? "busy share not measured" : `${(w.busyShare * 100).toFixed(0)} % busy`
            }, lag p99 ${w.eventLoopLagP99Ms.toFixed(0)} ms`
          ).join("; ")
        }`,
        bad: false,
      }]
      : []),
    ...(g.saturated
      ? [{
        text: "SATURATED: the generator itself was the bottleneck, so its latencies measure it, not the application" +
          (threads(g) < g.cores
            ? `; this machine has ${g.cores} cores: --workers ${g.cores} runs the users in ${g.cores} threads`
            : ""),
        bad: true,
      }]
      : []),
    {
      // The machine's busy share counts every process on it; the generator's own share is measured, the rest is
      // the application, its database, and whatever else runs here.
      text: `Machine: ${g.cores} cores, ${(g.machineBusyShare * 100).toFixed(0)} % busy, of which this generator ${
        ((g.coreShare / Math.max(1, g.cores)) * 100).toFixed(0)
      } %${
        machineBusy
          ? "; the CPUs were the limit (the generator, the application, its database and anything else here share " +
            "them), so latencies include waiting for a CPU"
          : ""
      }`,
      bad: false,
    },
  ];
}

/** PASS or FAIL, or INTERRUPTED: a run that did not finish is no verified success, whatever ran. */
export function verdictWord(r: Results): "PASS" | "FAIL" | "INTERRUPTED" {
  return r.interrupted ? "INTERRUPTED" : r.verdict.ok ? "PASS" : "FAIL";
}

export function verdictSentence(r: Results): string {
  const reasons = r.verdict.reasons.join("; ");
  if (r.interrupted) return `Verdict: INTERRUPTED: ${r.verdict.ok ? "what ran passed" : `what ran failed: ${reasons}`}`;
  return r.verdict.ok ? "Verdict: PASS" : `Verdict: FAIL: ${reasons}`;
}

export const COLUMNS = ["count", "errors", "per s", "min", "p50", "p90", "p95", "p99", "max"];

/** A table row's cells: count, errors, per second, then the latencies in ms. */
export function cells(a: Results["actions"][string]): string[] {
  const m = a.summary;
  return [
    String(m.count),
    String(m.errors),
    m.perSecond.toFixed(1),
    ...[m.min, m.p50, m.p90, m.p95, m.p99, m.max].map(ms),
  ];
}

/**
 * Actions first, each followed by its latencies from its due time where it has them (a row of the same
 * counts, marked "from due"), then the page loads inside them.
 */
export function rowsOf(r: Results): [string, Results["actions"][string]][] {
  return [
    ...entriesOf(r, "action").flatMap(([name, a]): [string, Results["actions"][string]][] =>
      a.corrected?.due ? [[name, a], [`${name}, from due`, { ...a, ...a.corrected }]] : [[name, a]]
    ),
    ...entriesOf(r, "page"),
  ];
}

export function failuresOf(r: Results) {
  return entriesOf(r, "action").flatMap(([name, a]) => a.failures.map((f) => ({ name, ...f })));
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

/**
 * The report a person reads: headline, per-action table, PostgreSQL, the end-state check, generator,
 * verdict. Every string from outside (pages, names, results files) is shown with its control characters
 * escaped, so that nothing a server or a file says can act on the terminal or forge a line.
 *
 *   console.log(formatReport(results));
 */
export function formatReport(results: Results): string {
  const r = printableStrings(results);
  const widths = [7, 8, 8, 9, 9, 9, 9, 9, 9];
  const rows = rowsOf(r).map(([name, a]) => [(a.kind === "page" ? "  " : "") + name, a] as const);
  const nameWidth = Math.max(22, ...rows.map(([name]) => name.length + 2));
  const line = (name: string, values: string[]) =>
    name.padEnd(nameWidth) + values.map((v, i) => v.padStart(widths[i])).join("");
  const lines = [headline(r), requestsSentence(r), "", line("", COLUMNS) + "  ms"];
  for (const [name, a] of rows) lines.push(line(name, cells(a)));
  const latency = latencySentence(r), arrivals = arrivalsSentence(r);
  if (latency) lines.push("", latency);
  lines.push(
    "",
    ...(arrivals ? [arrivals.text] : []),
    thresholdsSentence(r),
    ...instancesSentences(r).map((s) => s.text),
  );
  lines.push(postgresSentence(r), checkSentence(r).text);
  lines.push(...generatorSentences(r).map((s, i) => (i > 0 && s.text.startsWith("SATURATED") ? "  " : "") + s.text));
  const failures = failuresOf(r);
  if (failures.length) {
    lines.push("", "First failures:");
    for (const f of failures) {
      lines.push(`  ${f.name}: ${f.message}`);
      if (f.excerpt) lines.push(`    page: ${f.excerpt.slice(0, 200)}`);
    }
  }
  lines.push("", verdictSentence(r));
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Progress, while a run goes
// ---------------------------------------------------------------------------------------------

/**
 * Done/total actions with percent and ETA, users active, and the last `window` seconds' rate, failures
 * and p99; in the open model, arrivals against the target rate and those dropped first.
 */
export function progressLine(
  progress: Progress,
  plan: { users: number; steps: number; stages?: Stage[]; share?: { stride: number; maxActive: number } | null },
  started: number,
): string {
  const elapsed = (Date.now() - started) / 1000;
  const total = plan.users * plan.steps;
  const { done, failed } = progress;
  // Early on the rate says little (log-ins are slow, actions fast): an ETA only after 10 s and 5 % done.
  const eta = elapsed >= 10 && done >= total / 20 && done < total
    ? `, ETA ${duration((elapsed * (total - done)) / done)}`
    : "";
  const tail = `${progress.requestsPerSecond.toFixed(0)} req/s | ${failed} failed | ` +
    `p99 ${progress.p99 === null ? "-" : progress.p99.toFixed(0)} ms` +
    (progress.pgBackends === null ? "" : ` | PostgreSQL ${progress.pgBackends}`);
  const a = progress.arrivals;
  if (plan.stages && a) {
    const target = rateAt(plan.stages, elapsed) / (plan.share?.stride ?? 1);
    return `[${duration(elapsed)}] ${a.started + a.dropped}/${plan.users} arrivals, ${a.dropped} dropped | ` +
      `${a.perSecond.toFixed(1)}/s, target ${target.toFixed(1)}/s | users ${progress.activeUsers} in flight ` +
      `(max ${plan.share?.maxActive}) | ${done} actions | ${tail}`;
  }
  return `[${duration(elapsed)}] ${done}/${total} actions (${Math.floor((100 * done) / total)} %${eta}) | users ` +
    `${progress.activeUsers}/${plan.users} | ${tail}`;
}

/** Where a run stands: actions done and failed, users active, and the last `window` seconds' requests. */
export interface Progress {
  /** The live metrics' counts, when --metrics-port asks for them. */
  metrics?: MetricCounts[];
  done: number;
  failed: number;
  activeUsers: number;
  requestsPerSecond: number;
  /** The worst p99 of the window's seconds, in ms; null when no request ended in it. */
  p99: number | null;
  /** PostgreSQL's client backends now; null when nothing samples them (no --database-url, no embedded forum). */
  pgBackends: number | null;
  /** Open model: arrivals started and dropped so far, and started a second over the window. */
  arrivals?: { started: number; dropped: number; perSecond: number };
}

/** A recorder's progress over the last `window` seconds. */
export function progressOf(recorder: Recorder, window: number): Progress {
  const now = Math.floor(Date.now() / 1000);
  const recent = Array.from({ length: window }, (_, i) => recorder.seconds.get(now - 1 - i)).filter((x) =>
    x !== undefined
  );
  return {
    done: recorder.count("action"),
    failed: recorder.errors("action"),
    activeUsers: recorder.activeUsers,
    requestsPerSecond: recent.reduce((n, s) => n + s.requests, 0) / window,
    p99: recent.length
      ? Math.max(0, ...recent.map((s) => s.p99 ??= s.histogram.getValueAtPercentile(99) / 1000))
      : null,
    pgBackends: recorder.pgBackends,
    arrivals: recorder.arrivals && {
      started: recorder.arrivals.started,
      dropped: recorder.arrivals.droppedBusy + recorder.arrivals.droppedLate,
      perSecond: recent.reduce((n, s) => n + s.arrivals, 0) / window,
    },
    metrics: recorder.bounds ? recorder.counts() : undefined,
  };
}

/** The progress of several worker threads as one: counts add up, the worst p99 stands for all. */
export function sumProgress(all: Progress[], pgBackends: number | null): Progress {
  const p99s = all.map((p) => p.p99).filter((p): p is number => p !== null);
  return {
    done: all.reduce((n, p) => n + p.done, 0),
    failed: all.reduce((n, p) => n + p.failed, 0),
    activeUsers: all.reduce((n, p) => n + p.activeUsers, 0),
    requestsPerSecond: all.reduce((n, p) => n + p.requestsPerSecond, 0),
    p99: p99s.length ? Math.max(...p99s) : null,
    pgBackends,
    arrivals: all.some((p) => p.arrivals)
      ? {
        started: all.reduce((n, p) => n + (p.arrivals?.started ?? 0), 0),
        dropped: all.reduce((n, p) => n + (p.arrivals?.dropped ?? 0), 0),
        perSecond: all.reduce((n, p) => n + (p.arrivals?.perSecond ?? 0), 0),
      }
      : undefined,
  };
}

const duration = (seconds: number) =>
  seconds < 60
    ? `${seconds.toFixed(0)}s`
    : `${Math.floor(seconds / 60)}m${String(Math.round(seconds % 60)).padStart(2, "0")}s`;
