//! YAML into typed config, reporting *every* problem with its line, column and field path.
//!
//! Why not `serde_yaml` (or a fork of it)? Serde stops at the first error, and those crates keep no
//! positions once a document is parsed. Users of a load harness edit a scenario, run `validate`, and
//! want the whole list at once. So this module:
//!
//! 1. parses the text with `saphyr-parser` (the maintained successor of yaml-rust) into a [`Node`]
//!    tree in which every node keeps its position;
//! 2. deserializes the tree with its own serde [`Deserializer`]. Unknown fields are reported and
//!    skipped (the deserializer knows each struct's field list), so config types do *not* use
//!    `deny_unknown_fields` yet reject unknown keys all the same;
//! 3. when a value fails to deserialize, records the error, masks that node and retries, until the
//!    document deserializes or nothing is left to mask. A required field whose value was invalid is
//!    not reported a second time as missing. Retries skip the list items and map entries that
//!    already deserialized (the value is not used once a problem is recorded), so collecting N
//!    problems costs about one pass over the document, not N.
//!
//! Parsing is bounded: aliases may expand a document to [`NODES_PER_BYTE`] nodes per byte of its
//! text, never past [`MAX_NODES`], and nesting is limited to [`MAX_DEPTH`], so an alias bomb is
//! refused at the alias.
//!
//! The result is either the typed value or the complete list of [`YamlError`]s.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle};

mod de;
pub use de::{WORK_FLOOR, WORK_PER_NODE, from_node};

/// A 1-based line and column in the source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One node of a parsed YAML document.
#[derive(Clone, Debug)]
pub struct Node {
    pub id: u32,
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Clone, Debug)]
pub enum Kind {
    /// A scalar; `plain` is false for quoted and block scalars, which are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// True for an empty value, `~` or `null`.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true } if is_null_text(text))
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// The value under `key` if this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Visit every scalar value in the tree, mutably (used for `${VAR}` interpolation).
    pub fn for_each_scalar_mut(&mut self, path: &str, f: &mut dyn FnMut(&str, Pos, &mut String)) {
        match &mut self.kind {
            Kind::Scalar { text, .. } => f(path, self.pos, text),
            Kind::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    item.for_each_scalar_mut(&format!("{path}[{i}]"), f);
                }
            }
            Kind::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    let key = k.as_str().unwrap_or("?").to_string();
                    v.for_each_scalar_mut(&join(path, &key), f);
                }
            }
        }
    }
}

fn is_null_text(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// A problem found in a YAML document: where, which field, what.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct YamlError {
    pub pos: Pos,
    /// Dotted field path such as `fleet.classes[1].size`; empty for the document itself.
    pub path: String,
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.pos, self.message)
        } else {
            write!(f, "{}: {}: {}", self.pos, self.path, self.message)
        }
    }
}

/// How many nodes a document may expand to through its aliases: this many per byte of its text,
/// plus [`NODE_FLOOR`]. An alias copies its anchor's subtree; without a budget a few hundred
/// bytes of nested aliases expand to gigabytes (an "alias bomb").
pub const NODES_PER_BYTE: usize = 64;
pub const NODE_FLOOR: usize = 100_000;
/// The most nodes any document may have, however long: without a ceiling, a comment bought
/// budget (a 200 KB file padding a 7-level alias bomb expanded to 11M nodes, 3 GB, found by
/// fuzzing). The shipped scenarios have under a thousand.
pub const MAX_NODES: usize = 1_000_000;
/// How deep a document may nest (a scenario needs fewer than ten levels); everything that walks
/// the tree recurses, so depth is bounded too.
pub const MAX_DEPTH: usize = 64;

