//! The scenario file as written: serde + schemars types, one per section.
//!
//! These types *are* the file format. The JSON Schema in `schemas/scenario.schema.json` is
//! generated from them (doc comments become descriptions), and every struct denies unknown keys so
//! that a misspelt key is an error, never silently ignored. Values here are only shape-checked;
//! `validate` turns them into the checked model in `model`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::units::{ByteSize, HumanDuration};

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A load and resilience test of a Redis deployment.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "redis-test scenario")]
pub struct RawScenario {
    /// Optional `$schema` reference for editors; ignored by redis-test.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Short name of the scenario; used in report file names and metric labels.
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// What this scenario checks, in a sentence or two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Redis deployment to test.
    pub target: RawTarget,
    /// Connection pools, timeouts and the retry policy.
    #[serde(default)]
    pub connections: RawConnections,
    /// Default keyspace for every workload (each workload may override parts of it).
    #[serde(default)]
    pub keyspace: RawKeyspace,
    /// Named workloads; each phase picks among them by weight.
    #[schemars(length(min = 1))]
    pub workloads: IndexMap<String, RawWorkload>,
    /// Phases, run one after another.
    #[schemars(length(min = 1))]
    pub phases: Vec<RawPhase>,
    /// Faults to inject at given offsets.
    #[serde(default)]
    pub faults: Vec<RawFault>,
    /// Pass/fail rules over the run's results; any failing rule makes the exit code 1.
    #[serde(default)]
    pub thresholds: Vec<RawThreshold>,
    /// Where to write reports.
    #[serde(default)]
    pub output: RawOutput,
    /// Live metrics export (Prometheus, OTLP) and the labels attached to every metric.
    #[serde(default)]
    pub metrics: RawMetrics,
    /// Remove every key under the scenario's prefix after the run (SCAN + UNLINK; never FLUSHDB).
    #[serde(default = "yes")]
    pub cleanup: bool,
}

// ---------------------------------------------------------------------------------------------
// target

/// The Redis deployment to test: a URL, or a local topology that redis-test starts itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// `redis://[user[:password]@]host[:port][/db]` or `rediss://…` for TLS. For a cluster, one seed node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Start a throw-away deployment on loopback for this run instead of connecting to `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalTopology>,
    /// Topology of the deployment.
    #[serde(default)]
    pub mode: Mode,
    /// Additional cluster seed nodes (`host:port` or URLs), tried when `url` is unreachable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// How to find the master through Redis Sentinel (required when `mode: sentinel` and not local).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<RawSentinel>,
    /// ACL user name (overrides the one in `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password (overrides the one in `url`). Prefer `${REDIS_PASSWORD}`; never printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Database number (standalone and sentinel only; overrides the one in `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<u32>,
    /// Wire protocol.
    #[serde(default)]
    pub protocol: Protocol,
    /// TLS settings; `rediss://` turns TLS on with these defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RawTls>,
    /// Send read commands to replicas (cluster and sentinel).
    #[serde(default)]
    pub read_from_replicas: bool,
    /// Route every connection through redis-test's fault proxy (implied for local targets when a
    /// network fault — latency, bandwidth, blackhole, reset, partition — is declared).
    #[serde(default)]
    pub proxy: bool,
}

/// A deployment redis-test starts on loopback ports for the run and stops afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LocalTopology {
    /// One redis-server.
    Standalone,
    /// Three primaries and three replicas.
    Cluster,
    /// One primary, one replica and three sentinels.
    Sentinel,
}

/// Topology of the target deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A single server (or a primary behind a fixed address).
    #[default]
    Standalone,
    /// Redis Cluster: slot-aware routing from seed nodes.
    Cluster,
    /// Redis Sentinel: the master is discovered, and rediscovered after failover.
    Sentinel,
}

/// Sentinel discovery settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSentinel {
    /// Name of the monitored master (`sentinel monitor <name> …`).
    pub master_name: String,
    /// Sentinel addresses, `host:port`.
    #[schemars(length(min = 1))]
    pub nodes: Vec<String>,
    /// ACL user for the sentinels, when they need a different one than the data nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password for the sentinels; never printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The client library that sends the commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Client {
    /// redis-test's own RESP engine: every redirect, reconnect and send is seen and counted.
    #[default]
    #[serde(rename = "native")]
    Native,
    /// The `redis` crate (redis-rs 1.x) with bb8 pools, as Rust services use it.
    #[serde(rename = "redis-rs")]
    RedisRs,
}

impl Client {
    /// The name used in scenario files, plans and reports.
    pub fn name(self) -> &'static str {
        match self {
            Client::Native => "native",
            Client::RedisRs => "redis-rs",
        }
    }
}

/// Wire protocol version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// RESP2, understood by every Redis version.
    #[default]
    Resp2,
    /// RESP3 (Redis 6+).
    Resp3,
}

/// TLS settings. Certificate verification is on unless `insecure: true`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM file with the CA certificate(s) that signed the server certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// PEM client certificate, for mutual TLS (needs `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// PEM private key of the client certificate (needs `cert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Name to verify in the server certificate, when it differs from the host in the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Skip certificate verification. Explicit opt-in; shown in the plan and report.
    #[serde(default)]
    pub insecure: bool,
}

// ---------------------------------------------------------------------------------------------
// connections

