//! `pubsub`: workers PUBLISH through the pool; subscribers hold their own connections for the whole
//! run (SUBSCRIBE to every channel, or PSUBSCRIBE to a pattern). Every message carries its
//! publisher, sequence number and send time, so each subscriber can count what it received, lost,
//! saw twice or out of order, and the end-to-end delivery latency is recorded as RECEIVE.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use tokio::sync::{Notify, watch};

use super::{Command, Prepared, RoundTrip, WorkerState};
use crate::client::native::conn::{Conn, ConnectSpec};
use crate::keys::{Rng, push_decimal};
use crate::metrics::{ErrorClass, OpKey, Outcome, RunMetrics};
use crate::resp::{self, Value};
use crate::scenario::raw::PubsubSpec;

/// Operation id of deliveries (after PUBLISH).
const RECEIVE: u16 = 1;
const MAGIC: &[u8] = b"rtps:";

/// What one subscriber saw.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SubscriberStats {
    /// Subscriber number within its workload.
    pub subscriber: usize,
    /// Messages received (duplicates included).
    pub received: u64,
    /// Messages published (and acknowledged) that never arrived.
    pub lost: u64,
    /// Messages received more than once.
    pub duplicates: u64,
    /// Messages that arrived after a later one from the same publisher.
    pub out_of_order: u64,
    /// Times the subscriber had to reconnect.
    pub reconnects: u64,
}

/// Shared state of a pubsub workload.
pub struct PubSub {
    channels: Vec<Vec<u8>>,
    pattern: Option<Vec<u8>>,
    /// Number of subscriber connections.
    pub subscribers: usize,
    message_size: usize,
    workload: u16,
    /// Per channel: PUBLISH acknowledged, PUBLISH failed.
    channel_counts: Vec<(AtomicU64, AtomicU64)>,
    /// Per subscriber: messages received.
    received: Vec<AtomicU64>,
    distinct: Vec<AtomicU64>,
    results: Mutex<Vec<SubscriberStats>>,
    draining: AtomicBool,
    progress: Notify,
}

impl PubSub {
    /// From the scenario's options; `prefix` namespaces the channels like keys.
    pub fn new(spec: &PubsubSpec, prefix: &str, workload: usize) -> PubSub {
        let channels = (0..spec.channels).map(|i| format!("{prefix}ch:{i}").into_bytes()).collect();
        PubSub {
            channels,
            pattern: spec.pattern.then(|| format!("{prefix}ch:*").into_bytes()),
            subscribers: spec.subscribers as usize,
            message_size: spec.message_size.0 as usize,
            workload: workload as u16,
            channel_counts: (0..spec.channels).map(|_| (AtomicU64::new(0), AtomicU64::new(0))).collect(),
            received: (0..spec.subscribers).map(|_| AtomicU64::new(0)).collect(),
            distinct: (0..spec.subscribers).map(|_| AtomicU64::new(0)).collect(),
            results: Mutex::new(Vec::new()),
            draining: AtomicBool::new(false),
            progress: Notify::new(),
        }
    }

    /// Writes a PUBLISH of the next message; `now_nanos` is the send time on the run clock.
    pub fn prepare(&self, st: &mut WorkerState, rng: &mut Rng, rt: &mut RoundTrip, now_nanos: u64) -> Prepared {
        let channel = rng.random_range(0..self.channels.len());
        let ch = &self.channels[channel];
        st.seq += 1;
        let payload = &mut st.value;
        payload.clear();
        payload.extend_from_slice(MAGIC);
        push_decimal(payload, st.worker as u64);
        payload.push(b':');
        push_decimal(payload, st.seq);
        payload.push(b':');
        push_decimal(payload, now_nanos);
        payload.push(b':');
        while payload.len() < self.message_size {
            payload.push(b'x');
        }
        rt.push(Command::Publish, 0, 2).arg(ch).arg(payload);
        Prepared { op: 0, ack: None, counter: None, tag: channel as u32, seq: 0 }
    }

