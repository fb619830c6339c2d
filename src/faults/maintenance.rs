//! Announced maintenance on local deployments, through the RESP-aware fault proxy:
//!
//! - `notify`: maintenance notifications only, no change — a client's parsing, relaxed windows and
//!   handoffs on their own;
//! - `maintenance kind: move`: the endpoint moves to a new node, as on Redis Software. A new node
//!   is synced as a replica behind a proxy of its own (the new endpoint), MOVING names that
//!   endpoint (or no address, for clients that asked for `none`: they reconnect to the same one
//!   after half the notice), the old endpoint holds new connections, and once every connection
//!   that was told has left it — or the notice is up — the change is made: writes paused on the
//!   old node, the new one caught up and promoted, the old one made its replica, the endpoint
//!   pointed at the new node. At the end of the notice the old endpoint closes the connections it
//!   still has: clients that did not hand off lose them. `announce: false` makes the same change
//!   at once, silently: the baseline.
//!
//! The proxy sends notices only to connections that asked (`CLIENT MAINT_NOTIFICATIONS ON`,
//! answered by the proxy itself), between whole replies.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use super::control::{STEP_TIMEOUT, caught_up, ms, node_control, repl_offset, reply};
use crate::client::maintenance::{Kind, Notice};
use crate::client::native::conn::ConnectSpec;
use crate::deployment::Deployment;
use crate::deployment::local::{LocalServer, NodeKind};
use crate::deployment::proxy::Proxy;
use crate::outcome::MaintenanceRun;
use crate::resp::Value;
use crate::scenario::model::HostPort;

/// Longest the change itself may take (pause, catch-up, promotion).
const CUTOVER_LIMIT: Duration = Duration::from_secs(10);

/// A told connection with nothing in flight and no request for this long has been left behind.
const ABANDONED: Duration = Duration::from_millis(100);

/// How often the fault looks whether the told connections have left the old endpoint.
const DRAIN_CHECK: Duration = Duration::from_millis(5);

/// The RESP-aware proxies in front of every node, which announce.
fn all_proxies(d: &Deployment) -> Result<Vec<&Proxy>, String> {
    if d.proxies.is_empty() {
        return Err("no fault proxy in front of the target (`target.proxy`)".to_owned());
    }
    Ok(d.proxies.iter().collect())
}

/// Sends `notice` through every proxy in `proxies`; how many connections it reached.
fn announce_all(proxies: &[&Proxy], notice: &Notice, run: &mut MaintenanceRun) -> usize {
    proxies.iter().map(|p| announce(p, notice, run)).sum()
}

/// The proxy in front of the standalone target, which announces and moves.
fn endpoint(d: &Deployment) -> Result<&Proxy, String> {
    d.proxies.first().ok_or_else(|| "no fault proxy in front of the target (`target.proxy`)".to_owned())
}

/// Sends one notice through `proxy` and counts it.
fn announce(proxy: &Proxy, notice: &Notice, run: &mut MaintenanceRun) -> usize {
    let n = proxy.notify(notice);
    *run.sent.entry(notice.kind.name().to_owned()).or_default() += n as u64;
    n
}

/// The next sequence number of the run's notices.
fn next(seq: &AtomicI64) -> i64 {
    seq.fetch_add(1, Ordering::Relaxed) + 1
}

/// Sends `messages` in order, `notice` apart, each announcing `notice`.
pub async fn notify(d: &Deployment, messages: &[Kind], notice: Duration, seq: &AtomicI64, run: &mut MaintenanceRun) -> Result<String, String> {
    let proxies = all_proxies(d)?;
    run.listening = proxies.iter().map(|p| p.listening_before(u64::MAX) as u64).sum();
    let mut told = Vec::new();
    for (i, kind) in messages.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(notice).await;
        }
        let n = Notice { kind: *kind, seq: next(seq), time: Some(notice), endpoint: None, slots: Vec::new(), destinations: Vec::new() };
        told.push(format!("{kind} to {}", announce_all(&proxies, &n, run)));
    }
    if run.listening == 0 {
        // Nobody to tell is the client's property, not the fault's failure: the report's
        // maintenance section says why (notifications off, RESP2, or not implemented).
        return Ok("no connection had asked for maintenance notifications: nothing was sent".into());
    }
    Ok(format!("sent {}", told.join(", then ")))
}

