/**
 * The forum's load test: the seed's loop with every user at once. Each of N users signs up, logs in, then
 * acts M times (9 in 10 a reply to an existing thread, otherwise a new thread), through the same adapter
 * as the functional suite (lib/forum.ts); then every write the run counted is looked for on the forum.
 * With no --url it starts the reference forum in its own process, holding a fixed pool of 1000
 * PostgreSQL connections (the run passes only if all 1000 are held throughout). The load tool itself
 * (workers, instances, Kubernetes, merge, verdict, reports) is lib/'s.
 *
 *   npx tsx scripts/load.ts                      # or: deno run -A scripts/load.ts (npm start)
 *   npx tsx scripts/load.ts --users 200 --actions 5 --json run.json --max-error-rate 0.01 --max-p99 2000
 *   npx tsx scripts/load.ts --merge a.json b.json --json all.json
 *   npx tsx scripts/load.ts --kubernetes-job --url http://app/myapp/ --users 3000 --instances 3 > job.yaml
 */
import { Option } from "commander";
import { integer, number, scenario } from "../lib/tierload.ts";
import {
  createNewThread,
  findLostWrites,
  type ForumCounts,
  getForumCounts,
  getForumId,
  login,
  postToExistingThread,
  signup,
  visit,
  type Written,
} from "../lib/forum.ts";
import { POOL_MODES, type PoolMode, spawnForum } from "./forum-process.ts";

/** The forum scenario's own options, beside the tool's (--users, --actions, --url, ...). */
interface ForumOptions {
  replyShare: number;
  forum: string;
  pool: number;
  poolMode: PoolMode;
}

/** What every user needs to know before the run: the forum they post in, and its counts before. */
interface Before {
  forumId: number;
  counts: ForumCounts;
}

const PASSWORD = "load-password";

export default scenario<ForumOptions, Before, Written>(import.meta, {
  name: "forum",
  description: "Load-test a forum with simultaneous users who sign up, log in and post, through lib/forum.ts.",
  options: (command) =>
    command
      .option("--reply-share <fraction>", "share of actions that reply to an existing thread", number(0, 1), 0.9)
      .option("--forum <name>", "the forum whose threads users reply to and start", "Other")
      .option("--pool <n>", "the reference forum's PostgreSQL connections", integer(1, 10_000), 1000)
      .addOption(
        new Option("--pool-mode <mode>", "fixed: opened at start, held and all used; on-demand: pg's Pool")
          .choices(POOL_MODES).default("fixed"),
      ),
  about: (options) => `reply share ${options.replyShare}`,
  start: async (options) => ({
    ...await spawnForum(options.pool, { poolMode: options.poolMode }),
    name: "the reference forum",
  }),

  async setup({ url, options }) {
    const visitor = visit(url);
    const forumId = await getForumId(visitor, options.forum);
    return { forumId, counts: await getForumCounts(visitor, forumId) };
  },

  // The seed's loop, for one user.
  async user({ url, name, options, setup, act, repeat, random, keep }) {
    const username = `load_user_${name}`;
    if (!await act("signup", () => signup(url, username, PASSWORD))) return;
    const session = await act("login", () => login(url, username, PASSWORD));
    if (!session) return;
    await repeat(async () => {
      if (random() < options.replyShare) {
        keep(await act("reply", () => postToExistingThread(session, setup.forumId, random)));
      } else {
        keep(await act("new thread", () => createNewThread(session, setup.forumId, random)));
      }
    });
  },
  steps: (options) => 2 + options.actions,

  // Nothing lost: every thread and reply the run counted is on the forum as written, and its counts agree.
  checkName: "Nothing lost",
  async check({ url, setup, kept, exact, failures }) {
    const findings = await findLostWrites(visit(url), setup.forumId, setup.counts, kept, exact);
    const failedWrites = (failures["reply"] ?? 0) + (failures["new thread"] ?? 0);
    return {
      ok: findings.length === 0,
      counted: {
        threads: kept.filter((w) => w.postId === undefined).length,
        replies: kept.filter((w) => w.postId !== undefined).length,
      },
      summary:
        "all {threads} threads and {replies} replies the run counted are on the forum as written, and its counts moved by {how}",
      findings,
      note: findings.length && failedWrites
        ? `${failedWrites} writes failed; one that failed after the server stored it (a timeout, say) shows here as a difference`
        : undefined,
    };
  },
});
