//! A format-neutral document tree in which every value remembers where it was written.
//!
//! YAML and TOML are both read into [`Node`]s first. Interpolation and `--set` overrides edit this
//! tree, the JSON-Schema check runs on its JSON form, and every error found later is mapped back
//! through a [`DocPath`] to the line and column the user wrote.

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

/// Where a piece of text came from: a scenario file or one `--set` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// What to print before `:line:column` — the file path, or `--set a.b=c`.
    pub name: String,
    /// The full text, kept so that errors can quote the offending line.
    pub text: String,
    /// Where each line starts, found on first use (quoting lines stays linear in their number).
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

impl Source {
    /// A named text.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Source {
        Source { name: name.into(), text: text.into(), line_starts: std::sync::OnceLock::new() }
    }

    /// Line `n` (1-based), without its line ending.
    pub fn line(&self, n: usize) -> Option<&str> {
        let starts = self.line_starts.get_or_init(|| std::iter::once(0).chain(self.text.match_indices('\n').map(|(i, _)| i + 1)).collect());
        let start = *starts.get(n.checked_sub(1)?)?;
        let end = starts.get(n).map_or(self.text.len(), |e| e - 1);
        self.text.get(start..end).map(|l| l.strip_suffix('\r').unwrap_or(l))
    }
}

/// A position in a [`Source`]; line and column are 1-based and count characters.
#[derive(Debug, Clone)]
pub struct Location {
    /// The text this location points into.
    pub source: Arc<Source>,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Location {
    /// Creates a location in `source` at 1-based `line` and `column`.
    pub fn new(source: &Arc<Source>, line: usize, column: usize) -> Self {
        Self { source: Arc::clone(source), line, column }
    }

    /// The source line this location points at, without its line ending.
    pub fn source_line(&self) -> Option<&str> {
        self.source.line(self.line)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.source.name, self.line, self.column)
    }
}

/// One step of a path inside a document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// A mapping key.
    Key(String),
    /// A sequence index (0-based).
    Index(usize),
}

/// A path inside a document, such as `phases.1.workers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DocPath(pub Vec<PathSegment>);

impl DocPath {
    /// The empty path: the document root.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> Self {
        let mut v = self.0.clone();
        v.push(PathSegment::Key(key.to_owned()));
        Self(v)
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> Self {
        let mut v = self.0.clone();
        v.push(PathSegment::Index(index));
        Self(v)
    }

    /// The last mapping key on the path, if the path ends in one.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(PathSegment::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// Parses a JSON Pointer (`/phases/1/workers`) as produced by the schema validator.
    pub fn from_json_pointer(pointer: &str) -> Self {
        let segments = pointer
            .split('/')
            .skip(1)
            .map(|raw| {
                let s = raw.replace("~1", "/").replace("~0", "~");
                match s.parse::<usize>() {
                    Ok(i) => PathSegment::Index(i),
                    Err(_) => PathSegment::Key(s),
                }
            })
            .collect();
        Self(segments)
    }
}

impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match seg {
                PathSegment::Key(k) => f.write_str(k)?,
                PathSegment::Index(n) => write!(f, "{n}")?,
            }
        }
        Ok(())
    }
}

/// A scalar value with the type its spelling gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// `null`, `~` or an empty YAML value.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A number with a fraction or exponent.
    Float(f64),
    /// Anything else.
    Str(String),
}

impl Scalar {
    /// Types an untyped spelling the way YAML 1.2's core schema does, but strictly: only
    /// `true`/`false` are booleans (never `yes`, `no`, `on`, `n`), and numbers must fit in 64 bits.
    pub fn from_plain(text: &str) -> Self {
        match text {
            "" | "~" | "null" | "Null" | "NULL" => return Scalar::Null,
            "true" | "True" | "TRUE" => return Scalar::Bool(true),
            "false" | "False" | "FALSE" => return Scalar::Bool(false),
            _ => {}
        }
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(i) = text.parse::<i64>() {
                return Scalar::Int(i);
            }
            // Too large for i64: keep the spelling so the schema reports a type error on it
            // instead of silently rounding it through f64.
            return Scalar::Str(text.to_owned());
        }
        let looks_numeric = digits.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'.')
            && digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
        if looks_numeric
            && let Ok(f) = text.parse::<f64>()
            && f.is_finite()
        {
            return Scalar::Float(f);
        }
        Scalar::Str(text.to_owned())
    }

    fn to_json(&self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Int(i) => Value::from(*i),
            Scalar::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Scalar::Str(s) => Value::String(s.clone()),
        }
    }
}

/// How a string scalar was produced, for values whose type is decided by the schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Flex {
    /// Fixed: the type is what the spelling says.
    Fixed,
    /// Text produced by `${VAR}` interpolation or `--set`: it may be retyped (`"8"` → 8 or 8 → `"8"`)
    /// when the schema wants the other type. `vars` names the variables involved.
    Retypable {
        /// The text as written after interpolation.
        text: String,
        /// Variable names that fed the text (empty for `--set`).
        vars: Vec<String>,
    },
}

