/**
 * What every script's command line shares: the command (usage errors exit 2), option validators, and
 * the entry guard that runs `main` when the file is the program (not when a test imports it) and turns
 * a failure into `error: ...` on stderr and exit status 1.
 *
 *   if (isMain(import.meta)) runMain(main);
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { isMainThread } from "node:worker_threads";
import { Command, CommanderError, InvalidArgumentError } from "commander";

/** Exit statuses, as every script's --help states them. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/**
 * The process's arguments without the lone "--" that `deno task start -- --users 20` passes on (`npm start --
 * --users 20` removes its own), so that both mean the same.
 */
export function scriptArgs(argv: string[]): string[] {
  return argv[2] === "--" ? [...argv.slice(0, 2), ...argv.slice(3)] : argv;
}

/**
 * A commander command, with --version, whose usage errors (an unknown option, a bad value: commander has printed the
 * message and its "did you mean") reach runMain as CommanderError, which exits 2, not commander's 1.
 */
export function command(name: string): Command {
  return new Command(name).exitOverride().version(`tierload ${VERSION}`, "-V, --version", "print the version and exit");
}

/** The environment variable that stands for an option: `--max-p99` is TIERLOAD_MAX_P99. */
export function environmentName(long: string): string {
  return "TIERLOAD_" + long.replace(/^--/, "").replace(/-/g, "_").toUpperCase();
}

/**
 * Options not given on the command line, taken from their environment variables (TIERLOAD_USERS for --users),
 * through the same parsers; a bad value is a usage error naming the variable.
 */
export function fromEnvironment(program: Command): void {
  for (const option of program.options) {
    const raw = option.long ? process.env[environmentName(option.long)] : undefined;
    const key = option.attributeName();
    if (raw === undefined || program.getOptionValueSource(key) === "cli") continue;
    let value: unknown = raw;
    if (!option.required && !option.optional) value = !/^(|0|false|no)$/i.test(raw);
    else if (option.variadic) value = raw.split(/\s+/).filter(Boolean);
    else if (option.parseArg) {
      try {
        value = option.parseArg(raw, undefined);
      } catch (error) {
        program.error(`error: ${environmentName(option.long!)}=${JSON.stringify(raw)}: ${(error as Error).message}`, {
          exitCode: EXIT.usage,
        });
      }
    }
    program.setOptionValueWithSource(key, value, "env");
  }
}

/** tierload's version, from its package.json. */
export const VERSION: string = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version;

/** A commander option parser for a number from `min` to `max` (an integer when `integer`). *
 *   .option("--reply-share <fraction>", "share of replies", number(0, 1), 0.9)
 */
export function number(min: number, max = Infinity, integer = false): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(
        `expected ${integer ? "an integer" : "a number"} from ${min}${max < Infinity ? ` to ${max}` : " up"}`,
      );
    }
    return n;
  };
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A commander option parser for a time: `250ms`, `30s`, `5m`, `1h30m`, or a bare number in `unit` (what the
 * option always took), answered in `unit`, from `min` to `max` (in `unit` too).
 *
 *   .option("--think-time <time>", "mean pause (default unit: ms)", duration("ms", 0), 0)
 */
