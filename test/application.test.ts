// startApplication(): an application of one's own started for a run or a suite. A small server (a file this test
// writes) and Python's http.server stand in for it: ready when it prints its URL, stopped with everything it
// started, on a PostgreSQL of its own when asked, and stopped by its watchdog when the process that started it dies.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startApplication } from "../lib/tierload.ts";
import { runtimeCommand } from "../lib/process.ts";
import { alive, eventually, startCommand, waitFor } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "tierload-application-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const quiet = () => {};

// Serves its environment's DATABASE_URL (or "none") and the pid of a child it started, after a second's start-up.
const APP = join(dir, "app.mjs");
writeFileSync(
  APP,
  `import { createServer } from "node:http";
import { spawn } from "node:child_process";
const helper = spawn("sleep", ["600"], { stdio: "ignore" });
const server = createServer((req, res) => res.end(JSON.stringify({ db: process.env.DATABASE_URL ?? "none", helper: helper.pid })));
server.listen(0, "127.0.0.1", () => setTimeout(() => console.log("serving at http://127.0.0.1:" + server.address().port + "/"), 1000));
`,
);

test("it is ready when it prints its URL, serves there, and stop() ends it and what it started", async () => {
  const app = await startApplication({
    name: "the small app",
    command: runtimeCommand(APP),
    ready: /serving at (\S+)/,
    log: quiet,
  });
  const { db, helper } = await (await fetch(app.url)).json();
  assert.equal(db, "none");
  assert.ok(alive(helper));
  await app.stop();
  await eventually("its helper to end with it", () => !alive(helper));
  await assert.rejects(fetch(app.url));
});

test("a third-party server: Python's http.server, ready at the URL its line names", async () => {
  const app = await startApplication({
    name: "http.server",
    command: ["python3", "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir],
    ready: /\((http:\/\/127\.0\.0\.1:\d+\/)\)/,
    readyPage: "app.mjs",
    log: quiet,
  });
  try {
    assert.match(await (await fetch(new URL("app.mjs", app.url))).text(), /createServer/);
  } finally {
    await app.stop();
  }
});

test("with a database: prepare runs with its URL, the application gets DATABASE_URL, stop() stops PostgreSQL", async () => {
  let prepared = "";
  const app = await startApplication({
    name: "the small app",
    command: runtimeCommand(APP),
    ready: /serving at (\S+)/,
    database: {
      maxConnections: 20,
      prepare: async ({ url, run }) => {
        prepared = await run(["sh", "-c", 'printf %s "$DATABASE_URL"']);
        assert.equal(prepared, url);
      },
    },
    log: quiet,
  });
  assert.match(app.databaseUrl!, /^postgresql:\/\/postgres:.+@127\.0\.0\.1:\d+\/postgres$/);
  assert.equal(prepared, app.databaseUrl);
  assert.equal((await (await fetch(app.url)).json()).db, app.databaseUrl);
  await app.stop();
  const port = Number(new URL(app.databaseUrl!).port);
  const refused = await new Promise((resolve) =>
    connect(port, "127.0.0.1").once("connect", () => resolve(false)).once("error", () => resolve(true))
  );
  assert.ok(refused, "PostgreSQL still listens after stop()");
});

test("one that ends before it is ready, never says it is, or fails to prepare: an error naming it and what it said", async () => {
  await assert.rejects(
    startApplication({ name: "the broken app", command: ["sh", "-c", "echo no config >&2; exit 3"], ready: /x/ }),
    /^Error: the broken app did not start: it ended \(exit 3\) before it printed a line that matches \/x\/: no config$/,
  );
  await assert.rejects(
    startApplication({ name: "the silent app", command: ["sleep", "600"], ready: /x/, timeoutMs: 300, log: quiet }),
    /^Error: the silent app did not start: it printed no line that matches \/x\/ in 0\.3 s/,
  );
  await assert.rejects(
    startApplication({
      name: "the unmigrated app",
      command: ["sleep", "600"],
      ready: /x/,
      database: { maxConnections: 20, prepare: ({ run }) => run(["sh", "-c", "echo relation missing >&2; exit 1"]) },
      log: quiet,
    }),
    /^Error: Cannot prepare the unmigrated app: sh -c echo relation missing >&2; exit 1 failed: relation missing$/,
  );
});

test("kill -9 of the process that started it: its watchdog stops it", async () => {
  const run = startCommand(runtimeCommand("test/fixtures/start-application.ts", runtimeCommand(APP)));
  const { url, helper } = JSON.parse(await waitFor(run, "stdout", "\n"));
  run.child.kill("SIGKILL");
  await run.done;
  await eventually("the application to stop", () => fetch(url).then(() => false, () => true));
  await eventually("its helper to end with it", () => !alive(helper));
});
