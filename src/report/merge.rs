//! Merging the reports of a sharded run (`apply --shard I/N`) into one report, as if one process
//! had run the scenario:
//!
//! - latency histograms are added (HDR histograms merge exactly) and percentiles recomputed from
//!   the sum, never averaged; counts, errors, misses, retries, commands, deliveries, verify and
//!   connection counters are summed;
//! - the time series is summed per wall-clock second (shards started together with `--start-at`;
//!   a second's p50/p99 cannot be added up, so the merged point carries the worst shard's);
//! - a fault's outage is that of the union of the shards' successes: the stretches every shard
//!   spent without a success at the same time (the intersection of their gaps, per workload and
//!   per cluster shard); first error the earliest, recovery the latest, errors summed; shard 0's
//!   record says what the fault did (it ran it);
//! - service-time and failed-operation percentiles are per process and are left out (not
//!   averaged); an operation's blocks (the samples `compare` judges) are added by index — counts
//!   and errors summed, a block's percentiles the worst shard's, as for the time series;
//! - thresholds are judged again on the merged figures, by the code `apply` uses.
//!
//! Reports of different scenarios or runs, a shard given twice or a shard missing are refused.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hdrhistogram::Histogram;

use super::{
    ConnectionReport, FaultRecord, OpReport, Percentiles, PhaseReport, Report, Totals, add_histogram, deserialize_histogram, rate, serialize_histogram,
};
use crate::metrics::OpRole;
use crate::outcome::{FaultVerdict, GapRecord, Recovery, TimePoint, VerifyResult};
use crate::scenario::model::Threshold;

/// Merges the shards' reports; an error names the file and what is wrong with it.
pub fn merge(reports: Vec<(PathBuf, Report)>) -> Result<Report, String> {
    let ordered = check_shards(reports)?;
    let base = &ordered[0].1;
    let all: Vec<&Report> = ordered.iter().map(|(_, r)| r).collect();
    let start = all.iter().filter_map(|r| epoch_s(&r.started_at)).fold(f64::INFINITY, f64::min);
    let mut merged = base.clone();
    merged.started_at = all.iter().map(|r| r.started_at.clone()).min().unwrap_or_default();
    merged.ended_at = all.iter().map(|r| r.ended_at.clone()).max().unwrap_or_default();
    merged.duration_s = all.iter().map(|r| r.duration_s).fold(0.0, f64::max);
    merged.interrupted = all.iter().any(|r| r.interrupted);
    merged.client_threads = all.iter().filter_map(|r| r.client_threads).max();
    merged.phases = (0..base.phases.len()).map(|i| merge_phase(&all.iter().map(|r| &r.phases[i]).collect::<Vec<_>>())).collect();
    merged.totals = totals(&merged.phases, merged.duration_s);
    merged.faults = (0..base.faults.len()).map(|i| merge_fault(&all.iter().map(|r| &r.faults[i]).collect::<Vec<_>>())).collect();
    merged.longest_outage_s = min_by_key(all.iter().map(|r| &r.longest_outage_s));
    merged.time_series = merge_series(&all, start);
    merged.pubsub = merge_pubsub(&all);
    merged.streams = merge_streams(&all);
    merged.verify = merge_verify(&all);
    merged.other_commands = sum_maps(all.iter().map(|r| &r.other_commands));
    merged.connections = merge_connections(&all);
    merged.cleanup = merge_cleanup(&all);
    merged.otlp = None;
    merged.master_moves = all.iter().flat_map(|r| r.master_moves.iter().cloned()).collect();
    merged.master_moves.sort_by(|a, b| a.at.cmp(&b.at));
    merged.maintenance = merge_maintenance(&all);
    merged.internal_errors =
        ordered.iter().flat_map(|(_, r)| r.internal_errors.iter().map(|e| format!("shard {}: {e}", r.shard.map_or(0, |s| s.index)))).collect();
    merged.instance_id = None;
    merged.shard = None;
    merged.merged_from = ordered
        .iter()
        .map(|(p, r)| format!("shard {} ({}): {}", r.shard.map_or(0, |s| s.index), r.instance_id.as_deref().unwrap_or("?"), p.display()))
        .collect();
    let thresholds = rules(base)?;
    merged.deferred_thresholds = Vec::new();
    impossible(&merged)?;
    merged.thresholds = super::thresholds::evaluate(&thresholds, &merged);
    Ok(merged)
}

