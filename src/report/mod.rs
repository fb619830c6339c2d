//! The run report: one data structure, built once from the run's results, from which the
//! summary, the JSON file (schema in `schemas/report.schema.json`) and thresholds are derived.

pub mod compare;
pub mod families;
pub mod html;
pub mod junit;
pub mod merge;
pub mod otlp;
pub mod progress;
pub mod prometheus;
pub mod pushgateway;
pub mod read;
pub mod summary;
pub mod thresholds;

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Serializer as _, V2Serializer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::metrics::OpStats;
use crate::outcome::{RunResult, TimePoint, VerifyResult};
use crate::plan::{Plan, TargetSummary};
use crate::workload::pubsub::SubscriberStats;

/// Version of the report format; bumped when a field changes meaning. Version 2 added the
/// successful operations per second to the time series, fault start offsets as planned, whether a
/// fault is required, recovery outcomes, rolling-upgrade steps by shard, the plan fingerprint and
/// thresholds left to `merge`; reports of version 1 are read and upgraded (see [`read`]).
pub const REPORT_VERSION: u32 = 2;

/// How latency is measured, stated in every report.
pub const LATENCY_NOTE: &str = "latency_us is measured from each operation's intended start time (the open-loop schedule when the phase has a rate, the actual start otherwise), so a stalled server cannot hide queueing delay (coordinated omission); service_time_us is measured from when the command was sent.";

/// A finished run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// Report format version.
    pub report_version: u32,
    /// redis-test version.
    pub tool_version: String,
    /// Run identifier.
    pub run_id: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario description.
    pub description: Option<String>,
    /// Start, RFC 3339 UTC.
    pub started_at: String,
    /// End, RFC 3339 UTC.
    pub ended_at: String,
    /// Seconds from the first to the last operation window.
    pub duration_s: f64,
    /// Stopped early by SIGINT/SIGTERM.
    pub interrupted: bool,
    /// `--time-scale` factor.
    pub time_scale: f64,
    /// The target, secrets redacted.
    pub target: TargetSummary,
    /// The client library that sent the commands: `native`, or `redis-rs` with its version.
    #[serde(default = "native_client")]
    pub client: String,
    /// Threads that ran the workers (`--threads`; by default one per CPU core). A merged report
    /// has the most any shard had.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_threads: Option<u32>,
    /// How latency is measured.
    pub latency_note: String,
    /// Whole-run totals.
    pub totals: Totals,
    /// Per phase, per operation results.
    pub phases: Vec<PhaseReport>,
    /// Faults on the timeline, with their resilience verdicts.
    pub faults: Vec<FaultRecord>,
    /// Per workload, the longest time without a successful operation over the whole run, seconds.
    pub longest_outage_s: BTreeMap<String, f64>,
    /// One point per second.
    pub time_series: Vec<TimePoint>,
    /// Threshold verdicts (empty for a shard's report: `merge` judges them).
    pub thresholds: Vec<ThresholdResult>,
    /// A shard's thresholds, left for `merge` to judge on the whole run (a shard's share alone
    /// cannot meet a whole-run rule such as `ops_per_sec > 800`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred_thresholds: Vec<RuleSpec>,
    /// A digest of the compiled plan (phases, workloads, faults, thresholds, target, client, time
    /// scale; the shard index left out): `merge` refuses shards whose plans differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_fingerprint: Option<String>,
    /// Pub/sub delivery per subscriber.
    pub pubsub: Vec<PubsubReport>,
    /// Stream workloads: what happened to each stream's entries (produced, delivered, claimed,
    /// duplicated, lost, trimmed, pending and lag at the end).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<crate::workload::stream::StreamStats>,
    /// Read-back of acknowledged writes.
    pub verify: Vec<VerifyResult>,
    /// Commands sent to the data nodes outside the phases' round trips, by name: connection
    /// handshakes, health-check PINGs, subscriptions, faults, slot map reads, verification and
    /// cleanup. With the phases' `commands` this is every command redis-test sent.
    #[serde(default)]
    pub other_commands: BTreeMap<String, u64>,
    /// Connection counters.
    pub connections: ConnectionReport,
    /// Keys removed after the run.
    pub cleanup: Option<CleanupReport>,
    /// OTLP export results, when exporting.
    pub otlp: Option<otlp::ExportStats>,
    /// Sentinel targets: each time the master moved and redis-test followed it; standalone
    /// targets: each time a MOVING moved the endpoint and the native client handed off.
    pub master_moves: Vec<MasterMove>,
    /// Maintenance notifications: what the client asked for, received and did (relaxed windows,
    /// handoffs). Present when the client asked or the scenario has maintenance faults; what each
    /// fault announced is in its verdict's `maintenance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<crate::client::maintenance::ClientReport>,
    /// The metric label naming the process that ran this (host name, or `metrics.instance_id`;
    /// `-shard-I` appended for a shard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The share of a scaled-out run this report covers (`apply --shard`); `merge` adds shards up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
    /// The shards a merged report was made of (`merge`), with their instance ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
    /// The push of the final metrics to a Pushgateway (`metrics.pushgateway`, `--pushgateway`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushgateway: Option<pushgateway::PushReport>,
    /// Parts of the run that stopped on a bug before the end (a worker, the pacer, the collector,
    /// a fault, a subscriber or a stream consumer that panicked), one line per kind and message. The figures
    /// miss what they would have done, so the run fails; `merge` keeps every shard's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub internal_errors: Vec<String>,
}

