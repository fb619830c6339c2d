//! The run's time series, bounded: one point per second for the first [`MAX_POINTS`] seconds;
//! past that, neighbouring points merge in pairs and new points cover twice as long, so a day-long
//! run keeps at most [`MAX_POINTS`] points (of 16 s) instead of growing without end.

use crate::metrics::IntervalStats;
use crate::outcome::TimePoint;

/// Most points kept (two hours at one per second).
pub const MAX_POINTS: usize = 7200;

/// The series as it grows.
#[derive(Default)]
pub struct Series {
    points: Vec<TimePoint>,
    /// New points cover `2^level` collector intervals.
    level: u32,
    /// Intervals gathered for the next point: their totals, their length and how many.
    pending: Option<(IntervalStats, f64, u32)>,
}

impl Series {
    /// Adds one collector interval of `secs` seconds ending at `t` (seconds since the start).
    pub fn add(&mut self, t: f64, secs: f64, iv: &IntervalStats) {
        let (acc, len, n) = self.pending.get_or_insert_with(|| (IntervalStats::default(), 0.0, 0));
        acc.latency.add(&iv.latency).expect("same bounds");
        acc.ops += iv.ops;
        acc.errors += iv.errors;
        *len += secs;
        *n += 1;
        if *n >= 1 << self.level {
            self.flush(t);
        }
    }

    /// The points, the last partial one included.
    pub fn finish(mut self, t: f64) -> Vec<TimePoint> {
        if self.pending.as_ref().is_some_and(|(acc, _, _)| acc.ops > 0) {
            self.flush(t);
        }
        self.points
    }

    fn flush(&mut self, t: f64) {
        let Some((acc, secs, _)) = self.pending.take() else { return };
        self.points.push(point(t, secs, &acc));
        if self.points.len() > MAX_POINTS {
            self.points = self.points.chunks(2).map(merge).collect();
            self.level += 1;
        }
    }
}

/// A point from an interval's totals; percentiles over its successful round trips.
pub fn point(t: f64, secs: f64, iv: &IntervalStats) -> TimePoint {
    let q = |q: f64| if iv.latency.is_empty() { 0 } else { iv.latency.value_at_quantile(q) };
    TimePoint {
        t: (t * 1000.0).round() / 1000.0,
        secs: (secs * 1000.0).round() / 1000.0,
        ops: iv.ops,
        ops_per_sec: per_sec(iv.ops, secs),
        ok: iv.ops - iv.errors,
        ok_per_sec: per_sec(iv.ops - iv.errors, secs),
        p50_us: q(0.5),
        p99_us: q(0.99),
        errors: iv.errors,
    }
}

/// `n` over `secs`, to a tenth.
fn per_sec(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { (n as f64 / secs * 10.0).round() / 10.0 } else { 0.0 }
}

/// Two neighbouring points as one: counts add up; the median is their operation-weighted mean and
/// the 99th percentile the larger of the two (an upper bound: percentiles do not add up).
fn merge(pair: &[TimePoint]) -> TimePoint {
    let [a, b] = pair else { return pair[0].clone() };
    let ops = a.ops + b.ops;
    let secs = a.secs + b.secs;
    let weighted = |x: u64, y: u64| if ops == 0 { x.max(y) } else { ((x as f64 * a.ops as f64 + y as f64 * b.ops as f64) / ops as f64).round() as u64 };
    TimePoint {
        t: b.t,
        secs: (secs * 1000.0).round() / 1000.0,
        ops,
        ops_per_sec: per_sec(ops, secs),
        ok: a.ok + b.ok,
        ok_per_sec: per_sec(a.ok + b.ok, secs),
        p50_us: weighted(a.p50_us, b.p50_us),
        p99_us: a.p99_us.max(b.p99_us),
        errors: a.errors + b.errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(ops: u64, latency_us: u64) -> IntervalStats {
        let mut iv = IntervalStats::default();
        for _ in 0..ops {
            iv.latency.record(latency_us).unwrap();
        }
        iv.ops = ops;
        iv
    }

    #[test]
    fn hours_of_seconds_stay_bounded_and_count_every_operation() {
        let mut s = Series::default();
        let seconds: Vec<IntervalStats> = (0..7).map(|k| second(10, 100 + k)).collect();
        for i in 0..30_000u64 {
            s.add((i + 1) as f64, 1.0, &seconds[(i % 7) as usize]);
        }
        let points = s.finish(30_000.0);
        assert!(points.len() <= MAX_POINTS, "{}", points.len());
        assert_eq!(points.iter().map(|p| p.ops).sum::<u64>(), 300_000, "no operation lost in merging");
        assert!(points.len() > MAX_POINTS / 4, "merged only as far as needed: {}", points.len());
        assert!((points.iter().map(|p| p.secs).sum::<f64>() - 30_000.0).abs() < 1.0);
        assert_eq!(points.last().unwrap().t, 30_000.0);
        assert!(points.iter().all(|p| (p.ops_per_sec - 10.0).abs() < 0.01), "rates keep their unit");
    }

    #[test]
    fn short_runs_keep_one_point_per_second() {
        let mut s = Series::default();
        for i in 0..100u64 {
            s.add((i + 1) as f64, 1.0, &second(5, 200));
        }
        let points = s.finish(100.4);
        assert_eq!(points.len(), 100);
        assert_eq!(points[3].p50_us, 200);
    }
}
