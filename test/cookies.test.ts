// The cookie jar, after RFC 6265: which cookies go where. Hosts here are names only; nothing is sent.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CookieJar } from "../lib/cookies.ts";

const at = (url: string) => new URL(url);

test("a cookie without Domain= goes back only to the host that set it", () => {
  const jar = new CookieJar();
  jar.store(at("http://app.example.test/login"), ["sid=1; Path=/"]);
  assert.equal(jar.header(at("http://app.example.test/x")), "sid=1");
  assert.equal(jar.header(at("http://other.example.test/x")), "");
  assert.equal(jar.header(at("http://sub.app.example.test/x")), "");
});

test("Domain= shares a cookie with the domain's hosts, and no host may set one for another domain", () => {
  const jar = new CookieJar();
  jar.store(at("http://a.example.test/"), ["shared=1; Domain=.example.test; Path=/", "evil=1; Domain=other.test"]);
  jar.store(at("http://a.example.test/"), ["tld=1; Domain=test", "sub=1; Domain=b.example.test"]);
  assert.equal(jar.header(at("http://b.example.test/")), "shared=1");
  assert.equal(jar.header(at("http://example.test/")), "shared=1");
  assert.equal(jar.header(at("http://other.test/")), "");
  assert.equal(jar.header(at("http://c.test/")), "");
});

test("an IP address host takes no Domain= but its own, and shares nothing with other addresses", () => {
  const jar = new CookieJar();
  jar.store(at("http://127.0.0.1:8080/"), ["a=1; Domain=0.0.1", "b=2; Domain=127.0.0.1; Path=/"]);
  assert.equal(jar.header(at("http://127.0.0.1:9090/")), "b=2");
  assert.equal(jar.header(at("http://127.0.0.2:8080/")), "");
});

test("Secure cookies go only over https, and a page over http cannot set one", () => {
  const jar = new CookieJar();
  jar.store(at("https://app.example.test/"), ["s=1; Secure; Path=/", "p=2; Path=/"]);
  jar.store(at("http://app.example.test/"), ["s=forged; Secure; Path=/"]);
  assert.equal(jar.header(at("https://app.example.test/")), "s=1; p=2");
  assert.equal(jar.header(at("http://app.example.test/")), "p=2");
});

test("same name on two paths: both kept, the longer path first; a path does not match its prefix's siblings", () => {
  const jar = new CookieJar();
  jar.store(at("http://h.test/"), ["id=root; Path=/", "id=app; Path=/app"]);
  assert.equal(jar.header(at("http://h.test/app/page")), "id=app; id=root");
  assert.equal(jar.header(at("http://h.test/apple")), "id=root");
  jar.store(at("http://h.test/app/login"), ["d=1"]);
  // d's path is the directory of /app/login: /app, as long as id=app's, and stored later.
  assert.equal(jar.header(at("http://h.test/app/x")), "id=app; d=1; id=root");
  assert.equal(jar.header(at("http://h.test/x")), "id=root");
});

test("expiry: Max-Age wins over Expires, zero or a past date removes, a future date keeps", () => {
  const jar = new CookieJar();
  const past = new Date(Date.now() - 60_000).toUTCString();
  const future = new Date(Date.now() + 60_000).toUTCString();
  jar.store(at("http://h.test/"), [
    "a=1; Path=/",
    "b=2; Path=/; Expires=" + future,
    "c=3; Path=/; Max-Age=60; Expires=" + past,
  ]);
  assert.equal(jar.header(at("http://h.test/")), "a=1; b=2; c=3");
  jar.store(at("http://h.test/"), ["a=; Path=/; Max-Age=0", "b=; Path=/; Expires=" + past]);
  assert.equal(jar.header(at("http://h.test/")), "c=3");
  assert.equal(jar.has("a"), false);
});
