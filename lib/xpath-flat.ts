/**
 * XPath 1.0 over the flat tree of lib/native-html.ts: the query shapes adapters use, answered from typed
 * arrays without a DOM node in sight. A node is a number: a tree node's index, or `count + slot` for the
 * attribute in the tree's attribute slot `slot`. Queries are parsed by the `xpath` package (so they mean
 * exactly what they mean to lib/html.ts's evaluateXPath), compiled once per query string into closures, and
 * evaluated from the document node.
 *
 *   const value = evaluateFlat(parseFlat(html), "//html:tr[@class=$c]/@id", { c: "thread" });
 *   if (value === undefined) ... // a shape this evaluator leaves to evaluateXPath (see below)
 *   else if (Array.isArray(value)) value.map((node) => flatString(tree, node));
 *
 * Answers match evaluateXPath's over parseHtml's linkedom tree, quirks included: unprefixed names match
 * elements of any namespace and names compare case-insensitively (the `xpath` package's `isHtml` mode),
 * `html:` is the XHTML namespace, a doctype and a template's contents are not in the tree.
 *
 * What it leaves to evaluateXPath (evaluateFlat answers undefined): the axes following, preceding and
 * namespace; the node tests processing-instruction() and a prefix other than `html`; functions other than
 * last, position, count, string, concat, starts-with, contains, substring-before, substring-after, substring,
 * string-length, normalize-space, boolean, not, true, false, number and local-name (of an element or
 * attribute); a variable that is not given; anything the `xpath` package would reject with an error (a
 * wrong argument count, a union of non-node-sets), so that the error is evaluateXPath's own.
 */
import xpath from "xpath";
import { COMMENT, DOCTYPE, ELEMENT, type FlatTree, TEXT } from "./native-html.ts";
import { XHTML_NAMESPACE } from "./html.ts";

/** A node-set is an array of node numbers in document order; numbers, strings and booleans are themselves. */
export type FlatValue = number | string | boolean | number[];
export type FlatVariables = Record<string, string | number | boolean>;

/** Thrown while compiling or evaluating a shape this evaluator does not answer; evaluateFlat answers undefined. */
class Unsupported extends Error {}

// ---------------------------------------------------------------------------------------------
// The tree's index: document order, subtree ranges, decoded strings (built once per tree)
// ---------------------------------------------------------------------------------------------

interface Index {
  tree: FlatTree;
  count: number;
  /** Tree nodes in document order (doctype, template contents and detached nodes left out). */
  order: Int32Array;
  /** A node's place in `order`, -1 when it is not in the tree. */
  rank: Int32Array;
  /** The rank just past a node's last descendant. */
  end: Int32Array;
  /** Document-order keys for every node number, tree nodes and attributes alike. */
  key: Int32Array;
  /** An attribute slot's element. */
  owner: Int32Array;
  texts: (string | undefined)[];
  values: (string | undefined)[];
  strings: Map<number, string>;
}

const indexes = new WeakMap<FlatTree, Index>();

function indexOf(tree: FlatTree): Index {
  let index = indexes.get(tree);
  if (index) return index;
  const count = tree.count;
  const slots = tree.attrs.length / 3;
  const order = new Int32Array(count);
  const rank = new Int32Array(count).fill(-1);
  const end = new Int32Array(count);
  const key = new Int32Array(count + slots).fill(-1);
  const owner = new Int32Array(slots).fill(-1);
  const { first, next, parent, kind, attrStart, attrCount } = tree;
  let ranked = 0;
  let keys = 0;
  // Preorder without recursion: descend to the first child, else climb to the next sibling.
  let node = 0;
  while (node !== -1) {
    rank[node] = ranked;
    order[ranked++] = node;
    key[node] = keys++;
    for (let i = 0, slot = attrStart[node]; i < attrCount[node] && kind[node] === ELEMENT; i++, slot++) {
      key[count + slot] = keys++;
      owner[slot] = node;
    }
    let child = first[node];
    while (child !== -1 && kind[child] === DOCTYPE) child = next[child];
    if (child !== -1) {
      node = child;
      continue;
    }
    end[node] = ranked;
    while (node !== -1) {
      let sibling = next[node];
      while (sibling !== -1 && kind[sibling] === DOCTYPE) sibling = next[sibling];
      if (sibling !== -1) {
        node = sibling;
        break;
      }
      node = node === 0 ? -1 : parent[node];
      if (node !== -1) end[node] = ranked;
    }
  }
  index = { tree, count, order, rank, end, key, owner, texts: [], values: [], strings: new Map() };
  indexes.set(tree, index);
  return index;
}

