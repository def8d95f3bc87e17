/**
 * What a browser sends when a form is submitted: the HTML standard's "constructing the entry list" over a
 * parsed page, then the form's method, action and encoding. Nothing here does HTTP; lib/fetchData.ts sends it.
 *
 *   const submission = await formSubmission(form, { url: page.url, encoding: "utf-8" }, { title: "Hi" });
 *   // form: a DOM element (its document read through the DOM), or a flat tree's (lib/flat-elements.ts)
 *   // { method: "POST", url: "http://…/new-thread", contentType: "application/x-www-form-urlencoded", body, entries }
 *
 * The rules followed, from the standard (https://html.spec.whatwg.org/#form-submission-algorithm):
 * - the form's controls are those it owns: its descendants without a `form` attribute, and anywhere in the
 *   page those whose `form` attribute names its id (an element whose `form` names another id, or one that is
 *   not a form, belongs to no form);
 * - left out: disabled controls, those in a disabled fieldset (but not in its first legend), buttons other than
 *   the submitter, unchecked checkboxes and radios, controls without a name (a control inside a datalist is
 *   sent: the standard leaves it out, Chromium does not);
 * - a checkbox or radio without a value sends `on`; of radios of one name with several checked, the last;
 * - a select sends its selected options, not disabled ones; a single select with none selected (and a
 *   display size of 1) sends its first option that is not disabled;
 * - an input's value is sanitized by its type as the browser does (newlines out of text, a number that is not
 *   one becomes empty, a hex colour as #rrggbb, a range clamped to its min and max);
 * - a textarea's newlines are normalised; every newline is sent as CR LF;
 * - an image button sends `name.x=0` and `name.y=0`; `dirname` sends the control's direction (and a submit
 *   input's even when another button submits, as Chromium does); a submit input without a value sends "Submit";
 * - a file input sends its files (from `values`), or an empty file;
 * - the submitter's `formaction`, `formmethod` and `formenctype` win over the form's own.
 * Not done: constraint validation (`required`, `pattern`: tierload sends what it is told, which is how a test
 * reaches the server's own checks), `wrap=hard` line breaking, CSS colour names, and the HTML parser's form
 * pointer (an input inside a table that a `<form>` opened inside that table belongs to no form here).
 */
import { encoderFor, encodingName } from "./encoding.ts";
import { evaluateXPath } from "./html.ts";

/** A value given for a field: text, or a file for a file input (a Blob becomes a file named "blob"). */
export type FormValue = string | number | boolean | Blob;

/**
 * Values that replace what the form would send for a name: one value, several (a multiple select, checkboxes
 * of one name), or null to send nothing for it. A name the form does not have is added at the end.
 */
export type FormValues = Record<string, FormValue | FormValue[] | null>;

export interface SubmitOptions {
  /**
   * The button the user presses, by its name (or, when no button has that name, by its label), or the element.
   * Default: the form's default button, its first submit button, as pressing Enter in a field does (none if it
   * has none; an error if that button is disabled, as Enter then sends nothing); null: no button at all, as a
   * script's form.submit().
   */
  submitter?: string | Element | null;
}

/**
 * What the entry list reads of an element: a DOM Element has it, and so does lib/flat-elements.ts's view of a
 * flat tree, so that a page's form is read without building a DOM. The same element is always the same object.
 */
export interface FormElement {
  readonly localName: string;
  getAttribute(name: string): string | null;
  hasAttribute(name: string): boolean;
  readonly parentElement: FormElement | null;
  readonly children: ArrayLike<FormElement>;
  readonly childNodes: ArrayLike<{ readonly nodeType: number; readonly nodeValue: string | null }>;
  readonly textContent: string | null;
}

/** What the form reads of its page beyond the form: the base URL, an id's element, the controls it may own. */
export interface FormPageTree {
  /** The first `<base href>`'s href, or null. */
  baseHref(): string | null;
  /** The first element with this id, in tree order. */
  byId(id: string): FormElement | null;
  /** In tree order: the form's HTML button, input, select and textarea descendants, and every HTML element with a form attribute. */
  candidates(form: FormElement): FormElement[];
}

