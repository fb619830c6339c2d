//! After the run: read back every acknowledged write of `verify: true` workloads and count the ones
//! that are gone or hold something else. Each key is written by one worker only, so the last
//! acknowledged write of a key is the one the server must hold.

use std::collections::HashMap;
use std::time::Duration;

use crate::deployment::Deployment;
use crate::deployment::cluster;
use crate::deployment::conn::{Conn, ConnectSpec};
use crate::deployment::resp::{CommandWriter, Value};
use crate::keys::{digest, key_into};
use crate::scenario::model::HostPort;
use crate::workload::Workload;
use crate::workload::basic::TOMBSTONE;

/// Keys read back per round trip.
const BATCH: usize = 256;

/// Verification of one workload's acknowledged writes.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct VerifyResult {
    /// Workload name.
    pub workload: String,
    /// Keys whose last acknowledged write was checked.
    pub checked: u64,
    /// Acknowledged writes whose key is gone.
    pub lost: u64,
    /// Acknowledged writes whose key holds a different value (or exists after an acknowledged DEL).
    pub changed: u64,
    /// Keys that could not be read back (errors during verification).
    pub unreadable: u64,
    /// Whether more writes were acknowledged than could be remembered (verification is partial).
    pub truncated: bool,
}

impl VerifyResult {
    /// Acknowledged writes that did not survive.
    pub fn lost_writes(&self) -> u64 {
        self.lost + self.changed
    }
}

/// Reads back the remembered writes of every verifying workload, from the target or, for a
/// cluster, from the primary now serving each key's slot.
pub async fn check(deployment: &Deployment, workloads: &[Workload], acks: &HashMap<(u16, u64), u64>, truncated: bool, timeout: Duration) -> Vec<VerifyResult> {
    let spec = &deployment.spec;
    let topology = match deployment.cluster {
        Some(_) => deployment.current_topology(spec).await.ok(),
        None => None,
    };
    let mut conns: HashMap<HostPort, Conn> = HashMap::new();
    let mut out = Vec::new();
    for (wi, w) in workloads.iter().enumerate() {
        if !w.verify {
            continue;
        }
        let mut r = VerifyResult { workload: w.name.clone(), truncated, ..Default::default() };
        let mut keys: Vec<(u64, u64)> = acks.iter().filter(|((x, _), _)| *x as usize == wi).map(|((_, k), d)| (*k, *d)).collect();
        keys.sort_unstable();
        r.checked = keys.len() as u64;
        // Group the keys by the node that holds them.
        let mut by_node: HashMap<HostPort, Vec<(Vec<u8>, u64)>> = HashMap::new();
        for (k, digest) in keys {
            let mut key = Vec::new();
            key_into(&mut key, w.keyspace.prefix.as_bytes(), k);
            let node = match &topology {
                Some(t) => match t.owner.get(cluster::slot(&key) as usize).and_then(|s| t.shards.get(*s as usize)) {
                    Some(shard) => shard.master.clone(),
                    None => {
                        r.unreadable += 1;
                        continue;
                    }
                },
                None if deployment.cluster.is_some() => {
                    r.unreadable += 1;
                    continue;
                }
                None => spec.addr.clone(),
            };
            by_node.entry(node).or_default().push((key, digest));
        }
        for (node, keys) in by_node {
            for chunk in keys.chunks(BATCH) {
                if !conns.contains_key(&node) {
                    if let Ok(c) = Conn::connect(&ConnectSpec { addr: node.clone(), ..spec.clone() }).await {
                        conns.insert(node.clone(), c);
                    }
                }
                let Some(c) = conns.get_mut(&node) else {
                    r.unreadable += chunk.len() as u64;
                    continue;
                };
                let mut buf = Vec::new();
                for (key, _) in chunk {
                    CommandWriter::new(&mut buf, 2).arg(b"GET").arg(key);
                }
                let mut replies = Vec::with_capacity(chunk.len());
                let ok = matches!(tokio::time::timeout(timeout * 4, c.roundtrip(&buf, chunk.len(), &mut replies)).await, Ok(Ok(())));
                if !ok {
                    r.unreadable += chunk.len() as u64;
                    conns.remove(&node);
                    continue;
                }
                for ((_, want), got) in chunk.iter().zip(&replies) {
                    match (got, *want) {
                        (Value::Nil, TOMBSTONE) => {}
                        (Value::Nil, _) => r.lost += 1,
                        (Value::Bulk(b), d) if d != TOMBSTONE && digest(b) == d => {}
                        (Value::Error(_), _) => r.unreadable += 1,
                        _ => r.changed += 1,
                    }
                }
            }
        }
        out.push(r);
    }
    out
}
