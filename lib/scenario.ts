/**
 * A load scenario: the user's file, loaded into the tool as Locust loads a locustfile and k6 a script. It
 * names the options it adds, the application to start when no --url is given, what to read before the
 * users start, one user's journey through the adapter (each action recorded under its name), and the
 * end-state check. The tool brings everything else: worker threads, instances, Kubernetes, merge, verdict,
 * thresholds, HDR statistics, reports, progress, signals and exit codes.
 *
 *   export default scenario(import.meta, {
 *     name: "shop",
 *     description: "Users sign up, log in and post",
 *     user: async ({ url, name, act, repeat }) => {
 *       const session = await act("login", () => login(url, name, "pw"));
 *       if (session) await repeat(() => act("reply", () => postReply(session, 1, "hi")));
 *     },
 *   });
 *
 * Run the file itself: `npx tsx my-scenario.ts --url http://localhost:8080/ --users 100`, or
 * `deno run -A my-scenario.ts`. Every worker thread loads the same file. This file holds the types;
 * `scenario()` itself is in lib/load-cli.ts, with the command line it runs.
 */
import type { Command } from "commander";
import type { EndCheck, PoolDeclaration } from "./results.ts";
import type { Threshold } from "./thresholds.ts";

export type { EndCheck, PoolDeclaration } from "./results.ts";

/**
 * What the tool's options mean for one run (lib/load-options.ts reads them from the command line); a
 * scenario's own options are added beside them.
 */
export interface LoadOptions {
  users: number;
  actions: number;
  instance: string;
  rampUp: number;
  thinkTime: number;
  maxDuration?: number;
  seed: number;
  url?: string;
  databaseUrl?: string;
  timeout: number;
  json?: string;
  report?: string;
  csv?: string;
  metricsPort?: number;
  metricsHost: string;
  metricsHold: number;
  quiet?: boolean;
  verbose?: boolean;
  maxErrorRate?: number;
  maxP99?: number;
  /** The open model: new users a second (`50`, `10:200/60s`), or stages of them (`10/30s,10:100/1m`). */
  arrivalRate?: string;
  stages?: string;
  /** Seconds a steady --arrival-rate lasts. */
  duration?: number;
  /** The most users in flight at once (open model): an arrival that finds them all busy is dropped. */
  maxActive: number;
  /** Ms an arrival may start after it was due before it is dropped (the generator fell behind). */
  maxLateness: number;
  maxDropped?: number;
  /** Ms between the starts of a user's repeated actions: each is due at its slot, whatever the last one took. */
  pace?: number;
  /** Which latency the latency thresholds judge: from when each action was due (corrected), or from its start. */
  judgeLatency: "corrected" | "uncorrected";
  threshold?: Threshold[];
  workers?: number;
  merge?: string[];
  instances?: number;
  index?: number;
  startAt?: number;
  kubernetesJob?: boolean;
  image: string;
  startIn: number;
  /** The options given on the command line or in the environment, by their attribute names (for the pods). */
  given: string[];
}

/** An application the tool started because no --url was given; stopped when the run ends. */
export interface StartedApp {
  url: string;
  /** Its PostgreSQL, sampled during the run (pg_stat_activity). */
  databaseUrl?: string;
  /** What the report calls it: "the reference shop". */
  name?: string;
  /**
   * The PostgreSQL connections it holds. With `mode: "fixed"` the run passes only if at least `size`
   * client backends were connected at every look of the sampler; `shortfall` gives the cause when the
   * application knows it held fewer at start.
   */
  pool?: PoolDeclaration;
  stop(): Promise<void>;
  /** Settles, saying how, if the application's process ends before it is stopped: the run then stops. */
  ended?: Promise<string>;
}

/** What `setup` and `check` get: where the application is and the run's options. */
export interface RunContext<O> {
  url: string;
  options: LoadOptions & O;
}

