/**
 * Tier 3: the workhorses. Everything this project knows about HTTP and HTML lives here.
 *
 *   const session = createSession("http://localhost:8080/myapp/");
 *   const n = await fetchData(session, "forum?id=1", "count(//html:tr[@class='thread'])");
 *
 * Pages are parsed the way a browser parses them (parse5 runs the WHATWG tree construction and
 * builds linkedom nodes directly), and XPath 1.0 queries run on the result with the prefix `html`
 * bound to the XHTML namespace. Values go into queries as variables (`text()=$title`), never by
 * string formatting.
 */
import { Agent as HttpAgent, type IncomingHttpHeaders, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { DOMParser } from "linkedom";
import { type DefaultTreeAdapterMap, parse as parseHtml5, type Token, type TreeAdapter } from "parse5";
import xpath from "xpath";

export const XHTML_NAMESPACE = "http://www.w3.org/1999/xhtml";

// ---------------------------------------------------------------------------------------------
// Sessions and cookies
// ---------------------------------------------------------------------------------------------

/** One request as the session saw it: what a load test records for each page load. */
export interface RequestRecord {
  method: string;
  url: string;
  status: number;
  ms: number;
  error?: Error;
}

interface Cookie {
  value: string;
  path: string;
  expiresAt: number;
}

/** A browser-like user: a base URL, a cookie jar, a timeout, and an optional request observer. */
export interface Session {
  baseUrl: string;
  cookies: Map<string, Cookie>;
  timeoutMs: number;
  onRequest?: (record: RequestRecord) => void;
}

export interface SessionOptions {
  /** Milliseconds before a request (each hop of a redirect) is abandoned. Default 30 000. */
  timeoutMs?: number;
  /** A raw `Cookie` header to start with, as in the seed: `"sid=abc; lang=en"`. */
  cookie?: string;
  onRequest?: (record: RequestRecord) => void;
}

/** A session for an application at `baseUrl`; relative URLs resolve against it. */
export function createSession(baseUrl: string, options: SessionOptions = {}): Session {
  const session: Session = {
    baseUrl: new URL(baseUrl).href,
    cookies: new Map(),
    timeoutMs: options.timeoutMs ?? 30_000,
    onRequest: options.onRequest,
  };
  for (const pair of (options.cookie ?? "").split(";")) {
    const eq = pair.indexOf("=");
    if (eq > 0) {
      session.cookies.set(pair.slice(0, eq).trim(), {
        value: pair.slice(eq + 1).trim(),
        path: "/",
        expiresAt: Infinity,
      });
    }
  }
  return session;
}

/** A session, or a raw cookie string as the seed passed around (then URLs must be absolute). */
export type SessionLike = Session | string;

function toSession(session: SessionLike, url: string): Session {
  if (typeof session !== "string") return session;
  return createSession(new URL(url).origin + "/", { cookie: session });
}

/** The `Cookie` header this session sends to `url`, or "" when it has none for that path. */
export function cookieHeader(session: Session, url: URL): string {
  const now = Date.now();
  const pairs: string[] = [];
  for (const [name, cookie] of session.cookies) {
    if (cookie.expiresAt <= now) session.cookies.delete(name);
    else if (pathMatches(url.pathname, cookie.path)) pairs.push(`${name}=${cookie.value}`);
  }
  return pairs.join("; ");
}

function pathMatches(requestPath: string, cookiePath: string): boolean {
  return requestPath === cookiePath || (requestPath.startsWith(cookiePath) &&
    (cookiePath.endsWith("/") || requestPath[cookiePath.length] === "/"));
}

/** Keeps what `Set-Cookie` headers say: new values, and removal by `Max-Age=0` or a past `Expires`. */
export function storeCookies(session: Session, url: URL, setCookies: string[]): void {
  for (const header of setCookies) {
    const [pair, ...attributes] = header.split(";");
    const eq = pair.indexOf("=");
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    const cookie: Cookie = { value: pair.slice(eq + 1).trim(), path: defaultCookiePath(url), expiresAt: Infinity };
    for (const attribute of attributes) {
      const [key, value = ""] = attribute.split("=").map((s) => s.trim());
      const lower = key.toLowerCase();
      if (lower === "path" && value.startsWith("/")) cookie.path = value;
      else if (lower === "max-age" && /^-?\d+$/.test(value)) cookie.expiresAt = Date.now() + Number(value) * 1000;
      else if (lower === "expires" && cookie.expiresAt === Infinity) {
        const when = Date.parse(value);
        if (!Number.isNaN(when)) cookie.expiresAt = when;
      }
    }
    if (cookie.expiresAt <= Date.now()) session.cookies.delete(name);
    else session.cookies.set(name, cookie);
  }
}

function defaultCookiePath(url: URL): string {
  const slash = url.pathname.lastIndexOf("/");
  return slash <= 0 ? "/" : url.pathname.slice(0, slash);
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/** A page as the browser ended up with it: the final URL after redirects, its status and its tree. */
export interface Page {
  url: string;
  status: number;
  statusText: string;
  body: string;
  document: Document;
}

/** The server answered, but not with 200. Carries what a person needs to see why. */
export class HttpError extends Error {
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly statusText: string,
    readonly body: string,
  ) {
    super(`${method} ${url} answered ${status} ${statusText}: ${excerpt(body)}`);
    this.name = "HttpError";
  }
}

/** The request never got an answer: refused, reset, or timed out. */
export class RequestError extends Error {
  constructor(readonly method: string, readonly url: string, reason: string, options?: { cause?: unknown }) {
    super(`${method} ${url} failed: ${reason}`, options);
    this.name = "RequestError";
  }
}

/** The visible text of an HTML body, collapsed and cut to `max` characters: enough to see the message. */
export function excerpt(body: string, max = 300): string {
  const document = parseHtml(body);
  for (const hidden of Array.from(document.querySelectorAll("head, script, style, template"))) hidden.remove();
  const texts = evaluateXPath(document, "//text()") as Node[];
  const text = texts.map((node) => node.textContent).join(" ").replace(/\s+/g, " ").trim();
  return text.length > max ? text.slice(0, max - 1) + "…" : text || "(empty body)";
}

const MAX_REDIRECTS = 10;
export type Params = Record<string, string | number | boolean>;

/**
 * Sends one request the way a browser would: cookies from the session, redirects followed by hand
 * (so each hop's Set-Cookie is kept, and 303 turns a POST into a GET), a timeout on every hop.
 * Answers with the final page, whatever its status.
 */
export async function request(
  sessionLike: SessionLike,
  method: "GET" | "POST",
  url: string,
  form?: Params,
): Promise<Page> {
  const session = toSession(sessionLike, url);
  let target = new URL(url, session.baseUrl);
  let body: string | undefined = form ? new URLSearchParams(stringify(form)).toString() : undefined;
  for (let hop = 0;; hop++) {
    const started = performance.now();
    const headers: Record<string, string> = { accept: "text/html,*/*;q=0.8" };
    const cookie = cookieHeader(session, target);
    if (cookie) headers.cookie = cookie;
    if (body !== undefined) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      headers["content-length"] = String(Buffer.byteLength(body));
    }
    let response: Answer;
    try {
      response = await exchange(target, method, headers, body, session.timeoutMs);
    } catch (cause) {
      const error = new RequestError(method, target.href, (cause as Error).message, { cause });
      session.onRequest?.({ method, url: target.href, status: 0, ms: performance.now() - started, error });
      throw error;
    }
    const setCookie = response.headers["set-cookie"];
    if (setCookie) storeCookies(session, target, setCookie);
    const location = response.headers.location;
    if (response.status >= 300 && response.status < 400 && location) {
      session.onRequest?.({ method, url: target.href, status: response.status, ms: performance.now() - started });
      if (hop === MAX_REDIRECTS) {
        throw new RequestError(method, target.href, `more than ${MAX_REDIRECTS} redirects`);
      }
      target = new URL(location, target);
      if (response.status !== 307 && response.status !== 308) {
        method = "GET";
        body = undefined;
      }
      continue;
    }
    const text = decode(response.body, response.headers["content-type"] ?? null);
    session.onRequest?.({ method, url: target.href, status: response.status, ms: performance.now() - started });
    return {
      url: target.href,
      status: response.status,
      statusText: response.statusText,
      body: text,
      get document() {
        const document = parseHtml(text);
        Object.defineProperty(this, "document", { value: document });
        return document;
      },
    };
  }
}