function nodeKind(ix: Index, node: number): number {
  return node >= ix.count ? 2 : ix.tree.kind[node];
}

function textOf(ix: Index, node: number): string {
  return ix.texts[node] ??= ix.tree.data(node);
}

function attributeValue(ix: Index, node: number): string {
  const slot = node - ix.count;
  if (ix.values[slot] === undefined) {
    const { attrs, text } = ix.tree;
    ix.values[slot] = decoder.decode(text.subarray(attrs[slot * 3 + 1], attrs[slot * 3 + 1] + attrs[slot * 3 + 2]));
  }
  return ix.values[slot]!;
}
const decoder = new TextDecoder();

/** The XPath string value: an element's or the document's text descendants, an attribute's value, a node's data. */
function stringOf(ix: Index, node: number): string {
  if (node >= ix.count) return attributeValue(ix, node);
  const kind = ix.tree.kind[node];
  if (kind !== ELEMENT && kind !== 9) return textOf(ix, node);
  let s = ix.strings.get(node);
  if (s === undefined) {
    s = "";
    const { order, tree } = ix;
    for (let r = ix.rank[node] + 1, stop = ix.end[node]; r < stop; r++) {
      if (tree.kind[order[r]] === TEXT) s += textOf(ix, order[r]);
    }
    ix.strings.set(node, s);
  }
  return s;
}

/**
 * A node's string value as lib/html.ts's stringValue gives it (linkedom's textContent; an attribute's value):
 * what queryAll and queryOne answer. The document's is "" there, as linkedom's Document.textContent is null.
 */
export function flatString(tree: FlatTree, node: number): string {
  return node === 0 ? "" : stringOf(indexOf(tree), node);
}

/** `node`'s descendants in document order (a template's contents left out): a view of the index, not a copy. */
export function flatDescendants(tree: FlatTree, node: number): Int32Array {
  const ix = indexOf(tree);
  return ix.order.subarray(ix.rank[node] + 1, ix.end[node]);
}

/** The node that contains `node` (an attribute's element), or -1 for the document. */
export function flatParent(tree: FlatTree, node: number): number {
  const ix = indexOf(tree);
  return node >= ix.count ? ix.owner[node - ix.count] : node === 0 ? -1 : tree.parent[node];
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

// deno-lint-ignore no-explicit-any
const X = xpath as any;
const numberFormat = /^\s*-?[0-9]*\.?[0-9]+\s*$/;

function toNumber(ix: Index, value: FlatValue): number {
  if (typeof value === "number") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  const s = typeof value === "string" ? value : value.length ? stringOf(ix, value[0]) : "";
  return numberFormat.test(s) ? parseFloat(s) : NaN;
}

function toStr(ix: Index, value: FlatValue): string {
  if (typeof value === "string") return value;
  if (typeof value === "number") return new X.XNumber(value).toString();
  if (typeof value === "boolean") return value ? "true" : "false";
  return value.length ? stringOf(ix, value[0]) : "";
}

function toBool(value: FlatValue): boolean {
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value !== 0 && !Number.isNaN(value);
  return value.length > 0;
}

type Op = "=" | "!=" | "<" | ">" | "<=" | ">=";
const FLIPPED: Record<Op, Op> = { "=": "=", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<=" };

function compareAtoms(op: Op, a: string | number | boolean, b: string | number | boolean): boolean {
  if (op === "=" || op === "!=") {
    let same: boolean;
    if (typeof a === "boolean" || typeof b === "boolean") same = toBool(a) === toBool(b);
    else if (typeof a === "number" || typeof b === "number") same = toNumber(null!, a) === toNumber(null!, b);
    else same = a === b;
    return op === "=" ? same : !same;
  }
  const x = toNumber(null!, a), y = toNumber(null!, b);
  return op === "<" ? x < y : op === ">" ? x > y : op === "<=" ? x <= y : x >= y;
}

function compare(ix: Index, op: Op, a: FlatValue, b: FlatValue): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    const right = b.map((n) => stringOf(ix, n));
    return a.some((n) => {
      const s = stringOf(ix, n);
      return right.some((t) => compareAtoms(op, s, t));
    });
  }
  if (Array.isArray(b)) return compare(ix, FLIPPED[op], b, a);
  if (Array.isArray(a)) {
    if (typeof b === "boolean") return compareAtoms(op, a.length > 0, b);
    if (typeof b === "number") return a.some((n) => compareAtoms(op, toNumber(ix, stringOf(ix, n)), b));
    return a.some((n) => compareAtoms(op, stringOf(ix, n), b));
  }
  return compareAtoms(op, a, b);
}

