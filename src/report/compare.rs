//! `redis-test compare BASELINE CURRENT`: per phase and operation, the change in throughput, p50,
//! p99, p99.9 and error rate, judged against tolerances. This is how a nightly job says "tonight is
//! slower than the baseline".

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::thresholds::format_us;
use super::{OpReport, Report};

/// How much worse the current run may be before it counts as a regression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tolerances {
    /// Largest throughput drop, as a fraction (0.1 = 10 %).
    pub max_regression: f64,
    /// Largest latency rise (p50, p99, p99.9), as a fraction.
    pub max_latency_regression: f64,
    /// Latency rises smaller than this many µs are noise, never a regression.
    pub latency_floor_us: f64,
    /// Largest rise of the error rate, as a fraction of operations (0.001 = 0.1 percentage points).
    pub max_error_rate_increase: f64,
    /// Rows with fewer operations than this in the baseline are shown but not judged.
    pub min_ops: u64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances { max_regression: 0.10, max_latency_regression: 0.25, latency_floor_us: 1000.0, max_error_rate_increase: 0.001, min_ops: 100 }
    }
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delta {
    /// `ops_per_sec`, `p50_us`, `p99_us`, `p999_us` or `error_rate`.
    pub metric: String,
    /// Baseline value.
    pub baseline: f64,
    /// Current value.
    pub current: f64,
    /// Relative change (current / baseline − 1); absent when the baseline is 0.
    pub change: Option<f64>,
    /// Whether this change is beyond its tolerance in the bad direction.
    pub regression: bool,
}

/// One compared row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RowComparison {
    /// Phase name.
    pub phase: String,
    /// Workload name, or `*` for the phase as a whole.
    pub workload: String,
    /// Operation, or `*` for the phase as a whole.
    pub operation: String,
    /// The figures.
    pub deltas: Vec<Delta>,
    /// Whether the row was judged (enough operations in the baseline, present in both).
    pub judged: bool,
    /// Whether any figure regressed.
    pub regression: bool,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Comparison {
    /// Baseline run id.
    pub baseline: String,
    /// Current run id.
    pub current: String,
    /// The tolerances applied.
    pub tolerances: Tolerances,
    /// Rows, phase by phase.
    pub rows: Vec<RowComparison>,
    /// Rows present in one report only.
    pub unmatched: Vec<String>,
    /// True when no judged row regressed.
    pub passed: bool,
}

fn rel(b: f64, c: f64) -> Option<f64> {
    (b > 0.0).then(|| c / b - 1.0)
}

/// A percentile is only judged when at least ten baseline operations lie beyond it
/// (p99 needs 1000 operations, p99.9 needs 10 000): below that it is one or two outliers.
fn enough_for(q: f64, ops: u64) -> bool {
    ops as f64 * (1.0 - q) >= 10.0
}

fn latency_delta(metric: &str, b: Option<u64>, c: Option<u64>, t: &Tolerances, judged: bool) -> Option<Delta> {
    let (b, c) = (b? as f64, c? as f64);
    let change = rel(b, c);
    let regression = judged && c - b > t.latency_floor_us && change.is_some_and(|x| x > t.max_latency_regression);
    Some(Delta { metric: metric.into(), baseline: b, current: c, change, regression })
}

fn error_rate(o: &OpReport) -> f64 {
    if o.count == 0 { 0.0 } else { o.errors.values().sum::<u64>() as f64 / o.count as f64 }
}

/// An operation's share of a random mix varies from run to run (binomially): its own throughput is
/// judged only from this many baseline operations on, where that noise is a few percent. A phase's
/// throughput, the scheduled total, is always judged.
const MIN_OPS_FOR_OPERATION_THROUGHPUT: u64 = 1000;

fn compare_figures(
    b: (f64, f64, Option<&super::Percentiles>),
    c: (f64, f64, Option<&super::Percentiles>),
    baseline_ops: u64,
    t: &Tolerances,
    whole_phase: bool,
) -> (Vec<Delta>, bool) {
    let judged = baseline_ops >= t.min_ops;
    let mut deltas = Vec::new();
    let change = rel(b.0, c.0);
    let judge_rate = judged && (whole_phase || baseline_ops >= MIN_OPS_FOR_OPERATION_THROUGHPUT);
    deltas.push(Delta {
        metric: "ops_per_sec".into(),
        baseline: b.0,
        current: c.0,
        change,
        regression: judge_rate && change.is_some_and(|x| x < -t.max_regression),
    });
    for (name, q, f) in
        [("p50_us", 0.5, (|p: &super::Percentiles| p.p50) as fn(&super::Percentiles) -> u64), ("p99_us", 0.99, |p| p.p99), ("p999_us", 0.999, |p| p.p999)]
    {
        if let Some(d) = latency_delta(name, b.2.map(f), c.2.map(f), t, judged && enough_for(q, baseline_ops)) {
            deltas.push(d);
        }
    }
    deltas.push(Delta {
        metric: "error_rate".into(),
        baseline: b.1,
        current: c.1,
        change: rel(b.1, c.1),
        regression: judged && c.1 - b.1 > t.max_error_rate_increase,
    });
    (deltas, judged)
}

