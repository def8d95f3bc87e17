//! html5ever's WHATWG tree builder, writing the tree as flat columns in this module's memory.
//!
//! JavaScript writes a page's UTF-8 bytes at `input(len)`, calls `parse(len)`, and reads the answer through
//! the header that `parse` points to (see `Header`). No node is an object: a node is an index into the columns.
//! Kinds are DOM node types (1 element, 3 text, 7 processing instruction, 8 comment, 9 document, 10 doctype,
//! 11 a template's contents). -1 means "none" in the link columns.
//!
//! Per node: kind (u8), name id, parent, first child, last child, next sibling, previous sibling, attribute
//! span (start, count; each attribute is three u32: name id, value start, value length in `text`), text span
//! (start, length in `text`). Special cases: a doctype's text is its name and its attribute span holds two
//! values, public id then system id (name id 0); a template element's text start is the index of its contents
//! node (kind 11), whose parent is the template but which is not among its children.
//!
//! Name ids are interned for the module's lifetime, so JavaScript decodes each name once. Per name: namespace
//! code (0 none, 1 html, 2 svg, 3 mathml, 4 xlink, 5 xml, 6 xmlns), start and length of its qualified name
//! in the names text, and the length of its prefix (0 without one; the local name follows the colon).

use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::tree_builder::{ElementFlags, NodeOrText, QuirksMode, TreeBuilderOpts, TreeSink};
use html5ever::{namespace_url, ns, parse_document, Attribute, ExpandedName, ParseOpts, QualName};
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const NONE: i32 = -1;
const ELEMENT: u8 = 1;
const TEXT: u8 = 3;
const PI: u8 = 7;
const COMMENT: u8 = 8;
const DOCUMENT: u8 = 9;
const DOCTYPE: u8 = 10;
const FRAGMENT: u8 = 11;

/// FNV-1a: names are few and short-keyed (atoms hash as integers), so SipHash's cost buys nothing here.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf29ce484222325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ *byte as u64).wrapping_mul(0x100000001b3);
        }
    }

    fn write_u32(&mut self, value: u32) {
        self.write_u64(value as u64);
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0 ^ value).wrapping_mul(0x100000001b3);
    }
}

#[derive(Default)]
struct Names {
    ids: HashMap<QualName, u32, BuildHasherDefault<Fnv>>,
    names: Vec<QualName>,
    /// Four u32 a name: namespace code, start, length, prefix length.
    meta: Vec<u32>,
    text: Vec<u8>,
}

impl Names {
    fn new() -> Names {
        let mut names = Names::default();
        // Id 0: no name (document, text, comment, doctype values).
        names.intern(QualName::new(None, ns!(), html5ever::LocalName::from("")));
        names
    }

    fn intern(&mut self, name: QualName) -> u32 {
        if let Some(&id) = self.ids.get(&name) {
            return id;
        }
        let id = self.names.len() as u32;
        let code = match &*name.ns {
            "" => 0,
            "http://www.w3.org/1999/xhtml" => 1,
            "http://www.w3.org/2000/svg" => 2,
            "http://www.w3.org/1998/Math/MathML" => 3,
            "http://www.w3.org/1999/xlink" => 4,
            "http://www.w3.org/XML/1998/namespace" => 5,
            "http://www.w3.org/2000/xmlns/" => 6,
            _ => 0,
        };
        let start = self.text.len() as u32;
        let prefix_len = match &name.prefix {
            Some(prefix) => {
                self.text.extend_from_slice(prefix.as_bytes());
                self.text.push(b':');
                prefix.len() as u32
            }
            None => 0,
        };
        self.text.extend_from_slice(name.local.as_bytes());
        self.meta.extend_from_slice(&[code, start, self.text.len() as u32 - start, prefix_len]);
        self.ids.insert(name.clone(), id);
        self.names.push(name);
        id
    }
}

