//! What a run produced, as plain data: the executor fills it in, the report reads it. It sits below
//! both so that neither imports the other (the executor never builds a report, the report never
//! reaches into the executor).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::metrics::{OpKey, OpStats};
use crate::workload::pubsub::SubscriberStats;

/// One second of the run, over all operations.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema, PartialEq)]
pub struct TimePoint {
    /// Seconds since the start of the run at the end of this interval.
    pub t: f64,
    /// Length of the interval, seconds (1 s; longer after 2 hours, when pairs of points merge).
    #[serde(default)]
    pub secs: f64,
    /// Operations completed in the interval, successful or failed.
    pub ops: u64,
    /// Operations completed per second in the interval, successful or failed.
    pub ops_per_sec: f64,
    /// Successful operations in the interval (what the throughput chart draws).
    #[serde(default)]
    pub ok: u64,
    /// Successful operations per second in the interval.
    #[serde(default)]
    pub ok_per_sec: f64,
    /// Median latency in the interval, µs.
    pub p50_us: u64,
    /// 99th percentile latency in the interval, µs.
    pub p99_us: u64,
    /// Failed operations in the interval.
    pub errors: u64,
}

impl TimePoint {
    /// A report of version 1 had no `ok`: every completed operation that did not fail.
    pub fn fill_ok(&mut self) {
        self.ok = self.ops.saturating_sub(self.errors);
        self.ok_per_sec = if self.secs > 0.0 { (self.ok as f64 / self.secs * 10.0).round() / 10.0 } else { 0.0 };
    }
}

/// What actually happened in one phase.
#[derive(Debug, Clone)]
pub struct PhaseRun {
    /// Offset at which it started.
    pub started: Duration,
    /// Offset at which it ended (earlier than planned when interrupted).
    pub ended: Duration,
    /// Open loop: operations scheduled (tokens released).
    pub scheduled: Option<u64>,
    /// Open loop: scheduled operations no worker started before the phase ended.
    pub backlog: Option<u64>,
}

