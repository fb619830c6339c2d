//! OTLP push: the same metric families as Prometheus, sent every `interval` over gRPC or
//! HTTP/protobuf, plus optional sampled spans per operation, and a final flush at the end.
//!
//! Exporting never hurts the run: it happens on its own task, every send is bounded in time, a
//! failure is logged once per kind and counted, and the workers never wait for it.
//!
//! Transports the way collectors expect them: gRPC through tonic, HTTP/protobuf through hyper
//! ([`crate::http`]); `https://` endpoints verified against the system's roots or a CA file
//! (`certificate`, `OTEL_EXPORTER_OTLP_CERTIFICATE`); gzip when asked (`compression`,
//! `OTEL_EXPORTER_OTLP_COMPRESSION`); retryable answers (HTTP 429/502/503/504, gRPC UNAVAILABLE,
//! RESOURCE_EXHAUSTED, ABORTED, DEADLINE_EXCEEDED) retried with backoff within the send's time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1 as pm;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as pt;
use prost::Message;
use tokio::sync::{mpsc, watch};

use super::families::{Source, Value, snapshot};
use crate::metrics::{BUCKETS_S, MetricKind};
use crate::scenario::model::{OtlpProtocol, Scenario, Secret};

/// Where and how to export, after the scenario and the standard `OTEL_*` variables are combined.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// Collector base URL, e.g. `http://127.0.0.1:4317`.
    pub endpoint: String,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Request headers (values are secrets).
    pub headers: Vec<(String, Secret)>,
    /// Export period.
    pub interval: Duration,
    /// Resource attributes (service.name, service.version, …).
    pub resource: Vec<(String, String)>,
    /// Span sample ratio.
    pub traces: Option<f64>,
    /// Limit for one export.
    pub timeout: Duration,
    /// gzip the requests.
    pub gzip: bool,
    /// CA file to verify an https collector with (else the system's roots).
    pub certificate: Option<std::path::PathBuf>,
}

/// `k1=v1,k2=v2` as the OpenTelemetry environment variables write lists: keys and values are
/// percent-decoded (`Authorization=Basic%20…`).
fn pairs(text: &str) -> Vec<(String, String)> {
    use crate::http::percent_decode;
    text.split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k.trim()), percent_decode(v.trim())))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

impl OtlpConfig {
    /// The export settings, or `None` when neither the scenario nor `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// asks for OTLP. The environment wins over the file, as everywhere in redis-test.
    pub fn resolve(scenario: &Scenario, env: &dyn Fn(&str) -> Option<String>, run_id: &str, instance_id: &str) -> Option<Result<OtlpConfig, String>> {
        let file = scenario.metrics.otlp.as_ref();
        let env_endpoint = env("OTEL_EXPORTER_OTLP_ENDPOINT");
        if file.is_none() && env_endpoint.is_none() {
            return None;
        }
        let protocol = match env("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
            Some("grpc") => OtlpProtocol::Grpc,
            Some("http/protobuf") => OtlpProtocol::Http,
            Some(other) => return Some(Err(format!("OTEL_EXPORTER_OTLP_PROTOCOL `{other}` is not supported; use `grpc` or `http/protobuf`"))),
            None => file.map_or(OtlpProtocol::Grpc, |o| o.protocol),
        };
        let default = if protocol == OtlpProtocol::Grpc { "http://localhost:4317" } else { "http://localhost:4318" };
        let endpoint = env_endpoint.or_else(|| file.and_then(|o| o.endpoint.clone())).unwrap_or_else(|| default.to_owned());
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return Some(Err(format!("OTLP endpoint `{}`: an `http://` or `https://` URL", crate::http::redact(&endpoint))));
        }
        // `user:password@` in the endpoint is Basic auth, sent as a header and shown nowhere: the
        // endpoint kept (printed, logged) has no credentials left in it.
        let (endpoint, basic) = crate::http::split_credentials(&endpoint);
        let gzip = match env("OTEL_EXPORTER_OTLP_COMPRESSION").as_deref() {
            Some("gzip") => true,
            Some("none") => false,
            Some(other) => return Some(Err(format!("OTEL_EXPORTER_OTLP_COMPRESSION `{other}` is not supported; use `gzip` or `none`"))),
            None => file.and_then(|o| o.compression) == Some(crate::scenario::raw::OtlpCompression::Gzip),
        };
        let certificate = env("OTEL_EXPORTER_OTLP_CERTIFICATE").map(std::path::PathBuf::from).or_else(|| file.and_then(|o| o.certificate.clone()));
        // A CA that cannot be read is a mistake to fix before the run, not a failure to count in it.
        if let Some(path) = &certificate
            && let Err(e) = crate::http::client_config(Some(path))
        {
            return Some(Err(format!("OTLP certificate (certificate / OTEL_EXPORTER_OTLP_CERTIFICATE): {e}")));
        }
        let mut headers: Vec<(String, Secret)> = file.map(|o| o.headers.clone()).unwrap_or_default();
        for (k, v) in pairs(&env("OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default()) {
            headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(&k));
            headers.push((k, Secret::new(v)));
        }
        if let Some(basic) = basic.filter(|_| !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"))) {
            headers.push(("authorization".to_owned(), Secret::new(basic)));
        }
        let mut resource = vec![
            ("service.name".to_owned(), env("OTEL_SERVICE_NAME").unwrap_or_else(|| scenario.metrics.app_name.clone())),
            ("service.version".to_owned(), scenario.metrics.version.clone().unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned())),
            ("service.instance.id".to_owned(), instance_id.to_owned()),
            ("run_id".to_owned(), run_id.to_owned()),
            ("instance_id".to_owned(), instance_id.to_owned()),
        ];
        for (k, v) in pairs(&env("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default()) {
            resource.retain(|(rk, _)| *rk != k || k == "service.name" && env("OTEL_SERVICE_NAME").is_some());
            if !resource.iter().any(|(rk, _)| *rk == k) {
                resource.push((k, v));
            }
        }
        let interval = match env("OTEL_METRIC_EXPORT_INTERVAL") {
            Some(ms) => match ms.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => return Some(Err(format!("OTEL_METRIC_EXPORT_INTERVAL `{ms}` is not a positive number of milliseconds"))),
            },
            None => file.map_or(Duration::from_secs(10), |o| o.interval),
        };
        Some(Ok(OtlpConfig {
            endpoint,
            protocol,
            headers,
            interval,
            resource,
            traces: file.and_then(|o| o.traces),
            timeout: interval.min(Duration::from_secs(5)),
            gzip,
            certificate,
        }))
    }
}