#[derive(Default)]
struct Tree {
    kind: Vec<u8>,
    name: Vec<u32>,
    parent: Vec<i32>,
    first: Vec<i32>,
    last: Vec<i32>,
    next: Vec<i32>,
    prev: Vec<i32>,
    attr_start: Vec<u32>,
    attr_count: Vec<u32>,
    text_start: Vec<i32>,
    text_len: Vec<u32>,
    attrs: Vec<u32>,
    text: Vec<u8>,
    annotation_points: Vec<u32>,
    quirks: u32,
}

impl Tree {
    fn clear(&mut self) {
        self.kind.clear();
        self.name.clear();
        self.parent.clear();
        self.first.clear();
        self.last.clear();
        self.next.clear();
        self.prev.clear();
        self.attr_start.clear();
        self.attr_count.clear();
        self.text_start.clear();
        self.text_len.clear();
        self.attrs.clear();
        self.text.clear();
        self.annotation_points.clear();
        self.quirks = 0;
    }

    fn node(&mut self, kind: u8, name: u32) -> u32 {
        let id = self.kind.len() as u32;
        self.kind.push(kind);
        self.name.push(name);
        self.parent.push(NONE);
        self.first.push(NONE);
        self.last.push(NONE);
        self.next.push(NONE);
        self.prev.push(NONE);
        self.attr_start.push(self.attrs.len() as u32 / 3);
        self.attr_count.push(0);
        self.text_start.push(self.text.len() as i32);
        self.text_len.push(0);
        id
    }

    fn text_node(&mut self, kind: u8, text: &str) -> u32 {
        let id = self.node(kind, 0);
        self.text.extend_from_slice(text.as_bytes());
        self.text_len[id as usize] = text.len() as u32;
        id
    }

    /// Appends `text` to a text node, moving its text to the end of the buffer first if something follows it.
    fn extend_text(&mut self, node: u32, text: &str) {
        let n = node as usize;
        let start = self.text_start[n] as usize;
        let len = self.text_len[n] as usize;
        if start + len != self.text.len() {
            self.text_start[n] = self.text.len() as i32;
            self.text.extend_from_within(start..start + len);
        }
        self.text.extend_from_slice(text.as_bytes());
        self.text_len[n] += text.len() as u32;
    }

    fn push_attrs(&mut self, names: &mut Names, attrs: Vec<Attribute>) {
        for attr in attrs {
            let name = names.intern(attr.name);
            let start = self.text.len() as u32;
            self.text.extend_from_slice(attr.value.as_bytes());
            self.attrs.extend_from_slice(&[name, start, attr.value.len() as u32]);
        }
    }

    fn detach(&mut self, node: u32) {
        let n = node as usize;
        let parent = self.parent[n];
        if parent == NONE {
            return;
        }
        let (prev, next) = (self.prev[n], self.next[n]);
        if prev == NONE {
            self.first[parent as usize] = next;
        } else {
            self.next[prev as usize] = next;
        }
        if next == NONE {
            self.last[parent as usize] = prev;
        } else {
            self.prev[next as usize] = prev;
        }
        self.parent[n] = NONE;
        self.prev[n] = NONE;
        self.next[n] = NONE;
    }

    fn append_child(&mut self, parent: u32, child: u32) {
        self.detach(child);
        let (p, c) = (parent as usize, child as usize);
        let last = self.last[p];
        self.parent[c] = parent as i32;
        self.prev[c] = last;
        if last == NONE {
            self.first[p] = child as i32;
        } else {
            self.next[last as usize] = child as i32;
        }
        self.last[p] = child as i32;
    }

    fn insert_before(&mut self, sibling: u32, child: u32) {
        self.detach(child);
        let (s, c) = (sibling as usize, child as usize);
        let parent = self.parent[s];
        let prev = self.prev[s];
        self.parent[c] = parent;
        self.prev[c] = prev;
        self.next[c] = sibling as i32;
        self.prev[s] = child as i32;
        if prev == NONE {
            self.first[parent as usize] = child as i32;
        } else {
            self.next[prev as usize] = child as i32;
        }
    }
}

struct Sink<'a> {
    tree: &'a mut Tree,
    names: &'a mut Names,
}

