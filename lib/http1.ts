/**
 * HTTP/1.1 as a load generator needs it, on node:net and node:tls sockets kept alive per origin: one request at
 * a time on a connection, the answer framed by Content-Length, chunked encoding or the connection's close
 * (RFC 9112, section 6), informational answers skipped, headers folded into one object as node:http does. Most
 * of what a page load costs the generator outside parsing is this path, and node:http's ClientRequest, streams
 * and agent cost more: `npx tsx bench/http1.bench.ts` (the forum's login page, 20 at once) gave 50-61 µs of CPU a
 * request here against 62-98 for node:http, under Deno 87-100 against 106-129 (a busier hour; 55-79 against
 * 69-94 before); whole 300 x 5 runs against one forum (`npx tsx scripts/load.ts --url URL --users 300 --actions 5`,
 * alternating with the commit before) 10.0-11.2 CPU-s against 11.8-12.7. Plain connections read through `onread`
 * into one shared buffer, not a stream: 40-66 µs against 47-74 with 'data' events under Node, the same under Deno.
 *
 *   const limits = { timeoutMs: 30_000, maxBodyBytes: 1 << 24, tooLarge: () => "too large" };
 *   const answer = await send(new URL("http://127.0.0.1:8080/myapp/"), "GET", headers, undefined, limits);
 *   answer.status; answer.headers["set-cookie"]; answer.body   // the body as it came: still compressed, say
 *
 * Errors are plain, with a `code` where the socket gave one (ECONNREFUSED, ECONNRESET), and `staleConnection`
 * when a kept-alive connection the server had closed failed before any answer (sending again is safe then).
 */
