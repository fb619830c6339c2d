//! The Kubernetes manifests under deploy/kubernetes: rendered with `kubectl kustomize`, every
//! resource validated against the Kubernetes schemas (PyPI's kubernetes-validate, strict), the
//! Indexed Job's shard count consistent, and its command line accepted by our own parser.

mod common;

use std::path::Path;
use std::process::Command;

use clap::Parser;
use common::repo;
use serde_json::Value;

/// `kubectl kustomize DIR` when kubectl is installed; otherwise the manifests the kustomization
/// lists, as they are (the generated ConfigMaps are then left out, and the run says so).
fn render(dir: &Path) -> String {
    match Command::new("kubectl").arg("kustomize").arg(dir).output() {
        Ok(out) => {
            assert!(out.status.success(), "kubectl kustomize {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        }
        Err(_) => {
            eprintln!("kubectl is not installed: validating the listed manifests without rendering the kustomization");
            let k = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
            k.lines()
                .skip_while(|l| !l.starts_with("resources:"))
                .skip(1)
                .take_while(|l| l.starts_with("  - "))
                .map(|l| std::fs::read_to_string(dir.join(l.trim_start_matches("  - ").trim())).unwrap())
                .collect::<Vec<_>>()
                .join("\n---\n")
        }
    }
}

/// The YAML documents as JSON (through Python's yaml, which kubernetes-validate brings).
fn documents(yaml: &str) -> Vec<Value> {
    let out = Command::new("python3")
        .args(["-c", "import sys, json, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(yaml.as_bytes())?;
            c.wait_with_output()
        })
        .expect("python3 with PyYAML (scripts/install-deps installs kubernetes-validate, which brings it)");
    assert!(out.status.success());
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn validate(name: &str, yaml: &str) {
    let dir = common::scratch("kubernetes");
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, yaml).unwrap();
    let out = Command::new("kubernetes-validate")
        .args(["--strict", "--kubernetes-version", "1.30.0"])
        .arg(&file)
        .output()
        .expect("kubernetes-validate (PyPI; scripts/install-deps installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name}: {text}");
    assert!(!text.contains("WARN") && !text.contains("ERROR"), "{name}: {text}");
}

#[test]
fn the_manifests_render_and_validate_against_the_kubernetes_schemas() {
    let base = repo().join("deploy/kubernetes");
    let shards = render(&base);
    validate("shards", &shards);
    let merge = render(&base.join("merge"));
    validate("merge", &merge);

    let docs = documents(&shards);
    let job = docs.iter().find(|d| d["kind"] == "Job").expect("the shards' Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed", "{spec}");
    assert_eq!(spec["completions"], spec["parallelism"], "every shard runs at once: {spec}");
    let container = &spec["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    assert!(args.contains(&format!("--shards={}", spec["completions"])), "--shards matches completions: {args:?}");
    // The command line the pods run is one our parser accepts (Kubernetes fills in $(VAR)).
    let filled: Vec<String> = args
        .iter()
        .map(|a| a.replace("$(RUN_ID)", "nightly-1").replace("$(START_AT)", "2026-11-26T02:00:00Z").replace("$(JOB_COMPLETION_INDEX)", "0"))
        .collect();
    let cli = redis_test::cli::Cli::try_parse_from(std::iter::once("redis-test".to_owned()).chain(filled.clone()));
    assert!(cli.is_ok(), "{filled:?}: {}", cli.err().map(|e| e.to_string()).unwrap_or_default());
    assert!(args.iter().any(|a| a.starts_with("--prometheus=0.0.0.0:")), "reachable from outside the pod: {args:?}");
    let annotations = &spec["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true", "{annotations}");
    // The scenario the ConfigMap carries is valid, and the merge Job merges and cleans up.
    if let Some(cm) = docs.iter().find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "redis-test-scenario") {
        assert_eq!(cm["data"]["scenario.yaml"].as_str().unwrap(), std::fs::read_to_string(base.join("scenario.yaml")).unwrap());
    }
    let out = common::run_in(&base, &["validate", "scenario.yaml"], &[], std::time::Duration::from_secs(20));
    assert_eq!(out.code, Some(0), "{}", out.all());
    let merge_docs = documents(&merge);
    let script = merge_docs[0]["spec"]["template"]["spec"]["containers"][0]["args"][0].as_str().unwrap();
    assert!(script.contains("redis-test merge /reports/$RUN_ID/shard-*.json") && script.contains("redis-test cleanup /scenario/scenario.yaml"), "{script}");

    // regression: hardening II item 12. The password lived in the ConfigMap'd scenario or the
    // args: both Jobs take it from a Secret, and the scenario reads it from the environment.
    for container in [container, &merge_docs[0]["spec"]["template"]["spec"]["containers"][0]] {
        let env = container["env"].as_array().unwrap();
        assert!(
            env.iter().any(|e| e["name"] == "REDIS_PASSWORD" && e["valueFrom"]["secretKeyRef"]["name"] == "redis-test-redis"),
            "the password comes from the Secret: {env:?}"
        );
        assert!(!container["args"].to_string().contains("password"), "{}", container["args"]);
    }
    let scenario = std::fs::read_to_string(base.join("scenario.yaml")).unwrap();
    assert!(scenario.contains("password: ${REDIS_PASSWORD:-}"), "{scenario}");
}
