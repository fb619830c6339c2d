//! The deployment under test: connection specs from the scenario's target, the local deployments
//! redis-test starts for a run (standalone, cluster, sentinel), and the fault proxies in front of
//! them. How the clients talk to it is [`crate::client`]'s business.

pub mod cluster;
pub mod local;
pub mod proxy;

use crate::client::maintenance::ClientMaintenance;
use crate::client::native::conn::{Conn, ConnError, ConnectSpec};
use crate::client::native::{sentinel, tls};
use crate::scenario::model::{Connections, Endpoint, HostPort, LocalTopology, Mode, Target};
use local::{LocalError, LocalServer};

/// Why the target cannot be used; every variant means exit code 3.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A local deployment could not start.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The first connection failed.
    #[error("cannot reach the target {addr}: {err}")]
    Unreachable {
        /// Address tried.
        addr: String,
        /// Why.
        err: ConnError,
    },
    /// The server refused the handshake.
    #[error("the target {addr} refused the connection: {msg} (check username and password)")]
    Rejected {
        /// Address tried.
        addr: String,
        /// The server's error.
        msg: String,
    },
    /// TLS could not be set up or the handshake failed.
    #[error("TLS with the target {addr} failed: {msg}")]
    Tls {
        /// Address tried.
        addr: String,
        /// What went wrong (untrusted certificate, wrong name, unreadable file).
        msg: String,
    },
    /// A target this build cannot drive yet.
    #[error("{0}")]
    Unsupported(String),
}

/// Processes redis-test started for the run.
pub enum Local {
    /// One redis-server.
    Standalone(Box<LocalServer>),
    /// Three primaries (nodes 0–2) and their replicas (nodes 3–5).
    Cluster(Vec<LocalServer>),
    /// Primary, replica and three sentinels.
    Sentinel {
        /// Node 0: the first primary, node 1: its replica.
        nodes: Vec<LocalServer>,
        /// The sentinels.
        sentinels: Vec<LocalServer>,
    },
}

impl Local {
    /// The data nodes, in start order (node 0 is the first primary).
    pub fn nodes(&self) -> Vec<&LocalServer> {
        match self {
            Local::Standalone(s) => vec![s],
            Local::Cluster(nodes) => nodes.iter().collect(),
            Local::Sentinel { nodes, .. } => nodes.iter().collect(),
        }
    }

    async fn stop(self) {
        match self {
            Local::Standalone(s) => s.stop().await,
            Local::Cluster(nodes) => {
                for s in nodes {
                    s.stop().await;
                }
            }
            Local::Sentinel { nodes, sentinels } => {
                for s in sentinels.into_iter().chain(nodes) {
                    s.stop().await;
                }
            }
        }
    }
}

/// A ready target: how to connect, the local processes to stop afterwards, and for sentinel
/// targets the watcher that follows the master.
pub struct Deployment {
    /// Connection settings for data connections.
    pub spec: ConnectSpec,
    /// The processes, when the tool started them.
    pub local: Option<Local>,
    /// How to reach the sentinels (sentinel targets).
    pub sentinels: Option<sentinel::Sentinels>,
    /// The slot map when the run started (cluster targets).
    pub cluster: Option<crate::client::native::cluster::Topology>,
    /// Cluster nodes to ask for the slot map when the known ones do not answer.
    pub seeds: Vec<HostPort>,
    /// Fault proxies in front of the nodes (`target.proxy`), by node index; `spec.addr` is then
    /// the proxy's address.
    pub proxies: Vec<proxy::Proxy>,
    /// Local clusters behind the proxy: a proxy in front of each node's cluster bus port, by node
    /// index, through which the peers reach it (a partition cuts the node off from its peers too).
    pub bus_proxies: Vec<proxy::Proxy>,
    /// The node's own address when a proxy stands in front of it: faults, verify and cleanup
    /// reach the node directly, so a network fault never holds the tool's own control commands.
    pub direct: Option<HostPort>,
    watcher: Option<tokio::task::JoinHandle<()>>,
    /// Nodes a maintenance moved the target to, with the proxy in front of each (the new
    /// endpoint): stopped with the deployment.
    pub moved: std::sync::Mutex<Vec<(LocalServer, Option<std::sync::Arc<proxy::Proxy>>)>>,
}

