/**
 * HTML as a browser sees it, and XPath 1.0 over it: parseHtml, evaluateXPath, and the regex stage.
 *
 * IMPORTING THIS FILE CHANGES XPATH FOR THE WHOLE PROCESS, AND THE FIRST parseHtml CHANGES LINKEDOM (the
 * copy require() loads, which page.document's nodes come from). Each patch below says what it fixes and what
 * it was measured to cost or save; in short:
 * - linkedom's Node.prototype.compareDocumentPosition answers from document-order stamps during an
 *   evaluation (it walked the tree, and only approximated document order);
 * - linkedom's Attr gets the DOM's nodeValue (it answered null, so [@value=''] matched nothing);
 * - xpath's XNodeSet dedups with a Set and sorts on the stamps (it was quadratic), its XPathContext
 *   copies itself without garbage, and its PathExpr.evaluate uses that copy;
 * - parsed pages are built by constructors of our own that set linkedom's fields (linkedom's register
 *   every node in a WeakMap, which made garbage collection superlinear): their nodes take no
 *   addEventListener.
 * A process that uses xpath, or linkedom's CommonJS build, for anything else gets the fixed behaviour too.
 * Nothing here knows HTTP; lib/fetchData.ts builds on it.
 *
 *   const doc = parseHtml("<table><tr class=thread><td>1</table>");
 *   evaluateXPath(doc, "count(//html:tr[@class='thread'])");        // 1
 */
import { createRequire } from "node:module";
import type * as Linkedom from "linkedom";
import type * as Parse5 from "parse5";
import type { DefaultTreeAdapterMap, Token, TreeAdapter } from "parse5";
import xpath from "xpath";

export const XHTML_NAMESPACE = "http://www.w3.org/1999/xhtml";

export type XPathValue = number | string | boolean | Node[];
export type Variables = Record<string, string | number | boolean>;

// ---------------------------------------------------------------------------------------------
// HTML parsing: parse5's WHATWG tree construction building linkedom nodes
// ---------------------------------------------------------------------------------------------

// A DOM is built only for a caller that asks for one (page.document): tier 3 answers queries from the flat
// tree, so a load run never does. linkedom and parse5 are therefore loaded, probed and patched at the first
// parseHtml, not when this file is imported: importing them cost each thread of a load run about 0.4 CPU-s
// (node -e "await import('linkedom')" and the like, against node -e 0). require(), because a getter cannot
// await an import; Node (20.19 and later) and Deno both require parse5's ES module.
const load = createRequire(import.meta.url);
let DOMParser: typeof Linkedom.DOMParser | undefined;
let parseHtml5: typeof Parse5.parse;

// linkedom keeps a document as one doubly linked list (element start, its attributes, its children,
// its end marker). Building that list directly, as linkedom's own parser does, is what makes parsing
// cheap; the public appendChild checks and notifies on every call. The list's links are symbols that
// linkedom does not export, so they are found by name on a probe node, once.
// deno-lint-ignore no-explicit-any
type Linked = any;
let probe: Linked;
let NEXT: symbol, PREV: symbol, END: symbol, START: symbol, VALUE: symbol, CONTENT: symbol, DOCTYPE: symbol;
let PRIVATE: symbol, CLASS_LIST: symbol, DATASET: symbol, STYLE: symbol, CHANGED: symbol;
let DocumentType: new (doc: Document, name: string, publicId: string, systemId: string) => DocumentType;
let ShapedText: ReturnType<typeof shapedLike>;
let ShapedAttr: ReturnType<typeof shapedLike>;
/** Whether parseHtml builds nodes itself (see fastNodes). */
let ownNodes = false;

