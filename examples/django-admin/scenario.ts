/**
 * The load scenario for Django's admin site: staff users log in, each adds an author of their own, then adds
 * books by that author and edits them through the admin's forms; at the end, every book the run added must be
 * in the change list.
 *
 *   npx tsx examples/django-admin/scenario.ts --users 100 --actions 5        # starts the admin itself
 *   deno run -A examples/django-admin/scenario.ts --url http://127.0.0.1:8000/ --users 100 --report report.html
 */
import { number, scenario } from "../../lib/tierload.ts";
import { addAuthor, addBook, editBook, findBooks, login } from "./adapter.ts";
import { ADMIN, startDjangoAdmin } from "./server.ts";

export default scenario<{ editShare: number }, undefined, { id: number; title: string }>(import.meta, {
  name: "django-admin",
  description: "Staff users add authors and books through Django's admin, and edit the books",
  options: (command) =>
    command.option("--edit-share <fraction>", "share of actions that edit one of the user's books", number(0, 1), 0.3),
  about: (options) => `edit share ${options.editShare}`,
  start: () => startDjangoAdmin(),
  user: async ({ url, name, options, act, repeat, random, keep }) => {
    const staff = await act("login", () => login(url, ADMIN.username, ADMIN.password));
    const author = staff && await act("add author", () => addAuthor(staff, `Author ${name}`));
    if (!staff || author === undefined) return;
    const books: number[] = [];
    await repeat(async (n) => {
      if (books.length > 0 && random() < options.editShare) {
        const id = books[Math.floor(random() * books.length)];
        await act("edit book", () => editBook(staff, id, { pages: 200 + n }));
        return;
      }
      const title = `Book ${name} #${n}`;
      const id = await act("add book", () => addBook(staff, title, author, 100 + n));
      if (id !== undefined) books.push(id);
      keep(id === undefined ? undefined : { id, title });
    });
  },
  steps: (options) => 2 + options.actions,
  // The users' titles carry the run's instance name, so the admin's search box finds this run's books alone.
  checkName: "Nothing lost",
  check: async ({ url, options, kept, exact }) => {
    const { count } = await findBooks(await login(url, ADMIN.username, ADMIN.password), options.instance);
    const ok = exact ? count === kept.length : count >= kept.length;
    return {
      ok,
      counted: { books: kept.length },
      summary: "all {books} books the run added are in the admin's change list, counted {how}",
      findings: ok ? [] : [`the change list finds ${count} books of this run; the users added ${kept.length}`],
    };
  },
});
