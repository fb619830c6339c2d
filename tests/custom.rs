//! Your own commands (issue 22, part 1): every placeholder renders as documented, every key
//! argument — literal keys and EVALSHA's keys included — is sent under the key prefix, the report's
//! commands equal INFO commandstats, templates that cannot run are refused with their line, and on a
//! cluster a round trip's keys stay in one slot. Real redis-server processes, both clients.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{RedisServer, assert_report_valid, read_report, run_in, scratch};

const DEADLINE: Duration = Duration::from_secs(120);
const CLIENTS: [&str; 2] = ["native", "redis-rs"];

fn micros_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
}

/// A reply as `redis-cli --raw` prints it.
fn raw(server: &RedisServer, args: &[&str]) -> String {
    let mut all = vec!["--raw"];
    all.extend_from_slice(args);
    server.cli(&all)
}

/// Every key on the server.
fn all_keys(server: &RedisServer) -> Vec<String> {
    raw(server, &["--scan"]).lines().map(str::to_owned).filter(|l| !l.is_empty()).collect()
}

#[test]
fn every_placeholder_renders_under_the_prefix_and_every_command_is_counted_as_the_server_counts_it() {
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let dir = scratch("custom-placeholders");
    for client in CLIENTS {
        server.cli(&["FLUSHALL"]);
        // Keys that are not the run's: a literal `board` in a template must not touch this one.
        server.cli(&["SET", "board", "theirs"]);
        server.cli(&["SET", "outside", "theirs"]);
        let f = common::write_file(
            &dir,
            "placeholders.yaml",
            r#"name: placeholders
target: {url: "URL"}
keyspace: {prefix: "cp:", keys: 20, value_size: 10B}
cleanup: false
workloads:
  mine:
    kind: custom
    scripts:
      bump: "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    commands:
      - {command: "SET str:{key} {data:48}", name: set48}
      - {args: ["HSET", "h:{tag}:{key}", "f{rand:5}", "{data}"]}
      - {command: "RPUSH seq:{key} {seq:1000}"}
      - {command: "ZADD board {rand:100} m{rand:10}"}
      - {command: "ZRANGEBYSCORE board {range:100:10}"}
      - {command: "SET t:{key} {now_us}", name: stamp}
      - {args: ["EVALSHA", "{script:bump}", "1", "hits:{key}", "2"]}
      - {command: "SET alias:__key__ __data__", name: alias-set}
      - {command: "GET key:__rand_int__", name: alias-get}
      - {command: "GET str:{key}"}
      - {command: "SADD 'quoted {{literal}' \"two words\""}
phases:
  - {name: p, duration: 800ms, workers: 4, rate: 1000}
"#
            .replace("URL", &server.url())
            .as_str(),
        );
        server.cli(&["CONFIG", "RESETSTAT"]);
        let before = micros_now();
        let out = run_in(&dir, &["apply", &f, "--client", client, "--json", "r.json", "--quiet"], &[], DEADLINE);
        let after = micros_now();
        assert_eq!(out.code, Some(0), "{client}: {}", out.all());
        let report = read_report(&dir.join("r.json"));
        assert_report_valid(&report);
        assert_eq!(common::total_errors(&report), 0, "{client}: {}", out.stdout);

        // Counted as the server counts: the phase's commands and those outside it (SCRIPT LOAD,
        // COMMAND GETKEYS) are INFO commandstats, but for the INCRBY the script itself calls.
        let mut theirs = common::commandstats(&server);
        for own in ["INFO", "CONFIG|RESETSTAT"] {
            theirs.remove(own);
        }
        let phase = &report["phases"][0];
        let mut ours: BTreeMap<String, u64> = BTreeMap::new();
        for (k, v) in phase["commands"].as_object().unwrap().iter().chain(report["other_commands"].as_object().unwrap()) {
            *ours.entry(k.clone()).or_default() += v.as_u64().unwrap();
        }
        assert_eq!(theirs.remove("INCRBY"), ours.get("EVALSHA").copied(), "{client}: the script runs INCRBY once per EVALSHA");
        assert_eq!(ours, theirs, "{client}: the report's commands differ from INFO commandstats");
        assert!(ours["SCRIPT|LOAD"] >= 1 && ours["COMMAND|GETKEYS"] >= 10, "{client}: {ours:?}");
        for op in ["set48", "HSET", "RPUSH", "ZADD", "ZRANGEBYSCORE", "stamp", "EVALSHA", "alias-set", "alias-get", "GET", "SADD"] {
            assert!(common::op_count(&report, "p", "mine", op) > 0, "{client}: no {op} in {}", phase["operations"]);
        }

        // Nothing outside the prefix: the foreign keys as they were, every other key under `cp:`.
        let keys = all_keys(&server);
        assert_eq!(raw(&server, &["GET", "board"]), "theirs");
        assert_eq!(raw(&server, &["GET", "outside"]), "theirs");
        let strays: Vec<&String> = keys.iter().filter(|k| !k.starts_with("cp:") && *k != "board" && *k != "outside").collect();
        assert!(strays.is_empty(), "{client}: keys outside the prefix: {strays:?}");
        assert_eq!(raw(&server, &["TYPE", "cp:board"]), "zset", "{client}: the literal key is sent as cp:board");
        assert_eq!(raw(&server, &["SCARD", "cp:quoted {literal}"]), "1", "{client}: quotes and `{{{{` as redis-cli reads them: {keys:?}");

        // Each placeholder as documented.
        let of = |prefix: &str| -> Vec<&String> { keys.iter().filter(|k| k.starts_with(prefix)).collect() };
        for k in of("cp:str:") {
            assert_eq!(raw(&server, &["STRLEN", k]), "48", "{client}: {{data:48}} in {k}");
            let n: u64 = k["cp:str:".len()..].parse().unwrap();
            assert!(n < 20, "{client}: {{key}} within the keyspace: {k}");
        }
        for k in of("cp:h:") {
            // `h:{tag}:{key}`: the tag is the key index as a hash tag.
            let rest = &k["cp:h:".len()..];
            let (tag, index) = rest.split_once(':').unwrap();
            assert_eq!(tag, format!("{{{index}}}"), "{client}: {k}");
            let fields = raw(&server, &["HKEYS", k]);
            assert!(fields.lines().all(|f| ["f0", "f1", "f2", "f3", "f4"].contains(&f)), "{client}: {{rand:5}}: {fields}");
            let field = fields.lines().next().unwrap();
            assert_eq!(raw(&server, &["HSTRLEN", k, field]), "10", "{client}: {{data}} takes the keyspace's value size");
        }
        let mut seqs: Vec<u64> = Vec::new();
        for k in of("cp:seq:") {
            seqs.extend(raw(&server, &["LRANGE", k, "0", "-1"]).lines().map(|v| v.parse::<u64>().unwrap()));
        }
        let rpushes = common::op_count(&report, "p", "mine", "RPUSH");
        assert_eq!(seqs.len() as u64, rpushes, "{client}");
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len() as u64, rpushes, "{client}: {{seq:N}} numbers are not repeated within N");
        assert!(seqs.iter().all(|s| *s < 1000), "{client}: {seqs:?}");
        for k in of("cp:t:") {
            let us: u64 = raw(&server, &["GET", k]).parse().unwrap();
            assert!((before..=after).contains(&us), "{client}: {{now_us}} {us} outside the run [{before}, {after}]");
        }
        let hits = of("cp:hits:");
        assert!(!hits.is_empty(), "{client}: EVALSHA's key is prefixed: {keys:?}");
        let total: u64 = hits.iter().map(|k| raw(&server, &["GET", k]).parse::<u64>().unwrap()).sum();
        assert_eq!(total, 2 * common::op_count(&report, "p", "mine", "EVALSHA"), "{client}: {{script:bump}} is the loaded script");
        assert!(!of("cp:alias:").is_empty(), "{client}: __key__ and __data__");
        let members = raw(&server, &["ZRANGE", "cp:board", "0", "-1"]);
        assert!(members.lines().all(|m| m.len() == 2 && m.starts_with('m')), "{client}: {members}");
        // A read that found nothing is a miss, not an error: GET key:N is never written.
        let misses = phase["operations"].as_array().unwrap().iter().find(|o| o["operation"] == "alias-get").unwrap()["miss"].as_u64().unwrap();
        assert_eq!(misses, common::op_count(&report, "p", "mine", "alias-get"), "{client}");
    }
}

