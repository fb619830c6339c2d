//! `redis-test compare BASELINE... CURRENT`: per phase and operation, whether throughput, p50, p99,
//! p99.9 or the error rate changed — judged the way benchstat and criterion judge, so that noise is
//! not a regression and a real slowdown is one.
//!
//! A figure changed when two things hold: the change is statistically significant, and it is larger
//! than its tolerance. Significance comes from the samples every report holds — the per-second time
//! series for a phase as a whole, the per-block figures (one per second, at most 20 per phase) for
//! each operation — tested with Mann–Whitney U, pooled over every baseline given (so tonight is
//! compared with the recent distribution, not one lucky night), with Holm's correction over all the
//! tests of one comparison (the chance that noise flags anything stays under `alpha`).

use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::stats::{holm, mann_whitney, median};
use super::thresholds::format_us;
use super::{OpReport, PhaseReport, Report};

/// How much worse the current run may be before a significant change counts as a regression.
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
    /// Family-wise significance level: the chance that noise flags any row of a comparison.
    pub alpha: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances { max_regression: 0.10, max_latency_regression: 0.25, latency_floor_us: 1000.0, max_error_rate_increase: 0.001, min_ops: 100, alpha: 0.05 }
    }
}

/// What became of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly worse, by more than the tolerance.
    Regression,
    /// Significantly better, by more than the tolerance.
    Improvement,
    /// Within noise or within the tolerance (`~`).
    Unchanged,
    /// Not enough operations or samples to tell.
    NotJudged,
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delta {
    /// `ops_per_sec`, `p50_us`, `p99_us`, `p999_us` or `error_rate`.
    pub metric: String,
    /// Baseline value (the median over the baselines).
    pub baseline: f64,
    /// Current value.
    pub current: f64,
    /// Relative change (current / baseline − 1); absent when the baseline is 0.
    pub change: Option<f64>,
    /// Samples behind the test: baseline (pooled) and current.
    pub samples: [usize; 2],
    /// Two-sided Mann–Whitney p-value; absent when not judged.
    pub p_value: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it was not judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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
    /// Whether any figure regressed.
    pub regression: bool,
}

/// The verdict on one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PhaseVerdict {
    /// Phase name.
    pub phase: String,
    /// `regression` (a figure regressed or a row is missing), `improvement`, or `unchanged`.
    pub verdict: String,
    /// The figures that changed significantly, as `workload operation metric change`.
    pub changes: Vec<String>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Comparison {
    /// Baseline run ids.
    pub baselines: Vec<String>,
    /// Current run id.
    pub current: String,
    /// The tolerances applied.
    pub tolerances: Tolerances,
    /// Statistical tests made (the family Holm's correction covers).
    pub tests: usize,
    /// Per phase verdicts.
    pub phases: Vec<PhaseVerdict>,
    /// Rows, phase by phase.
    pub rows: Vec<RowComparison>,
    /// Rows of every baseline that the current report lacks: each is a failure (something that
    /// was measured before no longer is).
    pub missing: Vec<String>,
    /// Rows of the current report that no baseline has (shown, not judged).
    pub new: Vec<String>,
    /// Warnings (e.g. different scenario names).
    pub warnings: Vec<String>,
    /// True when nothing regressed and nothing is missing.
    pub passed: bool,
}

/// Why two sets of reports cannot be compared.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotComparable(pub String);

/// Which way is worse, and by how much a change must exceed.
#[derive(Clone, Copy)]
enum Direction {
    /// Throughput: a drop is worse.
    Lower,
    /// Latency: a rise is worse (also by more than the floor).
    Higher,
    /// Error rate: a rise in points is worse.
    Points,
}

/// A figure of one run: its whole-phase value and the samples to test with.
struct Figure {
    value: f64,
    samples: Vec<f64>,
}