/// Parse YAML text into a tree. Only one document is allowed; an empty file is a null document.
pub fn parse(src: &str) -> Result<Node, YamlError> {
    let budget = NODE_FLOOR.saturating_add(NODES_PER_BYTE.saturating_mul(src.len())).min(MAX_NODES);
    let mut builder = Builder { budget, ..Builder::default() };
    let mut docs = 0;
    for item in Parser::new_from_str(src) {
        let (event, span) = item.map_err(|e| YamlError {
            pos: Pos { line: e.marker().line() as u32, col: e.marker().col() as u32 + 1 },
            path: String::new(),
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        let pos = Pos { line: span.start.line() as u32, col: span.start.col() as u32 + 1 };
        match event {
            Event::DocumentStart(_) => {
                docs += 1;
                if docs > 1 {
                    return Err(YamlError {
                        pos,
                        path: String::new(),
                        message: "expected a single YAML document, found a second one (`---`)".into(),
                    });
                }
            }
            Event::Scalar(text, style, anchor, _) => {
                let plain = matches!(style, ScalarStyle::Plain);
                builder.count(pos, 1)?;
                let node = builder.node(pos, Kind::Scalar { text: text.into_owned(), plain });
                builder.complete(pos, Built { node, size: 1, depth: 1 }, anchor)?;
            }
            Event::SequenceStart(anchor, _) => builder.open(pos, Kind::Seq(Vec::new()), anchor)?,
            Event::MappingStart(anchor, _) => builder.open(pos, Kind::Map(Vec::new()), anchor)?,
            Event::SequenceEnd | Event::MappingEnd => builder.close(pos)?,
            Event::Alias(id) => {
                let built = builder.anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    pos,
                    path: String::new(),
                    message: "alias refers to an unknown anchor".into(),
                })?;
                builder.count(pos, built.size)?;
                builder.complete(pos, built, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    Ok(builder.root.unwrap_or(Node {
        id: 0,
        pos: Pos { line: 1, col: 1 },
        kind: Kind::Scalar { text: String::new(), plain: true },
    }))
}

/// A finished subtree, with its number of nodes and its depth.
#[derive(Clone)]
struct Built {
    node: Node,
    size: usize,
    depth: usize,
}

/// An open container: the node being filled, its anchor, its size and depth so far, and (for
/// mappings) a key awaiting its value.
struct Open {
    node: Node,
    anchor: usize,
    size: usize,
    depth: usize,
    pending_key: Option<Node>,
}

#[derive(Default)]
struct Builder {
    next_id: u32,
    stack: Vec<Open>,
    anchors: HashMap<usize, Built>,
    root: Option<Node>,
    /// Nodes in the tree so far, alias copies included, and how many are allowed.
    nodes: usize,
    budget: usize,
}

impl Builder {
    fn node(&mut self, pos: Pos, kind: Kind) -> Node {
        self.next_id += 1;
        Node { id: self.next_id, pos, kind }
    }

    /// Count `n` more nodes in the tree (1 for a new node, the whole copy for an alias).
    fn count(&mut self, pos: Pos, n: usize) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.budget {
            return Err(YamlError {
                pos,
                path: String::new(),
                message: format!(
                    "the document expands through its aliases to more than {} nodes ({NODES_PER_BYTE} per byte of \
                     the file plus {NODE_FLOOR}, at most {MAX_NODES}): an alias bomb is not read",
                    self.budget
                ),
            });
        }
        Ok(())
    }

    fn too_deep(pos: Pos) -> YamlError {
        YamlError { pos, path: String::new(), message: format!("the document nests deeper than {MAX_DEPTH} levels") }
    }

    fn open(&mut self, pos: Pos, kind: Kind, anchor: usize) -> Result<(), YamlError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Builder::too_deep(pos));
        }
        self.count(pos, 1)?;
        let node = self.node(pos, kind);
        self.stack.push(Open { node, anchor, size: 1, depth: 1, pending_key: None });
        Ok(())
    }

    fn close(&mut self, pos: Pos) -> Result<(), YamlError> {
        match self.stack.pop() {
            Some(mut open) => {
                resolve_merge_keys(&mut open.node);
                self.complete(pos, Built { node: open.node, size: open.size, depth: open.depth }, open.anchor)
            }
            None => Ok(()),
        }
    }

    fn complete(&mut self, pos: Pos, built: Built, anchor: usize) -> Result<(), YamlError> {
        if self.stack.len() + built.depth > MAX_DEPTH {
            return Err(Builder::too_deep(pos));
        }
        if anchor != 0 {
            self.anchors.insert(anchor, built.clone());
        }
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(built.node);
            return Ok(());
        };
        parent.size += built.size;
        parent.depth = parent.depth.max(built.depth + 1);
        match &mut parent.node.kind {
            Kind::Seq(items) => items.push(built.node),
            Kind::Map(entries) => match parent.pending_key.take() {
                None => parent.pending_key = Some(built.node),
                Some(key) => entries.push((key, built.node)),
            },
            Kind::Scalar { .. } => {}
        }
        Ok(())
    }
}

/// Apply YAML merge keys (`<<: *defaults`, `<<: [*a, *b]`): the merged mappings' entries are
/// added where the mapping does not set the key itself.
fn resolve_merge_keys(node: &mut Node) {
    let Kind::Map(entries) = &mut node.kind else { return };
    if !entries.iter().any(|(k, _)| matches!(&k.kind, Kind::Scalar { text, plain: true } if text == "<<")) {
        return;
    }
    let (merges, mut own): (Vec<_>, Vec<_>) = std::mem::take(entries)
        .into_iter()
        .partition(|(k, _)| matches!(&k.kind, Kind::Scalar { text, plain: true } if text == "<<"));
    let mut sources = Vec::new();
    for (_, v) in merges {
        match v.kind {
            Kind::Map(m) => sources.push(m),
            Kind::Seq(items) => sources.extend(items.into_iter().filter_map(|i| match i.kind {
                Kind::Map(m) => Some(m),
                _ => None,
            })),
            Kind::Scalar { .. } => {}
        }
    }
    for source in sources {
        for (k, v) in source {
            if !own.iter().any(|(ok, _)| ok.as_str() == k.as_str()) {
                own.push((k, v));
            }
        }
    }
    *entries = own;
}

/// Positions of every field path in the document, for errors found after deserialization.
pub fn path_index(root: &Node) -> HashMap<String, Pos> {
    fn walk(node: &Node, path: String, out: &mut HashMap<String, Pos>) {
        match &node.kind {
            Kind::Scalar { .. } => {}
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, format!("{path}[{i}]"), out);
                }
            }
            Kind::Map(entries) => {
                for (k, v) in entries {
                    if let Some(key) = k.as_str() {
                        walk(v, join(&path, key), out);
                    }
                }
            }
        }
        out.insert(path, node.pos);
    }
    let mut out = HashMap::new();
    walk(root, String::new(), &mut out);
    out
}

/// The position of `path`, or of its nearest ancestor present in the document.
pub fn locate(index: &HashMap<String, Pos>, path: &str) -> Pos {
    let mut p = path.to_string();
    loop {
        if let Some(pos) = index.get(&p) {
            return *pos;
        }
        match p.rfind(['.', '[']) {
            Some(i) => p.truncate(i),
            None => return index.get("").copied().unwrap_or(Pos { line: 1, col: 1 }),
        }
    }
}

#[cfg(test)]
mod tests;
