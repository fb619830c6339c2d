//! The eight workloads behind one type. A workload is pure encode/decode: `prepare` writes the
//! next operation's command(s) into a buffer, `classify` turns the replies into outcomes. The
//! executor does the I/O, so a ninth workload is one file and one match arm here.

pub mod basic;
pub mod custom;
pub mod hash;
mod high_throughput;
mod list;
mod pipeline;
pub mod pubsub;
mod set;
mod sorted_set;
pub mod stream;

use std::sync::Arc;

use rand::RngExt;

pub use crate::command::{Command, RoundTrip};
use crate::keys::{KeyPicker, Rng, ValueMaker};
use crate::metrics::{ErrorClass, Outcome};
use crate::resp::{CommandWriter, Value};
use crate::scenario::model::{Keyspace, OpRole, Workload as WorkloadSpec, WorkloadKind};

/// Per-worker, per-workload state: key picker and scratch buffers (no allocation per operation).
pub struct WorkerState {
    /// Picks key indexes.
    pub picker: KeyPicker,
    /// Scratch for building a key.
    pub key: Vec<u8>,
    /// Scratch for building a value.
    pub value: Vec<u8>,
    /// Scratch for a second argument (a member, a field).
    pub member: Vec<u8>,
    /// This worker's write counter (stamps values; pub/sub sequence numbers).
    pub seq: u64,
    /// This worker's turn in custom templates' `{seq:N}` sequences.
    pub seq_custom: u64,
    /// Worker id.
    pub worker: usize,
    /// Number of workers that may write (for verify partitioning).
    pub writers: usize,
    /// (index, count) of a sharded run: counters are partitioned by shard (every worker of one
    /// process shares them; processes must not, or each would count the others' increments).
    pub shard: (usize, usize),
}

impl WorkerState {
    /// Worker `worker`'s fresh state over `keyspace`, one of `writers` that may write.
    pub fn new(keyspace: &Keyspace, worker: usize, writers: usize) -> WorkerState {
        WorkerState {
            picker: KeyPicker::new(keyspace, worker),
            key: Vec::new(),
            value: Vec::new(),
            member: Vec::new(),
            seq: 0,
            seq_custom: 0,
            worker,
            writers,
            shard: (0, 1),
        }
    }
}

/// What `prepare` produced besides the commands.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prepared {
    /// The scheduled operation: the round trip whose latency is recorded (the command itself for
    /// single-command workloads, PIPELINE or EXEC for batches).
    pub op: u16,
    /// For `verify`: key index and value digest of a SET (or `u64::MAX` digest for a DEL).
    pub ack: Option<(u64, u64)>,
    /// For `verify`: the counter an INCR or HINCRBY adds 1 to (key index, counter field index).
    pub counter: Option<(u64, u32)>,
    /// Workload-specific detail (pub/sub: the channel index; stream: the stream index).
    pub tag: u32,
    /// Stream: the entry's producer and sequence number.
    pub seq: u64,
}

/// A weighted choice among operations.
#[derive(Debug, Clone)]
pub struct Weighted {
    cumulative: Vec<f64>,
}

impl Weighted {
    /// From weights (zero weights are never chosen).
    pub fn new(weights: impl IntoIterator<Item = f64>) -> Weighted {
        let mut total = 0.0;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += w.max(0.0);
                total
            })
            .collect();
        Weighted { cumulative }
    }

    /// Picks an index.
    pub fn pick(&self, rng: &mut Rng) -> usize {
        let total = *self.cumulative.last().unwrap_or(&0.0);
        let x = rng.random::<f64>() * total;
        self.cumulative.partition_point(|c| *c <= x).min(self.cumulative.len().saturating_sub(1))
    }
}

