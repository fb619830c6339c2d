//! Maintenance notifications (issue 23) on real local servers: the handshake in `auto` against a
//! plain Redis (it runs, and says the server does not support them) and `on` refused there; the
//! RESP-aware proxy never splits a reply to inject a notice and answers the handshake in its
//! place among pipelined replies; a moved endpoint with notifications on costs no error and no
//! timeout and counts its handoffs, while off, silent and redis-rs runs of the same move cost
//! errors; a MOVING without an address reconnects after half the notice; relaxed windows ride out
//! a pause that times out without them; a cluster failover and a slot migration announced cost no
//! error; the scenario errors are located.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{RedisServer, assert_report_valid, read_report, run_in, scratch, total_errors};
use redis_test::client::maintenance::{Kind, Notice};
use redis_test::resp::{self, Value};

const DEADLINE: Duration = Duration::from_secs(120);

fn fault(report: &serde_json::Value) -> &serde_json::Value {
    &report["faults"][0]["result"]
}

#[test]
fn auto_goes_on_quietly_against_a_plain_redis_and_on_refuses_to_run() {
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let dir = scratch("maint-handshake");
    let scenario = |mode: &str| {
        format!(
            "name: handshake\ntarget: {{url: \"{}\", protocol: resp3}}\nconnections: {{maintenance_notifications: {mode}}}\nkeyspace: {{prefix: \"mh:\"}}\nworkloads:\n  w: {{kind: basic}}\nphases:\n  - {{name: p, duration: 1s, workers: 2, rate: 200}}\n",
            server.url()
        )
    };
    let f = common::write_file(&dir, "auto.yaml", &scenario("auto"));
    let out = run_in(&dir, &["apply", &f, "--json", "r.json"], &[], DEADLINE);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("r.json"));
    assert_report_valid(&report);
    let m = &report["maintenance"];
    assert!(m["unsupported_connections"].as_u64().unwrap() >= 1, "{m}");
    assert_eq!(m["enabled_connections"], 0, "{m}");
    let said = m["unsupported_reply"].as_str().unwrap();
    assert!(said.contains("MAINT_NOTIFICATIONS") || said.contains("unknown subcommand"), "{said}");
    assert!(out.stdout.contains("not supported by the server"), "{}", out.all());
    assert_eq!(total_errors(&report), 0);

    let f = common::write_file(&dir, "on.yaml", &scenario("on"));
    let out = run_in(&dir, &["apply", &f, "--json", "on.json"], &[], DEADLINE);
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains("CLIENT MAINT_NOTIFICATIONS ON was refused"), "{}", out.all());
    assert!(!out.stderr.contains("check username and password"), "a refused handshake is not a password problem: {}", out.all());
}