/// The master moved (a failover) and redis-test followed it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MasterMove {
    /// When it was noticed, RFC 3339.
    pub at: String,
    /// Old master.
    pub from: String,
    /// New master.
    pub to: String,
}

/// Totals over the whole run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Totals {
    /// Round trips (scheduled operations).
    pub count: u64,
    /// Failed round trips.
    pub errors: u64,
    /// errors / count.
    pub error_rate: f64,
    /// Round trips per second over the run.
    pub ops_per_sec: f64,
    /// Latency over all successful round trips, µs (zeros when none succeeded).
    pub latency_us: Percentiles,
}

/// A fault on the run's timeline.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FaultRecord {
    /// Label.
    pub name: String,
    /// Planned offset from the start of the run, seconds.
    pub at_s: f64,
    /// What it does.
    pub action: String,
    /// Whether its failure fails the run.
    #[serde(default = "yes")]
    pub required: bool,
    /// What happened when it ran, and the resilience verdict; absent when the run ended first.
    pub result: Option<crate::outcome::FaultVerdict>,
}

impl FaultRecord {
    /// Why this fault fails the run, if it does: it failed, was cut short, stopped on a bug (named
    /// in the run's `internal_errors`) or never ran (and the run was not interrupted), and the
    /// scenario requires it.
    pub fn failure(&self, interrupted: bool, internal_errors: &[String]) -> Option<String> {
        if !self.required {
            return None;
        }
        match &self.result {
            Some(v) if !v.ok => Some(v.detail.clone()),
            None if self.panicked(internal_errors) || !interrupted => Some(format!("it did not run: {}", self.not_run(interrupted, internal_errors))),
            _ => None,
        }
    }

    /// Why a fault without a result has none, as the summary, JUnit file and HTML report say it.
    pub fn not_run(&self, interrupted: bool, internal_errors: &[String]) -> &'static str {
        if self.panicked(internal_errors) {
            "it stopped on a bug (see the internal errors)"
        } else if interrupted {
            "the run was interrupted first"
        } else {
            "the run ended before its offset"
        }
    }

    /// Whether the run's internal errors say this fault's code panicked.
    fn panicked(&self, internal_errors: &[String]) -> bool {
        let mark = format!("`{}` panicked", self.name);
        internal_errors.iter().any(|e| e.contains(&mark))
    }
}

fn yes() -> bool {
    true
}

