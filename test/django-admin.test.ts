// The Django example (examples/django-admin/) against the real thing: Debian's Django admin under gunicorn, on the
// embedded PostgreSQL. Its cases pass, its refusals say what the admin said, and its load scenario's 100 x 5 run
// passes with the verdict, the end-state check and the report. Without Django, one skipped test says so by name.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { formatReport, parseLoadOptions, renderReport, runLoad, type StartedApp, StepError } from "../lib/tierload.ts";
import { addAuthor, addBook, login } from "../examples/django-admin/adapter.ts";
import { cases } from "../examples/django-admin/cases.ts";
import djangoAdmin from "../examples/django-admin/scenario.ts";
import { ADMIN, djangoMissing, startDjangoAdmin } from "../examples/django-admin/server.ts";

const missing = djangoMissing();

if (missing) {
  test("Django is not installed (apt-get install python3-django python3-psycopg2 python3-gunicorn)", { skip: missing });
} else {
  describe("Django's admin site", () => {
    let site: StartedApp;
    before(async () => site = await startDjangoAdmin({ log: () => {}, fastPasswords: true }));
    after(() => site?.stop());

    test("the example's functional cases pass against a started admin", async () => {
      const results = await cases.run(site.url);
      const failed = results.filter((result) => result.error !== undefined);
      assert.deepEqual(failed.map((result) => [result.name, ...cases.describeFailure(result.error)]), []);
      assert.equal(results.length, cases.cases.length);
    });

    test("a refused step names the step, the user, the admin's own message and the page", async () => {
      const staff = await login(site.url, ADMIN.username, ADMIN.password);
      const author = await addAuthor(staff, `Refused ${Date.now()}`);
      const error = await addBook(staff, "", author).then(() => null, (caught) => caught);
      assert.ok(error instanceof StepError, `expected a StepError, got ${error}`);
      assert.equal(
        error.message,
        `Cannot add the book "" as "admin": the admin answered "Please correct the error below. This field is ` +
          `required." (${site.url}admin/library/book/add/)`,
      );
      assert.equal(error.status, 200);
      const described = cases.describeFailure(error).join("\n");
      assert.match(described, /Cannot add the book "" as "admin"/);
      assert.match(described, /admin\/library\/book\/add\//);
    });

    test("100 users x 5 actions pass with the verdict, the end-state check and the report", async () => {
      const argv = ["node", "scenario.ts", "--url", site.url, "--users", "100", "--actions", "5"];
      const results = await runLoad(djangoAdmin, parseLoadOptions(djangoAdmin, argv));
      const report = formatReport(results);
      assert.equal(results.verdict.ok, true, report);
      const actions = Object.entries(results.actions).filter(([, action]) => action.kind === "action");
      assert.deepEqual(actions.map(([name]) => name).sort(), [
        "add author",
        "add book",
        "edit book",
        "login",
      ]);
      assert.equal(results.actions["login"].count, 100);
      assert.equal(results.check?.ok, true, report);
      assert.equal(results.check?.counted.books, results.actions["add book"].count);
      // Page loads are named by the adapter: a book's change form is one row, whatever its id.
      assert.ok(results.actions["POST /admin/library/book/{id}/change/"], Object.keys(results.actions).join(", "));
      assert.match(report, /Verdict: PASS/);
      assert.match(renderReport(results), /<tr class="action"><th>edit book<\/th>/);
    });
  });
}
