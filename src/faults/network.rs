//! Network faults through the RESP-aware fault proxy in front of the target: latency, bandwidth,
//! blackhole, partition (a local cluster node cut off from its peers too) and reset.

use std::time::Duration;

use super::control::{node_control, text_reply};
use crate::client::native::conn::ConnectSpec;
use crate::deployment::Deployment;
use crate::deployment::proxy::Proxy;
use crate::scenario::model::NetworkFault;

/// `fault` on the proxies of `node` (every node when `None`) for `duration`, lifted afterwards
/// however the fault ends.
pub async fn network(spec: &ConnectSpec, deployment: &Deployment, fault: NetworkFault, node: Option<u32>, duration: Duration) -> Result<String, String> {
    let proxies = proxies(deployment, node)?;
    // Lifted when dropped: also when the fault is cut short or the run is interrupted.
    let _in_force = InForce::set(&proxies, fault);
    // A partition of one local cluster node cuts it off from its peers as well.
    let isolated = match (fault, node) {
        (NetworkFault::Partition, Some(n)) if !deployment.bus_proxies.is_empty() => Some((n as usize, Isolated::cut(&deployment.bus_proxies, n as usize))),
        _ => None,
    };
    tokio::time::sleep(duration).await;
    let mut text = format!("{} on {} for {}", fault.name(), on_proxies(&proxies), crate::units::format_duration(duration));
    if let Some((n, _cut)) = &isolated {
        text.push_str(&format!(" (cut off from the clients and its cluster peers; {})", slots_after_isolation(deployment, spec, *n).await));
    }
    Ok(text)
}

/// Every open connection through the proxies of `node` (every node when `None`) reset.
pub fn reset(deployment: &Deployment, node: Option<u32>) -> Result<String, String> {
    let proxies = proxies(deployment, node)?;
    for p in &proxies {
        p.reset_all();
    }
    Ok(format!("reset every connection to {}", on_proxies(&proxies)))
}

/// The fault proxies of `node` (every node when `None`).
fn proxies(deployment: &Deployment, node: Option<u32>) -> Result<Vec<&Proxy>, String> {
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
fn on_proxies(proxies: &[&Proxy]) -> String {
    match proxies {
        [p] => format!("node {}", p.upstream()),
        _ => format!("{} nodes", proxies.len()),
    }
}

/// A network fault in force on some proxies; lifted when dropped, so no path leaves it on.
struct InForce<'a>(Vec<&'a Proxy>);

impl<'a> InForce<'a> {
    fn set(proxies: &[&'a Proxy], fault: NetworkFault) -> InForce<'a> {
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
    bus: &'a [Proxy],
    node: usize,
}

impl<'a> Isolated<'a> {
    fn cut(bus: &'a [Proxy], node: usize) -> Isolated<'a> {
        for (i, p) in bus.iter().enumerate() {
            if i == node {
                p.set(Some(NetworkFault::Partition));
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
