//! The command model workloads write into and clients send: a round trip is a list of commands (a name and
//! its arguments), encoded once as RESP. The native engine sends those bytes as they are; another
//! client reads the same commands back (name and arguments) and sends them its own way. Each
//! command also says which operation it belongs to, so replies are judged the same way whichever
//! client carried them, and every command sent can be counted by name.

use crate::resp::{CommandWriter, Value};

/// Every command a workload sends, by id (the index in [`Command::ALL`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)]
pub enum Command {
    Get,
    Set,
    Del,
    Incr,
    Pexpire,
    Lpush,
    Rpush,
    Lpop,
    Rpop,
    Lrange,
    Llen,
    Ltrim,
    Sadd,
    Srem,
    Sismember,
    Smembers,
    Scard,
    Zadd,
    Zincrby,
    Zrange,
    Zrangebyscore,
    Zrank,
    Zscore,
    Zrem,
    Hset,
    Hget,
    Hmget,
    Hgetall,
    Hincrby,
    Hdel,
    Multi,
    Exec,
    Publish,
    Asking,
    Xadd,
    Xreadgroup,
    Xack,
    Xautoclaim,
    /// A command of a `custom` workload: its name is its first argument, and [`Cmd::custom`] says
    /// which one it is for counting.
    Custom,
}

/// The most arguments (besides the name) a command may have for its head to be encoded once
/// ([`Command::head`]).
pub const HEAD_ARGS: usize = 8;

/// Number of [`Command`]s.
pub const COMMAND_COUNT: usize = 39;

impl Command {
    /// Every command, in id order.
    pub const ALL: [Command; COMMAND_COUNT] = [
        Command::Get,
        Command::Set,
        Command::Del,
        Command::Incr,
        Command::Pexpire,
        Command::Lpush,
        Command::Rpush,
        Command::Lpop,
        Command::Rpop,
        Command::Lrange,
        Command::Llen,
        Command::Ltrim,
        Command::Sadd,
        Command::Srem,
        Command::Sismember,
        Command::Smembers,
        Command::Scard,
        Command::Zadd,
        Command::Zincrby,
        Command::Zrange,
        Command::Zrangebyscore,
        Command::Zrank,
        Command::Zscore,
        Command::Zrem,
        Command::Hset,
        Command::Hget,
        Command::Hmget,
        Command::Hgetall,
        Command::Hincrby,
        Command::Hdel,
        Command::Multi,
        Command::Exec,
        Command::Publish,
        Command::Asking,
        Command::Xadd,
        Command::Xreadgroup,
        Command::Xack,
        Command::Xautoclaim,
        Command::Custom,
    ];