/** Loads linkedom and parse5, finds linkedom's links and fields, and patches it (see the top of this file). */
function loadDom(): typeof Linkedom.DOMParser {
  if (DOMParser) return DOMParser;
  const linkedom = load("linkedom") as typeof Linkedom;
  parseHtml5 = (load("parse5") as typeof Parse5).parse;
  probe = new linkedom.DOMParser().parseFromString("", "text/html");
  const probeElement: Linked = probe.createElement("p");
  probe.doctype = "html";
  NEXT = linkedomSymbol(probeElement, "next");
  PREV = linkedomSymbol(probeElement, "prev");
  END = linkedomSymbol(probeElement, "end");
  START = linkedomSymbol(probeElement[END], "start");
  VALUE = linkedomSymbol(probe.createTextNode(""), "value");
  CONTENT = linkedomSymbol(probe.createElement("template"), "content");
  DOCTYPE = linkedomSymbol(probe, "doctype");
  DocumentType = (probe.doctype as object).constructor as typeof DocumentType;
  PRIVATE = linkedomSymbol(probeElement, "private");
  CLASS_LIST = linkedomSymbol(probeElement, "classList");
  DATASET = linkedomSymbol(probeElement, "dataset");
  STYLE = linkedomSymbol(probeElement, "style");
  CHANGED = linkedomSymbol(probe.createAttribute("a"), "changed");
  ShapedText = shapedLike(probe.createTextNode("x"), TextNode, "x");
  ShapedAttr = shapedLike(probe.createAttribute("a"), AttrNode, "a", "");
  ownNodes = Boolean(ShapedText && ShapedAttr && shapedLike(probe.createElement("td"), ElementNode, "td"));
  orderFromStamps(findPrototypeWith(probeElement, "compareDocumentPosition"));
  attrNodeValue(Object.getPrototypeOf(probe.createAttribute("a")));
  return DOMParser = linkedom.DOMParser;
}

function linkedomSymbol(target: object, name: string): symbol {
  const found = Object.getOwnPropertySymbols(target).find((s) => s.description === name);
  if (!found) {
    throw new Error(`parseHtml: this linkedom version has no "${name}" link; lib/html.ts needs updating`);
  }
  return found;
}

const TEXT_NODE = 3;
const ELEMENT_NODE = 1;
const SVG_NAMESPACE = "http://www.w3.org/2000/svg";

function lastChild(parent: Linked): Linked {
  const last = parent[END][PREV];
  return last === parent ? null : last;
}

/** Appends a detached node (and its subtree) at the end of `parent`, as linkedom's parser does. */
function append(parent: Linked, node: Linked): void {
  const end = parent[END];
  const prev = end[PREV];
  const nodeEnd = node.nodeType === ELEMENT_NODE ? node[END] : node;
  node.parentNode = parent;
  prev[NEXT] = node;
  node[PREV] = prev;
  nodeEnd[NEXT] = end;
  end[PREV] = nodeEnd;
}

// linkedom's node constructors register every node in a module-level WeakMap (for event listeners),
// and a WeakMap with one entry per node makes garbage collection superlinear: 1000 rows parsed 7x
// slower than parse5 alone. A parsed page is for reading, so its nodes are made by the constructors
// below: linkedom's prototypes, linkedom's fields in linkedom's order, no registration. They are
// checked against nodes linkedom made itself; should a linkedom release change its fields, parsing
// falls back to linkedom's own constructors (slower, still right). The price: nodes of a parsed page
// take no addEventListener.
const NODE_END = -1;

/** The fields every node starts with, in linkedom's order. */
function initNode(node: Linked, document: Linked, localName: string, nodeType: number): void {
  node.ownerDocument = document;
  node.localName = localName;
  node.nodeType = nodeType;
  node.parentNode = null;
}

function ElementNode(this: Linked, document: Linked, localName: string) {
  initNode(this, document, localName, ELEMENT_NODE);
  this[NEXT] = null;
  this[PREV] = null;
  this[PRIVATE] = null;
  this[NEXT] = this[END] = {
    [NEXT]: null,
    [PREV]: this,
    [START]: this,
    nodeType: NODE_END,
    ownerDocument: document,
    parentNode: null,
  };
  this[CLASS_LIST] = null;
  this[DATASET] = null;
  this[STYLE] = null;
}

function TextNode(this: Linked, document: Linked, data: string) {
  initNode(this, document, "#text", TEXT_NODE);
  this[NEXT] = null;
  this[PREV] = null;
  this[VALUE] = data;
}

function AttrNode(this: Linked, document: Linked, name: string, value: string) {
  initNode(this, document, name, 2);
  this.ownerElement = null;
  this.name = name;
  this[NEXT] = null;
  this[PREV] = null;
  this[VALUE] = value;
  this[CHANGED] = false;
}

