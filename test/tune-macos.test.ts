// scripts/tune-macos.ts on Linux: sample Macs as --facts, their files under a --root directory.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  applyFiles,
  computeTargets,
  DAEMON_PLIST,
  editPostgresqlConf,
  editSysctlConf,
  type Facts,
  followUps,
  LAUNCHD_CONF,
  planFiles,
  readFacts,
  revertFiles,
  runbook,
  SYSCTL_CONF,
  type Target,
  unifiedDiff,
} from "../scripts/tune-macos.ts";
import { runScript } from "./helpers.ts";

// Every directory a test makes lives in this one, removed at the end: the tests leave nothing in the temp folder.
const scratch = mkdtempSync(join(tmpdir(), "tierload-tune-macos-test-"));
chmodSync(scratch, 0o755); // the runbook's test runs it as nobody
after(() => rmSync(scratch, { recursive: true, force: true }));
/** A fresh, empty directory that the end of the tests removes. */
const freshDir = (name: string) => mkdtempSync(join(scratch, `${name}-`));

const sample = (name: string) => readFacts(`test/macos/${name}.json`);
const target = (targets: Target[], setting: string) => targets.find((t) => t.setting === setting)!;

/** A fresh --root holding the files a Mac would have, with PostgreSQL's config. */
function macRoot(facts: Facts, files: Record<string, string> = {}): string {
  const root = freshDir("mac");
  const all = {
    [facts.postgres!.configFile]: "# PostgreSQL\nmax_connections = 100\t\t\t# (change requires restart)\n",
    ...files,
  };
  mkdirSync(join(root, "etc"), { recursive: true });
  mkdirSync(join(root, dirname(DAEMON_PLIST)), { recursive: true });
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe("targets for 1000 connections", () => {
  test("the seed's Mac OS X 10.6 gets the seed's numbers, in /etc/launchd.conf, and a reboot", () => {
    const facts = sample("seed-10.6");
    const targets = computeTargets(facts, 1000);
    assert.equal(target(targets, "kern.maxfiles").target, 65536);
    assert.equal(target(targets, "kern.maxproc").target, 2048);
    assert.equal(target(targets, "max_connections").target, 1000);
    const changes = planFiles(facts, targets, macRoot(facts));
    assert.deepEqual(changes.map((c) => c.path).sort(), [LAUNCHD_CONF, SYSCTL_CONF, facts.postgres!.configFile].sort());
    const launchd = changes.find((c) => c.path === LAUNCHD_CONF)!.after;
    assert.match(launchd, /^limit maxproc 1512 1512$/m);
    assert.match(launchd, /^limit maxfiles 4096 10240$/m);
    assert.ok(followUps(facts, targets, changes).some((s) => s.command.join(" ") === "shutdown -r now"));
  });

  test("a 16 GB Apple Silicon Mac: only the accept queue and the soft open-file limit move; maxproc is checked", () => {
    const facts = sample("m2-16gb-sonoma");
    const targets = computeTargets(facts, 1000);
    const moved = targets.filter((t) => t.target !== t.current).map((t) => t.setting);
    assert.deepEqual(moved, ["max_connections", "kern.ipc.somaxconn", "launchctl limit maxfiles"]);
    assert.match(target(targets, "kern.maxproc").why, /checked only: Apple Silicon keeps its boot value/);
    const changes = planFiles(facts, targets, macRoot(facts));
    const plist = changes.find((c) => c.path === DAEMON_PLIST)!.after;
    assert.match(plist, /sysctl -w kern\.ipc\.somaxconn=2048 &amp;&amp; \/bin\/launchctl limit maxfiles 4096 61440/);
    assert.match(plist, /<key>RunAtLoad<\/key>\s*<true\/>/);
    assert.deepEqual(followUps(facts, targets, changes).map((s) => s.command.join(" ")), [
      `launchctl bootstrap system ${DAEMON_PLIST}`,
      "brew services restart postgresql@18",
    ]);
  });

  test("an 8 GB Apple Silicon Mac raises the per-user limit, and refuses more connections than maxproc allows", () => {
    const facts = sample("m1-8gb-sequoia");
    const targets = computeTargets(facts, 1000);
    assert.equal(target(targets, "kern.maxprocperuid").target, 1512);
    assert.equal(target(targets, "kern.maxproc").blocked, undefined);
    assert.match(
      computeTargets(facts, 1500).find((t) => t.blocked)!.blocked!,
      /kern\.maxproc is 2000 and cannot be raised on Apple Silicon: plan for at most 1232 connections/,
    );
  });

  test("an Intel Mac gets kern.maxproc written, and Postgres.app's restart", () => {
    const facts = sample("intel-16gb-ventura");
    const targets = computeTargets(facts, 1000);
    assert.equal(target(targets, "kern.maxproc").target, 2048);
    assert.equal(target(targets, "kern.maxprocperuid").target, 1512);
    const changes = planFiles(facts, targets, macRoot(facts));
    assert.match(changes.find((c) => c.path === SYSCTL_CONF)!.after, /^kern\.maxproc=2048$/m);
    assert.match(followUps(facts, targets, changes)[1].command.join(" "), /osascript .*Postgres/);
  });

  test("semaphores: PostgreSQL 15 by the formula, 18 by num_os_semaphores; macOS has enough", () => {
    const pg15 = computeTargets(sample("intel-16gb-ventura"), 1000);
    assert.match(
      target(pg15, "kern.sysv.semmni").why,
      /max_connections 1000 \+ autovacuum_max_workers 3 \+ max_wal_senders 10 \+ max_worker_processes 8 \+ 7\) \/ 16\) = 65 semaphore sets; enough already/,
    );
    const pg18 = computeTargets(sample("m2-16gb-sonoma"), 1000);
    assert.match(target(pg18, "kern.sysv.semmni").why, /num_os_semaphores.* = 66 semaphore sets/);
    assert.deepEqual(target(pg18, "kern.sysv.semmni").carriedBy, []);
    const short = { ...sample("m2-16gb-sonoma") };
    short.sysctl = { ...short.sysctl, "kern.sysv.semmni": 32, "kern.sysv.semmns": 100 };
    const written = computeTargets(short, 1000);
    assert.equal(target(written, "kern.sysv.semmni").target, 66);
    assert.equal(target(written, "kern.sysv.semmns").target, 66 * 17);
  });

  test("an already tuned machine has nothing to change", () => {
    const facts = sample("m2-16gb-sonoma");
    facts.sysctl["kern.ipc.somaxconn"] = 4096;
    facts.launchctl.maxfiles = [65536, 2147483647];
    facts.postgres!.maxConnections = 1200;
    const targets = computeTargets(facts, 1000);
    assert.ok(targets.every((t) => t.target === t.current));
    assert.deepEqual(planFiles(facts, targets, macRoot(facts)), []);
  });
});

