//! OTLP export received by a real receiver (oteltest's gRPC and HTTP sinks, the library behind
//! `otelsink`): metrics with the original names and labels, resource attributes, sampled spans
//! with database attributes, the standard `OTEL_*` variables — and a receiver that dies mid-run
//! changing nothing about the run.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{RedisServer, read_report, repo, run_in, scratch};
use serde_json::Value;

/// The receiver process; its JSON lines arrive on `lines`.
struct Receiver {
    child: Child,
    grpc: u16,
    http: u16,
    /// With TLS (`Receiver::with_tls`): gRPC over TLS, and HTTPS decoding gzip.
    tls: Option<(u16, u16)>,
    lines: mpsc::Receiver<Value>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Receiver {
    fn start() -> Receiver {
        Self::launch(None)
    }

    /// Also listening with TLS, on the certificate and key in `certs`.
    fn with_tls(certs: &common::Certs) -> Receiver {
        Self::launch(Some(certs))
    }

    fn launch(certs: Option<&common::Certs>) -> Receiver {
        let (grpc, http) = (free_port(), free_port());
        let tls = certs.map(|_| (free_port(), free_port()));
        let mut args = vec![grpc.to_string(), http.to_string()];
        if let (Some(c), Some((g, h))) = (certs, tls) {
            args.extend([c.path("server.crt"), c.path("server.key"), g.to_string(), h.to_string()]);
        }
        let mut child = Command::new("python3")
            .arg(repo().join("tests/otlp_receiver.py"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if line == "ready" {
                    let _ = ready_tx.send(());
                } else if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        ready_rx.recv_timeout(Duration::from_secs(30)).expect("the OTLP receiver started (pip package oteltest)");
        Receiver { child, grpc, http, tls, lines: rx }
    }

    /// The next `n` requests the receiver reports (each waited for as an event, 10 s at most).
    fn take(&self, n: u64) -> Vec<Value> {
        (0..n).map(|i| self.lines.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("request {} of {n} never arrived", i + 1))).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn attr<'a>(attrs: &'a Value, key: &str) -> Option<&'a Value> {
    attrs.as_array()?.iter().find(|a| a["key"] == key).map(|a| &a["value"])
}

fn metric_names(req: &Value) -> Vec<String> {
    req["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_owned()).collect()
}

const SCENARIO: &str = "name: otlp\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 3s, workers: 2, rate: 300}]\nmetrics:\n  labels: {instance_id: loadgen-7}\n";

fn check_metrics(received: &[Value], run_id: &str, service: &str) {
    let metrics: Vec<&Value> = received.iter().filter(|v| v["kind"] == "metrics").collect();
    assert!(metrics.len() >= 2, "periodic exports plus the final flush: {}", metrics.len());
    let last = &metrics.last().unwrap()["request"];
    let names = metric_names(last);
    for n in [
        "redis_operations_total",
        "redis_operation_duration",
        "redis_client_init_duration",
        "redis_pubsub_operations_total",
        "redis_connections_active",
        "redis_reconnects_total",
        "redis_network_errors_total",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    let resource = &last["resourceMetrics"][0]["resource"]["attributes"];
    assert_eq!(attr(resource, "service.name").unwrap()["stringValue"], service);
    assert!(attr(resource, "service.version").is_some());
    assert_eq!(attr(resource, "run_id").unwrap()["stringValue"], run_id);
    assert_eq!(attr(resource, "instance_id").unwrap()["stringValue"], "loadgen-7");
    let ops = last["resourceMetrics"][0]["scopeMetrics"][0]["metrics"].as_array().unwrap().iter().find(|m| m["name"] == "redis_operations_total").unwrap();
    let get = ops["sum"]["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| attr(&p["attributes"], "operation").unwrap()["stringValue"] == "GET" && attr(&p["attributes"], "status").unwrap()["stringValue"] == "success")
        .expect("a GET success point");
    assert_eq!(attr(&get["attributes"], "run_id").unwrap()["stringValue"], run_id);
    assert!(get["asDouble"].as_f64().unwrap() > 100.0, "{get}");
}

#[test]
fn grpc_and_http_receivers_get_the_metrics_labels_and_spans() {
    let server = RedisServer::start(&[]);
    let recv = Receiver::start();
    let dir = scratch("otlp");
    std::fs::write(
        dir.join("grpc.yaml"),
        format!(
            "{SCENARIO}  otlp: {{endpoint: \"http://127.0.0.1:{}\", protocol: grpc, interval: 1s, traces: 0.1, headers: {{x-api-token: tok-5ecret}}}}\n",
            recv.grpc
        ),
    )
    .unwrap();
    let out = run_in(&dir, &["apply", "grpc.yaml", "--target", &server.url(), "--run-id", "otlp-grpc", "--json", "g.json"], &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("g.json"));
    let got = recv.take(report["otlp"]["exports"].as_u64().unwrap());
    check_metrics(&got, "otlp-grpc", "redis-test");
    let metrics = got.iter().find(|v| v["kind"] == "metrics").unwrap();
    assert_eq!(metrics["headers"]["x-api-token"], "tok-5ecret", "the header reached the collector");
    let spans: Vec<&Value> =
        got.iter().filter(|v| v["kind"] == "trace").flat_map(|v| v["request"]["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap()).collect();
    assert!(spans.len() > 20, "10% of ~900 operations sampled, got {}", spans.len());
    let s = spans[0];
    assert_eq!(attr(&s["attributes"], "db.system.name").unwrap()["stringValue"], "redis");
    assert!(attr(&s["attributes"], "db.operation.name").is_some());
    assert_eq!(attr(&s["attributes"], "server.address").unwrap()["stringValue"], "127.0.0.1");
    assert!(report["otlp"]["exports"].as_u64().unwrap() >= 3);
    assert!(!out.all().contains("tok-5ecret") && !std::fs::read_to_string(dir.join("g.json")).unwrap().contains("tok-5ecret"), "the token leaked");

    // HTTP/protobuf, configured only through the standard environment variables.
    std::fs::write(dir.join("env.yaml"), SCENARIO).unwrap();
    let endpoint = format!("http://127.0.0.1:{}", recv.http);
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-token=tok-h77p"),
        ("OTEL_SERVICE_NAME", "nightly-loadgen"),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=ci,team=clients"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
    ];
    let out = run_in(&dir, &["apply", "env.yaml", "--target", &server.url(), "--run-id", "otlp-http", "--json", "h.json"], &env, Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.all());
    let got = recv.take(read_report(&dir.join("h.json"))["otlp"]["exports"].as_u64().unwrap());
    check_metrics(&got, "otlp-http", "nightly-loadgen");
    let last = got.iter().rev().find(|v| v["kind"] == "metrics").unwrap();
    let resource = &last["request"]["resourceMetrics"][0]["resource"]["attributes"];
    assert_eq!(attr(resource, "deployment.environment").unwrap()["stringValue"], "ci");
    assert_eq!(last["headers"]["x-api-token"], "tok-h77p");
    assert!(!out.all().contains("tok-h77p"));
}

#[test]
fn a_receiver_that_dies_mid_run_changes_nothing_about_the_run() {
    let server = RedisServer::start(&[]);
    let recv = Receiver::start();
    let dir = scratch("otlp-dies");
    std::fs::write(
        dir.join("d.yaml"),
        format!("name: d\ntarget: {{url: redis://x}}\nworkloads: {{w: {{kind: basic}}}}\nphases: [{{name: p, duration: 4s, workers: 4, rate: 500}}]\nmetrics:\n  otlp: {{endpoint: \"http://127.0.0.1:{}\", interval: 500ms}}\n", recv.grpc),
    )
    .unwrap();
    let child = common::spawn(&dir, &["apply", "d.yaml", "--target", &server.url(), "--json", "d.json"], &[]);
    // The first export arriving is the event; then the receiver goes away for good.
    let first = recv.lines.recv_timeout(Duration::from_secs(20)).expect("a first export arrived");
    assert_eq!(first["kind"], "metrics");
    drop(recv);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report = read_report(&dir.join("d.json"));
    let count = report["phases"][0]["count"].as_u64().unwrap();
    assert!((1960..=2040).contains(&count), "500/s for 4 s gave {count} operations");
    assert_eq!(report["phases"][0]["backlog"], 0);
    let failures: u64 = report["otlp"]["failures"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert!(failures >= 2, "{}", report["otlp"]);
    // The exporter kept trying every 500 ms (the export the receiver died answering may count either way).
    assert!(report["otlp"]["exports"].as_u64().unwrap() + failures >= 6, "{}", report["otlp"]);
    // Logged once per kind of failure (the dying receiver may add a kind of its own), not once per export.
    let kinds = report["otlp"]["failures"].as_object().unwrap();
    let metric_kinds = kinds.keys().filter(|k| k.starts_with("metrics:")).count();
    let metric_failures: u64 = kinds.iter().filter(|(k, _)| k.starts_with("metrics:")).map(|(_, v)| v.as_u64().unwrap()).sum();
    let logged = stderr.lines().filter(|l| l.contains("OTLP metrics export")).count();
    assert_eq!(logged, metric_kinds, "{stderr}");
    assert!((logged as u64) < metric_failures, "{stderr}");
}

#[test]
fn https_and_grpc_over_tls_with_gzip_reach_a_real_receiver_and_a_wrong_ca_is_refused() {
    let server = RedisServer::start(&[]);
    let certs = common::Certs::new("otlp-tls");
    let recv = Receiver::with_tls(&certs);
    let (grpc_tls, https) = recv.tls.unwrap();
    let dir = scratch("otlp-tls-run");
    // HTTPS with gzip, the CA and the compression from the standard variables.
    std::fs::write(dir.join("env.yaml"), SCENARIO).unwrap();
    let endpoint = format!("https://127.0.0.1:{https}");
    let ca = certs.path("ca.crt");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.as_str()),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
    ];
    let out = run_in(&dir, &["apply", "env.yaml", "--target", &server.url(), "--run-id", "otlp-https", "--json", "h.json"], &env, Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("h.json"));
    assert_eq!(report["otlp"]["failures"].as_object().map_or(0, |f| f.len()), 0, "{}", report["otlp"]);
    let got = recv.take(report["otlp"]["exports"].as_u64().unwrap());
    check_metrics(&got, "otlp-https", "redis-test");
    assert!(
        got.iter().all(|v| v["headers"]["content-encoding"] == "gzip"),
        "every request gzip-encoded: {:?}",
        got.iter().map(|v| &v["headers"]).collect::<Vec<_>>()
    );

    // gRPC over TLS with gzip, configured in the file (CA next to the scenario).
    std::fs::copy(&ca, dir.join("collector-ca.pem")).unwrap();
    std::fs::write(
        dir.join("grpc.yaml"),
        format!(
            "{SCENARIO}  otlp: {{endpoint: \"https://127.0.0.1:{grpc_tls}\", protocol: grpc, interval: 1s, compression: gzip, certificate: collector-ca.pem}}\n"
        ),
    )
    .unwrap();
    let out = run_in(&dir, &["apply", "grpc.yaml", "--target", &server.url(), "--run-id", "otlp-grpcs", "--json", "g.json"], &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("g.json"));
    assert_eq!(report["otlp"]["failures"].as_object().map_or(0, |f| f.len()), 0, "{}", report["otlp"]);
    check_metrics(&recv.take(report["otlp"]["exports"].as_u64().unwrap()), "otlp-grpcs", "redis-test");

    // Verified for real: without our CA (the system's roots only) the collector is refused, the
    // failure is counted, and the run's verdict stands.
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), ("OTEL_METRIC_EXPORT_INTERVAL", "1000")];
    let out = run_in(&dir, &["apply", "env.yaml", "--target", &server.url(), "--json", "n.json"], &env, Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("n.json"));
    assert_eq!(report["otlp"]["exports"], 0, "{}", report["otlp"]);
    let failures = report["otlp"]["failures"].as_object().unwrap();
    assert!(failures.keys().any(|k| k.contains("TLS")), "{failures:?}");

    // A CA file that is not there is bad input: refused before the run, exit 2, named.
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem")];
    let out = run_in(&dir, &["apply", "env.yaml", "--target", &server.url()], &env, Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stderr.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && out.stderr.contains("/nonexistent/ca.pem"), "{}", out.stderr);
}
