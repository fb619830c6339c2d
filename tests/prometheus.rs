//! A real Prometheus scrapes a run's `/metrics` endpoint; its HTTP API then shows
//! `redis_operations_total` for the run growing and ending at the report's count. And the shipped
//! Grafana dashboard's queries — every panel's PromQL and every variable — return data from a real
//! Prometheus that scraped a real two-shard run.

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
        Self::scraping(dir, &[target])
    }

    fn scraping(dir: &std::path::Path, targets: &[u16]) -> Prometheus {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let targets: Vec<String> = targets.iter().map(|t| format!("'127.0.0.1:{t}'")).collect();
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: redis-test\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
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

/// (where it is used, the PromQL query) pairs.
type Queries = Vec<(String, String)>;

/// Every query of the shipped dashboard (panels and variables), with the variables filled in.
fn dashboard_queries(run_id: &str) -> (Queries, Queries) {
    let text = std::fs::read_to_string(common::repo().join("docker/grafana/dashboards/redis-test.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let fill = |q: &str| {
        q.replace("$app_name", "redis-test")
            .replace("$run_id", run_id)
            .replace("$instance_id", ".*")
            .replace("$operation", ".*")
            .replace("$__rate_interval", "15s")
    };
    let panels = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| {
            p["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| (format!("{} / {}", p["title"].as_str().unwrap(), t["legendFormat"]), fill(t["expr"].as_str().unwrap())))
        })
        .collect();
    let variables = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| (v["name"].as_str().unwrap().to_owned(), fill(v["query"]["query"].as_str().unwrap())))
        .collect();
    (panels, variables)
}

#[test]
fn every_dashboard_panel_and_variable_returns_data_from_a_real_prometheus() {
    let server = RedisServer::start(&[]);
    let dir = scratch("dashboard");
    let exporters: Vec<u16> = (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).collect();
    let prom = Prometheus::scraping(&dir, &exporters);
    // Two shards of one run (the dashboard sums over instances), every panel's subject present:
    // operations of two workloads, pub/sub, a client kill for reconnects, a pause longer than the
    // command timeout for errors (timeouts; a kill alone may find nothing in flight).
    std::fs::write(
        dir.join("d.yaml"),
        format!("name: d\ntarget: {{url: \"{}\"}}\nworkloads:\n  w: {{kind: basic, read_ratio: 0.7}}\n  ps: {{kind: pubsub, channels: 2, subscribers: 2}}\nphases:\n  - {{name: warm, duration: 2s, workers: 4, rate: 300, mix: {{w: 80, ps: 20}}}}\n  - {{name: steady, duration: 6s, workers: 4, rate: 600, mix: {{w: 80, ps: 20}}}}\nconnections: {{command_timeout: 100ms}}\nfaults: [{{action: client_kill, clients: own, phase: steady, at: 1s}}, {{action: client_pause, phase: steady, at: 3s, duration: 400ms}}]\n", server.url()),
    )
    .unwrap();
    let start_at = humantime::format_rfc3339_millis(std::time::SystemTime::now() + Duration::from_secs(3)).to_string();
    let shards: Vec<_> = exporters
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let (dir, start_at, port) = (dir.clone(), start_at.clone(), *port);
            std::thread::spawn(move || {
                let (shard, listen) = (format!("{i}/2"), format!("127.0.0.1:{port}"));
                run_in(
                    &dir,
                    &[
                        "apply",
                        "d.yaml",
                        "--shard",
                        &shard,
                        "--run-id",
                        "dash-1",
                        "--start-at",
                        &start_at,
                        "--prometheus",
                        &listen,
                        "--linger",
                        "3s",
                        "--quiet",
                    ],
                    &[],
                    Duration::from_secs(60),
                )
            })
        })
        .collect();
    for s in shards {
        let out = s.join().unwrap();
        assert_eq!(out.code, Some(0), "{}", out.all());
    }
    // Judge at the last moment both endpoints were still up (during --linger).
    let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() - 1.0;
    let (panels, variables) = dashboard_queries("dash-1");
    assert!(panels.len() >= 15, "{panels:?}");
    for (name, query) in &panels {
        let (code, body) = http_get(prom.port, &format!("/api/v1/query?query={}&time={at}", url_encode(query)));
        assert_eq!(code, 200, "{name}: `{query}`: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{name}: `{query}`: {body}");
        assert!(!v["data"]["result"].as_array().unwrap().is_empty(), "{name}: `{query}` returned no series");
    }
    // Variables: Grafana's label_values(metric{selector}, label) is Prometheus' label values API.
    for (name, query) in &variables {
        let inner = query.trim_start_matches("label_values(").trim_end_matches(')');
        let (selector, label) = inner.rsplit_once(", ").unwrap();
        let (code, body) = http_get(prom.port, &format!("/api/v1/label/{label}/values?match[]={}", url_encode(selector)));
        assert_eq!(code, 200, "{name}: {body}");
        let values: Vec<String> =
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["data"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        match name.as_str() {
            "instance_id" => assert_eq!(values.iter().filter(|v| v.ends_with("-shard-0") || v.ends_with("-shard-1")).count(), 2, "both shards: {values:?}"),
            "run_id" => assert!(values.contains(&"dash-1".to_owned()), "{values:?}"),
            "app_name" => assert!(values.contains(&"redis-test".to_owned()), "{values:?}"),
            _ => assert!(values.contains(&"GET".to_owned()) && values.contains(&"PUBLISH".to_owned()), "{name}: {values:?}"),
        }
    }
}

