/**
 * Results read back for `--merge`: files saved by `--json FILE`, and logs in which each results line is one
 * JSON line (`--json -`, as pods print it). Every problem is named with its source, line and field.
 *
 *   const all = ["a.json", "b.json"].flatMap((file) => readResultsFrom(file));
 */
import { readFileSync } from "node:fs";
import * as hdr from "hdr-histogram-js";
import type { Results } from "./results.ts";

/**
 * Results read back for `--merge`: a file saved by `--json FILE`, or text in which each results line is
 * one JSON line (`--json -`, as pods log it; `kubectl logs` of several pods, stdin as "-"). Other lines
 * are ignored; every problem is named with its source, line and field.
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
  if (whole !== undefined) return [validated(whole, name)];
  const found = text.split("\n").flatMap((line, i) => {
    if (!line.startsWith("{") || !line.includes('"tool":"tierload"')) return [];
    const parsed = parseJson(line);
    if (parsed === undefined) throw new Error(`${name} line ${i + 1} is a results line cut short or corrupted`);
    return [validated(parsed, `${name} line ${i + 1}`)];
  });
  if (found.length === 0) {
    throw new Error(
      `${name} holds no tierload results: neither a results file (--json FILE) nor log lines of --json -`,
    );
  }
  return found;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
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

function resultProblems(r: Results): string[] {
  const problems: string[] = [];
  const expect = (ok: boolean, field: string, what: string) => ok || problems.push(`${field} must be ${what}`);
  const isNumber = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
  expect(isObject(r.settings) && typeof r.settings.url === "string", "settings.url", "a string");
  expect(Array.isArray(r.instances) && r.instances.every((i) => typeof i === "string"), "instances", "a list of names");
  for (const field of ["startedAt", "endedAt", "wallSeconds"] as const) expect(isNumber(r[field]), field, "a number");
  expect(Array.isArray(r.timeline), "timeline", "a list");
  expect(isObject(r.postgres) && isNumber(r.postgres.peakBackends), "postgres.peakBackends", "a number");
  expect(isObject(r.generator) && isNumber(r.generator.cpuSeconds), "generator.cpuSeconds", "a number");
  if (!expect(isObject(r.actions), "actions", "an object")) return problems;
  for (const [name, a] of Object.entries(r.actions)) {
    const at = `actions[${JSON.stringify(name)}]`;
    if (!expect(isObject(a), at, "an object")) continue;
    expect(a.kind === "action" || a.kind === "page", `${at}.kind`, '"action" or "page"');
    expect(isNumber(a.count) && isNumber(a.errors), `${at}.count and .errors`, "numbers");
    expect(Array.isArray(a.failures), `${at}.failures`, "a list");
    expect(holdsCount(a.histogram, a.count), `${at}.histogram`, "an HDR histogram (compressed, base64) of its count");
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
