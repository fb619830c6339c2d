//! RESP2/RESP3 on the wire: commands are written straight into a reusable buffer, replies are
//! parsed from the read buffer without copying more than the values themselves.

use std::borrow::Cow;
use std::fmt::Write as _;

/// A reply from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Null bulk / null array / RESP3 null.
    Nil,
    /// `+OK` and other simple strings (the common ones without allocating).
    Status(Cow<'static, str>),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// An integer.
    Int(i64),
    /// A RESP3 double.
    Double(f64),
    /// A RESP3 boolean.
    Bool(bool),
    /// An array, set or push message.
    Array(Vec<Value>),
    /// A RESP3 map, as key/value pairs.
    Map(Vec<(Value, Value)>),
    /// An error reply, e.g. `WRONGTYPE Operation against a key…`.
    Error(String),
    /// A RESP3 out-of-band push (pub/sub messages under RESP3).
    Push(Vec<Value>),
}

impl Value {
    /// The error class: the first word of an error reply (`WRONGTYPE`, `MOVED`, `ERR`, …).
    pub fn error_class(&self) -> Option<&str> {
        match self {
            Value::Error(msg) => Some(msg.split_whitespace().next().unwrap_or("ERR")),
            _ => None,
        }
    }

    /// The bytes of a bulk or status reply.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Status(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
}