/// The figures of one row of one run, by metric.
fn row_figures(
    phase: &PhaseReport,
    row: Option<&OpReport>,
    series: &[crate::outcome::TimePoint],
    merged: Option<&super::Percentiles>,
) -> Vec<(&'static str, Figure)> {
    let mut out = Vec::new();
    match row {
        None => {
            // The phase as a whole: the per-second series, whole seconds inside the phase only.
            let (start, end) = (phase.start_s, phase.start_s + phase.duration_s);
            let inside: Vec<_> = series.iter().filter(|p| p.t - 1.0 >= start - 0.05 && p.t <= end + 0.05).collect();
            out.push(("ops_per_sec", Figure { value: phase.ops_per_sec, samples: inside.iter().map(|p| p.ops_per_sec).collect() }));
            let timed: Vec<_> = inside.iter().filter(|p| p.ops > p.errors && p.p50_us > 0).collect();
            if let Some(m) = merged {
                out.push(("p50_us", Figure { value: m.p50 as f64, samples: timed.iter().map(|p| p.p50_us as f64).collect() }));
                out.push(("p99_us", Figure { value: m.p99 as f64, samples: timed.iter().map(|p| p.p99_us as f64).collect() }));
            }
            let rate = |count: u64, errors: u64| if count == 0 { 0.0 } else { errors as f64 / count as f64 };
            out.push((
                "error_rate",
                Figure { value: rate(phase.count, phase.errors), samples: inside.iter().filter(|p| p.ops > 0).map(|p| rate(p.ops, p.errors)).collect() },
            ));
        }
        Some(o) => {
            out.push((
                "ops_per_sec",
                Figure { value: o.ops_per_sec, samples: o.blocks.iter().filter(|b| b.secs > 0.0).map(|b| b.count as f64 / b.secs).collect() },
            ));
            if let Some(l) = &o.latency_us {
                let lat =
                    |f: fn(&crate::metrics::BlockSample) -> u64| o.blocks.iter().filter(|b| b.count > b.errors && f(b) > 0).map(|b| f(b) as f64).collect();
                out.push(("p50_us", Figure { value: l.p50 as f64, samples: lat(|b| b.p50_us) }));
                out.push(("p99_us", Figure { value: l.p99 as f64, samples: lat(|b| b.p99_us) }));
                out.push(("p999_us", Figure { value: l.p999 as f64, samples: lat(|b| b.p999_us) }));
            }
            let errors: u64 = o.errors.values().sum();
            out.push((
                "error_rate",
                Figure {
                    value: if o.count == 0 { 0.0 } else { errors as f64 / o.count as f64 },
                    samples: o.blocks.iter().filter(|b| b.count > 0).map(|b| b.errors as f64 / b.count as f64).collect(),
                },
            ));
        }
    }
    out
}

fn direction(metric: &str) -> Direction {
    match metric {
        "ops_per_sec" => Direction::Lower,
        "error_rate" => Direction::Points,
        _ => Direction::Higher,
    }
}

/// A percentile is only judged when at least ten operations lie beyond it (p99 needs 1000
/// operations, p99.9 needs 10 000): below that it is one or two outliers.
fn enough_for(metric: &str, ops: u64) -> bool {
    let q = match metric {
        "p50_us" => 0.5,
        "p99_us" => 0.99,
        "p999_us" => 0.999,
        _ => return true,
    };
    ops as f64 * (1.0 - q) >= 10.0
}

/// Fewest samples on each side for a test: with fewer, no shift could be significant anyway.
const MIN_SAMPLES: usize = 5;

/// The merged latency percentiles of a phase's round trips (for its whole-phase figures).
fn phase_percentiles(p: &PhaseReport) -> Option<super::Percentiles> {
    let mut merged = crate::metrics::new_histogram();
    for o in p.operations.iter().filter(|o| o.unit == crate::metrics::OpRole::RoundTrip) {
        if let Some(h) = o.histogram.as_deref().and_then(super::deserialize_histogram) {
            merged.add(&h).ok()?;
        }
    }
    super::Percentiles::of(&merged)
}

fn row_name(phase: &str, o: Option<&OpReport>) -> String {
    match o {
        Some(o) => format!("{phase} {} {}", o.workload, o.operation),
        None => format!("phase {phase}"),
    }
}