/// `maintenance kind: move` on a local standalone target (see the module's documentation).
pub async fn move_endpoint(
    spec: &ConnectSpec,
    d: &Deployment,
    notice: Duration,
    announced: bool,
    seq: &AtomicI64,
    t0: Instant,
    run: &mut MaintenanceRun,
) -> Result<String, String> {
    let old_endpoint = endpoint(d)?;
    let old = old_endpoint.upstream();
    let (node, streamed) = start_streamed_replica(spec, &old).await?;
    let new = node.addr();
    // Its own endpoint, holding connections until the change is made.
    let new_endpoint = Arc::new(Proxy::start_resp_aware(new.clone()).await.map_err(|e| format!("the new endpoint: {e}"))?);
    new_endpoint.hold_new(true);
    d.moved.lock().expect("moved lock").push((node, Some(Arc::clone(&new_endpoint))));
    // Whatever happens next, neither endpoint is left holding connections.
    let _release = Release(vec![old_endpoint, &new_endpoint]);
    let told_at = Instant::now();
    if announced {
        run.listening = old_endpoint.listening_before(u64::MAX) as u64;
        run.endpoint = Some(new_endpoint.addr.to_string());
        let moving = Notice {
            kind: Kind::Moving,
            seq: next(seq),
            time: Some(notice),
            endpoint: Some(new_endpoint.addr.clone()),
            slots: Vec::new(),
            destinations: Vec::new(),
        };
        announce(old_endpoint, &moving, run);
    }
    // From here new connections to the old endpoint wait for the change (they will reach the new
    // node); the ones accepted before are the old node's.
    old_endpoint.hold_new(true);
    let mark = old_endpoint.epoch();
    if announced {
        // The told connections leave as their replies finish (or after half the notice, for a
        // MOVING without an address); the change waits until none is in use, at most until the
        // notice is up. One a client abandoned (idle in its pool, never used again) is not waited
        // for: it is closed at the end of the notice.
        while old_endpoint.in_use_listening_before(mark, ABANDONED) > 0 && told_at.elapsed() < notice {
            tokio::time::sleep(DRAIN_CHECK).await;
        }
    }
    let took =
        tokio::time::timeout(CUTOVER_LIMIT, cutover(spec, &old, &new)).await.map_err(|_| format!("the change took longer than {}", ms(CUTOVER_LIMIT)))??;
    run.cutover_s = Some(t0.elapsed().as_secs_f64());
    let promoted = told_at.elapsed();
    old_endpoint.set_upstream(new.clone());
    drop(_release);
    // The old endpoint keeps what it has until the notice is up, then closes it.
    tokio::time::sleep(notice.saturating_sub(told_at.elapsed())).await;
    let closed = old_endpoint.reset_before(mark) as u64;
    run.closed_at_end = Some(closed);
    let told = match (announced, run.listening) {
        (false, _) => "not announced; ".to_owned(),
        (true, 0) => "announced, but no connection had asked for notifications; ".to_owned(),
        (true, n) => format!("MOVING to {n} connection(s) (the new endpoint {}, or no address where asked); ", new_endpoint.addr),
    };
    Ok(format!(
        "moved the endpoint from {old} to a new node {new} (streamed to {} after its sync): {told}promoted it {} after the announcement ({} for the change itself); the old endpoint closed {closed} connection(s) at the end of the {} notice",
        ms(streamed),
        ms(promoted),
        ms(took),
        ms(notice)
    ))
}

