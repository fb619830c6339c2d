//! `${VAR}` and `${VAR:-default}` interpolation in string values, from the environment and `.env`.
//!
//! Precedence, lowest first: the scenario file's own text (and `:-` defaults) < the `.env` file <
//! the process environment < `--set` on the command line (applied after this step).

use std::collections::HashMap;
use std::path::Path;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::node::{DocPath, Flex, Node, NodeKind, Scalar};

/// The variables a scenario may refer to.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    /// Values from the process environment (win over `.env`).
    pub env: HashMap<String, String>,
    /// Values from the `.env` file.
    pub dotenv: HashMap<String, String>,
}

impl Vars {
    /// The process environment plus the `.env` file at `path`, if given.
    ///
    /// `required` says whether a missing file is an error (an explicit `--env-file`) or simply means
    /// "no .env" (the default `./.env`).
    pub fn from_process(dotenv_path: Option<&Path>, required: bool) -> Result<Self, Diagnostic> {
        let mut vars =
            Vars { env: std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect(), dotenv: HashMap::new() };
        if let Some(path) = dotenv_path {
            if !required && !path.exists() {
                return Ok(vars);
            }
            let name = path.display().to_string();
            let bytes = crate::files::read_bounded(path, super::MAX_FILE_BYTES).map_err(|e| Diagnostic::file(&name, format!(".env file {e}")))?;
            let iter = dotenvy::from_read_iter(bytes.as_slice());
            for item in iter {
                let (k, v) = item.map_err(|e| Diagnostic::file(&name, format!("invalid .env file: {e}")))?;
                vars.dotenv.insert(k, v);
            }
        }
        Ok(vars)
    }

    /// Looks a variable up: environment first, then `.env`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.env.get(name).or_else(|| self.dotenv.get(name)).map(String::as_str)
    }
}

/// Replaces every `${...}` in the tree's string values, collecting every error.
pub fn apply(root: &mut Node, vars: &Vars, errors: &mut Diagnostics) {
    walk(root, &DocPath::root(), vars, errors);
}

fn walk(node: &mut Node, path: &DocPath, vars: &Vars, errors: &mut Diagnostics) {
    match &mut node.kind {
        NodeKind::Scalar(Scalar::Str(text)) if text.contains('$') => match expand(text, vars) {
            Ok((out, used)) => {
                if !used.is_empty() {
                    node.flex = Flex::Retypable { text: out.clone(), vars: used };
                }
                *text = out;
            }
            Err(msg) => errors.push(Diagnostic::at(node.location.clone(), Some(path.clone()), msg)),
        },
        NodeKind::Scalar(_) => {}
        NodeKind::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &path.index(i), vars, errors);
            }
        }
        NodeKind::Map(map) => {
            for (k, (_, v)) in map.iter_mut() {
                walk(v, &path.key(k), vars, errors);
            }
        }
    }
}

/// Expands one string; returns the result and the names of the variables it used.
pub fn expand(text: &str, vars: &Vars) -> Result<(String, Vec<String>), String> {
    let mut out = String::with_capacity(text.len());
    let mut used = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| format!("unterminated `${{` in {text:?}; write `$$` for a literal `$`"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!("`${{{expr}}}` is not a valid variable reference; names use letters, digits and `_`"));
            }
            let value = match (vars.get(name), default) {
                (Some(""), Some(d)) => d,
                (Some(v), _) => v,
                (None, Some(d)) => d,
                (None, None) => {
                    return Err(format!("environment variable `{name}` is not set (and not in .env); set it or write `${{{name}:-default}}`"));
                }
            };
            out.push_str(value);
            used.push(name.to_owned());
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok((out, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::default();
        v.env.insert("HOST".into(), "10.0.0.1".into());
        v.env.insert("BOTH".into(), "from-env".into());
        v.env.insert("EMPTY".into(), String::new());
        v.dotenv.insert("BOTH".into(), "from-dotenv".into());
        v.dotenv.insert("ONLY_DOTENV".into(), "d".into());
        v
    }

    #[test]
    fn expands_with_precedence_and_defaults() {
        let v = vars();
        assert_eq!(expand("redis://${HOST}:6379", &v).unwrap().0, "redis://10.0.0.1:6379");
        assert_eq!(expand("${BOTH}", &v).unwrap().0, "from-env");
        assert_eq!(expand("${ONLY_DOTENV}", &v).unwrap().0, "d");
        assert_eq!(expand("${NOPE:-fallback}", &v).unwrap().0, "fallback");
        assert_eq!(expand("${EMPTY:-fallback}", &v).unwrap().0, "fallback");
        assert_eq!(expand("cost $$5 and $x", &v).unwrap().0, "cost $5 and $x");
    }

    #[test]
    fn missing_variable_is_named() {
        let e = expand("${REDIS_PASSWORD}", &vars()).unwrap_err();
        assert!(e.contains("`REDIS_PASSWORD` is not set"), "{e}");
        assert!(expand("${oops", &vars()).unwrap_err().contains("unterminated"));
        assert!(expand("${1X}", &vars()).unwrap_err().contains("not a valid variable"));
    }
}
