/**
 * What gzip costs per request: the reference forum compressing the pages a load test asks for, and the
 * generator (tier 3) decompressing them, against the bytes it saves on the wire.
 *
 *   npx tsx bench/gzip.bench.ts [threads=200] [repeats=300]
 *
 * A forum on its own embedded PostgreSQL gets `threads` threads with a reply each; the pages of the load
 * test's journey (the forum's thread list, a thread, the home page) are fetched through tier 3, which asks for
 * gzip. Each page's HTML is then compressed as the forum compresses it and decompressed as tier 3 does,
 * `repeats` times, and the CPU time per page is printed with the sizes.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { createThread, getForumId, login } from "../lib/forum.ts";
import { fetchPage, type RequestRecord } from "../lib/fetchData.ts";
import { startForum } from "../scripts/forum-server.ts";

const [threads = 200, repeats = 300] = process.argv.slice(2).map(Number);

function cpuMicroseconds(run: () => void): number {
  const start = process.cpuUsage();
  for (let i = 0; i < repeats; i++) run();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / repeats;
}

const forum = await startForum({ port: 0, log: () => {}, scryptCost: 1024 });
try {
  const records: RequestRecord[] = [];
  const session = await login(forum.url, "p1", "p1", { onRequest: (r) => records.push(r) });
  const forumId = await getForumId(session, "Other");
  let threadId = 0;
  for (let i = 0; i < threads; i++) threadId = await createThread(session, forumId, `Thread ${i}`, `Body ${i}`);
  console.log(`gzip per request, ${threads} threads, ${repeats} repeats (CPU microseconds per page)`);
  console.log("page                 html bytes  wire bytes  forum gzip  generator gunzip");
  for (const path of [`forum?id=${forumId}`, `thread?id=${threadId}`, "./"]) {
    records.length = 0;
    const page = await fetchPage(session, path);
    const html = Buffer.from(page.body);
    const wire = records[records.length - 1].bytes;
    const compressed = gzipSync(html);
    const forumUs = cpuMicroseconds(() => gzipSync(html));
    const generatorUs = cpuMicroseconds(() => gunzipSync(compressed));
    console.log(
      `${path.padEnd(20)} ${String(html.length).padStart(10)}  ${String(wire).padStart(10)}  ` +
        `${forumUs.toFixed(0).padStart(10)}  ${generatorUs.toFixed(0).padStart(16)}`,
    );
  }
} finally {
  await forum.stop();
}