/// A workload ready to run.
pub struct Workload {
    /// Name from the scenario.
    pub name: String,
    /// Keyspace.
    pub keyspace: Keyspace,
    /// Operation names; an operation's index in this list is its id.
    pub ops: Vec<&'static str>,
    /// What one count of each operation is, by id.
    pub roles: Vec<OpRole>,
    values: ValueMaker,
    prefix: Vec<u8>,
    short_prefix: Option<crate::resp::Short>,
    ttl_ms: Option<u64>,
    kind: Kind,
    /// Whether acknowledged writes are remembered and read back.
    pub verify: bool,
    /// Cluster targets: keys of one round trip share a hash tag, one per block of this many key indexes.
    tag_block: Option<u64>,
}

/// Hash-tag blocks a cluster keyspace is cut into: enough that the blocks' slots spread evenly
/// over the shards.
const TAG_BLOCKS: u64 = 1024;

enum Kind {
    Basic(basic::Basic),
    HighThroughput(high_throughput::HighThroughput),
    List(list::List),
    Set(set::Set),
    SortedSet(sorted_set::SortedSet),
    Hash(hash::Hash),
    Pipeline(pipeline::Pipeline),
    Pubsub(Arc<pubsub::PubSub>),
    Custom(custom::Custom),
    Stream(Arc<stream::Stream>),
}

impl Workload {
    /// Builds the runtime form of a scenario workload. `index` is its position in the scenario;
    /// `cluster` makes batches slot-safe; `run_name` (the same in every shard of a run) tells the
    /// run's stream entries from others'.
    pub fn new(spec: &WorkloadSpec, index: usize, cluster: bool, run_name: &str) -> Workload {
        let defs = spec.kind.operations();
        let (kind, verify) = match &spec.kind {
            WorkloadKind::Basic(b) => (Kind::Basic(basic::Basic::new(b)), b.verify),
            WorkloadKind::HighThroughput(h) => (Kind::HighThroughput(high_throughput::HighThroughput::new(h)), false),
            WorkloadKind::List(l) => (Kind::List(list::List::new(l)), false),
            WorkloadKind::Set(x) => (Kind::Set(set::Set::new(x)), false),
            WorkloadKind::SortedSet(z) => (Kind::SortedSet(sorted_set::SortedSet::new(z)), false),
            WorkloadKind::Hash(h) => (Kind::Hash(hash::Hash::new(h)), h.verify),
            WorkloadKind::Pipeline(p) => (Kind::Pipeline(pipeline::Pipeline::new(p)), false),
            WorkloadKind::Pubsub(p) => (Kind::Pubsub(Arc::new(pubsub::PubSub::new(p, &spec.keyspace.prefix, index))), false),
            WorkloadKind::Stream(x) => {
                // One nonce per run, shared by its shards: the run's client name carries the run id.
                let nonce = crate::keys::digest(run_name.as_bytes());
                (Kind::Stream(Arc::new(stream::Stream::new(x, &spec.keyspace.prefix, &spec.name, nonce))), false)
            }
            WorkloadKind::Custom(_) => {
                let commands = spec.custom.as_deref().expect("validation reads a custom workload's templates into the model");
                (Kind::Custom(custom::Custom::new(commands)), false)
            }
        };
        Workload {
            name: spec.name.clone(),
            keyspace: spec.keyspace.clone(),
            ops: defs.iter().map(|d| d.name).collect(),
            roles: defs.iter().map(|d| d.role).collect(),
            values: ValueMaker::new(spec.keyspace.value_size),
            prefix: spec.keyspace.prefix.as_bytes().to_vec(),
            short_prefix: crate::resp::Short::new(spec.keyspace.prefix.as_bytes()),
            ttl_ms: spec.keyspace.ttl.map(|t| t.as_millis().max(1) as u64),
            kind,
            verify,
            tag_block: cluster.then(|| spec.keyspace.keys.div_ceil(TAG_BLOCKS).max(1)),
        }
    }

    /// Fresh per-worker state.
    pub fn worker_state(&self, worker: usize, writers: usize) -> WorkerState {
        WorkerState::new(&self.keyspace, worker, writers)
    }

