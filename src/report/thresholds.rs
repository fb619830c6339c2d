//! Threshold verdicts: each rule's metric is computed over its scope (phase, workload, operation)
//! from the report alone — its rows' exact latency histograms and counters, its faults and verify
//! results — so that a run and a merge of sharded runs are judged by the same code. A rule with
//! nothing in scope fails: a nightly job must not pass on a check that measured nothing.

use hdrhistogram::Histogram;

use crate::metrics::OpRole;
use crate::outcome::Recovery;
use crate::scenario::model::{Metric, Threshold};

use super::{Report, ThresholdResult};

/// A rule as a report carries it for `merge`.
pub fn spec_of(t: &Threshold) -> super::RuleSpec {
    super::RuleSpec {
        expr: t.expr.clone(),
        limit: t.limit,
        phase: t.phase.clone(),
        workload: t.workload.clone(),
        operation: t.operation.clone(),
        fault: t.fault.clone(),
    }
}

/// A rule read back from a report: its metric and comparison from the expression (the part before
/// a `--time-scale` note), its limit as given.
pub fn rule_of(spec: &super::RuleSpec) -> Result<Threshold, String> {
    let written = spec.expr.split(" (limit ×").next().unwrap_or(&spec.expr);
    let (metric, cmp, _) = crate::scenario::validate::parse_threshold_expr(written).map_err(|e| format!("threshold `{}`: {e}", spec.expr))?;
    if !spec.limit.is_finite() || spec.limit < 0.0 {
        return Err(format!("threshold `{}`: limit {} is not a finite value of zero or more", spec.expr, spec.limit));
    }
    Ok(Threshold {
        expr: spec.expr.clone(),
        metric,
        cmp,
        limit: spec.limit,
        phase: spec.phase.clone(),
        workload: spec.workload.clone(),
        operation: spec.operation.clone(),
        fault: spec.fault.clone(),
    })
}

/// Evaluates every threshold against a report.
pub fn evaluate(thresholds: &[Threshold], report: &Report) -> Vec<ThresholdResult> {
    thresholds.iter().map(|t| verdict(t, report)).collect()
}

fn verdict(t: &Threshold, report: &Report) -> ThresholdResult {
    let observed = match (&t.fault, unmeasurable(t, report)) {
        (Some(name), _) => observe_fault(t, report, name),
        (None, Some(why)) => Err(why),
        (None, None) => observe(t, report).ok_or_else(String::new),
    };
    let passed = observed.as_ref().is_ok_and(|v| t.cmp.holds(*v, t.limit));
    ThresholdResult {
        expr: t.expr.clone(),
        phase: t.phase.clone(),
        workload: t.workload.clone(),
        operation: t.operation.clone(),
        fault: t.fault.clone(),
        observed: observed.as_ref().ok().copied(),
        observed_text: match &observed {
            Ok(v) => show(t.metric, *v),
            Err(why) if why.is_empty() => "no data".to_owned(),
            Err(why) => why.clone(),
        },
        passed,
    }
}

/// Why a rule's figure cannot be trusted although something was measured, as the verdict shows
/// it: a verify that could not read every acknowledged write back has not shown that none was
/// lost; a fault after which throughput never came back has no recovery time to compare, and
/// fails any `recovery_time` rule.
fn unmeasurable(t: &Threshold, report: &Report) -> Option<String> {
    if t.metric == Metric::RecoveryTime {
        let phase = t.phase.as_ref().and_then(|name| report.phases.iter().position(|p| &p.name == name));
        let not_back: Vec<&str> = faults_in_scope(report, phase).filter(|f| f.recovery() == Recovery::NotRecovered).map(|f| f.name.as_str()).collect();
        return (!not_back.is_empty()).then(|| not_recovered(&not_back));
    }
    if t.metric == Metric::HandoffTime {
        return longest_handoff(report.maintenance.iter().flat_map(|m| &m.handoffs)).err().filter(|why| !why.is_empty());
    }
    if !matches!(t.metric, Metric::LostWrites | Metric::DuplicateWrites) {
        return None;
    }
    let in_scope = verify_in_scope(t, report);
    let unreadable: u64 = in_scope.iter().map(|v| v.unreadable).sum();
    let checked: u64 = in_scope.iter().map(|v| v.checked).sum();
    if unreadable > 0 {
        return Some(format!("no data: {unreadable} of {checked} acknowledged writes could not be read back"));
    }
    if in_scope.iter().any(|v| v.truncated) || streams_in_scope(t, report).any(|s| s.unchecked) {
        return Some("no data: more writes were acknowledged than could be remembered; only some were checked".to_owned());
    }
    None
}

/// What a `recovery_time` rule shows when throughput never came back after these faults.
fn not_recovered(faults: &[&str]) -> String {
    let s = if faults.len() == 1 { "" } else { "s" };
    format!("not recovered: throughput not back within the window of fault{s} `{}`", faults.join("`, `"))
}

