//! Command templates of `custom` workloads, read once at validation: a command line split by
//! redis-cli's quoting rules (or the argument list as written), each argument cut into literal
//! bytes and placeholders. Rendering them is the workload's business (`workload::custom`); this
//! module only says what a template means, or precisely why it means nothing.

use crate::command::intern;

/// Largest `{data:N}` (the scenario's value size limit).
const MAX_DATA: u64 = 64 * 1024 * 1024;

/// One piece of an argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes sent as written.
    Literal(Vec<u8>),
    /// The round trip's key index (`{key}`, `__key__`), drawn by the keyspace's distribution.
    Key,
    /// The key index as a hash tag, `{17}`: keys that carry it share a cluster slot.
    Tag,
    /// A random value: the keyspace's value size, or N bytes.
    Data(Option<u64>),
    /// A uniform number in 0..N.
    Rand(u64),
    /// This worker's next number of a sequence, modulo N.
    Seq(u64),
    /// Microseconds since the Unix epoch when the command is written.
    NowMicros,
    /// The SHA1 of the named script.
    Script(String),
}

/// One argument of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgTemplate {
    /// Pieces written one after the other.
    Pieces(Vec<Piece>),
    /// `{range:N:W}`: two arguments, a number in 0..N and that number plus W.
    Range(u64, u64),
}

impl ArgTemplate {
    /// Whether the argument never changes (the command name, a literal key).
    pub fn literal(&self) -> Option<&[u8]> {
        match self {
            ArgTemplate::Pieces(p) if p.is_empty() => Some(b""),
            ArgTemplate::Pieces(p) => match p.as_slice() {
                [Piece::Literal(b)] => Some(b),
                _ => None,
            },
            ArgTemplate::Range(..) => None,
        }
    }

    /// Arguments it becomes on the wire (a range is two).
    pub fn width(&self) -> usize {
        match self {
            ArgTemplate::Range(..) => 2,
            ArgTemplate::Pieces(_) => 1,
        }
    }
}

/// A command template, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The operation it is counted under (its `name`, else the command's name).
    pub name: String,
    /// The command as INFO commandstats names it: `HSET`, `XINFO|GROUPS`.
    pub stats_name: String,
    /// Relative weight (1 when not given).
    pub weight: f64,
    /// The arguments after the command's name.
    pub args: Vec<ArgTemplate>,
    /// The command's name as written (first argument).
    pub command: Vec<u8>,
    /// Key positions named in the file (1 = first argument after the name), if any.
    pub keys: Option<Vec<u32>>,
    /// Where the template is written, `file:line:column`, for errors found at connect time.
    pub at: String,
}

impl Template {
    /// Wire positions (1 = first argument after the name) of each template argument: a range
    /// takes two.
    pub fn wire_positions(&self) -> Vec<usize> {
        let mut at = 1;
        self.args
            .iter()
            .map(|a| {
                let p = at;
                at += a.width();
                p
            })
            .collect()
    }

    /// Number of arguments on the wire, the name included.
    pub fn wire_len(&self) -> usize {
        1 + self.args.iter().map(ArgTemplate::width).sum::<usize>()
    }
}

