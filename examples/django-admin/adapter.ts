/**
 * Tier 2 for Django's admin site (./app): what a staff user does there, named so. The only file that knows the
 * admin's URLs, form ids and markup. Each action confirms its effect on the page the admin answers (its "was
 * added successfully" message, its change list) or throws a StepError naming the step, the user and what was seen.
 *
 *   const staff = await login(url, "admin", "admin");
 *   const author = await addAuthor(staff, "Ursula K. Le Guin");
 *   const book = await addBook(staff, "The Dispossessed", author);
 *   await editBook(staff, book, { pages: 387 });
 */
import {
  actAs,
  confirm,
  createSession,
  fetchPage,
  type Page,
  type Params,
  queryAll,
  queryOne,
  queryRows,
  type Session,
  step,
  submitPageForm,
} from "../../lib/tierload.ts";

export interface Book {
  id: number;
  title: string;
  author: string;
  pages: number;
}

/** The load report's name for a page load: ids become {id}, so `GET /admin/library/book/{id}/change/` is one row. */
export function nameRequest(method: string, url: URL): string {
  return `${method} ${url.pathname.replace(/\/\d+\//g, "/{id}/")}`;
}

const GREETED = "//html:div[@id='user-tools']/html:strong";
const SAVED = "//html:ul[@class='messagelist']/html:li[@class='success']/html:a[. = $name]/@href";
const FORM = {
  login: "//html:form[@id='login-form']",
  author: "//html:form[@id='author_form']",
  book: "//html:form[@id='book_form']",
  search: "//html:form[@id='changelist-search']",
  delete: "//html:form[.//html:input[@name='post']]",
};

/** What the admin said when it refused: its error note, each field's error, its warnings, its login page; else `otherwise`. */
function refusal(page: Page, otherwise: string): string {
  const said = queryAll(
    page,
    "//html:p[@class='errornote'] | //html:ul[@class='errorlist']/html:li | //html:li[@class='warning' or @class='error']",
  );
  if (said.length) return `the admin answered "${said.join(" ").replace(/\s+/g, " ")}"`;
  return queryAll(page, FORM.login).length ? "the admin answered its login page" : otherwise;
}

/** Logs a staff user in through the admin's login form (its CSRF token, its 302 to the index); answers the session. */
export function login(baseUrl: string, username: string, password: string): Promise<Session> {
  const session = createSession(baseUrl, { nameRequest });
  const who = JSON.stringify(username);
  return step(session, "log in", async () => {
    const form = await fetchPage(session, "admin/login/");
    const index = await submitPageForm(session, form, FORM.login, { username, password }, "log in");
    const greeted = queryAll(index, GREETED)[0] === username;
    confirm(greeted, "log in", who, refusal(index, `the admin does not greet ${who}`), index);
    return actAs(session, username);
  }, who);
}

/** Logs out (Django 3.2: a GET) and confirms that the admin no longer greets anyone. */
export function logout(session: Session): Promise<void> {
  return step(session, "log out", async () => {
    const page = await fetchPage(session, "admin/logout/");
    confirm(queryAll(page, GREETED).length === 0, "log out", session, "the admin still greets the user", page);
    actAs(session, null);
  });
}

/**
 * Opens the add or change form at `path`, saves it with `values` over its fields (`edit` may compute them from
 * the form), and answers the object's id from the admin's success message, which must name it as `values[shown]`.
 */
function save(session: Session, what: string, path: string, form: string, shown: string, edit: (form: Page) => Params) {
  return step(session, what, async () => {
    const page = await fetchPage(session, path);
    confirm(queryAll(page, form).length === 1, what, session, refusal(page, "the admin offers no form for it"), page);
    const values = edit(page);
    const saved = await submitPageForm(session, page, form, values, what);
    const [link] = queryAll(saved, SAVED, { name: String(values[shown]) });
    confirm(link !== undefined, what, session, refusal(saved, "the admin did not say it saved it"), saved);
    return Number(/\/(\d+)\/change\/$/.exec(link)?.[1]);
  });
}

/** Adds an author through the admin's add form; answers its id. */
export function addAuthor(session: Session, name: string): Promise<number> {
  const what = `add the author ${JSON.stringify(name)}`;
  return save(session, what, "admin/library/author/add/", FORM.author, "name", () => ({ name }));
}

/** Adds a book by the author of id `author` through the admin's add form; answers its id. */
export function addBook(session: Session, title: string, author: number, pages = 100): Promise<number> {
  const what = `add the book ${JSON.stringify(title)}`;
  return save(session, what, "admin/library/book/add/", FORM.book, "title", () => ({ title, author, pages }));
}

/** Changes a book through its change form (fields not given keep their values) and confirms the admin saved it. */
export async function editBook(
  session: Session,
  id: number,
  changes: { title?: string; author?: number; pages?: number },
): Promise<void> {
  await save(session, `edit the book ${id}`, `admin/library/book/${id}/change/`, FORM.book, "title", (form) => ({
    title: queryOne(form, "//html:input[@name='title']/@value"),
    // A <select>'s choice is its <option selected>, which the form's own fields do not carry.
    author: queryOne(form, "//html:select[@name='author']/html:option[@selected]/@value"),
    ...changes,
  }));
}

/** Deletes a book through its delete page ("Are you sure?") and confirms the admin's message. */
export function deleteBook(session: Session, id: number): Promise<void> {
  const what = `delete the book ${id}`;
  return step(session, what, async () => {
    const sure = await fetchPage(session, `admin/library/book/${id}/delete/`);
    const list = await submitPageForm(session, sure, FORM.delete, {}, what);
    const said = queryAll(list, "//html:li[@class='success'][contains(., 'was deleted successfully')]");
    confirm(said.length === 1, what, session, refusal(list, "the admin did not say it deleted the book"), list);
  });
}

/** The book change list as its search box answers `search` ("": all): its first page's rows, its "N books" count. */
export function findBooks(session: Session, search = ""): Promise<{ rows: Book[]; count: number }> {
  return step(session, `search the books for ${JSON.stringify(search)}`, async () => {
    const list = await fetchPage(session, "admin/library/book/");
    const found = await submitPageForm(session, list, FORM.search, { q: search }, "search the books");
    const rows = queryRows(found, "//html:table[@id='result_list']/html:tbody/html:tr", {
      id: "html:td/html:input[@name='_selected_action']/@value",
      title: "html:th[contains(@class, 'field-title')]",
      author: "html:td[contains(@class, 'field-author')]",
      pages: "html:td[contains(@class, 'field-pages')]",
    });
    const count = Number(queryOne(found, "//html:p[@class='paginator']", /(\d+) books?(?!\S)/));
    return { rows: rows.map((row) => ({ ...row, id: Number(row.id), pages: Number(row.pages) })), count };
  });
}