interface Answer {
  status: number;
  statusText: string;
  headers: IncomingHttpHeaders;
  body: Uint8Array;
}

// node:http with keep-alive agents rather than fetch: a load test sends every request through here,
// and fetch's streams, Headers and AbortSignals cost the generator about a fifth of its CPU.
const agents = {
  "http:": new HttpAgent({ keepAlive: true, maxSockets: Infinity }),
  "https:": new HttpsAgent({ keepAlive: true, maxSockets: Infinity }),
};

/** One HTTP exchange, no redirects followed; rejects with the reason (refused, reset, no answer in time). */
function exchange(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  timeoutMs: number,
): Promise<Answer> {
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const agent = agents[url.protocol as keyof typeof agents];
  if (!agent) return Promise.reject(new Error(`${url.protocol} is not HTTP`));
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        clearTimeout(timer);
        resolve({
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? "",
          headers: res.headers,
          body: Buffer.concat(chunks),
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
    function fail(error: Error & { code?: string }) {
      clearTimeout(timer);
      reject(
        new Error(
          error.code && !error.message.includes(error.code) ? `${error.code}: ${error.message}` : error.message,
        ),
      );
    }
    req.on("error", fail);
    req.end(body);
  });
}

function stringify(params: Params): Record<string, string> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)]));
}