/// Everything a run produced.
pub struct RunResult {
    /// Wall-clock start.
    pub started_at: SystemTime,
    /// Wall-clock end.
    pub ended_at: SystemTime,
    /// Whether it was stopped early.
    pub interrupted: bool,
    /// Threads that ran the workers (the runtime's own count).
    pub threads: usize,
    /// Workload names and their operation names, by index.
    pub workloads: Vec<(String, Vec<&'static str>)>,
    /// Results by (phase, workload, operation).
    pub rows: BTreeMap<OpKey, OpStats>,
    /// Per row, its figures over each time block of its phase (see [`blocks_in`]).
    pub blocks: BTreeMap<OpKey, Vec<crate::metrics::BlockSample>>,
    /// Commands the workers sent, per phase and name (resends included).
    pub commands: BTreeMap<u16, BTreeMap<&'static str, u64>>,
    /// Per-second series.
    pub series: Vec<TimePoint>,
    /// Per-phase timing.
    pub phases: Vec<PhaseRun>,
    /// Pub/sub subscribers by workload name.
    pub pubsub: Vec<(String, Vec<SubscriberStats>)>,
    /// Stream workloads: what happened to each stream's entries.
    pub streams: Vec<crate::workload::stream::StreamStats>,
    /// Acknowledged-write verification by workload.
    pub verify: Vec<VerifyResult>,
    /// Connections opened, dropped, failed to open, reopened to replace dropped ones.
    pub connections: (u64, u64, u64, u64),
    /// Counters the client kept to itself (see [`crate::metrics::ConnCounters::hidden`]).
    pub hidden: Vec<&'static str>,
    /// Cluster redirects followed, by class.
    pub cluster_redirects: BTreeMap<String, u64>,
    /// Times the cluster slot map was read again.
    pub topology_refreshes: u64,
    /// Per planned fault, in plan order: what it did and its resilience verdict (`None`: the run
    /// ended before its offset).
    pub faults: Vec<Option<FaultVerdict>>,
    /// Per workload, the longest stretch without a success over the whole run, seconds.
    pub longest_outage_s: BTreeMap<String, f64>,
    /// Tasks that stopped on a bug before the end, one line per kind and message (the run fails).
    pub stopped_tasks: Vec<String>,
}

impl RunResult {
    /// Counter `name` as the report shows it: `None` when the client hides it.
    pub fn shown(&self, name: &str, value: u64) -> Option<u64> {
        (!self.hidden.contains(&name)).then_some(value)
    }
}

/// A fault that ran and what it did to the load.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct FaultVerdict {
    /// Label.
    pub name: String,
    /// What it does.
    pub action: String,
    /// When it started, seconds since the run's start.
    pub at_s: f64,
    /// When the scenario said it should start, seconds since the run's start (absent in reports
    /// of redis-test before report version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_s: Option<f64>,
    /// Whether it started more than 100 ms after `planned_s`.
    #[serde(default)]
    pub late: bool,
    /// When its command returned.
    pub finished_s: f64,
    /// Whether it did what it declared. A fault that failed or was cut short fails the run unless
    /// `required` is false.
    pub ok: bool,
    /// Whether its failure fails the run (`required: false` in the scenario makes it informative).
    #[serde(default = "yes")]
    pub required: bool,
    /// What it did, or why it failed.
    pub detail: String,
    /// Operations in flight when it started.
    pub in_flight: i64,
    /// From the fault to the first failed operation, seconds (none failed: absent).
    pub time_to_first_error_s: Option<f64>,
    /// Longest time without a successful operation in the fault's window, seconds: over all
    /// workloads, and for cluster targets over all shards as well.
    pub outage_s: f64,
    /// The same per workload.
    pub outage_by_workload_s: BTreeMap<String, f64>,
    /// Cluster targets: the longest time without a successful operation on each shard (named by
    /// its primary at the start of the run), over all workloads. A failed primary stops one shard
    /// while the others carry on, which the per-workload figure cannot show.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outage_by_shard_s: BTreeMap<String, f64>,
    /// From the fault until throughput is back within 10 % of its level before it, seconds (0 when
    /// it never dipped); absent when it did not come back in the window or there was no level to
    /// compare with — `recovery` says which.
    pub recovery_s: Option<f64>,
    /// Whether throughput came back: `recovered` (see `recovery_s`), `not_recovered` (not within
    /// the window: fails every `recovery_time` rule), `no_level` (nothing to compare with) or
    /// `too_short` (a window under 500 ms, too short to see it back: not judged).
    /// Absent in reports before version 2, where a missing `recovery_s` meant either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
    /// The level throughput was judged against, operations per second: the plan's rate in open
    /// loop, the median before the fault in closed loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_level_ops: Option<f64>,
    /// Failed operations in the window by class.
    pub errors: BTreeMap<String, u64>,
    /// Connections reopened in the window; `null` where the client hides it (redis-rs on clusters).
    pub reconnects: Option<u64>,
    /// End of the window (the next fault or the end of the run), seconds.
    pub window_end_s: f64,
    /// Each step of a fault made of several (a rolling upgrade), with its own verdict over its
    /// own window (until the next step, the last one until the fault's window ends).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepVerdict>,
    /// The stretches without a success inside the window, per workload and cluster shard (the
    /// streams `outage_by_workload_s` and `outage_by_shard_s` judge): what `merge` intersects to
    /// find the outage of the union of several shards' successes. At most [`MAX_GAPS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<GapRecord>,
    /// Maintenance faults (`maintenance`, `notify`): what was announced and what the change did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<MaintenanceRun>,
}

/// What a maintenance fault announced and changed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct MaintenanceRun {
    /// Notifications sent, by kind, summed over the connections they went to.
    pub sent: BTreeMap<String, u64>,
    /// Connections that had asked for notifications when the first one went out.
    pub listening: u64,
    /// The endpoint MOVING named (connections that asked for `none` got a null instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// When the change was made (the new node promoted, the endpoint moved), seconds since the
    /// run's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover_s: Option<f64>,
    /// Connections the old endpoint still had at the end of the notice, closed then: the clients
    /// that did not hand off lose them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at_end: Option<u64>,
}

/// How long throughput must hold its level after a fault to count as back; a fault's window
/// shorter than this is [`Recovery::TooShort`]. (Runs of more than a million 100 ms slots, 27 h,
/// get wider slots, and hold for as many of them.)
pub const RECOVERY_HOLD: std::time::Duration = std::time::Duration::from_millis(500);