/// Starts a new local node as a replica of `primary` (a diskless sync without the 5 s delay) and
/// returns once `primary` streams its writes to it, with how long that took after the sync.
///
/// "Synced" is not enough (see [`caught_up`]): a change made while the new node is not yet streamed
/// to waits up to a second with the clients held (seen in CI: "989ms for the change itself", 10
/// `pool_timeout`s on an announced move). So a PUBLISH — replicated, touching no key — goes
/// through and the new node must have applied it.
pub async fn start_streamed_replica(spec: &ConnectSpec, primary: &HostPort) -> Result<(LocalServer, Duration), String> {
    let t = Duration::from_secs(2);
    let mut c = node_control(spec, primary).await?;
    reply(c.command(&[b"CONFIG", b"SET", b"repl-diskless-sync-delay", b"0"], t).await.map_err(|e| e.to_string())?)?;
    let mut conf = vec![format!("replicaof {} {}", primary.host, primary.port)];
    if let Some(pw) = &spec.password {
        conf.push(format!("masterauth {}", crate::deployment::local::config_quoted(pw)));
    }
    let node = LocalServer::start_node(NodeKind::Server, spec.password.as_ref(), &conf, Some("sync: Finished with success"))
        .await
        .map_err(|e| format!("the new node: {e}"))?;
    let synced = Instant::now();
    reply(c.command(&[b"PUBLISH", b"redis-test:maintenance", b"new node"], t).await.map_err(|e| e.to_string())?)?;
    let target = repl_offset(&mut c, "master_repl_offset").await?;
    let mut n = node_control(spec, &node.addr()).await?;
    tokio::time::timeout(STEP_TIMEOUT, caught_up(&mut n, target))
        .await
        .map_err(|_| format!("the new node {} was not streamed to within {} of its sync", node.addr(), ms(STEP_TIMEOUT)))??;
    let took = synced.elapsed();
    tracing::info!(node = %node.addr(), took_ms = took.as_millis() as u64, "maintenance: the new node is streamed to");
    Ok((node, took))
}

/// Endpoints held while the change is made, let go however the fault ends.
struct Release<'a>(Vec<&'a Proxy>);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        for p in &self.0 {
            p.hold_new(false);
        }
    }
}

/// The change: writes paused on `old`, `new` caught up and promoted, `old` made its replica, the
/// pause lifted (writes that waited on the old node then fail: it is a replica). Returns how long
/// it took.
async fn cutover(spec: &ConnectSpec, old: &HostPort, new: &HostPort) -> Result<Duration, String> {
    let started = Instant::now();
    let t = Duration::from_secs(2);
    let mut o = node_control(spec, old).await?;
    let mut n = node_control(spec, new).await?;
    let limit = CUTOVER_LIMIT.as_millis().to_string();
    reply(o.command(&[b"CLIENT", b"PAUSE", limit.as_bytes(), b"WRITE"], t).await.map_err(|e| e.to_string())?)?;
    let result = async {
        let target = repl_offset(&mut o, "master_repl_offset").await?;
        tracing::info!(offset = target, took_ms = started.elapsed().as_millis() as u64, "maintenance: writes paused on the old node");
        caught_up(&mut n, target).await?;
        tracing::info!(took_ms = started.elapsed().as_millis() as u64, "maintenance: the new node caught up");
        reply(n.command(&[b"REPLICAOF", b"NO", b"ONE"], t).await.map_err(|e| e.to_string())?)?;
        let port = new.port.to_string();
        reply(o.command(&[b"REPLICAOF", new.host.as_bytes(), port.as_bytes()], t).await.map_err(|e| e.to_string())?)?;
        Ok::<(), String>(())
    }
    .await;
    // Lifted however the change went.
    let unpaused = o.command(&[b"CLIENT", b"UNPAUSE"], t).await;
    result?;
    if let Ok(Value::Error(e)) = unpaused {
        return Err(format!("CLIENT UNPAUSE on {old}: {e}"));
    }
    Ok(started.elapsed())
}

