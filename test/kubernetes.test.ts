// The load test as a Kubernetes Indexed Job, rehearsed here: the YAML is read as Kubernetes would read
// it, and each pod's command, arguments and environment are run from the repository's root, three at
// once, against the reference forum; their logs are merged as `kubectl logs ... | load.ts --merge -`.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import type { Results } from "../lib/results.ts";
import type { RunningForum } from "../scripts/forum-process.ts";
import { runScript, type ScriptRun, startCommand, startTestForum } from "./helpers.ts";

interface Container {
  command: string[];
  args: string[];
  env: { name: string; value: string }[];
  workingDir: string;
  image: string;
}

// deno-lint-ignore no-explicit-any
type Manifest = any;

async function makeJob(url: string, extra: string[]): Promise<Manifest[]> {
  const made = await runScript("load.ts", ["--kubernetes-job", "--url", url, ...extra]);
  assert.equal(made.status, 0, made.stderr);
  const documents = parseAllDocuments(made.stdout);
  for (const document of documents) assert.deepEqual(document.errors, [], "the YAML parses");
  return documents.map((document) => document.toJS()).filter(Boolean);
}

/** Runs pod `index` of the Job as Kubernetes would: its command and arguments, its environment and index. */
function rehearse(job: Manifest, index: number) {
  const container: Container = job.spec.template.spec.containers[0];
  const env = Object.fromEntries(container.env.map((e) => [e.name, e.value]));
  return startCommand([...container.command, ...container.args], {
    env: { ...env, JOB_COMPLETION_INDEX: String(index) },
    timeoutMs: 180_000,
  }).done;
}

