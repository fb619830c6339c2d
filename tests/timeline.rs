//! The timeline is the scenario (verdicts II): faults start at their offsets, concurrently when they
//! overlap; recovery is judged against the plan's level, not a burst, and "not recovered" fails
//! its rules; a fault that failed or was cut short fails the run; a shell fault is done when its
//! shell exits; the time series counts failures apart; the report, the JUnit file and the exit
//! code agree. Each test reproduces one observation of the issue on real local servers.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{read_report, run_in, scratch};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(120);

fn apply(dir: &Path, name: &str, body: &str, extra: &[&str]) -> (common::Outcome, Value) {
    std::fs::write(dir.join(format!("{name}.yaml")), body).unwrap();
    let file = format!("{name}.yaml");
    let mut args = vec!["apply", file.as_str(), "--json", "r.json", "--junit", "r.xml", "--quiet"];
    args.extend_from_slice(extra);
    let out = run_in(dir, &args, &[], DEADLINE);
    let report = read_report(&dir.join("r.json"));
    (out, report)
}

fn fault<'a>(report: &'a Value, name: &str) -> &'a Value {
    let f = report["faults"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("no fault {name}: {report}"));
    &f["result"]
}

/// `failures="N"` of the JUnit file's test suite.
fn junit_failures(dir: &Path) -> u64 {
    let xml = std::fs::read_to_string(dir.join("r.xml")).unwrap();
    let at = xml.find("<testsuite ").expect("a test suite");
    let rest = &xml[at..];
    let f = rest.find("failures=\"").unwrap() + "failures=\"".len();
    rest[f..rest[f..].find('"').unwrap() + f].parse().unwrap()
}

