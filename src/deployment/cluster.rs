//! The local 3 + 3 cluster redis-test starts for a run: nodes on free loopback ports joined with
//! CLUSTER commands, and its bus routed through fault proxies when a node may be cut off.

use std::time::{Duration, Instant};

use super::local::{LocalError, LocalServer, config_quoted};
use crate::client::native::cluster::Topology;
use crate::client::native::conn::{Conn, ConnError, ConnectSpec};
use crate::resp::Value;
use crate::scenario::model::{HostPort, Secret};

/// Slot ranges of the local cluster's three primaries.
const LOCAL_RANGES: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

/// The loopback address local cluster node `index` sends from when its bus may be cut off
/// (`start_local(.., isolatable: true)`): the bus proxies tell the nodes apart by it.
pub fn source_ip(index: usize) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 10 + index as u8))
}

/// Starts three primaries and three replicas and joins them into a cluster with CLUSTER commands
/// (no redis-cli needed): config epochs, slot ranges, MEET, REPLICATE, then waits until every node
/// reports `cluster_state:ok`, every replica is in sync and every node sees the same slot map.
/// Nodes 0–2 are the primaries of shards 0–2, node 3 + N replicates node N.
///
/// `isolatable`: each node sends from its own loopback address ([`source_ip`]) and announces
/// 127.0.0.1, so that bus proxies ([`route_bus_through`]) can cut one node off from its peers.
pub async fn start_local(password: Option<&Secret>, node_timeout: Duration, isolatable: bool) -> Result<Vec<LocalServer>, LocalError> {
    let mut conf = vec![
        "cluster-enabled yes".to_owned(),
        "cluster-config-file nodes.conf".to_owned(),
        format!("cluster-node-timeout {}", node_timeout.as_millis()),
        // Any replica may take over, however long it was cut off: a test cluster should fail over.
        "cluster-replica-validity-factor 0".to_owned(),
        "repl-diskless-sync-delay 0".to_owned(),
        // CLUSTER SLOTS lists a replica only once its replication offset is non-zero, and an idle
        // primary moves the offset with its pings to replicas: every 10 s by default.
        "repl-ping-replica-period 1".to_owned(),
    ];
    if let Some(p) = password {
        conf.push(format!("masterauth {}", config_quoted(p)));
    }
    let mut nodes = Vec::new();
    for i in 0..6 {
        let mut node_conf = conf.clone();
        if isolatable {
            // Without the announced address the peers would record the source address, where
            // nothing listens. Protected mode counts only 127.0.0.1 as loopback and would refuse
            // a replica's sync from 127.0.0.1x; the node still listens on 127.0.0.1 only.
            node_conf.extend([
                format!("bind-source-addr {}", source_ip(i)),
                "cluster-announce-ip 127.0.0.1".into(),
                "replica-announce-ip 127.0.0.1".into(),
                "protected-mode no".into(),
            ]);
        }
        nodes.push(LocalServer::start(password, &node_conf).await?);
    }
    let failed = |what: &str, e: String| LocalError::Failed(format!("cluster setup: {what}: {e}"));
    let mut conns = Vec::new();
    for n in &nodes {
        conns.push(Conn::connect(&ConnectSpec::setup(&n.addr(), password)).await.map_err(|e| failed("connect", e.to_string()))?);
    }
    let t = Duration::from_secs(5);
    let mut ids = Vec::new();
    for (i, c) in conns.iter_mut().enumerate() {
        let epoch = (i + 1).to_string();
        ok(c.command(&[b"CLUSTER", b"SET-CONFIG-EPOCH", epoch.as_bytes()], t).await).map_err(|e| failed("SET-CONFIG-EPOCH", e))?;
        let id = ok(c.command(&[b"CLUSTER", b"MYID"], t).await).map_err(|e| failed("MYID", e))?;
        ids.push(id.as_bytes().map(|b| b.to_vec()).unwrap_or_default());
    }
    for (c, (from, to)) in conns.iter_mut().zip(LOCAL_RANGES) {
        let (from, to) = (from.to_string(), to.to_string());
        ok(c.command(&[b"CLUSTER", b"ADDSLOTSRANGE", from.as_bytes(), to.as_bytes()], t).await).map_err(|e| failed("ADDSLOTSRANGE", e))?;
    }
    let first_port = nodes[0].addr().port.to_string();
    for c in conns.iter_mut().skip(1) {
        ok(c.command(&[b"CLUSTER", b"MEET", b"127.0.0.1", first_port.as_bytes()], t).await).map_err(|e| failed("MEET", e))?;
    }
    wait_until("every node knows the other five", &mut conns, |c| {
        Box::pin(async move {
            let nodes = c.command(&[b"CLUSTER", b"NODES"], t).await.ok()?;
            Some(String::from_utf8_lossy(nodes.as_bytes()?).lines().filter(|l| !l.contains("handshake") && !l.contains("noaddr")).count() == 6)
        })
    })
    .await?;
    tracing::debug!("cluster nodes know each other");
    for i in 0..3 {
        let id = ids[i].clone();
        ok(conns[3 + i].command(&[b"CLUSTER", b"REPLICATE", &id], t).await).map_err(|e| failed("REPLICATE", e))?;
    }
    wait_until("cluster_state:ok, replicas in sync, one slot map", &mut conns, |c| {
        Box::pin(async move {
            let info = c.command(&[b"CLUSTER", b"INFO"], t).await.ok()?;
            let state_ok = String::from_utf8_lossy(info.as_bytes()?).contains("cluster_state:ok");
            let repl = c.command(&[b"INFO", b"replication"], t).await.ok()?;
            let repl = String::from_utf8_lossy(repl.as_bytes()?).into_owned();
            let synced = repl.contains("role:master") || (repl.contains("master_link_status:up") && !repl.contains("master_sync_in_progress:1"));
            let slots = c.command(&[b"CLUSTER", b"SLOTS"], t).await.ok()?;
            let whole = Topology::from_cluster_slots(&slots, &HostPort { host: "127.0.0.1".into(), port: 0 })
                .is_ok_and(|topo| topo.shards.len() == 3 && topo.shards.iter().all(|s| s.replicas.len() == 1));
            Some(state_ok && synced && whole)
        })
    })
    .await?;
    tracing::info!(nodes = %nodes.iter().map(|n| n.addr().to_string()).collect::<Vec<_>>().join(" "), "local cluster ready");
    Ok(nodes)
}