/** A constructor for nodes shaped like `model`, or null where ours would not build the same fields. */
function shapedLike(model: Linked, init: (this: Linked, ...args: Linked[]) => void, ...args: Linked[]) {
  const Shaped: Linked = function (this: Linked, ...a: Linked[]) {
    init.apply(this, a);
  };
  Shaped.prototype = Object.getPrototypeOf(model);
  const made = new Shaped(model.ownerDocument, ...args);
  const fields = (node: Linked) => Reflect.ownKeys(node).map(String).join();
  const same = fields(made) === fields(model) &&
    (model.nodeType !== ELEMENT_NODE || fields(made[END]) === fields(model[END]));
  return same ? Shaped as new (...a: Linked[]) => Linked : null;
}

const elementConstructors = new Map<string, (new (document: Linked, localName: string) => Linked) | null>();

function createHtmlElement(document: Linked, tagName: string): Linked {
  let Shaped = elementConstructors.get(tagName);
  if (Shaped === undefined) {
    Shaped = shapedLike(probe.createElement(tagName), ElementNode, tagName);
    elementConstructors.set(tagName, Shaped);
  }
  return Shaped ? new Shaped(document, tagName) : document.createElement(tagName);
}

function createText(document: Linked, data: string): Linked {
  return ShapedText ? new ShapedText(document, data) : document.createTextNode(data);
}

function createAttr(document: Linked, name: string, value: string): Linked {
  if (ShapedAttr) return new ShapedAttr(document, name, value);
  const attribute = document.createAttribute(name);
  attribute[VALUE] = value;
  return attribute;
}

/** Whether parseHtml builds nodes itself (true) or had to fall back to linkedom's constructors. */
export function fastNodes(): boolean {
  loadDom();
  return ownNodes;
}

function createAdapter(document: Linked): TreeAdapter<DefaultTreeAdapterMap> {
  let mode = "no-quirks";
  const adapter = {
    createDocument: () => document,
    createDocumentFragment: () => document.createDocumentFragment(),
    createElement(tagName: string, namespaceURI: string, attrs: Token.Attribute[]) {
      const element = namespaceURI === SVG_NAMESPACE
        ? document.createElementNS(SVG_NAMESPACE, tagName)
        : createHtmlElement(document, tagName);
      if (namespaceURI !== XHTML_NAMESPACE && namespaceURI !== SVG_NAMESPACE) {
        Object.defineProperty(element, "namespaceURI", { value: namespaceURI });
      }
      for (const attr of attrs) {
        const attribute = createAttribute(attr);
        append(element, attribute);
        attribute.parentNode = null;
        attribute.ownerElement = element;
      }
      return element;
    },
    createCommentNode: (data: string) => document.createComment(data),
    createTextNode: (value: string) => createText(document, value),
    appendChild: append,
    insertBefore: (parent: Linked, node: Linked, reference: Linked) => parent.insertBefore(node, reference),
    setTemplateContent(template: Linked, content: Linked) {
      template[CONTENT] = content;
    },
    getTemplateContent: (template: Linked) => template[CONTENT],
    setDocumentType(doc: Linked, name: string, publicId: string, systemId: string) {
      // Kept out of the child list: XPath's data model has no doctype, and linkedom's doctype node
      // cannot be walked past (it has no nextSibling), which hid every page with a doctype.
      doc[DOCTYPE] = new DocumentType(doc, name, publicId, systemId);
    },
    setDocumentMode(_doc: Linked, documentMode: string) {
      mode = documentMode;
    },
    getDocumentMode: () => mode,
    detachNode(node: Linked) {
      if (node.parentNode) node.remove();
    },
    insertText(parent: Linked, text: string) {
      const last = lastChild(parent);
      if (last && last.nodeType === TEXT_NODE) last[VALUE] += text;
      else append(parent, createText(document, text));
    },
    insertTextBefore(parent: Linked, text: string, reference: Linked) {
      const before = reference[PREV];
      if (before && before.nodeType === TEXT_NODE && before.parentNode === parent) before[VALUE] += text;
      else parent.insertBefore(createText(document, text), reference);
    },
    adoptAttributes(recipient: Linked, attrs: Token.Attribute[]) {
      for (const attr of attrs) {
        if (!recipient.hasAttribute(attributeName(attr))) recipient.setAttributeNode(createAttribute(attr));
      }
    },
    getFirstChild: (node: Linked) => node.firstChild,
    getChildNodes: (node: Linked) => node.childNodes,
    getParentNode: (node: Linked) => node.parentNode,
    getAttrList: (element: Linked) =>
      Array.from(element.attributes as Attr[], (a) => ({ name: a.name, value: a.value })),
    getTagName: (element: Linked) => element.localName,
    getNamespaceURI: (element: Linked) => element.namespaceURI,
    getTextNodeContent: (node: Linked) => node.data,
    getCommentNodeContent: (node: Linked) => node.data,
    getDocumentTypeNodeName: (node: Linked) => node.name,
    getDocumentTypeNodePublicId: (node: Linked) => node.publicId,
    getDocumentTypeNodeSystemId: (node: Linked) => node.systemId,
    isTextNode: (node: Linked) => node.nodeType === TEXT_NODE,
    isCommentNode: (node: Linked) => node.nodeType === 8,
    isDocumentTypeNode: (node: Linked) => node.nodeType === 10,
    isElementNode: (node: Linked) => node.nodeType === ELEMENT_NODE,
    setNodeSourceCodeLocation() {},
    getNodeSourceCodeLocation: () => undefined,
    updateNodeSourceCodeLocation() {},
    onItemPush() {},
    onItemPop() {},
  };

  function createAttribute(attr: Token.Attribute): Linked {
    const attribute = createAttr(document, attributeName(attr), attr.value);
    if (attr.namespace) {
      Object.defineProperties(attribute, {
        namespaceURI: { value: attr.namespace },
        prefix: { value: attr.prefix ?? null },
        localName: { value: attr.name },
      });
    }
    return attribute;
  }
  return adapter as unknown as TreeAdapter<DefaultTreeAdapterMap>;
}

