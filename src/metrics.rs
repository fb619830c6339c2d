//! Measurement: outcomes, fixed-memory HDR histograms in microseconds, and their collection.
//!
//! Recording is per executor thread: each thread owns a recorder behind a mutex that only the
//! once-a-second collector ever contends for, so the hot path takes an uncontended lock and
//! touches memory no other thread writes. Memory stays fixed: one histogram pair per (phase,
//! workload, operation) per thread, never one sample per operation.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;

use crate::command::{COMMAND_COUNT, Cmd, Command};
pub use crate::scenario::model::OpRole;

/// Largest latency tracked, in µs (60 s); larger values are clamped, never dropped.
pub const MAX_TRACKED_US: u64 = 60_000_000;

/// A new histogram: 1 µs .. 60 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("static histogram bounds are valid")
}

/// Server error prefixes we name; any other becomes `OTHER`.
const SERVER_ERRORS: [&str; 21] = [
    "ERR",
    "WRONGTYPE",
    "OOM",
    "READONLY",
    "LOADING",
    "BUSY",
    "MOVED",
    "ASK",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "MASTERDOWN",
    "NOAUTH",
    "WRONGPASS",
    "NOPERM",
    "EXECABORT",
    "NOSCRIPT",
    "NOREPLICAS",
    "MISCONF",
    "UNBLOCKED",
    "CROSSSLOT",
    "OTHER",
];

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It succeeded but found nothing (GET of a missing key and the like).
    Miss,
    /// It failed.
    Error(ErrorClass),
}

/// Error classes, each with its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// No reply within the command timeout.
    Timeout,
    /// The connection failed or closed.
    Connection,
    /// No pooled connection within the acquire timeout.
    PoolTimeout,
    /// The reply did not parse.
    Protocol,
    /// The server replied with an error; the prefix (`WRONGTYPE`, `OOM`, …).
    Server(&'static str),
}

impl ErrorClass {
    /// The name used in reports and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connection => "connection",
            ErrorClass::PoolTimeout => "pool_timeout",
            ErrorClass::Protocol => "protocol",
            ErrorClass::Server(s) => s,
        }
    }
}

impl Outcome {
    /// The outcome of a server error reply with this prefix.
    pub fn server_error(prefix: &str) -> Outcome {
        let name = SERVER_ERRORS.iter().find(|e| **e == prefix).copied().unwrap_or("OTHER");
        Outcome::Error(ErrorClass::Server(name))
    }
}

/// Identifies a row of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpKey {
    /// Phase index.
    pub phase: u16,
    /// Workload index.
    pub workload: u16,
    /// Operation index within the workload.
    pub op: u16,
}

/// Everything measured for one (phase, workload, operation).
#[derive(Debug, Clone)]
pub struct OpStats {
    /// What one count of this operation is.
    pub role: OpRole,
    /// Latency of successful operations from the intended start (open loop) or the actual start
    /// (closed loop), µs. A failed operation is never a latency sample.
    pub latency: Histogram<u64>,
    /// Service time of successful operations from the actual send, µs.
    pub service: Histogram<u64>,
    /// Latency of failed operations, µs (how long a failure took to surface); made on the first
    /// failure, so a healthy run carries none.
    pub error_latency: Option<Box<Histogram<u64>>>,
    /// Successful operations (misses included).
    pub ok: u64,
    /// Of which found nothing.
    pub miss: u64,
    /// Failed operations by class.
    pub errors: BTreeMap<&'static str, u64>,
    /// Times an operation was resent after a connection error (each operation counts once in `ok`
    /// or `errors`, however often it was resent).
    pub retries: u64,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            role: OpRole::RoundTrip,
            latency: new_histogram(),
            service: new_histogram(),
            error_latency: None,
            ok: 0,
            miss: 0,
            errors: BTreeMap::new(),
            retries: 0,
        }
    }
}

impl OpStats {
    /// Operations counted (successes and failures).
    pub fn count(&self) -> u64 {
        self.ok + self.errors.values().sum::<u64>()
    }

    /// Whether this row counts scheduled operations (round trips): phase totals, rates and the
    /// time series count those only, never the commands inside a batch or pub/sub deliveries.
    pub fn timed(&self) -> bool {
        self.role == OpRole::RoundTrip
    }

