/**
 * Results as a person reads them: the text report printed after a run, and the self-contained HTML page
 * (`--report`). Both say the same things in the same words: each sentence and threshold is written
 * once, below, and the page adds charts (inline SVG drawn here: the page loads nothing and runs no
 * script, in light or dark colours, at any width).
 *
 *   npx tsx scripts/load.ts --report report.html                      # after a run
 *   npx tsx scripts/load.ts --merge a.json b.json --report all.html   # from saved (or merged) JSON
 */
import { parseStage, parseStages, rateAt, type Stage, stagesInWords } from "./arrivals.ts";
import {
  BUSY_SHARE,
  distribution,
  droppedWhy,
  entriesOf,
  lateness,
  type OpenResults,
  type Recorder,
  type Results,
} from "./results.ts";
import { escapeHtml } from "./web.ts";
import type { MetricCounts } from "./metrics.ts";
import { printableStrings } from "./cli.ts";

// ---------------------------------------------------------------------------------------------
// The sentences, shared by both reports
// ---------------------------------------------------------------------------------------------

/** What was run, against what. */
function headline(r: Results): string {
  const s = r.settings;
  const about = s.about ? ` (${s.about})` : "";
  return `tierload: ${modelWords(r)}${about} against ${s.url}${
    s.embedded ? ` (${s.app ?? "started for this run"})` : ""
  }`;
}

