//! Fault injection: each planned fault runs at its offset over a control connection of its own
//! (named so that `client_kill own` never kills it). A fault that fails is reported, never fatal.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::deployment::Deployment;
use crate::deployment::conn::{Conn, ConnectSpec};
use crate::deployment::resp::Value;
use crate::plan::describe_action;
use crate::scenario::model::{Fault, FaultAction, HostPort, KillClients, PauseMode};

/// What happened when a fault ran.
#[derive(Debug, Clone)]
pub struct FaultRun {
    /// The planned fault.
    pub fault: Fault,
    /// When it actually started, since the run's start.
    pub started: Duration,
    /// When it was done (a pause or sleep is done when the command returns).
    pub finished: Duration,
    /// Operations in flight when it started.
    pub in_flight: i64,
    /// Connections reopened to replace dropped ones, when it started.
    pub reconnects_before: u64,
    /// Whether it did what it should.
    pub ok: bool,
    /// What it did, or why it failed.
    pub detail: String,
    /// Its steps, for faults made of several (a rolling upgrade).
    pub steps: Vec<StepRun>,
}

/// One step of a fault made of several, on the run's clock.
#[derive(Debug, Clone)]
pub struct StepRun {
    /// What the step does (`shard 0: restart replica 127.0.0.1:7003`).
    pub name: String,
    /// When it started, since the run's start.
    pub started: Duration,
    /// When it ended.
    pub finished: Duration,
    /// Whether it did what it should.
    pub ok: bool,
    /// What it did, or why it failed.
    pub detail: String,
}

/// Runs the faults in time order until they are done, the run's plan ends (`end`, since `t0`) or
/// the run stops. A fault still running then is cut short (a shell command's process group is
/// killed), and a CLIENT PAUSE still in force is lifted: no fault outlives the run, and time the
/// tool would spend waiting on its own fault never counts against the server.
#[allow(clippy::too_many_arguments)]
pub async fn drive(
    faults: &[Fault],
    shard: Option<crate::shard::Shard>,
    t0: Instant,
    end: Duration,
    deployment: &Deployment,
    run_client: &str,
    tracker: &super::resilience::Tracker,
    reconnects: &std::sync::atomic::AtomicU64,
    mut stop: watch::Receiver<bool>,
) -> Vec<FaultRun> {
    let mut control_spec = deployment.spec.direct();
    control_spec.client_name = format!("{run_client}:control");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::from_std(t0 + end);
    // Pauses issued, until when they hold, and connections opened before pausing to lift them
    // (a new connection's handshake would itself wait out the pause).
    let mut paused_until: Option<Instant> = None;
    let mut unpausers: Vec<Conn> = Vec::new();
    for f in faults {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + f.at)) => {}
            _ = stop.changed() => break,
        }
        let started = t0.elapsed();
        let in_flight = tracker.in_flight.load(std::sync::atomic::Ordering::Relaxed);
        let reconnects_before = reconnects.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(s) = shard.filter(|s| !s.runs_faults()) {
            // Shard 0 runs it; this shard's verdict judges what it did to this shard's traffic.
            let detail = format!("run by shard 0 of {}; judged here on shard {}'s traffic", s.count, s.index);
            out.push(FaultRun { fault: f.clone(), started, finished: started, in_flight, reconnects_before, ok: true, detail, steps: Vec::new() });
            continue;
        }
        tracing::info!(fault = %f.name, action = %describe_action(&f.action), "fault starting");
        if let FaultAction::ClientPause { duration, .. } = &f.action {
            paused_until = paused_until.max(Some(Instant::now() + *duration));
            if unpausers.is_empty() {
                if let Ok(specs) = deployment.data_nodes(&control_spec, false).await {
                    for s in specs {
                        if let Ok(c) = control(&s).await {
                            unpausers.push(c);
                        }
                    }
                }
            }
        }
        let mut steps = Vec::new();
        let result = tokio::select! {
            r = run_one(&f.action, &control_spec, deployment, run_client, t0, &mut steps) => r,
            _ = tokio::time::sleep_until(deadline) => Err("cut short: the run's plan ended first".to_owned()),
            _ = stop.changed() => Err("cut short: the run was interrupted".to_owned()),
        };
        let (ok, detail) = match result {
            Ok(d) => (true, d),
            Err(e) => (false, e),
        };
        if ok {
            tracing::info!(fault = %f.name, detail = %detail, "fault done");
        } else {
            tracing::warn!(fault = %f.name, error = %detail, "fault failed; the run goes on");
        }
        out.push(FaultRun { fault: f.clone(), started, finished: t0.elapsed(), in_flight, reconnects_before, ok, detail, steps });
    }
    // A pause still in force when the run ends or stops is lifted then, not before.
    if let Some(until) = paused_until.filter(|u| *u > Instant::now()) {
        tokio::select! {
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
            _ = tokio::time::sleep_until(deadline) => unpause(&mut unpausers, until).await,
            _ = stop.wait_for(|s| *s) => unpause(&mut unpausers, until).await,
        }
    }
    out
}