    /// The pub/sub side of a pubsub workload (subscribers, delivery accounting).
    /// Whether it is a `hash` workload (its counters are hash fields).
    pub fn is_hash(&self) -> bool {
        matches!(self.kind, Kind::Hash(_))
    }

    /// The pub/sub state, for `pubsub` workloads.
    pub fn pubsub(&self) -> Option<&Arc<pubsub::PubSub>> {
        match &self.kind {
            Kind::Pubsub(p) => Some(p),
            _ => None,
        }
    }

    /// Writes the next round trip's commands into `rt` (cleared first).
    pub fn prepare(&self, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip, now_nanos: u64) -> Prepared {
        rt.clear();
        let env = self.env();
        match &self.kind {
            Kind::Basic(b) => b.prepare(&env, st, rng, rt),
            Kind::HighThroughput(h) => h.prepare(&env, st, rng, rt),
            Kind::List(l) => l.prepare(&env, st, rng, rt),
            Kind::Set(x) => x.prepare(&env, st, rng, rt),
            Kind::SortedSet(z) => z.prepare(&env, st, rng, rt),
            Kind::Hash(h) => h.prepare(&env, st, rng, rt),
            Kind::Pipeline(p) => p.prepare(&env, st, rng, rt),
            Kind::Pubsub(p) => p.prepare(st, rng, rt, now_nanos),
            Kind::Custom(c) => c.prepare(&env, st, rng, rt),
            Kind::Stream(s) => s.prepare(st, rng, rt, now_nanos),
        }
    }

    /// The stream side of a `stream` workload (consumers, bookkeeping).
    pub fn stream(&self) -> Option<&Arc<stream::Stream>> {
        match &self.kind {
            Kind::Stream(s) => Some(s),
            _ => None,
        }
    }

    /// The custom side of a `custom` workload, to resolve its keys and scripts before the run.
    pub fn custom_mut(&mut self) -> Option<&mut custom::Custom> {
        match &mut self.kind {
            Kind::Custom(c) => Some(c),
            _ => None,
        }
    }

    /// Renders each template of a `custom` workload once, unresolved (see [`custom::Custom::sample`]).
    pub fn custom_samples(&self, rng: &mut Rng) -> Vec<Vec<Vec<u8>>> {
        let Kind::Custom(c) = &self.kind else { return Vec::new() };
        let mut st = self.worker_state(0, 1);
        c.sample(&self.env(), &mut st, rng)
    }

    /// Renders `n` whole round trips (keys resolved), for checks of where they go.
    pub fn sample_round_trips(&self, rng: &mut Rng, n: usize) -> Vec<RoundTrip> {
        let mut st = self.worker_state(0, 1);
        (0..n)
            .map(|_| {
                let mut rt = RoundTrip::new();
                self.prepare(&mut st, rng, &mut rt, 0);
                rt
            })
            .collect()
    }