impl Deployment {
    /// What a client needs to know to connect to it.
    pub fn reach(&self) -> crate::client::redis_rs::Reach<'_> {
        crate::client::redis_rs::Reach { spec: &self.spec, cluster: self.cluster.as_ref(), sentinels: self.sentinels.as_ref(), seeds: &self.seeds }
    }

    /// Opens one connection; used to prove the target is reachable before the run starts.
    pub async fn probe(&self) -> Result<Conn, TargetError> {
        let addr = self.spec.addr.to_string();
        Conn::connect(&self.spec).await.map_err(|err| match err {
            // Not a credentials problem: the server does not know maintenance notifications.
            ConnError::Rejected(msg) if msg.contains("MAINT_NOTIFICATIONS") => TargetError::Unsupported(format!("the target {addr}: {msg}")),
            ConnError::Rejected(msg) => TargetError::Rejected { addr, msg },
            ConnError::Tls(msg) => TargetError::Tls { addr, msg },
            err => TargetError::Unreachable { addr, err },
        })
    }

    /// The cluster's slot map now, asked of the nodes known at the start and the seeds.
    pub async fn current_topology(&self, spec: &ConnectSpec) -> Result<crate::client::native::cluster::Topology, String> {
        let start = self.cluster.as_ref().ok_or("not a cluster target")?;
        crate::client::native::cluster::Topology::fetch(&spec.direct(), &start.candidates(&self.seeds), std::time::Duration::from_secs(5))
            .await
            .map_err(|e| format!("cluster slot map: {e}"))
    }

    /// Connection settings for every node holding data: the target, or each cluster primary (all
    /// cluster nodes with `all`), as `spec` but for that node.
    pub async fn data_nodes(&self, spec: &ConnectSpec, all: bool) -> Result<Vec<ConnectSpec>, String> {
        let spec = &spec.direct();
        if self.cluster.is_none() {
            // After a maintenance moved the target, the data lives on the new node.
            let moved = self.moved.lock().expect("moved lock").last().map(|(node, _)| node.addr());
            let addr = moved.or_else(|| self.direct.clone()).unwrap_or_else(|| spec.addr.clone());
            return Ok(vec![ConnectSpec { addr, ..spec.clone() }]);
        }
        let topology = self.current_topology(spec).await?;
        let addrs = if all { topology.nodes() } else { topology.shards.iter().map(|s| s.master.clone()).collect() };
        Ok(addrs.into_iter().map(|addr| ConnectSpec { addr, ..spec.clone() }).collect())
    }

    /// Puts a fault proxy in front of every node (validation keeps proxies to standalone and
    /// cluster targets). Standalone: the target's address becomes the proxy's. Cluster: one proxy
    /// per node — local nodes in start order, so `node: N` is local node N — and the connect-time
    /// map sends every data connection through them.
    async fn start_proxies(&mut self, resp_aware: bool) -> std::io::Result<()> {
        if let Some(sentinels) = &self.sentinels {
            // The master watcher follows the sentinels' answer; the map sends the connection to
            // that node's proxy. Local nodes in start order; otherwise the master and the
            // replicas the sentinels name now (a node they name later is reached directly).
            let nodes: Vec<HostPort> = match &self.local {
                Some(local) => local.nodes().iter().map(|n| n.addr().clone()).collect(),
                None => {
                    let mut nodes = vec![sentinels.discover().await.map_err(std::io::Error::other)?];
                    nodes.extend(sentinels.replicas().await.map_err(std::io::Error::other)?);
                    nodes
                }
            };
            return self.proxy_each(nodes, resp_aware).await;
        }
        let Some(topology) = &self.cluster else {
            let p =
                if resp_aware { proxy::Proxy::start_resp_aware(self.spec.addr.clone()).await? } else { proxy::Proxy::start(self.spec.addr.clone()).await? };
            tracing::info!(proxy = %p.addr, node = %p.upstream(), "fault proxy in front of the node");
            self.direct = Some(std::mem::replace(&mut self.spec.addr, p.addr.clone()));
            self.proxies.push(p);
            return Ok(());
        };
        let nodes: Vec<HostPort> = match &self.local {
            Some(local) => local.nodes().iter().map(|n| n.addr().clone()).collect(),
            None => topology.nodes(),
        };
        self.proxy_each(nodes, resp_aware).await?;
        if let Some(Local::Cluster(nodes)) = &self.local {
            let addrs: Vec<HostPort> = nodes.iter().map(|n| n.addr().clone()).collect();
            for node in &addrs {
                let bus = HostPort { host: node.host.clone(), port: node.port + CLUSTER_BUS_PORT_OFFSET };
                self.bus_proxies.push(proxy::Proxy::start(bus).await?);
            }
            let bus: Vec<HostPort> = self.bus_proxies.iter().map(|p| p.addr.clone()).collect();
            cluster::route_bus_through(&addrs, &bus, self.spec.password.as_ref()).await.map_err(std::io::Error::other)?;
            tracing::info!(proxies = %bus.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "), "cluster bus through the fault proxies");
        }
        Ok(())
    }

    /// One proxy per node, by index, and the connect-time map through them.
    async fn proxy_each(&mut self, nodes: Vec<HostPort>, resp_aware: bool) -> std::io::Result<()> {
        let mut map = std::collections::HashMap::new();
        for node in nodes {
            let p = if resp_aware { proxy::Proxy::start_resp_aware(node.clone()).await? } else { proxy::Proxy::start(node.clone()).await? };
            tracing::info!(proxy = %p.addr, node = %p.upstream(), "fault proxy in front of the node");
            map.insert(node, p.addr.clone());
            self.proxies.push(p);
        }
        self.spec.via = Some(std::sync::Arc::new(map));
        Ok(())
    }

    /// Stops the master watcher and the local processes, if any.
    pub async fn shutdown(self) {
        if let Some(w) = self.watcher {
            w.abort();
        }
        let moved = std::mem::take(&mut *self.moved.lock().expect("moved lock"));
        for (node, proxy) in moved {
            drop(proxy);
            node.stop().await;
        }
        if let Some(l) = self.local {
            l.stop().await;
        }
    }
}