/// Lifts CLIENT PAUSE (holding until `until`) over connections opened before it: the run ended or
/// was stopped while it held. A pause of writes is lifted; Redis postpones every command of a
/// normal client during a pause of *all* clients, CLIENT UNPAUSE included, so that one can only
/// run out: say so, and how long, rather than wait.
async fn unpause(conns: &mut [Conn], until: Instant) {
    for c in conns {
        match c.command(&[b"CLIENT", b"UNPAUSE"], Duration::from_millis(500)).await {
            Ok(Value::Error(e)) => tracing::warn!(error = %e, "could not lift the client pause at the end of the run"),
            Err(_) => {
                let left = until.saturating_duration_since(Instant::now());
                eprintln!(
                    "redis-test: the server stays paused for {} more: Redis lets no client lift CLIENT PAUSE ALL (it postpones CLIENT UNPAUSE too)",
                    crate::units::format_duration(Duration::from_millis(left.as_millis() as u64))
                );
                return;
            }
            Ok(_) => tracing::info!("client pause lifted at the end of the run"),
        }
    }
}

async fn control(spec: &ConnectSpec) -> Result<Conn, String> {
    Conn::connect(spec).await.map_err(|e| format!("control connection: {e}"))
}

fn reply(v: Value) -> Result<Value, String> {
    match v {
        Value::Error(e) => Err(e),
        other => Ok(other),
    }
}

/// Runs `one` on every node at once; all must succeed. Returns the per-node results in order.
async fn on_each<T: Send + 'static, F>(specs: Vec<ConnectSpec>, one: impl Fn(ConnectSpec) -> F) -> Result<Vec<T>, String>
where
    F: std::future::Future<Output = Result<T, String>> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let addr = spec.addr.clone();
        let f = one(spec);
        set.spawn(async move { (i, f.await.map_err(|e| format!("{addr}: {e}"))) });
    }
    let mut out: Vec<(usize, T)> = Vec::new();
    let mut errors = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, Ok(v))) => out.push((i, v)),
            Ok((_, Err(e))) => errors.push(e),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

fn on_nodes(n: usize) -> String {
    if n > 1 { format!(" on {n} nodes") } else { String::new() }
}