/// A threshold rule as written, for `merge` to judge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RuleSpec {
    /// The rule (`p99 < 5ms`; a count scaled by `--time-scale` says so after it).
    pub expr: String,
    /// The limit in the metric's base unit (µs for durations, a fraction for ratios), scaled by
    /// `--time-scale` where counts are.
    pub limit: f64,
    /// Phase scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Workload scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    /// Operation scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Fault scope: that fault's window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// One phase.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PhaseReport {
    /// Name.
    pub name: String,
    /// `ramp_up`, `steady`, `cooldown` or none.
    pub kind: Option<String>,
    /// Offset of its start, seconds.
    pub start_s: f64,
    /// How long it ran, seconds (shorter than planned when interrupted).
    pub duration_s: f64,
    /// Workers at start and end.
    pub workers: [u32; 2],
    /// Target rate at start and end; absent for closed loop.
    pub target_rate: Option<[f64; 2]>,
    /// Open loop: operations the schedule released.
    pub scheduled: Option<u64>,
    /// Open loop: scheduled operations not started before the phase ended (the load fell behind).
    pub backlog: Option<u64>,
    /// Scheduled operations: round trips (a pipeline batch counts once; its commands are in their
    /// own rows). This is what `rate` schedules and `ops_per_sec` judges.
    pub count: u64,
    /// Failed round trips.
    pub errors: u64,
    /// Round trips per second.
    pub ops_per_sec: f64,
    /// Pub/sub messages delivered to subscribers in the phase (not round trips).
    #[serde(default)]
    pub deliveries: u64,
    /// Every command the workers sent in the phase, by name, resends and follow-ups (LTRIM,
    /// PEXPIRE, MULTI, EXEC, ASKING) included: what the server's INFO commandstats counts.
    #[serde(default)]
    pub commands: BTreeMap<String, u64>,
    /// Rows per workload and operation.
    pub operations: Vec<OpReport>,
}

/// One (phase, workload, operation) row.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OpReport {
    /// Workload name.
    pub workload: String,
    /// Operation (`GET`, `PIPELINE`, `RECEIVE`, …).
    pub operation: String,
    /// What one count of this row is: `round_trip` (a scheduled operation, timed), `command` (a
    /// command inside a batch round trip, counted only) or `delivery` (a pub/sub message received,
    /// timed from its publication).
    #[serde(default)]
    pub unit: crate::metrics::OpRole,
    /// Operations (successes and failures).
    pub count: u64,
    /// Successful operations, misses included.
    pub ok: u64,
    /// Successful reads that found nothing.
    pub miss: u64,
    /// Failures by class: timeout, connection, pool_timeout, protocol, or the server's prefix.
    pub errors: BTreeMap<String, u64>,
    /// Resends after connection errors (reads, or writes with `retry_writes`).
    pub retries: u64,
    /// Operations per second in the phase.
    pub ops_per_sec: f64,
    /// Latency percentiles of successful operations, µs (absent for commands counted inside a
    /// batch, and when none succeeded). A failed operation is never a latency sample.
    pub latency_us: Option<Percentiles>,
    /// Service time percentiles of successful operations, µs.
    pub service_time_us: Option<Percentiles>,
    /// How long failed operations took to fail, µs (absent when none failed).
    #[serde(default)]
    pub error_latency_us: Option<Percentiles>,
    /// The latency histogram of successful operations, HdrHistogram V2 serialized, base64 (merge
    /// reports with it).
    pub histogram: Option<String>,
    /// The row's figures over each time block of the phase (one per second, at most 20): the
    /// samples `compare` tests a change against.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<crate::metrics::BlockSample>,
}

/// Latency percentiles in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// From a histogram; `None` when it is empty.
    pub fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        (!h.is_empty()).then(|| Percentiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
        })
    }
}

