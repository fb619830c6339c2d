//! Open-loop rate accuracy and phase timing, alone in their own test binary so that no other
//! test competes for the CPU while they measure.

mod common;

use std::time::Duration;

use common::{RedisServer, assert_report_valid, read_report, run_in, scratch};

#[test]
fn a_constant_rate_of_2000_for_10s_gives_20000_operations_within_2_percent() {
    let server = RedisServer::start(&[]);
    let dir = scratch("rate");
    std::fs::write(
        dir.join("rate.yaml"),
        "name: rate\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic}}\nphases: [{name: steady, duration: 10s, workers: 8, rate: 2000}]\n",
    )
    .unwrap();
    let out = run_in(&dir, &["apply", "rate.yaml", "--target", &server.url(), "--json", "r.json", "--quiet"], &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("r.json"));
    assert_report_valid(&report);
    let count = report["phases"][0]["count"].as_u64().unwrap();
    assert!((19_600..=20_400).contains(&count), "{count} operations for 2000/s × 10s");
    assert_eq!(report["phases"][0]["backlog"], 0, "the schedule fell behind: {}", report["phases"][0]);
    // The per-second series holds the rate too (first and last second may be partial).
    let series = report["time_series"].as_array().unwrap();
    assert!(series.len() >= 10, "{} points", series.len());
    for p in &series[1..9] {
        let r = p["ops_per_sec"].as_f64().unwrap();
        assert!((1900.0..=2100.0).contains(&r), "second at t={} ran {r} ops/s", p["t"]);
    }
}

#[test]
fn phases_start_on_time_and_rate_ramps_follow_the_plan() {
    let server = RedisServer::start(&[]);
    let dir = scratch("ramp");
    std::fs::write(
        dir.join("ramp.yaml"),
        "name: ramp\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic}}\nphases:\n  - {name: up, duration: 4s, workers: {from: 1, to: 8}, rate: {from: 500, to: 3500}}\n  - {name: down, duration: 2s, workers: {from: 8, to: 2}, rate: {from: 3500, to: 500}}\n",
    )
    .unwrap();
    let out = run_in(&dir, &["apply", "ramp.yaml", "--target", &server.url(), "--json", "r.json"], &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("r.json"));
    let up = &report["phases"][0];
    let down = &report["phases"][1];
    assert_eq!(up["start_s"].as_f64(), Some(0.0));
    assert_eq!(down["start_s"].as_f64(), Some(4.0));
    // ∫ rate: up (500+3500)/2 × 4 = 8000, down (3500+500)/2 × 2 = 4000.
    for (phase, want) in [(up, 8000.0), (down, 4000.0)] {
        let got = phase["count"].as_f64().unwrap();
        assert!((got - want).abs() <= want * 0.02, "phase {}: {got} operations, want {want}", phase["name"]);
    }
    // The ramp is visible second by second: the last second of `up` runs far faster than the first.
    let series = report["time_series"].as_array().unwrap();
    let first = series[0]["ops_per_sec"].as_f64().unwrap();
    let fourth = series[3]["ops_per_sec"].as_f64().unwrap();
    assert!(first < 1200.0 && fourth > 2500.0, "first second {first} ops/s, fourth {fourth} ops/s");
    assert!(out.stderr.contains("phase up started") && out.stderr.contains("phase down started"), "{}", out.all());
}