export function duration(unit: "ms" | "s", min = 0, max = Infinity): (value: string) => number {
  return (value) => {
    const text = value.trim();
    let ms: number;
    if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * UNITS[unit];
    else if (/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(text)) {
      ms = 0;
      for (const [, n, , u] of text.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * UNITS[u];
    } else {
      throw new InvalidArgumentError(
        `expected a time such as 250ms, 30s, 5m or 1h30m (a bare number is in ${
          unit === "ms" ? "milliseconds" : "seconds"
        })`,
      );
    }
    const answer = ms / UNITS[unit];
    if (!Number.isFinite(answer) || answer < min || answer > max) {
      const limits = `${min}${unit}${max < Infinity ? ` to ${max}${unit}` : " or more"}`;
      throw new InvalidArgumentError(`expected a time of ${limits}`);
    }
    return answer;
  };
}

/** A commander option parser for an integer from `min` to `max`. *
 *   .option("--pool <n>", "PostgreSQL connections", integer(1, 10_000), 1000)
 */
export function integer(min: number, max = Infinity): (value: string) => number {
  return number(min, max, true);
}

/**
 * A commander option parser for an application's address: an absolute http:// or https:// URL, answered as given.
 *
 *   .option("--url <url>", "the application to test", httpUrl)
 */
export function httpUrl(value: string): string {
  let protocol: string;
  try {
    protocol = new URL(value).protocol;
  } catch {
    protocol = "";
  }
  if (protocol !== "http:" && protocol !== "https:") {
    throw new InvalidArgumentError("expected an http:// or https:// URL, such as http://localhost:8080/myapp/");
  }
  return value;
}

/**
 * Whether the module of `meta` is the program: Deno says so; on Node its URL is argv[1]'s. Never in a
 * worker thread, which loads the program's file again to run its users.
 *
 *   if (isMain(import.meta)) runMain(main);
 */
export function isMain(meta: ImportMeta): boolean {
  if (!isMainThread) return false;
  return (meta as { main?: boolean }).main ?? meta.url === pathToFileURL(process.argv[1] ?? "").href;
}

/**
 * The URL of the module whose `import.meta` this is. A .ts file that tsx loads as CommonJS (one outside any
 * package.json with "type": "module") has no `import.meta`: say so, and how to fix it.
 */
export function moduleUrl(meta: ImportMeta | undefined): string {
  // tsx's CommonJS output gives import.meta a url but no resolve, and every module it requires is CommonJS too.
  if (typeof meta?.url === "string" && typeof meta.resolve === "function") return meta.url;
  throw new Error(
    `This file was loaded as CommonJS, so it has no import.meta: put it in a package whose package.json says ` +
      `"type": "module" (npm init -y && npm pkg set type=module), or name it .mts`,
  );
}

/**
 * Runs a script's main. A usage error exits 2 (commander printed it; --help and --version exit 0); any
 * other failure prints `error: <message>` to stderr and exits 1.
 *
 *   if (isMain(import.meta)) runMain(main);
 */
export function runMain(main: () => Promise<void>): void {
  // A reader that stops reading (`| head`) is no failure of ours: stop quietly, as other tools do.
  process.stdout.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code === "EPIPE") process.exit(process.exitCode ?? EXIT.ok);
  });
  main().catch((error) => {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = EXIT.failed;
  });
}

/** Why `path` cannot be written, or null when it can (or is not given): checked before a run, not after. */
export function unwritable(path: string | undefined): string | null {
  if (!path) return null;
  const file = resolve(path);
  if (existsSync(file) && statSync(file).isDirectory()) return `${path} is a directory`;
  const dir = dirname(file);
  if (!existsSync(dir)) return `${path} cannot be written: the directory ${dir} does not exist`;
  try {
    accessSync(existsSync(file) ? file : dir, constants.W_OK);
  } catch {
    return `${path} cannot be written: no permission`;
  }
  return null;
}

/**
 * Text from outside (a page, a results file, an option) made safe to print on a terminal: every control
 * character (escape sequences, a newline that would forge a report line, bidirectional overrides) is shown
 * as its escape instead of acting.
 *
 *   printable("\x1b[2Jhi\nVerdict: PASS") // "\\x1b[2Jhi\\x0aVerdict: PASS"
 */
export function printable(text: string): string {
  // deno-lint-ignore no-control-regex -- finding them is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** `value` with every string in it made printable (see `printable`), for a report printed on a terminal. */
export function printableStrings<T>(value: T): T {
  if (typeof value === "string") return printable(value) as T;
  if (Array.isArray(value)) return value.map(printableStrings) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [printable(k), printableStrings(v)])) as T;
  }
  return value;
}