    /// The name sent on the wire (and shown in reports).
    pub const fn name(self) -> &'static str {
        match self {
            Command::Get => "GET",
            Command::Set => "SET",
            Command::Del => "DEL",
            Command::Incr => "INCR",
            Command::Pexpire => "PEXPIRE",
            Command::Lpush => "LPUSH",
            Command::Rpush => "RPUSH",
            Command::Lpop => "LPOP",
            Command::Rpop => "RPOP",
            Command::Lrange => "LRANGE",
            Command::Llen => "LLEN",
            Command::Ltrim => "LTRIM",
            Command::Sadd => "SADD",
            Command::Srem => "SREM",
            Command::Sismember => "SISMEMBER",
            Command::Smembers => "SMEMBERS",
            Command::Scard => "SCARD",
            Command::Zadd => "ZADD",
            Command::Zincrby => "ZINCRBY",
            Command::Zrange => "ZRANGE",
            Command::Zrangebyscore => "ZRANGEBYSCORE",
            Command::Zrank => "ZRANK",
            Command::Zscore => "ZSCORE",
            Command::Zrem => "ZREM",
            Command::Hset => "HSET",
            Command::Hget => "HGET",
            Command::Hmget => "HMGET",
            Command::Hgetall => "HGETALL",
            Command::Hincrby => "HINCRBY",
            Command::Hdel => "HDEL",
            Command::Multi => "MULTI",
            Command::Exec => "EXEC",
            Command::Publish => "PUBLISH",
            Command::Asking => "ASKING",
            Command::Xadd => "XADD",
            Command::Xreadgroup => "XREADGROUP",
            Command::Xack => "XACK",
            Command::Xautoclaim => "XAUTOCLAIM",
            Command::Custom => "CUSTOM",
        }
    }

    /// The name as a RESP bulk string (`$3\r\nGET\r\n`), encoded once per process: the start of
    /// every command written on the hot path.
    pub fn bulk_name(self) -> &'static [u8] {
        static BULK_NAMES: std::sync::LazyLock<Vec<Vec<u8>>> =
            std::sync::LazyLock::new(|| Command::ALL.iter().map(|c| crate::resp::bulk_string(c.name().as_bytes())).collect());
        &BULK_NAMES[self as usize]
    }

    /// The start of the command with `argc` arguments besides its name — the count and the name,
    /// encoded (`*2\r\n$3\r\nGET\r\n`) — for up to [`HEAD_ARGS`] arguments: every command a
    /// built-in workload writes starts with this one copy of constant size.
    pub fn head(self, argc: usize) -> Option<&'static crate::resp::Short> {
        static HEADS: std::sync::LazyLock<Vec<Vec<crate::resp::Short>>> = std::sync::LazyLock::new(|| {
            Command::ALL
                .iter()
                .map(|c| {
                    (0..=HEAD_ARGS)
                        .map(|argc| {
                            let mut head = Vec::new();
                            CommandWriter::with_name(&mut head, c.bulk_name(), argc);
                            crate::resp::Short::new(&head).expect("a head of up to 9 arguments and 13 letters fits in 32 bytes")
                        })
                        .collect()
                })
                .collect()
        });
        HEADS[self as usize].get(argc)
    }

    /// Whether the command changes nothing on the server (sending it twice is harmless).
    pub const fn is_read(self) -> bool {
        matches!(
            self,
            Command::Get
                | Command::Lrange
                | Command::Llen
                | Command::Sismember
                | Command::Smembers
                | Command::Scard
                | Command::Zrange
                | Command::Zrangebyscore
                | Command::Zrank
                | Command::Zscore
                | Command::Hget
                | Command::Hmget
                | Command::Hgetall
        )
    }

    /// Whether this reply means the read found nothing: a miss. Every read can miss (a nil, an
    /// empty list, set or hash, a count or membership of 0); so can the pops, which read what
    /// they remove. Writes never miss.
    pub fn found_nothing(self, reply: &Value) -> bool {
        match self {
            Command::Get | Command::Hget | Command::Zscore | Command::Zrank | Command::Lpop | Command::Rpop => matches!(reply, Value::Nil),
            Command::Lrange | Command::Smembers | Command::Zrange | Command::Zrangebyscore | Command::Hgetall => match reply {
                Value::Array(items) => items.is_empty(),
                Value::Map(pairs) => pairs.is_empty(),
                Value::Nil => true,
                _ => false,
            },
            Command::Llen | Command::Scard | Command::Sismember => matches!(reply, Value::Int(0) | Value::Bool(false)),
            Command::Hmget => match reply {
                Value::Array(items) => items.iter().all(|v| matches!(v, Value::Nil)),
                _ => false,
            },
            // Your own command: a nil or an empty aggregate is a miss.
            Command::Custom => match reply {
                Value::Nil => true,
                Value::Array(items) => items.is_empty(),
                Value::Map(pairs) => pairs.is_empty(),
                _ => false,
            },
            _ => false,
        }
    }
}

/// One command of a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cmd {
    /// Which command.
    pub command: Command,
    /// The workload operation it is counted under.
    pub op: u16,
    /// A follow-up whose reply belongs to the operation before it (the LTRIM after an LPUSH, the
    /// PEXPIRE after a write), or framing (MULTI, EXEC): not counted as an operation of its own.
    pub aux: bool,
    /// For [`Command::Custom`]: which command it is ([`custom_name`]).
    pub custom: u16,
    /// Where its encoding starts in the round trip's bytes.
    start: u32,
}

/// The commands of one round trip, in order, with their RESP encoding.
#[derive(Debug, Default, Clone)]
pub struct RoundTrip {
    resp: Vec<u8>,
    cmds: Vec<Cmd>,
    /// The cluster slot, when the workload knows it (custom commands, whose first argument need
    /// not be a key); otherwise the first key's.
    slot: Option<Option<u16>>,
}

impl RoundTrip {
    /// An empty round trip; its buffers grow on first use and are kept (a worker that never runs
    /// costs nothing).
    pub fn new() -> RoundTrip {
        RoundTrip::default()
    }

