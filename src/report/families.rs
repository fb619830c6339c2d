//! The exported metrics as of now, as plain data: one family per [`crate::metrics::METRICS`]
//! entry, each with its labelled points. Prometheus and OTLP both render this one snapshot, so
//! the two exporters cannot drift apart.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;
use tokio::sync::watch;

use crate::live::Live;
use crate::metrics::{BUCKETS_S, COMMON_LABELS, MetricDef, RunMetrics, metric};
use crate::plan::Plan;

/// Values of the labels every metric carries.
#[derive(Debug, Clone)]
pub struct CommonLabels {
    /// app_name.
    pub app_name: String,
    /// instance_id.
    pub instance_id: String,
    /// run_id.
    pub run_id: String,
    /// version.
    pub version: String,
}

impl CommonLabels {
    /// The labels as `(name, value)` pairs, in [`COMMON_LABELS`] order.
    pub fn pairs(&self) -> [(&'static str, String); 4] {
        [
            (COMMON_LABELS[0], self.app_name.clone()),
            (COMMON_LABELS[1], self.instance_id.clone()),
            (COMMON_LABELS[2], self.run_id.clone()),
            (COMMON_LABELS[3], self.version.clone()),
        ]
    }
}

/// A histogram in seconds with the export buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// Observations at or below each bound of [`BUCKETS_S`], cumulative.
    pub cumulative: Vec<u64>,
    /// All observations.
    pub count: u64,
    /// Sum of observations, seconds.
    pub sum: f64,
}

impl Buckets {
    /// From a microsecond HDR histogram.
    pub fn of(h: &Histogram<u64>) -> Buckets {
        let cumulative = BUCKETS_S.iter().map(|b| if h.is_empty() { 0 } else { h.count_between(0, (b * 1e6) as u64) }).collect();
        Buckets { cumulative, count: h.len(), sum: h.mean() * h.len() as f64 / 1e6 }
    }
}

/// One labelled value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A counter or gauge value.
    Number(f64),
    /// A histogram.
    Histogram(Buckets),
}

/// One point of a family: its own labels (the common ones are added by the renderers) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Labels in the family's declared order.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: Value,
}

/// All points of one metric.
#[derive(Debug, Clone)]
pub struct Family {
    /// The declaration.
    pub def: &'static MetricDef,
    /// The points.
    pub points: Vec<Point>,
}

/// What snapshots are taken from.
pub struct Source {
    /// The plan (phase names).
    pub plan: Plan,
    /// The run's recorders.
    pub metrics: Arc<RunMetrics>,
    /// The live status.
    pub live: watch::Receiver<Live>,
    /// Common labels.
    pub labels: CommonLabels,
}

fn family(name: &str, points: Vec<Point>) -> Family {
    Family { def: metric(name), points }
}

