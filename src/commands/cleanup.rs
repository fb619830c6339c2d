//! `redis-test cleanup FILE`: removes the keys under the scenario's prefix from its target — after
//! a sharded run (the shards leave their keys for one cleanup once all have finished), or after
//! any run that was told not to clean up or was cut short.

use crate::cli::ScenarioInputs;
use crate::deployment;
use crate::exit;
use crate::scenario::model::Endpoint;

/// Runs `cleanup` and returns the exit code: 0 when the keys are gone, 2 on a bad scenario, 3 when
/// the target cannot be reached or the removal fails (how far it got is printed).
pub fn cleanup(file: &std::path::Path, inputs: &ScenarioInputs) -> u8 {
    let scenario = match super::load_or_report(file, inputs) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if matches!(scenario.target.endpoint, Endpoint::Local(_)) {
        crate::outln!("cleanup: nothing to do: a local target is thrown away with its keys after each run");
        return exit::OK;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: cannot start the async runtime: {e}");
            return exit::CANNOT_RUN;
        }
    };
    runtime.block_on(async {
        let target = crate::scenario::model::Target { proxy: false, ..scenario.target.clone() };
        let deployment = match deployment::prepare(&target, &scenario.connections, "redis-test:cleanup", None).await {
            Ok(d) => d,
            Err(e) => {
                crate::errln!("error: {e}");
                return exit::CANNOT_RUN;
            }
        };
        let progress = std::sync::atomic::AtomicU64::new(0);
        let result = tokio::select! {
            r = crate::executor::cleanup::remove_prefix_everywhere(&deployment, &scenario.key_prefix, scenario.connections.command_timeout, &progress) => r,
            _ = tokio::signal::ctrl_c() => Err(crate::client::native::conn::ConnError::Io("stopped by a signal".into())),
        };
        deployment.shutdown().await;
        match result {
            Ok(n) => {
                crate::outln!("cleanup: removed {n} keys under `{}` from {}", scenario.key_prefix, redacted(&scenario));
                exit::OK
            }
            Err(e) => {
                let n = progress.load(std::sync::atomic::Ordering::Relaxed);
                crate::errln!("error: cleanup of `{}` stopped after removing {n} keys: {e}", scenario.key_prefix);
                exit::CANNOT_RUN
            }
        }
    })
}

fn redacted(scenario: &crate::scenario::Scenario) -> String {
    crate::plan::compile(scenario, 1.0).target.address
}
