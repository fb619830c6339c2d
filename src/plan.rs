//! The compiled plan: a pure function from a checked scenario to plain data — phase timeline,
//! ramps, normalised mixes, absolute fault offsets and thresholds — with secrets redacted.
//! `redis-test plan` prints it; the executor follows it.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scenario::model::{Endpoint, Fault, FaultAction, Metric, Mode, NetworkFault, PhaseKind, Protocol, Scenario, Target, Threshold, default_fault_name};
use crate::units::{format_duration, serde_duration};

/// What a run will do, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Scenario name.
    pub scenario: String,
    /// Scenario description.
    pub description: Option<String>,
    /// The target, redacted.
    pub target: TargetSummary,
    /// Pools × connections.
    pub connections: ConnectionSummary,
    /// Factor applied to every duration and offset (1 unless `--time-scale`).
    pub time_scale: f64,
    /// Sum of the phase durations.
    #[serde(with = "serde_duration")]
    pub total_duration: Duration,
    /// Workloads with their keyspaces and operation shares.
    pub workloads: Vec<PlannedWorkload>,
    /// Phases with absolute start offsets.
    pub phases: Vec<PlannedPhase>,
    /// Faults at absolute offsets.
    pub faults: Vec<Fault>,
    /// Pass/fail rules.
    pub thresholds: Vec<Threshold>,
    /// Whether the run's keys are removed afterwards.
    pub cleanup: bool,
    /// The share of a scaled-out run this process runs (`apply --shard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::shard::Shard>,
}

/// The target as it may be shown: passwords are `***`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TargetSummary {
    /// `redis://user:***@host:port/db`, or `local standalone` etc.
    pub address: String,
    /// Topology.
    pub mode: String,
    /// RESP version.
    pub protocol: String,
    /// `off`, `on`, `on (mutual)`, or `on (INSECURE: no verification)`.
    pub tls: String,
    /// Sentinel master and addresses, when used.
    pub sentinel: Option<String>,
    /// Replica reads.
    pub read_from_replicas: bool,
    /// Connections go through redis-test's fault proxy.
    #[serde(default)]
    pub proxy: bool,
}

/// Pool shape, timeouts and retry policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionSummary {
    /// The client library: `native`, or `redis-rs` with the `redis` crate's version.
    #[serde(default = "native")]
    pub client: String,
    /// Number of pools.
    pub pools: u32,
    /// Connections per pool.
    pub per_pool: u32,
    /// TCP connect plus handshake limit.
    pub connect_timeout: String,
    /// Pool checkout limit.
    pub acquire_timeout: String,
    /// Reply limit per round trip.
    pub command_timeout: String,
    /// Idle time after which a pooled connection is PINGed before use.
    pub health_check_interval: String,
    /// The retry policy in words.
    pub retry: String,
}

/// A workload as the plan shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedWorkload {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Key prefix.
    pub prefix: String,
    /// Distinct keys.
    pub keys: u64,
    /// How keys are picked (`uniform`, `sequential`, `zipf 0.99`, `gaussian 0.5±0.1`).
    pub distribution: String,
    /// Value size (`64B`, or `16B..4KiB`).
    pub value_size: String,
    /// TTL of every key written, when set.
    pub ttl: Option<String>,
    /// The kind's own options, defaults filled in (depth, transaction, pattern, message size, …).
    pub options: serde_json::Map<String, serde_json::Value>,
    /// Operations and their share in percent (aggregates such as PIPELINE show 0).
    pub operations: Vec<Share>,
}

/// A name with a percentage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Share {
    /// Workload or operation name.
    pub name: String,
    /// Percentage, 0–100.
    pub percent: f64,
}

/// A start and end value of something that ramps linearly over a phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ramp<T> {
    /// At the start of the phase.
    pub from: T,
    /// At the end of the phase.
    pub to: T,
}

/// A phase on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedPhase {
    /// Name.
    pub name: String,
    /// Purpose.
    pub kind: Option<PhaseKind>,
    /// Offset from the start of the run.
    #[serde(with = "serde_duration")]
    pub start: Duration,
    /// Length.
    #[serde(with = "serde_duration")]
    pub duration: Duration,
    /// Active workers from → to.
    pub workers: Ramp<u32>,
    /// Target ops/s from → to; `None` is closed loop.
    pub rate: Option<Ramp<f64>>,
    /// Workload shares, summing to 100.
    pub mix: Vec<Share>,
}

