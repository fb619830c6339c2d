//! The JSON Schema generated from the raw types, and the check of a document against it, with
//! every error turned into a located, readable message.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::node::{DocPath, Flex, Node, NodeKind, PathSegment, Scalar};
use super::raw::RawScenario;
use crate::units::{DURATION_PATTERN, SIZE_PATTERN, parse_duration, parse_size};

/// The scenario JSON Schema (draft-07, the draft editors support best).
pub fn schema() -> Value {
    let settings = schemars::generate::SchemaSettings::draft07();
    let schema = settings.into_generator().into_root_schema_for::<RawScenario>();
    let mut value = serde_json::to_value(schema).expect("a generated schema is valid JSON");
    describe_variant_keys(&mut value);
    bound_integers(&mut value);
    select_by_tag(&mut value);
    name_definitions(&mut value);
    value
}

/// schemars states an integer's width as a `format` (`uint32`), which validators need not check:
/// state it as a `maximum` too, so that every value too large for its field is reported, each at
/// its own place, by the schema check (rather than the first one only, later, at its parent).
fn bound_integers(node: &mut Value) {
    match node {
        Value::Object(map) => {
            let max: Option<u64> = match map.get("format").and_then(Value::as_str) {
                Some("uint8") => Some(u8::MAX.into()),
                Some("uint16") => Some(u16::MAX.into()),
                Some("uint32") => Some(u32::MAX.into()),
                Some("int32") => Some(i32::MAX as u64),
                Some("int64") => Some(i64::MAX as u64),
                _ => None,
            };
            if let Some(max) = max {
                map.entry("maximum").or_insert_with(|| Value::from(max));
            }
            map.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// A choice between variants told apart by a tag (`kind: list`, `action: failover`) becomes
/// `if kind is list then <list's schema>`, one per variant, instead of a `oneOf`. The tag then
/// selects exactly one branch, so validators and editors judge the value against the variant the
/// user chose: a misspelt key is reported as that (not as "matches none of eight schemas"), an
/// empty workload completes `kind` (not the options of all eight kinds), and values inside a
/// variant are checked at their own paths.
fn select_by_tag(node: &mut Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Array(branches)) = map.get("oneOf")
                && let Some((tag, values)) = tagged(branches)
            {
                let branches = branches.clone();
                map.remove("oneOf");
                let descriptions: Vec<Value> = branches.iter().map(|b| b.get("description").cloned().unwrap_or(Value::String(String::new()))).collect();
                let all_of: Vec<Value> = branches
                    .into_iter()
                    .zip(&values)
                    .map(|(branch, v)| serde_json::json!({ "if": { "properties": { (tag): { "const": v } }, "required": [tag] }, "then": branch }))
                    .collect();
                map.insert("type".into(), Value::String("object".into()));
                map.insert("required".into(), serde_json::json!([tag]));
                map.insert(
                        "properties".into(),
                        serde_json::json!({ (tag): { "description": format!("Which one: {}.", values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")), "type": "string", "enum": values, "enumDescriptions": descriptions } }),
                    );
                map.insert("allOf".into(), Value::Array(all_of));
            }
            map.values_mut().for_each(select_by_tag);
        }
        Value::Array(items) => items.iter_mut().for_each(select_by_tag),
        _ => {}
    }
}

/// The tag key and its values when every branch is an object whose tag property is a constant.
fn tagged(branches: &[Value]) -> Option<(&'static str, Vec<String>)> {
    TAGS.iter().find_map(|tag| {
        let values: Option<Vec<String>> = branches.iter().map(|b| b.get("properties")?.get(*tag)?.get("const")?.as_str().map(str::to_owned)).collect();
        values.filter(|v| !v.is_empty()).map(|v| (*tag, v))
    })
}

/// Definitions get the names people know them by (`phase`, not the type name `RawPhase`), which
/// editors show in completions and hovers, and a `title` saying the same.
fn name_definitions(root: &mut Value) {
    let Some(Value::Object(defs)) = root.get_mut("definitions") else { return };
    let renames: Vec<(String, String)> = defs.keys().map(|k| (k.clone(), definition_name(k))).collect();
    let old = std::mem::take(defs);
    for (k, mut v) in old {
        let name = definition_name(&k);
        if let Value::Object(m) = &mut v {
            m.entry("title").or_insert_with(|| Value::String(name.replace('_', " ")));
        }
        defs.insert(name, v);
    }
    fn fix_refs(node: &mut Value, renames: &[(String, String)]) {
        match node {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get_mut("$ref")
                    && let Some((_, new)) = renames.iter().find(|(old, _)| r.strip_prefix("#/definitions/") == Some(old.as_str()))
                {
                    *r = format!("#/definitions/{new}");
                }
                m.values_mut().for_each(|v| fix_refs(v, renames));
            }
            Value::Array(a) => a.iter_mut().for_each(|v| fix_refs(v, renames)),
            _ => {}
        }
    }
    fix_refs(root, &renames);
}

/// `RawKeyspaceOverride` → `keyspace_override`; the two ramps by what they ramp.
fn definition_name(type_name: &str) -> String {
    match type_name {
        "Ramp" => return "workers".into(),
        "Ramp2" => return "rate".into(),
        _ => {}
    }
    let bare = type_name.strip_prefix("Raw").unwrap_or(type_name);
    let mut out = String::new();
    for (i, c) in bare.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Tag keys (`kind: basic`, `action: failover`) and externally tagged variants (`zipf: {…}`) get no
/// description from schemars; editors show descriptions on hover, so give every property one.
fn describe_variant_keys(node: &mut Value) {
    match node {
        Value::Object(map) => {
            let variant_doc = map.get("description").and_then(Value::as_str).map(str::to_owned);
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                for (name, prop) in props.iter_mut() {
                    let Value::Object(p) = prop else { continue };
                    if p.contains_key("description") {
                        continue;
                    }
                    let text = match p.get("const").and_then(Value::as_str) {
                        Some(c) => format!("`{name}: {c}`: {}", variant_doc.clone().unwrap_or_default()),
                        None => variant_doc.clone().unwrap_or_else(|| format!("Options of `{name}`.")),
                    };
                    p.insert("description".into(), Value::String(text.trim_end_matches(": ").to_owned()));
                }
            }
            map.values_mut().for_each(describe_variant_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(describe_variant_keys),
        _ => {}
    }
}

fn validator() -> &'static (Validator, Value) {
    static V: OnceLock<(Validator, Value)> = OnceLock::new();
    V.get_or_init(|| {
        let schema = schema();
        let v = jsonschema::draft7::new(&schema).expect("the generated schema compiles");
        (v, schema)
    })
}

/// Checks the document against the schema, retyping `${VAR}` and `--set` values where the
/// schema wants another scalar type. Returns true when the document conforms.
pub fn check(root: &mut Node, diags: &mut Diagnostics) -> bool {
    let (validator, schema) = validator();
    for _ in 0..3 {
        let json = root.to_json();
        let paths: Vec<DocPath> = validator.iter_errors(&json).map(|e| DocPath::from_json_pointer(e.instance_path().as_str())).collect();
        if paths.is_empty() {
            return true;
        }
        let mut changed = false;
        for path in &paths {
            if let Some(node) = root.get_mut(path) {
                changed |= retype(node);
            }
        }
        if !changed {
            let json = root.to_json();
            for e in validator.iter_errors(&json) {
                explain(&e, root, schema, diags);
            }
            return false;
        }
    }
    let json = root.to_json();
    let mut ok = true;
    for e in validator.iter_errors(&json) {
        ok = false;
        explain(&e, root, schema, diags);
    }
    ok
}

/// Fills every required key a document lacks with a placeholder the schema accepts (tried in
/// turn: a duration, a number, a text, …), so that a document whose wrong values were taken out can
/// still be checked for the mistakes the schema cannot see. `variant` 0 and 1 use different
/// placeholders (small and large): a finding that holds with both does not come from them.
/// Returns whether the document now conforms.
pub fn fill_required(root: &mut Node, variant: usize) -> bool {
    let (validator, _) = validator();
    let placeholders = || {
        let set = if variant == 0 {
            [Scalar::Str("1s".into()), Scalar::Int(1), Scalar::Float(1.0), Scalar::Str("x".into()), Scalar::Bool(false)]
        } else {
            [Scalar::Str("1000h".into()), Scalar::Int(1000), Scalar::Float(1000.0), Scalar::Str("y".into()), Scalar::Bool(true)]
        };
        set.into_iter().map(NodeKind::Scalar).chain([NodeKind::Map(Default::default()), NodeKind::Seq(Vec::new())])
    };
    for _ in 0..8 {
        let json = root.to_json();
        let mut pending: Vec<(DocPath, String)> = validator
            .iter_errors(&json)
            .filter_map(|e| match e.kind() {
                ValidationErrorKind::Required { property } => Some((DocPath::from_json_pointer(e.instance_path().as_str()), property.as_str()?.to_owned())),
                _ => None,
            })
            .collect();
        if pending.is_empty() {
            return validator.is_valid(&json);
        }
        // One validation per kind of placeholder for all missing keys at once: linear, however
        // many there are.
        for kind in placeholders() {
            for (at, key) in &pending {
                let loc = root.locate(at);
                match root.get_mut(at) {
                    Some(Node { kind: NodeKind::Map(m), .. }) => {
                        m.insert(key.clone(), (loc.clone(), Node::new(kind.clone(), loc)));
                    }
                    _ => return false,
                }
            }
            let json = root.to_json();
            let errors: Vec<(DocPath, Option<String>)> = validator
                .iter_errors(&json)
                .map(|e| {
                    let required = match e.kind() {
                        ValidationErrorKind::Required { property } => property.as_str().map(str::to_owned),
                        _ => None,
                    };
                    (DocPath::from_json_pointer(e.instance_path().as_str()), required)
                })
                .collect();
            pending.retain(|(at, key)| {
                let here = at.key(key);
                errors.iter().any(|(p, req)| p.0.starts_with(&here.0) || (p == at && req.as_deref() == Some(key.as_str())))
            });
            if pending.is_empty() {
                break;
            }
        }
        if !pending.is_empty() {
            return false;
        }
    }
    false
}

/// Flips a retypable scalar between its text and its typed reading. Returns whether it changed.
fn retype(node: &mut Node) -> bool {
    let Flex::Retypable { text, .. } = &node.flex else { return false };
    let NodeKind::Scalar(current) = &node.kind else {
        // A `--set` value that parsed as a mapping or list where the schema wants a scalar.
        node.kind = NodeKind::Scalar(Scalar::Str(text.clone()));
        node.flex = Flex::Fixed;
        return true;
    };
    let next = match current {
        Scalar::Str(_) => Scalar::from_plain(text),
        _ => Scalar::Str(text.clone()),
    };
    if &next == current {
        return false;
    }
    node.kind = NodeKind::Scalar(next);
    node.flex = Flex::Fixed;
    true
}

/// Whether a value at this path must never be echoed in messages.
pub fn is_secret_path(path: &DocPath) -> bool {
    path.0.iter().any(|s| matches!(s, PathSegment::Key(k) if k == "password" || k == "headers" || k == "url"))
}

fn shown(value: &Value, path: &DocPath) -> String {
    if is_secret_path(path) {
        return "the value".into();
    }
    let s = match value {
        Value::String(s) => format!("`{s}`"),
        other => format!("`{other}`"),
    };
    if s.chars().count() > 60 { format!("{}…`", s.chars().take(58).collect::<String>()) } else { s }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn expected_types(kind: &TypeKind) -> Vec<String> {
    let name = |t: &dyn std::fmt::Display| match t.to_string().as_str() {
        "object" => "a mapping".to_owned(),
        "array" => "a list".to_owned(),
        "integer" => "an integer".to_owned(),
        other => format!("a {other}"),
    };
    match kind {
        TypeKind::Single(t) => vec![name(t)],
        TypeKind::Multiple(set) => set.iter().map(|t| name(&t)).collect(),
    }
}

fn with_context(e: &ValidationError<'_>) -> DocPath {
    DocPath::from_json_pointer(e.instance_path().as_str())
}

/// Turns one validator error into diagnostics (several for unknown keys and alternatives).
fn explain(e: &ValidationError<'_>, root: &Node, schema: &Value, diags: &mut Diagnostics) {
    let path = with_context(e);
    let instance: &Value = e.instance();
    let loc = root.locate(&path);
    let from_vars = match root.get(&path).map(|n| &n.flex) {
        Some(Flex::Retypable { vars, .. }) if !vars.is_empty() => {
            format!(" (the value came from {})", vars.iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(", "))
        }
        _ => String::new(),
    };
    let mut push = |p: DocPath, l, msg: String| diags.push(Diagnostic::at(l, Some(p), format!("{msg}{from_vars}")));
    let huge_integer = instance.as_str().is_some_and(|t| {
        let digits = t.strip_prefix('-').unwrap_or(t);
        digits.len() > 18 && digits.bytes().all(|b| b.is_ascii_digit())
    });
    match e.kind() {
        ValidationErrorKind::Type { .. } | ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } if huge_integer => {
            push(path, loc, "the number is too large".into());
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known = known_properties(schema, e.schema_path().as_str());
            for key in unexpected {
                let mut msg = format!("unknown key `{key}`");
                match suggest(key, known.iter().map(String::as_str)) {
                    Some(s) => msg.push_str(&format!("; did you mean `{s}`?")),
                    None if !known.is_empty() => msg.push_str(&format!("; expected one of: {}", known.join(", "))),
                    None => {}
                }
                push(path.key(key), root.locate_key(&path, key), msg);
            }
        }
        ValidationErrorKind::Required { property } => {
            let p = property.as_str().map_or_else(|| property.to_string(), str::to_owned);
            push(path, loc, format!("missing required key `{p}`"));
        }
        ValidationErrorKind::Type { .. } if schema_at(schema, e.schema_path().as_str()).get("pattern").and_then(Value::as_str) == Some(DURATION_PATTERN) => {
            push(path.clone(), loc, format!("a duration is text with a unit, e.g. `30s`, `250ms` or `5m`; found {}", shown(instance, &path)));
        }
        ValidationErrorKind::Type { kind } => {
            let expected = expected_types(kind).join(" or ");
            push(path.clone(), loc, format!("expected {expected}, found {} {}", type_name(instance), shown(instance, &path)));
        }
        ValidationErrorKind::Enum { options } => {
            let opts: Vec<String> =
                options.as_array().map(|a| a.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect()).unwrap_or_default();
            push(path.clone(), loc, bad_choice(instance, &path, &opts));
        }
        ValidationErrorKind::Constant { expected_value } => {
            push(path.clone(), loc, format!("expected `{expected_value}`, found {}", shown(instance, &path)));
        }
        ValidationErrorKind::Minimum { limit } => push(path.clone(), loc, format!("must be at least {limit}, found {}", shown(instance, &path))),
        ValidationErrorKind::Maximum { limit } => push(path.clone(), loc, format!("must be at most {limit}, found {}", shown(instance, &path))),
        ValidationErrorKind::ExclusiveMinimum { limit } => push(path.clone(), loc, format!("must be greater than {limit}, found {}", shown(instance, &path))),
        ValidationErrorKind::ExclusiveMaximum { limit } => push(path.clone(), loc, format!("must be less than {limit}, found {}", shown(instance, &path))),
        ValidationErrorKind::MinLength { limit: 1 } => push(path, loc, "must not be empty".into()),
        ValidationErrorKind::MinLength { limit } => push(path, loc, format!("must be at least {limit} characters long")),
        ValidationErrorKind::MaxLength { limit } => push(path, loc, format!("must be at most {limit} characters long")),
        ValidationErrorKind::MinItems { limit } | ValidationErrorKind::MinProperties { limit } => {
            push(path, loc, if *limit == 1 { "must not be empty".into() } else { format!("needs at least {limit} entries") })
        }
        ValidationErrorKind::Pattern { pattern } => {
            let text = instance.as_str().unwrap_or_default();
            let msg = if pattern == DURATION_PATTERN {
                parse_duration(text).err().unwrap_or_else(|| format!("`{text}` is not a duration like `30s`"))
            } else if pattern == SIZE_PATTERN {
                parse_size(text).err().unwrap_or_else(|| format!("`{text}` is not a size like `64B`"))
            } else {
                format!("{} does not match `{pattern}`", shown(instance, &path))
            };
            push(path, loc, msg);
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            explain_alternatives(&path, instance, context, root, schema, diags);
        }
        _ => push(path, loc, e.to_string()),
    }
}

/// Keys whose mismatch means "this is a different variant", not "this variant is wrong".
const TAGS: [&str; 2] = ["kind", "action"];

/// A value that matched none of several alternatives: find the one the user meant and explain that.
fn explain_alternatives(path: &DocPath, instance: &Value, context: &[Vec<ValidationError<'static>>], root: &Node, schema: &Value, diags: &mut Diagnostics) {
    let is_shape_mismatch = |e: &ValidationError<'_>| {
        let p = with_context(e);
        let at_base = &p == path;
        let at_tag = p.0.len() == path.0.len() + 1 && p.0.starts_with(&path.0) && p.last_key().is_some_and(|k| TAGS.contains(&k));
        (at_base && matches!(e.kind(), ValidationErrorKind::Type { .. } | ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. }))
            || (at_tag && matches!(e.kind(), ValidationErrorKind::Constant { .. } | ValidationErrorKind::Enum { .. }))
            || (at_base && matches!(e.kind(), ValidationErrorKind::Required { property } if property.as_str().is_some_and(|k| TAGS.contains(&k))))
    };
    let best = context.iter().filter(|branch| !branch.iter().any(is_shape_mismatch)).min_by_key(|branch| branch.len());
    if let Some(branch) = best {
        for e in branch {
            explain(e, root, schema, diags);
        }
        return;
    }
    // No alternative fits the shape: say which tag values or shapes would.
    let mut tag_values = Vec::new();
    let mut tag_path = None;
    let mut shapes = Vec::new();
    for e in context.iter().flatten() {
        let p = with_context(e);
        match e.kind() {
            ValidationErrorKind::Constant { expected_value } if &p != path => {
                tag_values.push(expected_value.as_str().map_or_else(|| expected_value.to_string(), str::to_owned));
                tag_path = Some(p);
            }
            ValidationErrorKind::Enum { options } if &p == path => {
                shapes.extend(options.as_array().into_iter().flatten().map(|v| format!("`{}`", v.as_str().unwrap_or_default())));
            }
            ValidationErrorKind::Type { kind } if &p == path => shapes.extend(expected_types(kind)),
            ValidationErrorKind::Constant { expected_value } => shapes.push(format!("`{}`", expected_value.as_str().unwrap_or_default())),
            _ => {}
        }
    }
    if let Some(tp) = tag_path {
        let found = root.get(&tp).map(Node::to_json).unwrap_or(Value::Null);
        let msg = bad_choice(&found, &tp, &tag_values);
        diags.push(Diagnostic::at(root.locate(&tp), Some(tp), msg));
        return;
    }
    if context.iter().flatten().any(|e| matches!(e.kind(), ValidationErrorKind::Required { property } if property.as_str().is_some_and(|k| TAGS.contains(&k))))
    {
        diags.push(Diagnostic::at(
            root.locate(path),
            Some(path.clone()),
            format!(
                "missing required key `{}`",
                TAGS.iter()
                    .find(|t| context.iter().flatten().any(|e| matches!(e.kind(), ValidationErrorKind::Required { property } if property.as_str() == Some(t))))
                    .unwrap_or(&"kind")
            ),
        ));
        return;
    }
    shapes.dedup();
    let msg = format!("expected {}, found {} {}", shapes.join(" or "), type_name(instance), shown(instance, path));
    diags.push(Diagnostic::at(root.locate(path), Some(path.clone()), msg));
}

fn bad_choice(found: &Value, path: &DocPath, options: &[String]) -> String {
    let text = found.as_str().unwrap_or_default();
    let mut msg = format!("{} is not one of: {}", shown(found, path), options.join(", "));
    let alias = alias(text).filter(|a| options.iter().any(|o| o == a));
    if let Some(s) = alias.or_else(|| suggest(text, options.iter().map(String::as_str))) {
        msg.push_str(&format!("; did you mean `{s}`?"));
    }
    msg
}

/// What people call our choices elsewhere (Redis' own type names, other tools' words): `zset` is a
/// `sorted_set`, not the `set` that spelling alone would suggest.
fn alias(word: &str) -> Option<&'static str> {
    const ALIASES: [(&str, &str); 34] = [
        ("zset", "sorted_set"),
        ("zsets", "sorted_set"),
        ("sortedset", "sorted_set"),
        ("sorted-set", "sorted_set"),
        ("sorted_sets", "sorted_set"),
        ("leaderboard", "sorted_set"),
        ("hashes", "hash"),
        ("hashmap", "hash"),
        ("map", "hash"),
        ("lists", "list"),
        ("queue", "list"),
        ("sets", "set"),
        ("string", "basic"),
        ("strings", "basic"),
        ("kv", "basic"),
        ("get_set", "basic"),
        ("pub_sub", "pubsub"),
        ("pub-sub", "pubsub"),
        ("publish", "pubsub"),
        ("pipelines", "pipeline"),
        ("pipelined", "pipeline"),
        ("batch", "pipeline"),
        ("transaction", "pipeline"),
        ("multi", "pipeline"),
        ("highthroughput", "high_throughput"),
        ("high-throughput", "high_throughput"),
        ("throughput", "high_throughput"),
        ("benchmark", "high_throughput"),
        ("kill", "client_kill"),
        ("pause", "client_pause"),
        ("sleep", "debug_sleep"),
        ("rampup", "ramp_up"),
        ("ramp-up", "ramp_up"),
        ("cool_down", "cooldown"),
    ];
    let w = word.to_ascii_lowercase();
    ALIASES.iter().find(|(a, _)| *a == w).map(|(_, to)| *to)
}

/// The schema object an error's keyword sits in (its `schema_path` minus the keyword), `$ref`s followed.
fn schema_at<'s>(schema: &'s Value, schema_path: &str) -> &'s Value {
    let follow = |node: &'s Value| -> Option<&'s Value> {
        let r = node.get("$ref")?.as_str()?.strip_prefix("#/")?;
        Some(r.split('/').fold(schema, |n, s| n.get(s).unwrap_or(&Value::Null)))
    };
    let segments: Vec<&str> = schema_path.split('/').skip(1).collect();
    let mut node = schema;
    for seg in segments.iter().take(segments.len().saturating_sub(1)) {
        node = if *seg == "$ref" {
            follow(node).unwrap_or(&Value::Null)
        } else {
            match node {
                Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)).unwrap_or(&Value::Null),
                other => other.get(*seg).unwrap_or(&Value::Null),
            }
        };
    }
    follow(node).unwrap_or(node)
}