function attributeName(attr: Token.Attribute): string {
  return attr.prefix ? `${attr.prefix}:${attr.name}` : attr.name;
}

/**
 * Parses HTML the way a browser does (WHATWG tree construction, scripting off: implied html, head,
 * body and tbody, misnested tags, foster parenting, entities), into a linkedom `Document`.
 * Adjacent text is one text node, so `text()='Tom & Jerry'` matches.
 */
export function parseHtml(html: string): Document {
  const document = new (loadDom())().parseFromString("", "text/html") as Linked;
  // An empty linkedom HTML document starts with <html><head></head><body></body></html>.
  document[NEXT] = document[END];
  document[END][PREV] = document;
  // A byte order mark is the decoder's business; browsers never see it as text.
  const text = html.charCodeAt(0) === 0xfeff ? html.slice(1) : html;
  parseHtml5(text, { treeAdapter: createAdapter(document), scriptingEnabled: false });
  return document as Document;
}

// ---------------------------------------------------------------------------------------------
// XPath: compiled once, document order in O(1)
// ---------------------------------------------------------------------------------------------

// xpath sorts node-sets with compareDocumentPosition, which linkedom answers by walking the tree.
// During an evaluation, nodes of the evaluated document carry their position in document order,
// stamped in one pass, and comparisons between two stamped nodes are a subtraction. The stamps are
// renewed at each evaluation, so a document changed in between is still ordered right.
const ORDER = Symbol("tierload.documentOrder");
let stampBase = 0;
let stampLimit = 0;
let unstamped: Linked = null;
/** The context of the evaluation under way, and whether its whole document carries stamps yet. */
let evaluating: Linked = null;
let wholeDocumentStamped = false;
const stampedNow = (node: Linked) => node[ORDER] >= stampBase && node[ORDER] < stampLimit;

/**
 * Stamps for this evaluation, and for the whole document once a node outside the first stamps is met.
 * Answers whether every one of `nodes` now carries a stamp.
 */
function ensureStamps(nodes: Linked[]): boolean {
  if (unstamped) stampDocumentOrder();
  if (nodes.every(stampedNow)) return true;
  if (!evaluating || wholeDocumentStamped) return false;
  wholeDocumentStamped = true;
  unstamped = evaluating.nodeType === 9 || evaluating.nodeType === 11 ? evaluating : evaluating.ownerDocument;
  stampDocumentOrder();
  return nodes.every(stampedNow);
}
function orderFromStamps(nodeClassPrototype: Linked): void {
  const linkedomCompare = nodeClassPrototype.compareDocumentPosition as (this: Node, other: Node) => number;
  nodeClassPrototype.compareDocumentPosition = function (this: Linked, other: Linked): number {
    if (ensureStamps([this, other])) {
      const a = this[ORDER], b = other[ORDER];
      if (a === b) return 0;
      return a < b
        ? 4 /* FOLLOWING */ | (isWithin(other, this) ? 16 : 0)
        : 2 /* PRECEDING */ | (isWithin(this, other) ? 8 : 0);
    }
    return linkedomCompare.call(this, other);
  };
}

