//! Redis Streams (issue 22, part 2): every acknowledged XADD is accounted for — delivered to the
//! group, trimmed by MAXLEN, or lost — on both clients and on a cluster; acknowledgements that
//! fail leave entries pending that a claim delivers again (lost 0, claimed > 0); the
//! report's commands are INFO commandstats'; the stream's own length agrees with what was produced;
//! the group's pending and lag reach the report's series and /metrics; shards keep streams of
//! their own and merge adds them; custom and stream workloads run on a sentinel target too.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{RedisServer, assert_report_valid, read_report, run_in, scratch};

const DEADLINE: Duration = Duration::from_secs(120);
const CLIENTS: [&str; 2] = ["native", "redis-rs"];

fn sum(report: &serde_json::Value, field: &str) -> u64 {
    report["streams"].as_array().unwrap().iter().map(|s| s[field].as_u64().unwrap()).sum()
}

fn threshold<'a>(report: &'a serde_json::Value, expr: &str) -> &'a serde_json::Value {
    report["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["expr"].as_str().is_some_and(|e| e.starts_with(expr)))
        .unwrap_or_else(|| panic!("no rule {expr}: {}", report["thresholds"]))
}

#[test]
fn every_entry_is_delivered_once_and_every_command_is_counted_as_the_server_counts_it() {
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let dir = scratch("streams-counted");
    for client in CLIENTS {
        server.cli(&["FLUSHALL"]);
        let f = common::write_file(
            &dir,
            "s.yaml",
            &format!(
                r#"name: counted
target: {{url: "{}"}}
keyspace: {{prefix: "sc:"}}
cleanup: false
workloads:
  events: {{kind: stream, streams: 2, consumers: 4, count: 10, block: 100ms, claim_after: 500ms, message_size: 100B}}
phases:
  - {{name: p, duration: 1500ms, workers: 4, rate: 1000}}
thresholds:
  - lost_writes == 0
  - duplicate_writes == 0
  - lag == 0
"#,
                server.url()
            ),
        );
        server.cli(&["CONFIG", "RESETSTAT"]);
        let out = run_in(&dir, &["apply", &f, "--client", client, "--json", "r.json", "--quiet"], &[], DEADLINE);
        assert_eq!(out.code, Some(0), "{client}: {}", out.all());
        let report = read_report(&dir.join("r.json"));
        assert_report_valid(&report);
        let produced = sum(&report, "produced");
        assert_eq!(produced, common::op_count(&report, "p", "events", "XADD"), "{client}: every XADD acknowledged");
        assert!(produced >= 1400, "{client}: {produced}");
        for field in ["delivered", "acked"] {
            assert_eq!(sum(&report, field), produced, "{client}: {field}: {}", report["streams"]);
        }
        for field in ["lost", "duplicated", "trimmed", "corrupted", "pending", "lag"] {
            assert_eq!(sum(&report, field), 0, "{client}: {field}: {}", report["streams"]);
        }
        assert_eq!(common::op_count(&report, "p", "events", "RECEIVE"), produced, "{client}: one delivery per entry");
        // The streams hold what was produced, as the server says (no MAXLEN here).
        for s in report["streams"].as_array().unwrap() {
            let key = s["stream"].as_str().unwrap();
            assert_eq!(server.cli(&["XLEN", key]), format!("(integer) {}", s["produced"]), "{client}: {key}");
        }
        assert_eq!(threshold(&report, "lost_writes")["observed"], 0.0, "{client}");
        // Counted as the server counts (XLEN above is this test's own).
        let mut theirs = common::commandstats(&server);
        for own in ["INFO", "CONFIG|RESETSTAT", "XLEN"] {
            theirs.remove(own);
        }
        let mut ours: BTreeMap<String, u64> = BTreeMap::new();
        for (k, v) in report["phases"][0]["commands"].as_object().unwrap().iter().chain(report["other_commands"].as_object().unwrap()) {
            *ours.entry(k.clone()).or_default() += v.as_u64().unwrap();
        }
        assert_eq!(ours, theirs, "{client}: the report's commands differ from INFO commandstats");
        for c in ["XADD", "XREADGROUP", "XACK", "XAUTOCLAIM", "XGROUP|CREATE", "XINFO|GROUPS"] {
            assert!(ours.contains_key(c), "{client}: no {c} in {ours:?}");
        }
    }
}

