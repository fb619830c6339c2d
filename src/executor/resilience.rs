//! What resilience verdicts are computed from: per stream (a workload, or a cluster shard) the
//! moment of the last success and the operations that were waiting since, errors with their time
//! and class, successes per 100 ms slot, and operations in flight.
//!
//! An outage is time during which a stream had work to do and none of it succeeded: from the
//! later of its last success and the intended start of the earliest operation that was waiting
//! (in flight, or failed since), to its next success. A workload the plan does not run at that
//! moment, or one whose operations are simply sparse, has nothing waiting and so no outage: idle
//! is not down.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Shorter stretches without a success are ordinary jitter, not an outage.
pub const GAP_MIN: Duration = Duration::from_millis(100);
/// Width of a throughput slot (runs longer than [`MAX_SLOTS`] of them get wider ones).
pub const SLOT: Duration = Duration::from_millis(100);
/// Most throughput slots kept: 8 MB, 27 hours at 100 ms. A longer plan gets wider slots rather
/// than memory that grows with the plan's length.
pub const MAX_SLOTS: u64 = 1_000_000;
/// Most error events kept (an outage can fail a great many operations; counts stay exact elsewhere).
const MAX_ERROR_EVENTS: usize = 100_000;
/// Most gaps kept (each is longer than [`GAP_MIN`]; a run of hours with a gap every second fits).
const MAX_GAPS: usize = 200_000;
/// "No operation waiting" in the pending and in-flight slots.
const NONE: u64 = u64::MAX;

/// A stretch during which one stream had work waiting and nothing succeeded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    /// Stream: a workload index, or [`Tracker::shard_stream`] of a cluster shard.
    pub workload: u16,
    /// Start: the last success, or the intended start of the first operation waiting after it
    /// when that is later; ns since the run's start.
    pub from_ns: u64,
    /// The next success (or the end of the run).
    pub to_ns: u64,
}

/// One worker's operation in flight: its intended start (+1; 0 when idle) and its streams.
#[derive(Default)]
struct InFlight {
    intended: AtomicU64,
    /// Workload index in the low 16 bits, cluster shard + 1 in the high 16 (0: none).
    streams: AtomicU32,
}

/// Shared by the workers; read after the run.
pub struct Tracker {
    last_success: Vec<AtomicU64>,
    /// Per stream: the earliest intended start of an operation that failed since the last success.
    pending: Vec<AtomicU64>,
    in_flight_ops: Vec<InFlight>,
    gaps: Mutex<Vec<Gap>>,
    errors: Mutex<Vec<(u64, u16, &'static str)>>,
    slots: Vec<AtomicU64>,
    slot_ns: u64,
    /// Operations sent and not yet answered.
    pub in_flight: AtomicI64,
    workloads: usize,
}

impl Tracker {
    /// For `workloads` workloads, `shards` cluster shards (0 outside a cluster) and `workers`
    /// workers over a run of `length`.
    pub fn new(workloads: usize, shards: usize, workers: usize, length: Duration) -> Tracker {
        let slot_ns = (SLOT.as_nanos() as u64).max((length.as_nanos() as u64).div_ceil(MAX_SLOTS));
        let slots = (length.as_nanos() as u64 / slot_ns) as usize + 20;
        let streams = workloads + shards;
        Tracker {
            workloads,
            last_success: (0..streams).map(|_| AtomicU64::new(0)).collect(),
            pending: (0..streams).map(|_| AtomicU64::new(NONE)).collect(),
            in_flight_ops: (0..workers).map(|_| InFlight::default()).collect(),
            gaps: Mutex::new(Vec::new()),
            errors: Mutex::new(Vec::new()),
            slots: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            slot_ns,
            in_flight: AtomicI64::new(0),
        }
    }

    /// The gap stream of cluster shard `shard`.
    pub fn shard_stream(&self, shard: u16) -> u16 {
        self.workloads as u16 + shard
    }

    /// Worker `worker` starts an operation of workload `w` (on cluster shard `shard`) that was
    /// meant to start at `intended_ns`.
    pub fn begin(&self, worker: usize, w: u16, shard: Option<u16>, intended_ns: u64) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        if let Some(f) = self.in_flight_ops.get(worker) {
            f.streams.store(u32::from(w) | (u32::from(shard.map_or(0, |s| s + 1)) << 16), Ordering::Relaxed);
            f.intended.store(intended_ns + 1, Ordering::Release);
        }
    }