    /// Counts a PUBLISH on `channel`, acknowledged or failed.
    pub fn published(&self, channel: usize, ok: bool) {
        if let Some((acked, failed)) = self.channel_counts.get(channel) {
            if ok { acked } else { failed }.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Channel names with (acknowledged, failed) PUBLISH counts, for exporters.
    pub fn channel_counts(&self) -> Vec<(String, u64, u64)> {
        self.channels
            .iter()
            .zip(&self.channel_counts)
            .map(|(name, (a, f))| (String::from_utf8_lossy(name).into_owned(), a.load(Ordering::Relaxed), f.load(Ordering::Relaxed)))
            .collect()
    }

    /// Messages received so far, per subscriber.
    pub fn received_counts(&self) -> Vec<u64> {
        self.received.iter().map(|r| r.load(Ordering::Relaxed)).collect()
    }

    fn total_published(&self) -> u64 {
        self.channel_counts.iter().map(|(acked, _)| acked.load(Ordering::Relaxed)).sum()
    }

    /// After publishing stops: waits until every subscriber has every acknowledged message, or `limit`.
    pub async fn drain(&self, limit: Duration) {
        self.draining.store(true, Ordering::SeqCst);
        let want = self.total_published();
        let _ = tokio::time::timeout(limit, async {
            loop {
                let notified = self.progress.notified();
                if self.distinct.iter().all(|d| d.load(Ordering::Relaxed) >= want) {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }

    /// Per-subscriber results, with losses computed against acknowledged publishes.
    pub fn results(&self) -> Vec<SubscriberStats> {
        let published = self.total_published();
        let mut out = self.results.lock().expect("pubsub lock").clone();
        for s in &mut out {
            s.lost = published.saturating_sub(s.received - s.duplicates);
        }
        out.sort_by_key(|s| s.subscriber);
        out
    }

    fn subscribe_command(&self) -> (Vec<u8>, usize) {
        let mut buf = Vec::new();
        match &self.pattern {
            Some(p) => {
                resp::command(&mut buf, &[b"PSUBSCRIBE", p]);
                (buf, 1)
            }
            None => {
                let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
                args.extend(self.channels.iter().map(Vec::as_slice));
                resp::command(&mut buf, &args);
                (buf, self.channels.len())
            }
        }
    }
}

/// Where a subscriber reports to.
pub struct SubscriberCtx {
    /// Run measurements.
    pub metrics: Arc<RunMetrics>,
    /// Nanoseconds since the run clock's start, and the phase index at that moment.
    pub clock: Arc<dyn Fn() -> (u64, u16) + Send + Sync>,
    /// Becomes true when the run is over.
    pub stop: watch::Receiver<bool>,
    /// Reconnects back off per this policy (exponential with jitter) while connecting fails.
    pub retry: crate::scenario::model::Retry,
    /// Cluster targets: every node; after a lost connection the subscriber tries the next one
    /// (cluster pub/sub reaches every node), so a dead node does not silence it. Empty otherwise.
    pub nodes: Vec<crate::scenario::model::HostPort>,
}

/// How a subscriber connects: the native engine with these settings, or redis-rs's pub/sub.
pub enum SubscribeVia {
    /// Our own connection (its address replaced by the subscriber's node on clusters).
    Native(ConnectSpec),
    /// redis-rs's `aio::PubSub`.
    RedisRs(crate::client::redis_rs::PubsubSource),
}

/// An open subscription.
enum Feed {
    Native(Conn),
    RedisRs(redis::aio::PubSubStream),
}

impl Feed {
    /// The next message as the wire shows it; `None` once the connection is gone.
    async fn next(&mut self) -> Option<Value> {
        match self {
            Feed::Native(c) => c.read_value().await.ok(),
            Feed::RedisRs(stream) => {
                let msg = futures_util::StreamExt::next(stream).await?;
                let channel = msg.get_channel_name().as_bytes().to_vec();
                Some(Value::Push(vec![Value::Bulk(b"message".to_vec()), Value::Bulk(channel), Value::Bulk(msg.get_payload_bytes().to_vec())]))
            }
        }
    }
}

impl SubscribeVia {
    /// Connects to `node` (an index into `nodes` on clusters) and subscribes.
    async fn open(&self, ps: &PubSub, node: usize, nodes: &[crate::scenario::model::HostPort], metrics: &RunMetrics) -> Result<Feed, String> {
        let connecting = std::time::Instant::now();
        let feed = match self {
            SubscribeVia::Native(spec) => {
                let mut spec = spec.clone();
                if !nodes.is_empty() {
                    spec.addr = nodes[node % nodes.len()].clone();
                }
                let (cmd, confirmations) = ps.subscribe_command();
                let mut c = Conn::connect(&spec).await.map_err(|e| e.to_string())?;
                c.send_only(&cmd).await.map_err(|e| e.to_string())?;
                for _ in 0..confirmations {
                    c.read_value().await.map_err(|e| e.to_string())?;
                }
                Feed::Native(c)
            }
            SubscribeVia::RedisRs(source) => Feed::RedisRs(source.subscribe(node, &ps.channels, ps.pattern.as_deref()).await?),
        };
        // Subscriber connections are connections too: counted with the pools' (opened, failed).
        metrics.conns.opened(connecting.elapsed());
        Ok(feed)
    }
}

/// Runs one subscriber until `stop`; `ready` is sent once the subscription is confirmed.
pub async fn subscriber(ps: Arc<PubSub>, id: usize, via: SubscribeVia, mut ctx: SubscriberCtx, ready: tokio::sync::oneshot::Sender<Result<(), String>>) {
    let mut stats = SubscriberStats { subscriber: id, ..Default::default() };
    // Order is kept per publisher and channel: on a cluster, channels travel different paths.
    let mut last: HashMap<(u64, Vec<u8>), u64> = HashMap::new();
    let mut ready = Some(ready);
    // Connection attempts failed in a row; resets once subscribed again.
    let mut failures: u32 = 0;
    // Subscribers start on different nodes, and move on to the next one when theirs fails.
    let mut node = id;
    'connect: while !*ctx.stop.borrow() {
        let mut feed = match via.open(&ps, node, &ctx.nodes, &ctx.metrics).await {
            Ok(f) => f,
            Err(e) => {
                ctx.metrics.conns.connect_errors.fetch_add(1, Ordering::Relaxed);
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(e));
                    return;
                }
                stats.reconnects += 1;
                node += 1;
                let pause = ctx.retry.backoff(failures, crate::scenario::model::unit_from(((id as u64) << 32) | u64::from(failures)));
                failures = failures.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => continue 'connect,
                    _ = ctx.stop.changed() => break 'connect,
                }
            }
        };
        failures = 0;
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        loop {
            let value = tokio::select! {
                v = feed.next() => v,
                _ = ctx.stop.changed() => break 'connect,
            };
            match value {
                Some(v) => {
                    if let Some((channel, payload)) = message_payload(&v) {
                        ps_receive(&ps, id, channel, payload, &mut stats, &mut last, &ctx);
                    }
                }
                None => {
                    let (_, phase) = (ctx.clock)();
                    ctx.metrics.record_delivery(OpKey { phase, workload: ps.workload, op: RECEIVE }, Outcome::Error(ErrorClass::Connection), None);
                    ctx.metrics.conns.dropped.fetch_add(1, Ordering::Relaxed);
                    stats.reconnects += 1;
                    node += 1;
                    continue 'connect;
                }
            }
        }
    }
    ps.results.lock().expect("pubsub lock").push(stats);
}

fn ps_receive(
    ps: &PubSub,
    id: usize,
    channel: &[u8],
    payload: &[u8],
    stats: &mut SubscriberStats,
    last: &mut HashMap<(u64, Vec<u8>), u64>,
    ctx: &SubscriberCtx,
) {
    let Some((publisher, seq, sent)) = parse_header(payload) else { return };
    let (now, phase) = (ctx.clock)();
    let latency_us = now.saturating_sub(sent) / 1_000;
    ctx.metrics.record_delivery(OpKey { phase, workload: ps.workload, op: RECEIVE }, Outcome::Ok, Some(latency_us));
    stats.received += 1;
    ps.received[id].fetch_add(1, Ordering::Relaxed);
    let prev = match last.get_mut(&(publisher, channel.to_vec())) {
        Some(p) => p,
        None => last.entry((publisher, channel.to_vec())).or_insert(0),
    };
    if seq == *prev {
        stats.duplicates += 1;
    } else if seq < *prev {
        stats.out_of_order += 1;
        ps.distinct[id].fetch_add(1, Ordering::Relaxed);
    } else {
        *prev = seq;
        ps.distinct[id].fetch_add(1, Ordering::Relaxed);
    }
    if ps.draining.load(Ordering::Relaxed) {
        ps.progress.notify_waiters();
    }
}

/// The channel and payload of a `message` / `pmessage` push (RESP2 array or RESP3 push).
fn message_payload(v: &Value) -> Option<(&[u8], &[u8])> {
    let items = match v {
        Value::Array(items) | Value::Push(items) => items,
        _ => return None,
    };
    match items.first()?.as_bytes()? {
        b"message" => Some((items.get(1)?.as_bytes()?, items.get(2)?.as_bytes()?)),
        b"pmessage" => Some((items.get(2)?.as_bytes()?, items.get(3)?.as_bytes()?)),
        _ => None,
    }
}

/// Reads `rtps:<publisher>:<seq>:<sent_nanos>:`.
pub fn parse_header(payload: &[u8]) -> Option<(u64, u64, u64)> {
    let rest = payload.strip_prefix(MAGIC)?;
    let mut parts = rest.splitn(4, |b| *b == b':');
    let mut num = || std::str::from_utf8(parts.next()?).ok()?.parse::<u64>().ok();
    Some((num()?, num()?, num()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_messages_are_recognised() {
        let spec =
            PubsubSpec { weight: 1.0, keyspace: Default::default(), channels: 2, subscribers: 1, pattern: false, message_size: crate::units::ByteSize(64) };
        let ps = PubSub::new(&spec, "p:", 0);
        let ws = crate::scenario::model::Keyspace { prefix: "p:".into(), keys: 1, distribution: Default::default(), value_size: (1, 1), ttl: None };
        let mut st = WorkerState::new(&ws, 3, 4);
        let mut rt = RoundTrip::new();
        ps.prepare(&mut st, &mut crate::keys::worker_rng(1, 3), &mut rt, 123_456);
        assert_eq!(rt.args(0)[0], b"PUBLISH");
        assert_eq!(rt.args(0)[2], st.value.as_slice());
        assert_eq!(st.value.len(), 64);
        assert_eq!(parse_header(&st.value), Some((3, 1, 123_456)));
        let msg = Value::Array(vec![Value::Bulk(b"message".to_vec()), Value::Bulk(b"p:ch:0".to_vec()), Value::Bulk(st.value.clone())]);
        assert_eq!(message_payload(&msg), Some((&b"p:ch:0"[..], st.value.as_slice())));
        assert_eq!(message_payload(&Value::Array(vec![Value::Bulk(b"subscribe".to_vec())])), None);
    }
}