/** A DOM document as the form reads it. */
function domTree(document: Document): FormPageTree {
  return {
    baseHref: () => document.querySelector("base[href]")?.getAttribute("href") ?? null,
    byId(id) {
      const found = evaluateXPath(document, "//*[@id=$id]", { id });
      return Array.isArray(found) && found.length ? found[0] as Element : null;
    },
    candidates: (form) =>
      evaluateXPath(
        form as Element,
        ".//html:button | .//html:input | .//html:select | .//html:textarea | //html:*[@form]",
      ) as Element[],
  };
}

/** One name and value of the form data set. */
export interface Entry {
  name: string;
  value: string | File;
}

export type Enctype = "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain";

/** What a browser sends: GET with the entries in the URL's query, or POST with a body. */
export interface FormSubmission {
  method: "GET" | "POST";
  /** The URL navigated to (a GET form's entries are its query); its fragment, if any, is not sent. */
  url: string;
  entries: Entry[];
  enctype: Enctype;
  /** The encoding names and values are sent in. */
  encoding: string;
  /** For a POST: the Content-Type header (multipart's with its boundary) and the body. */
  contentType?: string;
  body?: Uint8Array;
}

/** The page a form is on: the URL it was fetched from and the encoding it was decoded with. */
export interface FormPage {
  url: string;
  encoding: string;
}

const SUBMITTABLE = new Set(["button", "input", "select", "textarea"]);

/** The form could not be submitted as asked (no such button, a disabled one, a method that sends nothing). */
export class FormSubmissionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FormSubmissionError";
  }
}

/** Builds what a browser sends for `form` on `page`, with `values` in place of the form's own. */
export async function formSubmission(
  form: FormElement,
  page: FormPage,
  values: FormValues = {},
  options: SubmitOptions = {},
  tree: FormPageTree = domTree((form as Element).ownerDocument),
): Promise<FormSubmission> {
  const controls = ownedControls(form, tree);
  const submitter = chooseSubmitter(controls, options.submitter);
  const encoding = formEncoding(form, page);
  const entries = applyValues(entryList(controls, submitter, encoding), values);

  const attribute = (name: string, formName: string) =>
    submitter?.hasAttribute(formName) ? submitter.getAttribute(formName)! : form.getAttribute(name);
  const method = (attribute("method", "formmethod") ?? "get").toLowerCase();
  if (method === "dialog") {
    throw new FormSubmissionError("its method is dialog, which closes a dialog and sends nothing");
  }
  const actionValue = attribute("action", "formaction");
  const base = baseUrl(tree, page.url);
  let action: URL;
  try {
    action = actionValue ? new URL(actionValue, base) : new URL(page.url);
  } catch {
    throw new FormSubmissionError(`its action ${JSON.stringify(actionValue)} is not a URL`);
  }
  if (action.protocol !== "http:" && action.protocol !== "https:") {
    throw new FormSubmissionError(`its action ${action.href} is not HTTP`);
  }
  const enctype = parseEnctype(attribute("enctype", "formenctype"));
  const encode = encoderFor(encoding);
  if (method !== "post") {
    // The query is replaced, and an empty one is still there: `action?`.
    const hash = action.hash;
    action.hash = action.search = "";
    const url = `${action.href}?${urlencoded(entries, encode)}${hash}`;
    return { method: "GET", url, entries, enctype, encoding };
  }
  if (enctype === "multipart/form-data") {
    const boundary = `----tierloadFormBoundary${crypto.randomUUID().replaceAll("-", "")}`;
    const body = await multipart(entries, encode, boundary);
    const contentType = `${enctype}; boundary=${boundary}`;
    return { method: "POST", url: action.href, entries, enctype, encoding, contentType, body };
  }
  const body = enctype === "text/plain"
    ? encode(pairs(entries).map(([name, value]) => `${name}=${value}\r\n`).join(""))
    : new TextEncoder().encode(urlencoded(entries, encode));
  return { method: "POST", url: action.href, entries, enctype, encoding, contentType: enctype, body };
}

