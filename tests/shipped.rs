//! Every shipped scenario that runs against a given server, shortened, end to end. In a test binary
//! of its own: cargo runs test binaries one after another, so no other test's load shares the two
//! cores with these runs, whose latency thresholds are the scenarios' own.

mod common;

use common::{RedisServer, repo, scratch};

#[test]
fn every_shipped_scenario_runs_and_reports_every_operation_it_mixes() {
    let server = RedisServer::start(&[]);
    let dir = scratch("shipped");
    for file in redis_test::scenario::files_in(&repo().join("scenarios")).unwrap() {
        // Topology scenarios need the deployment they start themselves (tests/sentinel.rs,
        // tests/cluster.rs and tests/maintenance.rs run them).
        if common::starts_a_topology(&file) {
            continue;
        }
        common::run_shipped(&file, &dir, &["--target", &server.url()]);
        // The scenario's keys are gone afterwards (cleanup is on in every shipped scenario).
        assert_eq!(server.cli(&["DBSIZE"]), "(integer) 0", "{} left keys behind", file.display());
    }
}
