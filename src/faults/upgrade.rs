//! The rolling upgrade of a local cluster or sentinel deployment: per shard, restart each replica
//! (onto a new binary when given) and wait until it is in sync, fail over to it, restart the old
//! primary. Every step is on the run's timeline with the shard it touched.

use std::path::Path;
use std::time::{Duration, Instant};

use super::StepRun;
use super::control::{STEP_TIMEOUT, ms, node_control, reply, wait_bus_healthy, wait_for_role, wait_replica_in_sync, wait_until_primary};
use crate::client::native::conn::ConnectSpec;
use crate::deployment::Deployment;
use crate::scenario::model::HostPort;

/// Per shard (the one primary of a sentinel deployment): restart each replica, with `binary`
/// when given, and wait until it is in sync; fail over to the first replica; restart the old
/// primary and wait until it is in sync as a replica. Each step is recorded in `steps` as it
/// starts (a step cut short stays on the timeline).
pub async fn rolling_upgrade(
    spec: &ConnectSpec,
    deployment: &Deployment,
    binary: Option<&Path>,
    t0: Instant,
    steps: &mut Vec<StepRun>,
) -> Result<String, String> {
    let local = deployment.local.as_ref().ok_or("rolling_upgrade needs a local deployment")?;
    let server = |addr: &HostPort| local.nodes().into_iter().find(|n| n.addr() == *addr).ok_or_else(|| format!("{addr} is not a node redis-test started"));
    let shards: Vec<(HostPort, Vec<HostPort>)> = match (&deployment.cluster, &deployment.sentinels) {
        (Some(_), _) => deployment.current_topology(spec).await?.shards.into_iter().map(|s| (s.master, s.replicas)).collect(),
        (None, Some(s)) => {
            let master = s.discover().await?;
            let replicas = local.nodes().iter().map(|n| n.addr().clone()).filter(|a| *a != master).collect();
            vec![(master, replicas)]
        }
        _ => return Err("rolling_upgrade needs a local cluster or sentinel deployment".into()),
    };
    let restart = |addr: HostPort| async move {
        let node = server(&addr)?;
        let previous = binary.map(|b| node.replace_binary(Some(b.to_path_buf())));
        if let Err(e) = node.restart(Duration::ZERO).await {
            // A node that cannot run the new binary is not left down: it goes back to the one it
            // ran, and the upgrade stops here, failed.
            let Some(previous) = previous else { return Err(e.to_string()) };
            node.replace_binary(previous);
            let back = match node.restart(Duration::ZERO).await {
                Ok(()) => "it was started again on its previous binary".to_owned(),
                Err(again) => format!("it did not start on its previous binary either: {again}"),
            };
            return Err(format!("{e}; {back}"));
        }
        let took = wait_replica_in_sync(spec, &addr).await?;
        Ok(format!("{addr} restarted, in sync after {}", ms(took)))
    };
    let all_nodes: Vec<HostPort> = local.nodes().iter().map(|n| n.addr().clone()).collect();
    for (i, (master, replicas)) in shards.iter().enumerate() {
        let first = replicas.first().ok_or_else(|| format!("shard {i} ({master}) has no replica to fail over to"))?.clone();
        for r in replicas {
            step(steps, t0, i, format!("shard {i}: restart replica {r}"), restart(r.clone())).await?;
        }
        let failover = async {
            match &deployment.sentinels {
                Some(s) => {
                    // The sentinels judge a replica fit to promote from its INFO, read once a
                    // second: one restarted a moment ago is NOGOODSLAVE until they see it in sync.
                    let asked = Instant::now();
                    loop {
                        match s.failover().await {
                            Ok(_) => break,
                            Err(e) if e.contains("NOGOODSLAVE") && asked.elapsed() < STEP_TIMEOUT => tokio::time::sleep(Duration::from_millis(250)).await,
                            Err(e) => return Err(e),
                        }
                    }
                    wait_until_primary(spec, &first).await.map(|took| format!("SENTINEL FAILOVER: {first} primary after {}", ms(took)))
                }
                // Straight to the replica just restarted: CLUSTER SLOTS leaves a replica out until
                // its offset moves again, so the slot map may not name it yet.
                // A manual failover gives up after 5 s when the primary does not hand over (a replica
                // restarted a moment ago may not be counted yet): ask again, within the step's time.
                None => {
                    // The primary must count the restarted replica as online first: a manual
                    // failover it cannot hand over pauses its clients until it gives up (5 s).
                    let port = format!("port={},state=online", first.port);
                    wait_for_role(
                        spec,
                        master,
                        |r| r.iter().any(|(k, v)| k.starts_with("slave") && v.contains(&port)),
                        "serving the restarted replica",
                        STEP_TIMEOUT,
                    )
                    .await?;
                    // ...and every node must see every other on the cluster bus again, which a node
                    // restarted a moment ago is not yet: CLUSTER FAILOVER travels over it and
                    // needs the other primaries' votes.
                    wait_bus_healthy(spec, &all_nodes).await?;
                    let asked = Instant::now();
                    let mut tries = 0;
                    loop {
                        tries += 1;
                        let mut c = node_control(spec, &first).await?;
                        reply(c.command(&[b"CLUSTER", b"FAILOVER"], Duration::from_secs(5)).await.map_err(|e| e.to_string())?)?;
                        match wait_for_role(spec, &first, |r| r.get("role").is_some_and(|v| v == "master"), "primary", Duration::from_secs(6)).await {
                            Ok(_) => break Ok(format!("CLUSTER FAILOVER: {first} primary after {} ({tries} request(s))", ms(asked.elapsed()))),
                            Err(e) if asked.elapsed() >= STEP_TIMEOUT => break Err(e),
                            Err(_) => {}
                        }
                    }
                }
            }
        };
        step(steps, t0, i, format!("shard {i}: fail over to {first}"), failover).await?;
        step(steps, t0, i, format!("shard {i}: restart old primary {master}"), restart(master.clone())).await?;
    }
    let to = binary.map(|b| format!(" onto {}", b.display())).unwrap_or_default();
    Ok(format!("{} shard(s) upgraded{to} in {} steps", shards.len(), steps.len()))
}

/// Runs one step of a multi-step fault on shard `shard`, recorded in `steps` from its start.
async fn step(
    steps: &mut Vec<StepRun>,
    t0: Instant,
    shard: usize,
    name: String,
    work: impl std::future::Future<Output = Result<String, String>>,
) -> Result<(), String> {
    tracing::info!(step = %name, "fault step starting");
    let started = t0.elapsed();
    steps.push(StepRun { name, shard: u32::try_from(shard).ok(), started, finished: started, ok: false, detail: "cut short".into() });
    let result = work.await;
    let last = steps.last_mut().expect("pushed above");
    last.finished = t0.elapsed();
    match &result {
        Ok(d) => (last.ok, last.detail) = (true, d.clone()),
        Err(e) => last.detail.clone_from(e),
    }
    result.map(|_| ())
}