function parseEnctype(value: string | null): Enctype {
  const lower = (value ?? "").toLowerCase();
  return lower === "multipart/form-data" || lower === "text/plain" ? lower : "application/x-www-form-urlencoded";
}

/** The document's base URL: its first `<base href>`, resolved against the page's URL. */
function baseUrl(tree: FormPageTree, pageUrl: string): string {
  const href = tree.baseHref();
  if (href === null) return pageUrl;
  try {
    return new URL(href, pageUrl).href;
  } catch {
    return pageUrl;
  }
}

/** The form's accept-charset (its first encoding a browser knows), else the page's encoding. */
function formEncoding(form: FormElement, page: FormPage): string {
  const accept = form.getAttribute("accept-charset");
  if (accept !== null) {
    const known = accept.split(/[\t\n\f\r ]+/).filter(Boolean).map(encodingName).find(Boolean);
    return known ?? "utf-8";
  }
  return page.encoding;
}

// ---------------------------------------------------------------------------------------------
// Owners and the submitter
// ---------------------------------------------------------------------------------------------

/** The form owner of a listed element: the form its `form` attribute names, or its nearest form ancestor. */
function formOwner(element: FormElement, tree: FormPageTree): FormElement | null {
  if (element.hasAttribute("form")) {
    const id = element.getAttribute("form");
    const named = id ? tree.byId(id) : null;
    return named?.localName === "form" ? named : null;
  }
  for (let e = element.parentElement; e; e = e.parentElement) if (e.localName === "form") return e;
  return null;
}

/** The submittable elements the form owns, in tree order. */
function ownedControls(form: FormElement, tree: FormPageTree): FormElement[] {
  return tree.candidates(form).filter((e) => SUBMITTABLE.has(e.localName) && formOwner(e, tree) === form);
}

function inputType(element: FormElement): string {
  const type = (element.getAttribute("type") ?? "").toLowerCase();
  return INPUT_TYPES.has(type) ? type : "text";
}

const INPUT_TYPES = new Set([
  "hidden",
  "text",
  "search",
  "tel",
  "url",
  "email",
  "password",
  "date",
  "month",
  "week",
  "time",
  "datetime-local",
  "number",
  "range",
  "color",
  "checkbox",
  "radio",
  "file",
  "submit",
  "image",
  "reset",
  "button",
]);

function isButton(element: FormElement): boolean {
  if (element.localName === "button") return true;
  return element.localName === "input" && ["submit", "image", "reset", "button"].includes(inputType(element));
}

function isSubmitButton(element: FormElement): boolean {
  if (element.localName === "button") {
    const type = (element.getAttribute("type") ?? "submit").toLowerCase();
    return type !== "reset" && type !== "button";
  }
  return element.localName === "input" && ["submit", "image"].includes(inputType(element));
}

/** A control is disabled by its own attribute, or by a disabled fieldset (outside that fieldset's first legend). */
function isDisabled(element: FormElement): boolean {
  if (element.hasAttribute("disabled")) return true;
  let child: FormElement = element;
  for (let e = element.parentElement; e; child = e, e = e.parentElement) {
    if (e.localName === "fieldset" && e.hasAttribute("disabled")) {
      const legend = Array.from(e.children).find((c) => c.localName === "legend");
      if (legend !== child) return true;
    }
  }
  return false;
}

function label(button: FormElement): string {
  return (button.localName === "button" ? button.textContent ?? "" : button.getAttribute("value") ?? "").trim();
}

function describe(button: FormElement): string {
  const name = button.getAttribute("name");
  return name ? JSON.stringify(name) : `(no name, labelled ${JSON.stringify(label(button))})`;
}