#[test]
fn scenario_errors_are_located() {
    let dir = scratch("maint-validate");
    let cases = [
        ("target: {local: standalone}\nconnections: {maintenance_notifications: on}\n", "faults: []\n", "needs `target.protocol: resp3`"),
        ("target: {local: cluster, protocol: resp3}\n", "faults: [{action: maintenance, kind: move, at: 1s}]\n", "needs `target.local: standalone`"),
        ("target: {local: standalone, protocol: resp3}\n", "faults: [{action: maintenance, kind: migrate, at: 1s}]\n", "needs `target.local: cluster`"),
        (
            "target: {local: sentinel, protocol: resp3}\n",
            "faults: [{action: maintenance, kind: failover, shard: 1, at: 1s}]\n",
            "a sentinel deployment has one master",
        ),
        (
            "target: {local: standalone, protocol: resp3}\n",
            "faults: [{action: maintenance, kind: move, at: 1s, notice: 1s}, {action: maintenance, kind: move, at: 3s, notice: 1s}]\n",
            "one `kind: move` per run",
        ),
        ("target: {local: standalone, protocol: resp3}\n", "faults: [{action: notify, at: 1s, messages: []}]\n", "name at least one message"),
        ("target: {local: standalone, protocol: resp3}\n", "faults: [{action: notify, at: 1s, messages: [MIGRATNG]}]\n", "MIGRATNG"),
        (
            "target: {local: standalone, protocol: resp3}\n",
            "faults: [{action: maintenance, kind: move, at: 4s, notice: 3s}]\n",
            "a fault must end with the run",
        ),
        // Rules scoped to a fault's window.
        (
            "target: {local: standalone, protocol: resp3}\n",
            "faults: [{name: endpoint-moves, action: maintenance, kind: move, at: 1s, notice: 1s}]\nthresholds: [{expr: errors == 0, fault: endpoint-mvoes}]\n",
            "no fault named `endpoint-mvoes`; did you mean `endpoint-moves`?",
        ),
        (
            "target: {local: standalone, protocol: resp3}\n",
            "faults: [{name: m, action: maintenance, kind: move, at: 1s, notice: 1s}]\nthresholds: [{expr: p99 < 5ms, fault: m}]\n",
            "`p99` is not measured over a fault's window",
        ),
        (
            "target: {local: standalone, protocol: resp3}\n",
            "faults: [{name: m, action: maintenance, kind: move, at: 1s, notice: 1s}]\nthresholds: [{expr: errors == 0, fault: m, phase: p}]\n",
            "takes no `phase` or `operation`",
        ),
        (
            "target: {local: standalone, protocol: resp3}\n",
            "faults: [{name: m, action: maintenance, kind: move, at: 1s, notice: 1s}, {name: pause, action: client_pause, at: 3s, duration: 1s}]\nthresholds: [{expr: handoff_time < 1s, fault: pause}]\n",
            "fault `pause` sends no MOVING",
        ),
    ];
    for (i, (target, faults, expected)) in cases.iter().enumerate() {
        let body = format!(
            "name: v\n{target}keyspace: {{prefix: \"mv:\"}}\nworkloads:\n  w: {{kind: basic}}\nphases:\n  - {{name: p, duration: 5s, workers: 1, rate: 10}}\n{faults}"
        );
        let f = common::write_file(&dir, &format!("v{i}.yaml"), &body);
        let out = run_in(&dir, &["validate", &f], &[], DEADLINE);
        assert_eq!(out.code, Some(2), "{body}\n{}", out.all());
        assert!(out.stderr.contains(expected), "{body}\n{}", out.all());
        assert!(out.stderr.contains(&format!("v{i}.yaml:")), "located: {}", out.all());
    }
}

/// Reads frames from `s` until `replies` replies (frames other than pushes) have come; returns
/// them and the pushes, in order.
fn read_frames(s: &mut std::net::TcpStream, replies: usize) -> (Vec<Value>, Vec<Value>) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 256 * 1024];
    let (mut got, mut pushes) = (Vec::new(), Vec::new());
    while got.len() < replies {
        // Every frame must parse where it starts: a notice inside a reply would break the bulk.
        while let Some((v, used)) = resp::parse(&buf).expect("the stream parses frame by frame") {
            buf.drain(..used);
            if matches!(v, Value::Push(_)) { pushes.push(v) } else { got.push(v) }
        }
        if got.len() >= replies {
            break;
        }
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "the proxy closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    (got, pushes)
}