async fn run_one(
    action: &FaultAction,
    spec: &ConnectSpec,
    deployment: &Deployment,
    run_client: &str,
    t0: Instant,
    steps: &mut Vec<StepRun>,
) -> Result<String, String> {
    let t = Duration::from_secs(5);
    match action {
        FaultAction::ClientKill { clients: KillClients::Normal } => {
            let specs = deployment.data_nodes(spec, true).await?;
            let n = specs.len();
            let killed = on_each(specs, |s| async move {
                let mut c = control(&s).await?;
                match reply(c.command(&[b"CLIENT", b"KILL", b"TYPE", b"normal", b"SKIPME", b"yes"], t).await.map_err(|e| e.to_string())?)? {
                    Value::Int(k) => Ok(k),
                    other => Err(format!("unexpected reply {}", show(&other))),
                }
            })
            .await?;
            Ok(format!("killed {} normal client connections{}", killed.iter().sum::<i64>(), on_nodes(n)))
        }
        FaultAction::ClientKill { clients: KillClients::Own } => {
            let specs = deployment.data_nodes(spec, true).await?;
            let n = specs.len();
            let name = format!("name={run_client}");
            let counts = on_each(specs, |s| {
                let name = name.clone();
                async move {
                    let mut c = control(&s).await?;
                    let text = text_reply(&mut c, &[b"CLIENT", b"LIST", b"TYPE", b"normal"], t).await?;
                    let ours: Vec<String> = text
                        .lines()
                        .filter(|l| l.split(' ').any(|kv| kv == name))
                        .filter_map(|l| l.split(' ').find_map(|kv| kv.strip_prefix("id=")).map(str::to_owned))
                        .collect();
                    let mut killed = 0;
                    for id in &ours {
                        if let Value::Int(n) = reply(c.command(&[b"CLIENT", b"KILL", b"ID", id.as_bytes()], t).await.map_err(|e| e.to_string())?)? {
                            killed += n;
                        }
                    }
                    Ok((killed, ours.len()))
                }
            })
            .await?;
            let killed: i64 = counts.iter().map(|c| c.0).sum();
            let ours: usize = counts.iter().map(|c| c.1).sum();
            Ok(format!("killed {killed} of our {ours} connections{}", on_nodes(n)))
        }
        FaultAction::ClientPause { duration, mode } => {
            let specs = deployment.data_nodes(spec, false).await?;
            let n = specs.len();
            let ms = duration.as_millis().max(1).to_string();
            let mode: &'static [u8] = if *mode == PauseMode::Write { b"WRITE" } else { b"ALL" };
            on_each(specs, |s| {
                let ms = ms.clone();
                async move {
                    let mut c = control(&s).await?;
                    reply(c.command(&[b"CLIENT", b"PAUSE", ms.as_bytes(), mode], t).await.map_err(|e| e.to_string())?).map(|_| ())
                }
            })
            .await?;
            Ok(format!("paused clients for {ms}ms ({}){}", String::from_utf8_lossy(mode), on_nodes(n)))
        }
        FaultAction::DebugSleep { duration } => {
            let specs = deployment.data_nodes(spec, false).await?;
            let n = specs.len();
            let secs = format!("{:.3}", duration.as_secs_f64());
            let d = *duration;
            on_each(specs, |s| {
                let secs = secs.clone();
                async move {
                    let mut c = control(&s).await?;
                    reply(c.command(&[b"DEBUG", b"SLEEP", secs.as_bytes()], d + t).await.map_err(|e| e.to_string())?).map(|_| ())
                }
            })
            .await?;
            Ok(format!("server slept {secs}s{}", on_nodes(n)))
        }
        FaultAction::Restart { node, down_for, new_port } => {
            let local = deployment.local.as_ref().ok_or("restart needs a local deployment")?;
            let nodes = local.nodes();
            let server = nodes.get(*node as usize).ok_or_else(|| format!("the local deployment has nodes 0..{}, not node {node}", nodes.len() - 1))?;
            let down = crate::units::format_duration(*down_for);
            if !*new_port {
                server.restart(*down_for).await.map_err(|e| e.to_string())?;
                return Ok(format!("stopped node {node} ({}), restarted it after {down}", server.addr()));
            }
            let from = server.addr();
            server.kill().await;
            tokio::time::sleep(*down_for).await;
            // A cluster learns the new address from the node's own gossip. Sentinels learn a node
            // only from the master's replica list: the node comes back as a replica of the master
            // they name — for the old master, once they have promoted another (in production an
            // orchestrator's job; here within 30 s).
            let mut extra = Vec::new();
            let mut role = String::new();
            if let Some(sentinels) = &deployment.sentinels {
                let master = poll_value(STEP_TIMEOUT, || async {
                    let m = sentinels.discover().await?;
                    if m == from { Err(format!("the sentinels still name {from} the master")) } else { Ok(m) }
                })
                .await?;
                extra.push(format!("replicaof {} {}", master.host, master.port));
                role = format!(" as a replica of {master}");
            }
            server.start_again(true, &extra).await.map_err(|e| e.to_string())?;
            let to = server.addr();
            if let Some(sentinels) = &deployment.sentinels {
                // The sentinels read the master's replica list every 10 s: within that, they
                // list the node at its new address.
                let started = Instant::now();
                poll_value(STEP_TIMEOUT, || async {
                    let replicas = sentinels.replicas().await?;
                    if replicas.contains(&to) { Ok(()) } else { Err(format!("the sentinels do not list {to} as a healthy replica yet")) }
                })
                .await?;
                role.push_str(&format!(" (the sentinels listed it there {} ms later)", started.elapsed().as_millis()));
            }
            if deployment.cluster.is_some() {
                let peer = nodes.iter().enumerate().find(|(i, _)| *i != *node as usize).map(|(_, p)| p.addr()).ok_or("no peer")?;
                role = peers_learn_address(spec, &to, &peer).await?;
            }
            Ok(format!("stopped node {node} ({from}), restarted it after {down} on {to}{role}"))
        }
        FaultAction::Freeze { node, duration } => {
            let local = deployment.local.as_ref().ok_or("freeze needs a local deployment")?;
            let nodes = local.nodes();
            let server = nodes.get(*node as usize).ok_or_else(|| format!("the local deployment has nodes 0..{}, not node {node}", nodes.len() - 1))?;
            let pid = server.pid().await.ok_or("the node is not running")?;
            // Thawed when dropped: also when the fault is cut short or the run is interrupted.
            let frozen = Frozen::stop(pid)?;
            tokio::time::sleep(*duration).await;
            drop(frozen);
            Ok(format!("froze node {node} ({}) for {}", server.addr(), crate::units::format_duration(*duration)))
        }
        FaultAction::Network { fault, node, duration } => {
            let proxies = proxies(deployment, *node)?;
            // Lifted when dropped: also when the fault is cut short or the run is interrupted.
            let _in_force = InForce::set(&proxies, *fault);
            // A partition of one local cluster node cuts it off from its peers as well.
            let isolated = match (fault, node) {
                (crate::scenario::model::NetworkFault::Partition, Some(n)) if !deployment.bus_proxies.is_empty() => {
                    Some((*n as usize, Isolated::cut(&deployment.bus_proxies, *n as usize)))
                }
                _ => None,
            };
            tokio::time::sleep(*duration).await;
            let mut text = format!("{} on {} for {}", fault.name(), on_proxies(&proxies), crate::units::format_duration(*duration));
            if let Some((n, _cut)) = &isolated {
                text.push_str(&format!(" (cut off from the clients and its cluster peers; {})", slots_after_isolation(deployment, spec, *n).await));
            }
            Ok(text)
        }
        FaultAction::Reset { node } => {
            let proxies = proxies(deployment, *node)?;
            for p in &proxies {
                p.reset_all();
            }
            Ok(format!("reset every connection to {}", on_proxies(&proxies)))
        }
        FaultAction::Shell { command, timeout } => {
            // Its own process group, killed whole when the fault is cut short or times out: `sh -c
            // 'sleep 8'` leaves no `sleep` behind.
            let child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(command)
                .env("REDIS_TEST_TARGET", spec.addr.to_string())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot run sh: {e}"))?;
            let _group = child.id().map(ProcessGroup);
            match tokio::time::timeout(*timeout, child.wait_with_output()).await {
                Err(_) => Err(format!("timed out after {}; killed", crate::units::format_duration(*timeout))),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok(out)) if out.status.success() => Ok(format!("exit 0: {}", tail(&out.stdout))),
                Ok(Ok(out)) => Err(format!("{}: {}", out.status, tail(&out.stderr))),
            }
        }
        FaultAction::RollingUpgrade { binary } => rolling_upgrade(spec, deployment, binary.as_deref(), t0, steps).await,
        FaultAction::Failover { shard } => match (&deployment.sentinels, &deployment.cluster) {
            (Some(s), _) => {
                // Done when the sentinels name another master, as a cluster failover is done when
                // the replica calls itself primary.
                let before = s.discover().await?;
                let accepted = s.failover().await?;
                let started = Instant::now();
                let after = poll_value(STEP_TIMEOUT, || async {
                    let now = s.discover().await?;
                    if now == before { Err(format!("the sentinels still name {before} the master")) } else { Ok(now) }
                })
                .await?;
                Ok(format!("{accepted}; the sentinels named {after} the master {} ms later", started.elapsed().as_millis()))
            }
            (None, Some(_)) => cluster_failover(spec, deployment, *shard).await,
            (None, None) => Err("failover needs a cluster or sentinel target".into()),
        },
    }
}