function chooseSubmitter(controls: FormElement[], wanted: SubmitOptions["submitter"]): FormElement | null {
  if (wanted === null) return null;
  const buttons = controls.filter(isSubmitButton);
  if (wanted === undefined) {
    const byDefault = buttons[0];
    if (byDefault && isDisabled(byDefault)) {
      throw new FormSubmissionError(
        `its default button ${describe(byDefault)} is disabled, so Enter would not submit it; ` +
          `name another submitter, or pass { submitter: null } to send the form without one`,
      );
    }
    return byDefault ?? null;
  }
  const found = typeof wanted === "string"
    ? buttons.find((b) => b.getAttribute("name") === wanted) ?? buttons.find((b) => label(b) === wanted)
    : buttons.find((b) => b === wanted);
  if (!found) {
    const what = typeof wanted === "string" ? JSON.stringify(wanted) : `<${wanted.localName}>`;
    const names = buttons.map(describe).join(", ") || "none";
    throw new FormSubmissionError(`it has no submit button ${what}; its submit buttons: ${names}`);
  }
  if (isDisabled(found)) throw new FormSubmissionError(`its submit button ${describe(found)} is disabled`);
  return found;
}

// ---------------------------------------------------------------------------------------------
// The entry list
// ---------------------------------------------------------------------------------------------

function entryList(controls: FormElement[], submitter: FormElement | null, encoding: string): Entry[] {
  const entries: Entry[] = [];
  const checkedRadios = lastCheckedRadios(controls);
  for (const field of controls) {
    if (isDisabled(field)) continue;
    const type = field.localName === "input" ? inputType(field) : field.localName;
    if (isButton(field) && field !== submitter) {
      // Chromium sends a named submit input's dirname even when another button submits the form.
      if (type === "submit" && field.getAttribute("name")) appendDirname(entries, field, inputValue(field, type));
      continue;
    }
    if (type === "checkbox" && !field.hasAttribute("checked")) continue;
    if (type === "radio" && !checkedRadios.has(field)) continue;
    const name = field.getAttribute("name") ?? "";
    if (type === "submit" && field === submitter) {
      // Chromium sends a submitter's dirname before its value.
      if (name) appendDirname(entries, field, inputValue(field, type));
      // Without a value, Chromium sends the label it shows: "Submit".
      if (name) entries.push({ name, value: field.getAttribute("value") ?? "Submit" });
      continue;
    }
    if (type === "image") {
      const prefix = name ? `${name}.` : "";
      entries.push({ name: `${prefix}x`, value: "0" }, { name: `${prefix}y`, value: "0" });
      continue;
    }
    if (!name) continue;
    if (field.localName === "select") {
      for (const option of selectedOptions(field)) {
        if (!isOptionDisabled(option)) entries.push({ name, value: optionValue(option) });
      }
    } else if (type === "checkbox" || type === "radio") {
      entries.push({ name, value: field.getAttribute("value") ?? "on" });
    } else if (type === "file") {
      entries.push({ name, value: new File([], "", { type: "application/octet-stream" }) });
    } else if (type === "hidden" && name.toLowerCase() === "_charset_") {
      entries.push({ name, value: encoding });
    } else if (field.localName === "textarea") {
      const value = (field.textContent ?? "").replace(/\r\n?/g, "\n");
      entries.push({ name, value });
      appendDirname(entries, field, value);
    } else {
      const value = field.localName === "button" ? field.getAttribute("value") ?? "" : inputValue(field, type);
      entries.push({ name, value });
      appendDirname(entries, field, value);
    }
  }
  return entries;
}

function appendDirname(entries: Entry[], field: FormElement, value: string): void {
  const dirname = field.getAttribute("dirname");
  if (dirname && (field.localName === "textarea" || DIRNAME_TYPES.has(inputType(field)))) {
    entries.push({ name: dirname, value: direction(field, value) });
  }
}

