//! Redis Sentinel: find the master through the sentinels, and follow it when it moves. A watcher
//! subscribes to `+switch-master` (the event a failover publishes) and, as a fallback for a lost
//! subscription, asks again once a second; every move bumps a generation so that pooled
//! connections to the old master are dropped instead of reused.

use std::sync::Arc;
use std::time::Duration;

use super::conn::{Conn, ConnectSpec};
use super::master::Master;

use crate::resp::{self, Value};
use crate::scenario::model::HostPort;

/// How to talk to the sentinels.
#[derive(Debug, Clone)]
pub struct Sentinels {
    /// Their addresses.
    pub nodes: Vec<HostPort>,
    /// The monitored master's name.
    pub master_name: String,
    /// Whether the watcher also keeps the replica list current (replica reads).
    pub track_replicas: bool,
    /// Connection settings (credentials for the sentinels; the address is replaced per node).
    pub spec: ConnectSpec,
}

impl Sentinels {
    fn spec_for(&self, node: &HostPort) -> ConnectSpec {
        ConnectSpec { addr: node.clone(), follow: None, db: 0, ..self.spec.clone() }
    }

    /// Asks the sentinels, in order, where the master is.
    pub async fn discover(&self) -> Result<HostPort, String> {
        let mut last = String::from("no sentinel configured");
        for node in &self.nodes {
            match self.ask(node).await {
                Ok(a) => return Ok(a),
                Err(e) => last = format!("sentinel {node}: {e}"),
            }
        }
        Err(last)
    }

    async fn ask(&self, node: &HostPort) -> Result<HostPort, String> {
        let mut c = Conn::connect(&self.spec_for(node)).await.map_err(|e| e.to_string())?;
        let v =
            c.command(&[b"SENTINEL", b"get-master-addr-by-name", self.master_name.as_bytes()], self.spec.connect_timeout).await.map_err(|e| e.to_string())?;
        match v {
            Value::Array(items) if items.len() == 2 => {
                let host = items[0].as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).ok_or("malformed reply")?;
                let port = items[1].as_bytes().and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()).ok_or("malformed port")?;
                Ok(HostPort { host, port })
            }
            Value::Nil => Err(format!("does not know a master named `{}`", self.master_name)),
            Value::Error(e) => Err(e),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// Asks the sentinels, in order, for the master's replicas that are up and in sync.
    pub async fn replicas(&self) -> Result<Vec<HostPort>, String> {
        let mut last = String::from("no sentinel configured");
        for node in &self.nodes {
            let attempt = async {
                let mut c = Conn::connect(&self.spec_for(node)).await.map_err(|e| e.to_string())?;
                let v = c.command(&[b"SENTINEL", b"REPLICAS", self.master_name.as_bytes()], self.spec.connect_timeout).await.map_err(|e| e.to_string())?;
                healthy_replicas(&v)
            };
            match attempt.await {
                Ok(r) => return Ok(r),
                Err(e) => last = format!("sentinel {node}: {e}"),
            }
        }
        Err(last)
    }

    async fn refresh_replicas(&self, master: &Master) {
        if self.track_replicas
            && let Ok(r) = self.replicas().await
        {
            master.set_replicas(r);
        }
    }

    /// Runs `SENTINEL FAILOVER <name>` on the first sentinel that accepts it.
    pub async fn failover(&self) -> Result<String, String> {
        let mut last = String::new();
        for node in &self.nodes {
            let attempt = async {
                let mut c = Conn::connect(&self.spec_for(node)).await.map_err(|e| e.to_string())?;
                match c.command(&[b"SENTINEL", b"FAILOVER", self.master_name.as_bytes()], Duration::from_secs(5)).await.map_err(|e| e.to_string())? {
                    Value::Error(e) => Err(e),
                    _ => Ok(format!("SENTINEL FAILOVER {} accepted by {node}", self.master_name)),
                }
            };
            match attempt.await {
                Ok(msg) => return Ok(msg),
                Err(e) => last = format!("sentinel {node}: {e}"),
            }
        }
        Err(last)
    }

