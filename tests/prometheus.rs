//! A real Prometheus scrapes a run's `/metrics` endpoint; its HTTP API then shows
//! `redis_operations_total` for the run growing and ending at the report's count.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{RedisServer, http_get, read_report, run_in, scratch, url_encode};

/// Prometheus on a free port, scraping `target` every second; killed when dropped.
struct Prometheus {
    child: std::process::Child,
    port: u16,
}

impl Prometheus {
    fn start(dir: &std::path::Path, target: u16) -> Prometheus {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: redis-test\n    static_configs:\n      - targets: ['127.0.0.1:{target}']\n"),
        )
        .unwrap();
        let mut child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prometheus is installed (scripts/install-deps)");
        // Wait for its own "ready" log line, then keep draining its log.
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let ready = lines.by_ref().map_while(Result::ok).any(|l| l.contains("Server is ready to receive web requests"));
        assert!(ready, "prometheus did not become ready");
        std::thread::spawn(move || for _ in lines {});
        Prometheus { child, port }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_the_run_and_sees_operations_grow() {
    let server = RedisServer::start(&[]);
    let dir = scratch("prometheus");
    let exporter = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let prom = Prometheus::start(&dir, exporter);
    std::fs::write(
        dir.join("p.yaml"),
        "name: p\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic, read_ratio: 0.7}}\nphases: [{name: steady, duration: 6s, workers: 4, rate: 500}]\n",
    )
    .unwrap();
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let out = run_in(
        &dir,
        &[
            "apply",
            "p.yaml",
            "--target",
            &server.url(),
            "--prometheus",
            &format!("127.0.0.1:{exporter}"),
            "--linger",
            "3s",
            "--run-id",
            "prom-test-1",
            "--json",
            "r.json",
            "--quiet",
        ],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{}", out.all());
    let ended = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let query = r#"redis_operations_total{operation="GET",status="success",run_id="prom-test-1",app_name="redis-test"}"#;
    let (code, body) = http_get(prom.port, &format!("/api/v1/query_range?query={}&start={started}&end={ended}&step=1", url_encode(query)));
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let series = v["data"]["result"].as_array().unwrap();
    assert_eq!(series.len(), 1, "one series for the run: {body}");
    let values: Vec<f64> = series[0]["values"].as_array().unwrap().iter().map(|p| p[1].as_str().unwrap().parse().unwrap()).collect();
    assert!(values.len() >= 4, "Prometheus kept {} samples: {values:?}", values.len());
    assert!(values.windows(2).all(|w| w[1] >= w[0]), "a counter never falls: {values:?}");
    assert!(values.last().unwrap() > values.first().unwrap(), "the counter grew: {values:?}");
    let report = read_report(&dir.join("r.json"));
    let gets = report["phases"][0]["operations"].as_array().unwrap().iter().find(|o| o["operation"] == "GET").unwrap()["ok"].as_f64().unwrap();
    assert_eq!(*values.last().unwrap(), gets, "the last scrape (during --linger) has the final count");
    // The endpoint also carries the labels of the original app and the metrics it never shipped.
    let (_, meta) = http_get(prom.port, &format!("/api/v1/label/__name__/values?match[]={}", url_encode(r#"{run_id="prom-test-1"}"#)));
    for name in [
        "redis_operation_duration_bucket",
        "redis_client_init_duration_count",
        "redis_connections_active",
        "redis_connections_opened_total",
        "redis_test_phase",
        "redis_test_achieved_rate",
    ] {
        assert!(meta.contains(name), "{name} missing from {meta}");
    }
}

/// User and system CPU seconds a process has used so far, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[test]
fn the_metrics_endpoint_does_not_spin_when_file_descriptors_run_out() {
    let server = RedisServer::start(&[]);
    let dir = scratch("prometheus-emfile");
    std::fs::write(
        dir.join("idle.yaml"),
        format!(
            "name: idle\ntarget: {{url: \"{}\"}}\nworkloads: {{w: {{kind: basic}}}}\nphases: [{{name: p, duration: 8s, workers: 1, rate: 10}}]\n",
            server.url()
        ),
    )
    .unwrap();
    // 64 file descriptors: holding 80 connections open exhausts them, and accept() fails (EMFILE).
    let mut child = Command::new("prlimit")
        .args(["--nofile=64:64", "--"])
        .arg(common::bin())
        .args(["apply", "idle.yaml", "--prometheus", "0"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit runs (util-linux)");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port: u16 = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split("http://127.0.0.1:").nth(1).and_then(|r| r.split('/').next()).and_then(|p| p.parse().ok()))
        .expect("the metrics address is printed");
    let held: Vec<std::net::TcpStream> = (0..80).filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok()).collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_seconds(child.id());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_seconds(child.id()) - before;
    drop(held);
    let status = child.wait().unwrap();
    assert!(used < 0.5, "{used:.2} s of CPU in 2 s while accept() failed: the accept loop spins");
    assert_eq!(status.code(), Some(0), "the run itself is unharmed");
}
