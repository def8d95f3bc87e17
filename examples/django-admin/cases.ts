/**
 * The functional cases for Django's admin site: a staff user logs in, adds authors and books through the admin's
 * own forms, finds them with its search box, edits and deletes them; and the admin refuses what it must.
 *
 *   npx tsx examples/django-admin/cases.ts                  # starts the admin itself (see server.ts)
 *   deno run -A examples/django-admin/cases.ts --url http://127.0.0.1:8000/ --reporter junit > results.xml
 */
import assert from "node:assert/strict";
import { suite } from "../../lib/tierload.ts";
import { addAuthor, addBook, deleteBook, editBook, findBooks, login, logout } from "./adapter.ts";
import { ADMIN, startDjangoAdmin } from "./server.ts";

export const cases = suite(import.meta, {
  name: "django-admin",
  description: "Django's admin site: a staff user adds, finds, edits and deletes books through the admin's forms",
  start: () => startDjangoAdmin(),
  world: ({ url, unique }) => ({
    url,
    unique,
    staff: () => login(url, ADMIN.username, ADMIN.password),
    /** The staff user, logged in, with an author of the case's own. */
    async staffWithAuthor() {
      const staff = await login(url, ADMIN.username, ADMIN.password);
      return { staff, author: await addAuthor(staff, unique("Author")) };
    },
  }),
});
const test = cases.test;

test("a staff user adds a book and finds it by its title in the change list", async ({ staffWithAuthor, unique }) => {
  const { staff, author } = await staffWithAuthor();
  const title = unique("The Dispossessed");
  const id = await addBook(staff, title, author, 387);
  const { rows, count } = await findBooks(staff, title);
  assert.equal(count, 1);
  assert.deepEqual(rows.map((row) => [row.id, row.title, row.pages]), [[id, title, 387]]);
});

test("adding a book adds one to the change list's count of books", async ({ staffWithAuthor, unique }) => {
  const { staff, author } = await staffWithAuthor();
  const before = (await findBooks(staff)).count;
  await addBook(staff, unique("Counted"), author);
  assert.equal((await findBooks(staff)).count, before + 1);
});

test("a title with quotes, an ampersand and accents is shown as it was typed", async ({ staffWithAuthor, unique }) => {
  const { staff, author } = await staffWithAuthor();
  const title = unique(`It's "Tom & Jerry" <b>à la carte</b>`);
  await addBook(staff, title, author);
  assert.deepEqual((await findBooks(staff, title)).rows.map((row) => row.title), [title]);
});

test("editing a book through its change form changes its row", async ({ staffWithAuthor, unique }) => {
  const { staff, author } = await staffWithAuthor();
  const id = await addBook(staff, unique("Draft"), author, 10);
  const title = unique("Final");
  await editBook(staff, id, { title, pages: 20 });
  assert.deepEqual((await findBooks(staff, title)).rows.map((row) => [row.id, row.pages]), [[id, 20]]);
});

test("deleting a book removes it from the change list", async ({ staffWithAuthor, unique }) => {
  const { staff, author } = await staffWithAuthor();
  const title = unique("Gone");
  await deleteBook(staff, await addBook(staff, title, author));
  assert.equal((await findBooks(staff, title)).count, 0);
});

test("a wrong password is refused with the admin's message", async ({ url }) => {
  await assert.rejects(login(url, ADMIN.username, "wrong"), /Cannot log in as "admin": .*correct username/);
});

test("after logging out, the admin's add form asks to log in again", async ({ staffWithAuthor, unique }) => {
  const { staff, author } = await staffWithAuthor();
  await logout(staff);
  await assert.rejects(addBook(staff, unique("Late"), author), /anonymous visitor: the admin answered its login page/);
});

test("editing a book that does not exist is refused with the admin's message", async ({ staff }) => {
  await assert.rejects(editBook(await staff(), 999_999, { pages: 1 }), /Cannot edit the book 999999 .*doesn’t exist/);
});

/** What the admin's forms refuse: a row each, run through one case (Robot Framework's templates). */
const refusedBooks: [what: string, title: string, pages: number, message: RegExp][] = [
  ["a book without a title", "", 100, /Cannot add the book "" as "admin": .*This field is required/],
  ["a book of -1 pages", "Negative", -1, /Cannot add the book "Negative" .*greater than or equal to 0/],
];
for (const [what, title, pages, message] of refusedBooks) {
  test(`${what} is refused with the admin's message`, async ({ staffWithAuthor }) => {
    const { staff, author } = await staffWithAuthor();
    await assert.rejects(addBook(staff, title, author, pages), message);
  });
}

test("a second author of the same name is refused with the admin's message", async ({ staff, unique }) => {
  const session = await staff();
  const name = unique("Twin");
  await addAuthor(session, name);
  await assert.rejects(addAuthor(session, name), /Cannot add the author .* Author with this Name already exists/);
});
