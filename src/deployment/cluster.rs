//! Redis Cluster: key slots (CRC16 with hash tags), the slot → shard map read with CLUSTER SLOTS,
//! redirect replies (MOVED, ASK), and the local 3 + 3 cluster redis-test starts for a run.

use std::time::{Duration, Instant};

use super::conn::{Conn, ConnError, ConnectSpec};
use super::local::{LocalError, LocalServer};
use super::resp::Value;
use crate::scenario::model::{HostPort, Secret};

/// Number of hash slots.
pub const SLOTS: usize = 16384;

/// CRC16/XMODEM (polynomial 0x1021), the checksum Redis Cluster hashes keys with.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, b| (crc << 8) ^ CRC16_TABLE[(((crc >> 8) as u8) ^ b) as usize])
}

/// The slot of a key: only the part inside the first non-empty `{…}` counts, when there is one.
pub fn slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|b| *b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|b| *b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    crc16(hashed) % SLOTS as u16
}

/// The slot of the first key in an encoded round trip (`*N $len CMD $len KEY …`), skipping MULTI.
/// Workloads keep every key of a round trip in one slot, so the first key routes the whole of it.
/// `None` when the first command has no argument.
pub fn first_key_slot(buf: &[u8]) -> Option<u16> {
    let mut rest = buf;
    loop {
        let (argc, after) = header(rest, b'*')?;
        let (name_len, after) = header(after, b'$')?;
        let name = after.get(..name_len)?;
        let after = after.get(name_len + 2..)?;
        if argc == 1 {
            if name.eq_ignore_ascii_case(b"MULTI") {
                rest = after;
                continue;
            }
            return None;
        }
        let (key_len, after) = header(after, b'$')?;
        return Some(slot(after.get(..key_len)?));
    }
}

/// Parses `<marker><decimal>\r\n`, returning the number and what follows.
fn header(buf: &[u8], marker: u8) -> Option<(usize, &[u8])> {
    if buf.first() != Some(&marker) {
        return None;
    }
    let end = buf.iter().position(|b| *b == b'\r')?;
    let n = std::str::from_utf8(&buf[1..end]).ok()?.parse().ok()?;
    Some((n, buf.get(end + 2..)?))
}

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

/// Slot ranges of the local cluster's three primaries.
const LOCAL_RANGES: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

/// The loopback address local cluster node `index` sends from when its bus may be cut off
/// (`start_local(.., isolatable: true)`): the bus proxies tell the nodes apart by it.
pub fn source_ip(index: usize) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 10 + index as u8))
}

/// Settings for the tool's own setup connections to a local node.
fn setup_spec(addr: &HostPort, password: Option<&Secret>) -> ConnectSpec {
    ConnectSpec {
        addr: addr.clone(),
        username: None,
        password: password.cloned(),
        db: 0,
        protocol: crate::scenario::model::Protocol::Resp2,
        client_name: "redis-test:setup".into(),
        connect_timeout: Duration::from_secs(5),
        tls: None,
        follow: None,
        readonly: false,
        tally: None,
        via: None,
    }
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
        conf.push(format!("masterauth \"{}\"", p.expose().replace('\\', "\\\\").replace('"', "\\\"")));
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
        conns.push(Conn::connect(&setup_spec(&n.addr(), password)).await.map_err(|e| failed("connect", e.to_string()))?);
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
        let mut c = Conn::connect(&setup_spec(node, password)).await.map_err(|e| failed("connect", e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"{user1000}.followers"));
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // An empty tag hashes the whole key; only the first tag counts.
        assert_eq!(slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % 16384);
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
        assert_eq!(slot(b"foo{bar}{zap}"), slot(b"bar"));
    }

    #[test]
    fn the_first_key_routes_a_round_trip() {
        let mut buf = Vec::new();
        crate::deployment::resp::command(&mut buf, &[b"MULTI"]);
        crate::deployment::resp::command(&mut buf, &[b"SET", b"foo", b"1"]);
        crate::deployment::resp::command(&mut buf, &[b"EXEC"]);
        assert_eq!(first_key_slot(&buf), Some(12182));
        let mut buf = Vec::new();
        crate::deployment::resp::command(&mut buf, &[b"GET", b"bar"]);
        assert_eq!(first_key_slot(&buf), Some(5061));
        let mut buf = Vec::new();
        crate::deployment::resp::command(&mut buf, &[b"PING"]);
        assert_eq!(first_key_slot(&buf), None);
        assert_eq!(first_key_slot(b"garbage"), None);
    }

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
