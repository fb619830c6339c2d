//! JUnit XML for CI test tabs, read back with a real JUnit reader (PyPI's junitparser): one case
//! per threshold and per fault, failures carrying what was observed against the limit.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{RedisServer, run_in, scratch};

#[test]
fn thresholds_and_faults_become_test_cases_a_junit_reader_understands() {
    let server = RedisServer::start(&[]);
    let dir = scratch("junit");
    std::fs::write(
        dir.join("j.yaml"),
        format!(
            "name: \"j & <co>\"\ntarget: {{url: \"{}\"}}\nworkloads: {{w: {{kind: basic}}}}\nphases: [{{name: p, duration: 1s, workers: 2, rate: 200}}]\nfaults:\n  - {{action: client_kill, at: 300ms}}\n  - {{action: shell, at: 500ms, command: \"exit 3\", name: broken}}\nthresholds:\n  - error_rate < 50%\n  - {{expr: p99 < 1us, workload: w}}\n",
            server.url()
        ),
    )
    .unwrap();
    let out = run_in(&dir, &["apply", "j.yaml", "--junit", "out/j.xml", "--quiet"], &[], Duration::from_secs(60));
    assert_eq!(out.code, Some(1), "{}", out.all());
    assert!(out.stdout.contains("junit: out/j.xml"), "{}", out.stdout);
    let script = r#"
import sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    print("suite", suite.name, suite.tests, suite.failures)
    for case in suite:
        failed = [r for r in case.result if isinstance(r, Failure)]
        print("case", case.classname, "|", case.name, "|", "FAIL " + failed[0].message if failed else "pass")
"#;
    let read = Command::new("python3").args(["-c", script]).arg(dir.join("out/j.xml")).output().expect("python3 runs");
    let text = String::from_utf8_lossy(&read.stdout);
    assert!(read.status.success(), "junitparser could not read it: {}", String::from_utf8_lossy(&read.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("suite j & <co> (") && lines[0].ends_with(" 4 2"), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("case j & <co>.thresholds | error_rate < 50% | pass")), "{text}");
    assert!(lines.iter().any(|l| l.contains("| p99 < 1us [workload w] | FAIL observed ") && l.contains("against `p99 < 1us`")), "{text}");
    assert!(lines.iter().any(|l| l.contains(".faults | client_kill@300ms (CLIENT KILL (own)) | pass")), "{text}");
    assert!(lines.iter().any(|l| l.contains(".faults | broken (shell `exit 3`") && l.contains("| FAIL exit status: 3")), "{text}");
}