/// The streams a rule judges: its workload's, or every stream workload's.
fn streams_in_scope<'a>(t: &'a Threshold, report: &'a Report) -> impl Iterator<Item = &'a crate::workload::stream::StreamStats> {
    report.streams.iter().filter(|s| t.workload.as_ref().is_none_or(|w| *w == s.workload))
}

/// The verify results a rule judges: its workload's, or every verifying workload's.
fn verify_in_scope<'a>(t: &Threshold, report: &'a Report) -> Vec<&'a crate::outcome::VerifyResult> {
    report.verify.iter().filter(|v| t.workload.as_ref().is_none_or(|w| *w == v.workload)).collect()
}

pub use crate::units::format_us;

/// A value in the metric's unit as people read it.
pub fn show(metric: Metric, v: f64) -> String {
    metric.show(v)
}

fn observe(t: &Threshold, report: &Report) -> Option<f64> {
    let phase_idx: Option<usize> = match &t.phase {
        Some(name) => Some(report.phases.iter().position(|p| &p.name == name)?),
        None => None,
    };
    let mut latency: Option<Histogram<u64>> = None;
    let (mut count, mut errors, mut any) = (0u64, 0u64, false);
    for (pi, phase) in report.phases.iter().enumerate() {
        if phase_idx.is_some_and(|p| p != pi) {
            continue;
        }
        for row in &phase.operations {
            let in_scope = t.workload.as_ref().is_none_or(|w| *w == row.workload) && t.operation.as_ref().is_none_or(|o| row.operation.eq_ignore_ascii_case(o));
            // Without an operation in scope, count scheduled operations (a batch once, not its commands).
            if !in_scope || !(row.unit == OpRole::RoundTrip || t.operation.is_some()) {
                continue;
            }
            any = true;
            // Reports are input: sums saturate rather than overflow (merge refuses saturated ones).
            count = count.saturating_add(row.count);
            errors = errors.saturating_add(row.errors.values().fold(0u64, |a, b| a.saturating_add(*b)));
            if let Some(h) = row.histogram.as_deref().and_then(super::deserialize_histogram) {
                super::add_histogram(&mut latency, h);
            }
        }
    }
    let latency = latency.filter(|h| !h.is_empty());
    let secs = match phase_idx {
        Some(p) => report.phases[p].duration_s,
        None => report.duration_s,
    };
    let quantile = |q: f64| latency.as_ref().map(|h| h.value_at_quantile(q) as f64);
    match t.metric {
        Metric::P50 => quantile(0.5),
        Metric::P90 => quantile(0.9),
        Metric::P95 => quantile(0.95),
        Metric::P99 => quantile(0.99),
        Metric::P999 => quantile(0.999),
        Metric::Max => latency.as_ref().map(|h| h.max() as f64),
        Metric::Mean => latency.as_ref().map(Histogram::mean),
        Metric::Ops => any.then_some(count as f64),
        Metric::Errors => any.then_some(errors as f64),
        Metric::ErrorRate => (count > 0).then(|| errors as f64 / count as f64),
        Metric::OpsPerSec => (any && secs > 0.0).then(|| count as f64 / secs),
        Metric::Outage => outage_us(t, report, phase_idx),
        // Faults not back fail the rule before this (see `unmeasurable`); faults with no level to
        // compare with measured nothing.
        Metric::RecoveryTime => faults_in_scope(report, phase_idx).filter_map(|r| r.recovery_s).map(|s| s * 1e6).reduce(f64::max),
        Metric::LostWrites => {
            let v = verify_in_scope(t, report);
            // A verify that read nothing back (no acknowledged write, no counter) has not shown
            // that none was lost; neither has a stream nothing was added to. A stream entry is
            // lost when it was never delivered (and not trimmed), or delivered corrupted.
            let streams: Vec<_> = streams_in_scope(t, report).collect();
            (v.iter().any(|v| v.checked > 0 || v.counters > 0) || streams.iter().any(|s| s.produced > 0))
                .then(|| v.iter().map(|v| v.lost_writes() as f64).sum::<f64>() + streams.iter().map(|s| (s.lost + s.corrupted) as f64).sum::<f64>())
        }
        // A run without a handoff measured nothing: "no data".
        Metric::HandoffTime => longest_handoff(report.maintenance.iter().flat_map(|m| &m.handoffs)).ok(),
        Metric::Lag => {
            let streams: Vec<_> = streams_in_scope(t, report).collect();
            (!streams.is_empty()).then(|| streams.iter().map(|s| s.lag as f64).sum())
        }
        Metric::DuplicateWrites => {
            let v = verify_in_scope(t, report);
            // Nothing to judge unless counters were checked or entries delivered.
            let streams: Vec<_> = streams_in_scope(t, report).collect();
            (v.iter().any(|v| v.counters > 0) || streams.iter().any(|s| s.delivered > 0))
                .then(|| v.iter().map(|v| v.duplicate_writes() as f64).sum::<f64>() + streams.iter().map(|s| s.duplicated as f64).sum::<f64>())
        }
    }
}