    /// Failed operations.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Adds another row into this one.
    pub fn merge(&mut self, other: &OpStats) {
        self.role = other.role;
        self.latency.add(&other.latency).expect("histograms share bounds");
        self.service.add(&other.service).expect("histograms share bounds");
        if let Some(e) = &other.error_latency {
            self.error_latency.get_or_insert_with(|| Box::new(new_histogram())).add(e.as_ref()).expect("histograms share bounds");
        }
        self.ok += other.ok;
        self.miss += other.miss;
        self.retries += other.retries;
        for (k, v) in &other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
}

/// One interval's totals over all operations (for the per-second time series).
#[derive(Debug, Clone)]
pub struct IntervalStats {
    /// Latencies in the interval.
    pub latency: Histogram<u64>,
    /// Operations completed.
    pub ops: u64,
    /// Of which failed.
    pub errors: u64,
}

impl Default for IntervalStats {
    fn default() -> Self {
        IntervalStats { latency: new_histogram(), ops: 0, errors: 0 }
    }
}

/// One row's figures over one time block of its phase, for judging changes between runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct BlockSample {
    /// Length of the block, seconds.
    pub secs: f64,
    /// Operations completed in the block.
    pub count: u64,
    /// Of which failed.
    pub errors: u64,
    /// Median latency of the block's successful operations, µs (0 when none or untimed).
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
}

/// A histogram for one row over one block: two significant digits are plenty to tell a change
/// from noise and keep it at a tenth of the size of the full-precision ones.
fn block_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 2).expect("static histogram bounds are valid")
}

/// What a thread has recorded for one row since the last block boundary.
struct BlockAcc {
    latency: Histogram<u64>,
    count: u64,
    errors: u64,
}

impl Default for BlockAcc {
    fn default() -> Self {
        BlockAcc { latency: block_histogram(), count: 0, errors: 0 }
    }
}

/// One row as a thread records it: the run's figures and the current block's, under one lookup.
#[derive(Default)]
struct Row {
    stats: OpStats,
    block: BlockAcc,
}

/// A thread's rows, indexed by phase, workload and operation: the hot path finds a row with
/// three array indexes, not a hash lookup (a map's lookup per command was 3.6 % of all
/// instructions at pipeline depth 16 under callgrind, the indexes 2.7 %). Grown on first use of a row.
#[derive(Default)]
struct Rows(Vec<Vec<Vec<Option<Row>>>>);

impl Rows {
    /// The row of `key`, made on first use.
    fn entry(&mut self, key: OpKey) -> &mut Row {
        Rows::row(self.workload(key.phase, key.workload), key.op)
    }

    /// The rows of one workload in one phase, by operation: looked up once per round trip.
    fn workload(&mut self, phase: u16, workload: u16) -> &mut Vec<Option<Row>> {
        at(at(&mut self.0, phase), workload)
    }

    /// Operation `op`'s row among a workload's rows, made on first use.
    fn row(rows: &mut Vec<Option<Row>>, op: u16) -> &mut Row {
        at(rows, op).get_or_insert_with(Row::default)
    }

    /// Every row made, in key order.
    fn iter_mut(&mut self) -> impl Iterator<Item = (OpKey, &mut Row)> {
        self.0.iter_mut().enumerate().flat_map(|(phase, workloads)| {
            workloads.iter_mut().enumerate().flat_map(move |(workload, ops)| {
                ops.iter_mut()
                    .enumerate()
                    .filter_map(move |(op, row)| Some((OpKey { phase: phase as u16, workload: workload as u16, op: op as u16 }, row.as_mut()?)))
            })
        })
    }
}

/// Records `n` operations of one outcome in their row and (round trips only) in the interval's
/// stats, all with the same latency: a pipeline's commands share their round trip's.
fn record_in(row: &mut Row, interval: &mut IntervalStats, role: OpRole, outcome: Outcome, n: u64, latency_us: Option<u64>, service_us: Option<u64>) {
    let Row { stats, block } = row;
    stats.role = role;
    let ok = !matches!(outcome, Outcome::Error(_));
    match outcome {
        Outcome::Ok => stats.ok += n,
        Outcome::Miss => {
            stats.ok += n;
            stats.miss += n;
        }
        Outcome::Error(class) => *stats.errors.entry(class.name()).or_default() += n,
    }
    if let Some(l) = latency_us.map(|l| l.clamp(1, MAX_TRACKED_US)) {
        if ok {
            stats.latency.saturating_record_n(l, n);
            block.latency.saturating_record_n(l, n);
            if role == OpRole::RoundTrip {
                interval.latency.saturating_record_n(l, n);
            }
        } else {
            stats.error_latency.get_or_insert_with(|| Box::new(new_histogram())).saturating_record_n(l, n);
        }
    }
    if let Some(s) = service_us.filter(|_| ok) {
        stats.service.saturating_record_n(s.clamp(1, MAX_TRACKED_US), n);
    }
    block.count += n;
    if !ok {
        block.errors += n;
    }
    if role == OpRole::RoundTrip {
        interval.ops += n;
        if !ok {
            interval.errors += n;
        }
    }
}