#[test]
fn entries_whose_acknowledgement_failed_are_claimed_and_delivered_again_with_none_lost() {
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let dir = scratch("streams-kill");
    for client in CLIENTS {
        let f = common::write_file(
            &dir,
            "k.yaml",
            &format!(
                r#"name: killed
target: {{url: "{}"}}
connections: {{command_timeout: 300ms}}
keyspace: {{prefix: "sk:"}}
workloads:
  events: {{kind: stream, streams: 2, consumers: 4, count: 100, claim_after: 400ms, process_time: 20ms}}
phases:
  - {{name: p, duration: 4s, workers: 8, rate: 4000}}
faults:
  - {{action: client_kill, at: 1s}}
  - {{action: client_pause, mode: write, duration: 800ms, at: 2s}}
thresholds:
  - lost_writes == 0
"#,
                server.url()
            ),
        );
        let out = run_in(&dir, &["apply", &f, "--client", client, "--json", "r.json", "--quiet"], &[], DEADLINE);
        assert_eq!(out.code, Some(0), "{client}: {}", out.all());
        let report = read_report(&dir.join("r.json"));
        assert_report_valid(&report);
        // A client kill: consumers reconnect and keep their place (the group remembers it). Then
        // writes are paused for longer than the command timeout while consumers work 20 ms on
        // each batch: the XACKs they send meanwhile time out, their connections are closed, the
        // server never runs them, and the batches stay pending. Claims deliver them again (at
        // least once: duplicates): nothing lost, every acknowledged entry delivered.
        assert_eq!(sum(&report, "lost"), 0, "{client}: {}", report["streams"]);
        if client == "native" {
            assert!(sum(&report, "claimed") > 0, "{client}: nothing was claimed: {}", report["streams"]);
            assert!(sum(&report, "duplicated") > 0, "{client}: no entry delivered again: {}", report["streams"]);
        }
        // redis-rs keeps a multiplexed connection whose command timed out: the XACK still runs
        // once the pause ends, so mostly nothing is left to claim (0 to 47 entries claimed in
        // four runs). What must hold for both: nothing lost, nothing pending.
        assert!(sum(&report, "delivered") >= sum(&report, "produced"), "{client}: {}", report["streams"]);
        assert_eq!(sum(&report, "pending"), 0, "{client}: {}", report["streams"]);
        assert!(out.stdout.contains("claimed"), "{client}: {}", out.stdout);
        assert!(report["faults"].as_array().unwrap().iter().all(|f| f["result"]["ok"] == true), "{client}: {}", report["faults"]);
        assert_eq!(server.cli(&["DBSIZE"]), "(integer) 0", "{client}: cleanup removes the streams");
    }
}

#[test]
fn entries_trimmed_by_maxlen_are_counted_as_trimmed_not_lost() {
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let dir = scratch("streams-trim");
    // One consumer reading one entry per round trip and taking 1 ms over each cannot keep up with
    // 10 000 XADDs a second: MAXLEN trims entries before anyone reads them. (Without the
    // processing time a fast machine's consumer kept up — 15 000 of 15 000 delivered, seen on a
    // fresh clone — and nothing was trimmed.)
    let f = common::write_file(
        &dir,
        "t.yaml",
        &format!(
            r#"name: trimmed
target: {{url: "{}"}}
keyspace: {{prefix: "st:"}}
workloads:
  events: {{kind: stream, maxlen: 100, consumers: 1, count: 1, process_time: 1ms}}
phases:
  - {{name: p, duration: 1500ms, workers: 8, rate: 10000}}
thresholds:
  - lost_writes == 0
  - lag == 0
"#,
            server.url()
        ),
    );
    let out = run_in(&dir, &["apply", &f, "--json", "r.json", "--quiet"], &[], DEADLINE);
    assert_eq!(out.code, Some(1), "the lag rule fails: {}", out.all());
    let report = read_report(&dir.join("r.json"));
    let (produced, delivered, trimmed) = (sum(&report, "produced"), sum(&report, "delivered"), sum(&report, "trimmed"));
    assert!(trimmed > 0, "{}", report["streams"]);
    assert_eq!(sum(&report, "lost"), 0, "{}", report["streams"]);
    assert_eq!(delivered + trimmed, produced, "{}", report["streams"]);
    assert_eq!(threshold(&report, "lost_writes")["passed"], true);
    let lag = threshold(&report, "lag");
    assert_eq!(lag["passed"], false, "{lag}");
    assert!(out.stdout.contains(&format!("trimmed {trimmed}")), "{}", out.stdout);
}

