//! Judging runs afterwards: the self-contained HTML report, rendering a saved report, and
//! `compare` flagging real regressions (a lower rate cap, a paused server) but not noise.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;

use std::time::Duration;

use common::{RedisServer, run_in, scratch};

const STEADY: &str = "name: steady\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic, read_ratio: 0.5}}\nphases:\n  - {name: warm, duration: 1s, workers: 4, rate: 500}\n  - {name: steady, duration: 3s, workers: 8, rate: 1000}\nthresholds:\n  - p99 < 1s\n  - error_rate < 50%\n";

/// Long enough for `compare` to judge: every row holds at least 1 000 round trips (p99 needs that
/// many behind it).
const JUDGED: &str = "name: steady\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic, read_ratio: 0.5}}\nphases:\n  - {name: warm, duration: 4s, workers: 4, rate: 500}\n  - {name: steady, duration: 6s, workers: 8, rate: 1000}\n";

// The tests here measure latency: they take turns (`common::one_at_a_time`) instead of competing
// for the two cores.

fn apply(dir: &Path, server: &RedisServer, json: &str, extra: &[&str]) -> common::Outcome {
    let url = server.url();
    let mut args = vec!["apply", "steady.yaml", "--target", &url, "--json", json, "--quiet"];
    args.extend_from_slice(extra);
    run_in(dir, &args, &[], Duration::from_secs(60))
}