/** Sorts node numbers into document order and drops repeats, unless they already are in order. */
function inOrder(ix: Index, nodes: number[]): number[] {
  const key = ix.key;
  for (let i = 1; i < nodes.length; i++) {
    if (key[nodes[i - 1]] >= key[nodes[i]]) {
      const sorted = nodes.sort((a, b) => key[a] - key[b]);
      return sorted.filter((n, j) => j === 0 || n !== sorted[j - 1]);
    }
  }
  return nodes;
}

// ---------------------------------------------------------------------------------------------
// Compiling: the xpath package's parse, turned into closures
// ---------------------------------------------------------------------------------------------

/** Evaluates an expression for a context node, its position and the context size. */
type Evaluate = (ix: Index, node: number, position: number, size: number) => FlatValue;

interface Compiled {
  evaluate: Evaluate;
  /** What the expression answers whatever the document: known when it cannot depend on a variable's type. */
  type: "nodes" | "number" | "string" | "boolean" | "any";
  /** Whether it calls position() or last() for its own context (not inside a predicate of its own). */
  positional: boolean;
}

let variables: FlatVariables = {};

const { Step, NodeTest, PathExpr, FunctionCall, VariableReference, XString, XNumber } = X;
const BINARY: [string, string][] = [
  ["OrOperation", "or"],
  ["AndOperation", "and"],
  ["EqualsOperation", "="],
  ["NotEqualOperation", "!="],
  ["LessThanOperation", "<"],
  ["GreaterThanOperation", ">"],
  ["LessThanOrEqualOperation", "<="],
  ["GreaterThanOrEqualOperation", ">="],
  ["PlusOperation", "+"],
  ["MinusOperation", "-"],
  ["MultiplyOperation", "*"],
  ["DivOperation", "div"],
  ["ModOperation", "mod"],
  ["BarOperation", "|"],
];

// deno-lint-ignore no-explicit-any
type Ast = any;

function compileExpression(ast: Ast): Compiled {
  if (ast instanceof XString) {
    const s = ast.stringValue();
    return { evaluate: () => s, type: "string", positional: false };
  }
  if (ast instanceof XNumber) {
    const n = ast.numberValue();
    return { evaluate: () => n, type: "number", positional: false };
  }
  if (ast instanceof VariableReference) {
    const name: string = ast.variable;
    if (name.includes(":")) throw new Unsupported();
    return {
      evaluate: () => {
        const value = variables[name];
        if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
          throw new Unsupported();
        }
        return value;
      },
      type: "any",
      positional: false,
    };
  }
  if (ast instanceof FunctionCall) return compileFunction(ast.functionName, ast.arguments.map(compileExpression));
  if (ast instanceof PathExpr) return compilePath(ast);
  if (ast instanceof X.UnaryMinusOperation) {
    const rhs = compileExpression(ast.rhs);
    return {
      evaluate: (ix, n, p, s) => -toNumber(ix, rhs.evaluate(ix, n, p, s)),
      type: "number",
      positional: rhs.positional,
    };
  }
  const binary = BINARY.find(([name]) => ast instanceof X[name]);
  if (!binary) throw new Unsupported();
  return compileBinary(binary[1], compileExpression(ast.lhs), compileExpression(ast.rhs));
}

