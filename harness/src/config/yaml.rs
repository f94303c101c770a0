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
//! text and nesting is limited to [`MAX_DEPTH`], so an alias bomb is refused at the alias.
//!
//! The result is either the typed value or the complete list of [`YamlError`]s.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};

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
/// How deep a document may nest (a scenario needs fewer than ten levels); everything that walks
/// the tree recurses, so depth is bounded too.
pub const MAX_DEPTH: usize = 64;

/// Parse YAML text into a tree. Only one document is allowed; an empty file is a null document.
pub fn parse(src: &str) -> Result<Node, YamlError> {
    let mut builder = Builder { budget: NODE_FLOOR + NODES_PER_BYTE * src.len(), ..Builder::default() };
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
                     the file plus {NODE_FLOOR}): an alias bomb is not read",
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

/// How much deserializing a document may cost, in node visits over all its rounds: this many
/// per node, plus [`WORK_FLOOR`]. Lists resume where the last round stopped, so a document's
/// problems cost about one pass each; the bound only stops a hostile document whose problems
/// are spread where resuming does not help (say, thousands of maps each with one bad value).
pub const WORK_PER_NODE: usize = 50;
pub const WORK_FLOOR: usize = 1_000_000;

/// Deserialize a parsed tree into `T`, collecting every error.
pub fn from_node<T: DeserializeOwned>(root: &Node) -> Result<T, Vec<YamlError>> {
    let ctx = Ctx::default();
    let nodes = count_nodes(root);
    let work = WORK_FLOOR.saturating_add(WORK_PER_NODE.saturating_mul(nodes));
    // Each round either succeeds or masks at least one more node, so this terminates.
    let max_rounds = nodes + 2;
    for _ in 0..max_rounds {
        if ctx.visits.get() > work {
            let n = ctx.errors.borrow().len();
            ctx.record(YamlError {
                pos: root.pos,
                path: String::new(),
                message: format!(
                    "stopped looking after these {n} problems: the document has too many to check at once; fix these and validate again"
                ),
            });
            break;
        }
        let de = De { node: root, path: String::new(), parent: None, ctx: &ctx };
        match T::deserialize(de) {
            Ok(value) => {
                let errors = ctx.errors.into_inner();
                return if errors.is_empty() { Ok(value) } else { Err(sorted(errors)) };
            }
            Err(err) => {
                let loc = err.loc.unwrap_or(Loc { node_id: root.id, pos: root.pos, path: String::new(), parent: None });
                match err.missing_field {
                    _ if err.silent => {}
                    Some(field) => {
                        let suppressed = ctx.suppress.borrow().contains(&(loc.node_id, field.to_string()));
                        if !suppressed {
                            ctx.record(YamlError {
                                pos: loc.pos,
                                path: join(&loc.path, field),
                                message: format!("missing field `{field}`"),
                            });
                        }
                    }
                    None => ctx.record(YamlError { pos: loc.pos, path: loc.path.clone(), message: err.msg }),
                }
                if loc.node_id == root.id || !ctx.masked.borrow_mut().insert(loc.node_id) {
                    return Err(sorted(ctx.errors.into_inner()));
                }
                if let Some(parent) = loc.parent {
                    ctx.suppress.borrow_mut().insert(parent);
                }
            }
        }
    }
    Err(sorted(ctx.errors.into_inner()))
}

fn sorted(mut errors: Vec<YamlError>) -> Vec<YamlError> {
    errors.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.path.cmp(&b.path)));
    errors.dedup();
    errors
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.kind {
        Kind::Scalar { .. } => 0,
        Kind::Seq(items) => items.iter().map(count_nodes).sum(),
        Kind::Map(entries) => entries.iter().map(|(k, v)| count_nodes(k) + count_nodes(v)).sum(),
    }
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

