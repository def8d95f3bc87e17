// The documentation shows the code as it is: each file docs/ shows in full is the file in the repository.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

test("docs/your-own-application.md shows the Django example's three files as they are", () => {
  const doc = readFileSync(new URL("../docs/your-own-application.md", import.meta.url), "utf8");
  const shown = [...doc.matchAll(/^## [^\n]*: `([^`]+)`\n\n```ts\n([^]*?)```$/gm)];
  assert.deepEqual(shown.map(([, file]) => file), [
    "examples/django-admin/adapter.ts",
    "examples/django-admin/cases.ts",
    "examples/django-admin/scenario.ts",
  ]);
  for (const [, file, code] of shown) {
    assert.equal(code, readFileSync(new URL(`../${file}`, import.meta.url), "utf8"), `${file} differs from the doc`);
  }
});
