//! `redis-test compare BASELINE... CURRENT`: per phase and operation, whether throughput, p50, p99,
//! p99.9 or the error rate changed — judged run against runs, the way benchmark CI systems judge
//! (Redis's own benchmark CI, Bencher, CodSpeed), so that noise is not a regression and a real
//! slowdown is one.
//!
//! Each figure is the run's own: a phase's or an operation's whole latency histogram, its
//! successful operations per second, its error rate. Samples within one run (seconds, blocks) say
//! nothing about how much two runs of the same code differ, so the baselines' spread is the noise:
//!
//! - with several baselines, a figure regressed when it is worse than their median by more than
//!   its tolerance *and* worse than the worst baseline (outside their range); a row whose
//!   baselines disagree among themselves by more than the tolerance is **unstable**: it counts
//!   only when the current run is worse than the worst baseline by more than the tolerance;
//! - with one baseline, run-to-run noise is unknown: only a change beyond twice the tolerance
//!   counts, and the comparison says so;
//! - latency also needs an absolute rise beyond `latency_floor`, and a percentile needs enough
//!   operations behind it (ten beyond it: p99 needs 1 000 operations, p99.9 10 000) in every run.

use std::collections::HashMap;
use std::fmt::Write as _;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::thresholds::format_us;
use super::{OpReport, PhaseReport, Report};

/// How much worse the current run may be before a change counts as a regression.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tolerances {
    /// Largest throughput drop, as a fraction (0.05 = 5 %), with several baselines.
    pub max_regression: f64,
    /// Largest latency rise (p50, p99, p99.9), as a fraction, with several baselines.
    pub max_latency_regression: f64,
    /// Latency rises smaller than this many µs are noise, never a regression.
    pub latency_floor_us: f64,
    /// Largest rise of the error rate, as a fraction of operations (0.001 = 0.1 percentage points).
    pub max_error_rate_increase: f64,
    /// Rows with fewer operations than this in a baseline are shown but not judged.
    pub min_ops: u64,
    /// With a single baseline the throughput and error-rate tolerances are multiplied by this:
    /// run-to-run noise is unknown.
    pub single_baseline_factor: f64,
    /// With a single baseline a latency figure regressed only beyond this many times the
    /// baseline's: a run's tail latency varies by a factor of several between like runs on a
    /// busy machine (measured: p99 0.5–2.5 ms in five quiet runs, 40–420 ms in five beside a CPU
    /// burner; `scripts/compare-noise`).
    #[serde(default = "single_baseline_latency_ratio")]
    pub single_baseline_latency_ratio: f64,
}

fn single_baseline_latency_ratio() -> f64 {
    5.0
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            max_regression: 0.05,
            max_latency_regression: 0.25,
            latency_floor_us: 1000.0,
            max_error_rate_increase: 0.001,
            min_ops: 100,
            single_baseline_factor: 2.0,
            single_baseline_latency_ratio: single_baseline_latency_ratio(),
        }
    }
}

/// What became of one figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Worse beyond the tolerance and outside the baselines' range.
    Regression,
    /// Better beyond the tolerance and outside the baselines' range.
    Improvement,
    /// Within the tolerance or within the baselines' range (`~`).
    Unchanged,
    /// The baselines disagree among themselves by more than the tolerance, and the current run is
    /// not clearly outside them.
    Unstable,
    /// Not enough operations to tell.
    NotJudged,
}

/// One compared figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delta {
    /// `ops_per_sec` (successful operations per second), `p50_us`, `p99_us`, `p999_us` or
    /// `error_rate`.
    pub metric: String,
    /// Baseline value: the median over the baselines.
    pub baseline: f64,
    /// The lowest and highest baseline value.
    pub baseline_range: [f64; 2],
    /// Current value.
    pub current: f64,
    /// Relative change from the median (current / baseline − 1); absent when the baseline is 0.
    pub change: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why it was not judged, or why it is unstable.
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
    /// The figures that changed, as `workload operation metric change`.
    pub changes: Vec<String>,
}