/// Appends one command (`*argc` then each argument as a bulk string) to `buf`.
pub struct CommandWriter<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> CommandWriter<'a> {
    /// Starts a command with `argc` arguments (the command name included).
    pub fn new(buf: &'a mut Vec<u8>, argc: usize) -> Self {
        push_header(buf, b'*', argc as u64);
        Self { buf }
    }

    /// Starts a command whose name is already encoded as a bulk string (`$3\r\nGET\r\n`), with
    /// `argc` arguments besides it: one copy for the name instead of four writes.
    pub fn with_name(buf: &'a mut Vec<u8>, bulk_name: &[u8], argc: usize) -> Self {
        push_header(buf, b'*', argc as u64 + 1);
        buf.extend_from_slice(bulk_name);
        Self { buf }
    }

    /// Starts a command whose count and name are already encoded in `head` (see
    /// [`Command::head`](crate::command::Command::head)).
    pub fn with_head(buf: &'a mut Vec<u8>, head: &Short) -> Self {
        head.push_to(buf);
        Self { buf }
    }

    /// Appends a key argument, `prefix` then the decimal `index`, written in place (the same
    /// bytes as `arg` of the key spelt out).
    pub fn key(self, prefix: &Short, index: u64) -> Self {
        let mut tmp = [0u8; 24];
        let digits = digits_into(&mut tmp, 0, index);
        tmp[digits] = b'\r';
        tmp[digits + 1] = b'\n';
        push_header(self.buf, b'$', (prefix.len as usize + digits) as u64);
        prefix.push_to(self.buf);
        push_prefix(self.buf, &tmp, digits + 2);
        self
    }

    /// Appends one argument made of the first `head_len` bytes of `head` and then `rest` (a
    /// stamped value: its stamp, then filler), written in place.
    pub fn arg_joined(self, head: &[u8; 16], head_len: usize, rest: &[u8]) -> Self {
        push_header(self.buf, b'$', (head_len + rest.len()) as u64);
        push_prefix(self.buf, head, head_len);
        self.buf.extend_from_slice(rest);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Appends one argument.
    pub fn arg(self, bytes: &[u8]) -> Self {
        push_header(self.buf, b'$', bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
        self.buf.extend_from_slice(b"\r\n");
        self
    }

    /// Appends an integer argument.
    pub fn int(self, n: i64) -> Self {
        let mut tmp = [0u8; 24];
        let sign = usize::from(n < 0);
        tmp[0] = b'-';
        let len = sign + digits_into(&mut tmp, sign, n.unsigned_abs());
        self.arg(&tmp[..len])
    }

    /// Appends a floating-point argument.
    pub fn float(self, x: f64) -> Self {
        let mut s = String::with_capacity(24);
        let _ = write!(s, "{x}");
        self.arg(s.as_bytes())
    }
}

/// Encodes a whole command from string arguments (for rare commands outside the hot path).
pub fn command(buf: &mut Vec<u8>, args: &[&[u8]]) {
    let mut w = CommandWriter::new(buf, args.len());
    for a in args {
        w = w.arg(a);
    }
}

/// `bytes` as a RESP bulk string (`$3\r\nGET\r\n`): a command name encoded once, to start commands
/// with [`CommandWriter::with_name`].
pub fn bulk_string(bytes: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(bytes.len() + 24);
    push_header(&mut b, b'$', bytes.len() as u64);
    b.extend_from_slice(bytes);
    b.extend_from_slice(b"\r\n");
    b
}

/// Appends the decimal digits of `n` without allocating (the one integer formatter of the hot path).
pub fn push_decimal(buf: &mut Vec<u8>, n: u64) {
    let mut tmp = [0u8; 24];
    let digits = digits_into(&mut tmp, 0, n);
    push_prefix(buf, &tmp, digits);
}

/// Appends a RESP header line: `tag`, the decimal `n`, CRLF (`$32\r\n`, `*3\r\n`). Lengths and
/// counts below 100 — nearly every header a workload writes — take a copy of a few constant
/// bytes; larger ones go through [`digits_into`].
#[inline(always)]
fn push_header(buf: &mut Vec<u8>, tag: u8, n: u64) {
    if n < 10 {
        buf.extend_from_slice(&[tag, b'0' + n as u8, b'\r', b'\n']);
    } else if n < 100 {
        let pair = &DIGIT_PAIRS[2 * n as usize..2 * n as usize + 2];
        buf.extend_from_slice(&[tag, pair[0], pair[1], b'\r', b'\n']);
    } else {
        push_long_header(buf, tag, n);
    }
}

/// [`push_header`] of 100 and more.
#[inline(never)]
fn push_long_header(buf: &mut Vec<u8>, tag: u8, n: u64) {
    let mut tmp = [0u8; 24];
    tmp[0] = tag;
    let end = 1 + digits_into(&mut tmp, 1, n);
    tmp[end] = b'\r';
    tmp[end + 1] = b'\n';
    push_prefix(buf, &tmp, end + 2);
}

/// `"00"` to `"99"`, back to back: two digits per lookup.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes the decimal digits of `n` into `tmp` from `at`; returns how many. Two digits per step
/// from [`DIGIT_PAIRS`], from the right.
#[inline]
fn digits_into(tmp: &mut [u8; 24], at: usize, mut n: u64) -> usize {
    let digits = n.checked_ilog10().map_or(1, |d| d as usize + 1);
    let mut end = at + digits;
    while n >= 100 {
        let pair = 2 * (n % 100) as usize;
        n /= 100;
        tmp[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
        end -= 2;
    }
    if n >= 10 {
        let pair = 2 * n as usize;
        tmp[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else {
        tmp[end - 1] = b'0' + n as u8;
    }
    digits
}

/// Appends the first `len` bytes of `tmp`. Why not `extend_from_slice(&tmp[..len])`: a copy of
/// a length known only at run time is a call to `memcpy`, and encoding a command made a dozen of
/// them (a tenth of all instructions at pipeline depth 16, under callgrind); copying all 24 bytes
/// is a few inlined stores, and the length is then cut back.
fn push_prefix<const N: usize>(buf: &mut Vec<u8>, tmp: &[u8; N], len: usize) {
    let at = buf.len();
    buf.extend_from_slice(tmp);
    buf.truncate(at + len);
}

/// A byte string of at most 32 bytes kept in a fixed-size array, so that appending it is a copy
/// of a constant size (two vector stores and a length cut back), not a call to `memcpy`: the
/// command names and key prefixes written on the hot path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short {
    bytes: [u8; 32],
    len: u8,
}

impl Short {
    /// `bytes`, when they fit.
    pub fn new(bytes: &[u8]) -> Option<Short> {
        let mut s = Short { bytes: [0; 32], len: u8::try_from(bytes.len()).ok().filter(|n| *n <= 32)? };
        s.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(s)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// Appends the bytes to `buf`.
    pub fn push_to(&self, buf: &mut Vec<u8>) {
        push_prefix(buf, &self.bytes, self.len as usize);
    }
}

/// A reply that breaks the protocol.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("protocol error: {0}")]
pub struct ProtocolError(pub String);

/// Deepest reply nesting accepted (Redis replies are shallow; this guards against garbage).
const MAX_DEPTH: usize = 32;

/// Parses one reply from the front of `buf`. `Ok(None)` means more bytes are needed.
pub fn parse(buf: &[u8]) -> Result<Option<(Value, usize)>, ProtocolError> {
    let mut pos = 0;
    match parse_at(buf, &mut pos, 0)? {
        Some(v) => Ok(Some((v, pos))),
        None => Ok(None),
    }
}

fn line(buf: &[u8], pos: &mut usize) -> Option<usize> {
    let start = *pos;
    let rest = buf.get(start..)?;
    // The first CR followed by LF (a lone CR inside a line is not its end).
    let mut from = 0;
    let rel = loop {
        let cr = from + rest[from..].iter().position(|&b| b == b'\r')?;
        if *rest.get(cr + 1)? == b'\n' {
            break cr;
        }
        from = cr + 1;
    };
    *pos = start + rel + 2;
    Some(start + rel)
}

/// A RESP integer (`-12`, `32`): digits read in place, without a detour through `str`.
fn int_of(bytes: &[u8]) -> Result<i64, ProtocolError> {
    let bad = || ProtocolError(format!("bad integer {:?}", String::from_utf8_lossy(bytes)));
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() {
        return Err(bad());
    }
    // Accumulated as a negative number, whose range includes i64::MIN.
    let mut n: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return Err(bad());
        }
        n = n.checked_mul(10).and_then(|n| n.checked_sub(i64::from(d))).ok_or_else(bad)?;
    }
    if negative { Ok(n) } else { n.checked_neg().ok_or_else(bad) }
}

fn parse_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<Option<Value>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError("reply nested too deeply".into()));
    }
    let Some(&tag) = buf.get(*pos) else { return Ok(None) };
    let start = *pos + 1;
    // The headers of integers, bulk strings and arrays — nearly every reply under load — are
    // read in the pass that finds their end, and `+OK` is one comparison; anything else, or
    // anything odd about them, takes the general path below (with its errors).
    if matches!(tag, b':' | b'$' | b'*')
        && let Some((n, next)) = quick_int(buf, start)
    {
        *pos = next;
        return match tag {
            b':' => Ok(Some(Value::Int(n))),
            b'$' => bulk(buf, pos, n, tag),
            _ => array(buf, pos, n, tag, depth),
        };
    }
    if buf[*pos..].starts_with(b"+OK\r\n") {
        *pos += 5;
        return Ok(Some(Value::Status(Cow::Borrowed("OK"))));
    }
    *pos = start;
    let Some(end) = line(buf, pos) else { return Ok(None) };
    let head = &buf[start..end];
    let text = || String::from_utf8_lossy(head).into_owned();
    Ok(Some(match tag {
        b'+' => Value::Status(match head {
            b"OK" => Cow::Borrowed("OK"),
            b"QUEUED" => Cow::Borrowed("QUEUED"),
            b"PONG" => Cow::Borrowed("PONG"),
            _ => Cow::Owned(text()),
        }),
        b'-' => Value::Error(text()),
        b':' => Value::Int(int_of(head)?),
        b'_' => Value::Nil,
        b'#' => Value::Bool(head == b"t"),
        b',' => Value::Double(text().parse().map_err(|_| ProtocolError("bad double".into()))?),
        b'(' => Value::Status(Cow::Owned(text())),
        b'$' | b'=' | b'!' => return bulk(buf, pos, int_of(head)?, tag),
        b'*' | b'~' | b'>' => return array(buf, pos, int_of(head)?, tag, depth),
        b'%' => {
            let n = int_of(head)?.max(0);
            let mut pairs = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                let Some(k) = parse_at(buf, pos, depth + 1)? else { return Ok(None) };
                let Some(v) = parse_at(buf, pos, depth + 1)? else { return Ok(None) };
                pairs.push((k, v));
            }
            Value::Map(pairs)
        }
        b'|' => {
            // An attribute map precedes the real reply; skip it.
            let n = int_of(head)?.max(0);
            for _ in 0..2 * n {
                if parse_at(buf, pos, depth + 1)?.is_none() {
                    return Ok(None);
                }
            }
            return parse_at(buf, pos, depth);
        }
        other => return Err(ProtocolError(format!("unexpected reply type byte {:?}", other as char))),
    }))
}

