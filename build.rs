//! Build facts for `redis-test --version`: the git commit and the build date (UTC). Outside a git
//! checkout (a source tarball) the commit reads `unknown`. Also the version of the `redis` crate
//! (the client under test) as Cargo.lock pins it, for plans and reports.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let dirty =
        Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]).output().ok().is_some_and(|o| o.status.success() && !o.stdout.is_empty());
    let date = Command::new("date").args(["-u", "+%Y-%m-%d"]).output().ok().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();
    println!("cargo:rustc-env=REDIS_TEST_COMMIT={commit}{}", if dirty { "-modified" } else { "" });
    println!("cargo:rustc-env=REDIS_TEST_BUILD_DATE={date}");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let redis = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"redis\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")).map(|v| v.trim_end_matches('"').to_owned()))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=REDIS_RS_VERSION={redis}");
    println!("cargo:rerun-if-changed=Cargo.lock");
    // A new commit means a new version string: watch HEAD, the branch it names and the index.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/index");
    println!("cargo:rerun-if-changed=.git/packed-refs");
    if let Some(branch) = std::fs::read_to_string(".git/HEAD").ok().and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_owned())) {
        println!("cargo:rerun-if-changed=.git/{branch}");
    }
}