/// The whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Comparison {
    /// Baseline run ids.
    pub baselines: Vec<String>,
    /// Current run id.
    pub current: String,
    /// The tolerances applied (before the single-baseline factor).
    pub tolerances: Tolerances,
    /// Whether run-to-run noise was known (two or more baselines).
    pub noise_known: bool,
    /// Per phase verdicts.
    pub phases: Vec<PhaseVerdict>,
    /// Rows, phase by phase.
    pub rows: Vec<RowComparison>,
    /// Rows of every baseline that the current report lacks: each is a failure (something that
    /// was measured before no longer is).
    pub missing: Vec<String>,
    /// Rows of the current report that no baseline has (shown, not judged).
    pub new: Vec<String>,
    /// Warnings (different scenarios or plans).
    pub warnings: Vec<String>,
    /// True when nothing regressed and nothing is missing.
    pub passed: bool,
}

/// Why two sets of reports cannot be compared.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotComparable(pub String);

/// Which way is worse.
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    /// Throughput: a drop is worse.
    Lower,
    /// Latency: a rise is worse (also by more than the floor).
    Higher,
    /// Error rate: a rise in points is worse.
    Points,
}

fn direction(metric: &str) -> Direction {
    match metric {
        "ops_per_sec" => Direction::Lower,
        "error_rate" => Direction::Points,
        _ => Direction::Higher,
    }
}

/// A row of one run: the phase as a whole (`op` absent) or one operation.
#[derive(Clone, Copy)]
struct Row<'a> {
    phase: &'a PhaseReport,
    op: Option<&'a OpReport>,
}

