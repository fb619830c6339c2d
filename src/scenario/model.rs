//! The checked scenario: what the rest of the program sees. Every value here has passed the schema
//! and the semantic checks, defaults are filled in, and secrets are wrapped so they cannot leak.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::raw::{Distribution, KillClients, LocalTopology, Mode, OtlpProtocol, PauseMode, PhaseKind, Protocol, RawWorkload as WorkloadKind};

/// A password or token. Its `Debug`, `Display` and `Serialize` all print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for the one place that sends it (AUTH, headers).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Scenario name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The file it came from.
    pub file: PathBuf,
    /// The deployment under test.
    pub target: Target,
    /// Pools, timeouts, retries.
    pub connections: Connections,
    /// The scenario-wide key prefix; every workload's prefix starts with it.
    pub key_prefix: String,
    /// Workloads in file order.
    pub workloads: Vec<Workload>,
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// Faults with absolute offsets, in time order.
    pub faults: Vec<Fault>,
    /// Pass/fail rules.
    pub thresholds: Vec<Threshold>,
    /// Report path templates.
    pub output: Output,
    /// Metrics export.
    pub metrics: Metrics,
    /// Remove the run's keys afterwards.
    pub cleanup: bool,
}

/// A `host:port` address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostPort {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') { write!(f, "[{}]:{}", self.host, self.port) } else { write!(f, "{}:{}", self.host, self.port) }
    }
}

/// Where the deployment is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// Connect to these addresses (one for standalone; seeds for a cluster; sentinels are separate).
    Remote(Vec<HostPort>),
    /// Start a local topology on loopback.
    Local(LocalTopology),
}

/// The deployment under test.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// Addresses or local topology.
    pub endpoint: Endpoint,
    /// Topology.
    pub mode: Mode,
    /// Sentinel discovery (mode sentinel with a remote endpoint).
    pub sentinel: Option<Sentinel>,
    /// ACL user.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// Database number.
    pub db: u32,
    /// RESP version.
    pub protocol: Protocol,
    /// TLS, when on.
    pub tls: Option<Tls>,
    /// Read from replicas.
    pub read_from_replicas: bool,
    /// Connections go through the fault proxy.
    pub proxy: bool,
    /// The proxy passes whole RESP frames (maintenance faults inject notifications).
    pub resp_aware_proxy: bool,
}

/// Sentinel discovery.
#[derive(Debug, Clone, Serialize)]
pub struct Sentinel {
    /// Monitored master name.
    pub master_name: String,
    /// Sentinel addresses.
    pub nodes: Vec<HostPort>,
    /// ACL user for sentinels.
    pub username: Option<String>,
    /// Password for sentinels.
    pub password: Option<Secret>,
}

/// TLS settings with paths resolved against the scenario file's folder.
#[derive(Debug, Clone, Serialize)]
pub struct Tls {
    /// CA bundle.
    pub ca: Option<PathBuf>,
    /// Client certificate and key, for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Name to verify instead of the host.
    pub server_name: Option<String>,
    /// Verification off (explicit opt-in).
    pub insecure: bool,
}

/// Pools, timeouts and retries.
#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    /// The client library that sends the commands.
    pub client: super::raw::Client,
    /// Number of pools.
    pub pools: u32,
    /// Connections per pool.
    pub per_pool: u32,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Pool checkout timeout.
    pub acquire_timeout: Duration,
    /// Command timeout.
    pub command_timeout: Duration,
    /// Idle health-check interval.
    pub health_check_interval: Duration,
    /// Retry policy.
    pub retry: Retry,
    /// Whether the client asks for maintenance notifications.
    pub maintenance_notifications: super::raw::MaintenanceMode,
    /// Command timeout while a maintenance window is open.
    pub relaxed_timeout: Duration,
    /// What a MOVING should carry.
    pub moving_endpoint_type: super::raw::MovingEndpointType,
}

/// Retry policy.
#[derive(Debug, Clone, Serialize)]
pub struct Retry {
    /// Attempts including the first.
    pub attempts: u32,
    /// First backoff.
    pub initial_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// Growth factor.
    pub multiplier: f64,
    /// Jitter fraction.
    pub jitter: f64,
    /// Whether writes are retried too.
    pub retry_writes: bool,
}

