// What several test files need: running a project script as a user would, under the current runtime.
import { type ChildProcess, spawn } from "node:child_process";

/** The arguments that run a TypeScript file under the runtime running this test. */
export function runtimeArgs(): string[] {
  return process.versions.deno ? ["run", "-A"] : ["--import", "tsx"];
}

export interface ScriptRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A script started in the background: its process, what it printed so far, and its end. */
export interface RunningScript {
  child: ChildProcess;
  output: { stdout: string; stderr: string };
  done: Promise<ScriptRun>;
}

/**
 * Starts `scripts/<script>` with `args`, without blocking this process's event loop (which may be
 * serving the forum the script talks to). `shell` runs it through `sh -c` first, e.g. to set a ulimit.
 */
export function startScript(script: string, args: string[], shell?: string, timeoutMs = 120_000): RunningScript {
  const command = [process.execPath, ...runtimeArgs(), `scripts/${script}`, ...args];
  const child = shell
    ? spawn("sh", ["-c", `${shell} && exec "$@"`, "sh", ...command], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  const output = { stdout: "", stderr: "" };
  child.stdout!.on("data", (chunk) => output.stdout += chunk);
  child.stderr!.on("data", (chunk) => output.stderr += chunk);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const done = new Promise<ScriptRun>((resolve) =>
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, ...output });
    })
  );
  return { child, output, done };
}

/** Runs `scripts/<script>` with `args` to completion; see startScript. */
export function runScript(script: string, args: string[], shell?: string): Promise<ScriptRun> {
  return startScript(script, args, shell).done;
}

/** Resolves once `text` appears in what the script printed on `stream`; rejects if it ends first. */
export function waitFor(run: RunningScript, stream: "stdout" | "stderr", text: string | RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const seen = run.output[stream];
      if (typeof text === "string" ? seen.includes(text) : text.test(seen)) {
        clearInterval(poll);
        resolve();
      }
    };
    const poll = setInterval(check, 20);
    run.done.then(() => {
      clearInterval(poll);
      reject(new Error(`the script ended before printing ${text}: ${run.output.stderr.slice(-500)}`));
    });
  });
}
