//! redis-test: load and resilience tests for Redis, driven by declarative scenario files.
//!
//! Data flows one way:
//! - [`scenario`] reads a YAML or TOML file, applies `${VAR}`, `.env` and `--set`, checks it against
//!   the JSON Schema and the semantic rules, and yields a checked [`scenario::Scenario`];
//! - [`plan`] compiles it into a [`plan::Plan`], plain data with no I/O;
//! - [`deployment`] is what is under test (the target, local deployments, the fault proxy);
//!   [`client`] is what talks to it (the native engine: RESP, connections, bb8 pools, cluster and
//!   sentinel; and redis-rs as the client under test), [`workload`] writes operations as
//!   [`command`]s, [`executor`] runs the phases, [`faults`] injects faults at their offsets,
//!   [`metrics`] measures them and [`live`] carries what a run publishes while it runs;
//! - [`outcome`] is what a run produced, plain data below both the executor and the report;
//! - [`report`] turns the results into a summary, a JSON report and threshold verdicts;
//! - [`commands`] implements each subcommand on top of those; [`files`] reads what users name
//!   (bounded) and writes reports (atomically).
//!
//! Exit codes (see [`exit`]): 0 success, 1 thresholds failed, 2 invalid scenario or usage,
//! 3 could not run, 130 interrupted.

pub mod cli;
pub mod client;
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
pub mod report;
pub mod resp;
pub mod scenario;
pub mod shard;
pub mod slots;
pub mod units;
pub mod workload;

/// Runs one command line and returns the process exit code.
pub fn run(cli: cli::Cli) -> u8 {
    commands::dispatch(cli)
}
