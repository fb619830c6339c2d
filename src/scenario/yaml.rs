//! Reads YAML into a located [`Node`] tree, defensively.
//!
//! We drive `saphyr-parser`'s event stream ourselves instead of deserializing directly, so that
//! every value keeps its line and column, duplicate keys are errors, booleans are strict, and
//! hostile input (alias bombs, absurd nesting, several documents) ends in an error, not a hang.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::IndexMap;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use super::diagnostic::Diagnostic;
use super::node::{Location, Node, NodeKind, Scalar, Source};

/// Deepest nesting accepted; real scenarios need fewer than ten levels.
pub const MAX_DEPTH: usize = 64;
/// Most values a document may expand to, aliases included ("billion laughs" stops here).
pub const MAX_NODES: usize = 100_000;

enum Frame {
    Seq {
        items: Vec<Node>,
        loc: Location,
        anchor: usize,
    },
    Map {
        map: IndexMap<String, (Location, Node)>,
        loc: Location,
        anchor: usize,
        key: Option<(String, Location)>,
        /// Keys that came from a `<<` merge: an explicit key may replace them without being a duplicate.
        merged: Vec<String>,
    },
}

struct Builder {
    source: Arc<Source>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    nodes: usize,
}

/// Parses one YAML document into a node tree.
pub fn parse(source: &Arc<Source>) -> Result<Node, Diagnostic> {
    let mut b = Builder { source: Arc::clone(source), stack: Vec::new(), anchors: HashMap::new(), root: None, nodes: 0 };
    let mut documents = 0;
    let mut parser = Parser::new_from_str(&source.text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            let m = e.marker();
            Diagnostic::at(Location::new(source, m.line(), m.col() + 1), None, format!("YAML syntax error: {}", e.info()))
        })?;
        let loc = b.loc(&span);
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(Diagnostic::at(loc, None, "a scenario file holds exactly one YAML document; found a second one (`---`)"));
                }
            }
            Event::Alias(id) => {
                let node = b.anchors.get(&id).cloned().ok_or_else(|| Diagnostic::at(loc.clone(), None, "alias to an unknown anchor"))?;
                b.count(count_nodes(&node), &loc)?;
                b.finish(Node { location: loc, ..node })?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                b.count(1, &loc)?;
                let scalar = match (style, tag) {
                    (_, Some(tag)) if tag.is_yaml_core_schema() && tag.suffix == "str" => Scalar::Str(text.into_owned()),
                    (_, Some(tag)) => {
                        return Err(Diagnostic::at(loc, None, format!("YAML tag `{}{}` is not supported here", tag.handle, tag.suffix)));
                    }
                    (ScalarStyle::Plain, None) => Scalar::from_plain(&text),
                    (_, None) => Scalar::Str(text.into_owned()),
                };
                let node = Node::new(NodeKind::Scalar(scalar), loc);
                if anchor > 0 {
                    b.anchors.insert(anchor, node.clone());
                }
                b.finish(node)?;
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) if tag.is_some() => {
                let _ = anchor;
                return Err(Diagnostic::at(loc, None, "YAML tags on collections are not supported"));
            }
            Event::SequenceStart(anchor, _) => {
                b.count(1, &loc)?;
                b.push(Frame::Seq { items: Vec::new(), loc, anchor })?;
            }
            Event::MappingStart(anchor, _) => {
                b.count(1, &loc)?;
                b.push(Frame::Map { map: IndexMap::new(), loc, anchor, key: None, merged: Vec::new() })?;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match b.stack.pop() {
                    Some(Frame::Seq { items, loc, anchor }) => (Node::new(NodeKind::Seq(items), loc), anchor),
                    Some(Frame::Map { map, loc, anchor, .. }) => (Node::new(NodeKind::Map(map), loc), anchor),
                    None => return Err(Diagnostic::at(loc, None, "unbalanced YAML collection")),
                };
                if anchor > 0 {
                    b.anchors.insert(anchor, node.clone());
                }
                b.finish(node)?;
            }
        }
    }
    match b.root {
        Some(Node { kind: NodeKind::Scalar(Scalar::Null), .. }) | None => {
            Err(Diagnostic::at(Location::new(source, 1, 1), None, "the file is empty; a scenario needs at least `name`, `workloads` and `phases`"))
        }
        Some(root) => Ok(root),
    }
}

impl Builder {
    fn loc(&self, span: &Span) -> Location {
        Location::new(&self.source, span.start.line().max(1), span.start.col() + 1)
    }

