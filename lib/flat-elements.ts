/**
 * A flat tree's elements as the few DOM properties lib/form.ts reads (`localName`, `getAttribute`,
 * `parentElement`, `children`, `childNodes`, `textContent`), made only for the elements a form submission
 * visits, so that submitting a page's form does not parse the page a second time into a DOM.
 *
 *   const view = flatElements(tree);
 *   const form = view.element(42);            // the same object for node 42 every time
 *   await formSubmission(form, page, values, options, view);
 *
 * It reads the tree as the DOM built from the same page would: a template's contents are not among its
 * children, and the controls are HTML elements (an <input> inside <svg> is not one).
 */
import { ELEMENT, type FlatTree, NAMESPACES } from "./native-html.ts";
import { flatDescendants, flatString } from "./xpath-flat.ts";
import type { FormElement, FormPageTree } from "./form.ts";

const XHTML = NAMESPACES[1];
const CONTROLS = new Set(["button", "input", "select", "textarea"]);

/** A text node, a comment or anything else that is not an element, as childNodes lists it. */
interface FlatChild {
  readonly nodeType: number;
  readonly nodeValue: string | null;
}

class FlatElement implements FormElement {
  readonly nodeType = ELEMENT;
  readonly nodeValue = null;
  constructor(private readonly view: FlatElements, readonly index: number) {}

  get localName(): string {
    const tree = this.view.tree;
    return tree.localName(tree.name[this.index]);
  }

  getAttribute(name: string): string | null {
    return this.view.tree.getAttribute(this.index, name);
  }

  hasAttribute(name: string): boolean {
    return this.getAttribute(name) !== null;
  }

  get parentElement(): FlatElement | null {
    const parent = this.view.tree.parent[this.index];
    return parent >= 0 && this.view.tree.kind[parent] === ELEMENT ? this.view.element(parent) : null;
  }

  get children(): FlatElement[] {
    const tree = this.view.tree, found: FlatElement[] = [];
    for (let c = tree.first[this.index]; c >= 0; c = tree.next[c]) {
      if (tree.kind[c] === ELEMENT) found.push(this.view.element(c));
    }
    return found;
  }

  get childNodes(): (FlatElement | FlatChild)[] {
    const tree = this.view.tree, found: (FlatElement | FlatChild)[] = [];
    for (let c = tree.first[this.index]; c >= 0; c = tree.next[c]) {
      const kind = tree.kind[c];
      found.push(kind === ELEMENT ? this.view.element(c) : { nodeType: kind, nodeValue: tree.data(c) });
    }
    return found;
  }

  get textContent(): string {
    return flatString(this.view.tree, this.index);
  }
}

/** The elements of one flat tree, each made once, and what a form reads of the page around it. */
class FlatElements implements FormPageTree {
  private readonly made = new Map<number, FlatElement>();
  constructor(readonly tree: FlatTree) {}

  element(index: number): FlatElement {
    let element = this.made.get(index);
    if (!element) this.made.set(index, element = new FlatElement(this, index));
    return element;
  }

  /** Whether `node` is an HTML element. */
  isHtml(node: number): boolean {
    return this.tree.kind[node] === ELEMENT && this.tree.namespaceOf(this.tree.name[node]) === XHTML;
  }

  baseHref(): string | null {
    const { tree } = this;
    const base = this.find((n) =>
      this.isHtml(n) && tree.localName(tree.name[n]) === "base" && tree.getAttribute(n, "href") !== null
    );
    return base < 0 ? null : tree.getAttribute(base, "href");
  }

  byId(id: string): FlatElement | null {
    const found = this.find((n) => this.tree.kind[n] === ELEMENT && this.tree.getAttribute(n, "id") === id);
    return found < 0 ? null : this.element(found);
  }

  candidates(form: FormElement): FlatElement[] {
    const { tree } = this;
    const inside = new Set(flatDescendants(tree, (form as FlatElement).index));
    const found: FlatElement[] = [];
    for (const n of flatDescendants(tree, 0)) {
      if (!this.isHtml(n)) continue;
      const control = inside.has(n) && CONTROLS.has(tree.localName(tree.name[n]));
      if (control || tree.getAttribute(n, "form") !== null) found.push(this.element(n));
    }
    return found;
  }

  /** The first node in tree order for which `test` holds, or -1. */
  private find(test: (node: number) => boolean): number {
    for (const n of flatDescendants(this.tree, 0)) if (test(n)) return n;
    return -1;
  }
}

/** The view of `tree`'s elements that lib/form.ts reads. */
export function flatElements(tree: FlatTree): FlatElements {
  return new FlatElements(tree);
}

/** Whether node `index` of `tree` is an HTML <form> element. */
export function isFlatForm(tree: FlatTree, index: number): boolean {
  return index >= 0 && index < tree.count && tree.kind[index] === ELEMENT &&
    tree.namespaceOf(tree.name[index]) === XHTML && tree.localName(tree.name[index]) === "form";
}
