/**
 * What one request costs the generator's HTTP client, apart from parsing: node:http with a keep-alive agent (what
 * tier 3 used) against lib/http1.ts (what it uses), the same GET of the reference forum's login page with the
 * headers a navigation sends, 20 at once, alternating in one process (the forum in its own); CPU from
 * process.cpuUsage(), so the kernel's loopback work is in both.
 *
 *   npx tsx bench/http1.bench.ts [requests=4000] [rounds=3]     (or: npx deno run -A bench/http1.bench.ts)
 */
import { Agent, request } from "node:http";
import { send } from "../lib/http1.ts";
import { spawnForum } from "../scripts/forum-process.ts";

const [requests = 4000, rounds = 3] = process.argv.slice(2).map(Number);
const forum = await spawnForum(10);
const url = new URL("login", forum.url);
const headers = {
  "user-agent": "Mozilla/5.0 (compatible; tierload/0.1)",
  accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  "accept-language": "en-US,en;q=0.9",
  "accept-encoding": "gzip, deflate, br",
  "sec-fetch-site": "none",
  "sec-fetch-mode": "navigate",
  "upgrade-insecure-requests": "1",
};
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

function viaNodeHttp(): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ hostname: url.hostname, port: url.port, path: url.pathname, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve(Buffer.concat(chunks)));
    });
    req.on("error", reject);
    req.end();
  });
}

const viaHttp1 = () =>
  send(url, "GET", headers, undefined, { timeoutMs: 30_000, maxBodyBytes: 1 << 24, tooLarge: () => "too large" });

/** Microseconds of this process's CPU per request, `requests` of them, 20 at a time. */
async function measure(client: () => Promise<unknown>): Promise<number> {
  let started = 0;
  const before = process.cpuUsage();
  await Promise.all(Array.from({ length: 20 }, async () => {
    while (started++ < requests) await client();
  }));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / requests;
}

try {
  await measure(viaNodeHttp);
  await measure(viaHttp1);
  console.log(`# ${process.versions.deno ? `Deno ${process.versions.deno}` : `Node ${process.version}`}`);
  console.log("round\tnode_http_us\thttp1_us\tratio");
  for (let round = 1; round <= rounds; round++) {
    const old = await measure(viaNodeHttp);
    const ours = await measure(viaHttp1);
    console.log(`${round}\t${old.toFixed(1)}\t${ours.toFixed(1)}\t${(old / ours).toFixed(2)}x`);
  }
} finally {
  await forum.stop();
  process.exit(0);
}
