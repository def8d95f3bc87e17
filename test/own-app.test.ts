// A user's own files, where a user keeps them: a repository of their own with tierload installed as a
// dependency (from a path, as from a git URL), an adapter and a scenario and cases of their own, run the
// way the README says, under this runtime. Worker threads must load the user's scenario, not ours; the
// Kubernetes Job must run the user's file with every option it was given, and no password in clear.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import type { Results } from "../lib/results.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { startCommand, startTestForum } from "./helpers.ts";

const root = resolve(import.meta.dirname ?? ".", "..");

/** The command that runs a user's TypeScript file under this runtime, from the user's own directory. */
function userCommand(file: string, args: string[]): string[] {
  if (process.versions.deno) return [process.execPath, "run", "-A", file, ...args];
  return [process.execPath, "--import", import.meta.resolve("tsx"), file, ...args];
}

const ADAPTER = `
import { createSession, fetchPage, queryAll, type Session, step } from "tierload";

/** An anonymous visitor of the forum. */
export const visit = (url: string): Session => createSession(url);

/** The names of the forums on the front page. */
export function listForums(session: Session): Promise<string[]> {
  return step(session, "list the forums", async () =>
    queryAll(await fetchPage(session, ""), "//html:tr[@class='forum']/html:th[@class='name']/html:a"));
}
`;

const SCENARIO = `
import { number, scenario } from "tierload";
import { listForums, visit } from "./adapter.ts";

export default scenario<{ lookShare: number; apiToken?: string }, { forums: number }, number>(import.meta, {
  name: "browse",
  description: "Visitors look at the list of forums",
  options: (command) =>
    command
      .option("--look-share <fraction>", "share of looks", number(0, 1), 1)
      .option("--api-token <token>", "a secret the pods must not see in clear"),
  setup: async ({ url }) => ({ forums: (await listForums(visit(url))).length }),
  user: async ({ url, act, repeat, keep }) => {
    const session = visit(url);
    await repeat(async () => keep((await act("list forums", () => listForums(session)))?.length));
  },
  checkName: "Every look saw every forum",
  check: async ({ setup, kept }) => {
    const wrong = kept.filter((n) => n !== setup.forums).length;
    return {
      ok: wrong === 0,
      counted: { looks: kept.length },
      summary: "all {looks} looks saw every forum",
      findings: wrong ? [\`\${wrong} looks missed a forum\`] : [],
    };
  },
});
`;

const CASES = `
import assert from "node:assert/strict";
import { suite } from "tierload";
import { listForums, visit } from "./adapter.ts";

const cases = suite(import.meta, {
  name: "browse",
  description: "The front page's cases",
  world: ({ url }) => ({ url }),
});
cases.test("the front page lists the forum Other", async ({ url }) => {
  assert.ok((await listForums(visit(url))).includes("Other"));
});
cases.test("the front page lists a forum nobody made", async ({ url }) => {
  assert.ok((await listForums(visit(url))).includes("Nobody's"));
});
`;

/**
 * A user's repository in a fresh directory: a package.json that says "type": "module", tierload installed from a
 * path (`npm install` links it; with --install-links npm copies it, as it installs from a git URL), and the
 * adapter, scenario and cases above.
 */
function userRepository(...installArgs: string[]): string {
  const repo = mkdtempSync(join(tmpdir(), "tierload-user-"));
  writeFileSync(
    join(repo, "package.json"),
    JSON.stringify({ name: "my-load-test", private: true, type: "module", dependencies: { tierload: `file:${root}` } }),
  );
  const install = spawnSync("npm", ["install", "--offline", "--no-audit", "--no-fund", ...installArgs], {
    cwd: repo,
    encoding: "utf8",
  });
  assert.equal(install.status, 0, install.stderr);
  writeFileSync(join(repo, "adapter.ts"), ADAPTER);
  writeFileSync(join(repo, "scenario.ts"), SCENARIO);
  writeFileSync(join(repo, "cases.ts"), CASES);
  return repo;
}