/** Decodes a body by its declared charset (header, then `<meta>` in the first 1024 bytes), as browsers do. */
export function decode(bytes: Uint8Array, contentType: string | null): string {
  let label = /charset\s*=\s*["']?([\w-]+)/i.exec(contentType ?? "")?.[1];
  if (!label) {
    const head = String.fromCharCode(...bytes.subarray(0, 1024));
    label = /<meta[^>]+charset\s*=\s*["']?([\w-]+)/i.exec(head)?.[1];
  }
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label ?? "utf-8");
  } catch {
    decoder = new TextDecoder("utf-8");
  }
  return decoder.encoding === "windows-1252" ? decodeWindows1252(bytes) : decoder.decode(bytes);
}

// Node 20's TextDecoder decodes windows-1252 (which the labels latin1 and iso-8859-1 also mean) as
// ISO-8859-1, leaving 0x80-0x9F as control characters where a browser shows € ‚ ƒ „ … “ ” and so on.
const WINDOWS_1252_HIGH = "€\x81‚ƒ„…†‡ˆ‰Š‹Œ\x8dŽ\x8f\x90‘’“”•–—˜™š›œ\x9džŸ";

function decodeWindows1252(bytes: Uint8Array): string {
  let text = "";
  for (let start = 0; start < bytes.length; start += 8192) {
    const chunk = Array.from(
      bytes.subarray(start, start + 8192),
      (b) => b >= 0x80 && b < 0xa0 ? WINDOWS_1252_HIGH.charCodeAt(b - 0x80) : b,
    );
    text += String.fromCharCode(...chunk);
  }
  return text;
}

function ensureOk(method: string, page: Page): Page {
  if (page.status !== 200) throw new HttpError(method, page.url, page.status, page.statusText, page.body);
  return page;
}

/** GETs `url` (with `params` in the query string) and throws an `HttpError` unless the final answer is 200. */
export async function fetchPage(session: SessionLike, url: string, params?: Params): Promise<Page> {
  return ensureOk("GET", await request(session, "GET", withParams(url, params)));
}

/** POSTs `form` urlencoded, follows the 303 like a browser, and throws unless the final page is a 200. */
export async function post(session: SessionLike, url: string, form: Params): Promise<Page> {
  return ensureOk("POST", await request(session, "POST", url, form));
}

function withParams(url: string, params?: Params): string {
  if (!params || Object.keys(params).length === 0) return url;
  const query = new URLSearchParams(stringify(params)).toString();
  return url + (url.includes("?") ? "&" : "?") + query;
}

/**
 * Submits a form the way a browser does: the page's form found by `formQuery`, its successful
 * controls (hidden fields such as a CSRF token included) overridden by `values`, posted to its action.
 */
export async function submitForm(session: SessionLike, page: Page, formQuery: string, values: Params): Promise<Page> {
  const forms = evaluateXPath(page.document, formQuery);
  if (!Array.isArray(forms) || forms.length !== 1) {
    throw new Error(`Cannot submit the form ${formQuery} on ${page.url}: found ${describeCount(forms)}`);
  }
  const form = forms[0] as Element;
  const fields: Params = {};
  for (const control of Array.from(form.querySelectorAll("input[name], textarea[name], select[name]"))) {
    const type = (control.getAttribute("type") ?? "text").toLowerCase();
    if (control.hasAttribute("disabled") || ["submit", "button", "image", "reset", "file"].includes(type)) continue;
    if ((type === "checkbox" || type === "radio") && !control.hasAttribute("checked")) continue;
    const value = control.localName === "textarea" ? control.textContent ?? "" : control.getAttribute("value") ?? "";
    fields[control.getAttribute("name")!] = value;
  }
  const action = new URL(form.getAttribute("action") ?? "", page.url).href;
  const method = (form.getAttribute("method") ?? "get").toLowerCase();
  const merged = { ...fields, ...values };
  return await (method === "post" ? post(session, action, merged) : fetchPage(session, action, merged));
}

function describeCount(value: XPathValue): string {
  return Array.isArray(value) ? `${value.length} matches` : `a ${typeof value}, not a node`;
}

// ---------------------------------------------------------------------------------------------
// fetchData: the seed's workhorse
// ---------------------------------------------------------------------------------------------

export type XPathValue = number | string | boolean | Node[];
export type Variables = Record<string, string | number | boolean>;

/**
 * GETs a page and answers an XPath query on it, cut down by `regex` when given (then the result is
 * the list of matches, with their groups, of the nodes whose value matched).
 */