    /// Follows the master until the task is aborted.
    pub async fn watch(self, master: Arc<Master>) {
        loop {
            for node in &self.nodes {
                let Ok(mut c) = Conn::connect(&self.spec_for(node)).await else { continue };
                let mut sub = Vec::new();
                resp::command(&mut sub, &[b"SUBSCRIBE", b"+switch-master"]);
                if c.send_only(&sub).await.is_err() || c.read_value().await.is_err() {
                    continue;
                }
                loop {
                    // The event is the fast path; asking once a second covers a lost subscription.
                    match tokio::time::timeout(Duration::from_secs(1), c.read_value()).await {
                        Ok(Ok(v)) => {
                            if let Some(addr) = switch_target(&v, &self.master_name) {
                                master.moved_to(addr);
                                self.refresh_replicas(&master).await;
                            }
                        }
                        Ok(Err(_)) => break,
                        Err(_) => {
                            if let Ok(addr) = self.discover().await {
                                master.moved_to(addr);
                            }
                            self.refresh_replicas(&master).await;
                        }
                    }
                }
            }
            if let Ok(addr) = self.discover().await {
                master.moved_to(addr);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The replicas in a `SENTINEL REPLICAS` reply (field/value lists) that are neither down nor
/// disconnected and whose link to the master is up.
fn healthy_replicas(v: &Value) -> Result<Vec<HostPort>, String> {
    let items = match v {
        Value::Array(i) => i,
        Value::Error(e) => return Err(e.clone()),
        other => return Err(format!("unexpected reply {other:?}")),
    };
    let mut out = Vec::new();
    for r in items {
        let Value::Array(fields) = r else { continue };
        let get = |name: &str| {
            fields
                .chunks(2)
                .find(|kv| kv[0].as_bytes() == Some(name.as_bytes()))
                .and_then(|kv| kv.get(1)?.as_bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        let (Some(ip), Some(port), flags, link) =
            (get("ip"), get("port").and_then(|p| p.parse().ok()), get("flags").unwrap_or_default(), get("master-link-status"))
        else {
            continue;
        };
        if ["s_down", "o_down", "disconnected"].iter().any(|f| flags.contains(f)) || link.as_deref() != Some("ok") {
            continue;
        }
        out.push(HostPort { host: ip, port });
    }
    Ok(out)
}

/// The new address in a `+switch-master` message for our master: `<name> <old ip> <old port> <new ip> <new port>`.
fn switch_target(v: &Value, name: &str) -> Option<HostPort> {
    let items = match v {
        Value::Array(i) | Value::Push(i) => i,
        _ => return None,
    };
    let text = String::from_utf8_lossy(items.get(2)?.as_bytes()?).into_owned();
    let parts: Vec<&str> = text.split(' ').collect();
    if parts.len() != 5 || parts[0] != name {
        return None;
    }
    Some(HostPort { host: parts[3].to_owned(), port: parts[4].parse().ok()? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_healthy_replicas_are_read_from() {
        let replica = |port: &str, flags: &str, link: &str| {
            Value::Array(
                [("name", "x"), ("ip", "127.0.0.1"), ("port", port), ("flags", flags), ("master-link-status", link)]
                    .iter()
                    .flat_map(|(k, v)| [Value::Bulk(k.as_bytes().to_vec()), Value::Bulk(v.as_bytes().to_vec())])
                    .collect(),
            )
        };
        let reply = Value::Array(vec![replica("7001", "slave", "ok"), replica("7002", "s_down,slave", "ok"), replica("7003", "slave", "err")]);
        assert_eq!(healthy_replicas(&reply).unwrap(), vec![HostPort { host: "127.0.0.1".into(), port: 7001 }]);
        assert!(healthy_replicas(&Value::Error("ERR No such master with that name".into())).is_err());
    }

    #[test]
    fn switch_master_messages_are_read() {
        let msg = Value::Array(vec![
            Value::Bulk(b"message".to_vec()),
            Value::Bulk(b"+switch-master".to_vec()),
            Value::Bulk(b"m 127.0.0.1 7000 127.0.0.1 7001".to_vec()),
        ]);
        assert_eq!(switch_target(&msg, "m"), Some(HostPort { host: "127.0.0.1".into(), port: 7001 }));
        assert_eq!(switch_target(&msg, "other"), None);
        let m = Master::new(HostPort { host: "a".into(), port: 1 });
        assert!(m.moved_to(HostPort { host: "b".into(), port: 2 }));
        assert!(!m.moved_to(HostPort { host: "b".into(), port: 2 }));
        assert_eq!(m.generation(), 1);
    }
}