#[test]
fn the_proxy_injects_notices_between_whole_replies_and_answers_the_handshake_in_place() {
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let upstream: redis_test::scenario::model::HostPort = redis_test::scenario::validate::parse_host_port(&format!("127.0.0.1:{}", server.port), 6379).unwrap();
    let proxy = rt.block_on(redis_test::deployment::proxy::Proxy::start_resp_aware(upstream)).unwrap();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", proxy.addr.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A pipelined handshake: the proxy's +OK must come third, after HELLO's and SETNAME's replies.
    let value = vec![b'v'; 1 << 20];
    let mut out = Vec::new();
    resp::command(&mut out, &[b"HELLO", b"3"]);
    resp::command(&mut out, &[b"CLIENT", b"SETNAME", b"maint-test"]);
    resp::command(&mut out, &[b"CLIENT", b"MAINT_NOTIFICATIONS", b"ON", b"moving-endpoint-type", b"internal-ip"]);
    resp::command(&mut out, &[b"SET", b"mp:big", &value]);
    s.write_all(&out).unwrap();
    let (replies, pushes) = read_frames(&mut s, 4);
    assert!(matches!(replies[0], Value::Map(_)), "{:?}", &replies[0]);
    assert_eq!(&replies[1..], &[Value::Status("OK".into()), Value::Status("OK".into()), Value::Status("OK".into())]);
    assert!(pushes.is_empty());
    // Large pipelined replies while notices are injected as fast as the proxy takes them.
    const GETS: usize = 40;
    let mut out = Vec::new();
    for _ in 0..GETS {
        resp::command(&mut out, &[b"GET", b"mp:big"]);
    }
    s.write_all(&out).unwrap();
    let mut sent = 0;
    for seq in 0..200 {
        let n = Notice { kind: Kind::Migrating, seq, time: Some(Duration::from_secs(1)), endpoint: None, slots: vec![], destinations: vec![] };
        sent += proxy.notify(&n);
    }
    // One more request after the notices, so the last of them surely arrives before its reply.
    s.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
    let (replies, pushes) = read_frames(&mut s, GETS + 1);
    assert_eq!(sent, 200, "the connection asked for notices: each went to it");
    assert_eq!(replies.len(), GETS + 1);
    for r in &replies[..GETS] {
        assert_eq!(r, &Value::Bulk(value.clone()), "a reply arrived whole");
    }
    assert_eq!(replies[GETS], Value::Status("PONG".into()));
    assert_eq!(pushes.len(), 200, "every notice arrived");
    for (i, p) in pushes.iter().enumerate() {
        let n = Notice::parse(p).expect("a notice");
        assert_eq!((n.kind, n.seq), (Kind::Migrating, i as i64), "in order");
    }
    assert_eq!(server.cli(&["CLIENT", "LIST"]).matches("maint-test").count(), 1);
    // The server never saw the handshake the proxy answered.
    assert!(!common::commandstats(&server).keys().any(|k| k.contains("MAINT")), "{:?}", common::commandstats(&server));
    drop(proxy);
}

fn move_scenario(mode: &str, announce: bool, endpoint_type: &str) -> String {
    format!(
        r#"name: move
target: {{local: standalone, protocol: resp3}}
connections: {{per_pool: 16, command_timeout: 300ms, relaxed_timeout: 3s, maintenance_notifications: {mode}, moving_endpoint_type: {endpoint_type}}}
keyspace: {{prefix: "mm:", keys: 1000}}
workloads:
  orders: {{kind: basic, read_ratio: 0.5, verify: true}}
phases:
  - {{name: p, duration: 5s, workers: 16, rate: 1000}}
faults:
  - {{action: maintenance, kind: move, at: 1500ms, notice: 2s, announce: {announce}}}
"#
    )
}

fn run_move(dir: &std::path::Path, name: &str, body: &str, client: &str) -> serde_json::Value {
    let f = common::write_file(dir, &format!("{name}.yaml"), body);
    let (json, html) = (format!("{name}.json"), format!("{name}.html"));
    let out = run_in(dir, &["apply", &f, "--client", client, "--json", &json, "--html", &html], &[], DEADLINE);
    assert_eq!(out.code, Some(0), "{name}: {}", out.all());
    let report = read_report(&dir.join(&json));
    assert_report_valid(&report);
    assert_eq!(fault(&report)["ok"], true, "{name}: {}", fault(&report));
    assert_eq!(report["verify"][0]["lost"], 0, "{name}: no acknowledged write lost in the move: {}", report["verify"]);
    assert!(report["verify"][0]["checked"].as_u64().unwrap() > 100, "{name}: {}", report["verify"]);
    report
}

