/**
 * A browser's cookie jar, after RFC 6265 (and 6265bis where it is stricter): each cookie belongs to a
 * host (host-only) or a domain (`Domain=`), a path and a name, and goes only where those match, over
 * https only when `Secure`, until it expires. So a session cookie set by one test host is never sent to
 * another, and another host cannot plant one for it.
 *
 *   const jar = new CookieJar();
 *   jar.store(new URL("http://127.0.0.1:8080/myapp/login"), ["sid=abc; Path=/myapp/; HttpOnly"]);
 *   jar.header(new URL("http://127.0.0.1:8080/myapp/forum"));   // "sid=abc"
 *
 * Not done: the public suffix list (a `Domain=` without a dot that is not the host itself is refused,
 * which covers `com` and `localhost`, not `co.uk`); SameSite (it restricts what a page on another site
 * can send, and these sessions follow no links from other sites).
 */

export interface Cookie {
  name: string;
  value: string;
  /** The host it was set by (host-only) or the `Domain=` it covers, lower case. */
  domain: string;
  hostOnly: boolean;
  path: string;
  secure: boolean;
  httpOnly: boolean;
  /** Epoch milliseconds; Infinity for a cookie that lasts as long as the session. */
  expiresAt: number;
  /** When it was first stored: same-length paths are sent oldest first. */
  created: number;
}

const IP_ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}|\[[\da-f:.]+\])$/i;
let sequence = 0;

export class CookieJar {
  /** By name, domain and path: the key RFC 6265 replaces a cookie by. */
  private readonly cookies = new Map<string, Cookie>();
  /** The cookies in the order they are sent (longest path first, then oldest), rebuilt when the jar changes. */
  private ordered: Cookie[] | null = null;

  /** Keeps what the `Set-Cookie` headers of an answer from `url` say; ignores what they may not set. */
  store(url: URL, setCookies: string[]): void {
    const host = hostOf(url);
    for (const header of setCookies) {
      const cookie = parseSetCookie(header, url, host);
      if (!cookie) continue;
      const key = `${cookie.name}\n${cookie.domain}\n${cookie.path}`;
      const old = this.cookies.get(key);
      if (old) cookie.created = old.created;
      if (cookie.expiresAt <= Date.now()) this.cookies.delete(key);
      else this.cookies.set(key, cookie);
      this.ordered = null;
    }
  }

  /** The `Cookie` header for a request to `url`: the cookies that match its host, path and scheme. */
  header(url: URL): string {
    const host = hostOf(url);
    const now = Date.now();
    const secure = url.protocol === "https:";
    this.ordered ??= [...this.cookies.values()].sort((a, b) => b.path.length - a.path.length || a.created - b.created);
    let header = "";
    for (const cookie of this.ordered) {
      if (cookie.expiresAt <= now) {
        this.cookies.delete(`${cookie.name}\n${cookie.domain}\n${cookie.path}`);
        this.ordered = null;
      } else if (
        (cookie.hostOnly ? host === cookie.domain : domainMatches(host, cookie.domain)) &&
        pathMatches(url.pathname, cookie.path) && (secure || !cookie.secure)
      ) header += `${header ? "; " : ""}${cookie.name}=${cookie.value}`;
    }
    return header;
  }

  /** Cookies a person typed, as the seed passed them around: host-only for `url`'s host, under its path. */
  add(url: URL, pairs: Map<string, string>): void {
    for (const [name, value] of pairs) this.store(url, [`${name}=${value}; Path=${url.pathname}`]);
  }

  /** The first live cookie called `name`, whatever its host and path (for tests and benchmarks). */
  get(name: string): Cookie | undefined {
    const now = Date.now();
    return [...this.cookies.values()].find((c) => c.name === name && c.expiresAt > now);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }
}

function hostOf(url: URL): string {
  return url.hostname.toLowerCase();
}

/** One `Set-Cookie` header as RFC 6265 section 5.2-5.3 reads it, or null when it must be ignored. */
function parseSetCookie(header: string, url: URL, host: string): Cookie | null {
  const [pair, ...attributes] = header.split(";");
  const eq = pair.indexOf("=");
  if (eq <= 0) return null;
  const cookie: Cookie = {
    name: pair.slice(0, eq).trim(),
    value: pair.slice(eq + 1).trim(),
    domain: host,
    hostOnly: true,
    path: defaultPath(url),
    secure: false,
    httpOnly: false,
    expiresAt: Infinity,
    created: ++sequence,
  };
  if (!cookie.name) return null;
  let maxAge: number | undefined;
  let expires: number | undefined;
  for (const attribute of attributes) {
    const at = attribute.indexOf("=");
    const key = (at < 0 ? attribute : attribute.slice(0, at)).trim().toLowerCase();
    const value = at < 0 ? "" : attribute.slice(at + 1).trim();
    if (key === "max-age" && /^-?\d+$/.test(value)) maxAge = Number(value);
    else if (key === "expires" && !Number.isNaN(Date.parse(value))) expires = Date.parse(value);
    else if (key === "path") cookie.path = value.startsWith("/") ? value : defaultPath(url);
    else if (key === "secure") cookie.secure = true;
    else if (key === "httponly") cookie.httpOnly = true;
    else if (key === "domain" && value) {
      const domain = value.replace(/^\./, "").toLowerCase();
      if (domain !== host) {
        // Another host's domain, a bare name (a public suffix such as "com"), or any domain from an IP address.
        if (IP_ADDRESS.test(host) || !domain.includes(".") || !domainMatches(host, domain)) return null;
        cookie.domain = domain;
        cookie.hostOnly = false;
      }
    }
  }
  // Max-Age wins over Expires; zero or less means now.
  if (maxAge !== undefined) cookie.expiresAt = maxAge <= 0 ? 0 : Date.now() + maxAge * 1000;
  else if (expires !== undefined) cookie.expiresAt = expires;
  // A page over http may not set a Secure cookie (RFC 6265bis, "leave secure cookies alone").
  if (cookie.secure && url.protocol !== "https:") return null;
  return cookie;
}

/** The directory of the request's path: where a cookie without `Path=` applies. */
function defaultPath(url: URL): string {
  const slash = url.pathname.lastIndexOf("/");
  return slash <= 0 ? "/" : url.pathname.slice(0, slash);
}

function domainMatches(host: string, domain: string): boolean {
  return host === domain || (host.endsWith(`.${domain}`) && !IP_ADDRESS.test(host));
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  return requestPath === cookiePath || (requestPath.startsWith(cookiePath) &&
    (cookiePath.endsWith("/") || requestPath[cookiePath.length] === "/"));
}
