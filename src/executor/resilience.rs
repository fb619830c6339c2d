//! What resilience verdicts are computed from: per workload (and per cluster shard) the moment of
//! the last success (so every gap between two successes longer than [`GAP_MIN`] is caught exactly,
//! at the cost of one atomic swap per success), errors with their time and class, successes per
//! 100 ms slot, and operations in flight.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Shorter pauses between successes are ordinary jitter, not an outage.
pub const GAP_MIN: Duration = Duration::from_millis(100);
/// Width of a throughput slot.
pub const SLOT: Duration = Duration::from_millis(100);
/// Most error events kept (an outage can fail a great many operations; counts stay exact elsewhere).
const MAX_ERROR_EVENTS: usize = 100_000;

/// A stretch without a successful operation of one workload or shard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    /// Stream: a workload index, or [`Tracker::shard_stream`] of a cluster shard.
    pub workload: u16,
    /// Last success before the gap, ns since the run's start.
    pub from_ns: u64,
    /// First success after it (or the end of the run).
    pub to_ns: u64,
}

/// Shared by the workers; read after the run.
pub struct Tracker {
    last_success: Vec<AtomicU64>,
    gaps: Mutex<Vec<Gap>>,
    errors: Mutex<Vec<(u64, u16, &'static str)>>,
    slots: Vec<AtomicU64>,
    /// Operations sent and not yet answered.
    pub in_flight: AtomicI64,
    workloads: usize,
}

impl Tracker {
    /// For `workloads` workloads and `shards` cluster shards (0 outside a cluster) over a run of `length`.
    pub fn new(workloads: usize, shards: usize, length: Duration) -> Tracker {
        let slots = (length.as_nanos() / SLOT.as_nanos()) as usize + 20;
        Tracker {
            workloads,
            last_success: (0..workloads + shards).map(|_| AtomicU64::new(0)).collect(),
            gaps: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
            slots: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            in_flight: AtomicI64::new(0),
        }
    }

    /// The gap stream of cluster shard `shard`.
    pub fn shard_stream(&self, shard: u16) -> u16 {
        self.workloads as u16 + shard
    }

    /// A successful operation of workload `w` (on cluster shard `shard`) completed at `now_ns`
    /// (since the run's start).
    pub fn success(&self, w: u16, shard: Option<u16>, now_ns: u64) {
        if let Some(s) = self.slots.get((now_ns / SLOT.as_nanos() as u64) as usize) {
            s.fetch_add(1, Ordering::Relaxed);
        }
        self.stream_success(w, now_ns);
        if let Some(shard) = shard {
            self.stream_success(self.shard_stream(shard), now_ns);
        }
    }

    fn stream_success(&self, w: u16, now_ns: u64) {
        let Some(last) = self.last_success.get(w as usize) else { return };
        // Stored as ns + 1 so that 0 means "no success yet".
        let prev = last.fetch_max(now_ns + 1, Ordering::Relaxed);
        if prev > 0 && now_ns + 1 > prev && now_ns + 1 - prev > GAP_MIN.as_nanos() as u64 {
            self.gaps.lock().expect("gaps lock").push(Gap { workload: w, from_ns: prev - 1, to_ns: now_ns });
        }
    }

    /// A failed operation of workload `w` at `now_ns`.
    pub fn error(&self, w: u16, class: &'static str, now_ns: u64) {
        let mut e = self.errors.lock().expect("errors lock");
        if e.len() < MAX_ERROR_EVENTS {
            e.push((now_ns, w, class));
        }
    }

    /// Closes gaps still open at the end of the run (a workload that never recovered).
    pub fn finish(&self, end_ns: u64) {
        for (w, last) in self.last_success.iter().enumerate() {
            let l = last.load(Ordering::Relaxed);
            if l > 0 && end_ns + 1 > l && end_ns + 1 - l > GAP_MIN.as_nanos() as u64 {
                self.gaps.lock().expect("gaps lock").push(Gap { workload: w as u16, from_ns: l - 1, to_ns: end_ns });
            }
        }
    }

    /// Every gap found.
    pub fn gaps(&self) -> Vec<Gap> {
        self.gaps.lock().expect("gaps lock").clone()
    }

    /// Error events in `[from, to)` ns: the first one's time and counts by class.
    pub fn errors_between(&self, from: u64, to: u64) -> (Option<u64>, BTreeMap<String, u64>) {
        let e = self.errors.lock().expect("errors lock");
        let mut first = None;
        let mut by_class = BTreeMap::new();
        for (t, _, class) in e.iter().filter(|(t, _, _)| *t >= from && *t < to) {
            first = Some(first.map_or(*t, |f: u64| f.min(*t)));
            *by_class.entry((*class).to_owned()).or_default() += 1;
        }
        (first, by_class)
    }