#[test]
fn a_move_announced_costs_nothing_and_the_same_move_unannounced_costs_errors() {
    let _turn = common::one_at_a_time();
    let dir = scratch("maint-move");

    // Notifications on: the connections hand off to the new endpoint before the change.
    let on = run_move(&dir, "on", &move_scenario("on", true, "auto"), "native");
    assert_eq!(total_errors(&on), 0, "{}", fault(&on));
    let m = &fault(&on)["maintenance"];
    assert!(m["sent"]["MOVING"].as_u64().unwrap() >= 1, "{m}");
    assert!(m["endpoint"].is_string(), "{m}");
    let h = &on["maintenance"]["handoffs"][0];
    assert!(h["connections_moved"].as_u64().unwrap() >= 1, "{}", on["maintenance"]);
    let took = h["handoff_time_s"].as_f64().expect("every old connection closed");
    assert!(took < 1.0, "the in-flight replies finished and the old connections closed: {took}");
    assert_eq!(h["endpoint"], m["endpoint"]);
    // The HTML report shows the same: the fault's announcements and the client's handoff.
    let html = std::fs::read_to_string(dir.join("on.html")).unwrap();
    assert!(html.contains("↳ maintenance") && html.contains("sent MOVING"), "the fault's row");
    assert!(html.contains("<h2 id=\"maintenance\">Maintenance notifications</h2>") && html.contains("old connection(s) replaced"), "the client's section");

    // A MOVING without an address: the same address, after half the notice.
    let none = run_move(&dir, "none", &move_scenario("on", true, "none"), "native");
    assert_eq!(total_errors(&none), 0, "{}", fault(&none));
    let h = &none["maintenance"]["handoffs"][0];
    assert!(h["endpoint"].is_null(), "{h}");
    let took = h["handoff_time_s"].as_f64().expect("every old connection closed");
    assert!((0.9..1.9).contains(&took), "reconnected after half the 2 s notice: {took}");

    // Off, unannounced and redis-rs: the same move cuts connections that were never told.
    for (name, body, client) in [
        ("off", move_scenario("off", true, "auto"), "native"),
        ("silent", move_scenario("on", false, "auto"), "native"),
        ("redis-rs", move_scenario("auto", true, "auto"), "redis-rs"),
    ] {
        let r = run_move(&dir, name, &body, client);
        assert!(total_errors(&r) > 0, "{name}: the cut costs errors: {}", fault(&r));
        let m = &fault(&r)["maintenance"];
        assert_eq!(m["listening"], 0, "{name}: {m}");
        assert!(r["maintenance"]["handoffs"].as_array().is_none_or(|h| h.is_empty()), "{name}: {}", r["maintenance"]);
    }
}