/// Prepares the target: starts a local server when asked, then checks that it answers. Every
/// command redis-test sends to the data nodes outside the workers' round trips is counted in
/// `tally`.
pub async fn prepare(
    target: &Target,
    connections: &Connections,
    client_name: &str,
    tally: Option<std::sync::Arc<crate::metrics::CommandTally>>,
) -> Result<Deployment, TargetError> {
    let mut seeds = Vec::new();
    let (addr, local, sentinel_nodes) = match &target.endpoint {
        Endpoint::Local(LocalTopology::Standalone) => {
            let server = LocalServer::start(target.password.as_ref(), &[]).await?;
            (server.addr().clone(), Some(Local::Standalone(Box::new(server))), None)
        }
        Endpoint::Local(LocalTopology::Sentinel) => {
            let (local, sentinels) = start_local_sentinel(target).await?;
            let addr = local.nodes()[0].addr().clone();
            (addr, Some(local), Some(sentinels))
        }
        Endpoint::Local(LocalTopology::Cluster) => {
            let nodes = cluster::start_local(target.password.as_ref(), LOCAL_CLUSTER_NODE_TIMEOUT, target.proxy).await?;
            seeds = nodes.iter().map(|n| n.addr().clone()).collect();
            (nodes[0].addr().clone(), Some(Local::Cluster(nodes)), None)
        }
        Endpoint::Remote(addrs) => match &target.sentinel {
            Some(s) => (HostPort { host: "sentinel".into(), port: 0 }, None, Some(s.nodes.clone())),
            None => {
                if target.mode == Mode::Cluster {
                    seeds.clone_from(addrs);
                }
                (addrs.first().cloned().ok_or_else(|| TargetError::Unsupported("the target has no address".into()))?, None, None)
            }
        },
    };
    let addr_text = addr.to_string();
    let mut spec = ConnectSpec {
        addr,
        username: target.username.clone(),
        password: target.password.clone(),
        db: target.db,
        protocol: target.protocol,
        client_name: client_name.to_owned(),
        connect_timeout: connections.connect_timeout,
        tls: match &target.tls {
            Some(t) => Some(tls::settings(t).map_err(|msg| TargetError::Tls { addr: addr_text.clone(), msg })?),
            None => None,
        },
        follow: None,
        readonly: false,
        tally,
        via: None,
        maintenance: None,
    };
    let mut sentinels = None;
    let mut watcher = None;
    if let Some(nodes) = sentinel_nodes {
        let (master_name, username, password) = match &target.sentinel {
            Some(s) => (s.master_name.clone(), s.username.clone(), s.password.clone()),
            None => (LOCAL_MASTER_NAME.to_owned(), None, None),
        };
        let s = sentinel::Sentinels {
            nodes,
            master_name,
            track_replicas: target.read_from_replicas,
            // The sentinels' commands are not the data nodes': they are not counted with them.
            spec: ConnectSpec { username, password, protocol: crate::scenario::model::Protocol::Resp2, tally: None, maintenance: None, ..spec.clone() },
        };
        let found = s.discover().await.map_err(|e| TargetError::Unreachable { addr: "the sentinels".into(), err: ConnError::Io(e) })?;
        tracing::info!(master = %found, name = %s.master_name, "master found through the sentinels");
        let master = std::sync::Arc::new(crate::client::native::master::Master::new(found.clone()));
        if target.read_from_replicas {
            let replicas = s.replicas().await.map_err(|e| TargetError::Unreachable { addr: "the sentinels".into(), err: ConnError::Io(e) })?;
            if replicas.is_empty() {
                tracing::warn!(name = %s.master_name, "read_from_replicas: the sentinels know no healthy replica; reads go to the master until one appears");
            }
            master.set_replicas(replicas);
        }
        spec.addr = found;
        spec.follow = Some(std::sync::Arc::clone(&master));
        watcher = Some(tokio::spawn(tracing::Instrument::in_current_span(s.clone().watch(master))));
        sentinels = Some(s);
    }
    let mut topology = None;
    if target.mode == Mode::Cluster {
        // Probe the seeds one by one: the first that answers gives the slot map.
        let topo = crate::client::native::cluster::Topology::fetch(&spec, &seeds, connections.command_timeout).await.map_err(|msg| {
            if msg.contains("cluster support disabled") {
                TargetError::Unsupported(format!("the target is not a cluster ({msg}); use `mode: standalone`"))
            } else {
                TargetError::Unreachable { addr: "the cluster seed nodes".into(), err: ConnError::Io(msg) }
            }
        })?;
        tracing::info!(shards = topo.shards.len(), "cluster slot map read");
        let topo = if target.read_from_replicas { with_replicas(&spec, &seeds, topo, connections.command_timeout).await } else { topo };
        spec.addr = topo.shards[0].master.clone();
        topology = Some(topo);
    }
    let mut deployment = Deployment {
        spec,
        local,
        sentinels,
        cluster: topology,
        seeds,
        proxies: Vec::new(),
        bus_proxies: Vec::new(),
        direct: None,
        watcher,
        moved: std::sync::Mutex::new(Vec::new()),
    };
    if target.proxy
        && let Err(e) = deployment.start_proxies(target.resp_aware_proxy).await
    {
        deployment.shutdown().await;
        return Err(TargetError::Unsupported(format!("cannot start the fault proxy: {e}")));
    }
    deployment.spec.maintenance = client_maintenance(connections, target, &mut deployment.spec);
    // redis-rs proves the target with its own connection (and its own words when it cannot).
    if connections.client == crate::scenario::raw::Client::Native
        && let Err(e) = deployment.probe().await
    {
        deployment.shutdown().await;
        return Err(e);
    }
    Ok(deployment)
}