/// Item `i` of `v`, the vector grown to hold it.
fn at<T: Default>(v: &mut Vec<T>, i: u16) -> &mut T {
    let i = usize::from(i);
    if v.len() <= i {
        v.resize_with(i + 1, T::default);
    }
    &mut v[i]
}

#[derive(Default)]
struct ThreadRecorder {
    ops: Rows,
    interval: IntervalStats,
    /// Commands sent by the workers, per phase, by [`Command`] id.
    commands: Vec<[u64; COMMAND_COUNT]>,
    /// Custom workloads' commands sent, per phase, by custom id ([`crate::command::custom_name`]).
    custom: Vec<Vec<u64>>,
}

impl ThreadRecorder {
    fn record(&mut self, key: OpKey, role: OpRole, outcome: Outcome, latency_us: Option<u64>, service_us: Option<u64>) {
        record_in(self.ops.entry(key), &mut self.interval, role, outcome, 1, latency_us, service_us);
    }

    /// Records one round trip's operations of one workload: its rows looked up once.
    fn record_trip(&mut self, phase: u16, workload: u16, items: &[Outcomes], latency_us: u64, service_us: u64) {
        let rows = self.ops.workload(phase, workload);
        for &Outcomes { op, outcome, role, n } in items {
            let timed = role == OpRole::RoundTrip;
            record_in(Rows::row(rows, op), &mut self.interval, role, outcome, n, timed.then_some(latency_us), timed.then_some(service_us));
        }
    }

    /// The command counters of `phase`, made on first use.
    fn phase_commands(&mut self, phase: u16) -> &mut [u64; COMMAND_COUNT] {
        let p = phase as usize;
        if self.commands.len() <= p {
            self.commands.resize(p + 1, [0; COMMAND_COUNT]);
        }
        &mut self.commands[p]
    }
}

/// Operations of one round trip with the same row and outcome, recorded together: a pipeline of
/// 16 SETs that all succeeded is one entry of 16, one histogram update each instead of sixteen
/// (per-operation recording was a tenth of the instructions at pipeline depth 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcomes {
    /// The operation (row of its workload).
    pub op: u16,
    /// How they ended.
    pub outcome: Outcome,
    /// What one count of it is.
    pub role: OpRole,
    /// How many.
    pub n: u64,
}

impl Outcomes {
    /// Adds one operation's outcome to a round trip's `items`: to the entry of the same operation
    /// and outcome when there is one (a round trip has a handful), else as a new entry, so that
    /// the first entry of an operation is its first outcome.
    #[inline]
    pub fn add(items: &mut Vec<Outcomes>, op: u16, outcome: Outcome, role: OpRole) {
        // A run of the same operation and outcome is the common case: the last entry first.
        match items.iter_mut().rev().find(|i| i.op == op && i.outcome == outcome) {
            Some(i) => i.n += 1,
            None => items.push(Outcomes { op, outcome, role, n: 1 }),
        }
    }
}

/// How often one round trip's commands went out: every send (resends after connection errors
/// and redirects included), and the ASKING sent ahead of ASK redirects.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sends {
    /// Times the whole round trip was written to a connection.
    pub times: u64,
    /// ASKING commands sent ahead of it.
    pub asking: u64,
}

/// One finished round trip, as [`RunMetrics::record_round_trip`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct Trip<'a> {
    /// Each operation's outcome and what one count of it is.
    pub items: &'a [Outcomes],
    /// From the intended start, µs.
    pub latency_us: u64,
    /// From the send, µs.
    pub service_us: u64,
    /// The commands it carried.
    pub cmds: &'a [Cmd],
    /// How often they went out.
    pub sends: Sends,
}

