/**
 * A fixed-size pool of PostgreSQL connections, as a web server of the seed's era held them and as HikariCP
 * recommends today (minimumIdle equal to maximumPoolSize): every connection is opened at start, kept open
 * (one that is lost is opened again), and an idle connection is reused oldest-first, so that queries are
 * spread over all of them. pg's own Pool opens a connection only when every open one is busy, and reuses
 * the newest idle one first (its idle list is a stack): under a steady load most of its connections idle.
 *
 *   const { pool, shortfall } = await openFixedPool({ connectionString }, 1000);
 *   if (shortfall) log(`error: ${shortfall}`);        // the pool still runs, on the connections it holds
 *   const { rows } = await pool.query("SELECT 1 AS one");
 */
import pg from "pg";
import { openFileLimits } from "./process.ts";

/** What a pool answers queries with: pg's Pool and the fixed pool alike. */
export interface Queryable {
  // deno-lint-ignore no-explicit-any
  query(text: string, values?: unknown[]): Promise<pg.QueryResult<any>>;
}

/** A connection taken from a pool for several statements; `release()` hands it back. */
export interface PooledClient extends Queryable {
  release(): void;
}

/** The part of a pool a web server uses: pg.Pool has it, and so does FixedPool. */
export interface DatabasePool extends Queryable {
  connect(): Promise<PooledClient>;
  end(): Promise<void>;
}

/** Connections opened at once while the pool opens: PostgreSQL forks one backend at a time anyway. */
export const OPENING_AT_ONCE = 32;

/** The same words as pg's Pool, which an application's error handling (and a reader) already knows. */
const WAIT_TIMEOUT = "timeout exceeded when trying to connect";

interface Waiter {
  resolve(client: pg.Client): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export interface FixedPoolOptions {
  /** How long a query waits for a connection to come free before it fails (pg's connectionTimeoutMillis). */
  waitMs?: number;
  /** Connections opened at once at start. */
  openingAtOnce?: number;
  /** Where a lost connection and its reopening are told. */
  log?: (line: string) => void;
}

/**
 * Opens `size` connections, OPENING_AT_ONCE at a time, and answers the pool on those it holds. When
 * PostgreSQL or the machine refuses one, opening stops there, and `shortfall` says how many were held
 * and why (max_connections, open files, processes), with the fix.
 */
export async function openFixedPool(
  config: pg.ClientConfig,
  size: number,
  options: FixedPoolOptions = {},
): Promise<{ pool: FixedPool; shortfall?: string }> {
  const pool = new FixedPool(config, size, options);
  const refusal = await pool.open(options.openingAtOnce ?? OPENING_AT_ONCE);
  if (!refusal) return { pool };
  if (pool.held === 0) {
    await pool.end();
    throw new Error(`Cannot open a PostgreSQL connection: ${refusal.message}`);
  }
  return { pool, shortfall: await describeShortfall(pool, size, refusal) };
}

export class FixedPool implements DatabasePool {
  /** Every connection held, busy or idle. */
  private readonly clients = new Set<pg.Client>();
  /** Idle connections, the one idle longest first. */
  private readonly idle: pg.Client[] = [];
  private readonly waiting: Waiter[] = [];
  private closing = false;

  constructor(
    private readonly config: pg.ClientConfig,
    readonly size: number,
    private readonly options: FixedPoolOptions = {},
  ) {}

  /** The connections open now. */
  get held(): number {
    return this.clients.size;
  }

  /** Opens connections up to the size, `atOnce` at a time; answers the first refusal, or null. */
  async open(atOnce: number): Promise<Error | null> {
    let refusal: Error | null = null;
    const opener = async () => {
      while (!refusal && !this.closing && this.clients.size + opening < this.size) {
        opening++;
        try {
          this.add(await this.connectOne());
        } catch (error) {
          refusal ??= error as Error;
        } finally {
          opening--;
        }
      }
    };
    let opening = 0;
    await Promise.all(Array.from({ length: Math.min(atOnce, this.size) }, opener));
    return refusal;
  }

