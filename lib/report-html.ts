/**
 * Results as the self-contained HTML page (`--report`): the same sentences as the text report (lib/report.ts),
 * with charts drawn here as inline SVG. The page loads nothing and runs no script, in light or dark colours, at
 * any width.
 *
 *   writeFileSync("run.html", renderReport(results));
 */
import { escapeHtml } from "./web.ts";
import { distribution, entriesOf, type OpenResults, type Results } from "./results.ts";
import {
  arrivalsSentence,
  cells,
  checkSentence,
  COLUMNS,
  failuresOf,
  generatorSentences,
  headline,
  instancesSentences,
  latencySentence,
  modelWords,
  postgresSentence,
  requestsSentence,
  rowsOf,
  thresholdsSentence,
  verdictSentence,
  verdictWord,
} from "./report.ts";

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
