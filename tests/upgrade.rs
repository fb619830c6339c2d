//! Rolling upgrades of local deployments under load, with both clients: the shipped cluster
//! scenario (onto a "new" redis-server, a wrapper that records each start) and its sentinel twin.
//! Every step — restart a replica and wait until it is in sync, fail over, restart the old primary
//! — completes and carries its own verdict. The tests take turns: each runs a topology and a load.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::{assert_report_valid, read_report, repo, run_in, scratch};
use serde_json::Value;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

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
    let _turn = turn();
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

    // redis-rs through the same upgrade (on the binary on PATH).
    let (_, report) = upgrade(&dir, "rolling-upgrade.yaml", "redis-rs", &[]);
    assert_eq!(judged_steps(&report, "redis-rs").len(), 9);
    assert_eq!(report["verify"][0]["lost"], 0, "redis-rs: {}", report["verify"]);
}

#[test]
fn a_sentinel_rolling_upgrade_moves_the_primary_and_judges_each_step() {
    let _turn = turn();
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