impl Retry {
    /// The wait before attempt `n + 2` (after `n + 1` failures): `initial_backoff × multiplier^n`,
    /// capped at `max_backoff`, spread by ±`jitter` with `unit` (uniform in 0..1) choosing where.
    pub fn backoff(&self, n: u32, unit: f64) -> Duration {
        let base = self.initial_backoff.mul_f64(self.multiplier.powi(n.min(64) as i32).min(1e9)).min(self.max_backoff);
        let spread = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        base.mul_f64(spread.max(0.0))
    }
}

/// A cheap pseudo-random number in 0..1 from a counter (splitmix64): jitter for backoffs where no
/// seeded generator is at hand.
pub fn unit_from(counter: u64) -> f64 {
    let mut z = counter.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as f64 / u64::MAX as f64
}

/// A workload with its keyspace resolved.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Name from the file.
    pub name: String,
    /// Default weight.
    pub weight: f64,
    /// Effective keyspace.
    pub keyspace: Keyspace,
    /// Kind and kind-specific options.
    pub kind: WorkloadKind,
    /// The checked templates of a `custom` workload.
    pub custom: Option<std::sync::Arc<CustomCommands>>,
}

/// A `custom` workload's commands, checked.
#[derive(Debug, Clone)]
pub struct CustomCommands {
    /// The templates, in file order (an operation's id is its index).
    pub templates: Vec<super::template::Template>,
    /// Scripts by name, with their bodies.
    pub scripts: Vec<(String, String)>,
    /// Every template in order, in one round trip.
    pub sequence: bool,
    /// Each round trip in MULTI/EXEC.
    pub transaction: bool,
    /// Templates (or sequences) per round trip.
    pub depth: u32,
    /// Prepended to every key argument: the workload's own prefix when the file sets one, else
    /// the scenario's.
    pub key_prefix: String,
}

/// Effective keyspace of a workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Keyspace {
    /// Key prefix (starts with the scenario prefix).
    pub prefix: String,
    /// Distinct keys.
    pub keys: u64,
    /// Key choice.
    pub distribution: Distribution,
    /// Value size range in bytes (min, max); equal for a fixed size.
    pub value_size: (u64, u64),
    /// TTL of written keys.
    pub ttl: Option<Duration>,
}

/// A phase.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Unique name.
    pub name: String,
    /// Purpose.
    pub kind: Option<PhaseKind>,
    /// Length.
    pub duration: Duration,
    /// Workers at start and end.
    pub workers: (u32, u32),
    /// Rate at start and end (ops/s), or closed loop.
    pub rate: Option<(f64, f64)>,
    /// Workload weights for this phase, in workload order, zero weights dropped.
    pub mix: Vec<(String, f64)>,
}

/// A fault with its absolute offset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Fault {
    /// Label.
    pub name: String,
    /// Offset from the start of the run.
    #[serde(with = "crate::units::serde_duration")]
    pub at: Duration,
    /// What to do.
    pub action: FaultAction,
    /// Whether the run fails when this fault fails or is cut short.
    pub required: bool,
}

/// What a fault holds while it runs, so that two that cannot overlap do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusive {
    /// One local node's process (restart, freeze).
    Node(u32),
    /// Which node is primary (failover).
    Failover,
    /// Every node (a rolling upgrade restarts them all and fails each shard over).
    Upgrade,
}

impl FaultAction {
    /// How long the scenario says this fault lasts, when it says: a pause, a sleep, a freeze, a
    /// network fault, a restart's downtime.
    pub fn declared_length(&self) -> Option<Duration> {
        match self {
            FaultAction::ClientPause { duration, .. }
            | FaultAction::DebugSleep { duration }
            | FaultAction::Freeze { duration, .. }
            | FaultAction::Network { duration, .. } => Some(*duration),
            FaultAction::Restart { down_for, .. } => Some(*down_for),
            FaultAction::Maintenance { notice, kind: super::raw::MaintenanceKind::Move, .. } => Some(*notice),
            FaultAction::Notify { messages, notice } => Some(*notice * messages.len().saturating_sub(1) as u32),
            _ => None,
        }
    }

    /// What this fault holds while it runs, if anything.
    pub fn holds(&self) -> Option<Exclusive> {
        match self {
            FaultAction::Restart { node, .. } | FaultAction::Freeze { node, .. } => Some(Exclusive::Node(*node)),
            FaultAction::Failover { .. } => Some(Exclusive::Failover),
            FaultAction::RollingUpgrade { .. } | FaultAction::Maintenance { .. } => Some(Exclusive::Upgrade),
            _ => None,
        }
    }
}

