/**
 * Django's admin site (Debian's python3-django 3.2) under gunicorn, on a PostgreSQL of its own: the second
 * application the example's cases and load scenario run against, started on a free loopback port.
 *
 *   npx tsx examples/django-admin/server.ts          # prints the URL; Ctrl-C stops it
 *   deno run -A examples/django-admin/server.ts
 *
 * Log in as admin / admin (a staff superuser). Needs: apt-get install python3-django python3-psycopg2
 * python3-gunicorn. The PostgreSQL is the embedded one (lib/postgres.ts), in a temporary directory
 * removed on stop().
 */
import { execFile, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { isMain, runMain } from "../../lib/cli.ts";
import { createSession, fetchPage } from "../../lib/fetchData.ts";
import { startEmbeddedPostgres } from "../../lib/postgres.ts";
import { recordOutput, stopChild, waitForOutput } from "../../lib/process.ts";

/** The staff superuser every started site has. */
export const ADMIN = { username: "admin", password: "admin" } as const;

const APP = fileURLToPath(new URL("./app/", import.meta.url));
const INSTALL = "apt-get install python3-django python3-psycopg2 python3-gunicorn";

export interface DjangoAdminOptions {
  /** Where progress lines go. Default: stderr. */
  log?: (line: string) => void;
  /** gunicorn's worker processes (default 2) and threads in each (default 8). */
  workers?: number;
  threads?: number;
  /** MD5 password hashes, as Django's documentation advises for tests: a login then costs no CPU to speak of. */
  fastPasswords?: boolean;
}

export interface RunningDjangoAdmin {
  /** The site's root, ending in "/": the admin is at `${url}admin/`. */
  url: string;
  databaseUrl: string;
  name: "Django's admin site";
  /** Stops gunicorn, then PostgreSQL, and removes PostgreSQL's directory. */
  stop(): Promise<void>;
  /** Settles when gunicorn ends, however it ends: "exit 0", "signal SIGKILL", "exit 3: <its last words>". */
  ended: Promise<string>;
}

/** The Python that has Debian's Django: the system's, not a pyenv or virtualenv one found first on PATH. */
function python(): string {
  return process.env.DJANGO_PYTHON ?? (existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
}

/** Why the site cannot start here (Django, psycopg2 or gunicorn missing), or null when it can. */
export function djangoMissing(): string | null {
  const probe = spawnSync(python(), ["-c", "import django, psycopg2, gunicorn"], { encoding: "utf8" });
  if (probe.status === 0) return null;
  const why = probe.error?.message ?? probe.stderr.trim().split("\n").at(-1);
  return `Django is not installed: ${INSTALL} (${python()}: ${why})`;
}

/** Starts PostgreSQL, migrates, creates the superuser and starts gunicorn; answers once the admin answers. */
export async function startDjangoAdmin(options: DjangoAdminOptions = {}): Promise<RunningDjangoAdmin> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + "\n"));
  const missing = djangoMissing();
  if (missing) throw new Error(missing);
  const workers = options.workers ?? 2;
  const threads = options.threads ?? 8;
  const dir = mkdtempSync(join(tmpdir(), "tierload-django-"));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  // gunicorn's threads each keep a connection; the rest is headroom for migrate and psql.
  const database = await startEmbeddedPostgres(dir, workers * threads + 20, log).catch((error) => {
    removeDir();
    throw error;
  });
  const env = {
    ...process.env,
    DATABASE_URL: database.url,
    DJANGO_SETTINGS_MODULE: "adminsite.settings",
    DJANGO_FAST_PASSWORDS: options.fastPasswords ? "1" : "0",
  };
  let server: ReturnType<typeof spawn> | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      if (server) await stopChild(server, "SIGTERM", 30_000);
      await database.stop();
      removeDir();
    })();
  try {
    const manage = async (args: string[], what: string, extra: Record<string, string> = {}) => {
      await promisify(execFile)(python(), ["manage.py", ...args], { cwd: APP, env: { ...env, ...extra } })
        .catch((error) => {
          throw new Error(`Cannot ${what}: ${(error.stderr || error.message).trim().slice(-2000)}`);
        });
    };
    log("django: migrate");
    await manage(["migrate", "--noinput"], "migrate the database");
    await manage(
      ["createsuperuser", "--noinput", "--username", ADMIN.username, "--email", "admin@example.org"],
      `create the superuser "${ADMIN.username}"`,
      { DJANGO_SUPERUSER_PASSWORD: ADMIN.password },
    );
    const args = ["-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:0"];
    server = spawn(python(), [...args, "--workers", String(workers), "--threads", String(threads)], {
      cwd: APP,
      env,
      // Its own process group: a terminal's Ctrl-C reaches only us, and we stop it in order; a closed stdin
      // (we stopped or died) stops it too.
      detached: true,
      stdio: ["pipe", "ignore", "pipe"],
    });
    const output = recordOutput(server);
    const ended = new Promise<string>((resolve) =>
      server!.on("close", (code, signal) => {
        const how = signal ? `signal ${signal}` : `exit ${code}`;
        resolve(code === 0 || signal === "SIGTERM" ? how : `${how}: ${output.stderr.trim().slice(-500)}`);
      })
    );
    server.stderr!.on("data", (chunk) => {
      for (const line of String(chunk).split("\n")) if (/\[(ERROR|CRITICAL)\]|Traceback/.test(line)) log(line);
    });
    const listening = await waitForOutput(server, output, "stderr", /Listening at: (http:\/\/\S+)/, 60_000)
      .catch((error) => {
        throw new Error(`gunicorn did not start: ${error.message}`);
      });
    const url = /Listening at: (http:\/\/\S+)/.exec(listening)![1] + "/";
    // The socket listens before the workers have imported Django: the first page waits for one of them.
    await Promise.race([
      fetchPage(createSession(url, { timeoutMs: 60_000 }), "admin/login/"),
      ended.then((how) => Promise.reject(new Error(`gunicorn ended before it answered (${how})`))),
    ]);
    log(`Django's admin site at ${url}admin/ (log in as ${ADMIN.username}/${ADMIN.password})`);
    return { url, databaseUrl: database.url, name: "Django's admin site", stop, ended };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function main(): Promise<void> {
  const site = await startDjangoAdmin();
  console.log(site.url);
  process.stderr.write("Ctrl-C stops it\n");
  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${why}: stopping\n`);
    site.stop().then(() => process.exit(0), (error) => {
      process.stderr.write(`error: ${error.message}\n`);
      process.exit(1);
    });
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
  site.ended.then((how) => stop(`gunicorn ended (${how})`));
}

if (isMain(import.meta)) runMain(main);
