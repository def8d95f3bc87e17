// The module a load worker thread runs (lib/worker-module.ts): under Node the worker's file and the scenario's,
// bundled without a TypeScript loader; under Deno an entry importing them. Either way each file keeps its own
// import.meta, a package loads from where it is installed, and the start is called once everything is loaded.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { workerModule } from "../lib/worker-module.ts";

// A package of its own, whose packages are this repository's.
const dir = mkdtempSync(join(tmpdir(), "tierload-worker-module-"));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module", dependencies: { commander: "*" } }));
symlinkSync(join(import.meta.dirname ?? ".", "..", "node_modules"), join(dir, "node_modules"));

test("a worker's module keeps each file's import.meta, loads packages, and starts after its files load", async () => {
  writeFileSync(
    join(dir, "start.ts"),
    `import { parentPort } from "node:worker_threads";
import { Command } from "commander";
export const seen: string[] = [];
export function start(data: { greeting: string }): void {
  const meta: ImportMeta = import.meta;
  parentPort!.postMessage({
    data,
    seen,
    url: meta.url,
    resolved: meta.resolve("./data.json"),
    isCommand: typeof new Command().option === "function",
  });
}
`,
  );
  writeFileSync(
    join(dir, "scenario.ts"),
    `import { seen } from "./start.ts";
const pause: number = await new Promise((resolve) => setTimeout(() => resolve(10), 10));
seen.push(import.meta.url, String(pause));
`,
  );
  const [start, scenario] = ["start.ts", "scenario.ts"].map((file) => pathToFileURL(join(dir, file)).href);
  const module = await workerModule(start, "start", [scenario]);
  assert.equal(await workerModule(start, "start", [scenario]), module, "made once per process");
  const worker = new Worker(new URL(module), { workerData: { greeting: "hello" } });
  try {
    const message = await new Promise((resolve, reject) => worker.once("message", resolve).once("error", reject));
    assert.deepEqual(message, {
      data: { greeting: "hello" },
      seen: [scenario, "10"],
      url: start,
      resolved: pathToFileURL(join(dir, "data.json")).href,
      isCommand: true,
    });
  } finally {
    await worker.terminate();
  }
});
