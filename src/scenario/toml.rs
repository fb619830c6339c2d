//! Reads TOML into a located [`Node`] tree, using the spans the `toml` crate's parser keeps.

use std::sync::Arc;

use indexmap::IndexMap;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::Diagnostic;
use super::node::{Location, Node, NodeKind, Scalar, Source};
use super::yaml::MAX_DEPTH;

/// Most values (tables, keys and values) a TOML scenario may hold; real ones hold a few hundred.
/// The TOML parser itself keeps every table in a list it searches, so the cap is checked on the
/// text before it runs: the time to refuse a hostile file stays bounded.
pub const MAX_TABLES: usize = 2_000;

/// Parses a TOML document into a node tree.
pub fn parse(source: &Arc<Source>) -> Result<Node, Diagnostic> {
    let index = LineIndex::new(&source.text);
    // Table headers (`[x]`, `[[x]]`) at the start of a line; cheap to count before parsing.
    let headers = source.text.lines().filter(|l| l.trim_start().starts_with('[')).count();
    if headers > MAX_TABLES {
        return Err(Diagnostic::at(Location::new(source, 1, 1), None, format!("the file has {headers} tables; a scenario holds at most {MAX_TABLES}")));
    }
    // The parser lexes the whole text into tokens before anything can be counted (a megabyte of
    // `k = [1,1,…]` took 107 MB): values are counted on the text first, from below.
    if let Some(offset) = past_node_cap(&source.text, super::yaml::MAX_NODES) {
        return Err(too_many_values(index.at(source, offset)));
    }
    let table = DeTable::parse(&source.text).map_err(|e| {
        let loc = index.at(source, e.span().map_or(0, |s| s.start));
        Diagnostic::at(loc, None, format!("TOML syntax error: {}", e.message().trim()))
    })?;
    if table.get_ref().is_empty() {
        return Err(Diagnostic::at(Location::new(source, 1, 1), None, "the file is empty; a scenario needs at least `name`, `workloads` and `phases`"));
    }
    let root_loc = Location::new(source, 1, 1);
    let mut nodes = 0;
    convert_table(&Ctx { source, index: &index }, table.into_inner(), root_loc, 0, &mut nodes)
}

/// The document passed [`super::yaml::MAX_NODES`] at `loc`: counted on the text or in the tree.
fn too_many_values(loc: Location) -> Diagnostic {
    Diagnostic::at(loc, None, format!("the document holds more than {} values", super::yaml::MAX_NODES))
}

/// Where the text's values pass `cap`, counted from below without parsing: every `=` outside
/// strings and comments gives its key a value, and every comma directly inside an array
/// separates two (a trailing one ends one). A document this counts past the cap holds more
/// values than that whatever else it holds; one it does not is parsed and counted exactly.
fn past_node_cap(text: &str, cap: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut count = 0usize;
    // Open `[` and `{` outside strings: a comma counts when the innermost is an array. Table
    // headers are brackets too, but hold no commas.
    let mut open: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            q @ (b'"' | b'\'') => {
                i = string_end(b, i, q);
                continue;
            }
            b'[' | b'{' => open.push(b[i]),
            b']' | b'}' => {
                open.pop();
            }
            b'=' => count += 1,
            b',' if open.last() == Some(&b'[') => count += 1,
            _ => {}
        }
        if count > cap {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The index just past the string that starts at `at` with quote `q`: basic (`"`, backslash
/// escapes) or literal (`'`), on one line or multi-line (tripled quotes). An unterminated one
/// runs to its line's end (one-line) or the text's (multi-line); the parser reports it.
fn string_end(b: &[u8], at: usize, q: u8) -> usize {
    let escapes = q == b'"';
    if b[at..].starts_with(&[q, q, q]) {
        let mut i = at + 3;
        while i < b.len() {
            if escapes && b[i] == b'\\' {
                i += 2;
            } else if b[i..].starts_with(&[q, q, q]) {
                // Up to two more quotes may close it (`""""` ends with a quote in the string).
                let mut end = i + 3;
                while end < b.len() && end < i + 5 && b[end] == q {
                    end += 1;
                }
                return end;
            } else {
                i += 1;
            }
        }
        return b.len();
    }
    let mut i = at + 1;
    while i < b.len() && b[i] != b'\n' {
        if escapes && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            return i + 1;
        }
        i += 1;
    }
    i.min(b.len())
}

/// Byte offset → line and column in O(log n): the line starts and the characters before each
/// byte, computed once (a location per value would otherwise rescan the text: quadratic).
struct LineIndex {
    line_starts: Vec<usize>,
    chars_before: Vec<u32>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut line_starts = vec![0];
        let mut chars_before = Vec::with_capacity(text.len() + 1);
        let mut chars = 0u32;
        for (i, b) in text.bytes().enumerate() {
            chars_before.push(chars);
            // A character starts at every byte that is not a UTF-8 continuation byte.
            if b & 0xC0 != 0x80 {
                chars += 1;
            }
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        chars_before.push(chars);
        LineIndex { line_starts, chars_before }
    }

    fn at(&self, source: &Arc<Source>, offset: usize) -> Location {
        let offset = offset.min(self.chars_before.len() - 1);
        let line = self.line_starts.partition_point(|s| *s <= offset);
        let start = self.line_starts[line - 1];
        let column = (self.chars_before[offset] - self.chars_before[start]) as usize + 1;
        Location::new(source, line, column)
    }
}

/// What every conversion step needs.
struct Ctx<'a> {
    source: &'a Arc<Source>,
    index: &'a LineIndex,
}

