//! After the run: read back every acknowledged write of `verify: true` workloads and count the ones
//! that are gone or hold something else. Each key is written by one worker only, so the last
//! acknowledged write of a key is the one the server must hold. Counters (INCR keys, HINCRBY
//! fields) are written by every worker: increments commute, so the server's value must equal the
//! sum of acknowledged increments, plus at most the ones whose outcome the client could not know.
//! Likewise a key that holds a write the client saw fail (a timeout, a lost connection) instead of
//! its last acknowledged one is indeterminate, not lost: the server applied it, the reply was lost.

use std::collections::HashMap;
use std::time::Duration;

use super::worker::{Counters, Unknown, UnknownWrites};
use crate::client::native::cluster;
use crate::client::native::conn::{Conn, ConnectSpec};
use crate::deployment::Deployment;
use crate::keys::{digest, key_into};
use crate::outcome::VerifyResult;
use crate::resp::{CommandWriter, Value};
use crate::scenario::model::HostPort;
use crate::workload::Workload;
use crate::workload::basic::{TOMBSTONE, counter_key};

/// Keys read back per round trip.
const BATCH: usize = 256;

/// What a key read back says of its last acknowledged write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Readback {
    /// It holds the acknowledged write (or is gone after an acknowledged DEL).
    Held,
    /// It is gone.
    Lost,
    /// It holds something the client never sent it, or an older write.
    Changed,
    /// It holds a later write whose outcome the client could not know.
    Indeterminate,
    /// It could not be read.
    Unreadable,
}

/// Judges one key: `got` read back, `want` the digest of its last acknowledged write, `unknown`
/// its writes whose outcome the client could not know.
fn judge_write(got: Option<&Value>, want: u64, unknown: Option<&UnknownWrites>) -> Readback {
    let may_hold = |d: u64| unknown.is_some_and(|u| u.may_hold(d));
    match got {
        None | Some(Value::Error(_)) => Readback::Unreadable,
        Some(Value::Nil) if want == TOMBSTONE => Readback::Held,
        Some(Value::Nil) if may_hold(TOMBSTONE) => Readback::Indeterminate,
        Some(Value::Nil) => Readback::Lost,
        Some(Value::Bulk(b)) => {
            let d = digest(b);
            if want != TOMBSTONE && d == want {
                Readback::Held
            } else if may_hold(d) {
                Readback::Indeterminate
            } else {
                Readback::Changed
            }
        }
        Some(_) => Readback::Changed,
    }
}

impl VerifyResult {
    /// Counts one key's [`Readback`].
    fn judge_key(&mut self, readback: Readback) {
        match readback {
            Readback::Held => {}
            Readback::Lost => self.lost += 1,
            Readback::Changed => self.changed += 1,
            Readback::Indeterminate => self.indeterminate += 1,
            Readback::Unreadable => self.unreadable += 1,
        }
    }

    /// Judges one counter: the server's `value` against what the client knows.
    fn judge_counter(&mut self, value: u64, acked: u64, uncertain: u64) {
        self.counters += 1;
        self.increments_acknowledged += acked;
        if value < acked {
            self.increments_lost += acked - value;
        } else {
            let extra = value - acked;
            self.increments_indeterminate += extra.min(uncertain);
            self.increments_duplicated += extra.saturating_sub(uncertain);
        }
    }
}

