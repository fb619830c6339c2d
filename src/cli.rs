//! The command line: `validate`, `plan`, `apply`, `cleanup`, `merge`, `report`, `compare`, `schema`, `completions`, `man`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `0.1.0 (commit 1a2b3c4d5e6f, built 2026-11-26)`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("REDIS_TEST_COMMIT"), ", built ", env!("REDIS_TEST_BUILD_DATE"), ")");

/// Load-test and resilience-test Redis deployments from declarative scenario files.
#[derive(Debug, Parser)]
#[command(name = "redis-test", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check scenario files (schema and semantics); print every error with file:line:column.
    Validate {
        /// Scenario files (.yaml, .yml, .toml) or folders holding them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Overrides shared with `plan` and `apply`.
        #[command(flatten)]
        inputs: ScenarioInputs,
    },
    /// Print the compiled plan (phases, ramps, mix, faults, thresholds) without touching Redis.
    Plan {
        /// Scenario file.
        file: PathBuf,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
        /// Multiply every phase duration and fault offset by this factor (e.g. 0.05 for a smoke test).
        #[arg(long, default_value_t = 1.0, value_parser = parse_time_scale)]
        time_scale: f64,
        /// Show one shard's share of a scaled-out run (`INDEX/COUNT`, as `apply --shard`).
        #[arg(long, value_name = "I/N", value_parser = crate::shard::Shard::parse)]
        shard: Option<(u32, u32)>,
        /// Overrides shared with `validate` and `apply`.
        #[command(flatten)]
        inputs: ScenarioInputs,
    },
    /// Run a scenario: connect, run its phases, print the summary, write reports, exit 0/1/2/3/130.
    Apply(Box<ApplyArgs>),
    /// Remove the keys under the scenario's prefix from its target (after a sharded run, or any run
    /// that did not clean up); exit 0 when they are gone, 3 when the target cannot be reached.
    Cleanup {
        /// Scenario file.
        file: PathBuf,
        /// Overrides shared with `plan` and `apply` (`--target` to point at another server).
        #[command(flatten)]
        inputs: ScenarioInputs,
    },
    /// Merge the JSON reports of every shard of one run (`apply --shard I/N`) into one report, as
    /// if one process had run it: histograms merged exactly, counts summed, faults' outages over
    /// the union of successes, thresholds judged again. Exit 0, 1 (a threshold failed), or 2
    /// (reports of different runs, or a shard missing or given twice).
    Merge {
        /// The shards' JSON reports.
        #[arg(required = true, num_args = 1..)]
        reports: Vec<PathBuf>,
        /// Write the merged JSON report here.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
        /// Write the merged HTML report here.
        #[arg(long, value_name = "PATH")]
        html: Option<PathBuf>,
        /// Write JUnit XML of the merged verdicts here.
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
    },
    /// Render a saved JSON report: the summary, and an HTML file with `--html`.
    Report {
        /// A JSON report written by `apply`.
        report: PathBuf,
        /// Write the self-contained HTML report here.
        #[arg(long, value_name = "PATH")]
        html: Option<PathBuf>,
    },
    /// Compare a run with one or more baseline runs, phase by phase and operation by operation;
    /// exit 1 on a regression (significant and beyond its tolerance) or a missing row.
    Compare {
        /// Baseline reports, then the report to judge (last). With `--baseline DIR`, just the
        /// report to judge.
        #[arg(required = true, num_args = 1..)]
        reports: Vec<PathBuf>,
        /// Take the baselines from this folder as well: its `--last` newest reports (by start time).
        #[arg(long, value_name = "DIR")]
        baseline: Option<PathBuf>,
        /// How many of the newest reports in `--baseline DIR` to use.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
        last: u32,
        /// Show every row, not only the ones that changed.
        #[arg(long)]
        all: bool,
        /// Largest drop of successful operations per second from the baselines' median, e.g. `5%`
        /// (doubled with a single baseline).
        #[arg(long, default_value = "5%", value_parser = crate::report::compare::parse_fraction)]
        max_regression: f64,
        /// Largest p50/p99/p99.9 rise from the baselines' median, e.g. `25%` (doubled with a single
        /// baseline).
        #[arg(long, default_value = "25%", value_parser = crate::report::compare::parse_fraction)]
        max_latency_regression: f64,
        /// Latency rises below this are noise, e.g. `1ms`.
        #[arg(long, default_value = "1ms", value_parser = parse_duration_arg)]
        latency_floor: std::time::Duration,
        /// Largest error-rate rise, in points of the operations, e.g. `0.1%` (doubled with a single
        /// baseline).
        #[arg(long, default_value = "0.1%", value_parser = crate::report::compare::parse_fraction)]
        max_error_rate_increase: f64,
        /// Rows with fewer baseline operations are shown but not judged.
        #[arg(long, default_value_t = 100)]
        min_ops: u64,
        /// Print the comparison as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `redis-test completions bash > /etc/bash_completion.d/redis-test`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print a manual page (roff): `redis-test man | man -l -`, `redis-test man apply` for a
    /// subcommand's page (redis-test-apply(1)), or write every page into a folder.
    Man {
        /// The subcommand whose page to print (its options in full); the overview when absent.
        command: Option<String>,
        /// Write redis-test.1 and one redis-test-SUBCOMMAND.1 per subcommand into this folder.
        #[arg(long, value_name = "DIR", conflicts_with = "command")]
        out_dir: Option<PathBuf>,
    },
    /// Print the JSON Schema of scenario files (for editors; committed as schemas/scenario.schema.json).
    Schema {
        /// Print the schema of JSON run reports instead (schemas/report.schema.json).
        #[arg(long)]
        report: bool,
    },
}

