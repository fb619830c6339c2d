//! `redis-test merge R0.json R1.json …`: one report from the reports of every shard of a run.

use std::path::{Path, PathBuf};

use crate::exit;
use crate::report::Report;

/// Runs `merge` and returns the exit code: 0, 1 (a threshold failed on the merged figures), 2
/// (unreadable reports, different runs, a shard missing or given twice), 3 (an output cannot be
/// written), 130 (a shard was interrupted).
pub fn merge(paths: &[PathBuf], json: Option<&Path>, html: Option<&Path>, junit: Option<&Path>) -> u8 {
    let mut reports = Vec::new();
    for p in paths {
        match super::read_report(p) {
            Ok(r) => reports.push((p.clone(), r)),
            Err(e) => {
                crate::errln!("error: {e}");
                return exit::INVALID;
            }
        }
    }
    let merged: Report = match crate::report::merge::merge(reports) {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: {}", crate::units::escape_terminal(&e));
            return exit::INVALID;
        }
    };
    crate::out!("{}", crate::report::summary::render(&merged));
    crate::outln!("merged: {} shards of run {}", merged.merged_from.len(), crate::units::escape_control(&merged.run_id));
    match &merged.cleanup {
        Some(c) => crate::outln!("cleanup: the shards removed {} keys under `{}`", c.removed, crate::units::escape_control(&c.prefix)),
        None => crate::outln!("cleanup: not run by the shards; remove the run's keys with `redis-test cleanup SCENARIO`"),
    }
    for (path, what, text) in [
        (json, "report", json.map(|_| serde_json::to_string_pretty(&merged).expect("reports serialize") + "\n")),
        (html, "HTML report", html.map(|_| crate::report::html::render(&merged))),
        (junit, "JUnit XML", junit.map(|_| crate::report::junit::render(&merged))),
    ] {
        let (Some(path), Some(text)) = (path, text) else { continue };
        if let Err(e) = crate::files::write_output(path, text.as_bytes()) {
            crate::errln!("error: cannot write the {what} to {}: {e}", path.display());
            return exit::CANNOT_RUN;
        }
        crate::outln!("{what}: {}", path.display());
    }
    merged.exit_code()
}
