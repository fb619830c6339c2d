//! Redis Cluster as a client sees it: the slot → shard map read with CLUSTER SLOTS, and redirect
//! replies (MOVED, ASK). Key slots themselves are [`crate::slots`].

use std::time::Duration;

use super::conn::{Conn, ConnectSpec};
use crate::resp::Value;
use crate::scenario::model::HostPort;
use crate::slots::SLOTS;

/// A redirect reply: the slot lives elsewhere for good (MOVED) or for this one command (ASK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// `true` for ASK (send ASKING first, do not update the map).
    pub ask: bool,
    /// The slot.
    pub slot: u16,
    /// Where to go.
    pub to: HostPort,
}

impl Redirect {
    /// Parses `MOVED 3999 127.0.0.1:6381` or `ASK 3999 127.0.0.1:6381`; `fallback_host` stands in for
    /// an empty host (a node that does not know its own address writes `:6381`).
    pub fn parse(msg: &str, fallback_host: &str) -> Option<Redirect> {
        let mut parts = msg.split_whitespace();
        let ask = match parts.next()? {
            "MOVED" => false,
            "ASK" => true,
            _ => return None,
        };
        let slot = parts.next()?.parse().ok()?;
        let (host, port) = parts.next()?.rsplit_once(':')?;
        let host = if host.is_empty() { fallback_host } else { host };
        Some(Redirect { ask, slot, to: HostPort { host: host.to_owned(), port: port.parse().ok()? } })
    }
}

/// One shard: the primary serving a set of slot ranges, and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The primary.
    pub master: HostPort,
    /// Replicas, as CLUSTER SLOTS lists them.
    pub replicas: Vec<HostPort>,
    /// Slot ranges, inclusive.
    pub ranges: Vec<(u16, u16)>,
}

/// The slot map: shards ordered by their lowest slot, and the owner of every slot.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Shards; shard N of a `failover` fault is `shards[N]`.
    pub shards: Vec<Shard>,
    /// Shard index per slot (`u16::MAX` for an unserved slot).
    pub owner: Vec<u16>,
}

impl Topology {
    /// Builds the map from a CLUSTER SLOTS reply; `asked` is the node that answered (its host stands
    /// in for empty hosts).
    pub fn from_cluster_slots(reply: &Value, asked: &HostPort) -> Result<Topology, String> {
        let Value::Array(ranges) = reply else { return Err(format!("unexpected CLUSTER SLOTS reply {reply:?}")) };
        let node = |v: &Value| -> Option<HostPort> {
            let Value::Array(parts) = v else { return None };
            let host = String::from_utf8_lossy(parts.first()?.as_bytes()?).into_owned();
            let Value::Int(port) = parts.get(1)? else { return None };
            let host = if host.is_empty() || host == "?" { asked.host.clone() } else { host };
            Some(HostPort { host, port: u16::try_from(*port).ok()? })
        };
        let mut shards: Vec<Shard> = Vec::new();
        for r in ranges {
            let Value::Array(parts) = r else { return Err("malformed CLUSTER SLOTS entry".into()) };
            let (Some(Value::Int(from)), Some(Value::Int(to)), Some(master)) = (parts.first(), parts.get(1), parts.get(2).and_then(node)) else {
                return Err("malformed CLUSTER SLOTS entry".into());
            };
            let range = (*from as u16, *to as u16);
            match shards.iter_mut().find(|s| s.master == master) {
                Some(s) => s.ranges.push(range),
                None => shards.push(Shard { master, replicas: parts[3..].iter().filter_map(node).collect(), ranges: vec![range] }),
            }
        }
        if shards.is_empty() {
            return Err("the cluster serves no slots".into());
        }
        for s in &mut shards {
            s.ranges.sort_unstable();
        }
        shards.sort_by_key(|s| s.ranges[0].0);
        let mut owner = vec![u16::MAX; SLOTS];
        for (i, s) in shards.iter().enumerate() {
            for (from, to) in &s.ranges {
                for slot in *from..=(*to).min(SLOTS as u16 - 1) {
                    owner[slot as usize] = i as u16;
                }
            }
        }
        Ok(Topology { shards, owner })
    }

    /// Asks the first node of `candidates` that answers for the slot map.
    pub async fn fetch(spec: &ConnectSpec, candidates: &[HostPort], timeout: Duration) -> Result<Topology, String> {
        let mut last = String::from("no node to ask");
        for addr in candidates {
            let spec = ConnectSpec { addr: addr.clone(), ..spec.clone() };
            let attempt = async {
                let mut c = Conn::connect(&spec).await.map_err(|e| e.to_string())?;
                let reply = c.command(&[b"CLUSTER", b"SLOTS"], timeout).await.map_err(|e| e.to_string())?;
                if let Value::Error(e) = reply {
                    return Err(e);
                }
                Topology::from_cluster_slots(&reply, addr)
            };
            match attempt.await {
                Ok(t) => return Ok(t),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    }

    /// Every node: primaries first, then replicas.
    pub fn nodes(&self) -> Vec<HostPort> {
        let mut out: Vec<HostPort> = self.shards.iter().map(|s| s.master.clone()).collect();
        out.extend(self.shards.iter().flat_map(|s| s.replicas.iter().cloned()));
        out
    }

    /// Whom to ask for a newer slot map: this map's nodes (primaries first), then the seeds it
    /// does not name (a seed may be the only node still answering).
    pub fn candidates(&self, seeds: &[HostPort]) -> Vec<HostPort> {
        let mut out = self.nodes();
        for s in seeds {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_parse() {
        assert_eq!(
            Redirect::parse("MOVED 3999 127.0.0.1:6381", "x"),
            Some(Redirect { ask: false, slot: 3999, to: HostPort { host: "127.0.0.1".into(), port: 6381 } })
        );
        assert_eq!(Redirect::parse("ASK 1 :7000", "10.0.0.1"), Some(Redirect { ask: true, slot: 1, to: HostPort { host: "10.0.0.1".into(), port: 7000 } }));
        assert_eq!(Redirect::parse("CLUSTERDOWN The cluster is down", "x"), None);
    }

    #[test]
    fn cluster_slots_build_the_map() {
        let node = |port: i64| Value::Array(vec![Value::Bulk(b"127.0.0.1".to_vec()), Value::Int(port), Value::Bulk(b"id".to_vec())]);
        let reply = Value::Array(vec![
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node(7001), node(7004)]),
            Value::Array(vec![Value::Int(0), Value::Int(5460), node(7000)]),
        ]);
        let t = Topology::from_cluster_slots(&reply, &HostPort { host: "127.0.0.1".into(), port: 7000 }).unwrap();
        assert_eq!(t.shards[0].master.port, 7000);
        assert_eq!(t.shards[1].replicas[0].port, 7004);
        assert_eq!((t.owner[0], t.owner[5460], t.owner[5461], t.owner[16383]), (0, 0, 1, 1));
        assert_eq!(t.nodes().len(), 3);
    }
}
