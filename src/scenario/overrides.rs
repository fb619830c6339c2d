//! Command-line overrides: `--set dotted.path=value` and the `--target URL` shortcut.
//!
//! Values are read as YAML (`--set phases.0.workers='{from: 1, to: 8}'` works) and may be retyped
//! by the schema (`--set target.password=1234` stays a string). Sequence elements are addressed by
//! index or, for lists of named entries such as phases, by name: `--set phases.steady.rate=5000`.

use std::sync::Arc;

use indexmap::IndexMap;

use super::diagnostic::Diagnostic;
use super::node::{DocPath, Flex, Location, Node, NodeKind, PathSegment, Scalar, Source};
use super::yaml;

/// One parsed `--set` argument.
#[derive(Debug, Clone)]
pub struct SetOverride {
    /// The dotted path as written.
    pub path: Vec<String>,
    /// The value, as a located node whose source is the argument itself.
    pub value: Node,
    source: Arc<Source>,
}

impl SetOverride {
    /// Parses `a.b.c=value`.
    pub fn parse(arg: &str) -> Result<Self, Diagnostic> {
        // The argument names itself in messages (and their quoted source line), except a secret:
        // a password or headers value is `***`, a URL keeps everything but its password.
        let shown = match arg.split_once('=') {
            Some((path, _)) if path.split('.').any(|k| k == "password" || k == "headers") => format!("{path}=***"),
            Some((path, value)) if path.split('.').any(|k| k == "url") => format!("{path}={}", redact_url(value)),
            _ => arg.to_owned(),
        };
        let source = Arc::new(Source::new(format!("--set {shown}"), shown.clone()));
        let loc = |col| Location::new(&source, 1, col);
        let (path, value) = arg.split_once('=').ok_or_else(|| Diagnostic::at(loc(1), None, "expected `--set path.to.key=value`"))?;
        let path: Vec<String> = path.split('.').map(str::to_owned).collect();
        if path.iter().any(|s| s.trim().is_empty()) {
            return Err(Diagnostic::at(loc(1), None, "empty segment in the dotted path"));
        }
        let value_col = shown.len().saturating_sub(value.len()) + 1;
        let value_src = Arc::new(Source::new(source.name.clone(), value.to_owned()));
        let mut node = if value.trim().is_empty() {
            Node::new(NodeKind::Scalar(Scalar::Str(String::new())), loc(value_col))
        } else {
            let mut n = yaml::parse(&value_src).map_err(|mut d| {
                d.location = Some(loc(value_col));
                d.file = source.name.clone();
                if shown != arg {
                    // The parser's message may quote the value.
                    d.message = "the value does not parse as YAML".into();
                }
                d
            })?;
            relocate(&mut n, &loc(value_col));
            n
        };
        // Where the schema wants a string, the text as typed is the string: `prefix=app:x:` reads
        // as a YAML mapping but means the prefix `app:x:`.
        node.flex = Flex::Retypable { text: value.to_owned(), vars: Vec::new() };
        Ok(Self { path, value: node, source })
    }

    /// Writes the value into the document, creating intermediate mappings as needed.
    pub fn apply(&self, root: &mut Node) -> Result<(), Diagnostic> {
        let loc = Location::new(&self.source, 1, 1);
        let mut node = root;
        let mut walked = DocPath::root();
        let (last, parents) = self.path.split_last().expect("parse rejects empty paths");
        for seg in parents {
            node = step(node, seg, &walked, &loc, true)?;
            walked = extend(&walked, node_segment_for(seg));
        }
        match &mut node.kind {
            NodeKind::Map(map) => {
                let kloc = map.get(last).map_or_else(|| loc.clone(), |(l, _)| l.clone());
                map.insert(last.clone(), (kloc, self.value.clone()));
                Ok(())
            }
            NodeKind::Seq(_) => {
                let target = step(node, last, &walked, &loc, false)?;
                *target = self.value.clone();
                Ok(())
            }
            NodeKind::Scalar(_) => Err(Diagnostic::at(loc, None, format!("`{walked}` is a single value, not a mapping; cannot set `{last}` inside it"))),
        }
    }
}