function findPrototypeWith(object: object, method: string): Linked {
  let proto = Object.getPrototypeOf(object);
  while (proto && !Object.prototype.hasOwnProperty.call(proto, method)) proto = Object.getPrototypeOf(proto);
  if (!proto) throw new Error(`evaluateXPath: linkedom nodes have no ${method}`);
  return proto;
}

function isWithin(node: Linked, ancestor: Linked): boolean {
  for (let n = node.parentNode ?? node.ownerElement; n; n = n.parentNode) if (n === ancestor) return true;
  return false;
}

/**
 * Numbers the nodes an evaluation will most likely compare, in document order (their linked list): the
 * whole document (or fragment) for a query on it; for a query on an element (a table row, a post), that
 * element's own subtree only. A query from each of a page's 1000 rows stamped the whole page each time,
 * 1000 times (0.9 s for a 1000-row page, against 23 ms for the same values as two whole-page queries).
 * When an evaluation meets a node outside its element, ensureStamps stamps the whole document after all.
 */
function stampDocumentOrder(): void {
  const context = unstamped;
  unstamped = null;
  let order = stampBase = stampLimit;
  if (context.nodeType === ELEMENT_NODE) {
    const end = context[END];
    context[ORDER] = order++;
    for (let node = context[NEXT]; node && node !== end; node = node[NEXT]) node[ORDER] = order++;
    end[ORDER] = order++;
  } else {
    const top = context.nodeType === 9 || context.nodeType === 11 ? context : context.ownerDocument;
    top[ORDER] = order++;
    for (let node = top[NEXT]; node; node = node[NEXT]) node[ORDER] = order++;
  }
  stampLimit = order;
}

// The DOM says an Attr's nodeValue is its value; linkedom's answers null, and xpath reads
// `value || nodeValue`, so an empty attribute compared as null: [@value=''] matched nothing.
function attrNodeValue(attrPrototype: object): void {
  Object.defineProperty(attrPrototype, "nodeValue", {
    get(this: Attr) {
      return this.value;
    },
    set(this: Attr, value: string) {
      this.value = value;
    },
  });
}

// xpath dedups a node-set by scanning it for each node it adds, which is quadratic in the result.
// A Set does the same in linear time and keeps the first occurrence, as the scan does.
// deno-lint-ignore no-explicit-any
const { XNodeSet, XNumber, XBoolean } = xpath as any;
XNodeSet.prototype.addArray = function (this: Linked, nodes: Node[]) {
  const seen = new Set<Node>(this.nodes);
  for (const node of nodes) {
    if (!seen.has(node)) {
      seen.add(node);
      this.nodes.push(node);
    }
  }
  this.size = this.nodes.length;
  this.tree = null;
};

// xpath puts a node-set in document order by inserting its nodes into an AVL tree, one
// compareDocumentPosition at a time: for each step's predicates and for every result. When every node
// carries this evaluation's stamp, sorting the array on the stamps gives the same order for less.
const xpathToArray = XNodeSet.prototype.toArray;
XNodeSet.prototype.toArray = function (this: Linked): Node[] {
  const nodes: Linked[] = this.nodes;
  return ensureStamps(nodes) ? nodes.slice().sort((a, b) => a[ORDER] - b[ORDER]) : xpathToArray.call(this);
};

interface Compiled {
  expression: object;
  evaluate(options: object): Linked;
}
const parseXPath = (xpath as unknown as { parse(query: string): Compiled }).parse;
const compiled = new Map<string, Compiled>();
const MAX_COMPILED = 1000;

function compile(query: string): Compiled {
  let expression = compiled.get(query);
  if (!expression) {
    try {
      expression = parseXPath(query);
    } catch (cause) {
      throw new Error(`Invalid XPath ${JSON.stringify(query)}: ${whereParsingStops(query, cause as Error)}`, { cause });
    }
    shortenDescendantSteps((expression as Linked).expression);
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
    compiled.set(query, expression);
  }
  return expression;
}

// xpath's parser says only "XPath parse error". Its tables are public: running them again over the
// query's tokens finds the token it could not take, which the message names with its place.
// deno-lint-ignore no-explicit-any
const { XPathParser } = xpath as any;