/// Commands sent outside the workers' round trips (connection setup, health checks,
/// subscriptions, faults, slot map reads, verification, cleanup), by INFO commandstats name.
/// Off the hot path: one lock per command sent.
#[derive(Debug, Default)]
pub struct CommandTally(Mutex<BTreeMap<String, u64>>);

impl CommandTally {
    /// Counts the commands encoded in `resp`.
    pub fn count(&self, resp: &[u8]) {
        let names = crate::command::names_in(resp);
        let mut m = self.0.lock().expect("tally lock");
        for n in names {
            *m.entry(n).or_default() += 1;
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().expect("tally lock").clone()
    }
}

/// Connection counters, shared by pools and reported at the end.
#[derive(Debug)]
pub struct ConnCounters {
    /// Connections opened (first connects and reconnects).
    pub opened: AtomicU64,
    /// Connections dropped because they broke.
    pub dropped: AtomicU64,
    /// Failed connection attempts.
    pub connect_errors: AtomicU64,
    /// Connections opened to replace a dropped one.
    pub reconnects: AtomicU64,
    /// Time to open a connection (TCP, TLS, handshake), µs.
    pub connect_time: Mutex<Histogram<u64>>,
    /// Time to open a replacement connection, µs.
    pub reconnect_time: Mutex<Histogram<u64>>,
    /// Cluster replies that sent an operation elsewhere or asked it to wait, by [`CLUSTER_REPLIES`].
    pub cluster_replies: [AtomicU64; 4],
    /// Times the cluster slot map was read again.
    pub topology_refreshes: AtomicU64,
    /// Counters the client keeps to itself (redis-rs on clusters), by report field name: reported
    /// as "not observable", never as 0. Set once when the client is built.
    pub hidden: std::sync::OnceLock<Vec<&'static str>>,
}

/// Cluster reply classes counted in [`ConnCounters::cluster_replies`], in order.
pub const CLUSTER_REPLIES: [&str; 4] = ["MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"];

impl Default for ConnCounters {
    fn default() -> Self {
        ConnCounters {
            opened: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connect_time: Mutex::new(new_histogram()),
            reconnect_time: Mutex::new(new_histogram()),
            cluster_replies: Default::default(),
            topology_refreshes: AtomicU64::new(0),
            hidden: std::sync::OnceLock::new(),
        }
    }
}

impl ConnCounters {
    /// Whether counter `name` (a report field name) is hidden by the client.
    pub fn is_hidden(&self, name: &str) -> bool {
        self.hidden.get().is_some_and(|h| h.contains(&name))
    }

    /// Counts a cluster reply of class `class` (one of [`CLUSTER_REPLIES`]; others are ignored).
    pub fn cluster_reply(&self, class: &str) {
        if let Some(i) = CLUSTER_REPLIES.iter().position(|c| *c == class) {
            self.cluster_replies[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Cluster replies seen so far, by class (classes never seen left out).
    pub fn cluster_reply_counts(&self) -> std::collections::BTreeMap<String, u64> {
        CLUSTER_REPLIES.iter().zip(&self.cluster_replies).map(|(c, n)| (c.to_string(), n.load(Ordering::Relaxed))).filter(|(_, n)| *n > 0).collect()
    }

    /// Records a connection opened in `took`; it replaces a dropped one while drops outnumber
    /// the replacements made so far.
    pub fn opened(&self, took: std::time::Duration) {
        let us = (took.as_micros() as u64).clamp(1, MAX_TRACKED_US);
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.connect_time.lock().expect("conn lock").saturating_record(us);
        let dropped = self.dropped.load(Ordering::Relaxed);
        if self.reconnects.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| (r < dropped).then_some(r + 1)).is_ok() {
            self.reconnect_time.lock().expect("conn lock").saturating_record(us);
        }
    }
}

/// What a metric is, for the exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// Bucketed observations.
    Histogram,
}

/// One exported metric, declared once; Prometheus and OTLP both read [`METRICS`].
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// Name (the original Python test app's, where it had one).
    pub name: &'static str,
    /// Help text, saying the unit.
    pub help: &'static str,
    /// Kind.
    pub kind: MetricKind,
    /// Unit (UCUM style, for OTLP).
    pub unit: &'static str,
    /// Labels besides the common ones (app_name, instance_id, run_id, version).
    pub labels: &'static [&'static str],
}

/// Labels on every metric.
pub const COMMON_LABELS: [&str; 4] = ["app_name", "instance_id", "run_id", "version"];