const DIRNAME_TYPES = new Set(["hidden", "text", "search", "tel", "url", "email", "password", "submit"]);

/** Of the checked radios of one name, the last in tree order: each one checked unchecks the others. */
function lastCheckedRadios(controls: FormElement[]): Set<FormElement> {
  const last = new Map<string, FormElement>();
  const unnamed = new Set<FormElement>();
  for (const c of controls) {
    if (c.localName !== "input" || inputType(c) !== "radio" || !c.hasAttribute("checked")) continue;
    const name = c.getAttribute("name");
    if (name) last.set(name, c);
    else unnamed.add(c);
  }
  return new Set([...last.values(), ...unnamed]);
}

function listOfOptions(select: FormElement): FormElement[] {
  const options: FormElement[] = [];
  for (const child of Array.from(select.children)) {
    if (child.localName === "option") options.push(child);
    else if (child.localName === "optgroup") {
      for (const o of Array.from(child.children)) if (o.localName === "option") options.push(o);
    }
  }
  return options;
}

function isOptionDisabled(option: FormElement): boolean {
  if (option.hasAttribute("disabled")) return true;
  const parent = option.parentElement;
  return parent?.localName === "optgroup" && parent.hasAttribute("disabled");
}

/** The options a select starts with selected, after the standard's selectedness setting algorithm. */
function selectedOptions(select: FormElement): FormElement[] {
  const options = listOfOptions(select);
  const selected = options.filter((o) => o.hasAttribute("selected"));
  if (select.hasAttribute("multiple")) return selected;
  if (selected.length) return [selected[selected.length - 1]];
  const size = /^\s*(\d+)/.exec(select.getAttribute("size") ?? "")?.[1];
  if (size !== undefined && Number(size) > 1) return [];
  const first = options.find((o) => !isOptionDisabled(o));
  return first ? [first] : [];
}

function optionValue(option: FormElement): string {
  const value = option.getAttribute("value");
  if (value !== null) return value;
  return (option.textContent ?? "").replace(/[\t\n\f\r ]+/g, " ").trim();
}

// ---------------------------------------------------------------------------------------------
// Values as the input types sanitize them
// ---------------------------------------------------------------------------------------------

const stripNewlines = (v: string) => v.replace(/[\r\n]/g, "");
const stripSpace = (v: string) => v.replace(/^[\t\n\f\r ]+|[\t\n\f\r ]+$/g, "");
const FLOAT = /^-?(?:\d+|\d*\.\d+)(?:[eE][-+]?\d+)?$/;

function inputValue(input: FormElement, type: string): string {
  const raw = input.getAttribute("value") ?? "";
  switch (type) {
    case "hidden":
    case "submit":
    case "reset":
    case "button":
      return raw;
    case "text":
    case "search":
    case "tel":
    case "password":
      return stripNewlines(raw);
    case "url":
      return stripSpace(stripNewlines(raw));
    case "email":
      return input.hasAttribute("multiple")
        ? stripNewlines(raw).split(",").map(stripSpace).join(",")
        : stripSpace(stripNewlines(raw));
    case "number":
      return FLOAT.test(raw) && Number.isFinite(Number(raw)) ? raw : "";
    case "range":
      return rangeValue(input, raw);
    case "color":
      return hexColor(raw);
    case "date":
      return validDate(raw) ? raw : "";
    case "month":
      return validMonth(raw) ? raw : "";
    case "week":
      return validWeek(raw) ? raw : "";
    case "time":
      return validTime(raw) ? raw : "";
    case "datetime-local":
      return normalizedDateTime(raw);
    default:
      return raw;
  }
}

function parseFloatAttribute(input: FormElement, name: string): number | undefined {
  const value = input.getAttribute(name);
  return value !== null && FLOAT.test(value) && Number.isFinite(Number(value)) ? Number(value) : undefined;
}