/// Refuses a merged report whose figures cannot be true: a sum that reached its type's largest
/// value (the shards' counts overflowed), or counts that contradict each other.
fn impossible(merged: &Report) -> Result<(), String> {
    fn saturated(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) => n.as_u64().is_some_and(|x| x == u64::MAX || x == u64::from(u32::MAX)) || n.as_i64() == Some(i64::MAX),
            serde_json::Value::Array(a) => a.iter().any(saturated),
            serde_json::Value::Object(o) => o.values().any(saturated),
            _ => false,
        }
    }
    let value = serde_json::to_value(merged).map_err(|e| e.to_string())?;
    if saturated(&value) {
        return Err("the shards' figures add up past what a count can hold: they cannot be true (a report was edited or corrupted)".into());
    }
    super::read::check(merged).map_err(|e| format!("the merged figures cannot be true: {e}"))
}

/// Every report is a shard of the same run of the same scenario; each shard once, none missing.
/// Returns them in shard order.
fn check_shards(reports: Vec<(PathBuf, Report)>) -> Result<Vec<(PathBuf, Report)>, String> {
    let Some((first_path, first)) = reports.first() else { return Err("no reports to merge".into()) };
    let Some(first_shard) = first.shard else {
        return Err(format!("{}: not a shard's report (run with `apply --shard I/N` or `--shards N`)", first_path.display()));
    };
    // Shard numbers come from files: the bounds `apply` applies (the reader checked each report).
    if first_shard.count == 0 || first_shard.count > super::read::MAX_SHARDS {
        return Err(format!("{}: shard count {} is not between 1 and {}", first_path.display(), first_shard.count, super::read::MAX_SHARDS));
    }
    let count = first_shard.count as usize;
    let mut by_index: Vec<Option<(PathBuf, Report)>> = vec![None; count];
    for (path, r) in &reports {
        let Some(s) = r.shard else { return Err(format!("{}: not a shard's report (run with `apply --shard I/N` or `--shards N`)", path.display())) };
        if s.index >= s.count {
            return Err(format!("{}: shard {} of {} cannot be", path.display(), s.index, s.count));
        }
        if r.interrupted {
            return Err(format!(
                "{}: shard {} was interrupted: its figures cover part of the run, and a merge would judge a run that did not happen (run it again)",
                path.display(),
                s.index
            ));
        }
        // The whole plan: phases, rates, workloads, faults, thresholds, target, client, time scale.
        match (&r.plan_fingerprint, &first.plan_fingerprint) {
            (Some(a), Some(b)) if a != b => {
                return Err(format!(
                    "{}: its plan differs from {}'s (plan fingerprint {a} vs {b}): not shards of one run of one scenario",
                    path.display(),
                    first_path.display()
                ));
            }
            _ => {}
        }
        for (what, a, b) in [
            ("time scale", r.time_scale.to_string(), first.time_scale.to_string()),
            ("client", r.client.clone(), first.client.clone()),
            ("target", r.target.address.clone(), first.target.address.clone()),
            ("mode", r.target.mode.clone(), first.target.mode.clone()),
        ] {
            if a != b {
                return Err(format!("{}: {what} `{a}`, but {} ran with `{b}`: not shards of one run", path.display(), first_path.display()));
            }
        }
        if r.scenario != first.scenario {
            return Err(format!("{}: scenario `{}`, but {} ran `{}`", path.display(), r.scenario, first_path.display(), first.scenario));
        }
        if r.run_id != first.run_id {
            return Err(format!("{}: run `{}`, but {} belongs to run `{}`", path.display(), r.run_id, first_path.display(), first.run_id));
        }
        if s.count != first_shard.count {
            return Err(format!("{}: one of {} shards, but {} is one of {}", path.display(), s.count, first_path.display(), first_shard.count));
        }
        if r.phases.iter().map(|p| &p.name).ne(first.phases.iter().map(|p| &p.name)) || r.faults.len() != first.faults.len() {
            return Err(format!("{}: its phases or faults differ from {}'s (not the same plan)", path.display(), first_path.display()));
        }
        match &by_index[s.index as usize] {
            Some((other, _)) => return Err(format!("shard {} is given twice: {} and {}", s.index, other.display(), path.display())),
            None => by_index[s.index as usize] = Some((path.clone(), r.clone())),
        }
    }
    let missing: Vec<usize> = by_index.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| i).collect();
    if !missing.is_empty() {
        // A few named; a count for the rest (a report claiming millions of shards must not make a
        // message of megabytes).
        const NAMED: usize = 5;
        let named: Vec<String> = missing.iter().take(NAMED).map(|i| format!("shard {i}")).collect();
        let more = if missing.len() > NAMED { format!(" and {} more", missing.len() - NAMED) } else { String::new() };
        return Err(format!("run `{}` had {count} shards; missing: {}{more}", first.run_id, named.join(", ")));
    }
    Ok(by_index.into_iter().flatten().collect())
}