/// A threshold's verdict.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ThresholdResult {
    /// The rule as written.
    pub expr: String,
    /// Phase scope.
    pub phase: Option<String>,
    /// Workload scope.
    pub workload: Option<String>,
    /// Operation scope.
    pub operation: Option<String>,
    /// Fault scope: that fault's window (absent in reports before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Observed value in the metric's unit (µs for durations, a fraction for rates); absent when
    /// nothing in scope was measured.
    pub observed: Option<f64>,
    /// Observed value as people read it (`1.2ms`, `0.05%`).
    pub observed_text: String,
    /// Whether the rule held (a rule with nothing to measure fails).
    pub passed: bool,
}

impl ThresholdResult {
    /// The scope as people read it; empty: the whole run.
    pub fn scope(&self) -> Vec<String> {
        crate::scenario::model::scope_words(&self.phase, &self.workload, &self.operation, &self.fault)
    }
}

/// Pub/sub results of one workload.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PubsubReport {
    /// Workload name.
    pub workload: String,
    /// One entry per subscriber.
    pub subscribers: Vec<SubscriberStats>,
}

/// Connection counters. `null` where the client keeps the figure to itself (redis-rs on
/// clusters): not observable, which is not the same as 0.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionReport {
    /// Connections opened (redis-rs on clusters: cluster connections, each to every node).
    pub opened: u64,
    /// Connections dropped because they broke.
    pub dropped: Option<u64>,
    /// Failed connection attempts.
    pub connect_errors: Option<u64>,
    /// Connections opened to replace dropped ones.
    pub reconnects: Option<u64>,
    /// Cluster replies that moved an operation (MOVED, ASK) or made it wait (TRYAGAIN,
    /// CLUSTERDOWN) and that the tool followed, by class.
    #[serde(default)]
    pub cluster_redirects: Option<BTreeMap<String, u64>>,
    /// Times the cluster slot map was read again during the run.
    #[serde(default)]
    pub topology_refreshes: Option<u64>,
}

/// What a report shows for a counter: the number, or that the client hides it.
pub fn count_or_hidden(n: Option<u64>) -> String {
    n.map_or_else(|| "not observable with redis-rs".to_owned(), |n| n.to_string())
}

/// What cleanup did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CleanupReport {
    /// Key prefix removed.
    pub prefix: String,
    /// Keys removed.
    pub removed: u64,
    /// Why cleanup failed, if it did.
    pub error: Option<String>,
}

/// The JSON Schema of reports (committed as `schemas/report.schema.json`).
pub fn schema_text() -> String {
    let schema = schemars::generate::SchemaSettings::draft07().into_generator().into_root_schema_for::<Report>();
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serializes");
    s.push('\n');
    s
}

pub use crate::units::rfc3339;

fn serialize_histogram(h: &Histogram<u64>) -> Option<String> {
    if h.is_empty() {
        return None;
    }
    let mut bytes = Vec::new();
    V2Serializer::new().serialize(h, &mut bytes).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Decodes a histogram written by [`Report`] (for merging and comparing reports). Reports are
/// input from other machines: the header is checked before anything is allocated (see
/// [`check_histogram`]), so a few bytes claiming gigabytes decode to nothing.
pub fn deserialize_histogram(text: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
    check_histogram(&bytes).ok()?;
    hdrhistogram::serialization::Deserializer::new().deserialize(&mut bytes.as_slice()).ok()
}

/// The cookies of an uncompressed V2 HdrHistogram (the only form reports hold): the format's base
/// cookie, and with the word-size bits the Rust serializer sets.
const V2_COOKIES: [u64; 2] = [0x1c84_9303, 0x1c84_9313];
/// Largest value a report's histogram may track, µs (about 12 days): merged histograms grow past
/// the recorder's 60 s, never this far.
pub const MAX_HISTOGRAM_US: u64 = 1 << 40;
/// Size of the V2 header: cookie, payload length, normalizing offset, digits, lowest, highest,
/// conversion ratio.
const V2_HEADER: usize = 40;

/// Checks a serialized histogram's header against the bytes present: the V2 form, a payload no
/// longer than what follows the header, at most 3 significant digits and a range within
/// [`MAX_HISTOGRAM_US`] (which bounds the buckets it spans, and so what decoding allocates).
pub fn check_histogram(bytes: &[u8]) -> Result<(), String> {
    let field = |at: usize, n: usize| bytes.get(at..at + n).map(|b| b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)));
    let (Some(cookie), Some(payload), Some(digits), Some(low), Some(high)) = (field(0, 4), field(4, 4), field(12, 4), field(16, 8), field(24, 8)) else {
        return Err(format!("a histogram of {} bytes is shorter than its header", bytes.len()));
    };
    if !V2_COOKIES.contains(&cookie) {
        return Err(format!("a histogram has cookie {cookie:#x}, not the V2 form reports hold"));
    }
    let present = bytes.len() - V2_HEADER.min(bytes.len());
    if payload > present as u64 {
        return Err(format!("a histogram claims {payload} bytes of counts and holds {present}"));
    }
    if digits > 3 || low == 0 || high > MAX_HISTOGRAM_US || high < low.saturating_mul(2) {
        return Err(format!("a histogram's bounds cannot be ours: {digits} digits, values {low}..{high}"));
    }
    Ok(())
}

