//! The client under test: redis-rs (the `redis` crate) with bb8 pools, as Rust services use it.
//!
//! Workloads describe each round trip once ([`RoundTrip`]); here a lone command is sent as a
//! `redis::Cmd` and several as a `redis::Pipeline` (MULTI/EXEC as an atomic pipeline) over a
//! pooled connection, and the replies are handed back in the native engine's reply shape, so
//! classification, verify, faults and verdicts judge both clients alike.
//!
//! Pools: bb8 with our own `ManageConnection` over the crate's clients. The crate's own bb8 support
//! (and `bb8-redis`) says a connection is never broken and can only find a dead one with a PING
//! on every checkout: with that PING off, a killed connection would stay in the pool forever, and
//! with it on every operation costs two round trips and the server counts PINGs we did not ask
//! for. Our manager instead marks a connection broken when redis-rs reports it dropped (an I/O or
//! unrecoverable error), and bb8 replaces it.
//!
//! Settings mapped onto redis-rs (the README lists them): connect timeout → connection timeout,
//! command timeout → response timeout, ACL user and password, database, RESP2/RESP3, TLS (CA file,
//! client certificate, `insecure`); clusters also get the retry policy (attempts − 1 retries,
//! initial and max backoff as redis-rs's min and max retry wait) and replica reads. What redis-rs
//! handles out of sight — cluster redirects, slot-map refreshes, its cluster connections' own
//! reconnects and resends — is reported as "not observable with redis-rs", never as 0.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bb8::{ManageConnection, Pool, PooledConnection, RunError};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo, RedisError};

use crate::client::kept::{Kept, room_to_keep};
use crate::command::RoundTrip;
use crate::metrics::{ErrorClass, RunMetrics};
use crate::resp::Value;
use crate::scenario::model::{HostPort, Protocol, Scenario, Tls};

/// The redis crate's version (from Cargo.lock, by build.rs), for plans and reports.
pub const VERSION: &str = env!("REDIS_RS_VERSION");

/// Connection counters redis-rs keeps to itself on cluster targets (its cluster connection opens,
/// drops and reopens node connections, follows redirects and reads the slot map out of sight).
pub const HIDDEN_ON_CLUSTER: [&str; 5] = ["dropped", "reconnects", "connect_errors", "cluster_redirects", "topology_refreshes"];

/// Where connections come from.
enum Source {
    /// One server: the crate's `Client`, multiplexed connections.
    Standalone(redis::Client, AsyncConnectionConfig),
    /// The master the sentinels name, asked again for every new connection.
    Sentinel(tokio::sync::Mutex<redis::sentinel::SentinelClient>, AsyncConnectionConfig),
    /// A cluster: each pooled connection is a whole `ClusterConnection` (every node, slot routing,
    /// redirects and retries inside redis-rs).
    Cluster(redis::cluster::ClusterClient),
}

/// A pooled redis-rs connection.
pub struct RsConn {
    inner: Inner,
    broken: bool,
}