    fn end(&self, worker: usize) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(f) = self.in_flight_ops.get(worker) {
            f.intended.store(0, Ordering::Release);
        }
    }

    /// Worker `worker`'s operation of workload `w` (cluster shard `shard`), meant to start at
    /// `intended_ns`, succeeded at `now_ns` (all since the run's start).
    pub fn success(&self, worker: usize, w: u16, shard: Option<u16>, intended_ns: u64, now_ns: u64) {
        self.end(worker);
        if let Some(s) = self.slots.get((now_ns / self.slot_ns) as usize) {
            s.fetch_add(1, Ordering::Relaxed);
        }
        self.stream_success(w, intended_ns, now_ns);
        if let Some(shard) = shard {
            self.stream_success(self.shard_stream(shard), intended_ns, now_ns);
        }
    }

    fn stream_success(&self, stream: u16, intended_ns: u64, now_ns: u64) {
        let (Some(last), Some(pending)) = (self.last_success.get(stream as usize), self.pending.get(stream as usize)) else { return };
        // Stored as ns + 1 so that 0 means "no success yet".
        let prev = last.fetch_max(now_ns + 1, Ordering::Relaxed);
        let waiting_since = pending.swap(NONE, Ordering::Relaxed).min(intended_ns);
        if prev > now_ns {
            return; // a later success was recorded already
        }
        let last_ok = prev.checked_sub(1);
        let gap_min = GAP_MIN.as_nanos() as u64;
        if last_ok.is_some_and(|l| now_ns - l <= gap_min) {
            return;
        }
        // A candidate: look for operations of this stream still waiting that started earlier
        // (rare, so the scan over the workers stays off the common path).
        let earliest = self.waiting_since(stream).min(waiting_since);
        let from = last_ok.map_or(earliest, |l| l.max(earliest));
        if now_ns > from && now_ns - from > gap_min {
            self.push_gap(Gap { workload: stream, from_ns: from, to_ns: now_ns });
        }
    }

    /// The earliest intended start among operations of `stream` in flight now.
    fn waiting_since(&self, stream: u16) -> u64 {
        let is_shard = stream as usize >= self.workloads;
        self.in_flight_ops
            .iter()
            .filter_map(|f| {
                let intended = f.intended.load(Ordering::Acquire).checked_sub(1)?;
                let streams = f.streams.load(Ordering::Relaxed);
                let mine = if is_shard { (streams >> 16) as u16 == stream - self.workloads as u16 + 1 } else { streams as u16 == stream };
                mine.then_some(intended)
            })
            .min()
            .unwrap_or(NONE)
    }

    fn push_gap(&self, gap: Gap) {
        let mut g = self.gaps.lock().expect("gaps lock");
        if g.len() < MAX_GAPS {
            g.push(gap);
        }
    }

    /// Worker `worker`'s operation of workload `w` (cluster shard `shard`), meant to start at
    /// `intended_ns`, failed with `class` at `now_ns`.
    pub fn error(&self, worker: usize, w: u16, shard: Option<u16>, intended_ns: u64, class: &'static str, now_ns: u64) {
        self.end(worker);
        for stream in std::iter::once(w).chain(shard.map(|s| self.shard_stream(s))) {
            if let Some(p) = self.pending.get(stream as usize) {
                p.fetch_min(intended_ns, Ordering::Relaxed);
            }
        }
        let mut e = self.errors.lock().expect("errors lock");
        if e.len() < MAX_ERROR_EVENTS {
            e.push((now_ns, w, class));
        }
    }

    /// Closes the gaps still open at the end of the run: streams whose operations failed since
    /// their last success (a workload that never recovered).
    pub fn finish(&self, end_ns: u64) {
        for (stream, (last, pending)) in self.last_success.iter().zip(&self.pending).enumerate() {
            let waiting = pending.load(Ordering::Relaxed);
            if waiting == NONE {
                continue;
            }
            let from = last.load(Ordering::Relaxed).checked_sub(1).map_or(waiting, |l| l.max(waiting));
            if end_ns > from && end_ns - from > GAP_MIN.as_nanos() as u64 {
                self.push_gap(Gap { workload: stream as u16, from_ns: from, to_ns: end_ns });
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

    /// Successes per slot, and the slots' width in ns.
    pub fn slots(&self) -> (Vec<u64>, u64) {
        (self.slots.iter().map(|s| s.load(Ordering::Relaxed)).collect(), self.slot_ns)
    }
}

/// The longest part of any gap of `workload` (all when `None`) inside `[from, to)`, ns.
pub fn longest_outage(gaps: &[Gap], workload: Option<u16>, from: u64, to: u64) -> u64 {
    gaps.iter().filter(|g| workload.is_none_or(|w| g.workload == w)).map(|g| g.to_ns.min(to).saturating_sub(g.from_ns.max(from))).max().unwrap_or(0)
}

/// What the load should look like, for judging recovery: the plan's target rate at an offset
/// (open loop).
pub trait Expected {
    /// The target rate of this process at `offset_ns` into the run; `None` in closed loop or
    /// between phases.
    fn rate_at(&self, offset_ns: u64) -> Option<f64>;
}

/// What [`recovery`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recovered {
    /// Back, not back, or nothing to compare with.
    pub outcome: Outcome,
    /// The level judged against at the fault's start, operations per second.
    pub level_per_sec: Option<f64>,
}

/// Whether throughput came back after a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Back within 10 % after this many ns (0: it never dipped).
    Back(u64),
    /// Not back within the window.
    NotBack,
    /// No level to compare with.
    NoLevel,
    /// The window is shorter than the stretch a recovery must hold ([`SUSTAINED`] slots): no
    /// client could be seen back in it, so it is not judged.
    TooShort,
}