impl Report {
    /// The exit code this report's run ends with — the same for `apply` and for `merge`:
    /// interrupted; a shard's report 0 (it ran; `merge` judges); a threshold failed or a required
    /// fault failed, was cut short or never ran: 1; else 0. The summary and the JUnit file say the
    /// same from the same report.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            crate::exit::INTERRUPTED
        } else if self.shard.is_some() {
            crate::exit::OK
        } else if !self.failures().is_empty() {
            crate::exit::THRESHOLD_FAILED
        } else {
            crate::exit::OK
        }
    }

    /// What fails this run, one line each: failed thresholds, required faults that failed, and
    /// parts of the run that stopped on a bug.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> =
            self.thresholds.iter().filter(|t| !t.passed).map(|t| format!("threshold `{}`: observed {}", t.expr, t.observed_text)).collect();
        for f in &self.faults {
            if let Some(why) = f.failure(self.interrupted, &self.internal_errors) {
                out.push(format!("fault `{}` ({}) failed: {why}", f.name, f.action));
            }
        }
        out.extend(self.internal_errors.iter().map(|e| format!("internal error: {e}; the figures miss its share of the run")));
        out
    }
}

/// Adds `h` into `into` (which then grows to fit any value): how thresholds and `merge` sum
/// histograms exactly.
fn add_histogram(into: &mut Option<Histogram<u64>>, h: Histogram<u64>) {
    match into {
        Some(m) => {
            let _ = m.add(&h);
        }
        None => {
            let mut m = h;
            m.auto(true);
            *into = Some(m);
        }
    }
}

fn rate(count: u64, secs: f64) -> f64 {
    if secs > 0.0 { (count as f64 / secs * 10.0).round() / 10.0 } else { 0.0 }
}