#[test]
fn the_html_report_is_self_contained_and_holds_every_chart() {
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let dir = scratch("html");
    std::fs::write(dir.join("steady.yaml"), format!("{STEADY}faults:\n  - {{action: client_pause, at: 2s, duration: 100ms, name: short-pause}}\n")).unwrap();
    let out = apply(&dir, &server, "r.json", &["--html", "r.html"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let html = std::fs::read_to_string(dir.join("r.html")).unwrap();
    for part in [
        "id=\"faults\"",
        "<svg id=\"timeline\"",
        "<svg id=\"throughput\"",
        "<svg id=\"latency\"",
        "class=\"dist\"",
        "id=\"thresholds\"",
        "PASS",
        "p99 &lt; 1s",
        "short-pause",
        "class=\"phase\"",
        "class=\"series\"",
    ] {
        assert!(html.contains(part), "the HTML report lacks {part}");
    }
    assert!(html.contains("No errors.") || html.contains("<svg id=\"errors\""));
    // Nothing is fetched when it is opened: no scripts, stylesheets, fonts or images from elsewhere.
    for forbidden in ["http://", "https://", "<script", "<link", "url(", "@import", "<img", "<iframe"] {
        assert!(!html.contains(forbidden), "the HTML report contains {forbidden}");
    }
    // The same report, rendered again from the saved JSON, is the same page.
    let again = run_in(&dir, &["report", "r.json", "--html", "again.html"], &[], Duration::from_secs(30));
    assert_eq!(again.code, Some(0), "{}", again.all());
    assert_eq!(std::fs::read_to_string(dir.join("again.html")).unwrap(), html);
    assert!(again.stdout.contains("phase steady"), "{}", again.stdout);
}

/// Runs the scenario and slows the server down for `secs` from the start of `phase`: DEBUG SLEEP
/// 50 ms every 100 ms, as a real regression would (a slower build, a busier host).
fn apply_slowed(dir: &Path, server: &RedisServer, json: &str, phase: &str, secs: f64) {
    let mut child = common::spawn(dir, &["apply", "steady.yaml", "--target", &server.url(), "--json", json], &[]);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = format!("phase {phase} started");
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.contains(&started)), "phase {phase} never started");
    let until = std::time::Instant::now() + Duration::from_secs_f64(secs);
    while std::time::Instant::now() < until {
        server.cli(&["DEBUG", "SLEEP", "0.05"]);
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in lines.by_ref() {}
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn compare_passes_like_runs_and_flags_sustained_regressions() {
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&["enable-debug-command yes"]);
    let dir = scratch("compare");
    std::fs::write(dir.join("steady.yaml"), JUDGED).unwrap();
    for name in ["a.json", "b.json", "c.json"] {
        let out = apply(&dir, &server, name, &[]);
        assert_eq!(out.code, Some(0), "{}", out.all());
    }
    let same = run_in(&dir, &["compare", "a.json", "b.json"], &[], Duration::from_secs(30));
    assert_eq!(same.code, Some(0), "two runs of the same scenario: {}", same.all());
    assert!(same.stdout.contains("verdict: no regression"), "{}", same.stdout);
    // Several baselines at once, named or from a folder.
    let two = run_in(&dir, &["compare", "a.json", "b.json", "c.json"], &[], Duration::from_secs(30));
    assert_eq!(two.code, Some(0), "{}", two.all());
    assert!(two.stdout.contains("(2 reports)"), "{}", two.stdout);

    // A lower rate cap: 30 % less throughput in the steady phase. This comparison is about
    // throughput: a latency floor of 5 ms keeps a 2-core machine's sub-millisecond p99 swings out
    // of it (seen once in CI: the warm phase's p99 455 µs → 1.55 ms in one run, significant and
    // over the default 1 ms floor, while nothing had changed). Latency regressions are the slowed
    // server's part below.
    let out = apply(&dir, &server, "slow.json", &["--set", "phases.steady.rate=700"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let slow = run_in(&dir, &["compare", "a.json", "b.json", "slow.json", "--latency-floor", "5ms"], &[], Duration::from_secs(30));
    assert_eq!(slow.code, Some(1), "{}", slow.all());
    assert!(slow.stdout.lines().any(|l| l.starts_with("phase steady") && l.contains("REGRESSION") && l.contains("ops_per_sec")), "{}", slow.stdout);
    assert!(slow.stdout.lines().any(|l| l.starts_with("phase warm") && l.trim_end().ends_with('~')), "the unchanged phase is not flagged: {}", slow.stdout);

    // A slower server through the steady phase.
    apply_slowed(&dir, &server, "slowed.json", "steady", 5.8);
    let std_dir = dir.join("nightly");
    std::fs::create_dir_all(&std_dir).unwrap();
    for name in ["a.json", "b.json", "c.json"] {
        std::fs::copy(dir.join(name), std_dir.join(name)).unwrap();
    }
    let slowed = run_in(&dir, &["compare", "--baseline", "nightly", "slowed.json", "--json"], &[], Duration::from_secs(30));
    assert_eq!(slowed.code, Some(1), "{}", slowed.all());
    let c: serde_json::Value = serde_json::from_str(&slowed.stdout).unwrap();
    assert_eq!(c["baselines"].as_array().unwrap().len(), 3, "every report in the folder");
    let regressed: Vec<String> = c["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["phase"] == "steady")
        .flat_map(|r| r["deltas"].as_array().unwrap().iter().filter(|d| d["verdict"] == "regression").map(|d| d["metric"].as_str().unwrap().to_owned()))
        .collect();
    assert!(regressed.iter().any(|m| m == "p50_us" || m == "p99_us"), "{regressed:?}");
    assert!(c["rows"].as_array().unwrap().iter().filter(|r| r["phase"] == "warm").all(|r| r["regression"] == false), "{}", slowed.stdout);

    // regression: verdicts II item 6. Stalls for 3 s of a 6 s warm-up (p99 529 µs → 49 ms) were
    // "~": six per-second samples could not reach significance after correcting for every test.
    // Judged run against runs, the phase's p99 is far outside every baseline.
    apply_slowed(&dir, &server, "stalled.json", "warm", 3.0);
    let stalled = run_in(&dir, &["compare", "a.json", "b.json", "c.json", "stalled.json"], &[], Duration::from_secs(30));
    assert_eq!(stalled.code, Some(1), "{}", stalled.all());
    assert!(stalled.stdout.lines().any(|l| l.starts_with("phase warm") && l.contains("REGRESSION") && l.contains("p99_us")), "{}", stalled.stdout);
    // With one baseline the stall is still caught, and the comparison says noise is unknown.
    let single = run_in(&dir, &["compare", "a.json", "stalled.json"], &[], Duration::from_secs(30));
    assert_eq!(single.code, Some(1), "{}", single.all());
    assert!(single.stdout.contains("run-to-run noise is unknown"), "{}", single.stdout);
}

#[test]
fn a_report_of_the_previous_format_is_a_baseline() {
    // A nightly's history spans upgrades of redis-test: tests/fixtures/report-v1.json was written
    // by redis-test at 3d169e4 (report version 1) from tests/fixtures/report-v1.yaml.
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let dir = scratch("compare-v1");
    let fixtures = common::repo().join("tests/fixtures");
    let out = run_in(
        &dir,
        &["apply", fixtures.join("report-v1.yaml").to_str().unwrap(), "--target", &server.url(), "--json", "now.json", "--quiet"],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{}", out.all());
    let v1 = fixtures.join("report-v1.json");
    let c = run_in(&dir, &["compare", v1.to_str().unwrap(), "now.json", "--all", "--json"], &[], Duration::from_secs(30));
    assert!(c.code == Some(0) || c.code == Some(1), "{}", c.all());
    let c: serde_json::Value = serde_json::from_str(&c.stdout).unwrap();
    assert!(c["missing"].as_array().unwrap().is_empty(), "every row of the old report is found: {c}");
    let steady = c["rows"].as_array().unwrap().iter().find(|r| r["phase"] == "steady" && r["workload"] == "*").unwrap();
    let ops = steady["deltas"].as_array().unwrap().iter().find(|d| d["metric"] == "ops_per_sec").unwrap();
    assert!((900.0..1100.0).contains(&ops["baseline"].as_f64().unwrap()), "the old report's throughput read as it was written: {ops}");
    // Its time series gains `ok` when read.
    let r = run_in(&dir, &["report", v1.to_str().unwrap(), "--html", "v1.html"], &[], Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{}", r.all());
    // A report from a newer redis-test is refused, saying which version wrote it.
    let mut newer: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&v1).unwrap()).unwrap();
    newer["report_version"] = serde_json::json!(99);
    std::fs::write(dir.join("newer.json"), newer.to_string()).unwrap();
    let refused = run_in(&dir, &["compare", "newer.json", "now.json"], &[], Duration::from_secs(30));
    assert_eq!(refused.code, Some(2), "{}", refused.all());
    assert!(refused.stderr.contains("newer redis-test (report version 99"), "{}", refused.stderr);
}

#[test]
fn compare_refuses_unrelated_reports_and_flags_missing_rows() {
    let server = RedisServer::start(&[]);
    let dir = scratch("compare-unrelated");
    let body = |phase: &str, mix: &str| {
        format!(
            "name: u\ntarget: {{url: redis://x}}\nworkloads: {{a: {{kind: basic}}, b: {{kind: set}}}}\nphases: [{{name: {phase}, duration: 6s, workers: 2, rate: 300, mix: {mix}}}]\n"
        )
    };
    for (file, phase, mix) in [("one.yaml", "one", "{a: 1, b: 1}"), ("other.yaml", "other", "{a: 1}"), ("fewer.yaml", "one", "{a: 1}")] {
        std::fs::write(dir.join(file), body(phase, mix)).unwrap();
        let out = run_in(&dir, &["apply", file, "--target", &server.url(), "--json", &file.replace("yaml", "json"), "--quiet"], &[], Duration::from_secs(60));
        assert_eq!(out.code, Some(0), "{}", out.all());
    }
    let unrelated = run_in(&dir, &["compare", "one.json", "other.json"], &[], Duration::from_secs(30));
    assert_eq!(unrelated.code, Some(2), "{}", unrelated.all());
    assert!(unrelated.stderr.contains("not comparable") && unrelated.stderr.contains("share no phase"), "{}", unrelated.all());
    let fewer = run_in(&dir, &["compare", "one.json", "fewer.json"], &[], Duration::from_secs(30));
    assert_eq!(fewer.code, Some(1), "a baseline row the current run lacks is a failure: {}", fewer.all());
    assert!(fewer.stdout.contains("MISSING in the current run: one b SADD"), "{}", fewer.stdout);
}

#[test]
fn compare_rejects_files_that_are_not_reports() {
    let dir = scratch("compare-bad");
    std::fs::write(dir.join("x.json"), "{\"not\": \"a report\"}").unwrap();
    let out = run_in(&dir, &["compare", "x.json", "missing.json"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stderr.contains("x.json") && out.stderr.contains("not a redis-test report"), "{}", out.all());
}