#[derive(Default)]
struct Ctx {
    errors: RefCell<Vec<YamlError>>,
    recorded: RefCell<HashSet<YamlError>>,
    masked: RefCell<HashSet<u32>>,
    /// (struct node id, field) pairs whose "missing field" error is a consequence of masking.
    suppress: RefCell<HashSet<(u32, String)>>,
    /// For each list (node id and path): the items before this index deserialized or are masked.
    resume: RefCell<HashMap<(u32, String), usize>>,
    /// Maps (node id and path) read once, their duplicate keys reported.
    maps_read: RefCell<HashSet<(u32, String)>>,
    /// Structs (node id and path) whose unknown fields were reported.
    structs_read: RefCell<HashSet<(u32, String)>>,
    /// Nodes visited, over all rounds (see [`WORK_PER_NODE`]).
    visits: std::cell::Cell<usize>,
}

impl Ctx {
    fn record(&self, e: YamlError) {
        if self.recorded.borrow_mut().insert(e.clone()) {
            self.errors.borrow_mut().push(e);
        }
    }

    fn has_errors(&self) -> bool {
        !self.errors.borrow().is_empty()
    }

    fn is_masked(&self, node: &Node) -> bool {
        self.masked.borrow().contains(&node.id)
    }
}

#[derive(Clone, Debug)]
struct Loc {
    node_id: u32,
    pos: Pos,
    path: String,
    parent: Option<(u32, String)>,
}

/// The deserializer's error: a message, and where it happened once known.
#[derive(Debug)]
pub struct DeError {
    msg: String,
    missing_field: Option<&'static str>,
    /// Already reported: mask the node without a new message.
    silent: bool,
    loc: Option<Loc>,
}

impl DeError {
    fn silent() -> Self {
        DeError { msg: String::new(), missing_field: None, silent: true, loc: None }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError { msg: msg.to_string(), missing_field: None, silent: false, loc: None }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError { msg: format!("missing field `{field}`"), missing_field: Some(field), silent: false, loc: None }
    }
}

struct De<'a> {
    node: &'a Node,
    path: String,
    /// The mapping this node is the value of, and its key there.
    parent: Option<(u32, String)>,
    ctx: &'a Ctx,
}

impl<'a> De<'a> {
    fn child(&self, node: &'a Node, path: String, parent: Option<(u32, String)>) -> De<'a> {
        self.ctx.visits.set(self.ctx.visits.get() + 1);
        De { node, path, parent, ctx: self.ctx }
    }

    fn locate<V>(&self, r: Result<V, DeError>) -> Result<V, DeError> {
        r.map_err(|mut e| {
            if e.loc.is_none() {
                e.loc = Some(Loc {
                    node_id: self.node.id,
                    pos: self.node.pos,
                    path: self.path.clone(),
                    parent: self.parent.clone(),
                });
            }
            e
        })
    }

    fn unexpected(&self) -> Unexpected<'a> {
        match &self.node.kind {
            Kind::Scalar { text, .. } if self.node.is_null() && text.is_empty() => Unexpected::Other("an empty value"),
            Kind::Scalar { .. } if self.node.is_null() => Unexpected::Other("null"),
            Kind::Scalar { text, .. } => Unexpected::Str(text),
            Kind::Seq(_) => Unexpected::Other("a list"),
            Kind::Map(_) => Unexpected::Other("a mapping"),
        }
    }

    fn scalar(&self) -> Option<(&'a str, bool)> {
        match &self.node.kind {
            Kind::Scalar { text, plain } => Some((text.as_str(), *plain)),
            _ => None,
        }
    }

    fn invalid<V>(&self, exp: &dyn de::Expected) -> Result<V, DeError> {
        Err(de::Error::invalid_type(self.unexpected(), exp))
    }