/** Runs the user's scenario across two worker threads against `url`, and checks what it did. */
async function twoThreadRun(repo: string, url: string) {
  const { status, stdout, stderr } = await startCommand(
    userCommand("scenario.ts", ["--url", url, "--users", "6", "--actions", "3", "--workers", "2", "--json", "-"]),
    { cwd: repo, timeoutMs: 120_000 },
  ).done;
  assert.equal(status, 0, stderr);
  const results: Results = JSON.parse(stdout.trim().split("\n").pop()!);
  assert.equal(results.actions["list forums"].count, 18);
  assert.equal(results.actions["GET /"].count, 6 * 3, "the setup's page load is not the users'");
  assert.deepEqual(results.generator.workers?.map((w) => w.users), [3, 3]);
  assert.equal(results.settings.scenario, "browse");
  assert.deepEqual(results.settings.browse, { lookShare: 1 });
  assert.match(stderr, /Every look saw every forum: all 18 looks saw every forum/);
  assert.match(stderr, /\nVerdict: PASS\n/);
}

describe("a user's own repository with tierload as a dependency", () => {
  let forum: RunningForum;
  let repo: string;
  before(async () => {
    repo = userRepository();
    forum = await startTestForum();
  });
  after(async () => {
    await forum?.stop();
    rmSync(repo, { recursive: true, force: true });
  });

  const run = (file: string, args: string[], env?: Record<string, string>) =>
    startCommand(userCommand(file, args), { cwd: repo, env, timeoutMs: 120_000 }).done;

  test("its scenario runs across two worker threads that load its file, with its check, and passes", () =>
    twoThreadRun(repo, forum.url));

  const copiesRefused = process.versions.deno
    ? "Deno refuses TypeScript under node_modules (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING): it links a clone"
    : false;
  test("with tierload copied into node_modules (as a git URL installs it), the threads load its TypeScript", {
    skip: copiesRefused,
  }, async () => {
    const copied = userRepository("--install-links");
    try {
      assert.equal(lstatSync(join(copied, "node_modules", "tierload")).isSymbolicLink(), false);
      await twoThreadRun(copied, forum.url);
    } finally {
      rmSync(copied, { recursive: true, force: true });
    }
  });

  test("an option can come from the environment, the command line winning", async () => {
    const env = { TIERLOAD_USERS: "2", TIERLOAD_ACTIONS: "5" };
    const { status, stdout, stderr } = await run("scenario.ts", ["--url", forum.url, "--actions", "1"], env);
    assert.equal(status, 0, stderr);
    assert.match(stdout, /tierload: 2 users x 1 actions against/);
  });

  test("its cases run as a suite: one passes, one fails naming its check and line, exit 1", async () => {
    const { status, stdout } = await run("cases.ts", ["--url", forum.url]);
    assert.equal(status, 1, stdout);
    assert.match(stdout, /✓ the front page lists the forum Other/);
    assert.match(stdout, /✗ the front page lists a forum nobody made/);
    assert.match(stdout, /where: +at .*cases\.ts:\d+/);
    assert.match(stdout, /\n1 passed, 1 failed\n/);
  });

  test("its --help, and the error for a threshold it cannot read, hold no word of the reference forum", async () => {
    const help = await run("scenario.ts", ["--help"]);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /--look-share <fraction> +share of looks/);
    const bad = await run("scenario.ts", ["--url", forum.url, "--threshold", "look:fast"]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /"look:fast" is not a threshold: write \[action:\]statistic<limit, as in /);
    const ours = help.stdout.replace("Visitors look at the list of forums", "") + bad.stderr; // but the scenario's own
    assert.doesNotMatch(ours, /forum|repl(y|ies)/i);
  });

  test("its cases take --url from the environment too, as its scenario does", async () => {
    const { status, stdout, stderr } = await run("cases.ts", ["--grep", "forum Other"], { TIERLOAD_URL: forum.url });
    assert.equal(status, 0, stderr);
    assert.match(stdout, /^✓ the front page lists the forum Other .*\n1 passed, 0 failed\n$/);
  });

  test("its Kubernetes Job runs its own file with every option given, and no secret in clear", async () => {
    const { status, stdout, stderr } = await run("scenario.ts", [
      ...["--kubernetes-job", "--url", forum.url, "--users", "10", "--instances", "2", "--look-share", "0.5"],
      ...["--think-time", "250", "--database-url", "postgresql://load:s3cret@db.internal/forum"],
      ...["--api-token", "tok-123", "--instance", "pods"],
    ]);
    assert.equal(status, 0, stderr);
    assert.doesNotMatch(stdout, /s3cret|tok-123/);
    const [job] = parseAllDocuments(stdout).map((d) => d.toJS()).filter(Boolean);
    const container = job.spec.template.spec.containers[0];
    assert.deepEqual(container.command, ["npx", "tsx", "scenario.ts"]);
    const value = (flag: string) => container.args[container.args.indexOf(flag) + 1];
    assert.equal(value("--url"), forum.url);
    assert.equal(value("--users"), "10");
    assert.equal(value("--look-share"), "0.5");
    assert.equal(value("--think-time"), "250");
    assert.equal(value("--instance"), "pods");
    assert.equal(container.args.includes("--database-url"), false);
    const secrets = container.env.filter((e: { valueFrom?: unknown }) => e.valueFrom);
    assert.deepEqual(secrets.map((e: { name: string }) => e.name), ["TIERLOAD_DATABASE_URL", "TIERLOAD_API_TOKEN"]);
    assert.match(
      stdout,
      /kubectl create secret generic tierload-pods-secrets --from-literal=database-url='postgresql:\/\/load:\*\*\*@db.internal\/forum' --from-literal=api-token='\*\*\*'/,
    );
  });

  const underDeno = process.versions.deno ? "Deno runs every .ts file as a module: there is nothing to change" : false;
  test('a file tsx loads as CommonJS (no "type": "module") says what to change', { skip: underDeno }, async () => {
    const loose = join(repo, "loose");
    mkdirSync(loose);
    writeFileSync(join(loose, "package.json"), JSON.stringify({ name: "loose", private: true }));
    writeFileSync(join(loose, "scenario.ts"), SCENARIO.replace("./adapter.ts", "../adapter.ts"));
    const { status, stderr } = await run("loose/scenario.ts", ["--url", forum.url]);
    assert.equal(status, 1);
    assert.match(
      stderr,
      /Error: This file was loaded as CommonJS, so it has no import.meta: put it in a package whose package.json says "type": "module"/,
    );
  });
});