/// Reads back the remembered writes and counters of every verifying workload, from the target or,
/// for a cluster, from the primary now serving each key's slot.
pub async fn check(
    deployment: &Deployment,
    workloads: &[Workload],
    acks: &HashMap<(u16, u64), u64>,
    unknown: &Unknown,
    counters: &Counters,
    truncated: bool,
    timeout: Duration,
) -> Vec<VerifyResult> {
    let topology = match deployment.cluster {
        Some(_) => deployment.current_topology(&deployment.spec).await.ok(),
        None => None,
    };
    let mut reader = Reader { deployment, topology, conns: HashMap::new(), timeout };
    let mut out = Vec::new();
    for (wi, w) in workloads.iter().enumerate() {
        if !w.verify {
            continue;
        }
        let mut r = VerifyResult { workload: w.name.clone(), truncated, ..Default::default() };
        let mut keys: Vec<(u64, u64)> = acks.iter().filter(|((x, _), _)| *x as usize == wi).map(|((_, k), d)| (*k, *d)).collect();
        keys.sort_unstable();
        r.checked = keys.len() as u64;
        let reads = keys.into_iter().map(|(k, digest)| {
            let mut key = Vec::new();
            key_into(&mut key, w.keyspace.prefix.as_bytes(), k);
            (vec![b"GET".to_vec(), key], (k, digest))
        });
        for (got, (k, want)) in reader.read(reads.collect()).await {
            r.judge_key(judge_write(got.as_ref(), want, unknown.get(&(wi as u16, k))));
        }
        let mut mine: Vec<_> = counters.iter().filter(|((x, _, _), _)| *x as usize == wi).map(|((_, k, f), t)| (*k, *f, *t)).collect();
        mine.sort_unstable_by_key(|(k, f, _)| (*k, *f));
        let reads = mine.into_iter().map(|(k, field, tally)| {
            let prefix = w.keyspace.prefix.as_bytes();
            let mut key = Vec::new();
            let args = if w.is_hash() {
                key_into(&mut key, prefix, k);
                let mut f = Vec::new();
                crate::workload::hash::Hash::counter_field(&mut f, field);
                vec![b"HGET".to_vec(), key, f]
            } else {
                counter_key(&mut key, prefix, k);
                vec![b"GET".to_vec(), key]
            };
            (args, tally)
        });
        for (got, tally) in reader.read(reads.collect()).await {
            let value = match got {
                Some(Value::Nil) => Some(0),
                Some(Value::Bulk(b)) => std::str::from_utf8(&b).ok().and_then(|t| t.parse::<u64>().ok()),
                Some(Value::Int(n)) => u64::try_from(n).ok(),
                _ => None,
            };
            match value {
                Some(v) => r.judge_counter(v, tally.acked, tally.uncertain),
                None => r.unreadable += 1,
            }
        }
        out.push(r);
    }
    out
}

/// A command's arguments with what its reply is judged against.
type Tagged<T> = (Vec<Vec<u8>>, T);

/// Reads keys back in batches, each from the node that serves it now.
struct Reader<'a> {
    deployment: &'a Deployment,
    topology: Option<cluster::Topology>,
    conns: HashMap<HostPort, Conn>,
    timeout: Duration,
}

