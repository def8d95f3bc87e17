/**
 * The load test's report as one self-contained HTML page: settings and verdict, a table per action,
 * charts over time (requests and errors, latency per action, active users, PostgreSQL backends against
 * max_connections), each action's latency distribution, and the first failures. The charts are inline
 * SVG drawn here; the page loads nothing and runs no script, in light or dark colours, at any width.
 *
 *   npx tsx scripts/load.ts --report report.html                 # after a run
 *   npx tsx scripts/load.ts --merge a.json b.json --report all.html   # from saved (or merged) JSON
 */
import * as hdr from "hdr-histogram-js";
import type { Results } from "./load.ts";

const escape = (text: unknown) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
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
): string {
  const width = 720, height = 240, left = 56, right = 28, top = 12, bottom = 28;
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) {
    return `<figure class="chart"><figcaption>${escape(title)}</figcaption><p class="empty">No data.</p></figure>`;
  }
  const [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  const yMax = niceMax(Math.max(...all.map((p) => p[1]), 1));
  const sx = (x: number) => left + (x1 === x0 ? 0 : ((x - x0) / (x1 - x0)) * (width - left - right));
  const sy = (y: number) => top + (1 - y / yMax) * (height - top - bottom);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * yMax);
  const xs = xTicks ?? [0, 0.25, 0.5, 0.75, 1].map((f) => x0 + f * (x1 - x0));
  const colour = (s: Series, i: number) => SERIES[(s.colour ?? i) % SERIES.length];
  const lines = series.map((s, i) => {
    const path = s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ");
    return `<polyline class="series" fill="none" stroke="${colour(s, i)}" stroke-width="2"` +
      `${s.dashed ? ' stroke-dasharray="6 4"' : ""} points="${path}"><title>${escape(s.name)}</title></polyline>`;
  });
  return `<figure class="chart" data-chart="${escape(title)}">
<figcaption>${escape(title)}</figcaption>
<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${escape(title)}">
${
    ticks.map((y) =>
      `<line class="grid" x1="${left}" x2="${width - right}" y1="${sy(y)}" y2="${sy(y)}"/><text class="tick" x="${
        left - 6
      }" y="${sy(y) + 4}" text-anchor="end">${formatNumber(y)}</text>`
    ).join("\n")
  }
${
    xs.map((x) => `<text class="tick" x="${sx(x)}" y="${height - 8}" text-anchor="middle">${escape(xLabels(x))}</text>`)
      .join("\n")
  }
<text class="unit" x="${left}" y="${top - 2}">${escape(yUnit)}</text>
${lines.join("\n")}
</svg>
<ul class="legend">${
    series.map((s, i) =>
      `<li><span class="${s.dashed ? "dashed" : ""}" style="background:${colour(s, i)}"></span>${escape(s.name)}</li>`
    ).join("")
  }</ul>