/// The thresholds left to the merge: a shard's deferred rules, or (reports of version 1) the rules
/// the shards judged themselves, read back from their verdicts.
fn rules(report: &Report) -> Result<Vec<Threshold>, String> {
    if !report.deferred_thresholds.is_empty() {
        return report.deferred_thresholds.iter().map(super::thresholds::rule_of).collect();
    }
    report
        .thresholds
        .iter()
        .map(|t| {
            if t.expr.contains(" (limit ×") {
                return Err(format!(
                    "threshold `{}` was scaled by --time-scale in a report of an older redis-test, which did not record its limit; run the shards again",
                    t.expr
                ));
            }
            let (metric, cmp, limit) = crate::scenario::validate::parse_threshold_expr(&t.expr).map_err(|e| format!("threshold `{}`: {e}", t.expr))?;
            Ok(Threshold {
                expr: t.expr.clone(),
                metric,
                cmp,
                limit,
                phase: t.phase.clone(),
                workload: t.workload.clone(),
                operation: t.operation.clone(),
                fault: t.fault.clone(),
            })
        })
        .collect()
}

fn epoch_s(rfc3339: &str) -> Option<f64> {
    humantime::parse_rfc3339(rfc3339).ok()?.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs_f64())
}

fn sum_maps<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, u64>>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for m in maps {
        for (k, v) in m {
            let e: &mut u64 = out.entry(k.clone()).or_default();
            *e = e.saturating_add(*v);
        }
    }
    out
}

fn min_by_key<'a>(maps: impl Iterator<Item = &'a BTreeMap<String, f64>>) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for m in maps {
        for (k, v) in m {
            out.entry(k.clone()).and_modify(|x| *x = x.min(*v)).or_insert(*v);
        }
    }
    out
}

fn sum_options(mut values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values.try_fold(0u64, |a, b| b.map(|b| a.saturating_add(b)))
}

/// Sums without wrapping: a sum that reaches the type's largest value is refused afterwards
/// ([`impossible`]), never wrapped into a small, plausible figure.
fn sat_sum(values: impl Iterator<Item = u64>) -> u64 {
    values.fold(0, u64::saturating_add)
}

