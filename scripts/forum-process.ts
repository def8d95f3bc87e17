/**
 * The reference forum in a process of its own, as a load run starts it: spawnForum, and the pool modes its
 * command line takes. Apart from scripts/forum-server.ts, so that a load scenario (which every worker thread
 * imports) does not load the forum, pg and all, to start it: that was about 0.2 CPU-s a thread.
 *
 *   const forum = await spawnForum(1000, { poolMode: "fixed" });   // forum.url, forum.pool.held, forum.stop()
 */
import { spawn } from "node:child_process";
import { platform } from "node:os";
import { fileURLToPath } from "node:url";
import { recordOutput, runtimeCommand, stopChild, waitForOutput } from "../lib/process.ts";

export const POOL_MODES = ["fixed", "on-demand"] as const;
export type PoolMode = typeof POOL_MODES[number];

export interface RunningForum {
  url: string;
  databaseUrl: string;
  /** PostgreSQL's max_connections. */
  maxConnections: number;
  /** The pool: its size, mode, the connections it held when the forum was ready, and why fewer, if so. */
  pool: { size: number; mode: PoolMode; held: number; shortfall?: string };
  /** Stops accepting, lets requests in flight finish (up to `deadlineMs`), closes the pool and the database. */
  stop(deadlineMs?: number): Promise<void>;
}

/** The forum in a process of its own, as spawnForum started it. */
export interface SpawnedForum extends RunningForum {
  /** Settles when the forum's process ends, however it ends: "exit 0", "signal SIGKILL". */
  ended: Promise<string>;
  /** The forum's process id (for its CPU time, say). */
  pid: number;
}

/**
 * Starts this forum in a process of its own (so that its CPU is not a load generator's), on a free port,
 * with its open-file limit raised to the hard limit, and answers once it is ready. The process leaves
 * the terminal's process group, so a Ctrl-C reaches only the parent, which stops it when it is done;
 * and it stops itself when the parent's pipe to it closes, so even a parent killed with SIGKILL leaves
 * no forum (nor, through the forum's own watchdog, any PostgreSQL) behind.
 */
export async function spawnForum(
  pool: number,
  more: { poolMode?: PoolMode; databaseUrl?: string } = {},
): Promise<SpawnedForum> {
  const args = ["--port", "0", "--pool", String(pool), "--json", "--stop-with-stdin"];
  if (more.poolMode) args.push("--pool-mode", more.poolMode);
  if (more.databaseUrl) args.push("--database-url", more.databaseUrl);
  const command = runtimeCommand(fileURLToPath(new URL("./forum-server.ts", import.meta.url)), args);
  const options = { stdio: ["pipe", "pipe", "pipe"] as ["pipe", "pipe", "pipe"], detached: platform() !== "win32" };
  const child = platform() === "win32"
    ? spawn(command[0], command.slice(1), options)
    : spawn("sh", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', "forum", ...command], options);
  const ended = new Promise<string>((resolve) =>
    child.on("close", (code, signal) => resolve(signal ? `signal ${signal}` : `exit ${code}`))
  );
  const output = recordOutput(child);
  child.stderr!.on("data", (chunk) => {
    for (const line of String(chunk).split("\n")) {
      if (line.startsWith("error")) process.stderr.write(`forum: ${line}\n`);
    }
  });
  const ready = await waitForOutput(child, output, "stdout", "\n", 120_000).catch((error) => {
    throw new Error(`The reference forum did not start: ${error.message}`);
  });
  return { ...JSON.parse(ready.split("\n")[0]), ended, stop: () => stopChild(child, "stdin", 30_000) };
}