/// Connection pools (the original app's "clients × threads per client"), timeouts and retries.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConnections {
    /// The client library that sends the commands: `native` (redis-test's own RESP engine, the
    /// default) or `redis-rs` (the `redis` crate with bb8 pools: the client under test).
    #[serde(default)]
    pub client: Client,
    /// Number of independent connection pools; workers are spread over them.
    #[serde(default = "RawConnections::default_pools")]
    #[schemars(range(min = 1, max = 1024))]
    pub pools: u32,
    /// Connections in each pool.
    #[serde(default = "RawConnections::default_per_pool")]
    #[schemars(range(min = 1, max = 10000))]
    pub per_pool: u32,
    /// Time allowed to open one connection (TCP, TLS, AUTH, HELLO).
    #[serde(default = "RawConnections::default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// Time a worker waits for a free pooled connection before the operation fails as `pool_timeout`.
    #[serde(default = "RawConnections::default_acquire_timeout")]
    pub acquire_timeout: HumanDuration,
    /// Time allowed for one command (or one pipeline) before it fails as `timeout`.
    #[serde(default = "RawConnections::default_command_timeout")]
    pub command_timeout: HumanDuration,
    /// How often idle pooled connections are checked with PING (never on each checkout).
    #[serde(default = "RawConnections::default_health_check_interval")]
    pub health_check_interval: HumanDuration,
    /// Reconnect and retry policy.
    #[serde(default)]
    pub retry: RawRetry,
    /// Maintenance notifications (smart client handoffs, RESP3 only): `auto` asks for them and
    /// goes on quietly when the server does not know them, `on` refuses to run without them,
    /// `off` never asks. The native client relaxes its command timeout while a maintenance window
    /// is open and hands its connections off on MOVING.
    #[serde(default)]
    pub maintenance_notifications: MaintenanceMode,
    /// The command timeout while a maintenance window is open on a connection (the larger of it
    /// and `command_timeout`).
    #[serde(default = "RawConnections::default_relaxed_timeout")]
    pub relaxed_timeout: HumanDuration,
    /// Which address a MOVING should carry: `auto` (an internal IP for a private or loopback
    /// target), `internal-ip`, `internal-fqdn`, `external-ip`, `external-fqdn`, or `none` (no
    /// address: reconnect to the same one after half the announced time).
    #[serde(default)]
    pub moving_endpoint_type: MovingEndpointType,
}

/// Whether the client asks for maintenance notifications.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceMode {
    /// Ask on RESP3 connections; a server that does not know them is noted, never an error.
    #[default]
    Auto,
    /// Ask, and refuse to run when the server says no (needs `target.protocol: resp3`).
    On,
    /// Never ask.
    Off,
}

/// Which address a MOVING should carry (`CLIENT MAINT_NOTIFICATIONS ON moving-endpoint-type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MovingEndpointType {
    /// As the clients choose: `internal-ip` for a private or loopback address, else
    /// `external-ip`; `external-fqdn` when the target is a name.
    #[default]
    Auto,
    /// The node's internal IP address.
    InternalIp,
    /// The node's internal name.
    InternalFqdn,
    /// The external IP address.
    ExternalIp,
    /// The external name.
    ExternalFqdn,
    /// No address: reconnect to the same one after half the announced time.
    None,
}

impl RawConnections {
    fn default_relaxed_timeout() -> HumanDuration {
        std::time::Duration::from_secs(10).into()
    }
    fn default_pools() -> u32 {
        1
    }
    fn default_per_pool() -> u32 {
        16
    }
    fn default_connect_timeout() -> HumanDuration {
        std::time::Duration::from_secs(5).into()
    }
    fn default_acquire_timeout() -> HumanDuration {
        std::time::Duration::from_secs(1).into()
    }
    fn default_command_timeout() -> HumanDuration {
        std::time::Duration::from_secs(1).into()
    }
    fn default_health_check_interval() -> HumanDuration {
        std::time::Duration::from_secs(10).into()
    }
}

impl Default for RawConnections {
    fn default() -> Self {
        Self {
            client: Client::default(),
            pools: Self::default_pools(),
            per_pool: Self::default_per_pool(),
            connect_timeout: Self::default_connect_timeout(),
            acquire_timeout: Self::default_acquire_timeout(),
            command_timeout: Self::default_command_timeout(),
            health_check_interval: Self::default_health_check_interval(),
            retry: RawRetry::default(),
            maintenance_notifications: MaintenanceMode::default(),
            relaxed_timeout: Self::default_relaxed_timeout(),
            moving_endpoint_type: MovingEndpointType::default(),
        }
    }
}

/// Exponential backoff with jitter, for reconnects and for retrying failed commands.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts per operation or reconnect, the first included (1 = never retry).
    #[serde(default = "RawRetry::default_attempts")]
    #[schemars(range(min = 1, max = 100))]
    pub attempts: u32,
    /// Wait before the first retry.
    #[serde(default = "RawRetry::default_initial_backoff")]
    pub initial_backoff: HumanDuration,
    /// Longest wait between retries.
    #[serde(default = "RawRetry::default_max_backoff")]
    pub max_backoff: HumanDuration,
    /// Factor by which the wait grows after each retry.
    #[serde(default = "RawRetry::default_multiplier")]
    #[schemars(range(min = 1.0, max = 10.0))]
    pub multiplier: f64,
    /// Random spread of each wait, as a fraction (0.2 = ±20%).
    #[serde(default = "RawRetry::default_jitter")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub jitter: f64,
    /// Also retry writes after a connection error (they may then be applied twice).
    #[serde(default)]
    pub retry_writes: bool,
}

impl RawRetry {
    fn default_attempts() -> u32 {
        3
    }
    fn default_initial_backoff() -> HumanDuration {
        std::time::Duration::from_millis(50).into()
    }
    fn default_max_backoff() -> HumanDuration {
        std::time::Duration::from_secs(2).into()
    }
    fn default_multiplier() -> f64 {
        2.0
    }
    fn default_jitter() -> f64 {
        0.2
    }
}