    /// A sequence; `resumable` for a list whose length does not matter (not a tuple): once a
    /// problem is recorded the value is not used, so items that deserialized in an earlier round
    /// are not visited again. Each round then goes on from where the last stopped, and collecting
    /// N problems in one list costs one pass over it, not N.
    fn seq<'de, V: Visitor<'de>>(self, visitor: V, resumable: bool) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Seq(items) => {
                let next = if resumable && self.ctx.has_errors() {
                    self.ctx.resume.borrow().get(&(self.node.id, self.path.clone())).copied().unwrap_or(0)
                } else {
                    0
                };
                visitor.visit_seq(Seq { de: &self, items, next, resume: resumable })
            }
            _ if self.node.is_null() => visitor.visit_seq(Seq { de: &self, items: &[], next: 0, resume: false }),
            _ => self.invalid(&visitor),
        };
        self.locate(r)
    }

    /// The mapping's entries that are not masked, with their raw index. The scan counts towards
    /// the document's work bound.
    fn entries(&self) -> Vec<(usize, &'a Node, &'a Node)> {
        match &self.node.kind {
            Kind::Map(entries) => {
                self.ctx.visits.set(self.ctx.visits.get() + entries.len());
                entries
                    .iter()
                    .enumerate()
                    .filter(|(_, (k, v))| !self.ctx.is_masked(k) && !self.ctx.is_masked(v))
                    .map(|(i, (k, v))| (i, k, v))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    fn report_duplicates(&self, entries: &[(usize, &'a Node, &'a Node)]) -> Vec<(usize, &'a Node, &'a Node)> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(entries.len());
        for (i, k, v) in entries {
            let key = k.as_str().unwrap_or_default();
            if seen.insert(key) {
                out.push((*i, *k, *v));
            } else {
                self.ctx.record(YamlError {
                    pos: k.pos,
                    path: join(&self.path, key),
                    message: format!("duplicate key `{key}`"),
                });
            }
        }
        out
    }
}

fn parse_int(text: &str) -> Option<i128> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let v = if let Some(hex) = body.strip_prefix("0x") {
        i128::from_str_radix(hex, 16).ok()?
    } else if let Some(oct) = body.strip_prefix("0o") {
        i128::from_str_radix(oct, 8).ok()?
    } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        body.replace('_', "").parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let looks_numeric =
        text.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-' | b'_'))
            && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric { text.replace('_', "").parse().ok() } else { None }
}

fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

