/**
 * Should you hold 1000 PostgreSQL connections? The forum's load run against the reference forum with
 * (a) the fixed pool of 1000 the seed's setup holds, (b) a fixed pool of 2 x cores + 1 (the PostgreSQL
 * wiki's and HikariCP's sizing), and (c) PgBouncer in transaction mode between them (the forum's 1000
 * connections go to PgBouncer, which serves them from 2 x cores + 1 server connections), alternating,
 * each on a fresh PostgreSQL:
 *
 *   npx tsx bench/pool-size.bench.ts                                   # the main job: 1000 users x 10 actions
 *   npx tsx bench/pool-size.bench.ts --users 300 --actions 5 --rounds 2  # a quicker look
 *
 * Prints the three side by side: the users' wall time, actions per second, p50/p99 of each action,
 * CPU-seconds of PostgreSQL (the postmaster and every backend, ended ones too), of PgBouncer, of the
 * forum and of the generator, what PostgreSQL held and used, the backends' memory, and failures. Each
 * part runs in a process of its own: PostgreSQL and PgBouncer started here, the forum (spawnForum),
 * and the generator (scripts/load.ts --url, one worker thread, as `npm start` runs it), whose JSON gives
 * its own CPU and the sampler's findings. PgBouncer is Debian's `pgbouncer`; without it the bench says
 * so and runs (a) and (b).
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { command, integer } from "../lib/cli.ts";
import { startEmbeddedPostgres } from "../lib/postgres.ts";
import { freePort, recordOutput, runtimeCommand, stopChild, waitForOutput } from "../lib/process.ts";
import { entriesOf, type Results } from "../lib/results.ts";
import { spawnForum } from "../scripts/forum-process.ts";
import { runToEnd } from "./run.ts";

const options = command("pool-size.bench")
  .option("--users <n>", "simultaneous users", integer(1), 1000)
  .option("--actions <n>", "actions per user", integer(0), 10)
  .option("--rounds <n>", "times each setup runs, alternating", integer(1), 1)
  .parse(process.argv.slice(2), { from: "user" })
  .opts();

/** The PostgreSQL wiki's and HikariCP's pool size: twice the cores, plus one (for a disk's spindle). */
const SMALL = 2 * availableParallelism() + 1;
const PGBOUNCER = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find((path) =>
  spawnSync(path, ["--version"]).status === 0
);

interface Setup {
  name: string;
  pool: number;
  bouncer: boolean;
}

const SETUPS: Setup[] = [
  { name: `(a) fixed pool of 1000`, pool: 1000, bouncer: false },
  { name: `(b) fixed pool of ${SMALL}`, pool: SMALL, bouncer: false },
  ...(PGBOUNCER ? [{ name: `(c) PgBouncer, ${SMALL} server connections`, pool: 1000, bouncer: true }] : []),
];

interface Measured {
  setup: Setup;
  results: Results;
  startSeconds: number;
  cpu: { postgres: number; forum: number; bouncer: number | null };
}

/** CPU-seconds of a process so far (its threads included), and of its children it has waited for. */
function cpuOf(pid: number): { own: number; reaped: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  const tick = 100; // USER_HZ, 100 on every Linux
  return {
    own: (Number(fields[11]) + Number(fields[12])) / tick,
    reaped: (Number(fields[13]) + Number(fields[14])) / tick,
  };
}

/** CPU-seconds of PostgreSQL: the postmaster, its live children, and those that ended (reaped by it). */
function postgresCpu(postmaster: number): number {
  const self = cpuOf(postmaster);
  let children = 0;
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
      if (Number(stat[1]) === postmaster) children += cpuOf(Number(entry)).own;
    } catch {
      // it ended since the listing: its time is the postmaster's reaped time now
    }
  }
  return self.own + self.reaped + children;
}