impl Default for RawRetry {
    fn default() -> Self {
        Self {
            attempts: Self::default_attempts(),
            initial_backoff: Self::default_initial_backoff(),
            max_backoff: Self::default_max_backoff(),
            multiplier: Self::default_multiplier(),
            jitter: Self::default_jitter(),
            retry_writes: false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// keyspace

/// Which keys a workload touches and what it writes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKeyspace {
    /// Every key the run touches starts with this prefix; cleanup removes exactly these keys.
    #[serde(default = "RawKeyspace::default_prefix")]
    #[schemars(length(min = 1))]
    pub prefix: String,
    /// Number of distinct keys per workload.
    #[serde(default = "RawKeyspace::default_keys")]
    #[schemars(range(min = 1))]
    pub keys: u64,
    /// How keys are picked.
    #[serde(default)]
    pub distribution: Distribution,
    /// Size of written values.
    #[serde(default = "RawKeyspace::default_value_size")]
    pub value_size: ValueSize,
    /// Expire written keys after this long (none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<HumanDuration>,
}

impl RawKeyspace {
    fn default_prefix() -> String {
        "redis-test:".into()
    }
    fn default_keys() -> u64 {
        10_000
    }
    fn default_value_size() -> ValueSize {
        ValueSize::Fixed(ByteSize(64))
    }
}

impl Default for RawKeyspace {
    fn default() -> Self {
        Self {
            prefix: Self::default_prefix(),
            keys: Self::default_keys(),
            distribution: Distribution::default(),
            value_size: Self::default_value_size(),
            ttl: None,
        }
    }
}

/// Per-workload changes to the scenario's keyspace; unset fields inherit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKeyspaceOverride {
    /// Key prefix for this workload; must start with the scenario's `keyspace.prefix`.
    /// Defaults to `<scenario prefix><workload name>:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Number of distinct keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub keys: Option<u64>,
    /// How keys are picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// Size of written values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_size: Option<ValueSize>,
    /// Expire written keys after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<HumanDuration>,
}

/// How keys are picked from the keyspace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    /// Every key equally likely.
    #[default]
    Uniform,
    /// Keys in order, wrapping around (each worker walks its own sequence).
    Sequential,
    /// A few hot keys: key rank k is picked with probability ∝ 1/k^exponent.
    Zipf {
        /// Skew; 0.99 is the classic YCSB hot-spot.
        #[schemars(range(min = 0.0, max = 10.0))]
        exponent: f64,
    },
    /// Keys around a centre: normal distribution over the key range, clipped to it.
    Gaussian {
        /// Centre as a fraction of the key range (0.5 = middle).
        #[schemars(range(min = 0.0, max = 1.0))]
        mean: f64,
        /// Spread as a fraction of the key range.
        #[schemars(range(min = 0.0, max = 1.0))]
        stddev: f64,
    },
}

/// Value size: fixed, or uniformly random between `min` and `max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ValueSize {
    /// Every value has this size.
    Fixed(ByteSize),
    /// Each value gets a size drawn uniformly from this range.
    Range(SizeRange),
}

/// A size range, both ends included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SizeRange {
    /// Smallest size.
    pub min: ByteSize,
    /// Largest size.
    pub max: ByteSize,
}

// ---------------------------------------------------------------------------------------------
// workloads

/// One workload: its kind, its weight in the mix and its options.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RawWorkload {
    /// SET / GET / DEL / INCR on string keys; GETs read the keys SETs write.
    Basic(BasicSpec),
    /// The cheapest small SET/GET, optionally pipelined, for maximum ops/s.
    HighThroughput(HighThroughputSpec),
    /// LPUSH, RPUSH, LPOP, RPOP, LRANGE, LLEN, LTRIM on bounded lists.
    List(ListSpec),
    /// SADD, SREM, SISMEMBER, SMEMBERS, SCARD over a member universe.
    Set(SetSpec),
    /// ZADD, ZINCRBY, ZRANGE, ZRANGEBYSCORE, ZRANK, ZSCORE, ZREM over a member universe.
    SortedSet(SortedSetSpec),
    /// HSET, HGET, HMGET, HGETALL, HINCRBY, HDEL over a field universe.
    Hash(HashSpec),
    /// Batches of `depth` commands from a weighted mix, optionally as MULTI/EXEC.
    Pipeline(PipelineSpec),
    /// PUBLISH through the pool to subscribers on dedicated connections; end-to-end delivery checks.
    Pubsub(PubsubSpec),
    /// Your own commands: templates with placeholders, drawn by weight or sent as a sequence.
    Custom(CustomSpec),
    /// XADD producers (the phase's workers) and a consumer group reading, acknowledging and
    /// claiming; every entry checked end to end.
    Stream(StreamSpec),
}

/// Declares a workload's option struct with the fields every workload shares (`weight`, `keyspace`).
macro_rules! workload_spec {
    ($(#[$meta:meta])* $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Relative share of operations in phases that do not set their own `mix`.
            #[serde(default = "default_weight")]
            #[schemars(range(min = 0.0))]
            pub weight: f64,
            /// Changes to the scenario's keyspace for this workload.
            #[serde(default)]
            pub keyspace: RawKeyspaceOverride,
            $($body)*
        }
    };
}

fn default_weight() -> f64 {
    1.0
}

workload_spec!(
    /// Options of the `basic` workload. SET takes whatever share the other ratios leave.
    BasicSpec {
        /// Share of GETs (0..1).
        #[serde(default = "BasicSpec::default_read_ratio")]
        #[schemars(range(min = 0.0, max = 1.0))]
        pub read_ratio: f64,
        /// Share of DELs (0..1).
        #[serde(default)]
        #[schemars(range(min = 0.0, max = 1.0))]
        pub delete_ratio: f64,
        /// Share of INCRs on counter keys (0..1).
        #[serde(default)]
        #[schemars(range(min = 0.0, max = 1.0))]
        pub incr_ratio: f64,
        /// Remember every acknowledged SET (key and value digest) and read it back after the run,
        /// reporting writes that were lost or changed; and sum the acknowledged INCRs of every
        /// counter, compared with the server's value (increments lost, duplicated, indeterminate).
        #[serde(default)]
        pub verify: bool,
    }
);

impl BasicSpec {
    fn default_read_ratio() -> f64 {
        0.8
    }
}