#[test]
fn templates_that_cannot_run_are_refused_with_their_line() {
    let _turn = common::one_at_a_time();
    let server = RedisServer::start(&[]);
    let dir = scratch("custom-refused");
    let scenario = |commands: &str| {
        format!(
            "name: refused\ntarget: {{url: \"{}\"}}\nkeyspace: {{prefix: \"cr:\"}}\nworkloads:\n  w:\n    kind: custom\n    commands:\n{commands}phases:\n  - {{name: p, duration: 300ms, workers: 1, rate: 100}}\n",
            server.url()
        )
    };
    // Found in the file: a misspelt placeholder, a command that leaves the prefix, two
    // templates counted under one name, an unknown script. Each located, exit 2.
    let f = common::write_file(
        &dir,
        "file.yaml",
        &scenario(
            "      - {command: \"SET k:{kye} v\"}\n      - {command: FLUSHALL}\n      - {command: \"GET a\"}\n      - {command: \"GET b\"}\n      - {command: \"EVALSHA {script:nope} 0\"}\n",
        ),
    );
    let out = run_in(&dir, &["validate", &f], &[], DEADLINE);
    assert_eq!(out.code, Some(2), "{}", out.all());
    for (line, says) in
        [(8, "`{kye}` is not a placeholder"), (9, "FLUSHALL cannot be a custom command"), (11, "both count as operation `GET`"), (12, "no script named `nope`")]
    {
        assert!(
            out.stderr.lines().any(|l| l.starts_with("error: ") && l.contains(&format!("file.yaml:{line}:")) && l.contains(says)),
            "line {line}: {says}\n{}",
            out.stderr
        );
    }

    // Found by asking the server: a command it does not know. Refused before the first phase,
    // with the template's line, exit 3; nothing was sent in a phase.
    let f = common::write_file(&dir, "server.yaml", &scenario("      - {command: \"GET k:{key}\"}\n      - {command: \"HSTE k:{key} f v\"}\n"));
    let out = run_in(&dir, &["apply", &f, "--json", "r.json", "--quiet"], &[], DEADLINE);
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains("server.yaml:9:9") && out.stderr.contains("does not know"), "{}", out.stderr);
    assert!(!dir.join("r.json").exists(), "no run, no report");
    assert_eq!(common::commandstats(&server).get("GET"), None, "no GET was sent");
}

