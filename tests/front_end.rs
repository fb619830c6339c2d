//! The scenario front end through the real binary: validate, plan, schema, bad input, precedence,
//! secrets, and the shipped files.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{repo, run, run_in, scratch};
use redis_test::plan::{Plan, compile};
use redis_test::scenario::{LoadOptions, load};

fn shipped_files() -> Vec<std::path::PathBuf> {
    let mut files = redis_test::scenario::files_in(&repo().join("scenarios")).unwrap();
    files.extend(redis_test::scenario::files_in(&repo().join("examples")).unwrap());
    files.extend(redis_test::scenario::files_in(&repo().join("benches")).unwrap());
    assert!(files.len() >= 22, "expected 18 scenarios, 2 examples and 2 benchmarks, found {files:?}");
    files
}

#[test]
fn every_shipped_scenario_and_example_validates() {
    let out = run(&["validate", "scenarios", "examples", "benches"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("22 files: 22 valid, 0 invalid"), "{}", out.all());
}

#[test]
fn one_scenario_ships_per_workload_kind() {
    let mut kinds: Vec<String> = Vec::new();
    for f in redis_test::scenario::files_in(&repo().join("scenarios")).unwrap() {
        let s = load(&f, &LoadOptions::default()).unwrap();
        kinds.extend(s.workloads.iter().map(|w| w.kind.kind_name().to_owned()));
    }
    for kind in ["basic", "high_throughput", "list", "set", "sorted_set", "hash", "pipeline", "pubsub", "custom", "stream"] {
        assert!(kinds.iter().any(|k| k == kind), "no shipped scenario uses `{kind}`");
    }
}

#[test]
fn shipped_files_carry_the_editor_schema_directive() {
    for f in shipped_files() {
        let first = std::fs::read_to_string(&f).unwrap().lines().next().unwrap_or_default().to_owned();
        let want = if f.extension().unwrap() == "toml" {
            "#:schema ../schemas/scenario.schema.json"
        } else {
            "# yaml-language-server: $schema=../schemas/scenario.schema.json"
        };
        assert_eq!(first, want, "{}", f.display());
    }
}

#[test]
fn schema_command_prints_the_committed_schema_byte_for_byte() {
    let out = run(&["schema"]);
    assert_eq!(out.code, Some(0));
    let committed = std::fs::read_to_string(repo().join("schemas/scenario.schema.json")).unwrap();
    assert!(out.stdout == committed, "schemas/scenario.schema.json is stale: run `redis-test schema > schemas/scenario.schema.json`");
}

#[test]
fn toml_twin_compiles_to_the_yaml_plan() {
    let yaml = load(&repo().join("scenarios/nightly.yaml"), &LoadOptions::default()).unwrap();
    let toml = load(&repo().join("examples/nightly.toml"), &LoadOptions::default()).unwrap();
    assert_eq!(compile(&yaml, 1.0), compile(&toml, 1.0));
}

#[test]
fn plan_shows_the_phase_table() {
    let out = run(&["plan", "scenarios/nightly.yaml"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    for want in [
        "warmup         ramp_up          0s        1m  4→32        2000→20000",
        "steady         steady           1m        5m  32          20000",
        "cooldown       cooldown         6m        1m  32→4        20000→2000            sessions 100%",
        "sessions 50%, carts 20%, feed 10%, leaderboard 10%, batches 10%",
        "ops_per_sec > 19000          phase steady",
    ] {
        assert!(out.stdout.contains(want), "missing {want:?} in\n{}", out.stdout);
    }
}

#[test]
fn plan_json_round_trips() {
    let out = run(&["plan", "scenarios/nightly.yaml", "--json"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let parsed: Plan = serde_json::from_str(&out.stdout).expect("plan JSON parses back");
    let direct = compile(&load(&repo().join("scenarios/nightly.yaml"), &LoadOptions::default()).unwrap(), 1.0);
    assert_eq!(parsed, direct);
    assert_eq!(parsed.total_duration, Duration::from_secs(420));
    assert_eq!(parsed.phases[1].start, Duration::from_secs(60));
}

#[test]
fn time_scale_shrinks_phases_and_fault_offsets() {
    let out = run(&["plan", "examples/annotated.yaml", "--json", "--time-scale", "0.1"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let plan: Plan = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan.total_duration, Duration::from_secs(18));
    let kill = plan.faults.iter().find(|f| f.name == "drop-our-connections").unwrap();
    assert_eq!(kill.at, Duration::from_secs(5), "50 s into the run, scaled by 0.1");
    let bad = run(&["plan", "scenarios/nightly.yaml", "--time-scale", "0"]);
    assert_eq!(bad.code, Some(2), "{}", bad.all());
}

const SECRET_SCENARIO: &str = "name: secret\ntarget:\n  url: redis://app:s3cr3t-in-url@127.0.0.1:6379\n  password: ${PW}\nworkloads:\n  w: {kind: basic}\nphases:\n  - {name: p, duration: 1s, workers: 1}\nmetrics:\n  otlp:\n    headers: {authorization: \"${TOKEN}\"}\n";

#[test]
fn secrets_never_appear_in_plans_or_errors() {
    let dir = scratch("secrets");
    std::fs::write(dir.join("s.yaml"), SECRET_SCENARIO).unwrap();
    let env = [("PW", "hunter2-from-env"), ("TOKEN", "tok-xyz-123")];
    for args in [&["plan", "s.yaml"][..], &["plan", "s.yaml", "--json"], &["validate", "s.yaml"]] {
        let out = run_in(&dir, args, &env, Duration::from_secs(30));
        assert_eq!(out.code, Some(0), "{}", out.all());
        for secret in ["hunter2-from-env", "s3cr3t-in-url", "tok-xyz-123"] {
            assert!(!out.all().contains(secret), "{secret} leaked by {args:?}:\n{}", out.all());
        }
    }
    let out = run_in(&dir, &["plan", "s.yaml"], &env, Duration::from_secs(30));
    assert!(out.stdout.contains("redis://app:***@127.0.0.1:6379"), "{}", out.stdout);
    // A secret of the wrong type is reported without echoing it (a password is a string, so
    // `[hunter3]` is taken as its text; OTLP headers are a mapping).
    let out = run_in(&dir, &["validate", "s.yaml", "--set", "metrics.otlp.headers=[hunter3]"], &env, Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(!out.all().contains("hunter3"), "{}", out.all());
}

#[test]
fn a_sentinel_target_needs_no_url_and_other_targets_do() {
    let dir = scratch("sentinel-no-url");
    let body = |target: &str| format!("name: s\ntarget: {target}\nworkloads: {{w: {{kind: basic}}}}\nphases: [{{name: p, duration: 1s, workers: 1}}]\n");
    std::fs::write(dir.join("s.yaml"), body("{mode: sentinel, sentinel: {master_name: orders, nodes: [\"127.0.0.1:26379\"], password: s3nt}}")).unwrap();
    let out = run_in(&dir, &["plan", "s.yaml"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("target    sentinel master `orders` (mode sentinel"), "{}", out.stdout);
    assert!(!out.all().contains("s3nt"), "{}", out.all());
    for (name, target) in [("c", "{mode: cluster}"), ("r", "{read_from_replicas: true}")] {
        std::fs::write(dir.join(format!("{name}.yaml")), body(target)).unwrap();
        let out = run_in(&dir, &["validate", &format!("{name}.yaml")], &[], Duration::from_secs(30));
        assert_eq!(out.code, Some(2), "{}", out.all());
        assert!(out.stdout.contains("set `url`") || out.stderr.contains("set `url`"), "{name}: {}", out.all());
    }
}

const PRECEDENCE: &str = "name: p\ntarget: {url: redis://127.0.0.1:6379}\nworkloads: {w: {kind: basic}}\nphases:\n  - {name: steady, duration: 10s, workers: 2, rate: \"${RATE:-100}\"}\n";

fn planned_rate(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> f64 {
    let mut args = vec!["plan", "p.yaml", "--json"];
    args.extend_from_slice(extra);
    let out = run_in(dir, &args, env, Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{}", out.all());
    let plan: Plan = serde_json::from_str(&out.stdout).unwrap();
    plan.phases[0].rate.unwrap().from
}

#[test]
fn precedence_is_file_then_dotenv_then_environment_then_command_line() {
    let dir = scratch("precedence");
    std::fs::write(dir.join("p.yaml"), PRECEDENCE).unwrap();
    assert_eq!(planned_rate(&dir, &[], &[]), 100.0, "file default");
    std::fs::write(dir.join(".env"), "RATE=200\n").unwrap();
    assert_eq!(planned_rate(&dir, &[], &[]), 200.0, ".env beats the file");
    assert_eq!(planned_rate(&dir, &[], &[("RATE", "300")]), 300.0, "environment beats .env");
    assert_eq!(planned_rate(&dir, &["--set", "phases.steady.rate=400"], &[("RATE", "300")]), 400.0, "--set beats all");
    std::fs::write(dir.join("other.env"), "RATE=250\n").unwrap();
    assert_eq!(planned_rate(&dir, &["--env-file", "other.env"], &[]), 250.0, "--env-file replaces ./.env");
    let missing = run_in(&dir, &["plan", "p.yaml", "--env-file", "nope.env"], &[], Duration::from_secs(30));
    assert_eq!(missing.code, Some(2), "{}", missing.all());
}

#[test]
fn a_missing_variable_is_named_with_its_location() {
    let dir = scratch("missing-var");
    std::fs::write(
        dir.join("m.yaml"),
        "name: m\ntarget:\n  url: ${REDIS_URL_FOR_TEST}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 1}]\n",
    )
    .unwrap();
    let out = run_in(&dir, &["validate", "m.yaml"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("m.yaml:3:8: target.url: environment variable `REDIS_URL_FOR_TEST` is not set"), "{}", out.all());
}

#[test]
fn target_shortcut_replaces_a_local_target() {
    let out = run(&["plan", "scenarios/basic.yaml", "--target", "redis://127.0.0.1:6390/1"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("target    redis://127.0.0.1:6390/1 (mode standalone"), "{}", out.stdout);
}

const THREE_MISTAKES: &str = "name: three\ntarget:\n  url: redis://127.0.0.1:6379\nworkloads:\n  sessions:\n    kind: basic\n    read_ration: 0.5\nphases:\n  - name: steady\n    duration: 10s\n    workers: 4\n    mix: { sesions: 1 }\nthresholds:\n  - p99 < 5 parsecs\n";

#[test]
fn three_independent_mistakes_give_three_located_errors() {
    let dir = scratch("three");
    std::fs::write(dir.join("three.yaml"), THREE_MISTAKES).unwrap();
    let out = run_in(&dir, &["validate", "three.yaml"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.all());
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 3, "{}", out.all());
    assert!(
        errors[0].starts_with("error: three.yaml:7:5: workloads.sessions.read_ration: unknown key `read_ration`; did you mean `read_ratio`?"),
        "{}",
        errors[0]
    );
    assert!(errors[1].starts_with("error: three.yaml:12:12: phases.0.mix.sesions: no workload named `sesions`; did you mean `sessions`?"), "{}", errors[1]);
    assert!(errors[2].starts_with("error: three.yaml:14:5: thresholds.0:"), "{}", errors[2]);
    assert!(out.stderr.contains(" 7 |     read_ration: 0.5\n   |     ^"), "the source line and caret are shown:\n{}", out.stderr);
}

#[test]
fn errors_in_several_files_are_all_reported() {
    let dir = scratch("several");
    std::fs::write(
        dir.join("a.yaml"),
        "name: a\ntarget: {url: redis://127.0.0.1}\nworkloads: {w: {kind: basic, wieght: 2}}\nphases: [{name: p, duration: 1s, workers: 1}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.toml"),
        "name = \"b\"\n[target]\nurl = \"redis://127.0.0.1\"\n[workloads.w]\nkind = \"basic\"\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nworkers = 0\n",
    )
    .unwrap();
    let out = run_in(&dir, &["validate", "a.yaml", "b.toml"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stderr.contains("a.yaml:3:30: workloads.w.wieght: unknown key `wieght`; did you mean `weight`?"), "{}", out.all());
    assert!(out.stderr.contains("b.toml:9:11: phases.0.workers: needs at least 1 worker"), "{}", out.all());
    assert!(out.stdout.contains("2 files: 0 valid, 2 invalid (2 errors)"), "{}", out.all());
}

#[test]
fn semantic_rules_are_enforced() {
    let cases: &[(&str, &str)] = &[
        ("phases: [{name: p, duration: 0s, workers: 1}]", "phases.0.duration: must be longer than zero"),
        ("phases: [{name: p, duration: 1s, workers: {from: 5, to: 0}}]", "phases.0.workers.to: needs at least 1 worker"),
        ("phases: [{name: p, duration: 1s, workers: 1, rate: 0}]", "phases.0.rate: a constant rate of 0 sends nothing"),
        ("phases: [{name: p, duration: 1s, workers: 1}, {name: p, duration: 1s, workers: 1}]", "phases.1.name: phase name `p` is already used"),
        ("keyspace: {prefix: \"\"}", "keyspace.prefix: must not be empty"),
        ("keyspace: {prefix: \"a*\"}", "must not contain glob characters"),
        ("keyspace: {value_size: {min: 1KiB, max: 10B}}", "keyspace.value_size.min: `min` (1KiB) is larger than `max` (10B)"),
        ("keyspace: {keys: 0}", "keyspace.keys: must be at least 1"),
        ("faults: [{action: client_pause, at: 5s, duration: 1s}]", "faults.0.at: offset 5s is not inside the run, which lasts 1s"),
        ("faults: [{action: debug_sleep, at: 0s, phase: nope, duration: 1s}]", "faults.0.phase: no phase named `nope`"),
        ("faults: [{action: failover, at: 0s}]", "`failover` needs a cluster or sentinel target"),
        ("faults: [{action: restart, at: 0s}]", "`restart` needs a local target"),
        ("thresholds: [{expr: p99 < 1ms, operation: ZADD}]", "thresholds.0.operation: no workload in scope performs `ZADD`"),
        ("thresholds: [lost_writes == 0]", "`lost_writes` needs a `basic` or `hash` workload with `verify: true`, or a `stream` workload"),
        ("thresholds: [duplicate_writes == 0]", "`duplicate_writes` needs a `basic` or `hash` workload with `verify: true`, or a `stream` workload"),
        ("faults: [{action: freeze, at: 0s, duration: 500ms}]", "`freeze` needs a local target"),
        (
            "target: {local: standalone}\nfaults: [{action: restart, at: 0s, new_port: true}]",
            "faults.0.new_port: a standalone server has no way to tell its clients a new address",
        ),
        (
            "target: {local: cluster}\nfaults: [{action: restart, at: 0s, down_for: 100ms, new_port: true}, {action: reset, at: 0s}]",
            "faults.0.new_port: a node on a new port has left its fault proxy behind",
        ),
        ("thresholds: [{expr: p99 < 1ms, workload: nope}]", "thresholds.0.workload: no workload named `nope`"),
        ("output: {json: \"r/{date}.json\"}", "output.json: unknown placeholder `{date}`"),
        ("metrics: {prometheus: {listen: \"localhost:x\"}}", "metrics.prometheus.listen:"),
        ("connections: {retry: {initial_backoff: 5s, max_backoff: 1s}}", "connections.retry.max_backoff: must not be shorter"),
        ("connections: {pools: 0}", "connections.pools: must be at least 1"),
        ("target: {url: redis://127.0.0.1, tls: {ca: nope.pem}}", "target.tls.ca: file"),
        ("target: {url: redis://127.0.0.1, local: standalone}", "give either `url` or `local`"),
        ("target: {url: http://127.0.0.1}", "target.url: the URL must start with `redis://`"),
        ("target: {url: redis://127.0.0.1, mode: sentinel}", "`mode: sentinel` needs a `sentinel` section"),
        ("workloads: {w: {kind: basic, read_ratio: 0.9, delete_ratio: 0.2}}", "must add up to at most 1"),
        (
            "workloads: {w: {kind: list, commands: {lpush: 0, rpush: 0, lpop: 0, rpop: 0, lrange: 0, llen: 0, ltrim: 0}}}",
            "workloads.w.commands: at least one command needs a weight above zero",
        ),
        ("workloads: {w: {kind: pubsub, message_size: 8B}}", "workloads.w.message_size: must be at least 32B"),
        ("workloads: {\"bad name\": {kind: basic}}", "may only use letters, digits"),
        ("workloads: {w: {kind: basic, keyspace: {prefix: \"other:\"}}}", "must start with the scenario's key prefix"),
    ];
    let base = "name: s\ntarget: {url: redis://127.0.0.1:6379}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 1}]\n";
    let dir = scratch("semantic");
    for (i, (patch, want)) in cases.iter().enumerate() {
        // Later keys replace earlier ones: rebuild the document with the patched section.
        let section = patch.split(':').next().unwrap();
        let mut doc: String = base.lines().filter(|l| !l.starts_with(&format!("{section}:"))).map(|l| format!("{l}\n")).collect();
        doc.push_str(patch);
        doc.push('\n');
        let f = format!("case{i}.yaml");
        std::fs::write(dir.join(&f), &doc).unwrap();
        let out = run_in(&dir, &["validate", &f], &[], Duration::from_secs(30));
        assert_eq!(out.code, Some(2), "case {patch}: {}", out.all());
        assert!(out.stderr.contains(want), "case {patch}: wanted {want:?} in\n{}", out.stderr);
        assert!(out.stderr.contains(&format!("{f}:")), "case {patch}: no location in\n{}", out.stderr);
    }
}

/// Writes bytes to a file and checks `validate` rejects them cleanly, fast, with a location.
fn rejects(dir: &Path, name: &str, bytes: &[u8], want: &str) {
    std::fs::write(dir.join(name), bytes).unwrap();
    let out = run_in(dir, &["validate", name], &[], Duration::from_secs(10));
    assert_eq!(out.code, Some(2), "{name}: {}", out.all());
    assert!(!out.stderr.contains("panicked"), "{name} panicked: {}", out.stderr);
    assert!(out.stderr.contains(want), "{name}: wanted {want:?} in\n{}", out.stderr);
    assert!(out.stderr.contains(&format!("error: {name}")), "{name}: no file name in\n{}", out.stderr);
}

#[test]
fn bad_input_never_panics() {
    let dir = scratch("bad-input");
    rejects(&dir, "empty.yaml", b"", "empty.yaml:1:1: the file is empty");
    rejects(&dir, "comments.yaml", b"# only a comment\n", "the file is empty");
    rejects(&dir, "empty.toml", b"", "empty.toml:1:1: the file is empty");
    rejects(&dir, "latin1.yaml", b"name: caf\xe9\n", "latin1.yaml:1:10: the file is not valid UTF-8");
    rejects(&dir, "scenario.json", b"{}", "unsupported file extension `.json`");
    rejects(&dir, "noext", b"name: x\n", "has no extension");
    rejects(&dir, "syntax.yaml", b"name: [unclosed\n", "syntax.yaml:2:1: YAML syntax error");
    rejects(&dir, "syntax.toml", b"name = \n", "syntax.toml:1:8: TOML syntax error");
    rejects(&dir, "dup.yaml", b"name: a\nname: b\n", "dup.yaml:2:1: duplicate key `name` (first written at line 1, column 1)");
    rejects(&dir, "dup.toml", b"name = \"a\"\nname = \"b\"\n", "dup.toml:2:1: TOML syntax error");
    rejects(&dir, "multi.yaml", b"name: a\n---\nname: b\n", "multi.yaml:2:1: a scenario file holds exactly one YAML document");
    rejects(&dir, "list.yaml", b"- a\n- b\n", "list.yaml:1:1: a scenario is a mapping");
    rejects(&dir, "scalar.toml", b"x = 1\n", "unknown key `x`");
    rejects(
        &dir,
        "huge-number.yaml",
        b"name: n\ntarget: {url: redis://h}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 99999999999999999999999}]\n",
        "huge-number.yaml:4:43: phases.0.workers: the number is too large",
    );
    rejects(
        &dir,
        "u32-overflow.toml",
        b"name = \"n\"\n[target]\nurl = \"redis://h\"\n[workloads.w]\nkind = \"basic\"\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nworkers = 5000000000\n",
        "u32-overflow.toml:9:11: phases.0.workers",
    );
    rejects(
        &dir,
        "huge-duration.yaml",
        b"name: n\ntarget: {url: redis://h}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 99999999999999999999h, workers: 1}]\n",
        "huge-duration.yaml:4:30: phases.0.duration: `99999999999999999999h` is longer than 8760h, the longest duration redis-test takes (365 days)",
    );
    // A process fault on a node the local deployment does not have (it failed only at its offset).
    rejects(
        &dir,
        "node.yaml",
        b"name: n\ntarget: {local: cluster}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 1}]\nfaults: [{action: freeze, node: 6, at: 100ms, duration: 100ms}]\n",
        "node.yaml:5:33: faults.0.node: the target has nodes 0..5, not node 6",
    );
    // A bandwidth of 0 was run as 1 B/s, silently.
    rejects(
        &dir,
        "bandwidth.yaml",
        b"name: n\ntarget: {local: standalone}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 1}]\nfaults: [{action: bandwidth, at: 100ms, bytes_per_second: 0, duration: 100ms}]\n",
        "bandwidth.yaml:5:59: faults.0.bytes_per_second: must be at least 1B: a link that carries nothing is a `blackhole`",
    );
    // Rules decided before the run: `>= 0` passes every run (a typo of `== 0` that checks
    // nothing), `< 0ms` fails every run.
    rejects(
        &dir,
        "always.yaml",
        b"name: n\ntarget: {url: redis://h}\nworkloads: {w: {kind: basic, verify: true}}\nphases: [{name: p, duration: 1s, workers: 1}]\nthresholds: [lost_writes >= 0, p99 < 0ms]\n",
        "always.yaml:5:14: thresholds.0: `lost_writes >= 0` always holds (every `lost_writes` is 0 or more): it checks nothing",
    );
    rejects(
        &dir,
        "always.yaml",
        b"name: n\ntarget: {url: redis://h}\nworkloads: {w: {kind: basic, verify: true}}\nphases: [{name: p, duration: 1s, workers: 1}]\nthresholds: [lost_writes >= 0, p99 < 0ms]\n",
        "always.yaml:5:32: thresholds.1: `p99 < 0ms` never holds (no `p99` is below 0): every run would fail it",
    );
    rejects(
        &dir,
        "bool.yaml",
        b"name: n\ntarget: {url: redis://h}\nworkloads: {w: {kind: basic}}\nphases: [{name: p, duration: 1s, workers: 1}]\ncleanup: n\n",
        "bool.yaml:5:10: cleanup: expected a boolean, found a string `n`",
    );
    rejects(&dir, "tag.yaml", b"name: !!binary aGk=\n", "tag.yaml:1:7: YAML tag");

    let mut laughs = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..12 {
        let p = i - 1;
        laughs.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    rejects(&dir, "laughs.yaml", laughs.as_bytes(), "more than 100000 values");

    let deep_yaml = format!("name: {}{}\n", "[".repeat(20_000), "]".repeat(20_000));
    rejects(&dir, "deep.yaml", deep_yaml.as_bytes(), "deep.yaml:1:");
    let deep_map = (0..3000).map(|i| format!("{}k:\n", "  ".repeat(i))).collect::<String>();
    rejects(&dir, "deep-map.yaml", deep_map.as_bytes(), "deep-map.yaml:");
    let deep_toml = format!("name = {}{}\n", "[".repeat(20_000), "]".repeat(20_000));
    rejects(&dir, "deep.toml", deep_toml.as_bytes(), "deep.toml:");
    let big = format!("name: x\ndescription: \"{}\"\n", "a".repeat(2 * 1024 * 1024));
    rejects(&dir, "big.yaml", big.as_bytes(), "scenario files are limited to");
    std::fs::create_dir_all(dir.join("folder.yaml")).unwrap();
    let out = run_in(&dir, &["plan", "folder.yaml"], &[], Duration::from_secs(10));
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stderr.contains("is a directory"), "{}", out.all());
    let out = run_in(&dir, &["plan", "missing.yaml"], &[], Duration::from_secs(10));
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stderr.contains("missing.yaml: cannot read"), "{}", out.all());
}

#[test]
fn set_overrides_are_typed_by_the_schema_and_located() {
    let out = run(&[
        "plan",
        "scenarios/basic.yaml",
        "--json",
        "--set",
        "phases.steady.workers=3",
        "--set",
        "target.password=1234",
        "--set",
        "keyspace.value_size={min: 8B, max: 16B}",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let plan: Plan = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan.phases[1].workers.from, 3);
    assert!(plan.target.address.contains(":***@") || plan.target.address.starts_with("local"), "{}", plan.target.address);
    let out = run(&["validate", "scenarios/basic.yaml", "--set", "phases.steady.workers=many"]);
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stderr.contains("--set phases.steady.workers=many:1:"), "{}", out.all());
    let out = run(&["validate", "scenarios/basic.yaml", "--set", "phases.nope.workers=1"]);
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(out.stderr.contains("has no entry named `nope`"), "{}", out.all());
}

#[test]
fn report_schema_is_committed_byte_for_byte() {
    let out = run(&["schema", "--report"]);
    assert_eq!(out.code, Some(0));
    let committed = std::fs::read_to_string(repo().join("schemas/report.schema.json")).unwrap();
    assert!(out.stdout == committed, "schemas/report.schema.json is stale: run `redis-test schema --report > schemas/report.schema.json`");
}

// ---- issue 9: verdicts a nightly job can act on (front end) ----

#[test]
fn interpolation_inside_workloads_takes_the_schemas_type_in_yaml_and_toml() {
    let dir = scratch("interpolate-workloads");
    std::fs::write(
        dir.join("i.yaml"),
        "name: i\ntarget: {url: redis://127.0.0.1:6379}\nworkloads:\n  w: {kind: basic, weight: \"${W:-2}\", read_ratio: \"${READ:-0.5}\"}\n  p: {kind: pipeline, depth: \"${D:-5}\", transaction: \"${TX:-true}\"}\nphases: [{name: p, duration: 1s, workers: 1}]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("i.toml"),
        "name = \"i\"\n[target]\nurl = \"redis://127.0.0.1:6379\"\n[workloads.w]\nkind = \"basic\"\nweight = \"${W:-2}\"\nread_ratio = \"${READ:-0.5}\"\n[workloads.p]\nkind = \"pipeline\"\ndepth = \"${D:-5}\"\ntransaction = \"${TX:-true}\"\n[[phases]]\nname = \"p\"\nduration = \"1s\"\nworkers = 1\n",
    )
    .unwrap();
    for file in ["i.yaml", "i.toml"] {
        let out = run_in(&dir, &["plan", file, "--json"], &[("D", "7"), ("READ", "0.25")], Duration::from_secs(30));
        assert_eq!(out.code, Some(0), "{file}: {}", out.all());
        let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let p = plan["workloads"].as_array().unwrap().iter().find(|w| w["name"] == "p").unwrap();
        assert_eq!(p["options"]["depth"], 7, "{file}");
        assert_eq!(p["options"]["transaction"], true, "{file}");
        let w = plan["workloads"].as_array().unwrap().iter().find(|w| w["name"] == "w").unwrap();
        assert_eq!(w["options"]["read_ratio"], 0.25, "{file}");
        assert_eq!(plan["phases"][0]["mix"][0], serde_json::json!({"name": "w", "percent": 66.67}), "{file}: weight 2 against 1");
    }
}

#[test]
fn thresholds_that_can_never_pass_are_refused_where_they_are_written() {
    let dir = scratch("never-pass");
    std::fs::write(
        dir.join("n.yaml"),
        "name: n\ntarget: {url: redis://127.0.0.1:6379}\nworkloads:\n  a: {kind: basic}\n  b: {kind: basic}\n  p: {kind: pipeline}\nphases:\n  - {name: one, duration: 1s, workers: 1, mix: {a: 1, p: 1}}\n  - {name: two, duration: 1s, workers: 1, mix: {a: 1}}\nthresholds:\n  - recovery_time < 5s\n  - {expr: ops > 10, phase: two, workload: b}\n  - {expr: p99 < 5ms, workload: p, operation: GET}\n  - {expr: ops > 10, workload: b}\n",
    )
    .unwrap();
    let out = run_in(&dir, &["validate", "n.yaml"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{}", out.all());
    for want in [
        "n.yaml:11:5: thresholds.0: `recovery_time` is measured after a fault, and no fault runs in this scenario",
        "thresholds.1.workload: workload `b` does not run in phase `two`",
        "thresholds.2.operation: `GET` is a command inside batch round trips",
        "thresholds.3.workload: workload `b` runs in no phase",
    ] {
        assert!(out.stderr.contains(want), "missing `{want}` in:\n{}", out.stderr);
    }
}

#[test]
fn plans_show_every_option_and_scale_counts_and_fault_names_with_the_run() {
    let dir = scratch("plan-options");
    std::fs::write(
        dir.join("o.yaml"),
        "name: o\ntarget: {url: redis://127.0.0.1:6379}\nconnections: {command_timeout: 250ms}\nkeyspace: {distribution: {zipf: {exponent: 0.9}}, value_size: {min: 16B, max: 1KiB}, ttl: 10m}\nworkloads:\n  p: {kind: pipeline, depth: 7}\n  q: {kind: pubsub, pattern: true, message_size: 256B}\nphases: [{name: p, duration: 100s, workers: 2}]\nfaults: [{action: client_kill, at: 50s}]\nthresholds: [ops > 9000, errors < 50]\n",
    )
    .unwrap();
    let out = run_in(&dir, &["plan", "o.yaml", "--time-scale", "0.01"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(0), "{}", out.all());
    for want in [
        "zipf 0.9 keys",
        "values 16B..1KiB",
        "ttl 10m",
        "depth 7",
        "pattern true",
        "message_size 256B",
        "command 250ms",
        "client_kill@500ms",
        "limit ×0.01 by --time-scale: 90",
        "errors < 50 (limit ×0.01 by --time-scale: 0.5)",
    ] {
        assert!(out.stdout.contains(want), "missing `{want}` in:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("client_kill@50s"), "{}", out.stdout);
}

#[test]
fn set_takes_the_text_where_a_string_is_due_and_aliases_are_understood() {
    let out = run(&["plan", "scenarios/basic.yaml", "--set", "keyspace.prefix=app:x:"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.contains("under `app:x:cache:`"), "{}", out.stdout);
    let dir = scratch("aliases");
    std::fs::write(
        dir.join("z.yaml"),
        "name: z\ntarget: {url: redis://127.0.0.1:6379}\nworkloads: {w: {kind: zset}, h: {kind: hashes}}\nphases: [{name: p, duration: 1s, workers: 1}]\n",
    )
    .unwrap();
    let out = run_in(&dir, &["validate", "z.yaml"], &[], Duration::from_secs(30));
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("`zset` is not one of") && out.stderr.contains("did you mean `sorted_set`?"), "{}", out.stderr);
    assert!(out.stderr.contains("did you mean `hash`?"), "{}", out.stderr);
}