fn merge_phase(shards: &[&PhaseReport]) -> PhaseReport {
    let base = shards[0];
    let duration_s = shards.iter().map(|p| p.duration_s).fold(0.0, f64::max);
    let mut rows: Vec<(OpReport, Option<Histogram<u64>>)> = Vec::new();
    for p in shards {
        for op in &p.operations {
            let h = op.histogram.as_deref().and_then(deserialize_histogram);
            match rows.iter_mut().find(|(r, _)| r.workload == op.workload && r.operation == op.operation) {
                Some((r, hist)) => {
                    for (i, b) in op.blocks.iter().enumerate() {
                        match r.blocks.get_mut(i) {
                            Some(m) => {
                                m.secs = m.secs.max(b.secs);
                                m.count = m.count.saturating_add(b.count);
                                m.errors = m.errors.saturating_add(b.errors);
                                m.p50_us = m.p50_us.max(b.p50_us);
                                m.p99_us = m.p99_us.max(b.p99_us);
                                m.p999_us = m.p999_us.max(b.p999_us);
                            }
                            None => r.blocks.push(*b),
                        }
                    }
                    r.count = r.count.saturating_add(op.count);
                    r.ok = r.ok.saturating_add(op.ok);
                    r.miss = r.miss.saturating_add(op.miss);
                    r.retries = r.retries.saturating_add(op.retries);
                    for (k, v) in &op.errors {
                        let e = r.errors.entry(k.clone()).or_default();
                        *e = e.saturating_add(*v);
                    }
                    if let Some(h) = h {
                        add_histogram(hist, h);
                    }
                }
                None => {
                    let mut hist = None;
                    if let Some(h) = h {
                        add_histogram(&mut hist, h);
                    }
                    rows.push((op.clone(), hist));
                }
            }
        }
    }
    let operations = rows
        .into_iter()
        .map(|(mut r, hist)| {
            r.ops_per_sec = rate(r.count, duration_s);
            r.latency_us = hist.as_ref().and_then(Percentiles::of);
            r.histogram = hist.as_ref().and_then(serialize_histogram);
            // Per-process figures that cannot be added up exactly are left out, not averaged.
            r.service_time_us = None;
            r.error_latency_us = None;
            r
        })
        .collect();
    let count = sat_sum(shards.iter().map(|p| p.count));
    PhaseReport {
        name: base.name.clone(),
        kind: base.kind.clone(),
        start_s: shards.iter().map(|p| p.start_s).fold(f64::INFINITY, f64::min),
        duration_s,
        workers: [shards.iter().map(|p| p.workers[0]).fold(0, u32::saturating_add), shards.iter().map(|p| p.workers[1]).fold(0, u32::saturating_add)],
        target_rate: base.target_rate,
        scheduled: sum_options(shards.iter().map(|p| p.scheduled)),
        backlog: sum_options(shards.iter().map(|p| p.backlog)),
        count,
        errors: sat_sum(shards.iter().map(|p| p.errors)),
        ops_per_sec: rate(count, duration_s),
        deliveries: sat_sum(shards.iter().map(|p| p.deliveries)),
        commands: sum_maps(shards.iter().map(|p| &p.commands)),
        operations,
    }
}

fn totals(phases: &[PhaseReport], duration_s: f64) -> Totals {
    let mut latency = None;
    let (mut count, mut errors) = (0u64, 0u64);
    for op in phases.iter().flat_map(|p| &p.operations).filter(|o| o.unit == OpRole::RoundTrip) {
        count = count.saturating_add(op.count);
        errors = errors.saturating_add(op.errors.values().fold(0u64, |a, b| a.saturating_add(*b)));
        if let Some(h) = op.histogram.as_deref().and_then(deserialize_histogram) {
            add_histogram(&mut latency, h);
        }
    }
    Totals {
        count,
        errors,
        error_rate: if count > 0 { errors as f64 / count as f64 } else { 0.0 },
        ops_per_sec: rate(count, duration_s),
        latency_us: latency.as_ref().and_then(Percentiles::of).unwrap_or_default(),
    }
}

