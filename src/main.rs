//! The `redis-test` binary: parse the command line, hand over to the library, exit with its code.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = redis_test::cli::Cli::parse();
    ExitCode::from(redis_test::run(cli))
}