/// Applies `--target URL`: the scenario runs against that URL instead of its own target or local
/// server. Everything the URL says replaces what the file says: its user, password and database
/// replace the file's `username`, `password` and `db`; a `redis://` URL drops the file's `tls`
/// (a `rediss://` one keeps its CA and certificates); the file's cluster seed `nodes` belong to the
/// file's target and go too.
pub fn apply_target(root: &mut Node, url: &str) -> Result<(), Diagnostic> {
    let shown = redact_url(url);
    let source = Arc::new(Source::new(format!("--target {shown}"), shown));
    let loc = Location::new(&source, 1, 1);
    let NodeKind::Map(top) = &mut root.kind else {
        return Err(Diagnostic::at(root.location.clone(), None, "the scenario must be a mapping"));
    };
    let entry = top.entry("target".to_owned()).or_insert_with(|| (loc.clone(), Node::new(NodeKind::Map(IndexMap::new()), loc.clone())));
    let NodeKind::Map(target) = &mut entry.1.kind else {
        return Err(Diagnostic::at(entry.1.location.clone(), None, "`target` must be a mapping"));
    };
    target.shift_remove("local");
    target.shift_remove("nodes");
    if let Ok(u) = super::validate::parse_redis_url(url) {
        if u.username.is_some() {
            target.shift_remove("username");
        }
        if u.password.is_some() {
            target.shift_remove("password");
        }
        if u.db.is_some() {
            target.shift_remove("db");
        }
        if !u.tls {
            target.shift_remove("tls");
        }
    }
    target.insert("url".into(), (loc.clone(), Node::new(NodeKind::Scalar(Scalar::Str(url.to_owned())), loc)));
    Ok(())
}

/// A URL with its password replaced by `***` (`redis://user:***@host`), for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let shown = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    match path {
        Some(p) => format!("{scheme}://{shown}/{p}"),
        None => format!("{scheme}://{shown}"),
    }
}

fn node_segment_for(seg: &str) -> PathSegment {
    PathSegment::Key(seg.to_owned())
}

fn extend(path: &DocPath, seg: PathSegment) -> DocPath {
    let mut p = path.clone();
    p.0.push(seg);
    p
}

/// Moves one step down; in a sequence a segment is an index or the `name` of an element.
fn step<'a>(node: &'a mut Node, seg: &str, walked: &DocPath, loc: &Location, create: bool) -> Result<&'a mut Node, Diagnostic> {
    match &mut node.kind {
        NodeKind::Map(map) => {
            if !map.contains_key(seg) && create {
                map.insert(seg.to_owned(), (loc.clone(), Node::new(NodeKind::Map(IndexMap::new()), loc.clone())));
            }
            map.get_mut(seg).map(|(_, v)| v).ok_or_else(|| Diagnostic::at(loc.clone(), None, format!("no `{seg}` under `{walked}`")))
        }
        NodeKind::Seq(items) => {
            let len = items.len();
            let index = match seg.parse::<usize>() {
                Ok(i) if i < len => i,
                Ok(i) => return Err(Diagnostic::at(loc.clone(), None, format!("`{walked}` has {len} entries; index {i} is out of range"))),
                Err(_) => items
                    .iter()
                    .position(|it| matches!(&it.kind, NodeKind::Map(m) if matches!(m.get("name"), Some((_, Node { kind: NodeKind::Scalar(Scalar::Str(n)), .. })) if n == seg)))
                    .ok_or_else(|| Diagnostic::at(loc.clone(), None, format!("`{walked}` has no entry named `{seg}`")))?,
            };
            Ok(&mut items[index])
        }
        NodeKind::Scalar(_) => Err(Diagnostic::at(loc.clone(), None, format!("`{walked}` is a single value; cannot descend into `{seg}`"))),
    }
}