/// Latency bucket bounds for exported histograms, in seconds: tens of µs to seconds.
pub const BUCKETS_S: [f64; 17] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Every exported metric.
pub const METRICS: [MetricDef; 23] = [
    MetricDef {
        name: "redis_operations_total",
        help: "Operations by outcome (status success or error; misses count as success)",
        kind: MetricKind::Counter,
        unit: "{operation}",
        labels: &["operation", "workload", "status", "error_type"],
    },
    MetricDef {
        name: "redis_operation_retries_total",
        help: "Operations resent after a connection error (reads, or writes with retry_writes)",
        kind: MetricKind::Counter,
        unit: "{retry}",
        labels: &["operation", "workload"],
    },
    MetricDef {
        name: "redis_operation_duration",
        help: "Operation latency from the intended start, in seconds",
        kind: MetricKind::Histogram,
        unit: "s",
        labels: &["operation", "workload"],
    },
    MetricDef {
        name: "redis_client_init_duration",
        help: "Time to open a client connection (TCP, TLS, AUTH/HELLO), in seconds",
        kind: MetricKind::Histogram,
        unit: "s",
        labels: &[],
    },
    MetricDef {
        name: "redis_pubsub_operations_total",
        help: "Pub/sub messages published and received",
        kind: MetricKind::Counter,
        unit: "{message}",
        labels: &["workload", "channel", "operation_type", "subscriber_id", "status", "error_type"],
    },
    MetricDef {
        name: "redis_stream_entries_total",
        help: "Stream entries by what happened to them (state produced, delivered, claimed, duplicated)",
        kind: MetricKind::Counter,
        unit: "{entry}",
        labels: &["workload", "stream", "state"],
    },
    MetricDef {
        name: "redis_stream_pending",
        help: "Entries the consumer group has read and not acknowledged (XINFO GROUPS pending), sampled each second",
        kind: MetricKind::Gauge,
        unit: "{entry}",
        labels: &["workload", "stream"],
    },
    MetricDef {
        name: "redis_stream_lag",
        help: "Entries not yet delivered to the consumer group (XINFO GROUPS lag), sampled each second",
        kind: MetricKind::Gauge,
        unit: "{entry}",
        labels: &["workload", "stream"],
    },
    MetricDef {
        name: "redis_maintenance_notifications_total",
        help: "Maintenance notifications the client received, by kind (MOVING, MIGRATING, ...)",
        kind: MetricKind::Counter,
        unit: "{message}",
        labels: &["kind"],
    },
    MetricDef {
        name: "redis_maintenance_relaxed_windows_total",
        help: "Relaxed-timeout windows opened on connections by maintenance notifications",
        kind: MetricKind::Counter,
        unit: "{window}",
        labels: &[],
    },
    MetricDef {
        name: "redis_maintenance_handoffs_total",
        help: "MOVING notifications the client acted on (connections handed off)",
        kind: MetricKind::Counter,
        unit: "{handoff}",
        labels: &[],
    },
    MetricDef {
        name: "redis_maintenance_handoff_seconds",
        help: "The longest handoff so far: from a MOVING to the last old connection closed",
        kind: MetricKind::Gauge,
        unit: "s",
        labels: &[],
    },
    MetricDef { name: "redis_connections_active", help: "Open pooled connections", kind: MetricKind::Gauge, unit: "{connection}", labels: &[] },
    MetricDef { name: "redis_connections_opened_total", help: "Connections opened", kind: MetricKind::Counter, unit: "{connection}", labels: &[] },
    MetricDef {
        name: "redis_connection_drops_total",
        help: "Connections dropped because they broke",
        kind: MetricKind::Counter,
        unit: "{connection}",
        labels: &[],
    },
    MetricDef {
        name: "redis_reconnects_total",
        help: "Connections opened to replace dropped ones",
        kind: MetricKind::Counter,
        unit: "{connection}",
        labels: &[],
    },
    MetricDef {
        name: "redis_reconnect_duration",
        help: "Time to open a replacement connection, in seconds",
        kind: MetricKind::Histogram,
        unit: "s",
        labels: &[],
    },
    MetricDef {
        name: "redis_network_errors_total",
        help: "Operations failed by timeouts or connection errors, plus failed connection attempts",
        kind: MetricKind::Counter,
        unit: "{error}",
        labels: &[],
    },
    MetricDef {
        name: "redis_cluster_redirects_total",
        help: "Cluster replies that moved an operation (MOVED, ASK) or made it wait (TRYAGAIN, CLUSTERDOWN)",
        kind: MetricKind::Counter,
        unit: "{reply}",
        labels: &["class"],
    },
    MetricDef {
        name: "redis_cluster_topology_refreshes_total",
        help: "Times the cluster slot map was read again",
        kind: MetricKind::Counter,
        unit: "{refresh}",
        labels: &[],
    },
    MetricDef { name: "redis_test_phase", help: "1 for the running phase, 0 for the others", kind: MetricKind::Gauge, unit: "1", labels: &["phase"] },
    MetricDef {
        name: "redis_test_target_rate",
        help: "Target operations per second now (0 in closed loop)",
        kind: MetricKind::Gauge,
        unit: "{operation}/s",
        labels: &[],
    },
    MetricDef {
        name: "redis_test_achieved_rate",
        help: "Operations per second over the last second",
        kind: MetricKind::Gauge,
        unit: "{operation}/s",
        labels: &[],
    },
];

