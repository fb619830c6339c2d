//! Located error messages for scenario files: `file:line:column: path: message` plus the source line.

use std::fmt;

use super::node::{DocPath, Location};

/// One problem in a scenario, pointing at where it was written.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Where the problem is; `None` only for problems with the file as a whole (unreadable).
    pub location: Option<Location>,
    /// The file name when there is no location (the file could not be read at all).
    pub file: String,
    /// The path inside the document, when the problem belongs to a value.
    pub path: Option<DocPath>,
    /// What is wrong and, where it helps, how to fix it.
    pub message: String,
}

impl Diagnostic {
    /// A problem at a location, with an optional document path.
    pub fn at(location: Location, path: Option<DocPath>, message: impl Into<String>) -> Self {
        let file = location.source.name.clone();
        Self { location: Some(location), file, path, message: message.into() }
    }

    /// A problem with a whole file.
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self { location: None, file: file.into(), path: None, message: message.into() }
    }

    /// A source line holding a secret (a password, a header, a URL with credentials) is not quoted.
    fn hides_source(&self, line: &str) -> bool {
        self.path.as_ref().is_some_and(|p| {
            super::schema::is_secret_path(p)
                && (p.0.iter().any(|s| matches!(s, super::node::PathSegment::Key(k) if k == "password" || k == "headers")) || line.contains('@'))
        })
    }

    /// The single-line header, `file:line:column: path: message`.
    pub fn headline(&self) -> String {
        let mut s = match &self.location {
            Some(loc) => loc.to_string(),
            None => self.file.clone(),
        };
        if let Some(path) = &self.path {
            s.push_str(": ");
            s.push_str(&path.to_string());
        }
        s.push_str(": ");
        s.push_str(&self.message);
        // Messages quote what the file holds; a control character in it must not reach the terminal.
        if s.chars().any(char::is_control) {
            s = s.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect();
        }
        s
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        if let Some(loc) = &self.location
            && let Some(line) = loc.source_line().filter(|l| !self.hides_source(l))
        {
            let gutter = loc.line.to_string();
            let pad = " ".repeat(gutter.len());
            // Tabs would shift the caret; show them as single spaces. Other control characters
            // (an ESC in a hostile file) would rewrite the terminal: show them as `?`.
            let shown: String = line
                .chars()
                .map(|c| {
                    if c == '\t' {
                        ' '
                    } else if c.is_control() {
                        '?'
                    } else {
                        c
                    }
                })
                .collect();
            write!(f, "\n {gutter} | {shown}\n {pad} | {}^", " ".repeat(loc.column.saturating_sub(1)))?;
        }
        Ok(())
    }
}

/// All problems found in one or more files.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one problem.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// True when no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Orders problems by file, line and column so that output reads top to bottom.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            let key = |d: &Diagnostic| (d.file.clone(), d.location.as_ref().map_or((0, 0), |l| (l.line, l.column)));
            key(a).cmp(&key(b))
        });
        self.0.dedup_by(|a, b| a.headline() == b.headline());
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
