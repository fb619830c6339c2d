//! Logs: events carry the run id, phase changes, connection events and threshold verdicts are
//! logged, the file rotates by size, and no password ever reaches a log.

mod common;

use std::io::{BufRead, BufReader};

use common::{RedisServer, read_report, scratch};

#[test]
fn logs_carry_the_run_id_and_events_but_never_the_password() {
    let server = RedisServer::start(&["requirepass l0g-pa55word"]);
    let dir = scratch("logs");
    std::fs::write(
        dir.join("l.yaml"),
        "name: l\ntarget: {url: redis://x, password: \"${PW}\"}\nworkloads: {w: {kind: basic}}\nphases:\n  - {name: first, duration: 1s, workers: 4, rate: 400}\n  - {name: second, duration: 2s, workers: 4, rate: 400}\nthresholds: [\"p99 < 10s\", \"ops < 1\"]\n",
    )
    .unwrap();
    let url = server.url();
    let args = [
        "apply",
        "l.yaml",
        "--target",
        &url,
        "--run-id",
        "log-run-7",
        "--log-level",
        "trace",
        "--log-file",
        "logs/run.log",
        "--log-rotation",
        "size:64KiB",
        "--json",
        "r.json",
    ];
    let mut child = common::spawn(&dir, &args, &[("PW", "l0g-pa55word")]);
    // When the second phase starts, kill every client connection: the pool must drop and replace them.
    let stderr = child.stderr.take().unwrap();
    let mut console = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if line.contains("phase second started") {
            server.cli_auth(Some("l0g-pa55word"), &["CLIENT", "KILL", "TYPE", "normal"]);
        }
        console.push_str(&line);
        console.push('\n');
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "`ops < 1` fails: {console}");
    let mut log = String::new();
    for entry in std::fs::read_dir(dir.join("logs")).unwrap() {
        log.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    for want in [
        "run{run_id=log-run-7}",
        "run starting",
        "target ready",
        "phase running phase=first",
        "phase running phase=second",
        "connection opened",
        "broken connection dropped",
        "threshold held rule=p99 < 10s",
        "threshold failed rule=ops < 1",
    ] {
        assert!(log.contains(want), "{want:?} not logged:\n{log}");
    }
    for text in [&log, &console, &String::from_utf8_lossy(&out.stdout).into_owned(), &std::fs::read_to_string(dir.join("r.json")).unwrap()] {
        assert!(!text.contains("l0g-pa55word"), "the password leaked");
    }
    let report = read_report(&dir.join("r.json"));
    assert!(report["connections"]["dropped"].as_u64().unwrap() > 0, "{}", report["connections"]);
    assert!(report["connections"]["reconnects"].as_u64().unwrap() > 0, "{}", report["connections"]);
    let second: u64 = report["phases"][1]["operations"].as_array().unwrap().iter().map(|o| o["ok"].as_u64().unwrap()).sum();
    assert!(second > 400, "the run recovered after the kill: {second} successes in the second phase");
}
