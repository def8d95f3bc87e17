// What several test files need: the reference forum as a fixture, running a project script as a user
// would (under the current runtime), and waiting for a condition with a deadline instead of sleeping.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Fault, type ForumOptions, startForum } from "../scripts/forum-server.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { type Output, recordOutput, runtimeCommand, waitForOutput } from "../lib/process.ts";

/**
 * The reference forum on a free port, on its own embedded PostgreSQL, quiet, with cheap password
 * hashes (scrypt is the same code at any cost) and a small pool (each connection costs PostgreSQL about 30 ms of
 * CPU to open: 50 of them made a start 1.2 CPU-s dearer).
 */
export function startTestForum(faults: Fault[] = [], options: ForumOptions = {}): Promise<RunningForum> {
  return startForum({ port: 0, pool: 10, scryptCost: 1024, faults, log: () => {}, ...options });
}

export interface ScriptRun {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** What it had printed when it exited: a shell's prompt comes back then, even if children print on. */
  atExit: Output;
}

/** A script started in the background: its process, what it printed so far, and its end. */
export interface RunningScript {
  child: ChildProcess;
  output: Output;
  done: Promise<ScriptRun>;
}

export interface StartOptions {
  /** Run through `sh -c "<shell> && exec ..."` first, e.g. to set a ulimit. */
  shell?: string;
  /** In a process group of its own, as a terminal runs a job: `signalGroup` then reaches all of it. */
  group?: boolean;
  timeoutMs?: number;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** The directory it runs in (default: this process's). */
  cwd?: string;
  /** Written to its standard input, which then closes. */
  input?: string;
}

/**
 * Starts `command` without blocking this process's event loop (which may be serving the forum the
 * command talks to), and keeps what it prints.
 */
export function startCommand(command: string[], options: StartOptions = {}): RunningScript {
  const argv = options.shell ? ["sh", "-c", `${options.shell} && exec "$@"`, "sh", ...command] : command;
  const child = spawn(argv[0], argv.slice(1), {
    stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    detached: options.group,
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
  });
  if (options.input !== undefined) child.stdin!.end(options.input);
  const output = recordOutput(child);
  const timer = setTimeout(() => signalGroup(child, "SIGKILL"), options.timeoutMs ?? 120_000);
  let atExit: Output = { stdout: "", stderr: "" };
  child.on("exit", () => atExit = { ...output });
  const done = new Promise<ScriptRun>((resolve) =>
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, ...output, atExit });
    })
  );
  return { child, output, done };
}

/** Starts `scripts/<script>` with `args` under this runtime; see startCommand. */
export function startScript(script: string, args: string[], options?: StartOptions): RunningScript {
  return startCommand(runtimeCommand(`scripts/${script}`, args), options);
}

/** Runs `scripts/<script>` with `args` to completion; see startCommand. */
export function runScript(script: string, args: string[], options?: StartOptions): Promise<ScriptRun> {
  return startScript(script, args, options).done;
}

/** Sends `signal` to the child's whole process group (started with `group`), as a terminal's Ctrl-C does. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    child.kill(signal);
  }
}

/** Whether a process with this pid is still running. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pids of the processes `pid` started. */
export function childrenOf(pid: number): number[] {
  const ps = spawnSync("ps", ["-eo", "pid=,ppid="], { encoding: "utf8" }).stdout;
  return ps.split("\n").map((line) => line.trim().split(/\s+/).map(Number)).filter(([, ppid]) => ppid === pid)
    .map(([child]) => child);
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

/** A fresh, empty directory to give a script as its TMPDIR (mode 0755: as root, PostgreSQL's user must reach it). */
export function freshTmpdir(): string {
  const dir = mkdtempSync(join(tmpdir(), "tierload-tmpdir-"));
  chmodSync(dir, 0o755);
  return dir;
}

/** What is left in `dir`, but tsx's own cache (tsx-<uid>), which tsx keeps there on purpose. */
export function leftIn(dir: string): string[] {
  return readdirSync(dir).filter((name) => !/^tsx-\d+$/.test(name));
}
