//! Sentinel: the shipped failover scenario on a local primary, replica and three sentinels. The
//! master is found through the sentinels, SENTINEL FAILOVER moves it mid-run, and redis-test
//! follows it: the run completes, writes keep succeeding on the new master, and the report shows
//! the fault, the move and the verdict.

mod common;

use std::time::Duration;

use common::{assert_report_valid, read_report, repo, run_in, scratch};

#[test]
fn a_sentinel_failover_mid_run_is_followed_and_reported() {
    let dir = scratch("sentinel");
    let scenario = repo().join("scenarios/sentinel-failover.yaml");
    let started = std::time::Instant::now();
    let out = run_in(&dir, &["apply", scenario.to_str().unwrap(), "--time-scale", "0.5", "--json", "r.json", "--quiet"], &[], Duration::from_secs(120));
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(started.elapsed() < Duration::from_secs(60), "a 15 s plan took {:?}", started.elapsed());
    let report = read_report(&dir.join("r.json"));
    assert_report_valid(&report);
    let fault = &report["faults"][0]["result"];
    assert_eq!(fault["ok"], true, "{fault}");
    assert!(fault["detail"].as_str().unwrap().starts_with("SENTINEL FAILOVER redis-test accepted"), "{fault}");
    let moves = report["master_moves"].as_array().unwrap();
    assert_eq!(moves.len(), 1, "one failover, one move: {moves:?}");
    assert_ne!(moves[0]["from"], moves[0]["to"]);
    // After the move the workers write to the new master: the last seconds succeed without errors.
    let series = report["time_series"].as_array().unwrap();
    for p in &series[series.len() - 4..series.len() - 1] {
        assert!(p["ops"].as_u64().unwrap() > 500, "{p}");
        assert_eq!(p["errors"], 0, "{p}");
    }
    assert!(fault["outage_s"].as_f64().unwrap() < 5.0, "{fault}");
    assert!(report["verify"][0]["checked"].as_u64().unwrap() > 1000, "{}", report["verify"]);
    assert!(out.stdout.contains("redis-test followed it"), "{}", out.stdout);
}
