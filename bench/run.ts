/** What the benchmarks share: a command run to its end, its stderr (progress) shown, its stdout dropped. */
import { spawn } from "node:child_process";

/** Runs `command` to its end with `env` added to this process's; answers its exit code. */
export function runToEnd(command: string, args: string[], env: Record<string, string> = {}): Promise<number | null> {
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, ...env } });
  return new Promise((resolve) => child.on("close", resolve));
}
