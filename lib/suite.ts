/**
 * The functional runner: a file of test cases (tier 1) becomes a program with `--url`, `--grep`, `--list`,
 * `--reporter spec|tap|junit` (each also from the environment: `TIERLOAD_URL`, as the load tool's) and Ctrl-C. Each case gets the little world its file defines (fresh users,
 * unique names); a failure says the step, the URL, the status and the page, or the check and its line.
 *
 *   export const cases = suite(import.meta, {
 *     name: "shop",
 *     description: "The shop's cases",
 *     start: () => startShop({ port: 0 }),       // the application when no --url is given (optional)
 *     world: ({ url, unique, newName }) => ({ url, unique, newName }),
 *   });
 *   cases.test("the seed's user p1 logs in", async ({ url }) => assert.equal(await whoAmI(await login(url, "p1", "p1")), "p1"));
 *
 * Running the file runs its cases, once every case is defined: `npx tsx cases.ts --reporter junit`.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Option } from "commander";
import { command, EXIT, fromEnvironment, httpUrl, isMain, moduleUrl, printable, runMain, scriptArgs } from "./cli.ts";
import { shownUrl } from "./fetchData.ts";
import { StepError } from "./steps.ts";
import { escapeHtml } from "./web.ts";

/** What the tool gives every world: the application's URL and names unique to this run. */
export interface Basics {
  url: string;
  /** `text` made unique to this run (`Title [k3x9-4]`), for titles that must be found again. */
  unique(text: string): string;
  /** A fresh name, letters, digits and `_` only: `u_k3x9_5`. */
  newName(prefix?: string): string;
}

/** An application the runner started because no --url was given. */
export interface StartedApp {
  url: string;
  stop(): Promise<void>;
}

export interface SuiteDefinition<W> {
  /** The suite's name, in the JUnit report. */
  name: string;
  /** One sentence for --help. */
  description: string;
  /** The application to start when no --url is given (optional). */
  start?: () => Promise<StartedApp>;
  /** The world each case gets, made once per run. */
  world: (basics: Basics) => W;
}

export interface Case<W> {
  name: string;
  run(world: W): Promise<void>;
}

export interface Result {
  name: string;
  ms: number;
  error?: unknown;
}

export interface Suite<W> {
  /** Defines a case: a handful of adapter calls, read as the user's steps. */
  test(name: string, run: (world: W) => Promise<void>): void;
  readonly cases: Case<W>[];
  /**
   * Runs the cases whose names match `grep` against the application at `url`, one after another, until
   * they are done or `stop()` says to stop (then the case in flight finishes first).
   */
  run(url: string, grep?: RegExp, onResult?: (result: Result) => void, stop?: () => boolean): Promise<Result[]>;
  /** What a person needs to see of a failure: the step, the URL, the status and the page, or the check's line. */
  describeFailure(error: unknown): string[];
  /** The results as JUnit XML. */
  formatJunit(results: Result[], seconds: number): string;
  /** The program: options, the application, the cases, the report, the exit status. */
  main(argv?: string[]): Promise<void>;
}

/**
 * The suite of the file whose `import.meta` is given; when that file is the program, its cases run once
 * the file has defined them all.
 *
 *   const cases = suite(import.meta, { name: "shop", description: "...", world: ({ url }) => ({ url }) });
 *   cases.test("p1 logs in", async ({ url }) => assert.equal(await whoAmI(await login(url, "p1", "p1")), "p1"));
 */
