//! Scale-out: three shards of one scenario as three processes against one redis-server, started
//! together with `--start-at`, merged into one report that adds up to the single-process plan and
//! to what the server counted; `merge` refusing reports that do not make one run; `cleanup`
//! removing the run's keys afterwards.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{RedisServer, assert_report_valid, read_report, run_in, scratch};
use serde_json::Value;

/// Rate R over a 1 s ramp from R/2 and 5 s steady; a client kill mid-steady; verified writes.
fn scenario(server: &RedisServer) -> String {
    format!(
        "name: scale\ntarget: {{url: \"{}\"}}\nkeyspace: {{prefix: \"scale:\", keys: 3000}}\nworkloads: {{w: {{kind: basic, read_ratio: 0.5, incr_ratio: 0.1, verify: true}}}}\nphases:\n  - {{name: ramp, kind: ramp_up, duration: 1s, workers: 8, rate: {{from: 1500, to: 3000}}}}\n  - {{name: steady, duration: 5s, workers: 8, rate: 3000}}\nfaults: [{{action: client_kill, clients: own, phase: steady, at: 2s}}]\nthresholds: [lost_writes == 0, duplicate_writes == 0, {{expr: p99 < 500ms, phase: steady}}]\n",
        server.url()
    )
}

fn start_in(secs: u64) -> String {
    humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(secs)).to_string()
}

