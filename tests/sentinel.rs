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

#[test]
fn replica_reads_go_to_the_replica_the_sentinels_report() {
    let primary = common::RedisServer::start(&["repl-diskless-sync-delay 0"]);
    let replicaof = format!("replicaof 127.0.0.1 {}", primary.port);
    let replica = common::RedisServer::start(&[replicaof.as_str()]);
    let monitor = format!("sentinel monitor reads 127.0.0.1 {} 1", primary.port);
    let sentinel = common::RedisServer::start_sentinel(&[monitor.as_str(), "sentinel down-after-milliseconds reads 5000"]);
    // The sentinel learns about the replica from the primary's INFO and then reads the replica's
    // own INFO (every 10 s at first): wait until it reports the replica's link as ok — before that
    // redis-test rightly reads from the master.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !sentinel.cli(&["--raw", "sentinel", "replicas", "reads"]).contains("master-link-status\nok") {
        assert!(std::time::Instant::now() < deadline, "the sentinel never reported the replica");
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = scratch("sentinel-reads");
    let f = dir.join("reads.yaml");
    std::fs::write(
        &f,
        format!(
            "name: reads\ntarget: {{mode: sentinel, read_from_replicas: true, sentinel: {{master_name: reads, nodes: [\"127.0.0.1:{}\"]}}}}\nkeyspace: {{prefix: \"rt-reads:\", keys: 500}}\nworkloads: {{b: {{kind: basic, read_ratio: 0.8}}}}\nphases: [{{name: p, duration: 2s, workers: 4, rate: 1000}}]\n",
            sentinel.port
        ),
    )
    .unwrap();
    let (gets_before, sets_before) = (replica.calls("get"), primary.calls("set"));
    let out = run_in(&dir, &["apply", f.to_str().unwrap(), "--json", "r.json", "--quiet"], &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(0), "{}", out.all());
    let report = read_report(&dir.join("r.json"));
    assert_report_valid(&report);
    let gets = common::op_count(&report, "p", "b", "GET");
    let sets = common::op_count(&report, "p", "b", "SET");
    let replica_gets = replica.calls("get") - gets_before;
    assert!(
        gets > 1000 && replica_gets == gets,
        "{gets} GETs in the report, {replica_gets} served by the replica, {} by the primary; sentinel: {}",
        primary.calls("get"),
        sentinel.cli(&["--raw", "sentinel", "replicas", "reads"])
    );
    assert_eq!(primary.calls("get"), 0, "no read went to the primary");
    assert_eq!(primary.calls("set") - sets_before, sets, "every write went to the primary");
}