enum Inner {
    Multiplexed(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// Opens redis-rs connections for bb8 and counts them.
pub struct Manager {
    source: Source,
    metrics: Arc<RunMetrics>,
    /// `CLIENT SETNAME` for standalone and sentinel connections, so faults find them (redis-rs
    /// has no client name setting; a service would send it the same way).
    client_name: String,
    span: tracing::Span,
}

impl Manager {
    async fn open(&self) -> Result<RsConn, RedisError> {
        let inner = match &self.source {
            Source::Standalone(client, config) => Inner::Multiplexed(client.get_multiplexed_async_connection_with_config(config).await?),
            Source::Sentinel(client, config) => Inner::Multiplexed(client.lock().await.get_async_connection_with_config(config).await?),
            Source::Cluster(client) => Inner::Cluster(client.get_async_connection().await?),
        };
        let mut conn = RsConn { inner, broken: false };
        if let Inner::Multiplexed(c) = &mut conn.inner {
            let setname = redis::cmd("CLIENT").arg("SETNAME").arg(&self.client_name).clone();
            setname.exec_async(c).await?;
            // Counted with the tool's other commands outside the phases, as the server counts it.
            self.metrics.tally.count(&setname.get_packed_command());
        }
        Ok(conn)
    }
}

impl Manager {
    /// Opens and counts one connection.
    async fn connect(&self) -> Result<RsConn, RedisError> {
        let started = Instant::now();
        let result = tracing::Instrument::instrument(self.open(), self.span.clone()).await;
        let _entered = self.span.enter();
        match result {
            Ok(c) => {
                self.metrics.conns.opened(started.elapsed());
                Ok(c)
            }
            Err(e) => {
                self.metrics.conns.connect_errors.fetch_add(1, Ordering::Relaxed);
                tracing::info!(error = %e, "redis-rs connection attempt failed");
                Err(e)
            }
        }
    }

    /// Whether the connection broke (counted as dropped when it did).
    fn has_broken(&self, conn: &mut RsConn) -> bool {
        if conn.broken {
            self.metrics.conns.dropped.fetch_add(1, Ordering::Relaxed);
            let _entered = self.span.enter();
            tracing::info!("broken redis-rs connection dropped; bb8 opens a replacement");
        }
        conn.broken
    }
}

/// The redis-rs client of a run: `pools` bb8 pools, workers spread over them.
pub struct RedisRs {
    pools: Vec<Pool<SharedManager>>,
    per_pool: u32,
    /// Each worker's connection kept between its round trips, when workers keep them (see
    /// [`RedisRs::keep_connections`]).
    kept: Kept<PooledConnection<'static, SharedManager>>,
    subscribers: PubsubSource,
    cluster: bool,
    /// Bound on one round trip, library retries included: nothing waits forever.
    limit: Duration,
}

/// Why the client could not be set up (the run does not start: exit 3).
#[derive(Debug, thiserror::Error)]
#[error("redis-rs could not connect to {target}: {message}")]
pub struct SetupError {
    target: String,
    message: String,
}

/// What redis-rs needs to know of the deployment it connects to (the deployment module prepares
/// it; the client does not reach into it).
pub struct Reach<'a> {
    /// Settings of the target's connections (address, credentials, the fault proxies' map).
    pub spec: &'a crate::client::native::conn::ConnectSpec,
    /// Cluster targets: the slot map at the start.
    pub cluster: Option<&'a crate::client::native::cluster::Topology>,
    /// Sentinel targets: how to reach the sentinels.
    pub sentinels: Option<&'a crate::client::native::sentinel::Sentinels>,
    /// Extra cluster seed nodes.
    pub seeds: &'a [HostPort],
}

impl RedisRs {
    /// Builds the pools for the deployment and opens one connection to prove the target answers
    /// redis-rs (credentials, certificates) before the run starts.
    pub async fn connect(deployment: Reach<'_>, scenario: &Scenario, metrics: &Arc<RunMetrics>) -> Result<RedisRs, SetupError> {
        let c = &scenario.connections;
        let t = &scenario.target;
        let target = match (deployment.cluster, deployment.sentinels) {
            (Some(_), _) => "the cluster".to_owned(),
            (None, Some(s)) => format!("master `{}` through the sentinels", s.master_name),
            (None, None) => deployment.spec.addr.to_string(),
        };
        let fail = |message: String| SetupError { target: target.clone(), message };
        let certs = match &t.tls {
            Some(tls) => Some(certificates(tls).map_err(fail)?),
            None => None,
        };
        let insecure = t.tls.as_ref().is_some_and(|tls| tls.insecure);
        let redis_info = redis_info(t);
        let config = AsyncConnectionConfig::new().set_connection_timeout(Some(c.connect_timeout)).set_response_timeout(Some(c.command_timeout));
        let mut node_clients = Vec::new();
        let source = if let Some(topology) = deployment.cluster {
            // Subscribers connect to single nodes (cluster pub/sub reaches every node).
            for a in topology.nodes() {
                let a = deployment.spec.via.as_ref().and_then(|m| m.get(&a).cloned()).unwrap_or(a);
                let info = address(&a, t.tls.as_ref()).into_connection_info().map_err(|e| fail(e.to_string()))?.set_redis_settings(redis_info.clone());
                node_clients.push(
                    match &certs {
                        Some(certs) => redis::Client::build_with_tls(info, certs.clone()),
                        None => redis::Client::open(info),
                    }
                    .map_err(|e| fail(e.to_string()))?,
                );
            }
            let mut seeds: Vec<HostPort> = topology.nodes();
            seeds.extend(deployment.seeds.iter().cloned());
            seeds.dedup();
            let infos: Vec<ConnectionInfo> = seeds
                .iter()
                .map(|a| ConnectionAddr::Tcp(a.host.clone(), a.port).into_connection_info())
                .collect::<Result<_, _>>()
                .map_err(|e| fail(e.to_string()))?;
            let mut b = redis::cluster::ClusterClientBuilder::new(infos)
                .use_protocol(protocol(t.protocol))
                .connection_timeout(c.connect_timeout)
                .response_timeout(c.command_timeout)
                .retries(c.retry.attempts.saturating_sub(1))
                .min_retry_wait(c.retry.initial_backoff.as_millis() as u64)
                .max_retry_wait(c.retry.max_backoff.as_millis() as u64);
            if let Some(u) = &t.username {
                b = b.username(u);
            }
            if let Some(p) = &t.password {
                b = b.password(p.expose());
            }
            if let Some(certs) = certs {
                b = b.tls(if insecure { redis::TlsMode::Insecure } else { redis::TlsMode::Secure }).certs(certs);
            }
            if t.read_from_replicas {
                b = b.read_routing_strategy(redis::cluster_read_routing::RandomReplicaStrategy);
            }
            // Behind the fault proxy: redis-rs keeps the nodes' addresses in its slot map and
            // connects through the proxies (its own connect-time map, as ours).
            if let Some(via) = &deployment.spec.via {
                b = b.node_address_map(
                    via.iter()
                        .map(|(node, proxy)| {
                            (redis::cluster::NodeAddress::new(node.host.clone(), node.port), redis::cluster::NodeAddress::new(proxy.host.clone(), proxy.port))
                        })
                        .collect(),
                );
            }
            Source::Cluster(b.build().map_err(|e| fail(e.to_string()))?)
        } else if let Some(s) = deployment.sentinels {
            let addrs = s.nodes.iter().map(|a| address(a, t.tls.as_ref()));
            let mut b = redis::sentinel::SentinelClientBuilder::new(addrs, s.master_name.clone(), redis::sentinel::SentinelServerType::Master)
                .map_err(|e| fail(e.to_string()))?
                .set_client_to_redis_db(i64::from(t.db))
                .set_client_to_redis_protocol(protocol(t.protocol));
            if let Some(u) = &t.username {
                b = b.set_client_to_redis_username(u);
            }
            if let Some(p) = &t.password {
                b = b.set_client_to_redis_password(p.expose());
            }
            if let Some(u) = &s.spec.username {
                b = b.set_client_to_sentinel_username(u);
            }
            if let Some(p) = &s.spec.password {
                b = b.set_client_to_sentinel_password(p.expose());
            }
            if let Some(certs) = certs {
                let mode = if insecure { redis::TlsMode::Insecure } else { redis::TlsMode::Secure };
                b = b
                    .set_client_to_redis_tls_mode(mode)
                    .set_client_to_redis_certificates(certs.clone())
                    .set_client_to_sentinel_tls_mode(mode)
                    .set_client_to_sentinel_certificates(certs);
            }
            Source::Sentinel(tokio::sync::Mutex::new(b.build().map_err(|e| fail(e.to_string()))?), config)
        } else {
            let info = address(&deployment.spec.addr, t.tls.as_ref()).into_connection_info().map_err(|e| fail(e.to_string()))?.set_redis_settings(redis_info);
            let client = match certs {
                Some(certs) => redis::Client::build_with_tls(info, certs),
                None => redis::Client::open(info),
            }
            .map_err(|e| fail(e.to_string()))?;
            Source::Standalone(client, config)
        };
        let cluster = matches!(source, Source::Cluster(_));
        let manager =
            Arc::new(Manager { source, metrics: Arc::clone(metrics), client_name: deployment.spec.client_name.clone(), span: tracing::Span::current() });
        // Prove the target answers redis-rs now, with its own words when it does not.
        let first = manager.connect().await.map_err(|e| fail(e.to_string()))?;
        drop(first);
        let pools: Vec<Pool<SharedManager>> = (0..c.pools)
            .map(|_| {
                Pool::builder()
                    .max_size(c.per_pool)
                    .min_idle(None)
                    .test_on_check_out(false)
                    .connection_timeout(c.acquire_timeout)
                    .build_unchecked(SharedManager(Arc::clone(&manager)))
            })
            .collect();
        // One round trip: the command timeout per attempt, and on clusters redis-rs's retries with
        // their waits on top.
        let attempts = if cluster { c.retry.attempts.max(1) } else { 1 };
        let limit = c.command_timeout * (attempts + 1) + c.retry.max_backoff * attempts;
        let _ = metrics.conns.hidden.set(if cluster { HIDDEN_ON_CLUSTER.to_vec() } else { Vec::new() });
        // Warm: every pooled connection open before the first operation, as a service's pool is
        // before it takes traffic. Each is opened as a service opens one — within the connect
        // timeout, tried as the retry policy says — and then handed to its pool; not raced
        // against the acquire timeout, which bounds checkouts during the run (seen on a loaded
        // machine: a cluster connection through the fault proxies took longer than a 1 s
        // acquire timeout, and the run could not start).
        for pool in &pools {
            for _ in 0..c.per_pool {
                let conn = open_with_retries(&manager, &c.retry).await.map_err(|e| fail(e.to_string()))?;
                if pool.add(conn).is_err() {
                    break;
                }
            }
        }
        let subscribers = PubsubSource { manager, nodes: node_clients, connect_timeout: c.connect_timeout };
        Ok(RedisRs { pools, per_pool: c.per_pool, kept: Kept::default(), subscribers, cluster, limit })
    }

