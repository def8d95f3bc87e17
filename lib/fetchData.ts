/**
 * Tier 3: the workhorses. Everything this project knows about HTTP lives here, and this is the face
 * through which the adapter (lib/forum.ts) reaches HTML too (parsing and XPath are in lib/html.ts).
 *
 *   const session = createSession("http://localhost:8080/myapp/");
 *   const n = await fetchData(session, "forum?id=1", "count(//html:tr[@class='thread'])");
 *
 * Pages are parsed the way a browser parses them, and XPath 1.0 queries run on the result with the
 * prefix `html` bound to the XHTML namespace. Values go into queries as variables (`text()=$title`),
 * never by string formatting. One way to ask: `fetchData`/`fetchOne` fetch a URL and query it;
 * `queryAll`/`queryOne`/`queryRows` ask the same of a page already fetched.
 *
 * Queries are answered from the page's flat tree (lib/native-html.ts's parse, lib/xpath-flat.ts's evaluator)
 * when the evaluator takes their shape and the answer needs no DOM node; otherwise from `page.document`
 * (parse5 into linkedom, lib/html.ts), built only then. Both give the same answers (test/xpath-flat.test.ts).
 */
import type { IncomingHttpHeaders } from "node:http";
import { type Answer, exchange } from "./exchange.ts";
import { browserHeaders, type FetchSite, fetchSite, worstSite } from "./headers.ts";
import { decode, encodingOf } from "./encoding.ts";
import { flatElements, isFlatForm } from "./flat-elements.ts";
import {
  type FormElement,
  type FormPageTree,
  formSubmission,
  FormSubmissionError,
  type FormValues,
  type SubmitOptions,
} from "./form.ts";
import {
  evaluateXPath,
  EXCERPT_QUERIES,
  excerptOf,
  matchTexts,
  parseHtml,
  stringValue,
  textsOf,
  type Variables,
  type XPathValue,
} from "./html.ts";
import { type FlatTree, parseFlat } from "./native-html.ts";
import { evaluateFlat, flatParent, flatQueryType, flatString } from "./xpath-flat.ts";
import { CookieJar } from "./cookies.ts";
import { parseCookieHeader } from "./web.ts";

export { evaluateXPath, parseHtml, type Variables, type XPathValue } from "./html.ts";
export { decode } from "./encoding.ts";
export { FormSubmissionError, type FormValue, type FormValues, type SubmitOptions } from "./form.ts";

// ---------------------------------------------------------------------------------------------
// Sessions and cookies
// ---------------------------------------------------------------------------------------------

/** One request as the session saw it: what a load test records for each page load. */
export interface RequestRecord {
  /** What the load report calls this page load: the session's `nameRequest`, else method and path. */
  name: string;
  method: string;
  url: string;
  status: number;
  ms: number;
  /** Bytes of the answer's body as they came over the wire: compressed, when the server compressed it. */
  bytes: number;
  error?: Error;
}

/** A browser-like user: a base URL, a cookie jar, a timeout, a limit on answers, an optional observer. */
export interface Session {
  baseUrl: string;
  cookies: CookieJar;
  timeoutMs: number;
  maxResponseBytes: number;
  userAgent: string;
  acceptLanguage: string;
  onRequest?: (record: RequestRecord) => void;
  nameRequest?: (method: string, url: URL) => string;
}