/// Debian's prometheus-pushgateway on a free port; killed when dropped.
struct Pushgateway {
    child: std::process::Child,
    port: u16,
}

impl Pushgateway {
    fn start() -> Pushgateway {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("prometheus-pushgateway is installed (scripts/install-deps)");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let ready = lines.by_ref().map_while(Result::ok).any(|l| l.contains("Listening on"));
        assert!(ready, "the pushgateway did not start");
        std::thread::spawn(move || for _ in lines {});
        Pushgateway { child, port }
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_final_metrics_reach_a_real_pushgateway_and_a_dead_one_changes_nothing() {
    let server = RedisServer::start(&[]);
    let dir = scratch("pushgateway");
    let gateway = Pushgateway::start();
    std::fs::write(
        dir.join("p.yaml"),
        format!("name: p\ntarget: {{url: \"{}\"}}\nworkloads: {{w: {{kind: basic, read_ratio: 0.7}}}}\nphases: [{{name: steady, duration: 2s, workers: 2, rate: 300}}]\nmetrics: {{pushgateway: \"http://127.0.0.1:{}\"}}\n", server.url(), gateway.port),
    )
    .unwrap();
    let out = run_in(&dir, &["apply", "p.yaml", "--run-id", "push-1", "--json", "r.json", "--quiet"], &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("pushgateway: final metrics pushed to"), "{}", out.stdout);
    let report = read_report(&dir.join("r.json"));
    assert_eq!(report["pushgateway"]["ok"], true, "{}", report["pushgateway"]);
    // The group is job / run_id / instance_id, and it holds the run's final counts.
    let (code, body) = http_get(gateway.port, "/api/v1/metrics");
    assert_eq!(code, 200, "{body}");
    let groups: serde_json::Value = serde_json::from_str(&body).unwrap();
    let group = groups["data"].as_array().unwrap().iter().find(|g| g["labels"]["run_id"] == "push-1").unwrap_or_else(|| panic!("no group for the run: {body}"));
    assert_eq!(group["labels"]["job"], "redis-test");
    assert_eq!(group["labels"]["instance_id"].as_str(), report["instance_id"].as_str(), "{}", group["labels"]);
    let (_, text) = http_get(gateway.port, "/metrics");
    let gets = report["phases"][0]["operations"].as_array().unwrap().iter().find(|o| o["operation"] == "GET").unwrap()["ok"].as_u64().unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("redis_operations_total{")
                && l.contains(r#"operation="GET""#)
                && l.contains(r#"status="success""#)
                && l.contains(r#"run_id="push-1""#)
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(line.rsplit(' ').next().unwrap().parse::<f64>().unwrap(), gets as f64, "{line}");

    // Nothing listening: the push fails, is reported, and the run's verdict stands (exit 0).
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out =
        run_in(&dir, &["apply", "p.yaml", "--pushgateway", &format!("http://127.0.0.1:{dead}"), "--json", "r.json", "--quiet"], &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("pushgateway: FAILED to push"), "{}", out.stdout);
    assert_eq!(read_report(&dir.join("r.json"))["pushgateway"]["ok"], false);
    let out = run_in(&dir, &["apply", "p.yaml", "--pushgateway", "gateway:9091"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.all());
}