/// Looks a metric definition up by name.
pub fn metric(name: &str) -> &'static MetricDef {
    METRICS.iter().find(|m| m.name == name).expect("metric names are declared in METRICS")
}

/// All measurements of one run.
pub struct RunMetrics {
    id: u64,
    threads: Mutex<Vec<Arc<Mutex<ThreadRecorder>>>>,
    /// Connection counters.
    pub conns: ConnCounters,
    /// Commands sent outside the workers' round trips.
    pub tally: Arc<CommandTally>,
}

static NEXT_RUN: AtomicU64 = AtomicU64::new(1);

thread_local! {
    // (run id, this thread's recorder for that run); several runs can share a process in tests.
    static LOCAL: RefCell<Vec<(u64, Arc<Mutex<ThreadRecorder>>)>> = const { RefCell::new(Vec::new()) };
}

impl Default for RunMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RunMetrics {
    /// Empty measurements for a new run.
    pub fn new() -> RunMetrics {
        RunMetrics { id: NEXT_RUN.fetch_add(1, Ordering::Relaxed), threads: Mutex::new(Vec::new()), conns: ConnCounters::default(), tally: Arc::default() }
    }

    fn with_local<R>(&self, f: impl FnOnce(&mut ThreadRecorder) -> R) -> R {
        LOCAL.with(|cell| {
            // Found: used in place (no reference count touched on the hot path).
            if let Some((_, rec)) = cell.borrow().iter().find(|(id, _)| *id == self.id) {
                return f(&mut rec.lock().expect("recorder lock"));
            }
            let rec = Arc::new(Mutex::new(ThreadRecorder::default()));
            self.threads.lock().expect("metrics lock").push(Arc::clone(&rec));
            let mut list = cell.borrow_mut();
            list.retain(|(_, r)| Arc::strong_count(r) > 1); // forget recorders of finished runs
            list.push((self.id, Arc::clone(&rec)));
            drop(list);
            let mut guard = rec.lock().expect("recorder lock");
            f(&mut guard)
        })
    }

    /// Records one pub/sub delivery (or a subscriber's failure, without latency).
    pub fn record_delivery(&self, key: OpKey, outcome: Outcome, latency_us: Option<u64>) {
        self.with_local(|rec| rec.record(key, OpRole::Delivery, outcome, latency_us, None));
    }

    /// Counts resends of an operation after connection errors.
    pub fn record_retries(&self, key: OpKey, n: u64) {
        self.with_local(|rec| rec.ops.entry(key).stats.retries += n);
    }

    /// Records one round trip under one lock: each `(op, outcome, role)` item (the round trip's own
    /// operation gets its latency and service time; the commands inside a batch are only
    /// counted), and the commands sent.
    pub fn record_round_trip(&self, phase: u16, workload: u16, trip: Trip<'_>) {
        let Trip { items, latency_us, service_us, cmds, sends } = trip;
        self.with_local(|rec| {
            rec.record_trip(phase, workload, items, latency_us, service_us);
            let counts = rec.phase_commands(phase);
            for c in cmds {
                counts[c.command as usize] += sends.times;
            }
            counts[Command::Asking as usize] += sends.asking;
            if counts[Command::Custom as usize] > 0 {
                // An array index per custom command, as for the built-in ones.
                let p = phase as usize;
                if rec.custom.len() <= p {
                    rec.custom.resize(p + 1, Vec::new());
                }
                let custom = &mut rec.custom[p];
                for c in cmds.iter().filter(|c| c.command == Command::Custom) {
                    let i = c.custom as usize;
                    if custom.len() <= i {
                        custom.resize(i + 1, 0);
                    }
                    custom[i] += sends.times;
                }
            }
        });
    }