export async function fetchData(session: SessionLike, url: string, xpathQuery: string): Promise<XPathValue>;
export async function fetchData(
  session: SessionLike,
  url: string,
  xpathQuery: string,
  regex: RegExp | string,
  params?: Params,
  variables?: Variables,
): Promise<RegExpExecArray[]>;
export async function fetchData(
  session: SessionLike,
  url: string,
  xpathQuery: string,
  regex?: RegExp | string,
  params?: Params,
  variables?: Variables,
): Promise<XPathValue | RegExpExecArray[]>;
export async function fetchData(
  session: SessionLike,
  url: string,
  xpathQuery: string,
  regex?: RegExp | string,
  params?: Params,
  variables?: Variables,
): Promise<XPathValue | RegExpExecArray[]> {
  const page = await fetchPage(session, url, params);
  const value = evaluateXPath(page.document, xpathQuery, variables);
  return regex === undefined ? value : matchAll(value, regex);
}

/**
 * Like `fetchData`, but expects exactly one result and answers its text: the regex's first group
 * (or whole match) when a regex is given, else the node's string value. Anything else throws an
 * error naming the URL, the query and the regex.
 */
export async function fetchOne(
  session: SessionLike,
  url: string,
  xpathQuery: string,
  regex?: RegExp | string,
  params?: Params,
  variables?: Variables,
): Promise<string> {
  const page = await fetchPage(session, url, params);
  return queryOne(page, xpathQuery, regex, variables);
}

/** The one answer to `xpathQuery` (cut by `regex`) on a page already fetched; see `fetchOne`. */
export function queryOne(page: Page, xpathQuery: string, regex?: RegExp | string, variables?: Variables): string {
  const value = evaluateXPath(page.document, xpathQuery, variables);
  const found = regex === undefined
    ? (Array.isArray(value) ? value.map(stringValue) : [String(value)])
    : matchAll(value, regex).map((m) => m[1] ?? m[0]);
  if (found.length !== 1) {
    const what = regex === undefined ? "" : ` cut by ${String(regex)}`;
    const vars = variables ? ` with ${JSON.stringify(variables)}` : "";
    throw new Error(
      `Expected exactly one result on ${page.url} for ${xpathQuery}${what}${vars}, found ${found.length}` +
        (found.length
          ? `: ${found.slice(0, 5).map((s) => JSON.stringify(s)).join(", ")}`
          : `. The page says: ${excerpt(page.body, 200)}`),
    );
  }
  return found[0];
}

/** The trimmed string value of every node `xpathQuery` selects on a page already fetched. */
export function queryAll(page: Page, xpathQuery: string, variables?: Variables): string[] {
  const value = evaluateXPath(page.document, xpathQuery, variables);
  return (Array.isArray(value) ? value.map(stringValue) : [String(value)]).map((text) => text.trim());
}

/** The seed's regex stage: each value matched against `regex`; the matches, with groups, of those that matched. */
export function matchAll(value: XPathValue, regex: RegExp | string): RegExpExecArray[] {
  const pattern = typeof regex === "string"
    ? new RegExp(regex)
    : new RegExp(regex.source, regex.flags.replace("g", ""));
  const texts = Array.isArray(value) ? value.map(stringValue) : [String(value)];
  return texts.map((text) => pattern.exec(text)).filter((m): m is RegExpExecArray => m !== null);
}

/** A node's XPath string value: an attribute's value, an element's text, a text node's data. */
export function stringValue(node: Node): string {
  return node.nodeType === 2 ? (node as Attr).value : node.textContent ?? "";
}

// ---------------------------------------------------------------------------------------------
// HTML parsing: parse5's WHATWG tree construction building linkedom nodes
// ---------------------------------------------------------------------------------------------

// linkedom keeps a document as one doubly linked list (element start, its attributes, its children,
// its end marker). Building that list directly, as linkedom's own parser does, is what makes parsing
// cheap; the public appendChild checks and notifies on every call. The list's links are symbols that
// linkedom does not export, so they are found by name on a probe node, once.
// deno-lint-ignore no-explicit-any
type Linked = any;
const probe: Linked = new DOMParser().parseFromString("", "text/html");
const probeElement: Linked = probe.createElement("p");
probe.doctype = "html";

function linkedomSymbol(target: object, name: string): symbol {
  const found = Object.getOwnPropertySymbols(target).find((s) => s.description === name);
  if (!found) {
    throw new Error(`parseHtml: this linkedom version has no "${name}" link; lib/fetchData.ts needs updating`);
  }
  return found;
}
const NEXT = linkedomSymbol(probeElement, "next");
const PREV = linkedomSymbol(probeElement, "prev");
const END = linkedomSymbol(probeElement, "end");
const START = linkedomSymbol(probeElement[END], "start");
const VALUE = linkedomSymbol(probe.createTextNode(""), "value");
const CONTENT = linkedomSymbol(probe.createElement("template"), "content");
const DOCTYPE = linkedomSymbol(probe, "doctype");
const DocumentType = (probe.doctype as object).constructor as new (
  doc: Document,
  name: string,
  publicId: string,
  systemId: string,
) => DocumentType;