function compileBinary(op: string, lhs: Compiled, rhs: Compiled): Compiled {
  const l = lhs.evaluate, r = rhs.evaluate;
  const positional = lhs.positional || rhs.positional;
  let evaluate: Evaluate;
  let type: Compiled["type"] = "number";
  switch (op) {
    case "or":
      evaluate = (ix, n, p, s) => toBool(l(ix, n, p, s)) || toBool(r(ix, n, p, s));
      type = "boolean";
      break;
    case "and":
      evaluate = (ix, n, p, s) => toBool(l(ix, n, p, s)) && toBool(r(ix, n, p, s));
      type = "boolean";
      break;
    case "=":
    case "!=":
    case "<":
    case ">":
    case "<=":
    case ">=":
      evaluate = (ix, n, p, s) => compare(ix, op, l(ix, n, p, s), r(ix, n, p, s));
      type = "boolean";
      break;
    case "+":
      evaluate = (ix, n, p, s) => toNumber(ix, l(ix, n, p, s)) + toNumber(ix, r(ix, n, p, s));
      break;
    case "-":
      evaluate = (ix, n, p, s) => toNumber(ix, l(ix, n, p, s)) - toNumber(ix, r(ix, n, p, s));
      break;
    case "*":
      evaluate = (ix, n, p, s) => toNumber(ix, l(ix, n, p, s)) * toNumber(ix, r(ix, n, p, s));
      break;
    case "div":
      evaluate = (ix, n, p, s) => toNumber(ix, l(ix, n, p, s)) / toNumber(ix, r(ix, n, p, s));
      break;
    case "mod":
      evaluate = (ix, n, p, s) => toNumber(ix, l(ix, n, p, s)) % toNumber(ix, r(ix, n, p, s));
      break;
    default: // "|"
      evaluate = (ix, n, p, s) => {
        const a = l(ix, n, p, s), b = r(ix, n, p, s);
        if (!Array.isArray(a) || !Array.isArray(b)) throw new Unsupported();
        return inOrder(ix, a.concat(b));
      };
      type = "nodes";
  }
  return { evaluate, type, positional };
}

function compileFunction(name: string, args: Compiled[]): Compiled {
  const positional = args.some((a) => a.positional);
  const arity = (...counts: number[]) => {
    if (!counts.includes(args.length)) throw new Unsupported();
  };
  const str = (i: number, ix: Index, n: number, p: number, s: number) => toStr(ix, args[i].evaluate(ix, n, p, s));
  const of = (type: Compiled["type"], evaluate: Evaluate, own = false): Compiled => ({
    evaluate,
    type,
    positional: positional || own,
  });
  switch (name) {
    case "last":
      arity(0);
      return of("number", (_ix, _n, _p, s) => s, true);
    case "position":
      arity(0);
      return of("number", (_ix, _n, p) => p, true);
    case "count":
      arity(1);
      return of("number", (ix, n, p, s) => {
        const v = args[0].evaluate(ix, n, p, s);
        if (!Array.isArray(v)) throw new Unsupported();
        return v.length;
      });
    case "string":
      arity(0, 1);
      return of("string", args.length ? (ix, n, p, s) => str(0, ix, n, p, s) : (ix, n) => stringOf(ix, n));
    case "concat":
      if (args.length < 2) throw new Unsupported();
      return of("string", (ix, n, p, s) => {
        let out = "";
        for (let i = 0; i < args.length; i++) out += str(i, ix, n, p, s);
        return out;
      });
    case "starts-with":
      arity(2);
      return of("boolean", (ix, n, p, s) => {
        const b = str(1, ix, n, p, s);
        return str(0, ix, n, p, s).substring(0, b.length) === b;
      });
    case "contains":
      arity(2);
      return of("boolean", (ix, n, p, s) => str(0, ix, n, p, s).indexOf(str(1, ix, n, p, s)) !== -1);
    case "substring-before":
      arity(2);
      return of("string", (ix, n, p, s) => {
        const a = str(0, ix, n, p, s);
        return a.substring(0, a.indexOf(str(1, ix, n, p, s)));
      });
    case "substring-after":
      arity(2);
      return of("string", (ix, n, p, s) => {
        const a = str(0, ix, n, p, s), b = str(1, ix, n, p, s);
        if (b.length === 0) return a;
        const i = a.indexOf(b);
        return i === -1 ? "" : a.substring(i + b.length);
      });
    case "substring":
      arity(2, 3);
      // The xpath package's own arithmetic (rounded start and length, then String.substring).
      return of("string", (ix, n, p, s) => {
        const a = str(0, ix, n, p, s);
        const from = Math.round(toNumber(ix, args[1].evaluate(ix, n, p, s))) - 1;
        const to = args.length === 3 ? from + Math.round(toNumber(ix, args[2].evaluate(ix, n, p, s))) : undefined;
        return a.substring(from, to);
      });
    case "string-length":
      arity(0, 1);
      return of("number", (ix, n, p, s) => (args.length ? str(0, ix, n, p, s) : stringOf(ix, n)).length);
    case "normalize-space":
      arity(0, 1);
      return of(
        "string",
        (ix, n, p, s) => normalizeSpace(args.length ? str(0, ix, n, p, s) : stringOf(ix, n)),
      );
    case "boolean":
      arity(1);
      return of("boolean", (ix, n, p, s) => toBool(args[0].evaluate(ix, n, p, s)));
    case "not":
      arity(1);
      return of("boolean", (ix, n, p, s) => !toBool(args[0].evaluate(ix, n, p, s)));
    case "true":
      arity(0);
      return of("boolean", () => true);
    case "false":
      arity(0);
      return of("boolean", () => false);
    case "number":
      arity(0, 1);
      return of("number", (ix, n, p, s) => toNumber(ix, args.length ? args[0].evaluate(ix, n, p, s) : [n]));
    case "local-name":
      arity(0, 1);
      return of("string", (ix, n, p, s) => {
        let node = n;
        if (args.length) {
          const v = args[0].evaluate(ix, n, p, s);
          if (!Array.isArray(v)) throw new Unsupported();
          if (v.length === 0) return "";
          node = v[0];
        }
        const kind = nodeKind(ix, node);
        if (kind === 2) {
          return ix.tree.localName(
            ix.tree.attrName(ix.owner[node - ix.count], node - ix.count - ix.tree.attrStart[ix.owner[node - ix.count]]),
          );
        }
        if (kind === ELEMENT) return ix.tree.localName(ix.tree.name[node]);
        throw new Unsupported();
      });
  }
  throw new Unsupported();
}