impl Exclusive {
    /// Whether two faults holding these could not run at once.
    pub fn conflicts(self, other: Exclusive) -> bool {
        match (self, other) {
            (Exclusive::Node(a), Exclusive::Node(b)) => a == b,
            (Exclusive::Upgrade, _) | (_, Exclusive::Upgrade) => true,
            (Exclusive::Failover, Exclusive::Failover) => true,
            _ => false,
        }
    }

    /// What it holds, as people read it.
    pub fn describe(self) -> String {
        match self {
            Exclusive::Node(n) => format!("node {n}"),
            Exclusive::Failover => "the failover".into(),
            Exclusive::Upgrade => "the deployment".into(),
        }
    }
}

/// What a fault does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FaultAction {
    /// CLIENT KILL.
    ClientKill {
        /// Whose connections.
        clients: KillClients,
    },
    /// CLIENT PAUSE.
    ClientPause {
        /// How long.
        #[serde(with = "crate::units::serde_duration")]
        duration: Duration,
        /// Writes or all.
        mode: PauseMode,
    },
    /// DEBUG SLEEP.
    DebugSleep {
        /// How long.
        #[serde(with = "crate::units::serde_duration")]
        duration: Duration,
    },
    /// CLUSTER FAILOVER / SENTINEL FAILOVER.
    Failover {
        /// Shard, or random.
        shard: Option<u32>,
    },
    /// Stop and start a local node.
    Restart {
        /// Node index.
        node: u32,
        /// Down time.
        #[serde(with = "crate::units::serde_duration")]
        down_for: Duration,
        /// Comes back on another port.
        new_port: bool,
    },
    /// SIGSTOP a local node, SIGCONT after `duration`.
    Freeze {
        /// Node index.
        node: u32,
        /// How long.
        #[serde(with = "crate::units::serde_duration")]
        duration: Duration,
    },
    /// Per shard: restart the replicas, fail over, restart the old primary.
    RollingUpgrade {
        /// redis-server to restart with.
        binary: Option<std::path::PathBuf>,
    },
    /// A network fault through the proxy, on `node` or every node, for `duration`.
    Network {
        /// What the proxy does.
        fault: NetworkFault,
        /// Node index; every node when absent.
        node: Option<u32>,
        /// How long.
        #[serde(with = "crate::units::serde_duration")]
        duration: Duration,
    },
    /// Every open connection through the proxy reset, on `node` or every node.
    Reset {
        /// Node index; every node when absent.
        node: Option<u32>,
    },
    /// Run a command.
    Shell {
        /// Command line.
        command: String,
        /// Kill after.
        #[serde(with = "crate::units::serde_duration")]
        timeout: Duration,
    },
    /// A real maintenance, announced (or not) with maintenance notifications.
    Maintenance {
        /// What changes.
        kind: super::raw::MaintenanceKind,
        /// The time MOVING announces.
        #[serde(with = "crate::units::serde_duration")]
        notice: Duration,
        /// Whether the notifications are sent.
        announce: bool,
        /// `failover`, `migrate`: the cluster shard.
        shard: Option<u32>,
        /// `migrate`: how many slots move.
        slots: Option<u32>,
    },
    /// Maintenance notifications only, no change.
    Notify {
        /// The messages, in order.
        messages: Vec<super::raw::MaintenanceMessage>,
        /// The time they announce, and the pause between two.
        #[serde(with = "crate::units::serde_duration")]
        notice: Duration,
    },
}

/// What the fault proxy does to the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NetworkFault {
    /// Every reply waits `delay` ± `jitter`.
    Latency {
        /// Added delay.
        #[serde(with = "crate::units::serde_duration")]
        delay: Duration,
        /// Uniform spread.
        #[serde(with = "crate::units::serde_duration")]
        jitter: Duration,
    },
    /// Both directions paced.
    Bandwidth {
        /// Bytes per second, each direction.
        bytes_per_second: u64,
    },
    /// Bytes dropped both ways, connections left open.
    Blackhole,
    /// Blackhole, and new connections refused.
    Partition,
}

impl NetworkFault {
    /// The fault's action name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            NetworkFault::Latency { .. } => "latency",
            NetworkFault::Bandwidth { .. } => "bandwidth",
            NetworkFault::Blackhole => "blackhole",
            NetworkFault::Partition => "partition",
        }
    }
}