impl PlannedPhase {
    /// Offset at which the phase ends.
    pub fn end(&self) -> Duration {
        self.start + self.duration
    }

    fn progress(&self, elapsed: Duration) -> f64 {
        if self.duration.is_zero() { 1.0 } else { (elapsed.as_secs_f64() / self.duration.as_secs_f64()).clamp(0.0, 1.0) }
    }

    /// Workers that should be active `elapsed` into the phase (linear ramp, rounded to nearest).
    pub fn workers_at(&self, elapsed: Duration) -> u32 {
        let Ramp { from, to } = self.workers;
        let x = f64::from(from) + (f64::from(to) - f64::from(from)) * self.progress(elapsed);
        x.round() as u32
    }

    /// Target rate `elapsed` into the phase; `None` for closed loop.
    pub fn rate_at(&self, elapsed: Duration) -> Option<f64> {
        self.rate.map(|Ramp { from, to }| from + (to - from) * self.progress(elapsed))
    }

    /// Operations the schedule asks for in the first `elapsed` of the phase (the rate's integral).
    pub fn scheduled_ops(&self, elapsed: Duration) -> Option<f64> {
        let Ramp { from, to } = self.rate?;
        let t = elapsed.min(self.duration).as_secs_f64();
        let d = self.duration.as_secs_f64();
        Some(if d == 0.0 { 0.0 } else { from * t + (to - from) * t * t / (2.0 * d) })
    }
}

impl PlannedPhase {
    /// When, from the phase's start, operation number `n` (0-based) is meant to start: the
    /// inverse of [`Self::scheduled_ops`]. `None` past the phase's end or in closed loop.
    pub fn op_time(&self, n: u64) -> Option<Duration> {
        let Ramp { from, to } = self.rate?;
        let d = self.duration.as_secs_f64();
        if n == 0 {
            // The first operation starts the phase (also on a ramp from 0, where the formula
            // below is 0/0).
            return (d > 0.0 && (from > 0.0 || to > 0.0)).then_some(Duration::ZERO);
        }
        let n = n as f64;
        let t = if from == to {
            if from <= 0.0 {
                return None;
            }
            n / from
        } else {
            // from·t + a·t² = n with a = (to − from) / 2d; this form stays exact when from = 0.
            let a = (to - from) / (2.0 * d);
            let disc = from * from + 4.0 * a * n;
            if disc < 0.0 {
                return None;
            }
            let denom = from + disc.sqrt();
            if denom <= 0.0 {
                return None;
            }
            2.0 * n / denom
        };
        (t.is_finite() && t < d).then(|| Duration::from_secs_f64(t))
    }

    /// How many operations are due in the first `elapsed` of the phase: those whose start time
    /// ([`Self::op_time`]) is at or before it. `None` in closed loop.
    pub fn ops_due(&self, elapsed: Duration) -> Option<u64> {
        let s = self.scheduled_ops(elapsed)?;
        // Operation n starts when the integral reaches n: operations 0..=floor(s) are due. Start
        // times are whole nanoseconds, so allow the integral one nanosecond of the peak rate.
        let rate = self.rate.map_or(0.0, |r| r.from.max(r.to));
        Some(if s.is_finite() { ((s + rate * 1e-9).floor() as u64).saturating_add(1) } else { u64::MAX })
    }

    /// Operations the whole phase schedules: those that start before its end. `None` in closed loop.
    pub fn total_ops(&self) -> Option<u64> {
        let s = self.scheduled_ops(self.duration)?;
        Some(if s.is_finite() { s.ceil() as u64 } else { u64::MAX })
    }

    /// The part of the phase during which worker `w` (0-based) is active, as offsets from the
    /// phase's start: worker `w` runs while [`Self::workers_at`] is above `w`.
    pub fn active_window(&self, w: u32) -> Option<(Duration, Duration)> {
        let Ramp { from, to } = self.workers;
        let (from, to, w) = (f64::from(from), f64::from(to), f64::from(w));
        let d = self.duration;
        // Active while from + (to − from)·p ≥ w + ½ (the ramp rounds to the nearest worker).
        if from == to {
            return (from >= w + 0.5).then_some((Duration::ZERO, d));
        }
        let p = ((w + 0.5 - from) / (to - from)).clamp(0.0, 1.0);
        let at = d.mul_f64(p);
        if to > from { (to >= w + 0.5).then_some((at, d)) } else { (from >= w + 0.5 && at > Duration::ZERO).then_some((Duration::ZERO, at)) }
    }