/// Sorts stretches and merges those that overlap or touch: a shard's gaps as a set of time.
fn normalise(mut set: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    set.retain(|(a, b)| a.is_finite() && b.is_finite() && b > a);
    set.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(set.len());
    for (a, b) in set {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Stretches inside every one of `sets` (each a shard's gaps of one stream): each set normalised
/// first, then intersected in one sweep, so the result never holds more stretches than the inputs
/// together — three shards with 300 identical gaps give 300, not 27 million.
fn intersect(sets: &[Vec<(f64, f64)>]) -> Vec<(f64, f64)> {
    let Some((first, rest)) = sets.split_first() else { return Vec::new() };
    let mut acc = normalise(first.clone());
    for set in rest {
        let set = normalise(set.clone());
        let (mut i, mut j) = (0, 0);
        let mut next = Vec::new();
        while i < acc.len() && j < set.len() {
            let (from, to) = (acc[i].0.max(set[j].0), acc[i].1.min(set[j].1));
            if to > from {
                next.push((from, to));
            }
            if acc[i].1 < set[j].1 { i += 1 } else { j += 1 }
        }
        acc = next;
    }
    acc
}

fn merge_fault(shards: &[&FaultRecord]) -> FaultRecord {
    let base = shards[0];
    let verdicts: Vec<&FaultVerdict> = shards.iter().filter_map(|f| f.result.as_ref()).collect();
    let Some(first) = verdicts.first().filter(|_| verdicts.len() == shards.len()) else { return base.clone() };
    let streams: Vec<&String> = first.outage_by_workload_s.keys().chain(first.outage_by_shard_s.keys()).collect();
    let mut gaps = Vec::new();
    let mut longest: BTreeMap<&String, f64> = BTreeMap::new();
    for stream in streams {
        let sets: Vec<Vec<(f64, f64)>> = verdicts.iter().map(|v| v.gaps.iter().filter(|g| &g.stream == stream).map(|g| (g.from_s, g.to_s)).collect()).collect();
        let common = intersect(&sets);
        longest.insert(stream, common.iter().map(|(a, b)| b - a).fold(0.0, f64::max));
        gaps.extend(common.into_iter().map(|(from_s, to_s)| GapRecord { stream: stream.clone(), from_s, to_s }));
    }
    let pick = |keys: &BTreeMap<String, f64>| -> BTreeMap<String, f64> { keys.keys().map(|k| (k.clone(), longest.get(k).copied().unwrap_or(0.0))).collect() };
    let outage_by_workload_s = pick(&first.outage_by_workload_s);
    let outage_by_shard_s = pick(&first.outage_by_shard_s);
    let mut verdict = (*first).clone();
    verdict.outage_s = outage_by_workload_s.values().chain(outage_by_shard_s.values()).copied().fold(0.0, f64::max);
    verdict.outage_by_workload_s = outage_by_workload_s;
    verdict.outage_by_shard_s = outage_by_shard_s;
    verdict.in_flight = verdicts.iter().map(|v| v.in_flight).fold(0, i64::saturating_add);
    verdict.time_to_first_error_s = verdicts.iter().filter_map(|v| v.time_to_first_error_s).reduce(f64::min);
    // Back to normal when the last shard is: a shard that never recovered keeps the run
    // unrecovered, one that could not be judged leaves the run unjudged.
    verdict.recovery = Recovery::worst(verdicts.iter().map(|v| v.recovery()));
    verdict.recovery_s = match verdict.recovery {
        Some(Recovery::Recovered) => verdicts.iter().map(|v| v.recovery_s).collect::<Option<Vec<f64>>>().and_then(|v| v.into_iter().reduce(f64::max)),
        _ => None,
    };
    verdict.errors = sum_maps(verdicts.iter().map(|v| &v.errors));
    verdict.reconnects = sum_options(verdicts.iter().map(|v| v.reconnects));
    verdict.gaps = gaps;
    FaultRecord { result: Some(verdict), ..base.clone() }
}

fn merge_series(all: &[&Report], start: f64) -> Vec<TimePoint> {
    let mut by_second: BTreeMap<i64, TimePoint> = BTreeMap::new();
    for r in all {
        let offset = epoch_s(&r.started_at).map_or(0.0, |s| s - start);
        for p in &r.time_series {
            let key = (p.t + offset).round() as i64;
            let e = by_second.entry(key).or_insert_with(|| TimePoint {
                t: key as f64,
                secs: p.secs,
                ops: 0,
                ops_per_sec: 0.0,
                ok: 0,
                ok_per_sec: 0.0,
                p50_us: 0,
                p99_us: 0,
                errors: 0,
            });
            e.ops = e.ops.saturating_add(p.ops);
            e.ok = e.ok.saturating_add(p.ok);
            e.errors = e.errors.saturating_add(p.errors);
            e.secs = e.secs.max(p.secs);
            e.p50_us = e.p50_us.max(p.p50_us);
            e.p99_us = e.p99_us.max(p.p99_us);
        }
    }
    by_second
        .into_values()
        .map(|mut p| {
            p.ops_per_sec = if p.secs > 0.0 { (p.ops as f64 / p.secs * 10.0).round() / 10.0 } else { 0.0 };
            p.ok_per_sec = if p.secs > 0.0 { (p.ok as f64 / p.secs * 10.0).round() / 10.0 } else { 0.0 };
            p
        })
        .collect()
}

fn merge_pubsub(all: &[&Report]) -> Vec<super::PubsubReport> {
    let mut out: Vec<super::PubsubReport> = Vec::new();
    for r in all {
        for p in &r.pubsub {
            match out.iter_mut().find(|x| x.workload == p.workload) {
                Some(x) => x.subscribers.extend(p.subscribers.iter().cloned()),
                None => out.push(p.clone()),
            }
        }
    }
    out
}

/// Each shard has streams of its own (their keys carry the shard); the same stream in two
/// reports is added up.
fn merge_streams(all: &[&Report]) -> Vec<crate::workload::stream::StreamStats> {
    let mut out: Vec<crate::workload::stream::StreamStats> = Vec::new();
    for r in all {
        for s in &r.streams {
            match out.iter_mut().find(|x| x.workload == s.workload && x.stream == s.stream) {
                Some(x) => {
                    for (a, b) in [
                        (&mut x.produced, s.produced),
                        (&mut x.add_failed, s.add_failed),
                        (&mut x.delivered, s.delivered),
                        (&mut x.acked, s.acked),
                        (&mut x.claimed, s.claimed),
                        (&mut x.duplicated, s.duplicated),
                        (&mut x.lost, s.lost),
                        (&mut x.trimmed, s.trimmed),
                        (&mut x.corrupted, s.corrupted),
                        (&mut x.pending, s.pending),
                        (&mut x.lag, s.lag),
                    ] {
                        *a = a.saturating_add(b);
                    }
                    x.unchecked |= s.unchecked;
                }
                None => out.push(s.clone()),
            }
        }
    }
    out
}

fn merge_verify(all: &[&Report]) -> Vec<VerifyResult> {
    let mut out: Vec<VerifyResult> = Vec::new();
    for r in all {
        for v in &r.verify {
            match out.iter_mut().find(|x| x.workload == v.workload) {
                Some(x) => {
                    x.checked = x.checked.saturating_add(v.checked);
                    x.lost = x.lost.saturating_add(v.lost);
                    x.changed = x.changed.saturating_add(v.changed);
                    x.indeterminate = x.indeterminate.saturating_add(v.indeterminate);
                    x.unreadable = x.unreadable.saturating_add(v.unreadable);
                    x.truncated |= v.truncated;
                    x.counters = x.counters.saturating_add(v.counters);
                    x.increments_acknowledged = x.increments_acknowledged.saturating_add(v.increments_acknowledged);
                    x.increments_lost = x.increments_lost.saturating_add(v.increments_lost);
                    x.increments_duplicated = x.increments_duplicated.saturating_add(v.increments_duplicated);
                    x.increments_indeterminate = x.increments_indeterminate.saturating_add(v.increments_indeterminate);
                }
                None => out.push(v.clone()),
            }
        }
    }
    out
}

fn merge_connections(all: &[&Report]) -> ConnectionReport {
    let c = |f: fn(&ConnectionReport) -> Option<u64>| sum_options(all.iter().map(|r| f(&r.connections)));
    ConnectionReport {
        opened: sat_sum(all.iter().map(|r| r.connections.opened)),
        dropped: c(|x| x.dropped),
        connect_errors: c(|x| x.connect_errors),
        reconnects: c(|x| x.reconnects),
        cluster_redirects: all.iter().map(|r| r.connections.cluster_redirects.as_ref()).collect::<Option<Vec<_>>>().map(|maps| sum_maps(maps.into_iter())),
        topology_refreshes: c(|x| x.topology_refreshes),
    }
}

fn merge_cleanup(all: &[&Report]) -> Option<super::CleanupReport> {
    let ran: Vec<&super::CleanupReport> = all.iter().filter_map(|r| r.cleanup.as_ref()).collect();
    let first = ran.first()?;
    Some(super::CleanupReport {
        prefix: first.prefix.clone(),
        removed: sat_sum(ran.iter().map(|c| c.removed)),
        error: ran.iter().find_map(|c| c.error.clone()),
    })
}

/// The shards' clients, added up: connections, messages and windows summed, every handoff kept.
fn merge_maintenance(all: &[&Report]) -> Option<crate::client::maintenance::ClientReport> {
    let mut parts = all.iter().filter_map(|r| r.maintenance.as_ref());
    let mut out = parts.next()?.clone();
    for m in parts {
        out.enabled_connections = out.enabled_connections.saturating_add(m.enabled_connections);
        out.unsupported_connections = out.unsupported_connections.saturating_add(m.unsupported_connections);
        out.unsupported_reply = out.unsupported_reply.or_else(|| m.unsupported_reply.clone());
        for (k, n) in &m.received {
            let e = out.received.entry(k.clone()).or_default();
            *e = e.saturating_add(*n);
        }
        out.relaxed_windows = out.relaxed_windows.saturating_add(m.relaxed_windows);
        out.relaxed_backstops = out.relaxed_backstops.saturating_add(m.relaxed_backstops);
        out.relaxed_s += m.relaxed_s;
        out.handoffs.extend(m.handoffs.iter().cloned());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase_with(samples: &[u64]) -> PhaseReport {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for s in samples {
            h.record(*s).unwrap();
        }
        let op = OpReport {
            workload: "w".into(),
            operation: "GET".into(),
            unit: OpRole::RoundTrip,
            count: samples.len() as u64,
            ok: samples.len() as u64,
            miss: 0,
            errors: BTreeMap::new(),
            retries: 0,
            ops_per_sec: 0.0,
            latency_us: Percentiles::of(&h),
            service_time_us: Percentiles::of(&h),
            error_latency_us: None,
            histogram: serialize_histogram(&h),
            blocks: Vec::new(),
        };
        PhaseReport {
            name: "p".into(),
            kind: None,
            start_s: 0.0,
            duration_s: 1.0,
            workers: [1, 1],
            target_rate: None,
            scheduled: None,
            backlog: None,
            count: op.count,
            errors: 0,
            ops_per_sec: 0.0,
            deliveries: 0,
            commands: BTreeMap::new(),
            operations: vec![op],
        }
    }

    #[test]
    fn merged_percentiles_are_those_of_one_histogram_of_every_sample() {
        // Three shards with very different latencies (a fast one, a slow one, one with a tail):
        // averaging their percentiles would be wrong by far; adding the histograms is exact.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let a: Vec<u64> = (0..5000).map(|_| 100 + next() % 200).collect();
        let b: Vec<u64> = (0..3000).map(|_| 2_000 + next() % 3_000).collect();
        let c: Vec<u64> = (0..2000).map(|_| if next() % 50 == 0 { 900_000 + next() % 100_000 } else { 300 + next() % 700 }).collect();
        let merged = merge_phase(&[&phase_with(&a), &phase_with(&b), &phase_with(&c)]);
        let all: Vec<u64> = a.iter().chain(&b).chain(&c).copied().collect();
        let single = phase_with(&all);
        let (m, s) = (&merged.operations[0], &single.operations[0]);
        assert_eq!(m.count, 10_000);
        assert_eq!(m.latency_us, s.latency_us, "percentiles of the merged histogram vs one histogram of all samples");
        assert_eq!(m.histogram.as_deref().and_then(deserialize_histogram), s.histogram.as_deref().and_then(deserialize_histogram));
        assert_eq!(m.service_time_us, None, "per-process percentiles are left out, not averaged");
        // 40 slow samples of 10 000: the merged p99.9, nowhere near any average of the shards'.
        let p999 = m.latency_us.unwrap().p999;
        assert!(p999 > 900_000, "the tail of one shard is the merged p99.9: {p999}");
    }

    /// A fault record of one shard whose recovery was `recovery` (`recovery_s` when recovered).
    fn fault_with(recovery: &str, recovery_s: Option<f64>) -> FaultRecord {
        serde_json::from_value(serde_json::json!({
            "name": "kill", "at_s": 2.0, "action": "client_kill", "result": {
                "name": "kill", "action": "client_kill", "at_s": 2.0, "finished_s": 2.1, "ok": true, "detail": "",
                "in_flight": 0, "time_to_first_error_s": null, "outage_s": 0.5, "outage_by_workload_s": {"w": 0.5},
                "recovery_s": recovery_s, "recovery": recovery, "errors": {}, "reconnects": 0, "window_end_s": 9.0
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_fault_merged_from_shards_is_as_recovered_as_its_worst_shard() {
        // Before, the merged verdict kept shard 0's `recovered` beside no recovery time when
        // another shard never came back: a recovery_time rule then read "recovered".
        let back = fault_with("recovered", Some(1.5));
        let later = fault_with("recovered", Some(2.5));
        let never = fault_with("not_recovered", None);
        let short = fault_with("too_short", None);
        let merged = |shards: &[&FaultRecord]| merge_fault(shards).result.unwrap();
        let m = merged(&[&back, &later]);
        assert_eq!((m.recovery(), m.recovery_s), (Recovery::Recovered, Some(2.5)), "back when the last shard is");
        for (shards, want) in [
            (vec![&back, &never], Recovery::NotRecovered),
            (vec![&never, &back], Recovery::NotRecovered),
            (vec![&back, &short], Recovery::TooShort),
            (vec![&short, &never], Recovery::NotRecovered),
        ] {
            let m = merged(&shards);
            assert_eq!((m.recovery(), m.recovery_s), (want, None), "{:?}", shards.iter().map(|f| f.result.as_ref().unwrap().recovery()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn only_stretches_every_shard_spent_without_a_success_are_an_outage() {
        let a = vec![(1.0, 3.0), (5.0, 6.0)];
        let b = vec![(2.0, 4.0)];
        assert_eq!(intersect(&[a.clone(), b]), vec![(2.0, 3.0)]);
        assert_eq!(intersect(&[a.clone(), vec![]]), vec![], "a shard that kept succeeding means no outage");
        assert_eq!(intersect(std::slice::from_ref(&a)), a);
    }
}
