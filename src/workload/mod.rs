//! The eight workloads behind one type. A workload is pure encode/decode: `prepare` writes the
//! next operation's command(s) into a buffer, `classify` turns the replies into outcomes. The
//! executor does the I/O, so a ninth workload is one file and one match arm here.

pub mod basic;
mod hash;
mod high_throughput;
mod list;
mod pipeline;
pub mod pubsub;
mod set;
mod sorted_set;

use std::sync::Arc;

use rand::RngExt;

use crate::keys::{KeyPicker, Rng, ValueMaker};
use crate::metrics::Outcome;
use crate::scenario::model::{Keyspace, Workload as WorkloadSpec, WorkloadKind};
use crate::target::resp::Value;

/// Per-worker, per-workload state: key picker and scratch buffers (no allocation per operation).
pub struct WorkerState {
    /// Picks key indexes.
    pub picker: KeyPicker,
    /// Scratch for building a key.
    pub key: Vec<u8>,
    /// Scratch for building a value.
    pub value: Vec<u8>,
    /// The operations inside the current pipeline batch.
    pub batch: Vec<u16>,
    /// This worker's write counter (stamps values; pub/sub sequence numbers).
    pub seq: u64,
    /// Worker id.
    pub worker: usize,
    /// Number of workers that may write (for verify partitioning).
    pub writers: usize,
}

/// What `prepare` produced.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prepared {
    /// The operation whose latency is recorded.
    pub op: u16,
    /// Replies to read.
    pub replies: usize,
    /// For `verify`: key index and value digest of a SET (or `u64::MAX` digest for a DEL).
    pub ack: Option<(u64, u64)>,
    /// Workload-specific detail (pub/sub: the channel index).
    pub tag: u32,
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
    values: ValueMaker,
    prefix: Vec<u8>,
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
}

impl Workload {
    /// Builds the runtime form of a scenario workload. `index` is its position in the scenario;
    /// `cluster` makes batches slot-safe.
    pub fn new(spec: &WorkloadSpec, index: usize, max_workers: usize, cluster: bool) -> Workload {
        let (kind, ops, verify): (Kind, Vec<&'static str>, bool) = match &spec.kind {
            WorkloadKind::Basic(b) => (Kind::Basic(basic::Basic::new(b)), basic::OPS.to_vec(), b.verify),
            WorkloadKind::HighThroughput(h) => (Kind::HighThroughput(high_throughput::HighThroughput::new(h)), high_throughput::OPS.to_vec(), false),
            WorkloadKind::List(l) => (Kind::List(list::List::new(l)), list::OPS.to_vec(), false),
            WorkloadKind::Set(x) => (Kind::Set(set::Set::new(x)), set::OPS.to_vec(), false),
            WorkloadKind::SortedSet(z) => (Kind::SortedSet(sorted_set::SortedSet::new(z)), sorted_set::OPS.to_vec(), false),
            WorkloadKind::Hash(h) => (Kind::Hash(hash::Hash::new(h)), hash::OPS.to_vec(), false),
            WorkloadKind::Pipeline(p) => {
                let pl = pipeline::Pipeline::new(p);
                let ops = pl.ops();
                (Kind::Pipeline(pl), ops, false)
            }
            WorkloadKind::Pubsub(p) => (Kind::Pubsub(Arc::new(pubsub::PubSub::new(p, &spec.keyspace.prefix, index, max_workers))), pubsub::OPS.to_vec(), false),
        };
        Workload {
            name: spec.name.clone(),
            keyspace: spec.keyspace.clone(),
            ops,
            values: ValueMaker::new(spec.keyspace.value_size),
            prefix: spec.keyspace.prefix.as_bytes().to_vec(),
            ttl_ms: spec.keyspace.ttl.map(|t| t.as_millis().max(1) as u64),
            kind,
            verify,
            tag_block: cluster.then(|| spec.keyspace.keys.div_ceil(TAG_BLOCKS).max(1)),
        }
    }

    /// Fresh per-worker state.
    pub fn worker_state(&self, worker: usize, writers: usize) -> WorkerState {
        WorkerState {
            picker: KeyPicker::new(&self.keyspace, worker),
            key: Vec::with_capacity(64),
            value: Vec::with_capacity(256),
            batch: Vec::new(),
            seq: 0,
            worker,
            writers,
        }
    }

    /// The pub/sub side of a pubsub workload (subscribers, delivery accounting).
    pub fn pubsub(&self) -> Option<&Arc<pubsub::PubSub>> {
        match &self.kind {
            Kind::Pubsub(p) => Some(p),
            _ => None,
        }
    }

    /// Writes the next operation into `buf`.
    pub fn prepare(&self, st: &mut WorkerState, rng: &mut Rng, buf: &mut Vec<u8>, now_nanos: u64) -> Prepared {
        let env = Env {
            prefix: &self.prefix,
            values: &self.values,
            ttl_ms: self.ttl_ms,
            verify: self.verify,
            tag_block: self.tag_block,
            keys: self.keyspace.keys.max(1),
        };
        match &self.kind {
            Kind::Basic(b) => b.prepare(&env, st, rng, buf),
            Kind::HighThroughput(h) => h.prepare(&env, st, rng, buf),
            Kind::List(l) => l.prepare(&env, st, rng, buf),
            Kind::Set(x) => x.prepare(&env, st, rng, buf),
            Kind::SortedSet(z) => z.prepare(&env, st, rng, buf),
            Kind::Hash(h) => h.prepare(&env, st, rng, buf),
            Kind::Pipeline(p) => p.prepare(&env, st, rng, buf),
            Kind::Pubsub(p) => p.prepare(st, rng, buf, now_nanos),
        }
    }

