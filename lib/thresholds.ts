/**
 * Thresholds, in one form that reads like k6's: an action (or `*` for every action), a statistic, a limit.
 * Each is judged held or breached with its measured value; one that names an action that never ran is
 * itself a failure (a typo must not pass a run).
 *
 *   --threshold 'reply:p95<500ms'   --threshold 'login:p99<60s'   --threshold '*:p99<2s'
 *   --threshold 'errors<1%'         --threshold 'reply:errors<0.5%'
 *
 * `--max-p99 MS` is `*:p99<MS` and `--max-error-rate F` is `errors<F`, said as the options were given.
 */
import { InvalidArgumentError } from "commander";
import { duration } from "./cli.ts";

export const STATISTICS = ["p50", "p90", "p95", "p99", "max", "mean", "errors"] as const;
export type Statistic = typeof STATISTICS[number];

export interface Threshold {
  /** How the report names it: as given (`reply:p95<500ms`), or the shorthand (`--max-p99 2000 ms`). */
  text: string;
  /** An action's name, or `*` for every action. */
  action: string;
  statistic: Statistic;
  /** Milliseconds for a latency; a share from 0 to 1 for `errors`. */
  limit: number;
}

/** A threshold as the verdict found it. */
export interface Judged {
  text: string;
  held: boolean;
  /** What was measured, in the threshold's unit: `p95 312 ms`, `errors 0.4 %`, or why nothing was. */
  measured: string;
}

/** A commander parser for `--threshold`: `[action:]statistic<limit`, repeatable (the values collect in a list). */
export function threshold(value: string, previous: Threshold[] = []): Threshold[] {
  const match = /^\s*(?:(.+?)\s*:\s*)?(p\(?(?:50|90|95|99)\)?|max|mean|avg|errors|error_rate)\s*<\s*(.+?)\s*$/.exec(
    value,
  );
  if (!match) {
    throw new InvalidArgumentError(
      `"${value}" is not a threshold: write [action:]statistic<limit, as in login:p95<500ms, *:p99<2s or errors<1% ` +
        `(statistics: ${STATISTICS.join(", ")})`,
    );
  }
  const [, action = "*", name, limit] = match;
  const statistic = name.replace(/[()]/g, "").replace("avg", "mean").replace("error_rate", "errors") as Statistic;
  return [...previous, { text: value.trim(), action, statistic, limit: limitOf(statistic, limit, value) }];
}

function limitOf(statistic: Statistic, text: string, whole: string): number {
  if (statistic !== "errors") return duration("ms")(text);
  const share = text.endsWith("%") ? Number(text.slice(0, -1)) / 100 : Number(text);
  if (text === "" || !Number.isFinite(share) || share < 0 || share > 1) {
    throw new InvalidArgumentError(`"${whole}": an error limit is a share, 1% or 0.01`);
  }
  return share;
}

/** The thresholds a run's options set: each --threshold, and the shorthands --max-p99 and --max-error-rate. */
export function thresholdsOf(
  options: { threshold?: Threshold[]; maxP99?: number; maxErrorRate?: number },
): Threshold[] {
  return [
    ...(options.threshold ?? []),
    ...(options.maxP99 === undefined
      ? []
      : [{ text: `--max-p99 ${options.maxP99} ms`, action: "*", statistic: "p99" as const, limit: options.maxP99 }]),
    ...(options.maxErrorRate === undefined ? [] : [{
      text: `--max-error-rate ${options.maxErrorRate}`,
      action: "*",
      statistic: "errors" as const,
      limit: options.maxErrorRate,
    }]),
  ];
}

/** What a threshold is judged on: each action's attempts, failures and latency statistics (ms). */
export type Measured = Record<string, { count: number; errors: number } & Record<Exclude<Statistic, "errors">, number>>;

const ms = (v: number) => `${+v.toFixed(v < 10 ? 2 : 0)} ms`;
const percent = (share: number) => `${+(share * 100).toFixed(2)} %`;

/**
 * Each threshold held or breached, and the verdict's reasons. Failed actions that no errors threshold
 * covers fail the run, as they do with no threshold at all.
 */
export function judgeThresholds(actions: Measured, thresholds: Threshold[]): { judged: Judged[]; reasons: string[] } {
  const judged: Judged[] = [];
  const reasons: string[] = [];
  for (const t of thresholds) {
    const names = t.action === "*" ? Object.keys(actions) : [t.action];
    if (t.action !== "*" && !actions[t.action]) {
      judged.push({ text: t.text, held: false, measured: `no action "${t.action}" ran` });
      reasons.push(`${t.text} names an action that never ran (ran: ${Object.keys(actions).join(", ") || "none"})`);
      continue;
    }
    if (t.statistic === "errors") {
      const count = names.reduce((n, name) => n + actions[name].count, 0);
      const errors = names.reduce((n, name) => n + actions[name].errors, 0);
      const share = count ? errors / count : 0;
      const held = share <= t.limit;
      judged.push({ text: t.text, held, measured: `errors ${percent(share)} (${errors} of ${count})` });
      if (!held) {
        reasons.push(
          t.text.startsWith("--max-error-rate")
            ? `error rate ${share.toFixed(4)} is above ${t.text}`
            : `${t.action === "*" ? "" : `${t.action} `}errors ${percent(share)} breach ${t.text}`,
        );
      }
      continue;
    }
    const breaches = names.filter((name) => actions[name][t.statistic] > t.limit);
    const worst = names.reduce((w, name) => Math.max(w, actions[name][t.statistic]), 0);
    judged.push({ text: t.text, held: breaches.length === 0, measured: `${t.statistic} ${ms(worst)}` });
    for (const name of breaches) {
      const value = `${name} ${t.statistic} ${ms(actions[name][t.statistic])}`;
      reasons.push(t.text.startsWith("--max-p99") ? `${value} is above ${t.text}` : `${value} breaches ${t.text}`);
    }
  }
  const covered = new Set(
    thresholds.filter((t) => t.statistic === "errors").flatMap((t) =>
      t.action === "*" ? Object.keys(actions) : [t.action]
    ),
  );
  const uncovered = Object.entries(actions).filter(([name]) => !covered.has(name));
  const failed = uncovered.reduce((n, [, a]) => n + a.errors, 0);
  if (failed > 0) {
    const attempted = uncovered.reduce((n, [, a]) => n + a.count, 0);
    reasons.unshift(
      `${failed} of ${attempted} actions failed (--max-error-rate or a threshold such as errors<1% allows a share)`,
    );
  }
  return { judged, reasons };
}