import type { IncomingHttpHeaders } from "node:http";
import { connect as connectTcp, isIP, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";

export interface RawAnswer {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** What `send` rejects with. */
export interface SendError extends Error {
  code?: string;
  staleConnection?: boolean;
}

/** The most a status line and headers may take, as node:http's default. */
const MAX_HEAD_BYTES = 16 * 1024;
const CRLF2 = Buffer.from("\r\n\r\n");

interface Idle {
  socket: Socket;
  /** When the server said it would close an idle connection, less a second (its Keep-Alive timeout). */
  until: number;
}
const idle = new Map<string, Idle[]>();

/**
 * Sends one request (no redirects followed) and answers the whole answer, its body capped at `maxBodyBytes` on
 * the wire: beyond that it rejects with the message `tooLarge` gives.
 */
export function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Uint8Array | undefined,
  { timeoutMs, maxBodyBytes, tooLarge }: {
    timeoutMs: number;
    maxBodyBytes: number;
    /** The message for an answer over the limit: its declared length, or null once more arrived. */
    tooLarge: (declared: number | null) => string;
  },
): Promise<RawAnswer> {
  const origin = `${url.protocol}//${url.host}`;
  let head = `${method} ${target(url)} HTTP/1.1\r\nHost: ${url.host}\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (/[\r\n\0]/.test(value) || !TOKEN.test(name)) {
      return Promise.reject(new Error(`the header ${JSON.stringify(name)} has a character HTTP does not allow`));
    }
    head += `${name}: ${value}\r\n`;
  }
  head += "Connection: keep-alive\r\n\r\n";
  const bytes = body?.length ? Buffer.concat([Buffer.from(head, "latin1"), body]) : Buffer.from(head, "latin1");

  return new Promise((resolve, reject) => {
    const kept = takeIdle(origin);
    const socket = kept ?? open(url);
    const reader = new AnswerReader(method, maxBodyBytes, tooLarge);
    let received = false;
    const timer = setTimeout(() => fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    reading.set(socket, {
      data(chunk) {
        received = true;
        let done: RawAnswer | null;
        try {
          done = reader.push(chunk);
        } catch (error) {
          return fail(error as Error);
        }
        if (done) finish(done, reader.reusable && !reader.extra);
      },
      end() {
        try {
          const done = reader.end();
          if (done) return finish(done, false);
        } catch (error) {
          return fail(error as Error);
        }
      },
      close: () => fail(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })),
      error: fail,
    });
    socket.ref();
    socket.write(bytes);

    function finish(answer: RawAnswer, reusable: boolean) {
      clearTimeout(timer);
      reading.delete(socket);
      if (reusable) putIdle(origin, socket, reader.keepAliveMs);
      else socket.destroy();
      resolve(answer);
    }
    function fail(error: SendError) {
      clearTimeout(timer);
      reading.delete(socket);
      socket.destroy();
      const message = error.code && !error.message.includes(error.code)
        ? `${error.code}: ${error.message}`
        : error.message;
      const stale = kept !== undefined && !received && (error.code === "ECONNRESET" || error.code === "EPIPE");
      reject(Object.assign(new Error(message), { code: error.code, staleConnection: stale }));
    }
  });
}

/** The request target as the URL has it: an empty query (`action?`, as a GET form without fields sends) kept. */
function target(url: URL): string {
  return url.pathname + (url.search || (url.href.split("#")[0].endsWith("?") ? "?" : ""));
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** What a connection's events go to while a request reads its answer. */
interface Reading {
  data(chunk: Buffer): void;
  end(): void;
  close(): void;
  error(error: SendError): void;
}

/** Each connection's current request; an idle connection has none, and anything it hears drops it. */
const reading = new WeakMap<Socket, Reading>();

/**
 * Where plain connections read into: every read is handled before the next, and the reader copies what it
 * keeps, so one buffer serves them all and no read goes through a stream (`onread`, in Node and Deno).
 */
const READ_BUFFER = Buffer.alloc(64 * 1024);

function open(url: URL): Socket {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  let socket: Socket;
  if (url.protocol === "https:") {
    const port = Number(url.port || 443);
    socket = connectTls({ host, port, servername: isIP(host) ? undefined : host, ALPNProtocols: ["http/1.1"] });
    socket.on("data", (chunk: Buffer) => heard(socket, chunk));
  } else if (url.protocol === "http:") {
    socket = connectTcp({
      host,
      port: Number(url.port || 80),
      onread: { buffer: READ_BUFFER, callback: (length) => heard(socket, READ_BUFFER.subarray(0, length)) },
    });
    socket.setNoDelay(true);
  } else throw new Error(`${url.protocol} is not HTTP`);
  socket.on("end", () => toRequest(socket, (current) => current.end()));
  socket.on("close", () => reading.get(socket)?.close());
  socket.on("error", (error) => toRequest(socket, (current) => current.error(error)));
  return socket;
}

/** Hands what a connection heard to its request; answers true, to go on reading. */
function heard(socket: Socket, chunk: Buffer): boolean {
  toRequest(socket, (current) => current.data(chunk));
  return true;
}

/** Passes a connection's event to its current request; an idle connection that hears anything is dropped. */
function toRequest(socket: Socket, pass: (current: Reading) => void): void {
  const current = reading.get(socket);
  if (current) pass(current);
  else socket.destroy();
}

function takeIdle(origin: string): Socket | undefined {
  const sockets = idle.get(origin);
  for (let kept = sockets?.pop(); kept; kept = sockets!.pop()) {
    if (kept.until > Date.now() && kept.socket.writable && !kept.socket.readableEnded) return kept.socket;
    kept.socket.destroy();
  }
  return undefined;
}

function putIdle(origin: string, socket: Socket, keepAliveMs: number) {
  socket.unref();
  let sockets = idle.get(origin);
  if (!sockets) idle.set(origin, sockets = []);
  sockets.push({ socket, until: Date.now() + keepAliveMs });
  // A connection dropped while idle leaves its entry until the next take skips it: trim them now and then.
  if (sockets.length % 64 === 0) idle.set(origin, sockets.filter((s) => !s.socket.destroyed));
}

/** Reads one answer from a connection's bytes: its head, then its body as the head frames it. */
class AnswerReader {
  /** Whether the connection may carry another request once this answer is read. */
  reusable = true;
  /** Bytes past the end of the answer (a server that answered more than asked). */
  extra = false;
  /** How long the connection may stay idle (the server's Keep-Alive timeout less a second; 4 s without one). */
  keepAliveMs = 4000;
  private buffered: Buffer | null = null;
  private answer: RawAnswer | null = null;
  private framing: "length" | "chunked" | "close" | "none" = "none";
  private remaining = 0;
  private chunks: Buffer[] = [];
  private size = 0;
  private chunkState: "size" | "data" | "data-end" | "trailer" = "size";

  constructor(
    private method: string,
    private maxBodyBytes: number,
    private tooLarge: (declared: number | null) => string,
  ) {}

  /** Takes bytes; answers the answer once it is whole, or null. Throws on an answer that is not HTTP. */
  push(chunk: Buffer): RawAnswer | null {
    let data = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
    this.buffered = null;
    while (!this.answer) {
      const end = data.indexOf(CRLF2);
      if (end < 0) {
        if (data.length > MAX_HEAD_BYTES) {
          throw new Error(`the answer's headers are larger than ${MAX_HEAD_BYTES} bytes`);
        }
        this.buffered = Buffer.from(data);
        return null;
      }
      const answer = this.head(data.toString("latin1", 0, end));
      data = data.subarray(end + 4);
      if (answer.status >= 100 && answer.status < 200) continue;
      this.answer = answer;
    }
    return this.body(data);
  }

  /** The connection ended: the answer, if it was framed by the close, or an error saying what was missing. */
  end(): RawAnswer | null {
    if (this.answer && this.framing === "close") return this.whole();
    if (!this.answer && !this.buffered) return null;
    const what = !this.answer
      ? "before the answer's headers ended"
      : this.framing === "length"
      ? `after ${this.size} of the answer's ${this.size + this.remaining} bytes`
      : "before the answer's last chunk";
    throw new Error(`the server closed the connection ${what}`);
  }

  private head(text: string): RawAnswer {
    const lines = text.split("\r\n");
    const status = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!status) throw new Error(`the answer is not HTTP/1.x: it begins ${JSON.stringify(lines[0].slice(0, 60))}`);
    const headers: IncomingHttpHeaders = Object.create(null);
    let last = "";
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      if ((line[0] === " " || line[0] === "\t") && last) {
        addHeader(headers, last, line.trim(), true);
        continue;
      }
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).toLowerCase();
      if (colon <= 0 || !TOKEN.test(name)) {
        throw new Error(`the answer has a malformed header line: ${JSON.stringify(line.slice(0, 60))}`);
      }
      addHeader(headers, last = name, line.slice(colon + 1).trim(), false);
    }
    const code = Number(status[2]);
    const answer = { status: code, statusText: status[3] ?? "", headers, body: EMPTY };
    if (code < 200) return answer;
    const connection = String(headers.connection ?? "").toLowerCase();
    this.reusable = status[1] === "1" ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    const timeout = /\btimeout=(\d+)/.exec(String(headers["keep-alive"] ?? ""));
    if (timeout) this.keepAliveMs = Math.max(0, Number(timeout[1]) * 1000 - 1000);
    const encoding = String(headers["transfer-encoding"] ?? "").toLowerCase();
    if (this.method === "HEAD" || code === 204 || code === 304) this.framing = "none";
    else if (encoding) {
      if (!/(^|,)\s*chunked\s*$/.test(encoding)) this.framing = "close";
      else this.framing = "chunked";
    } else if (headers["content-length"] !== undefined) {
      const length = headers["content-length"];
      if (!/^\d+$/.test(length)) {
        throw new Error(`the answer's Content-Length is not a number: ${JSON.stringify(length)}`);
      }
      this.remaining = Number(length);
      if (this.remaining > this.maxBodyBytes) throw new Error(this.tooLarge(this.remaining));
      this.framing = "length";
    } else this.framing = "close";
    if (this.framing === "close") this.reusable = false;
    return answer;
  }

  private body(data: Buffer): RawAnswer | null {
    if (this.framing === "none") {
      if (data.length) this.extra = true;
      return this.whole();
    }
    if (this.framing === "length") {
      const take = data.subarray(0, this.remaining);
      this.take(take);
      this.remaining -= take.length;
      if (data.length > take.length) this.extra = true;
      return this.remaining === 0 ? this.whole() : null;
    }
    if (this.framing === "close") {
      this.take(data);
      return null;
    }
    return this.chunked(data);
  }

  private chunked(data: Buffer): RawAnswer | null {
    let at = 0;
    while (at < data.length) {
      if (this.chunkState === "data") {
        const take = data.subarray(at, at + this.remaining);
        this.take(take);
        this.remaining -= take.length;
        at += take.length;
        if (this.remaining === 0) this.chunkState = "data-end";
        continue;
      }
      const eol = data.indexOf("\r\n", at, "latin1");
      if (eol < 0) break;
      const line = data.toString("latin1", at, eol);
      at = eol + 2;
      if (this.chunkState === "data-end") {
        if (line !== "") throw new Error("the answer's chunked body is malformed: a chunk is longer than its size");
        this.chunkState = "size";
      } else if (this.chunkState === "trailer") {
        if (line === "") {
          if (at < data.length) this.extra = true;
          return this.whole();
        }
      } else {
        const size = /^([0-9a-fA-F]{1,8})[ \t]*(;.*)?$/.exec(line);
        if (!size) throw new Error(`the answer's chunked body is malformed: ${JSON.stringify(line.slice(0, 40))}`);
        this.remaining = parseInt(size[1], 16);
        this.chunkState = this.remaining === 0 ? "trailer" : "data";
      }
    }
    if (at < data.length) this.buffered = Buffer.from(data.subarray(at));
    if (this.buffered && this.buffered.length > MAX_HEAD_BYTES) {
      throw new Error("the answer's chunked body is malformed: a line without its end");
    }
    return null;
  }

  private take(data: Buffer) {
    if (!data.length) return;
    this.size += data.length;
    if (this.size > this.maxBodyBytes) throw new Error(this.tooLarge(null));
    this.chunks.push(Buffer.from(data));
  }

  private whole(): RawAnswer {
    const answer = this.answer!;
    answer.body = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    return answer;
  }
}

const EMPTY = Buffer.alloc(0);

/** Headers node:http keeps the first of, dropping repeats. */
const SINGLE = new Set([
  "age",
  "authorization",
  "content-length",
  "content-type",
  "etag",
  "expires",
  "from",
  "host",
  "if-modified-since",
  "if-unmodified-since",
  "last-modified",
  "location",
  "max-forwards",
  "proxy-authorization",
  "referer",
  "retry-after",
  "server",
  "user-agent",
]);

/** Adds a header as node:http does: Set-Cookie a list, a few kept first, the rest joined with ", ". */
function addHeader(headers: IncomingHttpHeaders, name: string, value: string, continued: boolean): void {
  const previous = headers[name];
  if (continued) {
    if (Array.isArray(previous)) previous[previous.length - 1] += ` ${value}`;
    else headers[name] = `${previous} ${value}`;
  } else if (name === "set-cookie") {
    if (previous) (previous as string[]).push(value);
    else headers[name] = [value];
  } else if (previous === undefined) headers[name] = value;
  else if (!SINGLE.has(name)) headers[name] = `${previous}${name === "cookie" ? "; " : ", "}${value}`;
}
