/**
 * What every adapter (tier 2) needs around tier 3: a step run as a user, whose failure names the step, the
 * user and what the server said; a check that an action's effect is on the page (Playwright's page objects
 * end an action that way); a page's form submitted, or a plain word that the page offers none.
 *
 *   export function login(url: string, username: string, password: string): Promise<Session> {
 *     const session = createSession(url);
 *     return step(session, "log in", async () => {
 *       const home = await submitPageForm(session, await fetchPage(session, "login"), "//html:form", { username, password }, "log in");
 *       confirm(queryAll(home, "//html:span[@class='user']")[0] === username, "log in", JSON.stringify(username), "nobody is logged in", home);
 *       return actAs(session, username);
 *     }, JSON.stringify(username));
 *   }
 */
import {
  excerpt,
  FormNotFoundError,
  type FormValues,
  HttpError,
  type Page,
  queryAll,
  RequestError,
  type Session,
  shownUrl,
  submitForm,
} from "./fetchData.ts";

/**
 * A user's step failed. `url`, `status` and `excerpt` say what the server answered, when it did: the page
 * that lacks the step's effect, or the error page of the cause.
 *
 *   throw new StepError("reply to thread 7", '"alice"', "the reply did not appear on the thread", undefined, page);
 */
export class StepError extends Error {
  readonly url?: string;
  readonly status?: number;
  readonly excerpt?: string;
  constructor(readonly step: string, readonly user: string, reason: string, cause?: unknown, page?: Page) {
    super(`Cannot ${step} as ${user}: ${reason}`, { cause });
    this.name = "StepError";
    const answer = page ?? (cause instanceof HttpError ? cause.page : undefined);
    if (answer) {
      this.url = answer.url;
      this.status = answer.status;
      this.excerpt = excerpt(answer, 500);
    } else if (cause instanceof RequestError) {
      this.url = cause.url;
    }
  }
}

const users = new WeakMap<Session, string>();

/**
 * Remembers that `session` is logged in as `username` (for messages, and for `usernameOf`); answers the session.
 *
 *   return actAs(session, username);
 */
export function actAs(session: Session, username: string | null): Session {
  if (username === null) users.delete(session);
  else users.set(session, username);
  return session;
}

/**
 * The name `session` is logged in as, or undefined for an anonymous visitor.
 *
 *   const body = `Reply from ${usernameOf(session)}`;
 */
export function usernameOf(session: Session): string | undefined {
  return users.get(session);
}

/**
 * Who a session acts as, for messages: `"alice"` (quoted), or `an anonymous visitor`.
 *
 *   confirm(ok, "log out", userOf(session), "the page still shows a user", page);
 */
export function userOf(session: Session): string {
  const name = users.get(session);
  return name === undefined ? "an anonymous visitor" : JSON.stringify(name);
}

/**
 * What an application said on an error page: its alert or error element (`role="alert"`, a class naming an
 * error), else the page's text.
 *
 *   serverMessage(page) // "Wrong username or password"
 */
export function serverMessage(page: Page): string {
  const [said] = queryAll(
    page,
    "//*[@role='alert' or contains(concat(' ', normalize-space(@class), ' '), ' error ') or " +
      "contains(concat(' ', normalize-space(@class), ' '), ' errornote ') or " +
      "contains(concat(' ', normalize-space(@class), ' '), ' errorlist ')][normalize-space()]",
  );
  return said ? said.replace(/\s+/g, " ") : excerpt(page, 200);
}

function reasonOf(cause: unknown): string {
  if (cause instanceof HttpError) {
    return `the server answered ${cause.status} ${cause.statusText}: "${serverMessage(cause.page)}" (${cause.method} ${
      shownUrl(cause.url)
    })`;
  }
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * Runs a step as `who` (default: whoever the session is logged in as); any failure becomes a StepError
 * naming the step, the user and the reason (a StepError from an inner step passes through as it is).
 *
 *   return step(session, `find the product ${JSON.stringify(name)}`, async () => idFrom(await fetchOne(...)));
 */
export async function step<T>(
  session: Session,
  what: string,
  action: () => Promise<T>,
  who: string = userOf(session),
): Promise<T> {
  try {
    return await action();
  } catch (cause) {
    if (cause instanceof StepError) throw cause;
    throw new StepError(what, who, reasonOf(cause), cause);
  }
}

/**
 * Throws a StepError unless `ok`: the action was answered, but its effect is not on the page. `who` is a
 * session (its user) or the words for the user.
 *
 *   confirm(shown === body, "reply to thread 7", session, "the reply did not appear on the thread", page);
 */
export function confirm(ok: boolean, what: string, who: Session | string, seen: string, page: Page): void {
  if (!ok) {
    throw new StepError(
      what,
      typeof who === "string" ? who : userOf(who),
      `${seen} (${shownUrl(page.url)})`,
      undefined,
      page,
    );
  }
}

/**
 * Submits the page's form found by `formQuery` with `values` over its own fields (a CSRF token kept), or
 * throws a StepError saying plainly that the page offers no such form (not logged in, say). `values` are
 * submitForm's: `null` leaves a field out (an unchecked checkbox), an array sends a name once per value.
 *
 *   const basket = await submitPageForm(session, page, "//html:form[@id='basket']", { quantity }, what);
 */
export async function submitPageForm(
  session: Session,
  page: Page,
  formQuery: string,
  values: FormValues,
  what: string,
  who: Session | string = session,
): Promise<Page> {
  try {
    return await submitForm(session, page, formQuery, values);
  } catch (error) {
    if (error instanceof FormNotFoundError) confirm(false, what, who, `the page offers no form to ${what}`, page);
    throw error;
  }
}