/// Longest a restarted node may take to be in sync again, or a promoted one to say it is primary.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Per shard (the one primary of a sentinel deployment): restart each replica, with `binary`
/// when given, and wait until it is in sync; fail over to the first replica; restart the old
/// primary and wait until it is in sync as a replica. Each step is recorded in `steps` as it
/// starts (a step cut short stays on the timeline).
async fn rolling_upgrade(
    spec: &ConnectSpec,
    deployment: &Deployment,
    binary: Option<&std::path::Path>,
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
        if let Some(b) = binary {
            node.use_binary(b);
        }
        node.restart(Duration::ZERO).await.map_err(|e| e.to_string())?;
        let took = wait_replica_in_sync(spec, &addr).await?;
        Ok(format!("{addr} restarted, in sync after {}", ms(took)))
    };
    let all_nodes: Vec<HostPort> = local.nodes().iter().map(|n| n.addr().clone()).collect();
    for (i, (master, replicas)) in shards.iter().enumerate() {
        let first = replicas.first().ok_or_else(|| format!("shard {i} ({master}) has no replica to fail over to"))?.clone();
        for r in replicas {
            step(steps, t0, format!("shard {i}: restart replica {r}"), restart(r.clone())).await?;
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
        step(steps, t0, format!("shard {i}: fail over to {first}"), failover).await?;
        step(steps, t0, format!("shard {i}: restart old primary {master}"), restart(master.clone())).await?;
    }
    let to = binary.map(|b| format!(" onto {}", b.display())).unwrap_or_default();
    Ok(format!("{} shard(s) upgraded{to} in {} steps", shards.len(), steps.len()))
}