impl Reader<'_> {
    /// Sends each command (its second argument the key) and pairs its reply with its tag; `None`
    /// where it could not be read.
    async fn read<T>(&mut self, commands: Vec<(Vec<Vec<u8>>, T)>) -> Vec<(Option<Value>, T)> {
        // Commands by the node that serves their key (`None`: no node known for it).
        let mut by_node: HashMap<Option<HostPort>, Vec<Tagged<T>>> = HashMap::new();
        for (args, tag) in commands {
            let node = match (&self.topology, self.deployment.cluster.is_some()) {
                (Some(t), _) => t.owner.get(crate::slots::slot(&args[1]) as usize).and_then(|s| t.shards.get(*s as usize)).map(|s| s.master.clone()),
                (None, true) => None,
                (None, false) => Some(self.deployment.spec.addr.clone()),
            };
            by_node.entry(node).or_default().push((args, tag));
        }
        let mut out = Vec::new();
        for (node, mut items) in by_node {
            let Some(node) = node else {
                out.extend(items.into_iter().map(|(_, t)| (None, t)));
                continue;
            };
            while !items.is_empty() {
                let chunk: Vec<_> = items.drain(..items.len().min(BATCH)).collect();
                if !self.conns.contains_key(&node)
                    && let Ok(c) = Conn::connect(&ConnectSpec { addr: node.clone(), ..self.deployment.spec.clone() }).await
                {
                    self.conns.insert(node.clone(), c);
                }
                let mut replies = Vec::with_capacity(chunk.len());
                let ok = match self.conns.get_mut(&node) {
                    Some(c) => {
                        let mut buf = Vec::new();
                        for (args, _) in &chunk {
                            let mut w = CommandWriter::new(&mut buf, args.len());
                            for a in args {
                                w = w.arg(a);
                            }
                        }
                        matches!(tokio::time::timeout(self.timeout * 4, c.roundtrip(&buf, chunk.len(), &mut replies)).await, Ok(Ok(())))
                    }
                    None => false,
                };
                if !ok {
                    self.conns.remove(&node);
                    out.extend(chunk.into_iter().map(|(_, t)| (None, t)));
                    continue;
                }
                out.extend(replies.into_iter().map(Some).zip(chunk.into_iter().map(|(_, t)| t)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(v: &[u8]) -> Value {
        Value::Bulk(v.to_vec())
    }

    #[test]
    fn a_key_holding_a_write_the_client_saw_fail_is_indeterminate_not_lost() {
        let (acked, later) = (digest(b"v1"), digest(b"v2"));
        let mut unknown = UnknownWrites::default();
        // Nothing failed: only the acknowledged write is right.
        assert_eq!(judge_write(Some(&bulk(b"v1")), acked, None), Readback::Held);
        assert_eq!(judge_write(Some(&bulk(b"v2")), acked, None), Readback::Changed);
        assert_eq!(judge_write(Some(&Value::Nil), acked, None), Readback::Lost);
        assert_eq!(judge_write(Some(&Value::Nil), TOMBSTONE, None), Readback::Held);
        assert_eq!(judge_write(Some(&bulk(b"v1")), TOMBSTONE, None), Readback::Changed, "back after an acknowledged DEL");
        assert_eq!(judge_write(None, acked, None), Readback::Unreadable);
        assert_eq!(judge_write(Some(&Value::Error("ERR".into())), acked, None), Readback::Unreadable);
        // A SET of v2 timed out, a DEL lost its connection: the server may hold either.
        unknown.push(later);
        assert_eq!(judge_write(Some(&bulk(b"v2")), acked, Some(&unknown)), Readback::Indeterminate);
        assert_eq!(judge_write(Some(&bulk(b"v3")), acked, Some(&unknown)), Readback::Changed, "never sent");
        assert_eq!(judge_write(Some(&Value::Nil), acked, Some(&unknown)), Readback::Lost, "no DEL failed");
        unknown.push(TOMBSTONE);
        assert_eq!(judge_write(Some(&Value::Nil), acked, Some(&unknown)), Readback::Indeterminate);
        assert_eq!(judge_write(Some(&bulk(b"v2")), TOMBSTONE, Some(&unknown)), Readback::Indeterminate);
        assert_eq!(judge_write(Some(&bulk(b"v1")), acked, Some(&unknown)), Readback::Held);
        // Counted apart from lost_writes.
        let mut r = VerifyResult::default();
        for rb in [Readback::Held, Readback::Lost, Readback::Changed, Readback::Indeterminate, Readback::Indeterminate, Readback::Unreadable] {
            r.judge_key(rb);
        }
        assert_eq!((r.lost, r.changed, r.indeterminate, r.unreadable, r.lost_writes()), (1, 1, 2, 1, 2));
    }

    #[test]
    fn unknown_writes_are_bounded_per_key() {
        let mut u = UnknownWrites::default();
        for d in 0..16 {
            u.push(d);
            u.push(d);
        }
        assert!(u.may_hold(15) && !u.may_hold(16), "16 remembered, duplicates once");
        u.push(16);
        assert!(u.may_hold(12345), "past the bound any value may be one of them");
        let mut other = UnknownWrites::default();
        other.push(99);
        let mut mine = UnknownWrites::default();
        mine.absorb(other);
        assert!(mine.may_hold(99) && !mine.may_hold(98));
    }
}