export interface SessionOptions {
  /** Milliseconds before a request (each hop of a redirect) is abandoned. Default 30 000. */
  timeoutMs?: number;
  /**
   * The largest answer read, in bytes; a larger one fails its request, naming the URL and the size. Default
   * 16 MiB: a hundred times a forum page of 1000 threads, and a cap on what a broken page can cost. A compressed
   * answer is held to it twice: as it arrives, and as it grows when decompressed (a gzip bomb fails the same way).
   */
  maxResponseBytes?: number;
  /** The User-Agent header. Default `DEFAULT_USER_AGENT`, which names tierload. */
  userAgent?: string;
  /** The Accept-Language header. Default `en-US,en;q=0.9`, as a browser set to American English sends. */
  acceptLanguage?: string;
  /** A raw `Cookie` header to start with, as in the seed: `"sid=abc; lang=en"` (for the base URL's host). */
  cookie?: string;
  onRequest?: (record: RequestRecord) => void;
  /**
   * How the load report names this session's page loads, as Locust's `name=` does: an application that routes
   * by query string, or puts ids in its paths, names them so that its rows stay few and merge across instances.
   * Default: the method and the path under the base URL (`GET /forum`).
   *
   *   createSession(url, { nameRequest: (method, u) => `${method} ${u.pathname.replace(/\/\d+\//g, "/{id}/")}` })
   */
  nameRequest?: (method: string, url: URL) => string;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** Names tierload, in the shape sites that look for "Mozilla/5.0" expect of a browser. */
export const DEFAULT_USER_AGENT = "Mozilla/5.0 (compatible; tierload/0.1)";

/**
 * What every session created from now on in this thread starts with, under its own options: the load runner
 * sets the run's timeout and recorder here, so that an adapter never passes load-test options.
 */
export const sessionDefaults: SessionOptions = {};

/** A session for an application at `baseUrl`; relative URLs resolve against it. */
export function createSession(baseUrl: string, own: SessionOptions = {}): Session {
  const options = { ...sessionDefaults, ...own };
  if (!URL.canParse(baseUrl)) {
    throw new Error(`Cannot create a session for ${JSON.stringify(baseUrl)}: it is not an absolute URL`);
  }
  const session: Session = {
    baseUrl: new URL(baseUrl).href,
    cookies: new CookieJar(),
    timeoutMs: options.timeoutMs ?? 30_000,
    maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    userAgent: options.userAgent ?? DEFAULT_USER_AGENT,
    acceptLanguage: options.acceptLanguage ?? "en-US,en;q=0.9",
    onRequest: options.onRequest,
    nameRequest: options.nameRequest,
  };
  session.cookies.add(new URL(session.baseUrl), parseCookieHeader(options.cookie ?? ""));
  return session;
}

/** A session, or a raw cookie string as the seed passed around (then URLs must be absolute). */
export type SessionLike = Session | string;

function toSession(session: SessionLike, url: string): Session {
  if (typeof session !== "string") return session;
  if (!URL.canParse(url)) {
    throw new Error(
      `Cannot request ${JSON.stringify(url)} with a cookie string as the session: it needs an absolute URL`,
    );
  }
  return createSession(new URL(url).origin + "/", { cookie: session });
}

/** The `Cookie` header this session sends to `url` (its host, path and scheme), or "" when it has none. */
export function cookieHeader(session: Session, url: URL): string {
  return session.cookies.header(url);
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------
/** A page as the browser ended up with it: the final URL after redirects, its status and its tree. */
export interface Page {
  url: string;
  status: number;
  statusText: string;
  /** The answer's headers (of the final hop). */
  headers: IncomingHttpHeaders;
  /** The body, decompressed and decoded. */
  body: string;
  /** The encoding the body was decoded with (a WHATWG name: `utf-8`, `windows-1252`): a form on it is sent in it. */
  encoding: string;
  /**
   * The parsed tree, built on first use and kept: a page is parsed into a DOM at most once. Queries read
   * the body itself (a flat tree), so changes made to this document are not seen by queryAll and the rest.
   */
  document: Document;
}

const flatTrees = new WeakMap<Page, FlatTree>();

/** The page's flat tree, parsed on first use and kept. */
function flatTree(page: Page): FlatTree {
  let tree = flatTrees.get(page);
  if (!tree) {
    tree = parseFlat(markup(page).body);
    flatTrees.set(page, tree);
  }
  return tree;
}

/** The texts of the answer to `query` from the flat tree, or undefined where evaluateXPath must answer. */
function flatTexts(page: Page, query: string, variables?: Variables): string[] | undefined {
  if (flatQueryType(query) === null) return undefined;
  const tree = flatTree(page);
  const value = evaluateFlat(tree, query, variables);
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.map((node) => flatString(tree, node)) : [String(value)];
}

/** The texts of the answer to `query`: each node's string value, or the one number, string or boolean. */
function texts(page: Page, query: string, variables?: Variables): string[] {
  return flatTexts(page, query, variables) ?? textsOf(evaluateXPath(page.document, query, variables));
}

/** The answer to `query` as evaluateXPath gives it; a node-set's nodes are page.document's. */
function answer(page: Page, query: string, variables?: Variables): XPathValue {
  const type = flatQueryType(query);
  if (type !== null && type !== "nodes") {
    const value = evaluateFlat(flatTree(page), query, variables);
    if (value !== undefined && !Array.isArray(value)) return value;
  }
  return evaluateXPath(page.document, query, variables);
}

/** The server answered, but not with 200. Carries the page it answered, for what a person needs to see why. */
export class HttpError extends Error {
  readonly url: string;
  readonly status: number;
  readonly statusText: string;
  constructor(readonly method: string, readonly page: Page) {
    super(`${method} ${shownUrl(page.url)} answered ${page.status} ${page.statusText}: ${excerpt(page)}`);
    this.name = "HttpError";
    this.url = page.url;
    this.status = page.status;
    this.statusText = page.statusText;
  }
}

/** The request never got an answer: refused, reset, or timed out. */
export class RequestError extends Error {
  constructor(readonly method: string, readonly url: string, reason: string, options?: { cause?: unknown }) {
    super(`${method} ${shownUrl(url)} failed: ${reason}`, options);
    this.name = "RequestError";
  }
}
/**
 * A URL as an error message shows it: whole up to 300 characters, else its start and its length, so that a
 * long query (a test's long value in a GET) cannot bury what failed. The errors' `url` fields keep it whole.
 */
export function shownUrl(url: string): string {
  return url.length <= 300 ? url : `${url.slice(0, 300)}… (${url.length} characters)`;
}

/** The visible text of a page, collapsed and cut to `max` characters: enough to see the message. */
export function excerpt(page: Page, max = 300): string {
  if (!isMarkup(page)) return excerptOf([[page.body]], max);
  return excerptOf(EXCERPT_QUERIES.map((query) => texts(page, query)), max);
}

/** The answer's media type (`text/html`), lower case, without parameters; "" when it has none. */
function mediaType(page: Page): string {
  return String(page.headers?.["content-type"] ?? "").split(";")[0].trim().toLowerCase();
}

/**
 * Whether XPath can read the answer: HTML, XHTML or XML, or no Content-Type at all (which a browser sniffs, as
 * markup here). A JSON, plain-text, image or octet-stream answer is not a page to query.
 */
function isMarkup(page: Page): boolean {
  const type = mediaType(page);
  return ["", "text/html", "application/xhtml+xml", "text/xml", "application/xml"].includes(type) ||
    type.endsWith("+xml");
}

/** The page, when XPath can read it; otherwise an error naming its URL and what it answered. */
function markup(page: Page): Page {
  if (isMarkup(page)) return page;
  throw new Error(
    `${shownUrl(page.url)} answered ${mediaType(page)}, not HTML: XPath queries read HTML and XML pages ` +
      `(page.body has this answer as text)`,
  );
}

const MAX_REDIRECTS = 10;
export type Params = Record<string, string | number | boolean>;

/**
 * Sends one request the way a browser would: cookies from the session, redirects followed by hand
 * (so each hop's Set-Cookie is kept, and 303 turns a POST into a GET), a timeout on every hop.
 * Answers with the final page, whatever its status.
 */
export function request(
  sessionLike: SessionLike,
  method: "GET" | "POST",
  url: string,
  form?: Params,
): Promise<Page> {
  const body = form ? new TextEncoder().encode(new URLSearchParams(stringify(form)).toString()) : undefined;
  return navigate(toSession(sessionLike, url), method, url, { body, contentType: body && URLENCODED });
}

const URLENCODED = "application/x-www-form-urlencoded";

/** What a navigation sends besides its URL: a body, and the page it started from (a form's page), if any. */
interface Outgoing {
  body?: Uint8Array;
  contentType?: string;
  from?: Page;
}

async function navigate(session: Session, method: "GET" | "POST", url: string, outgoing: Outgoing): Promise<Page> {
  // A fragment stays on the page's URL (`thread?id=7#post-9`) and is never sent.
  let target: URL;
  try {
    target = new URL(url, session.baseUrl);
  } catch {
    throw new Error(`Cannot ${method} ${JSON.stringify(url)}: it is not a URL`);
  }
  let { body } = outgoing;
  // A page the user typed in has no initiator; a POST without a page is taken as coming from its own site.
  const initiator = outgoing.from ? new URL(outgoing.from.url) : body ? target : undefined;
  let site: FetchSite = initiator ? fetchSite(initiator, target) : "none";
  for (let hop = 0;; hop++) {
    const started = performance.now();
    if (initiator && hop > 0) site = worstSite(site, fetchSite(initiator, target));
    const headers = browserHeaders(
      { userAgent: session.userAgent, acceptLanguage: session.acceptLanguage, cookie: cookieHeader(session, target) },
      target,
      method,
      site,
      outgoing.from,
      initiator,
    );
    if (body !== undefined) {
      headers["content-type"] = outgoing.contentType ?? URLENCODED;
      headers["content-length"] = String(body.length);
    }
    let response: Answer;
    try {
      // A kept-alive connection the server closed as we sent on it fails before any answer: browsers send
      // again on a new connection, and so does this (once).
      response = await exchange(target, method, headers, body, session)
        .catch((error) =>
          error.staleConnection ? exchange(target, method, headers, body, session) : Promise.reject(error)
        );
    } catch (cause) {
      const error = new RequestError(method, target.href, (cause as Error).message, { cause });
      const ms = performance.now() - started;
      session.onRequest?.({ ...named(session, method, target), status: 0, ms, bytes: 0, error });
      throw error;
    }
    const record = { ...named(session, method, target), status: response.status, bytes: response.wireBytes };
    const setCookie = response.headers["set-cookie"];
    if (setCookie) session.cookies.store(target, setCookie);
    const location = response.headers.location;
    if (response.status >= 300 && response.status < 400 && location) {
      session.onRequest?.({ ...record, ms: performance.now() - started });
      if (hop === MAX_REDIRECTS) {
        throw new RequestError(method, target.href, `more than ${MAX_REDIRECTS} redirects`);
      }
      try {
        const next: URL = new URL(location, target);
        // A Location without a fragment keeps the one the request had, as browsers do.
        if (!next.hash) next.hash = target.hash;
        target = next;
      } catch {
        throw new RequestError(method, target.href, `its Location header is not a URL: ${JSON.stringify(location)}`);
      }
      if (response.status !== 307 && response.status !== 308) {
        method = "GET";
        body = undefined;
      }
      continue;
    }
    const contentType = response.headers["content-type"] ?? null;
    const encoding = encodingOf(response.body, contentType);
    const text = decode(response.body, contentType);
    session.onRequest?.({ ...record, ms: performance.now() - started });
    const page: Page = {
      url: target.href,
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
      body: text,
      encoding,
      get document() {
        const document = parseHtml(markup(page).body);
        Object.defineProperty(page, "document", { value: document });
        return document;
      },
    };
    return page;
  }
}

/** A page load's method, URL and name, as its record carries them. */
function named(session: Session, method: string, url: URL): Pick<RequestRecord, "name" | "method" | "url"> {
  if (session.nameRequest) return { name: session.nameRequest(method, url), method, url: url.href };
  const path = url.href.startsWith(session.baseUrl)
    ? url.href.slice(session.baseUrl.length).split(/[?#]/)[0]
    : url.pathname.slice(1);
  return { name: `${method} /${path}`, method, url: url.href };
}

function stringify(params: Params): Record<string, string> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, String(v)]));
}

