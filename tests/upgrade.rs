//! Rolling upgrades of local deployments under load, with both clients: the shipped cluster
//! scenario (onto a "new" redis-server, a wrapper that records each start) and its sentinel twin.
//! Every step — restart a replica and wait until it is in sync, fail over, restart the old primary
//! — completes and carries its own verdict. And a node restarted on a new port (`restart
//! new_port: true`) is followed: by the cluster through its gossip, by the sentinels through the
//! master's replica list, and by both clients. The tests take turns: each runs a topology and a load.

mod common;

use std::time::Duration;

use common::{assert_report_valid, read_report, repo, run_in, scratch};
use serde_json::Value;

fn upgrade(dir: &std::path::Path, scenario: &str, client: &str, extra: &[&str]) -> (common::Outcome, Value) {
    let file = repo().join("scenarios").join(scenario);
    let mut args = vec!["apply", file.to_str().unwrap(), "--time-scale", "0.5", "--json", "r.json", "--client", client];
    args.extend_from_slice(extra);
    let out = run_in(dir, &args, &[], Duration::from_secs(120));
    assert_eq!(out.code, Some(0), "{scenario} {client}: {}", out.all());
    let report = read_report(&dir.join("r.json"));
    assert_report_valid(&report);
    (out, report)
}

/// The fault's verdict and its steps, each checked: done, named for what it did, judged.
fn judged_steps(report: &Value, client: &str) -> Vec<Value> {
    let v = &report["faults"][0]["result"];
    assert_eq!(v["ok"], true, "{client}: {v}");
    let steps = v["steps"].as_array().unwrap().clone();
    for s in &steps {
        assert_eq!(s["ok"], true, "{client}: {s}");
        assert!(s["outage_s"].as_f64().is_some() && s["errors"].is_object(), "{client}: {s}");
    }
    steps
}

#[test]
fn a_cluster_rolling_upgrade_onto_a_new_binary_completes_shard_by_shard_without_losing_writes() {
    let _turn = common::one_at_a_time();
    let dir = scratch("upgrade-cluster");
    // The "new version": redis-server behind a wrapper that notes every start.
    let wrapper = dir.join("redis-server-new");
    std::fs::write(&wrapper, format!("#!/bin/sh\necho started >> {}\nexec redis-server \"$@\"\n", dir.join("starts").display())).unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&wrapper).status().unwrap();
    let binary = format!("faults.rolling-upgrade.binary={}", wrapper.display());
    let (out, report) = upgrade(&dir, "rolling-upgrade.yaml", "native", &["--set", &binary]);
    let steps = judged_steps(&report, "native");
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(steps.len(), 9, "{names:?}");
    for shard in 0..3 {
        let mine: Vec<&&str> = names.iter().filter(|n| n.starts_with(&format!("shard {shard}: "))).collect();
        assert!(
            mine.len() == 3 && mine[0].contains("restart replica") && mine[1].contains("fail over to") && mine[2].contains("restart old primary"),
            "shard {shard}: {mine:?}"
        );
    }
    // Every node of the cluster now runs the new binary: six starts recorded.
    let starts = std::fs::read_to_string(dir.join("starts")).unwrap_or_default();
    assert_eq!(starts.lines().count(), 6, "{starts}");
    assert!(report["faults"][0]["result"]["detail"].as_str().unwrap().contains("redis-server-new"), "{}", report["faults"][0]["result"]);
    // CLUSTER FAILOVER waits for the replica to catch up: no acknowledged write is lost.
    assert_eq!(report["verify"][0]["lost"], 0, "{}", report["verify"]);
    assert_eq!(report["verify"][0]["changed"], 0, "{}", report["verify"]);
    assert!(out.stdout.contains("step shard 2: restart old primary"), "{}", out.stdout);
    // regression: verdicts II item 7. 1.5 s of CLUSTERDOWN was shown under step "shard 2: restart
    // old primary" while the fault's outage by shard put it on shard 1: a step's outage is that of
    // the shard it touched, so no step claims more than its shard's outage.
    let by_shard = report["faults"][0]["result"]["outage_by_shard_s"].as_object().unwrap().clone();
    for s in &steps {
        let shard = s["shard"].as_u64().unwrap_or_else(|| panic!("a cluster step names its shard: {s}"));
        let (_, shard_outage) = by_shard.iter().find(|(k, _)| k.starts_with(&format!("shard {shard} "))).unwrap();
        assert!(
            s["outage_s"].as_f64().unwrap() <= shard_outage.as_f64().unwrap() + 1e-9,
            "step {} shows {} s of outage, its shard {} s over the whole fault",
            s["name"],
            s["outage_s"],
            shard_outage
        );
    }

    // redis-rs through the same upgrade (on the binary on PATH).
    let (_, report) = upgrade(&dir, "rolling-upgrade.yaml", "redis-rs", &[]);
    assert_eq!(judged_steps(&report, "redis-rs").len(), 9);
    assert_eq!(report["verify"][0]["lost"], 0, "redis-rs: {}", report["verify"]);
}

