//! The subcommands: each loads what it needs through [`crate::scenario`] and prints its result.

mod apply;
mod cleanup;
mod merge;

pub use apply::fill_template;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, ScenarioInputs};
use crate::exit;
use crate::scenario::{self, Diagnostic, Diagnostics, LoadOptions, Scenario, Vars};

/// Runs the chosen subcommand and returns its exit code.
pub fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Command::Validate { files, inputs } => validate(&files, &inputs),
        Command::Plan { file, json, time_scale, shard, inputs } => plan(&file, json, time_scale, shard, &inputs),
        Command::Apply(args) => apply::apply(&args),
        Command::Cleanup { file, inputs } => cleanup::cleanup(&file, &inputs),
        Command::Merge { reports, json, html, junit } => merge::merge(&reports, json.as_deref(), html.as_deref(), junit.as_deref()),
        Command::Report { report, html } => render_report(&report, html.as_deref()),
        Command::Compare { reports, baseline, last, all, max_regression, max_latency_regression, latency_floor, max_error_rate_increase, min_ops, json } => {
            let t = crate::report::compare::Tolerances {
                max_regression,
                max_latency_regression,
                latency_floor_us: latency_floor.as_secs_f64() * 1e6,
                max_error_rate_increase,
                min_ops,
                ..Default::default()
            };
            compare(&reports, baseline.as_deref(), last as usize, t, all, json)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "redis-test", &mut std::io::stdout());
            exit::OK
        }
        Command::Man { command, out_dir } => man(command.as_deref(), out_dir.as_deref()),
        Command::Schema { report } => {
            if report {
                crate::out!("{}", crate::report::schema_text());
            } else {
                crate::out!("{}", scenario::editor_schema::schema_text());
            }
            exit::OK
        }
    }
}

/// `redis-test man [SUBCOMMAND]` and `man --out-dir DIR`: the pages clap_mangen renders from the
/// same definitions `--help` uses, so they cannot drift from the options.
fn man(command: Option<&str>, out_dir: Option<&Path>) -> u8 {
    let top = <Cli as clap::CommandFactory>::command();
    // A subcommand's page carries the binary's name (`redis-test-apply`), as its SEE ALSO entry does.
    let page_of = |sub: &clap::Command| sub.clone().name(format!("redis-test-{}", sub.get_name())).display_name(format!("redis-test-{}", sub.get_name()));
    if let Some(dir) = out_dir {
        let mut pages = vec![("redis-test.1".to_owned(), top.clone())];
        pages.extend(top.get_subcommands().filter(|c| c.get_name() != "help").map(|c| (format!("redis-test-{}.1", c.get_name()), page_of(c))));
        for (file, cmd) in pages {
            let mut text = Vec::new();
            let path = dir.join(&file);
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut text).and_then(|()| crate::files::write_atomic(&path, &text)) {
                crate::errln!("error: cannot write {}: {e}", path.display());
                return exit::CANNOT_RUN;
            }
            crate::outln!("{}", path.display());
        }
        return exit::OK;
    }
    let cmd = match command {
        None => top,
        Some(name) => match top.find_subcommand(name) {
            Some(sub) => page_of(sub),
            None => {
                let names: Vec<&str> = top.get_subcommands().map(clap::Command::get_name).collect();
                crate::errln!("error: no subcommand `{name}`; pages exist for: {}", names.join(", "));
                return exit::INVALID;
            }
        },
    };
    let mut text = Vec::new();
    match clap_mangen::Man::new(cmd).render(&mut text) {
        Ok(()) => {
            crate::out!("{}", String::from_utf8_lossy(&text));
            exit::OK
        }
        Err(e) => {
            crate::errln!("error: {e}");
            exit::CANNOT_RUN
        }
    }
}

/// Builds the load options (variables, overrides) from the command line.
pub fn load_options(inputs: &ScenarioInputs) -> Result<LoadOptions, Diagnostic> {
    let vars = match &inputs.env_file {
        Some(path) => Vars::from_process(Some(path), true)?,
        None => Vars::from_process(Some(Path::new(".env")), false)?,
    };
    // `--client` and `--maintenance-notifications` are `--set`s that come first: an explicit
    // `--set connections.client=` still wins.
    let sets = inputs
        .client
        .iter()
        .map(|c| format!("connections.client={c}"))
        .chain(inputs.maintenance_notifications.iter().map(|m| format!("connections.maintenance_notifications={m}")))
        .chain(inputs.sets.iter().cloned())
        .collect();
    Ok(LoadOptions { vars, target: target_url(inputs)?, sets })
}

