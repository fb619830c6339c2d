//! Saved reports are hostile input (hardening II): crafted shard reports given to `merge`,
//! `compare` and `report` end in at most 2 s with at most 200 MB of memory (measured by
//! /usr/bin/time), with exit 2 or a correct result and outputs of bounded size; and a bounded
//! fuzzer mutates real reports through every reader without a panic.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{RedisServer, bin, run_in, scratch};
use serde_json::{Value, json};

/// Runs the binary under /usr/bin/time; returns (exit code, seconds, peak RSS in KB, stdout, stderr).
fn measured(dir: &Path, args: &[&str]) -> (Option<i32>, f64, u64, String, String) {
    let rss_file = dir.join("rss.txt");
    let started = Instant::now();
    let child = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .arg(bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/time runs (scripts/install-deps installs it)");
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    let _ = watchdog.join();
    let secs = started.elapsed().as_secs_f64();
    let rss = std::fs::read_to_string(&rss_file).ok().and_then(|t| t.lines().last()?.trim().parse().ok()).unwrap_or(u64::MAX);
    (out.status.code(), secs, rss, String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Asserts the command ends within 2 s and 200 MB with `code`; returns its stdout and stderr.
fn bounded(dir: &Path, args: &[&str], code: i32) -> (String, String) {
    let (got, secs, rss_kb, out, err) = measured(dir, args);
    assert_eq!(got, Some(code), "{args:?}: {out}\n{err}");
    assert!(secs <= 2.0, "{args:?} took {secs:.2}s");
    assert!(rss_kb <= 200 * 1024, "{args:?} used {rss_kb} KB");
    (out, err)
}

/// Three real shard reports of one run (`s0.json` … `s2.json`), with a fault, read as JSON.
fn shard_reports(dir: &Path) -> Vec<Value> {
    let server = RedisServer::start(&[]);
    let body = "name: hostile\ntarget: {url: redis://x}\nworkloads: {w: {kind: basic, read_ratio: 0.5}}\nphases: [{name: p, duration: 1500ms, workers: 3, rate: 300}]\nfaults: [{action: client_kill, name: kill, at: 700ms}]\nthresholds: [\"ops_per_sec > 250\"]\n";
    std::fs::write(dir.join("s.yaml"), body).unwrap();
    (0..3)
        .map(|i| {
            let json = format!("s{i}.json");
            let shard = format!("{i}/3");
            let out = run_in(
                dir,
                &["apply", "s.yaml", "--target", &server.url(), "--shard", &shard, "--run-id", "hostile", "--json", &json, "--quiet"],
                &[],
                Duration::from_secs(60),
            );
            assert_eq!(out.code, Some(0), "a shard exits 0 when it ran: {}", out.all());
            assert!(out.stdout.contains("judged at merge"), "{}", out.stdout);
            serde_json::from_str(&std::fs::read_to_string(dir.join(&json)).unwrap()).unwrap()
        })
        .collect()
}

fn save(dir: &Path, name: &str, v: &Value) -> String {
    std::fs::write(dir.join(name), serde_json::to_vec(v).unwrap()).unwrap();
    name.to_owned()
}

/// The V2 histogram header claiming a 4 GiB payload, base64 (hardening II item 2).
fn histogram_bomb() -> String {
    use base64::Engine as _;
    let mut b = Vec::new();
    b.extend_from_slice(&0x1c84_9313u32.to_be_bytes());
    b.extend_from_slice(&u32::MAX.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&3u32.to_be_bytes());
    b.extend_from_slice(&1u64.to_be_bytes());
    b.extend_from_slice(&60_000_000u64.to_be_bytes());
    b.extend_from_slice(&1.0f64.to_be_bytes());
    b.extend_from_slice(&[0u8; 4]);
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn crafted_shard_reports_are_refused_in_bounded_time_and_memory() {
    let dir = scratch("hostile-reports");
    let shards = shard_reports(&dir);
    // The honest merge passes the whole-run rule each shard alone could not meet.
    let (out, _) = bounded(&dir, &["merge", "s0.json", "s1.json", "s2.json", "--json", "merged.json"], 0);
    assert!(out.contains("PASS ops_per_sec > 250"), "{out}");

    // 1. Shard numbers from JSON: out of range, zero, huge; a claim of 2 000 000 shards.
    for (index, count, why) in
        [(5u64, 3u64, "shard 5 of 3 cannot be"), (0, 0, "shard 0 of 0 cannot be"), (0, u64::from(u32::MAX), "cannot be"), (0, 2_000_000, "cannot be")]
    {
        let mut r = shards[0].clone();
        r["shard"]["index"] = json!(index);
        r["shard"]["count"] = json!(count);
        let f = save(&dir, "bad-shard.json", &r);
        let (_, err) = bounded(&dir, &["merge", &f, "s1.json"], 2);
        assert!(err.contains(why), "{err}");
    }
    // The most shards a run has, with one given: a few named, the rest counted.
    let mut r = shards[0].clone();
    r["shard"]["count"] = json!(10_000);
    let f = save(&dir, "many.json", &r);
    let (_, err) = bounded(&dir, &["merge", &f], 2);
    assert!(err.contains("missing: shard 1, shard 2, shard 3, shard 4, shard 5 and 9994 more"), "{err}");
    assert!(err.len() < 1000, "a bounded message: {} bytes", err.len());

    // 2. A histogram claiming 4 GiB in 60 bytes of base64.
    let mut bomb = shards[0].clone();
    bomb["phases"][0]["operations"][0]["histogram"] = json!(histogram_bomb());
    let f = save(&dir, "bomb.json", &bomb);
    for args in [vec!["report", f.as_str(), "--html", "bomb.html"], vec!["compare", "s1.json", f.as_str()], vec!["merge", f.as_str(), "s1.json", "s2.json"]] {
        let (_, err) = bounded(&dir, &args, 2);
        assert!(err.contains("claims 4294967295 bytes"), "{args:?}: {err}");
    }

    // 3. 300 identical gaps in each of three shards: intersected after normalising, bounded.
    let gaps: Vec<Value> = (0..300).map(|_| json!({"stream": "w", "from_s": 0.8, "to_s": 0.9})).collect();
    let names: Vec<String> = (0..3)
        .map(|i| {
            let mut r = shards[i].clone();
            r["faults"][0]["result"]["gaps"] = json!(gaps);
            save(&dir, &format!("gaps{i}.json"), &r)
        })
        .collect();
    let (_, err) = bounded(&dir, &["merge", &names[0], &names[1], &names[2], "--json", "gaps-merged.json"], 0);
    let merged_len = std::fs::metadata(dir.join("gaps-merged.json")).unwrap().len();
    assert!(merged_len < 512 * 1024, "the merged report is {merged_len} bytes: {err}");
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("gaps-merged.json")).unwrap()).unwrap();
    assert_eq!(merged["faults"][0]["result"]["gaps"].as_array().unwrap().len(), 1, "300 identical gaps are one stretch");

    // 4. Sums that would wrap, and figures that cannot be true.
    let mut huge: Vec<Value> = shards.clone();
    for r in &mut huge[..2] {
        let op = &mut r["phases"][0]["operations"][0];
        op["count"] = json!(u64::MAX);
        op["ok"] = json!(u64::MAX);
        op["errors"] = json!({});
        op["miss"] = json!(0);
    }
    let (a, b) = (save(&dir, "huge0.json", &huge[0]), save(&dir, "huge1.json", &huge[1]));
    let (_, err) = bounded(&dir, &["merge", &a, &b, "s2.json"], 2);
    assert!(err.contains("cannot be true"), "{err}");
    let mut liar = shards[0].clone();
    liar["phases"][0]["errors"] = json!(liar["phases"][0]["count"].as_u64().unwrap() + 1);
    let f = save(&dir, "liar.json", &liar);
    let (_, err) = bounded(&dir, &["merge", &f, "s1.json", "s2.json"], 2);
    assert!(err.contains("errors out of"), "{err}");

    // 5. A shard of another plan under the same run id.
    for (field, value, why) in [
        ("time_scale", json!(0.5), "time scale"),
        ("client", json!("redis-rs 1.8.1"), "client"),
        ("plan_fingerprint", json!("0123456789abcdef"), "plan fingerprint"),
    ] {
        let mut other = shards[1].clone();
        other[field] = value;
        let f = save(&dir, "other.json", &other);
        let (_, err) = bounded(&dir, &["merge", "s0.json", &f, "s2.json"], 2);
        assert!(err.contains(why), "{field}: {err}");
    }
    let mut target = shards[1].clone();
    target["target"]["address"] = json!("redis://elsewhere:6379");
    let f = save(&dir, "other.json", &target);
    let (_, err) = bounded(&dir, &["merge", "s0.json", &f, "s2.json"], 2);
    assert!(err.contains("target"), "{err}");

    // A shard whose worker stopped on a bug: the shard exits 0 (merge judges), the merge fails
    // and names the shard.
    let mut broken = shards[1].clone();
    broken["internal_errors"] = json!(["a worker task stopped before the end: panicked: overflow when adding duration to instant"]);
    let f = save(&dir, "broken.json", &broken);
    let (out, _) = bounded(&dir, &["merge", "s0.json", &f, "s2.json", "--junit", "broken.xml"], 1);
    assert!(out.contains("verdict: FAIL (exit 1)") && out.contains("internal error: shard 1: a worker task stopped before the end"), "{out}");
    let junit = std::fs::read_to_string(dir.join("broken.xml")).unwrap();
    assert!(junit.contains("type=\"internal\">shard 1: a worker task"), "{junit}");

    // An interrupted shard is refused, not merged into exit 130.
    let mut stopped = shards[2].clone();
    stopped["interrupted"] = json!(true);
    let f = save(&dir, "stopped.json", &stopped);
    let (_, err) = bounded(&dir, &["merge", "s0.json", "s1.json", &f], 2);
    assert!(err.contains("was interrupted"), "{err}");
}

#[test]
fn compare_of_thousands_of_rows_is_linear() {
    // regression: hardening II item 6. 4.5 s at 500 rows, 17.6 s at 1 000, over a minute at 3 000:
    // quadratic. Judged by growth, not by a wall-clock figure a busy machine can miss: ten times
    // the rows may cost at most forty times the time (linear is ten, quadratic a hundred), each
    // size timed as the best of two runs.
    let dir = scratch("hostile-compare-rows");
    let shards = shard_reports(&dir);
    let time_rows = |n: usize| -> Duration {
        let mut wide = shards[0].clone();
        wide["shard"] = Value::Null;
        let template = wide["phases"][0]["operations"][0].clone();
        let rows: Vec<Value> = (0..n)
            .map(|i| {
                let mut r = template.clone();
                r["workload"] = json!(format!("w{}", i / 10));
                r["operation"] = json!(format!("OP{}", i % 10));
                r
            })
            .collect();
        wide["phases"][0]["operations"] = json!(rows);
        let names: Vec<String> = (0..4).map(|i| save(&dir, &format!("wide{n}-{i}.json"), &wide)).collect();
        (0..2)
            .map(|_| {
                let started = Instant::now();
                let (out, _) = bounded(&dir, &["compare", &names[0], &names[1], &names[2], &names[3]], 0);
                assert!(out.contains("verdict: no regression"), "{out}");
                started.elapsed()
            })
            .min()
            .unwrap()
    };
    let small = time_rows(300);
    let large = time_rows(3000);
    assert!(large < small * 40, "3 000 rows took {large:?}, 300 rows {small:?}: more than 40 times for 10 times the rows");
    assert!(large < Duration::from_secs(20), "3 000 rows against three baselines took {large:?}");
}

#[test]
fn text_from_a_report_cannot_drive_the_terminal() {
    // regression: hardening II item 11. OSC title, clear-screen and right-to-left override
    // sequences carried in report strings reached the terminal.
    let dir = scratch("hostile-escapes");
    let shards = shard_reports(&dir);
    let evil = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}gnp.exe";
    let mut r = shards[0].clone();
    r["scenario"] = json!(evil);
    r["phases"][0]["name"] = json!(evil);
    r["faults"][0]["result"]["detail"] = json!(evil);
    let f = save(&dir, "evil.json", &r);
    let mut plain = shards[0].clone();
    plain["phases"][0]["name"] = json!(evil);
    let p = save(&dir, "evil-base.json", &plain);
    let mut clean = shards[1].clone();
    clean["scenario"] = json!(evil);
    let m = save(&dir, "evil-shard.json", &clean);
    for (args, code) in
        [(vec!["report", f.as_str()], 0), (vec!["compare", p.as_str(), f.as_str(), "--all"], 0), (vec!["merge", "s0.json", m.as_str(), "s2.json"], 2)]
    {
        let (got, _, _, out, err) = measured(&dir, &args);
        assert_eq!(got, Some(code), "{args:?}: {out}\n{err}");
        let both = out + &err;
        assert!(!both.contains('\u{1b}') && !both.contains('\u{202e}') && !both.contains('\u{7}'), "{args:?} printed control characters: {both:?}");
        assert!(both.contains("\\u{1b}"), "{args:?} shows them escaped: {both}");
    }
}

#[test]
fn a_long_series_renders_a_bounded_page() {
    // regression: hardening II item 13. A 450 000-point series rendered a 21 MB HTML page.
    let dir = scratch("hostile-series");
    let shards = shard_reports(&dir);
    let mut r = shards[0].clone();
    r["shard"] = Value::Null;
    let point = r["time_series"][0].clone();
    let series: Vec<Value> = (0..450_000)
        .map(|i| {
            let mut p = point.clone();
            p["t"] = json!(i as f64 + 1.0);
            p
        })
        .collect();
    r["time_series"] = json!(series);
    r["duration_s"] = json!(450_000.0);
    let f = save(&dir, "long.json", &r);
    let (got, secs, _, out, err) = measured(&dir, &["report", &f, "--html", "long.html"]);
    assert_eq!(got, Some(0), "{out}{err}");
    assert!(secs < 10.0, "{secs}");
    let size = std::fs::metadata(dir.join("long.html")).unwrap().len();
    assert!(size < 1024 * 1024, "the page is {size} bytes");
}

#[test]
fn mutated_reports_never_panic_any_reader() {
    // A bounded fuzzer over the report reader and everything that reads reports: real shard
    // reports with numbers, strings and structure changed at random. Every input either is
    // refused or is rendered, compared and merged without a panic. Runs FUZZ_SECONDS (default 8).
    let dir = scratch("hostile-fuzz");
    let shards = shard_reports(&dir);
    let seconds: u64 = std::env::var("FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let seed: u64 = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| std::process::id() as u64);
    eprintln!("fuzzing reports for {seconds}s from seed {seed}");
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let parsed: Vec<redis_test::report::Report> =
        shards.iter().map(|v| redis_test::report::read::from_slice(&serde_json::to_vec(v).unwrap()).unwrap()).collect();
    let until = Instant::now() + Duration::from_secs(seconds);
    let (mut tried, mut accepted) = (0u64, 0u64);
    while Instant::now() < until {
        let which = (next() % 3) as usize;
        let mut v = shards[which].clone();
        for _ in 0..(1 + next() % 4) {
            mutate(&mut v, &mut next);
        }
        let bytes = serde_json::to_vec(&v).unwrap();
        tried += 1;
        let started = Instant::now();
        let result = std::panic::catch_unwind(|| {
            let Ok(r) = redis_test::report::read::from_slice(&bytes) else { return false };
            let _ = redis_test::report::summary::render(&r);
            let _ = redis_test::report::html::render(&r);
            let _ = redis_test::report::junit::render(&r);
            let _ = redis_test::report::compare::compare(&parsed[..1], &r, Default::default());
            let _ = redis_test::report::compare::compare(std::slice::from_ref(&r), &parsed[1], Default::default());
            let mut set: Vec<(std::path::PathBuf, redis_test::report::Report)> =
                parsed.iter().enumerate().map(|(i, p)| (format!("s{i}").into(), p.clone())).collect();
            set[which] = ("mutant".into(), r);
            let _ = redis_test::report::merge::merge(set);
            true
        });
        let took = started.elapsed();
        match result {
            Ok(ok) => accepted += u64::from(ok),
            Err(_) => {
                let keep = dir.join(format!("panic-{tried}.json"));
                std::fs::write(&keep, &bytes).unwrap();
                panic!("a mutated report panicked a reader: {} (seed {seed})", keep.display());
            }
        }
        assert!(took < Duration::from_secs(2), "a mutated report took {took:?} (seed {seed})");
    }
    eprintln!("{tried} mutants, {accepted} accepted and read through every reader");
    assert!(tried > 100, "the fuzzer ran: {tried}");
}

/// One random change: a number set to an edge value, a string replaced, a value removed or an
/// array element duplicated, somewhere in the document.
fn mutate(v: &mut Value, next: &mut impl FnMut() -> u64) {
    // Walk to a random node.
    let mut node = v;
    for _ in 0..(next() % 8) {
        let children = match node {
            Value::Object(m) if !m.is_empty() => m.len(),
            Value::Array(a) if !a.is_empty() => a.len(),
            _ => break,
        };
        let pick = (next() % children as u64) as usize;
        node = match node {
            Value::Object(m) => m.values_mut().nth(pick).unwrap(),
            Value::Array(a) => &mut a[pick],
            _ => unreachable!(),
        };
    }
    const EDGES: [f64; 9] = [0.0, -1.0, 1e308, -1e308, 0.5, 1e19, 4294967296.0, 1e-300, 60.0];
    match (node, next() % 6) {
        (Value::Object(m), 0) if !m.is_empty() => {
            let k = m.keys().nth((next() % m.len() as u64) as usize).cloned().unwrap();
            m.remove(&k);
        }
        (Value::Array(a), 1) if !a.is_empty() => {
            let e = a[(next() % a.len() as u64) as usize].clone();
            for _ in 0..(next() % 50) {
                a.push(e.clone());
            }
        }
        (n @ Value::Number(_), k) => {
            *n = if k < 3 { json!(next() >> (next() % 64)) } else { json!(EDGES[(next() % EDGES.len() as u64) as usize]) };
        }
        (n @ Value::String(_), k) => {
            *n = match k {
                0 => json!(""),
                1 => json!("\u{1b}[2J"),
                2 => json!(histogram_bomb()),
                3 => json!("AAAA"),
                _ => json!("x".repeat((next() % 10_000) as usize)),
            };
        }
        (n, _) => *n = json!(next() % 1000),
    }
}