    fn count(&mut self, n: usize, loc: &Location) -> Result<(), Diagnostic> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(Diagnostic::at(
                loc.clone(),
                None,
                format!("the document expands to more than {MAX_NODES} values (aliases included); refusing to load it"),
            ));
        }
        Ok(())
    }

    fn push(&mut self, frame: Frame) -> Result<(), Diagnostic> {
        if self.stack.len() >= MAX_DEPTH {
            let loc = match &frame {
                Frame::Seq { loc, .. } | Frame::Map { loc, .. } => loc.clone(),
            };
            return Err(Diagnostic::at(loc, None, format!("the document is nested more than {MAX_DEPTH} levels deep")));
        }
        self.stack.push(frame);
        Ok(())
    }

    /// Hands a finished value to its parent (or makes it the root).
    fn finish(&mut self, node: Node) -> Result<(), Diagnostic> {
        match self.stack.last_mut() {
            None => {
                if self.root.is_some() {
                    return Err(Diagnostic::at(node.location, None, "unexpected second value at the top level"));
                }
                self.root = Some(node);
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { map, key, merged, .. }) => match key.take() {
                None => {
                    let text = match &node.kind {
                        NodeKind::Scalar(Scalar::Str(s)) => s.clone(),
                        NodeKind::Scalar(Scalar::Int(i)) => i.to_string(),
                        NodeKind::Scalar(Scalar::Bool(b)) => b.to_string(),
                        NodeKind::Scalar(Scalar::Float(f)) => f.to_string(),
                        _ => return Err(Diagnostic::at(node.location, None, "mapping keys must be plain strings")),
                    };
                    *key = Some((text, node.location));
                }
                Some((k, kloc)) if k == "<<" => merge(map, merged, node, &kloc)?,
                Some((k, kloc)) => {
                    if let Some(pos) = merged.iter().position(|m| *m == k) {
                        merged.swap_remove(pos);
                        map.shift_remove(&k);
                    }
                    if let Some((first, _)) = map.get(&k) {
                        return Err(Diagnostic::at(kloc, None, format!("duplicate key `{k}` (first written at line {}, column {})", first.line, first.column)));
                    }
                    map.insert(k, (kloc, node));
                }
            },
        }
        Ok(())
    }
}

/// Applies a YAML merge key (`<<: *defaults`): keys already present win.
fn merge(map: &mut IndexMap<String, (Location, Node)>, merged: &mut Vec<String>, value: Node, kloc: &Location) -> Result<(), Diagnostic> {
    let sources = match value.kind {
        NodeKind::Map(m) => vec![m],
        NodeKind::Seq(items) => {
            let mut maps = Vec::new();
            for item in items {
                match item.kind {
                    NodeKind::Map(m) => maps.push(m),
                    _ => return Err(Diagnostic::at(item.location, None, "`<<` merges mappings only")),
                }
            }
            maps
        }
        NodeKind::Scalar(_) => return Err(Diagnostic::at(kloc.clone(), None, "`<<` merges mappings only")),
    };
    for m in sources {
        for (k, v) in m {
            if !map.contains_key(&k) {
                merged.push(k.clone());
                map.insert(k, v);
            }
        }
    }
    Ok(())
}

fn count_nodes(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar(_) => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(m) => 1 + m.values().map(|(_, v)| count_nodes(v)).sum::<usize>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Node, Diagnostic> {
        parse(&Arc::new(Source::new("t.yaml", text)))
    }

    #[test]
    fn values_keep_their_locations() {
        let n = load("name: x\nphases:\n  - workers: 3\n").unwrap();
        let p = super::super::node::DocPath::root().key("phases").index(0).key("workers");
        let w = n.get(&p).unwrap();
        assert_eq!((w.location.line, w.location.column), (3, 14));
        assert_eq!(w.to_json(), serde_json::json!(3));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(e.message.contains("duplicate key `a`"), "{}", e.message);
        assert_eq!(e.location.unwrap().line, 3);
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            doc.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
        }
        let e = load(&doc).unwrap_err();
        assert!(e.message.contains("more than"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        let e = load(&doc).unwrap_err();
        // saphyr's own recursion guard or ours, whichever trips first; either way an error, not a crash.
        assert!(e.message.contains("nested") || e.message.contains("recursion limit"), "{}", e.message);
    }

    #[test]
    fn second_document_is_refused() {
        let e = load("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("exactly one YAML document"), "{}", e.message);
    }

    #[test]
    fn merge_keys_fill_missing_entries() {
        let n = load("d: &d {a: 1, b: 2}\ne:\n  <<: *d\n  b: 3\n").unwrap();
        assert_eq!(n.to_json()["e"], serde_json::json!({"a": 1, "b": 3}));
    }
}