/// Compares the current report with one or more baselines.
pub fn compare(baselines: &[Report], cur: &Report, t: Tolerances) -> Result<Comparison, NotComparable> {
    if baselines.is_empty() {
        return Err(NotComparable("no baseline report given".into()));
    }
    let mut warnings = Vec::new();
    for b in baselines.iter().filter(|b| b.scenario != cur.scenario) {
        warnings.push(format!("baseline {} ran scenario `{}`, the current run `{}`", b.run_id, b.scenario, cur.scenario));
    }
    // Rows: every phase (as a whole) and operation of the current run, matched in each baseline.
    struct Pending {
        phase: String,
        workload: String,
        operation: String,
        deltas: Vec<(Delta, Direction, Vec<f64>, Vec<f64>)>,
    }
    let mut pending: Vec<Pending> = Vec::new();
    let mut missing = Vec::new();
    let mut new = Vec::new();
    let keys_of = |r: &Report| -> Vec<(String, Option<(String, String)>)> {
        r.phases
            .iter()
            .flat_map(|p| {
                std::iter::once((p.name.clone(), None)).chain(p.operations.iter().map(|o| (p.name.clone(), Some((o.workload.clone(), o.operation.clone())))))
            })
            .collect()
    };
    let find = |r: &Report, key: &(String, Option<(String, String)>)| -> Option<(PhaseReport, Option<OpReport>)> {
        let p = r.phases.iter().find(|p| p.name == key.0)?;
        match &key.1 {
            None => Some((p.clone(), None)),
            Some((w, o)) => Some((p.clone(), Some(p.operations.iter().find(|x| &x.workload == w && &x.operation == o)?.clone()))),
        }
    };
    for key in keys_of(&baselines[0]).into_iter().chain(baselines[1..].iter().flat_map(keys_of)) {
        let in_all_baselines = baselines.iter().all(|b| find(b, &key).is_some());
        if find(cur, &key).is_none() && in_all_baselines {
            let name = key.1.as_ref().map_or_else(|| format!("phase {}", key.0), |(w, o)| format!("{} {w} {o}", key.0));
            if !missing.contains(&name) {
                missing.push(name);
            }
        }
    }
    for key in keys_of(cur) {
        let (cp, co) = find(cur, &key).expect("the key comes from this report");
        let base: Vec<(PhaseReport, Option<OpReport>, &Report)> = baselines.iter().filter_map(|b| find(b, &key).map(|(p, o)| (p, o, b))).collect();
        if base.is_empty() {
            new.push(row_name(&key.0, co.as_ref()));
            continue;
        }
        let cur_figs = row_figures(&cp, co.as_ref(), &cur.time_series, phase_percentiles(&cp).as_ref());
        let base_figs: Vec<Vec<(&'static str, Figure)>> =
            base.iter().map(|(p, o, r)| row_figures(p, o.as_ref(), &r.time_series, phase_percentiles(p).as_ref())).collect();
        let base_ops = median(&base.iter().map(|(p, o, _)| o.as_ref().map_or(p.count, |o| o.count) as f64).collect::<Vec<_>>()) as u64;
        let mut deltas = Vec::new();
        for (metric, c) in cur_figs {
            let b_values: Vec<f64> = base_figs.iter().filter_map(|f| f.iter().find(|(m, _)| *m == metric).map(|(_, x)| x.value)).collect();
            if b_values.is_empty() {
                continue;
            }
            let b_samples: Vec<f64> = base_figs.iter().flat_map(|f| f.iter().filter(|(m, _)| *m == metric).flat_map(|(_, x)| x.samples.clone())).collect();
            let b = median(&b_values);
            let note = if base_ops < t.min_ops {
                Some(format!("fewer than {} operations in the baseline", t.min_ops))
            } else if !enough_for(metric, base_ops) {
                Some("too few operations behind this percentile".to_owned())
            } else if b_samples.len() < MIN_SAMPLES || c.samples.len() < MIN_SAMPLES {
                Some(format!("fewer than {MIN_SAMPLES} samples (seconds or blocks) on a side"))
            } else {
                None
            };
            let delta = Delta {
                metric: metric.into(),
                baseline: b,
                current: c.value,
                change: (b > 0.0).then(|| c.value / b - 1.0),
                samples: [b_samples.len(), c.samples.len()],
                p_value: note.is_none().then(|| mann_whitney(&b_samples, &c.samples)),
                verdict: if note.is_some() { Verdict::NotJudged } else { Verdict::Unchanged },
                note,
            };
            deltas.push((delta, direction(metric), b_samples, c.samples));
        }
        pending.push(Pending {
            phase: key.0.clone(),
            workload: key.1.as_ref().map_or("*".into(), |k| k.0.clone()),
            operation: key.1.map_or("*".into(), |k| k.1),
            deltas,
        });
    }
    if pending.is_empty() {
        let phases = |r: &Report| r.phases.iter().map(|p| p.name.clone()).collect::<Vec<_>>().join(", ");
        return Err(NotComparable(format!(
            "the reports share no phase: the baseline has [{}], the current run [{}]; compare runs of the same scenario",
            phases(&baselines[0]),
            phases(cur)
        )));
    }
    // Holm's correction over every test made.
    let p_values: Vec<f64> = pending.iter().flat_map(|r| r.deltas.iter().filter_map(|d| d.0.p_value)).collect();
    if p_values.is_empty() && missing.is_empty() {
        // Saying "no regression" about runs nothing could be judged on would be a false pass.
        return Err(NotComparable(format!(
            "no figure has enough samples to judge (at least {MIN_SAMPLES} seconds of a phase, {} baseline operations); run longer phases",
            t.min_ops
        )));
    }
    let significant = holm(&p_values, t.alpha);
    let mut k = 0;
    let mut rows = Vec::new();
    for r in pending {
        let mut out = Vec::new();
        for (mut d, dir, _, _) in r.deltas {
            if d.p_value.is_some() {
                let sig = significant[k];
                k += 1;
                let change = d.current - d.baseline;
                let rel = d.change.unwrap_or(if change > 0.0 { f64::INFINITY } else { 0.0 });
                let (worse, better) = match dir {
                    Direction::Lower => (rel < -t.max_regression, rel > t.max_regression),
                    Direction::Higher => {
                        (rel > t.max_latency_regression && change > t.latency_floor_us, rel < -t.max_latency_regression && -change > t.latency_floor_us)
                    }
                    Direction::Points => (change > t.max_error_rate_increase, -change > t.max_error_rate_increase),
                };
                d.verdict = match (sig, worse, better) {
                    (true, true, _) => Verdict::Regression,
                    (true, _, true) => Verdict::Improvement,
                    _ => Verdict::Unchanged,
                };
            }
            out.push(d);
        }
        let regression = out.iter().any(|d| d.verdict == Verdict::Regression);
        rows.push(RowComparison { phase: r.phase, workload: r.workload, operation: r.operation, deltas: out, regression });
    }
    let mut phases = Vec::new();
    for p in &cur.phases {
        let changes: Vec<String> = rows
            .iter()
            .filter(|r| r.phase == p.name)
            .flat_map(|r| {
                r.deltas.iter().filter(|d| matches!(d.verdict, Verdict::Regression | Verdict::Improvement)).map(move |d| {
                    let what = if r.workload == "*" { String::new() } else { format!("{} {} ", r.workload, r.operation) };
                    format!("{what}{} {}", d.metric, show_change(d))
                })
            })
            .collect();
        let lost = missing.iter().any(|m| m.starts_with(&format!("{} ", p.name)) || *m == format!("phase {}", p.name));
        let verdict = if lost || rows.iter().any(|r| r.phase == p.name && r.regression) {
            "regression"
        } else if changes.is_empty() {
            "unchanged"
        } else {
            "improvement"
        };
        phases.push(PhaseVerdict { phase: p.name.clone(), verdict: verdict.into(), changes });
    }
    let passed = missing.is_empty() && !rows.iter().any(|r| r.regression);
    Ok(Comparison {
        baselines: baselines.iter().map(|b| b.run_id.clone()).collect(),
        current: cur.run_id.clone(),
        tolerances: t,
        tests: p_values.len(),
        phases,
        rows,
        missing,
        new,
        warnings,
        passed,
    })
}

fn show(metric: &str, v: f64) -> String {
    match metric {
        "ops_per_sec" => format!("{v:.1}"),
        "error_rate" => format!("{:.3}%", v * 100.0),
        _ => format_us(v),
    }
}

fn show_change(d: &Delta) -> String {
    match (d.metric.as_str(), d.change) {
        ("error_rate", _) => format!("{:+.3} points", (d.current - d.baseline) * 100.0),
        (_, Some(x)) => format!("{:+.1}%", x * 100.0),
        _ => "from 0".into(),
    }
}

/// The comparison as text: a verdict per phase, then the rows that changed (every row with `all`).
pub fn render(c: &Comparison, all: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "baseline {} ({} report{})  →  current {}",
        c.baselines.join(", "),
        c.baselines.len(),
        if c.baselines.len() == 1 { "" } else { "s" },
        c.current
    );
    for w in &c.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let t = &c.tolerances;
    let _ = writeln!(
        s,
        "a change counts when it is significant (Mann–Whitney U over per-second samples of a phase and per-block samples of an operation, Holm-corrected over {} tests, family-wise α {}) and beyond its tolerance: throughput −{:.0}%, latency +{:.0}% and +{}, error rate +{:.3} points; rows under {} baseline ops are not judged\n",
        c.tests,
        t.alpha,
        t.max_regression * 100.0,
        t.max_latency_regression * 100.0,
        format_us(t.latency_floor_us),
        t.max_error_rate_increase * 100.0,
        t.min_ops
    );
    for p in &c.phases {
        let mark = match p.verdict.as_str() {
            "regression" => "REGRESSION",
            "improvement" => "better",
            _ => "~",
        };
        let detail = if p.changes.is_empty() { String::new() } else { format!(": {}", p.changes.join("; ")) };
        let _ = writeln!(s, "phase {:<16} {mark}{detail}", p.phase);
    }
    let shown: Vec<(&RowComparison, &Delta)> = c
        .rows
        .iter()
        .flat_map(|r| r.deltas.iter().map(move |d| (r, d)))
        .filter(|(_, d)| all || matches!(d.verdict, Verdict::Regression | Verdict::Improvement))
        .collect();
    if !shown.is_empty() {
        let _ = writeln!(
            s,
            "\n{:<12} {:<14} {:<14} {:<12} {:>12} {:>12} {:>9} {:>9}  verdict",
            "phase", "workload", "operation", "metric", "baseline", "current", "change", "p"
        );
        for (r, d) in shown {
            let change = d.change.map_or_else(|| "-".to_owned(), |x| format!("{:+.1}%", x * 100.0));
            let p = d.p_value.map_or_else(|| "-".to_owned(), |p| format!("{p:.1e}"));
            let verdict = match d.verdict {
                Verdict::Regression => "REGRESSION".to_owned(),
                Verdict::Improvement => "better".to_owned(),
                Verdict::Unchanged => "~".to_owned(),
                Verdict::NotJudged => format!("not judged ({})", d.note.as_deref().unwrap_or("")),
            };
            let _ = writeln!(
                s,
                "{:<12} {:<14} {:<14} {:<12} {:>12} {:>12} {:>9} {:>9}  {verdict}",
                r.phase,
                r.workload,
                r.operation,
                d.metric,
                show(&d.metric, d.baseline),
                show(&d.metric, d.current),
                change,
                p
            );
        }
    }
    for m in &c.missing {
        let _ = writeln!(s, "MISSING in the current run: {m}");
    }
    for n in &c.new {
        let _ = writeln!(s, "new in the current run (not judged): {n}");
    }
    let regressions = c.rows.iter().filter(|r| r.regression).count();
    let unchanged = c.rows.iter().flat_map(|r| &r.deltas).filter(|d| d.verdict == Verdict::Unchanged).count();
    let not_judged = c.rows.iter().flat_map(|r| &r.deltas).filter(|d| d.verdict == Verdict::NotJudged).count();
    let _ = writeln!(
        s,
        "\n{} ({unchanged} figures within noise, {not_judged} not judged{})",
        if c.passed { "verdict: no regression".to_owned() } else { format!("verdict: REGRESSION ({regressions} rows regressed, {} missing)", c.missing.len()) },
        if all { "" } else { "; --all shows every row" }
    );
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
        assert!(!enough_for("p99_us", 999));
        assert!(enough_for("p99_us", 1000));
        assert!(!enough_for("p999_us", 9_999));
        assert!(enough_for("p50_us", 20));
        assert!(enough_for("ops_per_sec", 1));
        assert_eq!(parse_fraction("10%"), Ok(0.1));
        assert!(parse_fraction("-1").is_err());
    }
}