#[test]
fn on_a_cluster_a_round_trip_keeps_its_keys_in_one_slot() {
    let _turn = common::one_at_a_time();
    let dir = scratch("custom-cluster");
    let scenario = |key_a: &str, key_b: &str| {
        format!(
            r#"name: slots
target: {{local: cluster}}
keyspace: {{prefix: "cs:", keys: 1000}}
workloads:
  cart:
    kind: custom
    sequence: true
    transaction: true
    commands:
      - {{command: "HSET {key_a} item {{data:16}}"}}
      - {{command: "INCR {key_b}"}}
      - {{command: "ZINCRBY board 1 m"}}
phases:
  - {{name: p, duration: 600ms, workers: 4, rate: 300}}
"#
        )
    };
    // `cart:{key}` and `hits:{key}` hash apart: refused, naming both lines.
    let f = common::write_file(&dir, "apart.yaml", &scenario("cart:{key}", "hits:{key}"));
    let out = run_in(&dir, &["apply", &f, "--quiet"], &[], DEADLINE);
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains("must share a slot") && out.stderr.contains("apart.yaml:1"), "{}", out.stderr);

    // With `{tag}` the two keys share a slot, but the literal `board` does not: still refused.
    let f = common::write_file(&dir, "board.yaml", &scenario("cart:{tag}", "hits:{tag}"));
    let out = run_in(&dir, &["apply", &f, "--quiet"], &[], DEADLINE);
    assert_eq!(out.code, Some(3), "{}", out.all());
    assert!(out.stderr.contains("`cs:board`"), "{}", out.stderr);

    // Tagged and without the literal key: every transaction runs on both clients.
    let f = common::write_file(&dir, "together.yaml", &scenario("cart:{tag}", "hits:{tag}").replace("      - {command: \"ZINCRBY board 1 m\"}\n", ""));
    for client in CLIENTS {
        let out = run_in(&dir, &["apply", &f, "--client", client, "--json", "r.json", "--quiet"], &[], DEADLINE);
        assert_eq!(out.code, Some(0), "{client}: {}", out.all());
        let report = read_report(&dir.join("r.json"));
        assert_eq!(common::total_errors(&report), 0, "{client}: {}", out.stdout);
        let exec = common::op_count(&report, "p", "cart", "EXEC");
        assert!(exec > 100, "{client}: {exec} transactions");
        assert_eq!(common::op_count(&report, "p", "cart", "HSET"), exec, "{client}: one HSET per transaction");
        assert_eq!(report["phases"][0]["commands"]["MULTI"].as_u64(), Some(exec), "{client}: {}", report["phases"][0]["commands"]);
    }
}
