// What several test files need: running a project script as a user would, under the current runtime.
import { spawn } from "node:child_process";

/** The arguments that run a TypeScript file under the runtime running this test. */
export function runtimeArgs(): string[] {
  return process.versions.deno ? ["run", "-A"] : ["--import", "tsx"];
}

export interface ScriptRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `scripts/<script>` with `args` to completion without blocking this process's event loop. */
export function runScript(script: string, args: string[], timeoutMs = 120_000): Promise<ScriptRun> {
  const child = spawn(process.execPath, [...runtimeArgs(), `scripts/${script}`, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => stdout += chunk);
  child.stderr.on("data", (chunk) => stderr += chunk);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) =>
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    })
  );
}