/// Runs the three shards at once (shard 1 through `--shards 3` and JOB_COMPLETION_INDEX, as a
/// Kubernetes Indexed Job starts it) and returns their outcomes.
fn run_shards(dir: &Path, start_at: &str) -> Vec<common::Outcome> {
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let dir = dir.to_path_buf();
            let start_at = start_at.to_owned();
            std::thread::spawn(move || {
                let json = format!("s{i}.json");
                let shard = format!("{i}/3");
                let mut args = vec!["apply", "s.yaml", "--run-id", "scale-1", "--start-at", &start_at, "--json", &json, "--quiet"];
                let env: Vec<(&str, &str)> = if i == 1 {
                    args.extend(["--shards", "3"]);
                    vec![("JOB_COMPLETION_INDEX", "1")]
                } else {
                    args.extend(["--shard", &shard]);
                    vec![]
                };
                run_in(&dir, &args, &env, Duration::from_secs(60))
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

fn epoch_ms(rfc3339: &str) -> i128 {
    humantime::parse_rfc3339(rfc3339).unwrap().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i128
}

#[test]
fn three_shards_merge_into_the_single_process_run_the_server_counted() {
    let server = RedisServer::start(&[]);
    let dir = scratch("scale-out");
    std::fs::write(dir.join("s.yaml"), scenario(&server)).unwrap();
    server.cli(&["CONFIG", "RESETSTAT"]);
    let outs = run_shards(&dir, &start_in(4));
    for (i, o) in outs.iter().enumerate() {
        assert_eq!(o.code, Some(0), "shard {i}: {}", o.all());
        assert!(o.stdout.contains("cleanup: skipped on shard"), "shard {i}: {}", o.stdout);
    }
    let shards: Vec<Value> = (0..3).map(|i| read_report(&dir.join(format!("s{i}.json")))).collect();
    // Every shard began phase 0 at the agreed instant, within 100 ms of the others.
    let starts: Vec<i128> = shards.iter().map(|r| epoch_ms(r["started_at"].as_str().unwrap())).collect();
    let spread = starts.iter().max().unwrap() - starts.iter().min().unwrap();
    assert!(spread <= 100, "shards started {spread} ms apart: {starts:?}");
    // Shard 0 ran the fault; the others judged it on their own traffic.
    assert!(shards[0]["faults"][0]["result"]["detail"].as_str().unwrap().starts_with("killed "), "{}", shards[0]["faults"]);
    // `clients: own` finds the run's connections by client name, which every shard shares: the
    // one kill dropped connections of every shard (how many were open varies with the pools).
    for (i, s) in shards.iter().enumerate() {
        assert!(s["connections"]["dropped"].as_u64().unwrap() >= 1, "shard {i}: {}", s["connections"]);
    }
    for s in &shards[1..] {
        assert!(s["faults"][0]["result"]["detail"].as_str().unwrap().starts_with("run by shard 0 of 3"), "{}", s["faults"]);
    }
    let instance_ids: Vec<&str> = shards.iter().map(|r| r["instance_id"].as_str().unwrap()).collect();
    assert!(instance_ids.iter().enumerate().all(|(i, id)| id.ends_with(&format!("-shard-{i}"))), "{instance_ids:?}");

    let stats = common::commandstats(&server);
    let out = run_in(&dir, &["merge", "s0.json", "s1.json", "s2.json", "--json", "m.json", "--html", "m.html"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("merged: 3 shards of run scale-1") && out.stdout.contains("redis-test cleanup"), "{}", out.stdout);
    let merged = read_report(&dir.join("m.json"));
    assert_report_valid(&merged);
    assert!(std::fs::read_to_string(dir.join("m.html")).unwrap().contains("scale-1"));

    // The merged count is the single-process plan's, within 1 %.
    let plan = redis_test::plan::compile(&redis_test::scenario::load(&dir.join("s.yaml"), &Default::default()).unwrap(), 1.0);
    let planned: u64 = plan.phases.iter().map(|p| p.total_ops().unwrap()).sum();
    let count = merged["totals"]["count"].as_u64().unwrap();
    assert!((count as f64 - planned as f64).abs() <= planned as f64 * 0.01, "merged {count} round trips, the plan schedules {planned}");
    let scheduled: u64 = merged["phases"].as_array().unwrap().iter().map(|p| p["scheduled"].as_u64().unwrap()).sum();
    println!(
        "planned {planned}, merged {count} round trips ({scheduled} scheduled), shards started within {spread} ms, steady p99 {} µs",
        merged["phases"][1]["operations"][0]["latency_us"]["p99"]
    );
    assert_eq!(scheduled, planned, "the shards' stripes add up to the schedule exactly");

    // What the server counted is what the merged report says was sent.
    let mut ours: BTreeMap<String, u64> = BTreeMap::new();
    for p in merged["phases"].as_array().unwrap() {
        for (k, v) in p["commands"].as_object().unwrap() {
            *ours.entry(k.clone()).or_default() += v.as_u64().unwrap();
        }
    }
    for (k, v) in merged["other_commands"].as_object().unwrap() {
        *ours.entry(k.clone()).or_default() += v.as_u64().unwrap();
    }
    let mut theirs = stats.clone();
    theirs.remove("CONFIG|RESETSTAT");
    // The kill cuts connections with commands on the way: sent (then failed with a connection
    // error, or resent) but never executed. Everything else the server counted, the report says.
    let mut cut: BTreeMap<String, u64> = BTreeMap::new();
    for p in merged["phases"].as_array().unwrap() {
        for row in p["operations"].as_array().unwrap() {
            *cut.entry(row["operation"].as_str().unwrap().to_owned()).or_default() +=
                row["errors"]["connection"].as_u64().unwrap_or(0) + row["retries"].as_u64().unwrap();
        }
    }
    assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "merged report vs INFO commandstats");
    for (name, sent) in &ours {
        let done = theirs[name];
        let lost = cut.get(name).copied().unwrap_or(0);
        assert!(done <= *sent && *sent <= done + lost, "{name}: the merged report says {sent} sent, the server executed {done}, {lost} cut by the kill");
    }
    // The fault ran once: one CLIENT LIST to find the run's connections, one kill each.
    assert_eq!(stats.get("CLIENT|LIST"), Some(&1), "{stats:?}");

    // Per second, through the steady phase, the merged throughput is the rate.
    let steady_from = merged["phases"][1]["start_s"].as_f64().unwrap();
    let mut judged = 0;
    for p in merged["time_series"].as_array().unwrap() {
        let (t, secs) = (p["t"].as_f64().unwrap(), p["secs"].as_f64().unwrap());
        if t - secs >= steady_from + 0.01 && t <= steady_from + 5.0 && secs >= 0.99 {
            let rate = p["ops"].as_f64().unwrap() / secs;
            assert!((rate - 3000.0).abs() <= 150.0, "second ending at {t}: {rate} ops/s against 3000: {}", merged["time_series"]);
            judged += 1;
        }
    }
    assert!(judged >= 2, "{judged} whole steady seconds judged: {}", merged["time_series"]);
    // Verify across shards: every acknowledged write read back, no increment lost or doubled.
    let v = &merged["verify"][0];
    assert!(v["checked"].as_u64().unwrap() > 1000 && v["counters"].as_u64().unwrap() > 100, "{v}");
    assert_eq!(
        (v["lost"].as_u64(), v["changed"].as_u64(), v["increments_lost"].as_u64(), v["increments_duplicated"].as_u64()),
        (Some(0), Some(0), Some(0), Some(0)),
        "{v}"
    );
    assert!(merged["thresholds"].as_array().unwrap().iter().all(|t| t["passed"] == true), "{}", merged["thresholds"]);

    // A merged report is one `compare` can judge, operation by operation (its blocks add up too):
    // against itself, nothing regressed.
    let out = run_in(&dir, &["compare", "m.json", "m.json", "--all"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("GET") && !out.all().contains("not comparable"), "{}", out.all());

    // The shards left their keys; cleanup removes exactly the run's.
    server.cli(&["SET", "other:key", "kept"]);
    assert_ne!(server.cli(&["DBSIZE"]), "(integer) 1");
    let out = run_in(&dir, &["cleanup", "s.yaml"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("cleanup: removed"), "{}", out.stdout);
    assert_eq!(server.cli(&["DBSIZE"]), "(integer) 1", "only the key outside the prefix is left");

    // merge refuses what is not one whole run, naming the problem.
    let refuse = |files: &[&str], want: &str| {
        let mut args = vec!["merge"];
        args.extend_from_slice(files);
        let out = run_in(&dir, &args, &[], Duration::from_secs(30));
        assert_eq!(out.code, Some(2), "{files:?}: {}", out.all());
        assert!(out.stderr.contains(want), "{files:?}: wanted {want:?} in {}", out.stderr);
    };
    refuse(&["s0.json", "s1.json"], "missing: shard 2");
    refuse(&["s0.json", "s1.json", "s1.json", "s2.json"], "shard 1 is given twice: s1.json and s1.json");
    let mut other = shards[2].clone();
    other["run_id"] = Value::from("scale-2");
    std::fs::write(dir.join("other-run.json"), other.to_string()).unwrap();
    refuse(&["s0.json", "s1.json", "other-run.json"], "other-run.json: run `scale-2`, but s0.json belongs to run `scale-1`");
    let mut other = shards[2].clone();
    other["scenario"] = Value::from("else");
    std::fs::write(dir.join("other-scenario.json"), other.to_string()).unwrap();
    refuse(&["s0.json", "s1.json", "other-scenario.json"], "scenario `else`");
    refuse(&["m.json"], "m.json: not a shard's report");
}

#[test]
fn shards_refuse_to_run_out_of_phase_or_without_a_shared_run() {
    let server = RedisServer::start(&[]);
    let dir = scratch("scale-out-refusals");
    std::fs::write(dir.join("s.yaml"), scenario(&server)).unwrap();
    let past = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(5)).to_string();
    let out = run_in(&dir, &["apply", "s.yaml", "--shard", "0/3", "--run-id", "r", "--start-at", &past], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains("has already passed"), "{}", out.stderr);
    let out = run_in(&dir, &["apply", "s.yaml", "--shard", "0/3"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stderr.contains("needs `--run-id ID` or `--start-at TIME`"), "{}", out.stderr);
    let out = run_in(&dir, &["apply", "s.yaml", "--shards", "3", "--run-id", "r"], &[("JOB_COMPLETION_INDEX", "")], Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.all());
    let out = run_in(&dir, &["apply", "s.yaml", "--shard", "3/3", "--run-id", "r"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stderr.contains("below the count"), "{}", out.stderr);
    std::fs::write(
        dir.join("local.yaml"),
        "name: l\ntarget: {local: standalone}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 1}]\n",
    )
    .unwrap();
    let out = run_in(&dir, &["apply", "local.yaml", "--shard", "0/2", "--run-id", "r"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stderr.contains("needs a shared target"), "{}", out.stderr);
    assert_eq!(server.cli(&["DBSIZE"]), "(integer) 0", "nothing ran");
}