/// Commands that would change the connection the pool hands to the next operation, leave the
/// key prefix, or stop the server: refused by name.
const REFUSED: [(&str, &str); 33] = [
    ("AUTH", "connections authenticate as `target` says"),
    ("HELLO", "the protocol is `connections.protocol`"),
    ("SELECT", "the database is `target.database`"),
    ("QUIT", "it closes the pooled connection"),
    ("RESET", "it resets the pooled connection"),
    ("MULTI", "use `transaction: true`"),
    ("EXEC", "use `transaction: true`"),
    ("DISCARD", "use `transaction: true`"),
    ("WATCH", "a watch outlives the round trip on a pooled connection"),
    ("UNWATCH", "a watch outlives the round trip on a pooled connection"),
    ("SUBSCRIBE", "use a `pubsub` workload"),
    ("PSUBSCRIBE", "use a `pubsub` workload"),
    ("SSUBSCRIBE", "use a `pubsub` workload"),
    ("UNSUBSCRIBE", "use a `pubsub` workload"),
    ("PUNSUBSCRIBE", "use a `pubsub` workload"),
    ("SUNSUBSCRIBE", "use a `pubsub` workload"),
    ("MONITOR", "it takes the connection over"),
    ("SYNC", "it takes the connection over"),
    ("PSYNC", "it takes the connection over"),
    ("CLIENT", "it changes or kills connections (use a `client_kill` fault)"),
    ("CONFIG", "it changes the server"),
    ("DEBUG", "it changes the server (use a fault)"),
    ("SHUTDOWN", "it stops the server (use a `restart` fault)"),
    ("FLUSHALL", "it deletes keys outside the prefix"),
    ("FLUSHDB", "it deletes keys outside the prefix"),
    ("SWAPDB", "it moves keys outside the prefix"),
    ("KEYS", "it reads the whole keyspace"),
    ("REPLICAOF", "it changes the deployment"),
    ("SLAVEOF", "it changes the deployment"),
    ("FAILOVER", "it changes the deployment (use a `failover` fault)"),
    ("CLUSTER", "it changes the deployment"),
    ("SCRIPT", "declare scripts under `scripts:`"),
    ("FUNCTION", "it changes the server's libraries"),
];

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// Which part of the template the error is about.
    pub at: ErrorAt,
    /// What is wrong.
    pub message: String,
}

/// The part of a template an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAt {
    /// The command as a whole.
    Command,
    /// One argument (0 = the command's name).
    Arg(usize),
    /// Its `name`.
    Name,
    /// Its `keys`.
    Keys,
}

fn err(at: ErrorAt, message: impl Into<String>) -> TemplateError {
    TemplateError { at, message: message.into() }
}

/// Reads a template from its arguments (`args` form, or a split command line). `scripts` are
/// the names `{script:NAME}` may use; `keys` is the keyspace size (for `__rand_int__`).
pub fn parse(
    raw_args: &[Vec<u8>],
    name: Option<&str>,
    weight: Option<f64>,
    keys: Option<Vec<u32>>,
    scripts: &[&str],
    at: String,
) -> Result<Template, TemplateError> {
    let Some((command, rest)) = raw_args.split_first() else {
        return Err(err(ErrorAt::Command, "a command needs at least its name"));
    };
    if command.is_empty() || !command.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'|')) {
        return Err(err(
            ErrorAt::Arg(0),
            format!("`{}` is not a command name: the name is written as it is, without placeholders", String::from_utf8_lossy(command)),
        ));
    }
    let upper = String::from_utf8_lossy(command).to_ascii_uppercase();
    if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == upper) {
        return Err(err(ErrorAt::Arg(0), format!("{upper} cannot be a custom command: {why}")));
    }
    let mut args = Vec::with_capacity(rest.len());
    for (i, a) in rest.iter().enumerate() {
        args.push(parse_arg(a, scripts).map_err(|m| err(ErrorAt::Arg(i + 1), m))?);
    }
    let stats_name = crate::command::stats_name(command, args.first().and_then(ArgTemplate::literal));
    let name = match name {
        Some(n) if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '|')) => {
            return Err(err(ErrorAt::Name, format!("operation name `{n}` may only use letters, digits, `_`, `-`, `.` and `|` (it becomes a metric label)")));
        }
        Some(n) => n.to_owned(),
        None => stats_name.clone(),
    };
    let wire = 1 + args.iter().map(ArgTemplate::width).sum::<usize>();
    if let Some(k) = &keys
        && let Some(bad) = k.iter().find(|p| **p == 0 || **p as usize >= wire)
    {
        return Err(err(ErrorAt::Keys, format!("key position {bad} is not an argument of this command (1 to {} are)", wire - 1)));
    }
    Ok(Template { name, stats_name, weight: weight.unwrap_or(1.0), args, command: command.clone(), keys, at })
}