workload_spec!(
    /// Options of the `high_throughput` workload.
    HighThroughputSpec {
        /// Share of GETs (0..1); the rest are SETs.
        #[serde(default = "HighThroughputSpec::default_read_ratio")]
        #[schemars(range(min = 0.0, max = 1.0))]
        pub read_ratio: f64,
        /// Commands sent per round trip (1 = no pipelining).
        #[serde(default = "one")]
        #[schemars(range(min = 1, max = 10000))]
        pub pipeline: u32,
    }
);

impl HighThroughputSpec {
    fn default_read_ratio() -> f64 {
        0.5
    }
}

fn one() -> u32 {
    1
}

/// Declares a struct of per-command weights, each defaulting as given.
macro_rules! command_weights {
    ($(#[$meta:meta])* $name:ident { $($field:ident = $default:expr, $op:literal, $doc:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $(
                #[doc = $doc]
                #[schemars(range(min = 0.0))]
                pub $field: f64,
            )*
        }

        impl $name {
            /// Pairs of (operation name, weight), in declaration order.
            pub fn weights(&self) -> Vec<(&'static str, f64)> {
                vec![$(($op, self.$field)),*]
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default),* }
            }
        }
    };
}

command_weights!(
    /// Weights of list commands.
    ListCommands {
        lpush = 2.0, "LPUSH", "Relative weight of LPUSH.";
        rpush = 2.0, "RPUSH", "Relative weight of RPUSH.";
        lpop = 1.0, "LPOP", "Relative weight of LPOP.";
        rpop = 1.0, "RPOP", "Relative weight of RPOP.";
        lrange = 2.0, "LRANGE", "Relative weight of LRANGE.";
        llen = 1.0, "LLEN", "Relative weight of LLEN.";
        ltrim = 0.5, "LTRIM", "Relative weight of LTRIM.";
    }
);
command_weights!(
    /// Weights of set commands.
    SetCommands {
        sadd = 3.0, "SADD", "Relative weight of SADD.";
        srem = 1.0, "SREM", "Relative weight of SREM.";
        sismember = 3.0, "SISMEMBER", "Relative weight of SISMEMBER.";
        smembers = 0.5, "SMEMBERS", "Relative weight of SMEMBERS.";
        scard = 1.0, "SCARD", "Relative weight of SCARD.";
    }
);
command_weights!(
    /// Weights of sorted-set commands.
    SortedSetCommands {
        zadd = 3.0, "ZADD", "Relative weight of ZADD.";
        zincrby = 1.0, "ZINCRBY", "Relative weight of ZINCRBY.";
        zrange = 1.0, "ZRANGE", "Relative weight of ZRANGE.";
        zrangebyscore = 1.0, "ZRANGEBYSCORE", "Relative weight of ZRANGEBYSCORE.";
        zrank = 1.0, "ZRANK", "Relative weight of ZRANK.";
        zscore = 2.0, "ZSCORE", "Relative weight of ZSCORE.";
        zrem = 1.0, "ZREM", "Relative weight of ZREM.";
    }
);
command_weights!(
    /// Weights of hash commands.
    HashCommands {
        hset = 3.0, "HSET", "Relative weight of HSET.";
        hget = 3.0, "HGET", "Relative weight of HGET.";
        hmget = 1.0, "HMGET", "Relative weight of HMGET.";
        hgetall = 0.5, "HGETALL", "Relative weight of HGETALL.";
        hincrby = 1.0, "HINCRBY", "Relative weight of HINCRBY.";
        hdel = 0.5, "HDEL", "Relative weight of HDEL.";
    }
);
command_weights!(
    /// Weights of the commands a pipeline batch is drawn from.
    PipelineCommands {
        set = 1.0, "SET", "Relative weight of SET.";
        get = 1.0, "GET", "Relative weight of GET.";
        incr = 0.0, "INCR", "Relative weight of INCR.";
        del = 0.0, "DEL", "Relative weight of DEL.";
        hset = 0.0, "HSET", "Relative weight of HSET.";
        hget = 0.0, "HGET", "Relative weight of HGET.";
        lpush = 0.0, "LPUSH", "Relative weight of LPUSH.";
        rpop = 0.0, "RPOP", "Relative weight of RPOP.";
        sadd = 0.0, "SADD", "Relative weight of SADD.";
        zadd = 0.0, "ZADD", "Relative weight of ZADD.";
    }
);

workload_spec!(
    /// Options of the `list` workload.
    ListSpec {
        /// Lists are trimmed to at most this many elements.
        #[serde(default = "ListSpec::default_max_length")]
        #[schemars(range(min = 1))]
        pub max_length: u32,
        /// Elements read by one LRANGE.
        #[serde(default = "default_range")]
        #[schemars(range(min = 1))]
        pub range: u32,
        /// Command weights.
        #[serde(default)]
        pub commands: ListCommands,
    }
);

impl ListSpec {
    fn default_max_length() -> u32 {
        1_000
    }
}

fn default_range() -> u32 {
    10
}

fn default_members() -> u32 {
    1_000
}

workload_spec!(
    /// Options of the `set` workload.
    SetSpec {
        /// Members are drawn from this many distinct values, which bounds each set's size.
        #[serde(default = "default_members")]
        #[schemars(range(min = 1))]
        pub members: u32,
        /// Command weights.
        #[serde(default)]
        pub commands: SetCommands,
    }
);

workload_spec!(
    /// Options of the `sorted_set` workload.
    SortedSetSpec {
        /// Members are drawn from this many distinct values, which bounds each sorted set's size.
        #[serde(default = "default_members")]
        #[schemars(range(min = 1))]
        pub members: u32,
        /// Elements read by one ZRANGE / ZRANGEBYSCORE.
        #[serde(default = "default_range")]
        #[schemars(range(min = 1))]
        pub range: u32,
        /// Command weights.
        #[serde(default)]
        pub commands: SortedSetCommands,
    }
);