/// How far back the level before a fault is looked for.
const LOOKBACK: Duration = Duration::from_secs(5);
/// After an outage ends, the queued operations go out in a burst: this long after a gap is not a
/// level to judge by.
const CATCH_UP: Duration = Duration::from_secs(1);
/// Slots in a row throughput must hold its level for to count as back.
const SUSTAINED: usize = (crate::outcome::RECOVERY_HOLD.as_nanos() / SLOT.as_nanos()) as usize;
/// Fewest clean slots a closed-loop level is taken from.
const MIN_LEVEL_SLOTS: usize = 3;

/// Time from `at` until throughput is back within 10 % of its level: the start of the first 500 ms
/// at or after `at` in which every 100 ms slot saw successes and their sum reaches 90 % of the
/// level's — and never before the end of an outage that began by then, so recovery cannot end
/// before the first success after the fault. A fault that never dented throughput recovers in 0.
///
/// The level is what the load should do, not a burst: in open loop the plan's rate at each slot
/// (a ramp or a new phase changes what "back" means), scaled down only when the load could not
/// keep up with the plan before the fault (the median ratio of the clean slots before it, never
/// above 1); in closed loop the median of the clean slots in the 5 s before the fault. Clean slots
/// are those outside every outage and the second after one (the catch-up burst of a previous
/// fault). Requiring every slot keeps the burst released when a pause ends from passing for
/// recovery before the pause is over.
pub fn recovery(slots: &[u64], slot_ns: u64, gaps: &[Gap], at_ns: u64, end_ns: u64, plan: &dyn Expected) -> Recovered {
    let at = ((at_ns / slot_ns) as usize).min(slots.len());
    let end = ((end_ns / slot_ns) as usize).min(slots.len());
    let mid = |k: usize| k as u64 * slot_ns + slot_ns / 2;
    let slot_secs = slot_ns as f64 / 1e9;
    let per_slot = |k: usize| plan.rate_at(mid(k)).filter(|r| *r > 0.0).map(|r| r * slot_secs);
    let open_loop = per_slot(at).is_some();
    let lookback = (LOOKBACK.as_nanos() as u64 / slot_ns) as usize;
    let catch_up = CATCH_UP.as_nanos() as u64;
    let clean = |k: usize| {
        let (a, b) = (k as u64 * slot_ns, (k as u64 + 1) * slot_ns);
        !gaps.iter().any(|g| g.from_ns < b && g.to_ns + catch_up > a)
    };
    let before: Vec<usize> = (at.saturating_sub(lookback)..at).filter(|k| clean(*k)).collect();
    let median = |mut v: Vec<f64>| -> Option<f64> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        Some(v[v.len() / 2])
    };
    // The expected successes in slot k.
    let expect: Box<dyn Fn(usize) -> f64> = if open_loop {
        let ratio = median(before.iter().filter_map(|k| per_slot(*k).map(|e| slots[*k] as f64 / e)).collect()).map_or(1.0, |r| r.min(1.0));
        if ratio <= 0.0 {
            return Recovered { outcome: Outcome::NoLevel, level_per_sec: None };
        }
        Box::new(move |k| per_slot(k).map_or(0.0, |e| e * ratio))
    } else {
        let Some(level) = median(before.iter().map(|k| slots[*k] as f64).collect()).filter(|l| *l > 0.0 && before.len() >= MIN_LEVEL_SLOTS) else {
            return Recovered { outcome: Outcome::NoLevel, level_per_sec: None };
        };
        Box::new(move |_| level)
    };
    let level_per_sec = Some(expect(at) / slot_secs);
    if end.saturating_sub(at) < SUSTAINED {
        return Recovered { outcome: Outcome::TooShort, level_per_sec };
    }
    let found = (at..end.saturating_sub(SUSTAINED - 1)).find(|k| {
        let w = *k..*k + SUSTAINED;
        w.clone().all(|i| slots[i] > 0) && w.clone().map(|i| slots[i] as f64).sum::<f64>() >= 0.9 * w.map(&expect).sum::<f64>()
    });
    let Some(k) = found else { return Recovered { outcome: Outcome::NotBack, level_per_sec } };
    let mut back = (k as u64 * slot_ns).max(at_ns);
    // Not before the outages that had begun by then have ended.
    let horizon = back + SUSTAINED as u64 * slot_ns;
    for g in gaps.iter().filter(|g| g.from_ns < horizon && g.to_ns > at_ns) {
        back = back.max(g.to_ns);
    }
    let outcome = if back < end_ns { Outcome::Back(back - at_ns) } else { Outcome::NotBack };
    Recovered { outcome, level_per_sec }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const SLOT_NS: u64 = 100 * MS;

    #[test]
    fn slots_stay_bounded_however_long_the_plan() {
        let day = Tracker::new(1, 0, 1, Duration::from_secs(86_400));
        assert_eq!(day.slots().1, 100 * MS, "a day keeps 100 ms slots");
        let year = Tracker::new(1, 0, 1, Duration::from_secs(365 * 86_400));
        let (slots, width) = year.slots();
        assert!(slots.len() as u64 <= MAX_SLOTS + 20 && width > 100 * MS, "{} slots of {width} ns", slots.len());
    }

    struct ClosedLoop;
    impl Expected for ClosedLoop {
        fn rate_at(&self, _: u64) -> Option<f64> {
            None
        }
    }

    /// Open loop at a steady rate.
    struct Steady(f64);
    impl Expected for Steady {
        fn rate_at(&self, _: u64) -> Option<f64> {
            Some(self.0)
        }
    }

    fn back(r: Recovered) -> Option<u64> {
        match r.outcome {
            Outcome::Back(ns) => Some(ns),
            _ => None,
        }
    }

    #[test]
    fn gaps_between_successes_are_caught_exactly() {
        let t = Tracker::new(2, 1, 4, Duration::from_secs(10));
        for ms in [0, 10, 20, 30] {
            t.begin(0, 0, Some(0), ms * MS);
            t.success(0, 0, Some(0), ms * MS, ms * MS);
        }
        // An operation meant to start at 40 ms fails at 1 s; the next succeeds at 2.03 s.
        t.begin(1, 0, None, 40 * MS);
        t.error(1, 0, None, 40 * MS, "timeout", 1_000 * MS);
        t.begin(1, 0, None, 1_000 * MS);
        t.success(1, 0, None, 1_000 * MS, 2_030 * MS);
        // Workload 1 fails at 5 ms and never succeeds again.
        t.begin(2, 1, Some(0), 5 * MS);
        t.error(2, 1, Some(0), 5 * MS, "connection", 6 * MS);
        t.finish(3_000 * MS);
        let gaps = t.gaps();
        assert!(gaps.contains(&Gap { workload: 0, from_ns: 40 * MS, to_ns: 2_030 * MS }), "{gaps:?}");
        assert!(gaps.contains(&Gap { workload: 1, from_ns: 5 * MS, to_ns: 3_000 * MS }), "{gaps:?}");
        assert_eq!(longest_outage(&gaps, Some(0), 1_000 * MS, 3_000 * MS), 1_030 * MS, "clipped to the window");
        assert_eq!(longest_outage(&gaps, None, 0, 3_000 * MS), 2_995 * MS);
        // The shard's last success was at 30 ms; its operation failing at 6 ms began before it.
        assert_eq!(longest_outage(&gaps, Some(t.shard_stream(0)), 0, 3_000 * MS), 2_970 * MS);
    }

    #[test]
    fn an_idle_or_sparse_workload_has_no_outage() {
        let t = Tracker::new(2, 0, 2, Duration::from_secs(20));
        // Workload 1 runs in a first phase only, then not at all (it is out of the mix).
        t.begin(0, 1, None, 0);
        t.success(0, 1, None, 0, MS);
        // Workload 0 runs one operation every 2 s (a low weight), each answered in 1 ms.
        for s in 0..10u64 {
            t.begin(1, 0, None, s * 2_000 * MS);
            t.success(1, 0, None, s * 2_000 * MS, s * 2_000 * MS + MS);
        }
        t.finish(20_000 * MS);
        assert_eq!(t.gaps(), vec![], "nothing was waiting, so nothing was down");
    }

    #[test]
    fn an_operation_stuck_in_flight_is_an_outage_from_its_intended_start() {
        let t = Tracker::new(1, 0, 3, Duration::from_secs(10));
        t.begin(0, 0, None, 0);
        t.success(0, 0, None, 0, MS);
        // A pause: two operations are sent at 500 ms and 600 ms and answered at 1.5 s, in reverse.
        t.begin(1, 0, None, 500 * MS);
        t.begin(2, 0, None, 600 * MS);
        t.success(2, 0, None, 600 * MS, 1_500 * MS);
        t.success(1, 0, None, 500 * MS, 1_500 * MS);
        assert_eq!(t.gaps(), vec![Gap { workload: 0, from_ns: 500 * MS, to_ns: 1_500 * MS }]);
    }

    #[test]
    fn recovery_is_the_first_healthy_stretch_after_the_fault_and_not_before_the_outage_ends() {
        // 10 ops per slot, then 2 s of nothing from 3 s, a burst of the queued 200, then back to 10.
        let mut slots = vec![10u64; 80];
        for s in &mut slots[30..50] {
            *s = 0;
        }
        slots[50] = 200;
        let gap = Gap { workload: 0, from_ns: 2_990 * MS, to_ns: 5_040 * MS };
        assert_eq!(
            back(recovery(&slots, SLOT_NS, &[], 3_000 * MS, 8_000 * MS, &ClosedLoop)),
            Some(2_000 * MS),
            "the burst does not count before the pause ends"
        );
        assert_eq!(
            back(recovery(&slots, SLOT_NS, &[gap], 3_000 * MS, 8_000 * MS, &ClosedLoop)),
            Some(2_040 * MS),
            "not before the first success after the outage"
        );
        assert_eq!(back(recovery(&vec![10u64; 80], SLOT_NS, &[], 3_000 * MS, 8_000 * MS, &ClosedLoop)), Some(0), "no dip, nothing to recover");
        assert_eq!(recovery(&slots, SLOT_NS, &[], 0, 8_000 * MS, &ClosedLoop).outcome, Outcome::NoLevel, "no level before a fault at 0");
        let mut never = vec![10u64; 80];
        never[30..].iter_mut().for_each(|s| *s = 0);
        assert_eq!(recovery(&never, SLOT_NS, &[], 3_000 * MS, 8_000 * MS, &ClosedLoop).outcome, Outcome::NotBack, "not recovered is its own outcome");
    }

    #[test]
    fn a_window_shorter_than_a_sustained_recovery_is_not_judged() {
        // Seen at --time-scale 0.05: a fault whose window (until the next fault) was 0.2 s was
        // "not recovered" although throughput never dipped — no window under 500 ms can show it.
        let flat = vec![10u64; 80];
        for window_ms in [100, 200, 400, 499] {
            let r = recovery(&flat, SLOT_NS, &[], 3_000 * MS, (3_000 + window_ms) * MS, &ClosedLoop);
            assert_eq!(r.outcome, Outcome::TooShort, "a {window_ms} ms window");
            assert_eq!(r.level_per_sec, Some(100.0), "the level is still stated");
        }
        assert_eq!(back(recovery(&flat, SLOT_NS, &[], 3_000 * MS, 3_500 * MS, &ClosedLoop)), Some(0), "500 ms is enough to be back");
        let mut never = flat.clone();
        never[30..].iter_mut().for_each(|s| *s = 0);
        assert_eq!(recovery(&never, SLOT_NS, &[], 3_000 * MS, 3_500 * MS, &ClosedLoop).outcome, Outcome::NotBack, "500 ms without a success is not back");
        assert_eq!(recovery(&never, SLOT_NS, &[], 3_000 * MS, 3_400 * MS, &ClosedLoop).outcome, Outcome::TooShort);
    }

    #[test]
    fn a_catch_up_burst_before_a_fault_is_not_its_level() {
        // regression: verdicts II item 2. Open loop at 400 ops/s (40 per slot): a blackhole from 3 s
        // to 5 s, then 2 s of catch-up at 85–180 per slot; a reset at 7 s costs nothing. Judged
        // against the burst it was "not back"; against the plan it never dipped.
        let mut slots = vec![40u64; 120];
        slots[30..50].iter_mut().for_each(|s| *s = 0);
        for (i, s) in slots[50..70].iter_mut().enumerate() {
            *s = 180 - 5 * i as u64;
        }
        let blackhole = Gap { workload: 0, from_ns: 3_000 * MS, to_ns: 5_000 * MS };
        let r = recovery(&slots, SLOT_NS, &[blackhole], 7_000 * MS, 12_000 * MS, &Steady(400.0));
        assert_eq!(r.outcome, Outcome::Back(0), "{r:?}");
        assert_eq!(r.level_per_sec, Some(400.0), "the plan's rate, not the burst");
        // Closed loop: a pause releases what waited in one burst; the level is the median of the
        // clean slots before the fault, not the burst.
        let mut closed = vec![40u64; 120];
        closed[30..50].iter_mut().for_each(|s| *s = 0);
        closed[50] = 400;
        closed[51] = 200;
        let r = recovery(&closed, SLOT_NS, &[blackhole], 6_000 * MS, 12_000 * MS, &ClosedLoop);
        assert_eq!(r.outcome, Outcome::Back(0), "{r:?}");
        assert_eq!(r.level_per_sec, Some(400.0));
    }

    #[test]
    fn open_loop_never_expects_more_than_the_load_achieved_before() {
        // A client that kept up with 90 % of a 1000 ops/s plan is back when it does 90 % again.
        let mut slots = vec![90u64; 100];
        slots[40..50].iter_mut().for_each(|s| *s = 0);
        let r = recovery(&slots, SLOT_NS, &[], 4_000 * MS, 10_000 * MS, &Steady(1000.0));
        assert_eq!(r.outcome, Outcome::Back(1_000 * MS), "{r:?}");
        assert_eq!(r.level_per_sec, Some(900.0));
    }

    #[test]
    fn recovery_follows_the_planned_rate_through_a_ramp() {
        // Open loop ramping 100 → 900 ops/s over 8 s: 10 → 90 per slot; nothing from 4 s to 5 s.
        struct Ramp;
        impl Expected for Ramp {
            fn rate_at(&self, ns: u64) -> Option<f64> {
                Some(100.0 + 100.0 * ns as f64 / 1e9)
            }
        }
        let mut slots: Vec<u64> = (0..80).map(|k| (10.0 + k as f64) as u64).collect();
        for s in &mut slots[40..50] {
            *s = 0;
        }
        let r = back(recovery(&slots, SLOT_NS, &[], 4_000 * MS, 8_000 * MS, &Ramp)).unwrap();
        assert!((1_000 * MS..=1_100 * MS).contains(&r), "back as soon as the ramp's level returns: {r}");
        // Throughput that came back at the pre-fault level only is not back on a rising ramp.
        let mut flat = slots.clone();
        for s in &mut flat[50..80] {
            *s = 50;
        }
        assert_eq!(recovery(&flat, SLOT_NS, &[], 4_000 * MS, 8_000 * MS, &Ramp).outcome, Outcome::NotBack);
    }

    #[test]
    fn errors_are_counted_by_class_in_a_window() {
        let t = Tracker::new(1, 0, 1, Duration::from_secs(1));
        t.error(0, 0, None, 0, "timeout", 5 * MS);
        t.error(0, 0, None, 0, "connection", 7 * MS);
        t.error(0, 0, None, 0, "timeout", 50 * MS);
        let (first, by) = t.errors_between(6 * MS, 100 * MS);
        assert_eq!(first, Some(7 * MS));
        assert_eq!(by.get("timeout"), Some(&1));
        assert_eq!(by.get("connection"), Some(&1));
    }
}
