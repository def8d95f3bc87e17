// lib/http1.ts against a raw TCP server on a free loopback port that answers each request with the bytes a
// test gives it, written in pieces, so that every framing and every malformed answer meets the client as a
// real server would send it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import { promisify } from "node:util";
import { send } from "../lib/http1.ts";
import { createSession, fetchPage } from "../lib/fetchData.ts";
import { runtimeCommand } from "../lib/process.ts";

type Play = (socket: Socket, request: string) => void;

let server: Server;
let base: string;
const plays = new Map<string, Play>();
/** The requests the server read, whole, and the connection each came on. */
const seen: { request: string; connection: number }[] = [];
let connections = 0;

before(async () => {
  server = createServer((socket) => {
    const connection = ++connections;
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      const request = buffered.slice(0, end + 4);
      buffered = buffered.slice(end + 4);
      seen.push({ request, connection });
      const path = request.split(" ")[1];
      (plays.get(path) ?? ((s) => s.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")))(socket, request);
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise((resolve) => server.close(resolve)));

const options = { timeoutMs: 2000, maxBodyBytes: 1000, tooLarge: (n: number | null) => `too large: ${n}` };
const get = (path: string, headers: Record<string, string> = {}) =>
  send(new URL(base + path), "GET", headers, undefined, options);

/** Writes `parts` one after another, each in its own packet (as far as loopback allows). */
function inPieces(socket: Socket, parts: string[]) {
  let i = 0;
  const next = () => {
    if (i < parts.length) socket.write(parts[i++], "latin1", () => setTimeout(next, 2));
  };
  next();
}

describe("lib/http1.ts reads an answer however the server frames it", () => {
  test("Content-Length, the head and body cut anywhere, and the connection kept for the next request", async () => {
    const answer = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 11\r\n\r\nhello world";
    plays.set("/length", (socket) => inPieces(socket, [...answer].map((_, i) => answer[i])));
    const first = await get("/length");
    const second = await get("/length");
    assert.equal(first.status, 200);
    assert.equal(first.statusText, "OK");
    assert.equal(first.body.toString(), "hello world");
    assert.equal(second.body.toString(), "hello world");
    const [a, b] = seen.filter((s) => s.request.startsWith("GET /length")).map((s) => s.connection);
    assert.equal(a, b, "the second request went over the same connection");
  });

  test("chunked, with chunk extensions and trailers, split across packets", async () => {
    plays.set("/chunked", (socket) =>
      inPieces(socket, [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel",
        "lo\r\n",
        "6\r\n world\r\n0\r\nX-Trailer: yes\r\n",
        "\r\n",
      ]));
    assert.equal((await get("/chunked")).body.toString(), "hello world");
  });

  test("informational answers are skipped; 204 and 304 have no body", async () => {
    plays.set(
      "/early",
      (s) =>
        s.write("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    );
    plays.set("/none", (s) => s.write("HTTP/1.1 204 No Content\r\n\r\n"));
    assert.equal((await get("/early")).body.toString(), "ok");
    const none = await get("/none");
    assert.equal(none.status, 204);
    assert.equal(none.body.length, 0);
  });

  test("without a length, the body runs to the close; HTTP/1.0 and Connection: close end the connection", async () => {
    plays.set("/close", (s) => s.end("HTTP/1.0 200 OK\r\n\r\nall of it"));
    plays.set("/closing", (s) => s.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"));
    assert.equal((await get("/close")).body.toString(), "all of it");
    await get("/closing");
    await get("/closing");
    const [a, b] = seen.filter((s) => s.request.startsWith("GET /closing")).map((s) => s.connection);
    assert.notEqual(a, b, "a connection the server said it closes is not used again");
  });

  test("answers arriving at once on many connections, each in pieces, each keep their own bytes", async () => {
    // Every framing keeps bytes across reads: the head cut, a Content-Length body, chunks, a body to the close.
    const body = (n: number) => `${["length", "chunked", "close"][n % 3]}-${String(n).padStart(7, "0")}`;
    const answers = (n: number) => [
      `HTTP/1.1 200 OK\r\nContent-Length: ${body(n).length}\r\n\r\n${body(n)}`,
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n${body(n).slice(0, 6)}\r\n${
        (body(n).length - 6).toString(16)
      }\r\n${body(n).slice(6)}\r\n0\r\n\r\n`,
      `HTTP/1.0 200 OK\r\n\r\n${body(n)}`,
    ];
    for (let n = 0; n < 30; n++) {
      // The server closes each connection once it has answered: the answer framed by the close needs it, and
      // the others' connections then do not outlive the test.
      plays.set(`/mixed-${n}`, (socket) => {
        inPieces(socket, answers(n)[n % 3].match(/[^]{1,5}/g)!);
        setTimeout(() => socket.end(), 200);
      });
    }
    const bodies = await Promise.all(Array.from({ length: 30 }, (_, n) => get(`/mixed-${n}`)));
    assert.deepEqual(
      bodies.map((b) => b.body.toString()),
      Array.from({ length: 30 }, (_, n) => body(n)),
    );
  });

  test("headers fold as node:http folds them: Set-Cookie a list, Content-Type the first, others joined", async () => {
    plays.set("/headers", (s) =>
      s.write(
        "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Type: text/html\r\n" +
          "Content-Type: text/plain\r\nVary: a\r\nVary: b\r\n__proto__: x\r\nContent-Length: 0\r\n\r\n",
      ));
    const { headers } = await get("/headers");
    assert.deepEqual(headers["set-cookie"], ["a=1", "b=2"]);
    assert.equal(headers["content-type"], "text/html");
    assert.equal(headers["vary"], "a, b");
    assert.equal(headers["__proto__"], "x");
  });

  test("the request carries Host, the headers as given and Connection: keep-alive, and a body after them", async () => {
    plays.set("/echo?q", (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    const body = new TextEncoder().encode("a=1");
    await send(new URL(base + "/echo?q"), "POST", { "content-length": "3" }, body, options);
    const request = seen.filter((s) => s.request.startsWith("POST /echo"))[0].request;
    assert.equal(
      request,
      `POST /echo?q HTTP/1.1\r\nHost: ${new URL(base).host}\r\ncontent-length: 3\r\nConnection: keep-alive\r\n\r\n`,
    );
  });
});

describe("lib/http1.ts names what is wrong with an answer, and sends nothing it should not", () => {
  const fails = async (path: string, play: Play, message: RegExp) => {
    plays.set(path, play);
    await assert.rejects(get(path), message);
  };

  test("an answer that is not HTTP", () =>
    fails(
      "/garbage",
      (s) => s.end("SSH-2.0-OpenSSH_9.6\r\n\r\n"),
      /not HTTP\/1\.x: it begins "SSH-2\.0-OpenSSH_9\.6"/,
    ));

  test("a malformed header line", () =>
    fails(
      "/header",
      (s) => s.end("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"),
      /malformed header line: "no colon here"/,
    ));

  test("a Content-Length that is not a number", () =>
    fails(
      "/cl",
      (s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n"),
      /Content-Length is not a number: "12x"/,
    ));

  test("a malformed chunk size", () =>
    fails(
      "/chunk",
      (s) => s.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
      /chunked body is malformed: "zz"/,
    ));

  test("a connection closed before the body ended says how much came", () =>
    fails(
      "/short",
      (s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
      /closed the connection after 3 of the answer's 10 bytes/,
    ));

  test("headers without end", () =>
    fails(
      "/endless",
      (s) => s.write(`HTTP/1.1 200 OK\r\nX: ${"a".repeat(20_000)}`),
      /headers are larger than 16384 bytes/,
    ));

  test("a body over the limit, declared or arriving", async () => {
    await fails("/declared", (s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"), /too large: 5000/);
    await fails(
      "/arriving",
      (s) => s.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n${"a".repeat(2000)}\r\n0\r\n\r\n`),
      /too large: null/,
    );
  });

  test("no answer in time", () => fails("/silent", () => {}, /no answer within 2000 ms/));

  test("a header value with a line break is refused before anything is sent", async () => {
    const before = seen.length;
    await assert.rejects(get("/x", { "user-agent": "a\r\nX-Injected: 1" }), /the header "user-agent" has a character/);
    assert.equal(seen.length, before);
  });
});

test("a kept-alive connection the server closed while idle is replaced, and the page still loads", async () => {
  plays.set("/then-close", (s) => {
    s.write(
      "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 4\r\n\r\n<p>x",
      () => setTimeout(() => s.destroy(), 20),
    );
  });
  const session = createSession(base + "/");
  await fetchPage(session, "then-close");
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal((await fetchPage(session, "then-close")).body, "<p>x");
});

describe("over TLS", () => {
  // A certificate for localhost and 127.0.0.1, made once for these tests (openssl req -x509, 100 years).
  const cert = new URL("./fixtures/tls-localhost.crt", import.meta.url);
  const key = new URL("./fixtures/tls-localhost.key", import.meta.url);
  let tls: ReturnType<typeof createHttpsServer>;
  let origin: string;
  let connections = 0;

  before(async () => {
    tls = createHttpsServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
      res.setHeader("content-type", "text/html");
      res.end(`<p>secret ${req.url}</p>`);
    });
    tls.on("secureConnection", () => connections++);
    await new Promise<void>((resolve) => tls.listen(0, "127.0.0.1", resolve));
    origin = `https://localhost:${(tls.address() as AddressInfo).port}`;
  });
  after(() => new Promise((resolve) => tls.close(resolve)));

  test("a certificate the machine does not trust fails the request, naming the URL and why", async () => {
    await assert.rejects(
      fetchPage(createSession(origin + "/"), "x"),
      /GET https:\/\/localhost:\d+\/x failed: .*self[- ]signed/i,
    );
  });

  // Deno's node:tls trusts neither DENO_CERT nor --cert (a Deno child given either still answered "self-signed
  // certificate" here), and tier 3 takes no certificate of its own: under Deno only the refusal is tested.
  const trusting = process.versions.deno ? test.skip : test;
  trusting("a trusted one (NODE_EXTRA_CA_CERTS) carries the pages over one connection kept alive", async () => {
    const script = new URL("./fixtures/fetch-twice.ts", import.meta.url).pathname;
    const [command, ...args] = runtimeCommand(script, [origin + "/"]);
    const before = connections;
    const { stdout } = await promisify(execFile)(command, args, {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: cert.pathname },
    });
    assert.equal(stdout, "<p>secret /a</p> <p>secret /b</p>\n");
    assert.equal(connections - before, 1);
  });
});
