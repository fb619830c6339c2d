//! One worker: for each phase, wait for its active window, then pace → pick a workload → run
//! one operation through a pooled connection → record. Runs until its window closes or the run
//! is stopped; an operation in flight when that happens is finished (bounded by its timeouts).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::watch;
use tokio::time::{Instant as TokioInstant, sleep_until};

use super::Shared;
use crate::keys::{Rng, worker_rng};
use crate::metrics::{ErrorClass, Outcome, Outcomes, Sends, Trip};
use crate::resp::Value;
use crate::workload::{RoundTrip, WorkerState};

/// Acknowledged writes of `verify` workloads: (workload, key index) → value digest.
pub type Acks = HashMap<(u16, u64), u64>;

/// Most acknowledged writes remembered per worker; beyond it verification is partial (reported).
pub const MAX_ACKS_PER_WORKER: usize = 2_000_000;

/// What the client knows of the increments of one counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterTally {
    /// Increments acknowledged.
    pub acked: u64,
    /// Increments that failed in a way that may still have applied them (a timeout, or a
    /// connection lost after the command may have been sent).
    pub uncertain: u64,
}

/// Counters of `verify` workloads: (workload, key index, counter field) → tally.
pub type Counters = HashMap<(u16, u64, u32), CounterTally>;

/// Most writes with an unknown outcome remembered per key; past it any value counts as one.
const MAX_UNKNOWN_PER_KEY: usize = 16;

/// The writes to one key that failed as far as the client knew in a way that may still have
/// applied them (a timeout, a connection lost after sending): the server may hold any of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnknownWrites {
    digests: Vec<u64>,
    /// More than [`MAX_UNKNOWN_PER_KEY`] of them: any value may be one.
    overflowed: bool,
}

impl UnknownWrites {
    /// Remembers the write of value digest `digest`.
    pub fn push(&mut self, digest: u64) {
        if self.digests.contains(&digest) {
            return;
        }
        if self.digests.len() < MAX_UNKNOWN_PER_KEY {
            self.digests.push(digest);
        } else {
            self.overflowed = true;
        }
    }

    /// Whether the server holding value digest `digest` may be one of these writes applied.
    pub fn may_hold(&self, digest: u64) -> bool {
        self.overflowed || self.digests.contains(&digest)
    }

    /// Adds another worker's writes to the same key (tiny keyspaces share keys).
    pub fn absorb(&mut self, other: UnknownWrites) {
        for d in other.digests {
            self.push(d);
        }
        self.overflowed |= other.overflowed;
    }
}

/// Writes of `verify` workloads with an unknown outcome: (workload, key index) → their digests.
pub type Unknown = HashMap<(u16, u64), UnknownWrites>;

/// What a worker hands back when it ends.
#[derive(Default)]
pub struct WorkerResult {
    /// Acknowledged writes to verify.
    pub acks: Acks,
    /// Writes whose outcome the client could not know, which the server may hold instead.
    pub unknown: Unknown,
    /// Whether some acknowledged writes were not remembered (memory bound reached).
    pub acks_truncated: bool,
    /// Increments of `verify` workloads' counters.
    pub counters: Counters,
}

