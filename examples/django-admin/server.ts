/**
 * Django's admin site (Debian's python3-django 3.2) under gunicorn, on a PostgreSQL of its own: the second
 * application the example's cases and load scenario run against, started on a free loopback port.
 *
 *   npx tsx examples/django-admin/server.ts          # prints the URL; Ctrl-C stops it
 *   deno run -A examples/django-admin/server.ts
 *
 * Log in as admin / admin (a staff superuser). Needs: apt-get install python3-django python3-psycopg2
 * python3-gunicorn. startApplication() starts it: the PostgreSQL is the embedded one, in a temporary directory
 * removed on stop().
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isMain, runMain, startApplication, type StartedApp } from "../../lib/tierload.ts";

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

/**
 * PostgreSQL, `migrate`, the superuser, then gunicorn on a free loopback port; answers once the admin's login
 * page answers (gunicorn listens before its workers have imported Django). Its URL is the site's root.
 */
export function startDjangoAdmin(options: DjangoAdminOptions = {}): Promise<StartedApp> {
  const missing = djangoMissing();
  if (missing) return Promise.reject(new Error(missing));
  const workers = options.workers ?? 2;
  const threads = options.threads ?? 8;
  const manage = (...args: string[]) => [python(), "manage.py", ...args];
  return startApplication({
    name: "Django's admin site",
    command: [python(), "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:0"].concat(
      ["--workers", String(workers), "--threads", String(threads)],
    ),
    cwd: APP,
    env: { DJANGO_SETTINGS_MODULE: "adminsite.settings", DJANGO_FAST_PASSWORDS: options.fastPasswords ? "1" : "0" },
    ready: /Listening at: (http:\/\/\S+)/,
    url: (match) => `${match[1]}/`,
    readyPage: "admin/login/",
    database: {
      // gunicorn's threads each keep a connection; the rest is headroom for migrate and psql.
      maxConnections: workers * threads + 20,
      prepare: async ({ run }) => {
        await run(manage("migrate", "--noinput"));
        const superuser = ["--noinput", "--username", ADMIN.username, "--email", "admin@example.org"];
        await run(manage("createsuperuser", ...superuser), { DJANGO_SUPERUSER_PASSWORD: ADMIN.password });
      },
    },
    show: /\[(ERROR|CRITICAL)\]|Traceback/,
    log: options.log,
  });
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
  site.ended?.then((how) => stop(`gunicorn ended (${how})`));
}

if (isMain(import.meta)) runMain(main);
