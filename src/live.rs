//! What a run publishes while it runs, for whoever watches: the once-a-second status (progress
//! display, Prometheus, OTLP) and sampled operations (OTLP spans). The executor writes these; the
//! reporters read them; neither depends on the other for them.

use std::sync::Arc;
use std::time::Duration;

/// The run as it stands, published once a second for live displays and exporters.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Time since the start of the run.
    pub elapsed: Duration,
    /// Index of the running phase (`None` after the last one).
    pub phase: Option<usize>,
    /// The last interval's totals.
    pub interval: Option<crate::metrics::IntervalStats>,
    /// Length of the last interval.
    pub interval_secs: f64,
    /// Operations so far.
    pub total_ops: u64,
    /// Failed operations so far.
    pub total_errors: u64,
    /// Workers the plan runs now.
    pub workers: u32,
    /// Open pooled connections.
    pub connections: u32,
    /// Target rate now (ops/s), `None` in closed loop.
    pub target_rate: Option<f64>,
    /// Workload names and their operation names, by index (for exporters).
    pub workloads: Arc<Vec<(String, Vec<&'static str>)>>,
    /// Pub/sub counters per workload.
    pub pubsub: Vec<PubsubLive>,
    /// Stream figures per stream.
    pub streams: Vec<StreamLive>,
    /// What the client did with maintenance notifications so far (native client, when it asks).
    pub maintenance: Option<MaintenanceLive>,
}

/// Live maintenance-notification figures of the client.
#[derive(Debug, Clone, Default)]
pub struct MaintenanceLive {
    /// Messages received, by kind.
    pub received: Vec<(String, u64)>,
    /// Relaxed windows opened.
    pub relaxed_windows: u64,
    /// MOVING notices acted on.
    pub handoffs: u64,
    /// The longest finished handoff, seconds (MOVING to the last old connection closed).
    pub longest_handoff_s: Option<f64>,
}

/// Live figures of one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamLive {
    /// Workload name.
    pub workload: String,
    /// The stream's key.
    pub stream: String,
    /// Entries added, delivered, claimed and delivered again so far.
    pub produced: u64,
    /// Distinct entries delivered.
    pub delivered: u64,
    /// Entries claimed.
    pub claimed: u64,
    /// Deliveries of entries already delivered.
    pub duplicated: u64,
    /// The group's pending entries at the last sample.
    pub pending: u64,
    /// The group's lag at the last sample.
    pub lag: u64,
}

/// Live pub/sub counters of one workload.
#[derive(Debug, Clone, Default)]
pub struct PubsubLive {
    /// Workload name.
    pub workload: String,
    /// Per channel: name, PUBLISH acknowledged, PUBLISH failed.
    pub channels: Vec<(String, u64, u64)>,
    /// Per subscriber: messages received.
    pub received: Vec<u64>,
}

/// A sampled operation, for a span.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    /// Operation name (`GET`, `PIPELINE`, …).
    pub operation: &'static str,
    /// Workload index.
    pub workload: u16,
    /// Start, ns since the Unix epoch.
    pub start_ns: u64,
    /// End, ns since the Unix epoch.
    pub end_ns: u64,
    /// Error class, if it failed.
    pub error: Option<&'static str>,
}
