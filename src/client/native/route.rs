//! How the native engine sends a round trip where it belongs: outside a cluster one send on a
//! pooled connection; in a cluster to the node serving its slot, following MOVED, ASK, TRYAGAIN
//! and CLUSTERDOWN only when no write of the round trip was applied, and asking for the slot map
//! to be read again when it changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::ConnError;
use super::pool::{Pools, Route};
use crate::command::RoundTrip;
use crate::keys::Rng;
use crate::metrics::{ErrorClass, RunMetrics, Sends};
use crate::resp::Value;

/// The native engine as the executor drives it: its pools and the settings a round trip needs.
pub struct Native {
    /// Pools of connections (per node on a cluster).
    pub pools: Pools,
    /// Where redirects are counted.
    pub metrics: Arc<RunMetrics>,
    /// How long one send may wait for its replies.
    pub command_timeout: Duration,
    /// The backoff between redirects that ask to wait (TRYAGAIN, CLUSTERDOWN).
    pub retry: crate::scenario::model::Retry,
}

/// Most cluster redirects (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) followed for one round trip.
const MAX_REDIRECTS: u32 = 5;

/// Sends a round trip where it belongs. Outside a cluster that is one send. In a cluster it goes to
/// the node serving its slot (a replica for reads when the scenario asks for that), and when every
/// reply says the operation was not applied there — MOVED, ASK, TRYAGAIN, CLUSTERDOWN, or a
/// transaction aborted by one of them — it is sent again where the reply points, after a backoff
/// for TRYAGAIN and CLUSTERDOWN, at most [`MAX_REDIRECTS`] times. Each such reply is counted by
/// class; MOVED, CLUSTERDOWN and connection errors ask for the slot map to be read again. Every
/// send is counted in `sends`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn routed_round_trip(
    shared: &Native,
    worker: usize,
    slot: Option<u16>,
    rt: &RoundTrip,
    replica_read: bool,
    replies: &mut Vec<Value>,
    rng: &mut Rng,
    sends: &mut Sends,
) -> (Result<(), ErrorClass>, Instant) {
    let expect = rt.replies();
    if !shared.pools.is_cluster() {
        let route = if replica_read { Route::Replica } else { Route::Any };
        return round_trip(shared, worker, &route, rt.bytes(), expect, replies, &mut sends.times).await;
    }
    let is_read = |i: usize| !rt.is_transaction() && rt.commands().get(i).is_some_and(|c| c.command.is_read());
    let mut route = match slot {
        Some(slot) => Route::Slot { slot, replica: replica_read },
        None => Route::Any,
    };
    let mut asking: Vec<u8> = Vec::new();
    let mut redirects = 0;
    loop {
        let (outcome, sent) = if asking.is_empty() {
            round_trip(shared, worker, &route, rt.bytes(), expect, replies, &mut sends.times).await
        } else {
            let before = sends.times;
            let r = round_trip(shared, worker, &route, &asking, expect + 1, replies, &mut sends.times).await;
            sends.asking += sends.times - before;
            if r.0.is_ok() && !replies.is_empty() {
                replies.remove(0);
            }
            r
        };
        if outcome.is_err() {
            // The node may be gone or stalled: a failover will change the slot map.
            shared.pools.request_refresh();
            return (outcome, sent);
        }
        let Some(class) = not_applied(replies, &is_read) else { return (outcome, sent) };
        shared.metrics.conns.cluster_reply(class);
        if redirects >= MAX_REDIRECTS {
            return (outcome, sent);
        }
        redirects += 1;
        let first = replies.iter().find_map(|v| match v {
            Value::Error(e) if e.starts_with(class) => Some(e.clone()),
            _ => None,
        });
        asking.clear();
        match class {
            "MOVED" | "ASK" => {
                let Some(r) = first.and_then(|e| super::cluster::Redirect::parse(&e, "127.0.0.1")) else { return (outcome, sent) };
                if r.ask {
                    crate::resp::command(&mut asking, &[b"ASKING"]);
                    asking.extend_from_slice(rt.bytes());
                } else {
                    shared.pools.request_refresh();
                }
                route = Route::Node(r.to);
            }
            _ => {
                if class == "CLUSTERDOWN" {
                    shared.pools.request_refresh();
                }
                tokio::time::sleep(shared.retry.backoff(redirects - 1, rand::RngExt::random::<f64>(rng))).await;
            }
        }
        replies.clear();
    }
}