/// A rule scoped to one fault, judged from that fault's verdict alone: over its window, from its
/// start to the next fault or the end of the run. `Err` carries why it measured nothing (empty:
/// "no data"); `validate` admits only the metrics judged here.
fn observe_fault(t: &Threshold, report: &Report, name: &str) -> Result<f64, String> {
    let Some(fault) = report.faults.iter().find(|f| f.name == name) else {
        return Err(format!("no data: no fault named `{name}` in this report"));
    };
    let Some(r) = fault.result.as_ref() else {
        return Err(format!("no data: fault `{name}` did not run"));
    };
    match t.metric {
        // Every class counts, timeouts included: a window with errors of any kind is not clean.
        Metric::Errors => Ok(r.errors.values().fold(0u64, |a, b| a.saturating_add(*b)) as f64),
        Metric::Outage => match &t.workload {
            Some(w) => r.outage_by_workload_s.get(w).map(|s| s * 1e6).ok_or_else(String::new),
            None => Ok(r.outage_s * 1e6),
        },
        Metric::RecoveryTime => match r.recovery() {
            Recovery::NotRecovered => Err(not_recovered(&[name])),
            Recovery::TooShort => Err(format!(
                "no data: the window of fault `{name}` ({:.2} s) is too short to see throughput back ({} s needed)",
                r.window_end_s - r.at_s,
                crate::outcome::RECOVERY_HOLD.as_secs_f64()
            )),
            _ => r.recovery_s.map(|s| s * 1e6).ok_or_else(String::new),
        },
        Metric::HandoffTime => longest_handoff(report.maintenance.iter().flat_map(|m| &m.handoffs).filter(|h| h.at_s >= r.at_s && h.at_s < r.window_end_s)),
        other => Err(format!("no data: `{}` is not judged over a fault's window", other.name())),
    }
}

/// The longest of these handoffs, µs. `Err`: why it cannot be judged — some left old connections
/// open until the end — or empty when there was none ("no data").
fn longest_handoff<'a>(handoffs: impl Iterator<Item = &'a crate::client::maintenance::Handoff>) -> Result<f64, String> {
    let (mut longest, mut open) = (None::<f64>, 0usize);
    for h in handoffs {
        match h.handoff_time_s {
            Some(s) => longest = Some(longest.map_or(s * 1e6, |l| l.max(s * 1e6))),
            None => open += 1,
        }
    }
    if open > 0 {
        return Err(format!("not handed off: {open} MOVING left old connections open until the end"));
    }
    longest.ok_or_else(String::new)
}

/// Faults that ran and started inside the phase (all when unscoped).
fn faults_in_scope(report: &Report, phase: Option<usize>) -> impl Iterator<Item = &crate::outcome::FaultVerdict> {
    report.faults.iter().filter_map(|f| f.result.as_ref()).filter(move |r| match phase {
        Some(p) => {
            let ph = &report.phases[p];
            r.at_s >= ph.start_s && r.at_s < ph.start_s + ph.duration_s
        }
        None => true,
    })
}

/// The longest time without a successful operation, µs: over the fault windows when faults ran,
/// else over the whole run (gaps shorter than 100 ms are jitter and not counted).
fn outage_us(t: &Threshold, report: &Report, phase: Option<usize>) -> Option<f64> {
    let pick = |by: &std::collections::BTreeMap<String, f64>| -> f64 {
        by.iter().filter(|(w, _)| t.workload.as_ref().is_none_or(|x| x == *w)).map(|(_, v)| *v).fold(0.0, f64::max)
    };
    // Unscoped, the rule judges the figure the fault's verdict shows: the longest outage of any
    // workload or shard (a cluster shard out while the others serve is an outage too).
    let in_faults: Vec<f64> =
        faults_in_scope(report, phase).map(|r| if t.workload.is_some() { pick(&r.outage_by_workload_s) } else { r.outage_s } * 1e6).collect();
    if !report.faults.is_empty() {
        return in_faults.into_iter().reduce(f64::max);
    }
    (!report.longest_outage_s.is_empty()).then(|| pick(&report.longest_outage_s) * 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_in_their_units() {
        assert_eq!(format_us(850.0), "850us");
        assert_eq!(format_us(1250.0), "1.25ms");
        assert_eq!(format_us(2_500_000.0), "2.5s");
        assert_eq!(format_us(1_011_429.3), "1.011s");
        assert_eq!(format_us(90e6), "1m30s");
        assert_eq!(show(Metric::ErrorRate, 0.0005), "0.05%");
        assert_eq!(show(Metric::OpsPerSec, 19_876.54), "19877");
    }
}
