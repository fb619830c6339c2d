//! The I/O of `stream` workloads: the consumer group created before the first phase, consumer
//! tasks that read, acknowledge and claim through the client under test for the whole run, and
//! the drain after it — until every acknowledged entry was delivered or trimmed and nothing is
//! pending, or a deadline — that ends with each stream's `pending` and `lag` from XINFO GROUPS.
//! What the entries mean is `workload::stream`'s business.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::Instrument;

use super::Shared;
use crate::client::Client;
use crate::command::RoundTrip;
use crate::keys::Rng;
use crate::metrics::{ErrorClass, OpKey, Outcome, RunMetrics, Sends, Trip};
use crate::resp::Value;
use crate::workload::Workload;
use crate::workload::stream::{self, RECEIVE, Stream};

/// Creates each stream workload's group on each of its streams (`XGROUP CREATE … $ MKSTREAM`)
/// before the first entry is added, so the group sees every entry of the run. A group that
/// exists already (another shard, an earlier run) is used as it is.
pub async fn create_groups(client: &Client, workloads: &[Workload], metrics: &RunMetrics, seed: u64) -> Result<(), String> {
    let mut rng = crate::keys::worker_rng(seed, usize::MAX - 1);
    for w in workloads {
        let Some(s) = w.stream() else { continue };
        for key in &s.keys {
            let mut rt = RoundTrip::new();
            rt.push_custom(crate::command::custom_id("XGROUP|CREATE"), 0, 6).arg(b"XGROUP").arg(b"CREATE").arg(key).arg(&s.group).arg(b"$").arg(b"MKSTREAM");
            rt.set_slot(Some(crate::slots::slot(key)));
            match control(client, &rt, metrics, &mut rng).await {
                Ok(Value::Error(e)) if !e.starts_with("BUSYGROUP") => return Err(format!("stream workload `{}`: XGROUP CREATE: {e}", w.name)),
                Ok(_) => {}
                Err(class) => return Err(format!("stream workload `{}`: XGROUP CREATE failed ({})", w.name, class.name())),
            }
        }
    }
    Ok(())
}

/// One command outside the phases through the client under test, counted with the others.
async fn control(client: &Client, rt: &RoundTrip, metrics: &RunMetrics, rng: &mut Rng) -> Result<Value, ErrorClass> {
    let mut replies = Vec::new();
    let mut sends = Sends::default();
    let (outcome, _) = client.round_trip(usize::MAX / 2, rt.slot(), rt, false, &mut replies, rng, &mut sends).await;
    for _ in 0..sends.times {
        metrics.tally.count(rt.bytes());
    }
    outcome?;
    replies.into_iter().next().ok_or(ErrorClass::Protocol)
}

/// The consumer tasks of a run, and how to stop them.
pub struct Consumers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

/// Starts every stream workload's consumers, and the sampler of the groups' pending and lag.
pub fn start(shared: &Arc<Shared>) -> Consumers {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    for (wi, w) in shared.workloads.iter().enumerate() {
        let Some(s) = w.stream() else { continue };
        for c in 0..s.consumers {
            tasks.push(tokio::spawn(consumer(Arc::clone(shared), wi, Arc::clone(s), c, stopped.clone()).in_current_span()));
        }
    }
    if !tasks.is_empty() {
        tasks.push(tokio::spawn(sample(Arc::clone(shared), stopped).in_current_span()));
    }
    Consumers { tasks, stop }
}

/// Each second of the run, every stream's group as the server sees it (XINFO GROUPS): its
/// pending entries and its lag, for the time series and the exporters.
async fn sample(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::from_std(shared.t0 + Duration::from_secs(1)), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rng = crate::keys::worker_rng(shared.seed, usize::MAX - 3);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        for s in shared.workloads.iter().filter_map(Workload::stream) {
            for (i, key) in s.keys.iter().enumerate() {
                let (pending, lag) = group_info(&shared, s, key, &mut rng).await;
                s.sampled(i, shared.t0.elapsed().as_secs_f64(), pending, lag);
            }
        }
    }
}

