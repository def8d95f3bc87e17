// As root, as in a container's shell: PostgreSQL refuses to run as root, so the embedded one runs as the postgres
// user; these cases are the fresh setups where that user could reach nothing: a TMPDIR of mode 0700, a clone under a
// directory of mode 0700 (a container's /root, any mktemp -d), a machine with no postgres user at all.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { platform, tmpdir } from "node:os";
import { join } from "node:path";
import { runtimeCommand } from "../lib/process.ts";
import { freshTmpdir, leftIn, startCommand, type StartOptions, waitFor } from "./helpers.ts";

const skip = platform() !== "linux" || process.getuid?.() !== 0 ? "only as root on Linux" : false;
const made: string[] = [];
after(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
const closedDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "tierload-closed-"));
  chmodSync(dir, 0o700);
  made.push(dir);
  return dir;
};
const forumArgs = ["--port", "0", "--pool", "5", "--scrypt-cost", "1024", "--json"];

/** Starts the forum (`script`, with `prefix` before the command), waits until it serves, stops it: its stderr. */
async function serveAndStop(script: string, options: StartOptions, prefix: string[] = []): Promise<string> {
  const run = startCommand([...prefix, ...runtimeCommand(script, forumArgs)], options);
  await waitFor(run, "stdout", "\n");
  const { url } = JSON.parse(run.output.stdout);
  assert.equal((await fetch(url)).status, 200);
  run.child.kill("SIGTERM");
  const { stderr } = await run.done;
  assert.match(stderr, /stopped: nothing left running\n$/);
  return stderr;
}

test(
  "a TMPDIR of mode 0700: the data goes where the postgres user can reach it, and is removed",
  { skip },
  async () => {
    const closed = closedDir();
    await serveAndStop("scripts/forum-server.ts", { env: { TMPDIR: closed } });
    assert.deepEqual(leftIn(closed), []);
  },
);

test("a clone under a directory of mode 0700: PostgreSQL runs from links its user can reach", { skip }, async () => {
  const clone = join(closedDir(), "tierload");
  // The project as a clone there: hard links (no copy), node_modules included.
  const files = ["lib", "scripts", "node_modules", "package.json", "deno.json", "tsconfig.json"];
  spawnSync("mkdir", [clone]);
  const copy = spawnSync("cp", ["-al", ...files, clone], { encoding: "utf8" });
  assert.equal(copy.status, 0, copy.stderr);
  const temp = freshTmpdir();
  made.push(temp);
  const stderr = await serveAndStop(join(clone, "scripts/forum-server.ts"), { env: { TMPDIR: temp } });
  assert.match(
    stderr,
    /the postgres user cannot reach .*tierload-closed-\w+ \(mode 700\): running PostgreSQL from links/,
  );
  assert.deepEqual(leftIn(temp), []);
});

const canUnshare = !skip && spawnSync("unshare", ["-m", "true"]).status === 0;
test("no postgres user: one is created, a system user with its own group", {
  skip: skip || (!canUnshare && "no unshare -m here"),
}, async () => {
  // The machine's /etc stays as it is: the forum runs in a mount namespace where a copy of /etc, without the
  // postgres user, is mounted over it.
  const etc = closedDir();
  assert.equal(spawnSync("cp", ["-a", "/etc/.", etc]).status, 0);
  for (const file of ["passwd", "shadow", "group", "gshadow"]) {
    try {
      const lines = readFileSync(join(etc, file), "utf8").split("\n").filter((line) => !line.startsWith("postgres:"));
      writeFileSync(join(etc, file), lines.map((line) => line.replace(/([:,])postgres(?=,|$)/, "$1")).join("\n"));
    } catch {
      // gshadow, shadow: not on every machine.
    }
  }
  const inNamespace = ["unshare", "-m", "sh", "-c", 'mount --bind "$1" /etc && shift && exec "$@"', "sh", etc];
  const temp = freshTmpdir();
  made.push(temp);
  const stderr = await serveAndStop("scripts/forum-server.ts", { env: { TMPDIR: temp } }, inNamespace);
  assert.match(stderr, /created the system user postgres: PostgreSQL refuses to run as root/);
  assert.match(
    readFileSync(join(etc, "passwd"), "utf8"),
    /^postgres:x:\d+:\d+:.*:\/nonexistent:\/usr\/sbin\/nologin$/m,
  );
  assert.deepEqual(leftIn(temp), []);
});