function whereParsingStops(query: string, cause: Error): string {
  if (cause.message !== "XPath parse error") return cause.message;
  const [types, values]: [number[], string[]] = new XPathParser().tokenize(query);
  const states = [0];
  for (let at = 0; at < types.length;) {
    const state = states[states.length - 1];
    const action = XPathParser.actionTable[state].charAt(types[at] - 1);
    const number = XPathParser.actionTableNumber[state].charCodeAt(types[at] - 1) - 32;
    if (action === XPathParser.SHIFT) {
      states.push(number);
      at++;
    } else if (action === XPathParser.REDUCE) {
      const [symbol, length] = XPathParser.productions[number];
      states.length -= length;
      states.push(XPathParser.gotoTable[states[states.length - 1]].charCodeAt(symbol - 2) - 33);
    } else if (at === types.length - 1) {
      return at === 0 ? "it is empty" : `it ends too soon, after ${JSON.stringify(values[at - 1])}`;
    } else {
      let offset = 0;
      for (const value of values.slice(0, at + 1)) offset = query.indexOf(value, offset) + value.length;
      const column = offset - values[at].length + 1;
      return `unexpected ${JSON.stringify(values[at])}` + (column > 0 ? ` at character ${column}` : "");
    }
  }
  return cause.message;
}

// `//tr[@class='thread']` means descendant-or-self::node()/child::tr[...]: xpath runs the child step
// and its predicates once for every node of the page, sorting each little result. When no predicate
// depends on position, descendant::tr[...] selects the same nodes in one walk, as browsers do.
// deno-lint-ignore no-explicit-any
const { Step, NodeTest, LocationPath, PathExpr, FunctionCall } = xpath as any;
// Each predicate and each path inside one copies the context: xpath builds a full XPathContext
// (three resolvers) and copies the old one over it with for..in. Copying the same own properties onto
// a bare context is the same thing without the garbage. PathExpr.evaluate is xpath's, but for that.
// deno-lint-ignore no-explicit-any
const { XPathContext } = xpath as any;
const copyContext = (context: object, newProps?: object) =>
  Object.assign(Object.create(XPathContext.prototype), context, newProps);
XPathContext.prototype.extend = function (this: Linked, newProps: object) {
  return copyContext(this, newProps);
};
PathExpr.prototype.evaluate = function (this: Linked, context: Linked) {
  const xpc = copyContext(context);
  const filterResult = this.applyFilter(context, xpc);
  if ("nonNodes" in filterResult) return filterResult.nonNodes;
  const nodeSet = new XNodeSet();
  nodeSet.addArray(PathExpr.applyLocationPath(this.locationPath, xpc, filterResult.nodes));
  return nodeSet;
};

const BOOLEAN_OPERATIONS = [
  "AndOperation",
  "OrOperation",
  "EqualsOperation",
  "NotEqualOperation",
  "LessThanOperation",
  "GreaterThanOperation",
  "LessThanOrEqualOperation",
  "GreaterThanOrEqualOperation",
  // deno-lint-ignore no-explicit-any
].map((name) => (xpath as any)[name]);
const BOOLEAN_FUNCTIONS = new Set(["not", "contains", "starts-with", "boolean", "true", "false", "lang"]);

function isBooleanPredicate(predicate: Linked): boolean {
  if (/\b(position|last)\(\)/.test(String(predicate))) return false;
  if (BOOLEAN_OPERATIONS.some((operation) => predicate instanceof operation)) return true;
  if (!(predicate instanceof PathExpr)) return false;
  if (predicate.filter === undefined) return true;
  return predicate.filter instanceof FunctionCall && BOOLEAN_FUNCTIONS.has(predicate.filter.functionName) &&
    !predicate.filterPredicates?.length && !predicate.locationPath;
}

function shortenDescendantSteps(node: Linked, seen = new Set<object>()): void {
  if (node === null || typeof node !== "object" || seen.has(node)) return;
  seen.add(node);
  if (node instanceof LocationPath) {
    const steps: Linked[] = node.steps;
    for (let i = steps.length - 2; i >= 0; i--) {
      const [any, child] = [steps[i], steps[i + 1]];
      if (
        any.axis === Step.DESCENDANTORSELF && any.nodeTest === NodeTest.nodeTest && any.predicates.length === 0 &&
        child.axis === Step.CHILD && child.predicates.every(isBooleanPredicate)
      ) {
        steps.splice(i, 2, new Step(Step.DESCENDANT, child.nodeTest, child.predicates));
      }
    }
  }
  for (const value of Object.values(node)) shortenDescendantSteps(value, seen);
}