impl Consumers {
    /// After the last XADD: lets the consumers catch up until every acknowledged entry was
    /// delivered or trimmed and nothing is pending (or a deadline long enough for a claim), stops
    /// them, and returns every stream's figures.
    pub async fn drain_and_stop(self, shared: &Shared, stopped: &mut super::stopped::Stopped) -> Vec<stream::StreamStats> {
        let streams: Vec<&Arc<Stream>> = shared.workloads.iter().filter_map(Workload::stream).collect();
        let mut out = Vec::new();
        if streams.is_empty() {
            return out;
        }
        let longest_claim = streams.iter().map(|s| s.claim_after).max().unwrap_or_default();
        let deadline = Instant::now() + (longest_claim * 3).max(Duration::from_secs(2));
        let mut rng = crate::keys::worker_rng(shared.seed, usize::MAX - 2);
        loop {
            let mut settled = true;
            for s in &streams {
                for (i, key) in s.keys.iter().enumerate() {
                    if let Some((first, last)) = bounds(shared, key, &mut rng).await {
                        s.trimmed_before(i, first, last);
                    }
                    let (pending, _) = group_info(shared, s, key, &mut rng).await;
                    settled &= pending == 0;
                }
                settled &= s.outstanding() == 0;
            }
            if settled || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = self.stop.send(true);
        for t in self.tasks {
            stopped.join("stream consumer", t).await;
        }
        for s in streams {
            let mut ends = Vec::new();
            for (i, key) in s.keys.iter().enumerate() {
                if let Some((first, last)) = bounds(shared, key, &mut rng).await {
                    s.trimmed_before(i, first, last);
                }
                let (pending, lag) = group_info(shared, s, key, &mut rng).await;
                // The series ends with the group as it ended.
                s.sampled(i, shared.t0.elapsed().as_secs_f64(), pending, lag);
                ends.push((pending, lag));
            }
            out.extend(s.results(&ends));
        }
        out
    }
}

/// The stream's first entry id (`None` when empty) and its last generated id (XINFO STREAM).
async fn bounds(shared: &Shared, key: &[u8], rng: &mut Rng) -> Option<(Option<stream::EntryId>, stream::EntryId)> {
    let mut rt = RoundTrip::new();
    rt.push_custom(crate::command::custom_id("XINFO|STREAM"), 0, 3).arg(b"XINFO").arg(b"STREAM").arg(key);
    rt.set_slot(Some(crate::slots::slot(key)));
    let info = control(&shared.client, &rt, &shared.metrics, rng).await.ok()?;
    let last = stream::parse_id(stream::info_field(&info, "last-generated-id")?.as_bytes()?)?;
    let first = match stream::info_field(&info, "first-entry") {
        Some(Value::Array(e)) => e.first().and_then(Value::as_bytes).and_then(stream::parse_id),
        _ => None,
    };
    Some((first, last))
}

/// The group's (pending, lag) on `key` (XINFO GROUPS); zeros when it cannot be read.
async fn group_info(shared: &Shared, s: &Stream, key: &[u8], rng: &mut Rng) -> (u64, u64) {
    let mut rt = RoundTrip::new();
    rt.push_custom(crate::command::custom_id("XINFO|GROUPS"), 0, 3).arg(b"XINFO").arg(b"GROUPS").arg(key);
    rt.set_slot(Some(crate::slots::slot(key)));
    let Ok(Value::Array(groups)) = control(&shared.client, &rt, &shared.metrics, rng).await else { return (0, 0) };
    for g in &groups {
        if stream::info_field(g, "name").and_then(Value::as_bytes) == Some(s.group.as_slice()) {
            let int = |name: &str| match stream::info_field(g, name) {
                Some(Value::Int(n)) => (*n).max(0) as u64,
                _ => 0,
            };
            return (int("pending"), int("lag"));
        }
    }
    (0, 0)
}

/// One consumer: reads new entries of its stream (XREADGROUP … BLOCK), acknowledges them, and
/// every half `claim_after` claims what has been pending longer (XAUTOCLAIM), until stopped.
async fn consumer(shared: Arc<Shared>, wi: usize, s: Arc<Stream>, c: usize, mut stop: watch::Receiver<bool>) {
    let stream = c % s.keys.len();
    let shard = shared.plan.shard.map_or(0, |x| x.index);
    let name = format!("rt-{shard}-{c}").into_bytes();
    // Consumers take pooled connections as the workers do, from the pools after theirs.
    let worker = shared.plan.max_workers() as usize + c;
    let mut rng = crate::keys::worker_rng(shared.seed, worker);
    let mut rt = RoundTrip::new();
    let mut ack_rt = RoundTrip::new();
    let mut replies: Vec<Value> = Vec::new();
    let mut last_claim = Instant::now();
    let mut claim_from: Vec<u8> = b"0-0".to_vec();
    let mut failures: u32 = 0;
    while !*stop.borrow() {
        let claiming = last_claim.elapsed() >= s.claim_after / 2;
        if claiming {
            s.claim(&mut rt, stream, &name, &claim_from);
        } else {
            s.read(&mut rt, stream, &name);
        }
        let outcome = send(&shared, wi, worker, &rt, &mut replies, &mut rng).await;
        let reply = match outcome {
            Ok(()) => replies.first().filter(|v| !matches!(v, Value::Error(_))),
            Err(_) => None,
        };
        let Some(reply) = reply else {
            let failed = match (outcome, replies.first()) {
                (Err(class), _) => Outcome::Error(class),
                (Ok(()), Some(v)) => Outcome::server_error(v.error_class().unwrap_or("ERR")),
                _ => Outcome::Error(ErrorClass::Protocol),
            };
            let (_, phase) = clock(&shared);
            shared.metrics.record_delivery(OpKey { phase, workload: wi as u16, op: RECEIVE }, failed, None);
            let pause = shared.retry.backoff(failures, rand::RngExt::random::<f64>(&mut rng));
            failures = failures.saturating_add(1);
            tokio::select! {
                _ = tokio::time::sleep(pause) => continue,
                _ = stop.changed() => break,
            }
        };
        failures = 0;
        let (got, deleted) = if claiming {
            match stream::claimed(reply) {
                Some(c) => {
                    // A whole pass over the pending entries ends where it began.
                    if c.next == b"0-0" {
                        last_claim = Instant::now();
                    }
                    claim_from = c.next;
                    (c.entries, c.deleted)
                }
                None => {
                    last_claim = Instant::now();
                    (Vec::new(), Vec::new())
                }
            }
        } else {
            (stream::entries(reply), Vec::new())
        };
        if got.is_empty() && deleted.is_empty() {
            continue;
        }
        let (now, phase) = clock(&shared);
        for latency in s.received(stream, &got, claiming, &deleted, now) {
            shared.metrics.record_delivery(OpKey { phase, workload: wi as u16, op: RECEIVE }, Outcome::Ok, Some(latency));
        }
        if got.is_empty() {
            continue;
        }
        let ids: Vec<Vec<u8>> = got.into_iter().map(|(id, _, _)| id).collect();
        if !s.process_time.is_zero() {
            // The consumer's work on the batch; a connection lost meanwhile fails the XACK and
            // leaves the entries pending, as a consumer that died would.
            tokio::time::sleep(s.process_time).await;
        }
        s.ack(&mut ack_rt, stream, &ids);
        let mut ack_replies = Vec::new();
        // An acknowledgement that fails leaves the entries pending: a claim delivers them again.
        if send(&shared, wi, worker, &ack_rt, &mut ack_replies, &mut rng).await.is_ok()
            && let Some(Value::Int(n)) = ack_replies.first()
        {
            s.acknowledged(stream, (*n).max(0) as u64);
        }
    }
}

/// Sends a consumer's round trip through the client under test; its commands are counted in the
/// phase they went out in.
async fn send(shared: &Shared, wi: usize, worker: usize, rt: &RoundTrip, replies: &mut Vec<Value>, rng: &mut Rng) -> Result<(), ErrorClass> {
    replies.clear();
    let mut sends = Sends::default();
    let (outcome, _) = shared.client.round_trip(worker, rt.slot(), rt, false, replies, rng, &mut sends).await;
    let (_, phase) = clock(shared);
    shared.metrics.record_round_trip(phase, wi as u16, Trip { items: &[], latency_us: 0, service_us: 0, cmds: rt.commands(), sends });
    outcome
}

/// Nanoseconds since the run's start, and the phase then (the last one after the plan).
fn clock(shared: &Shared) -> (u64, u16) {
    let now = shared.t0.elapsed();
    let phase = shared.plan.phases.iter().position(|p| now < p.end()).unwrap_or(shared.plan.phases.len().saturating_sub(1));
    (now.as_nanos() as u64, phase as u16)
}
