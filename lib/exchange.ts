/**
 * One HTTP exchange as tier 3 makes it: lib/http1.ts's connections kept alive, a timeout that settles it under
 * either runtime, the body decompressed (gzip, deflate, br) and capped, before and after decompression, at the
 * session's limit. No redirects followed here: lib/fetchData.ts follows them hop by hop.
 *
 *   const answer = await exchange(new URL(url), "GET", headers, undefined, { timeoutMs: 30_000, maxResponseBytes });
 */
import type { IncomingHttpHeaders } from "node:http";
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from "node:zlib";
import { send } from "./http1.ts";

export interface Answer {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  /** The body, decompressed. */
  body: Uint8Array;
  /** How many bytes of body came over the wire. */
  wireBytes: number;
}

// Our own HTTP/1.1 client (lib/http1.ts) rather than fetch or node:http: a load test sends every request through
// here; fetch's streams, Headers and AbortSignals cost the generator about a fifth of its CPU, and node:http's
// ClientRequest, streams and agent more than lib/http1.ts (figures there).

/** One HTTP exchange, no redirects followed; rejects with the reason (refused, reset, no answer in time). */
export async function exchange(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Uint8Array | undefined,
  { timeoutMs, maxResponseBytes }: { timeoutMs: number; maxResponseBytes: number },
): Promise<Answer> {
  const tooLarge = (declared: number | null) =>
    `the answer is larger than the limit of ${bytes(maxResponseBytes)} (${
      declared === null ? "more than that arrived" : `Content-Length ${bytes(declared)}`
    }; maxResponseBytes)`;
  const answer = await send(url, method, headers, body, { timeoutMs, maxBodyBytes: maxResponseBytes, tooLarge });
  return {
    status: answer.status,
    statusText: answer.statusText,
    headers: answer.headers,
    body: decompress(answer.body, answer.headers["content-encoding"], maxResponseBytes),
    wireBytes: answer.body.length,
  };
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