</figure>`;
}

function niceMax(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((m) => m >= value)!;
}

function formatNumber(value: number): string {
  return value >= 1000 ? `${+(value / 1000).toFixed(1)}k` : `${+value.toFixed(value < 10 ? 1 : 0)}`;
}

/** One action's latency percentile, second by second (results written before 2026-11 lack it). */
function perAction(r: Results, name: string, t0: number, key: "p50" | "p99"): [number, number][] {
  return r.timeline.filter((x) => x.actions?.[name]).map((x) => [x.t - t0, x.actions[name][key]]);
}

/** The latency at each percentile, read from the action's HDR histogram: its distribution. */
const PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 99, 99.9, 100];

export function renderReport(r: Results): string {
  const s = r.settings;
  const t0 = r.timeline[0]?.t ?? Math.floor(r.startedAt / 1000);
  const span = (r.timeline.at(-1)?.t ?? t0) - t0;
  const seconds = (t: number) => `${span < 10 ? t.toFixed(1) : Math.round(t)} s`;
  const at = (pick: (p: Results["timeline"][number]) => number) =>
    r.timeline.map((p) => [p.t - t0, pick(p)] as [number, number]);
  const actions = Object.entries(r.actions).filter(([, a]) => a.kind === "action");
  const pages = Object.entries(r.actions).filter(([, a]) => a.kind === "page");
  const verdict = r.verdict.ok ? "PASS" : "FAIL";
  const lost = r.nothingLost;
  const row = ([name, a]: [string, Results["actions"][string]]) => {
    const m = a.summary;
    const cell = (v: number) => `<td>${v < 10 ? v.toFixed(2) : v.toFixed(0)}</td>`;
    return `<tr class="${a.kind}"><th>${escape(name)}</th><td>${m.count}</td><td class="${
      m.errors ? "bad" : ""
    }">${m.errors}</td>` +
      `<td>${m.perSecond.toFixed(1)}</td>${cell(m.min)}${cell(m.p50)}${cell(m.p90)}${cell(m.p99)}${cell(m.max)}</tr>`;
  };
  const distribution = actions.map(([name, a]) => {
    const h = hdr.decodeFromCompressedBase64(a.histogram);
    return {
      name,
      points: PERCENTILES.map((p, i) =>
        [i, Math.min(h.getValueAtPercentile(p), h.maxValue) / 1000] as [number, number]
      ),
    };
  });
  const failures = Object.entries(r.actions).flatMap(([name, a]) => a.failures.map((f) => ({ name, ...f })));
  const p = r.postgres;
  const charts = [
    lineChart("Requests and errors per second", "per second", [
      { name: "requests", points: at((x) => x.requests) },
      { name: "errors", points: at((x) => x.errors) },
    ], seconds),
    lineChart(
      "Latency per action, p50 and p99",
      "ms",
      actions.flatMap(([name], i) => [
        { name: `${name} p50`, points: perAction(r, name, t0, "p50"), colour: i },
        { name: `${name} p99`, points: perAction(r, name, t0, "p99"), dashed: true, colour: i },
      ]),
      seconds,
    ),
    lineChart("Active users", "users", [{ name: "active users", points: at((x) => x.activeUsers) }], seconds),
    p.sampled
      ? lineChart("PostgreSQL client backends", "backends", [
        { name: "client backends", points: at((x) => x.pgBackends) },
        { name: `max_connections ${p.maxConnections}`, points: at(() => p.maxConnections), dashed: true },
        ...(p.pool ? [{ name: `pool ${p.pool}`, points: at(() => p.pool!), dashed: true }] : []),
      ], seconds)
      : `<figure class="chart"><figcaption>PostgreSQL client backends</figcaption><p class="empty">Not sampled${
        p.error ? `: ${escape(p.error)}` : ""
      }.</p></figure>`,
    lineChart(
      "Latency distribution per action",
      "ms",
      distribution,
      (i) => `p${PERCENTILES[i]}`,
      PERCENTILES.map((_, i) => i),
    ),
  ];
  const g = r.generator;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>tierload report: ${escape(s.users)} users, ${verdict}</title>