const TEXT_NODE = 3;
const ELEMENT_NODE = 1;
const SVG_NAMESPACE = "http://www.w3.org/2000/svg";

function lastChild(parent: Linked): Linked {
  const last = parent[END][PREV];
  return last === parent ? null : last;
}

/** Appends a detached node (and its subtree) at the end of `parent`, as linkedom's parser does. */
function append(parent: Linked, node: Linked): void {
  const end = parent[END];
  const prev = end[PREV];
  const nodeEnd = node.nodeType === ELEMENT_NODE ? node[END] : node;
  node.parentNode = parent;
  prev[NEXT] = node;
  node[PREV] = prev;
  nodeEnd[NEXT] = end;
  end[PREV] = nodeEnd;
}

// linkedom's node constructors register every node in a module-level WeakMap (for event listeners),
// and a WeakMap with one entry per node makes garbage collection superlinear: 1000 rows parsed 7x
// slower than parse5 alone. A parsed page is for reading, so its nodes are made by the constructors
// below: linkedom's prototypes, linkedom's fields in linkedom's order, no registration. They are
// checked against nodes linkedom made itself; should a linkedom release change its fields, parsing
// falls back to linkedom's own constructors (slower, still right). The price: nodes of a parsed page
// take no addEventListener.
const PRIVATE = linkedomSymbol(probeElement, "private");
const CLASS_LIST = linkedomSymbol(probeElement, "classList");
const DATASET = linkedomSymbol(probeElement, "dataset");
const STYLE = linkedomSymbol(probeElement, "style");
const CHANGED = linkedomSymbol(probe.createAttribute("a"), "changed");
const NODE_END = -1;

function ElementNode(this: Linked, document: Linked, localName: string) {
  this.ownerDocument = document;
  this.localName = localName;
  this.nodeType = ELEMENT_NODE;
  this.parentNode = null;
  this[NEXT] = null;
  this[PREV] = null;
  this[PRIVATE] = null;
  this[NEXT] = this[END] = {
    [NEXT]: null,
    [PREV]: this,
    [START]: this,
    nodeType: NODE_END,
    ownerDocument: document,
    parentNode: null,
  };
  this[CLASS_LIST] = null;
  this[DATASET] = null;
  this[STYLE] = null;
}

function TextNode(this: Linked, document: Linked, data: string) {
  this.ownerDocument = document;
  this.localName = "#text";
  this.nodeType = TEXT_NODE;
  this.parentNode = null;
  this[NEXT] = null;
  this[PREV] = null;
  this[VALUE] = data;
}

function AttrNode(this: Linked, document: Linked, name: string, value: string) {
  this.ownerDocument = document;
  this.localName = name;
  this.nodeType = 2;
  this.parentNode = null;
  this.ownerElement = null;
  this.name = name;
  this[NEXT] = null;
  this[PREV] = null;
  this[VALUE] = value;
  this[CHANGED] = false;
}

/** A constructor for nodes shaped like `model`, or null where ours would not build the same fields. */
function shapedLike(model: Linked, init: (this: Linked, ...args: Linked[]) => void, ...args: Linked[]) {
  const Shaped: Linked = function (this: Linked, ...a: Linked[]) {
    init.apply(this, a);
  };
  Shaped.prototype = Object.getPrototypeOf(model);
  const made = new Shaped(model.ownerDocument, ...args);
  const fields = (node: Linked) => Reflect.ownKeys(node).map(String).join();
  const same = fields(made) === fields(model) &&
    (model.nodeType !== ELEMENT_NODE || fields(made[END]) === fields(model[END]));
  return same ? Shaped as new (...a: Linked[]) => Linked : null;
}

const elementConstructors = new Map<string, (new (document: Linked, localName: string) => Linked) | null>();

function createHtmlElement(document: Linked, tagName: string): Linked {
  let Shaped = elementConstructors.get(tagName);
  if (Shaped === undefined) {
    Shaped = shapedLike(probe.createElement(tagName), ElementNode, tagName);
    elementConstructors.set(tagName, Shaped);
  }
  return Shaped ? new Shaped(document, tagName) : document.createElement(tagName);
}

const ShapedText = shapedLike(probe.createTextNode("x"), TextNode, "x");
const ShapedAttr = shapedLike(probe.createAttribute("a"), AttrNode, "a", "");

function createText(document: Linked, data: string): Linked {
  return ShapedText ? new ShapedText(document, data) : document.createTextNode(data);
}

function createAttr(document: Linked, name: string, value: string): Linked {
  if (ShapedAttr) return new ShapedAttr(document, name, value);
  const attribute = document.createAttribute(name);
  attribute[VALUE] = value;
  return attribute;
}