fn number(labels: Vec<(&'static str, String)>, v: f64) -> Point {
    Point { labels, value: Value::Number(v) }
}

/// Takes a snapshot of every exported metric.
pub fn snapshot(src: &Source) -> Vec<Family> {
    let live = src.live.borrow().clone();
    let rows = src.metrics.merged();
    // Operations summed over phases: a dashboard follows an operation through the whole run.
    let mut by_op: std::collections::BTreeMap<(u16, u16), crate::metrics::OpStats> = std::collections::BTreeMap::new();
    for (k, s) in &rows {
        by_op.entry((k.workload, k.op)).or_default().merge(s);
    }
    let name_of = |wi: u16, op: u16| -> (String, String) {
        live.workloads
            .get(wi as usize)
            .map_or_else(|| (wi.to_string(), op.to_string()), |(w, ops)| (w.clone(), ops.get(op as usize).copied().unwrap_or("?").to_owned()))
    };
    let conns = &src.metrics.conns;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut network_errors = load(&conns.connect_errors);
    let mut ops = Vec::new();
    let mut retries = Vec::new();
    let mut durations = Vec::new();
    for ((wi, op), s) in &by_op {
        let (workload, operation) = name_of(*wi, *op);
        let base = |status: &str, error: &str| {
            vec![("operation", operation.clone()), ("workload", workload.clone()), ("status", status.to_owned()), ("error_type", error.to_owned())]
        };
        ops.push(number(base("success", ""), s.ok as f64));
        for (class, n) in &s.errors {
            ops.push(number(base("error", class), *n as f64));
            if matches!(*class, "timeout" | "connection") {
                network_errors += n;
            }
        }
        if s.retries > 0 {
            retries.push(number(vec![("operation", operation.clone()), ("workload", workload.clone())], s.retries as f64));
        }
        if s.timed() {
            durations.push(Point {
                labels: vec![("operation", operation.clone()), ("workload", workload.clone())],
                value: Value::Histogram(Buckets::of(&s.latency)),
            });
        }
    }
    let mut pubsub = Vec::new();
    for ps in &live.pubsub {
        let labels = |channel: &str, kind: &str, sub: &str, status: &str, error: &str| {
            vec![
                ("workload", ps.workload.clone()),
                ("channel", channel.to_owned()),
                ("operation_type", kind.to_owned()),
                ("subscriber_id", sub.to_owned()),
                ("status", status.to_owned()),
                ("error_type", error.to_owned()),
            ]
        };
        for (channel, acked, failed) in &ps.channels {
            pubsub.push(number(labels(channel, "PUBLISH", "", "success", ""), *acked as f64));
            if *failed > 0 {
                pubsub.push(number(labels(channel, "PUBLISH", "", "error", "publish_failed"), *failed as f64));
            }
        }
        for (id, n) in ps.received.iter().enumerate() {
            pubsub.push(number(labels("*", "RECEIVE", &id.to_string(), "success", ""), *n as f64));
        }
    }
    let (mut entries, mut pending, mut lag) = (Vec::new(), Vec::new(), Vec::new());
    for st in &live.streams {
        let labels = || vec![("workload", st.workload.clone()), ("stream", st.stream.clone())];
        for (state, n) in [("produced", st.produced), ("delivered", st.delivered), ("claimed", st.claimed), ("duplicated", st.duplicated)] {
            let mut l = labels();
            l.push(("state", state.to_owned()));
            entries.push(number(l, n as f64));
        }
        pending.push(number(labels(), st.pending as f64));
        lag.push(number(labels(), st.lag as f64));
    }
    let mut maintenance = Vec::new();
    if let Some(m) = &live.maintenance {
        let kinds = m.received.iter().map(|(k, n)| number(vec![("kind", k.clone())], *n as f64)).collect();
        maintenance.push(family("redis_maintenance_notifications_total", kinds));
        maintenance.push(family("redis_maintenance_relaxed_windows_total", vec![number(vec![], m.relaxed_windows as f64)]));
        maintenance.push(family("redis_maintenance_handoffs_total", vec![number(vec![], m.handoffs as f64)]));
        if let Some(s) = m.longest_handoff_s {
            maintenance.push(family("redis_maintenance_handoff_seconds", vec![number(vec![], s)]));
        }
    }
    let achieved = live.interval.as_ref().map_or(0.0, |iv| if live.interval_secs > 0.0 { iv.ops as f64 / live.interval_secs } else { 0.0 });
    let hist = |h: &std::sync::Mutex<Histogram<u64>>| vec![Point { labels: vec![], value: Value::Histogram(Buckets::of(&h.lock().expect("conn lock"))) }];
    vec![
        family("redis_operations_total", ops),
        family("redis_operation_retries_total", retries),
        family("redis_operation_duration", durations),
        family("redis_client_init_duration", hist(&conns.connect_time)),
        family("redis_pubsub_operations_total", pubsub),
        family("redis_stream_entries_total", entries),
        family("redis_stream_pending", pending),
        family("redis_stream_lag", lag),
        family("redis_connections_active", vec![number(vec![], f64::from(live.connections))]),
        family("redis_connections_opened_total", vec![number(vec![], load(&conns.opened) as f64)]),
        family("redis_connection_drops_total", vec![number(vec![], load(&conns.dropped) as f64)]),
        family("redis_reconnects_total", vec![number(vec![], load(&conns.reconnects) as f64)]),
        family("redis_reconnect_duration", hist(&conns.reconnect_time)),
        family("redis_network_errors_total", vec![number(vec![], network_errors as f64)]),
        family(
            "redis_cluster_redirects_total",
            crate::metrics::CLUSTER_REPLIES.iter().zip(&conns.cluster_replies).map(|(c, n)| number(vec![("class", c.to_string())], load(n) as f64)).collect(),
        ),
        family("redis_cluster_topology_refreshes_total", vec![number(vec![], load(&conns.topology_refreshes) as f64)]),
        family(
            "redis_test_phase",
            src.plan.phases.iter().enumerate().map(|(i, p)| number(vec![("phase", p.name.clone())], if live.phase == Some(i) { 1.0 } else { 0.0 })).collect(),
        ),
        family("redis_test_target_rate", vec![number(vec![], live.target_rate.unwrap_or(0.0))]),
        family("redis_test_achieved_rate", vec![number(vec![], achieved)]),
    ]
    .into_iter()
    .chain(maintenance)
    // A counter the client keeps to itself is left out, not exported as 0.
    .filter(|f| !hidden_by_client(f.def.name, conns))
    .collect()
}

/// Whether family `name` carries a counter the client hides (redis-rs on clusters).
fn hidden_by_client(name: &str, conns: &crate::metrics::ConnCounters) -> bool {
    let counter = match name {
        "redis_connection_drops_total" => "dropped",
        "redis_reconnects_total" | "redis_reconnect_duration" => "reconnects",
        "redis_cluster_redirects_total" => "cluster_redirects",
        "redis_cluster_topology_refreshes_total" => "topology_refreshes",
        _ => return false,
    };
    conns.is_hidden(counter)
}