/// A wait as people read it, to the millisecond.
fn ms(d: Duration) -> String {
    crate::units::format_duration(Duration::from_millis(d.as_millis() as u64))
}

/// Runs one step of a multi-step fault, recorded in `steps` from its start.
async fn step(steps: &mut Vec<StepRun>, t0: Instant, name: String, work: impl std::future::Future<Output = Result<String, String>>) -> Result<(), String> {
    tracing::info!(step = %name, "fault step starting");
    let started = t0.elapsed();
    steps.push(StepRun { name, started, finished: started, ok: false, detail: "cut short".into() });
    let result = work.await;
    let last = steps.last_mut().expect("pushed above");
    last.finished = t0.elapsed();
    match &result {
        Ok(d) => (last.ok, last.detail) = (true, d.clone()),
        Err(e) => last.detail.clone_from(e),
    }
    result.map(|_| ())
}

/// A control connection to the node at `addr` itself: not through a fault proxy, not to the master
/// a sentinel target's settings follow.
async fn node_control(spec: &ConnectSpec, addr: &HostPort) -> Result<Conn, String> {
    control(&ConnectSpec { addr: addr.clone(), follow: None, ..spec.direct() }).await
}

/// Sends a command whose reply is text (INFO, CLIENT LIST, CLUSTER NODES) and returns the text.
async fn text_reply(c: &mut Conn, args: &[&[u8]], timeout: Duration) -> Result<String, String> {
    let v = reply(c.command(args, timeout).await.map_err(|e| e.to_string())?)?;
    Ok(v.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default())
}

