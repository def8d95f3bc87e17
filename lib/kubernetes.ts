/**
 * The load test as a Kubernetes Indexed Job: N pods, each given its index by Kubernetes
 * (JOB_COMPLETION_INDEX), each running scripts/load.ts on its share of the users, all beginning at one
 * moment fixed when the manifest is made, each printing its results as the last line of its log.
 *
 *   npx tsx scripts/load.ts --kubernetes-job --url http://forum.example/myapp/ --users 3000 --instances 3 > job.yaml
 *   kubectl apply -f job.yaml
 *
 * No operator: an Indexed Job (batch/v1, completionMode: Indexed) is plain Kubernetes since 1.24.
 */

/** What the manifest needs: the run's name, how many pods, their image, and the load script's arguments. */
export interface JobPlan {
  /** The run's name (--instance): the Job is tierload-<run>, pod k's users are load_user_<run>-<k>_<i>. */
  run: string;
  instances: number;
  image: string;
  /** scripts/load.ts's arguments, the same for every pod (the index comes from the environment). */
  args: string[];
  /** Resources each pod asks for, from the users it runs. */
  cpu: string;
  memory: string;
}

/** The command every pod runs from the image's working directory, the repository's root. */
export const POD_COMMAND = ["npx", "tsx", "scripts/load.ts"];
/** Where the Containerfile puts the project. */
export const POD_WORKDIR = "/app";

/** The multi-document YAML for `plan`: the Job, with a comment saying how to run it and merge its logs. */
export function jobManifest(plan: JobPlan): string {
  const name = `tierload-${plan.run}`.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63).replace(/-+$/, "");
  const labels = { "app.kubernetes.io/name": "tierload", "tierload/run": name };
  const job = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name, labels },
    spec: {
      completionMode: "Indexed",
      completions: plan.instances,
      parallelism: plan.instances,
      // A pod that fails is not run again: a second run of its index would write twice; the merge names it missing.
      backoffLimit: 0,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: "Never",
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 },
          containers: [{
            name: "load",
            image: plan.image,
            imagePullPolicy: "IfNotPresent",
            workingDir: POD_WORKDIR,
            command: POD_COMMAND,
            args: plan.args,
            env: [{ name: "NODE_ENV", value: "production" }],
            resources: {
              requests: { cpu: plan.cpu, memory: plan.memory },
              limits: { memory: plan.memory },
            },
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: false },
          }],
        },
      },
    },
  };
  return [
    `# tierload: ${plan.instances} pods of scripts/load.ts, started together. Apply, wait, merge the logs:`,
    `#   kubectl apply -f job.yaml`,
    `#   kubectl wait --for=condition=complete --timeout=2h job/${name}`,
    `#   kubectl logs -l job-name=${name} --tail=-1 | npx tsx scripts/load.ts --merge - --report all.html`,
    "---",
    toYaml(job),
  ].join("\n");
}

/**
 * YAML for plain data: maps, lists, strings (always double-quoted, JSON's escapes, which YAML shares),
 * numbers and booleans. Enough for a manifest, and nothing a reader has to guess at.
 */
export function toYaml(value: unknown, indent = ""): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return value.map((item) => {
      const inner = toYaml(item, indent + "  ");
      return `${indent}- ${isBlock(item) ? inner.trimStart() : inner}`;
    }).join("\n");
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return "{}";
    return entries.map(([key, v]) =>
      isBlock(v) ? `${indent}${key}:\n${toYaml(v, indent + "  ")}` : `${indent}${key}: ${toYaml(v, indent + "  ")}`
    ).join("\n");
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  throw new Error(`toYaml: cannot write ${value === null ? "null" : typeof value}`);
}

function isBlock(value: unknown): boolean {
  return value !== null && typeof value === "object" && Object.keys(value).length > 0;
}