<style>
:root { color-scheme: light dark; --bg: #fff; --fg: #1d1d1f; --muted: #6e6e73; --grid: #e5e5ea; --bad: #c62828; --good: #2e7d32;
  --c1: #1f77b4; --c2: #d62728; --c3: #2ca02c; --c4: #9467bd; --c5: #ff7f0e; --c6: #17becf; }
@media (prefers-color-scheme: dark) { :root { --bg: #111114; --fg: #f2f2f7; --muted: #a1a1aa; --grid: #2c2c30; --bad: #ef5350; --good: #66bb6a;
  --c1: #5fa8e8; --c2: #f26b6b; --c3: #6cd46c; --c4: #b99be0; --c5: #ffad5c; --c6: #4fd6e6; } }
body { margin: 0 auto; max-width: 1100px; padding: 16px; background: var(--bg); color: var(--fg); font: 14px/1.45 system-ui, sans-serif; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 24px 0 8px; }
.verdict { display: inline-block; padding: 2px 10px; border-radius: 4px; color: #fff; font-weight: 600; }
.verdict.PASS { background: var(--good); } .verdict.FAIL { background: var(--bad); }
.muted { color: var(--muted); } .bad { color: var(--bad); font-weight: 600; }
.scroll { overflow-x: auto; } table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 8px; text-align: right; border-bottom: 1px solid var(--grid); white-space: nowrap; }
th:first-child { text-align: left; } tr.page th { font-weight: normal; padding-left: 20px; color: var(--muted); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 480px), 1fr)); gap: 16px; }
figure.chart { margin: 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg { width: 100%; height: auto; display: block; } .grid { stroke: var(--grid); } .tick, .unit { fill: var(--muted); font-size: 11px; }
.legend { list-style: none; padding: 0; margin: 4px 0 0; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; }
.legend span { display: inline-block; width: 12px; height: 3px; margin-right: 5px; vertical-align: middle; }
.legend span.dashed { background-clip: content-box; padding: 0 3px; }
.failure { border-left: 3px solid var(--bad); padding: 4px 10px; margin: 8px 0; overflow-wrap: anywhere; }
.failure pre { white-space: pre-wrap; margin: 4px 0 0; color: var(--muted); font-size: 12px; }
</style>
</head>
<body>
<header>
<h1>tierload: ${escape(s.users)} users x ${
    escape(s.actions)
  } actions <span class="verdict ${verdict}">${verdict}</span></h1>
<p class="muted">${escape(s.url)}${s.embedded ? " (the reference forum)" : ""} &middot; ${
    new Date(r.startedAt).toISOString()
  } &middot;
${r.wallSeconds.toFixed(1)} s${r.interrupted ? " (interrupted)" : ""} &middot; reply share ${
    escape(s.replyShare)
  } &middot; seed ${escape(s.seed)} &middot;
instance${r.instances.length > 1 ? "s" : ""} ${escape(r.instances.join(", "))}</p>
</header>
<section class="verdicts">
<h2>Verdict</h2>
<ul>
${r.verdict.reasons.map((reason) => `<li class="bad">${escape(reason)}</li>`).join("\n") || "<li>Thresholds held.</li>"}
<li>${
    lost
      ? (lost.ok
        ? `Nothing lost: all ${lost.threadsCreated} threads and ${lost.repliesPosted} replies the run counted are on the forum, and its counts moved by exactly that.`
        : `<span class="bad">Lost or miscounted</span>: ${lost.missingThreads.length} threads and ${lost.missingReplies.length} replies missing, ${lost.countDifferences.length} threads with other counts${
          lost.note ? `; ${escape(lost.note)}` : ""
        }.`)
      : "Nothing-lost check not run."
  }</li>
<li>PostgreSQL: ${
    p.sampled
      ? `peak ${p.peakBackends} client backends of max_connections ${p.maxConnections}${
        p.pool ? `, pool ${p.pool}` : ""
      }`
      : "not sampled"
  }.</li>
<li>Generator: ${g.cpuSeconds.toFixed(1)} CPU-s, ${g.cpuMsPerRequest.toFixed(2)} ms per request, ${
    (g.coreShare * 100).toFixed(0)
  } % of one core;
event-loop lag p99 ${g.eventLoopLagP99Ms.toFixed(0)} ms${
    g.saturated ? ` <span class="bad">saturated: its latencies measure the generator</span>` : ""
  };
machine ${(g.machineBusyShare * 100).toFixed(0)} % busy${
    g.machineBusyShare > 0.9 ? " (the CPUs were the limit)" : ""
  }.</li>
</ul>
</section>
<section>
<h2>Actions and page loads</h2>
<div class="scroll"><table>
<thead><tr><th></th><th>count</th><th>errors</th><th>per s</th><th>min</th><th>p50</th><th>p90</th><th>p99</th><th>max ms</th></tr></thead>
<tbody>
${[...actions, ...pages].map(row).join("\n")}
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
        `<div class="failure"><strong>${escape(f.name)}</strong>: ${escape(f.message)}${
          f.excerpt ? `<pre>${escape(f.excerpt)}</pre>` : ""
        }</div>`
      ).join("\n")
      : "<p>None.</p>"
  }
</section>
</body>
</html>
`;
}