  async query(text: string, values?: unknown[]): Promise<pg.QueryResult> {
    const client = await this.take();
    try {
      return await client.query(text, values);
    } finally {
      this.giveBack(client);
    }
  }

  async connect(): Promise<PooledClient> {
    const client = await this.take();
    let released = false;
    return {
      query: (text, values) => client.query(text, values),
      release: () => {
        if (!released) this.giveBack(client);
        released = true;
      },
    };
  }

  async end(): Promise<void> {
    this.closing = true;
    for (const waiter of this.waiting.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error("Cannot query: the pool is closing"));
    }
    this.idle.length = 0;
    await Promise.all([...this.clients].map((client) => client.end().catch(() => {})));
    this.clients.clear();
  }

  private async connectOne(): Promise<pg.Client> {
    const client = new pg.Client(this.config);
    // An error on an idle connection (the server ended it) is told by 'end' below; without a listener it would throw.
    client.on("error", () => {});
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    return client;
  }

  private add(client: pg.Client): void {
    if (this.closing) return void client.end().catch(() => {});
    this.clients.add(client);
    client.once("end", () => this.lost(client));
    this.giveBack(client);
  }

  /** A connection the server or the network ended: dropped, and opened again (every second until it opens). */
  private lost(client: pg.Client): void {
    if (!this.clients.delete(client) || this.closing) return;
    const at = this.idle.indexOf(client);
    if (at >= 0) this.idle.splice(at, 1);
    this.options.log?.(`error: a PostgreSQL connection of the pool was lost; opening it again`);
    const reopen = () => {
      if (this.closing) return;
      this.connectOne().then((again) => this.add(again), () => setTimeout(reopen, 1000).unref());
    };
    reopen();
  }

  /** The connection idle longest, or the first to come free, waiting at most `waitMs`. */
  private take(): Promise<pg.Client> {
    if (this.closing) return Promise.reject(new Error("Cannot query: the pool is closing"));
    const client = this.idle.shift();
    if (client) return Promise.resolve(client);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          reject(new Error(WAIT_TIMEOUT));
        }, this.options.waitMs ?? 100_000),
      };
      this.waiting.push(waiter);
    });
  }

  private giveBack(client: pg.Client): void {
    if (!this.clients.has(client)) return;
    const waiter = this.waiting.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(client);
    } else this.idle.push(client);
  }
}

/**
 * Why a pool holds fewer connections than its size, with the fix: PostgreSQL's max_connections, this
 * process's open files, or the processes the machine lets PostgreSQL fork.
 */
async function describeShortfall(pool: FixedPool, size: number, refusal: Error): Promise<string> {
  const { code = "", message } = refusal as Error & { code?: string };
  const held = `The pool holds ${pool.held} of its ${size} PostgreSQL connections`;
  if (code === "53300") {
    const shown = await pool.query("SHOW max_connections").catch(() => null);
    const max = shown ? ` (max_connections is ${shown.rows[0].max_connections})` : "";
    return `${held}: PostgreSQL refused the next: "${message}"${max}: raise max_connections above the pool's size ` +
      `(it takes a restart)`;
  }
  if (code === "EMFILE" || code === "ENFILE") {
    const limits = openFileLimits();
    const limit = code === "EMFILE" && limits ? ` (ulimit -n is ${limits.soft}, hard ${limits.hard})` : "";
    const whose = code === "EMFILE" ? "this process's open-file limit" : "the system's open-file table (fs.file-max)";
    return `${held}: ${whose} is full${limit}: raise it above ${size} plus the web server's sockets`;
  }
  if (/could not fork|Resource temporarily unavailable/i.test(message)) {
    return `${held}: PostgreSQL could not start another backend process ("${message}"): raise the processes its ` +
      `user may run (ulimit -u, kern.maxprocperuid on macOS) above ${size}`;
  }
  return `${held}: opening the next failed: ${message}`;
}
