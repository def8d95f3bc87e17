/**
 * A browser's HTML parse at native speed: html5ever's WHATWG tree builder compiled to WebAssembly
 * (native/html5ever-flat.wasm, built by native/build.sh from Debian's sources), answering the tree as flat
 * typed arrays. No object is made per node: a node is an index, and its kind, name, links, attributes and text
 * are read from columns.
 *
 *   const tree = parseFlat(html);
 *   for (let n = tree.first[0]; n !== -1; n = tree.next[n]) console.log(tree.kind[n], tree.nodeName(n));
 *
 * Columns, per node (index 0 is the document): `kind` is the DOM node type (1 element, 3 text, 7 processing
 * instruction, 8 comment, 9 document, 10 doctype, 11 a template's contents); `name` a name id (see `names`);
 * `parent`, `first`, `last`, `next`, `prev` link nodes (-1 for none); `attrStart`/`attrCount` a span of `attrs`,
 * three numbers an attribute (name id, value start, value length in `text`); `textStart`/`textLen` a span of
 * `text` (UTF-8) for text, comments and processing instructions. A doctype's text is its name and its two
 * attributes are its public and system ids; a template element's `textStart` is its contents node, whose parent
 * is the template but which is not among its children.
 */
import { readFileSync } from "node:fs";

/** Namespace URIs by the module's namespace code. */
export const NAMESPACES = [
  "",
  "http://www.w3.org/1999/xhtml",
  "http://www.w3.org/2000/svg",
  "http://www.w3.org/1998/Math/MathML",
  "http://www.w3.org/1999/xlink",
  "http://www.w3.org/XML/1998/namespace",
  "http://www.w3.org/2000/xmlns/",
] as const;

export const ELEMENT = 1, TEXT = 3, PROCESSING_INSTRUCTION = 7, COMMENT = 8, DOCUMENT = 9, DOCTYPE = 10;
export const TEMPLATE_CONTENTS = 11;

interface Exports {
  memory: WebAssembly.Memory;
  input(len: number): number;
  parse(len: number): number;
}

let wasm: Exports | undefined;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Names interned by the module, by id: qualified name, local name, namespace code. Ids last as long as it. */
const qualifiedNames: string[] = [];
const localNames: string[] = [];
const nameNamespaces: number[] = [];

function load(): Exports {
  const url = new URL("../native/html5ever-flat.wasm", import.meta.url);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = readFileSync(url) as Uint8Array<ArrayBuffer>;
  } catch (cause) {
    throw new Error(`Cannot load the HTML parser's WebAssembly module "${url.pathname}": ${(cause as Error).message}`, {
      cause,
    });
  }
  // Synchronous compilation is allowed off the browser's main thread, and keeps the module unloaded until used.
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  return instance.exports as unknown as Exports;
}

/** A parsed page as columns; see the module's header for what each holds. Independent of later parses. */
export class FlatTree {
  constructor(
    readonly count: number,
    readonly kind: Uint8Array,
    readonly name: Uint32Array,
    readonly parent: Int32Array,
    readonly first: Int32Array,
    readonly last: Int32Array,
    readonly next: Int32Array,
    readonly prev: Int32Array,
    readonly attrStart: Uint32Array,
    readonly attrCount: Uint32Array,
    readonly textStart: Int32Array,
    readonly textLen: Uint32Array,
    readonly attrs: Uint32Array,
    readonly text: Uint8Array,
    /** 0 no quirks, 1 limited quirks, 2 quirks. */
    readonly quirks: number,
  ) {}

  /** Qualified names by name id (`xlink:href` for a prefixed attribute; "" for id 0). */
  get names(): readonly string[] {
    return qualifiedNames;
  }

  /** An element's or attribute name's local name. */
  localName(nameId: number): string {
    return localNames[nameId];
  }

  /** A name id's namespace URI ("" for none). */
  namespaceOf(nameId: number): string {
    return NAMESPACES[nameNamespaces[nameId]];
  }

  /** An element's qualified name; a processing instruction's target; "" for other nodes. */
  nodeName(node: number): string {
    return qualifiedNames[this.name[node]];
  }

  /** The text of a text node, comment or processing instruction, or a doctype's name. */
  data(node: number): string {
    const start = this.textStart[node];
    return decoder.decode(this.text.subarray(start, start + this.textLen[node]));
  }

  /** The value of an element's `i`-th attribute (in source order). */
  attrValue(node: number, i: number): string {
    const at = (this.attrStart[node] + i) * 3;
    return decoder.decode(this.text.subarray(this.attrs[at + 1], this.attrs[at + 1] + this.attrs[at + 2]));
  }

  /** The name id of an element's `i`-th attribute. */
  attrName(node: number, i: number): number {
    return this.attrs[(this.attrStart[node] + i) * 3];
  }

  /** The value of the attribute named `qualifiedName` (no namespace or its prefixed form), or null. */
  getAttribute(node: number, qualifiedName: string): string | null {
    for (let i = 0; i < this.attrCount[node]; i++) {
      if (qualifiedNames[this.attrName(node, i)] === qualifiedName) return this.attrValue(node, i);
    }
    return null;
  }
}

/** Decodes the names the module interned since the last call. */
function readNames(memory: ArrayBuffer, metaPtr: number, textPtr: number, count: number): void {
  if (qualifiedNames.length === count) return;
  const meta = new Uint32Array(memory, metaPtr, count * 4);
  const bytes = new Uint8Array(memory);
  for (let id = qualifiedNames.length; id < count; id++) {
    const [code, start, len, prefixLen] = meta.subarray(id * 4, id * 4 + 4);
    const qualified = decoder.decode(bytes.subarray(textPtr + start, textPtr + start + len));
    qualifiedNames.push(qualified);
    localNames.push(prefixLen ? qualified.slice(prefixLen + 1) : qualified);
    nameNamespaces.push(code);
  }
}

/**
 * Parses HTML as a browser does (WHATWG tree construction, scripting off), answering the tree as flat arrays.
 * A leading byte order mark is dropped, as parseHtml does.
 */
export function parseFlat(html: string): FlatTree {
  wasm ??= load();
  const text = html.charCodeAt(0) === 0xfeff ? html.slice(1) : html;
  // UTF-16 to UTF-8 takes at most three bytes per code unit.
  const ptr = wasm.input(text.length * 3);
  const { written } = encoder.encodeInto(text, new Uint8Array(wasm.memory.buffer, ptr, text.length * 3));
  const header = wasm.parse(written);
  const memory = wasm.memory.buffer;
  const h = new Uint32Array(memory, header, 20);
  const n = h[0];
  readNames(memory, h[16], h[17], h[18]);
  // Copies, so that the tree outlives the next parse (which reuses the module's memory).
  const i32 = (ptr: number) => new Int32Array(memory.slice(ptr, ptr + n * 4));
  const u32 = (ptr: number) => new Uint32Array(memory.slice(ptr, ptr + n * 4));
  return new FlatTree(
    n,
    new Uint8Array(memory.slice(h[1], h[1] + n)),
    u32(h[2]),
    i32(h[3]),
    i32(h[4]),
    i32(h[5]),
    i32(h[6]),
    i32(h[7]),
    u32(h[8]),
    u32(h[9]),
    i32(h[10]),
    u32(h[11]),
    new Uint32Array(memory.slice(h[12], h[12] + h[13] * 12)),
    new Uint8Array(memory.slice(h[14], h[14] + h[15])),
    h[19],
  );
}