    /// Where this client's pub/sub subscribers connect.
    pub fn pubsub_source(&self) -> PubsubSource {
        self.subscribers.clone()
    }

    /// Whether redis-rs retries on its own (clusters): redis-test then does not resend.
    pub fn retries_itself(&self) -> bool {
        self.cluster
    }

    /// Lets each of `workers` workers keep its connection between round trips when the pools have
    /// room for them and for `others` ([`room_to_keep`], the native engine's rule too). A
    /// bb8 checkout and return per round trip is how we drive redis-rs, not part of it: kept, a
    /// connection is used until redis-rs reports it broken (it then goes back to its pool, which
    /// drops it and opens a replacement, as before) or its worker goes idle. redis-rs's
    /// connections need no health check here (its pools test none on checkout). Returns whether
    /// workers keep connections.
    pub fn keep_connections(&mut self, workers: usize, others: usize) -> bool {
        let keep = room_to_keep(workers, others, self.pools.len(), self.per_pool);
        self.kept = Kept::new(workers, keep);
        keep
    }

    /// Gives `worker`'s kept connection back to its pool: the worker is idle until a later phase,
    /// or done.
    pub fn release_kept(&self, worker: usize) {
        self.kept.release(worker);
    }

    /// Open connections over all pools.
    pub fn open_connections(&self) -> u32 {
        self.pools.iter().map(|p| p.state().connections).sum()
    }