/** PgBouncer in transaction mode on a loopback port, in front of `databaseUrl`, as the postgres user. */
async function startBouncer(dir: string, databaseUrl: string) {
  const url = new URL(databaseUrl);
  const password = decodeURIComponent(url.password);
  const port = await freePort();
  const ini = join(dir, "pgbouncer.ini");
  const users = join(dir, "userlist.txt");
  writeFileSync(users, `"postgres" "${password}"\n`, { mode: 0o600 });
  writeFileSync(
    ini,
    `[databases]
postgres = host=${url.hostname} port=${url.port} dbname=postgres user=postgres password=${password}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = ${users}
pool_mode = transaction
default_pool_size = ${SMALL}
max_client_conn = 1200
ignore_startup_parameters = extra_float_digits
`,
    { mode: 0o600 },
  );
  const uid = process.getuid?.() === 0 ? Number(spawnSync("id", ["-u", "postgres"]).stdout) : undefined;
  if (uid !== undefined) {
    chmodSync(dir, 0o711);
    for (const file of [ini, users]) chownSync(file, uid, Number(spawnSync("id", ["-g", "postgres"]).stdout));
  }
  // PgBouncer will not run as root: -u switches to the postgres user.
  const child = spawn(PGBOUNCER!, [...(uid !== undefined ? ["-u", "postgres"] : []), ini], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const output = recordOutput(child);
  await waitForOutput(child, output, "stderr", "process up");
  url.port = String(port);
  return { url: url.href, pid: child.pid!, stop: () => stopChild(child, "SIGINT", 10_000) };
}

async function measure(setup: Setup, round: number, dir: string): Promise<Measured> {
  const pgDir = mkdtempSync(join(tmpdir(), "tierload-bench-pg-"));
  const database = await startEmbeddedPostgres(pgDir, 1100, () => {});
  const stops: (() => Promise<void>)[] = [
    database.stop,
    () => Promise.resolve(rmSync(pgDir, { recursive: true, force: true })),
  ];
  try {
    const db = new pg.Client({ connectionString: database.url });
    await db.connect();
    const backend = (await db.query("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    const postmaster = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${backend}/status`, "utf8"))![1]);
    await db.end();
    const bouncer = setup.bouncer ? await startBouncer(pgDir, database.url) : null;
    if (bouncer) stops.unshift(bouncer.stop);
    const started = performance.now();
    const forum = await spawnForum(setup.pool, { databaseUrl: bouncer?.url ?? database.url });
    stops.unshift(() => forum.stop());
    const startSeconds = (performance.now() - started) / 1000;
    const before = {
      postgres: postgresCpu(postmaster),
      forum: cpuOf(forum.pid).own,
      bouncer: bouncer && cpuOf(bouncer.pid).own,
    };
    const json = join(dir, `${round}-${setup.pool}-${setup.bouncer}.json`);
    const [cmd, ...args] = runtimeCommand("scripts/load.ts", [
      ...["--url", forum.url, "--database-url", database.url, "--workers", "1", "--json", json],
      ...["--users", String(options.users), "--actions", String(options.actions), "--seed", String(round)],
    ]);
    await runToEnd(cmd, args);
    const cpu = {
      postgres: postgresCpu(postmaster) - before.postgres,
      forum: cpuOf(forum.pid).own - before.forum,
      bouncer: bouncer ? cpuOf(bouncer.pid).own - before.bouncer! : null,
    };
    return { setup, results: JSON.parse(readFileSync(json, "utf8")), startSeconds, cpu };
  } finally {
    for (const stop of stops) await stop().catch(() => {});
  }
}

function table(all: Measured[]): string {
  const actions = entriesOf(all[0].results, "action").map(([name]) => name);
  const rows: [string, (m: Measured) => string][] = [
    ["forum ready (s), its pool opened", (m) => m.startSeconds.toFixed(1)],
    ["users' wall time (s)", (m) => m.results.wallSeconds.toFixed(1)],
    ["actions per second", (m) => {
      const n = entriesOf(m.results, "action").reduce((s, [, a]) => s + a.count, 0);
      return (n / m.results.wallSeconds).toFixed(1);
    }],
    ...actions.map((name) =>
      [`${name} p50 / p99 (ms)`, (m: Measured) => {
        const a = m.results.actions[name]?.summary;
        return a ? `${a.p50.toFixed(0)} / ${a.p99.toFixed(0)}` : "-";
      }] as [string, (m: Measured) => string]
    ),
    ["CPU-s: PostgreSQL", (m) => m.cpu.postgres.toFixed(1)],
    ["CPU-s: PgBouncer", (m) => m.cpu.bouncer === null ? "-" : m.cpu.bouncer.toFixed(1)],
    ["CPU-s: forum", (m) => m.cpu.forum.toFixed(1)],
    ["CPU-s: generator", (m) => m.results.generator.cpuSeconds.toFixed(1)],
    ["PostgreSQL: held (min-max)", (m) => {
      const h = m.results.postgres.held;
      return h ? `${h.min}-${h.max}` : "-";
    }],
    ["PostgreSQL: backends that served", (m) => String(m.results.postgres.served ?? "-")],
    ["PostgreSQL: active peak", (m) => String(m.results.postgres.activePeak ?? "-")],
    ["backends' memory (MB PSS)", (m) => {
      const p = m.results.postgres.processes;
      return p ? (p.pssBytes / 2 ** 20).toFixed(0) : "-";
    }],
    ["open files per backend (min/median/max)", (m) => {
      const f = m.results.postgres.processes?.files;
      return f ? `${f.min}/${f.median}/${f.max}` : "-";
    }],
    ["failed actions", (m) => String(entriesOf(m.results, "action").reduce((s, [, a]) => s + a.errors, 0))],
    ["nothing lost", (m) => m.results.check?.ok ? "yes" : "NO"],
    ["machine busy", (m) => `${(m.results.generator.machineBusyShare * 100).toFixed(0)} %`],
  ];
  const header = ["", ...all.map((m) => m.setup.name)];
  return [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => " --- ").join("|")}|`,
    ...rows.map(([label, value]) => `| ${label} | ${all.map(value).join(" | ")} |`),
  ].join("\n");
}

const dir = mkdtempSync(join(tmpdir(), "tierload-pool-bench-"));
try {
  console.log(
    `${options.users} users x ${options.actions} actions, ${availableParallelism()} cores, load average ` +
      `${loadavg().map((l) => l.toFixed(1)).join(" ")} at the start`,
  );
  if (!PGBOUNCER) {
    console.log("PgBouncer is not installed (apt-get install pgbouncer): running (a) and (b) only");
  }
  for (let round = 1; round <= options.rounds; round++) {
    const measured: Measured[] = [];
    for (const setup of SETUPS) {
      process.stderr.write(`round ${round}: ${setup.name}\n`);
      measured.push(await measure(setup, round, dir));
    }
    console.log(`\nRound ${round}:\n${table(measured)}`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
