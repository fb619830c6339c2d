//! Hostile inputs (issue 10): no input hangs the tool, balloons its memory or outlives a signal.
//! Each case ends in at most 2 s with exit 2 and at most 100 MB of memory (measured by
//! /usr/bin/time), or, for the pacer at the highest rate allowed, keeps its schedule and stops.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{RedisServer, bin, read_report, scratch};

/// Runs the binary under /usr/bin/time; returns (exit code, seconds, peak RSS in KB, stderr).
fn measured(dir: &Path, args: &[&str]) -> (Option<i32>, f64, u64, String) {
    let rss_file = dir.join("rss.txt");
    let started = Instant::now();
    let mut child = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .arg(bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/time runs (scripts/install-deps installs it)");
    // A watchdog: a hang must fail the test, not the whole suite.
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    });
    let out = child.wait_with_output().unwrap();
    let secs = started.elapsed().as_secs_f64();
    drop(watchdog);
    let rss = std::fs::read_to_string(&rss_file).ok().and_then(|t| t.lines().last()?.trim().parse().ok()).unwrap_or(u64::MAX);
    (out.status.code(), secs, rss, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_refused_quickly(dir: &Path, args: &[&str], why: &str) {
    let (code, secs, rss_kb, stderr) = measured(dir, args);
    assert_eq!(code, Some(2), "{args:?}: {stderr}");
    assert!(secs <= 2.0, "{args:?} took {secs:.2}s");
    assert!(rss_kb <= 100 * 1024, "{args:?} used {rss_kb} KB");
    assert!(stderr.contains(why), "{args:?}: expected `{why}` in: {stderr}");
}

const OK_SCENARIO: &str = "name: ok\ntarget: {url: redis://127.0.0.1:6379}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 1}]\n";

#[test]
fn unbounded_files_are_refused_without_reading_them() {
    let dir = scratch("hostile-files");
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.yaml")).unwrap();
    std::fs::write(dir.join("ok.yaml"), OK_SCENARIO).unwrap();
    assert!(Command::new("mkfifo").arg(dir.join("fifo.yaml")).status().unwrap().success());
    assert_refused_quickly(&dir, &["validate", "zero.yaml"], "is a device, not a regular file");
    assert_refused_quickly(&dir, &["plan", "zero.yaml"], "is a device, not a regular file");
    assert_refused_quickly(&dir, &["plan", "ok.yaml", "--env-file", "/dev/zero"], "is a device, not a regular file");
    // A FIFO nobody writes to: opening it must not wait for a writer.
    assert_refused_quickly(&dir, &["validate", "fifo.yaml"], "is a FIFO, not a regular file");
    // A FIFO fed without end.
    let mut yes = Command::new("sh").arg("-c").arg(format!("yes > {}", dir.join("fifo.yaml").display())).spawn().unwrap();
    assert_refused_quickly(&dir, &["validate", "fifo.yaml"], "is a FIFO, not a regular file");
    let _ = yes.kill();
    let _ = yes.wait();
    let _ = Command::new("pkill").args(["-f", &format!("yes > {}", dir.join("fifo.yaml").display())]).status();
    // A regular file one byte over the limit.
    std::fs::write(dir.join("big.yaml"), vec![b'#'; 1024 * 1024 + 1]).unwrap();
    assert_refused_quickly(&dir, &["validate", "big.yaml"], "is larger than 1048576 bytes");
}

#[test]
fn many_toml_tables_are_refused_in_linear_time() {
    let dir = scratch("hostile-toml");
    let tables: String = (0..80_854).map(|i| format!("[t{i}]\n")).collect();
    std::fs::write(dir.join("tables.toml"), tables).unwrap();
    assert_refused_quickly(&dir, &["validate", "tables.toml"], "tables; a scenario holds at most");
    // Under the table cap, a megabyte of keys is counted as it is read, and refused at the cap.
    let keys: String = (0..60_000).map(|i| format!("k{i} = {{a = 1}}\n")).collect();
    std::fs::write(dir.join("keys.toml"), keys).unwrap();
    assert_refused_quickly(&dir, &["validate", "keys.toml"], "the document holds more than 100000 values");
}

#[test]
fn rates_and_workers_beyond_one_process_are_refused_with_the_reason() {
    let dir = scratch("hostile-numbers");
    std::fs::write(dir.join("rate.yaml"), OK_SCENARIO.replace("workers: 1}", "workers: 1, rate: 1e300}")).unwrap();
    std::fs::write(dir.join("workers.yaml"), OK_SCENARIO.replace("workers: 1}", "workers: 1000000}")).unwrap();
    assert_refused_quickly(&dir, &["apply", "rate.yaml"], "one redis-test process cannot schedule more");
    assert_refused_quickly(&dir, &["apply", "workers.yaml"], "at most 100000 workers per process");
}

#[test]
fn the_pacer_keeps_its_schedule_at_the_highest_rate_and_stops_on_a_signal() {
    let server = RedisServer::start(&[]);
    let dir = scratch("hostile-pacer");
    let body = format!(
        "name: fast\ntarget: {{url: \"{}\"}}\nworkloads: {{w: {{kind: basic}}}}\nphases: [{{name: p, duration: 2s, workers: 4, rate: 10000000}}]\n",
        server.url()
    );
    std::fs::write(dir.join("fast.yaml"), body).unwrap();
    let started = Instant::now();
    let out = common::run_in(&dir, &["apply", "fast.yaml", "--json", "r.json", "--quiet"], &[], Duration::from_secs(30));
    let took = started.elapsed();
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(took < Duration::from_secs(6), "a 2 s phase took {took:?}");
    let report = read_report(&dir.join("r.json"));
    assert_eq!(report["phases"][0]["scheduled"], 20_000_000, "the whole schedule, counted");
    // Interrupted mid-phase, it stops at once and writes its report.
    let mut child = common::spawn(&dir, &["apply", "fast.yaml", "--json", "i.json", "--quiet"], &[]);
    std::thread::sleep(Duration::from_millis(1200));
    let signalled = Instant::now();
    let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(signalled.elapsed() < Duration::from_secs(3), "stopped {:?} after SIGINT", signalled.elapsed());
    assert_eq!(read_report(&dir.join("i.json"))["interrupted"], true);
}