    /// Sends the round trip through worker `worker`'s pool and fills `replies` with one reply
    /// per command, as the native engine would. Counts a send once a connection was had; returns
    /// the outcome and when the commands were handed to redis-rs (for service time).
    pub async fn round_trip(&self, worker: usize, rt: &RoundTrip, replies: &mut Vec<Value>, sends: &mut u64) -> (Result<(), ErrorClass>, Instant) {
        let mut pooled = match self.kept.take(worker) {
            Some(c) => c,
            None => match self.pools[worker % self.pools.len()].get_owned().await {
                Ok(c) => c,
                Err(RunError::TimedOut) => return (Err(ErrorClass::PoolTimeout), Instant::now()),
                Err(RunError::User(_)) => return (Err(ErrorClass::Connection), Instant::now()),
            },
        };
        let request = Request::of(rt, self.cluster);
        let sent = Instant::now();
        *sends += 1;
        let conn = &mut *pooled;
        let reply = match &mut conn.inner {
            Inner::Multiplexed(c) => tokio::time::timeout(self.limit, request.query(c)).await,
            Inner::Cluster(c) => tokio::time::timeout(self.limit, request.query(c)).await,
        };
        let outcome = match reply {
            Ok(Ok(value)) => {
                match request {
                    Request::One(_) => replies.push(convert(value)),
                    Request::Many(_) => shape(rt, value, replies),
                }
                Ok(())
            }
            Ok(Err(e)) => match failure(&e) {
                Failure::Server(message) => {
                    replies.extend((0..rt.replies()).map(|_| Value::Error(message.clone())));
                    Ok(())
                }
                Failure::Class(class) => {
                    if class == ErrorClass::Connection {
                        conn.broken = true;
                    }
                    Err(class)
                }
            },
            // Past every timeout redis-rs was given: whatever it waits for, this connection is not
            // to be trusted with the next command.
            Err(_) => {
                conn.broken = true;
                Err(ErrorClass::Timeout)
            }
        };
        // Kept for the worker's next round trip unless broken; else back to its pool (dropped
        // there when broken).
        if !pooled.broken {
            self.kept.put(worker, pooled);
        }
        (outcome, sent)
    }
}

/// Opens one connection, tried `retry.attempts` times with the policy's backoff (`Retry::backoff`,
/// jitter included) between tries, each attempt bounded by the connect timeout redis-rs was
/// given; the last error when none opened.
async fn open_with_retries(manager: &Manager, retry: &crate::scenario::model::Retry) -> Result<RsConn, RedisError> {
    let mut failures = 0;
    loop {
        match manager.connect().await {
            Ok(conn) => return Ok(conn),
            Err(e) if failures + 1 >= retry.attempts.max(1) => return Err(e),
            Err(_) => {
                tokio::time::sleep(retry.backoff(failures, crate::scenario::model::unit_from(u64::from(failures)))).await;
                failures += 1;
            }
        }
    }
}

/// Where redis-rs subscribers connect: the server, the master the sentinels name now, or cluster
/// node `n` (modulo the node count).
#[derive(Clone)]
pub struct PubsubSource {
    manager: Arc<Manager>,
    nodes: Vec<redis::Client>,
    connect_timeout: Duration,
}

impl PubsubSource {
    /// Opens redis-rs's pub/sub on `node` and subscribes to `channels` (or `pattern`), each
    /// subscription confirmed, within the connect timeout.
    pub async fn subscribe(&self, node: usize, channels: &[Vec<u8>], pattern: Option<&[u8]>) -> Result<redis::aio::PubSubStream, String> {
        let open = async {
            let client = match &self.manager.source {
                Source::Standalone(c, _) => c.clone(),
                Source::Sentinel(s, _) => s.lock().await.async_get_client().await?,
                Source::Cluster(_) => self.nodes[node % self.nodes.len().max(1)].clone(),
            };
            let mut ps = client.get_async_pubsub().await?;
            let tally = &self.manager.metrics.tally;
            match pattern {
                Some(p) => {
                    ps.psubscribe(p).await?;
                    tally.count(&redis::cmd("PSUBSCRIBE").arg(p).get_packed_command());
                }
                None => {
                    // One channel at a time: each subscription is confirmed before the next.
                    for c in channels {
                        ps.subscribe(c.as_slice()).await?;
                        tally.count(&redis::cmd("SUBSCRIBE").arg(c.as_slice()).get_packed_command());
                    }
                }
            }
            Ok::<_, RedisError>(ps.into_on_message())
        };
        match tokio::time::timeout(self.connect_timeout, open).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("redis-rs pub/sub: no subscription within {:?}", self.connect_timeout)),
        }
    }
}