    fn env(&self) -> Env<'_> {
        Env {
            prefix: &self.prefix,
            short_prefix: self.short_prefix.as_ref(),
            values: &self.values,
            ttl_ms: self.ttl_ms,
            verify: self.verify,
            tag_block: self.tag_block,
            keys: self.keyspace.keys.max(1),
        }
    }

    /// Reports each operation's outcome from the replies through `sink(op, outcome)`: every
    /// command counted under its own operation (an error in any of its replies wins; a read that
    /// found nothing is a miss), and the round trip's operation when it is a batch (failed when any
    /// command failed). A transaction's commands are judged by EXEC's replies; an aborted
    /// transaction fails every command with the error that aborted it.
    pub fn classify(&self, p: &Prepared, rt: &RoundTrip, replies: &[Value], sink: &mut impl FnMut(u16, Outcome)) {
        let cmds = rt.commands();
        let trip;
        if rt.is_transaction() {
            let inner = &cmds[1..cmds.len().saturating_sub(1).max(1)];
            match replies.last() {
                Some(Value::Array(items)) if items.len() == inner.len() => trip = judge(inner, items, sink),
                other => {
                    // A queued command refused (its error names the cause), or EXEC's own error or nil.
                    let cause = replies.iter().find(|v| v.error_class().is_some_and(|c| c != "EXECABORT")).or(other);
                    let outcome = Outcome::server_error(cause.and_then(Value::error_class).unwrap_or("EXECABORT"));
                    for c in inner.iter().filter(|c| !c.aux) {
                        sink(c.op, outcome);
                    }
                    trip = outcome;
                }
            }
        } else {
            trip = judge(cmds, replies, sink);
        }
        if let Kind::Pubsub(ps) = &self.kind {
            ps.published(p.tag as usize, trip == Outcome::Ok);
        }
        if let Kind::Stream(s) = &self.kind {
            s.added(p, replies.first().filter(|_| trip == Outcome::Ok));
        }
        if is_batch(p, rt) {
            sink(p.op, trip);
        }
    }

    /// Reports a round trip that produced no replies (timeout, connection, pool) for every
    /// operation it carried.
    pub fn fail(&self, p: &Prepared, rt: &RoundTrip, class: ErrorClass, sink: &mut impl FnMut(u16, Outcome)) {
        let outcome = Outcome::Error(class);
        for c in rt.commands().iter().filter(|c| !c.aux) {
            sink(c.op, outcome);
        }
        if let Kind::Pubsub(ps) = &self.kind {
            ps.published(p.tag as usize, false);
        }
        if let Kind::Stream(s) = &self.kind {
            s.added(p, None);
        }
        if is_batch(p, rt) {
            sink(p.op, outcome);
        }
    }
}

/// Whether the round trip's operation is a batch (PIPELINE, EXEC) counted besides its commands,
/// rather than one of the commands itself.
fn is_batch(p: &Prepared, rt: &RoundTrip) -> bool {
    !rt.commands().iter().any(|c| !c.aux && c.op == p.op)
}

/// Judges each counted command from its replies (its own and its follow-ups'); returns the round
/// trip's outcome: the last error, else ok. A missing reply is a protocol error.
fn judge(cmds: &[crate::command::Cmd], replies: &[Value], sink: &mut impl FnMut(u16, Outcome)) -> Outcome {
    let mut trip = Outcome::Ok;
    let mut i = 0;
    while i < cmds.len() {
        let c = cmds[i];
        let mut end = i + 1;
        while end < cmds.len() && cmds[end].aux {
            end += 1;
        }
        let outcome = match replies.get(i..end) {
            None => Outcome::Error(ErrorClass::Protocol),
            Some(mine) => match mine.iter().find_map(Value::error_class) {
                Some(class) => Outcome::server_error(class),
                None if c.command.found_nothing(&mine[0]) => Outcome::Miss,
                None => Outcome::Ok,
            },
        };
        if matches!(outcome, Outcome::Error(_)) {
            trip = outcome;
        }
        if !c.aux {
            sink(c.op, outcome);
        }
        i = end;
    }
    trip
}

/// Appends `PEXPIRE key ttl` after a write when the keyspace has a TTL, so that every key a
/// workload creates or extends carries it; its reply belongs to operation `op`.
fn expire(env: &Env<'_>, rt: &mut RoundTrip, op: u16, key: &[u8]) {
    if let Some(ttl) = env.ttl_ms {
        rt.push_aux(Command::Pexpire, op, 2).arg(key).int(ttl as i64);
    }
}

/// What every encoder needs from its workload.
pub struct Env<'a> {
    prefix: &'a [u8],
    /// The prefix again, when it fits in a [`Short`](crate::resp::Short): keys are then written
    /// straight into the round trip.
    short_prefix: Option<&'a crate::resp::Short>,
    values: &'a ValueMaker,
    ttl_ms: Option<u64>,
    verify: bool,
    tag_block: Option<u64>,
    keys: u64,
}