/// Options of `apply`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// Scenario file.
    pub file: PathBuf,
    /// Multiply every phase duration and fault offset by this factor (e.g. 0.05 for a smoke test).
    #[arg(long, default_value_t = 1.0, value_parser = parse_time_scale)]
    pub time_scale: f64,
    /// Threads that run the workers (1 to 1024; default: one per CPU core). Fewer leave cores to a
    /// server on the same machine; 1 is redis-benchmark's default, for a like-for-like comparison.
    #[arg(long, value_parser = parse_threads)]
    pub threads: Option<usize>,
    /// Write the JSON report here (overrides `output.json`; `{name}` and `{run_id}` are filled in).
    #[arg(long, value_name = "PATH")]
    pub json: Option<String>,
    /// Write the self-contained HTML report here (overrides `output.html`).
    #[arg(long, value_name = "PATH")]
    pub html: Option<String>,
    /// Write JUnit XML here (overrides `output.junit`): one test case per threshold and per fault.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<String>,
    /// Run identifier for reports and metric labels (default: generated, or `metrics.labels.run_id`):
    /// letters, digits and `._:-`, at most 128 characters.
    #[arg(long, value_name = "ID", value_parser = parse_run_id)]
    pub run_id: Option<String>,
    /// Run shard I of N of a scaled-out run (e.g. `0/3`): its stripe of the schedule, its share of
    /// workers and connections; faults run on shard 0 only; no per-shard cleanup. Needs `--run-id`
    /// or `--start-at` (every shard names the same run) and a shared target.
    #[arg(long, value_name = "I/N", value_parser = parse_shard, conflicts_with = "shards")]
    pub shard: Option<(u32, u32)>,
    /// Run one of N shards, the index taken from `JOB_COMPLETION_INDEX` (set by Kubernetes Indexed Jobs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub shards: Option<u32>,
    /// Begin phase 0 at this wall-clock time (RFC 3339, e.g. `2026-11-26T10:00:00Z`), so shards
    /// start together; a start already past once the target is ready exits 3; a start further
    /// ahead than `--start-at-max` is refused (exit 2).
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
    /// The furthest ahead `--start-at` may be (default 24h): a start years away is a typo, not a
    /// reason to wait.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration_arg)]
    pub start_at_max: std::time::Duration,
    /// Seed for key and operation choices (default: random); the same seed repeats the same choices.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print only the summary (no progress).
    #[arg(long, short)]
    pub quiet: bool,
    /// Serve Prometheus `/metrics` on this address during the run (`host:port`, or a port for loopback).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_arg)]
    pub prometheus: Option<std::net::SocketAddr>,
    /// Push the final metrics to this Prometheus Pushgateway when the run ends (overrides
    /// `metrics.pushgateway`), grouped by job, run_id and instance_id.
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
    /// Keep `/metrics` up this long after the run, so a scraper gets the final values.
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub linger: Option<std::time::Duration>,
    /// Console log level (error, warn, info, debug, trace, or a RUST_LOG-style filter); default: RUST_LOG, else warn.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Also write logs to this file (at --log-level, default info).
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Log file rotation: never, daily (PATH.YYYY-MM-DD), or size:<size> (PATH.1 … PATH.3 kept; e.g. size:10MiB).
    #[arg(long, default_value = "never", value_parser = crate::logging::parse_rotation)]
    pub log_rotation: crate::logging::Rotation,
    /// Period of progress lines when stderr is not a terminal (CI logs).
    #[arg(long, default_value = "5s", value_parser = parse_duration_arg)]
    pub interval: std::time::Duration,
    /// Overrides shared with `validate` and `plan`.
    #[command(flatten)]
    pub inputs: ScenarioInputs,
}