/// bb8 wants the manager by value; the pools share one (its sentinel lookup, its counters).
pub struct SharedManager(Arc<Manager>);

impl ManageConnection for SharedManager {
    type Connection = RsConn;
    type Error = RedisError;

    async fn connect(&self) -> Result<RsConn, RedisError> {
        self.0.connect().await
    }

    /// Only asked with a checkout test, which the pools leave off (a PING per operation).
    async fn is_valid(&self, conn: &mut RsConn) -> Result<(), RedisError> {
        let pong: String = match &mut conn.inner {
            Inner::Multiplexed(c) => redis::cmd("PING").query_async(c).await?,
            Inner::Cluster(c) => redis::cmd("PING").query_async(c).await?,
        };
        if pong == "PONG" { Ok(()) } else { Err(RedisError::from((redis::ErrorKind::UnexpectedReturnType, "PING answered", pong))) }
    }

    fn has_broken(&self, conn: &mut RsConn) -> bool {
        self.0.has_broken(conn)
    }
}

/// What redis-rs is asked for a round trip: one command as a command — as a service sends one,
/// without a pipeline's bookkeeping — and several as a pipeline. On clusters one command goes as
/// a pipeline of one too: redis-rs routes a lone command by what it is (a keyless or multi-key
/// one may be fanned out to every primary and its replies combined), a pipeline by its key, as
/// the native engine routes every round trip.
enum Request {
    One(redis::Cmd),
    Many(redis::Pipeline),
}