function normalizeSpace(s: string): string {
  return s.replace(/[\t\n\r ]+/g, " ").replace(/^ | $/g, "");
}

// ---------------------------------------------------------------------------------------------
// Location paths
// ---------------------------------------------------------------------------------------------

/** A node test for a name id, or for a node's kind; answers whether node `n` passes. */
type Test = (ix: Index, n: number) => boolean;

function compileTest(nodeTest: Ast): Test {
  switch (nodeTest.type) {
    case NodeTest.NODE:
      return () => true;
    case NodeTest.TEXT:
      return (ix, n) => n < ix.count && ix.tree.kind[n] === TEXT;
    case NodeTest.COMMENT:
      return (ix, n) => n < ix.count && ix.tree.kind[n] === COMMENT;
    case NodeTest.NAMETESTANY:
      return (ix, n) => n >= ix.count || ix.tree.kind[n] === ELEMENT;
    case NodeTest.NAMETESTPREFIXANY:
      if (nodeTest.prefix !== "html") throw new Unsupported();
      return byName((ix, name) => ix.tree.namespaceOf(name) === XHTML_NAMESPACE);
    case NodeTest.NAMETESTQNAME: {
      const prefix: string | null = nodeTest.prefix;
      if (prefix !== null && prefix !== "html") throw new Unsupported();
      const local = (nodeTest.localName as string).toLowerCase();
      return byName((ix, name) => {
        const tree = ix.tree;
        if (tree.localName(name).toLowerCase() !== local) return false;
        const namespace = tree.namespaceOf(name);
        return prefix === null ? namespace === "" || !tree.names[name].includes(":") : namespace === XHTML_NAMESPACE;
      });
    }
  }
  throw new Unsupported();
}