/// The cluster reply class when a round trip's replies show that no write was applied: every reply
/// is a MOVED/ASK/TRYAGAIN/CLUSTERDOWN error or the reply of a read (`is_read(i)` for reply `i`;
/// reading twice changes nothing), or EXEC was aborted because a queued command got one. Only then
/// may the whole round trip be sent again. A batch whose reads ran on a primary that was paused for
/// writes during a failover, and whose writes then got MOVED, is such a round trip.
fn not_applied(replies: &[Value], is_read: &dyn Fn(usize) -> bool) -> Option<&'static str> {
    const CLASSES: [&str; 4] = ["MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"];
    let class_of = |v: &Value| v.error_class().and_then(|c| CLASSES.iter().copied().find(|k| *k == c));
    let first = replies.iter().find_map(class_of)?;
    let aborted = replies.last().is_some_and(|v| v.error_class() == Some("EXECABORT"));
    (aborted || replies.iter().enumerate().all(|(i, v)| class_of(v).is_some() || is_read(i))).then_some(first)
}

/// Checks out a connection on `route`, sends the bytes and reads `expect` replies; counts the send
/// in `sends` once a connection was had. Returns the outcome and when the command was actually
/// sent (for service time).
async fn round_trip(
    shared: &Native,
    worker: usize,
    route: &Route,
    buf: &[u8],
    expect: usize,
    replies: &mut Vec<Value>,
    sends: &mut u64,
) -> (Result<(), ErrorClass>, Instant) {
    let mut conn = match shared.pools.take_kept(worker, route) {
        Some(c) => c,
        None => match shared.pools.get(worker, route).await {
            Ok(c) => c,
            Err(class) => return (Err(class), Instant::now()),
        },
    };
    let sent = Instant::now();
    *sends += 1;
    let r = if conn.reads_notices() {
        // The deadline may move while the replies are awaited (a maintenance window opens).
        match conn.send_round_trip_relaxed(buf, expect, replies, shared.command_timeout).await {
            Ok(()) => Ok(()),
            Err(ConnError::Timeout) => Err(ErrorClass::Timeout),
            Err(ConnError::Protocol(_)) => Err(ErrorClass::Protocol),
            Err(_) => Err(ErrorClass::Connection),
        }
    } else {
        fixed_deadline(shared, &mut conn, buf, expect, replies).await
    };
    shared.pools.keep(worker, route, conn);
    (r, sent)
}

/// A round trip within the configured command timeout (the common case: one timer per send).
async fn fixed_deadline(shared: &Native, conn: &mut super::pool::Pooled, buf: &[u8], expect: usize, replies: &mut Vec<Value>) -> Result<(), ErrorClass> {
    match tokio::time::timeout(shared.command_timeout, conn.send_round_trip(buf, expect, replies)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(ConnError::Timeout)) => Err(ErrorClass::Timeout),
        Ok(Err(ConnError::Protocol(_))) => Err(ErrorClass::Protocol),
        Ok(Err(_)) => Err(ErrorClass::Connection),
        Err(_) => {
            // A late reply would answer the next command on this connection: drop it.
            conn.mark_broken();
            Err(ErrorClass::Timeout)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::not_applied;
    use crate::resp::Value;

    #[test]
    fn redirects_are_followed_only_when_nothing_was_applied() {
        let moved = || Value::Error("MOVED 1 127.0.0.1:7000".into());
        let writes = |_: usize| false;
        assert_eq!(not_applied(&[moved(), moved()], &writes), Some("MOVED"));
        assert_eq!(not_applied(&[Value::Error("TRYAGAIN later".into())], &writes), Some("TRYAGAIN"));
        // One write of the batch was applied: resending would apply it twice.
        assert_eq!(not_applied(&[Value::Status("OK".into()), Value::Error("ASK 1 127.0.0.1:7000".into())], &writes), None);
        // The reply that got through was a read's: reading again is harmless.
        assert_eq!(not_applied(&[Value::Bulk(b"v".to_vec()), moved()], &|i| i == 0), Some("MOVED"));
        // MULTI, a queued command redirected, EXEC aborted: nothing applied.
        assert_eq!(not_applied(&[Value::Status("OK".into()), moved(), Value::Error("EXECABORT Transaction discarded".into())], &writes), Some("MOVED"));
        assert_eq!(not_applied(&[Value::Status("OK".into())], &writes), None);
        assert_eq!(not_applied(&[Value::Error("WRONGTYPE x".into())], &writes), None);
    }
}
