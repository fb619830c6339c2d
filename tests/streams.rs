//! Redis Streams (issue 22, part 2): every acknowledged XADD is accounted for — delivered to the
//! group, trimmed by MAXLEN, or lost — on both clients and on a cluster; a client kill of the
//! consumers leaves entries pending that a claim delivers again (lost 0, claimed > 0); the
//! report's commands are INFO commandstats'; the stream's own length agrees with what was produced.

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
fn killed_consumers_leave_entries_pending_that_a_claim_delivers_again() {
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
keyspace: {{prefix: "sk:"}}
workloads:
  events: {{kind: stream, streams: 2, consumers: 4, count: 50, claim_after: 300ms}}
phases:
  - {{name: p, duration: 4s, workers: 8, rate: 4000}}
faults:
  - {{action: client_kill, at: 1s}}
  - {{action: client_kill, at: 2s}}
  - {{action: client_kill, at: 3s}}
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
        // Consumers read entries and died before acknowledging them; the claims delivered
        // them again: nothing lost, every acknowledged entry delivered.
        assert_eq!(sum(&report, "lost"), 0, "{client}: {}", report["streams"]);
        assert!(sum(&report, "claimed") > 0, "{client}: nothing was claimed: {}", report["streams"]);
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
    // One consumer reading one entry per round trip cannot keep up with 10 000 XADDs a second:
    // MAXLEN trims entries before anyone reads them.
    let f = common::write_file(
        &dir,
        "t.yaml",
        &format!(
            r#"name: trimmed
target: {{url: "{}"}}
keyspace: {{prefix: "st:"}}
workloads:
  events: {{kind: stream, maxlen: 100, consumers: 1, count: 1}}
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