    /// Successes per slot.
    pub fn slots(&self) -> Vec<u64> {
        self.slots.iter().map(|s| s.load(Ordering::Relaxed)).collect()
    }
}

/// The longest part of any gap of `workload` (all when `None`) inside `[from, to)`, ns.
pub fn longest_outage(gaps: &[Gap], workload: Option<u16>, from: u64, to: u64) -> u64 {
    gaps.iter().filter(|g| workload.is_none_or(|w| g.workload == w)).map(|g| g.to_ns.min(to).saturating_sub(g.from_ns.max(from))).max().unwrap_or(0)
}

/// Time from `at` until throughput is back within 10 % of its level over the 2 s before `at`:
/// the start of the first 500 ms at or after `at` in which every 100 ms slot saw successes and
/// their mean reaches 90 % of that level. Requiring every slot keeps the burst of queued
/// operations released when a pause ends from passing for recovery before the pause is over.
/// `None` when there is no level to compare with (fault in the first slot) or it never recovers.
pub fn recovery(slots: &[u64], at_ns: u64, end_ns: u64) -> Option<u64> {
    let slot_ns = SLOT.as_nanos() as u64;
    let at = (at_ns / slot_ns) as usize;
    let end = ((end_ns / slot_ns) as usize).min(slots.len());
    let before = at.saturating_sub(20);
    if at == before || at > end {
        return None;
    }
    let level = slots[before..at].iter().sum::<u64>() as f64 / (at - before) as f64;
    if level <= 0.0 {
        return None;
    }
    const SUSTAINED: usize = 5;
    (at..end.saturating_sub(SUSTAINED - 1))
        .find(|k| {
            let w = &slots[*k..*k + SUSTAINED];
            w.iter().all(|n| *n > 0) && w.iter().sum::<u64>() as f64 / SUSTAINED as f64 >= 0.9 * level
        })
        .map(|k| (k as u64 * slot_ns).saturating_sub(at_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn gaps_between_successes_are_caught_exactly() {
        let t = Tracker::new(2, 1, Duration::from_secs(10));
        for ms in [0, 10, 20, 30] {
            t.success(0, Some(0), ms * MS);
        }
        t.success(0, None, 2_030 * MS);
        t.success(1, Some(0), 5 * MS);
        t.finish(3_000 * MS);
        let gaps = t.gaps();
        assert!(gaps.contains(&Gap { workload: 0, from_ns: 30 * MS, to_ns: 2_030 * MS }), "{gaps:?}");
        assert!(gaps.contains(&Gap { workload: 1, from_ns: 5 * MS, to_ns: 3_000 * MS }), "{gaps:?}");
        assert_eq!(longest_outage(&gaps, Some(0), 1_000 * MS, 3_000 * MS), 1_030 * MS, "clipped to the window");
        assert_eq!(longest_outage(&gaps, None, 0, 3_000 * MS), 2_995 * MS);
        // The shard saw its last success at 30 ms: its own gap runs to the end.
        assert_eq!(longest_outage(&gaps, Some(t.shard_stream(0)), 0, 3_000 * MS), 2_970 * MS);
    }

    #[test]
    fn recovery_is_the_first_healthy_second_after_the_fault() {
        // 10 ops per slot, then 2 s of nothing from 3 s, a burst of the queued 200, then back to 10.
        let mut slots = vec![10u64; 80];
        for s in &mut slots[30..50] {
            *s = 0;
        }
        slots[50] = 200;
        assert_eq!(recovery(&slots, 3_000 * MS, 8_000 * MS), Some(2_000 * MS), "the burst does not count before the pause ends");
        assert_eq!(recovery(&vec![10u64; 80], 3_000 * MS, 8_000 * MS), Some(0), "no dip, nothing to recover");
        assert_eq!(recovery(&slots, 0, 8_000 * MS), None, "no level before a fault at 0");
    }

    #[test]
    fn errors_are_counted_by_class_in_a_window() {
        let t = Tracker::new(1, 0, Duration::from_secs(1));
        t.error(0, "timeout", 5 * MS);
        t.error(0, "connection", 7 * MS);
        t.error(0, "timeout", 50 * MS);
        let (first, by) = t.errors_between(6 * MS, 100 * MS);
        assert_eq!(first, Some(7 * MS));
        assert_eq!(by.get("timeout"), Some(&1));
        assert_eq!(by.get("connection"), Some(&1));
    }
}
