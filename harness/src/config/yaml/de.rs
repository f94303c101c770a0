//! The serde `Deserializer` over a parsed [`Node`] tree that collects every error: unknown fields
//! are reported and skipped, a failing value is recorded, masked and the document retried.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};

use super::{Kind, Node, Pos, YamlError, is_null_text, join};

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