    /// The most workers the phase ever runs.
    pub fn max_workers(&self) -> u32 {
        self.workers.from.max(self.workers.to)
    }
}

impl Plan {
    /// A digest of the whole plan (FNV-1a over its JSON, the shard left out), as hex: two reports
    /// with the same fingerprint ran the same phases, workloads, faults, thresholds, target,
    /// client and time scale. `apply` stores the undivided plan's in every shard's report.
    pub fn fingerprint(&self) -> String {
        let whole = Plan { shard: None, ..self.clone() };
        let text = serde_json::to_string(&whole).expect("plans serialize");
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// The most workers any phase runs.
    pub fn max_workers(&self) -> u32 {
        self.phases.iter().map(PlannedPhase::max_workers).max().unwrap_or(0)
    }

    /// The phase running at `offset` from the start of the run (the later one on a boundary).
    pub fn phase_at(&self, offset: Duration) -> Option<&PlannedPhase> {
        self.phases.iter().find(|p| offset >= p.start && offset < p.end())
    }
}

/// Compiles a checked scenario. `time_scale` multiplies every duration and offset (`--time-scale`).
pub fn compile(s: &Scenario, time_scale: f64) -> Plan {
    let scale = |d: Duration| d.mul_f64(time_scale);
    let mut start = Duration::ZERO;
    let phases: Vec<PlannedPhase> = s
        .phases
        .iter()
        .map(|p| {
            let duration = scale(p.duration);
            let phase = PlannedPhase {
                name: p.name.clone(),
                kind: p.kind,
                start,
                duration,
                workers: Ramp { from: p.workers.0, to: p.workers.1 },
                rate: p.rate.map(|(from, to)| Ramp { from, to }),
                mix: percentages(p.mix.iter().map(|(n, w)| (n.as_str(), *w))),
            };
            start += duration;
            phase
        })
        .collect();
    let workloads = s
        .workloads
        .iter()
        .map(|w| PlannedWorkload {
            name: w.name.clone(),
            kind: w.kind.kind_name().to_owned(),
            prefix: w.custom.as_ref().map_or_else(|| w.keyspace.prefix.clone(), |c| c.key_prefix.clone()),
            keys: w.keyspace.keys,
            distribution: describe_distribution(&w.keyspace.distribution),
            value_size: match w.keyspace.value_size {
                (a, b) if a == b => crate::units::ByteSize(a).to_string(),
                (a, b) => format!("{}..{}", crate::units::ByteSize(a), crate::units::ByteSize(b)),
            },
            ttl: w.keyspace.ttl.map(format_duration),
            options: kind_options(&w.kind),
            operations: percentages(w.kind.operations().into_iter().filter(|o| o.occurs()).map(|o| (o.name, o.weight))),
        })
        .collect();
    let c = &s.connections;
    let retry = &c.retry;
    let connections = ConnectionSummary {
        client: client_label(c.client),
        pools: c.pools,
        per_pool: c.per_pool,
        connect_timeout: format_duration(c.connect_timeout),
        acquire_timeout: format_duration(c.acquire_timeout),
        command_timeout: format_duration(c.command_timeout),
        health_check_interval: format_duration(c.health_check_interval),
        retry: format!(
            "{} attempts, backoff {} ×{} up to {}, ±{}% jitter, {}",
            retry.attempts,
            format_duration(retry.initial_backoff),
            retry.multiplier,
            format_duration(retry.max_backoff),
            (retry.jitter * 100.0).round(),
            if retry.retry_writes { "reads and writes resent" } else { "reads resent, writes not" }
        ),
    };
    Plan {
        scenario: s.name.clone(),
        description: s.description.clone(),
        target: summarize_target(&s.target),
        connections,
        time_scale,
        total_duration: start,
        workloads,
        phases,
        faults: s
            .faults
            .iter()
            .map(|f| {
                let (at, action) = (scale(f.at), scale_action(&f.action, time_scale));
                // A name made from the offset follows the offset.
                let name = if f.name == default_fault_name(&f.action, f.at) { default_fault_name(&action, at) } else { f.name.clone() };
                Fault { name, at, action, required: f.required }
            })
            .collect(),
        thresholds: s.thresholds.iter().map(|t| scale_threshold(t, time_scale)).collect(),
        cleanup: s.cleanup,
        shard: None,
    }
}

/// Counts grow with the run's length: `ops > 9000` over a 7-minute run is `ops > 90` over the same
/// run at `--time-scale 0.01` (and `errors < 50` is `errors < 0.5`: a smoke run is held to the
/// same rate of errors, never a looser one).
fn scale_threshold(t: &Threshold, k: f64) -> Threshold {
    if k == 1.0 || !matches!(t.metric, Metric::Ops | Metric::Errors) {
        return t.clone();
    }
    let limit = t.limit * k;
    Threshold { expr: format!("{} (limit ×{k} by --time-scale: {})", t.expr, t.metric.show(limit)), limit, ..t.clone() }
}

/// The key distribution in words.
fn describe_distribution(d: &crate::scenario::model::Distribution) -> String {
    use crate::scenario::model::Distribution as D;
    match d {
        D::Uniform => "uniform".into(),
        D::Sequential => "sequential".into(),
        D::Zipf { exponent } => format!("zipf {exponent}"),
        D::Gaussian { mean, stddev } => format!("gaussian {mean}±{stddev}"),
    }
}

/// A workload kind's own options as written, defaults filled in (not its weight or keyspace, which
/// the plan shows apart).
fn kind_options(k: &crate::scenario::model::WorkloadKind) -> serde_json::Map<String, serde_json::Value> {
    let mut m = match serde_json::to_value(k) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for drop in ["kind", "weight", "keyspace"] {
        m.remove(drop);
    }
    if let crate::scenario::model::WorkloadKind::Custom(c) = k {
        // A template reads best as it is written: its line (or arguments), then what is set.
        let shown = c.commands.iter().map(|t| {
            let mut s = match (&t.command, &t.args) {
                (Some(line), _) => line.clone(),
                (None, Some(args)) => serde_json::to_string(args).unwrap_or_default(),
                (None, None) => String::new(),
            };
            let mut extra = Vec::new();
            if let Some(w) = t.weight {
                extra.push(format!("weight {w}"));
            }
            if let Some(n) = &t.name {
                extra.push(format!("name {n}"));
            }
            if let Some(k) = &t.keys {
                extra.push(format!("keys {k:?}"));
            }
            if !extra.is_empty() {
                s.push_str(&format!(" ({})", extra.join(", ")));
            }
            serde_json::Value::String(s)
        });
        m.insert("commands".into(), serde_json::Value::Array(shown.collect()));
        m.insert("scripts".into(), serde_json::Value::Array(c.scripts.keys().map(|k| serde_json::Value::String(k.clone())).collect()));
    }
    m
}

/// Fault durations shrink with the run so that a scaled smoke test keeps its shape.
fn scale_action(a: &FaultAction, k: f64) -> FaultAction {
    match a.clone() {
        FaultAction::ClientPause { duration, mode } => FaultAction::ClientPause { duration: duration.mul_f64(k), mode },
        FaultAction::DebugSleep { duration } => FaultAction::DebugSleep { duration: duration.mul_f64(k) },
        FaultAction::Restart { node, down_for, new_port } => FaultAction::Restart { node, down_for: down_for.mul_f64(k), new_port },
        FaultAction::Freeze { node, duration } => FaultAction::Freeze { node, duration: duration.mul_f64(k) },
        FaultAction::Network { fault, node, duration } => FaultAction::Network { fault, node, duration: duration.mul_f64(k) },
        FaultAction::Maintenance { kind, notice, announce, shard, slots } => {
            FaultAction::Maintenance { kind, notice: notice.mul_f64(k), announce, shard, slots }
        }
        FaultAction::Notify { messages, notice } => FaultAction::Notify { messages, notice: notice.mul_f64(k) },
        other => other,
    }
}

/// Normalises weights to percentages that sum to 100 (entries with weight 0 show 0).
pub fn percentages<'a>(weights: impl Iterator<Item = (&'a str, f64)>) -> Vec<Share> {
    let items: Vec<(&str, f64)> = weights.collect();
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    items.into_iter().map(|(n, w)| Share { name: n.to_owned(), percent: if total > 0.0 { round2(w / total * 100.0) } else { 0.0 } }).collect()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The target with secrets replaced by `***`.
pub fn summarize_target(t: &Target) -> TargetSummary {
    let scheme = if t.tls.is_some() { "rediss" } else { "redis" };
    let auth = match (&t.username, &t.password) {
        (Some(u), Some(_)) => format!("{u}:***@"),
        (None, Some(_)) => ":***@".to_owned(),
        (Some(u), None) => format!("{u}@"),
        (None, None) => String::new(),
    };
    let address = match &t.endpoint {
        Endpoint::Local(l) => format!("local {}", format!("{l:?}").to_lowercase()),
        // A sentinel target without a `url`: the master is whatever the sentinels name.
        Endpoint::Remote(addrs) if addrs.is_empty() => match &t.sentinel {
            Some(s) => format!("sentinel master `{}`", s.master_name),
            None => String::from("(no address)"),
        },
        Endpoint::Remote(addrs) => {
            let hosts: Vec<String> = addrs.iter().map(ToString::to_string).collect();
            let db = if t.db > 0 { format!("/{}", t.db) } else { String::new() };
            format!("{scheme}://{auth}{}{db}", hosts.join(","))
        }
    };
    let tls = match &t.tls {
        None => "off".to_owned(),
        Some(tls) if tls.insecure => "on (INSECURE: certificate verification disabled)".to_owned(),
        Some(tls) if tls.client_cert.is_some() => "on (mutual)".to_owned(),
        Some(_) => "on".to_owned(),
    };
    TargetSummary {
        address,
        mode: match t.mode {
            Mode::Standalone => "standalone",
            Mode::Cluster => "cluster",
            Mode::Sentinel => "sentinel",
        }
        .to_owned(),
        protocol: match t.protocol {
            Protocol::Resp2 => "resp2",
            Protocol::Resp3 => "resp3",
        }
        .to_owned(),
        tls,
        sentinel: t.sentinel.as_ref().map(|s| {
            let nodes: Vec<String> = s.nodes.iter().map(ToString::to_string).collect();
            let auth = if s.password.is_some() { " (password ***)" } else { "" };
            format!("master `{}` via {}{auth}", s.master_name, nodes.join(", "))
        }),
        read_from_replicas: t.read_from_replicas,
        proxy: t.proxy,
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario  {}", self.scenario)?;
        if let Some(d) = &self.description {
            writeln!(f, "          {d}")?;
        }
        let t = &self.target;
        writeln!(f, "target    {} (mode {}, {}, TLS {})", t.address, t.mode, t.protocol, t.tls)?;
        if t.proxy {
            writeln!(f, "proxy     every connection through redis-test's fault proxy")?;
        }
        if let Some(s) = &t.sentinel {
            writeln!(f, "sentinel  {s}")?;
        }
        let c = &self.connections;
        writeln!(f, "client    {}", c.client)?;
        writeln!(f, "pools     {} × {} connections", c.pools, c.per_pool)?;
        let health = if c.client == "native" {
            format!("idle connections PINGed after {}", c.health_check_interval)
        } else {
            "no idle health checks (redis-rs: a connection is replaced once it breaks)".to_owned()
        };
        writeln!(f, "timeouts  connect {}, acquire {}, command {}; {health}", c.connect_timeout, c.acquire_timeout, c.command_timeout)?;
        writeln!(f, "retry     {}", c.retry)?;
        let scaled = if self.time_scale == 1.0 { String::new() } else { format!(" (time scale {})", self.time_scale) };
        writeln!(f, "duration  {}{scaled}", format_duration(self.total_duration))?;
        if let Some(s) = self.shard {
            writeln!(
                f,
                "shard     {} of {}: this process's share — the workers and connections below, every {}th scheduled operation (rates below are the whole run's), faults {}; thresholds judged by `merge`",
                s.index,
                s.count,
                s.count,
                if s.runs_faults() { "injected here" } else { "injected by shard 0" }
            )?;
        }
        writeln!(f, "\nworkloads")?;
        for w in &self.workloads {
            let ops: Vec<String> = w.operations.iter().map(|o| if o.percent > 0.0 { format!("{} {}%", o.name, o.percent) } else { o.name.clone() }).collect();
            writeln!(f, "  {:<16} {:<15} {} keys under `{}`: {}", w.name, w.kind, w.keys, w.prefix, ops.join(", "))?;
            let ttl = w.ttl.as_ref().map_or_else(String::new, |t| format!(", ttl {t}"));
            let options: Vec<String> = w.options.iter().map(|(k, v)| format!("{k} {}", v.to_string().trim_matches('"'))).collect();
            let options = if options.is_empty() { String::new() } else { format!("; {}", options.join(", ")) };
            writeln!(f, "  {:<32} {} keys, values {}{ttl}{options}", "", w.distribution, w.value_size)?;
        }
        writeln!(f, "\nphases")?;
        writeln!(f, "  {:<14} {:<9} {:>9} {:>9}  {:<11} {:<21} mix", "name", "kind", "start", "duration", "workers", "rate (ops/s)")?;
        let share = self.shard.map_or(1.0, |s| f64::from(s.count));
        for p in &self.phases {
            let kind = p.kind.map_or("-".to_owned(), |k| format!("{k:?}").to_lowercase().replace("rampup", "ramp_up"));
            let workers = if p.workers.from == p.workers.to { p.workers.from.to_string() } else { format!("{}→{}", p.workers.from, p.workers.to) };
            let rate = match p.rate {
                None => "closed loop".to_owned(),
                Some(r) if share > 1.0 && r.from == r.to => format!("{} (here {})", r.from, (r.from / share * 10.0).round() / 10.0),
                Some(r) if share > 1.0 => {
                    format!("{}→{} (here {}→{})", r.from, r.to, (r.from / share * 10.0).round() / 10.0, (r.to / share * 10.0).round() / 10.0)
                }
                Some(r) if r.from == r.to => format!("{}", r.from),
                Some(r) => format!("{}→{}", r.from, r.to),
            };
            let mut mix = String::new();
            for (i, m) in p.mix.iter().enumerate() {
                let _ = write!(mix, "{}{} {}%", if i > 0 { ", " } else { "" }, m.name, m.percent);
            }
            writeln!(f, "  {:<14} {:<9} {:>9} {:>9}  {:<11} {:<21} {mix}", p.name, kind, format_duration(p.start), format_duration(p.duration), workers, rate)?;
        }
        if !self.faults.is_empty() {
            writeln!(f, "\nfaults")?;
            for fault in &self.faults {
                writeln!(f, "  at {:>9}  {:<24} {}", format_duration(fault.at), fault.name, describe_action(&fault.action))?;
            }
        }
        if !self.thresholds.is_empty() {
            writeln!(f, "\nthresholds")?;
            for t in &self.thresholds {
                let scope = t.scope();
                let scope = if scope.is_empty() { "whole run".to_owned() } else { scope.join(", ") };
                writeln!(f, "  {:<28} {scope}", t.expr)?;
            }
        }
        writeln!(f, "\ncleanup   {}", if self.cleanup { "remove the run's keys afterwards" } else { "keep keys" })
    }
}

/// One line describing what a fault does.
pub fn describe_action(a: &FaultAction) -> String {
    match a {
        FaultAction::ClientKill { clients } => format!("CLIENT KILL ({})", format!("{clients:?}").to_lowercase()),
        FaultAction::ClientPause { duration, mode } => format!("CLIENT PAUSE {} {}", format_duration(*duration), format!("{mode:?}").to_uppercase()),
        FaultAction::DebugSleep { duration } => format!("DEBUG SLEEP {}", format_duration(*duration)),
        FaultAction::Failover { shard } => match shard {
            Some(s) => format!("failover of shard {s}"),
            None => "failover".into(),
        },
        FaultAction::Restart { node, down_for, new_port } => {
            format!("restart node {node}, down for {}{}", format_duration(*down_for), if *new_port { ", back on a new port" } else { "" })
        }
        FaultAction::Freeze { node, duration } => format!("freeze node {node} (SIGSTOP) for {}", format_duration(*duration)),
        FaultAction::Network { fault, node, duration } => {
            let what = match fault {
                NetworkFault::Latency { delay, jitter } if jitter.is_zero() => format!("latency +{}", format_duration(*delay)),
                NetworkFault::Latency { delay, jitter } => format!("latency +{} ±{}", format_duration(*delay), format_duration(*jitter)),
                NetworkFault::Bandwidth { bytes_per_second } => {
                    format!("bandwidth {}/s each way, shared by all of a node's connections (its link),", crate::units::ByteSize(*bytes_per_second))
                }
                NetworkFault::Blackhole => "blackhole".to_owned(),
                NetworkFault::Partition => "partition".to_owned(),
            };
            format!("{what} on {} for {}", nodes_text(*node), format_duration(*duration))
        }
        FaultAction::Reset { node } => format!("reset every connection to {}", nodes_text(*node)),
        FaultAction::RollingUpgrade { binary } => match binary {
            Some(b) => format!("rolling upgrade to {}", b.display()),
            None => "rolling upgrade (same redis-server)".to_owned(),
        },
        FaultAction::Shell { command, timeout } => format!("shell `{command}` (timeout {})", format_duration(*timeout)),
        FaultAction::Maintenance { kind, notice, announce, shard, slots } => format!(
            "maintenance {}{}{}{}{}",
            format!("{kind:?}").to_lowercase(),
            slots.map(|n| format!(" of {n} slots")).unwrap_or_default(),
            shard.map(|s| format!(" of shard {s}")).unwrap_or_default(),
            if *kind == crate::scenario::raw::MaintenanceKind::Migrate { String::new() } else { format!(" with {} notice", format_duration(*notice)) },
            if *announce { ", announced" } else { ", not announced (baseline)" }
        ),
        FaultAction::Notify { messages, notice } => {
            format!("notify {} ({} apart)", messages.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "), format_duration(*notice))
        }
    }
}

/// `node 0`, or `every node`.
fn nodes_text(node: Option<u32>) -> String {
    node.map_or_else(|| "every node".to_owned(), |n| format!("node {n}"))
}

fn native() -> String {
    "native".into()
}

/// How plans and reports name a client: `native`, or `redis-rs 1.8.1`.
pub fn client_label(client: crate::scenario::raw::Client) -> String {
    match client {
        crate::scenario::raw::Client::Native => native(),
        crate::scenario::raw::Client::RedisRs => format!("redis-rs {}", crate::client::redis_rs::VERSION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(workers: (u32, u32), rate: Option<(f64, f64)>, secs: u64) -> PlannedPhase {
        PlannedPhase {
            name: "p".into(),
            kind: None,
            start: Duration::ZERO,
            duration: Duration::from_secs(secs),
            workers: Ramp { from: workers.0, to: workers.1 },
            rate: rate.map(|(from, to)| Ramp { from, to }),
            mix: vec![],
        }
    }

    #[test]
    fn the_schedules_integral_counts_exactly_the_operations_op_time_starts() {
        for (rate, secs) in [((1000.0, 1000.0), 3), ((0.0, 500.0), 4), ((800.0, 100.0), 2), ((3.5, 3.5), 2)] {
            let p = phase((1, 1), Some(rate), secs);
            let total = p.total_ops().unwrap();
            assert!(p.op_time(total - 1).is_some() && p.op_time(total).is_none(), "{rate:?}: {total}");
            for n in [0, 1, total / 2, total - 1] {
                let t = p.op_time(n).unwrap();
                assert!(p.ops_due(t).unwrap() > n, "{rate:?}: operation {n} at {t:?} is due by then");
                if let Some(before) = t.checked_sub(Duration::from_micros(50)) {
                    assert!(p.ops_due(before).unwrap() <= n, "{rate:?}: operation {n} is not due before {t:?}");
                }
            }
        }
        // Any rate: an astronomically large one is counted, not iterated.
        let huge = phase((1, 1), Some((1e300, 1e300)), 1);
        assert_eq!(huge.total_ops(), Some(u64::MAX));
        assert_eq!(huge.ops_due(Duration::from_millis(1)), Some(u64::MAX));
    }

    #[test]
    fn worker_ramps_hit_their_edges() {
        let cases = [
            // (from, to, duration s, at ms, expected workers)
            (1, 11, 10, 0, 1),
            (1, 11, 10, 5_000, 6),
            (1, 11, 10, 10_000, 11),
            (1, 11, 10, 20_000, 11),
            (10, 2, 8, 4_000, 6),
            (5, 5, 1, 500, 5),
        ];
        for (from, to, secs, at, want) in cases {
            let p = phase((from, to), None, secs);
            assert_eq!(p.workers_at(Duration::from_millis(at)), want, "{from}→{to} at {at}ms");
        }
    }

    #[test]
    fn rate_ramps_and_their_integral() {
        let p = phase((1, 1), Some((1000.0, 3000.0)), 10);
        assert_eq!(p.rate_at(Duration::ZERO), Some(1000.0));
        assert_eq!(p.rate_at(Duration::from_secs(5)), Some(2000.0));
        assert_eq!(p.rate_at(Duration::from_secs(10)), Some(3000.0));
        assert_eq!(p.scheduled_ops(Duration::from_secs(10)), Some(20_000.0));
        assert_eq!(p.scheduled_ops(Duration::from_secs(5)), Some(7_500.0));
        assert_eq!(phase((1, 1), None, 10).rate_at(Duration::ZERO), None);
    }

    #[test]
    fn op_times_invert_the_schedule() {
        let cases = [
            // (from, to, secs, n, expected seconds)
            (1000.0, 1000.0, 10, 0u64, Some(0.0)),
            (1000.0, 1000.0, 10, 500, Some(0.5)),
            (1000.0, 1000.0, 10, 10_000, None),
            (1000.0, 3000.0, 10, 7_500, Some(5.0)),
            (1000.0, 3000.0, 10, 19_999, Some(9.9995)),
            (0.0, 2000.0, 10, 2_500, Some(5.0)),
            (3000.0, 1000.0, 10, 12_500, Some(5.0)),
        ];
        for (from, to, secs, n, want) in cases {
            let p = phase((1, 1), Some((from, to)), secs);
            let got = p.op_time(n).map(|d| d.as_secs_f64());
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-3, "{from}→{to} n={n}: {g} vs {w}"),
                (g, w) => assert_eq!(g.is_some(), w.is_some(), "{from}→{to} n={n}: {g:?} vs {w:?}"),
            }
        }
        assert_eq!(phase((1, 1), None, 10).op_time(0), None);
    }

    #[test]
    fn worker_windows_follow_the_ramp() {
        let ms = |x: u64| Duration::from_millis(x);
        let cases = [
            // (from, to, worker, expected window in ms)
            (4, 4, 3, Some((0, 10_000))),
            (4, 4, 4, None),
            (1, 11, 0, Some((0, 10_000))),
            (1, 11, 5, Some((4_500, 10_000))),
            (1, 11, 10, Some((9_500, 10_000))),
            (1, 11, 11, None),
            (10, 2, 1, Some((0, 10_000))),
            (10, 2, 5, Some((0, 5_625))),
            (10, 2, 9, Some((0, 625))),
        ];
        for (from, to, w, want) in cases {
            let p = phase((from, to), None, 10);
            let got = p.active_window(w);
            assert_eq!(got, want.map(|(a, b)| (ms(a), ms(b))), "{from}→{to} worker {w}");
            if let Some((a, b)) = got {
                // Inside the window the ramp counts this worker; just outside it does not.
                let mid = (a + b) / 2;
                assert!(p.workers_at(mid) > w, "{from}→{to} worker {w} at {mid:?}");
            }
        }
    }

    #[test]
    fn mixes_normalise_to_percentages() {
        type Case<'a> = (&'a [(&'a str, f64)], &'a [f64]);
        let cases: [Case; 3] = [
            (&[("a", 1.0), ("b", 1.0)], &[50.0, 50.0]),
            (&[("a", 3.0), ("b", 1.0)], &[75.0, 25.0]),
            (&[("a", 1.0), ("b", 1.0), ("c", 1.0)], &[33.33, 33.33, 33.33]),
        ];
        for (weights, want) in cases {
            let got: Vec<f64> = percentages(weights.iter().copied()).iter().map(|s| s.percent).collect();
            assert_eq!(got, want);
        }
    }
}