workload_spec!(
    /// Options of the `hash` workload.
    HashSpec {
        /// Fields are drawn from this many distinct names, which bounds each hash's size.
        #[serde(default = "HashSpec::default_fields")]
        #[schemars(range(min = 1))]
        pub fields: u32,
        /// Fields read by one HMGET.
        #[serde(default = "HashSpec::default_hmget_fields")]
        #[schemars(range(min = 1))]
        pub hmget_fields: u32,
        /// Command weights.
        #[serde(default)]
        pub commands: HashCommands,
        /// Sum the acknowledged HINCRBYs of every counter field and compare each with the server's
        /// value after the run: increments lost, duplicated (applied more often than sent) or
        /// indeterminate (failed as far as the client knew, applied all the same).
        #[serde(default)]
        pub verify: bool,
    }
);

impl HashSpec {
    fn default_fields() -> u32 {
        100
    }
    fn default_hmget_fields() -> u32 {
        4
    }
}

workload_spec!(
    /// Options of the `pipeline` workload.
    PipelineSpec {
        /// Commands per batch.
        #[serde(default = "PipelineSpec::default_depth")]
        #[schemars(range(min = 1, max = 10000))]
        pub depth: u32,
        /// Wrap each batch in MULTI/EXEC.
        #[serde(default)]
        pub transaction: bool,
        /// Weights of the commands batches are drawn from.
        #[serde(default)]
        pub commands: PipelineCommands,
    }
);

impl PipelineSpec {
    fn default_depth() -> u32 {
        10
    }
}

workload_spec!(
    /// Options of the `pubsub` workload. Publishers are the phase's workers: each operation is one
    /// PUBLISH through the pool; subscribers hold dedicated connections for the whole run.
    PubsubSpec {
        /// Number of channels messages are spread over.
        #[serde(default = "PubsubSpec::default_channels")]
        #[schemars(range(min = 1, max = 10000))]
        pub channels: u32,
        /// Subscriber connections; each subscribes to every channel.
        #[serde(default = "one")]
        #[schemars(range(min = 1, max = 1000))]
        pub subscribers: u32,
        /// Subscribe with PSUBSCRIBE on a pattern instead of SUBSCRIBE on each channel.
        #[serde(default)]
        pub pattern: bool,
        /// Size of each message, including its header (publisher id, sequence number, send time).
        #[serde(default = "PubsubSpec::default_message_size")]
        pub message_size: ByteSize,
    }
);

workload_spec!(
    /// Options of the `custom` workload: your own commands as templates. Every key argument (as
    /// the server locates it with COMMAND GETKEYS, or as `keys` names it) is sent under the
    /// key prefix, so cleanup finds whatever the run wrote. `verify` is not available for custom
    /// workloads: the tool cannot know what your commands should leave behind.
    CustomSpec {
        /// Lua scripts by name, loaded once per node (SCRIPT LOAD) before the first phase;
        /// `{script:NAME}` in a template is the script's SHA1 (for EVALSHA).
        #[serde(default)]
        pub scripts: std::collections::BTreeMap<String, String>,
        /// The command templates.
        #[schemars(length(min = 1, max = 64))]
        pub commands: Vec<CommandTemplate>,
        /// Send every command, in order, as one round trip (instead of one drawn by weight).
        #[serde(default)]
        pub sequence: bool,
        /// Wrap each round trip in MULTI/EXEC.
        #[serde(default)]
        pub transaction: bool,
        /// Commands per round trip, each drawn by weight (with `sequence`: the sequence repeated).
        #[serde(default = "one")]
        #[schemars(range(min = 1, max = 10000))]
        pub depth: u32,
    }
);

impl CustomSpec {
    /// The operation a round trip is counted under when it carries more than one command:
    /// `EXEC` for transactions, `SEQUENCE`, `PIPELINE` for depth above 1; `None` when each round
    /// trip is one command, counted as itself.
    pub fn batch_name(&self) -> Option<&'static str> {
        if self.transaction {
            Some("EXEC")
        } else if self.sequence {
            Some("SEQUENCE")
        } else if self.depth > 1 {
            Some("PIPELINE")
        } else {
            None
        }
    }
}

/// One command template: either a command line (redis-cli quoting rules) or its arguments.
/// Placeholders: `{key}`, `{tag}`, `{data}`, `{data:N}`, `{rand:N}`, `{seq:N}`, `{range:N:W}`,
/// `{now_us}`, `{script:NAME}` (memtier's `__key__`, `__data__` and redis-benchmark's
/// `__rand_int__` too); `{{` is a literal `{`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandTemplate {
    /// The command as a line: `HSET cart:{key} item:{rand:50} {data:48}`.
    #[serde(default)]
    pub command: Option<String>,
    /// The command as arguments, the name first (binary-safe: no quoting rules).
    #[serde(default)]
    pub args: Option<Vec<String>>,
    /// Relative share among the workload's commands (not with `sequence`).
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub weight: Option<f64>,
    /// The operation's name in reports (default: the command's name); unique in the workload.
    #[serde(default)]
    pub name: Option<String>,
    /// Argument positions that are keys (1 = the first argument after the name), for commands
    /// whose keys the server cannot locate.
    #[serde(default)]
    pub keys: Option<Vec<u32>>,
}