/// How the export went, for the summary and report.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema, PartialEq)]
pub struct ExportStats {
    /// Successful exports (metrics and spans).
    pub exports: u64,
    /// Failed exports by kind of failure.
    pub failures: BTreeMap<String, u64>,
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.to_owned(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.to_owned())) }), ..Default::default() }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The metric families as an OTLP request (cumulative temporality).
pub fn metrics_request(src: &Source, cfg: &OtlpConfig, start_ns: u64) -> ExportMetricsServiceRequest {
    let now = now_ns();
    let common = src.labels.pairs();
    let attrs = |labels: &[(&str, String)]| -> Vec<KeyValue> { labels.iter().chain(common.iter()).map(|(k, v)| kv(k, v)).collect() };
    let metrics = snapshot(src)
        .into_iter()
        .map(|fam| {
            let numbers = || -> Vec<pm::NumberDataPoint> {
                fam.points
                    .iter()
                    .filter_map(|p| match &p.value {
                        Value::Number(v) => Some(pm::NumberDataPoint {
                            attributes: attrs(&p.labels),
                            start_time_unix_nano: start_ns,
                            time_unix_nano: now,
                            value: Some(pm::number_data_point::Value::AsDouble(*v)),
                            ..Default::default()
                        }),
                        Value::Histogram(_) => None,
                    })
                    .collect()
            };
            let data = match fam.def.kind {
                MetricKind::Counter => pm::metric::Data::Sum(pm::Sum {
                    data_points: numbers(),
                    aggregation_temporality: pm::AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                }),
                MetricKind::Gauge => pm::metric::Data::Gauge(pm::Gauge { data_points: numbers() }),
                MetricKind::Histogram => pm::metric::Data::Histogram(pm::Histogram {
                    data_points: fam
                        .points
                        .iter()
                        .filter_map(|p| match &p.value {
                            Value::Histogram(b) => {
                                // OTLP wants per-bucket counts, the last one open-ended.
                                let mut counts = Vec::with_capacity(b.cumulative.len() + 1);
                                let mut prev = 0;
                                for c in &b.cumulative {
                                    counts.push(c - prev);
                                    prev = *c;
                                }
                                counts.push(b.count - prev);
                                Some(pm::HistogramDataPoint {
                                    attributes: attrs(&p.labels),
                                    start_time_unix_nano: start_ns,
                                    time_unix_nano: now,
                                    count: b.count,
                                    sum: Some(b.sum),
                                    bucket_counts: counts,
                                    explicit_bounds: BUCKETS_S.to_vec(),
                                    ..Default::default()
                                })
                            }
                            Value::Number(_) => None,
                        })
                        .collect(),
                    aggregation_temporality: pm::AggregationTemporality::Cumulative as i32,
                }),
            };
            pm::Metric {
                name: fam.def.name.to_owned(),
                description: fam.def.help.to_owned(),
                unit: fam.def.unit.to_owned(),
                data: Some(data),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![pm::ResourceMetrics {
            resource: Some(Resource { attributes: cfg.resource.iter().map(|(k, v)| kv(k, v)).collect(), ..Default::default() }),
            scope_metrics: vec![pm::ScopeMetrics {
                scope: Some(InstrumentationScope { name: "redis-test".into(), version: env!("CARGO_PKG_VERSION").into(), ..Default::default() }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn spans_request(
    spans: Vec<crate::live::SpanRecord>,
    cfg: &OtlpConfig,
    workloads: &[(String, Vec<&'static str>)],
    server: (&str, u16),
) -> ExportTraceServiceRequest {
    let mut seed = now_ns();
    let mut id = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let spans = spans
        .into_iter()
        .map(|s| pt::Span {
            trace_id: id(16),
            span_id: id(8),
            name: s.operation.to_owned(),
            kind: pt::span::SpanKind::Client as i32,
            start_time_unix_nano: s.start_ns,
            end_time_unix_nano: s.end_ns,
            attributes: vec![
                kv("db.system.name", "redis"),
                kv("db.operation.name", s.operation),
                kv("server.address", server.0),
                KeyValue {
                    key: "server.port".into(),
                    value: Some(AnyValue { value: Some(any_value::Value::IntValue(i64::from(server.1))) }),
                    ..Default::default()
                },
                kv("redis_test.workload", workloads.get(s.workload as usize).map_or("?", |w| w.0.as_str())),
            ],
            status: Some(match s.error {
                Some(e) => pt::Status { message: e.to_owned(), code: pt::status::StatusCode::Error as i32 },
                None => pt::Status { message: String::new(), code: pt::status::StatusCode::Ok as i32 },
            }),
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![pt::ResourceSpans {
            resource: Some(Resource { attributes: cfg.resource.iter().map(|(k, v)| kv(k, v)).collect(), ..Default::default() }),
            scope_spans: vec![pt::ScopeSpans {
                scope: Some(InstrumentationScope { name: "redis-test".into(), ..Default::default() }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Sends requests over the configured transport.
struct Sender {
    cfg: OtlpConfig,
    channel: Option<tonic::transport::Channel>,
    http: Option<crate::http::Endpoint>,
    /// HTTP headers (the configured ones; values are secrets, never logged).
    headers: Vec<(String, String)>,
}

/// gRPC codes a collector uses for "try again" (the OTLP specification's retryable set).
fn retryable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable
            | tonic::Code::ResourceExhausted
            | tonic::Code::Aborted
            | tonic::Code::DeadlineExceeded
            | tonic::Code::Cancelled
            | tonic::Code::OutOfRange
            | tonic::Code::DataLoss
    )
}

impl Sender {
    fn new(cfg: OtlpConfig) -> Result<Sender, String> {
        let (channel, http) = match cfg.protocol {
            OtlpProtocol::Grpc => {
                let mut ep = tonic::transport::Endpoint::from_shared(cfg.endpoint.clone()).map_err(|e| format!("OTLP endpoint `{}`: {e}", cfg.endpoint))?;
                if cfg.endpoint.starts_with("https://") {
                    let tls = match &cfg.certificate {
                        Some(path) => {
                            let pem = std::fs::read(path).map_err(|e| format!("OTLP certificate {}: {e}", path.display()))?;
                            tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(pem))
                        }
                        None => tonic::transport::ClientTlsConfig::new().with_native_roots(),
                    };
                    ep = ep.tls_config(tls).map_err(|e| format!("OTLP TLS: {e}"))?;
                }
                (Some(ep.connect_timeout(cfg.timeout).timeout(cfg.timeout).connect_lazy()), None)
            }
            OtlpProtocol::Http => (None, Some(crate::http::Endpoint::parse(&cfg.endpoint, cfg.certificate.as_deref())?)),
        };
        let headers = cfg.headers.iter().map(|(k, v)| (k.clone(), v.expose().to_owned())).collect();
        Ok(Sender { cfg, channel, http, headers })
    }

    fn grpc_request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        for (k, v) in &self.cfg.headers {
            if let (Ok(k), Ok(v)) = (k.to_ascii_lowercase().parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>(), v.expose().parse()) {
                req.metadata_mut().insert(k, v);
            }
        }
        req
    }

    /// Runs a gRPC export, again while the collector answers with a retryable code (100 ms
    /// backoff, doubling), all within the export's time.
    async fn grpc_retrying<F, Fut, T>(&self, mut call: F) -> Result<(), String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = tokio::time::Instant::now() + self.cfg.timeout;
        let mut backoff = Duration::from_millis(100);
        loop {
            match tokio::time::timeout_at(deadline, call()).await {
                Err(_) => return Err("timed out".to_owned()),
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(s)) if retryable(s.code()) && tokio::time::Instant::now() + backoff < deadline => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Ok(Err(s)) => return Err(format!("gRPC status {:?}", s.code())),
            }
        }
    }

    async fn metrics(&self, req: ExportMetricsServiceRequest) -> Result<(), String> {
        match &self.channel {
            Some(ch) => {
                let mut client = MetricsServiceClient::new(ch.clone());
                if self.cfg.gzip {
                    client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                self.grpc_retrying(|| {
                    let mut c = client.clone();
                    let r = self.grpc_request(req.clone());
                    async move { c.export(r).await }
                })
                .await
            }
            None => self.http("/v1/metrics", &req.encode_to_vec()).await,
        }
    }

    async fn spans(&self, req: ExportTraceServiceRequest) -> Result<(), String> {
        match &self.channel {
            Some(ch) => {
                let mut client = TraceServiceClient::new(ch.clone());
                if self.cfg.gzip {
                    client = client.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                self.grpc_retrying(|| {
                    let mut c = client.clone();
                    let r = self.grpc_request(req.clone());
                    async move { c.export(r).await }
                })
                .await
            }
            None => self.http("/v1/traces", &req.encode_to_vec()).await,
        }
    }

    /// POSTs protobuf to `<endpoint><path>`.
    async fn http(&self, path: &str, body: &[u8]) -> Result<(), String> {
        let endpoint = self.http.as_ref().ok_or("no HTTP endpoint")?;
        let how = crate::http::Send {
            method: "POST",
            path,
            content_type: "application/x-protobuf",
            headers: &self.headers,
            gzip: self.cfg.gzip,
            timeout: self.cfg.timeout,
        };
        let answer = endpoint.send(&how, body).await?;
        if (200..300).contains(&answer.status) { Ok(()) } else { Err(format!("HTTP status {}", answer.status)) }
    }
}

/// Exports every `interval` until `stop`, then flushes once more. Returns what happened.
pub async fn run(
    cfg: OtlpConfig,
    src: Arc<Source>,
    mut spans: Option<mpsc::Receiver<crate::live::SpanRecord>>,
    server: (String, u16),
    mut stop: watch::Receiver<bool>,
) -> ExportStats {
    let mut stats = ExportStats::default();
    let sender = match Sender::new(cfg.clone()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "OTLP export disabled");
            // The reason goes into the summary too, not only the log: a CA file that is missing
            // or unreadable is a mistake the user fixes.
            *stats.failures.entry(format!("configuration: {e}")).or_default() += 1;
            return stats;
        }
    };
    let start_ns = now_ns();
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let last = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.changed() => true,
        };
        let pending: Vec<crate::live::SpanRecord> = match spans.as_mut() {
            Some(rx) => std::iter::from_fn(|| rx.try_recv().ok()).collect(),
            None => Vec::new(),
        };
        let result = sender.metrics(metrics_request(&src, &cfg, start_ns)).await;
        note(&mut stats, &cfg.endpoint, "metrics", result);
        if !pending.is_empty() {
            let workloads = src.live.borrow().workloads.clone();
            let result = sender.spans(spans_request(pending, &cfg, &workloads, (&server.0, server.1))).await;
            note(&mut stats, &cfg.endpoint, "spans", result);
        }
        if last {
            return stats;
        }
    }
}

/// Counts an export; logs the first failure of each kind only.
fn note(stats: &mut ExportStats, endpoint: &str, what: &str, result: Result<(), String>) {
    match result {
        Ok(()) => stats.exports += 1,
        Err(kind) => {
            let key = format!("{what}: {kind}");
            let n = stats.failures.entry(key.clone()).or_default();
            if *n == 0 {
                tracing::warn!(endpoint, failure = %kind, "OTLP {what} export failed; the run goes on, further failures of this kind are only counted");
            }
            *n += 1;
        }
    }
}
