//! Reads TOML into a located [`Node`] tree, using the spans the `toml` crate's parser keeps.

use std::sync::Arc;

use indexmap::IndexMap;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::Diagnostic;
use super::node::{Location, Node, NodeKind, Scalar, Source};
use super::yaml::MAX_DEPTH;

/// Parses a TOML document into a node tree.
pub fn parse(source: &Arc<Source>) -> Result<Node, Diagnostic> {
    let table = DeTable::parse(&source.text).map_err(|e| {
        let loc = at_offset(source, e.span().map_or(0, |s| s.start));
        Diagnostic::at(loc, None, format!("TOML syntax error: {}", e.message().trim()))
    })?;
    if table.get_ref().is_empty() {
        return Err(Diagnostic::at(Location::new(source, 1, 1), None, "the file is empty; a scenario needs at least `name`, `workloads` and `phases`"));
    }
    let root_loc = Location::new(source, 1, 1);
    convert_table(source, table.into_inner(), root_loc, 0)
}

fn convert_table(source: &Arc<Source>, table: DeTable<'_>, loc: Location, depth: usize) -> Result<Node, Diagnostic> {
    let mut map = IndexMap::new();
    for (key, value) in table {
        let kloc = at_offset(source, key.span().start);
        let child = convert(source, value, depth + 1)?;
        map.insert(key.into_inner().into_owned(), (kloc, child));
    }
    Ok(Node::new(NodeKind::Map(map), loc))
}

fn convert(source: &Arc<Source>, value: Spanned<DeValue<'_>>, depth: usize) -> Result<Node, Diagnostic> {
    let loc = at_offset(source, value.span().start);
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
                out.push(convert(source, item, depth + 1)?);
            }
            Ok(Node::new(NodeKind::Seq(out), loc))
        }
        DeValue::Table(t) => convert_table(source, t, loc, depth),
    }
}

/// The 1-based line and column of a byte offset.
fn at_offset(source: &Arc<Source>, offset: usize) -> Location {
    let offset = offset.min(source.text.len());
    let before = source.text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location::new(source, line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Node, Diagnostic> {
        parse(&Arc::new(Source { name: "t.toml".into(), text: text.into() }))
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
    fn huge_integers_stay_text() {
        let n = load("a = 99999999999999999999\n").unwrap();
        assert_eq!(n.to_json()["a"], serde_json::json!("99999999999999999999"));
    }
}
