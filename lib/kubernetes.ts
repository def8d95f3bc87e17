/**
 * A load run as a Kubernetes Indexed Job: N pods, each given its index by Kubernetes
 * (JOB_COMPLETION_INDEX), each running the scenario's own file on its share of the users, all beginning
 * at one moment fixed when the manifest is made, each printing its results as the last line of its log.
 * Secrets (a password in a URL) never enter the YAML: the pods read them from a Kubernetes Secret.
 *
 *   npx tsx scripts/load.ts --kubernetes-job --url http://app.example/ --users 3000 --instances 3 > job.yaml
 *   kubectl apply -f job.yaml
 *
 * No operator: an Indexed Job (batch/v1, completionMode: Indexed) is plain Kubernetes since 1.24.
 */

/** What the manifest needs: the run's name, how many pods, their image, and the scenario's command. */
export interface JobPlan {
  /** The run's name (--instance): the Job is tierload-<run>, pod k's users are <run>-<k>_<i>. */
  run: string;
  instances: number;
  image: string;
  /** The scenario's file, relative to the image's working directory (the repository's root). */
  script: string;
  /** Its arguments, the same for every pod (the index comes from the environment). */
  args: string[];
  /** Options whose values are secret, read by the pods from the environment, filled from a Kubernetes Secret. */
  secrets: { env: string; key: string; shown: string }[];
  /** Resources each pod asks for, from the users it runs. */
  cpu: string;
  memory: string;
}

/** How every pod runs a scenario's file, from the image's working directory. */
export const POD_RUNTIME = ["npx", "tsx"];
/** Where the Containerfile puts the project. */
export const POD_WORKDIR = "/app";

/**
 * Text as Kubernetes passes it to a container's arguments unchanged: it expands `$(VAR)` and turns `$$`
 * into `$`, so every `$` is doubled.
 */
export function literalArgument(text: string): string {
  return text.replaceAll("$", "$$$$");
}

/** The multi-document YAML for `plan`: the Job, with a comment saying how to run it and merge its logs. */
export function jobManifest(plan: JobPlan): string {
  const name = `tierload-${plan.run}`.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63).replace(/-+$/, "");
  const labels = { "app.kubernetes.io/name": "tierload", "tierload/run": name };
  const secret = `${name}-secrets`.slice(0, 63);
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
            command: [...POD_RUNTIME, plan.script],
            args: plan.args.map(literalArgument),
            env: [
              { name: "NODE_ENV", value: "production" },
              ...plan.secrets.map((s) => ({ name: s.env, valueFrom: { secretKeyRef: { name: secret, key: s.key } } })),
            ],
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
  const createSecret = plan.secrets.length
    ? [
      `# First the Secret the pods read ${
        plan.secrets.map((s) => s.env).join(", ")
      } from (put the real passwords for ***):`,
      `#   kubectl create secret generic ${secret} ${
        plan.secrets.map((s) => `--from-literal=${s.key}=${shellQuote(s.shown)}`).join(" ")
      }`,
    ]
    : [];
  const comments = [
    `# tierload: ${plan.instances} pods of ${plan.script}, started together. Apply, wait, merge the logs:`,
    ...createSecret,
    `#   kubectl apply -f job.yaml`,
    `#   kubectl wait --for=condition=complete --timeout=2h job/${name}`,
    `#   kubectl logs -l job-name=${name} --tail=-1 | npx tsx ${plan.script} --merge - --report all.html`,
  ];
  return [...comments.map(oneLine), "---", toYaml(job)].join("\n");
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
  if (typeof value === "string") return yamlString(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  throw new Error(`toYaml: cannot write ${value === null ? "null" : typeof value}`);
}

/**
 * A double-quoted YAML string: JSON's escapes, which YAML shares, and \u escapes for what YAML does not allow
 * as is (DEL, the C1 controls, NEL, U+FEFF, U+FFFE, U+FFFF, the line and paragraph separators).
 */
function yamlString(text: string): string {
  return JSON.stringify(text).replace(
    /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** A comment line stays one line: no newline or control character of an option's text can end it. */
function oneLine(line: string): string {
  // deno-lint-ignore no-control-regex -- the point is to find them
  return line.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/g, "?");
}

/** `text` as one word for a POSIX shell. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

function isBlock(value: unknown): boolean {
  return value !== null && typeof value === "object" && Object.keys(value).length > 0;
}