impl Request {
    fn of(rt: &RoundTrip, cluster: bool) -> Request {
        if rt.replies() == 1 && !cluster { Request::One(command(rt, 0)) } else { Request::Many(pipeline(rt)) }
    }

    /// Sends it and returns the reply as the server sent it: a command's error reply is its
    /// value (`ServerError`), not a failure of the call, as a pipeline's are with
    /// `ignore_errors`; the command is sent as `Cmd::query_async` sends it, without that
    /// method's conversion of the value.
    async fn query(&self, conn: &mut impl ConnectionLike) -> Result<redis::Value, RedisError> {
        match self {
            Request::One(cmd) => conn.req_packed_command(cmd).await,
            Request::Many(pipe) => pipe.query_async::<redis::Value>(conn).await,
        }
    }
}

/// Command `i` of the round trip as a redis-rs command. Sized once from the encoding (its
/// arguments' bytes are fewer): no vector grows while the command is built — growth was an
/// eighth of redis-rs's instructions at depth 16.
fn command(rt: &RoundTrip, i: usize) -> redis::Cmd {
    let args = rt.arg_iter(i);
    let (_, count) = args.size_hint();
    let mut cmd = redis::Cmd::with_capacity(count.unwrap_or(0), args.encoded_len());
    for a in args {
        cmd.arg(a);
    }
    cmd
}

/// The round trip as a redis-rs pipeline: every command but MULTI/EXEC, atomic for transactions,
/// errors of single commands kept in place (`ignore_errors`) as the server sent them.
fn pipeline(rt: &RoundTrip) -> redis::Pipeline {
    let mut pipe = redis::Pipeline::with_capacity(rt.replies());
    let n = rt.replies();
    let range = if rt.is_transaction() {
        pipe.atomic();
        1..n.saturating_sub(1)
    } else {
        0..n
    };
    for i in range {
        pipe.add_command(command(rt, i));
    }
    pipe.ignore_errors();
    pipe
}

