//! Scenario files: read (YAML or TOML) → interpolate → override → schema check → semantic check.
//!
//! Only this module knows file formats. [`load`] returns a checked [`Scenario`] or every problem
//! it found, each located at `file:line:column`.

pub mod diagnostic;
pub mod editor_schema;
pub mod interpolate;
pub mod model;
pub mod node;
pub mod overrides;
pub mod raw;
pub mod schema;
pub mod template;
mod toml;
pub mod validate;
mod yaml;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use interpolate::Vars;
pub use model::Scenario;
use node::{DocPath, Node, NodeKind, Source};
pub use overrides::SetOverride;

/// Largest scenario file accepted; real ones are a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What the command line adds to a file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Variables for `${VAR}`.
    pub vars: Vars,
    /// `--target URL`.
    pub target: Option<String>,
    /// `--set path=value`, in order (later wins).
    pub sets: Vec<String>,
}

/// Reads and checks one scenario file.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Scenario, Diagnostics> {
    let name = path.display().to_string();
    let one = |d: Diagnostic| Diagnostics(vec![d]);
    let format = Format::of(path).map_err(|e| one(Diagnostic::file(&name, e)))?;
    let text = read_text(path).map_err(one)?;
    load_text(&name, text, format, path, opts)
}

/// Checks a scenario given as text (as read from `name`; relative paths inside it, such as TLS
/// files, resolve against `path`'s folder). The loader's whole pipeline, without the file system:
/// what the fuzz tests drive.
pub fn load_text(name: &str, text: String, format: Format, path: &Path, opts: &LoadOptions) -> Result<Scenario, Diagnostics> {
    let mut diags = Diagnostics::default();
    let one = |d: Diagnostic| Diagnostics(vec![d]);
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(one(Diagnostic::file(name, format!("is larger than {MAX_FILE_BYTES} bytes; scenario files are limited to that"))));
    }
    let source = Arc::new(Source::new(name, text));
    let mut root = match format {
        Format::Yaml => yaml::parse(&source),
        Format::Toml => toml::parse(&source),
    }
    .map_err(one)?;
    if !matches!(root.kind, NodeKind::Map(_)) {
        return Err(one(Diagnostic::at(root.location.clone(), None, "a scenario is a mapping of sections (`name`, `target`, `workloads`, `phases`, …)")));
    }
    interpolate::apply(&mut root, &opts.vars, &mut diags);
    if let Some(url) = &opts.target
        && let Err(d) = overrides::apply_target(&mut root, url)
    {
        diags.push(d);
    }
    for arg in &opts.sets {
        match SetOverride::parse(arg).and_then(|s| s.apply(&mut root)) {
            Ok(()) => {}
            Err(d) => diags.push(d),
        }
    }
    no_control_characters(&root, &DocPath::root(), &mut diags);
    if !diags.is_empty() {
        diags.sort();
        return Err(diags);
    }
    if !schema::check(&mut root, &mut diags) {
        semantic_check_around(&root, path, &mut diags);
        diags.sort();
        return Err(diags);
    }
    let raw = match typed(&root) {
        Ok(raw) => raw,
        Err(d) => return Err(one(d)),
    };
    match validate::build(raw, &root, path, &mut diags) {
        Some(s) if diags.is_empty() => Ok(s),
        _ => {
            diags.sort();
            Err(diags)
        }
    }
}

/// Refuses control characters (ESC and the rest of C0 but tab and newline, DEL, C1) in every key
/// and text value: names and descriptions are printed to terminals, where such characters would
/// rewrite the screen.
fn no_control_characters(node: &Node, path: &DocPath, diags: &mut Diagnostics) {
    let bad = |s: &str| s.chars().find(|c| (c.is_control() && *c != '\n' && *c != '\t') || ('\u{80}'..='\u{9f}').contains(c));
    let complain = |c: char, loc: node::Location, p: DocPath, diags: &mut Diagnostics| {
        diags.push(Diagnostic::at(
            loc,
            Some(p),
            format!("contains the control character U+{:04X}; text here is printed to terminals and must not hold control characters", c as u32),
        ));
    };
    match &node.kind {
        NodeKind::Scalar(node::Scalar::Str(s)) => {
            if let Some(c) = bad(s) {
                complain(c, node.location.clone(), path.clone(), diags);
            }
        }
        NodeKind::Scalar(_) => {}
        NodeKind::Seq(items) => items.iter().enumerate().for_each(|(i, n)| no_control_characters(n, &path.index(i), diags)),
        NodeKind::Map(map) => {
            for (k, (kloc, v)) in map {
                if let Some(c) = bad(k) {
                    complain(c, kloc.clone(), path.key(k), diags);
                }
                no_control_characters(v, &path.key(k), diags);
            }
        }
    }
}