macro_rules! de_int {
    ($method:ident) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let r = match self.scalar().and_then(|(t, _)| parse_int(t)) {
                Some(v) if v >= 0 => u64::try_from(v)
                    .map_err(|_| de::Error::custom("integer out of range"))
                    .and_then(|v| visitor.visit_u64(v)),
                Some(v) => i64::try_from(v)
                    .map_err(|_| de::Error::custom("integer out of range"))
                    .and_then(|v| visitor.visit_i64(v)),
                None => self.invalid(&visitor),
            };
            self.locate(r)
        }
    };
}

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Scalar { text, plain: false } => visitor.visit_str(text),
            Kind::Scalar { text, plain: true } => {
                if is_null_text(text) {
                    visitor.visit_unit()
                } else if let Some(b) = parse_bool(text) {
                    visitor.visit_bool(b)
                } else if let Some(i) = parse_int(text) {
                    match (u64::try_from(i), i64::try_from(i)) {
                        (Ok(u), _) => visitor.visit_u64(u),
                        (_, Ok(s)) => visitor.visit_i64(s),
                        _ => visitor.visit_str(text),
                    }
                } else if let Some(f) = parse_float(text) {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(text)
                }
            }
            Kind::Seq(_) => return self.deserialize_seq(visitor),
            Kind::Map(_) => return self.deserialize_map(visitor),
        };
        self.locate(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.scalar().and_then(|(t, _)| parse_bool(t)) {
            Some(b) => visitor.visit_bool(b),
            None => self.invalid(&visitor),
        };
        self.locate(r)
    }

    de_int!(deserialize_i8);
    de_int!(deserialize_i16);
    de_int!(deserialize_i32);
    de_int!(deserialize_i64);
    de_int!(deserialize_u8);
    de_int!(deserialize_u16);
    de_int!(deserialize_u32);
    de_int!(deserialize_u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let parsed = self.scalar().and_then(|(t, _)| parse_float(t).or_else(|| parse_int(t).map(|i| i as f64)));
        let r = match parsed {
            Some(f) => visitor.visit_f64(f),
            None => self.invalid(&visitor),
        };
        self.locate(r)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.scalar() {
            Some(_) if self.node.is_null() => self.invalid(&visitor),
            Some((text, _)) => visitor.visit_str(text),
            None => self.invalid(&visitor),
        };
        self.locate(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            let r = visitor.visit_none();
            self.locate(r)
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = if self.node.is_null() { visitor.visit_unit() } else { self.invalid(&visitor) };
        self.locate(r)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.seq(visitor, true)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        // A tuple's length matters: it is never resumed part-way.
        self.seq(visitor, false)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor, false)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Map(all) => {
                // As a list (see `seq`): read whole the first time (duplicates reported), then,
                // once a problem is recorded, from where the last round stopped.
                let key = (self.node.id, self.path.clone());
                let first = self.ctx.maps_read.borrow_mut().insert(key.clone());
                let entries = if !first && self.ctx.has_errors() {
                    let next = self.ctx.resume.borrow().get(&key).copied().unwrap_or(0);
                    Entries::Raw { all, next: next.min(all.len()) }
                } else {
                    let entries = self.entries();
                    Entries::Listed(self.report_duplicates(&entries).into_iter())
                };
                visitor.visit_map(Map { de: &self, entries, value: None, resume: true })
            }
            _ if self.node.is_null() => visitor.visit_map(Map {
                de: &self,
                entries: Entries::Listed(Vec::new().into_iter()),
                value: None,
                resume: false,
            }),
            _ => self.invalid(&visitor),
        };
        self.locate(r)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Map(_) => {
                let entries = self.entries();
                let entries = self.report_duplicates(&entries);
                let mut known = Vec::with_capacity(entries.len());
                // Unknown fields are reported the first time the struct is read, not every round.
                let first = self.ctx.structs_read.borrow_mut().insert((self.node.id, self.path.clone()));
                for (i, k, v) in entries {
                    let key = k.as_str().unwrap_or_default();
                    if fields.contains(&key) {
                        known.push((i, k, v));
                    } else if first {
                        self.ctx.record(YamlError {
                            pos: k.pos,
                            path: join(&self.path, key),
                            message: unknown_field_message(key, fields),
                        });
                    }
                }
                // A struct's fields are never resumed part-way: a skipped field would be missing.
                visitor.visit_map(Map {
                    de: &self,
                    entries: Entries::Listed(known.into_iter()),
                    value: None,
                    resume: false,
                })
            }
            _ if self.node.is_null() => visitor.visit_map(Map {
                de: &self,
                entries: Entries::Listed(Vec::new().into_iter()),
                value: None,
                resume: false,
            }),
            _ => self.invalid(&visitor),
        };
        self.locate(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            Kind::Scalar { .. } if !self.node.is_null() => {
                visitor.visit_enum(Enum { de: &self, tag: self.node, value: None })
            }
            Kind::Map(_) => {
                let entries = self.entries();
                let raw = match &self.node.kind {
                    Kind::Map(all) => all.len(),
                    _ => 0,
                };
                if entries.is_empty() && raw > 0 {
                    // Its only entry was masked after an error already reported.
                    Err(DeError::silent())
                } else if entries.len() == 1 {
                    let (_, k, v) = entries[0];
                    visitor.visit_enum(Enum { de: &self, tag: k, value: Some(v) })
                } else {
                    Err(de::Error::custom(format!(
                        "expected exactly one of {} as the only key, found {} keys",
                        one_of(variants),
                        entries.len()
                    )))
                }
            }
            _ => Err(de::Error::custom(format!("expected one of {}", one_of(variants)))),
        };
        self.locate(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

fn one_of(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

fn unknown_field_message(key: &str, fields: &[&str]) -> String {
    let suggestion = fields
        .iter()
        .map(|f| (edit_distance(key, f), *f))
        .filter(|(d, f)| *d <= 2.max(f.len() / 3))
        .min()
        .map(|(_, f)| format!(" (did you mean `{f}`?)"))
        .unwrap_or_default();
    format!("unknown field `{key}`{suggestion}; expected one of {}", one_of(fields))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A sequence's items, from `next` on, masked ones skipped as they come. With `resume`, each item
/// that deserializes advances the sequence's resume point (see [`Ctx::resume`]).
struct Seq<'a, 'b> {
    de: &'b De<'a>,
    items: &'a [Node],
    next: usize,
    resume: bool,
}

impl<'de> SeqAccess<'de> for Seq<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        while self.items.get(self.next).is_some_and(|n| self.de.ctx.is_masked(n)) {
            self.next += 1;
        }
        if self.resume {
            self.de.ctx.resume.borrow_mut().insert((self.de.node.id, self.de.path.clone()), self.next);
        }
        let Some(node) = self.items.get(self.next) else { return Ok(None) };
        let i = self.next;
        self.next += 1;
        let child = self.de.child(node, format!("{}[{i}]", self.de.path), None);
        let value = seed.deserialize(child)?;
        if self.resume {
            self.de.ctx.resume.borrow_mut().insert((self.de.node.id, self.de.path.clone()), self.next);
        }
        Ok(Some(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len().saturating_sub(self.next))
    }
}

/// A mapping's entries: listed (duplicates reported and dropped, masked ones left out), or, for
/// a map resumed part-way (see [`De::seq`]), read from its raw entries on, masked ones skipped
/// as they come.
enum Entries<'a> {
    Listed(std::vec::IntoIter<(usize, &'a Node, &'a Node)>),
    Raw { all: &'a [(Node, Node)], next: usize },
}

struct Map<'a, 'b> {
    de: &'b De<'a>,
    entries: Entries<'a>,
    /// The entry whose value comes next, with its raw index.
    value: Option<(usize, &'a Node, &'a Node)>,
    /// Advance the map's resume point as values deserialize.
    resume: bool,
}

impl<'a> Map<'a, '_> {
    fn next_entry(&mut self) -> Option<(usize, &'a Node, &'a Node)> {
        match &mut self.entries {
            Entries::Listed(it) => it.next(),
            Entries::Raw { all, next } => {
                while all.get(*next).is_some_and(|(k, v)| self.de.ctx.is_masked(k) || self.de.ctx.is_masked(v)) {
                    *next += 1;
                }
                let (k, v) = all.get(*next)?;
                *next += 1;
                Some((*next - 1, k, v))
            }
        }
    }
}

impl<'de> MapAccess<'de> for Map<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let entry = self.next_entry();
        if self.resume {
            // Everything before this entry deserialized, is masked or was a duplicate.
            let at = entry.map_or(usize::MAX, |(i, _, _)| i);
            self.de.ctx.resume.borrow_mut().insert((self.de.node.id, self.de.path.clone()), at);
        }
        match entry {
            Some((i, k, v)) => {
                self.value = Some((i, k, v));
                let key = k.as_str().unwrap_or_default();
                let child = self.de.child(k, join(&self.de.path, key), None);
                seed.deserialize(child).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((i, k, v)) = self.value.take() else {
            return Err(de::Error::custom("value requested before key"));
        };
        let key = k.as_str().unwrap_or_default().to_string();
        let child = self.de.child(v, join(&self.de.path, &key), Some((self.de.node.id, key)));
        let value = seed.deserialize(child)?;
        if self.resume {
            self.de.ctx.resume.borrow_mut().insert((self.de.node.id, self.de.path.clone()), i + 1);
        }
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        match &self.entries {
            Entries::Listed(it) => Some(it.len()),
            Entries::Raw { all, next } => Some(all.len().saturating_sub(*next)),
        }
    }
}

struct Enum<'a, 'b> {
    de: &'b De<'a>,
    tag: &'a Node,
    value: Option<&'a Node>,
}

impl<'de, 'a, 'b> EnumAccess<'de> for Enum<'a, 'b> {
    type Error = DeError;
    type Variant = Variant<'a, 'b>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), DeError> {
        let tag_text = self.tag.as_str().unwrap_or_default().to_string();
        let tag_de = self.de.child(self.tag, self.de.path.clone(), None);
        let v = tag_de.locate(seed.deserialize(tag_text.as_str().into_deserializer()))?;
        Ok((v, Variant { de: self.de, tag: tag_text, value: self.value }))
    }
}