/// Whether throughput came back after a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// Back within 10 % of the level (or never below it).
    Recovered,
    /// Not back within the fault's window.
    NotRecovered,
    /// No level to compare with (a fault in the run's first moments, or no successes before it).
    NoLevel,
    /// The fault's window (until the next fault or the end of the run) is shorter than the
    /// 500 ms throughput must hold its level to count as back (`RECOVERY_HOLD`): not judged (a shortened run's
    /// windows, at a small `--time-scale`).
    TooShort,
}

impl Recovery {
    /// How bad it is for a run made of several shards: the worst shard's outcome is the run's.
    fn severity(self) -> u8 {
        match self {
            Recovery::Recovered => 0,
            Recovery::NoLevel => 1,
            Recovery::TooShort => 2,
            Recovery::NotRecovered => 3,
        }
    }

    /// The worst of several shards' outcomes for one fault (see [`Recovery::severity`]).
    pub fn worst(all: impl IntoIterator<Item = Recovery>) -> Option<Recovery> {
        all.into_iter().max_by_key(|r| r.severity())
    }
}

impl FaultVerdict {
    /// Whether throughput came back, read the same way from reports of every version.
    pub fn recovery(&self) -> Recovery {
        match (self.recovery, self.recovery_s) {
            (Some(r), _) => r,
            (None, Some(_)) => Recovery::Recovered,
            (None, None) => Recovery::NotRecovered,
        }
    }

    /// Whether this fault failed in a way that fails the run.
    pub fn fails_run(&self) -> bool {
        !self.ok && self.required
    }
}

fn yes() -> bool {
    true
}

/// Most gaps kept per fault verdict (each is one outage of 100 ms or more).
pub const MAX_GAPS: usize = 1000;

/// One stretch without a success, seconds since the run's start.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct GapRecord {
    /// The workload or shard, named as in `outage_by_workload_s` / `outage_by_shard_s`.
    pub stream: String,
    /// Start, s.
    pub from_s: f64,
    /// End, s.
    pub to_s: f64,
}

/// One step of a fault made of several, and what it did to the load.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct StepVerdict {
    /// What the step does.
    pub name: String,
    /// The cluster shard it touched (by the slot map's order), when it touched one: its outage is
    /// that shard's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    /// When it started, seconds since the run's start.
    pub at_s: f64,
    /// How long it took, seconds.
    pub took_s: f64,
    /// Whether it did what it should.
    pub ok: bool,
    /// What it did, or why it failed.
    pub detail: String,
    /// Longest outage in the step's window, seconds: of the shard it touched (cluster), else of
    /// any workload.
    pub outage_s: f64,
    /// Failed operations in the step's window by class.
    pub errors: BTreeMap<String, u64>,
}

/// Verification of one workload's acknowledged writes.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct VerifyResult {
    /// Workload name.
    pub workload: String,
    /// Keys whose last acknowledged write was checked.
    pub checked: u64,
    /// Acknowledged writes whose key is gone.
    pub lost: u64,
    /// Acknowledged writes whose key holds a different value (or exists after an acknowledged DEL).
    pub changed: u64,
    /// Keys holding, instead of their last acknowledged write, a later one that failed as far as
    /// the client knew (a timeout, a connection lost after sending) and that the server applied
    /// all the same: the reply was lost, not the write (not counted in `lost_writes`).
    #[serde(default)]
    pub indeterminate: u64,
    /// Keys that could not be read back (errors during verification).
    pub unreadable: u64,
    /// Whether more writes were acknowledged than could be remembered (verification is partial).
    pub truncated: bool,
    /// Counters checked (INCR keys, HINCRBY fields).
    #[serde(default)]
    pub counters: u64,
    /// Increments acknowledged, over all counters checked.
    #[serde(default)]
    pub increments_acknowledged: u64,
    /// Acknowledged increments missing from the server's values.
    #[serde(default)]
    pub increments_lost: u64,
    /// Increments applied beyond every one sent: a write applied twice (a resend after a lost
    /// reply, `retry_writes: true`).
    #[serde(default)]
    pub increments_duplicated: u64,
    /// Increments that failed as far as the client knew (a timeout, a lost connection) and were
    /// applied all the same.
    #[serde(default)]
    pub increments_indeterminate: u64,
}

impl VerifyResult {
    /// Acknowledged writes that did not survive.
    pub fn lost_writes(&self) -> u64 {
        self.lost + self.changed + self.increments_lost
    }

    /// Writes applied more often than they were sent.
    pub fn duplicate_writes(&self) -> u64 {
        self.increments_duplicated
    }
}
