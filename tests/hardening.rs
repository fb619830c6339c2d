//! Hardening II beyond saved reports: outputs never replace what is at their path, a closed stdout
//! changes no exit code and loses no file, no child of a fault outlives a killed run, SIGHUP ends a
//! run like SIGTERM, credentials in exporter URLs are sent and never shown, the target URL can come
//! from the environment or a file, and a start years ahead is refused.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{RedisServer, bin, read_report, run_in, scratch};

const DEADLINE: Duration = Duration::from_secs(60);

fn scenario(dir: &Path, server: &RedisServer, name: &str, extra: &str) -> String {
    let body = format!(
        "name: {name}\ntarget: {{url: \"{}\"}}\nworkloads: {{w: {{kind: basic}}}}\nphases: [{{name: p, duration: 1s, workers: 2, rate: 100}}]\n{extra}",
        server.url()
    );
    std::fs::write(dir.join(format!("{name}.yaml")), body).unwrap();
    format!("{name}.yaml")
}

#[test]
fn outputs_go_through_fifos_devices_and_symlinks_without_replacing_them() {
    // regression: hardening II item 7. `--json` onto a FIFO and `--html` onto a device node turned
    // them into regular files; a symlink was replaced by a file.
    use std::os::unix::fs::FileTypeExt;
    let server = RedisServer::start(&[]);
    let dir = scratch("hardening-outputs");
    let file = scenario(&dir, &server, "out", "");
    let fifo = dir.join("report.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(&fifo).unwrap())
    };
    std::fs::write(dir.join("target.html"), "old").unwrap();
    std::os::unix::fs::symlink(dir.join("target.html"), dir.join("link.html")).unwrap();
    let out = run_in(&dir, &["apply", &file, "--json", "report.fifo", "--html", "link.html", "--junit", "/dev/null", "--quiet"], &[], DEADLINE);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let json = reader.join().unwrap();
    assert!(json.contains("\"report_version\""), "the report came through the FIFO");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "still a FIFO");
    assert!(std::fs::symlink_metadata(dir.join("link.html")).unwrap().file_type().is_symlink(), "still a symlink");
    assert!(std::fs::read_to_string(dir.join("target.html")).unwrap().contains("<html"), "the link's target got the page");
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device(), "/dev/null is still a device");
    let strays: Vec<String> = std::fs::read_dir("/dev")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".null."))
        .collect();
    assert!(strays.is_empty(), "the pre-run probe created files in /dev: {strays:?}");
    // A device node of our own (root only: mknod), written through and left a device.
    let node = dir.join("null-node");
    if Command::new("mknod").arg(&node).args(["c", "1", "3"]).status().is_ok_and(|s| s.success()) {
        let out = run_in(&dir, &["apply", &file, "--html", "null-node", "--quiet"], &[], DEADLINE);
        assert_eq!(out.code, Some(0), "{}", out.all());
        assert!(std::fs::metadata(&node).unwrap().file_type().is_char_device(), "the device node is still a device");
    }
    // A FIFO nobody reads is an error before the run, not a hang after it.
    let lonely = dir.join("lonely.fifo");
    assert!(Command::new("mkfifo").arg(&lonely).status().unwrap().success());
    let out = run_in(&dir, &["apply", &file, "--json", "lonely.fifo", "--quiet"], &[], DEADLINE);
    assert_ne!(out.code, Some(0), "{}", out.all());
    // `-` is stdout.
    let out = run_in(&dir, &["apply", &file, "--json", "-", "--quiet"], &[], DEADLINE);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("\"report_version\""), "{}", out.stdout);
}