const NAMESPACES = { html: XHTML_NAMESPACE };

/**
 * Evaluates an XPath 1.0 query on a document or node. `html:tr` and a browser's `/html/body/tr`
 * both match HTML elements; values are passed as `$variables`. Answers a number, string or boolean
 * for those expressions, and an array of nodes in document order for a node-set.
 */
export function evaluateXPath(context: Document | Node, query: string, variables: Variables = {}): XPathValue {
  const expression = compile(query);
  unstamped = evaluating = context;
  wholeDocumentStamped = false;
  try {
    const result = expression.evaluate({ node: context, namespaces: NAMESPACES, variables, isHtml: true });
    if (result instanceof XNodeSet) return result.toArray();
    if (result instanceof XNumber) return result.numberValue();
    if (result instanceof XBoolean) return result.booleanValue();
    return result.stringValue();
  } catch (cause) {
    throw new Error(`Cannot evaluate XPath ${JSON.stringify(query)}: ${(cause as Error).message}`, { cause });
  } finally {
    unstamped = evaluating = null;
    stampBase = stampLimit;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading answers: string values, the seed's regex stage, a page's visible text
// ---------------------------------------------------------------------------------------------

/** A node's XPath string value: an attribute's value, an element's text, a text node's data. */
export function stringValue(node: Node): string {
  return node.nodeType === 2 ? (node as Attr).value : node.textContent ?? "";
}

/** An XPath answer as a list of texts: each node's string value, or the one number, string or boolean. */
export function textsOf(value: XPathValue): string[] {
  return Array.isArray(value) ? value.map(stringValue) : [String(value)];
}

/** The seed's regex stage: each value matched against `regex`; the matches, with groups, of those that matched. */
export function matchAll(value: XPathValue, regex: RegExp | string): RegExpExecArray[] {
  return matchTexts(textsOf(value), regex);
}

/** The regex stage on texts already read: the matches, with groups, of those that matched. */
export function matchTexts(texts: string[], regex: RegExp | string): RegExpExecArray[] {
  const pattern = typeof regex === "string"
    ? new RegExp(regex)
    : new RegExp(regex.source, regex.flags.replace("g", ""));
  return texts.map((text) => pattern.exec(text)).filter((m): m is RegExpExecArray => m !== null);
}

// What a person looks at first on a page that went wrong: its alerts and error messages, then its main content,
// then the rest. Three queries, so that tier 3 can answer them on its flat tree as it answers any other.
const UNSEEN = "ancestor::html:head or ancestor::html:script or ancestor::html:style or ancestor::html:template";
const ALERT = "@role='alert' or contains(@class, 'error') or contains(@class, 'Error') or contains(@class, 'ERROR')";
const MAIN = "(//html:main | //*[@role='main'])[1]";
/** The visible text of a page's alerts, of its main content (outside them), and of the rest, in that order. */
export const EXCERPT_QUERIES = [
  `//*[${ALERT}]//text()[not(${UNSEEN})]`,
  `${MAIN}//text()[not(${UNSEEN} or ancestor::*[${ALERT}])]`,
  `//text()[not(${UNSEEN} or ancestor::*[${ALERT}] or ancestor::html:main or ancestor::*[@role='main'])]`,
];

/**
 * A page's text for a failure message, collapsed and cut to `max` characters: first its alerts and error
 * messages (`role=alert`, an element whose class says error), then its main content (`<main>`, `role=main`),
 * then the rest of its visible text (the navigation, the footer), so a site's chrome does not crowd out what
 * it said.
 */
export function excerpt(document: Document, max = 300): string {
  return excerptOf(EXCERPT_QUERIES.map((query) => textsOf(evaluateXPath(document, query))), max);
}

/** EXCERPT_QUERIES' answers, each collapsed, joined and cut to `max` characters. */
export function excerptOf(parts: string[][], max: number): string {
  const collapse = (texts: string[]) => texts.join(" ").replace(/\s+/g, " ").trim();
  const text = parts.map(collapse).filter(Boolean).join(" ");
  return text.length > max ? text.slice(0, max - 1) + "…" : text || "(empty body)";
}