workload_spec!(
    /// Options of the `stream` workload. Producers are the phase's workers: each operation is one
    /// XADD through the pool. Consumers of one group read (XREADGROUP), acknowledge (XACK) and
    /// claim what others left pending (XAUTOCLAIM) for the whole run; every entry carries its
    /// producer, sequence number, send time and a checksum, so each is accounted for at the end.
    StreamSpec {
        /// Stream keys under the key prefix (`stream:0`, `stream:1`, …).
        #[serde(default = "one")]
        #[schemars(range(min = 1, max = 1000))]
        pub streams: u32,
        /// XADD … MAXLEN ~ this (none by default: streams grow).
        #[serde(default)]
        #[schemars(range(min = 1))]
        pub maxlen: Option<u64>,
        /// The consumer group, created (MKSTREAM) before the first phase.
        #[serde(default = "StreamSpec::default_group")]
        pub group: String,
        /// Consumer tasks per process; consumer N reads stream N modulo `streams`.
        #[serde(default = "one")]
        #[schemars(range(min = 1, max = 1000))]
        pub consumers: u32,
        /// Entries per XREADGROUP and XAUTOCLAIM.
        #[serde(default = "StreamSpec::default_count")]
        #[schemars(range(min = 1, max = 10000))]
        pub count: u32,
        /// How long an XREADGROUP waits for entries (shorter than `connections.command_timeout`).
        #[serde(default = "StreamSpec::default_block")]
        pub block: HumanDuration,
        /// Entries pending longer than this are claimed (XAUTOCLAIM): the work of consumers that
        /// read and never acknowledged.
        #[serde(default = "StreamSpec::default_claim_after")]
        pub claim_after: HumanDuration,
        /// Time a consumer works on what it read before acknowledging it (none by default): the
        /// window in which a lost connection leaves the entries pending for a claim.
        #[serde(default)]
        pub process_time: Option<HumanDuration>,
        /// Size of each entry's payload, including its header (producer, sequence, send time).
        #[serde(default = "StreamSpec::default_message_size")]
        pub message_size: ByteSize,
    }
);

impl StreamSpec {
    fn default_group() -> String {
        "redis-test".into()
    }
    fn default_count() -> u32 {
        10
    }
    fn default_block() -> HumanDuration {
        HumanDuration(std::time::Duration::from_millis(100))
    }
    fn default_claim_after() -> HumanDuration {
        HumanDuration(std::time::Duration::from_secs(1))
    }
    fn default_message_size() -> ByteSize {
        ByteSize(64)
    }
}

impl PubsubSpec {
    fn default_channels() -> u32 {
        4
    }
    fn default_message_size() -> ByteSize {
        ByteSize(128)
    }
}

// ---------------------------------------------------------------------------------------------
// phases

/// One phase of the run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    /// Unique name, used by faults, thresholds and reports.
    #[schemars(length(min = 1))]
    pub name: String,
    /// What the phase is for; shown in plans and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<PhaseKind>,
    /// How long the phase lasts.
    pub duration: HumanDuration,
    /// Concurrent workers: a number, or a linear ramp `{from, to}` over the phase.
    pub workers: Ramp<u32>,
    /// Target operations per second over all workers: a number or a ramp `{from, to}`.
    /// Absent: closed loop, every worker goes as fast as it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Ramp<f64>>,
    /// Workload weights for this phase, replacing the workloads' own `weight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<IndexMap<String, f64>>,
}

/// The purpose of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhaseKind {
    /// Load grows.
    RampUp,
    /// Load holds.
    Steady,
    /// Load falls.
    Cooldown,
}

/// A value that is constant over a phase, or ramps linearly `from` → `to`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Ramp<T> {
    /// The same value for the whole phase.
    Constant(T),
    /// A linear ramp from the phase's start to its end.
    Linear {
        /// Value at the start of the phase.
        from: T,
        /// Value at the end of the phase.
        to: T,
    },
}

impl<T: Copy> Ramp<T> {
    /// (start, end) values.
    pub fn ends(&self) -> (T, T) {
        match *self {
            Ramp::Constant(v) => (v, v),
            Ramp::Linear { from, to } => (from, to),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// faults

/// A fault injected during the run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum RawFault {
    /// CLIENT KILL: drop redis-test's own connections, or every normal client.
    ClientKill(ClientKillSpec),
    /// CLIENT PAUSE for a while (writes only, or all commands).
    ClientPause(ClientPauseSpec),
    /// DEBUG SLEEP: block the server for a while.
    DebugSleep(DebugSleepSpec),
    /// Fail over: CLUSTER FAILOVER on a replica, or SENTINEL FAILOVER.
    Failover(FailoverSpec),
    /// Stop a node of a local topology and start it again after a delay.
    Restart(RestartSpec),
    /// Freeze a node of a local topology (SIGSTOP, then SIGCONT after `duration`): the stuck node
    /// that keeps its connections open and answers nothing.
    Freeze(FreezeSpec),
    /// Local cluster or sentinel deployments: per shard, restart each replica (with `binary` when
    /// given) and wait until it is in sync, fail over to it, restart the old primary as a replica.
    RollingUpgrade(RollingUpgradeSpec),
    /// Through the fault proxy: every reply waits `delay` (± `jitter`) for `duration`.
    Latency(LatencySpec),
    /// Through the fault proxy: both directions paced to `bytes_per_second` for `duration`.
    Bandwidth(BandwidthSpec),
    /// Through the fault proxy: bytes dropped both ways for `duration`, connections left open (no
    /// reset): the half-open connection.
    Blackhole(NetworkSpec),
    /// Through the fault proxy: every open connection closed with a reset (RST), once.
    Reset(ResetSpec),
    /// Through the fault proxy: for `duration`, new connections refused (reset at once) and open
    /// ones black-holed.
    Partition(NetworkSpec),
    /// Run a command (a maintenance script) with a timeout.
    Shell(ShellSpec),
    /// A real maintenance on a local standalone target, announced through the RESP-aware fault
    /// proxy with maintenance notifications (or silently with `announce: false`, the baseline).
    Maintenance(MaintenanceSpec),
    /// Through the RESP-aware fault proxy: send maintenance notifications only, with no real
    /// change — to test a client's parsing, relaxed timeouts and handoffs.
    Notify(NotifySpec),
}

impl RawFault {
    /// Whether the run fails when this fault fails or is cut short.
    pub fn required(&self) -> bool {
        match self {
            RawFault::ClientKill(s) => s.required,
            RawFault::ClientPause(s) => s.required,
            RawFault::DebugSleep(s) => s.required,
            RawFault::Failover(s) => s.required,
            RawFault::Restart(s) => s.required,
            RawFault::Freeze(s) => s.required,
            RawFault::RollingUpgrade(s) => s.required,
            RawFault::Latency(s) => s.required,
            RawFault::Bandwidth(s) => s.required,
            RawFault::Blackhole(s) | RawFault::Partition(s) => s.required,
            RawFault::Reset(s) => s.required,
            RawFault::Shell(s) => s.required,
            RawFault::Maintenance(s) => s.required,
            RawFault::Notify(s) => s.required,
        }
    }
}

/// Declares a fault's option struct with the fields every fault shares (`at`, `phase`, `name`).
macro_rules! fault_spec {
    ($(#[$meta:meta])* $name:ident { $($body:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Label for reports; defaults to the action and its offset.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub name: Option<String>,
            /// When to inject: offset from the start of the run, or of `phase` when given.
            pub at: HumanDuration,
            /// Count `at` from the start of this phase instead of the start of the run.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub phase: Option<String>,
            /// Whether the run fails (exit 1) when this fault fails or is cut short; `false` makes
            /// it informative: reported, never failing the run.
            #[serde(default = "yes", skip_serializing_if = "is_true")]
            pub required: bool,
            $($body)*
        }
    };
}

fault_spec!(
    /// Options of `client_kill`.
    ClientKillSpec {
        /// Whose connections to drop.
        #[serde(default)]
        pub clients: KillClients,
    }
);

/// Whose connections `client_kill` drops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KillClients {
    /// Only redis-test's own connections (matched by client name).
    #[default]
    Own,
    /// Every normal client connection.
    Normal,
}

fault_spec!(
    /// Options of `client_pause`.
    ClientPauseSpec {
        /// How long clients stay paused.
        pub duration: HumanDuration,
        /// Pause writes only, or all commands.
        #[serde(default)]
        pub mode: PauseMode,
    }
);

/// What `client_pause` pauses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PauseMode {
    /// Every command.
    #[default]
    All,
    /// Write commands only.
    Write,
}