/// The integer of a header line that starts at `start`, read in the pass that finds the line's
/// end: `Some((n, just past its CRLF))` when the line is an optional `-` and 1 to 18 digits, else
/// `None` — also when the line is not all there yet — for the general path to read.
#[inline]
fn quick_int(buf: &[u8], start: usize) -> Option<(i64, usize)> {
    let negative = buf.get(start) == Some(&b'-');
    let first = start + usize::from(negative);
    let mut i = first;
    let mut n: i64 = 0;
    while i - first < 19
        && let Some(d) = buf.get(i).map(|b| b.wrapping_sub(b'0')).filter(|d| *d <= 9)
    {
        n = n * 10 + i64::from(d);
        i += 1;
    }
    let digits = i - first;
    if digits == 0 || digits > 18 || buf.get(i..i + 2) != Some(b"\r\n".as_slice()) {
        return None;
    }
    Some((if negative { -n } else { n }, i + 2))
}

/// A bulk string (`$`), verbatim string (`=`) or bulk error (`!`) of `len` bytes from `pos`.
fn bulk(buf: &[u8], pos: &mut usize, len: i64, tag: u8) -> Result<Option<Value>, ProtocolError> {
    if len < 0 {
        return Ok(Some(Value::Nil));
    }
    let len = len as usize;
    if buf.len() < *pos + len + 2 {
        return Ok(None);
    }
    let data = &buf[*pos..*pos + len];
    *pos += len + 2;
    Ok(Some(match tag {
        b'!' => Value::Error(String::from_utf8_lossy(data).into_owned()),
        // Verbatim strings start with a 3-letter format and a colon.
        b'=' if data.len() >= 4 => Value::Bulk(data[4..].to_vec()),
        _ => Value::Bulk(data.to_vec()),
    }))
}

