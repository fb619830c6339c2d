//! Open-loop pacing: an OS thread releases one token per scheduled operation at its intended
//! start time. Workers take tokens; the n-th token taken in a phase is the n-th scheduled
//! operation, and its latency is measured from that schedule, not from when a worker got to it
//! (no coordinated omission). A dedicated thread with `thread::sleep` wakes within tens of
//! microseconds, where the async timer's millisecond ticks would add up to a millisecond of
//! fake latency to every operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::plan::PlannedPhase;

/// The tokens of one open-loop phase.
pub struct Tokens {
    /// Released, not yet taken.
    pub ready: Semaphore,
    /// Taken so far; the next taker gets operation number `taken`.
    pub taken: AtomicU64,
    /// Released so far.
    pub released: AtomicU64,
}

impl Tokens {
    fn new() -> Tokens {
        Tokens { ready: Semaphore::new(0), taken: AtomicU64::new(0), released: AtomicU64::new(0) }
    }
}

/// Starts the pacer for every phase with a rate; returns the per-phase tokens (`None` for
/// closed-loop phases) and the thread, which ends at the last phase's end or when `stop` is set.
/// With `shard`, only its stripe of each schedule is released (see [`crate::shard`]).
pub fn start(
    phases: &[PlannedPhase],
    shard: Option<crate::shard::Shard>,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> (Vec<Option<Arc<Tokens>>>, std::thread::JoinHandle<()>) {
    let tokens: Vec<Option<Arc<Tokens>>> = phases.iter().map(|p| p.rate.map(|_| Arc::new(Tokens::new()))).collect();
    let work: Vec<(PlannedPhase, Arc<Tokens>)> = phases.iter().zip(&tokens).filter_map(|(p, t)| Some((p.clone(), Arc::clone(t.as_ref()?)))).collect();
    let handle = std::thread::Builder::new()
        .name("redis-test-pacer".into())
        .spawn(move || {
            for (phase, tokens) in work {
                release(&phase, shard, &tokens, t0 + phase.start, &stop);
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
        })
        .expect("the pacer thread starts");
    (tokens, handle)
}

/// Longest single sleep, so that `stop` is noticed promptly.
const MAX_NAP: Duration = Duration::from_millis(20);
/// Most tokens waiting in the semaphore at once (tokio's limit is far above; a schedule that far
/// ahead of the workers is counted in `released` all the same, and shows up as backlog).
const MAX_WAITING: u64 = 1 << 32;
/// After releasing this many tokens at once the rate is very high: pause briefly rather than spin.
const BURST: u64 = 1000;

/// Releases the phase's tokens as they fall due until the phase ends or `stop` is set. Each wake-up
/// computes how many operations are due from the schedule's integral (O(1), whatever the rate), so
/// the thread keeps time and answers `stop` at any rate.
fn release(phase: &PlannedPhase, shard: Option<crate::shard::Shard>, tokens: &Tokens, start: Instant, stop: &AtomicBool) {
    let global_total = phase.total_ops().unwrap_or(0);
    let local = |global: u64| shard.map_or(global, |s| s.local_ops(global));
    let total = local(global_total);
    // This process's operations the schedule has due by now.
    let due_now = || {
        let elapsed = Instant::now().saturating_duration_since(start);
        local(if elapsed >= phase.duration { global_total } else { phase.ops_due(elapsed).unwrap_or(0).min(global_total) })
    };
    let mut released: u64 = 0;
    while !stop.load(Ordering::Relaxed) && released < total {
        let due = due_now();
        if due > released {
            let n = due - released;
            released = due;
            tokens.released.store(released, Ordering::Relaxed);
            let room = MAX_WAITING.saturating_sub(tokens.ready.available_permits() as u64);
            tokens.ready.add_permits(n.min(room) as usize);
            if n >= BURST {
                std::thread::sleep(Duration::from_micros(100));
            }
            continue;
        }
        // Sleep until the next operation is due (or a little while, to look at `stop`).
        let next = phase.op_time(shard.map_or(released, |s| s.global_op(released))).map_or(phase.duration, |t| t);
        let wait = (start + next).saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait.min(MAX_NAP));
        }
    }
    // Stopped (the phase ended, or the run was interrupted) between two wake-ups: what the schedule
    // had due by now still counts as released, so `scheduled` and `backlog` are exact.
    tokens.released.fetch_max(due_now(), Ordering::Relaxed);
}
