/**
 * Results read back for `--merge`: files saved by `--json FILE`, and logs in which each results line is one
 * JSON line (`--json -`, as pods print it). Every problem is named with its source, line and field.
 *
 *   const all = ["a.json", "b.json"].flatMap((file) => readResultsFrom(file));
 */
import { readFileSync } from "node:fs";
import * as hdr from "hdr-histogram-js";
import type { Results } from "./results.ts";
import { STATISTICS } from "./thresholds.ts";

/**
 * Results read back for `--merge`: a file saved by `--json FILE`, or text in which each results line is
 * one JSON line (`--json -`, as pods log it; `kubectl logs` of several pods, stdin as "-"). Other lines
 * are ignored; every problem is named with its source, line and field.
 *
 *   const pods = readResultsFrom("-"); // kubectl logs ... | npx tsx scripts/load.ts --merge -
 */
export function readResultsFrom(source: string): Results[] {
  const name = source === "-" ? "standard input" : source;
  let text: string;
  try {
    text = readFileSync(source === "-" ? 0 : source, "utf8");
  } catch (error) {
    throw new Error(`Cannot read results from ${name}: ${(error as Error).message}`);
  }
  const whole = parseJson(text);
  if (!("error" in whole)) return [validated(whole.value, name)];
  const found = text.split("\n").flatMap((line, i) => {
    if (!line.startsWith("{") || !line.includes('"tool":"tierload"')) return [];
    const parsed = parseJson(line);
    if ("error" in parsed) {
      throw new Error(`${name} line ${i + 1} is a results line cut short or corrupted: ${parsed.error}`);
    }
    return [validated(parsed.value, `${name} line ${i + 1}`)];
  });
  if (found.length > 0) return found;
  // A file saved by --json FILE begins so: one that does, and is not JSON, was cut short or damaged.
  if (/^\s*\{\s*"tool":\s*"tierload"/.test(text)) {
    throw new Error(`${name} is a results file cut short or corrupted: ${whole.error}`);
  }
  throw new Error(`${name} holds no tierload results: neither a results file (--json FILE) nor log lines of --json -`);
}

function parseJson(text: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

function validated(parsed: unknown, where: string): Results {
  const r = parsed as Results;
  if (r?.tool !== "tierload" || r.format !== 1) {
    throw new Error(`${where} is not a tierload results file (format 1): it lacks "tool": "tierload" and "format": 1`);
  }
  const problems = resultProblems(r);
  if (problems.length) throw new Error(`${where} is not valid tierload results: ${problems.join("; ")}`);
  return r;
}

/** The most instances one run can have (--instances): a results file that says more is not to be believed. */
const MOST_INSTANCES = 10_000;

function resultProblems(r: Results): string[] {
  const problems: string[] = [];
  const expect = (ok: boolean, field: string, what: string) => {
    if (!ok) problems.push(`${field} must be ${what}`);
    return ok;
  };
  const isNumber = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
  const absent = (v: unknown) => v === undefined;
  if (expect(isObject(r.settings) && typeof r.settings.url === "string", "settings.url", "a string")) {
    const { scenario, users, thresholds } = r.settings;
    expect(absent(scenario) || typeof scenario === "string", "settings.scenario", "a name");
    expect(absent(users) || isCount(users), "settings.users", "a whole, non-negative number");
    expect(
      absent(thresholds) ||
        Array.isArray(thresholds) &&
          thresholds.every((t) =>
            isObject(t) && typeof t.text === "string" && typeof t.action === "string" &&
            STATISTICS.includes(t.statistic) && isNumber(t.limit)
          ),
      "settings.thresholds",
      "a list of thresholds, each with its text, action, statistic and limit",
    );
  }
  expect(Array.isArray(r.instances) && r.instances.every((i) => typeof i === "string"), "instances", "a list of names");
  // A Date holds moments up to 8.64e15 ms either side of 1970.
  const isMoment = (v: unknown) => isNumber(v) && Math.abs(v as number) <= 8.64e15;
  expect(isMoment(r.startedAt), "startedAt", "a moment in milliseconds since 1970");
  expect(isMoment(r.endedAt) && r.endedAt >= r.startedAt, "endedAt", "a moment in milliseconds, not before startedAt");
  expect(isNumber(r.wallSeconds), "wallSeconds", "a number");
  expect(typeof r.interrupted === "boolean", "interrupted", "true or false");
  expect(absent(r.stoppedEarly) || typeof r.stoppedEarly === "string", "stoppedEarly", "a reason, in words");
  if (expect(Array.isArray(r.timeline), "timeline", "a list")) {
    const bad = r.timeline.findIndex((t) =>
      !isObject(t) || !isNumber(t.t) || !isCount(t.requests) || !isCount(t.errors) || !isCount(t.activeUsers) ||
      ![t.p50, t.p99, t.max, t.pgBackends].every(isNumber)
    );
    expect(bad === -1, `timeline[${bad}]`, "a second with whole, non-negative counts and its latencies");
  }
  if (expect(isObject(r.postgres), "postgres", "an object")) {
    const p = r.postgres;
    expect(typeof p.sampled === "boolean", "postgres.sampled", "true or false");
    for (const field of ["peakBackends", "maxConnections"] as const) {
      expect(isNumber(p[field]), `postgres.${field}`, "a number");
    }
    expect(
      absent(p.held) || isObject(p.held) && isNumber(p.held.min) && isNumber(p.held.max),
      "postgres.held",
      "a min and a max",
    );
  }
  if (expect(isObject(r.generator), "generator", "an object")) {
    const g = r.generator;
    for (
      const field of [
        "cpuSeconds",
        "coreShare",
        "eventLoopLagP99Ms",
        "eventLoopLagMaxMs",
        "cores",
        "machineBusyShare",
      ] as const
    ) {
      expect(isNumber(g[field]), `generator.${field}`, "a number");
    }
    expect(typeof g.saturated === "boolean", "generator.saturated", "true or false");
    expect(absent(g.startupCpuSeconds) || isNumber(g.startupCpuSeconds), "generator.startupCpuSeconds", "a number");
  }
  if (r.check !== null && expect(isObject(r.check), "check", "null or an object")) {
    const c = r.check;
    expect(
      typeof c.name === "string" && typeof c.ok === "boolean" && typeof c.checked === "boolean",
      "check",
      "named, with ok and checked",
    );
    expect(
      isObject(c.counted) && Object.values(c.counted).every(isCount),
      "check.counted",
      "whole, non-negative counts",
    );
    expect(
      Array.isArray(c.findings) && c.findings.every((f) => typeof f === "string"),
      "check.findings",
      "a list of lines",
    );
    expect(c.counts === "exact" || c.counts === "at least", "check.counts", '"exact" or "at least"');
  }
  if (expect(Array.isArray(r.instanceDetails), "instanceDetails", "a list (one entry per instance)")) {
    for (const [k, d] of r.instanceDetails!.entries()) {
      if (d.run === undefined) continue;
      expect(
        Number.isSafeInteger(d.of) && d.of! >= 1 && d.of! <= MOST_INSTANCES && isCount(d.index) && d.index! < d.of!,
        `instanceDetails[${k}]`,
        `an index below its run's count of instances, at most ${MOST_INSTANCES}`,
      );
    }
  }
  if (!expect(isObject(r.actions), "actions", "an object")) return problems;
  for (const [name, a] of Object.entries(r.actions)) {
    const at = `actions[${JSON.stringify(name)}]`;
    if (!expect(isObject(a), at, "an object")) continue;
    expect(a.kind === "action" || a.kind === "page", `${at}.kind`, '"action" or "page"');
    expect(
      isCount(a.count) && isCount(a.errors) && a.errors <= a.count,
      `${at}.count and .errors`,
      "whole numbers, errors no more than count",
    );
    expect(absent(a.bytes) || isCount(a.bytes), `${at}.bytes`, "a whole, non-negative number");
    expect(
      Array.isArray(a.failures) &&
        a.failures.every((f) => isObject(f) && typeof f.step === "string" && typeof f.message === "string"),
      `${at}.failures`,
      "a list of failures, each with its step and message",
    );
    expect(holdsCount(a.histogram, a.count), `${at}.histogram`, "an HDR histogram (compressed, base64) of its count");
    if (a.corrected !== undefined) {
      expect(
        isObject(a.corrected) && holdsCount(a.corrected.histogram, a.count) && isCount(a.corrected.due) &&
          a.corrected.due <= a.count,
        `${at}.corrected`,
        "an HDR histogram of its count, with the attempts that had a due time",
      );
    }
  }
  if (r.open !== undefined && expect(isObject(r.open), "open", "an object")) {
    const o = r.open;
    const counts = [o.planned, o.due, o.started, o.droppedBusy, o.droppedLate, o.maxActive];
    expect(
      counts.every(isCount) && o.started + o.droppedBusy + o.droppedLate === o.due && o.due <= o.planned &&
        holdsCount(o.lateness, o.started),
      "open",
      "whole counts, the due arrivals started or dropped, their lateness an HDR histogram of those started",
    );
  }
  return problems;
}

function holdsCount(histogram: unknown, count: number): boolean {
  try {
    return typeof histogram === "string" && hdr.decodeFromCompressedBase64(histogram).totalCount === count;
  } catch {
    return false;
  }
}
