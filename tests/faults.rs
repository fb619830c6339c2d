//! Faults against a real redis-server, and the resilience verdict the report gives for each:
//! a pause shows up as latency and outage, not errors; killed connections are replaced; a
//! restarted local server is survived; a frozen node (SIGSTOP) times out and recovers with either
//! client; shell faults report their outcome; writes removed behind the tool's back are counted as
//! lost.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{RedisServer, read_report, run_in, scratch};
use serde_json::Value;

fn apply(dir: &Path, file: &str, body: &str, extra: &[&str]) -> (common::Outcome, Value) {
    std::fs::write(dir.join(file), body).unwrap();
    let mut args = vec!["apply", file, "--json", "r.json", "--quiet"];
    args.extend_from_slice(extra);
    let out = run_in(dir, &args, &[], Duration::from_secs(90));
    let report = read_report(&dir.join("r.json"));
    (out, report)
}

fn verdict(report: &Value, i: usize) -> &Value {
    &report["faults"][i]["result"]
}

#[test]
fn a_client_pause_is_latency_and_outage_not_errors() {
    let server = RedisServer::start(&[]);
    let dir = scratch("pause");
    let body = "name: pause\ntarget: {url: redis://x}\nconnections: {command_timeout: 5s, acquire_timeout: 5s}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 6s, workers: 8, rate: 500}]\nfaults: [{action: client_pause, at: 2s, duration: 2s, name: pause-2s}]\nthresholds: [\"outage < 3s\", \"error_rate == 0\"]\n";
    let (out, report) = apply(&dir, "pause.yaml", body, &["--target", &server.url()]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let v = verdict(&report, 0);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(report["totals"]["errors"], 0, "a pause shorter than the command timeout is no error");
    assert!(v["time_to_first_error_s"].is_null(), "{v}");
    let outage = v["outage_s"].as_f64().unwrap();
    assert!((1.5..=2.6).contains(&outage), "a 2 s pause gave an outage of {outage} s");
    let recovery = v["recovery_s"].as_f64().unwrap();
    assert!((1.5..=3.0).contains(&recovery), "recovered after {recovery} s");
    // Measured from the intended start, operations queued behind the pause carry it as latency.
    let p99 = report["totals"]["latency_us"]["p99"].as_u64().unwrap();
    assert!(p99 > 1_000_000, "p99 {p99} us");
    assert!(out.stdout.contains("fault pause-2s at 2."), "{}", out.stdout);
}

#[test]
fn killed_connections_are_classified_and_replaced() {
    let server = RedisServer::start(&[]);
    let dir = scratch("kill");
    // Writes only: they are not resent, so every killed connection that is used again shows up as
    // a connection error (reads would be resent; tests below cover that).
    let body = "name: kill\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic, read_ratio: 0.0}}\nphases: [{name: p, duration: 4s, workers: 8, rate: 800}]\nfaults: [{action: client_kill, at: 2s, clients: normal}]\n";
    let (out, report) = apply(&dir, "kill.yaml", body, &["--target", &server.url()]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let v = verdict(&report, 0);
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["detail"].as_str().unwrap().starts_with("killed "), "{v}");
    assert!(v["errors"]["connection"].as_u64().unwrap_or(0) > 0, "connection errors are counted as such: {v}");
    assert!(v["reconnects"].as_u64().unwrap() > 0, "{v}");
    assert!(report["connections"]["dropped"].as_u64().unwrap() > 0);
    let count = report["phases"][0]["count"].as_u64().unwrap();
    assert!((3136..=3264).contains(&count), "the schedule held through the kill: {count}");
    let ok: u64 = report["phases"][0]["operations"].as_array().unwrap().iter().map(|o| o["ok"].as_u64().unwrap()).sum();
    assert!(ok > 3000, "almost everything succeeded: {ok}");
}

#[test]
fn a_restarted_local_server_is_survived_and_measured() {
    let dir = scratch("restart");
    let body = "name: restart\ntarget: {local: standalone}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 6s, workers: 4, rate: 400}]\nfaults: [{action: restart, at: 1500ms, down_for: 1s}, {action: debug_sleep, at: 4500ms, duration: 300ms}]\n";
    let (out, report) = apply(&dir, "restart.yaml", body, &[]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let restart = verdict(&report, 0);
    assert_eq!(restart["ok"], true, "{restart}");
    // Down for 1 s, plus the time to start again, plus up to one reconnect backoff: the default
    // policy (50 ms doubling, ±20 %) tries at 0.05, 0.15, 0.35, 0.75 and 1.55 s (±20 %) after the
    // first failure, so the server is reached again within about 1.9 s.
    let outage = restart["outage_s"].as_f64().unwrap();
    assert!((0.8..=2.2).contains(&outage), "down for 1 s gave an outage of {outage} s");
    // The first error is a write on a dead connection at once, or (when reads, which are resent,
    // met the dead connections first) a pool timeout once the 1 s acquire timeout runs out.
    assert!(restart["time_to_first_error_s"].as_f64().unwrap() < 1.5, "{restart}");
    assert!(!restart["recovery_s"].is_null(), "throughput came back: {restart}");
    // Reconnects are paced by the backoff, not tried by every operation (400 ops/s would make
    // hundreds of attempts): about six attempts in the ~1.2 s the server is away.
    let failed = report["connections"]["connect_errors"].as_u64().unwrap();
    assert!((1..=10).contains(&failed), "{failed} failed connection attempts: {}", report["connections"]);
    let sleep = verdict(&report, 1);
    assert_eq!(sleep["ok"], true, "DEBUG SLEEP is allowed on local servers: {sleep}");
    let outage = sleep["outage_s"].as_f64().unwrap();
    assert!((0.2..=0.6).contains(&outage), "a 300 ms sleep gave an outage of {outage} s");
}

#[test]
fn a_frozen_node_gives_timeouts_then_recovery_with_either_client() {
    // SIGSTOP: connections stay open and nothing answers — the stuck node, not the dead one.
    let dir = scratch("freeze");
    let body = "name: freeze\ntarget: {local: standalone}\nconnections: {command_timeout: 500ms, acquire_timeout: 1s}\nworkloads: {w: {kind: basic, read_ratio: 0.5}}\nphases: [{name: p, duration: 7s, workers: 16, rate: 400}]\nfaults: [{action: freeze, at: 1500ms, duration: 3s}]\n";
    for client in ["native", "redis-rs"] {
        let (out, report) = apply(&dir, "freeze.yaml", body, &["--client", client]);
        assert_eq!(out.code, Some(0), "{client}: {}", out.all());
        let v = verdict(&report, 0);
        assert_eq!(v["ok"], true, "{client}: {v}");
        assert!(v["detail"].as_str().unwrap().starts_with("froze node 0"), "{client}: {v}");
        let errors = v["errors"].as_object().unwrap();
        assert!(errors.get("timeout").and_then(Value::as_u64).unwrap_or(0) > 0, "{client}: a frozen node times out: {v}");
        // Frozen for 3 s; the outage ends with the first success after SIGCONT.
        let outage = v["outage_s"].as_f64().unwrap();
        assert!((2.7..=4.0).contains(&outage), "{client}: a 3 s freeze gave an outage of {outage} s: {v}");
        assert!(!v["recovery_s"].is_null(), "{client}: throughput came back: {v}");
        // The last seconds of the plan run clean again.
        let series = report["time_series"].as_array().unwrap();
        let last = &series[series.len() - 2];
        assert_eq!(last["errors"], 0, "{client}: {last}");
        assert!(last["ops"].as_u64().unwrap() >= 300, "{client}: {last}");
    }
}

#[test]
fn shell_faults_report_success_failure_and_timeout_and_failures_fail_the_run() {
    let server = RedisServer::start(&[]);
    let dir = scratch("shell");
    let body = "name: shell\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 2s, workers: 2, rate: 100}]\nfaults:\n  - {action: shell, at: 100ms, command: \"echo target=$REDIS_TEST_TARGET\"}\n  - {action: shell, at: 500ms, command: \"echo broken >&2; exit 3\"}\n  - {action: shell, at: 1s, command: \"sleep 30\", timeout: 200ms}\n";
    let (out, report) = apply(&dir, "shell.yaml", body, &["--target", &server.url()]);
    assert_eq!(out.code, Some(1), "a failed fault fails the run: {}", out.all());
    assert_eq!(verdict(&report, 0)["ok"], true);
    assert_eq!(verdict(&report, 0)["detail"], format!("exit 0: target=127.0.0.1:{}", server.port));
    assert_eq!(verdict(&report, 1)["ok"], false);
    assert!(verdict(&report, 1)["detail"].as_str().unwrap().contains("broken"), "{}", verdict(&report, 1));
    assert_eq!(verdict(&report, 2)["ok"], false);
    assert!(verdict(&report, 2)["detail"].as_str().unwrap().contains("timed out"), "{}", verdict(&report, 2));
    assert!(verdict(&report, 2)["finished_s"].as_f64().unwrap() < 1.6, "the timeout cut the command short");
}

#[test]
fn writes_removed_behind_the_tools_back_are_counted_as_lost() {
    let server = RedisServer::start(&[]);
    let dir = scratch("lost");
    // Phase 1 writes (and remembers) under rt-v:w:; phase 2 only reads, and a shell fault deletes
    // every written key at its start, behind the tool's back.
    let body = format!(
        "name: lost\ntarget: {{url: redis://x}}\nkeyspace: {{prefix: \"rt-v:\", keys: 200}}\nworkloads:\n  w: {{kind: basic, read_ratio: 0.0, verify: true}}\n  r: {{kind: basic, read_ratio: 1.0, weight: 0}}\nphases:\n  - {{name: write, duration: 1s, workers: 2, rate: 400}}\n  - {{name: read, duration: 1s, workers: 2, rate: 100, mix: {{r: 1}}}}\nfaults:\n  - {{action: shell, at: 0s, phase: read, command: \"redis-cli -p {} --scan --pattern 'rt-v:w:*' | xargs -r redis-cli -p {} DEL\"}}\nthresholds: [\"lost_writes == 0\"]\n",
        server.port, server.port
    );
    let (out, report) = apply(&dir, "lost.yaml", &body, &["--target", &server.url()]);
    assert_eq!(out.code, Some(1), "lost_writes == 0 cannot hold: {}", out.all());
    assert_eq!(verdict(&report, 0)["ok"], true, "{}", verdict(&report, 0));
    let v = &report["verify"][0];
    let checked = v["checked"].as_u64().unwrap();
    assert!(checked > 50, "{v}");
    // Every write was a SET (read, delete and incr ratios are 0), and every key was deleted.
    assert_eq!(v["lost"].as_u64().unwrap(), checked, "{v}");
    assert!(out.stdout.contains("FAIL lost_writes == 0"), "{}", out.stdout);
}

#[test]
fn reads_are_resent_after_a_connection_error_and_writes_are_not() {
    let server = RedisServer::start(&[]);
    let dir = scratch("retry");
    let body = |read_ratio: f64| {
        format!(
            "name: retry\ntarget: {{url: redis://x}}\nconnections: {{retry: {{attempts: 3, initial_backoff: 10ms}}}}\nworkloads: {{w: {{kind: basic, read_ratio: {read_ratio}}}}}\nphases: [{{name: p, duration: 3s, workers: 8, rate: 800}}]\nfaults: [{{action: client_kill, at: 1s, clients: own}}, {{action: client_kill, at: 2s, clients: own}}]\n"
        )
    };
    let (out, reads) = apply(&dir, "reads.yaml", &body(1.0), &["--target", &server.url()]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let get = &reads["phases"][0]["operations"][0];
    assert_eq!(get["operation"], "GET");
    assert!(get["retries"].as_u64().unwrap() > 0, "killed reads were resent: {get}");
    assert!(get["errors"]["connection"].is_null(), "and none failed: {get}");
    let (out, writes) = apply(&dir, "writes.yaml", &body(0.0), &["--target", &server.url()]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let set = &writes["phases"][0]["operations"][0];
    assert_eq!(set["operation"], "SET");
    assert_eq!(set["retries"], 0, "writes are not resent without retry_writes: {set}");
    assert!(set["errors"]["connection"].as_u64().unwrap() > 0, "{set}");
}