/**
 * A range's value: a number clamped to min..max (not rounded to the step: Chromium does not), else the
 * default, the middle, on the step.
 */
function rangeValue(input: FormElement, raw: string): string {
  const min = parseFloatAttribute(input, "min") ?? 0;
  let max = parseFloatAttribute(input, "max") ?? 100;
  if (max < min) max = min;
  if (FLOAT.test(raw) && Number.isFinite(Number(raw))) return String(Math.min(max, Math.max(min, Number(raw))));
  const stepAttribute = (input.getAttribute("step") ?? "").toLowerCase();
  const stepValue = parseFloatAttribute(input, "step");
  const step = stepAttribute === "any" ? undefined : stepValue !== undefined && stepValue > 0 ? stepValue : 1;
  let value = min + (max - min) / 2;
  if (step !== undefined) {
    const stepped = min + Math.round((value - min) / step) * step;
    value = Number((stepped > max ? stepped - step : stepped).toPrecision(15));
  }
  return String(value);
}

/** A colour written in hex (#rgb, #rgba, #rrggbb, #rrggbbaa) as #rrggbb; anything else (a CSS colour name or
 * function, which Chromium would parse) is black. */
function hexColor(raw: string): string {
  const hex = /^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.exec(stripSpace(raw))?.[1].toLowerCase();
  if (!hex) return "#000000";
  return "#" + (hex.length <= 4 ? [...hex.slice(0, 3)].map((c) => c + c).join("") : hex.slice(0, 6));
}

const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();

function validMonth(v: string): boolean {
  const m = /^(\d{4,})-(\d{2})$/.exec(v);
  return !!m && Number(m[1]) > 0 && Number(m[2]) >= 1 && Number(m[2]) <= 12;
}

function validDate(v: string): boolean {
  const m = /^(\d{4,})-(\d{2})-(\d{2})$/.exec(v);
  return !!m && validMonth(`${m[1]}-${m[2]}`) && Number(m[3]) >= 1 && Number(m[3]) <= daysIn(+m[1], +m[2]);
}

function weeksIn(year: number): number {
  const jan1 = new Date(Date.UTC(year, 0, 1)).getUTCDay();
  const leap = daysIn(year, 2) === 29;
  return jan1 === 4 || (leap && jan1 === 3) ? 53 : 52;
}

function validWeek(v: string): boolean {
  const m = /^(\d{4,})-W(\d{2})$/.exec(v);
  return !!m && Number(m[1]) > 0 && Number(m[2]) >= 1 && Number(m[2]) <= weeksIn(Number(m[1]));
}

function validTime(v: string): boolean {
  return /^(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,3})?)?$/.test(v);
}

/** A valid local date and time, normalized (T, the shortest time); anything else is empty. */
function normalizedDateTime(v: string): string {
  const m = /^(\d{4,}-\d{2}-\d{2})[T ](\d{2}:\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(v);
  if (!m || !validDate(m[1]) || !validTime(m[2])) return "";
  const seconds = Number(m[3] ?? 0);
  if (seconds > 59) return "";
  const fraction = (m[4] ?? "").replace(/0+$/, "");
  if (fraction) return `${m[1]}T${m[2]}:${m[3]}.${fraction}`;
  return seconds ? `${m[1]}T${m[2]}:${m[3]}` : `${m[1]}T${m[2]}`;
}

// Strong right-to-left characters: Hebrew, Arabic, Syriac, Thaana, NKo and their presentation forms.
const STRONG_RTL = /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]|[\u{10800}-\u{10fff}\u{1e800}-\u{1efff}]/u;
const STRONG = /[\p{L}\u0590-\u08ff]/u;