/// `maintenance kind: failover`: FAILING_OVER, a real failover, FAILED_OVER once it is done. On
/// a local cluster: to the connections of shard `shard`'s primary and replicas, CLUSTER FAILOVER
/// on its replica (done when the replica calls itself primary). On a local sentinel deployment: to
/// every connection, SENTINEL FAILOVER (done when the sentinels name another master). Clients told
/// relax their timeouts through the failover's pause and follow the MOVED replies or the new
/// master.
pub async fn failover(
    spec: &ConnectSpec,
    d: &Deployment,
    shard: u32,
    notice: Duration,
    announced: bool,
    seq: &AtomicI64,
    run: &mut MaintenanceRun,
) -> Result<String, String> {
    let proxies: Vec<&Proxy> = if d.sentinels.is_some() {
        all_proxies(d)?
    } else {
        let topology = d.current_topology(spec).await?;
        let s = topology
            .shards
            .get(shard as usize)
            .ok_or_else(|| format!("the cluster has shards 0..{}, not shard {shard}", topology.shards.len().saturating_sub(1)))?;
        d.proxies
            .iter()
            .filter(|p| {
                let u = p.upstream();
                u == s.master || s.replicas.contains(&u)
            })
            .collect()
    };
    if proxies.is_empty() {
        return Err(format!("no fault proxy in front of shard {shard}"));
    }
    if announced {
        run.listening = proxies.iter().map(|p| p.listening_before(u64::MAX) as u64).sum();
        let n = Notice { kind: Kind::FailingOver, seq: next(seq), time: Some(notice), endpoint: None, slots: Vec::new(), destinations: Vec::new() };
        announce_all(&proxies, &n, run);
    }
    let done = match d.sentinels {
        Some(_) => super::process::failover(spec, d, None).await?,
        None => super::process::cluster_failover(spec, d, Some(shard)).await?,
    };
    if announced {
        let n = Notice { kind: Kind::FailedOver, seq: next(seq), time: None, endpoint: None, slots: Vec::new(), destinations: Vec::new() };
        announce_all(&proxies, &n, run);
    }
    let told = match run.sent.get(Kind::FailingOver.name()) {
        Some(n) if announced => {
            format!("FAILING_OVER to {n} connection(s), then FAILED_OVER to {}", run.sent.get(Kind::FailedOver.name()).copied().unwrap_or(0))
        }
        _ if announced => "announced, but no connection had asked for notifications".to_owned(),
        _ => "not announced".to_owned(),
    };
    Ok(format!("{done}; {told}"))
}

/// Slots a `migrate` moves when the scenario does not say.
pub const DEFAULT_SLOTS: u32 = 100;

/// Keys moved per MIGRATE.
const MIGRATE_BATCH: usize = 100;