impl<'a> TreeSink for Sink<'a> {
    type Handle = u32;
    type Output = ();

    fn finish(self) {}

    fn parse_error(&mut self, _msg: Cow<'static, str>) {}

    fn get_document(&mut self) -> u32 {
        0
    }

    fn elem_name<'b>(&'b self, target: &'b u32) -> ExpandedName<'b> {
        self.names.names[self.tree.name[*target as usize] as usize].expanded()
    }

    fn create_element(&mut self, name: QualName, attrs: Vec<Attribute>, flags: ElementFlags) -> u32 {
        let id = self.names.intern(name);
        let node = self.tree.node(ELEMENT, id);
        self.tree.push_attrs(self.names, attrs);
        self.tree.attr_count[node as usize] = self.tree.attrs.len() as u32 / 3 - self.tree.attr_start[node as usize];
        self.tree.text_start[node as usize] = NONE;
        if flags.template {
            let contents = self.tree.node(FRAGMENT, 0);
            self.tree.parent[contents as usize] = node as i32;
            self.tree.text_start[node as usize] = contents as i32;
        }
        if flags.mathml_annotation_xml_integration_point {
            self.tree.annotation_points.push(node);
        }
        node
    }

    fn create_comment(&mut self, text: StrTendril) -> u32 {
        self.tree.text_node(COMMENT, &text)
    }

    fn create_pi(&mut self, target: StrTendril, data: StrTendril) -> u32 {
        let id = self.names.intern(QualName::new(None, ns!(), html5ever::LocalName::from(&*target)));
        let node = self.tree.text_node(PI, &data);
        self.tree.name[node as usize] = id;
        node
    }

    fn append(&mut self, parent: &u32, child: NodeOrText<u32>) {
        match child {
            NodeOrText::AppendNode(node) => self.tree.append_child(*parent, node),
            NodeOrText::AppendText(text) => {
                let last = self.tree.last[*parent as usize];
                if last != NONE && self.tree.kind[last as usize] == TEXT {
                    self.tree.extend_text(last as u32, &text);
                } else {
                    let node = self.tree.text_node(TEXT, &text);
                    self.tree.append_child(*parent, node);
                }
            }
        }
    }

    fn append_based_on_parent_node(&mut self, element: &u32, prev_element: &u32, child: NodeOrText<u32>) {
        if self.tree.parent[*element as usize] != NONE {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&mut self, name: StrTendril, public_id: StrTendril, system_id: StrTendril) {
        let node = self.tree.text_node(DOCTYPE, &name);
        for value in [public_id, system_id] {
            let start = self.tree.text.len() as u32;
            self.tree.text.extend_from_slice(value.as_bytes());
            self.tree.attrs.extend_from_slice(&[0, start, value.len() as u32]);
        }
        self.tree.attr_count[node as usize] = 2;
        self.tree.append_child(0, node);
    }

    fn get_template_contents(&mut self, target: &u32) -> u32 {
        self.tree.text_start[*target as usize] as u32
    }

    fn same_node(&self, x: &u32, y: &u32) -> bool {
        x == y
    }

    fn set_quirks_mode(&mut self, mode: QuirksMode) {
        self.tree.quirks = match mode {
            QuirksMode::NoQuirks => 0,
            QuirksMode::LimitedQuirks => 1,
            QuirksMode::Quirks => 2,
        };
    }

    fn append_before_sibling(&mut self, sibling: &u32, child: NodeOrText<u32>) {
        match child {
            NodeOrText::AppendNode(node) => self.tree.insert_before(*sibling, node),
            NodeOrText::AppendText(text) => {
                let prev = self.tree.prev[*sibling as usize];
                if prev != NONE && self.tree.kind[prev as usize] == TEXT {
                    self.tree.extend_text(prev as u32, &text);
                } else {
                    let node = self.tree.text_node(TEXT, &text);
                    self.tree.insert_before(*sibling, node);
                }
            }
        }
    }

    fn add_attrs_if_missing(&mut self, target: &u32, attrs: Vec<Attribute>) {
        let t = *target as usize;
        let (start, count) = (self.tree.attr_start[t] as usize, self.tree.attr_count[t] as usize);
        let present: Vec<u32> = (start..start + count).map(|i| self.tree.attrs[i * 3]).collect();
        let missing: Vec<Attribute> = attrs
            .into_iter()
            .filter(|a| self.names.ids.get(&a.name).map_or(true, |id| !present.contains(id)))
            .collect();
        if missing.is_empty() {
            return;
        }
        // An element's attributes are one span: copy them to the end, then add the missing ones.
        self.tree.attr_start[t] = self.tree.attrs.len() as u32 / 3;
        self.tree.attrs.extend_from_within(start * 3..(start + count) * 3);
        self.tree.push_attrs(self.names, missing);
        self.tree.attr_count[t] = self.tree.attrs.len() as u32 / 3 - self.tree.attr_start[t];
    }

    fn remove_from_parent(&mut self, target: &u32) {
        self.tree.detach(*target);
    }

    fn reparent_children(&mut self, node: &u32, new_parent: &u32) {
        while self.tree.first[*node as usize] != NONE {
            let child = self.tree.first[*node as usize] as u32;
            self.tree.append_child(*new_parent, child);
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &u32) -> bool {
        self.tree.annotation_points.contains(handle)
    }
}

/// What `parse` answers, as u32 in this order: node count, then a pointer to each column (kind, name, parent,
/// first, last, next, prev, attr_start, attr_count, text_start, text_len), attributes pointer and count (in
/// attributes), text pointer and length (bytes), names meta pointer, names text pointer, name count, quirks mode.
#[repr(C)]
pub struct Header {
    fields: [u32; 20],
}

struct State {
    input: Vec<u8>,
    tree: Tree,
    names: Names,
    header: Header,
}

static mut STATE: Option<State> = None;

fn state() -> &'static mut State {
    // The module is single-threaded and JavaScript calls it one call at a time.
    unsafe {
        if STATE.is_none() {
            STATE = Some(State { input: Vec::new(), tree: Tree::default(), names: Names::new(), header: Header { fields: [0; 20] } });
        }
        STATE.as_mut().unwrap()
    }
}

/// Room for `len` bytes of input; answers where to write them.
#[no_mangle]
pub extern "C" fn input(len: u32) -> *mut u8 {
    let state = state();
    state.input.clear();
    state.input.resize(len as usize, 0);
    state.input.as_mut_ptr()
}

/// Parses the first `len` bytes of the input (UTF-8; invalid sequences become U+FFFD) as a document, scripting
/// off. Answers a pointer to the header.
#[no_mangle]
pub extern "C" fn parse(len: u32) -> *const Header {
    let state = state();
    state.tree.clear();
    state.tree.node(DOCUMENT, 0);
    let opts = ParseOpts {
        tree_builder: TreeBuilderOpts { scripting_enabled: false, ..Default::default() },
        ..Default::default()
    };
    let sink = Sink { tree: &mut state.tree, names: &mut state.names };
    let bytes = &state.input[..len as usize];
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_document(sink, opts).one(text),
        Err(_) => parse_document(sink, opts).from_utf8().one(bytes),
    }
    let t = &state.tree;
    let n = &state.names;
    state.header.fields = [
        t.kind.len() as u32,
        t.kind.as_ptr() as u32,
        t.name.as_ptr() as u32,
        t.parent.as_ptr() as u32,
        t.first.as_ptr() as u32,
        t.last.as_ptr() as u32,
        t.next.as_ptr() as u32,
        t.prev.as_ptr() as u32,
        t.attr_start.as_ptr() as u32,
        t.attr_count.as_ptr() as u32,
        t.text_start.as_ptr() as u32,
        t.text_len.as_ptr() as u32,
        t.attrs.as_ptr() as u32,
        t.attrs.len() as u32 / 3,
        t.text.as_ptr() as u32,
        t.text.len() as u32,
        n.meta.as_ptr() as u32,
        n.text.as_ptr() as u32,
        n.names.len() as u32,
        t.quirks,
    ];
    &state.header
}
