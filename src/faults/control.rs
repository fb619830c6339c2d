//! What every fault family shares: control connections of their own (named so that `client_kill
//! own` never kills them), replies read as text, polling a condition with a deadline, and waiting
//! for a node's replication role.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::client::native::conn::{Conn, ConnectSpec};
use crate::resp::Value;
use crate::scenario::model::HostPort;

/// Longest a restarted node may take to be in sync again, or a promoted one to say it is primary.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A control connection to `spec`'s address.
pub async fn control(spec: &ConnectSpec) -> Result<Conn, String> {
    Conn::connect(spec).await.map_err(|e| format!("control connection: {e}"))
}

/// A server error reply as `Err`.
pub fn reply(v: Value) -> Result<Value, String> {
    match v {
        Value::Error(e) => Err(e),
        other => Ok(other),
    }
}

/// A reply as people read it in a fault's detail.
pub fn show(v: &Value) -> String {
    match v {
        Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// Runs `one` on every node at once; all must succeed. Returns the per-node results in order.
pub async fn on_each<T: Send + 'static, F>(specs: Vec<ConnectSpec>, one: impl Fn(ConnectSpec) -> F) -> Result<Vec<T>, String>
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

/// ` on 3 nodes`, or nothing for one node.
pub fn on_nodes(n: usize) -> String {
    if n > 1 { format!(" on {n} nodes") } else { String::new() }
}

/// A wait as people read it, to the millisecond ("under 1ms" rather than "0s").
pub fn ms(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        return "under 1ms".to_owned();
    }
    crate::units::format_duration(Duration::from_millis(d.as_millis() as u64))
}
/// A control connection to the node at `addr` itself: not through a fault proxy, not to the master
/// a sentinel target's settings follow.
pub async fn node_control(spec: &ConnectSpec, addr: &HostPort) -> Result<Conn, String> {
    control(&ConnectSpec { addr: addr.clone(), follow: None, ..spec.direct() }).await
}

/// Sends a command whose reply is text (INFO, CLIENT LIST, CLUSTER NODES) and returns the text.
pub async fn text_reply(c: &mut Conn, args: &[&[u8]], timeout: Duration) -> Result<String, String> {
    let v = reply(c.command(args, timeout).await.map_err(|e| e.to_string())?)?;
    Ok(v.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default())
}

/// Asks `check` every 100 ms until it answers `Ok`, at most `limit`: how long that took, or the
/// last reason it gave for not yet.
pub async fn poll<F: std::future::Future<Output = Result<(), String>>>(limit: Duration, check: impl FnMut() -> F) -> Result<Duration, String> {
    let started = Instant::now();
    poll_value(limit, check).await.map(|()| started.elapsed())
}

/// [`poll`] for a check that answers a value once it is ready.
pub async fn poll_value<T, F: std::future::Future<Output = Result<T, String>>>(limit: Duration, mut check: impl FnMut() -> F) -> Result<T, String> {
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
pub async fn replication(spec: &ConnectSpec, addr: &HostPort) -> Result<HashMap<String, String>, String> {
    info_replication(&mut node_control(spec, addr).await?).await
}

/// `INFO replication` over `c`, as `field → value`.
async fn info_replication(c: &mut Conn) -> Result<HashMap<String, String>, String> {
    let text = text_reply(c, &[b"INFO", b"replication"], Duration::from_secs(2)).await?;
    Ok(text.lines().filter_map(|l| l.trim().split_once(':')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

/// Waits until `addr` is a replica with its link up, no sync in progress, and the stream of its
/// primary applied up to where the primary was then: a replica synced a moment ago may not be
/// streamed to yet (see [`caught_up`]), and a failover onto it would lose what it has not had.
pub async fn wait_replica_in_sync(spec: &ConnectSpec, addr: &HostPort) -> Result<Duration, String> {
    let started = Instant::now();
    let in_sync = |r: &HashMap<String, String>| {
        r.get("role").is_some_and(|v| v == "slave")
            && r.get("master_link_status").is_some_and(|v| v == "up")
            && r.get("master_sync_in_progress").is_some_and(|v| v == "0")
    };
    wait_for_role(spec, addr, in_sync, "in sync as a replica", STEP_TIMEOUT).await?;
    let mut c = node_control(spec, addr).await?;
    let r = info_replication(&mut c).await?;
    let primary = match (r.get("master_host"), r.get("master_port").and_then(|p| p.parse().ok())) {
        (Some(host), Some(port)) => HostPort { host: host.clone(), port },
        _ => return Err(format!("{addr} names no primary in INFO replication")),
    };
    let target = repl_offset(&mut node_control(spec, &primary).await?, "master_repl_offset").await?;
    let left = STEP_TIMEOUT.saturating_sub(started.elapsed());
    tokio::time::timeout(left, caught_up(&mut c, target))
        .await
        .map_err(|_| format!("{addr} had not applied its primary's stream up to {target} after {}", crate::units::format_duration(STEP_TIMEOUT)))??;
    Ok(started.elapsed())
}

/// A replication offset (`master_repl_offset`, `slave_repl_offset`) from `INFO replication`.
pub async fn repl_offset(c: &mut Conn, field: &str) -> Result<u64, String> {
    info_replication(c).await?.get(field).and_then(|v| v.parse().ok()).ok_or_else(|| format!("INFO replication shows no {field}"))
}

/// Waits until the replica behind `c` has applied its primary's stream up to `target`, looking
/// every 5 ms; the caller bounds it. "In sync" (link up, no sync in progress) is not enough: after
/// a diskless sync Redis 7.0 streams to the new replica only once it has the replica's REPLCONF
/// ACK, and an ACK that arrives before the primary has seen its sync child exit is spent — the next
/// comes with the replica's once-a-second cron. Measured here under CPU load: 13 of 30 new
/// replicas were not streamed to for ~1 s after "sync finished".
pub async fn caught_up(c: &mut Conn, target: u64) -> Result<(), String> {
    while repl_offset(c, "slave_repl_offset").await? < target {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Waits until every node of the cluster says `cluster_state:ok` and sees every other node
/// connected on the cluster bus with no failure flag (CLUSTER INFO, CLUSTER NODES): a node restarted
/// a moment ago is not yet back on every peer's bus, and a manual failover needs their votes.
pub async fn wait_bus_healthy(spec: &ConnectSpec, nodes: &[HostPort]) -> Result<(), String> {
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
pub async fn wait_until_primary(spec: &ConnectSpec, addr: &HostPort) -> Result<Duration, String> {
    wait_for_role(spec, addr, |r| r.get("role").is_some_and(|v| v == "master"), "primary", STEP_TIMEOUT).await
}

/// Polls `INFO replication` of `addr` until `done` says so, at most `limit`.
pub async fn wait_for_role(
    spec: &ConnectSpec,
    addr: &HostPort,
    done: impl Fn(&HashMap<String, String>) -> bool,
    what: &str,
    limit: Duration,
) -> Result<Duration, String> {
    let check = || async {
        let r = replication(spec, addr).await?;
        if done(&r) { Ok(()) } else { Err(format!("role {}", r.get("role").map_or("?", String::as_str))) }
    };
    poll(limit, check).await.map_err(|last| format!("{addr} not {what} after {} ({last})", crate::units::format_duration(limit)))
}
