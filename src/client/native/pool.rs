//! Connection pools: bb8 over our RESP connections. No PING on checkout (it would double the round
//! trips of the hot path); instead a connection idle for longer than the health-check interval is
//! PINGed before use, and a connection that broke is dropped and replaced by bb8.
//!
//! Cluster targets get pools per node and a slot map; a round trip is routed by its slot, and a
//! background task reads the slot map again when a redirect or a connection error asks for it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bb8::{ManageConnection, Pool, PooledConnection, RunError};

use crate::client::kept::{Kept, room_to_keep};
use crate::client::native::cluster::Topology;
use crate::client::native::conn::{Conn, ConnError, ConnectSpec};
use crate::metrics::{ConnCounters, ErrorClass, RunMetrics};
use crate::scenario::model::Connections;
use crate::scenario::model::HostPort;

/// Opens connections for bb8 and counts them.
pub struct Manager {
    /// The run's span: bb8 connects on its own tasks, and their events should still carry the run id.
    span: tracing::Span,
    spec: ConnectSpec,
    metrics: Arc<RunMetrics>,
    ping_timeout: Duration,
    /// Shared by the pools of one node: whether the last connection attempt failed.
    failing: Arc<std::sync::atomic::AtomicBool>,
}

impl Manager {
    fn counters(&self) -> &ConnCounters {
        &self.metrics.conns
    }
}

// Boxed: bb8 moves a connection in and out of its idle queue on every checkout, and a pointer
// moves for less than the whole connection (moves were a tenth of the instructions unpipelined,
// under callgrind).
impl ManageConnection for Manager {
    type Connection = Box<Conn>;
    type Error = ConnError;

    async fn connect(&self) -> Result<Box<Conn>, ConnError> {
        let started = std::time::Instant::now();
        let result = tracing::Instrument::instrument(Conn::connect(&self.spec), self.span.clone()).await;
        let _entered = self.span.enter();
        match result {
            Ok(c) => {
                self.failing.store(false, Ordering::Relaxed);
                self.counters().opened(started.elapsed());
                tracing::debug!(addr = %self.spec.addr, took_us = started.elapsed().as_micros() as u64, "connection opened");
                Ok(Box::new(c))
            }
            Err(e) => {
                self.failing.store(true, Ordering::Relaxed);
                self.counters().connect_errors.fetch_add(1, Ordering::Relaxed);
                tracing::info!(addr = %self.spec.addr, error = %e, "connection attempt failed");
                Err(e)
            }
        }
    }

    async fn is_valid(&self, conn: &mut Box<Conn>) -> Result<(), ConnError> {
        match conn.command(&[b"PING"], self.ping_timeout).await? {
            crate::resp::Value::Error(e) => Err(ConnError::Rejected(e)),
            _ => Ok(()),
        }
    }

    fn has_broken(&self, conn: &mut Box<Conn>) -> bool {
        let _entered = self.span.enter();
        let broken = conn.is_broken();
        if broken {
            self.counters().dropped.fetch_add(1, Ordering::Relaxed);
            tracing::info!(addr = %self.spec.addr, "broken connection dropped; bb8 opens a replacement");
        }
        broken
    }
}

/// A checked-out connection, holding its turn at its pool's gate until dropped.
pub struct Pooled {
    conn: PooledConnection<'static, Manager>,
    _turn: tokio::sync::OwnedSemaphorePermit,
}

impl std::ops::Deref for Pooled {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// Where a round trip goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The target (standalone, sentinel), or any cluster node for a command without a key.
    Any,
    /// The cluster node serving a slot: its primary, or one of its replicas for replica reads.
    Slot {
        /// The slot.
        slot: u16,
        /// Read from a replica when the shard has one.
        replica: bool,
    },
    /// One node, after a redirect.
    Node(HostPort),
    /// A replica of a sentinel target's master (reads with `read_from_replicas`); the master
    /// when the sentinels know no healthy replica.
    Replica,
}

