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
pub fn start(phases: &[PlannedPhase], t0: Instant, stop: Arc<AtomicBool>) -> (Vec<Option<Arc<Tokens>>>, std::thread::JoinHandle<()>) {
    let tokens: Vec<Option<Arc<Tokens>>> = phases.iter().map(|p| p.rate.map(|_| Arc::new(Tokens::new()))).collect();
    let work: Vec<(PlannedPhase, Arc<Tokens>)> = phases.iter().zip(&tokens).filter_map(|(p, t)| Some((p.clone(), Arc::clone(t.as_ref()?)))).collect();
    let handle = std::thread::Builder::new()
        .name("redis-test-pacer".into())
        .spawn(move || {
            for (phase, tokens) in work {
                release(&phase, &tokens, t0 + phase.start, &stop);
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

fn release(phase: &PlannedPhase, tokens: &Tokens, start: Instant, stop: &AtomicBool) {
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(offset) = phase.op_time(n) else { return };
        let due = start + offset;
        let now = Instant::now();
        if due > now {
            std::thread::sleep((due - now).min(MAX_NAP));
            continue;
        }
        // Release everything that is due by now in one go.
        let mut count = 0usize;
        while let Some(t) = phase.op_time(n) {
            if start + t > now {
                break;
            }
            n += 1;
            count += 1;
        }
        tokens.released.fetch_add(count as u64, Ordering::Relaxed);
        tokens.ready.add_permits(count);
    }
}