#[test]
fn on_a_cluster_each_stream_is_read_from_the_node_serving_it() {
    let _turn = common::one_at_a_time();
    let dir = scratch("streams-cluster");
    let f = common::write_file(
        &dir,
        "c.yaml",
        r#"name: cluster-streams
target: {local: cluster}
keyspace: {prefix: "sx:"}
workloads:
  events: {kind: stream, streams: 6, consumers: 6, claim_after: 300ms}
phases:
  - {name: p, duration: 1500ms, workers: 4, rate: 1200}
faults:
  - {action: client_kill, at: 700ms}
thresholds:
  - lost_writes == 0
"#,
    );
    for client in CLIENTS {
        let out = run_in(&dir, &["apply", &f, "--client", client, "--json", "r.json", "--quiet"], &[], DEADLINE);
        assert_eq!(out.code, Some(0), "{client}: {}", out.all());
        let report = read_report(&dir.join("r.json"));
        assert_eq!(report["streams"].as_array().unwrap().len(), 6);
        assert_eq!(sum(&report, "lost"), 0, "{client}: {}", report["streams"]);
        assert_eq!(sum(&report, "pending"), 0, "{client}: {}", report["streams"]);
        assert!(report["streams"].as_array().unwrap().iter().all(|s| s["delivered"].as_u64().unwrap() > 0), "{client}: {}", report["streams"]);
        let slots: std::collections::BTreeSet<u16> = report["streams"].as_array().unwrap().iter().map(|s| slot(s["stream"].as_str().unwrap())).collect();
        assert!(slots.len() > 1, "{client}: the streams spread over slots");
    }
}

fn slot(key: &str) -> u16 {
    redis_test::slots::slot(key.as_bytes())
}

#[test]
fn stream_options_that_cannot_work_are_refused_with_their_line() {
    let dir = scratch("streams-refused");
    let f = common::write_file(
        &dir,
        "bad.yaml",
        "name: bad\ntarget: {local: standalone}\nconnections: {command_timeout: 100ms}\nworkloads:\n  events: {kind: stream, streams: 3, consumers: 2, block: 200ms, message_size: 8B}\nphases:\n  - {name: p, duration: 1s, workers: 1, rate: 10}\nthresholds:\n  - {expr: lag < 10, phase: p}\n",
    );
    let out = run_in(&dir, &["validate", &f], &[], DEADLINE);
    assert_eq!(out.code, Some(2), "{}", out.all());
    for says in ["2 consumers for 3 streams", "shorter than `connections.command_timeout`", "at least 32B", "`lag` is read once"] {
        assert!(out.stderr.contains(says) && out.stderr.contains("bad.yaml:"), "{says}\n{}", out.stderr);
    }
}