/** A pod's log as `kubectl logs` shows it: its stdout; the results are its last line. */
function resultsOf(pod: ScriptRun): Results {
  const lines = pod.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

const count = (r: Results, name: string) => r.actions[name]?.count ?? 0;

describe("a Kubernetes Indexed Job, rehearsed", () => {
  let forum: RunningForum;
  let job: Manifest;
  let pods: ScriptRun[];
  before(async () => {
    forum = await startTestForum();
    const documents = await makeJob(forum.url, [
      // Three pods coming up at once (npx tsx each, about 4 CPU-s) on a machine running other tests: 40 s ahead.
      ...["--users", "10", "--actions", "2", "--instances", "3", "--instance", "kube", "--start-in", "40"],
    ]);
    job = documents.find((d) => d.kind === "Job");
    pods = await Promise.all([0, 1, 2].map((index) => rehearse(job, index)));
  });
  after(() => forum?.stop());

  test("the YAML is an Indexed Job of three pods, each running the load script against --url", () => {
    assert.equal(job.apiVersion, "batch/v1");
    assert.equal(job.spec.completionMode, "Indexed");
    assert.equal(job.spec.completions, 3);
    assert.equal(job.spec.parallelism, 3);
    const pod = job.spec.template.spec;
    assert.equal(pod.restartPolicy, "Never");
    assert.equal(pod.securityContext.runAsNonRoot, true);
    const container: Container = pod.containers[0];
    assert.equal(container.image, "tierload:latest");
    assert.deepEqual(container.command, ["npx", "tsx", "scripts/load.ts"]);
    assert.equal(container.args[container.args.indexOf("--url") + 1], forum.url);
    assert.ok(container.args.includes("--json") && container.args.includes("-"));
  });

  test("each pod runs its share (differing by one user at most) under its own names, and passes", () => {
    for (const [index, pod] of pods.entries()) assert.equal(pod.status, 0, `pod ${index}: ${pod.stderr}`);
    const results = pods.map(resultsOf);
    assert.deepEqual(results.map((r) => r.settings.users), [3, 3, 4]);
    assert.deepEqual(results.map((r) => r.instances[0]), ["kube-0", "kube-1", "kube-2"]);
    assert.deepEqual(results.map((r) => count(r, "signup")), [3, 3, 4]);
    for (const r of results) assert.equal(r.verdict.ok, true, r.verdict.reasons.join("; "));
    const skews = results.map((r) => r.instanceDetails![0].startSkewMs!);
    assert.ok(skews.every((skew) => Math.abs(skew) < 2000), `started together: skews ${skews.join(", ")} ms`);
  });

  test("their logs, merged from stdin, add up exactly to what each pod did", async () => {
    const logs = pods.map((pod) => `a line the pod printed\n${pod.stdout}`).join("");
    const merged = await runScript("load.ts", ["--merge", "-", "--json", "-"], { input: logs });
    assert.equal(merged.status, 0, merged.stderr);
    const all: Results = JSON.parse(merged.stdout.trim().split("\n").pop()!);
    const results = pods.map(resultsOf);
    for (const name of Object.keys(all.actions)) {
      assert.equal(count(all, name), results.reduce((n, r) => n + count(r, name), 0), name);
      assert.equal(all.actions[name].errors, results.reduce((n, r) => n + (r.actions[name]?.errors ?? 0), 0), name);
    }
    assert.equal(all.settings.users, 10);
    assert.deepEqual(all.merged, { found: 3, expected: 3, missing: [], duplicates: [] });
    assert.equal(all.check?.counted.replies, results.reduce((n, r) => n + r.check!.counted.replies, 0));
    assert.match(merged.stderr, /Instances: 3 merged of 3 the run had/);
    assert.match(merged.stderr, /Start skew against the planned .*: kube-0 [+-]\d+\.\d\d s, kube-1 /);
    assert.match(merged.stderr, /\nVerdict: PASS\n/);
  });

  test("a missing pod's log fails the merge, naming its index; a log given twice counts once and fails", async () => {
    const missing = await runScript("load.ts", ["--merge", "-"], { input: pods[0].stdout + pods[2].stdout });
    assert.equal(missing.status, 1, missing.stderr);
    assert.match(missing.stdout, /Instances: 2 merged of 3 the run had; missing: kube-1/);
    assert.match(missing.stdout, /Verdict: FAIL: 1 of 3 instances missing from the merge: kube-1/);
    const twice = await runScript("load.ts", ["--merge", "-", "--json", "-"], {
      input: pods[0].stdout + pods[1].stdout + pods[2].stdout + pods[1].stdout,
    });
    assert.equal(twice.status, 1, twice.stderr);
    const all: Results = JSON.parse(twice.stdout.trim().split("\n").pop()!);
    assert.equal(count(all, "signup"), 10);
    assert.match(twice.stderr, /instances found more than once \(each counted once\): kube-1/);
  });

  test("a log with no results, or a results line cut short, is a clear error", async () => {
    const none = await runScript("load.ts", ["--merge", "-"], { input: "pod starting\npod ended\n" });
    assert.equal(none.status, 1);
    assert.match(none.stderr, /standard input holds no tierload results/);
    const cut = pods[0].stdout.trim().split("\n").pop()!.slice(0, 200);
    const corrupt = await runScript("load.ts", ["--merge", "-"], { input: `hello\n${cut}\n` });
    assert.equal(corrupt.status, 1);
    assert.match(corrupt.stderr, /standard input line 2 is a results line cut short or corrupted/);
  });

  test("a pod that comes up after the planned moment begins at once and reports how late it was", async () => {
    const [late] = await makeJob(forum.url, ["--users", "2", "--actions", "1", "--instances", "1", "--start-in", "0"]);
    const pod = await rehearse(late, 0);
    assert.equal(pod.status, 0, pod.stderr);
    assert.match(pod.stderr, /Late: beginning at once, \d+\.\d s after the planned start/);
    const skew = resultsOf(pod).instanceDetails![0].startSkewMs!;
    assert.ok(skew > 0, `skew ${skew}`);
    assert.match(pod.stderr, /Start skew against the planned .*: \S+-0 \+\d+\.\d\d s/);
  });

  test("without --url, with an index out of range, or by hand without a shared name and seed, it says so", async () => {
    const noUrl = await runScript("load.ts", ["--kubernetes-job", "--instances", "2"]);
    assert.equal(noUrl.status, 2);
    assert.match(noUrl.stderr, /--kubernetes-job needs --url/);
    const badIndex = await runScript("load.ts", ["--url", forum.url, "--instances", "2"], {
      env: { JOB_COMPLETION_INDEX: "2" },
    });
    assert.equal(badIndex.status, 2);
    assert.match(badIndex.stderr, /--instances 2 needs --index \(or JOB_COMPLETION_INDEX\) from 0 to 1, not 2/);
    // Two instances started by hand, each with its own time-based name and random seed, would not merge.
    const byHand = await runScript("load.ts", ["--url", forum.url, "--instances", "2", "--index", "0", "--seed", "7"]);
    assert.equal(byHand.status, 2);
    assert.match(byHand.stderr, /--instances 2 needs --instance, the same for every instance, so that --merge takes/);
  });
});
