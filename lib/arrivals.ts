/**
 * The open model's schedule: users arriving at a rate (--arrival-rate, --stages), each on its whole
 * journey, whatever the application's pace. Arrival k of the run is due when the integral of the rate
 * reaches k, so arrivals are evenly spaced at a steady rate and spread as a ramp asks; instance i of N
 * takes every N-th arrival, and its worker thread w of W every W-th of those, so the rate is shared out.
 *
 *   const plan = arrivalPlan(options)!;        // { stages, total, seconds }
 *   arrivalTime(plan.stages, 49)               // 0.98 (s) at --arrival-rate 50
 */
import { duration } from "./cli.ts";
import type { LoadOptions } from "./scenario.ts";

/** A stretch of the run whose rate (arrivals per second) goes from `from` to `to`, linearly, over `seconds`. */
export interface Stage {
  from: number;
  to: number;
  seconds: number;
}

/** The whole run's arrivals: its stages, how many users arrive in all, and over how long. */
export interface ArrivalPlan {
  stages: Stage[];
  total: number;
  seconds: number;
}

const RATE = String.raw`(\d+(?:\.\d+)?)`;
const STAGE = new RegExp(String.raw`^${RATE}(?::${RATE})?(?:/(.+))?$`);
const seconds = duration("s");

/**
 * One stage as the options write it: `50` (a rate; how long comes from --duration or --users), `50/30s`
 * (50 a second for 30 s) or `10:200/1m` (from 10 to 200 a second over a minute); a bare time is in
 * seconds. Throws, naming what is wrong.
 */
export function parseStage(text: string, needsDuration: boolean): Stage & { open: boolean } {
  const match = STAGE.exec(text.trim());
  if (!match) {
    throw new Error(`"${text}" is not a rate: write 50, 50/30s (50 a second for 30 s) or 10:200/60s (a ramp)`);
  }
  const [, from, to, time] = match;
  let lasts = 0;
  try {
    lasts = time === undefined ? 0 : seconds(time);
  } catch (error) {
    throw new Error(`"${text}": ${(error as Error).message}`);
  }
  const stage = { from: Number(from), to: Number(to ?? from), seconds: lasts, open: time === undefined };
  if (stage.open && (needsDuration || to !== undefined)) {
    throw new Error(`"${text}" needs a duration: ${to === undefined ? `${from}/30s` : `${from}:${to}/60s`}`);
  }
  if (!stage.open && stage.seconds <= 0) throw new Error(`"${text}" lasts no time: give seconds above 0`);
  if (stage.from > 100_000 || stage.to > 100_000) throw new Error(`"${text}" is above 100000 arrivals a second`);
  return stage;
}

/** `--stages 10/30s,10:100/1m,100/60s`: stages one after another, each written as parseStage reads it. */
export function parseStages(text: string): Stage[] {
  const stages = text.split(",").map((part) => parseStage(part, true));
  if (stages.every((s) => s.from === 0 && s.to === 0)) throw new Error(`"${text}" has no arrivals: every rate is 0`);
  return stages.map(({ from, to, seconds }) => ({ from, to, seconds }));
}

/** Arrivals due from the start until `seconds` in (the integral of the rate). */
export function arrivalsBy(stages: Stage[], seconds: number): number {
  let n = 0, start = 0;
  for (const s of stages) {
    const t = Math.min(Math.max(seconds - start, 0), s.seconds);
    n += s.from * t + ((s.to - s.from) * t * t) / (2 * s.seconds);
    start += s.seconds;
  }
  return n;
}

/** The rate (arrivals per second) the stages ask for at `seconds` in; 0 after the last. */
export function rateAt(stages: Stage[], seconds: number): number {
  let start = 0;
  for (const s of stages) {
    if (seconds < start + s.seconds) return s.from + ((s.to - s.from) * (seconds - start)) / s.seconds;
    start += s.seconds;
  }
  return 0;
}

/** When arrival `k` (from 0) is due, in seconds from the start: where the integral of the rate reaches k. */
export function arrivalTime(stages: Stage[], k: number): number {
  let before = 0, start = 0;
  for (const s of stages) {
    const area = ((s.from + s.to) / 2) * s.seconds;
    if (k < before + area) {
      const m = k - before;
      const slope = (s.to - s.from) / s.seconds;
      // a t + slope t^2 / 2 = m, for the root in the stage; a steady rate is its straight line.
      const t = Math.abs(slope) < 1e-12 ? m / s.from : (-s.from + Math.sqrt(s.from ** 2 + 2 * slope * m)) / slope;
      return start + Math.min(Math.max(t, 0), s.seconds);
    }
    before += area;
    start += s.seconds;
  }
  return Infinity;
}

/**
 * The run's arrivals from the options, or null for the closed model (no --arrival-rate nor --stages). A
 * steady rate lasts --duration seconds, or until --users have arrived; a ramp and --stages say how long
 * they last themselves. --users given with them caps the arrivals.
 */
export function arrivalPlan(options: LoadOptions): ArrivalPlan | null {
  const text = options.stages ?? options.arrivalRate;
  if (text === undefined) return null;
  const capped = options.given.includes("users");
  let stages: Stage[];
  if (options.stages !== undefined) stages = parseStages(options.stages);
  else {
    const { open, ...stage } = parseStage(text, false);
    if (open) stage.seconds = options.duration ?? options.users / stage.from;
    stages = [stage];
  }
  const seconds = stages.reduce((n, s) => n + s.seconds, 0);
  const due = Math.ceil(arrivalsBy(stages, seconds) - 1e-9);
  return { stages, total: capped ? Math.min(options.users, due) : due, seconds };
}

/** Arrivals `k` from `first`, every `stride`-th, below `total`: how many. */
export function countOf(first: number, stride: number, total: number): number {
  return first < total ? Math.floor((total - 1 - first) / stride) + 1 : 0;
}

/** The stages in words: "50/s for 30 s", "10 to 200/s over 60 s, then 200/s for 60 s". */
export function stagesInWords(stages: Stage[]): string {
  const n = (v: number) => `${+v.toFixed(2)}`;
  return stages.map((s) =>
    s.from === s.to ? `${n(s.from)}/s for ${n(s.seconds)} s` : `${n(s.from)} to ${n(s.to)}/s over ${n(s.seconds)} s`
  ).join(", then ");
}