/** The users and their actions: "8 users x 4 actions", or "1000 users arriving at 50/s for 20 s x 2 actions". */
function modelWords(r: Results): string {
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
function arrivalsSentence(r: Results): { text: string; bad: boolean } | null {
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

const ms = (v: number | undefined) => v === undefined ? "-" : v < 10 ? v.toFixed(2) : v.toFixed(0);

/** Where actions have due times (arrivals, --pace): which latency is which, and which one the thresholds judge. */
function latencySentence(r: Results): string | null {
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
function requestsSentence(r: Results): string {
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
function thresholdsSentence(r: Results): string {
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
function instancesSentences(r: Results): { text: string; bad: boolean }[] {
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
function postgresSentence(r: Results): string {
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
function checkSentence(r: Results): { text: string; bad: boolean } {
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

function generatorSentences(r: Results): { text: string; bad: boolean }[] {
  const g = r.generator;
  const machineBusy = g.machineBusyShare > BUSY_SHARE;
  return [
    {
      text: `Generator: ${g.cpuSeconds.toFixed(1)} CPU-s, ${g.cpuMsPerRequest.toFixed(2)} ms per request, ${
        (g.coreShare * 100).toFixed(0)
      } % of one core; event-loop lag p99 ${g.eventLoopLagP99Ms.toFixed(0)} ms, max ${
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
        text: "SATURATED: the generator itself was the bottleneck, so its latencies measure it, not the application",
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
function verdictWord(r: Results): "PASS" | "FAIL" | "INTERRUPTED" {
  return r.interrupted ? "INTERRUPTED" : r.verdict.ok ? "PASS" : "FAIL";
}

function verdictSentence(r: Results): string {
  const reasons = r.verdict.reasons.join("; ");
  if (r.interrupted) return `Verdict: INTERRUPTED: ${r.verdict.ok ? "what ran passed" : `what ran failed: ${reasons}`}`;
  return r.verdict.ok ? "Verdict: PASS" : `Verdict: FAIL: ${reasons}`;
}

const COLUMNS = ["count", "errors", "per s", "min", "p50", "p90", "p95", "p99", "max"];

/** A table row's cells: count, errors, per second, then the latencies in ms. */
function cells(a: Results["actions"][string]): string[] {
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
function rowsOf(r: Results): [string, Results["actions"][string]][] {
  return [
    ...entriesOf(r, "action").flatMap(([name, a]): [string, Results["actions"][string]][] =>
      a.corrected?.due ? [[name, a], [`${name}, from due`, { ...a, ...a.corrected }]] : [[name, a]]
    ),
    ...entriesOf(r, "page"),
  ];
}

function failuresOf(r: Results) {
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
    `p99 ${progress.p99 === null ? "-" : progress.p99.toFixed(0)} ms | PostgreSQL ${progress.pgBackends}`;
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
  pgBackends: number;
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
    p99: recent.length ? Math.max(0, ...recent.map((s) => s.histogram.getValueAtPercentile(99) / 1000)) : null,
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
export function sumProgress(all: Progress[], pgBackends: number): Progress {
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

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

const SERIES = ["var(--c1)", "var(--c2)", "var(--c3)", "var(--c4)", "var(--c5)", "var(--c6)"];

interface Series {
  name: string;
  points: [number, number][];
  dashed?: boolean;
  /** Index into the palette; series of one action (p50, p99) share a colour. */
  colour?: number;
}

/**
 * A line chart: x and y axes with a few round ticks, one polyline per series, a legend.
 * `xTicks` places the x labels (default: five, evenly spread).
 */
function lineChart(
  title: string,
  yUnit: string,
  series: Series[],
  xLabels: (x: number) => string,
  xTicks?: number[],
  scale: "linear" | "log" = "linear",
): string {
  const width = 720, height = 240, left = 56, right = 28, top = 12, bottom = 28;
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) {
    return `<figure class="chart"><figcaption>${escapeHtml(title)}</figcaption><p class="empty">No data.</p></figure>`;
  }
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const sx = (x: number) => left + (x1 === x0 ? 0 : ((x - x0) / (x1 - x0)) * (width - left - right));
  const { ticks, fraction } = scale === "log" ? logAxis(all.map((p) => p[1])) : linearAxis(all.map((p) => p[1]));
  const sy = (y: number) => top + (1 - fraction(y)) * (height - top - bottom);
  const xs = xTicks ?? [0, 0.25, 0.5, 0.75, 1].map((f) => x0 + f * (x1 - x0));
  const colour = (s: Series, i: number) => SERIES[(s.colour ?? i) % SERIES.length];
  const lines = series.map((s, i) => {
    const path = s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    return `<polyline class="series" fill="none" stroke="${colour(s, i)}" stroke-width="2"` +
      `${s.dashed ? ' stroke-dasharray="6 4"' : ""} points="${path}"><title>${escapeHtml(s.name)}</title></polyline>`;
  });
  return `<figure class="chart" data-chart="${escapeHtml(title)}">
<figcaption>${escapeHtml(title)}</figcaption>
<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(title)}">
${
    ticks.map((y) =>
      `<line class="grid" x1="${left}" x2="${width - right}" y1="${sy(y)}" y2="${sy(y)}"/><text class="tick" x="${
        left - 6
      }" y="${sy(y) + 4}" text-anchor="end">${formatNumber(y)}</text>`
    ).join("\n")
  }
${
    xs.map((x) =>
      `<text class="tick" x="${sx(x)}" y="${height - 8}" text-anchor="middle">${escapeHtml(xLabels(x))}</text>`
    )
      .join("\n")
  }
<text class="unit" x="${left}" y="${top - 2}">${escapeHtml(yUnit)}</text>
${lines.join("\n")}
</svg>
<ul class="legend">${
    series.map((s, i) =>
      `<li><svg class="swatch" viewBox="0 0 24 6" aria-hidden="true"><line x1="0" y1="3" x2="24" y2="3" stroke="${
        colour(s, i)
      }" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="6 3"' : ""}/></svg>${escapeHtml(s.name)}</li>`
    ).join("")
  }</ul>
</figure>`;
}

/** A linear axis from 0 with four or five ticks at round steps (1, 2 or 5 times a power of ten). */
function linearAxis(values: number[]): { ticks: number[]; fraction: (y: number) => number } {
  const max = Math.max(...values, 1);
  const raw = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((m) => m >= raw)!;
  const top = Math.ceil(max / step) * step;
  const ticks = Array.from({ length: Math.round(top / step) + 1 }, (_, i) => i * step);
  return { ticks, fraction: (y) => y / top };
}

/** A logarithmic axis at powers of ten, so that fast and slow actions both show their shape. */
function logAxis(values: number[]): { ticks: number[]; fraction: (y: number) => number } {
  const positive = values.filter((v) => v > 0);
  const low = 10 ** Math.floor(Math.log10(Math.min(...positive, 1)));
  const high = 10 ** Math.ceil(Math.log10(Math.max(...positive, 10)));
  const ticks: number[] = [];
  for (let t = low; t <= high; t *= 10) ticks.push(t);
  const span = Math.log10(high) - Math.log10(low);
  return { ticks, fraction: (y) => (Math.log10(Math.max(y, low)) - Math.log10(low)) / span };
}

function formatNumber(value: number): string {
  return value >= 1000 ? `${+(value / 1000).toFixed(1)}k` : `${+value.toFixed(value < 1 ? 3 : value < 10 ? 1 : 0)}`;
}

/** One action's latency percentile, second by second (results written before 2026-11 lack it). */
function perAction(
  r: Results,
  name: string,
  t0: number,
  key: "p50" | "p99" | "correctedP99",
): [number, number][] {
  return r.timeline.filter((x) => x.actions?.[name]?.[key] !== undefined).map((x) => [x.t - t0, x.actions[name][key]!]);
}

/** Open model: the arrivals that fell due each second (the target), those started, and those dropped. */
function arrivalsChart(
  open: OpenResults,
  at: (pick: (p: Results["timeline"][number]) => number) => [number, number][],
  seconds: (t: number) => string,
): string {
  return lineChart(`Arrivals per second: target and achieved (--max-active ${open.maxActive})`, "per second", [
    { name: "due (target)", points: at((x) => x.due ?? 0), dashed: true },
    { name: "started (achieved)", points: at((x) => x.arrivals ?? 0) },
    { name: "dropped", points: at((x) => x.dropped ?? 0) },
  ], seconds);
}

/** The percentiles at which the distribution chart reads each action's histogram. */
const PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 99, 99.9, 100];

const item = (s: { text: string; bad: boolean }) => `<li${s.bad ? ' class="bad"' : ""}>${escapeHtml(s.text)}</li>`;

/** The self-contained HTML page: settings, verdict, table, charts over time, distributions, failures. *
 *   writeFileSync("run.html", renderReport(results));
 */
export function renderReport(r: Results): string {
  const s = r.settings;
  const t0 = r.timeline[0]?.t ?? Math.floor(r.startedAt / 1000);
  const span = (r.timeline.at(-1)?.t ?? t0) - t0;
  const seconds = (t: number) => `${span < 10 ? t.toFixed(1) : Math.round(t)} s`;
  const at = (pick: (p: Results["timeline"][number]) => number) =>
    r.timeline.map((p) => [p.t - t0, pick(p)] as [number, number]);
  const actions = entriesOf(r, "action");
  const verdict = verdictWord(r);
  const corrected = new Set(actions.filter(([, a]) => a.corrected?.due).map(([name]) => `${name}, from due`));
  const row = ([name, a]: [string, Results["actions"][string]]) =>
    `<tr class="${a.kind}${corrected.has(name) ? " due" : ""}"><th>${escapeHtml(name)}</th>` +
    cells(a).map((v, i) => `<td${i === 1 && a.summary.errors ? ' class="bad"' : ""}>${v}</td>`).join("") + "</tr>";
  const p = r.postgres;
  const charts = [
    lineChart("Requests and failures per second", "per second", [
      { name: "requests", points: at((x) => x.requests) },
      // Results written before failed actions were counted per second have only failed requests.
      { name: "failed actions", points: at((x) => x.failedActions ?? x.errors) },
      { name: "failed requests", points: at((x) => x.errors), dashed: true },
    ], seconds),
    lineChart(
      "Latency per action, p50 (solid) and p99 (dashed), log scale",
      "ms",
      actions.flatMap(([name, a], i) => [
        { name: `${name} p50`, points: perAction(r, name, t0, "p50"), colour: i },
        { name: `${name} p99`, points: perAction(r, name, t0, "p99"), dashed: true, colour: i },
        ...(a.corrected?.due
          ? [{
            name: `${name} p99 from due`,
            points: perAction(r, name, t0, "correctedP99"),
            colour: i + actions.length,
          }]
          : []),
      ]),
      seconds,
      undefined,
      "log",
    ),
    ...(r.open ? [arrivalsChart(r.open, at, seconds)] : []),
    lineChart("Active users", "users", [
      { name: "active users", points: at((x) => x.activeUsers) },
      ...(r.open
        ? [{ name: `--max-active ${r.open.maxActive}`, points: at(() => r.open!.maxActive), dashed: true }]
        : []),
    ], seconds),
    p.sampled
      ? lineChart("PostgreSQL connections, held and active", "backends", [
        { name: "held", points: at((x) => x.pgBackends) },
        ...(r.timeline.some((x) => x.pgActive !== undefined)
          ? [{ name: "active", points: at((x) => x.pgActive ?? 0) }]
          : []),
        { name: `max_connections ${p.maxConnections}`, points: at(() => p.maxConnections), dashed: true },
        ...(p.pool
          ? [{ name: `${p.pool.mode} pool ${p.pool.size}`, points: at(() => p.pool!.size), dashed: true }]
          : []),
      ], seconds)
      : `<figure class="chart"><figcaption>PostgreSQL connections, held and active</figcaption><p class="empty">${
        escapeHtml(postgresSentence(r))
      }.</p></figure>`,
    lineChart(
      "Latency distribution per action",
      "ms",
      actions.flatMap(([name, a], i) => [
        { name, points: distribution(a, PERCENTILES).map((ms, j) => [j, ms] as [number, number]), colour: i },
        ...(a.corrected?.due
          ? [{
            name: `${name} from due`,
            points: distribution({ ...a, ...a.corrected }, PERCENTILES).map((ms, j) => [j, ms] as [number, number]),
            dashed: true,
            colour: i,
          }]
          : []),
      ]),
      (i) => `p${PERCENTILES[i]}`,
      PERCENTILES.map((_, i) => i),
      "log",
    ),
  ];
  const failures = failuresOf(r);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>tierload report: ${escapeHtml(s.users)} users${r.open ? " arriving" : ""}, ${verdict}</title>
<style>
:root { color-scheme: light dark; --bg: #fff; --fg: #1d1d1f; --muted: #6e6e73; --grid: #e5e5ea; --bad: #c62828; --good: #2e7d32;
  --c1: #1f77b4; --c2: #d62728; --c3: #2ca02c; --c4: #9467bd; --c5: #ff7f0e; --c6: #17becf; }
@media (prefers-color-scheme: dark) { :root { --bg: #111114; --fg: #f2f2f7; --muted: #a1a1aa; --grid: #2c2c30; --bad: #ef5350; --good: #66bb6a;
  --c1: #5fa8e8; --c2: #f26b6b; --c3: #6cd46c; --c4: #b99be0; --c5: #ffad5c; --c6: #4fd6e6; } }
body { margin: 0 auto; max-width: 1100px; padding: 16px; background: var(--bg); color: var(--fg); font: 14px/1.45 system-ui, sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 24px 0 8px; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: 600; }
.verdict.PASS { background: var(--good); } .verdict.FAIL, .verdict.INTERRUPTED { background: var(--bad); }
.muted { color: var(--muted); } .bad { color: var(--bad); font-weight: 600; }
.scroll { overflow-x: auto; } table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 8px; text-align: right; border-bottom: 1px solid var(--grid); white-space: nowrap; }
th:first-child { text-align: left; } tr.due th { font-style: italic; } tr.page th { font-weight: normal; padding-left: 20px; color: var(--muted); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 480px), 1fr)); gap: 16px; }
figure.chart { margin: 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg { width: 100%; height: auto; display: block; } .grid { stroke: var(--grid); } .tick, .unit { fill: var(--muted); font-size: 11px; }
.legend { list-style: none; padding: 0; margin: 4px 0 0; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; }
.legend .swatch { display: inline-block; width: 24px; height: 6px; margin-right: 5px; vertical-align: middle; }
.failure { border-left: 3px solid var(--bad); padding: 4px 10px; margin: 8px 0; overflow-wrap: anywhere; }
.failure pre { white-space: pre-wrap; margin: 4px 0 0; color: var(--muted); font-size: 12px; }
</style>
</head>
<body>
<header>
<h1>tierload: ${escapeHtml(modelWords(r))} <span class="verdict ${verdict}">${verdict}</span></h1>
<p class="muted">${s.scenario ? `Scenario ${escapeHtml(s.scenario)} &middot; ` : ""}${
    escapeHtml(headline(r))
  } &middot; ${new Date(r.startedAt).toISOString()} &middot;
${escapeHtml(requestsSentence(r))} &middot; seed ${escapeHtml(s.seed)} &middot;
instance${r.instances.length > 1 ? "s" : ""} ${escapeHtml(r.instances.join(", "))}</p>
</header>
<section class="verdicts">
<h2>Verdict</h2>
<ul>
${item({ text: verdictSentence(r), bad: verdictWord(r) !== "PASS" })}
${[arrivalsSentence(r)].filter((x) => x !== null).map(item).join("\n")}
${item({ text: thresholdsSentence(r), bad: false })}
${instancesSentences(r).map(item).join("\n")}
${item(checkSentence(r))}
${item({ text: postgresSentence(r), bad: false })}
${generatorSentences(r).map(item).join("\n")}
</ul>
</section>
<section>
<h2>Actions and page loads</h2>
${latencySentence(r) ? `<p>${escapeHtml(latencySentence(r)!)}</p>` : ""}
<div class="scroll"><table>
<thead><tr><th></th>${COLUMNS.map((c, i) => `<th>${c}${i > 2 ? " (ms)" : ""}</th>`).join("")}</tr></thead>
<tbody>
${rowsOf(r).map(row).join("\n")}
</tbody></table></div>
</section>
<section>
<h2>Over time</h2>
<div class="charts">
${charts.join("\n")}
</div>
</section>
<section>
<h2>First failures</h2>
${
    failures.length
      ? failures.map((f) =>
        `<div class="failure"><strong>${escapeHtml(f.name)}</strong>: ${escapeHtml(f.message)}${
          f.excerpt ? `<pre>${escapeHtml(f.excerpt)}</pre>` : ""
        }</div>`
      ).join("\n")
      : "<p>None.</p>"
  }
</section>
</body>
</html>
`;
}