/// Lays redis-rs's pipeline reply out as the native engine sees the wire: one reply per command;
/// for a transaction MULTI's OK, a QUEUED per command, then EXEC's array.
fn shape(rt: &RoundTrip, value: redis::Value, replies: &mut Vec<Value>) {
    let items = match value {
        redis::Value::Array(items) => items,
        other => vec![other],
    };
    if rt.is_transaction() {
        let queued = rt.replies().saturating_sub(2);
        replies.push(Value::Status("OK".into()));
        replies.extend((0..queued).map(|_| Value::Status("QUEUED".into())));
        replies.push(Value::Array(items.into_iter().map(convert).collect()));
    } else {
        replies.extend(items.into_iter().map(convert));
    }
}

/// A redis-rs value as the native engine's.
fn convert(v: redis::Value) -> Value {
    match v {
        redis::Value::Nil => Value::Nil,
        redis::Value::Int(i) => Value::Int(i),
        redis::Value::BulkString(b) => Value::Bulk(b),
        redis::Value::Array(items) | redis::Value::Set(items) => Value::Array(items.into_iter().map(convert).collect()),
        redis::Value::SimpleString(s) => Value::Status(s.into()),
        redis::Value::Okay => Value::Status("OK".into()),
        redis::Value::Map(pairs) => Value::Map(pairs.into_iter().map(|(k, v)| (convert(k), convert(v))).collect()),
        redis::Value::Attribute { data, .. } => convert(*data),
        redis::Value::Double(d) => Value::Double(d),
        redis::Value::Boolean(b) => Value::Bool(b),
        redis::Value::VerbatimString { text, .. } => Value::Bulk(text.into_bytes()),
        redis::Value::BigNumber(n) => Value::Bulk(n),
        redis::Value::Push { data, .. } => Value::Push(data.into_iter().map(convert).collect()),
        redis::Value::ServerError(e) => Value::Error(match e.details() {
            Some(d) => format!("{} {d}", e.code()),
            None => e.code().to_owned(),
        }),
        #[allow(unreachable_patterns)]
        other => Value::Bulk(format!("{other:?}").into_bytes()),
    }
}

enum Failure {
    /// The server's error reply, as `CODE detail`: it becomes every command's reply.
    Server(String),
    /// A client-side failure.
    Class(ErrorClass),
}

/// Classifies a redis-rs error as the native engine would have seen it on the wire.
fn failure(e: &RedisError) -> Failure {
    if e.is_timeout() {
        return Failure::Class(ErrorClass::Timeout);
    }
    if let Some(code) = e.code() {
        return Failure::Server(match e.detail() {
            Some(d) => format!("{code} {d}"),
            None => code.to_owned(),
        });
    }
    match e.kind() {
        redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType => Failure::Class(ErrorClass::Protocol),
        _ => Failure::Class(ErrorClass::Connection),
    }
}

fn protocol(p: Protocol) -> ProtocolVersion {
    match p {
        Protocol::Resp2 => ProtocolVersion::RESP2,
        Protocol::Resp3 => ProtocolVersion::RESP3,
    }
}

fn redis_info(t: &crate::scenario::model::Target) -> RedisConnectionInfo {
    let mut info = RedisConnectionInfo::default().set_db(i64::from(t.db)).set_protocol(protocol(t.protocol));
    if let Some(u) = &t.username {
        info = info.set_username(u);
    }
    if let Some(p) = &t.password {
        info = info.set_password(p.expose());
    }
    info
}

fn address(a: &HostPort, tls: Option<&Tls>) -> ConnectionAddr {
    match tls {
        Some(tls) => ConnectionAddr::TcpTls { host: a.host.clone(), port: a.port, insecure: tls.insecure, tls_params: None },
        None => ConnectionAddr::Tcp(a.host.clone(), a.port),
    }
}