    /// Reports each outcome of the replies through `sink(op, outcome, timed)`; `timed` says whether
    /// the operation's latency goes into its histogram (false for commands inside a batch).
    pub fn classify(&self, p: &Prepared, st: &WorkerState, replies: &[Value], sink: &mut dyn FnMut(u16, Outcome, bool)) {
        match &self.kind {
            Kind::HighThroughput(_) => {
                for (i, op) in st.batch.iter().enumerate() {
                    sink(*op, single_outcome(replies.get(i..=i).unwrap_or(&[]), true), true);
                }
            }
            Kind::Pipeline(pl) => pl.classify(p, st, replies, sink),
            Kind::Pubsub(ps) => {
                let outcome = single_outcome(replies, false);
                ps.published(st.worker, p.tag as usize, outcome == Outcome::Ok);
                sink(p.op, outcome, true);
            }
            _ => sink(p.op, single_outcome(replies, true), true),
        }
    }

    /// Whether the prepared round trip only reads, so that resending it after a connection error
    /// cannot apply anything twice.
    pub fn read_only(&self, p: &Prepared, st: &WorkerState) -> bool {
        let reads = |op: &u16| self.ops.get(*op as usize).is_some_and(|n| READ_ONLY.contains(n));
        match &self.kind {
            Kind::HighThroughput(_) => st.batch.iter().all(reads),
            Kind::Pipeline(pl) => !pl.transaction() && st.batch.iter().all(reads),
            Kind::Pubsub(_) => false,
            _ => reads(&p.op),
        }
    }

    /// Whether reply `i` of the prepared round trip answers a read (sending it again changes nothing).
    pub fn reply_is_read(&self, p: &Prepared, st: &WorkerState, i: usize) -> bool {
        let reads = |op: &u16| self.ops.get(*op as usize).is_some_and(|n| READ_ONLY.contains(n));
        match &self.kind {
            Kind::HighThroughput(_) => st.batch.get(i).is_some_and(reads),
            // In a transaction the replies are MULTI's, QUEUED and EXEC's: never judged one by one.
            Kind::Pipeline(pl) => !pl.transaction() && st.batch.get(i).is_some_and(reads),
            Kind::Pubsub(_) => false,
            _ => i == 0 && reads(&p.op),
        }
    }

    /// Reports a round trip that produced no replies (timeout, connection, pool) for every
    /// operation it carried.
    pub fn fail(&self, p: &Prepared, st: &WorkerState, outcome: Outcome, sink: &mut dyn FnMut(u16, Outcome, bool)) {
        match &self.kind {
            Kind::HighThroughput(_) => st.batch.iter().for_each(|op| sink(*op, outcome, true)),
            Kind::Pipeline(pl) => {
                pl.each_command(st, |_| outcome, sink);
                sink(p.op, outcome, true);
            }
            Kind::Pubsub(ps) => {
                ps.published(st.worker, p.tag as usize, false);
                sink(p.op, outcome, true);
            }
            _ => sink(p.op, outcome, true),
        }
    }
}

/// Commands that change nothing on the server.
const READ_ONLY: [&str; 13] =
    ["GET", "LRANGE", "LLEN", "SISMEMBER", "SMEMBERS", "SCARD", "ZRANGE", "ZRANGEBYSCORE", "ZRANK", "ZSCORE", "HGET", "HMGET", "HGETALL"];

/// Appends `PEXPIRE key ttl` when the keyspace has a TTL; returns the replies it adds.
fn expire(env: &Env<'_>, key: &[u8], buf: &mut Vec<u8>) -> usize {
    match env.ttl_ms {
        Some(ttl) => {
            crate::target::resp::CommandWriter::new(buf, 3).arg(b"PEXPIRE").arg(key).int(ttl as i64);
            1
        }
        None => 0,
    }
}

/// What every encoder needs from its workload.
pub struct Env<'a> {
    prefix: &'a [u8],
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

/// The outcome of an operation from its replies: any error reply wins; a nil first reply is a miss
/// (for reads); anything else is ok.
pub fn single_outcome(replies: &[Value], nil_is_miss: bool) -> Outcome {
    if let Some(class) = replies.iter().find_map(Value::error_class) {
        return Outcome::server_error(class);
    }
    match replies.first() {
        Some(Value::Nil) if nil_is_miss => Outcome::Miss,
        _ => Outcome::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::worker_rng;

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
        let env = Env { prefix: b"rt:", values: &values, ttl_ms: None, verify: false, tag_block: Some(10_000u64.div_ceil(TAG_BLOCKS)), keys: 10_000 };
        let mut rng = worker_rng(5, 0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..1000 {
            let first = rand::RngExt::random_range(&mut rng, 0..10_000u64);
            let other = env.batch_index(first, rand::RngExt::random_range(&mut rng, 0..10_000u64));
            assert!(other < 10_000);
            env.batch_key(&mut a, b"", first);
            env.batch_key(&mut b, b"h:", other);
            assert_eq!(
                crate::target::cluster::slot(&a),
                crate::target::cluster::slot(&b),
                "{:?} {:?}",
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            );
        }
        env.batch_key(&mut a, b"h:", 9_999);
        assert_eq!(a, b"rt:{999}h:9999");
        let plain = Env { tag_block: None, ..env };
        plain.batch_key(&mut a, b"", 42);
        assert_eq!(a, b"rt:42");
        assert_eq!(plain.batch_index(1, 42), 42);
    }

    #[test]
    fn outcomes_from_replies() {
        assert_eq!(single_outcome(&[Value::Nil], true), Outcome::Miss);
        assert_eq!(single_outcome(&[Value::Nil], false), Outcome::Ok);
        assert_eq!(single_outcome(&[Value::Status("OK".into()), Value::Error("OOM no".into())], true), Outcome::server_error("OOM"));
    }
}