/// Compares two reports.
pub fn compare(base: &Report, cur: &Report, t: Tolerances) -> Comparison {
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    for bp in &base.phases {
        let Some(cp) = cur.phases.iter().find(|p| p.name == bp.name) else {
            unmatched.push(format!("phase {} (baseline only)", bp.name));
            continue;
        };
        let rate = |count: u64, errors: u64| if count == 0 { 0.0 } else { errors as f64 / count as f64 };
        let (deltas, judged) =
            compare_figures((bp.ops_per_sec, rate(bp.count, bp.errors), None), (cp.ops_per_sec, rate(cp.count, cp.errors), None), bp.count, &t, true);
        rows.push(RowComparison {
            phase: bp.name.clone(),
            workload: "*".into(),
            operation: "*".into(),
            regression: deltas.iter().any(|d| d.regression),
            deltas,
            judged,
        });
        for bo in &bp.operations {
            let Some(co) = cp.operations.iter().find(|o| o.workload == bo.workload && o.operation == bo.operation) else {
                unmatched.push(format!("{} {} {} (baseline only)", bp.name, bo.workload, bo.operation));
                continue;
            };
            let (deltas, judged) = compare_figures(
                (bo.ops_per_sec, error_rate(bo), bo.latency_us.as_ref()),
                (co.ops_per_sec, error_rate(co), co.latency_us.as_ref()),
                bo.count,
                &t,
                false,
            );
            rows.push(RowComparison {
                phase: bp.name.clone(),
                workload: bo.workload.clone(),
                operation: bo.operation.clone(),
                regression: deltas.iter().any(|d| d.regression),
                deltas,
                judged,
            });
        }
        for co in &cp.operations {
            if !bp.operations.iter().any(|o| o.workload == co.workload && o.operation == co.operation) {
                unmatched.push(format!("{} {} {} (current only)", cp.name, co.workload, co.operation));
            }
        }
    }
    for cp in &cur.phases {
        if !base.phases.iter().any(|p| p.name == cp.name) {
            unmatched.push(format!("phase {} (current only)", cp.name));
        }
    }
    let passed = !rows.iter().any(|r| r.regression);
    Comparison { baseline: base.run_id.clone(), current: cur.run_id.clone(), tolerances: t, rows, unmatched, passed }
}

fn show(metric: &str, v: f64) -> String {
    match metric {
        "ops_per_sec" => format!("{v:.1}"),
        "error_rate" => format!("{:.3}%", v * 100.0),
        _ => format_us(v),
    }
}

/// The comparison as a table.
pub fn render(c: &Comparison) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "baseline {}  →  current {}", c.baseline, c.current);
    let t = &c.tolerances;
    let _ = writeln!(
        s,
        "tolerances: throughput −{:.0}%, latency +{:.0}% (ignoring rises under {}), error rate +{:.3} points; rows under {} baseline ops not judged\n",
        t.max_regression * 100.0,
        t.max_latency_regression * 100.0,
        format_us(t.latency_floor_us),
        t.max_error_rate_increase * 100.0,
        t.min_ops
    );
    let _ = writeln!(s, "{:<12} {:<14} {:<14} {:<12} {:>12} {:>12} {:>9}", "phase", "workload", "operation", "metric", "baseline", "current", "change");
    for r in &c.rows {
        for d in &r.deltas {
            let change = d.change.map_or_else(|| "-".to_owned(), |x| format!("{:+.1}%", x * 100.0));
            let flag = if d.regression {
                "  REGRESSION"
            } else if !r.judged {
                "  (not judged)"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "{:<12} {:<14} {:<14} {:<12} {:>12} {:>12} {:>9}{flag}",
                r.phase,
                r.workload,
                r.operation,
                d.metric,
                show(&d.metric, d.baseline),
                show(&d.metric, d.current),
                change
            );
        }
    }
    for u in &c.unmatched {
        let _ = writeln!(s, "not compared: {u}");
    }
    let regressions = c.rows.iter().filter(|r| r.regression).count();
    let _ = writeln!(s, "\n{}", if c.passed { "verdict: no regression".to_owned() } else { format!("verdict: REGRESSION in {regressions} rows") });
    s
}

/// Parses `10%` or `0.1` into a fraction.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let v = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|x| x / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|_| format!("`{s}` is not a percentage like `10%` or a fraction like `0.1`"))?;
    if v.is_finite() && v >= 0.0 { Ok(v) } else { Err(format!("`{s}` must be zero or more")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_need_enough_operations_behind_them() {
        assert!(!enough_for(0.99, 999));
        assert!(enough_for(0.99, 1000));
        assert!(!enough_for(0.999, 9_999));
        assert!(enough_for(0.5, 20));
    }

    #[test]
    fn latency_rises_under_the_floor_are_noise() {
        let t = Tolerances::default();
        assert!(!latency_delta("p99_us", Some(300), Some(900), &t, true).unwrap().regression, "+600us is under the 1ms floor");
        assert!(latency_delta("p99_us", Some(300), Some(1500), &t, true).unwrap().regression);
        assert!(!latency_delta("p99_us", Some(10_000), Some(12_000), &t, true).unwrap().regression, "+20% is within 25%");
        assert_eq!(parse_fraction("10%"), Ok(0.1));
        assert!(parse_fraction("-1").is_err());
    }
}
