//! Command-line conventions: shell completions that the shells accept, a manual page, and a
//! `--version` that names the commit it was built from.

mod common;

use std::process::Command;

use common::{repo, run};

#[test]
fn completions_for_every_shell_cover_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.code, Some(0), "{shell}: {}", out.all());
        for sub in ["validate", "plan", "apply", "report", "compare", "schema", "completions", "man"] {
            assert!(out.stdout.contains(sub), "{shell} completion lacks {sub}");
        }
        if shell == "bash" {
            let dir = common::scratch("completions");
            std::fs::write(dir.join("redis-test.bash"), &out.stdout).unwrap();
            let check = Command::new("bash").arg("-n").arg(dir.join("redis-test.bash")).output().unwrap();
            assert!(check.status.success(), "bash rejects the script: {}", String::from_utf8_lossy(&check.stderr));
            // Sourced, it registers a completion for redis-test.
            let registered =
                Command::new("bash").arg("-c").arg(format!("source {} && complete -p redis-test", dir.join("redis-test.bash").display())).output().unwrap();
            assert!(String::from_utf8_lossy(&registered.stdout).contains("redis-test"), "{}", String::from_utf8_lossy(&registered.stderr));
        }
    }
    let bad = run(&["completions", "tcsh"]);
    assert_eq!(bad.code, Some(2), "an unknown shell is a usage error");
}

#[test]
fn the_manual_page_documents_every_subcommand() {
    let out = run(&["man"]);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert!(out.stdout.starts_with(".ie") || out.stdout.contains(".TH redis-test 1"), "{}", &out.stdout[..200.min(out.stdout.len())]);
    assert!(out.stdout.contains(".TH redis-test 1"));
    for sub in ["validate", "plan", "apply", "compare", "completions"] {
        assert!(out.stdout.contains(sub), "the manual lacks {sub}");
    }
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = run(&["--version"]);
    assert_eq!(out.code, Some(0));
    let head = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(repo()).output().unwrap();
    let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    assert!(!head.is_empty(), "the tests run in a git checkout");
    assert!(out.stdout.starts_with(&format!("redis-test {} (commit {head}", env!("CARGO_PKG_VERSION"))), "{} (HEAD {head})", out.stdout);
    assert!(out.stdout.contains(", built 20"), "{}", out.stdout);
}