fault_spec!(
    /// Options of `debug_sleep`.
    DebugSleepSpec {
        /// How long the server sleeps.
        pub duration: HumanDuration,
    }
);

fault_spec!(
    /// Options of `failover`.
    FailoverSpec {
        /// Cluster shard (0-based, by slot order) whose replica takes over; random when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub shard: Option<u32>,
    }
);

fault_spec!(
    /// Options of `restart` (local targets only).
    RestartSpec {
        /// Node to restart (0-based, in start order; 0 is the first primary).
        #[serde(default)]
        pub node: u32,
        /// How long the node stays down.
        #[serde(default = "RestartSpec::default_down_for")]
        pub down_for: HumanDuration,
        /// The node comes back on another port (local cluster and sentinel targets): the cluster
        /// learns it from the node's own gossip, the sentinels from the master's replica list.
        #[serde(default)]
        pub new_port: bool,
    }
);

fault_spec!(
    /// Options of `freeze` (local targets only).
    FreezeSpec {
        /// Node to freeze (0-based, in start order; 0 is the first primary).
        #[serde(default)]
        pub node: u32,
        /// How long the node stays frozen.
        pub duration: HumanDuration,
    }
);

fault_spec!(
    /// Options of `rolling_upgrade`.
    RollingUpgradeSpec {
        /// The redis-server to restart every node with (the new version); the one on PATH when
        /// absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub binary: Option<String>,
    }
);

fault_spec!(
    /// Options of `maintenance`.
    MaintenanceSpec {
        /// What changes: `move` (local standalone: a new node is synced as a replica, the endpoint
        /// moves to it, the old endpoint's connections are closed at the end of the notice) or
        /// `failover` (local cluster: a shard's replica takes over).
        pub kind: MaintenanceKind,
        /// The time announced: in MOVING, how long the old endpoint keeps its connections; in
        /// FAILING_OVER, how long the failover may take.
        #[serde(default = "MaintenanceSpec::default_notice")]
        pub notice: HumanDuration,
        /// Send the notifications (`false`: the same change, silently — the baseline).
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        pub announce: bool,
        /// `failover`: the cluster shard (0-based, by slot order) whose replica takes over;
        /// `migrate`: the shard whose slots move to the next one. 0 when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub shard: Option<u32>,
        /// `migrate`: how many slots move (from the start of the shard's first range); 100 when
        /// absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 1, max = 16384))]
        pub slots: Option<u32>,
    }
);

impl MaintenanceSpec {
    fn default_notice() -> HumanDuration {
        std::time::Duration::from_secs(2).into()
    }
}

/// What a `maintenance` fault changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceKind {
    /// Local standalone targets: the endpoint moves to a new node (synced as a replica first,
    /// then promoted); announced with MOVING.
    Move,
    /// Local cluster targets: a shard's replica takes over (CLUSTER FAILOVER); announced with
    /// FAILING_OVER and FAILED_OVER.
    Failover,
    /// Local cluster targets: slots of a shard, with their keys, move to the next shard (CLUSTER
    /// SETSLOT and MIGRATE); announced with SMIGRATING and SMIGRATED.
    Migrate,
}

fault_spec!(
    /// Options of `notify`.
    NotifySpec {
        /// The messages to send, in order (`MIGRATING`, `MIGRATED`, `FAILING_OVER`, `FAILED_OVER`,
        /// `MOVING` — which names no endpoint: reconnect to the same address after half the
        /// notice — `SMIGRATING`, `SMIGRATED`).
        pub messages: Vec<MaintenanceMessage>,
        /// The time the messages announce, and the pause between two of them.
        #[serde(default = "MaintenanceSpec::default_notice")]
        pub notice: HumanDuration,
    }
);

/// The maintenance notifications, by their name on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum MaintenanceMessage {
    /// The endpoint moves: reconnect to the one given (or to the same address after half the time).
    #[serde(rename = "MOVING")]
    Moving,
    /// The node's data is being migrated: expect slow replies.
    #[serde(rename = "MIGRATING")]
    Migrating,
    /// The migration ended.
    #[serde(rename = "MIGRATED")]
    Migrated,
    /// A failover begins: expect slow replies.
    #[serde(rename = "FAILING_OVER")]
    FailingOver,
    /// The failover ended.
    #[serde(rename = "FAILED_OVER")]
    FailedOver,
    /// Cluster API: slots are being migrated.
    #[serde(rename = "SMIGRATING")]
    SMigrating,
    /// Cluster API: slots moved.
    #[serde(rename = "SMIGRATED")]
    SMigrated,
}

