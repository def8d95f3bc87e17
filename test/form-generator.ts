// Random forms for the differential test against Chromium: every control type, mixed and nested, owned by the
// form through ancestry or its form= attribute, disabled one way or another, in UTF-8 or a legacy encoding.
// A seed gives the same form every time, so a failing case can be run again alone.

/** A file the test puts into a file input, in the browser and through submitForm's values alike. */
export interface GeneratedFile {
  name: string;
  mimeType: string;
  content: string;
}

export interface GeneratedForm {
  seed: number;
  /** The whole page, ASCII only (other characters as references), so any encoding can serve it. */
  html: string;
  /** The charset the page is served with. */
  encoding: string;
  /** How the form is submitted: Enter in its text field (the default button), a named button, or form.submit(). */
  mode: "enter" | "button" | "script";
  /** Text typed into uniquely named text fields: control id, name, value. */
  typed: { id: string; name: string; value: string }[];
  /** Files chosen in uniquely named file inputs. */
  files: { id: string; name: string; files: GeneratedFile[] }[];
}

/** mulberry32: small, seeded, good enough to pick among choices. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
  const chance = (p: number) => next() < p;
  return { next, pick, chance };
}

const TEXTS = [
  "",
  "a",
  "x y",
  "a&b=c",
  "100%",
  "+plus",
  "é",
  "€uro",
  "日本",
  "😀",
  "two\nlines",
  "cr\rlf\r\nend",
  'quote"s',
  "tab\there",
  " padded ",
  "שלום",
  "abc שלום",
  "ü ß Ł",
  "<tag>",
  "semi;colon",
];

const TYPED_VALUES: Record<string, string[]> = {
  number: ["", "12", "-3.5", "1e3", ".5", "5.", "+1", "abc", "0x10", " 7"],
  range: ["", "30", "150", "-5", "7.5", "abc", "99.6"],
  // Not "red": Chromium parses CSS colour names, submitForm does not (see lib/form.ts).
  color: ["", "#FFaa00", "#abc", "#abcd", "#123456", " #000 "],
  date: ["", "2024-02-29", "2023-02-29", "2024-13-01", "0000-01-01", "12024-01-01", "2024-1-1"],
  month: ["", "2024-02", "2024-13", "999-01"],
  week: ["", "2020-W53", "2021-W53", "2024-W01", "2024-W1"],
  time: ["", "10:30", "23:59:59", "10:30:00.5", "24:00", "9:30"],
  "datetime-local": ["", "2024-01-01T10:00", "2024-01-01 10:00:00", "2024-01-01T10:00:30.250", "2024-01-01T25:00"],
  email: ["", " a@b.c ", "a@b.c,  d@e.f", "not an email", "x@y\n.z"],
  url: ["", " http://x.test/ ", "relative", "http://a\nb/"],
};

const INPUT_TYPES = [
  "text",
  "TEXT",
  "search",
  "tel",
  "password",
  "hidden",
  "email",
  "url",
  "number",
  "range",
  "color",
  "date",
  "month",
  "week",
  "time",
  "datetime-local",
  "checkbox",
  "radio",
  "file",
  "submit",
  "image",
  "reset",
  "button",
  "bogus",
];

function escapeText(value: string): string {
  return [...value].map((c) => {
    const code = c.codePointAt(0)!;
    if (c === "&") return "&amp;";
    if (c === "<") return "&lt;";
    if (c === ">") return "&gt;";
    if (c === '"') return "&quot;";
    if (c === "\r" || code > 0x7e) return `&#${code};`;
    return c;
  }).join("");
}

const escapeAttribute = (value: string) => escapeText(value).replace(/\n/g, "&#10;").replace(/\t/g, "&#9;");

export function generateForm(seed: number): GeneratedForm {
  const r = random(seed);
  let counter = 0;
  const names: string[] = [];
  const typed: GeneratedForm["typed"] = [];
  const files: GeneratedForm["files"] = [];
  const usedNames = new Map<string, number>();
  const name = (preferred?: string): string => {
    const chosen = preferred ??
      (r.chance(0.25) && names.length
        ? r.pick(names)
        : r.pick(["f", "g", "h", "name", "q2", "x", "a b", "é", "n\nl", 'q"t']) +
          (r.chance(0.6) ? String(counter) : ""));
    names.push(chosen);
    usedNames.set(chosen, (usedNames.get(chosen) ?? 0) + 1);
    return chosen;
  };
  const nameAttribute = (n: string) =>
    r.chance(0.06) ? "" : r.chance(0.04) ? ` name=""` : ` name="${escapeAttribute(n)}"`;
  const common = () =>
    (r.chance(0.12) ? " disabled" : "") +
    (r.chance(0.1) ? ` dir="${r.pick(["ltr", "rtl", "auto", "RTL"])}"` : "");
  const formAttribute = (inside: boolean) => {
    if (!r.chance(inside ? 0.12 : 1)) return "";
    return ` form="${r.pick(inside ? ["other", "nope", "target", ""] : ["target", "target", "other", "nope"])}"`;
  };
  const submitterAttributes = () => {
    let a = "";
    if (r.chance(0.25)) a += ` formaction="${r.pick(["", "/alt", "alt2?keep=1", "/alt#frag", " /padded "])}"`;
    if (r.chance(0.25)) a += ` formmethod="${r.pick(["get", "post", "POST", "put"])}"`;
    if (r.chance(0.25)) {
      a += ` formenctype="${
        r.pick(["multipart/form-data", "text/plain", "application/x-www-form-urlencoded", "bad"])
      }"`;
    }
    return a;
  };

  let inTarget = false;
  function control(inside: boolean): string {
    const id = `c${++counter}`;
    const kind = r.pick(["input", "input", "input", "input", "textarea", "select", "button"]);
    const owner = formAttribute(inside);
    if (kind === "textarea") {
      const n = name();
      const content = (r.chance(0.3) ? "\n" : "") + r.pick(TEXTS) + (r.chance(0.3) ? "\r\nmore\n" : "");
      const dirname = r.chance(0.25) ? ` dirname="${escapeAttribute(n)}.dir"` : "";
      return `<textarea id=${id}${nameAttribute(n)}${owner}${common()}${dirname}>${escapeText(content)}</textarea>`;
    }
    if (kind === "select") {
      const multiple = r.chance(0.3);
      const size = r.chance(0.2) ? ` size="${r.pick(["0", "1", "2", "x"])}"` : "";
      let options = "";
      const count = Math.floor(r.next() * 5);
      for (let i = 0; i < count; i++) {
        const value = r.chance(0.7) ? ` value="${escapeAttribute(r.pick(TEXTS))}"` : "";
        const option = `<option${value}${r.chance(0.25) ? " selected" : ""}${r.chance(0.2) ? " disabled" : ""}>` +
          `${escapeText(r.pick(["  spaced   label ", "Label", "é", "", "x\ny"]))}</option>`;
        options += r.chance(0.2) ? `<optgroup label=g${r.chance(0.4) ? " disabled" : ""}>${option}</optgroup>` : option;
      }
      return `<select id=${id}${nameAttribute(name())}${owner}${common()}${multiple ? " multiple" : ""}${size}>` +
        `${options}</select>`;
    }
    if (kind === "button") {
      const type = r.pick(["", ` type=submit`, ` type=reset`, ` type=button`, ` type=BOGUS`]);
      const value = r.chance(0.6) ? ` value="${escapeAttribute(r.pick(TEXTS))}"` : "";
      return `<button id=${id}${type}${nameAttribute(name())}${value}${owner}${common()}${submitterAttributes()}>` +
        `${escapeText(r.pick(["Go", "Save", "Preview"]))}</button>`;
    }
    const type = r.pick(INPUT_TYPES);
    const lower = type.toLowerCase();
    let attributes = r.chance(0.5) || type === "bogus" ? ` type=${type}` : ` type="${type}"`;
    const n = name();
    const named = nameAttribute(n);
    attributes += named;
    const pool = TYPED_VALUES[lower] ?? TEXTS;
    if (r.chance(0.75)) attributes += ` value="${escapeAttribute(r.pick(pool))}"`;
    if (lower === "checkbox" || lower === "radio") attributes += r.chance(0.55) ? " checked" : "";
    if (lower === "range" && r.chance(0.5)) {
      attributes += ` min="${r.pick(["0", "10", "-20"])}" max="${r.pick(["100", "40", "5"])}"`;
      if (r.chance(0.5)) attributes += ` step="${r.pick(["5", "0.5", "any", "0"])}"`;
    }
    if (lower === "email" && r.chance(0.3)) attributes += " multiple";
    if (["text", "search", "hidden", "tel", "url", "email", "password", "submit"].includes(lower) && r.chance(0.2)) {
      attributes += ` dirname="${escapeAttribute(n)}.dir"`;
    }
    if (lower === "submit" || lower === "image") attributes += submitterAttributes();
    if (lower === "image") attributes += ` alt=img`;
    if (lower === "file" && r.chance(0.3)) attributes += " multiple";
    const disabled = common();
    if (!disabled.includes("disabled") && owner === "" && inTarget && named.length > ' name=""'.length) {
      if (lower === "text" && r.chance(0.4)) {
        typed.push({
          id,
          name: n,
          value: r.pick(TEXTS.filter((t) => !/[\r\n]/.test(t))),
        });
      }
      if (lower === "file" && r.chance(0.7)) {
        const chosen = Array.from({ length: r.chance(0.3) ? 2 : 1 }, (_, i) => ({
          name: r.pick(["a.txt", "report.csv", "é.bin", 'q"uote.txt', "no-type"]) + (i ? i : ""),
          mimeType: r.pick(["text/plain", "text/csv", "application/octet-stream", "image/png"]),
          content: r.pick(["hello", "", "line1\r\nline2", "\u00ff\u0000bytes"]),
        }));
        files.push({ id, name: n, files: attributes.includes("multiple") ? chosen : chosen.slice(0, 1) });
      }
    }
    return `<input id=${id}${attributes}${owner}${disabled}>`;
  }

  function group(depth: number, inside: boolean): string {
    let html = "";
    const count = 1 + Math.floor(r.next() * 4);
    for (let i = 0; i < count; i++) {
      const shape = depth < 2
        ? r.pick(["control", "control", "control", "div", "fieldset", "table", "label", "datalist"])
        : "control";
      if (shape === "control") html += control(inside);
      else if (shape === "div") html += `<div${r.chance(0.2) ? ` dir=rtl` : ""}>${group(depth + 1, inside)}</div>`;
      else if (shape === "label") html += `<label>Field ${control(inside)}</label>`;
      else if (shape === "datalist") html += `<datalist id=dl${counter}><option value=x>${control(inside)}</datalist>`;
      else if (shape === "table") html += `<table><tr><td>${group(depth + 1, inside)}</td></tr></table>`;
      else {
        const legend = r.chance(0.6) ? `<legend>${group(depth + 1, inside)}</legend>` : "";
        html += `<fieldset${r.chance(0.5) ? " disabled" : ""}>${legend}${group(depth + 1, inside)}` +
          `${r.chance(0.3) ? `<legend>${control(inside)}</legend>` : ""}</fieldset>`;
      }
    }
    return html;
  }

  const method = r.pick(["get", "post", "post", "POST", "", "put"]);
  const enctype = r.pick([
    "",
    "multipart/form-data",
    "multipart/form-data",
    "text/plain",
    "application/x-www-form-urlencoded",
    "MULTIPART/FORM-DATA",
    "bogus",
  ]);
  const action = r.pick([
    null,
    "",
    "/submit",
    "submit?old=1",
    "/submit#frag",
    "http://127.0.0.1:PORT/abs",
    "?only=query",
  ]);
  const encoding = r.pick(["utf-8", "utf-8", "utf-8", "windows-1252", "iso-8859-2"]);
  const acceptCharset = r.chance(0.15)
    ? ` accept-charset="${r.pick(["windows-1252", "bogus ISO-8859-2", "utf-8", "nothing"])}"`
    : "";
  const before = r.chance(0.4) ? group(1, false) : "";
  inTarget = true;
  const inner = group(0, true);
  inTarget = false;
  const after = r.chance(0.4) ? group(1, false) : "";
  const other = r.chance(0.3) ? `<form id=other action=/other>${group(1, true)}</form>` : "";
  const mode = r.pick(["enter", "enter", "button", "button", "script"] as const);
  const enter = mode === "enter" ? `<input type=text name=enter id=enter value=typed>` : "";
  const attributes = [
    method ? ` method="${method}"` : "",
    enctype ? ` enctype="${enctype}"` : "",
    action === null ? "" : ` action="${escapeAttribute(action)}"`,
    acceptCharset,
  ].join("");
  const html = `<!DOCTYPE html><html><head><title>Form ${seed}</title></head><body>` +
    `${before}<form id=target novalidate${attributes}>${enter}${inner}</form>${other}${after}</body></html>`;
  const unique = (field: { name: string }) => usedNames.get(field.name) === 1 && !/[\r\n]/.test(field.name);
  return { seed, html, encoding, mode, typed: typed.filter(unique), files: files.filter(unique) };
}