impl Row<'_> {
    /// Operations behind the row (successes and failures).
    fn ops(&self) -> u64 {
        self.op.map_or(self.phase.count, |o| o.count)
    }

    /// Successful operations behind its latency figures.
    fn timed(&self) -> u64 {
        match self.op {
            Some(o) => o.ok,
            None => self.phase.count.saturating_sub(self.phase.errors),
        }
    }

    /// How much an operation's throughput moves by chance alone: a phase's operations are drawn at
    /// random from its mix, so an operation's share of n round trips has a binomial spread of
    /// √(p(1−p)/n). Four of those (relative to the share) is noise, not a regression: 50/50 GET/SET
    /// over 3 000 round trips moves each by ±5 % now and then. 0 for the phase as a whole.
    fn mix_noise(&self) -> f64 {
        let Some(o) = self.op else { return 0.0 };
        let (k, n) = (o.count as f64, self.phase.count as f64);
        if k <= 0.0 {
            return 0.0;
        }
        if o.unit == crate::metrics::OpRole::RoundTrip && n >= k && n > 0.0 {
            let p = k / n;
            4.0 * (p * (1.0 - p) / n).sqrt() / p
        } else {
            // Commands inside batches, deliveries: a count's own (Poisson) spread.
            4.0 / k.sqrt()
        }
    }

    /// The row's figures by metric, each the run's own (whole histograms, whole phase).
    fn figures(&self) -> Vec<(&'static str, f64)> {
        let secs = self.phase.duration_s;
        let mut out = Vec::new();
        let (count, errors, latency) = match self.op {
            Some(o) => (o.count, o.errors.values().sum::<u64>(), o.latency_us),
            None => (self.phase.count, self.phase.errors, phase_percentiles(self.phase)),
        };
        let ok = count.saturating_sub(errors);
        // Round trips are what `rate` schedules; commands inside a batch are counted, not timed.
        if self.op.is_none_or(|o| o.unit != crate::metrics::OpRole::Command || count > 0) && secs > 0.0 {
            out.push(("ops_per_sec", ok as f64 / secs));
        }
        if let Some(l) = latency {
            out.push(("p50_us", l.p50 as f64));
            out.push(("p99_us", l.p99 as f64));
            out.push(("p999_us", l.p999 as f64));
        }
        out.push(("error_rate", if count == 0 { 0.0 } else { errors as f64 / count as f64 }));
        out
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

/// Row key: phase, and workload and operation (`None` for the phase as a whole).
type Key = (String, Option<(String, String)>);

/// Every row of a report, indexed once (a comparison of thousands of rows stays linear).
fn rows_of(r: &Report) -> (Vec<Key>, HashMap<Key, Row<'_>>) {
    let mut order = Vec::new();
    let mut index = HashMap::new();
    for p in &r.phases {
        let key: Key = (p.name.clone(), None);
        if index.insert(key.clone(), Row { phase: p, op: None }).is_none() {
            order.push(key);
        }
        for o in &p.operations {
            let key: Key = (p.name.clone(), Some((o.workload.clone(), o.operation.clone())));
            if index.insert(key.clone(), Row { phase: p, op: Some(o) }).is_none() {
                order.push(key);
            }
        }
    }
    (order, index)
}

fn key_name(k: &Key) -> String {
    match &k.1 {
        Some((w, o)) => format!("{} {w} {o}", k.0),
        None => format!("phase {}", k.0),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// How much worse `x` is than `reference` in the metric's direction, as a fraction (or in points
/// for the error rate); negative when better.
fn worse_by(dir: Direction, x: f64, reference: f64) -> f64 {
    match dir {
        Direction::Higher if reference > 0.0 => x / reference - 1.0,
        Direction::Higher => {
            if x > 0.0 {
                f64::INFINITY
            } else {
                0.0
            }
        }
        Direction::Lower if reference > 0.0 => 1.0 - x / reference,
        Direction::Lower => 0.0,
        Direction::Points => x - reference,
    }
}

/// How far beyond the worst of baselines that disagree among themselves a run must be, as a power
/// of their spread (worst ÷ median): a history that already spans a factor S puts its next run up
/// to about S^β beyond its worst by chance. Operation rows, with fewer operations each, get more.
const SPREAD_POWER_PHASE: f64 = 0.25;
const SPREAD_POWER_OPERATION: f64 = 0.5;

/// Judges one figure: the current value against the baselines' values. `noise` is the relative
/// change the figure shows by chance alone (see [`Row::mix_noise`]): no tolerance is tighter.
/// `spread_power` is [`SPREAD_POWER_PHASE`] or [`SPREAD_POWER_OPERATION`].
fn judge(metric: &str, current: f64, base: &[f64], t: &Tolerances, noise: f64, spread_power: f64) -> (Verdict, Option<String>) {
    let dir = direction(metric);
    let single = base.len() < 2;
    let factor = if single { t.single_baseline_factor } else { 1.0 };
    let tol = match dir {
        Direction::Lower => factor * t.max_regression.max(noise),
        Direction::Higher if single => t.single_baseline_latency_ratio.max(1.0 + t.max_latency_regression) - 1.0,
        Direction::Higher => t.max_latency_regression,
        Direction::Points => factor * t.max_error_rate_increase,
    };
    let m = median(base);
    let worst = base.iter().copied().max_by(|a, b| worse_by(dir, *a, m).total_cmp(&worse_by(dir, *b, m))).unwrap_or(m);
    let best = base.iter().copied().min_by(|a, b| worse_by(dir, *a, m).total_cmp(&worse_by(dir, *b, m))).unwrap_or(m);
    // Latency must also rise by more than the floor: sub-millisecond wobble is never a regression.
    let floor_ok = |from: f64| dir != Direction::Higher || (current - from).abs() > t.latency_floor_us;
    let unstable = !single && worse_by(dir, worst, m) > tol;
    if unstable {
        // The baselines disagree: only a run clearly beyond the worst of them counts — by the
        // tolerance, and by more the more they disagree (a ratio metric's spread as a factor).
        // The spread as a factor (worst ÷ median, or median ÷ worst for throughput), and the margin
        // beyond the worst in `worse_by`'s units: a factor of spread^power.
        let margin = |extreme: f64| match dir {
            Direction::Points => tol,
            Direction::Higher => tol.max((1.0 + worse_by(dir, extreme, m)).powf(spread_power) - 1.0),
            Direction::Lower => {
                let spread = 1.0 / (1.0 - worse_by(dir, extreme, m)).max(1e-9);
                tol.max(1.0 - spread.powf(-spread_power))
            }
        };
        if worse_by(dir, current, worst) > margin(worst) && floor_ok(worst) {
            return (Verdict::Regression, Some("beyond every baseline, which disagree among themselves".into()));
        }
        if -worse_by(dir, current, best) > tol && floor_ok(best) {
            return (Verdict::Improvement, Some("beyond every baseline, which disagree among themselves".into()));
        }
        let spread = match dir {
            Direction::Points => format!("{:.3} points", (worst - m).abs() * 100.0),
            _ => format!("{:.0}%", worse_by(dir, worst, m) * 100.0),
        };
        return (Verdict::Unstable, Some(format!("the baselines differ by {spread} among themselves")));
    }
    if worse_by(dir, current, m) > tol && worse_by(dir, current, worst) > 0.0 && floor_ok(m) && floor_ok(worst) {
        return (Verdict::Regression, None);
    }
    if -worse_by(dir, current, m) > tol && -worse_by(dir, current, best) > 0.0 && floor_ok(m) && floor_ok(best) {
        return (Verdict::Improvement, None);
    }
    (Verdict::Unchanged, None)
}

/// Compares the current report with one or more baselines.
pub fn compare(baselines: &[Report], cur: &Report, t: Tolerances) -> Result<Comparison, NotComparable> {
    if baselines.is_empty() {
        return Err(NotComparable("no baseline report given".into()));
    }
    // An interrupted run's figures cover the part that ran: judged against whole runs, its last
    // phase would pass or fail on a fraction of its length.
    for (what, r) in baselines.iter().map(|b| ("baseline", b)).chain(std::iter::once(("the current run", cur))) {
        if r.interrupted {
            return Err(NotComparable(format!(
                "{what} {} was interrupted: its figures cover the part that ran, not the run; compare runs that finished",
                r.run_id
            )));
        }
    }
    let mut warnings = Vec::new();
    for b in baselines.iter().filter(|b| b.scenario != cur.scenario) {
        warnings.push(format!("baseline {} ran scenario `{}`, the current run `{}`", b.run_id, b.scenario, cur.scenario));
    }
    for b in baselines.iter().filter(|b| b.scenario == cur.scenario && b.plan_fingerprint.is_some() && cur.plan_fingerprint.is_some()) {
        if b.plan_fingerprint != cur.plan_fingerprint || b.time_scale != cur.time_scale {
            warnings.push(format!("baseline {} ran another plan of the scenario (a rate, a duration, a fault or --time-scale differs)", b.run_id));
        }
    }
    let noise_known = baselines.len() >= 2;
    if !noise_known {
        warnings.push(format!(
            "one baseline: run-to-run noise is unknown, so throughput and error rate count only beyond {}× their tolerances and latency beyond {}× the baseline's (give several baselines, e.g. --baseline DIR)",
            t.single_baseline_factor,
            t.single_baseline_latency_ratio
        ));
    }
    let indexed: Vec<(Vec<Key>, HashMap<Key, Row<'_>>)> = baselines.iter().map(rows_of).collect();
    let (cur_order, cur_rows) = rows_of(cur);
    let mut missing = Vec::new();
    let mut seen_missing = std::collections::HashSet::new();
    for (order, _) in &indexed {
        for key in order {
            if !cur_rows.contains_key(key) && indexed.iter().all(|(_, rows)| rows.contains_key(key)) && seen_missing.insert(key.clone()) {
                missing.push(key_name(key));
            }
        }
    }
    let mut rows = Vec::new();
    let mut new = Vec::new();
    let mut judged = 0usize;
    for key in &cur_order {
        let row = cur_rows[key];
        let base: Vec<Row<'_>> = indexed.iter().filter_map(|(_, rows)| rows.get(key).copied()).collect();
        if base.is_empty() {
            new.push(key_name(key));
            continue;
        }
        let base_figs: Vec<Vec<(&'static str, f64)>> = base.iter().map(Row::figures).collect();
        let fewest_base_ops = base.iter().map(Row::ops).min().unwrap_or(0);
        let fewest_timed = base.iter().map(Row::timed).chain(std::iter::once(row.timed())).min().unwrap_or(0);
        let mut deltas = Vec::new();
        for (metric, current) in row.figures() {
            let values: Vec<f64> = base_figs.iter().filter_map(|f| f.iter().find(|(m, _)| *m == metric).map(|(_, v)| *v)).collect();
            if values.is_empty() {
                continue;
            }
            let b = median(&values);
            let range = [values.iter().copied().fold(f64::INFINITY, f64::min), values.iter().copied().fold(f64::NEG_INFINITY, f64::max)];
            let not_judged = if fewest_base_ops < t.min_ops {
                Some(format!("fewer than {} operations in a baseline", t.min_ops))
            } else if !enough_for(metric, fewest_timed) {
                Some("too few operations behind this percentile".to_owned())
            } else {
                None
            };
            let (verdict, note) = match not_judged {
                Some(n) => (Verdict::NotJudged, Some(n)),
                None => {
                    judged += 1;
                    let noise = if metric == "ops_per_sec" { row.mix_noise() } else { 0.0 };
                    let power = if row.op.is_some() { SPREAD_POWER_OPERATION } else { SPREAD_POWER_PHASE };
                    judge(metric, current, &values, &t, noise, power)
                }
            };
            deltas.push(Delta {
                metric: metric.into(),
                baseline: b,
                baseline_range: range,
                current,
                change: (b > 0.0).then(|| current / b - 1.0),
                verdict,
                note,
            });
        }
        let regression = deltas.iter().any(|d| d.verdict == Verdict::Regression);
        let (workload, operation) = key.1.clone().unwrap_or_else(|| ("*".into(), "*".into()));
        rows.push(RowComparison { phase: key.0.clone(), workload, operation, deltas, regression });
    }
    if rows.is_empty() {
        let phases = |r: &Report| r.phases.iter().map(|p| p.name.clone()).collect::<Vec<_>>().join(", ");
        return Err(NotComparable(format!(
            "the reports share no phase: the baseline has [{}], the current run [{}]; compare runs of the same scenario",
            phases(&baselines[0]),
            phases(cur)
        )));
    }
    if judged == 0 && missing.is_empty() {
        // Saying "no regression" about runs nothing could be judged on would be a false pass.
        return Err(NotComparable(format!("no figure has enough operations to judge (at least {} per row in every baseline); run longer phases", t.min_ops)));
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
        noise_known,
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
/// Names from the reports are printed with control characters escaped.
pub fn render(c: &Comparison, all: bool) -> String {
    let e = crate::units::escape_control;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "baseline {} ({} report{})  →  current {}",
        e(&c.baselines.join(", ")),
        c.baselines.len(),
        if c.baselines.len() == 1 { "" } else { "s" },
        e(&c.current)
    );
    for w in &c.warnings {
        let _ = writeln!(s, "warning: {}", e(w));
    }
    let t = &c.tolerances;
    let k = if c.noise_known { 1.0 } else { t.single_baseline_factor };
    let _ = writeln!(
        s,
        "each figure is the run's own (whole histograms, whole phases); a change counts when it is beyond its tolerance from the baselines' median and outside their range (beyond their spread where they disagree): throughput −{:.0}%, latency +{:.0}% and +{}, error rate +{:.3} points{}; rows under {} baseline ops are not judged\n",
        t.max_regression * 100.0 * k,
        t.max_latency_regression * 100.0,
        format_us(t.latency_floor_us),
        t.max_error_rate_increase * 100.0 * k,
        if c.noise_known {
            String::new()
        } else {
            format!(
                " (one baseline: throughput and error-rate tolerances ×{}, latency only beyond {}× the baseline)",
                t.single_baseline_factor, t.single_baseline_latency_ratio
            )
        },
        t.min_ops
    );
    for p in &c.phases {
        let mark = match p.verdict.as_str() {
            "regression" => "REGRESSION",
            "improvement" => "better",
            _ => "~",
        };
        let detail = if p.changes.is_empty() { String::new() } else { format!(": {}", p.changes.join("; ")) };
        let _ = writeln!(s, "phase {:<16} {mark}{}", e(&p.phase), e(&detail));
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
            "\n{:<12} {:<14} {:<14} {:<12} {:>12} {:>23} {:>12} {:>9}  verdict",
            "phase", "workload", "operation", "metric", "baseline", "baseline range", "current", "change"
        );
        for (r, d) in shown {
            let change = d.change.map_or_else(|| "-".to_owned(), |x| format!("{:+.1}%", x * 100.0));
            let verdict = match d.verdict {
                Verdict::Regression => format!("REGRESSION{}", d.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()),
                Verdict::Improvement => "better".to_owned(),
                Verdict::Unchanged => "~".to_owned(),
                Verdict::Unstable => format!("unstable ({})", d.note.as_deref().unwrap_or("")),
                Verdict::NotJudged => format!("not judged ({})", d.note.as_deref().unwrap_or("")),
            };
            let range = format!("{}–{}", show(&d.metric, d.baseline_range[0]), show(&d.metric, d.baseline_range[1]));
            let _ = writeln!(
                s,
                "{:<12} {:<14} {:<14} {:<12} {:>12} {:>23} {:>12} {:>9}  {verdict}",
                e(&r.phase),
                e(&r.workload),
                e(&r.operation),
                d.metric,
                show(&d.metric, d.baseline),
                range,
                show(&d.metric, d.current),
                change,
            );
        }
    }
    for m in &c.missing {
        let _ = writeln!(s, "MISSING in the current run: {}", e(m));
    }
    for n in &c.new {
        let _ = writeln!(s, "new in the current run (not judged): {}", e(n));
    }
    let regressions = c.rows.iter().filter(|r| r.regression).count();
    let count = |v: Verdict| c.rows.iter().flat_map(|r| &r.deltas).filter(|d| d.verdict == v).count();
    let _ = writeln!(
        s,
        "\n{} ({} figures unchanged, {} unstable, {} not judged{})",
        if c.passed { "verdict: no regression".to_owned() } else { format!("verdict: REGRESSION ({regressions} rows regressed, {} missing)", c.missing.len()) },
        count(Verdict::Unchanged),
        count(Verdict::Unstable),
        count(Verdict::NotJudged),
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
    fn an_interrupted_run_is_not_compared() {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/report-v1.json");
        let whole = crate::report::read::read(std::path::Path::new(fixture)).unwrap();
        assert!(compare(std::slice::from_ref(&whole), &whole, Tolerances::default()).is_ok_and(|c| c.passed));
        let mut cut = whole.clone();
        cut.interrupted = true;
        for (base, cur) in [(&whole, &cut), (&cut, &whole)] {
            let e = compare(std::slice::from_ref(base), cur, Tolerances::default()).unwrap_err().0;
            assert!(e.contains("was interrupted: its figures cover the part that ran"), "{e}");
        }
    }

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

    #[test]
    fn runs_are_judged_against_the_baselines_median_and_range() {
        let t = Tolerances::default();
        // regression: verdicts II item 6. A warm-up p99 of 529 µs → 49.25 ms is a regression.
        assert_eq!(judge("p99_us", 49_250.0, &[529.0, 610.0, 480.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Regression);
        assert_eq!(judge("p99_us", 49_250.0, &[529.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Regression, "one baseline still sees 90×");
        assert_eq!(judge("p99_us", 2_400.0, &[529.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Unchanged, "4.5× with one baseline: noise unknown");
        // Within the baselines' range is noise, whatever its size against the median.
        assert_eq!(judge("p99_us", 2_600.0, &[900.0, 1_000.0, 2_800.0, 950.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Unstable);
        // Beyond the worst of unstable baselines by more than the tolerance counts.
        assert_eq!(judge("p99_us", 9_000.0, &[900.0, 1_000.0, 2_800.0, 950.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Regression);
        // A history spanning 0.3–25 ms (runs recorded while a CPU burner held a core): 28 ms is
        // its next run by chance, 48 ms (a stalled warm-up) is beyond it.
        let history = [284.0, 585.0, 905.0, 920.0, 975.0, 2_620.0, 3_370.0, 5_847.0, 14_505.0, 24_872.0];
        assert_eq!(judge("p99_us", 28_000.0, &history, &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Unstable);
        assert_eq!(judge("p99_us", 48_500.0, &history, &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Regression);
        // Sub-millisecond latency wobble never counts.
        assert_eq!(judge("p99_us", 900.0, &[500.0, 520.0, 510.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Unchanged);
        // A 10 % throughput cap against steady baselines; 4 % is within the tolerance.
        assert_eq!(judge("ops_per_sec", 18_000.0, &[20_000.0, 19_990.0, 19_995.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Regression);
        assert_eq!(judge("ops_per_sec", 19_200.0, &[20_000.0, 19_990.0, 19_995.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Unchanged);
        // One baseline: noise unknown, twice the tolerance.
        assert_eq!(judge("ops_per_sec", 18_500.0, &[20_000.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Unchanged);
        assert_eq!(judge("ops_per_sec", 17_000.0, &[20_000.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Regression);
        // Error rate in points.
        assert_eq!(judge("error_rate", 0.02, &[0.0, 0.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Regression);
        assert_eq!(judge("error_rate", 0.0005, &[0.0, 0.0], &t, 0.0, SPREAD_POWER_PHASE).0, Verdict::Unchanged);
        // An operation's share of a random mix moves by chance: within its noise, no verdict.
        assert_eq!(judge("ops_per_sec", 237.0, &[250.0, 251.0, 249.0], &t, 0.073, SPREAD_POWER_PHASE).0, Verdict::Unchanged);
    }
}