/** A test on element and attribute names, its answer kept per name id (ids are the module's, shared by trees). */
function byName(matches: (ix: Index, name: number) => boolean): Test {
  const known: boolean[] = [];
  const nameOf = (ix: Index, n: number) => {
    if (n < ix.count) return ix.tree.kind[n] === ELEMENT ? ix.tree.name[n] : -1;
    const slot = n - ix.count;
    return ix.tree.attrs[slot * 3];
  };
  return (ix, n) => {
    const name = nameOf(ix, n);
    if (name === -1) return false;
    return known[name] ??= matches(ix, name);
  };
}

interface CompiledStep {
  axis: number;
  test: Test;
  predicates: Compiled[];
}

const REVERSE = new Set([Step.ANCESTOR, Step.ANCESTORORSELF, Step.PARENT, Step.PRECEDINGSIBLING]);
const SUPPORTED_AXES = new Set([
  Step.ANCESTOR,
  Step.ANCESTORORSELF,
  Step.ATTRIBUTE,
  Step.CHILD,
  Step.DESCENDANT,
  Step.DESCENDANTORSELF,
  Step.FOLLOWINGSIBLING,
  Step.PARENT,
  Step.PRECEDINGSIBLING,
  Step.SELF,
]);

function compileSteps(steps: Ast[]): CompiledStep[] {
  const compiled: CompiledStep[] = steps.map((step) => {
    if (!SUPPORTED_AXES.has(step.axis)) throw new Unsupported();
    return {
      axis: step.axis,
      test: compileTest(step.nodeTest),
      predicates: step.predicates.map(compileExpression),
    };
  });
  // `//x[p]` is descendant-or-self::node()/child::x[p]: with no positional predicate it selects what
  // descendant::x[p] selects, in one walk.
  for (let i = compiled.length - 2; i >= 0; i--) {
    const [any, child] = [compiled[i], compiled[i + 1]];
    if (
      any.axis === Step.DESCENDANTORSELF && steps[i].nodeTest.type === NodeTest.NODE && any.predicates.length === 0 &&
      child.axis === Step.CHILD && child.predicates.every((p) =>
        !p.positional && p.type !== "number" && p.type !== "any"
      )
    ) {
      compiled.splice(i, 2, { axis: Step.DESCENDANT, test: child.test, predicates: child.predicates });
    }
  }
  return compiled;
}

/** The nodes along `axis` from `n` that pass `test`, in the axis's order (reverse axes nearest first). */
function axisNodes(ix: Index, axis: number, n: number, test: Test, out: number[]): void {
  const { tree, count } = ix;
  const isAttribute = n >= count;
  switch (axis) {
    case Step.CHILD:
      if (isAttribute) return;
      for (let c = tree.first[n]; c !== -1; c = tree.next[c]) if (tree.kind[c] !== DOCTYPE && test(ix, c)) out.push(c);
      return;
    case Step.DESCENDANTORSELF:
      if (test(ix, n)) out.push(n);
      if (isAttribute) return;
      // falls through
    case Step.DESCENDANT: {
      if (isAttribute) return;
      const order = ix.order;
      for (let r = ix.rank[n] + 1, stop = ix.end[n]; r < stop; r++) if (test(ix, order[r])) out.push(order[r]);
      return;
    }
    case Step.ATTRIBUTE:
      if (isAttribute || tree.kind[n] !== ELEMENT) return;
      for (let i = 0, slot = tree.attrStart[n]; i < tree.attrCount[n]; i++, slot++) {
        if (test(ix, count + slot)) out.push(count + slot);
      }
      return;
    case Step.SELF:
      if (test(ix, n)) out.push(n);
      return;
    case Step.PARENT: {
      const p = isAttribute ? ix.owner[n - count] : n === 0 ? -1 : tree.parent[n];
      if (p !== -1 && test(ix, p)) out.push(p);
      return;
    }
    case Step.ANCESTORORSELF:
      if (test(ix, n)) out.push(n);
      // falls through
    case Step.ANCESTOR:
      for (
        let p = isAttribute ? ix.owner[n - count] : n === 0 ? -1 : tree.parent[n];
        p !== -1;
        p = p === 0 ? -1 : tree.parent[p]
      ) {
        if (test(ix, p)) out.push(p);
      }
      return;
    case Step.FOLLOWINGSIBLING:
      if (isAttribute) return;
      for (let c = tree.next[n]; c !== -1; c = tree.next[c]) if (tree.kind[c] !== DOCTYPE && test(ix, c)) out.push(c);
      return;
    case Step.PRECEDINGSIBLING:
      if (isAttribute) return;
      for (let c = tree.prev[n]; c !== -1; c = tree.prev[c]) if (tree.kind[c] !== DOCTYPE && test(ix, c)) out.push(c);
      return;
  }
}

