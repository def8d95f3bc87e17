/**
 * What every script's command line shares: option validators, and the entry guard that runs `main`
 * when the file is the program (not when a test imports it) and turns a failure into `error: ...`
 * on stderr and exit status 1.
 *
 *   if (isMain(import.meta)) runMain(main);
 */
import { pathToFileURL } from "node:url";
import { InvalidArgumentError } from "commander";

/** A commander option parser for a number from `min` to `max` (an integer when `integer`). */
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

/** A commander option parser for an integer from `min` to `max`. */
export function integer(min: number, max = Infinity): (value: string) => number {
  return number(min, max, true);
}

/** Whether the module of `meta` is the program: Deno says so; on Node its URL is argv[1]'s. */
export function isMain(meta: ImportMeta): boolean {
  return (meta as { main?: boolean }).main ?? meta.url === pathToFileURL(process.argv[1] ?? "").href;
}

/** Runs a script's main; a failure prints `error: <message>` to stderr and sets exit status 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((error) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
