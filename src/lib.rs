//! redis-test: load and resilience tests for Redis, driven by declarative scenario files.
//!
//! Data flows one way:
//! - [`scenario`] reads a YAML or TOML file, applies `${VAR}`, `.env` and `--set`, checks it against
//!   the JSON Schema and the semantic rules, and yields a checked [`scenario::Scenario`];
//! - [`plan`] compiles it into a [`plan::Plan`], plain data with no I/O;
//! - [`deployment`] reaches the deployment (or starts a local one), [`pool`] keeps bb8 pools of
//!   [`deployment::conn`] connections (the native client; [`redis_rs`] is the client under test,
//!   sending the same commands through the `redis` crate), [`workload`] writes operations as [`command`]s,
//!   [`executor`] runs the phases, [`metrics`] measures them and [`live`] carries what a run
//!   publishes while it runs;
//! - [`report`] turns the results into a summary, a JSON report and threshold verdicts;
//! - [`commands`] implements each subcommand on top of those; [`files`] reads what users name
//!   (bounded) and writes reports (atomically).
//!
//! Exit codes (see [`exit`]): 0 success, 1 thresholds failed, 2 invalid scenario or usage,
//! 3 could not run, 130 interrupted.

pub mod cli;
pub mod command;
pub mod commands;
pub mod console;
pub mod deployment;
pub mod executor;
pub mod exit;
pub mod faults;
pub mod files;
pub mod http;
pub mod keys;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod outcome;
pub mod plan;
pub mod pool;
pub mod redis_rs;
pub mod report;
pub mod scenario;
pub mod shard;
pub mod units;
pub mod workload;

/// Runs one command line and returns the process exit code.
pub fn run(cli: cli::Cli) -> u8 {
    commands::dispatch(cli)
}