/// The pools of one node (or of the whole target): workers are spread over them round-robin.
/// Each pool has a gate of `per_pool` turns that checkouts take in the order they asked (tokio's
/// semaphore is fair): bb8 alone hands a returned connection to whichever task asks next, so a
/// worker that just returned one could take it straight back while an earlier waiter waits out
/// `acquire_timeout`.
struct Node {
    pools: Vec<Pool<Manager>>,
    gates: Vec<Arc<tokio::sync::Semaphore>>,
    /// Whether the last connection attempt to the node failed (set by its managers).
    failing: Arc<std::sync::atomic::AtomicBool>,
    /// Paces connection attempts while the node refuses them.
    reconnect: std::sync::Mutex<Reconnect>,
}

/// Consecutive failed connection attempts to a node, and when the next one may be made.
#[derive(Default)]
struct Reconnect {
    failures: u32,
    next_attempt: Option<Instant>,
}

type NodePools = Arc<Node>;

fn build_pools(spec: &ConnectSpec, connections: &Connections, metrics: &Arc<RunMetrics>) -> NodePools {
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pools = (0..connections.pools)
        .map(|_| {
            Pool::builder()
                .max_size(connections.per_pool)
                .min_idle(None)
                .test_on_check_out(false)
                .retry_connection(false)
                .connection_timeout(connections.acquire_timeout)
                .idle_timeout(None)
                .max_lifetime(None)
                .build_unchecked(Manager {
                    span: tracing::Span::current(),
                    spec: spec.clone(),
                    metrics: Arc::clone(metrics),
                    ping_timeout: connections.command_timeout,
                    failing: Arc::clone(&failing),
                })
        })
        .collect();
    let gates = (0..connections.pools).map(|_| Arc::new(tokio::sync::Semaphore::new(connections.per_pool as usize))).collect();
    Arc::new(Node { pools, gates, failing, reconnect: Default::default() })
}

/// Pools per node, made on first use and kept for the run (cluster nodes, sentinel replicas).
struct NodeSet {
    spec: ConnectSpec,
    connections: Connections,
    metrics: Arc<RunMetrics>,
    nodes: RwLock<HashMap<(HostPort, bool), NodePools>>,
}

impl NodeSet {
    /// The pools of a node; `readonly` ones send READONLY (cluster replica reads).
    fn node(&self, addr: &HostPort, readonly: bool) -> NodePools {
        let key = (addr.clone(), readonly);
        if let Some(p) = self.nodes.read().expect("nodes lock").get(&key) {
            return Arc::clone(p);
        }
        let mut nodes = self.nodes.write().expect("nodes lock");
        Arc::clone(nodes.entry(key).or_insert_with(|| {
            let spec = ConnectSpec { addr: addr.clone(), readonly, follow: None, ..self.spec.clone() };
            build_pools(&spec, &self.connections, &self.metrics)
        }))
    }

    fn open_connections(&self) -> u32 {
        self.nodes.read().expect("nodes lock").values().map(|n| n.pools.iter().map(|p| p.state().connections).sum::<u32>()).sum()
    }
}

/// The run's pools.
pub struct Pools {
    single: NodePools,
    nodes: Arc<NodeSet>,
    cluster: Option<Arc<ClusterRouter>>,
    refresher: Option<tokio::task::JoinHandle<()>>,
    follow: Option<Arc<crate::client::native::master::Master>>,
    per_pool: u32,
    acquire_timeout: Duration,
    health_interval: Duration,
    ping_timeout: Duration,
    connections_retry: crate::scenario::model::Retry,
    jitter_seq: std::sync::atomic::AtomicU64,
    /// Each worker's connection kept between round trips, when workers keep them (see
    /// [`Pools::keep_connections`]); empty otherwise.
    kept: Kept<Pooled>,
}

impl Drop for Pools {
    fn drop(&mut self) {
        if let Some(r) = &self.refresher {
            r.abort();
        }
    }
}

