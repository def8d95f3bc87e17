// What several test files need: the reference forum as a fixture, running a project script as a user
// would (under the current runtime), and waiting for a condition with a deadline instead of sleeping.
import { type ChildProcess, spawn } from "node:child_process";
import { type Fault, type ForumOptions, type RunningForum, startForum } from "../scripts/forum-server.ts";
import { type Output, recordOutput, runtimeCommand, waitForOutput } from "../lib/process.ts";

/**
 * The reference forum on a free port, on its own embedded PostgreSQL, quiet, with cheap password
 * hashes (scrypt is the same code at any cost) and a small pool.
 */
export function startTestForum(faults: Fault[] = [], options: ForumOptions = {}): Promise<RunningForum> {
  return startForum({ port: 0, pool: 50, scryptCost: 1024, faults, log: () => {}, ...options });
}

export interface ScriptRun {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** A script started in the background: its process, what it printed so far, and its end. */
export interface RunningScript {
  child: ChildProcess;
  output: Output;
  done: Promise<ScriptRun>;
}

/**
 * Starts `scripts/<script>` with `args`, without blocking this process's event loop (which may be
 * serving the forum the script talks to). `shell` runs it through `sh -c` first, e.g. to set a ulimit.
 */
export function startScript(script: string, args: string[], shell?: string, timeoutMs = 120_000): RunningScript {
  const command = runtimeCommand(`scripts/${script}`, args);
  const child = shell
    ? spawn("sh", ["-c", `${shell} && exec "$@"`, "sh", ...command], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  const output = recordOutput(child);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const done = new Promise<ScriptRun>((resolve) =>
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, ...output });
    })
  );
  return { child, output, done };
}

/** Runs `scripts/<script>` with `args` to completion; see startScript. */
export function runScript(script: string, args: string[], shell?: string): Promise<ScriptRun> {
  return startScript(script, args, shell).done;
}

/** Resolves once the script printed `text` on `stream`; rejects if it ends first or takes over a minute. */
export function waitFor(run: RunningScript, stream: keyof Output, text: string | RegExp): Promise<string> {
  return waitForOutput(run.child, run.output, stream, text);
}

/** Polls `condition` every 50 ms until it holds; fails, saying what was awaited, after `deadlineMs`. */
export async function eventually(what: string, condition: () => boolean | Promise<boolean>, deadlineMs = 30_000) {
  const deadline = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Waited ${deadlineMs / 1000} s for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
