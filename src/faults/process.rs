//! Faults on the server processes and their clients: CLIENT KILL, CLIENT PAUSE, DEBUG SLEEP, a
//! restart (on the same or a new port), a freeze (SIGSTOP), and a failover.

use std::time::{Duration, Instant};

use super::control::{STEP_TIMEOUT, control, node_control, on_each, on_nodes, poll_value, reply, show, text_reply};
use crate::client::native::conn::{Conn, ConnectSpec};
use crate::deployment::Deployment;
use crate::resp::Value;
use crate::scenario::model::{HostPort, KillClients, PauseMode};

/// Timeout of one control command.
const COMMAND: Duration = Duration::from_secs(5);

/// CLIENT KILL of every normal client, or of redis-test's own connections (by client name), on
/// every data node.
pub async fn client_kill(spec: &ConnectSpec, deployment: &Deployment, clients: KillClients, run_client: &str) -> Result<String, String> {
    let specs = deployment.data_nodes(spec, true).await?;
    let n = specs.len();
    if clients == KillClients::Normal {
        let killed = on_each(specs, |s| async move {
            let mut c = control(&s).await?;
            match reply(c.command(&[b"CLIENT", b"KILL", b"TYPE", b"normal", b"SKIPME", b"yes"], COMMAND).await.map_err(|e| e.to_string())?)? {
                Value::Int(k) => Ok(k),
                other => Err(format!("unexpected reply {}", show(&other))),
            }
        })
        .await?;
        return Ok(format!("killed {} normal client connections{}", killed.iter().sum::<i64>(), on_nodes(n)));
    }
    let name = format!("name={run_client}");
    let counts = on_each(specs, |s| {
        let name = name.clone();
        async move {
            let mut c = control(&s).await?;
            let text = text_reply(&mut c, &[b"CLIENT", b"LIST", b"TYPE", b"normal"], COMMAND).await?;
            let ours: Vec<String> = text
                .lines()
                .filter(|l| l.split(' ').any(|kv| kv == name))
                .filter_map(|l| l.split(' ').find_map(|kv| kv.strip_prefix("id=")).map(str::to_owned))
                .collect();
            let mut killed = 0;
            for id in &ours {
                if let Value::Int(n) = reply(c.command(&[b"CLIENT", b"KILL", b"ID", id.as_bytes()], COMMAND).await.map_err(|e| e.to_string())?)? {
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

/// CLIENT PAUSE on every data node.
pub async fn client_pause(spec: &ConnectSpec, deployment: &Deployment, duration: Duration, mode: PauseMode) -> Result<String, String> {
    let specs = deployment.data_nodes(spec, false).await?;
    let n = specs.len();
    let ms = duration.as_millis().max(1).to_string();
    let mode: &'static [u8] = if mode == PauseMode::Write { b"WRITE" } else { b"ALL" };
    on_each(specs, |s| {
        let ms = ms.clone();
        async move {
            let mut c = control(&s).await?;
            reply(c.command(&[b"CLIENT", b"PAUSE", ms.as_bytes(), mode], COMMAND).await.map_err(|e| e.to_string())?).map(|_| ())
        }
    })
    .await?;
    Ok(format!("paused clients for {ms}ms ({}){}", String::from_utf8_lossy(mode), on_nodes(n)))
}

/// Lifts CLIENT PAUSE (holding until `until`) over connections opened before it: the run ended or
/// was stopped while it held. A pause of writes is lifted; Redis postpones every command of a
/// normal client during a pause of *all* clients, CLIENT UNPAUSE included, so that one can only
/// run out: say so, and how long, rather than wait.
pub async fn unpause(conns: &mut [Conn], until: Instant) {
    for c in conns {
        match c.command(&[b"CLIENT", b"UNPAUSE"], Duration::from_millis(500)).await {
            Ok(Value::Error(e)) => tracing::warn!(error = %e, "could not lift the client pause at the end of the run"),
            Err(_) => {
                let left = until.saturating_duration_since(Instant::now());
                crate::errln!(
                    "redis-test: the server stays paused for {} more: Redis lets no client lift CLIENT PAUSE ALL (it postpones CLIENT UNPAUSE too)",
                    crate::units::format_duration(Duration::from_millis(left.as_millis() as u64))
                );
                return;
            }
            Ok(_) => tracing::info!("client pause lifted at the end of the run"),
        }
    }
}

/// Control connections to every data node, opened before a pause so that it can be lifted (a new
/// connection's handshake would itself wait out the pause).
pub async fn unpausers(spec: &ConnectSpec, deployment: &Deployment) -> Vec<Conn> {
    let mut out = Vec::new();
    if let Ok(specs) = deployment.data_nodes(spec, false).await {
        for s in specs {
            if let Ok(c) = control(&s).await {
                out.push(c);
            }
        }
    }
    out
}

/// DEBUG SLEEP on every data node.
pub async fn debug_sleep(spec: &ConnectSpec, deployment: &Deployment, duration: Duration) -> Result<String, String> {
    let specs = deployment.data_nodes(spec, false).await?;
    let n = specs.len();
    let secs = format!("{:.3}", duration.as_secs_f64());
    on_each(specs, |s| {
        let secs = secs.clone();
        async move {
            let mut c = control(&s).await?;
            reply(c.command(&[b"DEBUG", b"SLEEP", secs.as_bytes()], duration + COMMAND).await.map_err(|e| e.to_string())?).map(|_| ())
        }
    })
    .await?;
    Ok(format!("server slept {secs}s{}", on_nodes(n)))
}

/// The local node `node`, or why there is none.
fn local_node<'a>(deployment: &'a Deployment, node: u32, what: &str) -> Result<&'a crate::deployment::local::LocalServer, String> {
    let local = deployment.local.as_ref().ok_or_else(|| format!("{what} needs a local deployment"))?;
    let nodes = local.nodes();
    nodes.get(node as usize).copied().ok_or_else(|| format!("the local deployment has nodes 0..{}, not node {node}", nodes.len().saturating_sub(1)))
}

/// Stops local node `node` and starts it again after `down_for`, on the same port or a new one
/// (which the cluster learns by gossip, the sentinels from the master's replica list).
pub async fn restart(spec: &ConnectSpec, deployment: &Deployment, node: u32, down_for: Duration, new_port: bool) -> Result<String, String> {
    let server = local_node(deployment, node, "restart")?;
    let down = crate::units::format_duration(down_for);
    if !new_port {
        server.restart(down_for).await.map_err(|e| e.to_string())?;
        return Ok(format!("stopped node {node} ({}), restarted it after {down}", server.addr()));
    }
    let from = server.addr();
    server.kill().await;
    tokio::time::sleep(down_for).await;
    // A cluster learns the new address from the node's own gossip. Sentinels learn a node only
    // from the master's replica list: the node comes back as a replica of the master they name —
    // for the old master, once they have promoted another (in production an orchestrator's job;
    // here within 30 s).
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
        // The sentinels read the master's replica list every 10 s: within that, they list the
        // node at its new address.
        let started = Instant::now();
        poll_value(STEP_TIMEOUT, || async {
            let replicas = sentinels.replicas().await?;
            if replicas.contains(&to) { Ok(()) } else { Err(format!("the sentinels do not list {to} as a healthy replica yet")) }
        })
        .await?;
        role.push_str(&format!(" (the sentinels listed it there {} ms later)", started.elapsed().as_millis()));
    }
    if deployment.cluster.is_some() {
        let nodes = deployment.local.as_ref().map(|l| l.nodes()).unwrap_or_default();
        let peer = nodes.iter().enumerate().find(|(i, _)| *i != node as usize).map(|(_, p)| p.addr()).ok_or("no peer")?;
        role = peers_learn_address(spec, &to, &peer).await?;
    }
    Ok(format!("stopped node {node} ({from}), restarted it after {down} on {to}{role}"))
}

/// SIGSTOP local node `node`, SIGCONT after `duration`.
pub async fn freeze(deployment: &Deployment, node: u32, duration: Duration) -> Result<String, String> {
    let server = local_node(deployment, node, "freeze")?;
    let pid = server.pid().await.ok_or("the node is not running")?;
    // Thawed when dropped: also when the fault is cut short or the run is interrupted.
    let frozen = Frozen::stop(pid)?;
    tokio::time::sleep(duration).await;
    drop(frozen);
    Ok(format!("froze node {node} ({}) for {}", server.addr(), crate::units::format_duration(duration)))
}

/// SENTINEL FAILOVER (done when the sentinels name another master) or CLUSTER FAILOVER on a
/// replica of `shard` (done when it calls itself primary).
pub async fn failover(spec: &ConnectSpec, deployment: &Deployment, shard: Option<u32>) -> Result<String, String> {
    match (&deployment.sentinels, &deployment.cluster) {
        (Some(s), _) => {
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
        (None, Some(_)) => cluster_failover(spec, deployment, shard).await,
        (None, None) => Err("failover needs a cluster or sentinel target".into()),
    }
}

/// CLUSTER FAILOVER on a replica of shard `shard` (random when absent), then waits until that
/// replica reports itself a primary.
pub async fn cluster_failover(spec: &ConnectSpec, deployment: &Deployment, shard: Option<u32>) -> Result<String, String> {
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
        if let Ok(Value::Array(role)) = c.command(&[b"ROLE"], Duration::from_secs(5)).await
            && role.first().and_then(Value::as_bytes) == Some(b"master")
        {
            return Ok(format!("replica {replica} took over shard {index} from {} in {}ms", s.master, started.elapsed().as_millis()));
        }
        if Instant::now() > deadline {
            return Err(format!("replica {replica} of shard {index} was still not a primary 15s after CLUSTER FAILOVER"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `peer` names the node now at `addr` by that address (the node's own gossip tells
/// it), and says how long that took and what role the peers give it.
pub async fn peers_learn_address(spec: &ConnectSpec, addr: &HostPort, peer: &HostPort) -> Result<String, String> {
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