/// `maintenance kind: migrate` on a local cluster: SMIGRATING to every connection, then the first
/// `count` slots of shard `shard` move with their keys to the next shard (CLUSTER SETSLOT
/// IMPORTING / MIGRATING, MIGRATE in batches, SETSLOT NODE on every primary), then SMIGRATED naming
/// the new owner. Clients follow the ASK and MOVED replies the migration gives; a told client also
/// reads the slot map again at SMIGRATED.
pub async fn migrate(
    spec: &ConnectSpec,
    d: &Deployment,
    shard: u32,
    count: u32,
    announced: bool,
    seq: &AtomicI64,
    run: &mut MaintenanceRun,
) -> Result<String, String> {
    let topology = d.current_topology(spec).await?;
    let n = topology.shards.len();
    let src = topology.shards.get(shard as usize).ok_or_else(|| format!("the cluster has shards 0..{}, not shard {shard}", n.saturating_sub(1)))?;
    let dst = &topology.shards[(shard as usize + 1) % n];
    let (first, last_of_range) = *src.ranges.first().ok_or_else(|| format!("shard {shard} ({}) serves no slot", src.master))?;
    let last = last_of_range.min(first.saturating_add(count.saturating_sub(1).min(u32::from(u16::MAX)) as u16));
    let slots = vec![(first, last)];
    let proxies = all_proxies(d)?;
    if announced {
        run.listening = proxies.iter().map(|p| p.listening_before(u64::MAX) as u64).sum();
        let n = Notice { kind: Kind::SMigrating, seq: next(seq), time: None, endpoint: None, slots: slots.clone(), destinations: Vec::new() };
        announce_all(&proxies, &n, run);
    }
    let started = Instant::now();
    let t = Duration::from_secs(5);
    let mut s = node_control(spec, &src.master).await?;
    let mut dn = node_control(spec, &dst.master).await?;
    let id = |v: Value| v.as_bytes().map(|b| String::from_utf8_lossy(b).trim().to_owned()).ok_or_else(|| "CLUSTER MYID gave no id".to_owned());
    let src_id = id(reply(s.command(&[b"CLUSTER", b"MYID"], t).await.map_err(|e| e.to_string())?)?)?;
    let dst_id = id(reply(dn.command(&[b"CLUSTER", b"MYID"], t).await.map_err(|e| e.to_string())?)?)?;
    let mut others = Vec::new();
    for m in topology.shards.iter().map(|sh| &sh.master).filter(|m| **m != dst.master && **m != src.master) {
        others.push((m.clone(), node_control(spec, m).await?));
    }
    let port = dst.master.port.to_string();
    let password = spec.password.as_ref().map(|p| p.expose().to_owned());
    let mut keys_moved = 0usize;
    for slot in first..=last {
        let slot_text = slot.to_string();
        reply(dn.command(&[b"CLUSTER", b"SETSLOT", slot_text.as_bytes(), b"IMPORTING", src_id.as_bytes()], t).await.map_err(|e| e.to_string())?)?;
        reply(s.command(&[b"CLUSTER", b"SETSLOT", slot_text.as_bytes(), b"MIGRATING", dst_id.as_bytes()], t).await.map_err(|e| e.to_string())?)?;
        loop {
            let batch = MIGRATE_BATCH.to_string();
            let keys = match reply(s.command(&[b"CLUSTER", b"GETKEYSINSLOT", slot_text.as_bytes(), batch.as_bytes()], t).await.map_err(|e| e.to_string())?)? {
                Value::Array(k) => k,
                other => return Err(format!("CLUSTER GETKEYSINSLOT {slot}: {other:?}")),
            };
            if keys.is_empty() {
                break;
            }
            let mut args: Vec<&[u8]> = vec![b"MIGRATE", dst.master.host.as_bytes(), port.as_bytes(), b"", b"0", b"5000"];
            match (&spec.username, &password) {
                (Some(u), Some(p)) => args.extend_from_slice(&[b"AUTH2", u.as_bytes(), p.as_bytes()]),
                (None, Some(p)) => args.extend_from_slice(&[b"AUTH", p.as_bytes()]),
                _ => {}
            }
            args.push(b"KEYS");
            args.extend(keys.iter().filter_map(Value::as_bytes));
            reply(s.command(&args, t).await.map_err(|e| format!("MIGRATE of slot {slot}: {e}"))?).map_err(|e| format!("MIGRATE of slot {slot}: {e}"))?;
            keys_moved += keys.len();
        }
        // The new owner first, then the old one, then every other primary.
        let owners = [(&dst.master, &mut dn), (&src.master, &mut s)];
        for (addr, c) in owners.into_iter().chain(others.iter_mut().map(|(a, c)| (&*a, c))) {
            reply(c.command(&[b"CLUSTER", b"SETSLOT", slot_text.as_bytes(), b"NODE", dst_id.as_bytes()], t).await.map_err(|e| e.to_string())?)
                .map_err(|e| format!("CLUSTER SETSLOT {slot} NODE on {addr}: {e}"))?;
        }
    }
    let took = started.elapsed();
    if announced {
        let n = Notice { kind: Kind::SMigrated, seq: next(seq), time: None, endpoint: None, slots: slots.clone(), destinations: vec![dst.master.clone()] };
        announce_all(&proxies, &n, run);
    }
    let told = match run.sent.get(Kind::SMigrating.name()) {
        Some(n) if announced && *n > 0 => {
            format!("SMIGRATING to {n} connection(s), then SMIGRATED to {}", run.sent.get(Kind::SMigrated.name()).copied().unwrap_or(0))
        }
        _ if announced => "announced, but no connection had asked for notifications".to_owned(),
        _ => "not announced".to_owned(),
    };
    Ok(format!("moved slots {first}-{last} ({keys_moved} keys) of shard {shard} from {} to {} in {}; {told}", src.master, dst.master, ms(took)))
}