/** tierload's package.json, or a package's under its node_modules. */
const manifest = (dir = root) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));

/** The packages lib/ loads: those it imports, and those it imports when needed (esbuild, for worker threads). */
function packagesLibLoads(): Map<string, "import" | "dynamic"> {
  const loaded = new Map<string, "import" | "dynamic">();
  for (const file of readdirSync(join(root, "lib")).filter((name) => name.endsWith(".ts"))) {
    const source = readFileSync(join(root, "lib", file), "utf8");
    for (const [, imported, dynamic] of source.matchAll(/ from "([^".][^"]*)"|await import\("([^".`][^"]*)"\)/g)) {
      const name = imported ?? dynamic;
      if (!name.startsWith("node:") && name !== "tierload") loaded.set(name, imported ? "import" : "dynamic");
    }
  }
  assert.ok(["pg", "commander", "esbuild"].every((name) => loaded.has(name)), [...loaded.keys()].join(", "));
  return loaded;
}

test("every package lib/ loads is a dependency: a user's install has no devDependency of tierload", () => {
  const installed = { ...manifest().dependencies, ...manifest().optionalDependencies };
  assert.deepEqual([...packagesLibLoads().keys()].filter((name) => !(name in installed)), []);
});

test("every package lib/ imports brings its types with tierload's dependencies: a user's tsc checks lib/ too", () => {
  const installed = { ...manifest().dependencies, ...manifest().optionalDependencies };
  const untyped = [...packagesLibLoads().keys()].filter((name) => {
    const own = manifest(join(root, "node_modules", name));
    return !own.types && !own.typings && !(`@types/${name}` in installed);
  });
  assert.deepEqual(untyped, [], "their types are devDependencies, which a dependency's user does not get");
});

test("a pod's arguments keep every $ as typed: Kubernetes expands $(VAR) and $$ unless doubled", async () => {
  const { kubernetesJob } = await import("../lib/load-cli.ts");
  const { parseLoadOptions } = await import("../lib/load-options.ts");
  const forumScenario = (await import("../scripts/load.ts")).default;
  const options = parseLoadOptions(forumScenario, [
    ...["node", "load.ts", "--kubernetes-job", "--url", "http://app/", "--forum", "pa$$w $(HOME)\u0085\u007f"],
  ]);
  const yaml = kubernetesJob(forumScenario, options);
  const [job] = parseAllDocuments(yaml).map((d) => {
    assert.deepEqual(d.errors, []);
    return d.toJS();
  }).filter(Boolean);
  const args: string[] = job.spec.template.spec.containers[0].args;
  assert.equal(args[args.indexOf("--forum") + 1], "pa$$$$w $$(HOME)\u0085\u007f");
  assert.match(yaml, /\\u0085\\u007f/);
});