/// The scenario's TLS files as redis-rs takes them (PEM bytes); no CA file means the system roots.
fn certificates(tls: &Tls) -> Result<redis::TlsCertificates, String> {
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    let root_cert = match &tls.ca {
        Some(p) => Some(read(p)?),
        None => None,
    };
    let client_tls = match &tls.client_cert {
        Some((cert, key)) => Some(redis::ClientTlsConfig { client_cert: read(cert)?, client_key: read(key)? }),
        None => None,
    };
    Ok(redis::TlsCertificates { client_tls, root_cert })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;

    fn transaction() -> RoundTrip {
        let mut rt = RoundTrip::new();
        rt.push_aux(Command::Multi, 0, 0);
        rt.push(Command::Set, 0, 2).arg(b"k").arg(b"v");
        rt.push(Command::Incr, 0, 1).arg(b"n");
        rt.push_aux(Command::Exec, 0, 0);
        rt
    }

    #[test]
    fn a_transaction_is_an_atomic_pipeline_of_its_commands_and_replies_take_the_wire_shape() {
        let rt = transaction();
        let pipe = pipeline(&rt);
        assert!(pipe.is_transaction());
        let sent: Vec<Vec<u8>> = pipe.cmd_iter().map(|c| c.get_packed_command()).collect();
        assert_eq!(sent, vec![redis::cmd("SET").arg("k").arg("v").get_packed_command(), redis::cmd("INCR").arg("n").get_packed_command()]);
        // redis-rs hands back EXEC's array; the classifier sees MULTI's OK and the QUEUEDs too.
        let mut replies = Vec::new();
        shape(&rt, redis::Value::Array(vec![redis::Value::Okay, redis::Value::Int(3)]), &mut replies);
        assert_eq!(
            replies,
            vec![
                Value::Status("OK".into()),
                Value::Status("QUEUED".into()),
                Value::Status("QUEUED".into()),
                Value::Array(vec![Value::Status("OK".into()), Value::Int(3)])
            ]
        );
    }

    #[test]
    fn a_batch_keeps_one_reply_per_command_with_server_errors_in_place() {
        let mut rt = RoundTrip::new();
        rt.push(Command::Get, 0, 1).arg(b"a");
        rt.push(Command::Lpush, 1, 2).arg(b"a").arg(b"x");
        let pipe = pipeline(&rt);
        assert!(!pipe.is_transaction());
        assert_eq!(pipe.len(), 2);
        let wrongtype = redis::parse_redis_value(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n").unwrap();
        let mut replies = Vec::new();
        shape(&rt, redis::Value::Array(vec![redis::Value::BulkString(b"v".to_vec()), wrongtype]), &mut replies);
        assert_eq!(replies[0], Value::Bulk(b"v".to_vec()));
        assert_eq!(replies[1].error_class(), Some("WRONGTYPE"), "{replies:?}");
    }

    #[test]
    fn redis_rs_errors_are_classified_as_the_wire_would_show_them() {
        let io = |kind| RedisError::from(std::io::Error::new(kind, "x"));
        assert!(matches!(failure(&io(std::io::ErrorKind::TimedOut)), Failure::Class(ErrorClass::Timeout)));
        assert!(matches!(failure(&io(std::io::ErrorKind::ConnectionReset)), Failure::Class(ErrorClass::Connection)));
        assert!(matches!(failure(&io(std::io::ErrorKind::UnexpectedEof)), Failure::Class(ErrorClass::Connection)));
        let server = redis::parse_redis_value(b"-EXECABORT Transaction discarded because of previous errors.\r\n").unwrap().extract_error().unwrap_err();
        match failure(&server) {
            Failure::Server(m) => assert!(m.starts_with("EXECABORT Transaction discarded"), "{m}"),
            Failure::Class(c) => panic!("a server error became {c:?}"),
        }
        let parse = RedisError::from((redis::ErrorKind::Parse, "bad"));
        assert!(matches!(failure(&parse), Failure::Class(ErrorClass::Protocol)));
    }
}