#[test]
fn overlapping_faults_start_at_their_offsets_together() {
    // regression: verdicts II item 1. Latency 20 ms at 1 s for 3 s, a kill at 2 s and a blackhole
    // at 3 s for 2 s ran one after another: the kill at 4.003 s, the blackhole at 4.005 s, cut
    // short. A shell observer at 2 s pushed what followed it.
    let dir = scratch("timeline-offsets");
    let body = r#"name: offsets
target: {local: standalone}
connections: {command_timeout: 500ms}
workloads: {w: {kind: basic, read_ratio: 0.5}}
phases: [{name: p, duration: 7s, workers: 8, rate: 400}]
faults:
  - {action: latency, name: slow, at: 1s, delay: 20ms, duration: 3s}
  - {action: client_kill, name: kill, at: 2s}
  - {action: shell, name: observer, at: 2s, command: "sleep 1.5; echo looked", timeout: 5s}
  - {action: blackhole, name: hole, at: 3s, duration: 2s}
  - {action: debug_sleep, name: nap, at: 2500ms, duration: 100ms}
"#;
    let (out, report) = apply(&dir, "offsets", body, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    for (name, planned) in [("slow", 1.0), ("kill", 2.0), ("observer", 2.0), ("hole", 3.0), ("nap", 2.5)] {
        let v = fault(&report, name);
        let at = v["at_s"].as_f64().unwrap();
        assert!((planned..planned + 0.1).contains(&at), "{name} planned at {planned} s started at {at} s: {v}");
        assert_eq!(v["planned_s"].as_f64(), Some(planned), "{v}");
        assert_eq!(v["late"], false, "{v}");
        assert_eq!(v["ok"], true, "{name}: {v}");
    }
    // The blackhole held for its 2 s although the latency fault and the observer overlapped it.
    let hole = fault(&report, "hole");
    let took = hole["finished_s"].as_f64().unwrap() - hole["at_s"].as_f64().unwrap();
    assert!((1.95..2.3).contains(&took), "the blackhole lasted {took} s");
    assert!(!out.stdout.contains("s late:"), "no fault started late: {}", out.stdout);
}

#[test]
fn faults_that_cannot_overlap_are_refused_with_both_lines() {
    let dir = scratch("timeline-overlap-refused");
    let body = "name: o\ntarget: {local: cluster}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 30s, workers: 1}]\nfaults:\n  - {action: restart, node: 1, at: 2s, down_for: 3s}\n  - {action: freeze, node: 2, at: 3s, duration: 1s}\n  - {action: freeze, node: 1, at: 4s, duration: 1s}\n  - {action: rolling_upgrade, at: 10s}\n  - {action: rolling_upgrade, at: 25s}\n";
    std::fs::write(dir.join("o.yaml"), body).unwrap();
    let out = run_in(&dir, &["validate", "o.yaml"], &[], DEADLINE);
    assert_eq!(out.code, Some(2), "{}", out.all());
    let e = &out.stderr;
    assert!(e.contains("o.yaml:8:") && e.contains("overlaps fault `restart@2s` (line 6)"), "the later restart names the earlier's line: {e}");
    assert!(e.contains("o.yaml:6:") && e.contains("overlaps fault `freeze@4s` (line 8)"), "and the other way round: {e}");
    assert!(e.contains("line 9") && e.contains("line 10") && e.contains("two rolling upgrades cannot overlap"), "{e}");
    assert!(!e.contains("freeze@3s`"), "node 2 overlaps nothing: {e}");
}

#[test]
fn recovery_is_judged_against_the_plan_not_a_catch_up_burst() {
    // regression: verdicts II item 2. After a blackhole, the catch-up burst was taken as the level
    // before a reset and a bandwidth fault that never dented throughput: both "not back".
    let dir = scratch("timeline-recovery");
    let body = r#"name: recovery
target: {local: standalone}
connections: {command_timeout: 1s, connect_timeout: 500ms, retry: {max_backoff: 200ms}}
workloads: {w: {kind: basic, read_ratio: 0.5, keyspace: {value_size: 100B}}}
phases: [{name: p, duration: 13s, workers: 16, rate: 400}]
faults:
  - {action: blackhole, name: hole, at: 3s, duration: 2s}
  - {action: reset, name: reset, at: 8s}
  - {action: bandwidth, name: narrow, at: 10s, bytes_per_second: 1MiB, duration: 1s}
thresholds:
  - recovery_time < 4s
"#;
    let (out, report) = apply(&dir, "recovery", body, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    for name in ["reset", "narrow"] {
        let v = fault(&report, name);
        assert_eq!(v["recovery"], "recovered", "{name}: {v}");
        let r = v["recovery_s"].as_f64().unwrap();
        assert!(r < 0.6, "{name} barely dented throughput, yet recovered after {r} s: {v}");
        assert_eq!(v["recovery_level_ops"].as_f64(), Some(400.0), "the plan's rate is the level: {v}");
    }
    let hole = fault(&report, "hole");
    let r = hole["recovery_s"].as_f64().unwrap();
    assert!((1.9..4.0).contains(&r), "the blackhole's recovery {r} s");
}

#[test]
fn not_recovered_is_its_own_verdict_and_fails_recovery_rules() {
    // regression: verdicts II item 2. A fault after which throughput never came back showed
    // "observed 4s" (its window) and could pass `recovery_time < 5s`.
    let dir = scratch("timeline-not-recovered");
    let body = r#"name: never
target: {local: standalone}
connections: {command_timeout: 200ms}
workloads: {w: {kind: basic}}
phases: [{name: p, duration: 6s, workers: 4, rate: 200}]
faults:
  - {action: blackhole, name: forever, at: 2s, duration: 3500ms}
thresholds:
  - recovery_time < 5s
  - {expr: recovery_time < 5s, fault: forever}
"#;
    let (out, report) = apply(&dir, "never", body, &["--html", "r.html"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let v = fault(&report, "forever");
    assert_eq!(v["recovery"], "not_recovered", "{v}");
    assert!(v["recovery_s"].is_null(), "{v}");
    let t = &report["thresholds"][0];
    assert_eq!(t["passed"], false);
    assert!(t["observed"].is_null(), "no figure stands in for a recovery that did not happen: {t}");
    assert!(t["observed_text"].as_str().unwrap().starts_with("not recovered"), "{t}");
    assert!(out.stdout.contains("NOT RECOVERED"), "{}", out.stdout);
    let scoped = &report["thresholds"][1];
    assert_eq!(scoped["passed"], false, "{scoped}");
    assert_eq!(scoped["observed_text"], t["observed_text"], "one wording for both scopes");
    assert_eq!(junit_failures(&dir), 2);
    // The fault's row in the HTML report carries the rule judged over its window.
    let html = std::fs::read_to_string(dir.join("r.html")).unwrap();
    let row = &html[html.find("↳ rule").expect("the fault-scoped rule under its fault")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("FAIL") && row.contains("recovery_time &lt; 5s") && row.contains("not recovered"), "{row}");
}

#[test]
fn a_window_too_short_to_see_throughput_back_is_not_judged_as_not_recovered() {
    // Seen running scenarios/network-faults.yaml at --time-scale 0.05: its latency fault's window
    // (until the blackhole) was 0.2 s, and the native engine — whose throughput never dipped —
    // was "NOT RECOVERED" there, because being back takes 0.5 s at the level.
    let dir = scratch("timeline-too-short");
    let body = r#"name: short
target: {local: standalone}
workloads: {w: {kind: basic}}
phases: [{name: p, duration: 4s, workers: 4, rate: 200}]
faults:
  - {action: reset, name: brief, at: 2s}
  - {action: reset, name: judged, at: 2300ms}
thresholds:
  - recovery_time < 3s
  - {expr: recovery_time < 3s, fault: brief}
"#;
    let (out, report) = apply(&dir, "short", body, &["--html", "r.html"]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let brief = fault(&report, "brief");
    assert_eq!(brief["recovery"], "too_short", "{brief}");
    assert!(brief["recovery_s"].is_null(), "{brief}");
    assert_eq!(fault(&report, "judged")["recovery"], "recovered", "{}", fault(&report, "judged"));
    // The window as the faults really started (a few ms either side of 0.3 s).
    let window = brief["window_end_s"].as_f64().unwrap() - brief["at_s"].as_f64().unwrap();
    assert!((0.25..0.45).contains(&window), "{brief}");
    assert!(out.stdout.contains(&format!("window of {window:.2} s too short to judge recovery (0.5 s needed)")), "{}", out.stdout);
    assert!(!out.stdout.contains("NOT RECOVERED"), "{}", out.stdout);
    let whole = &report["thresholds"][0];
    assert_eq!(whole["passed"], true, "judged on the fault that could be: {whole}");
    let scoped = &report["thresholds"][1];
    assert_eq!(scoped["passed"], false, "a rule that measured nothing fails: {scoped}");
    assert!(scoped["observed_text"].as_str().unwrap().starts_with(&format!("no data: the window of fault `brief` ({window:.2} s) is too short")), "{scoped}");
    assert_eq!(junit_failures(&dir), 1, "JUnit and the exit code agree");
    assert!(std::fs::read_to_string(dir.join("r.html")).unwrap().contains("window too short to judge"));
}

#[test]
fn a_fault_that_fails_or_is_cut_short_fails_the_run_unless_not_required() {
    // regression: verdicts II item 3. Failed and cut-short faults left exit 0 while JUnit said
    // failures="1".
    let dir = scratch("timeline-failed-fault");
    let body = r#"name: failing
target: {local: standalone}
workloads: {w: {kind: basic}}
phases: [{name: p, duration: 2s, workers: 2, rate: 100}]
faults:
  - {action: shell, name: broken, at: 500ms, command: "echo about to fail >&2; exit 3", timeout: 5s}
  - {action: shell, name: endless, at: 1s, command: "sleep 30", timeout: 60s}
"#;
    let (out, report) = apply(&dir, "failing", body, &[]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let broken = fault(&report, "broken");
    assert_eq!(broken["ok"], false);
    assert!(broken["detail"].as_str().unwrap().contains("exit status: 3: about to fail"), "the reason names the exit status and stderr: {broken}");
    let endless = fault(&report, "endless");
    assert!(endless["detail"].as_str().unwrap().contains("cut short"), "{endless}");
    assert!(out.stdout.contains("verdict: FAIL (exit 1)"), "{}", out.stdout);
    assert!(out.stdout.contains("fault `broken`") && out.stdout.contains("fault `endless`"), "the summary names which and why: {}", out.stdout);
    assert_eq!(junit_failures(&dir), 2, "JUnit and the exit code agree");

    // The same faults marked `required: false` are reported and leave the verdict alone.
    let lenient = body.replace("timeout: 5s}", "timeout: 5s, required: false}").replace("timeout: 60s}", "timeout: 60s, required: false}");
    let (out, report) = apply(&dir, "lenient", &lenient, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert_eq!(fault(&report, "broken")["required"], false);
    assert!(out.stdout.contains("FAILED (not required"), "{}", out.stdout);
    assert_eq!(junit_failures(&dir), 0);
}

#[test]
fn a_shell_fault_is_done_when_its_shell_exits_and_its_children_end_with_the_run() {
    // regression: verdicts II item 3. `sleep 371 & echo started` was cut short: the tool waited
    // for the background child to close its output.
    let dir = scratch("timeline-shell-background");
    let marker = format!("sleep 37{}", std::process::id() % 10);
    let body = format!(
        "name: bg\ntarget: {{local: standalone}}\nworkloads: {{w: {{kind: basic}}}}\nphases: [{{name: p, duration: 2s, workers: 1, rate: 50}}]\nfaults:\n  - {{action: shell, name: bg, at: 200ms, command: \"{marker}1 & echo started\", timeout: 10s}}\n"
    );
    let (out, report) = apply(&dir, "bg", &body, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let v = fault(&report, "bg");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["detail"], "exit 0: started");
    let took = v["finished_s"].as_f64().unwrap() - v["at_s"].as_f64().unwrap();
    assert!(took < 0.5, "done when the shell exited, not when the background child closed its output: {took} s");
    let left = std::process::Command::new("pgrep").args(["-f", &format!("{marker}1")]).output().unwrap();
    assert!(left.stdout.is_empty(), "the background child outlived the run: {}", String::from_utf8_lossy(&left.stdout));
}

#[test]
fn the_time_series_counts_failures_apart_and_the_chart_shows_fault_windows() {
    // regression: verdicts II item 5. During a partition every operation failed, yet the series
    // showed 320–420 ops/s and no dip.
    let dir = scratch("timeline-series");
    let body = r#"name: split
target: {local: standalone}
connections: {command_timeout: 100ms, retry: {attempts: 1}}
workloads: {w: {kind: basic}}
phases: [{name: p, duration: 6s, workers: 16, rate: 400}]
faults:
  - {action: partition, name: split, at: 2s, duration: 2s}
"#;
    let (out, report) = apply(&dir, "split", body, &["--html", "r.html"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let series = report["time_series"].as_array().unwrap();
    // The whole seconds inside the partition: no successes, hundreds of failures.
    let inside: Vec<&Value> = series.iter().filter(|p| (3.0..=4.0).contains(&p["t"].as_f64().unwrap())).collect();
    assert!(!inside.is_empty());
    for p in &inside {
        assert!(p["ok"].as_u64().unwrap() < 40, "successes during the partition: {p}");
        assert!(p["errors"].as_u64().unwrap() > 100, "failures during the partition: {p}");
        assert_eq!(p["ok"].as_u64().unwrap() + p["errors"].as_u64().unwrap(), p["ops"].as_u64().unwrap(), "{p}");
    }
    let before = series.iter().find(|p| p["t"].as_f64().unwrap() <= 2.0).unwrap();
    assert!(before["ok_per_sec"].as_f64().unwrap() > 300.0, "{before}");
    let html = std::fs::read_to_string(dir.join("r.html")).unwrap();
    // The fault is a shaded window about 2 s wide on a 6 s axis (~270 px of 826), not a line.
    let at = html.find("<rect class=\"fault\"").expect("a shaded fault window");
    let width: f64 = html[at..].split("width=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
    assert!(width > 200.0, "the partition is drawn {width} px wide");
    assert!(html.contains("errors/s") && html.contains("log scale"), "failures drawn apart; latency on a log axis");
}

#[test]
fn a_failed_upgrade_names_its_reason_fails_the_run_and_leaves_the_node_running() {
    // regression: verdicts II item 3. `binary: /bin/true` failed the first step with an empty
    // reason ("redis-server did not start:"), left the replica down, and exited 0.
    let dir = scratch("timeline-bad-upgrade");
    let body = r#"name: bad-upgrade
target: {local: sentinel}
workloads: {w: {kind: basic}}
phases: [{name: p, duration: 4s, workers: 2, rate: 100}]
faults:
  - {action: rolling_upgrade, name: upgrade, at: 500ms, binary: /bin/true}
"#;
    let (out, report) = apply(&dir, "bad", body, &[]);
    assert_eq!(out.code, Some(1), "{}", out.all());
    let v = fault(&report, "upgrade");
    assert_eq!(v["ok"], false);
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("exited (exit status: 0) without saying it was ready: (no output)"), "{detail}");
    assert!(detail.contains("started again on its previous binary"), "{detail}");
    let step = &v["steps"][0];
    assert_eq!(step["ok"], false, "{step}");
    assert_eq!(junit_failures(&dir), 1);
    // The replica came back: the run's operations after the failed step succeeded.
    let series = report["time_series"].as_array().unwrap();
    let last = series.last().unwrap();
    assert!(last["ok"].as_u64().unwrap() > 0, "{last}");
}