/// Makes every node announce `bus[i]` (a proxy in front of node i's bus port) as its bus port, so
/// that the peers reach it through the proxy, and waits until every node names every peer at its
/// proxy. The setting is written to each node's config file, so it survives restarts.
pub async fn route_bus_through(nodes: &[HostPort], bus: &[HostPort], password: Option<&Secret>) -> Result<(), LocalError> {
    let failed = |what: &str, e: String| LocalError::Failed(format!("routing the cluster bus through the proxies: {what}: {e}"));
    let t = Duration::from_secs(5);
    let mut conns = Vec::new();
    for (node, proxy) in nodes.iter().zip(bus) {
        let mut c = Conn::connect(&ConnectSpec::setup(node, password)).await.map_err(|e| failed("connect", e.to_string()))?;
        let port = proxy.port.to_string();
        ok(c.command(&[b"CONFIG", b"SET", b"cluster-announce-bus-port", port.as_bytes()], t).await).map_err(|e| failed("CONFIG SET", e))?;
        ok(c.command(&[b"CONFIG", b"REWRITE"], t).await).map_err(|e| failed("CONFIG REWRITE", e))?;
        conns.push(c);
    }
    let wanted: std::collections::BTreeSet<String> = bus.iter().map(|p| format!("@{}", p.port)).collect();
    wait_until("every node reaches every peer through its bus proxy", &mut conns, |c| {
        let wanted = wanted.clone();
        Box::pin(async move {
            let reply = c.command(&[b"CLUSTER", b"NODES"], t).await.ok()?;
            let text = String::from_utf8_lossy(reply.as_bytes()?).into_owned();
            let seen: std::collections::BTreeSet<String> = text
                .lines()
                .filter(|l| l.contains("connected") || l.contains("myself"))
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter_map(|field| {
                    let addr = field.split(',').next()?;
                    addr.find('@').map(|at| addr[at..].to_owned())
                })
                .collect();
            Some(seen == wanted)
        })
    })
    .await
}

fn ok(r: Result<Value, ConnError>) -> Result<Value, String> {
    match r {
        Ok(Value::Error(e)) => Err(e),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

type Check<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Option<bool>> + Send + 'a>>;

/// Polls every node with `check` until all pass (the cluster bus has no event a client can await),
/// within 30 s.
async fn wait_until(what: &str, conns: &mut [Conn], check: impl for<'a> Fn(&'a mut Conn) -> Check<'a>) -> Result<(), LocalError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut all = true;
        for c in conns.iter_mut() {
            if check(c).await != Some(true) {
                all = false;
                break;
            }
        }
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LocalError::Failed(format!("cluster setup: gave up waiting until {what} after 30s")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The primaries (by address) that a CLUSTER NODES text shows with a replica whose link is up and
/// that no node flags failed; `host` stands in for an empty host.
pub fn primaries_with_replicas(nodes: &str, host: &str) -> Vec<HostPort> {
    let rows: Vec<Vec<&str>> = nodes.lines().map(|l| l.split_whitespace().collect()).filter(|f: &Vec<&str>| f.len() >= 8).collect();
    let addr_of = |field: &str| -> Option<HostPort> {
        let hp = field.split('@').next()?;
        let (h, p) = hp.rsplit_once(':')?;
        Some(HostPort { host: if h.is_empty() { host.to_owned() } else { h.to_owned() }, port: p.parse().ok()? })
    };
    let healthy = |f: &Vec<&str>| !f[2].contains("fail") && !f[2].contains("handshake") && !f[2].contains("noaddr") && f[7] == "connected";
    rows.iter()
        .filter(|f| f[2].contains("master"))
        .filter(|m| rows.iter().any(|r| r[2].contains("slave") && r[3] == m[0] && healthy(r)))
        .filter_map(|m| addr_of(m[1]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primaries_with_a_healthy_replica_are_read_from_cluster_nodes() {
        let text = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922
c3 :7002@17002 master - 0 0 3 connected 10923-16383
d4 127.0.0.1:7003@17003 slave a1 0 0 1 connected
e5 127.0.0.1:7004@17004 slave,fail b2 0 0 2 disconnected
f6 127.0.0.1:7005@17005 slave c3 0 0 3 connected
";
        let got = primaries_with_replicas(text, "10.0.0.1");
        assert_eq!(got, vec![HostPort { host: "127.0.0.1".into(), port: 7000 }, HostPort { host: "10.0.0.1".into(), port: 7002 }]);
    }
}