/// How a scenario file is completed from outside: `.env`, `--set`, `--target`.
#[derive(Debug, Clone, Default, Args)]
pub struct ScenarioInputs {
    /// Read `${VAR}` values from this file (default: ./.env when it exists). The environment wins over it.
    #[arg(long, value_name = "PATH", env = "REDIS_TEST_ENV_FILE")]
    pub env_file: Option<PathBuf>,
    /// Override a value: `--set phases.steady.rate=5000`, `--set target.password=...`. Repeatable; wins over everything.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub sets: Vec<String>,
    /// Run against this URL instead of the scenario's target (replaces `target.url` and `target.local`).
    /// A URL with a password is visible to every user of the machine in `ps`: prefer
    /// `--target-env` or `--target-file`.
    #[arg(long, value_name = "URL", conflicts_with_all = ["target_env", "target_file"])]
    pub target: Option<String>,
    /// As `--target`, the URL read from this environment variable (a Kubernetes Secret, a CI secret):
    /// it never appears on a command line.
    #[arg(long, value_name = "VAR", conflicts_with = "target_file")]
    pub target_env: Option<String>,
    /// As `--target`, the URL read from the first line of this file (a mounted Secret).
    #[arg(long, value_name = "PATH")]
    pub target_file: Option<PathBuf>,
    /// The client library that sends the commands (overrides `connections.client`): `native`
    /// (redis-test's own engine) or `redis-rs` (the `redis` crate, the client under test).
    #[arg(long, value_name = "CLIENT", value_parser = ["native", "redis-rs"])]
    pub client: Option<String>,
    /// Whether the client asks for maintenance notifications (overrides
    /// `connections.maintenance_notifications`): `auto`, `on` or `off`.
    #[arg(long, value_name = "MODE", value_parser = ["auto", "on", "off"])]
    pub maintenance_notifications: Option<String>,
}

fn parse_listen_arg(s: &str) -> Result<std::net::SocketAddr, String> {
    crate::scenario::validate::parse_listen(s)
}

/// Parses a positive duration argument (`5s`, `500us`).
pub fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    match crate::units::parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

fn parse_time_scale(s: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if x.is_finite() && x > 0.0 && x <= 100.0 { Ok(x) } else { Err("must be above 0 and at most 100".into()) }
}

/// `--threads`: 1 to 1024.
fn parse_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!("`{s}` is not a thread count from 1 to 1024")),
    }
}

/// A run id goes into client names, metric labels and file names: letters, digits and `._:-` only.
/// `I/N` for `--shard`.
pub fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    crate::shard::Shard::parse(s)
}

/// An RFC 3339 time in UTC for `--start-at` (`2026-11-26T10:00:00Z`, fractions of a second allowed).
pub fn parse_start_at(s: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339(s).map_err(|e| format!("`{s}` is not an RFC 3339 UTC time such as 2026-11-26T10:00:00Z: {e}"))
}

pub fn parse_run_id(s: &str) -> Result<String, String> {
    crate::scenario::validate::check_run_id(s).map(|()| s.to_owned())
}