/// Cuts one argument into pieces.
pub fn parse_arg(a: &[u8], scripts: &[&str]) -> Result<ArgTemplate, String> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut lit: Vec<u8> = Vec::new();
    let mut i = 0;
    // memtier's and redis-benchmark's placeholders, as they write them.
    const ALIASES: [(&[u8], Piece); 2] = [(b"__key__", Piece::Key), (b"__data__", Piece::Data(None))];
    while i < a.len() {
        if a[i..].starts_with(b"{{") {
            lit.push(b'{');
            i += 2;
            continue;
        }
        if a[i..].starts_with(b"__rand_int__") {
            flush(&mut lit, &mut pieces);
            pieces.push(Piece::Key);
            i += b"__rand_int__".len();
            continue;
        }
        if let Some((alias, piece)) = ALIASES.iter().find(|(al, _)| a[i..].starts_with(al)) {
            flush(&mut lit, &mut pieces);
            pieces.push(piece.clone());
            i += alias.len();
            continue;
        }
        if a[i] != b'{' {
            lit.push(a[i]);
            i += 1;
            continue;
        }
        let Some(len) = a[i + 1..].iter().position(|b| *b == b'}') else {
            return Err(format!("`{}`: a `{{` opens a placeholder that is never closed (write `{{{{` for a literal `{{`)", show(a)));
        };
        let inner = String::from_utf8_lossy(&a[i + 1..i + 1 + len]).into_owned();
        let whole = i == 0 && i + len + 2 == a.len();
        flush(&mut lit, &mut pieces);
        match placeholder(&inner, scripts)? {
            Placeholder::Piece(p) => pieces.push(p),
            Placeholder::Range(n, w) if whole => return Ok(ArgTemplate::Range(n, w)),
            Placeholder::Range(..) => return Err(format!("`{{{inner}}}` becomes two arguments, so it must be a whole argument, not part of `{}`", show(a))),
        }
        i += len + 2;
    }
    flush(&mut lit, &mut pieces);
    Ok(ArgTemplate::Pieces(pieces))
}

fn flush(lit: &mut Vec<u8>, pieces: &mut Vec<Piece>) {
    if !lit.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(lit)));
    }
}

enum Placeholder {
    Piece(Piece),
    Range(u64, u64),
}

/// Every placeholder's name, for suggestions.
const NAMES: [&str; 9] = ["key", "tag", "data", "rand", "seq", "range", "now_us", "script", "{"];

fn placeholder(inner: &str, scripts: &[&str]) -> Result<Placeholder, String> {
    let mut parts = inner.split(':');
    let head = parts.next().unwrap_or_default();
    let params: Vec<&str> = parts.collect();
    let number = |s: &str, what: &str, min: u64, max: u64| -> Result<u64, String> {
        match crate::units::parse_size(s).ok().or_else(|| s.parse().ok()) {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!("`{{{inner}}}`: {what} must be a whole number from {min} to {max}, not `{s}`")),
        }
    };
    let arity = |n: usize, form: &str| -> Result<(), String> { if params.len() == n { Ok(()) } else { Err(format!("`{{{inner}}}`: write it as `{form}`")) } };
    Ok(Placeholder::Piece(match head {
        "key" => {
            arity(0, "{key}")?;
            Piece::Key
        }
        "tag" => {
            arity(0, "{tag}")?;
            Piece::Tag
        }
        "now_us" => {
            arity(0, "{now_us}")?;
            Piece::NowMicros
        }
        "data" if params.is_empty() => Piece::Data(None),
        "data" => {
            arity(1, "{data:N}")?;
            Piece::Data(Some(number(params[0], "the size", 1, MAX_DATA)?))
        }
        "rand" => {
            arity(1, "{rand:N}")?;
            Piece::Rand(number(params[0], "N", 1, u64::MAX / 2)?)
        }
        "seq" => {
            arity(1, "{seq:N}")?;
            Piece::Seq(number(params[0], "N", 1, u64::MAX / 2)?)
        }
        "range" => {
            arity(2, "{range:N:W}")?;
            return Ok(Placeholder::Range(number(params[0], "N", 1, u64::MAX / 4)?, number(params[1], "W", 0, u64::MAX / 4)?));
        }
        "script" => {
            arity(1, "{script:NAME}")?;
            if !scripts.contains(&params[0]) {
                let known =
                    if scripts.is_empty() { "no scripts are declared under `scripts:`".to_owned() } else { format!("declared: {}", scripts.join(", ")) };
                return Err(format!("`{{{inner}}}`: no script named `{}` ({known})", params[0]));
            }
            Piece::Script(params[0].to_owned())
        }
        other => {
            let hint = crate::scenario::schema::suggest(other, NAMES.iter().copied()).map(|s| format!("; did you mean `{{{s}}}`?")).unwrap_or_default();
            return Err(format!(
                "`{{{inner}}}` is not a placeholder (known: {{key}}, {{tag}}, {{data}}, {{data:N}}, {{rand:N}}, {{seq:N}}, {{range:N:W}}, {{now_us}}, {{script:NAME}}; `{{{{` is a literal `{{`){hint}"
            ));
        }
    }))
}