/// An array, set (`~`) or push message (`>`) of `n` items from `pos`.
fn array(buf: &[u8], pos: &mut usize, n: i64, tag: u8, depth: usize) -> Result<Option<Value>, ProtocolError> {
    if n < 0 {
        return Ok(Some(Value::Nil));
    }
    let mut items = Vec::with_capacity((n as usize).min(1024));
    for _ in 0..n {
        match parse_at(buf, pos, depth + 1)? {
            Some(v) => items.push(v),
            None => return Ok(None),
        }
    }
    Ok(Some(if tag == b'>' { Value::Push(items) } else { Value::Array(items) }))
}

/// The length of the first whole frame in `buf` and whether it is a RESP3 push, without copying
/// anything: `Ok(None)` until the whole frame is there. For whoever must pass frames on whole (the
/// fault proxy injects its own frames only between them).
pub fn frame_len(buf: &[u8]) -> Result<Option<(usize, bool)>, ProtocolError> {
    let mut pos = 0;
    Ok(skip_at(buf, &mut pos, 0)?.then(|| (pos, buf.first() == Some(&b'>'))))
}

fn skip_at(buf: &[u8], pos: &mut usize, depth: usize) -> Result<bool, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(ProtocolError("reply nested too deeply".into()));
    }
    let Some(&tag) = buf.get(*pos) else { return Ok(false) };
    let start = *pos + 1;
    *pos = start;
    let Some(end) = line(buf, pos) else { return Ok(false) };
    let head = &buf[start..end];
    match tag {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Ok(true),
        b'$' | b'=' | b'!' => {
            let len = int_of(head)?;
            if len < 0 {
                return Ok(true);
            }
            let end = *pos + len as usize + 2;
            if buf.len() < end {
                return Ok(false);
            }
            *pos = end;
            Ok(true)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = int_of(head)?.max(0) as u64;
            let items = if matches!(tag, b'%' | b'|') { 2 * n } else { n };
            for _ in 0..items {
                if !skip_at(buf, pos, depth + 1)? {
                    return Ok(false);
                }
            }
            // An attribute map precedes the real reply: one frame with it.
            if tag == b'|' { skip_at(buf, pos, depth) } else { Ok(true) }
        }
        other => Err(ProtocolError(format!("unexpected reply type byte {:?}", other as char))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_finds_whole_frames_only() {
        let frames: [&[u8]; 6] =
            [b"+OK\r\n", b"$5\r\nhello\r\n", b"*2\r\n$1\r\na\r\n:1\r\n", b">2\r\n+x\r\n_\r\n", b"%1\r\n+k\r\n$-1\r\n", b"|1\r\n+a\r\n+b\r\n:7\r\n"];
        for f in frames {
            let mut two = f.to_vec();
            two.extend_from_slice(b":9\r\n");
            assert_eq!(frame_len(&two).unwrap(), Some((f.len(), f[0] == b'>')), "{:?}", String::from_utf8_lossy(f));
            for cut in 0..f.len() {
                assert_eq!(frame_len(&f[..cut]).unwrap(), None, "{:?} cut at {cut}", String::from_utf8_lossy(f));
            }
        }
        assert!(frame_len(b"?x\r\n").is_err());
    }

    #[test]
    fn encodes_commands() {
        let mut buf = Vec::new();
        CommandWriter::new(&mut buf, 3).arg(b"SET").arg(b"k").int(-42);
        assert_eq!(buf, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n-42\r\n");
    }

    #[test]
    fn parses_resp2_and_resp3() {
        let cases: Vec<(&[u8], Value)> = vec![
            (b"+OK\r\n", Value::Status("OK".into())),
            (b"-WRONGTYPE Operation\r\n", Value::Error("WRONGTYPE Operation".into())),
            (b":12\r\n", Value::Int(12)),
            (b"$-1\r\n", Value::Nil),
            (b"$3\r\nabc\r\n", Value::Bulk(b"abc".to_vec())),
            (b"*2\r\n$1\r\na\r\n:1\r\n", Value::Array(vec![Value::Bulk(b"a".to_vec()), Value::Int(1)])),
            (b"_\r\n", Value::Nil),
            (b"#t\r\n", Value::Bool(true)),
            (b",1.5\r\n", Value::Double(1.5)),
            (b"%1\r\n+a\r\n:1\r\n", Value::Map(vec![(Value::Status("a".into()), Value::Int(1))])),
            (b">2\r\n+x\r\n+y\r\n", Value::Push(vec![Value::Status("x".into()), Value::Status("y".into())])),
            (b"|1\r\n+k\r\n+v\r\n:5\r\n", Value::Int(5)),
        ];
        for (bytes, want) in cases {
            let (v, used) = parse(bytes).unwrap().unwrap();
            assert_eq!(v, want, "{}", String::from_utf8_lossy(bytes));
            assert_eq!(used, bytes.len());
        }
        assert_eq!(Value::Error("MOVED 1 h:1".into()).error_class(), Some("MOVED"));
    }

    #[test]
    fn incomplete_and_garbage_input() {
        for partial in [&b"$3\r\nab"[..], b"*2\r\n:1\r\n", b"+OK", b""] {
            assert_eq!(parse(partial).unwrap(), None, "{:?}", partial);
        }
        assert!(parse(b"?what\r\n").is_err());
        assert!(parse(b":x\r\n").is_err());
    }

    #[test]
    fn integers_parse_to_their_limits_and_no_further() {
        for (text, want) in [("0", 0), ("+7", 7), ("-0", 0), ("9223372036854775807", i64::MAX), ("-9223372036854775808", i64::MIN)] {
            assert_eq!(int_of(text.as_bytes()), Ok(want), "{text}");
            assert_eq!(int_of(text.as_bytes()).ok(), text.parse::<i64>().ok(), "{text} as std parses it");
        }
        for bad in ["", "-", "+", "9223372036854775808", "-9223372036854775809", "1 2", "0x10", "12a", "--1"] {
            assert!(int_of(bad.as_bytes()).is_err(), "{bad:?}");
        }
        // A lone CR inside a line does not end it.
        assert_eq!(parse(b"+a\rb\r\n").unwrap(), Some((Value::Status("a\rb".into()), 6)));
    }

    #[test]
    fn headers_read_in_one_pass_are_read_as_the_general_path_reads_them() {
        // Each integer header as the quick path takes it, against `int_of` of the same line; and
        // every line it declines (sign, width, a lone CR, no CRLF yet) left to the general path.
        let lines = ["0", "7", "-1", "-0", "0012", "32", "999999999999999999", "-999999999999999999"];
        for tag in [b':', b'$', b'*'] {
            for line in lines {
                let frame = [&[tag][..], line.as_bytes(), b"\r\n"].concat();
                let (n, next) = quick_int(&frame, 1).unwrap_or_else(|| panic!("{line}"));
                assert_eq!((Ok(n), next), (int_of(line.as_bytes()), frame.len()), "{line}");
                for cut in 0..frame.len() {
                    assert_eq!(quick_int(&frame[..cut], 1), None, "{line} cut at {cut}");
                }
            }
        }
        for declined in ["+7", "", "-", "9223372036854775807", "1000000000000000000", "1 2", "12\r3", "12\n", "x"] {
            let frame = [b":", declined.as_bytes(), b"\r\n"].concat();
            assert_eq!(quick_int(&frame, 1), None, "{declined:?}");
            assert_eq!(parse(&frame).ok().flatten().map(|(v, _)| v), int_of(declined.as_bytes()).ok().map(Value::Int), "{declined:?}");
        }
        // Replies as a pipeline brings them, back to back, each whole prefix of them parsed.
        let replies = b"+OK\r\n$-1\r\n$5\r\nhello\r\n:-3\r\n*2\r\n$1\r\na\r\n+OK\r\n*-1\r\n+OKAY\r\n";
        let want = [
            Value::Status("OK".into()),
            Value::Nil,
            Value::Bulk(b"hello".to_vec()),
            Value::Int(-3),
            Value::Array(vec![Value::Bulk(b"a".to_vec()), Value::Status("OK".into())]),
            Value::Nil,
            Value::Status("OKAY".into()),
        ];
        let mut at = 0;
        for w in want {
            let (v, used) = parse(&replies[at..]).unwrap().unwrap();
            assert_eq!(v, w);
            for cut in at..=replies.len() {
                let whole = cut >= at + used;
                assert_eq!(parse(&replies[at..cut]).unwrap(), whole.then(|| (w.clone(), used)), "cut at {cut}");
            }
            at += used;
        }
        assert_eq!(at, replies.len());
    }

    #[test]
    fn headers_and_decimals_encode_every_width() {
        for n in [0u64, 9, 10, 99, 100, 12345, 1 << 32, u64::MAX] {
            let mut buf = b"x".to_vec();
            push_decimal(&mut buf, n);
            assert_eq!(buf, format!("x{n}").into_bytes());
            let mut buf = Vec::new();
            push_header(&mut buf, b'$', n);
            assert_eq!(buf, format!("${n}\r\n").into_bytes());
        }
        for n in [0u64, 1, 9, 10, 11, 42, 98, 99, 100, 101, 999, 1000, 65_535, 99_999, 100_000, 10u64.pow(19) - 1, 10u64.pow(19)] {
            let mut tmp = [0u8; 24];
            let digits = digits_into(&mut tmp, 1, n);
            assert_eq!(&tmp[1..1 + digits], n.to_string().as_bytes(), "{n}");
            let mut buf = b"x".to_vec();
            push_header(&mut buf, b'*', n);
            assert_eq!(buf, format!("x*{n}\r\n").into_bytes());
        }
        let mut by_name = Vec::new();
        CommandWriter::with_name(&mut by_name, b"$3\r\nGET\r\n", 1).arg(b"k");
        let mut by_args = Vec::new();
        CommandWriter::new(&mut by_args, 2).arg(b"GET").arg(b"k");
        assert_eq!(by_name, by_args);
        let mut by_head = Vec::new();
        CommandWriter::with_head(&mut by_head, &Short::new(b"*2\r\n$3\r\nGET\r\n").unwrap()).arg(b"k");
        assert_eq!(by_head, by_args);
    }

    #[test]
    fn keys_and_joined_arguments_written_in_place_are_the_arguments_spelt_out() {
        let prefixes: [&[u8]; 4] = [b"", b"p:", b"rtb:00000000", &[b'x'; 32]];
        for prefix in prefixes {
            let short = Short::new(prefix).unwrap();
            assert_eq!(short.as_bytes(), prefix);
            for index in [0u64, 7, 10, 99, 100, 12_345, 99_999, u64::MAX] {
                let mut in_place = b"*2\r\n".to_vec();
                CommandWriter { buf: &mut in_place }.key(&short, index).arg(b"after");
                let mut spelt = b"*2\r\n".to_vec();
                CommandWriter { buf: &mut spelt }.arg(format!("{}{index}", String::from_utf8_lossy(prefix)).as_bytes()).arg(b"after");
                assert_eq!(in_place, spelt, "{prefix:?} {index}");
            }
        }
        assert_eq!(Short::new(&[b'x'; 33]), None, "33 bytes do not fit");
        let head = *b"0123456789abcdef";
        for (take, rest) in [(0, &b""[..]), (5, b""), (16, b"tail"), (16, &[b'y'; 200][..])] {
            let mut joined = Vec::new();
            CommandWriter { buf: &mut joined }.arg_joined(&head, take, rest);
            let mut whole = head[..take].to_vec();
            whole.extend_from_slice(rest);
            let mut spelt = Vec::new();
            CommandWriter { buf: &mut spelt }.arg(&whole);
            assert_eq!(joined, spelt, "{take} + {}", rest.len());
        }
    }
}