/// Asks `check` every 100 ms until it answers `Ok`, at most `limit`: how long that took, or the
/// last reason it gave for not yet.
async fn poll<F: std::future::Future<Output = Result<(), String>>>(limit: Duration, check: impl FnMut() -> F) -> Result<Duration, String> {
    let started = Instant::now();
    poll_value(limit, check).await.map(|()| started.elapsed())
}

/// [`poll`] for a check that answers a value once it is ready.
async fn poll_value<T, F: std::future::Future<Output = Result<T, String>>>(limit: Duration, mut check: impl FnMut() -> F) -> Result<T, String> {
    let started = Instant::now();
    let mut last = String::from("no answer yet");
    while started.elapsed() < limit {
        match check().await {
            Ok(v) => return Ok(v),
            Err(why) => last = why,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last)
}

/// `INFO replication` of `addr` over a direct control connection, as `field → value`.
async fn replication(spec: &ConnectSpec, addr: &HostPort) -> Result<std::collections::HashMap<String, String>, String> {
    let text = text_reply(&mut node_control(spec, addr).await?, &[b"INFO", b"replication"], Duration::from_secs(2)).await?;
    Ok(text.lines().filter_map(|l| l.trim().split_once(':')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

/// Waits until `addr` is a replica with its link up and no sync in progress.
async fn wait_replica_in_sync(spec: &ConnectSpec, addr: &HostPort) -> Result<Duration, String> {
    let in_sync = |r: &std::collections::HashMap<String, String>| {
        r.get("role").is_some_and(|v| v == "slave")
            && r.get("master_link_status").is_some_and(|v| v == "up")
            && r.get("master_sync_in_progress").is_some_and(|v| v == "0")
    };
    wait_for_role(spec, addr, in_sync, "in sync as a replica", STEP_TIMEOUT).await
}

/// Waits until every node of the cluster says `cluster_state:ok` and sees every other node
/// connected on the cluster bus with no failure flag (CLUSTER INFO, CLUSTER NODES): a node restarted
/// a moment ago is not yet back on every peer's bus, and a manual failover needs their votes.
async fn wait_bus_healthy(spec: &ConnectSpec, nodes: &[HostPort]) -> Result<(), String> {
    let healthy = |addr: &HostPort| {
        let addr = addr.clone();
        async move {
            let mut c = node_control(spec, &addr).await?;
            let t = Duration::from_secs(2);
            let info = text_reply(&mut c, &[b"CLUSTER", b"INFO"], t).await?;
            let table = text_reply(&mut c, &[b"CLUSTER", b"NODES"], t).await?;
            // `<id> <addr> <flags> <master> <ping> <pong> <epoch> <link-state> <slots…>`
            let peers_ok = table.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).all(|f| {
                let flags = f.get(2).copied().unwrap_or("");
                flags.contains("myself") || (f.get(7) == Some(&"connected") && !flags.contains("fail"))
            });
            if info.contains("cluster_state:ok") && peers_ok { Ok(()) } else { Err(format!("{addr} does not see every node connected yet")) }
        }
    };
    let all_healthy = || async {
        for addr in nodes {
            healthy(addr).await?;
        }
        Ok(())
    };
    poll(STEP_TIMEOUT, all_healthy).await.map(|_| ()).map_err(|last| format!("{last} after {}", crate::units::format_duration(STEP_TIMEOUT)))
}

/// Waits until `addr` says it is a primary.
async fn wait_until_primary(spec: &ConnectSpec, addr: &HostPort) -> Result<Duration, String> {
    wait_for_role(spec, addr, |r| r.get("role").is_some_and(|v| v == "master"), "primary", STEP_TIMEOUT).await
}

/// Polls `INFO replication` of `addr` until `done` says so, at most `limit`.
async fn wait_for_role(
    spec: &ConnectSpec,
    addr: &HostPort,
    done: impl Fn(&std::collections::HashMap<String, String>) -> bool,
    what: &str,
    limit: Duration,
) -> Result<Duration, String> {
    let check = || async {
        let r = replication(spec, addr).await?;
        if done(&r) { Ok(()) } else { Err(format!("role {}", r.get("role").map_or("?", String::as_str))) }
    };
    poll(limit, check).await.map_err(|last| format!("{addr} not {what} after {} ({last})", crate::units::format_duration(limit)))
}

/// CLUSTER FAILOVER on a replica of shard `shard` (random when absent), then waits until that
/// replica reports itself a primary.
async fn cluster_failover(spec: &ConnectSpec, deployment: &Deployment, shard: Option<u32>) -> Result<String, String> {
    let topology = deployment.current_topology(spec).await?;
    let n = topology.shards.len();
    let index = match shard {
        Some(i) if (i as usize) < n => i as usize,
        Some(i) => return Err(format!("the cluster has shards 0..{}, not shard {i}", n - 1)),
        // Any shard will do; the clock is random enough to pick one.
        None => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() as usize) % n,
    };
    let s = &topology.shards[index];
    let replica = s.replicas.first().ok_or_else(|| format!("shard {index} ({}) has no replica to take over", s.master))?;
    let mut c = control(&ConnectSpec { addr: replica.clone(), ..spec.clone() }).await?;
    let started = Instant::now();
    reply(c.command(&[b"CLUSTER", b"FAILOVER"], Duration::from_secs(5)).await.map_err(|e| e.to_string())?)?;
    // The replica answers OK at once and takes over in the background; ROLE says when it is done.
    let deadline = started + Duration::from_secs(15);
    loop {
        if let Ok(Value::Array(role)) = c.command(&[b"ROLE"], Duration::from_secs(5)).await {
            if role.first().and_then(Value::as_bytes) == Some(b"master") {
                return Ok(format!("replica {replica} took over shard {index} from {} in {}ms", s.master, started.elapsed().as_millis()));
            }
        }
        if Instant::now() > deadline {
            return Err(format!("replica {replica} of shard {index} was still not a primary 15s after CLUSTER FAILOVER"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kills a process group when dropped.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: kill(2) with a negative pid signals the process group; no memory is involved.
        unsafe {
            libc::kill(-(self.0 as i32), libc::SIGKILL);
        }
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let t = text.trim();
    let start = t.char_indices().rev().nth(199).map_or(0, |(i, _)| i);
    t[start..].to_owned()
}
/// The fault proxies of `node` (every node when `None`).
fn proxies(deployment: &Deployment, node: Option<u32>) -> Result<Vec<&crate::deployment::proxy::Proxy>, String> {
    let all = &deployment.proxies;
    if all.is_empty() {
        return Err("no fault proxy in front of the target (`target.proxy`)".into());
    }
    match node {
        None => Ok(all.iter().collect()),
        Some(n) => all.get(n as usize).map(|p| vec![p]).ok_or_else(|| format!("there are proxies for nodes 0..{}, not node {n}", all.len() - 1)),
    }
}

/// `node 127.0.0.1:6379`, or `2 nodes`.
fn on_proxies(proxies: &[&crate::deployment::proxy::Proxy]) -> String {
    match proxies {
        [p] => format!("node {}", p.upstream),
        _ => format!("{} nodes", proxies.len()),
    }
}

/// A network fault in force on some proxies; lifted when dropped, so no path leaves it on.
struct InForce<'a>(Vec<&'a crate::deployment::proxy::Proxy>);

impl<'a> InForce<'a> {
    fn set(proxies: &[&'a crate::deployment::proxy::Proxy], fault: crate::scenario::model::NetworkFault) -> InForce<'a> {
        for p in proxies {
            p.set(Some(fault));
        }
        InForce(proxies.to_vec())
    }
}

impl Drop for InForce<'_> {
    fn drop(&mut self) {
        for p in &self.0 {
            p.set(None);
        }
    }
}

/// Local cluster node N cut off from its peers: its bus proxy black-holes every connection and
/// the other nodes' bus proxies black-hole the connections N opened (told apart by N's source
/// address). Restored when dropped.
struct Isolated<'a> {
    bus: &'a [crate::deployment::proxy::Proxy],
    node: usize,
}

impl<'a> Isolated<'a> {
    fn cut(bus: &'a [crate::deployment::proxy::Proxy], node: usize) -> Isolated<'a> {
        for (i, p) in bus.iter().enumerate() {
            if i == node {
                p.set(Some(crate::scenario::model::NetworkFault::Partition));
            } else {
                p.cut_source(Some(crate::deployment::cluster::source_ip(node)));
            }
        }
        Isolated { bus, node }
    }
}

impl Drop for Isolated<'_> {
    fn drop(&mut self) {
        for (i, p) in self.bus.iter().enumerate() {
            if i == self.node {
                p.set(None);
            } else {
                p.cut_source(None);
            }
        }
    }
}

/// What the rest of the cluster made of isolated node `n`, asked of a peer while the partition
/// still holds: whether its slots moved to another node (a failover) or it still serves them.
async fn slots_after_isolation(deployment: &Deployment, spec: &ConnectSpec, n: usize) -> String {
    let Some(local) = &deployment.local else { return "no peer view".into() };
    let nodes = local.nodes();
    let (Some(isolated), Some(peer)) = (nodes.get(n), nodes.iter().enumerate().find(|(i, _)| *i != n).map(|(_, p)| p)) else { return "no peer view".into() };
    let view = async {
        let mut c = node_control(spec, &peer.addr()).await?;
        text_reply(&mut c, &[b"CLUSTER", b"NODES"], Duration::from_secs(2)).await
    };
    match view.await {
        Ok(text) => {
            let addr = format!("{}@", isolated.addr());
            match text.lines().find(|l| l.split_whitespace().nth(1).is_some_and(|a| a.starts_with(&addr))) {
                // Fields: id addr flags primary ping pong epoch link slot...
                Some(line) if line.split_whitespace().count() > 8 => "the peers still route its slots to it".into(),
                Some(line) if line.split_whitespace().nth(2).is_some_and(|f| f.contains("master")) => {
                    "the peers failed it over: its slots moved to its replica".into()
                }
                Some(_) => "it serves no slots".into(),
                None => "the peers do not know it".into(),
            }
        }
        Err(e) => format!("no peer view: {e}"),
    }
}

/// Waits until `peer` names the node now at `addr` by that address (the node's own gossip tells
/// it), and says how long that took and what role the peers give it.
async fn peers_learn_address(spec: &ConnectSpec, addr: &HostPort, peer: &HostPort) -> Result<String, String> {
    let t = Duration::from_secs(2);
    let mut own = node_control(spec, addr).await?;
    let id = text_reply(&mut own, &[b"CLUSTER", b"MYID"], t).await?;
    let started = Instant::now();
    let at = format!("{addr}@");
    let flags = poll_value(STEP_TIMEOUT, || async {
        let mut c = node_control(spec, peer).await?;
        let text = text_reply(&mut c, &[b"CLUSTER", b"NODES"], t).await?;
        let line = text.lines().find(|l| l.starts_with(&id)).ok_or_else(|| format!("{peer} does not know node {id}"))?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.get(1) {
            Some(a) if a.starts_with(&at) => Ok(fields.get(2).map_or_else(String::new, |f| (*f).to_owned())),
            other => Err(format!("{peer} still names it {}", other.unwrap_or(&"nothing"))),
        }
    })
    .await?;
    let role = if flags.contains("master") { "primary" } else { "replica" };
    Ok(format!(" (the peers named it there {} ms later, as a {role})", started.elapsed().as_millis()))
}

/// A process stopped with SIGSTOP; SIGCONT when dropped, so no path leaves a node frozen.
struct Frozen(i32);

impl Frozen {
    fn stop(pid: u32) -> Result<Frozen, String> {
        let pid = i32::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
        // SAFETY: kill(2) with a pid of a child we started and a valid signal number.
        if unsafe { libc::kill(pid, libc::SIGSTOP) } != 0 {
            return Err(format!("SIGSTOP to pid {pid} failed: {}", std::io::Error::last_os_error()));
        }
        Ok(Frozen(pid))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe {
            libc::kill(self.0, libc::SIGCONT);
        }
    }
}