/** Whether parseHtml builds nodes itself (true) or had to fall back to linkedom's constructors. */
export const fastNodes = Boolean(ShapedText && ShapedAttr && shapedLike(probe.createElement("td"), ElementNode, "td"));

function createAdapter(document: Linked): TreeAdapter<DefaultTreeAdapterMap> {
  let mode = "no-quirks";
  const adapter = {
    createDocument: () => document,
    createDocumentFragment: () => document.createDocumentFragment(),
    createElement(tagName: string, namespaceURI: string, attrs: Token.Attribute[]) {
      const element = namespaceURI === SVG_NAMESPACE
        ? document.createElementNS(SVG_NAMESPACE, tagName)
        : createHtmlElement(document, tagName);
      if (namespaceURI !== XHTML_NAMESPACE && namespaceURI !== SVG_NAMESPACE) {
        Object.defineProperty(element, "namespaceURI", { value: namespaceURI });
      }
      for (const attr of attrs) {
        const attribute = createAttribute(attr);
        append(element, attribute);
        attribute.parentNode = null;
        attribute.ownerElement = element;
      }
      return element;
    },
    createCommentNode: (data: string) => document.createComment(data),
    createTextNode: (value: string) => createText(document, value),
    appendChild: append,
    insertBefore: (parent: Linked, node: Linked, reference: Linked) => parent.insertBefore(node, reference),
    setTemplateContent(template: Linked, content: Linked) {
      template[CONTENT] = content;
    },
    getTemplateContent: (template: Linked) => template[CONTENT],
    setDocumentType(doc: Linked, name: string, publicId: string, systemId: string) {
      // Kept out of the child list: XPath's data model has no doctype, and linkedom's doctype node
      // cannot be walked past (it has no nextSibling), which hid every page with a doctype.
      doc[DOCTYPE] = new DocumentType(doc, name, publicId, systemId);
    },
    setDocumentMode(_doc: Linked, documentMode: string) {
      mode = documentMode;
    },
    getDocumentMode: () => mode,
    detachNode(node: Linked) {
      if (node.parentNode) node.remove();
    },
    insertText(parent: Linked, text: string) {
      const last = lastChild(parent);
      if (last && last.nodeType === TEXT_NODE) last[VALUE] += text;
      else append(parent, createText(document, text));
    },
    insertTextBefore(parent: Linked, text: string, reference: Linked) {
      const before = reference[PREV];
      if (before && before.nodeType === TEXT_NODE && before.parentNode === parent) before[VALUE] += text;
      else parent.insertBefore(createText(document, text), reference);
    },
    adoptAttributes(recipient: Linked, attrs: Token.Attribute[]) {
      for (const attr of attrs) {
        if (!recipient.hasAttribute(attributeName(attr))) recipient.setAttributeNode(createAttribute(attr));
      }
    },
    getFirstChild: (node: Linked) => node.firstChild,
    getChildNodes: (node: Linked) => node.childNodes,
    getParentNode: (node: Linked) => node.parentNode,
    getAttrList: (element: Linked) =>
      Array.from(element.attributes as Attr[], (a) => ({ name: a.name, value: a.value })),
    getTagName: (element: Linked) => element.localName,
    getNamespaceURI: (element: Linked) => element.namespaceURI,
    getTextNodeContent: (node: Linked) => node.data,
    getCommentNodeContent: (node: Linked) => node.data,
    getDocumentTypeNodeName: (node: Linked) => node.name,
    getDocumentTypeNodePublicId: (node: Linked) => node.publicId,
    getDocumentTypeNodeSystemId: (node: Linked) => node.systemId,
    isTextNode: (node: Linked) => node.nodeType === TEXT_NODE,
    isCommentNode: (node: Linked) => node.nodeType === 8,
    isDocumentTypeNode: (node: Linked) => node.nodeType === 10,
    isElementNode: (node: Linked) => node.nodeType === ELEMENT_NODE,
    setNodeSourceCodeLocation() {},
    getNodeSourceCodeLocation: () => undefined,
    updateNodeSourceCodeLocation() {},
    onItemPush() {},
    onItemPop() {},
  };

  function createAttribute(attr: Token.Attribute): Linked {
    const attribute = createAttr(document, attributeName(attr), attr.value);
    if (attr.namespace) {
      Object.defineProperties(attribute, {
        namespaceURI: { value: attr.namespace },
        prefix: { value: attr.prefix ?? null },
        localName: { value: attr.name },
      });
    }
    return attribute;
  }
  return adapter as unknown as TreeAdapter<DefaultTreeAdapterMap>;
}

function attributeName(attr: Token.Attribute): string {
  return attr.prefix ? `${attr.prefix}:${attr.name}` : attr.name;
}

/**
 * Parses HTML the way a browser does (WHATWG tree construction, scripting off: implied html, head,
 * body and tbody, misnested tags, foster parenting, entities), into a linkedom `Document`.
 * Adjacent text is one text node, so `text()='Tom & Jerry'` matches.
 */