/// Builds the report of a run. Threshold verdicts are filled in by [`thresholds::evaluate`].
pub fn build(run_id: &str, plan: &Plan, run: &RunResult, cleanup: Option<CleanupReport>) -> Report {
    let duration_s = run.phases.last().map_or(0.0, |p| p.ended.as_secs_f64());
    let mut total = OpStats::default();
    let phases: Vec<PhaseReport> = plan
        .phases
        .iter()
        .zip(&run.phases)
        .enumerate()
        .map(|(pi, (p, pr))| {
            let secs = pr.ended.saturating_sub(pr.started).as_secs_f64();
            let mut operations = Vec::new();
            let (mut count, mut errors, mut deliveries) = (0, 0, 0);
            for (key, stats) in run
                .rows
                .range(crate::metrics::OpKey { phase: pi as u16, workload: 0, op: 0 }..crate::metrics::OpKey { phase: pi as u16 + 1, workload: 0, op: 0 })
            {
                let (wname, ops) = &run.workloads[key.workload as usize];
                if stats.timed() {
                    count += stats.count();
                    errors += stats.error_count();
                    total.merge(stats);
                }
                if stats.role == crate::metrics::OpRole::Delivery {
                    deliveries += stats.ok;
                }
                operations.push(OpReport {
                    workload: wname.clone(),
                    operation: ops.get(key.op as usize).copied().unwrap_or("?").to_owned(),
                    unit: stats.role,
                    count: stats.count(),
                    ok: stats.ok,
                    miss: stats.miss,
                    errors: stats.errors.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
                    retries: stats.retries,
                    ops_per_sec: rate(stats.count(), secs),
                    latency_us: Percentiles::of(&stats.latency),
                    service_time_us: Percentiles::of(&stats.service),
                    error_latency_us: stats.error_latency.as_deref().and_then(Percentiles::of),
                    histogram: serialize_histogram(&stats.latency),
                    blocks: run.blocks.get(key).cloned().unwrap_or_default(),
                });
            }
            PhaseReport {
                name: p.name.clone(),
                kind: p.kind.map(|k| serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()),
                start_s: pr.started.as_secs_f64(),
                duration_s: secs,
                workers: [p.workers.from, p.workers.to],
                target_rate: p.rate.map(|r| [r.from, r.to]),
                scheduled: pr.scheduled,
                backlog: pr.backlog,
                count,
                errors,
                ops_per_sec: rate(count, secs),
                deliveries,
                commands: run.commands.get(&(pi as u16)).map(|c| c.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()).unwrap_or_default(),
                operations,
            }
        })
        .collect();
    let count = total.count();
    let errors = total.error_count();
    Report {
        report_version: REPORT_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        run_id: run_id.to_owned(),
        scenario: plan.scenario.clone(),
        description: plan.description.clone(),
        started_at: rfc3339(run.started_at),
        ended_at: rfc3339(run.ended_at),
        duration_s,
        interrupted: run.interrupted,
        time_scale: plan.time_scale,
        target: plan.target.clone(),
        client: plan.connections.client.clone(),
        client_threads: Some(run.threads as u32),
        latency_note: LATENCY_NOTE.to_owned(),
        totals: Totals {
            count,
            errors,
            error_rate: if count > 0 { errors as f64 / count as f64 } else { 0.0 },
            ops_per_sec: rate(count, duration_s),
            latency_us: Percentiles::of(&total.latency).unwrap_or_default(),
        },
        phases,
        faults: plan
            .faults
            .iter()
            .enumerate()
            .map(|(i, f)| FaultRecord {
                name: f.name.clone(),
                at_s: f.at.as_secs_f64(),
                action: crate::plan::describe_action(&f.action),
                required: f.required,
                result: run.faults.get(i).cloned().flatten(),
            })
            .collect(),
        longest_outage_s: run.longest_outage_s.clone(),
        time_series: run.series.clone(),
        thresholds: Vec::new(),
        deferred_thresholds: Vec::new(),
        plan_fingerprint: Some(plan.fingerprint()),
        pubsub: run.pubsub.iter().map(|(w, subs)| PubsubReport { workload: w.clone(), subscribers: subs.clone() }).collect(),
        streams: run.streams.clone(),
        verify: run.verify.clone(),
        other_commands: BTreeMap::new(),
        connections: ConnectionReport {
            opened: run.connections.0,
            dropped: run.shown("dropped", run.connections.1),
            connect_errors: run.shown("connect_errors", run.connections.2),
            reconnects: run.shown("reconnects", run.connections.3),
            cluster_redirects: (!run.hidden.contains(&"cluster_redirects")).then(|| run.cluster_redirects.clone()),
            topology_refreshes: run.shown("topology_refreshes", run.topology_refreshes),
        },
        cleanup,
        otlp: None,
        master_moves: Vec::new(),
        maintenance: None,
        instance_id: None,
        shard: plan.shard,
        merged_from: Vec::new(),
        pushgateway: None,
        internal_errors: run.stopped_tasks.clone(),
    }
}

fn native_client() -> String {
    "native".into()
}