#[test]
fn relaxed_windows_ride_out_a_pause_that_times_out_without_them() {
    let _turn = common::one_at_a_time();
    let dir = scratch("maint-relaxed");
    let body = r#"name: relaxed
target: {local: standalone, protocol: resp3}
connections: {per_pool: 8, command_timeout: 200ms, relaxed_timeout: 3s}
keyspace: {prefix: "mr:", keys: 1000}
workloads:
  orders: {kind: basic, read_ratio: 0.5}
phases:
  - {name: p, duration: 4s, workers: 8, rate: 2000}
faults:
  # Told twice (connections opened after the first notice hear the second), then the change.
  - {action: notify, at: 1s, messages: [MIGRATING, MIGRATING, MIGRATED], notice: 400ms}
  - {action: client_pause, at: 1500ms, duration: 800ms}
"#;
    let f = common::write_file(&dir, "relaxed.yaml", body);
    let timeouts = |r: &serde_json::Value| r["faults"][1]["result"]["errors"]["timeout"].as_u64().unwrap_or(0);
    // Told: with /metrics up, lingering after the report so the last scrape sees the final figures.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = common::spawn(
        &dir,
        &["apply", &f, "--maintenance-notifications", "on", "--json", "on.json", "--quiet", "--prometheus", &format!("127.0.0.1:{port}"), "--linger", "20s"],
        &[],
    );
    let deadline = std::time::Instant::now() + DEADLINE;
    while !dir.join("on.json").exists() {
        assert!(std::time::Instant::now() < deadline, "no report");
        assert!(child.try_wait().unwrap().is_none(), "apply ended before its linger");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = common::http_get(port, "/metrics");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    let on = read_report(&dir.join("on.json"));
    let metric = |prefix: &str| -> f64 {
        let line = body.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix}:\n{body}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(metric("redis_maintenance_notifications_total{kind=\"MIGRATING\""), on["maintenance"]["received"]["MIGRATING"].as_f64().unwrap(), "{body}");
    assert_eq!(metric("redis_maintenance_relaxed_windows_total"), on["maintenance"]["relaxed_windows"].as_f64().unwrap(), "{body}");
    assert!(body.contains("# TYPE redis_maintenance_notifications_total counter"), "{body}");
    assert_eq!(timeouts(&on), 0, "{}", on["faults"]);
    let m = &on["maintenance"];
    assert!(m["received"]["MIGRATING"].as_u64().unwrap() >= 1, "{m}");
    assert!(m["relaxed_windows"].as_u64().unwrap() >= 1, "{m}");
    assert!(m["relaxed_s"].as_f64().unwrap() >= 1.0, "{m}");
    assert!(on["faults"][0]["result"]["maintenance"]["sent"]["MIGRATING"].as_u64().unwrap() >= 2, "{}", on["faults"][0]);

    let out = run_in(&dir, &["apply", &f, "--maintenance-notifications", "off", "--json", "off.json"], &[], DEADLINE);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let off = read_report(&dir.join("off.json"));
    assert!(timeouts(&off) >= 1, "{}", off["faults"]);
    assert_eq!(off["faults"][0]["result"]["maintenance"]["listening"], 0);
}

