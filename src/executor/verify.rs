//! After the run: read back every acknowledged write of `verify: true` workloads and count the ones
//! that are gone or hold something else. Each key is written by one worker only, so the last
//! acknowledged write of a key is the one the server must hold. Counters (INCR keys, HINCRBY
//! fields) are written by every worker: increments commute, so the server's value must equal the
//! sum of acknowledged increments, plus at most the ones whose outcome the client could not know.

use std::collections::HashMap;
use std::time::Duration;

use super::worker::Counters;
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

impl VerifyResult {
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
            (vec![b"GET".to_vec(), key], digest)
        });
        for (got, want) in reader.read(reads.collect()).await {
            match (got, want) {
                (None, _) | (Some(Value::Error(_)), _) => r.unreadable += 1,
                (Some(Value::Nil), TOMBSTONE) => {}
                (Some(Value::Nil), _) => r.lost += 1,
                (Some(Value::Bulk(b)), d) if d != TOMBSTONE && digest(&b) == d => {}
                _ => r.changed += 1,
            }
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