export function parseHtml(html: string): Document {
  const document = new DOMParser().parseFromString("", "text/html") as Linked;
  // An empty linkedom HTML document starts with <html><head></head><body></body></html>.
  document[NEXT] = document[END];
  document[END][PREV] = document;
  // A byte order mark is the decoder's business; browsers never see it as text.
  const text = html.charCodeAt(0) === 0xfeff ? html.slice(1) : html;
  parseHtml5(text, { treeAdapter: createAdapter(document), scriptingEnabled: false });
  return document as Document;
}

// ---------------------------------------------------------------------------------------------
// XPath: compiled once, document order in O(1)
// ---------------------------------------------------------------------------------------------

// xpath sorts node-sets with compareDocumentPosition, which linkedom answers by walking the tree.
// During an evaluation, nodes of the evaluated document carry their position in document order,
// stamped in one pass, and comparisons between two stamped nodes are a subtraction. The stamps are
// renewed at each evaluation, so a document changed in between is still ordered right.
const ORDER = Symbol("tierload.documentOrder");
let stampBase = 0;
let stampLimit = 0;
let unstamped: Linked = null;
const nodeClassPrototype = findPrototypeWith(probeElement, "compareDocumentPosition");
const linkedomCompare = nodeClassPrototype.compareDocumentPosition as (this: Node, other: Node) => number;
nodeClassPrototype.compareDocumentPosition = function (this: Linked, other: Linked): number {
  if (unstamped) stampDocumentOrder();
  const a = this[ORDER], b = other[ORDER];
  if (a >= stampBase && b >= stampBase && a < stampLimit && b < stampLimit) {
    if (a === b) return 0;
    return a < b
      ? 4 /* FOLLOWING */ | (isWithin(other, this) ? 16 : 0)
      : 2 /* PRECEDING */ | (isWithin(this, other) ? 8 : 0);
  }
  return linkedomCompare.call(this, other);
};

function findPrototypeWith(object: object, method: string): Linked {
  let proto = Object.getPrototypeOf(object);
  while (proto && !Object.prototype.hasOwnProperty.call(proto, method)) proto = Object.getPrototypeOf(proto);
  if (!proto) throw new Error(`evaluateXPath: linkedom nodes have no ${method}`);
  return proto;
}

function isWithin(node: Linked, ancestor: Linked): boolean {
  for (let n = node.parentNode ?? node.ownerElement; n; n = n.parentNode) if (n === ancestor) return true;
  return false;
}

/** Numbers every node of the document (or fragment) being evaluated in document order: its linked list. */
function stampDocumentOrder(): void {
  const top = unstamped.nodeType === 9 || unstamped.nodeType === 11 ? unstamped : unstamped.ownerDocument;
  unstamped = null;
  let order = stampBase = stampLimit;
  top[ORDER] = order++;
  for (let node = top[NEXT]; node; node = node[NEXT]) node[ORDER] = order++;
  stampLimit = order;
}

// The DOM says an Attr's nodeValue is its value; linkedom's answers null, and xpath reads
// `value || nodeValue`, so an empty attribute compared as null: [@value=''] matched nothing.
Object.defineProperty(Object.getPrototypeOf(probe.createAttribute("a")), "nodeValue", {
  get(this: Attr) {
    return this.value;
  },
  set(this: Attr, value: string) {
    this.value = value;
  },
});

// xpath dedups a node-set by scanning it for each node it adds, which is quadratic in the result.
// A Set does the same in linear time and keeps the first occurrence, as the scan does.
// deno-lint-ignore no-explicit-any
const { XNodeSet, XNumber, XBoolean } = xpath as any;
XNodeSet.prototype.addArray = function (this: Linked, nodes: Node[]) {
  const seen = new Set<Node>(this.nodes);
  for (const node of nodes) {
    if (!seen.has(node)) {
      seen.add(node);
      this.nodes.push(node);
    }
  }
  this.size = this.nodes.length;
  this.tree = null;
};

// xpath puts a node-set in document order by inserting its nodes into an AVL tree, one
// compareDocumentPosition at a time: for each step's predicates and for every result. When every node
// carries this evaluation's stamp, sorting the array on the stamps gives the same order for less.
const xpathToArray = XNodeSet.prototype.toArray;
XNodeSet.prototype.toArray = function (this: Linked): Node[] {
  if (unstamped) stampDocumentOrder();
  const nodes: Linked[] = this.nodes;
  const stamped = nodes.every((node) => node[ORDER] >= stampBase && node[ORDER] < stampLimit);
  return stamped ? nodes.slice().sort((a, b) => a[ORDER] - b[ORDER]) : xpathToArray.call(this);
};

interface Compiled {
  expression: object;
  evaluate(options: object): Linked;
}
const parseXPath = (xpath as unknown as { parse(query: string): Compiled }).parse;
const compiled = new Map<string, Compiled>();
const MAX_COMPILED = 1000;