function ensureOk(method: string, page: Page): Page {
  if (page.status !== 200) throw new HttpError(method, page);
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

/** The page has no single form for `formQuery` (none, several, or what it finds is not a form): nothing was sent. */
export class FormNotFoundError extends Error {
  constructor(readonly formQuery: string, readonly page: Page, found: string) {
    super(`Cannot submit the form ${formQuery} on ${shownUrl(page.url)}: found ${found}`);
    this.name = "FormNotFoundError";
  }
}

/**
 * Submits a form the way a browser does (see docs/tier3-forms.md): the page's form found by `formQuery`, the
 * entries a browser would send for it (hidden fields such as a CSRF token included, the pressed button),
 * `values` in place of the form's own for their names, sent by the form's method, to its action, in its
 * encoding (urlencoded, multipart with files, or text/plain). Throws unless the final page is a 200.
 *
 *   await submitForm(session, page, "//html:form[@id='editform']", { wpTextbox1: "Hi" }, { submitter: "wpSave" });
 */
export async function submitForm(
  session: SessionLike,
  page: Page,
  formQuery: string,
  values: FormValues = {},
  options: SubmitOptions = {},
): Promise<Page> {
  const { form, tree } = findForm(page, formQuery, options);
  let submission;
  try {
    submission = await formSubmission(form, page, values, options, tree);
  } catch (cause) {
    const reason = (cause as Error).message;
    throw new FormSubmissionError(`Cannot submit the form ${formQuery} on ${shownUrl(page.url)}: ${reason}`, { cause });
  }
  const { method, url, body, contentType } = submission;
  return ensureOk(method, await navigate(toSession(session, url), method, url, { body, contentType, from: page }));
}

/**
 * The page's one form for `formQuery`: from the flat tree when its evaluator answers the query with one HTML
 * form (no DOM is built), else from page.document, which also says why there is none. A page whose DOM someone
 * has built is read through it, as they may have changed it; so is a submitter given as a DOM element.
 */
function findForm(page: Page, formQuery: string, options: SubmitOptions): { form: FormElement; tree?: FormPageTree } {
  const domBuilt = typeof Object.getOwnPropertyDescriptor(page, "document")?.get !== "function";
  const domSubmitter = options.submitter !== null && typeof options.submitter === "object";
  if (!domBuilt && !domSubmitter && flatQueryType(formQuery) === "nodes") {
    const tree = flatTree(page);
    const found = evaluateFlat(tree, formQuery);
    if (Array.isArray(found) && found.length === 1 && isFlatForm(tree, found[0])) {
      const view = flatElements(tree);
      return { form: view.element(found[0]), tree: view };
    }
  }
  const forms = evaluateXPath(page.document, formQuery);
  if (!Array.isArray(forms) || forms.length !== 1) {
    throw new FormNotFoundError(formQuery, page, describeCount(forms));
  }
  if (forms[0].nodeType !== 1 || (forms[0] as Element).localName !== "form") {
    const found = forms[0].nodeType === 1 ? `<${(forms[0] as Element).localName}>` : forms[0].nodeName;
    throw new FormNotFoundError(formQuery, page, `${found}, not a <form>`);
  }
  return { form: forms[0] as Element };
}

function describeCount(value: XPathValue): string {
  return Array.isArray(value) ? `${value.length} matches` : `a ${typeof value}, not a node`;
}

// ---------------------------------------------------------------------------------------------
// fetchData: the seed's workhorse, and the same questions asked of a page already fetched
// ---------------------------------------------------------------------------------------------

/** What follows the regex in fetchData's and fetchOne's arguments: query-string params, XPath variables. */
type Rest = [params?: Params, variables?: Variables];

/**
 * GETs a page and answers an XPath query on it, cut down by `regex` when given (then the result is
 * the list of matches, with their groups, of the nodes whose value matched).
 */
export function fetchData(session: SessionLike, url: string, xpathQuery: string): Promise<XPathValue>;
export function fetchData(
  s: SessionLike,
  u: string,
  q: string,
  regex: RegExp | string,
  ...r: Rest
): Promise<RegExpExecArray[]>;
export function fetchData(
  s: SessionLike,
  u: string,
  q: string,
  regex?: RegExp | string,
  ...r: Rest
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
  return regex === undefined
    ? answer(page, xpathQuery, variables)
    : matchTexts(texts(page, xpathQuery, variables), regex);
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
  ...[params, variables]: Rest
): Promise<string> {
  return queryOne(await fetchPage(session, url, params), xpathQuery, regex, variables);
}

/** The one answer to `xpathQuery` (cut by `regex`) on a page already fetched; see `fetchOne`. */
export function queryOne(page: Page, xpathQuery: string, regex?: RegExp | string, variables?: Variables): string {
  const all = texts(page, xpathQuery, variables);
  const found = regex === undefined ? all : matchTexts(all, regex).map((m) => m[1] ?? m[0]);
  if (found.length !== 1) {
    const what = regex === undefined ? "" : ` cut by ${String(regex)}`;
    const vars = variables ? ` with ${JSON.stringify(variables)}` : "";
    throw new Error(
      `Expected exactly one result on ${shownUrl(page.url)} for ${xpathQuery}${what}${vars}, found ${found.length}` +
        (found.length
          ? `: ${found.slice(0, 5).map((s) => JSON.stringify(s)).join(", ")}`
          : `. The page says: ${excerpt(page, 200)}`),
    );
  }
  return found[0];
}

/** The trimmed string value of every node `xpathQuery` selects on a page already fetched. */
export function queryAll(page: Page, xpathQuery: string, variables?: Variables): string[] {
  return texts(page, xpathQuery, variables).map((text) => text.trim());
}

/**
 * One record per node `rowQuery` selects (a table row, a post), each field the trimmed string value of
 * its own path inside that node (a relative location path: `@id`, `html:td[@class='posts']`): values
 * that belong together stay together, even when a row lacks a field (it is then "").
 *
 *   queryRows(page, "//html:div[@class='post']", { id: "@id", author: "html:span[@class='author']" })
 *
 * Each field is one query over all the rows, `(rowQuery)/field`, whose answers are given to the row
 * that contains them: a query per row and field cost 150 evaluations for a thread page of 50 posts.
 */
export function queryRows<K extends string>(
  page: Page,
  rowQuery: string,
  fields: Record<K, string>,
  variables?: Variables,
): Record<K, string>[] {
  return flatRows(page, rowQuery, fields, variables) ?? documentRows(page, rowQuery, fields, variables);
}

/** queryRows from the flat tree, or undefined where evaluateXPath must answer a query (or raise its error). */
function flatRows<K extends string>(
  page: Page,
  rowQuery: string,
  fields: Record<K, string>,
  variables?: Variables,
): Record<K, string>[] | undefined {
  const names = Object.keys(fields) as K[];
  const paths = names.map((name) => `(${rowQuery})/${fields[name]}`);
  if (flatQueryType(rowQuery) !== "nodes" || paths.some((path) => flatQueryType(path) !== "nodes")) return undefined;
  const tree = flatTree(page);
  const rows = evaluateFlat(tree, rowQuery, variables);
  if (!Array.isArray(rows)) return undefined;
  const records = rows.map(() => ({}) as Record<K, string>);
  const index = new Map<number, number>(rows.map((row, i) => [row, i]));
  for (let f = 0; f < names.length; f++) {
    const found = evaluateFlat(tree, paths[f], variables);
    if (!Array.isArray(found)) return undefined;
    for (const node of found) {
      let row = node;
      while (row !== -1 && !index.has(row)) row = flatParent(tree, row);
      const record = row !== -1 ? records[index.get(row)!] : undefined;
      if (record && record[names[f]] === undefined) record[names[f]] = flatString(tree, node).trim();
    }
    for (const record of records) record[names[f]] ??= "";
  }
  return records;
}

function documentRows<K extends string>(
  page: Page,
  rowQuery: string,
  fields: Record<K, string>,
  variables?: Variables,
): Record<K, string>[] {
  const rows = evaluateXPath(page.document, rowQuery, variables);
  if (!Array.isArray(rows)) {
    throw new Error(`The row query ${rowQuery} on ${shownUrl(page.url)} selects no nodes: it answers a ${typeof rows}`);
  }
  const records = rows.map(() => ({}) as Record<K, string>);
  const index = new Map<Node, number>(rows.map((row, i) => [row, i]));
  for (const name of Object.keys(fields) as K[]) {
    let found: XPathValue;
    try {
      found = evaluateXPath(page.document, `(${rowQuery})/${fields[name]}`, variables);
    } catch (cause) {
      throw new Error(
        `Cannot read the field ${JSON.stringify(name)} (${fields[name]}) of the rows ${rowQuery} on ${
          shownUrl(page.url)
        } ` +
          `(a field is a path inside its row, such as @id or html:td[2]): ${(cause as Error).message}`,
        { cause },
      );
    }
    if (!Array.isArray(found)) throw new Error(`The field ${name} (${fields[name]}) of ${rowQuery} is not a path`);
    for (const node of found) {
      let row: Node | null = node;
      while (row && !index.has(row)) row = row.nodeType === 2 ? (row as Attr).ownerElement : row.parentNode;
      const record = row ? records[index.get(row)!] : undefined;
      if (record && record[name] === undefined) record[name] = stringValue(node).trim();
    }
    for (const record of records) record[name] ??= "";
  }
  return records;
}