#[test]
fn the_shipped_scenario_passes_with_notifications_and_fails_without() {
    let _turn = common::one_at_a_time();
    let dir = scratch("maint-shipped");
    let file = common::repo().join("scenarios/maintenance.yaml");
    let file = file.to_str().unwrap();
    // Half its length: the pause still outlasts the 250 ms command timeout, the notice is 2 s.
    let out = run_in(&dir, &["apply", file, "--time-scale", "0.5", "--json", "on.json", "--quiet"], &[], DEADLINE);
    let on = read_report(&dir.join("on.json"));
    let failed: Vec<&str> = on["thresholds"].as_array().unwrap().iter().filter(|t| t["passed"] == false).map(|t| t["expr"].as_str().unwrap()).collect();
    assert_eq!(out.code, Some(0), "{failed:?} {}", out.all());
    assert!(on["faults"].as_array().unwrap().iter().all(|f| f["result"]["ok"] == true), "{}", on["faults"]);

    let out = run_in(
        &dir,
        &["apply", file, "--time-scale", "0.5", "--maintenance-notifications", "off", "--json", "off.json", "--junit", "off.xml", "--quiet"],
        &[],
        DEADLINE,
    );
    assert_eq!(out.code, Some(1), "{}", out.all());
    let off = read_report(&dir.join("off.json"));
    // A rule by its expression and scope: the whole run (`None`) or one fault's window.
    let rule = |report: &serde_json::Value, expr: &str, fault: Option<&str>| {
        report["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["fault"].as_str() == fault && t["expr"].as_str().is_some_and(|e| e.starts_with(expr)))
            .unwrap_or_else(|| panic!("{expr} [fault {fault:?}]: {}", report["thresholds"]))
            .clone()
    };
    assert_eq!(rule(&off, "errors == 0", None)["passed"], false, "{}", off["thresholds"]);
    // Each window judged alone: the pause's timeouts and the move's READONLY errors, apart.
    let in_fault = |report: &serde_json::Value, expr: &str, fault: &str| rule(report, expr, Some(fault));
    for (report, told) in [(&on, true), (&off, false)] {
        for fault in ["slow-migration", "endpoint-moves"] {
            let errors = in_fault(report, "errors == 0", fault);
            let in_window: u64 = report["faults"].as_array().unwrap().iter().find(|f| f["name"] == fault).unwrap()["result"]["errors"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum();
            assert_eq!(errors["observed"].as_f64(), Some(in_window as f64), "{errors}");
            assert_eq!(errors["passed"], told, "{fault}, told {told}: {errors}");
        }
    }
    assert_eq!(in_fault(&off, "handoff_time < 1s", "endpoint-moves")["observed_text"], "no data", "{}", off["thresholds"]);
    assert_eq!(in_fault(&on, "handoff_time < 1s", "endpoint-moves")["passed"], true, "{}", on["thresholds"]);
    let junit = std::fs::read_to_string(dir.join("off.xml")).unwrap();
    assert!(junit.contains("[fault slow-migration]\""), "{junit}");
    // The faults did what they declared either way: the failure is the client's.
    assert!(off["faults"].as_array().unwrap().iter().all(|f| f["result"]["ok"] == true), "{}", off["faults"]);
}

#[test]
fn a_cluster_failover_and_a_slot_migration_announced_cost_no_error() {
    let _turn = common::one_at_a_time();
    let dir = scratch("maint-cluster");
    let file = common::repo().join("scenarios/maintenance-cluster.yaml");
    let file = file.to_str().unwrap();
    let out = run_in(&dir, &["apply", file, "--json", "on.json", "--quiet"], &[], DEADLINE);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let on = read_report(&dir.join("on.json"));
    assert_report_valid(&on);
    let (failover, migrate) = (&on["faults"][0]["result"], &on["faults"][1]["result"]);
    assert_eq!(failover["ok"], true, "{failover}");
    assert!(failover["detail"].as_str().unwrap().contains("took over shard 0"), "{failover}");
    assert_eq!(total_errors(&on), 0, "{}", on["faults"]);
    let m = &failover["maintenance"];
    assert!(m["sent"]["FAILING_OVER"].as_u64().unwrap() >= 1 && m["sent"]["FAILED_OVER"].as_u64().unwrap() >= 1, "{m}");
    assert!(on["maintenance"]["received"]["FAILING_OVER"].as_u64().unwrap() >= 1, "{}", on["maintenance"]);
    assert!(on["maintenance"]["relaxed_windows"].as_u64().unwrap() >= 1, "{}", on["maintenance"]);
    // The migration: 200 slots with their keys, ASK and MOVED followed, SMIGRATED read.
    assert_eq!(migrate["ok"], true, "{migrate}");
    assert!(migrate["detail"].as_str().unwrap().contains("moved slots"), "{migrate}");
    assert!(
        migrate["maintenance"]["sent"]["SMIGRATING"].as_u64().unwrap() >= 1 && migrate["maintenance"]["sent"]["SMIGRATED"].as_u64().unwrap() >= 1,
        "{migrate}"
    );
    assert!(on["maintenance"]["received"]["SMIGRATED"].as_u64().unwrap() >= 1, "{}", on["maintenance"]);
    assert!(on["connections"]["topology_refreshes"].as_u64().unwrap() >= 1, "{}", on["connections"]);
    assert_eq!(on["verify"][0]["lost"], 0, "{}", on["verify"]);

    // Untold, the same failover and migration run; what they cost is the client's.
    let out = run_in(&dir, &["apply", file, "--maintenance-notifications", "off", "--json", "off.json", "--quiet"], &[], DEADLINE);
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.all());
    let off = read_report(&dir.join("off.json"));
    for f in off["faults"].as_array().unwrap() {
        assert_eq!(f["result"]["ok"], true, "{f}");
        assert_eq!(f["result"]["maintenance"]["listening"], 0, "{f}");
    }
    assert_eq!(off["verify"][0]["lost"], 0, "{}", off["verify"]);
}

#[test]
fn a_sentinel_failover_announced_is_told_and_followed() {
    let _turn = common::one_at_a_time();
    let dir = scratch("maint-sentinel");
    let body = r#"name: sentinel-failover
target: {local: sentinel, protocol: resp3}
connections: {per_pool: 8, command_timeout: 500ms, relaxed_timeout: 10s}
keyspace: {prefix: "ms:", keys: 1000}
workloads:
  orders: {kind: basic, read_ratio: 0.5, verify: true}
phases:
  - {name: p, duration: 8s, workers: 8, rate: 500}
faults:
  - {action: maintenance, kind: failover, at: 2s, notice: 5s}
"#;
    let f = common::write_file(&dir, "s.yaml", body);
    let out = run_in(&dir, &["apply", &f, "--json", "on.json"], &[], DEADLINE);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let on = read_report(&dir.join("on.json"));
    assert_report_valid(&on);
    assert_eq!(fault(&on)["ok"], true, "{}", fault(&on));
    assert!(fault(&on)["detail"].as_str().unwrap().contains("the sentinels named"), "{}", fault(&on));
    assert!(fault(&on)["maintenance"]["sent"]["FAILING_OVER"].as_u64().unwrap() >= 1, "{}", fault(&on));
    assert!(on["maintenance"]["received"]["FAILING_OVER"].as_u64().unwrap() >= 1, "{}", on["maintenance"]);
    assert!(!on["master_moves"].as_array().unwrap().is_empty(), "the client followed the new master");
    // SENTINEL FAILOVER is not coordinated: writes acknowledged by the old master after the
    // replica's last sync are lost, told or not (docs/running.md); verify counts them.
    assert!(on["verify"][0]["checked"].as_u64().unwrap() > 100, "{}", on["verify"]);
}

/// Busy threads standing in for a loaded machine (CI on 2 cores); they stop when dropped, and
/// after a minute whatever happens.
struct CpuLoad(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl CpuLoad {
    fn start(threads: usize) -> CpuLoad {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        for _ in 0..threads {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let until = std::time::Instant::now() + Duration::from_secs(60);
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < until {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            });
        }
        CpuLoad(stop)
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn repl_offset(info: &str, field: &str) -> u64 {
    info.lines().find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':')?.parse().ok()).unwrap_or(0)
}

#[test]
fn a_moved_endpoints_new_node_is_streamed_to_before_the_move_goes_on() {
    // Redis 7.0 streams to a replica synced without a disk only once it has the replica's
    // REPLCONF ACK; an ACK that beats the primary's noticing the sync's end is spent, and the next
    // comes a second later. Under CPU load that was 13 of 30 new replicas, and an announced move
    // made its change in that second with the clients held (CI: "989ms for the change itself",
    // 10 pool_timeouts). Ten new nodes under load: a write made as each is handed over must reach
    // it within 300 ms (a stalled one waits up to a second).
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let primary = redis_test::scenario::model::HostPort { host: "127.0.0.1".into(), port: server.port };
    let spec = redis_test::client::native::conn::ConnectSpec::setup(&primary, None);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let _load = CpuLoad::start(4);
    for i in 0..10 {
        let (node, _) = rt.block_on(redis_test::faults::maintenance::start_streamed_replica(&spec, &primary)).expect("a new node");
        server.cli(&["SET", "mm:probe", &i.to_string()]);
        let target = repl_offset(&server.cli(&["INFO", "replication"]), "master_repl_offset");
        let started = std::time::Instant::now();
        let port = node.addr().port.to_string();
        let reached = loop {
            let out = std::process::Command::new("redis-cli").args(["-p", &port, "INFO", "replication"]).output().expect("redis-cli");
            let info = String::from_utf8_lossy(&out.stdout);
            if repl_offset(&info, "slave_repl_offset") >= target {
                break true;
            }
            if started.elapsed() > Duration::from_millis(300) {
                break false;
            }
        };
        assert!(reached, "new node {i}: the write was not applied within 300 ms (offset {target}): the primary was not streaming to it");
        rt.block_on(async { drop(node) });
    }
}