    /// Forgets the previous round trip's commands (keeps the memory).
    pub fn clear(&mut self) {
        self.resp.clear();
        self.cmds.clear();
        self.slot = None;
    }

    /// Says which slot the round trip belongs to (`None`: it has no key, any node serves it).
    pub fn set_slot(&mut self, slot: Option<u16>) {
        self.slot = Some(slot);
    }

    /// The cluster slot that routes the round trip: the one the workload set, else its first
    /// key's.
    pub fn slot(&self) -> Option<u16> {
        self.slot.unwrap_or_else(|| crate::slots::first_key_slot(&self.resp))
    }

    /// Starts a command of a custom workload: `argc` arguments, the name first; write them all
    /// with the returned writer.
    pub fn push_custom(&mut self, custom: u16, op: u16, argc: usize) -> CommandWriter<'_> {
        self.cmds.push(Cmd { command: Command::Custom, op, aux: false, custom, start: self.resp.len() as u32 });
        CommandWriter::new(&mut self.resp, argc)
    }

    /// [`RoundTrip::push_custom`] with the name already encoded as a RESP bulk string (see
    /// [`Command::bulk_name`]) and `argc` arguments besides it: the templates' hot path.
    pub fn push_custom_named(&mut self, custom: u16, op: u16, bulk_name: &[u8], argc: usize) -> CommandWriter<'_> {
        self.cmds.push(Cmd { command: Command::Custom, op, aux: false, custom, start: self.resp.len() as u32 });
        CommandWriter::with_name(&mut self.resp, bulk_name, argc)
    }

    /// Starts command `command`, counted under operation `op`, with `argc` arguments besides its
    /// name; write them with the returned writer.
    pub fn push(&mut self, command: Command, op: u16, argc: usize) -> CommandWriter<'_> {
        self.push_cmd(command, op, false, argc)
    }

    /// Starts a follow-up command whose reply belongs to the operation before it.
    pub fn push_aux(&mut self, command: Command, op: u16, argc: usize) -> CommandWriter<'_> {
        self.push_cmd(command, op, true, argc)
    }

    fn push_cmd(&mut self, command: Command, op: u16, aux: bool, argc: usize) -> CommandWriter<'_> {
        self.cmds.push(Cmd { command, op, aux, custom: 0, start: self.resp.len() as u32 });
        match command.head(argc) {
            Some(head) => CommandWriter::with_head(&mut self.resp, head),
            None => CommandWriter::with_name(&mut self.resp, command.bulk_name(), argc),
        }
    }

    /// The RESP encoding of every command, as sent by the native engine.
    pub fn bytes(&self) -> &[u8] {
        &self.resp
    }

    /// The commands, in order; each gets exactly one reply.
    pub fn commands(&self) -> &[Cmd] {
        &self.cmds
    }

    /// Number of replies the round trip gets.
    pub fn replies(&self) -> usize {
        self.cmds.len()
    }

    /// Whether it runs as one MULTI/EXEC transaction.
    pub fn is_transaction(&self) -> bool {
        self.cmds.first().is_some_and(|c| c.command == Command::Multi)
    }

    /// Whether every command only reads (sending the round trip again changes nothing).
    pub fn only_reads(&self) -> bool {
        !self.is_transaction() && self.cmds.iter().all(|c| c.command.is_read())
    }

    /// The arguments of command `i`, its name first: what a client other than the native engine
    /// sends. Decoded from the one encoding, so both clients send exactly the same thing.
    pub fn args(&self, i: usize) -> Vec<&[u8]> {
        self.arg_iter(i).collect()
    }

    /// [`RoundTrip::args`] read in place, without allocating: the redis-rs client's hot path
    /// (collecting them cost a tenth of its instructions at depth 16, under callgrind).
    pub fn arg_iter(&self, i: usize) -> Args<'_> {
        let start = self.cmds[i].start as usize;
        let end = self.cmds.get(i + 1).map_or(self.resp.len(), |c| c.start as usize);
        Args::new(&self.resp[start..end])
    }
}

/// The arguments of one RESP-encoded command (`*N` then N bulk strings), read in place. An
/// encoding cut short or malformed — never what [`RoundTrip`] writes — ends the iteration.
pub struct Args<'a> {
    b: &'a [u8],
    at: usize,
    left: usize,
}