/// Runs worker `id` through every phase.
pub async fn run(id: usize, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) -> WorkerResult {
    let mut rng: Rng = worker_rng(shared.seed, id);
    let mut states: Vec<Option<WorkerState>> = shared.workloads.iter().map(|_| None).collect();
    let mut rt = RoundTrip::new();
    // Buffers grow on first use: idle workers (a phase's ramp not reaching them yet) cost nothing.
    let mut replies: Vec<Value> = Vec::new();
    let mut outcomes: Vec<Outcomes> = Vec::new();
    let mut result = WorkerResult::default();
    for (pi, phase) in shared.plan.phases.iter().enumerate() {
        let Some((from, until)) = phase.active_window(id as u32) else { continue };
        let start = shared.t0 + phase.start;
        let (active_from, active_until) = (start + from, start + until);
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = sleep_until(TokioInstant::from_std(active_from)) => {}
            _ = stop.changed() => break,
        }
        let tokens = shared.tokens[pi].clone();
        loop {
            // One clock read serves the end check and, in closed loop, the intended start and
            // the workload's "now" (a clock read is a tenth of a round trip's user time).
            let mut now = Instant::now();
            if *stop.borrow() || now >= active_until {
                break;
            }
            let intended = match &tokens {
                Some(t) => {
                    tokio::select! {
                        permit = t.ready.acquire() => match permit {
                            Ok(p) => p.forget(),
                            Err(_) => break,
                        },
                        _ = sleep_until(TokioInstant::from_std(active_until)) => break,
                        _ = stop.changed() => break,
                    }
                    let n = t.taken.fetch_add(1, Ordering::Relaxed);
                    let n = shared.plan.shard.map_or(n, |s| s.global_op(n));
                    now = Instant::now();
                    phase.op_time(n).map_or(now, |off| start + off)
                }
                None => now,
            };
            let wi = shared.mixes[pi].pick(&mut rng);
            let workload = &shared.workloads[wi];
            let st = states[wi].get_or_insert_with(|| {
                let (writer, writers) = shared.plan.shard.map_or((id, shared.writers), |s| s.writer(id));
                let mut st = workload.worker_state(writer, writers);
                st.shard = shared.plan.shard.map_or((0, 1), |s| (s.index as usize, s.count as usize));
                st
            });
            replies.clear();
            let now_nanos = now.saturating_duration_since(shared.t0).as_nanos() as u64;
            let prepared = workload.prepare(st, &mut rng, &mut rt, now_nanos);
            let slot = if shared.shard_of_slot.is_empty() { None } else { rt.slot() };
            let shard = slot.and_then(|s| shared.shard_of_slot.get(s as usize).copied());
            let intended_ns = intended.saturating_duration_since(shared.t0).as_nanos() as u64;
            shared.tracker.begin(id, wi as u16, shard, intended_ns);
            // Only asked when it matters (replica reads, or a resend after a connection error).
            let replica_read = shared.read_from_replicas && rt.only_reads();
            let mut sends = Sends::default();
            let (mut outcome, mut service_start) = shared.client.round_trip(id, slot, &rt, replica_read, &mut replies, &mut rng, &mut sends).await;
            // Resend after a connection error only where that is safe: reads, or writes when the
            // scenario allows it. Timeouts are not resent: the first send may have been applied.
            let mut retries = 0;
            // redis-rs on a cluster resends by its own policy (mapped from the same settings).
            let resends = !shared.client.resends_itself();
            while resends && outcome == Err(ErrorClass::Connection) && retries + 1 < shared.retry.attempts && (shared.retry.retry_writes || rt.only_reads()) {
                tokio::time::sleep(backoff(&shared.retry, retries, &mut rng)).await;
                retries += 1;
                replies.clear();
                (outcome, service_start) = shared.client.round_trip(id, slot, &rt, replica_read, &mut replies, &mut rng, &mut sends).await;
            }
            if retries > 0 {
                shared.metrics.record_retries(crate::metrics::OpKey { phase: pi as u16, workload: wi as u16, op: prepared.op }, u64::from(retries));
            }
            let done = Instant::now();
            let latency = done.saturating_duration_since(intended).as_micros() as u64;
            let service = done.saturating_duration_since(service_start).as_micros() as u64;
            outcomes.clear();
            let roles = &workload.roles;
            let mut sink = |op: u16, o: Outcome| Outcomes::add(&mut outcomes, op, o, roles[op as usize]);
            match outcome {
                Ok(()) => workload.classify(&prepared, &rt, &replies, &mut sink),
                Err(class) => workload.fail(&prepared, &rt, class, &mut sink),
            }
            let trip = Trip { items: &outcomes, latency_us: latency, service_us: service, cmds: rt.commands(), sends };
            shared.metrics.record_round_trip(pi as u16, wi as u16, trip);
            if let Some((ratio, tx)) = &shared.spans
                && rand::RngExt::random::<f64>(&mut rng) < *ratio
            {
                let end_ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
                let error = outcomes.iter().find_map(|i| match i.outcome {
                    Outcome::Error(c) => Some(c.name()),
                    _ => None,
                });
                // A full queue drops the span: tracing must never slow the load.
                let _ = tx.try_send(crate::live::SpanRecord {
                    operation: workload.ops[prepared.op as usize],
                    workload: wi as u16,
                    start_ns: end_ns.saturating_sub(latency * 1000),
                    end_ns,
                    error,
                });
            }
            let main_outcome = outcomes.iter().find(|i| i.op == prepared.op).map(|i| i.outcome);
            let done_ns = done.saturating_duration_since(shared.t0).as_nanos() as u64;
            match main_outcome {
                Some(Outcome::Error(class)) => shared.tracker.error(id, wi as u16, shard, intended_ns, class.name(), done_ns),
                _ => shared.tracker.success(id, wi as u16, shard, intended_ns, done_ns),
            }
            if let Some((key, field)) = prepared.counter {
                let id = (wi as u16, key, field);
                if result.counters.len() < MAX_ACKS_PER_WORKER || result.counters.contains_key(&id) {
                    let t = result.counters.entry(id).or_default();
                    match main_outcome {
                        Some(Outcome::Ok | Outcome::Miss) => t.acked += 1,
                        // The server may have applied it before the reply was lost.
                        Some(Outcome::Error(ErrorClass::Timeout | ErrorClass::Connection)) => t.uncertain += 1,
                        // Refused by the server, or never sent (no pooled connection): not applied.
                        _ => {}
                    }
                } else {
                    result.acks_truncated = true;
                }
            }
            if let Some((key, digest)) = prepared.ack {
                let id = (wi as u16, key);
                match main_outcome {
                    Some(Outcome::Ok) if result.acks.len() < MAX_ACKS_PER_WORKER || result.acks.contains_key(&id) => {
                        result.acks.insert(id, digest);
                    }
                    // The server may have applied it before the reply was lost: if the key holds
                    // it afterwards, that is not a lost acknowledged write.
                    Some(Outcome::Error(ErrorClass::Timeout | ErrorClass::Connection))
                        if result.unknown.len() < MAX_ACKS_PER_WORKER || result.unknown.contains_key(&id) =>
                    {
                        result.unknown.entry(id).or_default().push(digest);
                    }
                    Some(Outcome::Ok | Outcome::Error(ErrorClass::Timeout | ErrorClass::Connection)) => result.acks_truncated = true,
                    // Refused by the server, or never sent (no pooled connection): not applied.
                    _ => {}
                }
            }
        }
        // Idle until its next phase, or done.
        shared.client.release(id);
    }
    shared.client.release(id);
    result
}

/// The wait before resend number `n + 1`: the retry policy's backoff with this worker's jitter.
fn backoff(r: &crate::scenario::model::Retry, n: u32, rng: &mut Rng) -> std::time::Duration {
    r.backoff(n, rand::RngExt::random::<f64>(rng))
}