fault_spec!(
    /// Options of `latency`.
    LatencySpec {
        /// Added to every reply.
        pub delay: HumanDuration,
        /// Spread around `delay` (uniform, ±).
        #[serde(default)]
        pub jitter: HumanDuration,
        /// How long the latency lasts.
        pub duration: HumanDuration,
        /// Node (0-based, in start order); every node when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub node: Option<u32>,
    }
);

fault_spec!(
    /// Options of `bandwidth`.
    BandwidthSpec {
        /// Bytes per second each way on a node's link, shared by all of its connections (as a
        /// network link is): a number of bytes or a size (`8KiB`).
        pub bytes_per_second: ByteSize,
        /// How long the limit lasts.
        pub duration: HumanDuration,
        /// Node (0-based, in start order); every node when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub node: Option<u32>,
    }
);

fault_spec!(
    /// Options of `blackhole` and `partition`.
    NetworkSpec {
        /// How long it lasts.
        pub duration: HumanDuration,
        /// Node (0-based, in start order); every node when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub node: Option<u32>,
    }
);

fault_spec!(
    /// Options of `reset`.
    ResetSpec {
        /// Node (0-based, in start order); every node when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub node: Option<u32>,
    }
);

impl RestartSpec {
    fn default_down_for() -> HumanDuration {
        std::time::Duration::from_secs(1).into()
    }
}

fault_spec!(
    /// Options of `shell`.
    ShellSpec {
        /// Command line, run with `sh -c`.
        #[schemars(length(min = 1))]
        pub command: String,
        /// The command is killed after this long and the fault reported as failed.
        #[serde(default = "ShellSpec::default_timeout")]
        pub timeout: HumanDuration,
    }
);

impl ShellSpec {
    fn default_timeout() -> HumanDuration {
        std::time::Duration::from_secs(30).into()
    }
}

// ---------------------------------------------------------------------------------------------
// thresholds, output, metrics

/// A pass/fail rule: `"p99 < 5ms"`, or the same with a scope.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawThreshold {
    /// `<metric> <op> <value>` over the whole run, e.g. `p99 < 5ms`, `error_rate < 0.1%`.
    Expr(String),
    /// A rule limited to a phase, a workload, an operation or a fault's window.
    Scoped(ScopedThreshold),
}

/// A rule with a scope.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopedThreshold {
    /// `<metric> <op> <value>`. Metrics: p50 p90 p95 p99 p999 max mean (durations), ops_per_sec,
    /// ops, errors, error_rate (e.g. `0.1%`), outage, recovery_time (durations), lost_writes.
    pub expr: String,
    /// Only this phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Only this workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Only this operation (e.g. `GET`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Only this fault's window (from its start to the next fault or the end of the run), by its
    /// name: `errors` (timeouts included), `outage`, `recovery_time` and `handoff_time` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// Report files. Paths may use `{name}` (scenario name) and `{run_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// JSON report path, e.g. `reports/{name}-{run_id}.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// Self-contained HTML report path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// JUnit XML path: one test case per threshold and per fault, for CI systems' test tabs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub junit: Option<String>,
}

/// Live metrics export and labels.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Serve Prometheus `/metrics` during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<RawPrometheus>,
    /// Push metrics (and optionally sampled spans) over OTLP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<RawOtlp>,
    /// Push the final metrics to a Prometheus Pushgateway when the run ends (`http://host:9091`),
    /// grouped by `job` (redis-test), `run_id` and `instance_id`: the convention for batch jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushgateway: Option<String>,
    /// Labels attached to every metric.
    #[serde(default)]
    pub labels: RawLabels,
}

/// Prometheus endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheus {
    /// Address to listen on: `host:port`, or a bare port for loopback.
    pub listen: String,
}

/// OTLP export.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOtlp {
    /// Collector endpoint, e.g. `http://127.0.0.1:4317`. Defaults to `OTEL_EXPORTER_OTLP_ENDPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Transport.
    #[serde(default)]
    pub protocol: OtlpProtocol,
    /// Export interval.
    #[serde(default = "RawOtlp::default_interval")]
    pub interval: HumanDuration,
    /// Extra request headers (e.g. an auth token); values are never printed.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// Export a sampled span per operation; the fraction of operations sampled (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub traces: Option<f64>,
    /// Compress requests (`gzip`, or `none`). Defaults to `OTEL_EXPORTER_OTLP_COMPRESSION`, else none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<OtlpCompression>,
    /// CA certificate (PEM) to verify an `https://` collector with, instead of the system's roots.
    /// Defaults to `OTEL_EXPORTER_OTLP_CERTIFICATE`. A relative path is next to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<std::path::PathBuf>,
}

/// OTLP request compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OtlpCompression {
    /// Uncompressed.
    None,
    /// gzip (what collectors accept by default).
    Gzip,
}

impl RawOtlp {
    fn default_interval() -> HumanDuration {
        std::time::Duration::from_secs(10).into()
    }
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// gRPC, usually port 4317.
    #[default]
    Grpc,
    /// HTTP with protobuf bodies, usually port 4318.
    Http,
}

/// Labels on every metric (the names the original Python test app used).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLabels {
    /// Application name.
    #[serde(default = "RawLabels::default_app_name")]
    pub app_name: String,
    /// This load generator's instance; defaults to the host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Run identifier; defaults to a fresh one per run (or `--run-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Version label, e.g. of the client library or deployment under test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl RawLabels {
    fn default_app_name() -> String {
        "redis-test".into()
    }
}

impl Default for RawLabels {
    fn default() -> Self {
        Self { app_name: Self::default_app_name(), instance_id: None, run_id: None, version: None }
    }
}