/// Property names allowed where an `additionalProperties` error was raised.
fn known_properties(schema: &Value, schema_path: &str) -> Vec<String> {
    schema_at(schema, schema_path)
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().filter(|k| !k.starts_with('$')).cloned().collect())
        .unwrap_or_default()
}

/// The closest candidate by edit distance, when it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_property_has_a_description() {
        fn walk(n: &Value, path: &str, missing: &mut Vec<String>) {
            match n {
                Value::Object(m) => {
                    if let Some(Value::Object(props)) = m.get("properties") {
                        for (k, v) in props {
                            if v.get("description").and_then(Value::as_str).is_none_or(str::is_empty) {
                                missing.push(format!("{path}.{k}"));
                            }
                        }
                    }
                    // `if` conditions select a variant; editors never offer their properties.
                    for (k, v) in m.iter().filter(|(k, _)| *k != "if") {
                        walk(v, &format!("{path}/{k}"), missing);
                    }
                }
                Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| walk(v, &format!("{path}/{i}"), missing)),
                _ => {}
            }
        }
        let mut missing = Vec::new();
        walk(&schema(), "", &mut missing);
        assert!(missing.is_empty(), "properties without a description: {missing:?}");
    }

    #[test]
    fn suggestions_catch_typos_only() {
        let keys = ["workers", "duration", "rate", "mix"];
        assert_eq!(suggest("wokers", keys.into_iter()), Some("workers"));
        assert_eq!(suggest("durtion", keys.into_iter()), Some("duration"));
        assert_eq!(suggest("banana", keys.into_iter()), None);
    }
}