/// The shape of a node.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A scalar.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with string keys in document order; each key keeps its own location.
    Map(IndexMap<String, (Location, Node)>),
}

/// A value of the document with its location.
#[derive(Debug, Clone)]
pub struct Node {
    /// The value.
    pub kind: NodeKind,
    /// Where the value starts.
    pub location: Location,
    /// Whether the value's type may follow the schema.
    pub flex: Flex,
}

impl Node {
    /// A node with a fixed type.
    pub fn new(kind: NodeKind, location: Location) -> Self {
        Self { kind, location, flex: Flex::Fixed }
    }

    /// The JSON form that the schema validator and serde see.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar(s) => s.to_json(),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(map) => Value::Object(map.iter().map(|(k, (_, v))| (k.clone(), v.to_json())).collect()),
        }
    }

    /// The node at `path`, if there is one.
    pub fn get(&self, path: &DocPath) -> Option<&Node> {
        let mut node = self;
        for seg in &path.0 {
            node = node.child(seg)?;
        }
        Some(node)
    }

    /// The node at `path`, mutably.
    pub fn get_mut(&mut self, path: &DocPath) -> Option<&mut Node> {
        let mut node = self;
        for seg in &path.0 {
            node = match (&mut node.kind, seg) {
                (NodeKind::Map(m), PathSegment::Key(k)) => &mut m.get_mut(k)?.1,
                (NodeKind::Seq(v), PathSegment::Index(i)) => v.get_mut(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// Removes the value at `path` (a mapping entry or sequence element); false when absent.
    pub fn remove(&mut self, path: &DocPath) -> bool {
        let Some((last, parent)) = path.0.split_last() else { return false };
        match (self.get_mut(&DocPath(parent.to_vec())).map(|n| &mut n.kind), last) {
            (Some(NodeKind::Map(m)), PathSegment::Key(k)) => m.shift_remove(k).is_some(),
            (Some(NodeKind::Seq(v)), PathSegment::Index(i)) if *i < v.len() => {
                v.remove(*i);
                true
            }
            _ => false,
        }
    }

    fn child(&self, seg: &PathSegment) -> Option<&Node> {
        match (&self.kind, seg) {
            (NodeKind::Map(m), PathSegment::Key(k)) => m.get(k).map(|(_, v)| v),
            (NodeKind::Seq(v), PathSegment::Index(i)) => v.get(*i),
            _ => None,
        }
    }

    /// The best location for an error about `path`: the deepest existing node on the path.
    pub fn locate(&self, path: &DocPath) -> Location {
        let mut node = self;
        for seg in &path.0 {
            match node.child(seg) {
                Some(n) => node = n,
                None => break,
            }
        }
        node.location.clone()
    }

    /// The location of the key `key` in the mapping at `path` (falls back to the mapping itself).
    pub fn locate_key(&self, path: &DocPath, key: &str) -> Location {
        match self.get(path).map(|n| &n.kind) {
            Some(NodeKind::Map(m)) => match m.get(key) {
                Some((loc, _)) => loc.clone(),
                None => self.locate(path),
            },
            _ => self.locate(path),
        }
    }

    /// Visits every node depth-first with its path.
    pub fn walk<'a>(&'a self, path: &DocPath, f: &mut dyn FnMut(&DocPath, &'a Node)) {
        f(path, self);
        match &self.kind {
            NodeKind::Scalar(_) => {}
            NodeKind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.walk(&path.index(i), f);
                }
            }
            NodeKind::Map(map) => {
                for (k, (_, v)) in map {
                    v.walk(&path.key(k), f);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_are_typed_strictly() {
        assert_eq!(Scalar::from_plain("n"), Scalar::Str("n".into()));
        assert_eq!(Scalar::from_plain("yes"), Scalar::Str("yes".into()));
        assert_eq!(Scalar::from_plain("true"), Scalar::Bool(true));
        assert_eq!(Scalar::from_plain("42"), Scalar::Int(42));
        assert_eq!(Scalar::from_plain("-7"), Scalar::Int(-7));
        assert_eq!(Scalar::from_plain("0.5"), Scalar::Float(0.5));
        assert_eq!(Scalar::from_plain("30s"), Scalar::Str("30s".into()));
        assert_eq!(Scalar::from_plain("~"), Scalar::Null);
        assert_eq!(Scalar::from_plain("99999999999999999999999"), Scalar::Str("99999999999999999999999".into()));
        assert_eq!(Scalar::from_plain("1e400"), Scalar::Str("1e400".into()));
        assert_eq!(Scalar::from_plain("127.0.0.1"), Scalar::Str("127.0.0.1".into()));
    }

    #[test]
    fn json_pointer_round_trips_into_paths() {
        let p = DocPath::from_json_pointer("/phases/1/mix/a~1b");
        assert_eq!(p.to_string(), "phases.1.mix.a/b");
        assert_eq!(DocPath::root().to_string(), "(document)");
    }
}