describe("editing files", () => {
  test("sysctl.conf keeps comments, blank lines and other keys, and updates ours in place", () => {
    const before = "# tuned by hand\n\nkern.maxfiles=65536 # keep this comment\nnet.inet.tcp.delayed_ack=0\n";
    const after = editSysctlConf(SYSCTL_CONF, before, [["kern.maxfiles", 131072], ["kern.ipc.somaxconn", 2048]]);
    assert.equal(
      after,
      "# tuned by hand\n\nkern.maxfiles=131072 # keep this comment\nnet.inet.tcp.delayed_ack=0\nkern.ipc.somaxconn=2048\n",
    );
  });

  test("a line it cannot parse stops it, naming the file and line", () => {
    assert.throws(
      () => editSysctlConf(SYSCTL_CONF, "kern.maxfiles=1\nthis is not a setting\n", [["kern.maxfiles", 2]]),
      /Cannot parse \/etc\/sysctl\.conf line 2: "this is not a setting"; fix or remove it, then run again/,
    );
    assert.throws(
      () => editPostgresqlConf("/pg.conf", "max_connections = lots\n", 1000),
      /Cannot parse \/pg\.conf line 1/,
    );
  });

  test("postgresql.conf: the active line is replaced with its comment; a commented default gets the line after it", () => {
    assert.equal(
      editPostgresqlConf("/p", "a = 1\nmax_connections = 100\t# restart\n", 1000),
      "a = 1\nmax_connections = 1000\t\t# restart\n",
    );
    assert.equal(
      editPostgresqlConf("/p", "#max_connections = 100\nb = 2\n", 1000),
      "#max_connections = 100\nmax_connections = 1000\nb = 2\n",
    );
  });

  test("the diff is diff -u's", () => {
    assert.equal(
      unifiedDiff("/etc/x", "a\nb\nc\n", "a\nB\nc\nd\n"),
      "--- /etc/x\n+++ /etc/x\n@@ -1,3 +1,4 @@\n a\n-b\n+B\n c\n+d",
    );
    assert.equal(unifiedDiff("/n", "", "x\n", true), "--- /dev/null\n+++ /n\n@@ -0,0 +1,1 @@\n+x");
  });
});