export function suite<W>(meta: ImportMeta, definition: SuiteDefinition<W>): Suite<W> {
  const cases: Case<W>[] = [];
  const file = fileURLToPath(moduleUrl(meta));
  const selected = (grep?: RegExp) => cases.filter((c) => !grep || grep.test(c.name));

  async function run(url: string, grep?: RegExp, onResult?: (r: Result) => void, stop = () => false) {
    const id = Date.now().toString(36);
    let counter = 0;
    const world = definition.world({
      url,
      unique: (text) => `${text} [${id}-${++counter}]`,
      newName: (prefix = "u") => `${prefix}${id}_${++counter}`,
    });
    const results: Result[] = [];
    for (const testCase of selected(grep)) {
      if (stop()) break;
      const started = performance.now();
      let error: unknown;
      try {
        await testCase.run(world);
      } catch (caught) {
        error = caught;
      }
      const result = { name: testCase.name, ms: performance.now() - started, error };
      results.push(result);
      onResult?.(result);
    }
    return results;
  }

  function describeFailure(error: unknown): string[] {
    return describeRaw(error).map(printable);
  }

  function describeRaw(error: unknown): string[] {
    if (error instanceof StepError) {
      return [
        `step:   ${error.step} (as ${error.user})`,
        `error:  ${error.message}`,
        ...(error.url ? [`url:    ${shownUrl(error.url)}`] : []),
        ...(error.status ? [`status: ${error.status}`] : []),
        ...(error.excerpt ? [`page:   ${error.excerpt}`] : []),
      ];
    }
    if (error instanceof assert.AssertionError) {
      const where = error.stack?.split("\n").find((line) => line.includes(file))?.trim();
      return [`check:  ${error.message.split("\n").filter(Boolean).join(" ")}`, ...(where ? [`where:  ${where}`] : [])];
    }
    return [`error:  ${error instanceof Error ? error.message : String(error)}`];
  }

  function formatJunit(results: Result[], seconds: number): string {
    const failures = results.filter((r) => r.error).length;
    const name = xml(definition.name);
    const testcases = results.map((r) => {
      const open = `  <testcase classname="${name}" name="${xml(r.name)}" time="${(r.ms / 1000).toFixed(3)}"`;
      if (!r.error) return `${open}/>`;
      const lines = describeFailure(r.error);
      return `${open}>\n    <failure message="${xml(lines[0])}">${xml(lines.join("\n"))}</failure>\n  </testcase>`;
    });
    return `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="${results.length}" failures="${failures}" time="${seconds.toFixed(3)}">
<testsuite name="${name}" tests="${results.length}" failures="${failures}" time="${seconds.toFixed(3)}">
${testcases.join("\n")}
</testsuite>
</testsuites>`;
  }

  async function main(argv = process.argv): Promise<void> {
    const program = command(definition.name)
      .description(definition.description)
      .option(
        "--url <url>",
        `the application to test${definition.start ? " (default: start one for this run)" : ""}`,
        httpUrl,
      )
      .option("--grep <pattern>", "run only the cases whose names match this regular expression")
      .addOption(new Option("--reporter <kind>", "how to report").choices(["spec", "tap", "junit"]).default("spec"))
      .option("--list", "list the cases and exit")
      .addHelpText(
        "after",
        `
Exit status: 0 when every case passed, 1 when any failed (or none matched), 2 for a usage error, 130 when
interrupted (Ctrl-C: the case in flight finishes, the report shows what ran; a second Ctrl-C quits at once).
The spec reporter prints one line per case and a last line "N passed, N failed";
tap and junit print their format on stdout and that line on stderr.
Every option can also be set in the environment: TIERLOAD_URL=http://... for --url (the command line wins).`,
      )
      .parse(scriptArgs(argv));
    fromEnvironment(program);
    const options = program.opts<{ url?: string; grep?: string; reporter: "spec" | "tap" | "junit"; list?: boolean }>();
    const usage = (message: string) => program.error(`error: ${message}`, { exitCode: EXIT.usage });
    let grep: RegExp | undefined;
    try {
      grep = options.grep ? new RegExp(options.grep, "i") : undefined;
    } catch (error) {
      usage(`--grep is not a regular expression: ${(error as Error).message}`);
    }
    if (options.list) {
      for (const c of selected(grep)) console.log(c.name);
      return;
    }
    if (selected(grep).length === 0) {
      process.stderr.write(`No case matches --grep ${JSON.stringify(options.grep)}: nothing was run\n`);
      process.exitCode = EXIT.failed;
      return;
    }
    if (!options.url && !definition.start) usage(`--url is needed: the suite starts no application of its own`);
    const app = options.url ? null : await definition.start!();
    const url = options.url ?? app!.url;
    process.stderr.write(`Testing ${url}${app ? " (started for this run)" : ""}\n`);
    let interrupted = false;
    const onSignal = (signal: string) => {
      // A second one quits at once; an application started here stops when our pipe to it closes.
      if (interrupted) process.exit(EXIT.interrupted);
      interrupted = true;
      process.stderr.write(`${signal}: stopping after the case in flight (Ctrl-C again to quit now)\n`);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    const started = performance.now();
    let index = 0;
    if (options.reporter === "tap") console.log("TAP version 13");
    const results = await run(url, grep, (result) => {
      index++;
      const ms = `${Math.round(result.ms)} ms`;
      const details = result.error ? describeFailure(result.error) : [];
      if (options.reporter === "spec") {
        console.log(`${result.error ? "✗" : "✓"} ${result.name} (${ms})`);
        for (const line of details) console.log(`    ${line}`);
      } else if (options.reporter === "tap") {
        console.log(`${result.error ? "not ok" : "ok"} ${index} - ${result.name} # time=${ms}`);
        if (details.length) console.log(`  ---\n${details.map((l) => `  # ${l}`).join("\n")}\n  ...`);
      }
    }, () => interrupted).finally(() => app?.stop());
    const seconds = (performance.now() - started) / 1000;
    if (options.reporter === "tap") console.log(`1..${results.length}`);
    if (options.reporter === "junit") console.log(formatJunit(results, seconds));
    const notRun = selected(grep).length - results.length;
    if (interrupted) process.stderr.write(`Interrupted: ${notRun} case${notRun === 1 ? "" : "s"} not run\n`);
    const failed = results.filter((r) => r.error).length;
    const summary = `${results.length - failed} passed, ${failed} failed`;
    (options.reporter === "spec" ? console.log : (line: string) => process.stderr.write(line + "\n"))(summary);
    process.exitCode = interrupted ? EXIT.interrupted : results.length > 0 && failed === 0 ? EXIT.ok : EXIT.failed;
  }

  const defined: Suite<W> = {
    test: (name, run) => void cases.push({ name, run }),
    cases,
    run,
    describeFailure,
    formatJunit,
    main,
  };
  // Like node:test, the file's cases run once it has defined them all: after its module has been evaluated.
  if (isMain(meta)) setTimeout(() => runMain(() => main()), 0);
  return defined;
}

// deno-lint-ignore no-control-regex -- XML 1.0 cannot carry these at all
const xml = (text: string) => escapeHtml(text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, ""));
