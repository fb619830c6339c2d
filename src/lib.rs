//! redis-test: load and resilience tests for Redis, driven by declarative scenario files.
//!
//! Data flows one way:
//! - [`scenario`] reads a YAML or TOML file, applies `${VAR}`, `.env` and `--set`, checks it against
//!   the JSON Schema and the semantic rules, and yields a checked [`scenario::Scenario`];
//! - [`plan`] compiles it into a [`plan::Plan`], plain data with no I/O;
//! - [`commands`] implements each subcommand on top of those.
//!
//! Exit codes (see [`exit`]): 0 success, 1 thresholds failed, 2 invalid scenario or usage,
//! 3 could not run, 130 interrupted.

pub mod cli;
pub mod commands;
pub mod exit;
pub mod plan;
pub mod scenario;
pub mod units;

/// Runs one command line and returns the process exit code.
pub fn run(cli: cli::Cli) -> u8 {
    commands::dispatch(cli)
}