describe("the script", () => {
  test("apply writes with backups, a second apply finds nothing, revert puts everything back", async () => {
    const facts = sample("m2-16gb-sonoma");
    const original = "# mine\nkern.maxfiles=131072\n";
    const root = macRoot(facts, { [SYSCTL_CONF]: original });
    const args = ["--facts", "test/macos/m2-16gb-sonoma.json", "--root", root];

    const dry = await runScript("tune-macos.ts", args);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /^\+kern\.ipc\.somaxconn=2048$/m);
    assert.match(dry.stderr, /Dry run: nothing written/);
    assert.equal(readFileSync(join(root, SYSCTL_CONF), "utf8"), original);

    const applied = await runScript("tune-macos.ts", [...args, "--apply"]);
    assert.equal(applied.status, 0, applied.stderr);
    assert.equal(readFileSync(join(root, SYSCTL_CONF), "utf8"), original + "kern.ipc.somaxconn=2048\n");
    assert.match(readFileSync(join(root, DAEMON_PLIST), "utf8"), /org\.tierload\.limits/);
    assert.match(readFileSync(join(root, facts.postgres!.configFile), "utf8"), /^max_connections = 1000/m);
    assert.match(
      applied.stdout,
      /launchctl bootstrap system .*\n.*brew services restart postgresql@18\n\(not run under --root\)/,
    );
    assert.equal(readdirSync(join(root, "etc")).filter((f) => f.includes("tierload-backup")).length, 1);

    const again = await runScript("tune-macos.ts", [...args, "--apply"]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /Nothing to change: every file already says so\./);
    assert.equal(readdirSync(join(root, "etc")).filter((f) => f.includes("tierload-backup")).length, 1);

    const reverted = await runScript("tune-macos.ts", [...args, "--revert"]);
    assert.equal(reverted.status, 0, reverted.stderr);
    assert.equal(readFileSync(join(root, SYSCTL_CONF), "utf8"), original);
    assert.deepEqual(readdirSync(join(root, dirname(DAEMON_PLIST))), []);
    assert.match(readFileSync(join(root, facts.postgres!.configFile), "utf8"), /^max_connections = 100\t/m);
  });

  test("a corrupt file is left alone and the error names its line", async () => {
    const facts = sample("m2-16gb-sonoma");
    const root = macRoot(facts, { [SYSCTL_CONF]: "kern.maxfiles=1\n<<<<<<< merge conflict\n" });
    const run = await runScript("tune-macos.ts", [
      "--facts",
      "test/macos/m2-16gb-sonoma.json",
      "--root",
      root,
      "--apply",
    ]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /error: Cannot parse \/etc\/sysctl\.conf line 2: "<<<<<<< merge conflict"/);
    assert.equal(readFileSync(join(root, SYSCTL_CONF), "utf8"), "kern.maxfiles=1\n<<<<<<< merge conflict\n");
  });

  test("more connections than an Apple Silicon Mac can hold: exit 1, with the most it can", async () => {
    const facts = sample("m1-8gb-sequoia");
    const run = await runScript("tune-macos.ts", [
      "--facts",
      "test/macos/m1-8gb-sequoia.json",
      "--root",
      macRoot(facts),
      "--connections",
      "1500",
    ]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /plan for at most 1232 connections/);
  });

  test("on a host that is not a Mac, without --root, it refuses", async () => {
    const run = await runScript("tune-macos.ts", []);
    assert.equal(run.status, 1);
    assert.match(
      run.stderr,
      /error: this is linux, not macOS: nothing to tune here\. To see a plan, give --facts FILE/,
    );
  });

  test("a facts file with wrong fields gets every problem named", async () => {
    const root = freshDir("facts");
    writeFileSync(join(root, "bad.json"), JSON.stringify({ platform: "darwin", macosVersion: 14, sysctl: {} }));
    const run = await runScript("tune-macos.ts", ["--facts", join(root, "bad.json"), "--root", root]);
    assert.equal(run.status, 1);
    assert.match(
      run.stderr,
      /are not usable:\n {2}macosVersion must be a string\n {2}arch must be a string\n {2}memoryBytes must be a number\n {2}sysctl\["kern\.maxfiles"\] must be a number/,
    );
  });

  test("--json prints the plan for machines", async () => {
    const facts = sample("intel-16gb-ventura");
    const run = await runScript("tune-macos.ts", [
      "--facts",
      "test/macos/intel-16gb-ventura.json",
      "--root",
      macRoot(facts),
      "--json",
    ]);
    assert.equal(run.status, 0, run.stderr);
    const plan = JSON.parse(run.stdout);
    assert.equal(plan.connections, 1000);
    assert.ok(plan.targets.some((t: Target) => t.setting === "kern.maxproc" && t.target === 2048));
    assert.ok(
      plan.files.some((f: { path: string; diff: string }) =>
        f.path === SYSCTL_CONF && f.diff.includes("+kern.maxproc=2048")
      ),
    );
  });
});