    /// Takes (and resets) what every thread recorded per row since the last call: one block of
    /// `secs` seconds.
    pub fn take_blocks(&self, secs: f64) -> BTreeMap<OpKey, BlockSample> {
        let mut merged: BTreeMap<OpKey, BlockAcc> = BTreeMap::new();
        for t in self.threads.lock().expect("metrics lock").iter() {
            let mut rec = t.lock().expect("recorder lock");
            for (k, b) in rec.ops.iter_mut().map(|(k, r)| (k, &mut r.block)).filter(|(_, b)| b.count > 0) {
                let m = merged.entry(k).or_default();
                m.latency.add(&b.latency).expect("same bounds");
                m.count += b.count;
                m.errors += b.errors;
                b.latency.reset();
                b.count = 0;
                b.errors = 0;
            }
        }
        merged
            .into_iter()
            .map(|(k, b)| {
                let q = |q: f64| if b.latency.is_empty() { 0 } else { b.latency.value_at_quantile(q) };
                (k, BlockSample { secs, count: b.count, errors: b.errors, p50_us: q(0.5), p99_us: q(0.99), p999_us: q(0.999) })
            })
            .collect()
    }

    /// Commands the workers sent, per phase and name (names never sent left out).
    pub fn phase_commands(&self) -> BTreeMap<u16, BTreeMap<&'static str, u64>> {
        let mut out: BTreeMap<u16, BTreeMap<&'static str, u64>> = BTreeMap::new();
        for t in self.threads.lock().expect("metrics lock").iter() {
            let rec = t.lock().expect("recorder lock");
            for (p, counts) in rec.commands.iter().enumerate() {
                for (c, n) in Command::ALL.iter().zip(counts).filter(|(c, n)| **n > 0 && **c != Command::Custom) {
                    *out.entry(p as u16).or_default().entry(c.name()).or_default() += n;
                }
            }
            for (p, counts) in rec.custom.iter().enumerate() {
                for (id, n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
                    *out.entry(p as u16).or_default().entry(crate::command::custom_name(id as u16)).or_default() += n;
                }
            }
        }
        out
    }

    /// Takes (and resets) every thread's interval totals, merged.
    pub fn take_interval(&self) -> IntervalStats {
        let mut total = IntervalStats::default();
        for t in self.threads.lock().expect("metrics lock").iter() {
            let mut rec = t.lock().expect("recorder lock");
            total.latency.add(&rec.interval.latency).expect("same bounds");
            total.ops += rec.interval.ops;
            total.errors += rec.interval.errors;
            rec.interval.latency.reset();
            rec.interval.ops = 0;
            rec.interval.errors = 0;
        }
        total
    }

    /// All rows, merged over threads.
    pub fn merged(&self) -> BTreeMap<OpKey, OpStats> {
        let mut out: BTreeMap<OpKey, OpStats> = BTreeMap::new();
        for t in self.threads.lock().expect("metrics lock").iter() {
            let mut rec = t.lock().expect("recorder lock");
            for (k, row) in rec.ops.iter_mut() {
                out.entry(k).or_default().merge(&row.stats);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_merge_across_threads() {
        let m = Arc::new(RunMetrics::new());
        let key = OpKey { phase: 0, workload: 0, op: 1 };
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    for j in 0..1000u64 {
                        let outcome = if j % 10 == 0 { Outcome::Miss } else { Outcome::Ok };
                        m.record_round_trip(
                            0,
                            0,
                            Trip {
                                items: &[Outcomes { op: 1, outcome, role: OpRole::RoundTrip, n: 1 }],
                                latency_us: 100 + i,
                                service_us: 50,
                                cmds: &[],
                                sends: Sends::default(),
                            },
                        );
                    }
                    m.record_round_trip(
                        0,
                        0,
                        Trip {
                            items: &[Outcomes { op: 1, outcome: Outcome::Error(ErrorClass::Timeout), role: OpRole::RoundTrip, n: 1 }],
                            latency_us: 5_000_000,
                            service_us: 0,
                            cmds: &[],
                            sends: Sends::default(),
                        },
                    );
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        let rows = m.merged();
        let s = &rows[&key];
        assert_eq!(s.ok, 4000);
        assert_eq!(s.miss, 400);
        assert_eq!(s.errors["timeout"], 4);
        assert_eq!(s.count(), 4004);
        assert_eq!(s.latency.len(), 4000, "a failed operation is never a latency sample");
        assert_eq!(s.latency.value_at_quantile(1.0), 103);
        assert_eq!(s.error_latency.as_ref().map(|h| h.len()), Some(4), "failures keep their own latency");
        assert_eq!(s.service.len(), 4000);
        let iv = m.take_interval();
        assert_eq!((iv.ops, iv.errors), (4004, 4));
        assert_eq!(m.take_interval().ops, 0, "taking resets the interval");
    }

    #[test]
    fn a_round_trips_outcomes_recorded_grouped_are_recorded_as_one_by_one() {
        // A pipeline of 16: GETs that hit or missed, SETs that succeeded or timed out, and the
        // batch itself, the only one timed.
        let timeout = Outcome::Error(ErrorClass::Timeout);
        let (get, set, batch) = (1, 2, 0);
        let mut items = Vec::new();
        for i in 0..16u16 {
            let (op, outcome) = match i % 4 {
                0 => (get, Outcome::Ok),
                1 => (set, Outcome::Ok),
                2 => (get, if i < 8 { Outcome::Miss } else { Outcome::Ok }),
                _ => (set, if i == 15 { timeout } else { Outcome::Ok }),
            };
            items.push((op, outcome, OpRole::Command));
        }
        items.push((batch, timeout, OpRole::RoundTrip));
        fn trip(items: &[Outcomes]) -> Trip<'_> {
            Trip { items, latency_us: 700, service_us: 300, cmds: &[], sends: Sends::default() }
        }
        let (grouped, one_by_one) = (RunMetrics::new(), RunMetrics::new());
        for _ in 0..3 {
            let mut tally = Vec::new();
            for &(op, outcome, role) in &items {
                Outcomes::add(&mut tally, op, outcome, role);
                one_by_one.record_round_trip(0, 0, trip(&[Outcomes { op, outcome, role, n: 1 }]));
            }
            assert_eq!(tally.len(), 5, "one entry per operation and outcome: {tally:?}");
            assert_eq!(tally.iter().find(|t| t.op == set).map(|t| t.outcome), Some(Outcome::Ok), "an operation's first entry is its first outcome");
            grouped.record_round_trip(0, 0, trip(&tally));
        }
        let (a, b) = (grouped.merged(), one_by_one.merged());
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (key, x) in &a {
            let y = &b[key];
            assert_eq!((x.role, x.ok, x.miss, &x.errors), (y.role, y.ok, y.miss, &y.errors), "{key:?}");
            assert_eq!((x.latency.len(), x.service.len()), (y.latency.len(), y.service.len()), "{key:?}");
            assert_eq!(x.error_latency.as_ref().map(|h| (h.len(), h.max())), y.error_latency.as_ref().map(|h| (h.len(), h.max())), "{key:?}");
        }
        assert_eq!(a[&OpKey { phase: 0, workload: 0, op: get }].miss, 6);
        assert_eq!(a[&OpKey { phase: 0, workload: 0, op: set }].errors["timeout"], 3);
        let (ia, ib) = (grouped.take_interval(), one_by_one.take_interval());
        assert_eq!((ia.ops, ia.errors, ia.latency.len()), (ib.ops, ib.errors, ib.latency.len()));
        let (ba, bb) = (grouped.take_blocks(1.0), one_by_one.take_blocks(1.0));
        assert_eq!(ba.iter().map(|(k, s)| (*k, s.count, s.errors)).collect::<Vec<_>>(), bb.iter().map(|(k, s)| (*k, s.count, s.errors)).collect::<Vec<_>>());
    }

    #[test]
    fn unknown_server_errors_are_grouped() {
        assert_eq!(Outcome::server_error("WRONGTYPE"), Outcome::Error(ErrorClass::Server("WRONGTYPE")));
        assert_eq!(Outcome::server_error("WHATEVER"), Outcome::Error(ErrorClass::Server("OTHER")));
    }
}
