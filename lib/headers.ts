/**
 * The headers a browser's navigation sends, as Chromium sends them (test/forms-chromium.test.ts compares their
 * names): tier 3's requests carry them, so an application sees a browser and a load test measures traffic
 * browsers make.
 *
 *   const headers = browserHeaders({ userAgent, acceptLanguage, cookie }, target, "GET", "none", undefined, undefined);
 */
import type { IncomingHttpHeaders } from "node:http";

/** What a page tells the next request it leads to: its URL and its headers (Referrer-Policy). */
export interface PageSeen {
  url: string;
  headers: IncomingHttpHeaders;
}

export type FetchSite = "none" | "same-origin" | "same-site" | "cross-site";

const PLATFORMS: Record<string, string> = { darwin: "macOS", linux: "Linux", win32: "Windows", freebsd: "FreeBSD" };
const CLIENT_HINTS = {
  "sec-ch-ua": '"tierload";v="0"',
  "sec-ch-ua-mobile": "?0",
  "sec-ch-ua-platform": `"${PLATFORMS[process.platform] ?? "Unknown"}"`,
};

/**
 * The headers Chromium sends for a navigation (test/forms-chromium.test.ts compares their names): User-Agent,
 * Accept, Accept-Encoding, Accept-Language, Upgrade-Insecure-Requests, the cookies; for a form's POST, Origin
 * and Cache-Control; from a page, its Referer under its Referrer-Policy; and to a secure origin (https, or this
 * machine) the fetch metadata and client hints, which browsers send nowhere else.
 */
export function browserHeaders(
  session: { userAgent: string; acceptLanguage: string; cookie: string },
  target: URL,
  method: string,
  site: FetchSite,
  from: PageSeen | undefined,
  initiator: URL | undefined,
): Record<string, string> {
  const headers: Record<string, string> = {};
  if (method === "POST") headers["cache-control"] = "max-age=0";
  const secure = isTrustworthy(target);
  if (secure) Object.assign(headers, CLIENT_HINTS);
  headers["upgrade-insecure-requests"] = "1";
  headers["user-agent"] = session.userAgent;
  if (method === "POST" && initiator) headers.origin = initiator.origin;
  headers.accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
  if (secure) {
    headers["sec-fetch-site"] = site;
    headers["sec-fetch-mode"] = "navigate";
    headers["sec-fetch-user"] = "?1";
    headers["sec-fetch-dest"] = "document";
  }
  const referrer = from ? referrerFor(from, target) : undefined;
  if (referrer) headers.referer = referrer;
  headers["accept-encoding"] = "gzip, deflate, br";
  headers["accept-language"] = session.acceptLanguage;
  if (session.cookie) headers.cookie = session.cookie;
  return headers;
}

/** Whether browsers treat the origin as secure: https, or a loopback host. */
function isTrustworthy(url: URL): boolean {
  if (url.protocol === "https:" || url.protocol === "wss:") return true;
  const host = url.hostname;
  return host === "localhost" || host.endsWith(".localhost") || /^127\.\d+\.\d+\.\d+$/.test(host) || host === "[::1]";
}

/** The site of `target` seen from `initiator`; hosts share a site when their last two labels agree. */
export function fetchSite(initiator: URL, target: URL): FetchSite {
  if (initiator.origin === target.origin) return "same-origin";
  const site = (url: URL) =>
    /^[\d.]+$|^\[/.test(url.hostname) ? url.hostname : url.hostname.split(".").slice(-2).join(".");
  return initiator.protocol === target.protocol && site(initiator) === site(target) ? "same-site" : "cross-site";
}

export function worstSite(a: FetchSite, b: FetchSite): FetchSite {
  const order: FetchSite[] = ["none", "same-origin", "same-site", "cross-site"];
  return order[Math.max(order.indexOf(a), order.indexOf(b))];
}

const REFERRER_POLICIES = new Set([
  "no-referrer",
  "no-referrer-when-downgrade",
  "same-origin",
  "origin",
  "strict-origin",
  "origin-when-cross-origin",
  "strict-origin-when-cross-origin",
  "unsafe-url",
]);

/** The Referer a page's form sends to `target`, by the page's Referrer-Policy (default strict-origin-when-cross-origin). */
function referrerFor(from: PageSeen, target: URL): string | undefined {
  const header = String(from.headers["referrer-policy"] ?? "");
  const policy = header.split(",").map((t) => t.trim().toLowerCase()).filter((t) => REFERRER_POLICIES.has(t)).pop() ??
    "strict-origin-when-cross-origin";
  const page = new URL(from.url);
  page.hash = "";
  page.username = page.password = "";
  const full = page.href;
  const origin = page.origin + "/";
  const sameOrigin = page.origin === target.origin;
  const downgrade = page.protocol === "https:" && target.protocol !== "https:";
  switch (policy) {
    case "no-referrer":
      return undefined;
    case "unsafe-url":
      return full;
    case "origin":
      return origin;
    case "same-origin":
      return sameOrigin ? full : undefined;
    case "strict-origin":
      return downgrade ? undefined : origin;
    case "origin-when-cross-origin":
      return sameOrigin ? full : origin;
    case "no-referrer-when-downgrade":
      return downgrade ? undefined : full;
    default:
      return sameOrigin ? full : downgrade ? undefined : origin;
  }
}