/// Points every node of a `--set` value at the argument's value column.
fn relocate(node: &mut Node, loc: &Location) {
    node.location = loc.clone();
    match &mut node.kind {
        NodeKind::Scalar(_) => {}
        NodeKind::Seq(items) => items.iter_mut().for_each(|n| relocate(n, loc)),
        NodeKind::Map(map) => map.values_mut().for_each(|(l, n)| {
            *l = loc.clone();
            relocate(n, loc);
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Node {
        yaml::parse(&Arc::new(Source::new("t", "phases:\n  - name: warm\n    rate: 10\n  - name: steady\n    rate: 20\n"))).unwrap()
    }

    #[test]
    fn sets_by_index_by_name_and_creates_maps() {
        let mut d = doc();
        SetOverride::parse("phases.1.rate=30").unwrap().apply(&mut d).unwrap();
        SetOverride::parse("phases.warm.workers={from: 1, to: 4}").unwrap().apply(&mut d).unwrap();
        SetOverride::parse("target.password=hunter2").unwrap().apply(&mut d).unwrap();
        let j = d.to_json();
        assert_eq!(j["phases"][1]["rate"], json!(30));
        assert_eq!(j["phases"][0]["workers"], json!({"from": 1, "to": 4}));
        assert_eq!(j["target"]["password"], json!("hunter2"));
    }

    #[test]
    fn bad_paths_are_located_errors() {
        let mut d = doc();
        let e = SetOverride::parse("phases.7.rate=1").unwrap().apply(&mut d).unwrap_err();
        assert!(e.message.contains("out of range"), "{}", e.message);
        let e = SetOverride::parse("phases.nope.rate=1").unwrap().apply(&mut d).unwrap_err();
        assert!(e.message.contains("no entry named `nope`"), "{}", e.message);
        assert!(SetOverride::parse("novalue").is_err());
    }

    #[test]
    fn target_url_credentials_database_and_scheme_replace_the_files() {
        let file = "target:\n  url: rediss://127.0.0.1:7000\n  username: loadtester\n  password: filepw\n  db: 3\n  tls: {insecure: true}\n";
        let mut d = yaml::parse(&Arc::new(Source::new("t", file))).unwrap();
        apply_target(&mut d, "redis://limited:pw@127.0.0.1:7001/2").unwrap();
        assert_eq!(d.to_json()["target"], json!({"url": "redis://limited:pw@127.0.0.1:7001/2"}));
        // A URL that names no user keeps the file's; a rediss:// URL keeps the file's TLS settings.
        let mut d = yaml::parse(&Arc::new(Source::new("t", file))).unwrap();
        apply_target(&mut d, "rediss://127.0.0.1:7001").unwrap();
        assert_eq!(d.to_json()["target"]["username"], json!("loadtester"));
        assert_eq!(d.to_json()["target"]["tls"], json!({"insecure": true}));
    }

    #[test]
    fn secrets_in_malformed_overrides_are_never_shown() {
        for arg in ["target.url=redis://u:S3cret@127.0.0.1:99999", "target.sentinel.password=[S3cret", "metrics.otlp.headers={a: [S3cret"] {
            let shown = match SetOverride::parse(arg) {
                Ok(s) => {
                    let mut d = doc();
                    let _ = s.apply(&mut d);
                    format!("{} {}", s.source.name, s.source.text)
                }
                Err(d) => d.to_string(),
            };
            assert!(!shown.contains("S3cret"), "{arg}: {shown}");
        }
        assert_eq!(redact_url("rediss://app:p@ss@h:6379/2"), "rediss://app:***@h:6379/2");
        assert_eq!(redact_url("redis://h"), "redis://h");
    }

    #[test]
    fn target_shortcut_replaces_local() {
        let mut d = yaml::parse(&Arc::new(Source::new("t", "target:\n  local: standalone\n"))).unwrap();
        apply_target(&mut d, "redis://127.0.0.1:7000").unwrap();
        assert_eq!(d.to_json()["target"], json!({"url": "redis://127.0.0.1:7000"}));
    }
}
