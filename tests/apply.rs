//! `redis-test apply` against real redis-server processes: every shipped scenario, thresholds,
//! exit codes, cleanup that leaves foreign keys alone, SIGINT, local targets, RESP3 and auth.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{RedisServer, assert_report_valid, op_count, read_report, run_in, scratch};

const DEADLINE: Duration = Duration::from_secs(120);

fn apply(dir: &Path, args: &[&str]) -> common::Outcome {
    let mut all = vec!["apply"];
    all.extend_from_slice(args);
    run_in(dir, &all, &[], DEADLINE)
}

fn scenario(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_threshold_that_cannot_hold_exits_1_and_is_named() {
    let server = RedisServer::start(&[]);
    let dir = scratch("threshold-fail");
    let f = scenario(
        &dir,
        "t",
        "name: t\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 2, rate: 500}]\nthresholds:\n  - p99 < 1us\n  - error_rate < 1%\n",
    );
    let out = apply(&dir, &[&f, "--target", &server.url(), "--json", "r.json"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(out.stdout.contains("FAIL p99 < 1us: observed"), "{}", out.all());
    assert!(out.stdout.contains("PASS error_rate < 1%"), "{}", out.all());
    let report = read_report(&dir.join("r.json"));
    assert_eq!(report["thresholds"][0]["passed"], false);
    assert!(report["thresholds"][0]["observed"].as_f64().unwrap() >= 1.0);
    assert_eq!(report["thresholds"][1]["passed"], true);
}

const EVERY_WORKLOAD: &str = r#"name: every
target: {url: redis://x}
keyspace: {prefix: "rt-test:", keys: 200}
workloads:
  b: {kind: basic, read_ratio: 0.4, delete_ratio: 0.1, incr_ratio: 0.1}
  h: {kind: high_throughput, pipeline: 4}
  l: {kind: list, max_length: 5}
  s: {kind: set}
  z: {kind: sorted_set}
  x: {kind: hash}
  p: {kind: pipeline, depth: 8, commands: {set: 1, get: 1, incr: 1, del: 1, hset: 1, hget: 1, lpush: 1, rpop: 1, sadd: 1, zadd: 1}}
  t: {kind: pipeline, depth: 3, transaction: true}
  q: {kind: pubsub, channels: 2, subscribers: 1}
phases: [{name: p, duration: 2s, workers: 6}]
"#;

/// Every key outside the prefix, with its DUMP (type, value and encoding, byte for byte) and its
/// absolute expiry time (EXPIRETIME, which unlike PTTL does not tick down).
fn foreign_state(server: &RedisServer) -> Vec<(String, String, String)> {
    let keys = server.cli(&["--raw", "KEYS", "*"]);
    let mut keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    keys.sort_unstable();
    keys.iter().map(|k| (k.to_string(), server.cli(&["DUMP", k]), server.cli(&["EXPIRETIME", k]))).collect()
}

#[test]
fn cleanup_removes_only_our_keys_and_foreign_keys_stay_byte_for_byte() {
    let server = RedisServer::start(&[]);
    // Neighbours, including ones that look like ours but are not under the prefix.
    server.cli(&["SET", "app:user:1", "alice"]);
    server.cli(&["SET", "rt-test", "no colon: not under the prefix"]);
    server.cli(&["SET", "RT-TEST:upper", "case differs"]);
    server.cli(&["HSET", "app:cart:9", "sku", "42", "qty", "3"]);
    server.cli(&["RPUSH", "app:queue", "a", "b", "c"]);
    server.cli(&["SADD", "app:tags", "x", "y"]);
    server.cli(&["ZADD", "app:rank", "1", "m1", "2", "m2"]);
    server.cli(&["SET", "app:ttl", "v", "EX", "3600"]);
    let before = foreign_state(&server);
    assert_eq!(before.len(), 8);
    let dir = scratch("foreign");
    let f = scenario(&dir, "every", EVERY_WORKLOAD);
    let out = apply(&dir, &[&f, "--target", &server.url(), "--json", "r.json", "--quiet"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("r.json"));
    assert_report_valid(&report);
    for (w, op) in [
        ("b", "SET"),
        ("h", "GET"),
        ("l", "LPUSH"),
        ("s", "SADD"),
        ("z", "ZADD"),
        ("x", "HSET"),
        ("p", "PIPELINE"),
        ("t", "EXEC"),
        ("q", "PUBLISH"),
        ("q", "RECEIVE"),
    ] {
        assert!(op_count(&report, "p", w, op) > 0, "{w} {op} did not run");
    }
    assert!(report["cleanup"]["removed"].as_u64().unwrap() > 0, "{}", report["cleanup"]);
    assert_eq!(foreign_state(&server), before, "foreign keys changed");
    let dbsize: u64 = server.cli(&["DBSIZE"]).trim_start_matches("(integer) ").parse().unwrap();
    assert_eq!(dbsize, 8, "keys under the prefix survived cleanup");
    // Lists stayed within their bound while the run went on: max_length 5 (checked on what remains
    // of a run without cleanup).
    let out = apply(&dir, &[&f, "--target", &server.url(), "--set", "cleanup=false", "--quiet"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let keys = server.cli(&["--raw", "KEYS", "rt-test:l:*"]);
    assert!(!keys.is_empty());
    for k in keys.lines() {
        let len: u64 = server.cli(&["LLEN", k]).trim_start_matches("(integer) ").parse().unwrap();
        assert!(len <= 5, "{k} has {len} elements");
    }
}

#[test]
fn sigint_stops_the_run_writes_an_interrupted_report_and_exits_130() {
    let server = RedisServer::start(&[]);
    let dir = scratch("sigint");
    let f = scenario(
        &dir,
        "long",
        "name: long\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic}}\nphases:\n  - {name: first, duration: 1s, workers: 2, rate: 200}\n  - {name: long, duration: 60s, workers: 2, rate: 200}\n",
    );
    let mut child = common::spawn(&dir, &["apply", &f, "--target", &server.url(), "--json", "r.json"], &[]);
    // Wait for the event "second phase started" on stderr, then interrupt.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let started = lines.by_ref().map_while(Result::ok).any(|l| l.contains("phase long started"));
    assert!(started, "the run never reached its second phase");
    let started_at = std::time::Instant::now();
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(started_at.elapsed() < Duration::from_secs(10), "stopping took {:?}", started_at.elapsed());
    let report = read_report(&dir.join("r.json"));
    assert_report_valid(&report);
    assert_eq!(report["interrupted"], true);
    assert!(op_count(&report, "first", "w", "GET") > 0);
    let long = report["phases"][1]["duration_s"].as_f64().unwrap();
    assert!(long < 30.0, "the interrupted phase reports {long}s");
}

#[test]
fn local_standalone_starts_a_server_and_stops_it() {
    let dir = scratch("local");
    let f = scenario(
        &dir,
        "local",
        "name: local\ntarget: {local: standalone, password: s3cret}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 2}]\n",
    );
    let out = apply(&dir, &[&f, "--json", "r.json"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("r.json"));
    assert!(op_count(&report, "p", "w", "GET") > 0);
    assert_eq!(report["target"]["address"], "local standalone");
    assert!(!out.all().contains("s3cret"));
    // No redis-server of ours is left running.
    let ps = Command::new("pgrep").args(["-f", &format!("redis-test-{}", std::process::id())]).output().unwrap();
    assert!(String::from_utf8_lossy(&ps.stdout).trim().is_empty());
}

#[test]
fn an_unreachable_target_exits_3() {
    let dir = scratch("unreachable");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let f = scenario(&dir, "u", "name: u\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 1}]\n");
    let out = apply(&dir, &[&f, "--target", &format!("redis://127.0.0.1:{port}")]);
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains(&format!("cannot reach the target 127.0.0.1:{port}")), "{}", out.all());
}

#[test]
fn a_wrong_password_exits_3_and_says_so() {
    let server = RedisServer::start(&["requirepass right-one"]);
    let dir = scratch("wrong-password");
    let f = scenario(&dir, "w", "name: w\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 1}]\n");
    let out = apply(&dir, &[&f, "--target", &format!("redis://:wrong-one@127.0.0.1:{}", server.port)]);
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains("refused the connection") && out.stderr.contains("WRONGPASS"), "{}", out.all());
    assert!(!out.all().contains("wrong-one"), "the password leaked: {}", out.all());
}

#[test]
fn an_unwritable_report_path_exits_3_before_the_run() {
    let server = RedisServer::start(&[]);
    let dir = scratch("unwritable");
    std::fs::write(dir.join("file"), "").unwrap();
    let f = scenario(&dir, "u", "name: u\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 1}]\n");
    let out = apply(&dir, &[&f, "--target", &server.url(), "--json", "file/inside-a-file.json"]);
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains("cannot write the report"), "{}", out.all());
    assert_eq!(server.cli(&["DBSIZE"]), "(integer) 0", "the run started anyway");
}

#[test]
fn resp3_with_acl_user_and_database_runs_basic_and_pubsub() {
    let server = RedisServer::start(&["user app on >apppass ~* &* +@all"]);
    let dir = scratch("resp3");
    let f = scenario(
        &dir,
        "r3",
        "name: r3\ntarget: {url: redis://x, protocol: resp3, username: app, password: apppass, db: 3}\nworkloads:\n  w: {kind: basic, read_ratio: 0.5}\n  ps: {kind: pubsub, subscribers: 2, channels: 2}\nphases: [{name: p, duration: 1s, workers: 2, rate: 400}]\n",
    );
    let out = apply(&dir, &[&f, "--target", &server.url(), "--json", "r.json", "--set", "cleanup=false"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("r.json"));
    assert!(op_count(&report, "p", "w", "SET") > 0);
    let published = op_count(&report, "p", "ps", "PUBLISH");
    assert!(published > 0);
    assert_eq!(op_count(&report, "p", "ps", "RECEIVE"), 2 * published, "each of 2 subscribers receives every message");
    for sub in report["pubsub"][0]["subscribers"].as_array().unwrap() {
        assert_eq!(sub["lost"], 0, "{sub}");
        assert_eq!(sub["received"].as_u64(), Some(published));
    }
    // The keys went to database 3, not 0.
    assert_eq!(server.cli_auth(Some("apppass"), &["--user", "app", "-n", "0", "DBSIZE"]), "(integer) 0");
    assert_ne!(server.cli_auth(Some("apppass"), &["--user", "app", "-n", "3", "DBSIZE"]), "(integer) 0");
    assert!(!out.all().contains("apppass"));
}

#[test]
fn an_exhausted_pool_fails_operations_as_pool_timeout_without_crashing() {
    let server = RedisServer::start(&[]);
    let dir = scratch("pool");
    let f = scenario(
        &dir,
        "p",
        "name: p\ntarget: {url: redis://x}\nconnections: {pools: 1, per_pool: 1, acquire_timeout: 1ms}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 32}]\n",
    );
    let out = apply(&dir, &[&f, "--target", &server.url(), "--json", "r.json"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("r.json"));
    let timeouts: u64 = report["phases"][0]["operations"].as_array().unwrap().iter().filter_map(|o| o["errors"]["pool_timeout"].as_u64()).sum();
    assert!(timeouts > 0, "no pool_timeout counted: {}", report["phases"][0]);
    assert_eq!(report["connections"]["opened"], 1);
}

#[test]
fn workload_results_hold_together() {
    let server = RedisServer::start(&[]);
    let dir = scratch("coherent");
    let f = scenario(
        &dir,
        "c",
        "name: c\ntarget: {url: redis://x}\nkeyspace: {keys: 50}\nworkloads:\n  b: {kind: basic, read_ratio: 0.5}\n  x: {kind: hash, fields: 5}\n  p: {kind: pipeline, depth: 5, commands: {set: 1, get: 1}}\nphases: [{name: p, duration: 2s, workers: 4, rate: 1500}]\n",
    );
    let out = apply(&dir, &[&f, "--target", &server.url(), "--json", "r.json", "--quiet"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("r.json"));
    let row = |w: &str, op: &str| -> serde_json::Value {
        report["phases"][0]["operations"].as_array().unwrap().iter().find(|o| o["workload"] == w && o["operation"] == op).cloned().unwrap_or_default()
    };
    // GETs read the keys SETs write: over 50 keys, most GETs hit.
    let get = row("b", "GET");
    let (gets, misses) = (get["count"].as_u64().unwrap(), get["miss"].as_u64().unwrap());
    assert!(gets > 100 && misses * 2 < gets, "GET {gets} with {misses} misses");
    let hget = row("x", "HGET");
    assert!(hget["miss"].as_u64().unwrap() < hget["count"].as_u64().unwrap(), "{hget}");
    // Every batch holds `depth` commands, each counted under its own name; the batch carries latency.
    let batches = row("p", "PIPELINE")["count"].as_u64().unwrap();
    let commands = row("p", "SET")["count"].as_u64().unwrap() + row("p", "GET")["count"].as_u64().unwrap();
    assert_eq!(commands, 5 * batches);
    assert!(row("p", "SET")["latency_us"].is_null(), "commands inside a batch carry no latency of their own");
    assert!(row("p", "PIPELINE")["latency_us"]["p99"].as_u64().unwrap() > 0);
    // The phase counts scheduled operations: 1500/s × 2 s, each batch once.
    let count = report["phases"][0]["count"].as_u64().unwrap();
    assert!((2940..=3060).contains(&count), "{count}");
    assert_eq!(report["totals"]["errors"], 0);
    // Service time never exceeds latency from the intended start.
    for o in report["phases"][0]["operations"].as_array().unwrap() {
        if let (Some(l), Some(s)) = (o["latency_us"]["p50"].as_u64(), o["service_time_us"]["p50"].as_u64()) {
            assert!(s <= l, "{o}");
        }
    }
}

#[test]
fn progress_prints_plain_lines_off_a_terminal_and_nothing_when_quiet() {
    let server = RedisServer::start(&[]);
    let dir = scratch("progress");
    let f = scenario(
        &dir,
        "p",
        "name: p\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic}}\nphases:\n  - {name: one, duration: 1s, workers: 2, rate: 300}\n  - {name: two, duration: 3s, workers: 2, rate: 600}\n",
    );
    let out = apply(&dir, &[&f, "--target", &server.url(), "--interval", "1s"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stderr.contains("redis-test: phase one started (1s, 2 workers, 300 ops/s)"), "{}", out.stderr);
    assert!(out.stderr.contains("redis-test: phase two started (3s, 2 workers, 600 ops/s)"), "{}", out.stderr);
    let lines: Vec<&str> = out.stderr.lines().filter(|l| l.contains(" ops/s (target ")).collect();
    assert!(lines.len() >= 3, "one line per second expected:\n{}", out.stderr);
    assert!(lines.iter().all(|l| l.contains("p50 ") && l.contains("workers 2") && l.contains("conns ")), "{lines:?}");
    assert!(!out.stderr.contains('\u{1b}'), "no escape codes off a terminal");
    let quiet = apply(&dir, &[&f, "--target", &server.url(), "--quiet"]);
    assert_eq!(quiet.code, Some(0), "{}", quiet.all());
    assert!(quiet.stderr.trim().is_empty(), "--quiet printed: {}", quiet.stderr);
    assert!(quiet.stdout.contains("phase two"), "the summary is still printed");
}

#[test]
fn a_cluster_target_that_is_not_a_cluster_exits_3_and_says_so() {
    let dir = scratch("not-a-cluster");
    let server = RedisServer::start(&[]);
    let f = scenario(
        &dir,
        "c",
        &format!(
            "name: u\ntarget: {{url: \"{}\", mode: cluster}}\nworkloads: {{w: {{kind: basic}}}}\nphases: [{{name: p, duration: 1s, workers: 1}}]\n",
            server.url()
        ),
    );
    let out = apply(&dir, &[&f]);
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains("the target is not a cluster") && out.stderr.contains("cluster support disabled"), "{}", out.all());
}

#[test]
fn a_connection_idle_past_the_health_check_interval_is_pinged_before_use() {
    // Two workers, sixteen connections: each worker keeps its connection between round trips. At
    // six operations a second the fair token queue gives each worker one every ~330 ms, past a
    // 100 ms interval: every use but a fresh connection's first is preceded by a PING. Past a 60 s
    // interval, none is.
    let server = RedisServer::start(&[]);
    let dir = scratch("health-check");
    let mut extra_pings = Vec::new();
    for interval in ["100ms", "60s"] {
        let f = scenario(
            &dir,
            "h",
            &format!(
                "name: h\ntarget: {{url: redis://x}}\nconnections: {{health_check_interval: {interval}}}\nworkloads: {{w: {{kind: basic, read_ratio: 1.0}}}}\nphases: [{{name: p, duration: 3s, workers: 2, rate: 6}}]\n"
            ),
        );
        let before = server.calls("ping");
        let out = apply(&dir, &[&f, "--target", &server.url(), "--json", "r.json"]);
        assert_eq!(out.code, Some(0), "{}", out.all());
        let pings = server.calls("ping") - before;
        let ops = read_report(&dir.join("r.json"))["phases"][0]["count"].as_u64().unwrap();
        assert!((16..=19).contains(&ops), "{interval}: {ops} operations");
        extra_pings.push((pings, ops));
    }
    let ((checked, ops), (unchecked, _)) = (extra_pings[0], extra_pings[1]);
    assert!(unchecked <= 2, "a 60 s interval PINGs nothing on the hot path: {unchecked}");
    assert!(checked >= unchecked + ops - 4, "a 100 ms interval PINGs before each use after the first: {checked} PINGs for {ops} operations");
}

#[test]
fn threads_sets_how_many_threads_run_the_workers_and_the_report_says_so() {
    let server = RedisServer::start(&[]);
    let dir = scratch("threads");
    let f = scenario(
        &dir,
        "t",
        "name: t\ntarget: {url: redis://x}\nkeyspace: {prefix: \"rt-threads:\"}\nworkloads: {w: {kind: high_throughput, pipeline: 4}}\nphases: [{name: p, duration: 300ms, workers: 4}]\n",
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let url = server.url();
    for (threads, want) in [(Some("1"), 1), (Some("3"), 3), (None, cores)] {
        let mut args = vec![f.as_str(), "--target", url.as_str(), "--json", "r.json", "--quiet"];
        if let Some(t) = threads {
            args.extend(["--threads", t]);
        }
        let out = apply(&dir, &args);
        assert_eq!(out.code, Some(0), "{threads:?}: {}", out.all());
        let report = read_report(&dir.join("r.json"));
        assert_eq!(report["client_threads"], want, "{threads:?}");
        assert!(op_count(&report, "p", "w", "PIPELINE") > 0, "{threads:?}: the workers ran");
    }
    for bad in ["0", "1025", "two", "-1"] {
        let out = apply(&dir, &[&f, "--target", &url, &format!("--threads={bad}")]);
        assert_eq!(out.code, Some(2), "--threads {bad}: {}", out.all());
        assert!(out.stderr.contains("is not a thread count from 1 to 1024"), "--threads {bad}: {}", out.all());
    }
}
