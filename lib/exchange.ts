/**
 * One HTTP exchange as tier 3 makes it: node:http with keep-alive agents, a timeout that settles it under either
 * runtime, the body decompressed (gzip, deflate, br) and capped, before and after decompression, at the session's
 * limit. No redirects followed here: lib/fetchData.ts follows them hop by hop.
 *
 *   const answer = await exchange(new URL(url), "GET", headers, undefined, { timeoutMs: 30_000, maxResponseBytes });
 */
import { Agent as HttpAgent, type IncomingHttpHeaders, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from "node:zlib";
export interface Answer {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  /** The body, decompressed. */
  body: Uint8Array;
  /** How many bytes of body came over the wire. */
  wireBytes: number;
}

// node:http with keep-alive agents rather than fetch: a load test sends every request through here,
// and fetch's streams, Headers and AbortSignals cost the generator about a fifth of its CPU.
const agents = {
  "http:": new HttpAgent({ keepAlive: true, maxSockets: Infinity }),
  "https:": new HttpsAgent({ keepAlive: true, maxSockets: Infinity }),
};

/** One HTTP exchange, no redirects followed; rejects with the reason (refused, reset, no answer in time). */
export function exchange(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Uint8Array | undefined,
  { timeoutMs, maxResponseBytes }: { timeoutMs: number; maxResponseBytes: number },
): Promise<Answer> {
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const agent = agents[url.protocol as keyof typeof agents];
  if (!agent) return Promise.reject(new Error(`${url.protocol} is not HTTP`));
  return new Promise((resolve, reject) => {
    const tooLarge = (size: string) => {
      fail(new Error(`the answer is larger than the limit of ${bytes(maxResponseBytes)} (${size}; maxResponseBytes)`));
      req.destroy();
    };
    // The path as the URL has it: an empty query (`action?`, as a GET form without fields sends) is kept.
    const path = url.pathname + (url.search || (url.href.split("#")[0].endsWith("?") ? "?" : ""));
    const options = { protocol: url.protocol, hostname: url.hostname, port: url.port, path, method, headers, agent };
    const req = send(options, (res) => {
      answered = true;
      const declared = Number(res.headers["content-length"]);
      if (declared > maxResponseBytes) return tooLarge(`Content-Length ${bytes(declared)}`);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxResponseBytes) tooLarge(`more than that arrived`);
        else chunks.push(chunk);
      });
      res.on("end", () => {
        clearTimeout(timer);
        let decoded: Uint8Array;
        try {
          decoded = decompress(Buffer.concat(chunks), res.headers["content-encoding"], maxResponseBytes);
        } catch (error) {
          return fail(error as Error);
        }
        resolve({
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? "",
          headers: res.headers,
          body: decoded,
          wireBytes: size,
        });
      });
      res.on("error", fail);
    });
    // The timeout settles the promise itself: under Deno, destroying a request on a reused
    // keep-alive socket does not make it fail, and its answer would still arrive.
    const timer = setTimeout(() => {
      fail(new Error(`no answer within ${timeoutMs} ms`));
      req.destroy();
    }, timeoutMs);
    let answered = false;
    function fail(error: Error & { code?: string }) {
      clearTimeout(timer);
      const message = error.code && !error.message.includes(error.code)
        ? `${error.code}: ${error.message}`
        : error.message;
      const staleConnection = req.reusedSocket && !answered && (error.code === "ECONNRESET" || error.code === "EPIPE");
      reject(Object.assign(new Error(message), { staleConnection }));
    }
    req.on("error", fail);
    req.end(body);
  });
}

/**
 * Undoes the Content-Encoding (gzip, deflate with or without its zlib wrapper, br; several in turn), holding
 * each step's output to `max` bytes, so a small answer that decompresses into gigabytes fails instead.
 */
function decompress(body: Buffer, contentEncoding: string | undefined, max: number): Uint8Array {
  const codings = (contentEncoding ?? "").toLowerCase().split(",").map((c) => c.trim())
    .filter((c) => c && c !== "identity");
  if (body.length === 0) return body;
  let data = body;
  for (const coding of codings.reverse()) {
    const options = { maxOutputLength: max };
    try {
      if (coding === "gzip" || coding === "x-gzip") data = gunzipSync(data, options);
      else if (coding === "br") data = brotliDecompressSync(data, options);
      else if (coding === "deflate") {
        try {
          data = inflateSync(data, options);
        } catch (error) {
          if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw error;
          data = inflateRawSync(data, options);
        }
      } else throw new Error(`the answer is in an encoding tierload cannot decode: Content-Encoding ${coding}`);
    } catch (error) {
      const { code, message } = error as { code?: string; message: string };
      if (code === "ERR_BUFFER_TOO_LARGE" || error instanceof RangeError) {
        throw new Error(
          `the answer is larger than the limit of ${bytes(max)} once decompressed (${coding}, ` +
            `${bytes(body.length)} on the wire; maxResponseBytes)`,
        );
      }
      if (message.startsWith("the answer")) throw error;
      throw new Error(`the answer's ${coding} body cannot be decompressed: ${message}`);
    }
  }
  return data;
}

function bytes(n: number): string {
  return n >= 1024 * 1024 ? `${+(n / 1024 / 1024).toFixed(1)} MiB` : `${n} bytes`;
}
