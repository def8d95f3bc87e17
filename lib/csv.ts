/**
 * The results as CSV files a spreadsheet opens, as Locust's --csv writes them: PREFIX_stats.csv (a row per
 * action and page load), PREFIX_failures.csv (a row per failure kept), PREFIX_stats_history.csv (a row per
 * second). RFC 4180 quoting; a cell that a spreadsheet would take for a formula (=, +, -, @) is kept as text.
 *
 *   writeCsv("run", results)   // run_stats.csv, run_failures.csv, run_stats_history.csv
 */
import { writeFileSync } from "node:fs";
import { entriesOf, type Results } from "./results.ts";

/** One CSV cell: quoted when it holds a comma, quote or line break; a would-be formula kept as text. */
export function cell(value: unknown): string {
  let text = value === undefined || value === null ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text) && !/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function table(header: string[], rows: unknown[][]): string {
  return [header, ...rows].map((row) => row.map(cell).join(",")).join("\r\n") + "\r\n";
}

/** The three tables, by file suffix. */
export function csvTables(r: Results): Record<"stats" | "failures" | "stats_history", string> {
  const rows = [...entriesOf(r, "action"), ...entriesOf(r, "page")];
  const stats = table(
    [
      "Type",
      "Name",
      "Count",
      "Failures",
      "Per second",
      "Min ms",
      "Median ms",
      "p90 ms",
      "p95 ms",
      "p99 ms",
      "Max ms",
      "Mean ms",
    ],
    rows.map(([name, a]) => {
      const m = a.summary;
      return [
        a.kind,
        name,
        m.count,
        m.errors,
        m.perSecond.toFixed(3),
        m.min,
        m.p50,
        m.p90,
        m.p95 ?? "",
        m.p99,
        m.max,
        m.mean,
      ];
    }),
  );
  const failures = table(
    ["Type", "Name", "Step", "Message", "URL", "Status", "Page"],
    rows.flatMap(([name, a]) => a.failures.map((f) => [a.kind, name, f.step, f.message, f.url, f.status, f.excerpt])),
  );
  const history = table(
    [
      "Timestamp",
      "Requests",
      "Failed requests",
      "Failed actions",
      "p50 ms",
      "p99 ms",
      "Max ms",
      "Active users",
      "PostgreSQL backends",
    ],
    r.timeline.map((t) => [
      new Date(t.t * 1000).toISOString(),
      t.requests,
      t.errors,
      t.failedActions ?? "",
      t.p50,
      t.p99,
      t.max,
      t.activeUsers,
      t.pgBackends,
    ]),
  );
  return { stats, failures, stats_history: history };
}

/** Writes PREFIX_stats.csv, PREFIX_failures.csv and PREFIX_stats_history.csv; answers their names. */
export function writeCsv(prefix: string, r: Results): string[] {
  return Object.entries(csvTables(r)).map(([suffix, text]) => {
    const file = `${prefix}_${suffix}.csv`;
    writeFileSync(file, text);
    return file;
  });
}