function compile(query: string): Compiled {
  let expression = compiled.get(query);
  if (!expression) {
    try {
      expression = parseXPath(query);
    } catch (cause) {
      throw new Error(`Invalid XPath ${JSON.stringify(query)}: ${(cause as Error).message}`, { cause });
    }
    shortenDescendantSteps((expression as Linked).expression);
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
    compiled.set(query, expression);
  }
  return expression;
}

// `//tr[@class='thread']` means descendant-or-self::node()/child::tr[...]: xpath runs the child step
// and its predicates once for every node of the page, sorting each little result. When no predicate
// depends on position, descendant::tr[...] selects the same nodes in one walk, as browsers do.
// deno-lint-ignore no-explicit-any
const { Step, NodeTest, LocationPath, PathExpr, FunctionCall } = xpath as any;
// Each predicate and each path inside one copies the context: xpath builds a full XPathContext
// (three resolvers) and copies the old one over it with for..in. Copying the same own properties onto
// a bare context is the same thing without the garbage. PathExpr.evaluate is xpath's, but for that.
// deno-lint-ignore no-explicit-any
const { XPathContext } = xpath as any;
const copyContext = (context: object, newProps?: object) =>
  Object.assign(Object.create(XPathContext.prototype), context, newProps);
XPathContext.prototype.extend = function (this: Linked, newProps: object) {
  return copyContext(this, newProps);
};
PathExpr.prototype.evaluate = function (this: Linked, context: Linked) {
  const xpc = copyContext(context);
  const filterResult = this.applyFilter(context, xpc);
  if ("nonNodes" in filterResult) return filterResult.nonNodes;
  const nodeSet = new XNodeSet();
  nodeSet.addArray(PathExpr.applyLocationPath(this.locationPath, xpc, filterResult.nodes));
  return nodeSet;
};

const BOOLEAN_OPERATIONS = [
  "AndOperation",
  "OrOperation",
  "EqualsOperation",
  "NotEqualOperation",
  "LessThanOperation",
  "GreaterThanOperation",
  "LessThanOrEqualOperation",
  "GreaterThanOrEqualOperation",
  // deno-lint-ignore no-explicit-any
].map((name) => (xpath as any)[name]);
const BOOLEAN_FUNCTIONS = new Set(["not", "contains", "starts-with", "boolean", "true", "false", "lang"]);

function isBooleanPredicate(predicate: Linked): boolean {
  if (/\b(position|last)\(\)/.test(String(predicate))) return false;
  if (BOOLEAN_OPERATIONS.some((operation) => predicate instanceof operation)) return true;
  if (!(predicate instanceof PathExpr)) return false;
  if (predicate.filter === undefined) return true;
  return predicate.filter instanceof FunctionCall && BOOLEAN_FUNCTIONS.has(predicate.filter.functionName) &&
    !predicate.filterPredicates?.length && !predicate.locationPath;
}

function shortenDescendantSteps(node: Linked, seen = new Set<object>()): void {
  if (node === null || typeof node !== "object" || seen.has(node)) return;
  seen.add(node);
  if (node instanceof LocationPath) {
    const steps: Linked[] = node.steps;
    for (let i = steps.length - 2; i >= 0; i--) {
      const [any, child] = [steps[i], steps[i + 1]];
      if (
        any.axis === Step.DESCENDANTORSELF && any.nodeTest === NodeTest.nodeTest && any.predicates.length === 0 &&
        child.axis === Step.CHILD && child.predicates.every(isBooleanPredicate)
      ) {
        steps.splice(i, 2, new Step(Step.DESCENDANT, child.nodeTest, child.predicates));
      }
    }
  }
  for (const value of Object.values(node)) shortenDescendantSteps(value, seen);
}

const NAMESPACES = { html: XHTML_NAMESPACE };

/**
 * Evaluates an XPath 1.0 query on a document or node. `html:tr` and a browser's `/html/body/tr`
 * both match HTML elements; values are passed as `$variables`. Answers a number, string or boolean
 * for those expressions, and an array of nodes in document order for a node-set.
 */
export function evaluateXPath(context: Document | Node, query: string, variables: Variables = {}): XPathValue {
  const expression = compile(query);
  unstamped = context;
  try {
    const result = expression.evaluate({ node: context, namespaces: NAMESPACES, variables, isHtml: true });
    if (result instanceof XNodeSet) return result.toArray();
    if (result instanceof XNumber) return result.numberValue();
    if (result instanceof XBoolean) return result.booleanValue();
    return result.stringValue();
  } catch (cause) {
    throw new Error(`Cannot evaluate XPath ${JSON.stringify(query)}: ${(cause as Error).message}`, { cause });
  } finally {
    unstamped = null;
    stampBase = stampLimit;
  }
}