#[test]
fn the_groups_pending_and_lag_are_sampled_each_second_and_exported() {
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let dir = scratch("streams-exported");
    let f = common::write_file(
        &dir,
        "e.yaml",
        &format!(
            "name: exported\ntarget: {{url: \"{}\"}}\nkeyspace: {{prefix: \"se:\"}}\nworkloads:\n  events: {{kind: stream, streams: 2, consumers: 2, process_time: 5ms}}\nphases:\n  - {{name: p, duration: 3500ms, workers: 4, rate: 1000}}\n",
            server.url()
        ),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = common::spawn(&dir, &["apply", &f, "--json", "r.json", "--quiet", "--prometheus", &format!("127.0.0.1:{port}"), "--linger", "20s"], &[]);
    // The report is written before the linger: then /metrics holds the final figures.
    let deadline = std::time::Instant::now() + DEADLINE;
    while !dir.join("r.json").exists() {
        assert!(std::time::Instant::now() < deadline, "no report");
        assert!(child.try_wait().unwrap().is_none(), "apply ended before its linger");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, body) = common::http_get(port, "/metrics");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    let report = read_report(&dir.join("r.json"));
    for s in report["streams"].as_array().unwrap() {
        let key = s["stream"].as_str().unwrap();
        // A sample each second of the 3.5 s and one at the end, each with the server's figures;
        // consumers working 5 ms on each batch hold entries pending while the run goes on.
        let series = s["series"].as_array().unwrap();
        assert!((4..=6).contains(&series.len()), "{key}: {series:?}");
        assert_eq!(series.last().unwrap()["pending"], s["pending"], "{key}: the series ends as the run did");
        assert!(series.windows(2).all(|w| w[1]["t"].as_f64() > w[0]["t"].as_f64()), "{series:?}");
        assert!(series.iter().any(|p| p["pending"].as_u64().unwrap() > 0), "{key}: {series:?}");
        let line = |name: &str, extra: &str| {
            body.lines()
                .find(|l| l.starts_with(name) && l.contains(&format!("stream=\"{key}\"")) && l.contains(extra))
                .unwrap_or_else(|| panic!("no {name} {extra} for {key}:\n{body}"))
                .to_owned()
        };
        let value = |l: String| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
        assert_eq!(value(line("redis_stream_entries_total{", "state=\"produced\"")), s["produced"].as_f64().unwrap(), "{key}");
        assert_eq!(value(line("redis_stream_entries_total{", "state=\"delivered\"")), s["delivered"].as_f64().unwrap(), "{key}");
        let _ = value(line("redis_stream_pending{", ""));
        let _ = value(line("redis_stream_lag{", ""));
    }
    assert!(body.contains("# TYPE redis_stream_pending gauge") && body.contains("# TYPE redis_stream_entries_total counter"), "{body}");
}

#[test]
fn shards_keep_streams_of_their_own_and_merge_adds_them() {
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let dir = scratch("streams-shards");
    common::write_file(
        &dir,
        "s.yaml",
        &format!(
            "name: sharded\ntarget: {{url: \"{}\"}}\nkeyspace: {{prefix: \"sh:\"}}\nworkloads:\n  events: {{kind: stream, streams: 2, consumers: 2}}\nphases:\n  - {{name: p, duration: 1500ms, workers: 4, rate: 1000}}\nthresholds:\n  - lost_writes == 0\n",
            server.url()
        ),
    );
    let start_at = humantime::format_rfc3339_millis(std::time::SystemTime::now() + Duration::from_secs(4)).to_string();
    let shards: Vec<_> = (0..2)
        .map(|i| {
            let (dir, start_at) = (dir.clone(), start_at.clone());
            std::thread::spawn(move || {
                let (shard, json) = (format!("{i}/2"), format!("s{i}.json"));
                run_in(&dir, &["apply", "s.yaml", "--shard", &shard, "--run-id", "st-1", "--start-at", &start_at, "--json", &json, "--quiet"], &[], DEADLINE)
            })
        })
        .collect();
    for (i, t) in shards.into_iter().enumerate() {
        let out = t.join().unwrap();
        assert_eq!(out.code, Some(0), "shard {i}: {}", out.all());
    }
    let parts: Vec<serde_json::Value> = (0..2).map(|i| read_report(&dir.join(format!("s{i}.json")))).collect();
    // Each shard produced and consumed on streams of its own.
    for (i, r) in parts.iter().enumerate() {
        for s in r["streams"].as_array().unwrap() {
            assert!(s["stream"].as_str().unwrap().starts_with(&format!("sh:events:s{i}:stream:")), "shard {i}: {s}");
            assert_eq!(s["lost"], 0, "shard {i}: {s}");
            assert_eq!(s["delivered"], s["produced"], "shard {i}: {s}");
        }
    }
    let out = run_in(&dir, &["merge", "s0.json", "s1.json", "--json", "m.json"], &[], DEADLINE);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let merged = read_report(&dir.join("m.json"));
    assert_eq!(merged["streams"].as_array().unwrap().len(), 4);
    assert_eq!(sum(&merged, "produced"), sum(&parts[0], "produced") + sum(&parts[1], "produced"));
    assert!(sum(&merged, "produced") >= 1400, "the two shards together ran the plan: {}", merged["streams"]);
    assert_eq!(threshold(&merged, "lost_writes")["passed"], true, "{}", merged["thresholds"]);
}

#[test]
fn custom_and_stream_workloads_run_on_a_sentinel_target_with_both_clients() {
    let _turn = common::one_at_a_time();
    let dir = scratch("streams-sentinel");
    let f = common::write_file(
        &dir,
        "sentinel.yaml",
        r#"name: sentinel-kinds
target: {local: sentinel}
keyspace: {prefix: "ss:"}
workloads:
  events: {kind: stream, consumers: 2}
  carts:
    kind: custom
    commands:
      - {command: "HSET cart:{key} item {data:16}"}
      - {command: "HGETALL cart:{key}", name: read}
phases:
  - {name: p, duration: 1s, workers: 4, rate: 600}
thresholds:
  - lost_writes == 0
  - error_rate == 0
"#,
    );
    for client in CLIENTS {
        let out = run_in(&dir, &["apply", &f, "--client", client, "--json", "r.json", "--quiet"], &[], DEADLINE);
        assert_eq!(out.code, Some(0), "{client}: {}", out.all());
        let report = read_report(&dir.join("r.json"));
        assert!(sum(&report, "delivered") > 0 && sum(&report, "lost") == 0, "{client}: {}", report["streams"]);
        assert!(common::op_count(&report, "p", "carts", "HSET") > 0 && common::op_count(&report, "p", "carts", "read") > 0, "{client}");
        assert_eq!(common::total_errors(&report), 0, "{client}: {}", out.stdout);
    }
}