/** `ltr` or `rtl`: the control's `dir`, its text's first strong character for `dir=auto`, else its ancestors'. */
function direction(field: FormElement, value: string): "ltr" | "rtl" {
  for (let e: FormElement | null = field; e; e = e.parentElement) {
    const dir = (e.getAttribute("dir") ?? "").toLowerCase();
    if (dir === "ltr" || dir === "rtl") return dir;
    // A telephone number reads left to right unless its own dir says otherwise.
    if (e === field && field.localName === "input" && inputType(field) === "tel" && dir !== "auto") return "ltr";
    if (dir === "auto") return firstStrong(e === field ? value : autoText(e));
  }
  return "ltr";
}

function firstStrong(text: string): "ltr" | "rtl" {
  const strong = [...text].find((c) => STRONG.test(c));
  return strong && STRONG_RTL.test(strong) ? "rtl" : "ltr";
}

/** The text `dir=auto` looks at on an element: its descendants' text, not in bdi, script, style, textarea or a dir. */
function autoText(element: FormElement): string {
  let text = "";
  for (const node of Array.from(element.childNodes)) {
    if (node.nodeType === 3) text += node.nodeValue ?? "";
    else if (node.nodeType === 1) {
      const child = node as unknown as FormElement;
      if (["bdi", "script", "style", "textarea"].includes(child.localName) || child.hasAttribute("dir")) continue;
      text += autoText(child);
    }
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// Values given by the caller, and the three encodings
// ---------------------------------------------------------------------------------------------

function applyValues(entries: Entry[], values: FormValues): Entry[] {
  let result = entries;
  for (const [name, given] of Object.entries(values)) {
    const list = given === null ? [] : Array.isArray(given) ? given : [given];
    const replacement = list.map((value): Entry => ({ name, value: entryValue(value) }));
    const at = result.findIndex((e) => e.name === name);
    const rest = result.filter((e) => e.name !== name);
    const position = at === -1 ? rest.length : result.slice(0, at).filter((e) => e.name !== name).length;
    result = [...rest.slice(0, position), ...replacement, ...rest.slice(position)];
  }
  return result;
}

function entryValue(value: FormValue): string | File {
  if (value instanceof File) return value;
  if (value instanceof Blob) return new File([value], "blob", { type: value.type });
  return String(value);
}

const crlf = (text: string) => text.replace(/\r\n|\r|\n/g, "\r\n");

/** Names and values as text, newlines as CR LF, a file as its name (for urlencoded and text/plain). */
function pairs(entries: Entry[]): [string, string][] {
  return entries.map((e) => [crlf(e.name), typeof e.value === "string" ? crlf(e.value) : e.value.name]);
}

const URLENCODED_SAFE = /[*\-._0-9A-Za-z]/;

function percentEncode(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) {
    const char = String.fromCharCode(byte);
    if (byte < 0x80 && URLENCODED_SAFE.test(char)) out += char;
    else if (byte === 0x20) out += "+";
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

function urlencoded(entries: Entry[], encode: (text: string) => Uint8Array): string {
  return pairs(entries).map(([name, value]) => `${percentEncode(encode(name))}=${percentEncode(encode(value))}`)
    .join("&");
}

const escapeMultipartName = (text: string) => text.replace(/\n/g, "%0A").replace(/\r/g, "%0D").replace(/"/g, "%22");

async function multipart(entries: Entry[], encode: (text: string) => Uint8Array, boundary: string) {
  const chunks: Uint8Array[] = [];
  const ascii = (text: string) => chunks.push(encode(text));
  for (const entry of entries) {
    const name = escapeMultipartName(crlf(entry.name));
    ascii(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"`);
    if (typeof entry.value === "string") {
      ascii(`\r\n\r\n`);
      chunks.push(encode(crlf(entry.value)));
    } else {
      const filename = escapeMultipartName(entry.value.name);
      ascii(`; filename="${filename}"\r\nContent-Type: ${entry.value.type || "application/octet-stream"}\r\n\r\n`);
      chunks.push(new Uint8Array(await entry.value.arrayBuffer()));
    }
    ascii("\r\n");
  }
  ascii(`--${boundary}--\r\n`);
  const body = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}