/// Metrics a threshold can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Median latency.
    P50,
    /// 90th percentile latency.
    P90,
    /// 95th percentile latency.
    P95,
    /// 99th percentile latency.
    P99,
    /// 99.9th percentile latency.
    P999,
    /// Largest latency.
    Max,
    /// Mean latency.
    Mean,
    /// Achieved operations per second.
    OpsPerSec,
    /// Operation count.
    Ops,
    /// Error count.
    Errors,
    /// Errors / operations.
    ErrorRate,
    /// Longest time without a successful operation during a fault window.
    Outage,
    /// Time until throughput is back within 10% of its pre-fault level.
    RecoveryTime,
    /// Acknowledged writes lost or changed, and acknowledged increments lost (workloads with
    /// `verify: true`); stream entries never delivered (not trimmed) or delivered corrupted.
    LostWrites,
    /// Increments applied more often than they were sent (workloads with `verify: true`), and
    /// stream entries delivered more than once.
    DuplicateWrites,
    /// Stream entries not yet delivered to the group at the end of the run (XINFO GROUPS `lag`,
    /// summed over the streams in scope).
    Lag,
    /// From a MOVING to the last old connection closed, the longest of the client's handoffs
    /// (maintenance notifications, native client).
    HandoffTime,
}

/// How a metric's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricUnit {
    /// A duration; stored in microseconds.
    Duration,
    /// A fraction; `0.1%` or `0.001`.
    Ratio,
    /// A plain number.
    Number,
}

impl Metric {
    /// A value in this metric's unit as people read it (`1.2ms`, `0.05%`, `19877`).
    pub fn show(self, v: f64) -> String {
        match self.unit() {
            MetricUnit::Duration => crate::units::format_us(v),
            MetricUnit::Ratio => format!("{}%", crate::units::round_sig(v * 100.0)),
            MetricUnit::Number => format!("{}", crate::units::round_sig(v)),
        }
    }
}

impl Metric {
    /// Every metric with its name.
    pub const ALL: [(&'static str, Metric); 17] = [
        ("p50", Metric::P50),
        ("p90", Metric::P90),
        ("p95", Metric::P95),
        ("p99", Metric::P99),
        ("p999", Metric::P999),
        ("max", Metric::Max),
        ("mean", Metric::Mean),
        ("ops_per_sec", Metric::OpsPerSec),
        ("ops", Metric::Ops),
        ("errors", Metric::Errors),
        ("error_rate", Metric::ErrorRate),
        ("outage", Metric::Outage),
        ("recovery_time", Metric::RecoveryTime),
        ("lost_writes", Metric::LostWrites),
        ("duplicate_writes", Metric::DuplicateWrites),
        ("lag", Metric::Lag),
        ("handoff_time", Metric::HandoffTime),
    ];

    /// Looks a metric up by name.
    pub fn from_name(name: &str) -> Option<Metric> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// The metric's name.
    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, m)| *m == self).map_or("?", |(n, _)| n)
    }

    /// How values of this metric are written.
    pub fn unit(self) -> MetricUnit {
        match self {
            Metric::P50 | Metric::P90 | Metric::P95 | Metric::P99 | Metric::P999 | Metric::Max | Metric::Mean => MetricUnit::Duration,
            Metric::Outage | Metric::RecoveryTime | Metric::HandoffTime => MetricUnit::Duration,
            Metric::ErrorRate => MetricUnit::Ratio,
            Metric::OpsPerSec | Metric::Ops | Metric::Errors | Metric::LostWrites | Metric::DuplicateWrites | Metric::Lag => MetricUnit::Number,
        }
    }
}

/// Comparison in a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
}

impl Cmp {
    /// Every operator, longest spelling first so that parsing `<=` does not stop at `<`.
    pub const ALL: [(&'static str, Cmp); 6] = [("<=", Cmp::Le), (">=", Cmp::Ge), ("==", Cmp::Eq), ("!=", Cmp::Ne), ("<", Cmp::Lt), (">", Cmp::Gt)];

    /// Whether `observed op limit` holds.
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Cmp::Lt => observed < limit,
            Cmp::Le => observed <= limit,
            Cmp::Gt => observed > limit,
            Cmp::Ge => observed >= limit,
            Cmp::Eq => observed == limit,
            Cmp::Ne => observed != limit,
        }
    }
}

/// The name of a fault the file leaves unnamed: its kind and offset, `client_pause@30s`.
pub fn default_fault_name(action: &FaultAction, at: Duration) -> String {
    format!("{}@{}", super::validate::fault_kind(action), crate::units::format_duration(at))
}