/** Keeps the nodes for which each predicate holds, in turn; a number predicate is a position. */
function filter(ix: Index, nodes: number[], predicates: Compiled[]): number[] {
  for (const predicate of predicates) {
    const kept: number[] = [];
    const size = nodes.length;
    for (let i = 0; i < size; i++) {
      const v = predicate.evaluate(ix, nodes[i], i + 1, size);
      if (typeof v === "number" ? v === i + 1 : toBool(v)) kept.push(nodes[i]);
    }
    nodes = kept;
  }
  return nodes;
}

function applySteps(ix: Index, contexts: number[], steps: CompiledStep[]): number[] {
  for (const step of steps) {
    const found: number[] = [];
    const reverse = REVERSE.has(step.axis);
    // With a positional predicate each context node's nodes are numbered on their own; otherwise nested
    // descendant walks would repeat what the outer one found.
    const skipNested = step.axis === Step.DESCENDANT &&
      step.predicates.every((p) => !p.positional && p.type !== "number" && p.type !== "any");
    let covered = -1;
    for (const n of contexts) {
      if (skipNested && n < ix.count) {
        if (ix.rank[n] < covered) continue;
        covered = ix.end[n];
      }
      if (step.predicates.length === 0) {
        axisNodes(ix, step.axis, n, step.test, found);
        continue;
      }
      const along: number[] = [];
      axisNodes(ix, step.axis, n, step.test, along);
      for (const m of filter(ix, along, step.predicates)) found.push(m);
    }
    if (reverse) found.reverse();
    contexts = contexts.length > 1 || reverse ? inOrder(ix, found) : found;
  }
  return contexts;
}

function compilePath(ast: Ast): Compiled {
  const path = ast.locationPath;
  const steps = path ? compileSteps(path.steps) : [];
  const absolute = Boolean(path?.absolute);
  if (ast.filter === undefined) {
    return {
      evaluate: (ix, n) => applySteps(ix, absolute ? [0] : [n], steps),
      type: "nodes",
      positional: false,
    };
  }
  const inner = compileExpression(ast.filter);
  const predicates: Compiled[] = (ast.filterPredicates ?? []).map(compileExpression);
  if (predicates.length === 0 && !path) return inner;
  return {
    evaluate: (ix, n, p, s) => {
      const value = inner.evaluate(ix, n, p, s);
      if (!Array.isArray(value)) throw new Unsupported();
      return applySteps(ix, filter(ix, value, predicates), steps);
    },
    type: "nodes",
    positional: inner.positional,
  };
}

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

const compiled = new Map<string, Compiled | null>();
const MAX_COMPILED = 1000;

/** The compiled query, or null for a shape left to evaluateXPath (or a query xpath cannot parse). */
function compileQuery(query: string): Compiled | null {
  let found = compiled.get(query);
  if (found === undefined) {
    try {
      const expression = X.parse(query).expression.expression;
      found = compileExpression(expression);
      if (found.positional) found = null;
    } catch {
      found = null;
    }
    if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
    compiled.set(query, found);
  }
  return found;
}

/** Whether evaluateFlat answers `query` when its variables are given; and whether it is known to be a node-set. */
export function flatQueryType(query: string): Compiled["type"] | null {
  return compileQuery(query)?.type ?? null;
}

/**
 * Evaluates `query` on the document of `tree`, or answers undefined where this evaluator leaves the query to
 * evaluateXPath (see the module's header). Node-sets are node numbers in document order.
 */
export function evaluateFlat(tree: FlatTree, query: string, vars: FlatVariables = {}): FlatValue | undefined {
  const expression = compileQuery(query);
  if (!expression) return undefined;
  variables = vars;
  try {
    return expression.evaluate(indexOf(tree), 0, 1, 1);
  } catch (error) {
    if (error instanceof Unsupported) return undefined;
    throw error;
  } finally {
    variables = {};
  }
}