/// The target URL from `--target`, `--target-env VAR` or `--target-file PATH`.
fn target_url(inputs: &ScenarioInputs) -> Result<Option<String>, Diagnostic> {
    if let Some(var) = &inputs.target_env {
        return match std::env::var(var) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_owned())),
            _ => Err(Diagnostic::file("--target-env", format!("the environment variable `{var}` is not set or empty"))),
        };
    }
    if let Some(path) = &inputs.target_file {
        let bytes = crate::files::read_bounded(path, 64 * 1024).map_err(|e| Diagnostic::file(path.display().to_string(), format!("--target-file: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        let url = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        if url.is_empty() {
            return Err(Diagnostic::file(path.display().to_string(), "--target-file: the file holds no URL"));
        }
        return Ok(Some(url.to_owned()));
    }
    Ok(inputs.target.clone())
}

/// Loads one scenario, printing its problems to stderr; `Err` carries the exit code.
pub fn load_or_report(file: &Path, inputs: &ScenarioInputs) -> Result<Scenario, u8> {
    let opts = load_options(inputs).map_err(|d| {
        crate::errln!("error: {d}");
        exit::INVALID
    })?;
    scenario::load(file, &opts).map_err(|diags| {
        print_diagnostics(&diags);
        crate::errln!("{}: invalid ({} {})", file.display(), diags.0.len(), plural(diags.0.len(), "error"));
        exit::INVALID
    })
}

fn print_diagnostics(diags: &Diagnostics) {
    let mut err = std::io::stderr().lock();
    for d in &diags.0 {
        let _ = writeln!(err, "error: {d}\n");
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { word.to_owned() } else { format!("{word}s") }
}

fn validate(args: &[PathBuf], inputs: &ScenarioInputs) -> u8 {
    let mut files = Vec::new();
    for a in args {
        if a.is_dir() {
            match scenario::files_in(a) {
                Ok(found) if found.is_empty() => {
                    // Validating nothing must not look like success.
                    crate::errln!("error: {}: no scenario files (*.yaml, *.yml, *.toml) in this folder", a.display());
                    return exit::INVALID;
                }
                Ok(found) => files.extend(found),
                Err(e) => {
                    crate::errln!("error: {}: cannot list folder: {e}", a.display());
                    return exit::INVALID;
                }
            }
        } else {
            files.push(a.clone());
        }
    }
    let opts = match load_options(inputs) {
        Ok(o) => o,
        Err(d) => {
            crate::errln!("error: {d}");
            return exit::INVALID;
        }
    };
    let (mut bad, mut errors) = (0, 0);
    for f in &files {
        match scenario::load(f, &opts) {
            Ok(_) => crate::outln!("ok       {}", f.display()),
            Err(diags) => {
                print_diagnostics(&diags);
                crate::outln!("invalid  {} ({} {})", f.display(), diags.0.len(), plural(diags.0.len(), "error"));
                bad += 1;
                errors += diags.0.len();
            }
        }
    }
    if files.len() > 1 {
        crate::outln!("{} files: {} valid, {bad} invalid ({errors} {})", files.len(), files.len() - bad, plural(errors, "error"));
    }
    if bad == 0 { exit::OK } else { exit::INVALID }
}

fn plan(file: &Path, json: bool, time_scale: f64, shard: Option<(u32, u32)>, inputs: &ScenarioInputs) -> u8 {
    let scenario = match load_or_report(file, inputs) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let plan = match shard {
        Some((index, count)) => {
            let (divided, shard) = crate::shard::divide(&scenario, index, count);
            let mut plan = crate::plan::compile(&divided, time_scale);
            plan.shard = Some(shard);
            plan
        }
        None => crate::plan::compile(&scenario, time_scale),
    };
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&plan).expect("plans serialize"));
    } else {
        crate::out!("{plan}");
    }
    exit::OK
}

fn read_report(path: &Path) -> Result<crate::report::Report, String> {
    crate::report::read::read(path)
}

fn render_report(path: &Path, html: Option<&Path>) -> u8 {
    let report = match read_report(path) {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: {e}");
            return exit::INVALID;
        }
    };
    crate::out!("{}", crate::report::summary::render(&report));
    if let Some(out) = html {
        if let Err(e) = crate::files::write_output(out, crate::report::html::render(&report).as_bytes()) {
            crate::errln!("error: cannot write {}: {e}", out.display());
            return exit::CANNOT_RUN;
        }
        crate::outln!("html: {}", out.display());
    }
    exit::OK
}

fn compare(reports: &[PathBuf], dir: Option<&Path>, last: usize, t: crate::report::compare::Tolerances, all: bool, json: bool) -> u8 {
    let (current_path, given) = reports.split_last().expect("clap requires one report");
    let mut paths: Vec<PathBuf> = given.to_vec();
    if let Some(dir) = dir {
        match newest_reports(dir, current_path, last) {
            Ok(found) => paths.extend(found),
            Err(e) => {
                crate::errln!("error: {e}");
                return exit::INVALID;
            }
        }
    }
    if paths.is_empty() {
        crate::errln!("error: no baseline: give `compare BASELINE... CURRENT` or `--baseline DIR`");
        return exit::INVALID;
    }
    let mut baselines = Vec::new();
    for p in &paths {
        match read_report(p) {
            Ok(r) => baselines.push(r),
            Err(e) => {
                crate::errln!("error: {e}");
                return exit::INVALID;
            }
        }
    }
    let current = match read_report(current_path) {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: {e}");
            return exit::INVALID;
        }
    };
    let result = match crate::report::compare::compare(&baselines, &current, t) {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: not comparable: {e}");
            return exit::INVALID;
        }
    };
    if json {
        crate::outln!("{}", serde_json::to_string_pretty(&result).expect("comparisons serialize"));
    } else {
        crate::out!("{}", crate::report::compare::render(&result, all));
    }
    if result.passed { exit::OK } else { exit::THRESHOLD_FAILED }
}

/// The `last` newest run reports in `dir` by start time (files that are not reports, and reports
/// of interrupted runs, are skipped), leaving out `current` itself.
fn newest_reports(dir: &Path, current: &Path, last: usize) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: cannot list folder: {e}", dir.display()))?;
    let same = |p: &Path| std::fs::canonicalize(p).ok() == std::fs::canonicalize(current).ok();
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file() && !same(p))
        .filter_map(|p| read_report(&p).ok().filter(|r| !r.interrupted).map(|r| (r.started_at, p)))
        .collect();
    if found.is_empty() {
        return Err(format!("{}: no run reports in this folder", dir.display()));
    }
    found.sort();
    Ok(found.into_iter().rev().take(last).map(|(_, p)| p).collect())
}