/// A parsed pass/fail rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Threshold {
    /// The rule as written.
    pub expr: String,
    /// Metric tested.
    pub metric: Metric,
    /// Comparison.
    pub cmp: Cmp,
    /// Limit in the metric's base unit (µs for durations, a fraction for ratios).
    pub limit: f64,
    /// Only this phase.
    pub phase: Option<String>,
    /// Only this workload.
    pub workload: Option<String>,
    /// Only this operation.
    pub operation: Option<String>,
    /// Only this fault's window (named).
    pub fault: Option<String>,
}

impl Threshold {
    /// The scope as people read it (`phase steady`, `fault endpoint-moves`); empty: the whole run.
    pub fn scope(&self) -> Vec<String> {
        scope_words(&self.phase, &self.workload, &self.operation, &self.fault)
    }
}

/// A rule's scope as words, in one order everywhere it is shown (plan, summary, HTML, JUnit).
pub fn scope_words(phase: &Option<String>, workload: &Option<String>, operation: &Option<String>, fault: &Option<String>) -> Vec<String> {
    [("phase", phase), ("workload", workload), ("operation", operation), ("fault", fault)]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
        .collect()
}

/// Report path templates (`{name}`, `{run_id}`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Output {
    /// JSON report path.
    pub json: Option<String>,
    /// HTML report path.
    pub html: Option<String>,
    /// JUnit XML path.
    pub junit: Option<String>,
}

/// Metrics export settings.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Prometheus listen address.
    pub prometheus: Option<std::net::SocketAddr>,
    /// OTLP export.
    pub otlp: Option<Otlp>,
    /// Pushgateway URL for the final metrics.
    pub pushgateway: Option<String>,
    /// Application name label.
    pub app_name: String,
    /// Instance label, when fixed by the file.
    pub instance_id: Option<String>,
    /// Run id label, when fixed by the file.
    pub run_id: Option<String>,
    /// Version label.
    pub version: Option<String>,
}

/// OTLP export settings.
#[derive(Debug, Clone, Serialize)]
pub struct Otlp {
    /// Collector endpoint (or from OTEL_EXPORTER_OTLP_ENDPOINT at run time).
    pub endpoint: Option<String>,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Export interval.
    pub interval: Duration,
    /// Request headers; values are secrets.
    pub headers: Vec<(String, Secret)>,
    /// Span sample ratio.
    pub traces: Option<f64>,
    /// Request compression, when the file sets it.
    pub compression: Option<super::raw::OtlpCompression>,
    /// CA file for an https collector, when the file sets it (resolved next to the file).
    pub certificate: Option<std::path::PathBuf>,
}