describe("surviving what operators do", () => {
  const m2 = "test/macos/m2-16gb-sonoma.json";
  const apply = (root: string, facts = m2, ...more: string[]) =>
    runScript("tune-macos.ts", ["--facts", facts, "--root", root, "--apply", ...more]);

  test("a second run after the reboot changes nothing: the files keep every setting the plan needs", async () => {
    const facts = sample("m2-16gb-sonoma");
    const root = macRoot(facts);
    assert.equal((await apply(root)).status, 0);
    const plist = readFileSync(join(root, DAEMON_PLIST), "utf8");
    assert.match(plist, /kern\.ipc\.somaxconn=2048/);
    // After the reboot the live values are the targets, and PostgreSQL runs with 1000.
    const rebooted = structuredClone(facts);
    for (const t of computeTargets(facts, 1000)) {
      if (t.setting.startsWith("kern.")) rebooted.sysctl[t.setting as keyof Facts["sysctl"]] = t.target;
    }
    rebooted.launchctl.maxfiles[0] = target(computeTargets(facts, 1000), "launchctl limit maxfiles").target;
    rebooted.postgres!.maxConnections = 1000;
    const file = join(root, "rebooted.json");
    writeFileSync(file, JSON.stringify(rebooted));
    const again = await apply(root, file);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /Nothing to change: every file already says so\./);
    assert.equal(readFileSync(join(root, DAEMON_PLIST), "utf8"), plist);
  });

  test("off a Mac, --facts without --root is refused: the host's own files are never the target", async () => {
    const run = await runScript("tune-macos.ts", ["--facts", m2]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /error: this is linux, not macOS: .* give --facts FILE .* and --root DIR/);
  });

  test("a write that fails part-way changes nothing: the files written are put back", async () => {
    const facts = sample("m2-16gb-sonoma");
    const root = macRoot(facts, { [SYSCTL_CONF]: "# mine\n" });
    // The LaunchDaemon cannot be written (root ignores permissions, but not a directory in the way).
    mkdirSync(join(root, `${DAEMON_PLIST}.tierload-new`), { recursive: true });
    const run = await apply(root);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /error: Nothing was changed: EISDIR/);
    assert.equal(readFileSync(join(root, SYSCTL_CONF), "utf8"), "# mine\n");
    assert.deepEqual(readdirSync(join(root, "etc")), ["sysctl.conf"]);
    assert.deepEqual(readdirSync(join(root, dirname(DAEMON_PLIST))), ["org.tierload.limits.plist.tierload-new"]);
    assert.match(readFileSync(join(root, facts.postgres!.configFile), "utf8"), /^max_connections = 100\t/m);
  });

  test("two applies within one second keep both backups, and two reverts undo both", () => {
    const facts = sample("m2-16gb-sonoma");
    const root = macRoot(facts, { [SYSCTL_CONF]: "# original\n" });
    const change = (before: string, after: string) => ({ path: SYSCTL_CONF, before, after, diff: "" });
    applyFiles([change("# original\n", "# first\n")], root, () => {});
    applyFiles([change("# first\n", "# second\n")], root, () => {});
    assert.equal(readdirSync(join(root, "etc")).filter((f) => f.includes("tierload-backup")).length, 2);
    revertFiles([SYSCTL_CONF], root, () => {});
    assert.equal(readFileSync(join(root, SYSCTL_CONF), "utf8"), "# first\n");
    revertFiles([SYSCTL_CONF], root, () => {});
    assert.equal(readFileSync(join(root, SYSCTL_CONF), "utf8"), "# original\n");
  });

  test("a PostgreSQL config path that leads outside --root is refused", async () => {
    const facts = sample("m2-16gb-sonoma");
    const root = macRoot(facts);
    const escaping = structuredClone(facts);
    escaping.postgres!.configFile = "/../../tmp/escaped.conf";
    escaping.postgres!.reachable = false;
    writeFileSync(join(root, "escaping.json"), JSON.stringify(escaping));
    const run = await apply(root, join(root, "escaping.json"));
    assert.equal(run.status, 1);
    assert.match(
      run.stderr,
      /postgres\.configFile must not hold "\." or "\.\." steps: "\/\.\.\/\.\.\/tmp\/escaped\.conf"/,
    );
    assert.throws(
      () => applyFiles([{ path: "/../../escaped.conf", before: null, after: "", diff: "" }], root, () => {}),
      {
        message: /Refusing "\/\.\.\/\.\.\/escaped\.conf": it leads outside /,
      },
    );
  });

  test("a sysctl.conf with CRLF line endings is edited and keeps them", () => {
    assert.equal(
      editSysctlConf(SYSCTL_CONF, "# mine\r\nkern.maxfiles=1\r\n", [["kern.maxfiles", 2], ["kern.ipc.somaxconn", 3]]),
      "# mine\r\nkern.maxfiles=2\r\nkern.ipc.somaxconn=3\r\n",
    );
  });

  test("--revert under --root needs no facts, asks no system, and puts postgresql.conf back too", async () => {
    const facts = sample("m2-16gb-sonoma");
    const root = macRoot(facts);
    const config = join(root, facts.postgres!.configFile);
    const before = readFileSync(config);
    assert.equal((await apply(root)).status, 0);
    assert.match(readFileSync(config, "utf8"), /^max_connections = 1000/m);
    const run = await runScript("tune-macos.ts", ["--root", root, "--revert"]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /Reverted 3 file\(s\)/);
    assert.deepEqual(readdirSync(join(root, dirname(DAEMON_PLIST))), []);
    assert.deepEqual(readFileSync(config), before);
    assert.deepEqual(readdirSync(dirname(config)), ["postgresql.conf"]);
  });

  test("--apply on an empty --root creates the directories, as the runbook does", async () => {
    const root = freshDir("empty");
    const run = await apply(root);
    assert.equal(run.status, 0, run.stderr);
    assert.match(readFileSync(join(root, DAEMON_PLIST), "utf8"), /kern\.ipc\.somaxconn=2048/);
    assert.match(readFileSync(join(root, SYSCTL_CONF), "utf8"), /^kern\.ipc\.somaxconn=2048$/m);
    assert.match(readFileSync(join(root, sample("m2-16gb-sonoma").postgres!.configFile), "utf8"), /^max_connections/m);
  });

  test("--apply keeps every byte it does not change: a Latin-1 comment survives, and the runbook agrees", async () => {
    const facts = sample("m2-16gb-sonoma");
    const latin1 = Buffer.from("# caf\xe9 \xa9 mine\nkern.maxfiles=131072\n", "latin1");
    const [applied, rehearsed] = [macRoot(facts), macRoot(facts)];
    for (const root of [applied, rehearsed]) writeFileSync(join(root, SYSCTL_CONF), latin1);
    const run = await apply(applied);
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(
      readFileSync(join(applied, SYSCTL_CONF)),
      Buffer.concat([latin1, Buffer.from("kern.ipc.somaxconn=2048\n")]),
    );
    const emitted = await runScript("tune-macos.ts", ["--facts", m2, "--root", rehearsed, "--emit-sh"]);
    assert.equal(emitted.status, 0, emitted.stderr);
    writeFileSync(join(rehearsed, "tune.sh"), emitted.stdout);
    const sh = spawnSync("dash", [join(rehearsed, "tune.sh")], { env: { ...process.env, ROOT: rehearsed } });
    assert.equal(sh.status, 0, String(sh.stderr));
    assert.deepEqual(readFileSync(join(rehearsed, SYSCTL_CONF)), readFileSync(join(applied, SYSCTL_CONF)));
  });
});

