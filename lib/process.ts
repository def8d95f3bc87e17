/**
 * Child processes as the scripts and tests use them: run a TypeScript file under the runtime running
 * this one, start one that stops when we do, watch what a child prints, stop it and wait until it is gone,
 * read the open-file limits.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { platform } from "node:os";

/**
 * Spawns `command` in a process group of its own under a small sh watchdog that holds our end of a pipe: when
 * the pipe closes (stopChild(child, "stdin"), or this process died, even by kill -9), it sends `signal` to the
 * command (with `group`, to every process in the group, what the command started too), and SIGCONT, so that a
 * stopped one hears it. Its stdout and stderr are piped to us. On Windows, the command alone.
 *
 *   const server = spawnWatched("postgres", ["-D", dir], { signal: "INT" });   // ... stopChild(server, "stdin", 30_000)
 */
export function spawnWatched(
  command: string,
  args: string[],
  options: {
    signal: "INT" | "TERM";
    group?: boolean;
    name?: string;
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    uid?: number;
    gid?: number;
  },
): ChildProcess {
  const { signal, group, name = "watchdog", ...rest } = options;
  const stdio: ["pipe", "pipe", "pipe"] = ["pipe", "pipe", "pipe"];
  if (platform() === "win32") return spawn(command, args, { ...rest, stdio });
  // Background jobs get /dev/null as stdin, so the pipe goes to the command's watcher as fd 3. The watcher holds
  // none of our pipes' other ends (they close when the command, and what it started, has ended), and outlives
  // a signal to its own group long enough to send SIGCONT after it.
  const target = group ? "0" : "$pid";
  const watcher = `(trap '' ${signal}; read _ <&3; kill -${signal} ${target}; kill -CONT ${target}) >/dev/null 2>&1 &`;
  return spawn("sh", ["-c", `exec 3<&0; "$@" 3<&- & pid=$!; ${watcher} exec 3<&-; wait $pid`, name, command, ...args], {
    ...rest,
    stdio,
    detached: true,
  });
}

/** The command that runs a TypeScript file under this runtime: Deno's `run -A`, or Node with this process's loader. */
export function runtimeCommand(script: string, args: string[] = []): string[] {
  const runtime = process.versions.deno ? ["run", "-A"] : process.execArgv;
  return [process.execPath, ...runtime, script, ...args];
}

/** What a child printed so far, kept as it arrives. */
export interface Output {
  stdout: string;
  stderr: string;
}

/** Keeps everything the child prints on its piped stdout and stderr. */
export function recordOutput(child: ChildProcess): Output {
  const output = { stdout: "", stderr: "" };
  child.stdout?.on("data", (chunk) => output.stdout += chunk);
  child.stderr?.on("data", (chunk) => output.stderr += chunk);
  return output;
}

/**
 * Resolves with what `stream` printed once it matches `pattern`; rejects, with the child's last words,
 * when the child ends first or `timeoutMs` passes.
 */
export function waitForOutput(
  child: ChildProcess,
  output: Output,
  stream: keyof Output,
  pattern: string | RegExp,
  timeoutMs = 60_000,
): Promise<string> {
  const matches = () => typeof pattern === "string" ? output[stream].includes(pattern) : pattern.test(output[stream]);
  return new Promise((resolve, reject) => {
    const done = (error?: Error) => {
      clearTimeout(timer);
      child[stream]?.off("data", check);
      child.off("close", ended);
      error ? reject(error) : resolve(output[stream]);
    };
    const check = () => matches() && setImmediate(done);
    const lastWords = () => (output.stderr || output.stdout).trim().slice(-2000);
    const ended = (code: number | null, signal: string | null) =>
      matches()
        ? done()
        : done(new Error(`it ended (${signal ?? `exit ${code}`}) before printing ${pattern}: ${lastWords()}`));
    const timer = setTimeout(
      () => done(new Error(`no ${pattern} within ${timeoutMs / 1000} s: ${lastWords()}`)),
      timeoutMs,
    );
    child[stream]?.on("data", check);
    child.on("close", ended);
    if (child.exitCode !== null || child.signalCode !== null) ended(child.exitCode, child.signalCode);
    else check();
  });
}

/** Whether the child has ended. */
export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Asks a child to stop (`"stdin"`: by closing its stdin, for children that watch it; or a signal),
 * and waits until it has; after `graceMs` it is killed.
 */
export async function stopChild(child: ChildProcess, how: "stdin" | NodeJS.Signals, graceMs: number): Promise<void> {
  if (exited(child)) return;
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  if (how === "stdin" && platform() !== "win32") child.stdin?.end();
  else child.kill(how === "stdin" ? "SIGTERM" : how);
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await closed;
  clearTimeout(timer);
}

/** The soft and hard limits on open files, as a shell started from here sees them (null on Windows). */
export function openFileLimits(): { soft: number; hard: number } | null {
  if (platform() === "win32") return null;
  const read = (flag: string) => spawnSync("sh", ["-c", `ulimit ${flag}`], { encoding: "utf8" }).stdout.trim();
  const soft = Number(read("-Sn"));
  const hard = read("-Hn");
  if (!Number.isFinite(soft)) return null;
  return { soft, hard: hard === "unlimited" ? Infinity : Number(hard) };
}

/**
 * Calls `callback` once when this process is orphaned: its parent has died (kill -9 of the `tsx` or
 * `npm start` wrapper, of `deno task`), and it was handed to init or a subreaper. A cheap poll of
 * process.ppid on an unref'd timer: it never keeps the process alive. Answers a function that stops the
 * watch. A process started with init as its parent is never called orphaned.
 */
export function whenOrphaned(callback: () => void, intervalMs = 250): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    callback();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * A port nobody listens on right now on `host`, for a program that cannot be told to pick one itself
 * (PostgreSQL, Prometheus).
 *
 *   const port = await freePort();
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