impl Env<'_> {
    /// Writes the key of a batch command: prefix, then (for cluster targets) the hash tag `{block}`
    /// of the index's block, then `family` and the index. Only batch workloads use this: their
    /// round trips carry several keys, which a cluster accepts only when they share a slot.
    fn batch_key(&self, out: &mut Vec<u8>, family: &[u8], index: u64) {
        out.clear();
        out.extend_from_slice(self.prefix);
        if let Some(block) = self.tag_block {
            out.push(b'{');
            crate::keys::push_decimal(out, index / block);
            out.push(b'}');
        }
        out.extend_from_slice(family);
        crate::keys::push_decimal(out, index);
    }

    /// Appends the key [`Env::batch_key`] writes as the next argument of `w`: straight into the
    /// round trip when it is the prefix and the index alone (no hash tag, no family), else through
    /// `scratch`.
    fn batch_key_arg<'w>(&self, w: CommandWriter<'w>, scratch: &mut Vec<u8>, family: &[u8], index: u64) -> CommandWriter<'w> {
        match self.short_prefix {
            Some(prefix) if self.tag_block.is_none() && family.is_empty() => w.key(prefix, index),
            _ => {
                self.batch_key(scratch, family, index);
                w.arg(scratch)
            }
        }
    }

    /// The index a batch uses for its next key: `picked` itself, or for cluster targets the index
    /// at the same offset in the block of `first` (the batch's first key), so all share one slot.
    fn batch_index(&self, first: u64, picked: u64) -> u64 {
        match self.tag_block {
            Some(block) => {
                let base = first / block * block;
                base + picked % block.min(self.keys - base)
            }
            None => picked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::worker_rng;
    use crate::metrics::ErrorClass;

    #[test]
    fn weighted_choice_follows_weights_and_skips_zeros() {
        let w = Weighted::new([1.0, 0.0, 3.0]);
        let mut rng = worker_rng(3, 0);
        let mut counts = [0usize; 3];
        for _ in 0..40_000 {
            counts[w.pick(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = counts[2] as f64 / 40_000.0;
        assert!((0.73..0.77).contains(&share), "{counts:?}");
    }

    #[test]
    fn cluster_batch_keys_share_a_slot_and_stay_in_the_keyspace() {
        let values = ValueMaker::new((8, 8));
        let env = Env {
            prefix: b"rt:",
            short_prefix: None,
            values: &values,
            ttl_ms: None,
            verify: false,
            tag_block: Some(10_000u64.div_ceil(TAG_BLOCKS)),
            keys: 10_000,
        };
        let mut rng = worker_rng(5, 0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..1000 {
            let first = rand::RngExt::random_range(&mut rng, 0..10_000u64);
            let other = env.batch_index(first, rand::RngExt::random_range(&mut rng, 0..10_000u64));
            assert!(other < 10_000);
            env.batch_key(&mut a, b"", first);
            env.batch_key(&mut b, b"h:", other);
            assert_eq!(crate::slots::slot(&a), crate::slots::slot(&b), "{:?} {:?}", String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
        }
        env.batch_key(&mut a, b"h:", 9_999);
        assert_eq!(a, b"rt:{999}h:9999");
        let plain = Env { tag_block: None, ..env };
        plain.batch_key(&mut a, b"", 42);
        assert_eq!(a, b"rt:42");
        assert_eq!(plain.batch_index(1, 42), 42);
    }

    fn spec(yaml_kind: WorkloadKind, ttl: Option<std::time::Duration>) -> WorkloadSpec {
        let keyspace = Keyspace { prefix: "t:".into(), keys: 50, distribution: Default::default(), value_size: (8, 8), ttl };
        WorkloadSpec { name: "w".into(), weight: 1.0, keyspace, kind: yaml_kind, custom: None }
    }

    fn kind(yaml: &str) -> WorkloadKind {
        serde_json::from_value(serde_json::from_str::<serde_json::Value>(yaml).unwrap()).unwrap()
    }

    /// Prepares round trips until one holds `want`; returns it with its Prepared.
    fn round_trip_with(w: &Workload, want: Command) -> (Prepared, RoundTrip) {
        let mut st = w.worker_state(0, 1);
        let mut rng = worker_rng(9, 0);
        let mut rt = RoundTrip::new();
        for _ in 0..10_000 {
            let p = w.prepare(&mut st, &mut rng, &mut rt, 0);
            if rt.commands().iter().any(|c| c.command == want) {
                return (p, rt);
            }
        }
        panic!("no {want:?} in 10000 round trips");
    }

    fn outcomes(w: &Workload, p: &Prepared, rt: &RoundTrip, replies: &[Value]) -> Vec<(&'static str, Outcome)> {
        let mut out = Vec::new();
        w.classify(p, rt, replies, &mut |op, o| out.push((w.ops[op as usize], o)));
        out
    }

    #[test]
    fn every_write_carries_the_ttl_and_every_command_is_in_the_round_trip() {
        let ttl = Some(std::time::Duration::from_secs(60));
        let cases: [(&str, Command); 9] = [
            (r#"{"kind": "basic", "incr_ratio": 0.5, "read_ratio": 0}"#, Command::Incr),
            (r#"{"kind": "list"}"#, Command::Lpush),
            (r#"{"kind": "set"}"#, Command::Sadd),
            (r#"{"kind": "sorted_set"}"#, Command::Zincrby),
            (r#"{"kind": "hash"}"#, Command::Hincrby),
            (r#"{"kind": "pipeline", "depth": 1, "commands": {"sadd": 1}}"#, Command::Sadd),
            (r#"{"kind": "pipeline", "depth": 1, "commands": {"lpush": 1}}"#, Command::Lpush),
            (r#"{"kind": "pipeline", "depth": 1, "commands": {"hset": 1}}"#, Command::Hset),
            (r#"{"kind": "pipeline", "depth": 1, "commands": {"incr": 1}}"#, Command::Incr),
        ];
        for (k, write) in cases {
            let w = Workload::new(&spec(kind(k), ttl), 0, false, "t");
            let (_, rt) = round_trip_with(&w, write);
            let names: Vec<&str> = rt.commands().iter().map(|c| c.command.name()).collect();
            assert_eq!(names.last(), Some(&"PEXPIRE"), "{k}: {names:?}");
            assert_eq!(rt.args(rt.replies() - 1)[2], b"60000", "{k}");
        }
        for k in [r#"{"kind": "pipeline", "depth": 1, "commands": {"set": 1}}"#, r#"{"kind": "high_throughput", "read_ratio": 0}"#] {
            let w = Workload::new(&spec(kind(k), ttl), 0, false, "t");
            let (_, rt) = round_trip_with(&w, Command::Set);
            assert_eq!(&rt.args(0)[3..], [&b"PX"[..], b"60000"], "{k}");
        }
    }

    #[test]
    fn a_pipelined_batch_is_one_round_trip_and_its_commands_are_counted_apart() {
        let w = Workload::new(&spec(kind(r#"{"kind": "high_throughput", "pipeline": 4}"#), None), 0, false, "t");
        assert_eq!(w.ops, ["GET", "SET", "PIPELINE"]);
        assert_eq!(w.roles, [OpRole::Command, OpRole::Command, OpRole::RoundTrip]);
        let (p, rt) = round_trip_with(&w, Command::Get);
        assert_eq!(w.ops[p.op as usize], "PIPELINE");
        let replies: Vec<Value> = rt.commands().iter().map(|c| if c.command == Command::Get { Value::Nil } else { Value::Status("OK".into()) }).collect();
        let out = outcomes(&w, &p, &rt, &replies);
        assert_eq!(out.len(), 5, "four commands and the batch: {out:?}");
        assert_eq!(out.last(), Some(&("PIPELINE", Outcome::Ok)));
        assert!(out.iter().any(|(n, o)| *n == "GET" && *o == Outcome::Miss));
        let unpipelined = Workload::new(&spec(kind(r#"{"kind": "high_throughput"}"#), None), 0, false, "t");
        assert_eq!(unpipelined.roles, [OpRole::RoundTrip, OpRole::RoundTrip]);
    }

    #[test]
    fn an_aborted_transaction_fails_every_command_with_its_cause() {
        let w = Workload::new(&spec(kind(r#"{"kind": "pipeline", "depth": 2, "transaction": true, "commands": {"set": 1, "get": 0}}"#), None), 0, false, "t");
        let (p, rt) = round_trip_with(&w, Command::Set);
        let names: Vec<&str> = rt.commands().iter().map(|c| c.command.name()).collect();
        assert_eq!(names, ["MULTI", "SET", "SET", "EXEC"]);
        let queued = || Value::Status("QUEUED".into());
        let ok = outcomes(&w, &p, &rt, &[Value::Status("OK".into()), queued(), queued(), Value::Array(vec![Value::Status("OK".into()); 2])]);
        assert_eq!(ok, [("SET", Outcome::Ok), ("SET", Outcome::Ok), ("EXEC", Outcome::Ok)]);
        let oom = Value::Error("OOM command not allowed".into());
        let aborted = outcomes(&w, &p, &rt, &[Value::Status("OK".into()), oom, queued(), Value::Error("EXECABORT Transaction discarded".into())]);
        assert!(aborted.iter().all(|(_, o)| *o == Outcome::server_error("OOM")), "{aborted:?}");
        let mut failed = Vec::new();
        w.fail(&p, &rt, ErrorClass::Timeout, &mut |op, o| failed.push((w.ops[op as usize], o)));
        assert_eq!(failed.len(), 3);
    }

    #[test]
    fn reads_on_missing_keys_are_misses_for_every_kind() {
        for (k, read, empty) in [
            (r#"{"kind": "list", "commands": {"lrange": 1}}"#, Command::Lrange, Value::Array(vec![])),
            (r#"{"kind": "list", "commands": {"llen": 1}}"#, Command::Llen, Value::Int(0)),
            (r#"{"kind": "set", "commands": {"scard": 1}}"#, Command::Scard, Value::Int(0)),
            (r#"{"kind": "set", "commands": {"smembers": 1}}"#, Command::Smembers, Value::Array(vec![])),
            (r#"{"kind": "hash", "commands": {"hgetall": 1}}"#, Command::Hgetall, Value::Map(vec![])),
            (r#"{"kind": "sorted_set", "commands": {"zscore": 1}}"#, Command::Zscore, Value::Nil),
        ] {
            let w = Workload::new(&spec(kind(k), None), 0, false, "t");
            let (p, rt) = round_trip_with(&w, read);
            assert_eq!(outcomes(&w, &p, &rt, &[empty]), [(read.name(), Outcome::Miss)], "{k}");
        }
    }

    #[test]
    fn outcomes_from_replies() {
        let cmd = |command, aux| {
            let mut rt = RoundTrip::new();
            if aux {
                rt.push(Command::Lpush, 0, 2).arg(b"k").arg(b"v");
                rt.push_aux(command, 0, 1).arg(b"k");
            } else {
                rt.push(command, 0, 1).arg(b"k");
            }
            rt
        };
        let outcome = |rt: &RoundTrip, replies: &[Value]| {
            let mut out = Vec::new();
            judge(rt.commands(), replies, &mut |_, o| out.push(o));
            out[0]
        };
        assert_eq!(outcome(&cmd(Command::Get, false), &[Value::Nil]), Outcome::Miss, "a read that finds nothing");
        assert_eq!(outcome(&cmd(Command::Del, false), &[Value::Nil]), Outcome::Ok, "a write never misses");
        // Any error among an operation's replies (its own or a follow-up's) wins.
        assert_eq!(outcome(&cmd(Command::Pexpire, true), &[Value::Int(1), Value::Error("OOM no".into())]), Outcome::server_error("OOM"));
    }
}