impl Pools {
    /// Creates `connections.pools` pools of `connections.per_pool` connections (opened lazily), per
    /// cluster node when `cluster` holds the slot map (and the seeds, and whether reads go to
    /// replicas). Cluster pools need a tokio runtime (for the slot map refresher).
    pub fn new(spec: &ConnectSpec, connections: &Connections, metrics: &Arc<RunMetrics>, cluster: Option<(&Topology, &[HostPort], bool)>) -> Pools {
        let nodes =
            Arc::new(NodeSet { spec: spec.clone(), connections: connections.clone(), metrics: Arc::clone(metrics), nodes: RwLock::new(HashMap::new()) });
        let (cluster, refresher) = match cluster {
            Some((topology, seeds, replica_reads)) => {
                let router = Arc::new(ClusterRouter {
                    nodes: Arc::clone(&nodes),
                    map: RwLock::new(Arc::new(SlotMap::default())),
                    refresh: Arc::new(tokio::sync::Notify::new()),
                    seeds: seeds.to_vec(),
                    replica_reads,
                });
                router.install(topology.clone());
                if let Some(m) = &spec.maintenance {
                    // SMIGRATED asks for the slot map to be read again.
                    m.set_refresh(Arc::clone(&router.refresh));
                }
                let task = tokio::spawn(tracing::Instrument::in_current_span(refresh_on_request(Arc::downgrade(&router), Arc::clone(&router.refresh))));
                (Some(router), Some(task))
            }
            None => (None, None),
        };
        Pools {
            single: build_pools(spec, connections, metrics),
            nodes,
            cluster,
            refresher,
            follow: spec.follow.clone(),
            per_pool: connections.per_pool,
            acquire_timeout: connections.acquire_timeout,
            health_interval: connections.health_check_interval,
            ping_timeout: connections.command_timeout,
            connections_retry: connections.retry.clone(),
            jitter_seq: std::sync::atomic::AtomicU64::new(0),
            kept: Kept::default(),
        }
    }

    /// Lets each of `workers` workers keep its connection between round trips when that changes
    /// nothing but the cost: outside a cluster (where a round trip's node changes with its slot)
    /// and when every pool has a connection for each worker it serves and for each of `others`
    /// (stream consumers, control commands), so that no checkout ever waits for a turn a kept
    /// connection holds. A checkout and return through bb8 and the pool's
    /// gate cost about a third of the native engine's instructions per unpipelined operation
    /// (callgrind); a kept connection passes the same checks at each use (see [`Pools::take_kept`]).
    /// Returns whether workers keep connections.
    pub fn keep_connections(&mut self, workers: usize, others: usize) -> bool {
        let keep = self.cluster.is_none() && room_to_keep(workers, others, self.single.pools.len(), self.per_pool);
        self.kept = Kept::new(workers, keep);
        keep
    }

    /// `worker`'s kept connection for `route`, when it has one still fit for use — the checks a
    /// checkout makes: not broken, opened for the current master or endpoint (sentinel failovers,
    /// maintenance handoffs), used within the health-check interval. One that is not is given back
    /// to its pool (a broken or stale one is discarded there) and the caller checks one out.
    pub fn take_kept(&self, worker: usize, route: &Route) -> Option<Pooled> {
        if *route != Route::Any {
            return None;
        }
        let mut conn = self.kept.take(worker)?;
        if self.follow.as_ref().is_some_and(|m| m.generation() != conn.generation) {
            conn.mark_broken();
            return None;
        }
        if conn.is_broken() || conn.last_used.elapsed() >= self.health_interval {
            return None;
        }
        Some(conn)
    }

    /// Gives `worker`'s kept connection back to its pool (the worker is idle until a later phase,
    /// or done): an idle connection belongs in the pool, where others may use it and checkouts
    /// replace it when it goes stale.
    pub fn release_kept(&self, worker: usize) {
        self.kept.release(worker);
    }

    /// Keeps `conn` for `worker`'s next round trip on `route` when workers keep connections and it
    /// is not broken; otherwise returns it to its pool.
    pub fn keep(&self, worker: usize, route: &Route, conn: Pooled) {
        if *route == Route::Any && !conn.is_broken() {
            self.kept.put(worker, conn);
        }
    }

