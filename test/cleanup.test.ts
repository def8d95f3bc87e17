// Every way a run can end removes what it created: each case runs a script as a person would, with a TMPDIR of
// its own, ends it the way the case says (a signal to its group, kill -9, closed pipes), and checks the folder.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { sweepStaleDataDirs } from "../lib/postgres.ts";
import { recordOutput, runtimeCommand, waitForOutput } from "../lib/process.ts";
import {
  alive,
  childrenOf,
  eventually,
  freshTmpdir,
  leftIn,
  signalGroup,
  startCommand,
  startScript,
  waitFor,
} from "./helpers.ts";

const made: string[] = [];
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
/** A TMPDIR for one case, removed at the end whatever happens. */
function tmp(): string {
  const dir = freshTmpdir();
  made.push(dir);
  return dir;
}
const forumArgs = ["--port", "0", "--pool", "5", "--scrypt-cost", "1024", "--json"];
const tsx = "node_modules/.bin/tsx";
/** Waits until nothing but tsx's cache is left in `dir`: the PostgreSQL data directory is gone. */
const emptied = (dir: string) => eventually(`${dir} to be emptied`, () => leftIn(dir).length === 0, 30_000);
/** Whether a tierload-pg-* directory is in `dir` (the forum has made its database's). */
const holdsData = (dir: string) => leftIn(dir).some((name) => name.startsWith("tierload-pg-"));

describe("the forum removes its PostgreSQL directory however it ends", () => {
  test("--stop-with-stdin, with its stdout and stderr closed too: closing stdin still removes everything", async () => {
    const dir = tmp();
    const [command, ...args] = runtimeCommand("scripts/forum-server.ts", [...forumArgs, "--stop-with-stdin"]);
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, TMPDIR: dir } });
    const output = recordOutput(child);
    await waitForOutput(child, output, "stdout", "\n");
    assert.ok(holdsData(dir));
    const ended = new Promise((resolve) => child.on("close", resolve));
    // The parent is gone as far as the forum's output goes: every line it writes now meets EPIPE.
    child.stdout!.destroy();
    child.stderr!.destroy();
    child.stdin!.end();
    await ended;
    await emptied(dir);
  });

  test("SIGTERM to the process group of `npx tsx scripts/forum-server.ts` removes everything", async () => {
    const dir = tmp();
    const run = startCommand(["npx", "tsx", "scripts/forum-server.ts", ...forumArgs], {
      group: true,
      env: { TMPDIR: dir },
    });
    await waitFor(run, "stdout", "\n");
    signalGroup(run.child, "SIGTERM");
    await run.done;
    await emptied(dir);
  });

  test("a signal while PostgreSQL starts stops the forum once it has started, with nothing left", async () => {
    const dir = tmp();
    // Not under tsx: it sends SIGKILL to a child that does not acknowledge a signal within 30 ms (the reaper then
    // removes the directory, but the words would be lost).
    const run = startScript("forum-server.ts", forumArgs, { group: true, env: { TMPDIR: dir } });
    await eventually("the data directory", () => holdsData(dir));
    signalGroup(run.child, "SIGTERM");
    const { stderr } = await run.done;
    assert.match(stderr, /SIGTERM: stopping\nstopped: nothing left running\n$/);
    await emptied(dir);
  });

  test("kill -9 of the tsx wrapper: the forum, orphaned, stops and removes everything", async () => {
    const dir = tmp();
    const run = startCommand([tsx, "scripts/forum-server.ts", ...forumArgs], { group: true, env: { TMPDIR: dir } });
    await waitFor(run, "stdout", "\n");
    const [forum] = childrenOf(run.child.pid!);
    assert.ok(forum && alive(forum), "the forum runs under tsx");
    run.child.kill("SIGKILL");
    await eventually("the orphaned forum to stop", () => !alive(forum));
    assert.match(run.output.stderr, /parent process gone: stopping\nstopped: nothing left running\n/);
    await emptied(dir);
  });

  test("kill -9 of the forum itself: its reaper removes the directory once PostgreSQL has stopped", async () => {
    const dir = tmp();
    const run = startScript("forum-server.ts", forumArgs, { group: true, env: { TMPDIR: dir } });
    await waitFor(run, "stdout", "\n");
    run.child.kill("SIGKILL");
    await run.done;
    await emptied(dir);
  });
});

describe("the load test removes what it started however it ends", () => {
  const load = ["--pool", "5", "--users", "4", "--actions", "40", "--think-time", "200"];

  test("a second Ctrl-C quits at once, and the forum it started removes everything", async () => {
    const dir = tmp();
    const run = startScript("load.ts", load, { group: true, env: { TMPDIR: dir } });
    await waitFor(run, "stderr", "Loading http");
    signalGroup(run.child, "SIGINT");
    await waitFor(run, "stderr", "SIGINT: no new actions");
    await new Promise((resolve) => setTimeout(resolve, 700));
    signalGroup(run.child, "SIGINT");
    const { status } = await run.done;
    if (!process.versions.deno) assert.equal(status, 130);
    await emptied(dir);
  });

  test("kill -9 of load.ts: the forum sees its stdin close and removes everything", async () => {
    const dir = tmp();
    const run = startScript("load.ts", load, { group: true, env: { TMPDIR: dir } });
    await waitFor(run, "stderr", "Loading http");
    run.child.kill("SIGKILL");
    await run.done;
    await emptied(dir);
  });

  test("kill -9 of the tsx wrapper: load.ts, orphaned, stops its users, reports, and the forum goes too", async () => {
    const dir = tmp();
    const run = startCommand([tsx, "scripts/load.ts", ...load, "--actions", "100000"], {
      group: true,
      env: { TMPDIR: dir },
    });
    await waitFor(run, "stderr", "Loading http");
    const [script] = childrenOf(run.child.pid!);
    assert.ok(script && alive(script), "load.ts runs under tsx");
    run.child.kill("SIGKILL");
    await eventually("the orphaned load.ts to stop", () => !alive(script), 60_000);
    assert.match(run.output.stderr, /parent process gone: no new actions/);
    await emptied(dir);
  });
});

describe("the sweep of stale data directories at the next start", () => {
  test("removes ours whose process is gone; keeps a live process's, another machine's, and unmarked ones", () => {
    const base = tmp();
    const dead = spawn(process.execPath, ["--version"]).pid!;
    const dirs = {
      dead: { pid: dead, host: hostname() },
      live: { pid: process.pid, host: hostname() },
      elsewhere: { pid: dead, host: `not-${hostname()}` },
      unmarked: null,
    };
    for (const [name, owner] of Object.entries(dirs)) {
      mkdirSync(join(base, `tierload-pg-${name}`));
      if (owner) writeFileSync(join(base, `tierload-pg-${name}`, "tierload-owner.json"), JSON.stringify(owner));
    }
    return eventually("the short process to end", () => !alive(dead)).then(() => {
      assert.deepEqual(sweepStaleDataDirs(base), [join(base, "tierload-pg-dead")]);
      assert.deepEqual(leftIn(base).sort(), ["tierload-pg-elsewhere", "tierload-pg-live", "tierload-pg-unmarked"]);
    });
  });
});