impl<'a> Args<'a> {
    fn new(b: &'a [u8]) -> Args<'a> {
        match resp_len(b, 0, b'*') {
            Some((left, at)) => Args { b, at, left },
            None => Args { b, at: 0, left: 0 },
        }
    }

    /// The bytes the encoding takes up to the end of the last argument read.
    fn consumed(&self) -> usize {
        self.at
    }

    /// The encoded command's length: an upper bound of its arguments' bytes.
    pub fn encoded_len(&self) -> usize {
        self.b.len()
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let arg = resp_len(self.b, self.at, b'$').and_then(|(len, start)| Some((self.b.get(start..start.checked_add(len)?)?, start + len + 2)));
        match arg {
            Some((arg, next)) if next <= self.b.len() => {
                self.at = next;
                self.left -= 1;
                Some(arg)
            }
            _ => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// `<marker>N\r\n` at `at`: N and where the line ends.
fn resp_len(b: &[u8], at: usize, marker: u8) -> Option<(usize, usize)> {
    if *b.get(at)? != marker {
        return None;
    }
    let mut n = 0usize;
    let mut i = at + 1;
    loop {
        match *b.get(i)? {
            b'\r' => break,
            c @ b'0'..=b'9' => n = n.checked_mul(10)?.checked_add(usize::from(c - b'0'))?,
            _ => return None,
        }
        i += 1;
    }
    (i > at + 1 && b.get(i + 1) == Some(&b'\n')).then_some((n, i + 2))
}

/// Registers a custom command by its INFO commandstats name (`HSET`, `XINFO|GROUPS`) and returns
/// its id; the same name always gets the same id. Called when workloads are built, never per
/// operation.
pub fn custom_id(stats_name: &str) -> u16 {
    let mut names = CUSTOM_NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(i) = names.iter().position(|n| *n == stats_name) {
        return i as u16;
    }
    names.push(intern(stats_name));
    (names.len() - 1) as u16
}

/// The commandstats name of custom command `id`.
pub fn custom_name(id: u16) -> &'static str {
    CUSTOM_NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id as usize).copied().unwrap_or("CUSTOM")
}

static CUSTOM_NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

/// One `&'static str` per distinct text, kept for the life of the process: the names of custom
/// commands and operations, which are few (at most 64 per workload).
pub fn intern(s: &str) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(n) = names.iter().find(|n| **n == s) {
        return n;
    }
    let n: &'static str = Box::leak(s.to_owned().into_boxed_str());
    names.push(n);
    n
}

/// A command's name as INFO commandstats writes it (upper case): `GET`, or for commands that
/// group subcommands the subcommand too, `CLIENT|SETNAME` (when `sub` is known).
pub fn stats_name(name: &[u8], sub: Option<&[u8]>) -> String {
    let mut n = String::from_utf8_lossy(name).to_uppercase();
    if CONTAINERS.contains(&n.as_str())
        && let Some(sub) = sub
    {
        n.push('|');
        n.push_str(&String::from_utf8_lossy(sub).to_uppercase());
    }
    n
}

/// Commands that group subcommands: the server counts `CLIENT SETNAME` as `client|setname` in
/// INFO commandstats, and so do we.
const CONTAINERS: [&str; 15] =
    ["ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE", "OBJECT", "PUBSUB", "SCRIPT", "SLOWLOG", "XGROUP", "XINFO"];

/// The names of the commands encoded in `buf`, as INFO commandstats names them (upper case):
/// `GET`, `CLIENT|SETNAME`. For commands sent outside the workloads, off the hot path.
pub fn names_in(mut buf: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while let Some((args, used)) = split_command(buf) {
        if let Some(name) = args.first() {
            out.push(stats_name(name, args.get(1).copied()));
        }
        buf = &buf[used..];
    }
    out
}

/// The first RESP command in `b` (`*N` then N bulk strings): its arguments and the bytes it
/// takes; `None` when it is incomplete or malformed.
fn split_command(b: &[u8]) -> Option<(Vec<&[u8]>, usize)> {
    let (argc, _) = resp_len(b, 0, b'*')?;
    let mut it = Args::new(b);
    let args: Vec<&[u8]> = it.by_ref().collect();
    (args.len() == argc).then(|| (args, it.consumed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_names_are_the_names_encoded() {
        for c in Command::ALL {
            let name = c.name();
            assert_eq!(c.bulk_name(), format!("${}\r\n{name}\r\n", name.len()).as_bytes(), "{c:?}");
            for argc in 0..=HEAD_ARGS {
                let head = c.head(argc).unwrap_or_else(|| panic!("{c:?} has a head for {argc} arguments"));
                assert_eq!(head.as_bytes(), format!("*{}\r\n${}\r\n{name}\r\n", argc + 1, name.len()).as_bytes(), "{c:?} {argc}");
            }
            assert_eq!(c.head(HEAD_ARGS + 1), None);
            let mut rt = RoundTrip::new();
            rt.push(c, 0, HEAD_ARGS + 2).arg(b"a");
            assert!(rt.bytes().starts_with(format!("*{}\r\n${}\r\n{name}\r\n$1\r\na\r\n", HEAD_ARGS + 3, name.len()).as_bytes()), "{c:?} past the table");
        }
    }

    #[test]
    fn names_and_ids_line_up() {
        for (i, c) in Command::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "{c:?}");
        }
    }

    #[test]
    fn commands_encode_once_and_decode_to_their_arguments() {
        let mut rt = RoundTrip::new();
        rt.push(Command::Lpush, 0, 2).arg(b"k").arg(b"v\r\nx");
        rt.push_aux(Command::Ltrim, 0, 3).arg(b"k").int(0).int(-1);
        assert_eq!(rt.bytes(), b"*3\r\n$5\r\nLPUSH\r\n$1\r\nk\r\n$4\r\nv\r\nx\r\n*4\r\n$5\r\nLTRIM\r\n$1\r\nk\r\n$1\r\n0\r\n$2\r\n-1\r\n");
        assert_eq!(rt.args(0), vec![&b"LPUSH"[..], b"k", b"v\r\nx"]);
        assert_eq!(rt.args(1), vec![&b"LTRIM"[..], b"k", b"0", b"-1"]);
        assert_eq!(rt.replies(), 2);
        assert!(!rt.only_reads());
    }

    #[test]
    fn encodings_cut_short_or_malformed_end_the_arguments_and_are_not_commands() {
        let whole = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n";
        assert_eq!(Args::new(whole).collect::<Vec<_>>(), vec![&b"SET"[..], b"k", b"vv"]);
        assert_eq!(names_in(&[&whole[..], &whole[..]].concat()), ["SET", "SET"]);
        for cut in 0..whole.len() {
            // Never more than the whole encoding holds, never a panic; a cut one is no command.
            assert!(Args::new(&whole[..cut]).count() <= 3);
            assert!(split_command(&whole[..cut]).is_none(), "{cut}");
        }
        for bad in [&b"*2\r\n$3\r\nGET\r\n$9\r\nk\r\n"[..], b"*1\r\n$-1\r\n", b"*x\r\n", b"*1\r\n$\r\n\r\n", b"*1\r\n$99999999999999999999999\r\n"] {
            assert!(split_command(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn names_are_read_as_commandstats_names_them() {
        let mut buf = Vec::new();
        crate::resp::command(&mut buf, &[b"client", b"setname", b"x"]);
        crate::resp::command(&mut buf, &[b"GET", b"k"]);
        crate::resp::command(&mut buf, &[b"CLUSTER", b"SLOTS"]);
        assert_eq!(names_in(&buf), vec!["CLIENT|SETNAME", "GET", "CLUSTER|SLOTS"]);
        assert!(names_in(b"*2\r\n$3\r\nGET").is_empty(), "a truncated command is not counted");
    }

    #[test]
    fn every_read_can_miss() {
        assert!(Command::Get.found_nothing(&Value::Nil));
        assert!(Command::Lrange.found_nothing(&Value::Array(vec![])));
        assert!(Command::Hgetall.found_nothing(&Value::Map(vec![])));
        assert!(Command::Llen.found_nothing(&Value::Int(0)));
        assert!(!Command::Llen.found_nothing(&Value::Int(3)));
        assert!(Command::Hmget.found_nothing(&Value::Array(vec![Value::Nil, Value::Nil])));
        assert!(!Command::Hmget.found_nothing(&Value::Array(vec![Value::Nil, Value::Bulk(b"x".to_vec())])));
        assert!(!Command::Set.found_nothing(&Value::Nil), "writes never miss");
        assert!(Command::Custom.found_nothing(&Value::Array(vec![])) && !Command::Custom.found_nothing(&Value::Int(0)));
        let reads = Command::ALL.iter().filter(|c| c.is_read()).count();
        assert_eq!(reads, 13);
    }
}
