//! Prometheus `/metrics` in the text exposition format, served during the run (and for `--linger`
//! after it). Values are read from the run's recorders and live status at scrape time; the metric
//! names, help texts and labels come from [`crate::metrics::METRICS`].

use std::fmt::Write as _;
use std::sync::Arc;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::executor::Live;
use crate::metrics::{BUCKETS_S, COMMON_LABELS, MetricKind, RunMetrics, metric};
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
    pub fn pairs(&self) -> [(&'static str, &str); 4] {
        [(COMMON_LABELS[0], &self.app_name), (COMMON_LABELS[1], &self.instance_id), (COMMON_LABELS[2], &self.run_id), (COMMON_LABELS[3], &self.version)]
    }
}

/// What the endpoint reads.
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

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

struct Writer<'a> {
    out: String,
    common: &'a CommonLabels,
}

impl Writer<'_> {
    fn header(&mut self, name: &str) {
        let def = metric(name);
        let kind = match def.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        let _ = writeln!(self.out, "# HELP {name} {}\n# TYPE {name} {kind}", def.help);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(self.common.pairs()) {
            if !first {
                self.out.push(',');
            }
            first = false;
            let _ = write!(self.out, "{k}=\"{}\"", escape(v));
        }
        let _ = writeln!(self.out, "}} {value}");
    }

    /// A histogram from microsecond HDR data, in seconds with [`BUCKETS_S`].
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram<u64>) {
        for b in BUCKETS_S {
            let le = b.to_string();
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            let count = if h.is_empty() { 0 } else { h.count_between(0, (b * 1e6) as u64) };
            self.sample(&format!("{name}_bucket"), &with_le, count as f64);
        }
        let mut inf = labels.to_vec();
        inf.push(("le", "+Inf"));
        self.sample(&format!("{name}_bucket"), &inf, h.len() as f64);
        let sum = h.mean() * h.len() as f64 / 1e6;
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, h.len() as f64);
    }
}

/// The exposition text as of now.
pub fn render(src: &Source) -> String {
    let live = src.live.borrow().clone();
    let rows = src.metrics.merged();
    let mut w = Writer { out: String::with_capacity(16 * 1024), common: &src.labels };
    // Operations summed over phases: a dashboard follows an operation through the whole run.
    let mut by_op: std::collections::BTreeMap<(u16, u16), crate::metrics::OpStats> = std::collections::BTreeMap::new();
    for (k, s) in &rows {
        by_op.entry((k.workload, k.op)).or_default().merge(s);
    }
    let name_of = |wi: u16, op: u16| -> (String, String) {
        live.workloads.get(wi as usize).map_or_else(|| (wi.to_string(), op.to_string()), |(w, ops)| (w.clone(), ops.get(op as usize).copied().unwrap_or("?").to_owned()))
    };
    let mut network_errors = src.metrics.conns.connect_errors.load(std::sync::atomic::Ordering::Relaxed);
    w.header("redis_operations_total");
    for ((wi, op), s) in &by_op {
        let (wname, opname) = name_of(*wi, *op);
        w.sample("redis_operations_total", &[("operation", &opname), ("workload", &wname), ("status", "success"), ("error_type", "")], s.ok as f64);
        for (class, n) in &s.errors {
            w.sample("redis_operations_total", &[("operation", &opname), ("workload", &wname), ("status", "error"), ("error_type", class)], *n as f64);
            if matches!(*class, "timeout" | "connection") {
                network_errors += n;
            }
        }
    }
    w.header("redis_operation_duration");
    for ((wi, op), s) in &by_op {
        if s.timed() {
            let (wname, opname) = name_of(*wi, *op);
            w.histogram("redis_operation_duration", &[("operation", &opname), ("workload", &wname)], &s.latency);
        }
    }
    let conns = &src.metrics.conns;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
    w.header("redis_client_init_duration");
    w.histogram("redis_client_init_duration", &[], &conns.connect_time.lock().expect("conn lock"));
    w.header("redis_pubsub_operations_total");
    for ps in &live.pubsub {
        for (channel, acked, failed) in &ps.channels {
            w.sample("redis_pubsub_operations_total", &[("workload", &ps.workload), ("channel", channel), ("operation_type", "PUBLISH"), ("subscriber_id", ""), ("status", "success"), ("error_type", "")], *acked as f64);
            if *failed > 0 {
                w.sample("redis_pubsub_operations_total", &[("workload", &ps.workload), ("channel", channel), ("operation_type", "PUBLISH"), ("subscriber_id", ""), ("status", "error"), ("error_type", "publish_failed")], *failed as f64);
            }
        }
        for (id, n) in ps.received.iter().enumerate() {
            let id = id.to_string();
            w.sample("redis_pubsub_operations_total", &[("workload", &ps.workload), ("channel", "*"), ("operation_type", "RECEIVE"), ("subscriber_id", &id), ("status", "success"), ("error_type", "")], *n as f64);
        }
    }
    w.header("redis_connections_active");
    w.sample("redis_connections_active", &[], f64::from(live.connections));
    w.header("redis_connections_opened_total");
    w.sample("redis_connections_opened_total", &[], load(&conns.opened));
    w.header("redis_connection_drops_total");
    w.sample("redis_connection_drops_total", &[], load(&conns.dropped));
    w.header("redis_reconnects_total");
    w.sample("redis_reconnects_total", &[], load(&conns.reconnects));
    w.header("redis_reconnect_duration");
    w.histogram("redis_reconnect_duration", &[], &conns.reconnect_time.lock().expect("conn lock"));
    w.header("redis_network_errors_total");
    w.sample("redis_network_errors_total", &[], network_errors as f64);
    w.header("redis_test_phase");
    for (i, p) in src.plan.phases.iter().enumerate() {
        w.sample("redis_test_phase", &[("phase", &p.name)], if live.phase == Some(i) { 1.0 } else { 0.0 });
    }
    w.header("redis_test_target_rate");
    w.sample("redis_test_target_rate", &[], live.target_rate.unwrap_or(0.0));
    w.header("redis_test_achieved_rate");
    let achieved = live.interval.as_ref().map_or(0.0, |iv| if live.interval_secs > 0.0 { iv.ops as f64 / live.interval_secs } else { 0.0 });
    w.sample("redis_test_achieved_rate", &[], achieved);
    w.out
}

/// Serves `GET /metrics` until `stop` turns true. Each connection gets one response and is closed.
pub async fn serve(listener: TcpListener, src: Arc<Source>, mut stop: watch::Receiver<bool>) {
    loop {
        let (mut sock, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(_) => continue,
            },
            _ = stop.changed() => return,
        };
        let src = Arc::clone(&src);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut used = 0;
            // Read the request head (bounded in size and time); only the request line matters.
            let head = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while used < buf.len() {
                    let n = sock.read(&mut buf[used..]).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    used += n;
                    if buf[..used].windows(4).any(|w| w == b"\r\n\r\n") {
                        return Some(());
                    }
                }
                None
            })
            .await;
            if !matches!(head, Ok(Some(()))) {
                return;
            }
            let line = String::from_utf8_lossy(&buf[..used]).lines().next().unwrap_or_default().to_owned();
            let (status, body, ctype) = if line.starts_with("GET /metrics ") || line.starts_with("GET /metrics?") {
                ("200 OK", render(&src), "text/plain; version=0.0.4; charset=utf-8")
            } else {
                ("404 Not Found", "only /metrics is served here\n".to_owned(), "text/plain; charset=utf-8")
            };
            let response = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = sock.write_all(response.as_bytes()).await;
            let _ = sock.shutdown().await;
        });
    }
}
