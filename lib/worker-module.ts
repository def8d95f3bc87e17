/**
 * What a load worker thread runs: a module that loads the worker's code and the scenario's file, then calls the
 * worker's start with the thread's data. Under Node they are bundled into that one module (esbuild, which tsx
 * runs on): TypeScript stripped, each file's `import.meta` kept as its own, packages left for Node to load from
 * where they are installed. A thread then needs no TypeScript loader of its own: under tsx, each thread had
 * started a loader thread and passed every module through it, about 1.5 CPU-s a thread (--cpu-prof of a small
 * run: 3.7 CPU-s with one thread, 5.8 with two; 3.2 and 4.1 bundled). Deno runs TypeScript itself and caches
 * it: its module imports the files as they are.
 *
 *   const module = await workerModule(import.meta.url, "runWorker", [scenario.file]);
 *   const thread = new Worker(new URL(module), { workerData });
 */
import { readFile } from "node:fs/promises";
import { dirname, extname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const modules = new Map<string, Promise<string>>();
const RESOLVING = Symbol("resolving");
const TYPESCRIPT = /\.[cm]?tsx?$/;
const LOADERS: Record<string, "ts" | "tsx" | "js" | "jsx"> = {
  ".ts": "ts",
  ".mts": "ts",
  ".cts": "ts",
  ".tsx": "tsx",
  ".jsx": "jsx",
};

/**
 * The data: URL of a module that imports `moduleUrl` and the files in `also` (a scenario's), then calls
 * `moduleUrl`'s export `start` with the thread's workerData; made once per process. Throws, naming the files,
 * if they do not bundle.
 */
export function workerModule(moduleUrl: string, start: string, also: string[]): Promise<string> {
  const key = JSON.stringify([moduleUrl, start, also]);
  if (!modules.has(key)) modules.set(key, build(moduleUrl, start, also).then(dataUrl));
  return modules.get(key)!;
}

function dataUrl(code: string): string {
  return `data:text/javascript;base64,${Buffer.from(code).toString("base64")}`;
}

async function build(moduleUrl: string, start: string, also: string[]): Promise<string> {
  const entry = (path: (url: string) => string) =>
    [
      `import { workerData } from "node:worker_threads";`,
      `import { ${start} } from ${JSON.stringify(path(moduleUrl))};`,
      ...also.map((url) => `import ${JSON.stringify(path(url))};`),
      `${start}(workerData);`,
    ].join("\n");
  if (process.versions.deno) return entry((url) => url);
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    stdin: {
      contents: entry(fileURLToPath),
      resolveDir: dirname(fileURLToPath(moduleUrl)),
      sourcefile: "tierload-worker.js",
    },
    bundle: true,
    write: false,
    format: "esm",
    platform: "node",
    target: "esnext",
    // Resolve packages as Node does: its conditions, and "main" before "module".
    conditions: [],
    mainFields: ["main"],
    logLevel: "silent",
    plugins: [{
      name: "tierload-worker",
      setup(build) {
        // A package's JavaScript stays outside the bundle, imported by its absolute URL (the bundle is evaluated
        // from no file); TypeScript (tierload itself, installed as a dependency) is bundled like the user's files.
        build.onResolve({ filter: /^[^./]/ }, async (args) => {
          if (args.pluginData === RESOLVING || /^[a-z]+:/.test(args.path)) return undefined;
          const found = await build.resolve(args.path, {
            kind: args.kind,
            importer: args.importer,
            resolveDir: args.resolveDir,
            pluginData: RESOLVING,
          });
          if (found.errors.length) return { errors: found.errors };
          if (TYPESCRIPT.test(found.path)) return { path: found.path };
          return { path: pathToFileURL(found.path).href, external: true };
        });
        // Every bundled file keeps its own import.meta: its URL, file and directory, as under tsx and Deno.
        build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
          const source = await readFile(args.path, "utf8");
          const url = pathToFileURL(args.path).href;
          const { code } = await esbuild.transform(source, {
            loader: LOADERS[extname(args.path)] ?? "js",
            format: "esm",
            target: "esnext",
            define: { "import.meta": "__tierload_meta" },
            sourcefile: args.path,
          });
          const meta = {
            url,
            filename: args.path,
            dirname: dirname(args.path),
            main: false,
          };
          // import.meta.resolve, for a path relative to the file (a package cannot be found from a data: URL).
          const header = `const __tierload_meta = { ...${JSON.stringify(meta)}, resolve: (s) => new URL(s, ${
            JSON.stringify(url)
          }).href };\n`;
          return { contents: header + code, loader: "js", resolveDir: dirname(args.path) };
        });
      },
    }],
  }).catch((error: Error) => {
    throw new Error(`Cannot prepare the load workers' code from ${also.join(", ")}: ${error.message}`);
  });
  return result.outputFiles[0].text;
}