    fn jitter(&self) -> f64 {
        crate::scenario::model::unit_from(self.jitter_seq.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether round trips are routed by slot.
    pub fn is_cluster(&self) -> bool {
        self.cluster.is_some()
    }

    /// Asks for the cluster slot map to be read again (at most ten times a second; no-op otherwise).
    pub fn request_refresh(&self) {
        if let Some(c) = &self.cluster {
            c.refresh.notify_one();
        }
    }

    /// Checks out a connection for `worker` on `route`; an idle one is health-checked first.
    pub async fn get(&self, worker: usize, route: &Route) -> Result<Pooled, ErrorClass> {
        let node = match (&self.cluster, route) {
            (Some(c), Route::Slot { slot, replica }) => c.for_slot(*slot, *replica, worker).ok_or(ErrorClass::Server("CLUSTERDOWN"))?,
            (Some(c), Route::Node(addr)) => c.nodes.node(addr, false),
            (Some(c), Route::Any | Route::Replica) => c.any(worker),
            (None, Route::Replica) => match self.follow.as_ref().map(|m| m.replicas()).filter(|r| !r.is_empty()) {
                Some(r) => self.nodes.node(&r[worker % r.len()], false),
                None => Arc::clone(&self.single),
            },
            (None, _) => Arc::clone(&self.single),
        };
        // Replica connections do not follow the master: a master move does not make them stale.
        let follow = if *route == Route::Replica && !Arc::ptr_eq(&node, &self.single) { None } else { self.follow.as_ref() };
        let which = worker % node.pools.len();
        let pool = &node.pools[which];
        // Wait for a turn first, in order: then bb8 has a connection (or room for one) at once.
        let turn = match tokio::time::timeout(self.acquire_timeout, Arc::clone(&node.gates[which]).acquire_owned()).await {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => return Err(ErrorClass::Connection),
            Err(_) => return Err(ErrorClass::PoolTimeout),
        };
        if node.failing.load(Ordering::Relaxed) && pool.state().idle_connections == 0 {
            // bb8 never hands a connect error to a waiting checkout: it would wait out the whole
            // acquire timeout. While the node refuses connections, checkouts fail at once
            // (`connection`) so that a dead node does not hold workers other nodes' operations
            // need, and one checkout at a time tries to connect, paced by the retry policy's
            // exponential backoff with jitter.
            {
                let mut r = node.reconnect.lock().expect("reconnect lock");
                let now = Instant::now();
                if r.next_attempt.is_some_and(|t| now < t) {
                    return Err(ErrorClass::Connection);
                }
                // Claim this attempt: others fail fast until it is decided.
                r.next_attempt = Some(now + self.connections_retry.backoff(r.failures, self.jitter()));
            }
            let attempt = pool.dedicated_connection().await;
            let mut r = node.reconnect.lock().expect("reconnect lock");
            match attempt {
                Ok(conn) => {
                    *r = Reconnect::default();
                    let _ = pool.add(conn);
                }
                Err(_) => {
                    r.next_attempt = Some(Instant::now() + self.connections_retry.backoff(r.failures, self.jitter()));
                    r.failures = r.failures.saturating_add(1);
                    return Err(ErrorClass::Connection);
                }
            }
        }
        // Every pooled connection may turn out stale after a failover; then a fresh one is opened.
        for _ in 0..self.per_pool + 3 {
            let mut conn = pool.get_owned().await.map_err(|e| match e {
                RunError::TimedOut => ErrorClass::PoolTimeout,
                RunError::User(_) => ErrorClass::Connection,
            })?;
            // After a failover, a connection to the old master is stale even if it still answers.
            if follow.is_some_and(|m| m.generation() != conn.generation) {
                conn.mark_broken();
                continue;
            }
            if conn.last_used.elapsed() < self.health_interval {
                return Ok(Pooled { conn, _turn: turn });
            }
            if conn.command(&[b"PING"], self.ping_timeout).await.is_ok() {
                return Ok(Pooled { conn, _turn: turn });
            }
            // The PING broke it; dropping returns it to bb8, which discards it. Try another.
        }
        Err(ErrorClass::Connection)
    }

    /// The run's maintenance-notification state, when the client asks for them.
    pub fn maintenance(&self) -> Option<&Arc<crate::client::maintenance::ClientMaintenance>> {
        self.nodes.spec.maintenance.as_ref()
    }

    /// Connections currently open, over all pools (of all cluster nodes).
    pub fn open_connections(&self) -> u32 {
        let count = |n: &NodePools| n.pools.iter().map(|p| p.state().connections).sum::<u32>();
        count(&self.single) + self.nodes.open_connections()
    }
}

/// The slot map with each shard's pools.
#[derive(Default)]
struct SlotMap {
    topology: Option<Topology>,
    masters: Vec<NodePools>,
    replicas: Vec<Vec<NodePools>>,
}

/// Routes cluster round trips: per-node pools (kept across slot map changes) and the slot map.
struct ClusterRouter {
    /// Node pools, and the connection settings and counters the refresh uses too.
    nodes: Arc<NodeSet>,
    map: RwLock<Arc<SlotMap>>,
    refresh: Arc<tokio::sync::Notify>,
    seeds: Vec<HostPort>,
    /// Reads go to replicas (`read_from_replicas`).
    replica_reads: bool,
}

impl ClusterRouter {
    /// Replica reads are asked for and some shard has no replica in the slot map. A node lists a
    /// replica only once it has heard, by gossip, that the replica's offset moved — seconds after
    /// a cluster forms or a replica restarts — so a map read in that moment lacks it, and with no
    /// error to prompt a refresh that shard's reads would go to its primary for the whole run.
    fn lacks_replicas(&self) -> bool {
        self.replica_reads && self.map.read().expect("slot map lock").topology.as_ref().is_some_and(|t| t.shards.iter().any(|s| s.replicas.is_empty()))
    }

    fn for_slot(&self, slot: u16, replica: bool, worker: usize) -> Option<NodePools> {
        let map = Arc::clone(&self.map.read().expect("slot map lock"));
        let shard = *map.topology.as_ref()?.owner.get(slot as usize)? as usize;
        if replica && let Some(rs) = map.replicas.get(shard).filter(|r| !r.is_empty()) {
            return Some(Arc::clone(&rs[worker % rs.len()]));
        }
        map.masters.get(shard).cloned()
    }

    fn any(&self, worker: usize) -> NodePools {
        let map = Arc::clone(&self.map.read().expect("slot map lock"));
        match map.masters.len() {
            0 => self.nodes.node(&self.seeds[worker % self.seeds.len().max(1)], false),
            n => Arc::clone(&map.masters[worker % n]),
        }
    }

    fn install(&self, topology: Topology) {
        let masters = topology.shards.iter().map(|s| self.nodes.node(&s.master, false)).collect();
        let replicas = topology.shards.iter().map(|s| s.replicas.iter().map(|r| self.nodes.node(r, true)).collect()).collect();
        *self.map.write().expect("slot map lock") = Arc::new(SlotMap { topology: Some(topology), masters, replicas });
    }

    /// Reads the slot map from the first node that answers: known primaries, replicas, then seeds.
    async fn refresh(&self) {
        let candidates = self.map.read().expect("slot map lock").topology.as_ref().map_or_else(|| self.seeds.clone(), |t| t.candidates(&self.seeds));
        let spec = ConnectSpec { client_name: format!("{}:control", self.nodes.spec.client_name), ..self.nodes.spec.clone() };
        match Topology::fetch(&spec, &candidates, self.nodes.connections.command_timeout).await {
            Ok(t) => {
                let changed = self.map.read().expect("slot map lock").topology.as_ref().is_none_or(|old| old.shards != t.shards);
                if changed {
                    tracing::info!(masters = %t.shards.iter().map(|s| s.master.to_string()).collect::<Vec<_>>().join(" "), "cluster slot map changed");
                }
                self.nodes.metrics.conns.topology_refreshes.fetch_add(1, Ordering::Relaxed);
                self.install(t);
            }
            Err(e) => tracing::info!(error = %e, "cluster slot map could not be read; keeping the old one"),
        }
    }
}

/// Reads the slot map again whenever asked, at most ten times a second, and every second while
/// [`ClusterRouter::lacks_replicas`]; ends with the pools.
async fn refresh_on_request(router: std::sync::Weak<ClusterRouter>, asked: Arc<tokio::sync::Notify>) {
    loop {
        let missing = router.upgrade().is_some_and(|r| r.lacks_replicas());
        tokio::select! {
            () = asked.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)), if missing => {}
        }
        let Some(r) = router.upgrade() else { return };
        let started = Instant::now();
        r.refresh().await;
        drop(r);
        tokio::time::sleep(Duration::from_millis(100).saturating_sub(started.elapsed())).await;
    }
}