fn convert_table(cx: &Ctx<'_>, table: DeTable<'_>, loc: Location, depth: usize, nodes: &mut usize) -> Result<Node, Diagnostic> {
    let mut map = IndexMap::new();
    for (key, value) in table {
        let kloc = cx.index.at(cx.source, key.span().start);
        let child = convert(cx, value, depth + 1, nodes)?;
        map.insert(key.into_inner().into_owned(), (kloc, child));
    }
    Ok(Node::new(NodeKind::Map(map), loc))
}

fn convert(cx: &Ctx<'_>, value: Spanned<DeValue<'_>>, depth: usize, nodes: &mut usize) -> Result<Node, Diagnostic> {
    let loc = cx.index.at(cx.source, value.span().start);
    *nodes += 1;
    if *nodes > super::yaml::MAX_NODES {
        return Err(too_many_values(loc));
    }
    if depth > MAX_DEPTH {
        return Err(Diagnostic::at(loc, None, format!("the document is nested more than {MAX_DEPTH} levels deep")));
    }
    let scalar = |s| Ok(Node::new(NodeKind::Scalar(s), loc.clone()));
    match value.into_inner() {
        DeValue::String(s) => scalar(Scalar::Str(s.into_owned())),
        DeValue::Boolean(b) => scalar(Scalar::Bool(b)),
        DeValue::Integer(i) => {
            let digits: String = i.as_str().chars().filter(|c| *c != '_').collect();
            let digits = digits.trim_start_matches("0x").trim_start_matches("0o").trim_start_matches("0b");
            match i64::from_str_radix(digits, i.radix()) {
                Ok(n) => scalar(Scalar::Int(n)),
                // Out of range: keep the spelling so the schema reports it as not a number.
                Err(_) => scalar(Scalar::Str(i.as_str().to_owned())),
            }
        }
        DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
            Ok(x) if x.is_finite() => scalar(Scalar::Float(x)),
            _ => scalar(Scalar::Str(f.as_str().to_owned())),
        },
        DeValue::Datetime(d) => scalar(Scalar::Str(d.to_string())),
        DeValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter().cloned() {
                out.push(convert(cx, item, depth + 1, nodes)?);
            }
            Ok(Node::new(NodeKind::Seq(out), loc))
        }
        DeValue::Table(t) => convert_table(cx, t, loc, depth, nodes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Node, Diagnostic> {
        parse(&Arc::new(Source::new("t.toml", text)))
    }

    #[test]
    fn values_keep_their_locations() {
        let n = load("name = \"x\"\n\n[[phases]]\nworkers = 3\n").unwrap();
        let p = super::super::node::DocPath::root().key("phases").index(0).key("workers");
        let w = n.get(&p).unwrap();
        assert_eq!((w.location.line, w.location.column), (4, 11));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = load("a = 1\na = 2\n").unwrap_err();
        assert!(e.message.contains("TOML syntax error"), "{}", e.message);
        assert_eq!(e.location.unwrap().line, 2);
    }

    #[test]
    fn locations_count_characters_not_bytes() {
        let n = load("# é\nname = \"ü\" # ok\nx = 1\n").unwrap();
        let x = n.get(&super::super::node::DocPath::root().key("x")).unwrap();
        assert_eq!((x.location.line, x.location.column), (3, 5));
        let index = LineIndex::new("aé\nb");
        let src = Arc::new(Source::new("t", "aé\nb"));
        let at = |o| index.at(&src, o);
        assert_eq!((at(3).line, at(3).column), (1, 3), "the byte after é is the third character");
        assert_eq!((at(4).line, at(4).column), (2, 1));
    }

    #[test]
    fn values_are_counted_from_below_before_parsing() {
        // The count: the smallest cap it does not pass.
        let count = |t: &str| (0..200).find(|&cap| past_node_cap(t, cap).is_none()).unwrap();
        let cases = [
            ("a = 1\nb = [1, 2, 3]\n", 4),
            ("a = [1, 2,]\n", 3),
            ("t = {x = 1, y = [1, 2]}\n", 4),
            ("[[p]]\nx = [[1, 2], [3]]\n", 3),
            ("a = [{x = 1}, {y = 2},]\n", 5),
            ("a = \"=,[\" # = , [\nb = '=,'\n", 2),
            ("a = \"\"\"x = [1,\n2]\\\"\"\"\"\"\nb = '''=\n'' ='''\nc = \"\\\"=\"\n", 3),
        ];
        for (text, expected) in cases {
            assert_eq!(count(text), expected, "{text:?}");
            // Never more than the values the parser finds.
            let values = json_values(&load(text).unwrap().to_json());
            assert!(expected <= values, "{text:?}: counted {expected} of {values}");
        }
        // Past the cap: refused where the count passed it, before the parser runs.
        let text = format!("a = 1\nk = [{}]\n", ["1"; 100_001].join(","));
        let e = load(&text).unwrap_err();
        assert!(e.message.contains("more than 100000 values"), "{}", e.message);
        assert_eq!(e.location.unwrap().line, 2);
    }

    /// Values of a JSON tree below its root.
    fn json_values(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::Object(m) => m.values().map(|c| 1 + json_values(c)).sum(),
            serde_json::Value::Array(a) => a.iter().map(|c| 1 + json_values(c)).sum(),
            _ => 0,
        }
    }

    #[test]
    fn huge_integers_stay_text() {
        let n = load("a = 99999999999999999999\n").unwrap();
        assert_eq!(n.to_json()["a"], serde_json::json!("99999999999999999999"));
    }
}