describe("as a runbook an operator can paste (--emit-sh, --facts-command)", () => {
  const m2 = "test/macos/m2-16gb-sonoma.json";
  /** A fake Mac with a CRLF sysctl.conf and a postgresql.conf holding %, \ and a quote, and its twin. */
  function twins(): [string, string] {
    const facts = sample("m2-16gb-sonoma");
    const files = {
      [SYSCTL_CONF]: "# mine\r\nkern.maxfiles=1\r\n",
      [facts.postgres!.configFile]: "# PostgreSQL\nmax_connections = 100\t# restart\n# it's 100% \\ fine\n",
    };
    return [macRoot(facts, files), macRoot(facts, files)];
  }
  const dash = (script: string, root: string, ...args: string[]) =>
    spawnSync("dash", [script, ...args], { env: { ...process.env, ROOT: root }, encoding: "utf8" });
  const sameFiles = (a: string, b: string) => {
    for (const path of [SYSCTL_CONF, DAEMON_PLIST, sample("m2-16gb-sonoma").postgres!.configFile]) {
      assert.deepEqual(readFileSync(join(b, path)), readFileSync(join(a, path)), path);
    }
  };

  test("the runbook writes what --apply writes, byte for byte, under dash; a second run changes nothing", async () => {
    const [applied, rehearsed] = twins();
    const emitted = await runScript("tune-macos.ts", ["--facts", m2, "--root", rehearsed, "--emit-sh"]);
    assert.equal(emitted.status, 0, emitted.stderr);
    const script = join(rehearsed, "tune.sh");
    writeFileSync(script, emitted.stdout);
    const first = dash(script, rehearsed);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /wrote .*\/etc\/sysctl\.conf \(backup: .*tierload-backup-\d{8}T\d{6}Z\)/);
    assert.match(
      first.stdout,
      /launchctl bootstrap system .*\n.*brew services restart postgresql@18\n\(not run under ROOT\)/,
    );
    assert.equal((await runScript("tune-macos.ts", ["--facts", m2, "--root", applied, "--apply"])).status, 0);
    sameFiles(applied, rehearsed);
    const second = dash(script, rehearsed);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /Nothing to change: every file already says so\.\n$/);
    sameFiles(applied, rehearsed);
  });

  test("the runbook refuses a user who is not root, and a file changed since the plan, writing nothing", async () => {
    const [, root] = twins();
    const emitted = await runScript("tune-macos.ts", ["--facts", m2, "--root", root, "--emit-sh"]);
    const script = join(root, "tune.sh");
    writeFileSync(script, emitted.stdout);
    chmodSync(root, 0o755);
    const nobody = spawnSync("runuser", ["-u", "nobody", "--", "dash", script], { encoding: "utf8" });
    assert.equal(nobody.status, 1);
    assert.match(nobody.stderr, /error: this writes system files and must run as root: sudo sh /);
    writeFileSync(join(root, SYSCTL_CONF), "# edited since\n");
    const changed = dash(script, root);
    assert.equal(changed.status, 1);
    assert.match(changed.stderr, /error: .*\/etc\/sysctl\.conf has changed since this plan was made: make a new one/);
    assert.equal(existsSync(join(root, DAEMON_PLIST)), false);
    assert.equal(readFileSync(join(root, SYSCTL_CONF), "utf8"), "# edited since\n");
  });

  test("--facts-command collects, with the Mac's own commands, the facts and files --facts reads", async () => {
    const facts = sample("m2-16gb-sonoma");
    const [mac, twin] = twins();
    // The Mac's commands, as stubs that answer what the sample M2 says.
    const bin = freshDir("macbin");
    const stub = (name: string, body: string) =>
      writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    stub("sw_vers", `echo ${facts.macosVersion}`);
    stub("uname", `echo ${facts.arch}`);
    stub(
      "sysctl",
      `case "$2" in hw.memsize) echo ${facts.memoryBytes} ;; ${
        Object.entries(facts.sysctl).map(([k, v]) => `${k}) echo ${v} ;;`).join(" ")
      } esac`,
    );
    stub(
      "launchctl",
      `case "$2" in maxfiles) echo "	maxfiles    256            unlimited" ;; *) echo "	maxproc     2666           4000" ;; esac`,
    );
    const p = facts.postgres!;
    stub(
      "psql",
      `case "$*" in *"SELECT 1"*) echo 1 ;; *data_directory*) echo ${p.dataDirectory} ;;
*config_file*) echo ${p.configFile} ;; *server_version_num*) echo 180004 ;; *"SHOW max_connections"*) echo 100 ;;
*autovacuum_max_workers*) echo 3 ;; *max_wal_senders*) echo 10 ;; *max_worker_processes*) echo 8 ;; esac`,
    );
    stub("postgres", "echo 141");
    const command = await runScript("tune-macos.ts", ["--facts-command"]);
    assert.equal(command.status, 0, command.stderr);
    const script = join(mac, "facts.sh");
    writeFileSync(script, command.stdout);
    const run = spawnSync("dash", [script], {
      env: { ...process.env, ROOT: mac, PATH: `${bin}:${process.env.PATH}` },
      encoding: "utf8",
    });
    assert.equal(run.status, 0, run.stderr);
    const collected = join(mac, "collected.json");
    writeFileSync(collected, run.stdout);
    const read = readFacts(collected);
    const { shell: _, filesBase64, ...rest } = read;
    const { shell: __, ...expected } = facts;
    assert.deepEqual(rest, {
      ...expected,
      launchctl: { ...facts.launchctl, maxfiles: [256, Number.MAX_SAFE_INTEGER] },
      postgres: { ...p, reachable: true },
    });
    assert.equal(Buffer.from(filesBase64![SYSCTL_CONF]!, "base64").toString(), "# mine\r\nkern.maxfiles=1\r\n");
    assert.equal(filesBase64![DAEMON_PLIST], null);
    // The runbook made from them, off a Mac and without --root, rehearses like the one made under --root.
    const emitted = await runScript("tune-macos.ts", ["--facts", collected, "--emit-sh"]);
    assert.equal(emitted.status, 0, emitted.stderr);
    writeFileSync(join(twin, "tune.sh"), emitted.stdout);
    assert.equal(dash(join(twin, "tune.sh"), twin).status, 0);
    assert.match(readFileSync(join(twin, DAEMON_PLIST), "utf8"), /kern\.ipc\.somaxconn=2048/);
  });

  test("the README's example works as written on an empty directory", async () => {
    const empty = freshDir("empty");
    const run = await runScript("tune-macos.ts", ["--facts", m2, "--root", empty]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /\+max_connections = 1000/);
  });

  /** m2's facts with `change` made to a copy, written to a file in a fresh directory. */
  function hostile(change: (facts: Facts) => void): { root: string; file: string } {
    const facts = sample("m2-16gb-sonoma");
    change(facts);
    const root = freshDir("hostile");
    const file = join(root, "facts.json");
    writeFileSync(file, JSON.stringify(facts));
    return { root, file };
  }
  /** Every file under `dir`, as paths relative to it. */
  const filesUnder = (dir: string, prefix = ""): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? filesUnder(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]
    ).sort();

  test("hostile facts reach no runbook: every value that is not a version, an arch or a plain path is named", async () => {
    const { root, file } = hostile((facts) => {
      facts.macosVersion = "14.5\ntouch PWNED #";
      facts.arch = "arm64\ntouch PWNED #";
      facts.postgres!.configFile = "/opt/x.conf\ntouch PWNED #";
      facts.postgres!.dataDirectory = "/../../x";
      facts.postgres!.homebrewFormula = "postgresql@18; touch PWNED";
      facts.filesBase64 = { "/etc/sysctl.conf\n": null };
    });
    const run = await runScript("tune-macos.ts", ["--facts", file, "--emit-sh"]);
    assert.equal(run.status, 1);
    assert.equal(run.stdout, "");
    for (
      const problem of [
        /macosVersion must be a version such as 14\.5, not "14\.5\\ntouch PWNED #"/,
        /arch must be arm64 or x86_64, not "arm64\\ntouch PWNED #"/,
        /postgres\.configFile must not hold control characters \(a newline, say\): "\/opt\/x\.conf\\ntouch PWNED #"/,
        /postgres\.dataDirectory must not hold "\." or "\.\." steps: "\/\.\.\/\.\.\/x"/,
        /postgres\.homebrewFormula must be a formula name such as postgresql@18/,
        /filesBase64\["\/etc\/sysctl\.conf\\n"\] must be an absolute path/,
      ]
    ) assert.match(run.stderr, problem);
    // Even called directly, with facts nobody checked, runbook() refuses them.
    const facts = JSON.parse(readFileSync(file, "utf8"));
    assert.throws(() => runbook(facts, 1000, [], []), /Cannot write a runbook from these facts:\n {2}macosVersion/);
    assert.deepEqual(filesUnder(root), ["facts.json"]);
  });

  test("a path with quotes, $( ) and backquotes is written there, quoted, under ROOT, and runs nothing", async () => {
    const odd = '/Users/it\'s $(touch PWNED) `touch PWNED` "x" ; touch PWNED/postgresql.conf';
    const { root, file } = hostile((facts) => {
      facts.postgres!.configFile = odd;
      facts.postgres!.dataDirectory = dirname(odd);
    });
    const emitted = await runScript("tune-macos.ts", ["--facts", file, "--root", root, "--emit-sh"]);
    assert.equal(emitted.status, 0, emitted.stderr);
    writeFileSync(join(root, "tune.sh"), emitted.stdout);
    const sh = spawnSync("dash", [join(root, "tune.sh")], { cwd: root, env: { ...process.env, ROOT: root } });
    assert.equal(sh.status, 0, String(sh.stderr));
    assert.match(readFileSync(join(root, odd), "utf8"), /^max_connections = 1000$/m);
    assert.equal(filesUnder(root).some((f) => f.endsWith("PWNED")), false);
  });

  test("a trailing newline in a path stops the plan before anything is written", async () => {
    const { root, file } = hostile((facts) => facts.postgres!.configFile += "\n");
    for (const mode of ["--emit-sh", "--apply"]) {
      const run = await runScript("tune-macos.ts", ["--facts", file, "--root", root, mode]);
      assert.equal(run.status, 1, mode);
      assert.match(run.stderr, /postgres\.configFile must not hold control characters/, mode);
    }
    assert.deepEqual(filesUnder(root), ["facts.json"]);
  });

  test("a runbook that fails part-way puts everything back: no backups, no *.tierload-new", async () => {
    const root = freshDir("partway");
    const emitted = await runScript("tune-macos.ts", ["--facts", m2, "--root", root, "--emit-sh"]);
    assert.equal(emitted.status, 0, emitted.stderr);
    writeFileSync(join(root, "tune.sh"), emitted.stdout);
    // sysctl.conf and the LaunchDaemon are staged first; PostgreSQL's directory cannot be made: a file is in the way.
    mkdirSync(join(root, "opt"));
    writeFileSync(join(root, "opt", "homebrew"), "in the way\n");
    const sh = dash(join(root, "tune.sh"), root);
    assert.notEqual(sh.status, 0);
    assert.match(sh.stderr, /error: nothing was changed/);
    assert.deepEqual(filesUnder(root), ["opt/homebrew", "tune.sh"]);
  });
});