/// The native engine's maintenance-notification state, unless the scenario turns them off. On a
/// standalone target the connections then follow an address a MOVING can change.
fn client_maintenance(connections: &Connections, target: &Target, spec: &mut ConnectSpec) -> Option<std::sync::Arc<ClientMaintenance>> {
    use crate::scenario::raw::{Client, MaintenanceMode};
    if connections.client != Client::Native || connections.maintenance_notifications == MaintenanceMode::Off {
        return None;
    }
    if spec.follow.is_none() && target.mode == Mode::Standalone {
        spec.follow = Some(std::sync::Arc::new(crate::client::native::master::Master::new(spec.addr.clone())));
    }
    Some(std::sync::Arc::new(ClientMaintenance::new(
        connections.maintenance_notifications,
        connections.relaxed_timeout,
        connections.moving_endpoint_type,
        spec.follow.clone(),
    )))
}

/// Longest the first phase waits for the slot map to list the replicas a cluster has.
const REPLICA_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// With `read_from_replicas`, the slot map the run starts with lists every replica the cluster
/// has: a node names a replica in CLUSTER SLOTS only after gossip told it the replica's offset
/// moved, seconds after a cluster forms or a replica restarts, and reads meant for replicas would
/// go to the primaries meanwhile. Waits (at most [`REPLICA_WAIT`]) while some shard lacks in the
/// slot map a replica that CLUSTER NODES shows connected; a shard without one is not waited for.
async fn with_replicas(
    spec: &ConnectSpec,
    seeds: &[HostPort],
    mut topo: crate::client::native::cluster::Topology,
    timeout: std::time::Duration,
) -> crate::client::native::cluster::Topology {
    let started = std::time::Instant::now();
    loop {
        let lacking: Vec<HostPort> = topo.shards.iter().filter(|s| s.replicas.is_empty()).map(|s| s.master.clone()).collect();
        if lacking.is_empty() {
            if started.elapsed() > std::time::Duration::from_millis(50) {
                tracing::info!(waited_ms = started.elapsed().as_millis() as u64, "read_from_replicas: every shard's replica is in the slot map");
            }
            return topo;
        }
        let expected = match primaries_with_replicas(spec, &topo.candidates(seeds), timeout).await {
            Ok(p) => p,
            Err(_) => return topo,
        };
        let waiting: Vec<&HostPort> = lacking.iter().filter(|m| expected.contains(m)).collect();
        if waiting.is_empty() {
            return topo;
        }
        if started.elapsed() >= REPLICA_WAIT {
            tracing::warn!(
                primaries = %waiting.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
                "read_from_replicas: the slot map still lists no replica for these shards; their reads go to the primary until it does"
            );
            return topo;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if let Ok(t) = crate::client::native::cluster::Topology::fetch(spec, &topo.candidates(seeds), timeout).await {
            topo = t;
        }
    }
}

/// The primaries (by address) that CLUSTER NODES shows with a connected, healthy replica.
async fn primaries_with_replicas(spec: &ConnectSpec, candidates: &[HostPort], timeout: std::time::Duration) -> Result<Vec<HostPort>, String> {
    let mut last = String::from("no node to ask");
    for addr in candidates {
        let attempt = async {
            let mut c = Conn::connect(&ConnectSpec { addr: addr.clone(), ..spec.clone() }).await.map_err(|e| e.to_string())?;
            match c.command(&[b"CLUSTER", b"NODES"], timeout).await.map_err(|e| e.to_string())? {
                crate::resp::Value::Error(e) => Err(e),
                v => Ok(String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned()),
            }
        };
        match attempt.await {
            Ok(text) => return Ok(cluster::primaries_with_replicas(&text, &addr.host)),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A cluster node's bus port is its port plus this (Redis's default, `cluster-port 0`).
const CLUSTER_BUS_PORT_OFFSET: u16 = 10_000;

/// How long local cluster nodes wait before they call a silent node failed.
const LOCAL_CLUSTER_NODE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(2000);

/// The master name local sentinel deployments monitor.
pub const LOCAL_MASTER_NAME: &str = "redis-test";

/// Primary, replica (synced), then three sentinels that have seen the replica.
async fn start_local_sentinel(target: &Target) -> Result<(Local, Vec<HostPort>), TargetError> {
    let pw = target.password.as_ref();
    let auth: Vec<String> = pw.map(|p| format!("masterauth {}", local::config_quoted(p))).into_iter().collect();
    // Without the default 5 s diskless-sync delay the replica is in sync at once.
    let mut primary_conf = auth.clone();
    primary_conf.push("repl-diskless-sync-delay 0".into());
    let primary = LocalServer::start(pw, &primary_conf).await?;
    let mut replica_conf = auth.clone();
    replica_conf.push(format!("replicaof 127.0.0.1 {}", primary.addr().port));
    let replica = LocalServer::start_node(local::NodeKind::Server, pw, &replica_conf, Some("sync: Finished with success")).await?;
    let mut sentinel_conf = vec![
        format!("sentinel monitor {LOCAL_MASTER_NAME} 127.0.0.1 {} 2", primary.addr().port),
        format!("sentinel down-after-milliseconds {LOCAL_MASTER_NAME} 1000"),
        format!("sentinel failover-timeout {LOCAL_MASTER_NAME} 5000"),
        format!("sentinel parallel-syncs {LOCAL_MASTER_NAME} 1"),
    ];
    if let Some(p) = pw {
        sentinel_conf.push(format!("sentinel auth-pass {LOCAL_MASTER_NAME} {}", local::config_quoted(p)));
    }
    let mut sentinels = Vec::new();
    for _ in 0..3 {
        sentinels.push(LocalServer::start_node(local::NodeKind::Sentinel, None, &sentinel_conf, Some("+slave")).await?);
    }
    let addrs = sentinels.iter().map(|s| s.addr().clone()).collect();
    Ok((Local::Sentinel { nodes: vec![primary, replica], sentinels }, addrs))
}