/** One simulated user, as its journey sees it. */
export interface VirtualUser<O, S, K> extends RunContext<O> {
  /** The user's number in the run, from 0. */
  index: number;
  /** A name unique to this user, run and instance (`<instance>_<index>`), for usernames and the like. */
  name: string;
  /** What `setup` answered. */
  setup: S;
  /** This user's seeded random numbers in [0, 1): the same --seed makes the same choices. */
  random(): number;
  /**
   * Times `call` as the action `name`. A failure is counted and kept for the report, never thrown: the
   * answer is then undefined, as it is once the run is stopping (no new action starts then). The first
   * action after a user's arrival (open model), and the first in each --pace slot, is also timed from
   * when it was due: its corrected latency.
   */
  act<T>(name: string, call: () => Promise<T>): Promise<T | undefined>;
  /**
   * Runs `action` --actions times until the run stops: a --think-time pause before each, or with --pace
   * each due at its slot (the first at once, each next --pace after the last one's due time).
   */
  repeat(action: (n: number) => Promise<unknown>): Promise<void>;
  /** Hands `item` (JSON-able) to the end-state check as one of `kept`; undefined is ignored. */
  keep(item: K | undefined): void;
  /** True once the run stops starting actions (time cap, interrupt, the app ended). */
  readonly stopping: boolean;
}

/** What the end-state check gets besides the run's context. */
export interface CheckContext<O, S, K> extends RunContext<O> {
  setup: S;
  /** Everything the users kept, from every worker thread. */
  kept: K[];
  /** True when the run was the application's only writer (the tool started it, one instance): counts are exact. */
  exact: boolean;
  /** Failed attempts per action name: a write that failed after the server stored it shows as a difference. */
  failures: Record<string, number>;
}

/** What the check answers; the tool adds `name` (the scenario's `checkName`), `counts` and `checked`. */
export type CheckAnswer = Omit<EndCheck, "name" | "checked" | "counts"> & Partial<Pick<EndCheck, "counts">>;

export interface Scenario<O extends object = Record<string, never>, S = undefined, K = never> {
  /** Short, a word or two (`shop`); the results keep this scenario's options under it. */
  name: string;
  /** One sentence for --help. */
  description: string;
  /** Adds the scenario's own options to the command (commander's `.option(...)`); their values reach `options`. */
  options?: (command: Command) => void;
  /** The options' words in the report's headline: `reply share 0.9`. */
  about?: (options: LoadOptions & O) => string;
  /** The application to start when no --url is given. */
  start?: (options: LoadOptions & O) => Promise<StartedApp>;
  /** Once, before the users start: what they all need (ids, counts before). Its answer must be JSON-able. */
  setup?: (context: RunContext<O>) => Promise<S>;
  /** One user's journey. */
  user: (user: VirtualUser<O, S, K>) => Promise<void>;
  /** How many actions a user records in all, for progress and ETA (default: --actions). */
  steps?: (options: LoadOptions & O) => number;
  /** Once, after the users: is the application's state what the run says it did? */
  check?: (context: CheckContext<O, S, K>) => Promise<CheckAnswer>;
  /** What the report calls the check: "Nothing lost" (default "End state"). */
  checkName?: string;
}

/** A scenario and the file that defines it (worker threads and Kubernetes pods load that file). */
export interface LoadedScenario<O extends object = Record<string, never>, S = undefined, K = never>
  extends Scenario<O, S, K> {
  file: string;
}

// deno-lint-ignore no-explicit-any
export type AnyScenario = LoadedScenario<any, any, any>;

const defined = new Map<string, AnyScenario>();

/** Notes the scenario a file defined (scenario() in lib/load-cli.ts does, for every file that calls it). */
export function register(loaded: AnyScenario): void {
  defined.set(loaded.file, loaded);
}

/** The scenario the file at `url` defines: how a worker thread finds the user's scenario. */
export async function scenarioAt(url: string): Promise<AnyScenario> {
  if (!defined.has(url)) await import(url);
  const found = defined.get(url);
  if (!found) throw new Error(`${url} defines no scenario: it must call scenario(import.meta, { ... })`);
  return found;
}