impl WorkloadKind {
    /// The kind's name as written in files.
    pub fn kind_name(&self) -> &'static str {
        match self {
            WorkloadKind::Basic(_) => "basic",
            WorkloadKind::HighThroughput(_) => "high_throughput",
            WorkloadKind::List(_) => "list",
            WorkloadKind::Set(_) => "set",
            WorkloadKind::SortedSet(_) => "sorted_set",
            WorkloadKind::Hash(_) => "hash",
            WorkloadKind::Pipeline(_) => "pipeline",
            WorkloadKind::Pubsub(_) => "pubsub",
            WorkloadKind::Custom(_) => "custom",
            WorkloadKind::Stream(_) => "stream",
        }
    }

    /// Operations this workload records, with their relative weights (0 where not chosen by
    /// weight) and what one count of each is.
    pub fn operations(&self) -> Vec<OpDef> {
        let trip = |name, weight| OpDef { name, weight, role: OpRole::RoundTrip, aggregate: false };
        let command = |name, weight| OpDef { name, weight, role: OpRole::Command, aggregate: false };
        let batch = |name| OpDef { name, weight: 0.0, role: OpRole::RoundTrip, aggregate: true };
        let trips = |ws: Vec<(&'static str, f64)>| ws.into_iter().map(|(n, w)| trip(n, w)).collect();
        match self {
            WorkloadKind::Basic(b) => {
                let set = (1.0 - b.read_ratio - b.delete_ratio - b.incr_ratio).max(0.0);
                trips(vec![("GET", b.read_ratio), ("SET", set), ("DEL", b.delete_ratio), ("INCR", b.incr_ratio)])
            }
            // Unpipelined, each GET or SET is its own round trip; pipelined, the batch is.
            WorkloadKind::HighThroughput(h) if h.pipeline <= 1 => trips(vec![("GET", h.read_ratio), ("SET", 1.0 - h.read_ratio)]),
            WorkloadKind::HighThroughput(h) => vec![command("GET", h.read_ratio), command("SET", 1.0 - h.read_ratio), batch("PIPELINE")],
            WorkloadKind::List(l) => trips(l.commands.weights()),
            WorkloadKind::Set(s) => trips(s.commands.weights()),
            WorkloadKind::SortedSet(z) => trips(z.commands.weights()),
            WorkloadKind::Hash(h) => trips(h.commands.weights()),
            WorkloadKind::Pipeline(p) => {
                let mut ops: Vec<OpDef> = p.commands.weights().into_iter().map(|(n, w)| command(n, w)).collect();
                ops.push(batch(if p.transaction { "EXEC" } else { "PIPELINE" }));
                ops
            }
            WorkloadKind::Pubsub(_) => vec![trip("PUBLISH", 1.0), OpDef { name: "RECEIVE", weight: 0.0, role: OpRole::Delivery, aggregate: true }],
            WorkloadKind::Stream(_) => vec![trip("XADD", 1.0), OpDef { name: "RECEIVE", weight: 0.0, role: OpRole::Delivery, aggregate: true }],
            WorkloadKind::Custom(c) => {
                let names = c.commands.iter().map(super::template::op_name);
                let weights = c.commands.iter().map(|t| if c.sequence { 1.0 } else { t.weight.unwrap_or(1.0) });
                match c.batch_name() {
                    None => names.zip(weights).map(|(n, w)| trip(n, w)).collect(),
                    Some(b) => {
                        let mut ops: Vec<OpDef> = names.zip(weights).map(|(n, w)| command(n, w)).collect();
                        ops.push(batch(b));
                        ops
                    }
                }
            }
        }
    }

    /// Names of operations that can occur (weight > 0, plus recorded aggregates).
    pub fn operation_names(&self) -> Vec<&'static str> {
        self.operations().into_iter().filter(OpDef::occurs).map(|o| o.name).collect()
    }
}

/// One operation a workload records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpDef {
    /// Name (`GET`, `PIPELINE`, `RECEIVE`, …).
    pub name: &'static str,
    /// Relative weight among the workload's commands (0 for aggregates).
    pub weight: f64,
    /// What one count of it is.
    pub role: OpRole,
    /// Recorded for every round trip or delivery rather than chosen by weight (the batch of a
    /// pipeline, pub/sub's RECEIVE).
    pub aggregate: bool,
}

impl OpDef {
    /// Whether the operation can occur in a run: chosen by weight, or an aggregate (the batch of a
    /// pipeline, the deliveries of pub/sub).
    pub fn occurs(&self) -> bool {
        self.weight > 0.0 || self.aggregate
    }
}

/// What one count of an operation is. One unit per figure: `rate` schedules round trips, phase
/// totals and `ops_per_sec` count them; commands inside a batch and pub/sub deliveries are
/// counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OpRole {
    /// A scheduled operation: one round trip to the server, timed from its intended start.
    #[default]
    RoundTrip,
    /// A command carried inside a batch round trip (pipeline, pipelined high_throughput): counted,
    /// not timed on its own (its batch is).
    Command,
    /// A pub/sub message delivered to a subscriber, or a stream entry to a consumer, timed from
    /// its publication.
    Delivery,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let r = Retry {
            attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            multiplier: 2.0,
            jitter: 0.2,
            retry_writes: false,
        };
        assert_eq!(r.backoff(0, 0.5), Duration::from_millis(100));
        assert_eq!(r.backoff(2, 0.5), Duration::from_millis(400));
        assert_eq!(r.backoff(10, 0.5), Duration::from_millis(1000));
        assert_eq!(r.backoff(1000, 0.5), Duration::from_millis(1000), "no overflow");
        assert_eq!(r.backoff(0, 0.0), Duration::from_millis(80));
        assert_eq!(r.backoff(0, 1.0), Duration::from_millis(120));
        let units: Vec<f64> = (0..1000).map(unit_from).collect();
        assert!(units.iter().all(|u| (0.0..=1.0).contains(u)));
        let mean = units.iter().sum::<f64>() / 1000.0;
        assert!((0.45..0.55).contains(&mean), "{mean}");
    }
}