/// Runs the binary with stdout a pipe whose reader is gone before anything is written.
fn with_closed_stdout(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(bin()).args(args).current_dir(dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (child.wait().unwrap().code(), err)
}

#[test]
fn a_closed_stdout_changes_no_exit_code_and_loses_no_file() {
    // regression: hardening II item 8. `apply … | head -1` wrote the JSON, never the JUnit, and
    // exited 101; `merge`, `validate` and `schema` panicked the same way.
    let server = RedisServer::start(&[]);
    let dir = scratch("hardening-epipe");
    let file = scenario(&dir, &server, "pipe", "thresholds: [\"error_rate < 1%\"]\n");
    let (code, err) = with_closed_stdout(&dir, &["apply", &file, "--json", "a.json", "--junit", "a.xml", "--html", "a.html", "--quiet"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    for f in ["a.json", "a.xml", "a.html"] {
        assert!(dir.join(f).is_file(), "{f} was not written: {err}");
    }
    for args in [vec!["validate", file.as_str()], vec!["schema"], vec!["report", "a.json"], vec!["man", "apply"]] {
        let (code, err) = with_closed_stdout(&dir, &args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

fn wait_for_line(child: &mut std::process::Child, what: &str) -> std::io::Lines<BufReader<std::process::ChildStderr>> {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.contains(what)), "never printed `{what}`");
    lines
}

/// Whether a process whose command line contains `marker` is alive, within `limit`.
fn gone_within(marker: &str, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        let left = Command::new("pgrep").args(["-f", marker]).output().unwrap();
        if left.stdout.is_empty() {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn no_child_of_a_fault_outlives_a_killed_run_and_sighup_ends_a_run_like_sigterm() {
    // regression: hardening II item 9. `kill -9` of apply during a shell fault left `sh -c 'sleep
    // …'` and its child under init; SIGHUP killed apply on the spot: no report, no 130.
    let server = RedisServer::start(&[]);
    let dir = scratch("hardening-children");
    let marker = format!("sleep 39{}", std::process::id() % 100);
    let file = scenario(&dir, &server, "kids", &format!("faults: [{{action: shell, at: 100ms, command: \"{marker}1 & {marker}2\", timeout: 30s}}]\n"));
    std::fs::write(dir.join(&file), std::fs::read_to_string(dir.join(&file)).unwrap().replace("duration: 1s", "duration: 20s")).unwrap();
    let mut child = common::spawn(&dir, &["apply", &file], &[]);
    let _rest = wait_for_line(&mut child, "phase p started");
    // Both sleeps run once the fault started.
    let until = Instant::now() + Duration::from_secs(5);
    while Command::new("pgrep").args(["-f", &format!("{marker}2")]).output().unwrap().stdout.is_empty() {
        assert!(Instant::now() < until, "the fault's command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill").args(["-9", &child.id().to_string()]).status();
    let _ = child.wait();
    assert!(gone_within(&marker, Duration::from_secs(3)), "the shell fault's processes outlived `kill -9` of the run");

    // SIGHUP: the report is written and the exit code is 130.
    let long = scenario(&dir, &server, "hup", "");
    std::fs::write(dir.join(&long), std::fs::read_to_string(dir.join(&long)).unwrap().replace("duration: 1s", "duration: 30s")).unwrap();
    let mut child = common::spawn(&dir, &["apply", &long, "--json", "hup.json"], &[]);
    let _rest = wait_for_line(&mut child, "phase p started");
    let _ = Command::new("kill").args(["-HUP", &child.id().to_string()]).status();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(read_report(&dir.join("hup.json"))["interrupted"], true);
}

/// A one-shot HTTP server on loopback that answers 200 and hands back the request's head.
fn capture_one_request() -> (u16, std::thread::JoinHandle<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        String::from_utf8_lossy(&head).into_owned()
    });
    (port, handle)
}

#[test]
fn exporter_credentials_are_sent_as_basic_auth_and_never_shown() {
    // regression: hardening II item 10. The OTLP endpoint `http://otuser:OTLPPW5@…` was printed on
    // stderr, in a WARN line and the log file, and not sent as Basic auth; header values were not
    // percent-decoded.
    let server = RedisServer::start(&[]);
    let dir = scratch("hardening-otlp-secrets");
    let file = scenario(&dir, &server, "otlp", "");
    let (port, request) = capture_one_request();
    let endpoint = format!("http://otuser:OTLPPW5@127.0.0.1:{port}");
    let out = run_in(
        &dir,
        &["apply", &file, "--log-file", "run.log", "--log-level", "debug"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-team=load%20tests,x-key=a%3Db"),
        ],
        DEADLINE,
    );
    assert_eq!(out.code, Some(0), "{}", out.all());
    let head = request.join().unwrap().to_lowercase();
    // base64("otuser:OTLPPW5")
    assert!(head.contains("authorization: basic b3r1c2vyok9utfbqvzu="), "{head}");
    assert!(head.contains("x-team: load tests") && head.contains("x-key: a=b"), "percent-decoded header values: {head}");
    let log = std::fs::read_to_string(dir.join("run.log")).unwrap_or_default();
    for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr), ("log file", &log)] {
        assert!(!text.contains("OTLPPW5"), "the password is in the {what}: {text}");
    }
}

#[test]
fn the_target_url_can_come_from_the_environment_or_a_file() {
    // regression: hardening II item 12. The only way to give a URL with a password was the command
    // line, visible to every user in `ps`.
    let server = RedisServer::start(&["requirepass hunter2"]);
    let dir = scratch("hardening-target-env");
    std::fs::write(
        dir.join("t.yaml"),
        "name: t\ntarget: {url: redis://nowhere:1}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 500ms, workers: 1, rate: 50}]\n",
    )
    .unwrap();
    let url = format!("redis://:hunter2@127.0.0.1:{}", server.port);
    let out = run_in(&dir, &["apply", "t.yaml", "--target-env", "MY_REDIS", "--quiet"], &[("MY_REDIS", url.as_str())], DEADLINE);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(!out.all().contains("hunter2"), "{}", out.all());
    std::fs::write(dir.join("url.txt"), format!("{url}\n")).unwrap();
    let out = run_in(&dir, &["apply", "t.yaml", "--target-file", "url.txt", "--quiet"], &[], DEADLINE);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let unset = run_in(&dir, &["plan", "t.yaml", "--target-env", "NOT_SET_ANYWHERE"], &[], DEADLINE);
    assert_eq!(unset.code, Some(2), "{}", unset.all());
    assert!(unset.stderr.contains("NOT_SET_ANYWHERE"), "{}", unset.stderr);
}

#[test]
fn a_start_years_ahead_is_refused() {
    // regression: hardening II item 13. `--start-at` years ahead waited without bound.
    let server = RedisServer::start(&[]);
    let dir = scratch("hardening-start-at");
    let file = scenario(&dir, &server, "later", "");
    let started = Instant::now();
    let out = run_in(&dir, &["apply", &file, "--shard", "0/2", "--start-at", "2030-01-01T00:00:00Z"], &[], DEADLINE);
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stderr.contains("--start-at-max"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5));
}