/// After schema errors, still run the semantic checks on what is left when the offending values
/// are taken out, so that one run reports every independent mistake. Semantic findings about the
/// values already reported (or their parents and children) are dropped as noise.
fn semantic_check_around(root: &Node, path: &Path, diags: &mut Diagnostics) {
    let blamed: Vec<DocPath> = diags.0.iter().filter_map(|d| d.path.clone()).collect();
    let mut pruned = root.clone();
    for p in &blamed {
        pruned.remove(p);
    }
    // Taking a wrong value out may leave a required key missing: a placeholder stands in for it,
    // and only findings that hold whatever the placeholder are kept.
    let mut runs: Vec<Vec<Diagnostic>> = Vec::new();
    for variant in 0..2 {
        let mut filled = pruned.clone();
        if !schema::check(&mut filled, &mut Diagnostics::default()) && !schema::fill_required(&mut filled, variant) {
            return;
        }
        let Ok(raw) = typed(&filled) else { return };
        let mut scratch = Diagnostics::default();
        validate::build(raw, root, path, &mut scratch);
        runs.push(scratch.0);
        if blamed_are_required(&pruned) {
            continue;
        }
        break;
    }
    let related = |a: &DocPath, b: &DocPath| a.0.starts_with(&b.0) || b.0.starts_with(&a.0);
    let (first, rest) = runs.split_first().expect("one run at least");
    for d in first {
        let stable = rest.iter().all(|r| r.iter().any(|x| x.path == d.path && x.message == d.message));
        if stable && d.path.as_ref().is_some_and(|p| !p.0.is_empty() && !blamed.iter().any(|b| related(p, b))) {
            diags.push(d.clone());
        }
    }
}

/// Whether the pruned document lacks required keys (so placeholders will stand in).
fn blamed_are_required(pruned: &Node) -> bool {
    let mut probe = pruned.clone();
    !schema::check(&mut probe, &mut Diagnostics::default())
}

/// The file formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.yaml` / `.yml`.
    Yaml,
    /// `.toml`.
    Toml,
}

impl Format {
    /// The format a path's extension names.
    pub fn of(path: &Path) -> Result<Format, String> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("yaml" | "yml") => Ok(Format::Yaml),
            Some("toml") => Ok(Format::Toml),
            Some(other) => Err(format!("unsupported file extension `.{other}`; scenario files end in .yaml, .yml or .toml")),
            None => Err("the file has no extension; scenario files end in .yaml, .yml or .toml".into()),
        }
    }
}

fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let name = path.display().to_string();
    let bytes = crate::files::read_bounded(path, MAX_FILE_BYTES).map_err(|e| {
        let why = match e {
            crate::files::ReadError::TooLarge { .. } => format!("is larger than {MAX_FILE_BYTES} bytes; scenario files are limited to that"),
            crate::files::ReadError::NotRegular("a directory") => "is a directory, not a scenario file".to_owned(),
            other => format!("{other}; scenario files are regular files"),
        };
        Diagnostic::file(&name, why)
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let good = std::str::from_utf8(good).unwrap_or_default();
        let line = good.matches('\n').count() + 1;
        let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let source = Arc::new(Source::new(name.clone(), good.to_owned()));
        Diagnostic::at(node::Location::new(&source, line, column), None, "the file is not valid UTF-8 text")
    })
}

/// Deserializes the schema-checked document into the raw types; errors here are values the
/// schema's patterns allow but that do not fit (e.g. a duration of 10^20 hours).
fn typed(root: &Node) -> Result<raw::RawScenario, Diagnostic> {
    let json = root.to_json();
    serde_path_to_error::deserialize(&json).map_err(|e| {
        use serde_path_to_error::Segment;
        let path = DocPath(
            e.path()
                .iter()
                .filter_map(|s| match s {
                    Segment::Seq { index } => Some(node::PathSegment::Index(*index)),
                    Segment::Map { key } => Some(node::PathSegment::Key(key.clone())),
                    Segment::Enum { .. } | Segment::Unknown => None,
                })
                .collect(),
        );
        let msg = e.inner().to_string();
        let msg = if schema::is_secret_path(&path) { "invalid value".to_owned() } else { msg };
        Diagnostic::at(root.locate(&path), Some(path), msg)
    })
}

/// Every `.yaml`, `.yml` and `.toml` file directly inside `dir`, sorted.
pub fn files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| Format::of(p).is_ok() && p.is_file()).collect();
    files.sort();
    Ok(files)
}
