/**
 * Your application, started for a run or a suite when no --url is given (a scenario's or a suite's `start`): a
 * command of yours in a process group of its own, ready once it prints a line `ready` matches, optionally on a
 * PostgreSQL of its own started first (the embedded one, as the reference forum's; DATABASE_URL in its
 * environment, `prepare` run before it, to migrate, say). However the run ends, it is stopped: stop() sends it
 * SIGTERM (SIGKILL after `graceMs`), and if this process dies, even by kill -9, a watchdog sends the SIGTERM;
 * the database stops and its directory goes.
 *
 *   start: () => startApplication({
 *     name: "the shop",
 *     command: ["python3", "-m", "gunicorn", "shop.wsgi", "--bind", "127.0.0.1:0"],
 *     ready: /Listening at: (http:\/\/\S+)/,
 *     database: { prepare: ({ run }) => run(["python3", "manage.py", "migrate"]) },
 *   }),
 */
import { execFile } from "node:child_process";
import { createSession, fetchPage } from "./fetchData.ts";
import { startTemporaryPostgres } from "./postgres.ts";
import { platform } from "node:os";
import { recordOutput, spawnWatched } from "./process.ts";
import type { StartedApp } from "./scenario.ts";

export interface ApplicationOptions {
  /** What reports and errors call it: "the shop". */
  name: string;
  /** The program and its arguments. It should listen on a free port (port 0) and print where. */
  command: string[];
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** A line it prints (stdout or stderr) once it serves; the first group, if any, is its URL. */
  ready: RegExp;
  /** Its URL from that line, when the first group is not it (a path to add, say). */
  url?: (match: RegExpExecArray) => string;
  /** A page (relative to the URL) that must answer 200 before it counts as started: for servers that listen early. */
  readyPage?: string;
  /** How long it may take to be ready, in ms (default 60 000). */
  timeoutMs?: number;
  /** Ms between stop()'s SIGTERM and a SIGKILL (default 30 000). */
  graceMs?: number;
  /** A PostgreSQL of its own, started first. */
  database?: {
    /** Its max_connections (default 100). */
    maxConnections?: number;
    /** Run before the application starts, with DATABASE_URL set: migrations, a first user. */
    prepare?: (
      database: { url: string; run: (command: string[], env?: Record<string, string>) => Promise<string> },
    ) => Promise<unknown>;
  };
  /** Lines of its output to show (its errors, say); shown through `log`. */
  show?: RegExp;
  /** Where progress lines go. Default: stderr. */
  log?: (line: string) => void;
}

/**
 * Starts the application and answers once it is ready: its URL, its database's, stop(), and `ended`, which
 * settles (saying how) if it ends before it is stopped. Throws, naming the application and its last words,
 * if it ends or times out before it is ready.
 */
export async function startApplication(options: ApplicationOptions): Promise<StartedApp> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"));
  const timeoutMs = options.timeoutMs ?? 60_000;
  const database = options.database
    ? await startTemporaryPostgres(options.database.maxConnections ?? 100, log)
    : undefined;
  const env = { ...process.env, ...options.env, ...(database && { DATABASE_URL: database.url }) };
  const [program, ...args] = options.command;
  let child: ReturnType<typeof spawnWatched> | undefined;
  let ended: Promise<string> | undefined;
  let stopping: Promise<void> | undefined;
  // SIGTERM to its process group (the watchdog, the application and what it started), SIGKILL after the grace.
  const stop = () =>
    stopping ??= (async () => {
      if (child && ended) {
        signalGroup(child.pid!, "SIGTERM");
        const timer = setTimeout(() => signalGroup(child!.pid!, "SIGKILL"), options.graceMs ?? 30_000);
        await ended;
        clearTimeout(timer);
      }
      await database?.stop();
    })();
  try {
    if (database && options.database?.prepare) {
      await options.database.prepare({ url: database.url, run: (command, extra) => run(command, options, extra, env) });
    }
    child = spawnWatched(program, args, {
      signal: "TERM",
      group: true,
      name: "application-watchdog",
      cwd: options.cwd,
      env,
    });
    const output = recordOutput(child);
    const lastWords = () => (output.stderr + output.stdout).trim().slice(-1000);
    ended = new Promise<string>((resolve) =>
      child!.on("close", (code, signal) => resolve(signal ? `signal ${signal}` : `exit ${code}`))
    );
    if (options.show) {
      const show = options.show;
      const echo = (chunk: Buffer) => String(chunk).split("\n").filter((line) => show.test(line)).forEach(log);
      child.stdout!.on("data", echo);
      child.stderr!.on("data", echo);
    }
    let gone: string | undefined;
    void ended.then((how) => gone = how);
    const match = await readyLine(output, options.ready, timeoutMs, () => gone).catch((error: Error) => {
      throw new Error(`${options.name} did not start: ${error.message}: ${lastWords()}`);
    });
    const url = new URL(options.url ? options.url(match) : match[1]).href;
    if (options.readyPage !== undefined) {
      await Promise.race([
        fetchPage(createSession(url, { timeoutMs }), options.readyPage),
        ended.then((how) => Promise.reject(new Error(`it ended (${how}): ${lastWords()}`))),
      ]).catch((error: Error) => {
        throw new Error(`${options.name} did not answer ${options.readyPage}: ${error.message}`);
      });
    }
    log(`${options.name} at ${url}`);
    return { url, databaseUrl: database?.url, name: options.name, stop, ended };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * The first match of `ready` in what either stream printed, looked for every 50 ms; an error if the application
 * ended first (`gone` says how) or `timeoutMs` passed.
 */
function readyLine(
  output: { stdout: string; stderr: string },
  ready: RegExp,
  timeoutMs: number,
  gone: () => string | undefined,
): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const look = () => {
      const match = ready.exec(output.stdout) ?? ready.exec(output.stderr);
      if (match) resolve(match);
      else if (gone()) reject(new Error(`it ended (${gone()}) before it printed a line that matches ${ready}`));
      else if (Date.now() > deadline) {
        reject(new Error(`it printed no line that matches ${ready} in ${timeoutMs / 1000} s`));
      } else setTimeout(look, 50);
    };
    look();
  });
}

/** Sends `signal` to the process group `pid` leads; a group already gone is no error. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(platform() === "win32" ? pid : -pid, signal);
  } catch {
    // gone
  }
}

/** Runs a preparing command where the application runs, with its environment; its output, or an error naming it. */
function run(
  command: string[],
  options: ApplicationOptions,
  extra: Record<string, string> = {},
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const [program, ...args] = command;
  return new Promise((resolve, reject) =>
    execFile(program, args, { cwd: options.cwd, env: { ...env, ...extra } }, (error, stdout, stderr) =>
      error
        ? reject(
          new Error(
            `Cannot prepare ${options.name}: ${command.join(" ")} failed: ${
              (stderr || error.message).trim().slice(-2000)
            }`,
          ),
        )
        : resolve(stdout))
  );
}