struct Variant<'a, 'b> {
    de: &'b De<'a>,
    tag: String,
    value: Option<&'a Node>,
}

impl Variant<'_, '_> {
    fn content(&self) -> Result<De<'_>, DeError> {
        match self.value {
            Some(v) => Ok(self.de.child(v, join(&self.de.path, &self.tag), Some((self.de.node.id, self.tag.clone())))),
            None => Err(de::Error::custom(format!("`{}` needs settings: write `{}: {{...}}`", self.tag, self.tag))),
        }
    }
}

impl<'de> VariantAccess<'de> for Variant<'_, '_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            None => Ok(()),
            Some(v) if v.is_null() => Ok(()),
            Some(_) => Err(de::Error::custom(format!("`{}` takes no settings", self.tag))),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let de = self.content()?;
        seed.deserialize(de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        let de = self.content()?;
        de::Deserializer::deserialize_seq(de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, DeError> {
        let de = self.content()?;
        de::Deserializer::deserialize_struct(de, "", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        size: u32,
        #[serde(default)]
        label: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Shape {
        Fixed(u32),
        Uniform { min: u32, max: u32 },
        Nothing,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Doc {
        name: String,
        count: u64,
        #[serde(default)]
        items: Vec<Inner>,
        #[serde(default)]
        shapes: Vec<Shape>,
        #[serde(default)]
        flag: bool,
    }

    fn load(src: &str) -> Result<Doc, Vec<YamlError>> {
        from_node(&parse(src).map_err(|e| vec![e])?)
    }

    #[test]
    fn valid_document_deserializes() {
        let doc = load(
            "name: a\ncount: 3\nflag: true\nitems:\n  - size: 4\n    label: x\nshapes:\n  - fixed: 3\n  - uniform: {min: 1, max: 2}\n  - nothing\n",
        )
        .unwrap();
        assert_eq!(doc.count, 3);
        assert_eq!(doc.items[0], Inner { size: 4, label: Some("x".into()) });
        assert_eq!(doc.shapes, vec![Shape::Fixed(3), Shape::Uniform { min: 1, max: 2 }, Shape::Nothing]);
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let src = "name: a\ncount: lots\nbogus: 1\nitems:\n  - size: big\n  - size: 2\n    colour: red\n  - label: x\n";
        let errs = load(src).unwrap_err();
        let lines: Vec<(u32, &str)> = errs.iter().map(|e| (e.pos.line, e.path.as_str())).collect();
        assert_eq!(
            lines,
            vec![(2, "count"), (3, "bogus"), (5, "items[0].size"), (7, "items[1].colour"), (8, "items[2].size"),],
            "{errs:#?}"
        );
        assert!(errs[1].message.contains("unknown field `bogus`"));
        assert!(errs[4].message.contains("missing field `size`"));
    }

    #[test]
    fn invalid_required_value_is_not_also_reported_missing() {
        let errs = load("name: a\ncount: many\n").unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert_eq!(errs[0].path, "count");
    }

    #[test]
    fn unknown_field_suggests_the_closest_name() {
        let errs = load("name: a\ncount: 1\nflga: true\n").unwrap_err();
        assert!(errs[0].message.contains("did you mean `flag`"), "{}", errs[0].message);
    }

    #[test]
    fn unknown_variant_is_located_at_its_key() {
        let errs = load("name: a\ncount: 1\nshapes:\n  - gaussian: 3\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].pos.line, errs[0].pos.col), (4, 5));
        assert!(errs[0].message.contains("unknown variant `gaussian`"), "{}", errs[0].message);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("name: a\n  count: [1, 2\n").unwrap_err();
        assert!(err.message.starts_with("YAML syntax error"), "{err}");
        assert!(err.pos.line >= 2);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let errs = load("name: a\ncount: 1\nname: b\n").unwrap_err();
        assert_eq!(errs[0].path, "name");
        assert_eq!(errs[0].pos.line, 3);
        assert!(errs[0].message.contains("duplicate key"));
    }

    #[test]
    fn anchors_and_aliases_resolve() {
        let doc = load("name: &n a\ncount: 2\nitems:\n  - &i {size: 1}\n  - *i\n").unwrap();
        assert_eq!(doc.items.len(), 2);
        assert_eq!(doc.name, "a");
    }

    #[test]
    fn merge_keys_fill_in_what_the_mapping_does_not_set() {
        let doc = load("base: &b {size: 1, label: x}\nname: a\ncount: 2\nitems:\n  - <<: *b\n    size: 5\n");
        // `base` is not a field of Doc: only the merge result matters here.
        let errs = doc.unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        let root = parse("d: &d {a: 1, b: 2}\ne:\n  <<: *d\n  b: 3\n").unwrap();
        let e = root.get("e").unwrap();
        assert_eq!(e.get("a").and_then(Node::as_str), Some("1"));
        assert_eq!(e.get("b").and_then(Node::as_str), Some("3"));
    }

    #[test]
    fn collecting_many_problems_costs_one_pass_not_one_per_problem() {
        // Regression (issue 16): the whole tree was deserialized again after each problem, so
        // 4,000 bad values took 12.6 s (and 20,000 over a minute). Every problem is still
        // reported, in a list and in a map alike.
        #[derive(Debug, Deserialize)]
        struct Many {
            #[allow(dead_code)]
            items: Vec<Inner>,
            #[allow(dead_code)]
            props: std::collections::BTreeMap<String, u32>,
        }
        let n = 20_000;
        let mut src = String::from("items:\n");
        for _ in 0..n {
            src.push_str("  - {size: big, colour: red}\n");
        }
        src.push_str("props:\n");
        for i in 0..n {
            src.push_str(&format!("  k{i}: [x]\n"));
        }
        let started = std::time::Instant::now();
        let errs = from_node::<Many>(&parse(&src).unwrap()).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
        assert_eq!(errs.len(), 3 * n, "a bad size and an unknown field per item, a bad value per prop");
        assert_eq!(errs[1].path, "items[0].colour");
        assert_eq!(errs.last().map(|e| e.path.as_str()), Some("props.k19999"));
    }

    /// `x0: &a0 [x, x, ...]`, then each level ten aliases of the one before.
    fn alias_bomb(levels: usize) -> String {
        let mut s = String::from("x0: &a0 [x,x,x,x,x,x,x,x,x,x]\n");
        for i in 1..levels {
            let prev = format!("*a{}", i - 1);
            s.push_str(&format!("x{i}: &a{i} [{}]\n", vec![prev; 10].join(",")));
        }
        s
    }

    #[test]
    fn an_alias_bomb_is_refused_at_once_at_the_alias_that_crosses_the_budget() {
        // Regression (issue 16): 363 bytes of six nested alias levels took 24 s and 3 GB, eight
        // levels aborted at a 4 GB limit.
        for levels in [6, 8, 12] {
            let src = alias_bomb(levels);
            let started = std::time::Instant::now();
            let e = parse(&src).unwrap_err();
            assert!(started.elapsed() < std::time::Duration::from_secs(2), "{levels} levels");
            assert!(e.message.contains("expands through its aliases to more than"), "{e}");
            assert!(e.message.contains("an alias bomb is not read"), "{e}");
            assert!(e.pos.line >= 5, "located at the alias: {e}");
        }
        // Four levels (11,110 nodes from 150 bytes) is within the budget: aliases still work.
        assert!(parse(&alias_bomb(4)).is_ok());
    }

    #[test]
    fn a_ten_thousand_line_alias_chain_is_refused_without_aborting() {
        // Regression (issue 16): `aN: &aN [*aN-1]` over 10,000 lines aborted (each copy nests one
        // level deeper, and everything that walks the tree recurses).
        let mut src = String::from("a0: &a0 [x]\n");
        for i in 1..10_000 {
            src.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        let e = parse(&src).unwrap_err();
        assert_eq!(e.message, "the document nests deeper than 64 levels", "{e}");
        assert_eq!(e.pos.line, 63, "where the copy would make 65 levels");
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let src = "[".repeat(100_000);
        let e = parse(&src).unwrap_err();
        assert!(e.message.contains("nests deeper than 64 levels") || e.message.starts_with("YAML syntax error"), "{e}");
        let ok = format!("{}x{}", "[".repeat(60), "]".repeat(60));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn path_index_locates_nested_fields() {
        let root = parse("a:\n  b:\n    - c: 1\n").unwrap();
        let idx = path_index(&root);
        assert_eq!(locate(&idx, "a.b[0].c"), Pos { line: 3, col: 10 });
        assert_eq!(locate(&idx, "a.b[0].missing"), Pos { line: 3, col: 7 });
    }
}