fn show(a: &[u8]) -> String {
    crate::units::escape_control(&String::from_utf8_lossy(a))
}

/// Splits a command line the way redis-cli does (`sdssplitargs`): words separated by spaces;
/// "double quotes" with `\n`, `\r`, `\t`, `\b`, `\a`, `\\`, `\"` and `\xHH`; 'single quotes'
/// with `\'` only. A closing quote must be followed by a space or the end.
pub fn split_command_line(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == b.len() {
            return Ok(out);
        }
        let mut cur = Vec::new();
        let (mut dq, mut sq) = (false, false);
        loop {
            if dq {
                match b.get(i) {
                    None => return Err("unbalanced double quotes".into()),
                    Some(b'\\') if b.get(i + 1) == Some(&b'x') && b.get(i + 2..i + 4).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) => {
                        cur.push(u8::from_str_radix(std::str::from_utf8(&b[i + 2..i + 4]).unwrap_or("0"), 16).unwrap_or(0));
                        i += 3;
                    }
                    Some(b'\\') if i + 1 < b.len() => {
                        i += 1;
                        cur.push(match b[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if b.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace()) {
                            return Err("a closing double quote must be followed by a space".into());
                        }
                        i += 1;
                        break;
                    }
                    Some(c) => cur.push(*c),
                }
            } else if sq {
                match b.get(i) {
                    None => return Err("unbalanced single quotes".into()),
                    Some(b'\\') if b.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if b.get(i + 1).is_some_and(|c| !c.is_ascii_whitespace()) {
                            return Err("a closing single quote must be followed by a space".into());
                        }
                        i += 1;
                        break;
                    }
                    Some(c) => cur.push(*c),
                }
            } else {
                match b.get(i) {
                    None => break,
                    Some(c) if c.is_ascii_whitespace() => break,
                    Some(b'"') => dq = true,
                    Some(b'\'') => sq = true,
                    Some(c) => cur.push(*c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

/// The operation name a raw template is counted under (its `name`, else the command's name as
/// INFO commandstats writes it), interned: operation names live as long as the process.
pub fn op_name(t: &super::raw::CommandTemplate) -> &'static str {
    if let Some(n) = &t.name {
        return intern(n);
    }
    let args: Vec<Vec<u8>> = match (&t.command, &t.args) {
        (Some(line), _) => split_command_line(line).unwrap_or_default(),
        (None, Some(a)) => a.iter().map(|s| s.as_bytes().to_vec()).collect(),
        (None, None) => Vec::new(),
    };
    let Some(first) = args.first() else { return intern("?") };
    // The subcommand as `parse` reads it: only a literal one names the command.
    let sub = args.get(1).and_then(|a| parse_arg(a, &[]).ok()).and_then(|a| a.literal().map(<[u8]>::to_vec));
    intern(&crate::command::stats_name(first, sub.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        split_command_line(line).unwrap().into_iter().map(|a| String::from_utf8(a).unwrap()).collect()
    }

    #[test]
    fn command_lines_split_as_redis_cli_splits_them() {
        assert_eq!(args("HSET cart:{key}  item \"a b\" 'c d'"), ["HSET", "cart:{key}", "item", "a b", "c d"]);
        assert_eq!(args(r#"SET k "\x41\n\"" 'it\'s'"#), ["SET", "k", "A\n\"", "it's"]);
        assert_eq!(args("  "), Vec::<String>::new());
        assert!(split_command_line("SET \"k").is_err());
        assert!(split_command_line("SET 'k'x").is_err());
    }

    fn one(a: &str) -> Result<ArgTemplate, String> {
        parse_arg(a.as_bytes(), &["bump"])
    }

    #[test]
    fn placeholders_are_read_and_misspellings_refused() {
        use Piece::*;
        assert_eq!(one("cart:{key}"), Ok(ArgTemplate::Pieces(vec![Literal(b"cart:".to_vec()), Key])));
        assert_eq!(one("{data:48}"), Ok(ArgTemplate::Pieces(vec![Data(Some(48))])));
        assert_eq!(one("{data:1KiB}"), Ok(ArgTemplate::Pieces(vec![Data(Some(1024))])));
        assert_eq!(
            one("x{tag}{rand:50}{seq:9}{now_us}{script:bump}"),
            Ok(ArgTemplate::Pieces(vec![Literal(b"x".to_vec()), Tag, Rand(50), Seq(9), NowMicros, Script("bump".into())]))
        );
        assert_eq!(one("{range:1000:50}"), Ok(ArgTemplate::Range(1000, 50)));
        assert_eq!(one("k:__key__:__data__"), Ok(ArgTemplate::Pieces(vec![Literal(b"k:".to_vec()), Key, Literal(b":".to_vec()), Data(None)])));
        assert_eq!(one("key:__rand_int__"), Ok(ArgTemplate::Pieces(vec![Literal(b"key:".to_vec()), Key])));
        assert_eq!(one("{{literal}"), Ok(ArgTemplate::Pieces(vec![Literal(b"{literal}".to_vec())])));
        assert!(one("{kye}").unwrap_err().contains("did you mean `{key}`"));
        assert!(one("{rand}").unwrap_err().contains("{rand:N}"));
        assert!(one("{rand:0}").is_err());
        assert!(one("{data:lots}").is_err());
        assert!(one("{script:other}").unwrap_err().contains("declared: bump"));
        assert!(one("a{range:5:1}").unwrap_err().contains("whole argument"));
        assert!(one("{key").unwrap_err().contains("never closed"));
    }

    #[test]
    fn templates_name_their_operation_and_refuse_what_leaves_the_prefix() {
        let t = |line: &str| parse(&split_command_line(line).unwrap(), None, None, None, &[], "f:1:1".into());
        let h = t("hset cart:{key} f {data}").unwrap();
        assert_eq!((h.name.as_str(), h.stats_name.as_str(), h.wire_len()), ("HSET", "HSET", 4));
        assert_eq!(t("XINFO GROUPS s").unwrap().stats_name, "XINFO|GROUPS");
        assert_eq!(t("ZRANGEBYSCORE board {range:10:2}").unwrap().wire_positions(), [1, 2]);
        assert_eq!(t("ZRANGEBYSCORE board {range:10:2}").unwrap().wire_len(), 4);
        for bad in ["FLUSHALL", "select 1", "MULTI", "CONFIG SET x y", "{key} x"] {
            let e = t(bad).unwrap_err();
            assert_eq!(e.at, ErrorAt::Arg(0), "{bad}: {e:?}");
        }
        let k = parse(&split_command_line("MYMOD.CMD a b").unwrap(), None, None, Some(vec![3]), &[], String::new()).unwrap_err();
        assert!(k.message.contains("1 to 2") && k.at == ErrorAt::Keys, "{k:?}");
        let n = parse(&split_command_line("GET a").unwrap(), Some("x y"), None, None, &[], String::new()).unwrap_err();
        assert_eq!(n.at, ErrorAt::Name, "{n:?}");
    }
}