#[test]
fn a_sentinel_rolling_upgrade_moves_the_primary_and_judges_each_step() {
    let _turn = common::one_at_a_time();
    let dir = scratch("upgrade-sentinel");
    for client in ["native", "redis-rs"] {
        let (_, report) = upgrade(&dir, "rolling-upgrade-sentinel.yaml", client, &[]);
        let steps = judged_steps(&report, client);
        let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert!(
            names.len() == 3 && names[0].contains("restart replica") && names[1].contains("fail over to") && names[2].contains("restart old primary"),
            "{client}: {names:?}"
        );
        assert_eq!(report["master_moves"].as_array().unwrap().len(), 1, "{client}: {}", report["master_moves"]);
        assert!(report["verify"][0]["checked"].as_u64().unwrap() > 1000, "{client}: {}", report["verify"]);
    }
}

fn apply_body(dir: &std::path::Path, body: &str, client: &str) -> Value {
    std::fs::write(dir.join("s.yaml"), body).unwrap();
    let out = run_in(dir, &["apply", "s.yaml", "--json", "r.json", "--quiet", "--client", client], &[], Duration::from_secs(90));
    assert_eq!(out.code, Some(0), "{client}: {}", out.all());
    let report = read_report(&dir.join("r.json"));
    assert_report_valid(&report);
    report
}

/// Errors in the time series' last whole seconds before `end_s`.
fn errors_before(report: &Value, from_s: f64, end_s: f64) -> u64 {
    report["time_series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| (from_s..=end_s).contains(&p["t"].as_f64().unwrap()))
        .map(|p| p["errors"].as_u64().unwrap())
        .sum()
}

#[test]
fn a_cluster_primary_restarted_on_a_new_port_is_followed_by_the_peers_and_the_clients() {
    // Down 500 ms (less than the 2 s node timeout): no failover, the node comes back a primary
    // elsewhere; the peers learn its address from its gossip, the clients from the slot map.
    let _turn = common::one_at_a_time();
    let dir = scratch("restart-new-port-cluster");
    let body = "name: np\ntarget: {local: cluster}\nconnections: {command_timeout: 500ms, connect_timeout: 500ms, acquire_timeout: 1s, retry: {max_backoff: 200ms}}\nkeyspace: {keys: 3000}\nworkloads: {w: {kind: basic, read_ratio: 0.5}}\nphases: [{name: p, duration: 8s, workers: 64, rate: 600}]\nfaults: [{action: restart, node: 0, new_port: true, at: 2s, down_for: 500ms}]\n";
    for client in ["native", "redis-rs"] {
        let report = apply_body(&dir, body, client);
        let v = &report["faults"][0]["result"];
        println!("{client}: {v}");
        assert_eq!(v["ok"], true, "{client}: {v}");
        let detail = v["detail"].as_str().unwrap();
        let (from, to) = (detail.split(" (").nth(1).unwrap().split(')').next().unwrap(), detail.split(" on ").nth(1).unwrap().split(' ').next().unwrap());
        assert_ne!(from, to, "{client}: {detail}");
        assert!(detail.contains("as a primary"), "{client}: the node came back a primary at its new address: {detail}");
        assert!(!v["recovery_s"].is_null(), "{client}: {v}");
        // Shard 0's slots are only on the moved node: writes to them succeed again only there.
        assert_eq!(errors_before(&report, 6.0, 8.01), 0, "{client}: the run recovered on the new port: {}", report["time_series"]);
        assert!(op_ok(&report, "SET") > 2000, "{client}: about 2400 SETs planned");
    }
}

#[test]
fn a_sentinel_master_restarted_on_a_new_port_comes_back_a_replica_the_sentinels_can_promote() {
    // The old master returns elsewhere as a replica of the one the sentinels promoted; once they
    // list it (they read the master's replica list every 10 s), a failover makes it the master
    // again and the clients follow it there.
    let _turn = common::one_at_a_time();
    let dir = scratch("restart-new-port-sentinel");
    let body = "name: nps\ntarget: {local: sentinel}\nconnections: {command_timeout: 500ms, connect_timeout: 500ms, acquire_timeout: 1s, retry: {max_backoff: 200ms}}\nworkloads: {w: {kind: basic, read_ratio: 0.5}}\nphases: [{name: p, duration: 18s, workers: 16, rate: 400}]\nfaults: [{action: restart, node: 0, new_port: true, at: 1s, down_for: 500ms}, {action: failover, at: 14s}]\n";
    let report = apply_body(&dir, body, "native");
    let restart = &report["faults"][0]["result"];
    let failover = &report["faults"][1]["result"];
    println!("{restart}\n{failover}");
    assert_eq!((&restart["ok"], &failover["ok"]), (&Value::Bool(true), &Value::Bool(true)), "{restart} {failover}");
    let detail = restart["detail"].as_str().unwrap();
    assert!(detail.contains("as a replica of") && detail.contains("the sentinels listed it there"), "{detail}");
    let new_addr = detail.split(" on ").nth(1).unwrap().split(' ').next().unwrap();
    assert!(failover["detail"].as_str().unwrap().contains(&format!("named {new_addr} the master")), "the promoted replica is the moved node: {failover}");
    assert_eq!(errors_before(&report, 16.0, 18.01), 0, "writes succeed on the moved master: {}", report["time_series"]);
}

fn op_ok(report: &Value, op: &str) -> u64 {
    common::op_count(report, "p", "w", op)
}
